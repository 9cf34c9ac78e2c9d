//! Key lifecycle (status, expiration, history): what each status permits, which transitions are
//! allowed, and who did what. The status lives in the `key_status` column; an `expiration` in the
//! past makes a key Expired even before anyone updates the row.
//!
//! | status | sign, encrypt, wrap, MAC generate | verify, decrypt, unwrap, derive, MAC verify |
//! |---|---|---|
//! | Active (1) | allowed | allowed |
//! | Inactive (2) | refused | allowed |
//! | Compromised (3) | refused | refused |
//! | Expired (4) | refused | allowed |

use chrono::{DateTime, TimeZone, Utc};
use cryptoki_sys::*;
use serde_json::json;
use uuid::Uuid;

use super::algorithm::KeyStatus;
use super::attributes::AttrMap;
use super::session::LoginKind;
use crate::error::{Result, Rv};
use crate::storage::KeyEvent;
use crate::vendor;

const ACTIVE: KeyStatus = KeyStatus::Active;
const INACTIVE: KeyStatus = KeyStatus::Inactive;
const COMPROMISED: KeyStatus = KeyStatus::Compromised;
const EXPIRED: KeyStatus = KeyStatus::Expired;

/// What an operation does with a key, as far as its status is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Makes new protected data: sign, encrypt, wrap, MAC generation.
    Protect,
    /// Reads existing data: verify, decrypt, unwrap, derive, MAC verification.
    Use,
}

/// The purpose behind a usage attribute (`CKA_SIGN`, `CKA_DECRYPT`, …).
pub fn purpose_of(usage: CK_ATTRIBUTE_TYPE) -> Purpose {
    match usage {
        CKA_SIGN | CKA_ENCRYPT | CKA_WRAP => Purpose::Protect,
        _ => Purpose::Use,
    }
}

/// A status's name, as the admin command shows it and log lines say it.
pub fn status_name(status: KeyStatus) -> &'static str {
    match status {
        ACTIVE => "active",
        INACTIVE => "inactive",
        COMPROMISED => "compromised",
        EXPIRED => "expired",
    }
}

/// The status a key has now: Compromised stays Compromised; a passed expiration means Expired.
pub fn effective_status(
    status: KeyStatus,
    expiration: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> KeyStatus {
    if status == COMPROMISED {
        return COMPROMISED;
    }
    if expiration.is_some_and(|at| at <= now) {
        return EXPIRED;
    }
    status
}

pub fn permits(status: KeyStatus, purpose: Purpose) -> bool {
    matches!(
        (status, purpose),
        (ACTIVE, _) | (INACTIVE | EXPIRED, Purpose::Use)
    )
}

/// `CKA_SQLHSM_EXPIRATION`'s value for an expiration (0 for none).
pub fn expiration_seconds(expiration: Option<DateTime<Utc>>) -> CK_ULONG {
    expiration.map_or(0, |at| CK_ULONG::try_from(at.timestamp()).unwrap_or(0))
}

/// The expiration an object's attributes record.
pub fn expiration_of_attrs(attrs: &AttrMap) -> Option<DateTime<Utc>> {
    let seconds = attrs
        .ulong(vendor::CKA_SQLHSM_EXPIRATION)
        .filter(|s| *s != 0)?;
    Utc.timestamp_opt(i64::try_from(seconds).ok()?, 0).single()
}

/// The status of a token key now, from its attributes; `None` for objects without a lifecycle
/// (session objects, certificates).
pub fn status_of(attrs: &AttrMap, now: DateTime<Utc>) -> Option<KeyStatus> {
    let status = i32::try_from(attrs.ulong(vendor::CKA_SQLHSM_KEY_STATUS)?).ok()?;
    let status = KeyStatus::from_code(status)?;
    Some(effective_status(status, expiration_of_attrs(attrs), now))
}

/// Refuses an operation the key's status does not permit, with `CKR_KEY_FUNCTION_NOT_PERMITTED`
/// and a log line naming the key.
pub fn check_permitted(attrs: &AttrMap, usage: CK_ATTRIBUTE_TYPE) -> Result<()> {
    let Some(status) = status_of(attrs, Utc::now()) else {
        return Ok(());
    };
    let purpose = purpose_of(usage);
    if permits(status, purpose) {
        return Ok(());
    }
    let key_id = String::from_utf8_lossy(attrs.get(vendor::CKA_SQLHSM_KEY_ID).unwrap_or_default())
        .into_owned();
    tracing::warn!(%key_id, status = status_name(status), ?purpose, "operation refused by the key's status");
    Err(Rv::KEY_FUNCTION_NOT_PERMITTED)?
}

/// The new `key_status` column value for a requested status change, or
/// `CKR_ATTRIBUTE_VALUE_INVALID` for a forbidden transition.
pub fn status_transition(current: KeyStatus, requested: KeyStatus) -> Result<KeyStatus> {
    match (current, requested) {
        (from, to) if from == to => Ok(to),
        (COMPROMISED, _) => Err(Rv::ATTRIBUTE_VALUE_INVALID)?,
        (_, COMPROMISED) => Ok(COMPROMISED),
        (ACTIVE, INACTIVE) | (INACTIVE, ACTIVE) => Ok(requested),
        (ACTIVE | INACTIVE, EXPIRED) => Ok(EXPIRED),
        // An Expired key comes back only through a new expiration set by the SO.
        _ => Err(Rv::ATTRIBUTE_VALUE_INVALID)?,
    }
}

/// The `(status, expiration)` after a new expiration is set. An Expired key given a future
/// expiration becomes Active again, which only the security officer may do.
pub fn expiration_change(
    current_status: KeyStatus,
    current: KeyStatus,
    expiration: Option<DateTime<Utc>>,
    login: LoginKind,
    now: DateTime<Utc>,
) -> Result<(KeyStatus, Option<DateTime<Utc>>)> {
    let future = expiration.is_none_or(|at| at > now);
    if current == EXPIRED && future {
        if login != LoginKind::So {
            Err(Rv::ATTRIBUTE_VALUE_INVALID)?
        }
        return Ok((ACTIVE, expiration));
    }
    Ok((current_status, expiration))
}

/// `CKA_END_DATE` for an expiration: the day whose end it is (the inverse of
/// `objects::expiration_of`).
pub fn end_date_for(expiration: Option<DateTime<Utc>>) -> Vec<u8> {
    match expiration {
        Some(at) => (at - chrono::Duration::seconds(1))
            .format("%Y%m%d")
            .to_string()
            .into_bytes(),
        None => Vec::new(),
    }
}

/// Who acts: this process and host, for the history.
pub fn actor() -> String {
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("pkcs11:{program}[{}]@{host}", std::process::id())
}

/// A history event for a key.
pub fn event(
    key_id: &str,
    token: Uuid,
    what: &str,
    old: Option<serde_json::Value>,
    new: Option<serde_json::Value>,
) -> KeyEvent {
    KeyEvent {
        id: Uuid::new_v4(),
        key_id: key_id.to_string(),
        provider_config_id: token,
        event: what.to_string(),
        actor: actor(),
        old_value: old,
        new_value: new,
        at: Utc::now(),
    }
}

/// The JSON a history event records for a key's state.
pub fn state_json(status: KeyStatus, expiration: Option<DateTime<Utc>>) -> serde_json::Value {
    json!({ "status": status.code(), "expiration": expiration.map(|at| at.to_rfc3339()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_table() {
        for (status, protect, use_) in [
            (ACTIVE, true, true),
            (INACTIVE, false, true),
            (COMPROMISED, false, false),
            (EXPIRED, false, true),
        ] {
            assert_eq!(
                permits(status, Purpose::Protect),
                protect,
                "status {status:?}"
            );
            assert_eq!(permits(status, Purpose::Use), use_, "status {status:?}");
        }
        assert_eq!(purpose_of(CKA_SIGN), Purpose::Protect);
        assert_eq!(purpose_of(CKA_VERIFY), Purpose::Use);
        assert_eq!(purpose_of(CKA_DERIVE), Purpose::Use);
    }

    #[test]
    fn a_passed_expiration_means_expired_but_compromised_stays() {
        let now = Utc::now();
        let past = Some(now - chrono::Duration::seconds(1));
        assert_eq!(effective_status(ACTIVE, past, now), EXPIRED);
        assert_eq!(effective_status(INACTIVE, past, now), EXPIRED);
        assert_eq!(effective_status(COMPROMISED, past, now), COMPROMISED);
        assert_eq!(
            effective_status(ACTIVE, Some(now + chrono::Duration::days(1)), now),
            ACTIVE
        );
    }

    #[test]
    fn transitions() {
        assert_eq!(status_transition(ACTIVE, INACTIVE).unwrap(), INACTIVE);
        assert_eq!(status_transition(INACTIVE, ACTIVE).unwrap(), ACTIVE);
        assert_eq!(
            status_transition(INACTIVE, COMPROMISED).unwrap(),
            COMPROMISED
        );
        for to in [ACTIVE, INACTIVE, EXPIRED] {
            assert_eq!(
                status_transition(COMPROMISED, to).unwrap_err().rv(),
                Rv::ATTRIBUTE_VALUE_INVALID,
                "compromised is terminal"
            );
        }
        assert_eq!(
            status_transition(EXPIRED, ACTIVE).unwrap_err().rv(),
            Rv::ATTRIBUTE_VALUE_INVALID
        );
        let now = Utc::now();
        let future = Some(now + chrono::Duration::days(30));
        assert_eq!(
            expiration_change(ACTIVE, EXPIRED, future, LoginKind::User, now)
                .unwrap_err()
                .rv(),
            Rv::ATTRIBUTE_VALUE_INVALID
        );
        assert_eq!(
            expiration_change(ACTIVE, EXPIRED, future, LoginKind::So, now).unwrap(),
            (ACTIVE, future)
        );
        assert_eq!(
            expiration_change(INACTIVE, INACTIVE, future, LoginKind::User, now).unwrap(),
            (INACTIVE, future)
        );
    }

    #[test]
    fn end_date_and_expiration_agree() {
        let at = Utc.with_ymd_and_hms(2031, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(end_date_for(Some(at)), b"20301231");
        assert_eq!(end_date_for(None), b"");
    }
}

/// Lifecycle changes through `C_SetAttributeValue` and the history of key creation and
/// destruction.
mod through_pkcs11 {
    use chrono::Utc;
    use cryptoki_sys::*;
    use uuid::Uuid;

    use super::*;
    use crate::core::attributes;
    use crate::core::keystore;
    use crate::core::module::Module;
    use crate::core::object::{Half, Object, ObjectId};
    use crate::core::objects::Access;
    use crate::storage::KeyTable;

    /// The lifecycle attributes an application may set.
    pub fn is_lifecycle_attribute(kind: CK_ATTRIBUTE_TYPE) -> bool {
        kind == vendor::CKA_SQLHSM_KEY_STATUS || kind == vendor::CKA_SQLHSM_EXPIRATION
    }

    impl Module {
        /// A history event for a key, by whoever acts through this instance. A change of the
        /// store hands it to the storage call that makes the change, which writes both in one
        /// transaction.
        pub fn history_event(
            &self,
            key_id: &str,
            token: Uuid,
            what: &str,
            old: Option<serde_json::Value>,
            new: Option<serde_json::Value>,
        ) -> KeyEvent {
            KeyEvent {
                actor: self.actor(),
                ..event(key_id, token, what, old, new)
            }
        }

        /// Records an event about something done outside the store: only `remote-retired`, a
        /// REMOTE key's object destroyed or relabelled in its HSM. The HSM is another module
        /// with transactions of its own, so this event cannot share ours; a failure to record
        /// it is logged, and does not fail the operation, which has already happened.
        pub fn record_outside_change(&self, event: KeyEvent) {
            if let Err(e) = self.storage.record_event(&event) {
                tracing::error!(key_id = %event.key_id, event = %event.event, error = %e, "cannot record a key history event");
            }
        }

        /// `C_SetAttributeValue` of `CKA_SQLHSM_KEY_STATUS` and/or `CKA_SQLHSM_EXPIRATION` on a
        /// token key, within the allowed transitions; the row's status, expiration and
        /// `CKA_END_DATE` change together and the change enters the history.
        pub fn set_lifecycle(
            &self,
            access: &Access,
            object: &Object,
            template: &[crate::types::Attribute],
        ) -> Result<()> {
            let ObjectId::Token { row, half } = object.id else {
                Err(Rv::ATTRIBUTE_TYPE_INVALID)?
            };
            let table = match half {
                Half::Public | Half::Private => KeyTable::Asym,
                Half::Secret => KeyTable::Sym,
                Half::Standalone => Err(Rv::ATTRIBUTE_TYPE_INVALID)?,
            };
            let mut requested_status = None;
            let mut requested_expiration = None;
            for attr in template {
                if attr.kind == CKA_END_DATE {
                    let spec = attributes::spec(CKA_END_DATE).ok_or(Rv::GENERAL_ERROR)?;
                    attributes::validate_value(spec, &attr.value)?;
                    let at = match attr.value.is_empty() {
                        true => None,
                        false => Some(
                            crate::core::objects::end_date_expiration(&attr.value)
                                .ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?,
                        ),
                    };
                    requested_expiration = Some(at);
                    continue;
                }
                let value =
                    attributes::decode_ulong(&attr.value).ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?;
                if attr.kind == vendor::CKA_SQLHSM_KEY_STATUS {
                    let status = i32::try_from(value).ok().and_then(KeyStatus::from_code);
                    requested_status = Some(status.ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?);
                } else {
                    let at = match value {
                        0 => None,
                        seconds => Some(
                            Utc.timestamp_opt(
                                i64::try_from(seconds).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?,
                                0,
                            )
                            .single()
                            .ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?,
                        ),
                    };
                    requested_expiration = Some(at);
                }
            }
            self.change_key_state(
                table,
                row,
                object.token,
                requested_status,
                requested_expiration,
                access.login.kind(),
                &self.actor(),
            )
        }

        /// Applies a requested status and/or expiration to a key row within the allowed
        /// transitions: status, expiration and `CKA_END_DATE` change together, and the change
        /// enters the history under `actor`.
        #[allow(clippy::too_many_arguments)]
        pub fn change_key_state(
            &self,
            table: KeyTable,
            row: Uuid,
            token: Uuid,
            requested_status: Option<KeyStatus>,
            requested_expiration: Option<Option<DateTime<Utc>>>,
            login: LoginKind,
            actor: &str,
        ) -> Result<()> {
            let (key_id, stored_status, stored_expiration, mut metadata) = match table {
                KeyTable::Asym => {
                    let r = self
                        .storage
                        .get_asym_key(row)?
                        .ok_or(Rv::OBJECT_HANDLE_INVALID)?;
                    (r.key_id, r.key_status, r.expiration, r.metadata)
                }
                KeyTable::Sym => {
                    let r = self
                        .storage
                        .get_sym_key(row)?
                        .ok_or(Rv::OBJECT_HANDLE_INVALID)?;
                    (r.key_id, r.key_status, r.expiration, r.metadata)
                }
            };
            let now = Utc::now();
            let effective = effective_status(stored_status, stored_expiration, now);
            let (mut status, mut expiration) = (stored_status, stored_expiration);
            if let Some(at) = requested_expiration {
                (status, expiration) = expiration_change(status, effective, at, login, now)?;
            }
            if let Some(requested) = requested_status {
                status = status_transition(effective_status(status, expiration, now), requested)?;
            }
            if (status, expiration) == (stored_status, stored_expiration) {
                return Ok(());
            }
            // CKA_END_DATE follows the expiration on every half the row shows, in the same
            // transaction as the new state and its event.
            let end_date_changed = expiration != stored_expiration;
            if end_date_changed {
                let end_date = String::from_utf8_lossy(&end_date_for(expiration)).into_owned();
                for half in ["public", "private", "secret"] {
                    if let Some(stored) = metadata
                        .get_mut(half)
                        .and_then(serde_json::Value::as_object_mut)
                    {
                        stored.insert(
                            "end_date".into(),
                            serde_json::Value::String(end_date.clone()),
                        );
                    }
                }
            }
            let what = if status != stored_status {
                "status"
            } else {
                "expiration"
            };
            let mut event = event(
                &key_id,
                token,
                what,
                Some(state_json(stored_status, stored_expiration)),
                Some(state_json(status, expiration)),
            );
            event.actor = actor.to_string();
            if !self.storage.set_key_state(
                table,
                row,
                status,
                expiration,
                end_date_changed.then_some(&metadata),
                &event,
            )? {
                Err(Rv::OBJECT_HANDLE_INVALID)?
            }
            tracing::info!(
                %key_id,
                from = status_name(effective),
                to = status_name(effective_status(status, expiration, now)),
                "key state changed"
            );
            self.reload_row(table, row)
        }

        /// Puts a row's fresh objects into the cache (after its state changed).
        pub fn reload_row(&self, table: KeyTable, row: Uuid) -> Result<()> {
            let fresh = match table {
                KeyTable::Asym => match self.storage.get_asym_key(row)? {
                    Some(stored) => keystore::objects_from_asym_row(&stored)?,
                    None => Vec::new(),
                },
                KeyTable::Sym => match self.storage.get_sym_key(row)? {
                    Some(stored) => keystore::object_from_sym_row(&stored)?
                        .into_iter()
                        .collect(),
                    None => Vec::new(),
                },
            };
            for object in fresh {
                self.objects.insert(object)?;
            }
            Ok(())
        }
    }
}

pub use through_pkcs11::is_lifecycle_attribute;

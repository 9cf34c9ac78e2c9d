//! Key rotation: a successor with the predecessor's algorithm, usage flags, label and `CKA_ID`,
//! a new `key_id` and status Active; the predecessor becomes Inactive (a Compromised one stays
//! so); both record the link (`CKA_SQLHSM_ROTATED_FROM` / `_TO`) and the history the event —
//! all in one transaction, so a crash leaves the old state or the new one.
//!
//! Through PKCS#11 a rotation is a `C_GenerateKey` / `C_GenerateKeyPair` whose template carries
//! `CKA_SQLHSM_ROTATED_FROM` = the `key_id` being replaced; [`Module::rotate_key`] builds that
//! template from the predecessor itself.

use cryptoki_sys::*;
use serde_json::{json, Value};
use uuid::Uuid;

use super::attributes::AttrMap;
use super::lifecycle;
use super::module::Module;
use super::object::{find_in_template, Half, ObjectId};
use super::objects::Access;
use crate::error::{Result, Rv};
use crate::storage::{KeyEvent, KeyFilter, KeyTable};
use crate::types::{Attribute, Mechanism};
use crate::vendor;

/// The key a new key replaces.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub table: KeyTable,
    pub row: Uuid,
    pub key_id: String,
    pub token: Uuid,
    pub key_algorithm: Option<i32>,
    pub status: i32,
    pub metadata: Value,
    pub actor: String,
    /// Where the predecessor's material is, when it is a REMOTE key (its remote objects are
    /// marked once the rotation is stored).
    pub remote: Option<crate::provider::RemoteRef>,
}

impl Rotation {
    /// The successor's metadata names its predecessor.
    pub fn link_successor(&self, metadata: &mut Value) {
        if let Some(map) = metadata.as_object_mut() {
            map.insert("rotated_from".into(), Value::String(self.key_id.clone()));
        }
    }

    /// The predecessor's metadata, naming its successor.
    pub fn linked_predecessor(&self, successor: &str) -> Value {
        let mut metadata = self.metadata.clone();
        if let Some(map) = metadata.as_object_mut() {
            map.insert("rotated_to".into(), Value::String(successor.to_string()));
        }
        metadata
    }

    pub fn events(&self, successor: &str, successor_status: i32) -> Vec<KeyEvent> {
        let new_status = if self.status == 3 { 3 } else { 2 };
        let mut old = lifecycle::event(
            &self.key_id,
            self.token,
            "rotated",
            Some(json!({ "status": self.status })),
            Some(json!({ "status": new_status, "rotated_to": successor })),
        );
        old.actor = self.actor.clone();
        let mut new = lifecycle::event(
            successor,
            self.token,
            "generated",
            None,
            Some(json!({ "status": successor_status, "rotated_from": self.key_id })),
        );
        new.actor = self.actor.clone();
        vec![old, new]
    }
}

/// The attributes a successor takes over from its predecessor (never dates: a new key starts
/// a new validity; never `CKA_TRUSTED`: only the SO sets it).
const INHERITED: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_LABEL,
    CKA_ID,
    CKA_DERIVE,
    CKA_ALLOWED_MECHANISMS,
    CKA_SUBJECT,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_ALWAYS_AUTHENTICATE,
];

fn inherited(attrs: &AttrMap) -> Vec<Attribute> {
    INHERITED
        .iter()
        .filter_map(|kind| {
            attrs
                .get(*kind)
                .map(|value| Attribute::new(*kind, value.to_vec()))
        })
        .collect()
}

impl Module {
    /// The rotation a generation template asks for (`CKA_SQLHSM_ROTATED_FROM`), if any: the
    /// predecessor must be a token key of this token that the session may see.
    pub fn rotation_from_template(
        &self,
        access: &Access,
        template: &[Attribute],
        table: KeyTable,
    ) -> Result<Option<Rotation>> {
        let Some(key_id) = find_in_template(template, vendor::CKA_SQLHSM_ROTATED_FROM)? else {
            return Ok(None);
        };
        let key_id = std::str::from_utf8(key_id)
            .map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?
            .to_string();
        self.rotation_of(access.token, &key_id, table, access.is_user(), self.actor())
            .map(Some)
    }

    /// The rotation of the key `key_id` of `token`.
    pub fn rotation_of(
        &self,
        token: Uuid,
        key_id: &str,
        table: KeyTable,
        user: bool,
        actor: String,
    ) -> Result<Rotation> {
        let filter = KeyFilter {
            provider_config_id: token,
            key_id: Some(key_id.to_string()),
            ..KeyFilter::default()
        };
        let (row, key_algorithm, status, metadata, remote) = match table {
            KeyTable::Asym => {
                let row = self
                    .storage
                    .find_asym_keys(&filter)?
                    .into_iter()
                    .next()
                    .ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?;
                let remote = match &row.private_key_ctx {
                    Some(ctx) => super::keystore::remote_ref(ctx)?,
                    None => None,
                };
                (
                    row.id,
                    Some(row.key_algorithm),
                    row.key_status,
                    row.metadata,
                    remote,
                )
            }
            KeyTable::Sym => {
                let row = self
                    .storage
                    .find_sym_keys(&filter)?
                    .into_iter()
                    .next()
                    .ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?;
                let remote = super::keystore::remote_ref(&row.metadata)?;
                (row.id, None, row.key_status, row.metadata, remote)
            }
        };
        // A private predecessor is invisible (hence unknown) before the user logs in.
        let private = ["private", "secret"].iter().any(|half| {
            metadata
                .get(half)
                .and_then(|h| h.get("private"))
                .and_then(Value::as_bool)
                == Some(true)
        });
        if private && !user {
            Err(Rv::ATTRIBUTE_VALUE_INVALID)?
        }
        Ok(Rotation {
            table,
            row,
            key_id: key_id.to_string(),
            token,
            key_algorithm,
            status,
            metadata,
            actor,
            remote,
        })
    }

    /// Rotates a token key: generates its successor with the same algorithm and attributes and
    /// retires it, in one transaction. Returns the successor's handles (public half first).
    pub fn rotate_key(
        &self,
        session: CK_SESSION_HANDLE,
        handle: CK_OBJECT_HANDLE,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let access = self.access(session)?;
        let object = self.visible_object(&access, handle, Rv::KEY_HANDLE_INVALID)?;
        let ObjectId::Token { row, half } = object.id else {
            Err(Rv::KEY_HANDLE_INVALID)?
        };
        let key_id = String::from_utf8_lossy(
            object
                .attrs
                .get(vendor::CKA_SQLHSM_KEY_ID)
                .unwrap_or_default(),
        )
        .into_owned();
        let link = Attribute::new(vendor::CKA_SQLHSM_ROTATED_FROM, key_id.into_bytes());
        match half {
            Half::Secret => {
                let mechanism = match object.attrs.ulong(CKA_KEY_TYPE) {
                    Some(CKK_AES) => CKM_AES_KEY_GEN,
                    Some(CKK_GENERIC_SECRET) => CKM_GENERIC_SECRET_KEY_GEN,
                    _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
                };
                let mut template = inherited(&object.attrs);
                template.push(Attribute::new(
                    CKA_VALUE_LEN,
                    object
                        .attrs
                        .get(CKA_VALUE_LEN)
                        .ok_or(Rv::KEY_TYPE_INCONSISTENT)?
                        .to_vec(),
                ));
                template.push(link);
                Ok(vec![self.generate_key(
                    session,
                    &Mechanism::new(mechanism),
                    &template,
                )?])
            }
            Half::Public | Half::Private => {
                let stored = self
                    .storage
                    .get_asym_key(row)?
                    .ok_or(Rv::KEY_HANDLE_INVALID)?;
                let objects = super::keystore::objects_from_asym_row(&stored)?;
                let half_attrs = |wanted: Half| {
                    objects
                        .iter()
                        .find(|o| matches!(o.id, ObjectId::Token { half, .. } if half == wanted))
                        .map(|o| &o.attrs)
                };
                let source = half_attrs(Half::Private)
                    .or(half_attrs(Half::Public))
                    .ok_or(Rv::KEY_HANDLE_INVALID)?;
                let (mechanism, mut public) = match source.ulong(CKA_KEY_TYPE) {
                    Some(CKK_RSA) => {
                        let modulus = source.get(CKA_MODULUS).ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
                        let exponent = source
                            .get(CKA_PUBLIC_EXPONENT)
                            .ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
                        let bits = (modulus.len() * 8) as CK_ULONG;
                        (
                            CKM_RSA_PKCS_KEY_PAIR_GEN,
                            vec![
                                Attribute::from_ulong(CKA_MODULUS_BITS, bits),
                                Attribute::new(CKA_PUBLIC_EXPONENT, exponent.to_vec()),
                            ],
                        )
                    }
                    Some(CKK_EC) => (
                        CKM_EC_KEY_PAIR_GEN,
                        vec![Attribute::new(
                            CKA_EC_PARAMS,
                            source
                                .get(CKA_EC_PARAMS)
                                .ok_or(Rv::KEY_TYPE_INCONSISTENT)?
                                .to_vec(),
                        )],
                    ),
                    Some(CKK_EC_EDWARDS) => (
                        CKM_EC_EDWARDS_KEY_PAIR_GEN,
                        vec![Attribute::new(
                            CKA_EC_PARAMS,
                            source
                                .get(CKA_EC_PARAMS)
                                .ok_or(Rv::KEY_TYPE_INCONSISTENT)?
                                .to_vec(),
                        )],
                    ),
                    _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
                };
                public.extend(
                    half_attrs(Half::Public)
                        .map(inherited)
                        .unwrap_or_else(|| vec![Attribute::from_bool(CKA_TOKEN, true)]),
                );
                let mut private = half_attrs(Half::Private)
                    .map(inherited)
                    .unwrap_or_else(|| vec![Attribute::from_bool(CKA_TOKEN, true)]);
                private.push(link);
                let (public, private) =
                    self.generate_key_pair(session, &Mechanism::new(mechanism), &public, &private)?;
                Ok(vec![public, private])
            }
            Half::Standalone => Err(Rv::KEY_HANDLE_INVALID)?,
        }
    }

    /// For the admin command: changes a key's status and/or expiration by `key_id`, without
    /// PKCS#11's visibility rules. The caller has verified the user PIN (or the SO PIN:
    /// `as_so`, which alone may bring an Expired key back with a future expiration).
    pub fn set_key_state_by_id(
        &self,
        token: Uuid,
        key_id: &str,
        status: Option<i32>,
        expiration: Option<Option<chrono::DateTime<chrono::Utc>>>,
        as_so: bool,
        actor: &str,
    ) -> Result<()> {
        let filter = KeyFilter {
            provider_config_id: token,
            key_id: Some(key_id.to_string()),
            ..KeyFilter::default()
        };
        let (table, row) = match self.storage.find_asym_keys(&filter)?.into_iter().next() {
            Some(row) => (KeyTable::Asym, row.id),
            None => (
                KeyTable::Sym,
                self.storage
                    .find_sym_keys(&filter)?
                    .into_iter()
                    .next()
                    .ok_or(Rv::OBJECT_HANDLE_INVALID)?
                    .id,
            ),
        };
        let login = if as_so {
            super::session::LoginKind::So
        } else {
            super::session::LoginKind::User
        };
        self.change_key_state(table, row, token, status, expiration, login, actor)
    }
}

//! `sqlhsm token init|list|show|delete|set-pin|unlock`. A token is a `provider_config` row; it
//! is created the PKCS#11 way (`C_InitToken` on the empty slot, then `C_InitPIN` as the SO), and
//! its PINs change the same way (`C_SetPIN`, `C_InitPIN`), so the CLI and the module can never
//! disagree about what a token is.

use cryptoki_sys::*;
use serde_json::{json, Value};

use super::output::{self, Table};
use super::{confirm, who, Admin, AdminResult, Failure};
use crate::core::pins::padded;
use crate::core::token::{PinOwner, TokenRecord};
use crate::provider::{Pkcs11Provider, ProviderSpec, RemoteUse};
use crate::storage::{KeyEvent, KeyFilter, TokenRow};

/// What `token list` / `token show` report about one token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSummary {
    pub label: String,
    pub slot: u64,
    pub serial: String,
    pub asym_keys: usize,
    pub sym_keys: usize,
    pub user_pin: String,
    pub so_pin: String,
    pub created_at: String,
    /// `local`, or the remote module and token and what they are used for.
    pub provider: String,
}

impl TokenSummary {
    pub fn to_json(&self) -> Value {
        json!({
            "label": self.label,
            "slot": self.slot,
            "serial": self.serial,
            "keys": self.asym_keys + self.sym_keys,
            "asym_keys": self.asym_keys,
            "sym_keys": self.sym_keys,
            "user_pin": self.user_pin,
            "so_pin": self.so_pin,
            "created_at": self.created_at,
            "provider": self.provider,
        })
    }
}

/// One line on where a token's keys live.
pub fn describe_provider(provider: &ProviderSpec) -> String {
    match provider {
        ProviderSpec::Local => "local".into(),
        ProviderSpec::Pkcs11(p) => {
            let token = p
                .token_label
                .clone()
                .or_else(|| p.token_serial.clone())
                .unwrap_or_default();
            let mode = match p.use_for {
                RemoteUse::Keys => "REMOTE keys",
                RemoteUse::RootKey => "PROVIDER_ROOT_KEY",
            };
            format!(
                "pkcs11 {} token {token:?} ({mode}; PIN from {})",
                p.module.display(),
                p.pin.describe()
            )
        }
    }
}

/// `ok`, `not set`, `1 failure`, `final try`, `locked`.
pub fn pin_state(record: &TokenRecord, owner: PinOwner, max_failures: u32) -> String {
    if owner == PinOwner::User && record.user.is_none() {
        return "not set".into();
    }
    let failures = record.failures(owner);
    if failures >= max_failures {
        "locked".into()
    } else if failures + 1 == max_failures {
        "final try".into()
    } else if failures > 0 {
        format!("{failures} failed")
    } else {
        "ok".into()
    }
}

impl Admin {
    pub fn token_summary(&self, row: &TokenRow) -> AdminResult<TokenSummary> {
        let record = TokenRecord::from_json(&row.config)?;
        let filter = KeyFilter {
            provider_config_id: row.id,
            ..KeyFilter::default()
        };
        let max = self.module.config.security.max_pin_failures;
        Ok(TokenSummary {
            label: row.provider_name.clone(),
            slot: record.slot,
            serial: record.serial.clone(),
            asym_keys: self.storage.find_asym_keys(&filter)?.len(),
            sym_keys: self.storage.find_sym_keys(&filter)?.len(),
            user_pin: pin_state(&record, PinOwner::User, max),
            so_pin: pin_state(&record, PinOwner::So, max),
            created_at: row.created_at.to_rfc3339(),
            provider: describe_provider(&record.provider),
        })
    }

    /// Every token that holds a usable token record, by label.
    pub fn token_summaries(&self) -> AdminResult<Vec<TokenSummary>> {
        let mut out = Vec::new();
        for row in self.storage.list_tokens()? {
            match self.token_summary(&row) {
                Ok(summary) => out.push(summary),
                Err(e) => {
                    tracing::warn!(token = %row.provider_name, error = %e, "skipping a provider_config row that is not a token")
                }
            }
        }
        out.sort_by(|a, b| a.label.cmp(&b.label));
        Ok(out)
    }

    pub fn token_list(&self) -> AdminResult<String> {
        let tokens = self.token_summaries()?;
        if self.options.json {
            return Ok(output::json(&Value::Array(
                tokens.iter().map(TokenSummary::to_json).collect(),
            )));
        }
        let mut table = Table::new(&["LABEL", "SLOT", "SERIAL", "KEYS", "USER PIN", "SO PIN"]);
        for t in &tokens {
            table.row(vec![
                t.label.clone(),
                t.slot.to_string(),
                t.serial.clone(),
                (t.asym_keys + t.sym_keys).to_string(),
                t.user_pin.clone(),
                t.so_pin.clone(),
            ]);
        }
        Ok(table.render())
    }

    pub fn token_show(&self, label: &str) -> AdminResult<String> {
        let row = self.token(label)?;
        let t = self.token_summary(&row)?;
        if self.options.json {
            return Ok(output::json(&t.to_json()));
        }
        Ok(output::fields(&[
            ("label", t.label.clone()),
            ("slot", t.slot.to_string()),
            ("serial", t.serial.clone()),
            (
                "keys",
                format!(
                    "{} ({} asymmetric, {} secret)",
                    t.asym_keys + t.sym_keys,
                    t.asym_keys,
                    t.sym_keys
                ),
            ),
            ("user PIN", t.user_pin.clone()),
            ("SO PIN", t.so_pin.clone()),
            ("created", t.created_at.clone()),
            ("provider", t.provider.clone()),
        ]))
    }

    /// `C_InitToken` on the empty slot with the SO PIN, then `C_InitPIN` as the SO.
    pub fn token_init(&self, label: &str, provider: Option<Pkcs11Provider>) -> AdminResult<String> {
        if label.is_empty() || label.len() > 32 {
            return Err(Failure::usage("a token label is 1 to 32 bytes"));
        }
        if label.ends_with(' ') {
            return Err(Failure::usage(
                "a token label may not end with a blank (PKCS#11 pads labels with blanks)",
            ));
        }
        if self
            .storage
            .list_tokens()?
            .iter()
            .any(|t| t.provider_name == label)
        {
            return Err(Failure::refused(format!(
                "a token labelled {label:?} exists already"
            )));
        }
        let so_pin = self.options.pins.new_pin(PinOwner::So, label)?;
        self.check_new_pin(PinOwner::So, &so_pin)?;
        let user_pin = self.options.pins.new_pin(PinOwner::User, label)?;
        self.check_new_pin(PinOwner::User, &user_pin)?;
        // Another process may take the empty slot between listing and creating: the store
        // refuses the second claim, and the slots are listed again.
        let mut attempts = 0;
        loop {
            let slots = self.module.slot_list(true)?;
            let empty = *slots
                .last()
                .ok_or_else(|| Failure::refused("no empty slot"))?;
            match self
                .module
                .init_token(empty, so_pin.as_bytes(), &padded::<32>(label))
            {
                Ok(()) => break,
                Err(e) if e.rv() == crate::error::Rv::ARGUMENTS_BAD && attempts < 10 => {
                    let taken = self
                        .storage
                        .list_tokens()?
                        .iter()
                        .any(|t| t.provider_name == label);
                    if taken {
                        return Err(e.into());
                    }
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20 * attempts));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let row = self.token(label)?;
        if let Some(provider) = provider {
            // The remote must work now; a token whose provider does not is not left behind.
            if let Err(e) = self
                .module
                .attach_provider(row.id, so_pin.as_bytes(), provider)
            {
                let destroyed = self.token_deleted(row.id, label, "token setup failed");
                let _ = self.storage.delete_token(row.id, &destroyed);
                return Err(Failure::refused(format!(
                    "the remote provider is not usable: {}",
                    Failure::from(e)
                )));
            }
        }
        {
            let session = self.session_as(&row, CKU_SO, so_pin.as_bytes())?;
            self.module
                .init_pin(session.handle, user_pin.as_bytes())
                .map_err(|e| self.pin_failure(PinOwner::User, label, e))?;
        }
        // Read again: `row` was read before the user PIN was set.
        let summary = self.token_summary(&self.token(label)?)?;
        if self.options.json {
            return Ok(output::json(&summary.to_json()));
        }
        Ok(format!(
            "token {:?} initialized in slot {} (serial {})\n",
            summary.label, summary.slot, summary.serial
        ))
    }

    /// The template of the `destroyed` event each key of a deleted token gets.
    fn token_deleted(&self, token: uuid::Uuid, label: &str, reason: &str) -> KeyEvent {
        let mut event = crate::core::lifecycle::event(
            "",
            token,
            "destroyed",
            None,
            Some(json!({ "reason": reason, "token": label })),
        );
        event.actor = self.actor.clone();
        event
    }

    /// Deletes a token and all its keys and objects, after checking the SO PIN. Each key's
    /// history gets a `destroyed` event (the history outlives the token) in the transaction
    /// that deletes the key.
    /// Asks first (`yes` skips the question; without a terminal it must be given).
    pub fn token_delete(&self, label: &str, yes: bool) -> AdminResult<String> {
        let row = self.token(label)?;
        let summary = self.token_summary(&row)?;
        confirm(
            &format!(
                "Delete token {label:?} and its {} key(s)? Their material is gone for good.",
                summary.asym_keys + summary.sym_keys
            ),
            yes,
        )?;
        let so_pin = self.options.pins.pin(PinOwner::So, label)?;
        self.module
            .verify_pin(row.id, PinOwner::So, so_pin.as_bytes())
            .map_err(|e| self.pin_failure(PinOwner::So, label, e))?;
        // REMOTE keys go with their token: their remote objects are destroyed (or kept and
        // marked, as the provider says).
        self.module.retire_all_remote(row.id)?;
        let keys = self
            .storage
            .delete_token(row.id, &self.token_deleted(row.id, label, "token deleted"))?;
        Ok(format!("token {label:?} deleted with its {keys} key(s)\n"))
    }
}

/// Whose PIN `token set-pin` changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinChange {
    /// The user changes the user PIN, proving the current one (`C_SetPIN` as the user).
    UserOwn,
    /// The SO sets a new user PIN, e.g. a forgotten or locked one (`C_InitPIN`).
    UserBySo,
    /// The SO changes the SO PIN, proving the current one (`C_SetPIN` as the SO).
    So,
}

impl Admin {
    /// `token set-pin`: the current PIN (or the SO's) from its source, the new one from
    /// `--new-pin-file`, `SQLHSM_NEW_PIN` or the terminal.
    pub fn token_set_pin(&self, label: &str, change: PinChange) -> AdminResult<String> {
        let row = self.token(label)?;
        let changed = match change {
            PinChange::UserOwn | PinChange::UserBySo => PinOwner::User,
            PinChange::So => PinOwner::So,
        };
        let acting = match change {
            PinChange::UserOwn => PinOwner::User,
            PinChange::UserBySo | PinChange::So => PinOwner::So,
        };
        let current = self.options.pins.pin(acting, label)?;
        let new = self.options.pins.replacement(changed, label)?;
        self.check_new_pin(changed, &new)?;
        match change {
            PinChange::UserOwn => {
                // C_SetPIN with nobody logged in changes the user PIN, checking the old one (a
                // guess counted like a login).
                let session = self.public_session(&row)?;
                self.module
                    .set_pin(session.handle, current.as_bytes(), new.as_bytes())
                    .map_err(|e| self.pin_failure(PinOwner::User, label, e))?;
            }
            PinChange::UserBySo => {
                let session = self.session_as(&row, CKU_SO, current.as_bytes())?;
                self.module
                    .init_pin(session.handle, new.as_bytes())
                    .map_err(|e| self.pin_failure(PinOwner::User, label, e))?;
            }
            PinChange::So => {
                let session = self.session_as(&row, CKU_SO, current.as_bytes())?;
                self.module
                    .set_pin(session.handle, current.as_bytes(), new.as_bytes())
                    .map_err(|e| self.pin_failure(PinOwner::So, label, e))?;
            }
        }
        if self.options.json {
            return Ok(output::json(
                &self.token_summary(&self.token(label)?)?.to_json(),
            ));
        }
        Ok(match change {
            PinChange::UserBySo => {
                format!(
                    "the SO set a new user PIN on token {label:?} (its failure count is cleared)\n"
                )
            }
            _ => format!("the {} PIN of token {label:?} is changed\n", who(changed)),
        })
    }

    /// `token unlock`: the SO clears the user PIN's failure count (a lockout) without changing
    /// the PIN.
    pub fn token_unlock(&self, label: &str) -> AdminResult<String> {
        let row = self.token(label)?;
        let session = self.so_session(&row)?;
        let before = self
            .module
            .unlock_user_pin(session.handle)
            .map_err(|e| self.pin_failure(PinOwner::User, label, e))?;
        drop(session);
        if self.options.json {
            let mut shown = self.token_summary(&self.token(label)?)?.to_json();
            shown["failures_cleared"] = json!(before);
            return Ok(output::json(&shown));
        }
        Ok(format!(
            "the user PIN of token {label:?} is unlocked ({before} failed attempt(s) cleared)\n"
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::crypto::kdf::ScryptParams;

    /// `Module::unlock_user_pin`: the SO only, in an R/W session; the count is cleared and the
    /// PIN stays.
    #[test]
    fn only_the_so_unlocks_and_the_pin_stays() {
        use crate::admin::pins::PinSource;
        use crate::admin::Options;
        use crate::config::{Config, DatabaseConfig};
        use crate::error::Rv;
        let dir = tempfile::tempdir().unwrap();
        let (user, so) = (dir.path().join("user"), dir.path().join("so"));
        std::fs::write(&user, "user-1234").unwrap();
        std::fs::write(&so, "so-123456").unwrap();
        let mut config = Config::default();
        config.security.pin_kdf_log_n = 10;
        config.security.max_pin_failures = 2;
        config.database = DatabaseConfig::with_url("sqlite::memory:");
        let storage = crate::storage::open(&config.database).unwrap();
        let options = Options {
            pins: PinSource {
                user_file: Some(user),
                so_file: Some(so),
                new_file: None,
            },
            ..Options::default()
        };
        let admin = Admin::with_storage(config, storage, options).unwrap();
        admin.token_init("t", None).unwrap();
        let row = admin.token("t").unwrap();
        for _ in 0..2 {
            let e = admin
                .module
                .verify_pin(row.id, PinOwner::User, b"wrong-1")
                .unwrap_err();
            assert_eq!(e.rv(), Rv::PIN_INCORRECT);
        }
        let e = admin
            .module
            .verify_pin(row.id, PinOwner::User, b"user-1234")
            .unwrap_err();
        assert_eq!(e.rv(), Rv::PIN_LOCKED);
        {
            let public = admin.public_session(&row).unwrap();
            let e = admin.module.unlock_user_pin(public.handle).unwrap_err();
            assert_eq!(e.rv(), Rv::USER_NOT_LOGGED_IN, "not without the SO");
        }
        {
            let so = admin.so_session(&row).unwrap();
            assert_eq!(admin.module.unlock_user_pin(so.handle).unwrap(), 2);
        }
        admin
            .module
            .verify_pin(row.id, PinOwner::User, b"user-1234")
            .unwrap();
        assert_eq!(
            admin
                .token_summary(&admin.token("t").unwrap())
                .unwrap()
                .user_pin,
            "ok"
        );
    }

    #[test]
    fn pin_states() {
        let params = ScryptParams {
            log_n: 10,
            r: 8,
            p: 1,
        };
        let (mut record, _) =
            TokenRecord::create(uuid::Uuid::new_v4(), 1, b"so-pin", params).unwrap();
        assert_eq!(pin_state(&record, PinOwner::User, 5), "not set");
        assert_eq!(pin_state(&record, PinOwner::So, 5), "ok");
        record.so_failures = 2;
        assert_eq!(pin_state(&record, PinOwner::So, 5), "2 failed");
        record.so_failures = 4;
        assert_eq!(pin_state(&record, PinOwner::So, 5), "final try");
        record.so_failures = 5;
        assert_eq!(pin_state(&record, PinOwner::So, 5), "locked");
    }
}

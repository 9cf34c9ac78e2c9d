//! Slot and token management (PKCS#11 3.0 §5.5).

use chrono::Utc;
use cryptoki_sys::*;
use uuid::Uuid;

use super::{CK_MECHANISM_TYPE, CK_SESSION_HANDLE, CK_SLOT_ID};
use crate::core::module::{module, Login, Module};
use crate::core::pins::padded;
use crate::core::session::LoginKind;
use crate::core::token::{seal_token_key, PinOwner, TokenRecord};
use crate::error::{Error, Result, Rv, StorageError};
use crate::mechanism;
use crate::storage::TokenRow;

pub fn get_slot_list(token_present: bool) -> Result<Vec<CK_SLOT_ID>> {
    module()?.slot_list(token_present)
}

pub fn get_slot_info(slot: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
    module()?.slot_info(slot)
}

pub fn get_token_info(slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
    module()?.token_info(slot)
}

/// The mechanisms of the slot's token: the registry, or for a REMOTE token what both sqlhsm and
/// the remote module can do (see `core::token_mechanisms`).
pub fn get_mechanism_list(slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>> {
    let module = module()?;
    let token = module.slot_token(slot)?;
    Ok(module
        .token_mechanisms(token)?
        .into_iter()
        .map(|(kind, _)| kind)
        .collect())
}

pub fn get_mechanism_info(
    slot: CK_SLOT_ID,
    mechanism: CK_MECHANISM_TYPE,
) -> Result<CK_MECHANISM_INFO> {
    let module = module()?;
    let token = module.slot_token(slot)?;
    if mechanism::lookup(mechanism).is_none() {
        Err(Rv::MECHANISM_INVALID)? // without asking a REMOTE token's module
    }
    let offered = module.token_mechanisms(token)?;
    let (_, info) = offered
        .into_iter()
        .find(|(kind, _)| *kind == mechanism)
        .ok_or(Rv::MECHANISM_INVALID)?;
    Ok(info)
}

/// `C_WaitForSlotEvent`: with `CKF_DONT_BLOCK`, `CKR_NO_EVENT` when no token was created or
/// deleted since the last event; without, waits for one (see `core::slot_events`).
pub fn wait_for_slot_event(flags: CK_FLAGS) -> Result<CK_SLOT_ID> {
    crate::core::slot_events::wait_for_slot_event(flags & CKF_DONT_BLOCK != 0)
}

/// `label` is the caller's 32-byte, blank-padded label.
pub fn init_token(slot: CK_SLOT_ID, so_pin: &[u8], label: &[u8; 32]) -> Result<()> {
    module()?.init_token(slot, so_pin, label)
}

pub fn init_pin(session: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
    module()?.init_pin(session, pin)
}

pub fn set_pin(session: CK_SESSION_HANDLE, old_pin: &[u8], new_pin: &[u8]) -> Result<()> {
    module()?.set_pin(session, old_pin, new_pin)
}

/// The label as stored: the caller's 32 bytes without trailing blanks.
fn label_text(label: &[u8; 32]) -> Result<String> {
    let text = std::str::from_utf8(label).map_err(|_| Rv::ARGUMENTS_BAD)?;
    Ok(text.trim_end_matches([' ', '\0']).to_string())
}

impl Module {
    pub fn slot_list(&self, token_present: bool) -> Result<Vec<CK_SLOT_ID>> {
        let _ = token_present; // every slot has a token present (the empty one, uninitialized)
        self.refresh_slots()?;
        let slots = self.slots.read()?;
        let mut list: Vec<CK_SLOT_ID> = slots.tokens.keys().copied().collect();
        list.push(slots.empty_slot);
        Ok(list)
    }

    pub fn slot_info(&self, slot: CK_SLOT_ID) -> Result<CK_SLOT_INFO> {
        self.slot_token(slot)?;
        Ok(CK_SLOT_INFO {
            slotDescription: padded(&format!("sqlhsm slot {slot}")),
            manufacturerID: padded(crate::core::MANUFACTURER),
            flags: CKF_TOKEN_PRESENT,
            hardwareVersion: crate::core::version(),
            firmwareVersion: crate::core::version(),
        })
    }

    pub fn token_info(&self, slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
        let token = self.slot_token(slot)?;
        let mut info = CK_TOKEN_INFO {
            label: [b' '; 32],
            manufacturerID: padded(crate::core::MANUFACTURER),
            model: padded("sqlhsm"),
            serialNumber: [b' '; 16],
            flags: CKF_RNG | CKF_LOGIN_REQUIRED,
            ulMaxSessionCount: CK_EFFECTIVELY_INFINITE,
            ulSessionCount: 0,
            ulMaxRwSessionCount: CK_EFFECTIVELY_INFINITE,
            ulRwSessionCount: 0,
            ulMaxPinLen: CK_ULONG::from(self.config.security.max_pin_len),
            ulMinPinLen: CK_ULONG::from(self.config.security.min_pin_len),
            ulTotalPublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePublicMemory: CK_UNAVAILABLE_INFORMATION,
            ulTotalPrivateMemory: CK_UNAVAILABLE_INFORMATION,
            ulFreePrivateMemory: CK_UNAVAILABLE_INFORMATION,
            hardwareVersion: crate::core::version(),
            firmwareVersion: crate::core::version(),
            utcTime: [b' '; 16],
        };
        if self.storage.read_only().is_some() {
            // Reads work, writes answer CKR_TOKEN_WRITE_PROTECTED (sessions may still be R/W).
            info.flags |= CKF_WRITE_PROTECTED;
        }
        let Some(token) = token else { return Ok(info) };
        let (row, record) = self.token_row(token)?;
        let sessions = self.sessions_of(token)?;
        info.label = padded(&row.provider_name);
        info.serialNumber = padded(&record.serial);
        info.ulSessionCount = sessions.len() as CK_ULONG;
        info.ulRwSessionCount = sessions.iter().filter(|(_, rw)| *rw).count() as CK_ULONG;
        info.flags |= CKF_TOKEN_INITIALIZED | CKF_RESTORE_KEY_NOT_NEEDED;
        let max = self.max_failures();
        if record.user.is_some() {
            info.flags |= CKF_USER_PIN_INITIALIZED;
        }
        for (owner, count_low, final_try, locked) in [
            (
                PinOwner::User,
                CKF_USER_PIN_COUNT_LOW,
                CKF_USER_PIN_FINAL_TRY,
                CKF_USER_PIN_LOCKED,
            ),
            (
                PinOwner::So,
                CKF_SO_PIN_COUNT_LOW,
                CKF_SO_PIN_FINAL_TRY,
                CKF_SO_PIN_LOCKED,
            ),
        ] {
            let failures = record.failures(owner);
            if failures >= max {
                info.flags |= locked;
            } else if failures + 1 == max {
                info.flags |= final_try | count_low;
            } else if failures > 0 {
                info.flags |= count_low;
            }
        }
        Ok(info)
    }

    pub fn init_token(&self, slot: CK_SLOT_ID, so_pin: &[u8], label: &[u8; 32]) -> Result<()> {
        self.check_pin(so_pin)?;
        let label = label_text(label)?;
        match self.slot_token(slot)? {
            None => self.create_token(slot, so_pin, &label),
            Some(token) => self.reinit_token(token, so_pin, &label),
        }
    }

    fn create_token(&self, slot: CK_SLOT_ID, so_pin: &[u8], label: &str) -> Result<()> {
        let id = Uuid::new_v4();
        let (record, _key) = TokenRecord::create(id, slot, so_pin, self.scrypt_params())?;
        let now = Utc::now();
        let row = TokenRow {
            id,
            provider_name: label.to_string(),
            config: record.to_json()?,
            metadata: serde_json::json!({ "created_by": "C_InitToken" }),
            created_at: now,
            updated_at: now,
        };
        match self.storage.insert_token(&row) {
            Ok(()) => {}
            Err(StorageError::Conflict(what)) => {
                tracing::warn!(%label, %what, "C_InitToken: label or slot already taken");
                Err(Rv::ARGUMENTS_BAD)?
            }
            Err(e) => Err(e)?,
        }
        tracing::info!(%label, slot, "token created");
        self.refresh_slots()
    }

    fn reinit_token(&self, token: Uuid, so_pin: &[u8], label: &str) -> Result<()> {
        if !self.sessions_of(token)?.is_empty() {
            Err(Rv::SESSION_EXISTS)?
        }
        let (_, root) = self.open_with_pin(token, PinOwner::So, so_pin)?;
        let (row, _) = self.token_row(token)?;
        if row.provider_name != label {
            self.storage
                .rename_token(token, label)
                .map_err(|e| match e {
                    StorageError::Conflict(_) => Error::from(Rv::ARGUMENTS_BAD),
                    other => other.into(),
                })?;
        }
        // Re-initialisation destroys every object and the user PIN; the token key is replaced
        // so nothing sealed before can be opened again.
        self.retire_all_remote(token)?;
        let reason = serde_json::json!({ "reason": "token re-initialized", "token": label });
        let destroyed = self.history_event("", token, "destroyed", None, Some(reason));
        self.storage.delete_token_keys(token, &destroyed)?;
        let params = self.scrypt_params();
        let (mut fresh, key) = TokenRecord::create(token, 0, so_pin, params)?;
        if let Some(root) = root {
            fresh.so = seal_token_key(&key, token, PinOwner::So, so_pin, params, Some(&root))?;
        }
        self.update_record(token, &mut |r| {
            r.so = fresh.so.clone();
            r.token_key_id = fresh.token_key_id.clone();
            r.user = None;
            r.clear_attempts(PinOwner::So);
            r.clear_attempts(PinOwner::User);
            Ok(())
        })?;
        self.logout_token(token)?;
        tracing::info!(%label, "token re-initialized");
        Ok(())
    }

    pub fn init_pin(&self, session: CK_SESSION_HANDLE, pin: &[u8]) -> Result<()> {
        let (_, token, read_write) = self.session_basics(session)?;
        let login = self.login_of(token)?;
        let Login::So(key) = login else {
            Err(Rv::USER_NOT_LOGGED_IN)?
        };
        if !read_write {
            Err(Rv::SESSION_READ_ONLY)?
        }
        self.check_pin(pin)?;
        let (row, record) = self.token_row(token)?;
        let root = self.root_secret(&row, &record)?;
        let sealed = seal_token_key(
            &key,
            token,
            PinOwner::User,
            pin,
            self.scrypt_params(),
            root.as_deref(),
        )?;
        self.update_record(token, &mut |r| {
            r.user = Some(sealed.clone());
            r.clear_attempts(PinOwner::User);
            Ok(())
        })?;
        Ok(())
    }

    pub fn set_pin(
        &self,
        session: CK_SESSION_HANDLE,
        old_pin: &[u8],
        new_pin: &[u8],
    ) -> Result<()> {
        let (_, token, read_write) = self.session_basics(session)?;
        if !read_write {
            Err(Rv::SESSION_READ_ONLY)?
        }
        self.check_pin(new_pin)?;
        let owner = match self.login_of(token)?.kind() {
            LoginKind::So => PinOwner::So,
            LoginKind::User | LoginKind::Public => PinOwner::User,
        };
        let (key, root) = self.open_with_pin(token, owner, old_pin)?;
        let sealed = seal_token_key(
            &key,
            token,
            owner,
            new_pin,
            self.scrypt_params(),
            root.as_deref(),
        )?;
        self.update_record(token, &mut |r| {
            match owner {
                PinOwner::So => r.so = sealed.clone(),
                PinOwner::User => r.user = Some(sealed.clone()),
            }
            Ok(())
        })?;
        Ok(())
    }
}

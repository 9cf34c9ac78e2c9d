//! Slot, token and login functions of the module (PKCS#11 3.0 §5.5, §5.6): `C_InitToken`,
//! `C_InitPIN`, `C_SetPIN`, `C_Login`, `C_Logout` and the info structures.

use std::sync::Arc;

use chrono::Utc;
use cryptoki_sys::*;
use uuid::Uuid;

use super::module::{Login, Module};
use super::pin_attempts::{self, Reservation, Settlement, Verdict};
use super::session::LoginKind;
use super::token::{
    check_pin_len, open_token_key, seal_token_key, PinOwner, TokenKey, TokenRecord,
};
use crate::crypto::kdf::ScryptParams;
use crate::error::{Error, Result, Rv, StorageError};
use crate::provider::root::RootSecret;
use crate::storage::TokenRow;

/// Copies `text` into a blank-padded fixed-size PKCS#11 string field.
pub fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let bytes = text.as_bytes();
    let n = bytes.len().min(N);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// The label as stored: the caller's 32 bytes without trailing blanks.
fn label_text(label: &[u8; 32]) -> Result<String> {
    let text = std::str::from_utf8(label).map_err(|_| Rv::ARGUMENTS_BAD)?;
    Ok(text.trim_end_matches([' ', '\0']).to_string())
}

impl Module {
    fn scrypt_params(&self) -> ScryptParams {
        ScryptParams {
            log_n: self.config.security.pin_kdf_log_n,
            ..ScryptParams::default()
        }
    }

    fn max_failures(&self) -> u32 {
        self.config.security.max_pin_failures
    }

    fn check_pin(&self, pin: &[u8]) -> Result<()> {
        check_pin_len(
            pin,
            self.config.security.min_pin_len as usize,
            self.config.security.max_pin_len as usize,
        )
    }

    /// Verifies `pin` for `owner`. The guess is reserved in the store before the derivation runs
    /// and settled after it (`core::pin_attempts`), so however many processes and hosts guess at
    /// once, at most `max_pin_failures` guesses are evaluated before `CKR_PIN_LOCKED`.
    pub fn verify_pin(&self, token: Uuid, owner: PinOwner, pin: &[u8]) -> Result<TokenKey> {
        self.open_with_pin(token, owner, pin).map(|(key, _)| key)
    }

    /// [`Module::verify_pin`], also returning the root secret the remote module opened for a
    /// PROVIDER_ROOT_KEY token, so a PIN change re-seals without asking the HSM twice.
    fn open_with_pin(
        &self,
        token: Uuid,
        owner: PinOwner,
        pin: &[u8],
    ) -> Result<(TokenKey, Option<RootSecret>)> {
        let (row, record) = self.token_row(token)?;
        if record.is_locked(owner, self.max_failures()) && record.attempts(owner).is_empty() {
            Err(Rv::PIN_LOCKED)?
        }
        let pin_record = record.pin(owner).ok_or(Rv::USER_PIN_NOT_INITIALIZED)?;
        // A PROVIDER_ROOT_KEY token needs its remote module for every PIN check: without it
        // the answer is CKR_DEVICE_ERROR and no guess is reserved, so none is counted.
        let root = match pin_record.root_bound {
            true => self.root_secret(&row, &record)?,
            false => None,
        };
        let (attempt, record) = self.reserve_pin_attempt(token, owner)?;
        let pin_record = record.pin(owner).ok_or(Rv::USER_PIN_NOT_INITIALIZED)?;
        let opened = open_token_key(pin_record, token, owner, pin, root.as_deref());
        let verdict = match &opened {
            Ok(Some(_)) => Verdict::Correct,
            Ok(None) => Verdict::Wrong,
            Err(_) => Verdict::NotEvaluated,
        };
        let settled = self.settle_pin_attempt(token, owner, &attempt, verdict);
        match (opened?, settled) {
            (Some(key), Ok(Settlement::LoggedIn)) => Ok((key, root)),
            (Some(_), Ok(_)) => Err(Rv::PIN_LOCKED)?,
            // A correct PIN whose success cannot be written stays counted as a wrong guess.
            (Some(_), Err(e)) => Err(e),
            (None, settled) => {
                if let Err(e) = settled {
                    // The reservation already counts the failure; only the bookkeeping is late.
                    tracing::warn!(token = %row.provider_name, ?owner, error = %e, "cannot settle a wrong PIN guess; it stays counted");
                }
                tracing::warn!(token = %row.provider_name, ?owner, "wrong PIN");
                Err(Rv::PIN_INCORRECT)?
            }
        }
    }

    /// Reserves one guess of `owner`'s PIN, waiting while the limit is reached only by guesses
    /// still in flight. Returns the reservation and the record as stored with it.
    fn reserve_pin_attempt(&self, token: Uuid, owner: PinOwner) -> Result<(String, TokenRecord)> {
        let max = self.max_failures();
        let deadline = std::time::Instant::now()
            + std::time::Duration::from_millis(pin_attempts::ATTEMPT_TTL_MS.unsigned_abs() + 1000);
        loop {
            let mut outcome = Reservation::Locked;
            let record = self.update_record(token, &mut |r| {
                r.pin(owner).ok_or(Rv::USER_PIN_NOT_INITIALIZED)?;
                outcome = r.reserve_attempt(owner, max, Utc::now().timestamp_millis());
                Ok(())
            })?;
            match outcome {
                Reservation::Granted(id) => return Ok((id, record)),
                Reservation::Locked => Err(Rv::PIN_LOCKED)?,
                // Guesses in flight expire within the TTL, so this ends before the deadline.
                Reservation::Wait if std::time::Instant::now() < deadline => {
                    // Nothing is held while waiting, so a fork need not wait for this login.
                    super::fork::outside(|| {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    });
                }
                Reservation::Wait => Err(Rv::PIN_LOCKED)?,
            }
        }
    }

    fn settle_pin_attempt(
        &self,
        token: Uuid,
        owner: PinOwner,
        attempt: &str,
        verdict: Verdict,
    ) -> Result<Settlement> {
        let max = self.max_failures();
        let mut settlement = Settlement::Recorded;
        self.update_record(token, &mut |r| {
            let now = Utc::now().timestamp_millis();
            settlement = r.settle_attempt(owner, attempt, verdict, max, now);
            Ok(())
        })?;
        Ok(settlement)
    }

    /// Read-modify-write of a token record in one storage transaction.
    pub fn update_record(
        &self,
        token: Uuid,
        update: &mut dyn FnMut(&mut TokenRecord) -> Result<()>,
    ) -> Result<TokenRecord> {
        let stored = self.storage.update_token_config(token, &mut |config| {
            let mut record = TokenRecord::from_json(config)?;
            update(&mut record)?;
            *config = record.to_json()?;
            Ok(())
        })??;
        TokenRecord::from_json(&stored)
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

    pub fn login(
        &self,
        session: CK_SESSION_HANDLE,
        user_type: CK_USER_TYPE,
        pin: Option<&[u8]>,
    ) -> Result<()> {
        let (_, token, _) = self.session_basics(session)?;
        let pin = pin.ok_or(Rv::ARGUMENTS_BAD)?;
        let state = self.token_state(token)?;
        let current = state.login.read()?.kind();
        let owner = match user_type {
            CKU_SO => PinOwner::So,
            CKU_USER => PinOwner::User,
            CKU_CONTEXT_SPECIFIC => {
                // PKCS#11 3.0 §4.9, §5.6: the user's PIN once more, for the operations this
                // session has just initialised (a CKA_ALWAYS_AUTHENTICATE key waits for it); it
                // counts for those operations only. With none active there is nothing to
                // authenticate. A wrong PIN counts as a failure like any other.
                let handle = self.session(session)?;
                if !handle.lock()?.has_keyed_operation() {
                    Err(Rv::OPERATION_NOT_INITIALIZED)?
                }
                if current != LoginKind::User {
                    Err(Rv::USER_NOT_LOGGED_IN)?
                }
                self.verify_pin(token, PinOwner::User, pin)?;
                if !handle.lock()?.grant_context_login() {
                    // The operation ended while the PIN was being checked.
                    Err(Rv::OPERATION_NOT_INITIALIZED)?
                }
                return Ok(());
            }
            _ => Err(Rv::USER_TYPE_INVALID)?,
        };
        match (current, owner) {
            (LoginKind::User, PinOwner::User) | (LoginKind::So, PinOwner::So) => {
                Err(Rv::USER_ALREADY_LOGGED_IN)?
            }
            (LoginKind::User, PinOwner::So) | (LoginKind::So, PinOwner::User) => {
                Err(Rv::USER_ANOTHER_ALREADY_LOGGED_IN)?
            }
            _ => {}
        }
        if owner == PinOwner::So && self.sessions_of(token)?.iter().any(|(_, rw)| !rw) {
            Err(Rv::SESSION_READ_ONLY_EXISTS)?
        }
        let (_, record) = self.token_row(token)?;
        if owner == PinOwner::User && record.user.is_none() {
            Err(Rv::USER_PIN_NOT_INITIALIZED)?
        }
        let key = Arc::new(self.verify_pin(token, owner, pin)?);
        let mut login = state.login.write()?;
        if login.kind() != LoginKind::Public {
            // Another thread logged in while the PIN was being derived.
            Err(Rv::USER_ALREADY_LOGGED_IN)?
        }
        *login = match owner {
            PinOwner::So => Login::So(key),
            PinOwner::User => Login::User(key),
        };
        Ok(())
    }

    pub fn logout(&self, session: CK_SESSION_HANDLE) -> Result<()> {
        let (_, token, _) = self.session_basics(session)?;
        if self.login_of(token)?.kind() == LoginKind::Public {
            Err(Rv::USER_NOT_LOGGED_IN)?
        }
        self.logout_token(token)
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

    /// The SO clears the user PIN's failure counter without changing the PIN (the admin
    /// command's `token unlock`; PKCS#11 has no call for it, `C_InitPIN` unlocks by setting a
    /// new PIN). Guesses still being evaluated keep counting until they settle, as after a
    /// correct guess. Returns the failures counted before.
    pub fn unlock_user_pin(&self, session: CK_SESSION_HANDLE) -> Result<u32> {
        let (_, token, read_write) = self.session_basics(session)?;
        let Login::So(_) = self.login_of(token)? else {
            Err(Rv::USER_NOT_LOGGED_IN)?
        };
        if !read_write {
            Err(Rv::SESSION_READ_ONLY)?
        }
        let mut before = 0;
        self.update_record(token, &mut |r| {
            r.pin(PinOwner::User).ok_or(Rv::USER_PIN_NOT_INITIALIZED)?;
            before = r.failures(PinOwner::User);
            r.forgive_failures(PinOwner::User, Utc::now().timestamp_millis());
            Ok(())
        })?;
        let (row, _) = self.token_row(token)?;
        tracing::info!(token = %row.provider_name, failures = before, "user PIN unlocked by the SO");
        Ok(before)
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
            manufacturerID: padded(super::MANUFACTURER),
            flags: CKF_TOKEN_PRESENT,
            hardwareVersion: super::version(),
            firmwareVersion: super::version(),
        })
    }

    pub fn token_info(&self, slot: CK_SLOT_ID) -> Result<CK_TOKEN_INFO> {
        let token = self.slot_token(slot)?;
        let mut info = CK_TOKEN_INFO {
            label: [b' '; 32],
            manufacturerID: padded(super::MANUFACTURER),
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
            hardwareVersion: super::version(),
            firmwareVersion: super::version(),
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
}

//! A token's PINs (PKCS#11 3.0 §5.5, §5.6): their length rule and KDF settings, verification
//! with exact lockout (`pin_attempts`), changes of the token record, and the SO's unlock of the
//! user PIN. `C_InitToken`, `C_InitPIN`, `C_SetPIN` (`api::slot`) and `C_Login` (`api::session`)
//! are built on these.

use chrono::Utc;
use cryptoki_sys::*;
use uuid::Uuid;

use super::module::{Login, Module};
use super::pin_attempts::{self, Reservation, Settlement, Verdict};
use super::token::{check_pin_len, open_token_key, PinOwner, TokenKey, TokenRecord};
use crate::crypto::kdf::ScryptParams;
use crate::error::{Result, Rv};
use crate::provider::root::RootSecret;

/// Copies `text` into a blank-padded fixed-size PKCS#11 string field.
pub fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [b' '; N];
    let bytes = text.as_bytes();
    let n = bytes.len().min(N);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

impl Module {
    pub fn scrypt_params(&self) -> ScryptParams {
        ScryptParams {
            log_n: self.config.security.pin_kdf_log_n,
            ..ScryptParams::default()
        }
    }

    pub fn max_failures(&self) -> u32 {
        self.config.security.max_pin_failures
    }

    pub fn check_pin(&self, pin: &[u8]) -> Result<()> {
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
    pub fn open_with_pin(
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
}

//! What every cryptographic operation shares (PKCS#11 3.0 §5.8–5.11, §5.13): the `*Init`
//! checks (mechanism, key visibility, usage flag, allowed mechanisms), the spec's operation-state
//! rules, and the two-call output convention for single-part and multi-part calls. The
//! functions of each chapter read in `api::crypt`, `api::sign`, `api::digest`, `api::random`.
//!
//! The hot path (`C_Sign` on an initialized operation) touches only its own session's mutex: the
//! key was resolved and its material unsealed (or taken from the cache) at `C_SignInit`.

use std::sync::{Arc, Mutex};

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::access::Access;
use super::module::Module;
use super::session::{
    Checked, CipherState, ContextLogin, DigestState, Guarded, KeyGuard, RecoverState, Session,
    SignState,
};
use crate::error::{Result, Rv};
use crate::mechanism::{self, KeyMaterial, MechanismEntry};
use crate::types::{Mechanism, OutBuf};

/// An operation that can hold a result computed for a buffer that was too small.
pub(crate) trait HoldsPending {
    fn pending(&mut self) -> &mut Option<Zeroizing<Vec<u8>>>;
}

macro_rules! holds_pending {
    ($($state:ty),*) => {
        $(impl HoldsPending for $state {
            fn pending(&mut self) -> &mut Option<Zeroizing<Vec<u8>>> {
                &mut self.pending
            }
        })*
    };
}
holds_pending!(SignState, CipherState, DigestState, RecoverState);

/// An operation state that may be waiting for a context-specific login.
pub(crate) trait LoginGate {
    fn login_pending(&self) -> bool;
}

impl<S: Guarded> LoginGate for S {
    fn login_pending(&self) -> bool {
        self.guard().context_login == ContextLogin::Pending
    }
}

impl LoginGate for DigestState {
    fn login_pending(&self) -> bool {
        false // no key, nothing to authenticate
    }
}

/// The active operation of `slot`, for any call after its `*Init`: `CKR_OPERATION_NOT_INITIALIZED`
/// without one; `CKR_USER_NOT_LOGGED_IN` (ending the operation, as every failed call does) while
/// its `CKA_ALWAYS_AUTHENTICATE` key still waits for the context-specific login (PKCS#11 3.0
/// §4.9). A length query counts as a use too.
pub(crate) fn active<S: LoginGate>(slot: &mut Option<S>) -> Result<&mut S> {
    if slot.as_ref().is_some_and(LoginGate::login_pending) {
        *slot = None;
        Err(Rv::USER_NOT_LOGGED_IN)?
    }
    slot.as_mut()
        .ok_or_else(|| Rv::OPERATION_NOT_INITIALIZED.into())
}

/// The end of a single-part call or a `*Final`: answers a length query with `bound` (the
/// operation stays active), computes once, hands the result out, and keeps it for the retry when
/// the caller's buffer is too small. Any other error ends the operation, as the spec requires.
pub(crate) fn deliver<S: HoldsPending + LoginGate>(
    slot: &mut Option<S>,
    out: &mut OutBuf<'_>,
    bound: impl FnOnce(&S) -> usize,
    compute: impl FnOnce(&mut S) -> Result<Zeroizing<Vec<u8>>>,
) -> Result<()> {
    let state = active(slot)?;
    if out.is_query() {
        let needed = match state.pending() {
            Some(p) => p.len(),
            None => bound(state),
        };
        out.reserve(needed)?;
        return Ok(());
    }
    let computed = match state.pending().take() {
        Some(p) => Ok(p),
        None => compute(state),
    };
    let bytes = match computed {
        Ok(bytes) => bytes,
        Err(e) => {
            *slot = None;
            return Err(e);
        }
    };
    match out.fill(&bytes) {
        Err(e) if e.rv() == Rv::BUFFER_TOO_SMALL => {
            if let Some(state) = slot.as_mut() {
                *state.pending() = Some(bytes);
            }
            Err(e)
        }
        other => {
            *slot = None;
            other.map(|_| ())
        }
    }
}

/// Runs one step of a multi-part operation; an error ends the operation.
pub(crate) fn step<S: LoginGate, T>(
    slot: &mut Option<S>,
    run: impl FnOnce(&mut S) -> Result<T>,
) -> Result<T> {
    let state = active(slot)?;
    let result = run(state);
    if result.is_err() {
        *slot = None;
    }
    result
}

impl Module {
    /// The registry entry of `mechanism` if this module offers it: `[policy]` withholds the
    /// mechanisms it has not allowed (single DES), which are then `CKR_MECHANISM_INVALID`
    /// everywhere and absent from `C_GetMechanismList`.
    pub(crate) fn entry(&self, mechanism: &Mechanism) -> Result<&'static MechanismEntry> {
        self.offered_entry(mechanism.kind)
    }

    /// [`Module::entry`] by mechanism number.
    pub(crate) fn offered_entry(
        &self,
        kind: cryptoki_sys::CK_MECHANISM_TYPE,
    ) -> Result<&'static MechanismEntry> {
        match mechanism::lookup(kind) {
            Some(entry) if self.offers(entry) => Ok(entry),
            _ => Err(Rv::MECHANISM_INVALID)?,
        }
    }

    /// Whether the configuration lets this module offer `entry`.
    pub(crate) fn offers(&self, entry: &MechanismEntry) -> bool {
        match entry.gate {
            mechanism::Gate::Always => true,
            mechanism::Gate::SingleDes => self.config.policy.allow_single_des,
        }
    }
}

pub(crate) fn cipher_update(
    slot: &mut Option<CipherState>,
    data: &[u8],
    out: &mut OutBuf<'_>,
) -> Result<()> {
    let (multipart, bound) = {
        let state = active(slot)?;
        (state.op.multipart(), state.op.output_len(data.len(), false))
    };
    if !multipart {
        *slot = None;
        Err(Rv::FUNCTION_NOT_SUPPORTED)?
    }
    let Some(buffer) = out.space(bound)? else {
        return Ok(());
    };
    let written = step(slot, |s| {
        s.multipart = true;
        s.op.update(data, buffer)
    })?;
    out.written(written);
    Ok(())
}

pub(crate) fn cipher_final(slot: &mut Option<CipherState>, out: &mut OutBuf<'_>) -> Result<()> {
    deliver_cipher(slot, out, 0, |op, buffer| op.finish(buffer))
}

pub(crate) fn cipher_single(
    slot: &mut Option<CipherState>,
    data: &[u8],
    out: &mut OutBuf<'_>,
) -> Result<()> {
    if slot.as_ref().is_some_and(|s| s.multipart) {
        Err(Rv::OPERATION_ACTIVE)?
    }
    deliver_cipher(slot, out, data.len(), |op, buffer| op.run(data, buffer))
}

/// [`deliver`] for ciphers, which write into the caller's buffer: a length query, or a buffer
/// below an exact bound, computes nothing and keeps the operation; a large enough buffer
/// receives the output directly. Only when the bound is not exact (a padded or RSA decryption)
/// and the buffer is below it is the result computed into a zeroized scratch buffer, and kept
/// for the retry if it does not fit either — so the work is never done twice.
fn deliver_cipher(
    slot: &mut Option<CipherState>,
    out: &mut OutBuf<'_>,
    input_len: usize,
    work: impl FnOnce(&mut dyn mechanism::CipherOperation, &mut [u8]) -> Result<usize>,
) -> Result<()> {
    let state = active(slot)?;
    if let Some(kept) = &state.pending {
        let delivered = out.fill(kept);
        if matches!(delivered, Ok(false)) || is_too_small(&delivered) {
            return delivered.map(|_| ());
        }
        *slot = None;
        return delivered.map(|_| ());
    }
    let bound = state.op.output_len(input_len, true);
    let result = match out.space(bound) {
        Ok(None) => return Ok(()),
        Ok(Some(buffer)) => work(&mut *state.op, buffer),
        Err(e) if state.op.exact_len() => return Err(e),
        Err(_) => {
            let mut scratch = Zeroizing::new(vec![0u8; bound]);
            match work(&mut *state.op, &mut scratch) {
                Ok(len) => {
                    scratch.truncate(len);
                    let delivered = out.fill(&scratch);
                    if is_too_small(&delivered) {
                        state.pending = Some(scratch);
                        return delivered.map(|_| ());
                    }
                    *slot = None;
                    return delivered.map(|_| ());
                }
                Err(e) => Err(e),
            }
        }
    };
    *slot = None;
    out.written(result?);
    Ok(())
}

fn is_too_small<T>(result: &Result<T>) -> bool {
    matches!(result, Err(e) if e.rv() == Rv::BUFFER_TOO_SMALL)
}

impl Module {
    /// Resolves the key of an `*Init` (or of a wrap, unwrap, derive): visible, carrying `usage`
    /// set to true, allowed for `mechanism`; returns the object and its (cached) material. An
    /// invisible handle answers `invalid` (`CKR_KEY_HANDLE_INVALID`,
    /// `CKR_WRAPPING_KEY_HANDLE_INVALID`, …).
    pub(crate) fn usable_key(
        &self,
        access: &Access,
        key: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
        mechanism: &Mechanism,
        invalid: Rv,
    ) -> Result<(super::object::ObjectRef, KeyMaterial)> {
        let object = self.visible_object(access, key, invalid)?;
        if !object.attrs.contains(usage) {
            Err(Rv::KEY_TYPE_INCONSISTENT)?
        }
        let accepted = self.entry(mechanism)?.key_types;
        let key_type = object
            .attrs
            .ulong(CKA_KEY_TYPE)
            .unwrap_or(CK_UNAVAILABLE_INFORMATION);
        if !accepted.is_empty() && !accepted.contains(&key_type) {
            Err(Rv::KEY_TYPE_INCONSISTENT)?
        }
        if !object.attrs.flag(usage) {
            tracing::debug!(key = ?object.id, usage, "key usage flag not set");
            Err(Rv::KEY_FUNCTION_NOT_PERMITTED)?
        }
        if let Some(allowed) = object.attrs.get(CKA_ALLOWED_MECHANISMS) {
            let listed = allowed
                .chunks_exact(std::mem::size_of::<CK_ULONG>())
                .filter_map(super::attributes::decode_ulong)
                .any(|m| m == mechanism.kind);
            if !allowed.is_empty() && !listed {
                Err(Rv::MECHANISM_INVALID)?
            }
        }
        super::lifecycle::check_permitted(&object.attrs, usage)?;
        self.check_object_key_size(&object.attrs)?;
        let material = self.material(access, &object)?;
        Ok((object, material))
    }

    /// The common part of every keyed `*Init`: the operation slot must be free
    /// (`CKR_OPERATION_ACTIVE` before any key work), the key must pass [`Module::usable_key`],
    /// and `start` makes the operation from its material. An operation with a
    /// `CKA_ALWAYS_AUTHENTICATE` key starts waiting for its context-specific login. No lock is
    /// held while the key is resolved (that may read the database and unseal).
    pub(crate) fn begin<S>(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
        slot: fn(&mut Session) -> &mut Option<S>,
        start: impl FnOnce(&KeyMaterial, KeyGuard) -> Result<S>,
    ) -> Result<()> {
        let access = self.access(session)?;
        let handle = self.session(session)?;
        if slot(&mut *handle.lock()?).is_some() {
            Err(Rv::OPERATION_ACTIVE)?
        }
        let changes = self.objects.changes();
        let (object, material) =
            self.usable_key(&access, key, usage, mechanism, Rv::KEY_HANDLE_INVALID)?;
        let context_login = match object.attrs.flag(CKA_ALWAYS_AUTHENTICATE) {
            true => ContextLogin::Pending,
            false => ContextLogin::NotRequired,
        };
        let guard = KeyGuard {
            key,
            usage,
            context_login,
            checked: Checked {
                changes,
                until_ms: self.verdict_lasts_until(&object.attrs),
            },
        };
        let state = start(&material, guard)?;
        let mut guard = handle.lock()?;
        let target = slot(&mut guard);
        if target.is_some() {
            Err(Rv::OPERATION_ACTIVE)?
        }
        *target = Some(state);
        Ok(())
    }

    /// Before a single-part call: the operation's key must still exist and its status still
    /// permit the operation (another process may have deactivated it since the `*Init`). When
    /// nothing the verdict of the `*Init` rests on has changed since — no cached object changed
    /// (a change another process made counts once the coherence check has seen it) and the key
    /// has not reached its expiration — that verdict stands, and the check costs one clock
    /// reading. Otherwise the key is checked again as the store now has it. A refusal ends the
    /// operation.
    pub(crate) fn recheck<S: Guarded>(
        &self,
        session: &Arc<Mutex<Session>>,
        slot: fn(&mut Session) -> &mut Option<S>,
    ) -> Result<()> {
        let Some(guard) = slot(&mut *session.lock()?).as_ref().map(Guarded::guard) else {
            return Ok(()); // no operation: the call itself reports it
        };
        let now = self.check_coherence();
        let changes = self.objects.changes();
        if changes == guard.checked.changes && now < guard.checked.until_ms {
            return Ok(());
        }
        let verdict = (|| {
            let object = self.current_object(guard.key, Rv::KEY_HANDLE_INVALID)?;
            super::lifecycle::check_permitted(&object.attrs, guard.usage)
        })();
        if verdict.is_err() {
            *slot(&mut *session.lock()?) = None;
        }
        verdict
    }

    /// Until when (on [`Module::clock_ms`]) the passage of time leaves a key's status as it is
    /// now: its expiration, if it has one.
    fn verdict_lasts_until(&self, attrs: &super::attributes::AttrMap) -> u64 {
        let Some(expiration) = super::lifecycle::expiration_of_attrs(attrs) else {
            return u64::MAX;
        };
        let left = (expiration - chrono::Utc::now()).num_milliseconds();
        match u64::try_from(left) {
            Ok(left) => self.clock_ms().saturating_add(left),
            Err(_) => 0, // expired already: every call checks
        }
    }

    /// `CKR_OPERATION_ACTIVE` when the operation a `*Init` would start is already running.
    pub(crate) fn ensure_idle<S>(
        &self,
        session: CK_SESSION_HANDLE,
        slot: fn(&mut Session) -> &mut Option<S>,
    ) -> Result<()> {
        let handle = self.session(session)?;
        if slot(&mut *handle.lock()?).is_some() {
            Err(Rv::OPERATION_ACTIVE)?
        }
        Ok(())
    }
}

//! Session management (PKCS#11 3.0 §5.6): opening and closing sessions, their info, saved
//! operation states (digests only: see `core::op_state`), login and logout.

use std::sync::{Arc, Mutex};

use cryptoki_sys::{
    CKF_RW_SESSION, CKF_SERIAL_SESSION, CKU_CONTEXT_SPECIFIC, CKU_SO, CKU_USER, CK_SESSION_INFO,
};

use super::{CK_FLAGS, CK_SESSION_HANDLE, CK_SLOT_ID, CK_USER_TYPE};
use crate::core::handles::SESSION_HANDLES;
use crate::core::module::{module, Login, Module};
use crate::core::op_state::SavedDigest;
use crate::core::session::{session_state, DigestState, LoginKind, Replay, Session};
use crate::core::token::PinOwner;
use crate::error::{Result, Rv};
use crate::mechanism;
use crate::types::{MechanismParam, OutBuf};

pub fn open_session(slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
    module()?.open_session(slot, flags)
}

pub fn close_session(session: CK_SESSION_HANDLE) -> Result<()> {
    module()?.close_session(session)
}

pub fn close_all_sessions(slot: CK_SLOT_ID) -> Result<()> {
    module()?.close_all_sessions(slot)
}

pub fn get_session_info(session: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO> {
    let m = module()?;
    let (slot, token, read_write) = m.session_basics(session)?;
    let login = m.login_of(token)?.kind();
    let mut flags = CKF_SERIAL_SESSION;
    if read_write {
        flags |= CKF_RW_SESSION;
    }
    Ok(CK_SESSION_INFO {
        slotID: slot,
        state: session_state(login, read_write),
        flags,
        ulDeviceError: 0,
    })
}

/// `C_GetOperationState`, under the two-call rule.
pub fn get_operation_state(session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
    module()?.get_operation_state(session, out)
}

/// `C_SetOperationState`; the two key handles are 0 when no key is given.
pub fn set_operation_state(
    session: CK_SESSION_HANDLE,
    state: &[u8],
    encryption_key: cryptoki_sys::CK_OBJECT_HANDLE,
    authentication_key: cryptoki_sys::CK_OBJECT_HANDLE,
) -> Result<()> {
    module()?.set_operation_state(session, state, encryption_key, authentication_key)
}

/// `pin` is `None` when the caller passed a NULL PIN (protected authentication path).
pub fn login(
    session: CK_SESSION_HANDLE,
    user_type: CK_USER_TYPE,
    pin: Option<&[u8]>,
) -> Result<()> {
    module()?.login(session, user_type, pin)
}

/// `C_LoginUser` (3.0): sqlhsm tokens have one user, so the name carries no meaning and is
/// ignored, as the spec allows for tokens without user names.
pub fn login_user(
    session: CK_SESSION_HANDLE,
    user_type: CK_USER_TYPE,
    pin: Option<&[u8]>,
    username: Option<&[u8]>,
) -> Result<()> {
    let _ = username;
    module()?.login(session, user_type, pin)
}

pub fn logout(session: CK_SESSION_HANDLE) -> Result<()> {
    module()?.logout(session)
}

/// `C_SessionCancel` (3.0): ends the operations named by `flags` (`CKF_SIGN`, `CKF_FIND_OBJECTS`, …).
pub fn session_cancel(session: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()> {
    let m = module()?;
    let session = m.session(session)?;
    session.lock()?.cancel(flags);
    Ok(())
}

impl Module {
    pub fn open_session(&self, slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
        if flags & CKF_SERIAL_SESSION == 0 {
            Err(Rv::SESSION_PARALLEL_NOT_SUPPORTED)?
        }
        let token = self.slot_token(slot)?.ok_or(Rv::TOKEN_NOT_RECOGNIZED)?;
        let read_write = flags & CKF_RW_SESSION != 0;
        let state = self.token_state(token)?;
        if !read_write && state.login.read()?.kind() == LoginKind::So {
            Err(Rv::SESSION_READ_WRITE_SO_EXISTS)?
        }
        let handle = SESSION_HANDLES.next();
        let session = Session::new(handle, slot, token, read_write);
        self.sessions
            .write()?
            .insert(handle, Arc::new(Mutex::new(session)));
        Ok(handle)
    }

    pub fn close_session(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let session = self
            .sessions
            .write()?
            .remove(&handle)
            .ok_or(Rv::SESSION_HANDLE_INVALID)?;
        let token = session.lock()?.token;
        self.objects.remove_session_objects(handle)?;
        if self.sessions_of(token)?.is_empty() {
            // The last session closed: the application is logged out (PKCS#11 3.0 §5.6).
            self.logout_token(token)?;
        }
        Ok(())
    }

    pub fn close_all_sessions(&self, slot: CK_SLOT_ID) -> Result<()> {
        let Some(token) = self.slot_token(slot)? else {
            return Ok(());
        };
        for (handle, _) in self.sessions_of(token)? {
            match self.close_session(handle) {
                Ok(()) => {}
                Err(e) if e.rv() == Rv::SESSION_HANDLE_INVALID => {} // closed concurrently
                Err(e) => return Err(e),
            }
        }
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

    /// Saves the session's digest operation. `CKR_OPERATION_NOT_INITIALIZED` with none active,
    /// `CKR_STATE_UNSAVEABLE` while a keyed operation is active too or the digest cannot be
    /// rebuilt (more than the saveable bound digested, or a key).
    pub fn get_operation_state(
        &self,
        session: CK_SESSION_HANDLE,
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        let keyed = s.has_keyed_operation();
        let Some(digest) = s.digest.as_ref() else {
            match keyed {
                true => Err(Rv::STATE_UNSAVEABLE)?,
                false => Err(Rv::OPERATION_NOT_INITIALIZED)?,
            }
        };
        let Some(replay) = digest.replay.as_ref().filter(|_| !keyed) else {
            Err(Rv::STATE_UNSAVEABLE)?
        };
        let blob = SavedDigest {
            mechanism: replay.mechanism,
            multipart: digest.multipart,
            data: replay.data.clone(),
        }
        .encode()?;
        out.fill(&blob).map(|_| ())
    }

    /// Restores a saved digest into the session, in place of whatever operations it had.
    pub fn set_operation_state(
        &self,
        session: CK_SESSION_HANDLE,
        state: &[u8],
        encryption_key: cryptoki_sys::CK_OBJECT_HANDLE,
        authentication_key: cryptoki_sys::CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let session = self.session(session)?;
        let saved = SavedDigest::decode(state)?;
        // A digest state needs no key (§5.6: a key given that is not needed).
        if encryption_key != 0 || authentication_key != 0 {
            Err(Rv::KEY_NOT_NEEDED)?
        }
        let factory = mechanism::lookup(saved.mechanism)
            .and_then(|entry| entry.digest)
            .ok_or(Rv::SAVED_STATE_INVALID)?;
        let mut digest = DigestState {
            op: factory(&MechanismParam::None)?,
            multipart: saved.multipart,
            pending: None,
            replay: Some(Replay {
                mechanism: saved.mechanism,
                data: zeroize::Zeroizing::new(Vec::new()),
            }),
        };
        digest.update(&saved.data)?;
        let mut s = session.lock()?;
        // The state is the session's whole cryptographic state: other operations end (a
        // search is not one of them).
        s.cancel(!cryptoki_sys::CKF_FIND_OBJECTS);
        s.digest = Some(digest);
        Ok(())
    }
}

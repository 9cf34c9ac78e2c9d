//! Session management (PKCS#11 3.0 §5.6).

use cryptoki_sys::CK_SESSION_INFO;

use super::{CK_FLAGS, CK_SESSION_HANDLE, CK_SLOT_ID, CK_USER_TYPE};
use crate::error::Result;

pub fn open_session(slot: CK_SLOT_ID, flags: CK_FLAGS) -> Result<CK_SESSION_HANDLE> {
    let _ = (slot, flags);
    todo!()
}

pub fn close_session(session: CK_SESSION_HANDLE) -> Result<()> {
    let _ = session;
    todo!()
}

pub fn close_all_sessions(slot: CK_SLOT_ID) -> Result<()> {
    let _ = slot;
    todo!()
}

pub fn get_session_info(session: CK_SESSION_HANDLE) -> Result<CK_SESSION_INFO> {
    let _ = session;
    todo!()
}

/// `pin` is `None` when the caller passed a NULL PIN (protected authentication path).
pub fn login(session: CK_SESSION_HANDLE, user_type: CK_USER_TYPE, pin: Option<&[u8]>) -> Result<()> {
    let _ = (session, user_type, pin);
    todo!()
}

/// `C_LoginUser` (3.0): sqlhsm tokens have no user names, so the name must be empty or absent.
pub fn login_user(
    session: CK_SESSION_HANDLE,
    user_type: CK_USER_TYPE,
    pin: Option<&[u8]>,
    username: Option<&[u8]>,
) -> Result<()> {
    let _ = (session, user_type, pin, username);
    todo!()
}

pub fn logout(session: CK_SESSION_HANDLE) -> Result<()> {
    let _ = session;
    todo!()
}

/// `C_SessionCancel` (3.0): ends the operations named by `flags` (`CKF_SIGN`, `CKF_FIND_OBJECTS`, …).
pub fn session_cancel(session: CK_SESSION_HANDLE, flags: CK_FLAGS) -> Result<()> {
    let _ = (session, flags);
    todo!()
}

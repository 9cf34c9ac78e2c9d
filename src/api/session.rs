//! Session management (PKCS#11 3.0 §5.6).

use cryptoki_sys::{CKF_RW_SESSION, CKF_SERIAL_SESSION, CK_SESSION_INFO};

use crate::core::session::session_state;

use super::{CK_FLAGS, CK_SESSION_HANDLE, CK_SLOT_ID, CK_USER_TYPE};
use crate::core::module;
use crate::error::Result;

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

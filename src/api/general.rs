//! General-purpose functions (PKCS#11 3.0 §5.4): initialisation, finalisation, module info.

use cryptoki_sys::CK_INFO;

use crate::error::Result;

/// What `C_Initialize` received, decoded from `CK_C_INITIALIZE_ARGS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InitArgs {
    /// How many of the four mutex callbacks were non-NULL (0 or 4 are valid).
    pub mutex_callbacks: u8,
    /// `CKF_OS_LOCKING_OK` was set.
    pub os_locking_ok: bool,
    /// `pReserved` was NULL.
    pub reserved_is_null: bool,
}

pub fn initialize(args: Option<InitArgs>) -> Result<()> {
    let _ = args;
    todo!()
}

pub fn finalize() -> Result<()> {
    todo!()
}

pub fn get_info() -> Result<CK_INFO> {
    todo!()
}

//! General-purpose functions (PKCS#11 3.0 §5.4): initialisation, finalisation, module info.

use cryptoki_sys::{CK_INFO, CK_VERSION};

use crate::core::pins::padded;
use crate::error::{Error, Result, Rv};

/// What `C_Initialize` received, decoded from `CK_C_INITIALIZE_ARGS`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InitArgs {
    /// How many of the four mutex callbacks were non-NULL (0 or 4 are valid).
    pub mutex_callbacks: u8,
    /// `CKF_OS_LOCKING_OK` was set.
    pub os_locking_ok: bool,
    /// `pReserved` was NULL.
    pub reserved_is_null: bool,
    /// `CKF_LIBRARY_CANT_CREATE_OS_THREADS` was set.
    pub cant_create_threads: bool,
}

pub fn initialize(args: Option<InitArgs>) -> Result<()> {
    let options = crate::core::InitOptions {
        no_os_threads: args.is_some_and(|a| a.cant_create_threads),
    };
    if let Some(args) = args {
        if !args.reserved_is_null {
            Err(Rv::ARGUMENTS_BAD)?
        }
        match (args.mutex_callbacks, args.os_locking_ok) {
            (0, _) | (4, true) => {}
            // The application insists on its own mutexes; sqlhsm locks with the OS's only.
            (4, false) => Err(Rv::CANT_LOCK)?,
            _ => Err(Rv::ARGUMENTS_BAD)?,
        }
    }
    crate::core::initialize(options).map_err(within_initialize_codes)
}

/// The answers PKCS#11 3.0 §5.4 lists for `C_Initialize`. Anything else (a store that cannot be
/// opened, say, which elsewhere is `CKR_DEVICE_ERROR`) becomes `CKR_FUNCTION_FAILED`, with its
/// cause logged here since the caller only sees the code.
const INITIALIZE_CODES: [Rv; 7] = [
    Rv::ARGUMENTS_BAD,
    Rv::CANT_LOCK,
    Rv::CRYPTOKI_ALREADY_INITIALIZED,
    Rv::FUNCTION_FAILED,
    Rv::GENERAL_ERROR,
    Rv::HOST_MEMORY,
    Rv::NEED_TO_CREATE_THREADS,
];

fn within_initialize_codes(error: Error) -> Error {
    if INITIALIZE_CODES.contains(&error.rv()) {
        return error;
    }
    tracing::error!(cause = %error, "C_Initialize failed");
    Error::from(Rv::FUNCTION_FAILED)
}

/// Whether `C_Initialize` has run in this process; cheap (no lock, no system call).
pub fn is_initialized() -> bool {
    crate::core::module::is_initialized()
}

pub fn finalize() -> Result<()> {
    crate::core::finalize()
}

pub fn get_info() -> Result<CK_INFO> {
    crate::core::module()?;
    Ok(CK_INFO {
        // The newest interface offered (`C_GetInfo` is in every list; each list carries its own
        // version).
        cryptokiVersion: CK_VERSION { major: 3, minor: 2 },
        manufacturerID: padded(crate::core::MANUFACTURER),
        flags: 0,
        libraryDescription: padded("sqlhsm PKCS#11 on SQL"),
        libraryVersion: crate::core::version(),
    })
}

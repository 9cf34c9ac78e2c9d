//! The process's fork handlers: `core::fork` decides what happens around a fork(); this file
//! only hands its three steps to `pthread_atfork`, once per process, at the first `C_Initialize`.
//! A process that never initialized sqlhsm has nothing of it to protect.
//!
//! glibc ties handlers registered from a shared object to that object and drops them if it is
//! unloaded, so a `dlclose` of the module never leaves a dangling handler behind.

use std::panic::catch_unwind;
use std::sync::OnceLock;

use crate::core::fork;
use crate::error::{Result, Rv};

extern "C" fn prepare() {
    // Nothing may unwind into the C library's fork().
    let _ = catch_unwind(fork::prepare);
}

extern "C" fn parent() {
    let _ = catch_unwind(fork::parent);
}

extern "C" fn child() {
    let _ = catch_unwind(fork::child);
}

/// Registers the handlers on the first call; later calls answer what the first one got.
pub fn register_handlers() -> Result<()> {
    static REGISTERED: OnceLock<i32> = OnceLock::new();
    // SAFETY: the three handlers are plain functions of this library that never unwind.
    let rc = *REGISTERED
        .get_or_init(|| unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) });
    match rc {
        0 => Ok(()),
        _ => {
            tracing::error!(errno = rc, "pthread_atfork failed");
            Err(Rv::HOST_MEMORY)?
        }
    }
}

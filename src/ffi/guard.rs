//! The one panic boundary every export runs its body in: each `C_*` function is written out by
//! hand (so cbindgen sees it) and its body is one guard that catches panics, logs them and turns
//! the `Result` into a `CK_RV`.
//!
//! A panic must never unwind into C (that is undefined behaviour and, in practice, kills the host
//! process), so each body runs under `catch_unwind` and a panic becomes `CKR_GENERAL_ERROR`.
//! Errors are turned into a `CK_RV` through the crate's one mapping, [`Error::rv`], and logged by
//! kind: causes the caller cannot see (storage, crypto, configuration) at `warn!`/`error!`,
//! deliberate PKCS#11 answers at `debug!`. Log lines never carry the caller's argument values.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use cryptoki_sys::CK_RV;

use crate::core::fork;
use crate::error::{Error, Result, Rv, StorageError};

/// Runs `body` for the export `function`, catching panics, and returns the `CK_RV` the caller sees.
/// Before `C_Initialize` (and in a forked child until it calls `C_Initialize`) the answer is
/// `CKR_CRYPTOKI_NOT_INITIALIZED`, before anything else is looked at (PKCS#11 3.0 §5.4).
///
/// `AssertUnwindSafe` is sound here because a panicking body leaves nothing half-updated that the
/// caller could observe through us: shared state lives behind locks whose poisoning the inner
/// layers report as [`Error::Poisoned`].
pub(crate) fn guard<F>(function: &'static str, body: F) -> CK_RV
where
    F: FnOnce() -> Result<()>,
{
    run(function, true, body)
}

/// [`guard`] for the few functions an application may call before `C_Initialize`
/// (`C_Initialize` itself, `C_GetFunctionList`, `C_GetInterfaceList`, `C_GetInterface`).
pub(crate) fn guard_uninitialized<F>(function: &'static str, body: F) -> CK_RV
where
    F: FnOnce() -> Result<()>,
{
    run(function, false, body)
}

fn run<F>(function: &'static str, needs_initialize: bool, body: F) -> CK_RV
where
    F: FnOnce() -> Result<()>,
{
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // The whole call is inside the fork door (`core::fork`), so no fork happens mid-call.
        let _call = fork::enter();
        if needs_initialize && !crate::api::general::is_initialized() {
            Err(Rv::CRYPTOKI_NOT_INITIALIZED)?
        }
        body()
    }));
    match outcome {
        Ok(Ok(())) => Rv::OK.0,
        Ok(Err(error)) => {
            log_error(function, &error);
            error.rv().0
        }
        Err(payload) => {
            tracing::error!(
                function,
                panic = panic_message(payload.as_ref()),
                "panic caught at the PKCS#11 boundary; answering CKR_GENERAL_ERROR"
            );
            Rv::GENERAL_ERROR.0
        }
    }
}

/// [`guard`] for a call inside an active operation: PKCS#11 3.0 §5.8–5.13 say such a call ends
/// the operation whenever it fails, except with `CKR_BUFFER_TOO_SMALL`. Failures found here at
/// the boundary (a NULL pointer, say) never reach the operation, so the guard ends it.
pub(crate) fn guard_operation<F>(
    function: &'static str,
    session: cryptoki_sys::CK_SESSION_HANDLE,
    operation: cryptoki_sys::CK_FLAGS,
    body: F,
) -> CK_RV
where
    F: FnOnce() -> Result<()>,
{
    // The cancel below belongs to the same call: no fork between the failure and it.
    let _call = catch_unwind(fork::enter).ok();
    let rv = guard(function, body);
    if rv != Rv::OK.0 && rv != Rv::BUFFER_TOO_SMALL.0 && rv != Rv::CRYPTOKI_NOT_INITIALIZED.0 {
        // The session may be gone or the operation already ended; either way nothing is left.
        let _ = catch_unwind(|| crate::api::session::session_cancel(session, operation));
    }
    rv
}

fn log_error(function: &'static str, error: &Error) {
    let rv = error.rv();
    match error {
        Error::Pkcs11(_) => tracing::debug!(function, %rv, "returning"),
        Error::Storage(StorageError::Busy(_)) | Error::Crypto(_) => {
            tracing::warn!(function, %rv, cause = %error, "operation failed")
        }
        Error::Storage(_) | Error::Config(_) | Error::Poisoned | Error::Provider(_) => {
            tracing::error!(function, %rv, cause = %error, "operation failed")
        }
    }
}

/// The panic's message when it is a string (`panic!`, `todo!`, `unwrap`); our own `Debug`
/// implementations redact secrets, so this never prints key material.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&'static str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "<non-string panic payload>"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ok_is_ckr_ok() {
        assert_eq!(guard_uninitialized("t", || Ok(())), Rv::OK.0);
    }

    #[test]
    fn errors_map_through_rv() {
        assert_eq!(
            guard_uninitialized("t", || Err(Rv::PIN_INCORRECT)?),
            Rv::PIN_INCORRECT.0
        );
        assert_eq!(
            guard_uninitialized("t", || Err(StorageError::Backend("disk".into()))?),
            Rv::DEVICE_ERROR.0
        );
        assert_eq!(
            guard_uninitialized("t", || Err(Error::Crypto("x".into()))),
            Rv::FUNCTION_FAILED.0
        );
        assert_eq!(
            guard_uninitialized("t", || Err(Error::Poisoned)),
            Rv::GENERAL_ERROR.0
        );
    }

    #[test]
    fn panic_becomes_general_error_and_does_not_escape() {
        let rv = std::panic::catch_unwind(|| guard_uninitialized("t", || panic!("boom")));
        assert_eq!(
            rv.ok(),
            Some(Rv::GENERAL_ERROR.0),
            "the guard let an unwind escape"
        );
        let rv = guard_uninitialized("t", || todo!());
        assert_eq!(rv, Rv::GENERAL_ERROR.0);
        let rv = guard_uninitialized("t", || std::panic::panic_any(42_u32));
        assert_eq!(rv, Rv::GENERAL_ERROR.0);
    }

    #[test]
    fn panic_inside_extern_c_fn_is_caught() {
        extern "C" fn export() -> CK_RV {
            guard_uninitialized("export", || {
                let v: Vec<u8> = Vec::new();
                let _ = v[usize::MAX / 2];
                Ok(())
            })
        }
        assert_eq!(export(), Rv::GENERAL_ERROR.0);
    }

    #[test]
    fn panic_messages() {
        assert_eq!(panic_message(&"a"), "a");
        assert_eq!(panic_message(&String::from("b")), "b");
        assert_eq!(panic_message(&1_i32), "<non-string panic payload>");
    }
}

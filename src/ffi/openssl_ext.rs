//! Safe wrappers over the OpenSSL 3.x calls the `openssl` crate does not offer. `src/crypto` is
//! their only caller; each wrapper takes the crate's own types (a `PkeyCtxRef`, byte slices),
//! so nothing raw leaves this file.

use std::ffi::{c_char, c_int, c_void};

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::pkey_ctx::PkeyCtxRef;
use openssl_sys::{EVP_PKEY_CTX, OSSL_PARAM};

// ---------------------------------------------------------------------------------------------
// Message signatures (EVP_PKEY_sign_message_* / EVP_PKEY_verify_message_*, OpenSSL 3.4 and
// later): ML-DSA (FIPS 204) and SLH-DSA (FIPS 205), streaming where the algorithm allows.
// ---------------------------------------------------------------------------------------------

// Declared here because `openssl-sys` 0.9 names only the `*_init` functions; they are in the
// vendored libcrypto the crate links.
extern "C" {
    fn EVP_PKEY_sign_message_update(ctx: *mut EVP_PKEY_CTX, data: *const u8, len: usize) -> c_int;
    fn EVP_PKEY_sign_message_final(ctx: *mut EVP_PKEY_CTX, sig: *mut u8, len: *mut usize) -> c_int;
    fn EVP_PKEY_verify_message_update(ctx: *mut EVP_PKEY_CTX, data: *const u8, len: usize)
        -> c_int;
    fn EVP_PKEY_verify_message_final(ctx: *mut EVP_PKEY_CTX) -> c_int;
    fn EVP_PKEY_CTX_set_signature(ctx: *mut EVP_PKEY_CTX, sig: *const u8, len: usize) -> c_int;
    fn OSSL_PARAM_construct_int(key: *const c_char, value: *mut c_int) -> OSSL_PARAM;
}

/// What a message signature is initialised with (the provider's `context-string`,
/// `deterministic` and `message-encoding` parameters).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MessageParams<'a> {
    /// The FIPS 204 / FIPS 205 context string (at most 255 bytes; OpenSSL refuses longer).
    pub context: &'a [u8],
    /// Deterministic signing (ML-DSA's `rnd` all zeros, SLH-DSA's `opt_rand = PK.seed`) rather
    /// than hedged with fresh randomness.
    pub deterministic: bool,
    /// The message is already the encoded `M'` (OpenSSL's `message-encoding` 0): used for the
    /// pre-hash variants, whose `M'` sqlhsm builds itself. Otherwise OpenSSL prefixes
    /// `0 ‖ |ctx| ‖ ctx` (the pure variants).
    pub raw: bool,
}

/// Which message operation to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MessageOp {
    Sign,
    Verify,
}

/// Starts a message signature or verification on `ctx` (a context made from the key) with
/// `params`. After it, `openssl`'s `PkeyCtx::sign` / `verify` run the one-shot form and
/// [`message_update`] / [`sign_message_final`] / [`verify_message_final`] the streaming one.
pub(crate) fn message_init<T>(
    ctx: &mut PkeyCtxRef<T>,
    op: MessageOp,
    params: MessageParams<'_>,
) -> Result<(), ErrorStack> {
    let mut deterministic = c_int::from(params.deterministic);
    let mut encoding = c_int::from(!params.raw);
    // SAFETY: the constructors only record the pointers. `context` is read (never written:
    // OpenSSL copies set parameters) while `ctx` is being initialised; `deterministic` and
    // `encoding` are locals that outlive the call below.
    let array = unsafe {
        [
            openssl_sys::OSSL_PARAM_construct_octet_string(
                c"context-string".as_ptr(),
                params.context.as_ptr().cast_mut().cast::<c_void>(),
                params.context.len(),
            ),
            OSSL_PARAM_construct_int(c"deterministic".as_ptr(), &mut deterministic),
            OSSL_PARAM_construct_int(c"message-encoding".as_ptr(), &mut encoding),
            openssl_sys::OSSL_PARAM_construct_end(),
        ]
    };
    // SAFETY: `ctx` is a live EVP_PKEY_CTX borrowed mutably; a NULL algorithm lets OpenSSL
    // pick the key's own signature implementation; `array` is terminated and its data lives
    // across the call.
    let ok = unsafe {
        match op {
            MessageOp::Sign => openssl_sys::EVP_PKEY_sign_message_init(
                ctx.as_ptr(),
                std::ptr::null_mut(),
                array.as_ptr(),
            ),
            MessageOp::Verify => openssl_sys::EVP_PKEY_verify_message_init(
                ctx.as_ptr(),
                std::ptr::null_mut(),
                array.as_ptr(),
            ),
        }
    };
    check(ok)
}

/// Feeds message bytes to a streaming signature or verification started by [`message_init`].
pub(crate) fn message_update<T>(
    ctx: &mut PkeyCtxRef<T>,
    op: MessageOp,
    data: &[u8],
) -> Result<(), ErrorStack> {
    // SAFETY: `ctx` is live and borrowed mutably; `data` is valid for `data.len()` bytes and
    // only read.
    let ok = unsafe {
        match op {
            MessageOp::Sign => {
                EVP_PKEY_sign_message_update(ctx.as_ptr(), data.as_ptr(), data.len())
            }
            MessageOp::Verify => {
                EVP_PKEY_verify_message_update(ctx.as_ptr(), data.as_ptr(), data.len())
            }
        }
    };
    check(ok)
}

/// Finishes a streaming signature: at most `max_len` bytes (`EVP_PKEY_get_size` of the key).
pub(crate) fn sign_message_final<T>(
    ctx: &mut PkeyCtxRef<T>,
    max_len: usize,
) -> Result<Vec<u8>, ErrorStack> {
    let mut sig = vec![0u8; max_len];
    let mut len = max_len;
    // SAFETY: `ctx` is live and borrowed mutably; `sig` is writable for `len` bytes, and
    // OpenSSL writes the length it used back into `len` (never more than it was).
    let ok = unsafe { EVP_PKEY_sign_message_final(ctx.as_ptr(), sig.as_mut_ptr(), &mut len) };
    check(ok)?;
    sig.truncate(len);
    Ok(sig)
}

/// Finishes a streaming verification against `signature`: `Ok(true)` when it is valid,
/// `Ok(false)` when OpenSSL refuses it (its error queue may then hold the reason).
pub(crate) fn verify_message_final<T>(
    ctx: &mut PkeyCtxRef<T>,
    signature: &[u8],
) -> Result<bool, ErrorStack> {
    // SAFETY: `ctx` is live and borrowed mutably; OpenSSL copies `signature` (valid for its
    // length, only read) before returning.
    let ok =
        unsafe { EVP_PKEY_CTX_set_signature(ctx.as_ptr(), signature.as_ptr(), signature.len()) };
    check(ok)?;
    // SAFETY: as above.
    Ok(unsafe { EVP_PKEY_verify_message_final(ctx.as_ptr()) } == 1)
}

fn check(ok: c_int) -> Result<(), ErrorStack> {
    if ok == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

//! Safe wrappers for the OpenSSL 3 calls the `openssl` crate does not offer, which `crate::crypto`
//! calls: each validates nothing the caller could get wrong (lengths travel with their slices)
//! and hands back owned OpenSSL objects or an [`ErrorStack`]. This is here, not in `crypto`,
//! because `src/ffi` is the one module allowed `unsafe`.

use std::ffi::CStr;
use std::ptr;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::error::ErrorStack;
use openssl::pkey::{PKey, PKeyRef, Private, Public};

// ---- Post-quantum keys (ML-KEM, ML-DSA, SLH-DSA): made, built and named by algorithm name ----

/// Owns an `EVP_PKEY_CTX` for the duration of one generation.
struct GenCtx(*mut openssl_sys::EVP_PKEY_CTX);

impl Drop for GenCtx {
    fn drop(&mut self) {
        // SAFETY: `self.0` came non-NULL from EVP_PKEY_CTX_new_from_name and is freed once.
        unsafe { openssl_sys::EVP_PKEY_CTX_free(self.0) }
    }
}

fn checked(ok: std::ffi::c_int) -> Result<(), ErrorStack> {
    if ok > 0 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

/// A fresh key of the algorithm OpenSSL names `algorithm` (`ML-DSA-65`, `SLH-DSA-SHA2-128s`,
/// …); with `seed`, the key that seed determines (the generation's `seed` parameter: ML-KEM's
/// d‖z, ML-DSA's ξ, SLH-DSA's SK.seed‖SK.prf‖PK.seed).
pub(crate) fn generate_named(
    algorithm: &CStr,
    seed: Option<&[u8]>,
) -> Result<PKey<Private>, ErrorStack> {
    openssl::init();
    // SAFETY: `algorithm` is a NUL-terminated string that outlives the call; NULL library
    // context and property query select the defaults.
    let raw = unsafe {
        openssl_sys::EVP_PKEY_CTX_new_from_name(ptr::null_mut(), algorithm.as_ptr(), ptr::null())
    };
    if raw.is_null() {
        return Err(ErrorStack::get());
    }
    let ctx = GenCtx(raw);
    // SAFETY: `ctx.0` is a live context owned by `ctx`.
    checked(unsafe { openssl_sys::EVP_PKEY_keygen_init(ctx.0) })?;
    if let Some(seed) = seed {
        let params = [
            // SAFETY: a plain constructor; the parameter points at `seed`, which outlives the
            // set_params call below, and OpenSSL only reads through it (the cast to *mut is the
            // constructor's signature, not a licence to write).
            unsafe {
                openssl_sys::OSSL_PARAM_construct_octet_string(
                    c"seed".as_ptr(),
                    seed.as_ptr().cast_mut().cast(),
                    seed.len(),
                )
            },
            // SAFETY: a plain value constructor, no pointers read.
            unsafe { openssl_sys::OSSL_PARAM_construct_end() },
        ];
        // SAFETY: `ctx.0` is live; `params` is a terminated array valid across the call, and
        // OpenSSL copies the seed before returning.
        checked(unsafe { openssl_sys::EVP_PKEY_CTX_set_params(ctx.0, params.as_ptr()) })?;
    }
    let mut key: *mut openssl_sys::EVP_PKEY = ptr::null_mut();
    // SAFETY: `ctx.0` is live and initialised for key generation; `key` is an out-pointer that
    // receives a new key we then own.
    checked(unsafe { openssl_sys::EVP_PKEY_generate(ctx.0, &mut key) })?;
    if key.is_null() {
        return Err(ErrorStack::get());
    }
    // SAFETY: `key` is a new, non-NULL EVP_PKEY whose one reference we take over.
    Ok(unsafe { PKey::from_ptr(key) })
}

/// The private key of `algorithm` whose raw (expanded) encoding is `bytes`.
pub(crate) fn private_from_raw(
    algorithm: &CStr,
    bytes: &[u8],
) -> Result<PKey<Private>, ErrorStack> {
    openssl::init();
    // SAFETY: `algorithm` is NUL-terminated and `bytes` is a live slice of `bytes.len()` bytes,
    // both outliving the call; OpenSSL copies what it keeps.
    let key = unsafe {
        openssl_sys::EVP_PKEY_new_raw_private_key_ex(
            ptr::null_mut(),
            algorithm.as_ptr(),
            ptr::null(),
            bytes.as_ptr(),
            bytes.len(),
        )
    };
    if key.is_null() {
        return Err(ErrorStack::get());
    }
    // SAFETY: a new, non-NULL EVP_PKEY whose one reference we take over.
    Ok(unsafe { PKey::from_ptr(key) })
}

/// The public key of `algorithm` whose raw encoding is `bytes`.
pub(crate) fn public_from_raw(algorithm: &CStr, bytes: &[u8]) -> Result<PKey<Public>, ErrorStack> {
    openssl::init();
    // SAFETY: as in [`private_from_raw`].
    let key = unsafe {
        openssl_sys::EVP_PKEY_new_raw_public_key_ex(
            ptr::null_mut(),
            algorithm.as_ptr(),
            ptr::null(),
            bytes.as_ptr(),
            bytes.len(),
        )
    };
    if key.is_null() {
        return Err(ErrorStack::get());
    }
    // SAFETY: a new, non-NULL EVP_PKEY whose one reference we take over.
    Ok(unsafe { PKey::from_ptr(key) })
}

extern "C" {
    // In libcrypto since OpenSSL 3.0; `openssl-sys` does not declare it.
    fn EVP_PKEY_get0_type_name(key: *const openssl_sys::EVP_PKEY) -> *const std::ffi::c_char;
}

/// The name of the key's algorithm as its provider gives it (`ML-KEM-768`, `RSA`, …); `None`
/// when OpenSSL has none.
pub(crate) fn type_name<T>(key: &PKeyRef<T>) -> Option<String> {
    // SAFETY: `key` is a live EVP_PKEY borrowed for the call. The name belongs to the key's key
    // management method, which the key holds a reference to while `key` is borrowed.
    let name = unsafe { EVP_PKEY_get0_type_name(key.as_ptr()) };
    if name.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated, alive while `key` is (above); copied out at once.
    let name = unsafe { CStr::from_ptr(name) };
    name.to_str().ok().map(str::to_owned)
}

// ---- Message signatures (EVP_PKEY_sign_message_* / EVP_PKEY_verify_message_*, OpenSSL 3.4 and
// later): ML-DSA (FIPS 204) and SLH-DSA (FIPS 205), streaming where the algorithm allows. A
// module of its own so that its imports stay apart from the other sections'. ----

pub(crate) use message_signatures::{
    message_init, message_update, sign_message_final, verify_message_final, MessageOp,
    MessageParams,
};

mod message_signatures {
    use std::ffi::{c_char, c_int, c_void};

    use foreign_types::ForeignTypeRef;
    use openssl::error::ErrorStack;
    use openssl::pkey_ctx::PkeyCtxRef;
    use openssl_sys::{EVP_PKEY_CTX, OSSL_PARAM};

    // Declared here because `openssl-sys` 0.9 names only the `*_init` functions; they are in the
    // vendored libcrypto the crate links.
    extern "C" {
        fn EVP_PKEY_sign_message_update(
            ctx: *mut EVP_PKEY_CTX,
            data: *const u8,
            len: usize,
        ) -> c_int;
        fn EVP_PKEY_sign_message_final(
            ctx: *mut EVP_PKEY_CTX,
            sig: *mut u8,
            len: *mut usize,
        ) -> c_int;
        fn EVP_PKEY_verify_message_update(
            ctx: *mut EVP_PKEY_CTX,
            data: *const u8,
            len: usize,
        ) -> c_int;
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
        let ok = unsafe {
            EVP_PKEY_CTX_set_signature(ctx.as_ptr(), signature.as_ptr(), signature.len())
        };
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
}

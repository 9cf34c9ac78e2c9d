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

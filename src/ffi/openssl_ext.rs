//! The other C boundary: the few OpenSSL calls that the `openssl` crate does not wrap, as safe
//! functions for `crate::crypto`. A leaf: it uses nothing of sqlhsm, so `crypto` may call it
//! without the layers above it; like the rest of `src/ffi` it is where `unsafe` may live.

use std::ffi::{c_uint, CStr};

use std::ptr;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::error::ErrorStack;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private, Public};
use openssl::pkey_ctx::{PkeyCtx, PkeyCtxRef};
use zeroize::Zeroizing;

/// `OSSL_PARAM_INTEGER` and `OSSL_PARAM_UTF8_STRING` (`openssl/core.h`), which `openssl-sys`
/// does not name.
const OSSL_PARAM_INTEGER: c_uint = 1;
const OSSL_PARAM_UTF8_STRING: c_uint = 4;
const OSSL_PARAM_OCTET_STRING: c_uint = 5;
/// `OSSL_PARAM_UNMODIFIED`: the parameter has not been written back by OpenSSL.
const OSSL_PARAM_UNMODIFIED: usize = usize::MAX;

/// One operation parameter (an `OSSL_PARAM`) of the kinds sqlhsm sets.
#[derive(Clone, Copy, Debug)]
pub enum CtxParam<'a> {
    /// A UTF-8 string, e.g. the EdDSA `instance`.
    Utf8(&'static CStr, &'a CStr),
    /// A C `int`, e.g. ML-DSA's `deterministic` or `mu`.
    Int(&'static CStr, &'a i32),
    /// Bytes, e.g. a `context-string`.
    Octets(&'static CStr, &'a [u8]),
}

impl CtxParam<'_> {
    fn raw(&self) -> openssl_sys::OSSL_PARAM {
        let (key, data_type, data, data_size) = match *self {
            CtxParam::Utf8(key, value) => (
                key,
                OSSL_PARAM_UTF8_STRING,
                value.as_ptr().cast_mut().cast(),
                value.to_bytes().len(),
            ),
            CtxParam::Int(key, value) => (
                key,
                OSSL_PARAM_INTEGER,
                std::ptr::from_ref(value).cast_mut().cast(),
                size_of::<i32>(),
            ),
            CtxParam::Octets(key, value) => (
                key,
                OSSL_PARAM_OCTET_STRING,
                value.as_ptr().cast_mut().cast(),
                value.len(),
            ),
        };
        openssl_sys::OSSL_PARAM {
            key: key.as_ptr(),
            data_type,
            data,
            data_size,
            return_size: OSSL_PARAM_UNMODIFIED,
        }
    }
}

/// `EVP_PKEY_CTX_set_params` with `params`: operation settings the `openssl` crate has no
/// setter for.
pub fn set_ctx_params<T>(
    ctx: &mut PkeyCtxRef<T>,
    params: &[CtxParam<'_>],
) -> Result<(), ErrorStack> {
    let mut raw: Vec<openssl_sys::OSSL_PARAM> = params.iter().map(CtxParam::raw).collect();
    // SAFETY: a plain value constructor, no pointers read.
    raw.push(unsafe { openssl_sys::OSSL_PARAM_construct_end() });
    // SAFETY: `ctx` is a live EVP_PKEY_CTX borrowed mutably; `raw` is a terminated array whose
    // keys are 'static and whose data borrow `params`, alive across the call; OpenSSL copies what
    // it keeps and writes nothing through these parameters (set, not get).
    let ok = unsafe { openssl_sys::EVP_PKEY_CTX_set_params(ctx.as_ptr(), raw.as_ptr()) };
    if ok != 1 {
        return Err(ErrorStack::get());
    }
    Ok(())
}

// ---- Key encapsulation (EVP_PKEY_encapsulate / EVP_PKEY_decapsulate) ----

/// OpenSSL's answer: positive is success; 0 or negative leaves the reason on the error queue.
fn kem_checked(ok: std::ffi::c_int) -> Result<(), ErrorStack> {
    if ok > 0 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

/// The ciphertext and shared secret of one encapsulation.
pub(crate) struct KemOutput {
    pub ciphertext: Vec<u8>,
    pub secret: Zeroizing<Vec<u8>>,
}

/// A fresh shared secret and its ciphertext for `key` (its KEM as OpenSSL knows it). With
/// `ikme`, the encapsulation is derandomised: OpenSSL's `ikme` parameter supplies the input
/// key material (ML-KEM's message m) instead of fresh randomness — for known-answer tests only.
pub(crate) fn kem_encapsulate<T: HasPublic>(
    key: &PKeyRef<T>,
    ikme: Option<&[u8]>,
) -> Result<KemOutput, ErrorStack> {
    let mut ctx = PkeyCtx::new(key)?;
    // SAFETY: `ctx` owns a live EVP_PKEY_CTX; no parameters.
    kem_checked(unsafe { openssl_sys::EVP_PKEY_encapsulate_init(ctx.as_ptr(), ptr::null()) })?;
    if let Some(m) = ikme {
        set_ctx_params(&mut ctx, &[CtxParam::Octets(c"ikme", m)])?;
    }
    let (mut ct_len, mut secret_len) = (0usize, 0usize);
    // SAFETY: NULL outputs ask for the two lengths, written to the two live usizes.
    kem_checked(unsafe {
        openssl_sys::EVP_PKEY_encapsulate(
            ctx.as_ptr(),
            ptr::null_mut(),
            &mut ct_len,
            ptr::null_mut(),
            &mut secret_len,
        )
    })?;
    let mut ciphertext = vec![0u8; ct_len];
    let mut secret = Zeroizing::new(vec![0u8; secret_len]);
    // SAFETY: both buffers are live and as long as the lengths passed with them, which OpenSSL
    // reads as capacities and overwrites with the lengths written.
    kem_checked(unsafe {
        openssl_sys::EVP_PKEY_encapsulate(
            ctx.as_ptr(),
            ciphertext.as_mut_ptr(),
            &mut ct_len,
            secret.as_mut_ptr(),
            &mut secret_len,
        )
    })?;
    ciphertext.truncate(ct_len);
    secret.truncate(secret_len);
    Ok(KemOutput { ciphertext, secret })
}

/// The shared secret `ciphertext` carries for the private `key`. The KEM decides what a
/// malformed ciphertext gives (ML-KEM: its implicit-rejection secret, and no error).
pub(crate) fn kem_decapsulate(
    key: &PKeyRef<Private>,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ErrorStack> {
    let ctx = PkeyCtx::new(key)?;
    // SAFETY: `ctx` owns a live EVP_PKEY_CTX; no parameters.
    kem_checked(unsafe { openssl_sys::EVP_PKEY_decapsulate_init(ctx.as_ptr(), ptr::null()) })?;
    let mut secret_len = 0usize;
    // SAFETY: a NULL output asks for the secret's length; `ciphertext` is a live slice of its
    // stated length.
    kem_checked(unsafe {
        openssl_sys::EVP_PKEY_decapsulate(
            ctx.as_ptr(),
            ptr::null_mut(),
            &mut secret_len,
            ciphertext.as_ptr(),
            ciphertext.len(),
        )
    })?;
    let mut secret = Zeroizing::new(vec![0u8; secret_len]);
    // SAFETY: `secret` is live and `secret_len` long (OpenSSL reads it as the capacity and
    // writes the length used); `ciphertext` as above.
    kem_checked(unsafe {
        openssl_sys::EVP_PKEY_decapsulate(
            ctx.as_ptr(),
            secret.as_mut_ptr(),
            &mut secret_len,
            ciphertext.as_ptr(),
            ciphertext.len(),
        )
    })?;
    secret.truncate(secret_len);
    Ok(secret)
}

// ---- Post-quantum keys (ML-KEM, ML-DSA, SLH-DSA): made, built and named by algorithm name ----
// (h-pqkeys) `EVP_PKEY_CTX_new_from_name` + keygen with a `seed`, raw keys by algorithm name and
// `EVP_PKEY_get0_type_name`, which the `openssl` crate lacks for SLH-DSA and for seeded keygen.

fn checked(ok: bool) -> Result<(), ErrorStack> {
    if ok {
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
    checked(!raw.is_null())?;
    // SAFETY: a new, non-NULL context whose one reference the owner takes over (and frees).
    let mut ctx = unsafe { PkeyCtx::<Private>::from_ptr(raw) };
    ctx.keygen_init()?;
    if let Some(seed) = seed {
        set_ctx_params(&mut ctx, &[CtxParam::Octets(c"seed", seed)])?;
    }
    ctx.keygen()
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
    checked(!key.is_null())?;
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
    checked(!key.is_null())?;
    // SAFETY: a new, non-NULL EVP_PKEY whose one reference we take over.
    Ok(unsafe { PKey::from_ptr(key) })
}

extern "C" {
    // In libcrypto since OpenSSL 3.0; `openssl-sys` does not declare it. Not one of sqlhsm's
    // exports: kept out of the header cbindgen makes from src/ffi.
    /// cbindgen:ignore
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

// cbindgen reads src/ffi for the header: these OpenSSL declarations are not sqlhsm's exports.
/// cbindgen:ignore
mod message_signatures {
    use std::ffi::c_int;

    use foreign_types::ForeignTypeRef;
    use openssl::error::ErrorStack;
    use openssl::pkey_ctx::PkeyCtxRef;
    use openssl_sys::{EVP_PKEY_CTX, OSSL_PARAM};

    use super::CtxParam;

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
        let deterministic = i32::from(params.deterministic);
        let encoding = i32::from(!params.raw);
        let mut array: Vec<OSSL_PARAM> = [
            CtxParam::Octets(c"context-string", params.context),
            CtxParam::Int(c"deterministic", &deterministic),
            CtxParam::Int(c"message-encoding", &encoding),
        ]
        .iter()
        .map(CtxParam::raw)
        .collect();
        // SAFETY: a plain value constructor, no pointers read.
        array.push(unsafe { openssl_sys::OSSL_PARAM_construct_end() });
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

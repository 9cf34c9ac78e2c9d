//! Safe wrappers for the OpenSSL 3 calls the `openssl` crate does not offer, which `crate::crypto`
//! calls: lengths travel with their slices, and each wrapper hands back owned values or an
//! [`ErrorStack`]. This is here, not in `crypto`, because `src/ffi` is the one module allowed
//! `unsafe`.

use std::ptr;

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::pkey::{HasPublic, PKeyRef, Private};
use openssl::pkey_ctx::PkeyCtx;
use zeroize::Zeroizing;

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
    let ctx = PkeyCtx::new(key)?;
    let params = ikme.map(|m| {
        [
            // SAFETY: a plain constructor; the parameter points at `m`, which outlives the
            // init call below, and OpenSSL only reads through it (the *mut cast is the
            // constructor's signature).
            unsafe {
                openssl_sys::OSSL_PARAM_construct_octet_string(
                    c"ikme".as_ptr(),
                    m.as_ptr().cast_mut().cast(),
                    m.len(),
                )
            },
            // SAFETY: a plain value constructor, no pointers read.
            unsafe { openssl_sys::OSSL_PARAM_construct_end() },
        ]
    });
    let params_ptr = params.as_ref().map_or(ptr::null(), |p| p.as_ptr());
    // SAFETY: `ctx` owns a live EVP_PKEY_CTX; `params_ptr` is NULL or a terminated array valid
    // across the call (OpenSSL copies the ikme bytes it keeps).
    kem_checked(unsafe { openssl_sys::EVP_PKEY_encapsulate_init(ctx.as_ptr(), params_ptr) })?;
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

//! Safe wrappers for the OpenSSL calls the `openssl` crate does not wrap. Only `src/crypto` calls
//! them; each `unsafe` block hands OpenSSL pointers that live across the call and nothing else.

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::pkey::{HasPublic, PKeyRef, Private};
use openssl::pkey_ctx::PkeyCtx;
use zeroize::Zeroizing;

// ---------------------------------------------------------------------------------------------
// KEM encapsulation and decapsulation (EVP_PKEY_encapsulate / EVP_PKEY_decapsulate), used by the
// hybrid KEMs of `crate::crypto::hybrid_kem`.
// ---------------------------------------------------------------------------------------------

/// Encapsulates to `key` (an ML-KEM public key): `(ciphertext, shared secret)`. With `ikme` the
/// encapsulation is derandomised (OpenSSL's "ikme" parameter, FIPS 203's `m`), which only test
/// vectors have a use for; `None` draws fresh randomness.
pub fn kem_encapsulate<T: HasPublic>(
    key: &PKeyRef<T>,
    ikme: Option<&[u8]>,
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), ErrorStack> {
    let ctx = PkeyCtx::new(key)?;
    // A private copy: OSSL_PARAM takes a mutable data pointer, though "ikme" is only read.
    let mut ikme_buf = Zeroizing::new(ikme.map(<[u8]>::to_vec).unwrap_or_default());
    let params = [
        if ikme.is_some() {
            // SAFETY: a value constructor; the key is 'static and the buffer outlives `params`,
            // which lives until after the init call below has copied it.
            unsafe {
                openssl_sys::OSSL_PARAM_construct_octet_string(
                    c"ikme".as_ptr(),
                    ikme_buf.as_mut_ptr().cast(),
                    ikme_buf.len(),
                )
            }
        } else {
            // SAFETY: a plain value constructor, no pointers read.
            unsafe { openssl_sys::OSSL_PARAM_construct_end() }
        },
        // SAFETY: a plain value constructor, no pointers read.
        unsafe { openssl_sys::OSSL_PARAM_construct_end() },
    ];
    // SAFETY: `ctx` is a live EVP_PKEY_CTX owned here; `params` is a terminated array whose
    // pointers (a 'static name, `ikme_buf`) stay valid for the call.
    cvt(unsafe { openssl_sys::EVP_PKEY_encapsulate_init(ctx.as_ptr(), params.as_ptr()) })?;
    let (mut ct_len, mut ss_len) = (0usize, 0usize);
    // SAFETY: NULL output buffers ask only for the two lengths, written to the two locals.
    cvt(unsafe {
        openssl_sys::EVP_PKEY_encapsulate(
            ctx.as_ptr(),
            std::ptr::null_mut(),
            &mut ct_len,
            std::ptr::null_mut(),
            &mut ss_len,
        )
    })?;
    let mut ct = vec![0u8; ct_len];
    let mut ss = Zeroizing::new(vec![0u8; ss_len]);
    // SAFETY: both buffers are as long as the lengths OpenSSL just reported, which it may lower.
    cvt(unsafe {
        openssl_sys::EVP_PKEY_encapsulate(
            ctx.as_ptr(),
            ct.as_mut_ptr(),
            &mut ct_len,
            ss.as_mut_ptr(),
            &mut ss_len,
        )
    })?;
    ct.truncate(ct_len);
    ss.truncate(ss_len);
    Ok((ct, ss))
}

/// Decapsulates `ciphertext` with `key` (an ML-KEM private key). ML-KEM rejects implicitly: a
/// ciphertext of the right length that was not made for this key yields a pseudorandom secret,
/// not an error; one of the wrong length is an error.
pub fn kem_decapsulate(
    key: &PKeyRef<Private>,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, ErrorStack> {
    let ctx = PkeyCtx::new(key)?;
    // SAFETY: `ctx` is a live EVP_PKEY_CTX owned here; NULL means no parameters.
    cvt(unsafe { openssl_sys::EVP_PKEY_decapsulate_init(ctx.as_ptr(), std::ptr::null()) })?;
    let mut ss_len = 0usize;
    // SAFETY: a NULL output asks only for the length; `ciphertext` is read for its length.
    cvt(unsafe {
        openssl_sys::EVP_PKEY_decapsulate(
            ctx.as_ptr(),
            std::ptr::null_mut(),
            &mut ss_len,
            ciphertext.as_ptr(),
            ciphertext.len(),
        )
    })?;
    let mut ss = Zeroizing::new(vec![0u8; ss_len]);
    // SAFETY: `ss` is as long as the length OpenSSL reported; `ciphertext` is only read.
    cvt(unsafe {
        openssl_sys::EVP_PKEY_decapsulate(
            ctx.as_ptr(),
            ss.as_mut_ptr(),
            &mut ss_len,
            ciphertext.as_ptr(),
            ciphertext.len(),
        )
    })?;
    ss.truncate(ss_len);
    Ok(ss)
}

/// OpenSSL's 1-is-success convention, the error queue taken on anything else.
fn cvt(ret: std::ffi::c_int) -> Result<(), ErrorStack> {
    if ret == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

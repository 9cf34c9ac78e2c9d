//! The other C boundary: the few OpenSSL calls that the `openssl` crate does not wrap, as safe
//! functions for `crate::crypto`. A leaf: it uses nothing of sqlhsm, so `crypto` may call it
//! without the layers above it; like the rest of `src/ffi` it is where `unsafe` may live.

use std::ffi::{c_uint, CStr};

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::pkey_ctx::PkeyCtxRef;

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

//! PKCS#11 3.0 calls and constants cryptoki 0.12 does not expose, made through the raw C
//! function list.

use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;

use super::raw;

/// `CKM_AES_KEY_WRAP_KWP` (RFC 5649, PKCS#11 3.0 §2.14.3); cryptoki 0.12 names only
/// `CKM_AES_KEY_WRAP_PAD`, which is a different mechanism.
pub const CKM_AES_KEY_WRAP_KWP: u64 = 0x0000_210B;

/// The `CK_RV` of a raw call as a cryptoki result, so [`expect_rv`] and friends apply.
pub fn raw_result(
    rv: cryptoki_sys::CK_RV,
    f: cryptoki::context::Function,
) -> cryptoki::error::Result<()> {
    cryptoki::error::Rv::from(rv).into_result(f)
}

/// Template attributes as the C structures (pointing into `template`, which must outlive them).
pub fn raw_template(template: &[Attribute]) -> Vec<cryptoki_sys::CK_ATTRIBUTE> {
    template.iter().map(|a| a.into()).collect()
}

/// `C_WrapKey` with a raw mechanism (`mech`, no parameter), two-call convention: returns the
/// length the NULL-buffer call reported and the wrapped bytes.
pub fn raw_wrap_key(
    s: &Session,
    mech: u64,
    wrapping_key: ObjectHandle,
    key: ObjectHandle,
) -> cryptoki::error::Result<(u64, Vec<u8>)> {
    use cryptoki::context::Function;
    let mut m = cryptoki_sys::CK_MECHANISM {
        mechanism: mech,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    let mut len: cryptoki_sys::CK_ULONG = 0;
    // SAFETY: valid session/object handles of this test; NULL output asks for the length.
    let rv = unsafe {
        raw().C_WrapKey(
            s.handle(),
            &mut m,
            wrapping_key.handle(),
            key.handle(),
            std::ptr::null_mut(),
            &mut len,
        )
    };
    raw_result(rv, Function::WrapKey)?;
    let reported = len;
    let mut out = vec![0u8; len as usize];
    // SAFETY: `out` has `len` writable bytes.
    let rv = unsafe {
        raw().C_WrapKey(
            s.handle(),
            &mut m,
            wrapping_key.handle(),
            key.handle(),
            out.as_mut_ptr(),
            &mut len,
        )
    };
    raw_result(rv, Function::WrapKey)?;
    out.truncate(len as usize);
    Ok((reported, out))
}

/// `C_UnwrapKey` with a raw mechanism (`mech`, no parameter).
pub fn raw_unwrap_key(
    s: &Session,
    mech: u64,
    unwrapping_key: ObjectHandle,
    wrapped: &[u8],
    template: &[Attribute],
) -> cryptoki::error::Result<ObjectHandle> {
    use cryptoki::context::Function;
    let mut m = cryptoki_sys::CK_MECHANISM {
        mechanism: mech,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    let mut t = raw_template(template);
    let mut wrapped = wrapped.to_vec();
    let mut h: cryptoki_sys::CK_OBJECT_HANDLE = 0;
    // SAFETY: every pointer refers to a live local buffer of the stated length.
    let rv = unsafe {
        raw().C_UnwrapKey(
            s.handle(),
            &mut m,
            unwrapping_key.handle(),
            wrapped.as_mut_ptr(),
            wrapped.len() as cryptoki_sys::CK_ULONG,
            t.as_mut_ptr(),
            t.len() as cryptoki_sys::CK_ULONG,
            &mut h,
        )
    };
    raw_result(rv, Function::UnwrapKey)?;
    // SAFETY: a handle the module just returned.
    Ok(unsafe { ObjectHandle::new_from_raw(h) })
}

/// `C_GetObjectSize` (cryptoki 0.12 has no wrapper).
pub fn raw_object_size(s: &Session, o: ObjectHandle) -> cryptoki::error::Result<u64> {
    let mut size: cryptoki_sys::CK_ULONG = 0;
    // SAFETY: valid handles; `size` is a live out-parameter.
    let rv = unsafe { raw().C_GetObjectSize(s.handle(), o.handle(), &mut size) };
    raw_result(rv, cryptoki::context::Function::GetObjectSize)?;
    Ok(size)
}

/// A `CK_MECHANISM` for `mech` with no parameter or with `param`'s bytes.
pub fn raw_mechanism(mech: u64, param: Option<&mut [u8]>) -> cryptoki_sys::CK_MECHANISM {
    let (p, len) = match param {
        Some(p) => (p.as_mut_ptr().cast(), p.len() as cryptoki_sys::CK_ULONG),
        None => (std::ptr::null_mut(), 0),
    };
    cryptoki_sys::CK_MECHANISM {
        mechanism: mech,
        pParameter: p,
        ulParameterLen: len,
    }
}

/// `C_SignInit` with a raw mechanism (for the ones cryptoki 0.12 cannot name: SHA-3, …), then
/// `C_SignUpdate` per piece and `C_SignFinal` when `parts` is given, else one `C_Sign` over
/// `data`. Two-call convention for the output.
pub fn raw_sign(
    s: &Session,
    mech: u64,
    param: Option<&mut [u8]>,
    key: ObjectHandle,
    data: &[u8],
    parts: Option<usize>,
) -> cryptoki::error::Result<Vec<u8>> {
    use cryptoki::context::Function;
    let mut m = raw_mechanism(mech, param);
    let h = s.handle();
    // SAFETY: `m` (and the parameter it points at) outlives the call.
    raw_result(
        unsafe { raw().C_SignInit(h, &mut m, key.handle()) },
        Function::SignInit,
    )?;
    let mut data = data.to_vec();
    if let Some(n) = parts {
        for piece in data.chunks_mut(n.max(1)) {
            // SAFETY: `piece` is a live buffer of the stated length.
            let rv = unsafe {
                raw().C_SignUpdate(h, piece.as_mut_ptr(), piece.len() as cryptoki_sys::CK_ULONG)
            };
            raw_result(rv, Function::SignUpdate)?;
        }
    }
    let mut len: cryptoki_sys::CK_ULONG = 0;
    let call = |out: *mut u8, len: &mut cryptoki_sys::CK_ULONG, data: &mut [u8]| match parts {
        // SAFETY: `out` is NULL or has `*len` writable bytes; `data` is live.
        Some(_) => (
            unsafe { raw().C_SignFinal(h, out, len) },
            Function::SignFinal,
        ),
        None => (
            unsafe {
                raw().C_Sign(
                    h,
                    data.as_mut_ptr(),
                    data.len() as cryptoki_sys::CK_ULONG,
                    out,
                    len,
                )
            },
            Function::Sign,
        ),
    };
    let (rv, f) = call(std::ptr::null_mut(), &mut len, &mut data);
    raw_result(rv, f)?;
    let mut out = vec![0u8; len as usize];
    let (rv, f) = call(out.as_mut_ptr(), &mut len, &mut data);
    raw_result(rv, f)?;
    out.truncate(len as usize);
    Ok(out)
}

/// `C_VerifyInit` with a raw mechanism and one `C_Verify`, or `C_VerifyUpdate` per piece and
/// `C_VerifyFinal` when `parts` is given.
pub fn raw_verify(
    s: &Session,
    mech: u64,
    param: Option<&mut [u8]>,
    key: ObjectHandle,
    data: &[u8],
    signature: &[u8],
    parts: Option<usize>,
) -> cryptoki::error::Result<()> {
    use cryptoki::context::Function;
    let mut m = raw_mechanism(mech, param);
    let h = s.handle();
    // SAFETY: `m` (and the parameter it points at) outlives the call.
    raw_result(
        unsafe { raw().C_VerifyInit(h, &mut m, key.handle()) },
        Function::VerifyInit,
    )?;
    let mut data = data.to_vec();
    let mut sig = signature.to_vec();
    let sig_len = sig.len() as cryptoki_sys::CK_ULONG;
    match parts {
        Some(n) => {
            for piece in data.chunks_mut(n.max(1)) {
                // SAFETY: `piece` is a live buffer of the stated length.
                let rv = unsafe {
                    raw().C_VerifyUpdate(
                        h,
                        piece.as_mut_ptr(),
                        piece.len() as cryptoki_sys::CK_ULONG,
                    )
                };
                raw_result(rv, Function::VerifyUpdate)?;
            }
            // SAFETY: `sig` is a live buffer of the stated length.
            let rv = unsafe { raw().C_VerifyFinal(h, sig.as_mut_ptr(), sig_len) };
            raw_result(rv, Function::VerifyFinal)
        }
        None => {
            // SAFETY: live buffers of the stated lengths.
            let rv = unsafe {
                raw().C_Verify(
                    h,
                    data.as_mut_ptr(),
                    data.len() as cryptoki_sys::CK_ULONG,
                    sig.as_mut_ptr(),
                    sig_len,
                )
            };
            raw_result(rv, Function::Verify)
        }
    }
}

/// A digest with a raw mechanism: one `C_Digest`, or `C_DigestUpdate` per piece and
/// `C_DigestKey` of `key` (if any) and `C_DigestFinal` when `parts` is given.
pub fn raw_digest(
    s: &Session,
    mech: u64,
    data: &[u8],
    parts: Option<usize>,
    key: Option<ObjectHandle>,
) -> cryptoki::error::Result<Vec<u8>> {
    use cryptoki::context::Function;
    let mut m = raw_mechanism(mech, None);
    let h = s.handle();
    // SAFETY: `m` outlives the call.
    raw_result(
        unsafe { raw().C_DigestInit(h, &mut m) },
        Function::DigestInit,
    )?;
    let mut data = data.to_vec();
    let multipart = parts.is_some() || key.is_some();
    if multipart {
        for piece in data.chunks_mut(parts.unwrap_or(usize::MAX).max(1)) {
            // SAFETY: `piece` is a live buffer of the stated length.
            let rv = unsafe {
                raw().C_DigestUpdate(h, piece.as_mut_ptr(), piece.len() as cryptoki_sys::CK_ULONG)
            };
            raw_result(rv, Function::DigestUpdate)?;
        }
        if let Some(key) = key {
            // SAFETY: plain handles.
            let rv = unsafe { raw().C_DigestKey(h, key.handle()) };
            raw_result(rv, Function::DigestKey)?;
        }
    }
    let mut len: cryptoki_sys::CK_ULONG = 0;
    let call = |out: *mut u8, len: &mut cryptoki_sys::CK_ULONG, data: &mut [u8]| {
        if multipart {
            // SAFETY: `out` is NULL or has `*len` writable bytes.
            (
                unsafe { raw().C_DigestFinal(h, out, len) },
                Function::DigestFinal,
            )
        } else {
            // SAFETY: as above; `data` is live.
            let rv = unsafe {
                raw().C_Digest(
                    h,
                    data.as_mut_ptr(),
                    data.len() as cryptoki_sys::CK_ULONG,
                    out,
                    len,
                )
            };
            (rv, Function::Digest)
        }
    };
    let (rv, f) = call(std::ptr::null_mut(), &mut len, &mut data);
    raw_result(rv, f)?;
    let mut out = vec![0u8; len as usize];
    let (rv, f) = call(out.as_mut_ptr(), &mut len, &mut data);
    raw_result(rv, f)?;
    out.truncate(len as usize);
    Ok(out)
}

/// A raw template entry: attribute type and its value's bytes (a `CK_ULONG` as native-endian
/// bytes, a `CK_BBOOL` as one byte), for values cryptoki 0.12 cannot write — it sends
/// `CKK_SHA224/384/512_HMAC` as `CKK_SHA256_HMAC`.
pub type RawAttr = (cryptoki_sys::CK_ATTRIBUTE_TYPE, Vec<u8>);

pub fn raw_ulong(t: cryptoki_sys::CK_ATTRIBUTE_TYPE, v: u64) -> RawAttr {
    (t, v.to_ne_bytes().to_vec())
}

pub fn raw_bool(t: cryptoki_sys::CK_ATTRIBUTE_TYPE, v: bool) -> RawAttr {
    (t, vec![u8::from(v)])
}

pub fn raw_attrs(template: &mut [RawAttr]) -> Vec<cryptoki_sys::CK_ATTRIBUTE> {
    template
        .iter_mut()
        .map(|(t, v)| cryptoki_sys::CK_ATTRIBUTE {
            type_: *t,
            pValue: v.as_mut_ptr().cast(),
            ulValueLen: v.len() as cryptoki_sys::CK_ULONG,
        })
        .collect()
}

/// `C_CreateObject` with a raw template.
pub fn raw_create_object(
    s: &Session,
    mut template: Vec<RawAttr>,
) -> cryptoki::error::Result<ObjectHandle> {
    let mut t = raw_attrs(&mut template);
    let mut h: cryptoki_sys::CK_OBJECT_HANDLE = 0;
    // SAFETY: `t` points into `template`, alive for the call.
    let rv = unsafe {
        raw().C_CreateObject(
            s.handle(),
            t.as_mut_ptr(),
            t.len() as cryptoki_sys::CK_ULONG,
            &mut h,
        )
    };
    raw_result(rv, cryptoki::context::Function::CreateObject)?;
    // SAFETY: a handle the module just returned.
    Ok(unsafe { ObjectHandle::new_from_raw(h) })
}

/// `C_GenerateKey` with a raw mechanism (no parameter) and template.
pub fn raw_generate_key(
    s: &Session,
    mech: u64,
    mut template: Vec<RawAttr>,
) -> cryptoki::error::Result<ObjectHandle> {
    let mut m = raw_mechanism(mech, None);
    let mut t = raw_attrs(&mut template);
    let mut h: cryptoki_sys::CK_OBJECT_HANDLE = 0;
    // SAFETY: `m` and `t` (pointing into `template`) are alive for the call.
    let rv = unsafe {
        raw().C_GenerateKey(
            s.handle(),
            &mut m,
            t.as_mut_ptr(),
            t.len() as cryptoki_sys::CK_ULONG,
            &mut h,
        )
    };
    raw_result(rv, cryptoki::context::Function::GenerateKey)?;
    // SAFETY: a handle the module just returned.
    Ok(unsafe { ObjectHandle::new_from_raw(h) })
}

/// A `CK_ULONG` attribute read with `C_GetAttributeValue` (cryptoki 0.12 reads
/// `CKK_SHA384_HMAC` back as its `SHA384_HMAC` constant, whose value is `CKK_SHA256_HMAC`).
pub fn raw_get_ulong(
    s: &Session,
    o: ObjectHandle,
    t: cryptoki_sys::CK_ATTRIBUTE_TYPE,
) -> cryptoki::error::Result<u64> {
    let mut value: cryptoki_sys::CK_ULONG = 0;
    let mut a = cryptoki_sys::CK_ATTRIBUTE {
        type_: t,
        pValue: (&mut value as *mut cryptoki_sys::CK_ULONG).cast(),
        ulValueLen: std::mem::size_of::<cryptoki_sys::CK_ULONG>() as cryptoki_sys::CK_ULONG,
    };
    // SAFETY: `a` points at a live `CK_ULONG` of the stated size.
    let rv = unsafe { raw().C_GetAttributeValue(s.handle(), o.handle(), &mut a, 1) };
    raw_result(rv, cryptoki::context::Function::GetAttributeValue)?;
    Ok(value)
}

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

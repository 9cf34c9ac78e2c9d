//! `C_EncapsulateKey` / `C_DecapsulateKey` (PKCS#11 3.2 §5.18) through the raw function list:
//! cryptoki 0.12 reaches them only through a 3.2 function list, and the tests want the
//! two-call convention's steps one by one.

use cryptoki::context::Function;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki_sys::{CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_ULONG};

use super::{raw, raw_attrs, raw_mechanism, raw_result, RawAttr};

/// What one `C_EncapsulateKey` call gave: the length it reported, the ciphertext bytes it
/// wrote (as many as reported, when a buffer was given), and the new key's handle (`None` when
/// `phKey` was left as the test set it, 0).
#[derive(Debug)]
pub struct Encapsulated {
    pub reported: CK_ULONG,
    pub ciphertext: Vec<u8>,
    pub key: Option<ObjectHandle>,
}

/// One `C_EncapsulateKey` call: `buffer` `None` is the NULL-buffer length query, `Some(n)` a
/// buffer of n bytes.
pub fn raw_encapsulate_with(
    s: &Session,
    mech: CK_MECHANISM_TYPE,
    param: Option<&mut [u8]>,
    public_key: ObjectHandle,
    mut template: Vec<RawAttr>,
    buffer: Option<usize>,
) -> cryptoki::error::Result<Encapsulated> {
    let mut m = raw_mechanism(mech, param);
    let mut t = raw_attrs(&mut template);
    let mut out = vec![0u8; buffer.unwrap_or(0)];
    let mut len = buffer.unwrap_or(0) as CK_ULONG;
    let mut h: CK_OBJECT_HANDLE = 0;
    let out_ptr = match buffer {
        Some(_) => out.as_mut_ptr(),
        None => std::ptr::null_mut(),
    };
    // SAFETY: `m`, `t` (pointing into `template`), `out` (of `len` bytes) and `h` live across
    // the call.
    let rv = unsafe {
        raw().C_EncapsulateKey(
            s.handle(),
            &mut m,
            public_key.handle(),
            t.as_mut_ptr(),
            t.len() as CK_ULONG,
            out_ptr,
            &mut len,
            &mut h,
        )
    };
    raw_result(rv, Function::EncapsulateKey)?;
    out.truncate((len as usize).min(out.len()));
    Ok(Encapsulated {
        reported: len,
        ciphertext: out,
        // SAFETY: a handle the module just returned (or none).
        key: (h != 0).then(|| unsafe { ObjectHandle::new_from_raw(h) }),
    })
}

/// The whole two-call convention: the length query, then a buffer of that length. Returns the
/// ciphertext and the new key.
pub fn raw_encapsulate(
    s: &Session,
    mech: CK_MECHANISM_TYPE,
    public_key: ObjectHandle,
    template: Vec<RawAttr>,
) -> cryptoki::error::Result<(Vec<u8>, ObjectHandle)> {
    let query = raw_encapsulate_with(s, mech, None, public_key, template.clone(), None)?;
    assert!(query.key.is_none(), "a length query made a key");
    let done = raw_encapsulate_with(
        s,
        mech,
        None,
        public_key,
        template,
        Some(query.reported as usize),
    )?;
    assert_eq!(done.reported, query.reported);
    let key = done.key.expect("C_EncapsulateKey returned no key");
    Ok((done.ciphertext, key))
}

/// `C_DecapsulateKey`.
pub fn raw_decapsulate_with(
    s: &Session,
    mech: CK_MECHANISM_TYPE,
    param: Option<&mut [u8]>,
    private_key: ObjectHandle,
    mut template: Vec<RawAttr>,
    ciphertext: &[u8],
) -> cryptoki::error::Result<ObjectHandle> {
    let mut m = raw_mechanism(mech, param);
    let mut t = raw_attrs(&mut template);
    let mut ct = ciphertext.to_vec();
    let mut h: CK_OBJECT_HANDLE = 0;
    // SAFETY: `m`, `t` (pointing into `template`), `ct` and `h` live across the call.
    let rv = unsafe {
        raw().C_DecapsulateKey(
            s.handle(),
            &mut m,
            private_key.handle(),
            t.as_mut_ptr(),
            t.len() as CK_ULONG,
            ct.as_mut_ptr(),
            ct.len() as CK_ULONG,
            &mut h,
        )
    };
    raw_result(rv, Function::DecapsulateKey)?;
    // SAFETY: a handle the module just returned.
    Ok(unsafe { ObjectHandle::new_from_raw(h) })
}

pub fn raw_decapsulate(
    s: &Session,
    mech: CK_MECHANISM_TYPE,
    private_key: ObjectHandle,
    template: Vec<RawAttr>,
    ciphertext: &[u8],
) -> cryptoki::error::Result<ObjectHandle> {
    raw_decapsulate_with(s, mech, None, private_key, template, ciphertext)
}

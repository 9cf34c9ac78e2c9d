//! Encryption, key creation and generation with mechanisms and key types cryptoki 0.12 cannot
//! name (AES-CCM/XTS/OFB/CFB, ChaCha20, `CKK_CHACHA20`, `CKK_AES_XTS`), made through the raw C
//! function list with the parameter structure given as it is.

use cryptoki::context::Function;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::{CK_ATTRIBUTE, CK_MECHANISM, CK_ULONG};

use super::{raw, raw_result, raw_template};

/// A raw `CK_MECHANISM` pointing at `param` (or at nothing), which must outlive it.
pub fn raw_mech<T>(mechanism: u64, param: Option<&mut T>) -> CK_MECHANISM {
    match param {
        Some(p) => CK_MECHANISM {
            mechanism,
            pParameter: (p as *mut T).cast(),
            ulParameterLen: std::mem::size_of::<T>() as CK_ULONG,
        },
        None => CK_MECHANISM {
            mechanism,
            pParameter: std::ptr::null_mut(),
            ulParameterLen: 0,
        },
    }
}

/// `template` plus `CKA_KEY_TYPE` = `key_type`, as C structures (pointing into both).
fn with_key_type(template: &[Attribute], key_type: &mut CK_ULONG) -> Vec<CK_ATTRIBUTE> {
    let mut t = raw_template(template);
    t.push(CK_ATTRIBUTE {
        type_: cryptoki_sys::CKA_KEY_TYPE,
        pValue: (key_type as *mut CK_ULONG).cast(),
        ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
    });
    t
}

/// A session secret key of any `CKK_*` holding `value`, extractable, with every usage flag.
pub fn raw_secret(
    s: &Session,
    key_type: u64,
    value: &[u8],
) -> cryptoki::error::Result<ObjectHandle> {
    let template = [
        Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Sign(true),
        Attribute::Verify(true),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Value(value.to_vec()),
    ];
    let mut kt = key_type;
    let mut t = with_key_type(&template, &mut kt);
    let mut h = 0;
    // SAFETY: `t` points into `template` and `kt`, live for the call.
    let rv =
        unsafe { raw().C_CreateObject(s.handle(), t.as_mut_ptr(), t.len() as CK_ULONG, &mut h) };
    raw_result(rv, Function::CreateObject)?;
    // SAFETY: a handle the module just returned.
    Ok(unsafe { ObjectHandle::new_from_raw(h) })
}

/// `C_GenerateKey` with a raw mechanism (no parameter) and `template` (which may hold
/// `CKA_KEY_TYPE` itself, or not).
pub fn raw_generate(
    s: &Session,
    mechanism: u64,
    template: &[Attribute],
) -> cryptoki::error::Result<ObjectHandle> {
    let mut m = raw_mech::<u8>(mechanism, None);
    let mut t = raw_template(template);
    let mut h = 0;
    // SAFETY: every pointer refers to a live local buffer of the stated length.
    let rv = unsafe {
        raw().C_GenerateKey(
            s.handle(),
            &mut m,
            t.as_mut_ptr(),
            t.len() as CK_ULONG,
            &mut h,
        )
    };
    raw_result(rv, Function::GenerateKey)?;
    // SAFETY: a handle the module just returned.
    Ok(unsafe { ObjectHandle::new_from_raw(h) })
}

/// Encrypts (or decrypts) `data` with `m` under `key`: single-part (`chunk` `None`, with the
/// NULL-buffer length query first) or in `chunk`-sized `C_*Update` calls and a `C_*Final`.
pub fn raw_crypt(
    s: &Session,
    encrypt: bool,
    m: &mut CK_MECHANISM,
    key: ObjectHandle,
    data: &[u8],
    chunk: Option<usize>,
) -> cryptoki::error::Result<Vec<u8>> {
    let p = raw();
    let h = s.handle();
    let mut input = data.to_vec();
    // SAFETY (every call): the session and key are this test's, `m` points at live parameter
    // memory, and every buffer is live for its stated length.
    unsafe {
        let (init, f_init) = if encrypt {
            (p.C_EncryptInit(h, m, key.handle()), Function::EncryptInit)
        } else {
            (p.C_DecryptInit(h, m, key.handle()), Function::DecryptInit)
        };
        raw_result(init, f_init)?;
        let single = |inp: &mut [u8], out: *mut u8, len: &mut CK_ULONG| {
            if encrypt {
                p.C_Encrypt(h, inp.as_mut_ptr(), inp.len() as CK_ULONG, out, len)
            } else {
                p.C_Decrypt(h, inp.as_mut_ptr(), inp.len() as CK_ULONG, out, len)
            }
        };
        let function = if encrypt {
            Function::Encrypt
        } else {
            Function::Decrypt
        };
        let Some(chunk) = chunk else {
            let mut len: CK_ULONG = 0;
            raw_result(single(&mut input, std::ptr::null_mut(), &mut len), function)?;
            let mut out = vec![0u8; len as usize];
            raw_result(single(&mut input, out.as_mut_ptr(), &mut len), function)?;
            out.truncate(len as usize);
            return Ok(out);
        };
        let mut out = Vec::new();
        for piece in input.chunks_mut(chunk.max(1)) {
            let mut buf = vec![0u8; piece.len() + 64];
            let mut len = buf.len() as CK_ULONG;
            let rv = if encrypt {
                p.C_EncryptUpdate(
                    h,
                    piece.as_mut_ptr(),
                    piece.len() as CK_ULONG,
                    buf.as_mut_ptr(),
                    &mut len,
                )
            } else {
                p.C_DecryptUpdate(
                    h,
                    piece.as_mut_ptr(),
                    piece.len() as CK_ULONG,
                    buf.as_mut_ptr(),
                    &mut len,
                )
            };
            raw_result(rv, function)?;
            out.extend_from_slice(&buf[..len as usize]);
        }
        let mut buf = vec![0u8; data.len() + 64];
        let mut len = buf.len() as CK_ULONG;
        let rv = if encrypt {
            p.C_EncryptFinal(h, buf.as_mut_ptr(), &mut len)
        } else {
            p.C_DecryptFinal(h, buf.as_mut_ptr(), &mut len)
        };
        raw_result(rv, function)?;
        out.extend_from_slice(&buf[..len as usize]);
        Ok(out)
    }
}

/// `C_GetMechanismList`, read raw: cryptoki 0.12 drops the numbers it cannot name.
pub fn raw_mechanism_list(slot: cryptoki::slot::Slot) -> Vec<u64> {
    let mut n: CK_ULONG = 0;
    // SAFETY: a NULL list asks for the count; then a buffer of that many.
    unsafe {
        let id = slot.id();
        assert_eq!(
            raw().C_GetMechanismList(id, std::ptr::null_mut(), &mut n),
            cryptoki_sys::CKR_OK
        );
        let mut list = vec![0; n as usize];
        assert_eq!(
            raw().C_GetMechanismList(id, list.as_mut_ptr(), &mut n),
            cryptoki_sys::CKR_OK
        );
        list.truncate(n as usize);
        list
    }
}

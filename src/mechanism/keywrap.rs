//! AES key wrap (PKCS#11 3.0 Current Mechanisms §2.14): `CKM_AES_KEY_WRAP` (RFC 3394) and
//! `CKM_AES_KEY_WRAP_KWP` (RFC 5649), for wrapping and unwrapping and, as the spec lists them,
//! single-part encryption and decryption. Also the adapters that give the existing cipher
//! mechanisms their `C_WrapKey` / `C_UnwrapKey` entry points.
//!
//! Error codes: a bad length is `CKR_DATA_LEN_RANGE` (encrypt), `CKR_ENCRYPTED_DATA_LEN_RANGE`
//! (decrypt), `CKR_KEY_SIZE_RANGE` (wrapping a key the algorithm cannot carry, as SoftHSM
//! answers) or `CKR_WRAPPED_KEY_LEN_RANGE` (unwrap); a failed integrity check is
//! `CKR_ENCRYPTED_DATA_INVALID` (decrypt) or `CKR_WRAPPED_KEY_INVALID` (unwrap).

use std::sync::Arc;

use cryptoki_sys::{
    CKF_DECRYPT, CKF_ENCRYPT, CKF_UNWRAP, CKF_WRAP, CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_KWP,
    CK_ULONG,
};
use zeroize::Zeroizing;

use super::entry;
use super::support::secret_key;
use super::{CipherFactory, CipherOperation, Forward, KeyMaterial, MechanismEntry};
use crate::crypto::wrap::{KeyWrap, WrapError};
use crate::error::{Error, Result, Rv};
use crate::types::{MechanismParam, ParamShape};

const MIN_KEY: CK_ULONG = 16;
const MAX_KEY: CK_ULONG = 32;

pub(super) fn entries() -> Vec<MechanismEntry> {
    let flags = CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP;
    vec![
        MechanismEntry {
            encrypt: Some(|k, p| KwOp::boxed(k, p, KeyWrap::Kw, true)),
            decrypt: Some(|k, p| KwOp::boxed(k, p, KeyWrap::Kw, false)),
            wrap: Some(|k, p, d| kw_wrap(k, p, d, KeyWrap::Kw)),
            unwrap: Some(|k, p, d| kw_unwrap(k, p, d, KeyWrap::Kw)),
            key_types: super::AES_KEYS,
            param: ParamShape::Iv(KeyWrap::Kw.iv_len()),
            forward: Forward::AsIs,
            ..entry(CKM_AES_KEY_WRAP, MIN_KEY, MAX_KEY, flags)
        },
        MechanismEntry {
            encrypt: Some(|k, p| KwOp::boxed(k, p, KeyWrap::Kwp, true)),
            decrypt: Some(|k, p| KwOp::boxed(k, p, KeyWrap::Kwp, false)),
            wrap: Some(|k, p, d| kw_wrap(k, p, d, KeyWrap::Kwp)),
            unwrap: Some(|k, p, d| kw_unwrap(k, p, d, KeyWrap::Kwp)),
            key_types: super::AES_KEYS,
            param: ParamShape::Iv(KeyWrap::Kwp.iv_len()),
            forward: Forward::AsIs,
            ..entry(CKM_AES_KEY_WRAP_KWP, MIN_KEY, MAX_KEY, flags)
        },
    ]
}

/// The optional IV: absent (or empty) means the RFC default, else exactly 8 (KW) or 4 (KWP)
/// bytes.
fn iv(param: &MechanismParam, kind: KeyWrap) -> Result<Option<Vec<u8>>> {
    match param {
        MechanismParam::None => Ok(None),
        MechanismParam::Bytes(b) if b.is_empty() => Ok(None),
        MechanismParam::Bytes(b) if b.len() == kind.iv_len() => Ok(Some(b.clone())),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    }
}

fn kek(key: &KeyMaterial) -> Result<Arc<Zeroizing<Vec<u8>>>> {
    let key = secret_key(key)?;
    if ![16, 24, 32].contains(&key.len()) {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    Ok(key)
}

fn kw_wrap(
    key: &KeyMaterial,
    param: &MechanismParam,
    data: &[u8],
    kind: KeyWrap,
) -> Result<Vec<u8>> {
    let kek = kek(key)?;
    let iv = iv(param, kind)?;
    match kind.wrap(&kek, iv.as_deref(), data)? {
        Ok(out) => Ok(out),
        Err(_) => Err(Rv::KEY_SIZE_RANGE)?,
    }
}

fn kw_unwrap(
    key: &KeyMaterial,
    param: &MechanismParam,
    data: &[u8],
    kind: KeyWrap,
) -> Result<Zeroizing<Vec<u8>>> {
    let kek = kek(key)?;
    let iv = iv(param, kind)?;
    match kind.unwrap(&kek, iv.as_deref(), data)? {
        Ok(out) => Ok(out),
        Err(WrapError::Length) => Err(Rv::WRAPPED_KEY_LEN_RANGE)?,
        Err(WrapError::Integrity) => Err(Rv::WRAPPED_KEY_INVALID)?,
    }
}

/// Single-part encryption / decryption: the input is buffered and processed at the end.
struct KwOp {
    kek: Arc<Zeroizing<Vec<u8>>>,
    iv: Option<Vec<u8>>,
    kind: KeyWrap,
    encrypt: bool,
    data: Zeroizing<Vec<u8>>,
}

impl KwOp {
    fn boxed(
        key: &KeyMaterial,
        param: &MechanismParam,
        kind: KeyWrap,
        encrypt: bool,
    ) -> Result<Box<dyn CipherOperation>> {
        Ok(Box::new(KwOp {
            kek: kek(key)?,
            iv: iv(param, kind)?,
            kind,
            encrypt,
            data: Zeroizing::new(Vec::new()),
        }))
    }
}

impl CipherOperation for KwOp {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        let total = self.data.len() + input_len;
        match (last, self.encrypt) {
            (false, _) => 0,
            (true, true) => self.kind.wrapped_len(total),
            (true, false) => total.saturating_sub(8),
        }
    }
    fn multipart(&self) -> bool {
        false
    }
    fn update(&mut self, data: &[u8], _out: &mut [u8]) -> Result<usize> {
        self.data.extend_from_slice(data);
        Ok(0)
    }
    fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        let data = std::mem::take(&mut self.data);
        let iv = self.iv.as_deref();
        if self.encrypt {
            match self.kind.wrap(&self.kek, iv, &data)? {
                Ok(wrapped) => super::put(out, &wrapped),
                Err(_) => Err(Rv::DATA_LEN_RANGE)?,
            }
        } else {
            match self.kind.unwrap(&self.kek, iv, &data)? {
                Ok(plain) => super::put(out, &plain),
                Err(WrapError::Length) => Err(Rv::ENCRYPTED_DATA_LEN_RANGE)?,
                Err(WrapError::Integrity) => Err(Rv::ENCRYPTED_DATA_INVALID)?,
            }
        }
    }
}

/// `C_WrapKey` through an encryption mechanism: the key bytes are encrypted single-part.
/// A key the mechanism cannot carry (too long for RSA, not block-aligned) is
/// `CKR_KEY_SIZE_RANGE`.
pub(super) fn wrap_by_encrypting(
    factory: CipherFactory,
    key: &KeyMaterial,
    param: &MechanismParam,
    data: &[u8],
) -> Result<Vec<u8>> {
    if data.is_empty() {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    let mut op = factory(key, param)?;
    match op.run_vec(data) {
        Ok(out) => Ok(out.to_vec()),
        Err(Error::Pkcs11(Rv::DATA_LEN_RANGE)) => Err(Rv::KEY_SIZE_RANGE)?,
        Err(e) => Err(e),
    }
}

/// `C_UnwrapKey` through a decryption mechanism, with the decryption codes turned into the
/// unwrapping ones.
pub(super) fn unwrap_by_decrypting(
    factory: CipherFactory,
    key: &KeyMaterial,
    param: &MechanismParam,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let mut op = factory(key, param)?;
    match op.run_vec(data) {
        Ok(out) => Ok(out),
        Err(Error::Pkcs11(Rv::ENCRYPTED_DATA_LEN_RANGE)) => Err(Rv::WRAPPED_KEY_LEN_RANGE)?,
        Err(Error::Pkcs11(Rv::ENCRYPTED_DATA_INVALID)) => Err(Rv::WRAPPED_KEY_INVALID)?,
        Err(e) => Err(e),
    }
}

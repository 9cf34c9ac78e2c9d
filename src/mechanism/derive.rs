//! Simple key derivations (PKCS#11 3.0 Current Mechanisms §2.42.2–2.42.6 and §2.15.6): a key
//! from the base key and a second key or some data — `CKM_CONCATENATE_BASE_AND_KEY`,
//! `CKM_CONCATENATE_BASE_AND_DATA`, `CKM_CONCATENATE_DATA_AND_BASE`, `CKM_XOR_BASE_AND_DATA`,
//! `CKM_EXTRACT_KEY_FROM_KEY` — and the data encrypted under an AES base key,
//! `CKM_AES_ECB_ENCRYPT_DATA` and `CKM_AES_CBC_ENCRYPT_DATA`.
//!
//! Each has a natural length (the concatenation's, the shorter operand for XOR, the data's for
//! the AES ones); a template may ask for less (the leading bytes are kept) but not for more
//! (`CKR_KEY_SIZE_RANGE`). `CKM_EXTRACT_KEY_FROM_KEY` has no natural length: the template says
//! it. The attribute rules for two base keys (sensitive if either is, …) are the core's.

use cryptoki_sys::{
    CKF_DERIVE, CKM_AES_CBC_ENCRYPT_DATA, CKM_AES_ECB_ENCRYPT_DATA, CKM_CONCATENATE_BASE_AND_DATA,
    CKM_CONCATENATE_BASE_AND_KEY, CKM_CONCATENATE_DATA_AND_BASE, CKM_EXTRACT_KEY_FROM_KEY,
    CKM_XOR_BASE_AND_DATA, CK_ULONG,
};
use zeroize::Zeroizing;

use super::support::secret_key;
use super::{entry, DeriveInput, Forward, MechanismEntry, AES_KEYS};
use crate::crypto::cipher::{AesBlocks, AesMode, AES_BLOCK};
use crate::error::{Result, Rv};
use crate::types::{MechanismParam, ParamShape};

/// Base key sizes in bytes, as for generic secrets.
const MIN: CK_ULONG = 1;
const MAX: CK_ULONG = 512;

pub(super) fn entries() -> Vec<MechanismEntry> {
    let simple = |kind, param, derive: super::DeriveFn| MechanismEntry {
        derive: Some(derive),
        param,
        ..entry(kind, MIN, MAX, CKF_DERIVE)
    };
    vec![
        simple(
            CKM_CONCATENATE_BASE_AND_KEY,
            ParamShape::KeyHandle,
            concatenate_base_and_key,
        ),
        // A REMOTE base key's module runs the data derivations (not the key one: the second
        // key's handle is this module's).
        MechanismEntry {
            forward: Forward::AsIs,
            ..simple(
                CKM_CONCATENATE_BASE_AND_DATA,
                ParamShape::DerivationString,
                |input| concatenate(input, false),
            )
        },
        MechanismEntry {
            forward: Forward::AsIs,
            ..simple(
                CKM_CONCATENATE_DATA_AND_BASE,
                ParamShape::DerivationString,
                |input| concatenate(input, true),
            )
        },
        MechanismEntry {
            forward: Forward::AsIs,
            ..simple(
                CKM_XOR_BASE_AND_DATA,
                ParamShape::DerivationString,
                xor_base_and_data,
            )
        },
        simple(CKM_EXTRACT_KEY_FROM_KEY, ParamShape::Ulong, extract_key),
        // The AES derivations encrypt the data: the new key holds no bits of the base key.
        MechanismEntry {
            key_types: AES_KEYS,
            ..simple(
                CKM_AES_ECB_ENCRYPT_DATA,
                ParamShape::DerivationString,
                aes_ecb_encrypt_data,
            )
        },
        MechanismEntry {
            key_types: AES_KEYS,
            forward: Forward::AsIs,
            ..simple(
                CKM_AES_CBC_ENCRYPT_DATA,
                ParamShape::AesCbcEncryptData,
                aes_cbc_encrypt_data,
            )
        },
    ]
}

/// `value` cut to the length asked for, which may not exceed it.
fn cut(mut value: Zeroizing<Vec<u8>>, len: Option<usize>) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let len = len.unwrap_or(value.len());
    if len == 0 || len > value.len() {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    value.truncate(len);
    Ok(vec![value])
}

fn data_of(param: &MechanismParam) -> Result<&[u8]> {
    match param {
        MechanismParam::Data(data) => Ok(data),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    }
}

fn concatenate_base_and_key(input: &DeriveInput<'_>) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let base = secret_key(input.base)?;
    let MechanismParam::Key(_) = input.param else {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    };
    let other = input.keys.first().ok_or(Rv::MECHANISM_PARAM_INVALID)?;
    let mut value = Zeroizing::new(Vec::with_capacity(base.len() + other.len()));
    value.extend_from_slice(&base);
    value.extend_from_slice(other);
    cut(value, input.len)
}

fn concatenate(input: &DeriveInput<'_>, data_first: bool) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let base = secret_key(input.base)?;
    let data = data_of(input.param)?;
    let (a, b): (&[u8], &[u8]) = match data_first {
        true => (data, &base),
        false => (&base, data),
    };
    let mut value = Zeroizing::new(Vec::with_capacity(a.len() + b.len()));
    value.extend_from_slice(a);
    value.extend_from_slice(b);
    cut(value, input.len)
}

fn xor_base_and_data(input: &DeriveInput<'_>) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let base = secret_key(input.base)?;
    let data = data_of(input.param)?;
    let value = base.iter().zip(data).map(|(a, b)| a ^ b).collect();
    cut(Zeroizing::new(value), input.len)
}

/// §2.42.6: the bits from `CK_EXTRACT_PARAMS` on (bit 0 is the most significant bit of the
/// first byte), reading past the end wraps around to the start of the base key — so the new key
/// may even be longer than the base (the spec's own example takes 5 bytes from 4).
fn extract_key(input: &DeriveInput<'_>) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let base = secret_key(input.base)?;
    let MechanismParam::Bytes(bytes) = input.param else {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    };
    let first = <[u8; size_of::<CK_ULONG>()]>::try_from(bytes.as_slice())
        .map(CK_ULONG::from_ne_bytes)
        .map_err(|_| Rv::MECHANISM_PARAM_INVALID)?;
    let len = input.len.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
    if len == 0 || base.is_empty() {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    let bits = base.len() as u64 * 8;
    let first = first % bits;
    let mut value = Zeroizing::new(vec![0u8; len]);
    for j in 0..len as u64 * 8 {
        let at = (first + j) % bits;
        let bit = (base[(at / 8) as usize] >> (7 - at % 8)) & 1;
        value[(j / 8) as usize] |= bit << (7 - j % 8);
    }
    Ok(vec![value])
}

fn aes_encrypt_data(
    input: &DeriveInput<'_>,
    mode: AesMode,
    iv: Option<&[u8]>,
    data: &[u8],
) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let key = secret_key(input.base)?;
    if data.is_empty() || !data.len().is_multiple_of(AES_BLOCK) {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    let value = AesBlocks::new(&key, mode, iv, true)?.update(data)?;
    cut(value, input.len)
}

fn aes_ecb_encrypt_data(input: &DeriveInput<'_>) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let data = data_of(input.param)?;
    aes_encrypt_data(input, AesMode::Ecb, None, data)
}

fn aes_cbc_encrypt_data(input: &DeriveInput<'_>) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let MechanismParam::CbcData { iv, data } = input.param else {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    };
    aes_encrypt_data(input, AesMode::Cbc, Some(iv), data)
}

//! Key derivation functions (PKCS#11 3.0 Current Mechanisms §2.42–2.43): HKDF (RFC 5869) as
//! `CKM_HKDF_DERIVE` (a secret key), `CKM_HKDF_DATA` (a data object) and `CKM_HKDF_KEY_GEN`
//! (`CKK_HKDF` keys, a row of the key-algorithm table); and the NIST SP 800-108 KDFs in counter
//! and feedback mode, with HMAC (SHA-1, SHA-2, SHA-3) or AES-CMAC as PRF and the additional derived
//! keys of `pAdditionalDerivedKeys`.
//!
//! HKDF: `bExtract` / `bExpand` choose the steps (at least one); with extraction only, the
//! result is the PRK (one hash long). The salt is NULL (HashLen zeros), data, or the value of a
//! secret key (`hSaltKey`, resolved by the core).
//!
//! SP 800-108: the PRF input is the data-parameter list in the caller's order — the iteration
//! variable (the counter in counter mode, K(i-1) in feedback mode), an optional counter
//! (feedback mode), the DKM length, byte arrays and key values. The output stream is cut into
//! the keys in order: the base template's key first, then each additional key.

use cryptoki_sys::{
    CKF_DERIVE, CKF_GENERATE, CKK_AES, CKK_GENERIC_SECRET, CKK_HKDF, CKK_SHA224_HMAC,
    CKK_SHA256_HMAC, CKK_SHA384_HMAC, CKK_SHA3_224_HMAC, CKK_SHA3_256_HMAC, CKK_SHA3_384_HMAC,
    CKK_SHA3_512_HMAC, CKK_SHA512_HMAC, CKK_SHA_1_HMAC, CKM_AES_CMAC, CKM_HKDF_DATA,
    CKM_HKDF_DERIVE, CKM_HKDF_KEY_GEN, CKM_SHA224_HMAC, CKM_SHA256_HMAC, CKM_SHA384_HMAC,
    CKM_SHA3_224_HMAC, CKM_SHA3_256_HMAC, CKM_SHA3_384_HMAC, CKM_SHA3_512_HMAC, CKM_SHA512_HMAC,
    CKM_SHA_1_HMAC, CKM_SP800_108_COUNTER_KDF, CKM_SP800_108_FEEDBACK_KDF, CK_KEY_TYPE, CK_ULONG,
};
use zeroize::Zeroizing;

use super::support::{hash_from_ckm, secret_key};
use super::{entry, DeriveInput, Forward, MechanismEntry};
use crate::crypto::digest::HashAlg;
use crate::crypto::kdf::{hkdf_expand, hkdf_extract};
use crate::crypto::mac::Mac;
use crate::error::{Result, Rv};
use crate::types::{CounterFormat, HkdfSalt, MechanismParam, ParamShape, PrfData};

/// Key sizes in bytes, as for generic secrets.
const MIN: CK_ULONG = 1;
const MAX: CK_ULONG = 512;

/// The PKCS#11 3.0 HMAC key types, which HKDF and the HMAC PRFs take like generic secrets.
macro_rules! with_hmac_keys {
    ($($first:expr),*) => {
        &[
            $($first,)*
            CKK_SHA_1_HMAC,
            CKK_SHA224_HMAC,
            CKK_SHA256_HMAC,
            CKK_SHA384_HMAC,
            CKK_SHA512_HMAC,
            CKK_SHA3_224_HMAC,
            CKK_SHA3_256_HMAC,
            CKK_SHA3_384_HMAC,
            CKK_SHA3_512_HMAC,
        ]
    };
}

/// HKDF takes HKDF keys, generic secrets and HMAC keys (§2.43.3).
const HKDF_KEYS: &[CK_KEY_TYPE] = with_hmac_keys!(CKK_HKDF, CKK_GENERIC_SECRET);
/// SP 800-108: generic secrets and HMAC keys for the HMAC PRFs, AES keys for AES-CMAC (checked
/// against the PRF when the derivation starts).
const KBKDF_KEYS: &[CK_KEY_TYPE] = with_hmac_keys!(CKK_GENERIC_SECRET, CKK_AES);

pub(super) fn entries() -> Vec<MechanismEntry> {
    vec![
        MechanismEntry {
            derive: Some(hkdf),
            param: ParamShape::Hkdf,
            key_types: HKDF_KEYS,
            // With a salt given as data or none (a salt key is a handle of this module).
            forward: Forward::AsIs,
            ..entry(CKM_HKDF_DERIVE, MIN, MAX, CKF_DERIVE)
        },
        MechanismEntry {
            derive: Some(hkdf),
            derives_data: true,
            param: ParamShape::Hkdf,
            key_types: HKDF_KEYS,
            ..entry(CKM_HKDF_DATA, MIN, MAX, CKF_DERIVE)
        },
        entry(CKM_HKDF_KEY_GEN, MIN, MAX, CKF_GENERATE),
        MechanismEntry {
            derive: Some(kbkdf),
            param: ParamShape::Sp800_108,
            key_types: KBKDF_KEYS,
            ..entry(CKM_SP800_108_COUNTER_KDF, MIN, MAX, CKF_DERIVE)
        },
        MechanismEntry {
            derive: Some(kbkdf),
            param: ParamShape::Sp800_108Feedback,
            key_types: KBKDF_KEYS,
            ..entry(CKM_SP800_108_FEEDBACK_KDF, MIN, MAX, CKF_DERIVE)
        },
    ]
}

fn hkdf(input: &DeriveInput<'_>) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let MechanismParam::Hkdf {
        extract,
        expand,
        prf,
        salt,
        info,
    } = input.param
    else {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    };
    let alg = hash_from_ckm(*prf)?;
    if !extract && !expand {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    let ikm = secret_key(input.base)?;
    let prk = if *extract {
        let salt: &[u8] = match salt {
            HkdfSalt::Null => &[],
            HkdfSalt::Data(data) => data,
            HkdfSalt::Key(_) => input.keys.first().ok_or(Rv::MECHANISM_PARAM_INVALID)?,
        };
        hkdf_extract(alg, salt, &ikm)?
    } else {
        Zeroizing::new(ikm.to_vec())
    };
    if !expand {
        // The PRK itself: one hash long, so a template asking for another length is refused.
        if input.len.is_some_and(|len| len != prk.len()) {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
        return Ok(vec![prk]);
    }
    let len = input.len.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
    Ok(vec![hkdf_expand(alg, &prk, info, len)?])
}

/// An SP 800-108 PRF.
#[derive(Clone, Copy)]
enum Prf {
    Hmac(HashAlg),
    Cmac,
}

impl Prf {
    fn of(kind: cryptoki_sys::CK_MECHANISM_TYPE) -> Result<Prf> {
        Ok(match kind {
            CKM_SHA_1_HMAC => Prf::Hmac(HashAlg::Sha1),
            CKM_SHA224_HMAC => Prf::Hmac(HashAlg::Sha224),
            CKM_SHA256_HMAC => Prf::Hmac(HashAlg::Sha256),
            CKM_SHA384_HMAC => Prf::Hmac(HashAlg::Sha384),
            CKM_SHA512_HMAC => Prf::Hmac(HashAlg::Sha512),
            CKM_SHA3_224_HMAC => Prf::Hmac(HashAlg::Sha3_224),
            CKM_SHA3_256_HMAC => Prf::Hmac(HashAlg::Sha3_256),
            CKM_SHA3_384_HMAC => Prf::Hmac(HashAlg::Sha3_384),
            CKM_SHA3_512_HMAC => Prf::Hmac(HashAlg::Sha3_512),
            CKM_AES_CMAC => Prf::Cmac,
            _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
        })
    }

    fn key_type_fits(self, key_type: CK_KEY_TYPE) -> bool {
        match self {
            Prf::Hmac(_) => key_type != CKK_AES,
            Prf::Cmac => key_type == CKK_AES,
        }
    }

    fn output_len(self) -> usize {
        match self {
            Prf::Hmac(alg) => alg.output_len(),
            Prf::Cmac => crate::crypto::cipher::AES_BLOCK,
        }
    }

    fn mac(self, key: &[u8]) -> Result<Mac> {
        match self {
            Prf::Hmac(alg) => Mac::hmac(alg, key),
            Prf::Cmac => Mac::aes_cmac(key),
        }
    }
}

/// `value` in `format`: 8 to `max_bits` bits, whole bytes; a value that does not fit is
/// `CKR_KEY_SIZE_RANGE` (too much output asked for the counter's width).
fn encode(value: u64, format: CounterFormat, max_bits: CK_ULONG) -> Result<Vec<u8>> {
    let bits = format.width_bits;
    if bits == 0 || bits > max_bits || !bits.is_multiple_of(8) {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    if bits < 64 && value >> bits != 0 {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    let n = (bits / 8) as usize;
    let be = value.to_be_bytes();
    let mut bytes = be[8 - n..].to_vec();
    if format.little_endian {
        bytes.reverse();
    }
    Ok(bytes)
}

fn kbkdf(input: &DeriveInput<'_>) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let MechanismParam::Kbkdf { prf, data, iv, .. } = input.param else {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    };
    let prf = Prf::of(*prf)?;
    if !prf.key_type_fits(input.base_type) {
        Err(Rv::KEY_TYPE_INCONSISTENT)?
    }
    let feedback = iv.is_some();
    // One iteration variable (a counter format in counter mode, none in feedback mode), at most
    // one DKM length, and a separate counter only in feedback mode.
    let iterations = data
        .iter()
        .filter(|d| matches!(d, PrfData::Iteration(_)))
        .count();
    let counters = data
        .iter()
        .filter(|d| matches!(d, PrfData::Counter(_)))
        .count();
    let dkms = data
        .iter()
        .filter(|d| matches!(d, PrfData::DkmLength { .. }))
        .count();
    let iteration_fits = data.iter().all(|d| match d {
        PrfData::Iteration(format) => format.is_some() != feedback,
        PrfData::Counter(_) => feedback,
        _ => true,
    });
    if iterations != 1 || counters > 1 || dkms > 1 || !iteration_fits {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    let key = secret_key(input.base)?;
    let first = input.len.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
    let lens: Vec<usize> = std::iter::once(first)
        .chain(input.additional.iter().copied())
        .collect();
    if lens.contains(&0) {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    let total: usize = lens.iter().sum();
    let h = prf.output_len();
    let blocks = total.div_ceil(h);
    let mut out = Zeroizing::new(Vec::with_capacity(blocks * h));
    let mut previous = Zeroizing::new(iv.clone().unwrap_or_default());
    for i in 1..=blocks as u64 {
        let mut mac = prf.mac(&key)?;
        let mut keys = input.keys.iter();
        for d in data {
            match d {
                PrfData::Iteration(Some(format)) | PrfData::Counter(format) => {
                    mac.update(&encode(i, *format, 32)?)?
                }
                PrfData::Iteration(None) => mac.update(&previous)?,
                PrfData::DkmLength {
                    sum_of_keys,
                    format,
                } => {
                    let bytes = if *sum_of_keys { total } else { blocks * h };
                    mac.update(&encode(bytes as u64 * 8, *format, 64)?)?
                }
                PrfData::Bytes(bytes) => mac.update(bytes)?,
                PrfData::Key(_) => mac.update(keys.next().ok_or(Rv::MECHANISM_PARAM_INVALID)?)?,
            }
        }
        previous = Zeroizing::new(mac.finish()?);
        out.extend_from_slice(&previous);
    }
    let mut keys = Vec::with_capacity(lens.len());
    let mut at = 0;
    for len in lens {
        keys.push(Zeroizing::new(out[at..at + len].to_vec()));
        at += len;
    }
    Ok(keys)
}

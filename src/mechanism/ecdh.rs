//! Elliptic-curve Diffie-Hellman key derivation (PKCS#11 3.0 Current Mechanisms §2.3.15–16):
//! `CKM_ECDH1_DERIVE` and `CKM_ECDH1_COFACTOR_DERIVE`, which coincide on the prime curves
//! sqlhsm supports (cofactor 1). They also take X25519 and X448 keys (`CKK_EC_MONTGOMERY`,
//! §2.3.8, RFC 7748, made by `CKM_EC_MONTGOMERY_KEY_PAIR_GEN`): the peer's public value is then
//! the raw 32 or 56 bytes (a DER OCTET STRING around them is accepted too), Z the function's
//! output, and a peer value of small order, whose Z is all zeros, is refused.
//!
//! KDFs: `CKD_NULL` (the shared secret Z itself; no shared data allowed) and the ANSI X9.63
//! `CKD_SHA*_KDF`. When a length is requested, `CKD_NULL` truncates Z "from the leading end"
//! as the spec says (the trailing, least significant bytes are kept, as SoftHSM does); the
//! X9.63 KDF produces exactly that many bytes. Without a requested length the result is Z
//! (field length) or one hash output.
//!
//! A peer point that does not decode, is off the curve or is at infinity is
//! `CKR_MECHANISM_PARAM_INVALID`: it is part of the parameter, and PKCS#11 has no closer code.

use cryptoki_sys::{
    CKD_NULL, CKD_SHA1_KDF, CKD_SHA224_KDF, CKD_SHA256_KDF, CKD_SHA384_KDF, CKD_SHA512_KDF,
    CKF_DERIVE, CKF_EC_COMPRESS, CKF_EC_CURVENAME, CKF_EC_F_P, CKF_EC_OID, CKF_EC_UNCOMPRESS,
    CKF_GENERATE_KEY_PAIR, CKM_ECDH1_COFACTOR_DERIVE, CKM_ECDH1_DERIVE,
    CKM_EC_MONTGOMERY_KEY_PAIR_GEN, CK_FLAGS, CK_ULONG,
};
use zeroize::Zeroizing;

use super::entry;
use super::support::private_key;
use super::{DeriveInput, Forward, MechanismEntry};
use crate::crypto::digest::HashAlg;
use crate::crypto::ecdh::{ecdh, x963_kdf};
use crate::crypto::keys::Family;
use crate::error::{Result, Rv};
use crate::key_algorithm::bits_range;
use crate::types::MechanismParam;

/// Peer points may be compressed as well as uncompressed.
const FLAGS: CK_FLAGS =
    CKF_DERIVE | CKF_EC_F_P | CKF_EC_OID | CKF_EC_CURVENAME | CKF_EC_UNCOMPRESS | CKF_EC_COMPRESS;
const MIN_BITS: CK_ULONG = bits_range(Family::Ec).0;
const MAX_BITS: CK_ULONG = bits_range(Family::Ec).1;

pub(super) fn entries() -> Vec<MechanismEntry> {
    vec![
        entry(
            CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
            bits_range(Family::Montgomery).0,
            bits_range(Family::Montgomery).1,
            CKF_GENERATE_KEY_PAIR | CKF_EC_OID | CKF_EC_CURVENAME,
        ),
        MechanismEntry {
            derive: Some(derive),
            param: super::ParamShape::Ecdh1Derive,
            forward: Forward::AsIs,
            ..entry(CKM_ECDH1_DERIVE, MIN_BITS, MAX_BITS, FLAGS)
        },
        MechanismEntry {
            derive: Some(derive),
            param: super::ParamShape::Ecdh1Derive,
            ..entry(CKM_ECDH1_COFACTOR_DERIVE, MIN_BITS, MAX_BITS, FLAGS)
        },
    ]
}

fn derive(input: &DeriveInput<'_>) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    let (key, len) = (input.base, input.len);
    let MechanismParam::Ecdh {
        kdf,
        shared_data,
        public_data,
    } = input.param
    else {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    };
    let hash = match *kdf {
        CKD_NULL => None,
        CKD_SHA1_KDF => Some(HashAlg::Sha1),
        CKD_SHA224_KDF => Some(HashAlg::Sha224),
        CKD_SHA256_KDF => Some(HashAlg::Sha256),
        CKD_SHA384_KDF => Some(HashAlg::Sha384),
        CKD_SHA512_KDF => Some(HashAlg::Sha512),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    };
    if hash.is_none() && !shared_data.is_empty() {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    let (key, kind) = private_key(key)?;
    if !matches!(kind.family, Family::Ec | Family::Montgomery) {
        Err(Rv::KEY_TYPE_INCONSISTENT)?
    }
    if len == Some(0) {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    let z = ecdh(&key, public_data)?;
    match hash {
        None => {
            let n = len.unwrap_or(z.len());
            if n > z.len() {
                Err(Rv::KEY_SIZE_RANGE)?
            }
            Ok(vec![Zeroizing::new(z[z.len() - n..].to_vec())])
        }
        Some(alg) => Ok(vec![x963_kdf(
            alg,
            &z,
            shared_data,
            len.unwrap_or(alg.output_len()),
        )?]),
    }
}

//! Pieces every mechanism family shares: picking key material of the right kind, checking that
//! a mechanism takes no parameter, mapping PKCS#11 hash and MGF codes, and collecting input
//! (hashed for the multi-part mechanisms, buffered for the single-part ones).

use std::sync::Arc;

use cryptoki_sys::{
    CKG_MGF1_SHA1, CKG_MGF1_SHA224, CKG_MGF1_SHA256, CKG_MGF1_SHA384, CKG_MGF1_SHA3_224,
    CKG_MGF1_SHA3_256, CKG_MGF1_SHA3_384, CKG_MGF1_SHA3_512, CKG_MGF1_SHA512, CKM_SHA224,
    CKM_SHA256, CKM_SHA384, CKM_SHA3_224, CKM_SHA3_256, CKM_SHA3_384, CKM_SHA3_512, CKM_SHA512,
    CKM_SHA_1, CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE,
};
use zeroize::Zeroizing;

use super::KeyMaterial;
use crate::crypto::digest::{HashAlg, Hasher};
use crate::crypto::keys::{KeyFacts, PrivateKey, PublicKey};
use crate::error::{Result, Rv};
use crate::types::MechanismParam;

/// The private key, or `CKR_KEY_TYPE_INCONSISTENT`.
pub(crate) fn private_key(key: &KeyMaterial) -> Result<(Arc<PrivateKey>, KeyFacts)> {
    match key {
        KeyMaterial::Private(k) => Ok((Arc::clone(k), k.facts()?)),
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    }
}

/// The public key (derived from a private one if that is what the core holds).
pub(crate) fn public_key(key: &KeyMaterial) -> Result<(Arc<PublicKey>, KeyFacts)> {
    let public = match key {
        KeyMaterial::Public(k) => Arc::clone(k),
        KeyMaterial::Private(k) => Arc::new(k.public_key()?),
        KeyMaterial::Secret(_) | KeyMaterial::External(_) => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    };
    let kind = public.facts()?;
    Ok((public, kind))
}

/// Secret key bytes, or `CKR_KEY_TYPE_INCONSISTENT`.
pub(crate) fn secret_key(key: &KeyMaterial) -> Result<Arc<Zeroizing<Vec<u8>>>> {
    match key {
        KeyMaterial::Secret(k) => Ok(Arc::clone(k)),
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    }
}

/// Mechanisms without a parameter accept a NULL one or an empty byte string.
pub(crate) fn no_param(param: &MechanismParam) -> Result<()> {
    match param {
        MechanismParam::None => Ok(()),
        MechanismParam::Bytes(b) if b.is_empty() => Ok(()),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    }
}

/// The hash a `CKM_SHA*` code names inside PSS / OAEP parameters.
pub(crate) fn hash_from_ckm(kind: CK_MECHANISM_TYPE) -> Result<HashAlg> {
    Ok(match kind {
        CKM_SHA_1 => HashAlg::Sha1,
        CKM_SHA224 => HashAlg::Sha224,
        CKM_SHA256 => HashAlg::Sha256,
        CKM_SHA384 => HashAlg::Sha384,
        CKM_SHA512 => HashAlg::Sha512,
        CKM_SHA3_224 => HashAlg::Sha3_224,
        CKM_SHA3_256 => HashAlg::Sha3_256,
        CKM_SHA3_384 => HashAlg::Sha3_384,
        CKM_SHA3_512 => HashAlg::Sha3_512,
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    })
}

/// The hash of a `CKG_MGF1_*` code.
pub(crate) fn hash_from_mgf(mgf: CK_RSA_PKCS_MGF_TYPE) -> Result<HashAlg> {
    Ok(match mgf {
        CKG_MGF1_SHA1 => HashAlg::Sha1,
        CKG_MGF1_SHA224 => HashAlg::Sha224,
        CKG_MGF1_SHA256 => HashAlg::Sha256,
        CKG_MGF1_SHA384 => HashAlg::Sha384,
        CKG_MGF1_SHA512 => HashAlg::Sha512,
        CKG_MGF1_SHA3_224 => HashAlg::Sha3_224,
        CKG_MGF1_SHA3_256 => HashAlg::Sha3_256,
        CKG_MGF1_SHA3_384 => HashAlg::Sha3_384,
        CKG_MGF1_SHA3_512 => HashAlg::Sha3_512,
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    })
}

/// Input of a signature operation: hashed as it arrives (multi-part hash-and-sign mechanisms)
/// or kept whole (single-part mechanisms that sign what the caller hands over).
pub(crate) enum Input {
    Hash(Hasher),
    Raw(Zeroizing<Vec<u8>>),
}

impl Input {
    pub(crate) fn new(hash: Option<HashAlg>) -> Result<Input> {
        Ok(match hash {
            Some(alg) => Input::Hash(Hasher::new(alg)?),
            None => Input::Raw(Zeroizing::new(Vec::new())),
        })
    }

    pub(crate) fn multipart(&self) -> bool {
        matches!(self, Input::Hash(_))
    }

    pub(crate) fn update(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Input::Hash(h) => h.update(data),
            Input::Raw(buf) => {
                buf.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// The digest, or everything buffered; the input starts over afterwards.
    pub(crate) fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Input::Hash(h) => Ok(Zeroizing::new(h.finish()?)),
            Input::Raw(buf) => Ok(std::mem::take(buf)),
        }
    }
}

//! Which mechanisms are forwarded to a remote module, and in what form. Hash-and-sign
//! mechanisms are split: the hash runs here (fast, multi-part, and independent of which
//! combinations the remote offers: SoftHSM has no `CKM_ECDSA_SHA256`), and the raw signature
//! (`CKM_ECDSA`, `CKM_RSA_PKCS` over a DigestInfo, `CKM_RSA_PKCS_PSS`) is made remotely.

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism as CkMechanism, MechanismType};
use cryptoki_sys::*;

use crate::crypto::digest::HashAlg;
use crate::error::{Result, Rv};
use crate::types::{Mechanism, MechanismParam};

/// How a signing mechanism reaches the remote: the hash done here first (if any), whether the
/// hash is wrapped in a DigestInfo, and the mechanism the remote runs.
pub struct SignPlan {
    pub prehash: Option<HashAlg>,
    pub digest_info: bool,
    pub remote: Mechanism,
}

fn hash_of(kind: CK_MECHANISM_TYPE) -> Option<(HashAlg, CK_MECHANISM_TYPE)> {
    Some(match kind {
        CKM_ECDSA_SHA1 => (HashAlg::Sha1, CKM_ECDSA),
        CKM_ECDSA_SHA224 => (HashAlg::Sha224, CKM_ECDSA),
        CKM_ECDSA_SHA256 => (HashAlg::Sha256, CKM_ECDSA),
        CKM_ECDSA_SHA384 => (HashAlg::Sha384, CKM_ECDSA),
        CKM_ECDSA_SHA512 => (HashAlg::Sha512, CKM_ECDSA),
        CKM_SHA1_RSA_PKCS => (HashAlg::Sha1, CKM_RSA_PKCS),
        CKM_SHA224_RSA_PKCS => (HashAlg::Sha224, CKM_RSA_PKCS),
        CKM_SHA256_RSA_PKCS => (HashAlg::Sha256, CKM_RSA_PKCS),
        CKM_SHA384_RSA_PKCS => (HashAlg::Sha384, CKM_RSA_PKCS),
        CKM_SHA512_RSA_PKCS => (HashAlg::Sha512, CKM_RSA_PKCS),
        CKM_SHA1_RSA_PKCS_PSS => (HashAlg::Sha1, CKM_RSA_PKCS_PSS),
        CKM_SHA224_RSA_PKCS_PSS => (HashAlg::Sha224, CKM_RSA_PKCS_PSS),
        CKM_SHA256_RSA_PKCS_PSS => (HashAlg::Sha256, CKM_RSA_PKCS_PSS),
        CKM_SHA384_RSA_PKCS_PSS => (HashAlg::Sha384, CKM_RSA_PKCS_PSS),
        CKM_SHA512_RSA_PKCS_PSS => (HashAlg::Sha512, CKM_RSA_PKCS_PSS),
        _ => return None,
    })
}

/// The plan for a signing mechanism, or `CKR_MECHANISM_INVALID` when it is not forwarded.
pub fn sign_plan(mechanism: &Mechanism) -> Result<SignPlan> {
    if let Some((hash, raw)) = hash_of(mechanism.kind) {
        let remote = Mechanism {
            kind: raw,
            param: mechanism.param.clone(),
        };
        check(&remote)?;
        return Ok(SignPlan {
            prehash: Some(hash),
            digest_info: raw == CKM_RSA_PKCS,
            remote,
        });
    }
    check(mechanism)?;
    Ok(SignPlan {
        prehash: None,
        digest_info: false,
        remote: mechanism.clone(),
    })
}

/// The DER DigestInfo prefix of PKCS#1 v1.5 signatures (RFC 8017 §9.2 note 1).
pub fn digest_info_prefix(hash: HashAlg) -> &'static [u8] {
    match hash {
        HashAlg::Sha1 => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        HashAlg::Sha224 => &[
            0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x04, 0x05, 0x00, 0x04, 0x1c,
        ],
        HashAlg::Sha256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        HashAlg::Sha384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        HashAlg::Sha512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
    }
}

/// `Ok` when [`with_remote`] can express the mechanism; the refusal is the caller's error.
pub fn check(mechanism: &Mechanism) -> Result<()> {
    let mut iv = Vec::new();
    to_remote(mechanism, &mut iv).map(|_| ())
}

/// Builds the remote form of `mechanism` (borrowing its parameter) and passes it to `call`.
/// The GCM IV is copied because the cryptoki structure wants it mutable.
pub fn with_remote<T>(
    mechanism: &Mechanism,
    call: impl FnOnce(&CkMechanism<'_>) -> cryptoki::error::Result<T>,
) -> cryptoki::error::Result<T> {
    let mut iv = Vec::new();
    let remote = to_remote(mechanism, &mut iv).map_err(|_| CkError::NotSupported)?;
    call(&remote)
}

fn mechanism_type(kind: CK_MECHANISM_TYPE) -> Result<MechanismType> {
    MechanismType::try_from(kind).map_err(|_| Rv::MECHANISM_PARAM_INVALID.into())
}

fn iv16(param: &MechanismParam) -> Result<[u8; 16]> {
    match param {
        MechanismParam::Bytes(iv) => iv
            .as_slice()
            .try_into()
            .map_err(|_| Rv::MECHANISM_PARAM_INVALID.into()),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    }
}

fn to_remote<'a>(mechanism: &'a Mechanism, iv: &'a mut Vec<u8>) -> Result<CkMechanism<'a>> {
    let no_param = || -> Result<()> {
        if mechanism.param != MechanismParam::None {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        Ok(())
    };
    Ok(match (mechanism.kind, &mechanism.param) {
        (CKM_RSA_PKCS, _) => {
            no_param()?;
            CkMechanism::RsaPkcs
        }
        (CKM_RSA_X_509, _) => {
            no_param()?;
            CkMechanism::RsaX509
        }
        (
            CKM_RSA_PKCS_PSS,
            MechanismParam::Pss {
                hash,
                mgf,
                salt_len,
            },
        ) => CkMechanism::RsaPkcsPss(PkcsPssParams {
            hash_alg: mechanism_type(*hash)?,
            mgf: PkcsMgfType::try_from(*mgf).map_err(|_| Rv::MECHANISM_PARAM_INVALID)?,
            s_len: (*salt_len).into(),
        }),
        (
            CKM_RSA_PKCS_OAEP,
            MechanismParam::Oaep {
                hash,
                mgf,
                source_data,
            },
        ) => CkMechanism::RsaPkcsOaep(PkcsOaepParams::new(
            mechanism_type(*hash)?,
            PkcsMgfType::try_from(*mgf).map_err(|_| Rv::MECHANISM_PARAM_INVALID)?,
            if source_data.is_empty() {
                PkcsOaepSource::empty()
            } else {
                PkcsOaepSource::data_specified(source_data)
            },
        )),
        (CKM_ECDSA, _) => {
            no_param()?;
            CkMechanism::Ecdsa
        }
        (CKM_EDDSA, MechanismParam::None) => {
            CkMechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
        }
        (CKM_EDDSA, MechanismParam::Eddsa { prehash, context }) => {
            CkMechanism::Eddsa(EddsaParams::new(match (prehash, context.is_empty()) {
                (true, _) => EddsaSignatureScheme::Ed25519ph(context),
                (false, false) => EddsaSignatureScheme::Ed25519ctx(context),
                (false, true) => EddsaSignatureScheme::Pure,
            }))
        }
        (CKM_SHA_1_HMAC, _) => {
            no_param()?;
            CkMechanism::Sha1Hmac
        }
        (CKM_SHA224_HMAC, _) => {
            no_param()?;
            CkMechanism::Sha224Hmac
        }
        (CKM_SHA256_HMAC, _) => {
            no_param()?;
            CkMechanism::Sha256Hmac
        }
        (CKM_SHA384_HMAC, _) => {
            no_param()?;
            CkMechanism::Sha384Hmac
        }
        (CKM_SHA512_HMAC, _) => {
            no_param()?;
            CkMechanism::Sha512Hmac
        }
        (CKM_AES_CMAC, _) => {
            no_param()?;
            CkMechanism::AesCMac
        }
        (CKM_AES_ECB, _) => {
            no_param()?;
            CkMechanism::AesEcb
        }
        (CKM_AES_CBC, param) => CkMechanism::AesCbc(iv16(param)?),
        (CKM_AES_CBC_PAD, param) => CkMechanism::AesCbcPad(iv16(param)?),
        (
            CKM_AES_GCM,
            MechanismParam::Gcm {
                iv: given,
                aad,
                tag_bits,
            },
        ) => {
            iv.clone_from(given);
            CkMechanism::AesGcm(
                GcmParams::new(iv, aad, (*tag_bits).into())
                    .map_err(|_| Rv::MECHANISM_PARAM_INVALID)?,
            )
        }
        (CKM_AES_KEY_WRAP, _) => {
            no_param()?;
            CkMechanism::AesKeyWrap
        }
        (CKM_AES_KEY_WRAP_KWP, _) => {
            no_param()?;
            CkMechanism::AesKeyWrapPad
        }
        (
            CKM_ECDH1_DERIVE,
            MechanismParam::Ecdh {
                kdf,
                shared_data,
                public_data,
            },
        ) => {
            // The cryptoki crate passes only the null KDF; others are not forwarded.
            if *kdf != CKD_NULL || !shared_data.is_empty() {
                Err(Rv::MECHANISM_PARAM_INVALID)?
            }
            CkMechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), public_data))
        }
        _ => {
            tracing::debug!(
                mechanism = mechanism.kind,
                "mechanism not forwarded to remote modules"
            );
            Err(Rv::MECHANISM_INVALID)?
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_sign_is_split() {
        let plan = sign_plan(&Mechanism::new(CKM_ECDSA_SHA256)).unwrap();
        assert_eq!(plan.prehash, Some(HashAlg::Sha256));
        assert_eq!(plan.remote.kind, CKM_ECDSA);
        assert!(!plan.digest_info);
        let plan = sign_plan(&Mechanism::new(CKM_SHA384_RSA_PKCS)).unwrap();
        assert_eq!(plan.remote.kind, CKM_RSA_PKCS);
        assert!(plan.digest_info);
        let plan = sign_plan(&Mechanism::new(CKM_ECDSA)).unwrap();
        assert!(plan.prehash.is_none());
    }

    #[test]
    fn digest_info_prefixes_announce_the_hash_length() {
        for hash in [
            HashAlg::Sha1,
            HashAlg::Sha224,
            HashAlg::Sha256,
            HashAlg::Sha384,
            HashAlg::Sha512,
        ] {
            let prefix = digest_info_prefix(hash);
            assert_eq!(*prefix.last().unwrap() as usize, hash.output_len());
            assert_eq!(prefix[1] as usize, prefix.len() - 2 + hash.output_len());
        }
    }

    #[test]
    fn unsupported_forms_are_refused() {
        assert_eq!(
            check(&Mechanism::new(CKM_SHA256_HMAC_GENERAL))
                .unwrap_err()
                .rv(),
            Rv::MECHANISM_INVALID
        );
        let cbc_without_iv = Mechanism::new(CKM_AES_CBC);
        assert_eq!(
            check(&cbc_without_iv).unwrap_err().rv(),
            Rv::MECHANISM_PARAM_INVALID
        );
        let ecdh_with_kdf = Mechanism {
            kind: CKM_ECDH1_DERIVE,
            param: MechanismParam::Ecdh {
                kdf: CKD_SHA256_KDF,
                shared_data: vec![],
                public_data: vec![4; 65],
            },
        };
        assert_eq!(
            check(&ecdh_with_kdf).unwrap_err().rv(),
            Rv::MECHANISM_PARAM_INVALID
        );
        assert!(check(&Mechanism::new(CKM_RSA_PKCS)).is_ok());
    }
}

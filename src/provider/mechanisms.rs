//! The REMOTE form of each mechanism a remote module is asked to run. Which mechanisms are
//! forwarded is declared in the mechanism registry ([`Forward`]); the `cryptoki` value each
//! becomes is one row of `FORMS` here. Hash-and-sign mechanisms are split: the hash runs here
//! (fast, multi-part, and independent of which combinations the remote offers: SoftHSM has no
//! `CKM_ECDSA_SHA256`), and the raw signature (`CKM_ECDSA`, `CKM_RSA_PKCS` over a DigestInfo,
//! `CKM_RSA_PKCS_PSS`) is made remotely.

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::ekdf::AesCbcDeriveParams;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::hkdf::{HkdfParams, HkdfSalt as RemoteSalt};
use cryptoki::mechanism::misc::KeyDerivationStringData;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism as CkMechanism, MechanismType};
use cryptoki_sys::*;

use crate::crypto::digest::HashAlg;
use crate::error::{Result, Rv};
use crate::mechanism::{registry, Forward};
use crate::types::{HkdfSalt, Mechanism, MechanismParam};

/// How a signing mechanism reaches the remote: the hash done here first (if any), whether the
/// hash is wrapped in a DigestInfo, and the mechanism the remote runs.
pub struct SignPlan {
    pub prehash: Option<HashAlg>,
    pub digest_info: bool,
    pub remote: Mechanism,
}

/// The plan for a signing mechanism, or `CKR_MECHANISM_INVALID` when it is not forwarded. A
/// hash-and-sign mechanism is split as its registry entry declares ([`Forward::HashFirst`]).
pub fn sign_plan(mechanism: &Mechanism) -> Result<SignPlan> {
    let forward = registry::lookup(mechanism.kind).map(|e| e.forward);
    if let Some(Forward::HashFirst { hash, then }) = forward {
        let remote = Mechanism {
            kind: then,
            param: mechanism.param.clone(),
        };
        check(&remote)?;
        return Ok(SignPlan {
            prehash: Some(hash),
            digest_info: then == CKM_RSA_PKCS,
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
        HashAlg::Sha3_224 => &[
            0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x07, 0x05, 0x00, 0x04, 0x1c,
        ],
        HashAlg::Sha3_256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x08, 0x05, 0x00, 0x04, 0x20,
        ],
        HashAlg::Sha3_384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x09, 0x05, 0x00, 0x04, 0x30,
        ],
        HashAlg::Sha3_512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x0a, 0x05, 0x00, 0x04, 0x40,
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

fn mgf_type(mgf: CK_RSA_PKCS_MGF_TYPE) -> Result<PkcsMgfType> {
    PkcsMgfType::try_from(mgf).map_err(|_| Rv::MECHANISM_PARAM_INVALID.into())
}

/// `CKR_MECHANISM_INVALID`, logged: the mechanism (or this form of its parameter) is not one a
/// remote module is asked to run.
fn not_forwarded<T>(kind: CK_MECHANISM_TYPE) -> Result<T> {
    tracing::debug!(
        mechanism = kind,
        "mechanism not forwarded to remote modules"
    );
    Err(Rv::MECHANISM_INVALID)?
}

/// How the REMOTE form of one mechanism is built from its decoded parameter.
#[derive(Clone, Copy)]
enum Form {
    /// No parameter: any given is `CKR_MECHANISM_PARAM_INVALID`.
    Plain(fn() -> CkMechanism<'static>),
    /// A 16-byte IV (the mechanism's shape is `Iv(16)`).
    Iv16(fn([u8; 16]) -> CkMechanism<'static>),
    /// A parameter structure, converted by its own function (the IV buffer is for GCM, whose
    /// `cryptoki` structure wants it mutable).
    Param(
        for<'a> fn(
            CK_MECHANISM_TYPE,
            &'a MechanismParam,
            &'a mut Vec<u8>,
        ) -> Result<CkMechanism<'a>>,
    ),
}

/// The REMOTE form of every mechanism whose registry entry says [`Forward::AsIs`] (a test
/// checks both ways). Adding a forwarded mechanism is one row here.
const FORMS: &[(CK_MECHANISM_TYPE, Form)] = &[
    (CKM_RSA_PKCS, Form::Plain(|| CkMechanism::RsaPkcs)),
    (CKM_RSA_X_509, Form::Plain(|| CkMechanism::RsaX509)),
    (CKM_RSA_PKCS_PSS, Form::Param(rsa_pss)),
    (CKM_RSA_PKCS_OAEP, Form::Param(rsa_oaep)),
    (CKM_ECDSA, Form::Plain(|| CkMechanism::Ecdsa)),
    (CKM_EDDSA, Form::Param(eddsa)),
    (CKM_SHA_1_HMAC, Form::Plain(|| CkMechanism::Sha1Hmac)),
    (CKM_SHA224_HMAC, Form::Plain(|| CkMechanism::Sha224Hmac)),
    (CKM_SHA256_HMAC, Form::Plain(|| CkMechanism::Sha256Hmac)),
    (CKM_SHA384_HMAC, Form::Plain(|| CkMechanism::Sha384Hmac)),
    (CKM_SHA512_HMAC, Form::Plain(|| CkMechanism::Sha512Hmac)),
    (CKM_AES_CMAC, Form::Plain(|| CkMechanism::AesCMac)),
    (CKM_AES_ECB, Form::Plain(|| CkMechanism::AesEcb)),
    (CKM_AES_CBC, Form::Iv16(CkMechanism::AesCbc)),
    (CKM_AES_CBC_PAD, Form::Iv16(CkMechanism::AesCbcPad)),
    (CKM_AES_GCM, Form::Param(gcm)),
    (CKM_AES_KEY_WRAP, Form::Plain(|| CkMechanism::AesKeyWrap)),
    (
        CKM_AES_KEY_WRAP_KWP,
        Form::Plain(|| CkMechanism::AesKeyWrapPad),
    ),
    (CKM_ECDH1_DERIVE, Form::Param(ecdh1_derive)),
    (CKM_HKDF_DERIVE, Form::Param(hkdf)),
    (CKM_CONCATENATE_BASE_AND_DATA, Form::Param(derivation_data)),
    (CKM_CONCATENATE_DATA_AND_BASE, Form::Param(derivation_data)),
    (CKM_XOR_BASE_AND_DATA, Form::Param(derivation_data)),
    (CKM_AES_CBC_ENCRYPT_DATA, Form::Param(aes_cbc_encrypt_data)),
];

fn to_remote<'a>(mechanism: &'a Mechanism, iv: &'a mut Vec<u8>) -> Result<CkMechanism<'a>> {
    let Some((_, form)) = FORMS.iter().find(|(kind, _)| *kind == mechanism.kind) else {
        return not_forwarded(mechanism.kind);
    };
    match *form {
        Form::Plain(make) => {
            if mechanism.param != MechanismParam::None {
                Err(Rv::MECHANISM_PARAM_INVALID)?
            }
            Ok(make())
        }
        Form::Iv16(make) => match &mechanism.param {
            MechanismParam::Bytes(given) => Ok(make(
                given
                    .as_slice()
                    .try_into()
                    .map_err(|_| Rv::MECHANISM_PARAM_INVALID)?,
            )),
            _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
        },
        Form::Param(make) => make(mechanism.kind, &mechanism.param, iv),
    }
}

fn rsa_pss<'a>(
    kind: CK_MECHANISM_TYPE,
    param: &'a MechanismParam,
    _: &'a mut Vec<u8>,
) -> Result<CkMechanism<'a>> {
    let MechanismParam::Pss {
        hash,
        mgf,
        salt_len,
    } = param
    else {
        return not_forwarded(kind);
    };
    Ok(CkMechanism::RsaPkcsPss(PkcsPssParams {
        hash_alg: mechanism_type(*hash)?,
        mgf: mgf_type(*mgf)?,
        s_len: (*salt_len).into(),
    }))
}

fn rsa_oaep<'a>(
    kind: CK_MECHANISM_TYPE,
    param: &'a MechanismParam,
    _: &'a mut Vec<u8>,
) -> Result<CkMechanism<'a>> {
    let MechanismParam::Oaep {
        hash,
        mgf,
        source_data,
    } = param
    else {
        return not_forwarded(kind);
    };
    Ok(CkMechanism::RsaPkcsOaep(PkcsOaepParams::new(
        mechanism_type(*hash)?,
        mgf_type(*mgf)?,
        if source_data.is_empty() {
            PkcsOaepSource::empty()
        } else {
            PkcsOaepSource::data_specified(source_data)
        },
    )))
}

fn eddsa<'a>(
    kind: CK_MECHANISM_TYPE,
    param: &'a MechanismParam,
    _: &'a mut Vec<u8>,
) -> Result<CkMechanism<'a>> {
    let scheme = match param {
        MechanismParam::None => EddsaSignatureScheme::Pure,
        // The parameter is passed on as given (the Ed448 forms carry the same structure): an
        // empty context given through it stays the ctx variant, never pure Ed25519.
        MechanismParam::Eddsa {
            prehash: true,
            context,
        } => EddsaSignatureScheme::Ed25519ph(context),
        MechanismParam::Eddsa {
            prehash: false,
            context,
        } => EddsaSignatureScheme::Ed25519ctx(context),
        _ => return not_forwarded(kind),
    };
    Ok(CkMechanism::Eddsa(EddsaParams::new(scheme)))
}

fn gcm<'a>(
    kind: CK_MECHANISM_TYPE,
    param: &'a MechanismParam,
    iv: &'a mut Vec<u8>,
) -> Result<CkMechanism<'a>> {
    let MechanismParam::Gcm {
        iv: given,
        aad,
        tag_bits,
    } = param
    else {
        return not_forwarded(kind);
    };
    iv.clone_from(given);
    Ok(CkMechanism::AesGcm(
        GcmParams::new(iv, aad, (*tag_bits).into()).map_err(|_| Rv::MECHANISM_PARAM_INVALID)?,
    ))
}

fn ecdh1_derive<'a>(
    kind: CK_MECHANISM_TYPE,
    param: &'a MechanismParam,
    _: &'a mut Vec<u8>,
) -> Result<CkMechanism<'a>> {
    let MechanismParam::Ecdh {
        kdf,
        shared_data,
        public_data,
    } = param
    else {
        return not_forwarded(kind);
    };
    // The cryptoki crate passes only the null KDF; others are not forwarded.
    if *kdf != CKD_NULL || !shared_data.is_empty() {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    Ok(CkMechanism::Ecdh1Derive(Ecdh1DeriveParams::new(
        EcKdf::null(),
        public_data,
    )))
}

/// HKDF with a salt given as data (or none); a salt key is a handle of this module, which the
/// remote one does not know, so that form is not forwarded.
fn hkdf<'a>(
    kind: CK_MECHANISM_TYPE,
    param: &'a MechanismParam,
    _: &'a mut Vec<u8>,
) -> Result<CkMechanism<'a>> {
    let MechanismParam::Hkdf {
        extract,
        expand,
        prf,
        salt,
        info,
    } = param
    else {
        return not_forwarded(kind);
    };
    let salt = match (extract, salt) {
        (false, _) => None,
        (true, HkdfSalt::Null) => Some(RemoteSalt::Null),
        (true, HkdfSalt::Data(data)) => Some(RemoteSalt::Data(data)),
        (true, HkdfSalt::Key(_)) => return not_forwarded(kind),
    };
    Ok(CkMechanism::HkdfDerive(HkdfParams::new(
        mechanism_type(*prf)?,
        salt,
        expand.then_some(info.as_slice()),
    )))
}

/// `CK_KEY_DERIVATION_STRING_DATA` mechanisms.
fn derivation_data<'a>(
    kind: CK_MECHANISM_TYPE,
    param: &'a MechanismParam,
    _: &'a mut Vec<u8>,
) -> Result<CkMechanism<'a>> {
    let MechanismParam::Data(data) = param else {
        return not_forwarded(kind);
    };
    let data = KeyDerivationStringData::new(data);
    Ok(match kind {
        CKM_CONCATENATE_BASE_AND_DATA => CkMechanism::ConcatenateBaseAndData(data),
        CKM_CONCATENATE_DATA_AND_BASE => CkMechanism::ConcatenateDataAndBase(data),
        CKM_XOR_BASE_AND_DATA => CkMechanism::XorBaseAndData(data),
        _ => return not_forwarded(kind),
    })
}

fn aes_cbc_encrypt_data<'a>(
    kind: CK_MECHANISM_TYPE,
    param: &'a MechanismParam,
    _: &'a mut Vec<u8>,
) -> Result<CkMechanism<'a>> {
    let MechanismParam::CbcData { iv, data } = param else {
        return not_forwarded(kind);
    };
    Ok(CkMechanism::AesCbcEncryptData(AesCbcDeriveParams::new(
        *iv, data,
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::types::ParamShape;

    #[test]
    fn every_forwarded_mechanism_has_a_remote_form_and_back() {
        for entry in registry::all() {
            let has_form = FORMS.iter().any(|(kind, _)| *kind == entry.kind);
            match entry.forward {
                Forward::AsIs => assert!(has_form, "0x{:x} has no REMOTE form", entry.kind),
                Forward::Never => assert!(!has_form, "0x{:x} is not forwarded", entry.kind),
                Forward::HashFirst { then, .. } => {
                    assert!(!has_form, "0x{:x} is forwarded as 0x{then:x}", entry.kind);
                    assert!(entry.sign.is_some() && entry.verify.is_some());
                    let raw = registry::lookup(then).unwrap();
                    assert_eq!(raw.forward, Forward::AsIs, "0x{then:x}");
                    assert_eq!(
                        raw.param, entry.param,
                        "0x{:x} keeps its parameter",
                        entry.kind
                    );
                }
            }
        }
        for (i, (kind, form)) in FORMS.iter().enumerate() {
            assert!(
                FORMS[..i].iter().all(|(k, _)| k != kind),
                "0x{kind:x} twice"
            );
            let entry = registry::lookup(*kind).unwrap();
            assert_eq!(entry.forward, Forward::AsIs, "0x{kind:x}");
            match form {
                Form::Plain(_) => assert!(entry.param.is_flat(), "0x{kind:x}"),
                Form::Iv16(_) => assert_eq!(entry.param, ParamShape::Iv(16), "0x{kind:x}"),
                Form::Param(_) => assert!(!entry.param.is_flat(), "0x{kind:x}"),
            }
        }
    }

    #[test]
    fn derivations_forward_without_local_handles() {
        let hkdf = |salt| Mechanism {
            kind: CKM_HKDF_DERIVE,
            param: MechanismParam::Hkdf {
                extract: true,
                expand: true,
                prf: CKM_SHA256,
                salt,
                info: b"info".to_vec(),
            },
        };
        assert!(check(&hkdf(HkdfSalt::Null)).is_ok());
        assert!(check(&hkdf(HkdfSalt::Data(b"salt".to_vec()))).is_ok());
        assert_eq!(
            check(&hkdf(HkdfSalt::Key(5))).unwrap_err().rv(),
            Rv::MECHANISM_INVALID,
            "a salt key is this module's handle"
        );
        let data = MechanismParam::Data(zeroize::Zeroizing::new(b"data".to_vec()));
        for kind in [
            CKM_CONCATENATE_BASE_AND_DATA,
            CKM_CONCATENATE_DATA_AND_BASE,
            CKM_XOR_BASE_AND_DATA,
        ] {
            let m = Mechanism {
                kind,
                param: data.clone(),
            };
            with_remote(&m, |remote| {
                assert_eq!(
                    remote.mechanism_type(),
                    MechanismType::try_from(kind).unwrap()
                );
                Ok(())
            })
            .unwrap();
        }
        let cbc = Mechanism {
            kind: CKM_AES_CBC_ENCRYPT_DATA,
            param: MechanismParam::CbcData {
                iv: [0; 16],
                data: zeroize::Zeroizing::new(vec![1; 16]),
            },
        };
        assert!(check(&cbc).is_ok());
        let key = Mechanism {
            kind: CKM_CONCATENATE_BASE_AND_KEY,
            param: MechanismParam::Key(5),
        };
        assert_eq!(check(&key).unwrap_err().rv(), Rv::MECHANISM_INVALID);
    }

    #[test]
    fn forwarded_mechanisms_are_pinned() {
        let mut as_is: Vec<_> = registry::all()
            .iter()
            .filter(|e| e.forward == Forward::AsIs)
            .map(|e| e.kind)
            .collect();
        let mut expected = vec![
            CKM_RSA_PKCS,
            CKM_RSA_X_509,
            CKM_RSA_PKCS_PSS,
            CKM_RSA_PKCS_OAEP,
            CKM_ECDSA,
            CKM_EDDSA,
            CKM_SHA_1_HMAC,
            CKM_SHA224_HMAC,
            CKM_SHA256_HMAC,
            CKM_SHA384_HMAC,
            CKM_SHA512_HMAC,
            CKM_AES_CMAC,
            CKM_AES_ECB,
            CKM_AES_CBC,
            CKM_AES_CBC_PAD,
            CKM_AES_GCM,
            CKM_AES_KEY_WRAP,
            CKM_AES_KEY_WRAP_KWP,
            CKM_ECDH1_DERIVE,
            CKM_HKDF_DERIVE,
            CKM_CONCATENATE_BASE_AND_DATA,
            CKM_CONCATENATE_DATA_AND_BASE,
            CKM_XOR_BASE_AND_DATA,
            CKM_AES_CBC_ENCRYPT_DATA,
        ];
        as_is.sort_unstable();
        expected.sort_unstable();
        assert_eq!(as_is, expected);

        let mut split: Vec<_> = registry::all()
            .iter()
            .filter_map(|e| match e.forward {
                Forward::HashFirst { hash, then } => Some((e.kind, hash, then)),
                _ => None,
            })
            .collect();
        let mut expected = vec![
            (CKM_ECDSA_SHA1, HashAlg::Sha1, CKM_ECDSA),
            (CKM_ECDSA_SHA224, HashAlg::Sha224, CKM_ECDSA),
            (CKM_ECDSA_SHA256, HashAlg::Sha256, CKM_ECDSA),
            (CKM_ECDSA_SHA384, HashAlg::Sha384, CKM_ECDSA),
            (CKM_ECDSA_SHA512, HashAlg::Sha512, CKM_ECDSA),
            (CKM_SHA1_RSA_PKCS, HashAlg::Sha1, CKM_RSA_PKCS),
            (CKM_SHA224_RSA_PKCS, HashAlg::Sha224, CKM_RSA_PKCS),
            (CKM_SHA256_RSA_PKCS, HashAlg::Sha256, CKM_RSA_PKCS),
            (CKM_SHA384_RSA_PKCS, HashAlg::Sha384, CKM_RSA_PKCS),
            (CKM_SHA512_RSA_PKCS, HashAlg::Sha512, CKM_RSA_PKCS),
            (CKM_SHA1_RSA_PKCS_PSS, HashAlg::Sha1, CKM_RSA_PKCS_PSS),
            (CKM_SHA224_RSA_PKCS_PSS, HashAlg::Sha224, CKM_RSA_PKCS_PSS),
            (CKM_SHA256_RSA_PKCS_PSS, HashAlg::Sha256, CKM_RSA_PKCS_PSS),
            (CKM_SHA384_RSA_PKCS_PSS, HashAlg::Sha384, CKM_RSA_PKCS_PSS),
            (CKM_SHA512_RSA_PKCS_PSS, HashAlg::Sha512, CKM_RSA_PKCS_PSS),
            (CKM_ECDSA_SHA3_224, HashAlg::Sha3_224, CKM_ECDSA),
            (CKM_ECDSA_SHA3_256, HashAlg::Sha3_256, CKM_ECDSA),
            (CKM_ECDSA_SHA3_384, HashAlg::Sha3_384, CKM_ECDSA),
            (CKM_ECDSA_SHA3_512, HashAlg::Sha3_512, CKM_ECDSA),
            (CKM_SHA3_224_RSA_PKCS, HashAlg::Sha3_224, CKM_RSA_PKCS),
            (CKM_SHA3_256_RSA_PKCS, HashAlg::Sha3_256, CKM_RSA_PKCS),
            (CKM_SHA3_384_RSA_PKCS, HashAlg::Sha3_384, CKM_RSA_PKCS),
            (CKM_SHA3_512_RSA_PKCS, HashAlg::Sha3_512, CKM_RSA_PKCS),
        ];
        split.sort_unstable_by_key(|(k, _, _)| *k);
        expected.sort_unstable_by_key(|(k, _, _)| *k);
        assert_eq!(split, expected);
    }

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
            HashAlg::Sha3_224,
            HashAlg::Sha3_256,
            HashAlg::Sha3_384,
            HashAlg::Sha3_512,
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

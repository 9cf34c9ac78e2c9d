//! ECDSA on the NIST prime curves (PKCS#11 3.0 Current Mechanisms §2.3): raw `CKM_ECDSA` over a
//! caller's hash and the hash-and-sign `CKM_ECDSA_SHA*` and `CKM_ECDSA_SHA3_*`. Signatures are
//! `r ‖ s`, each as long as the field.

use std::sync::Arc;

use cryptoki_sys::{
    CKF_EC_CURVENAME, CKF_EC_F_P, CKF_EC_OID, CKF_EC_UNCOMPRESS, CKF_GENERATE_KEY_PAIR, CKF_SIGN,
    CKF_VERIFY, CKM_ECDSA, CKM_ECDSA_SHA1, CKM_ECDSA_SHA224, CKM_ECDSA_SHA256, CKM_ECDSA_SHA384,
    CKM_ECDSA_SHA3_224, CKM_ECDSA_SHA3_256, CKM_ECDSA_SHA3_384, CKM_ECDSA_SHA3_512,
    CKM_ECDSA_SHA512, CKM_EC_KEY_PAIR_GEN, CK_FLAGS,
};

use super::entry;
use super::support::{no_param, private_key, public_key, Input};
use super::{KeyMaterial, MechanismEntry, SignOperation, VerifyOperation};
use crate::crypto::digest::HashAlg;
use crate::crypto::keys::{Family, KeyFacts, PrivateKey, PublicKey};
use crate::crypto::sign::{ecdsa_sign, ecdsa_verify};
use crate::error::{Result, Rv};
use crate::key_algorithm::bits_range;
use crate::types::MechanismParam;

/// Curve capabilities every EC mechanism advertises: prime fields, named curves by OID or by
/// name, uncompressed points.
const EC_FLAGS: CK_FLAGS = CKF_EC_F_P | CKF_EC_OID | CKF_EC_CURVENAME | CKF_EC_UNCOMPRESS;
const MIN_BITS: cryptoki_sys::CK_ULONG = bits_range(Family::Ec).0;
const MAX_BITS: cryptoki_sys::CK_ULONG = bits_range(Family::Ec).1;

pub(super) fn entries() -> Vec<MechanismEntry> {
    let sv = CKF_SIGN | CKF_VERIFY | EC_FLAGS;
    let mut out = vec![
        entry(
            CKM_EC_KEY_PAIR_GEN,
            MIN_BITS,
            MAX_BITS,
            CKF_GENERATE_KEY_PAIR | EC_FLAGS,
        ),
        MechanismEntry {
            sign: Some(|k, p| EcdsaSign::boxed(k, p, None)),
            verify: Some(|k, p| EcdsaVerify::boxed(k, p, None)),
            forward: super::Forward::AsIs,
            ..entry(CKM_ECDSA, MIN_BITS, MAX_BITS, sv)
        },
    ];
    macro_rules! hashed {
        ($mech:expr, $alg:expr) => {
            out.push(MechanismEntry {
                sign: Some(|k, p| EcdsaSign::boxed(k, p, Some($alg))),
                verify: Some(|k, p| EcdsaVerify::boxed(k, p, Some($alg))),
                forward: super::Forward::HashFirst {
                    hash: $alg,
                    then: CKM_ECDSA,
                },
                ..entry($mech, MIN_BITS, MAX_BITS, sv)
            });
        };
    }
    hashed!(CKM_ECDSA_SHA1, HashAlg::Sha1);
    hashed!(CKM_ECDSA_SHA224, HashAlg::Sha224);
    hashed!(CKM_ECDSA_SHA256, HashAlg::Sha256);
    hashed!(CKM_ECDSA_SHA384, HashAlg::Sha384);
    hashed!(CKM_ECDSA_SHA512, HashAlg::Sha512);
    hashed!(CKM_ECDSA_SHA3_224, HashAlg::Sha3_224);
    hashed!(CKM_ECDSA_SHA3_256, HashAlg::Sha3_256);
    hashed!(CKM_ECDSA_SHA3_384, HashAlg::Sha3_384);
    hashed!(CKM_ECDSA_SHA3_512, HashAlg::Sha3_512);
    out
}

/// The field length in bytes of an EC key; other keys are the wrong type.
fn field_bytes(kind: KeyFacts) -> Result<usize> {
    match kind.family {
        Family::Ec => Ok(kind.bytes()),
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    }
}

struct EcdsaSign {
    key: Arc<PrivateKey>,
    field: usize,
    input: Input,
}

impl EcdsaSign {
    fn boxed(
        key: &KeyMaterial,
        param: &MechanismParam,
        hash: Option<HashAlg>,
    ) -> Result<Box<dyn SignOperation>> {
        no_param(param)?;
        let (key, kind) = private_key(key)?;
        Ok(Box::new(EcdsaSign {
            key,
            field: field_bytes(kind)?,
            input: Input::new(hash)?,
        }))
    }
}

impl SignOperation for EcdsaSign {
    fn signature_len(&self) -> usize {
        2 * self.field
    }
    fn multipart(&self) -> bool {
        self.input.multipart()
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data)
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        let digest = self.input.finish()?;
        if digest.is_empty() {
            // Raw CKM_ECDSA signs the caller's hash; an empty one is no hash at all.
            Err(Rv::DATA_LEN_RANGE)?
        }
        ecdsa_sign(&self.key, &digest)
    }
}

struct EcdsaVerify {
    key: Arc<PublicKey>,
    field: usize,
    input: Input,
}

impl EcdsaVerify {
    fn boxed(
        key: &KeyMaterial,
        param: &MechanismParam,
        hash: Option<HashAlg>,
    ) -> Result<Box<dyn VerifyOperation>> {
        no_param(param)?;
        let (key, kind) = public_key(key)?;
        Ok(Box::new(EcdsaVerify {
            key,
            field: field_bytes(kind)?,
            input: Input::new(hash)?,
        }))
    }
}

impl VerifyOperation for EcdsaVerify {
    fn signature_len(&self) -> Option<usize> {
        Some(2 * self.field)
    }
    fn multipart(&self) -> bool {
        self.input.multipart()
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data)
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let digest = self.input.finish()?;
        if Some(signature.len()) != self.signature_len() {
            Err(Rv::SIGNATURE_LEN_RANGE)?
        }
        if !ecdsa_verify(&self.key, &digest, signature)? {
            Err(Rv::SIGNATURE_INVALID)?
        }
        Ok(())
    }
}

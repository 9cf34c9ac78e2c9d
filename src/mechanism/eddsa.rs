//! EdDSA (PKCS#11 3.0 Current Mechanisms §2.3.14): pure Ed25519 only, no context. Pure EdDSA
//! hashes the message twice, so multi-part calls buffer it and sign at `C_SignFinal`.

use std::sync::Arc;

use cryptoki_sys::{
    CKF_EC_CURVENAME, CKF_EC_OID, CKF_GENERATE_KEY_PAIR, CKF_SIGN, CKF_VERIFY,
    CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA, CK_ULONG,
};
use zeroize::Zeroizing;

use super::entry;
use super::support::{private_key, public_key};
use super::{KeyMaterial, MechanismEntry, SignOperation, VerifyOperation};
use crate::crypto::keys::{Family, KeyFacts, PrivateKey, PublicKey};
use crate::crypto::sign::{ed25519_sign, ed25519_verify};
use crate::error::{Result, Rv};
use crate::key_algorithm::bits_range;
use crate::types::MechanismParam;

const ED25519_BITS: CK_ULONG = bits_range(Family::Edwards).0;
const SIGNATURE_LEN: usize = 64;

pub(super) fn entries() -> Vec<MechanismEntry> {
    vec![
        entry(
            CKM_EC_EDWARDS_KEY_PAIR_GEN,
            ED25519_BITS,
            ED25519_BITS,
            CKF_GENERATE_KEY_PAIR | CKF_EC_OID | CKF_EC_CURVENAME,
        ),
        MechanismEntry {
            sign: Some(EddsaSign::boxed),
            verify: Some(EddsaVerify::boxed),
            param: super::ParamShape::Eddsa,
            forward: super::Forward::AsIs,
            ..entry(
                CKM_EDDSA,
                ED25519_BITS,
                ED25519_BITS,
                CKF_SIGN | CKF_VERIFY | CKF_EC_OID | CKF_EC_CURVENAME,
            )
        },
    ]
}

/// Pure Ed25519 takes no parameter, or one that asks for exactly that (no prehash, no context).
fn check_param(param: &MechanismParam) -> Result<()> {
    match param {
        MechanismParam::None => Ok(()),
        MechanismParam::Eddsa {
            prehash: false,
            context,
        } if context.is_empty() => Ok(()),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    }
}

fn check_kind(kind: KeyFacts) -> Result<()> {
    match kind.family {
        Family::Edwards => Ok(()),
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    }
}

struct EddsaSign {
    key: Arc<PrivateKey>,
    message: Zeroizing<Vec<u8>>,
}

impl EddsaSign {
    fn boxed(key: &KeyMaterial, param: &MechanismParam) -> Result<Box<dyn SignOperation>> {
        check_param(param)?;
        let (key, kind) = private_key(key)?;
        check_kind(kind)?;
        Ok(Box::new(EddsaSign {
            key,
            message: Zeroizing::new(Vec::new()),
        }))
    }
}

impl SignOperation for EddsaSign {
    fn signature_len(&self) -> usize {
        SIGNATURE_LEN
    }
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.message.extend_from_slice(data);
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        let message = std::mem::take(&mut self.message);
        ed25519_sign(&self.key, &message)
    }
}

struct EddsaVerify {
    key: Arc<PublicKey>,
    message: Vec<u8>,
}

impl EddsaVerify {
    fn boxed(key: &KeyMaterial, param: &MechanismParam) -> Result<Box<dyn VerifyOperation>> {
        check_param(param)?;
        let (key, kind) = public_key(key)?;
        check_kind(kind)?;
        Ok(Box::new(EddsaVerify {
            key,
            message: Vec::new(),
        }))
    }
}

impl VerifyOperation for EddsaVerify {
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.message.extend_from_slice(data);
        Ok(())
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let message = std::mem::take(&mut self.message);
        if signature.len() != SIGNATURE_LEN {
            Err(Rv::SIGNATURE_LEN_RANGE)?
        }
        if !ed25519_verify(&self.key, &message, signature)? {
            Err(Rv::SIGNATURE_INVALID)?
        }
        Ok(())
    }
}

//! EdDSA (PKCS#11 3.0 Current Mechanisms §2.3.14) on Ed25519 and Ed448, every RFC 8032 scheme.
//! The absence or presence of `CK_EDDSA_PARAMS` and its content pick the scheme:
//!
//! | key | no parameter | `phFlag` false | `phFlag` true |
//! | --- | --- | --- | --- |
//! | Ed25519 | Ed25519 | Ed25519ctx (a context given through the parameters, even an empty one, is this variant) | Ed25519ph |
//! | Ed448 | Ed448, empty context | Ed448 with the context | Ed448ph |
//!
//! Ed448 always has a context (possibly empty), so its missing parameter has one meaning.
//! Ed25519ctx with an empty context is `CKR_MECHANISM_PARAM_INVALID`: RFC 8032 says the
//! context should not be empty, OpenSSL refuses it, and answering with a pure Ed25519 signature
//! instead would be a different signature. A context over 255 bytes is invalid too.
//!
//! Pure EdDSA hashes the message twice, so multi-part calls buffer it and sign at
//! `C_SignFinal` (the prehash variants do the same: OpenSSL hashes the whole message).

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
use crate::crypto::sign::{eddsa_sign, eddsa_verify, EddsaScheme, EDDSA_MAX_CONTEXT};
use crate::error::{Result, Rv};
use crate::key_algorithm::bits_range;
use crate::types::MechanismParam;

const MIN_BITS: CK_ULONG = bits_range(Family::Edwards).0;
const MAX_BITS: CK_ULONG = bits_range(Family::Edwards).1;

pub(super) fn entries() -> Vec<MechanismEntry> {
    vec![
        entry(
            CKM_EC_EDWARDS_KEY_PAIR_GEN,
            MIN_BITS,
            MAX_BITS,
            CKF_GENERATE_KEY_PAIR | CKF_EC_OID | CKF_EC_CURVENAME,
        ),
        MechanismEntry {
            sign: Some(EddsaSign::boxed),
            verify: Some(EddsaVerify::boxed),
            param: super::ParamShape::Eddsa,
            forward: super::Forward::AsIs,
            ..entry(
                CKM_EDDSA,
                MIN_BITS,
                MAX_BITS,
                CKF_SIGN | CKF_VERIFY | CKF_EC_OID | CKF_EC_CURVENAME,
            )
        },
    ]
}

/// The scheme and context a parameter asks for; the key's curve says Ed25519 or Ed448.
#[derive(Debug)]
struct Scheme {
    scheme: EddsaScheme,
    context: Vec<u8>,
    /// 64 for Ed25519, 114 for Ed448 (RFC 8032 §5.1.6, §5.2.6).
    signature_len: usize,
}

fn scheme(param: &MechanismParam, kind: KeyFacts) -> Result<Scheme> {
    if kind.family != Family::Edwards {
        Err(Rv::KEY_TYPE_INCONSISTENT)?
    }
    let (scheme, context) = match param {
        MechanismParam::None => (EddsaScheme::Pure, Vec::new()),
        MechanismParam::Eddsa { prehash, context } => (
            if *prehash {
                EddsaScheme::Prehash
            } else {
                EddsaScheme::Context
            },
            context.clone(),
        ),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    };
    if context.len() > EDDSA_MAX_CONTEXT {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    let ed25519 = kind.bits < 448;
    if ed25519 && scheme == EddsaScheme::Context && context.is_empty() {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    Ok(Scheme {
        scheme,
        context,
        signature_len: if ed25519 { 64 } else { 114 },
    })
}

struct EddsaSign {
    key: Arc<PrivateKey>,
    scheme: Scheme,
    message: Zeroizing<Vec<u8>>,
}

impl EddsaSign {
    fn boxed(key: &KeyMaterial, param: &MechanismParam) -> Result<Box<dyn SignOperation>> {
        let (key, kind) = private_key(key)?;
        let scheme = scheme(param, kind)?;
        Ok(Box::new(EddsaSign {
            key,
            scheme,
            message: Zeroizing::new(Vec::new()),
        }))
    }
}

impl SignOperation for EddsaSign {
    fn signature_len(&self) -> usize {
        self.scheme.signature_len
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
        eddsa_sign(
            &self.key,
            self.scheme.scheme,
            &self.scheme.context,
            &message,
        )
    }
}

struct EddsaVerify {
    key: Arc<PublicKey>,
    scheme: Scheme,
    message: Vec<u8>,
}

impl EddsaVerify {
    fn boxed(key: &KeyMaterial, param: &MechanismParam) -> Result<Box<dyn VerifyOperation>> {
        let (key, kind) = public_key(key)?;
        let scheme = scheme(param, kind)?;
        Ok(Box::new(EddsaVerify {
            key,
            scheme,
            message: Vec::new(),
        }))
    }
}

impl VerifyOperation for EddsaVerify {
    fn signature_len(&self) -> Option<usize> {
        Some(self.scheme.signature_len)
    }
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.message.extend_from_slice(data);
        Ok(())
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let message = std::mem::take(&mut self.message);
        if Some(signature.len()) != self.signature_len() {
            Err(Rv::SIGNATURE_LEN_RANGE)?
        }
        let valid = eddsa_verify(
            &self.key,
            self.scheme.scheme,
            &self.scheme.context,
            &message,
            signature,
        )?;
        if !valid {
            Err(Rv::SIGNATURE_INVALID)?
        }
        Ok(())
    }
}

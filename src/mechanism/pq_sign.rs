//! Post-quantum signatures (PKCS#11 3.2 Current Mechanisms, ML-DSA and SLH-DSA): pure
//! `CKM_ML_DSA` / `CKM_SLH_DSA`, the pre-hash `CKM_HASH_ML_DSA` / `CKM_HASH_SLH_DSA` over a
//! digest the caller made, and the hash-and-sign `CKM_HASH_ML_DSA_<hash>` /
//! `CKM_HASH_SLH_DSA_<hash>` (SHA-2, SHA-3, SHAKE128, SHAKE256).
//!
//! The parameter (`CK_SIGN_ADDITIONAL_CONTEXT`, or `CK_HASH_SIGN_ADDITIONAL_CONTEXT` for the
//! digest mechanisms) is optional except where it names the hash: absent, the signature is hedged
//! with an empty context. `CKH_HEDGE_PREFERRED` and `CKH_HEDGE_REQUIRED` sign hedged (fresh
//! randomness with the key's own), `CKH_DETERMINISTIC_REQUIRED` deterministically; a context
//! over 255 bytes or another hedge value is `CKR_MECHANISM_PARAM_INVALID`.
//!
//! Multi-part: pure ML-DSA streams into OpenSSL (nothing of the message is kept); the
//! hash-and-sign mechanisms keep a running hash; pure SLH-DSA must read the message twice, so
//! `C_SignUpdate` / `C_VerifyUpdate` buffer it, at most [`SLH_DSA_MAX_BUFFERED`] bytes
//! (`CKR_DATA_LEN_RANGE` beyond; a single-part `C_Sign` has no such limit, the caller's buffer
//! being signed where it is).

use std::sync::Arc;

use cryptoki_sys::{
    CKF_SIGN, CKF_VERIFY, CKH_DETERMINISTIC_REQUIRED, CKH_HEDGE_PREFERRED, CKH_HEDGE_REQUIRED,
    CKM_HASH_ML_DSA, CKM_HASH_ML_DSA_SHA224, CKM_HASH_ML_DSA_SHA256, CKM_HASH_ML_DSA_SHA384,
    CKM_HASH_ML_DSA_SHA3_224, CKM_HASH_ML_DSA_SHA3_256, CKM_HASH_ML_DSA_SHA3_384,
    CKM_HASH_ML_DSA_SHA3_512, CKM_HASH_ML_DSA_SHA512, CKM_HASH_ML_DSA_SHAKE128,
    CKM_HASH_ML_DSA_SHAKE256, CKM_HASH_SLH_DSA, CKM_HASH_SLH_DSA_SHA224, CKM_HASH_SLH_DSA_SHA256,
    CKM_HASH_SLH_DSA_SHA384, CKM_HASH_SLH_DSA_SHA3_224, CKM_HASH_SLH_DSA_SHA3_256,
    CKM_HASH_SLH_DSA_SHA3_384, CKM_HASH_SLH_DSA_SHA3_512, CKM_HASH_SLH_DSA_SHA512,
    CKM_HASH_SLH_DSA_SHAKE128, CKM_HASH_SLH_DSA_SHAKE256, CKM_ML_DSA, CKM_SLH_DSA,
    CK_MECHANISM_TYPE,
};
use zeroize::Zeroizing;

use super::pq_keygen::public_key_bytes;
use super::support::{hash_from_ckm, private_key, public_key};
use super::{entry, KeyMaterial, MechanismEntry, ParamShape, SignOperation, VerifyOperation};
use crate::crypto::digest::HashAlg;
use crate::crypto::keys::{Family, KeyFacts, PrivateKey, PublicKey};
use crate::crypto::pq_sign::{
    self, MessageSigner, MessageVerifier, PreHash, PreHasher, SignOptions, MAX_CONTEXT,
};
use crate::error::{Result, Rv};
use crate::types::MechanismParam;

/// The most a multi-part pure SLH-DSA signature or verification buffers (4 MiB).
pub const SLH_DSA_MAX_BUFFERED: usize = 4 << 20;

/// What the mechanism does with the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
    /// Pure ML-DSA / SLH-DSA over the message itself.
    Pure,
    /// HashML-DSA / HashSLH-DSA over the caller's digest, the hash named by the parameter.
    Digest,
    /// HashML-DSA / HashSLH-DSA, hashing the message here.
    Hash(PreHash),
}

/// The hash-and-sign mechanisms of each family, with their pre-hash.
const HASHED: [(CK_MECHANISM_TYPE, CK_MECHANISM_TYPE, PreHash); 10] = [
    (
        CKM_HASH_ML_DSA_SHA224,
        CKM_HASH_SLH_DSA_SHA224,
        PreHash::Fixed(HashAlg::Sha224),
    ),
    (
        CKM_HASH_ML_DSA_SHA256,
        CKM_HASH_SLH_DSA_SHA256,
        PreHash::Fixed(HashAlg::Sha256),
    ),
    (
        CKM_HASH_ML_DSA_SHA384,
        CKM_HASH_SLH_DSA_SHA384,
        PreHash::Fixed(HashAlg::Sha384),
    ),
    (
        CKM_HASH_ML_DSA_SHA512,
        CKM_HASH_SLH_DSA_SHA512,
        PreHash::Fixed(HashAlg::Sha512),
    ),
    (
        CKM_HASH_ML_DSA_SHA3_224,
        CKM_HASH_SLH_DSA_SHA3_224,
        PreHash::Fixed(HashAlg::Sha3_224),
    ),
    (
        CKM_HASH_ML_DSA_SHA3_256,
        CKM_HASH_SLH_DSA_SHA3_256,
        PreHash::Fixed(HashAlg::Sha3_256),
    ),
    (
        CKM_HASH_ML_DSA_SHA3_384,
        CKM_HASH_SLH_DSA_SHA3_384,
        PreHash::Fixed(HashAlg::Sha3_384),
    ),
    (
        CKM_HASH_ML_DSA_SHA3_512,
        CKM_HASH_SLH_DSA_SHA3_512,
        PreHash::Fixed(HashAlg::Sha3_512),
    ),
    (
        CKM_HASH_ML_DSA_SHAKE128,
        CKM_HASH_SLH_DSA_SHAKE128,
        PreHash::Shake128,
    ),
    (
        CKM_HASH_ML_DSA_SHAKE256,
        CKM_HASH_SLH_DSA_SHAKE256,
        PreHash::Shake256,
    ),
];

pub(super) fn entries() -> Vec<MechanismEntry> {
    let mut out = Vec::new();
    macro_rules! mechanism {
        ($kind:expr, $family:expr, $input:expr, $shape:expr) => {
            out.push(MechanismEntry {
                sign: Some(|k, p| PqSign::boxed(k, p, $family, $input)),
                verify: Some(|k, p| PqVerify::boxed(k, p, $family, $input)),
                param: $shape,
                ..entry(
                    $kind,
                    public_key_bytes($family).0,
                    public_key_bytes($family).1,
                    CKF_SIGN | CKF_VERIFY,
                )
            });
        };
    }
    mechanism!(
        CKM_ML_DSA,
        Family::MlDsa,
        Input::Pure,
        ParamShape::SignContext
    );
    mechanism!(
        CKM_SLH_DSA,
        Family::SlhDsa,
        Input::Pure,
        ParamShape::SignContext
    );
    mechanism!(
        CKM_HASH_ML_DSA,
        Family::MlDsa,
        Input::Digest,
        ParamShape::HashSignContext
    );
    mechanism!(
        CKM_HASH_SLH_DSA,
        Family::SlhDsa,
        Input::Digest,
        ParamShape::HashSignContext
    );
    macro_rules! hashed {
        ($i:expr) => {
            mechanism!(
                HASHED[$i].0,
                Family::MlDsa,
                Input::Hash(HASHED[$i].2),
                ParamShape::SignContext
            );
            mechanism!(
                HASHED[$i].1,
                Family::SlhDsa,
                Input::Hash(HASHED[$i].2),
                ParamShape::SignContext
            );
        };
    }
    hashed!(0);
    hashed!(1);
    hashed!(2);
    hashed!(3);
    hashed!(4);
    hashed!(5);
    hashed!(6);
    hashed!(7);
    hashed!(8);
    hashed!(9);
    out
}

/// The options and pre-hash a parameter asks for, once the key is known to fit.
fn decode(param: &MechanismParam, input: Input) -> Result<(SignOptions, Option<PreHash>)> {
    let (options, named_hash) = match param {
        MechanismParam::None => (SignOptions::default(), None),
        MechanismParam::SignContext {
            hedge,
            context,
            hash,
        } => {
            let deterministic = match *hedge {
                CKH_HEDGE_PREFERRED | CKH_HEDGE_REQUIRED => false,
                CKH_DETERMINISTIC_REQUIRED => true,
                _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
            };
            if context.len() > MAX_CONTEXT {
                Err(Rv::MECHANISM_PARAM_INVALID)?
            }
            let options = SignOptions {
                context: context.clone(),
                deterministic,
            };
            (options, *hash)
        }
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    };
    let hash = match input {
        Input::Pure => None,
        Input::Hash(hash) => Some(hash),
        // Only the digest mechanisms name a hash, and they must.
        Input::Digest => {
            let kind = named_hash.ok_or(Rv::MECHANISM_PARAM_INVALID)?;
            let hash = PreHash::Fixed(hash_from_ckm(kind)?);
            // SHA-1 has no place in FIPS 204 / 205.
            PreHasher::new(hash).map_err(|_| Rv::MECHANISM_PARAM_INVALID)?;
            Some(hash)
        }
    };
    Ok((options, hash))
}

fn check_family(facts: KeyFacts, family: Family) -> Result<()> {
    if facts.family != family {
        Err(Rv::KEY_TYPE_INCONSISTENT)?
    }
    Ok(())
}

/// How a signature's input is held between calls.
enum Held<S> {
    /// Pure ML-DSA: OpenSSL's streaming operation, started at the first part.
    Stream(Option<S>),
    /// Pure SLH-DSA: the message so far.
    Buffer(Zeroizing<Vec<u8>>),
    /// Hash-and-sign: the running pre-hash.
    Hash(PreHasher),
    /// The caller's digest (single-part).
    Digest(Vec<u8>),
}

impl<S> Held<S> {
    fn new(family: Family, input: Input, hash: Option<PreHash>) -> Result<Held<S>> {
        Ok(match (input, hash) {
            (Input::Pure, _) if family == Family::MlDsa => Held::Stream(None),
            (Input::Pure, _) => Held::Buffer(Zeroizing::new(Vec::new())),
            (Input::Hash(h), _) => Held::Hash(PreHasher::new(h)?),
            (Input::Digest, _) => Held::Digest(Vec::new()),
        })
    }

    fn multipart(&self) -> bool {
        !matches!(self, Held::Digest(_))
    }

    /// Takes a part of the message; `stream` starts the streaming operation.
    fn update(
        &mut self,
        data: &[u8],
        stream: impl FnOnce() -> Result<S>,
    ) -> Result<Option<&mut S>> {
        match self {
            Held::Stream(s) => {
                if s.is_none() {
                    *s = Some(stream()?);
                }
                Ok(s.as_mut())
            }
            Held::Buffer(buf) => {
                if buf.len().saturating_add(data.len()) > SLH_DSA_MAX_BUFFERED {
                    Err(Rv::DATA_LEN_RANGE)?
                }
                buf.extend_from_slice(data);
                Ok(None)
            }
            Held::Hash(h) => {
                h.update(data)?;
                Ok(None)
            }
            Held::Digest(d) => {
                d.extend_from_slice(data);
                Ok(None)
            }
        }
    }
}

struct PqSign {
    key: Arc<PrivateKey>,
    options: SignOptions,
    hash: Option<PreHash>,
    held: Held<MessageSigner>,
    len: usize,
}

impl PqSign {
    fn boxed(
        key: &KeyMaterial,
        param: &MechanismParam,
        family: Family,
        input: Input,
    ) -> Result<Box<dyn SignOperation>> {
        let (key, facts) = private_key(key)?;
        check_family(facts, family)?;
        let (options, hash) = decode(param, input)?;
        Ok(Box::new(PqSign {
            len: pq_sign::signature_len_of_private(&key)?,
            held: Held::new(family, input, hash)?,
            key,
            options,
            hash,
        }))
    }

    fn hash(&self) -> Result<PreHash> {
        Ok(self.hash.ok_or(Rv::GENERAL_ERROR)?)
    }
}

impl SignOperation for PqSign {
    fn signature_len(&self) -> usize {
        self.len
    }
    fn multipart(&self) -> bool {
        self.held.multipart()
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        let (key, options) = (&self.key, &self.options);
        if let Some(signer) = self
            .held
            .update(data, || MessageSigner::new(key, options))?
        {
            signer.update(data)?;
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        let hash = self.hash.ok_or(Rv::GENERAL_ERROR);
        match &mut self.held {
            Held::Stream(s) => match s.take() {
                Some(signer) => signer.finish(),
                None => MessageSigner::new(&self.key, &self.options)?.finish(),
            },
            Held::Buffer(buf) => {
                let message = std::mem::take(buf);
                pq_sign::sign(&self.key, &self.options, &message)
            }
            Held::Hash(h) => {
                let digest = h.finish()?;
                pq_sign::sign_prehashed(&self.key, &self.options, hash?, &digest)
            }
            Held::Digest(d) => {
                let digest = std::mem::take(d);
                pq_sign::sign_prehashed(&self.key, &self.options, hash?, &digest)
            }
        }
    }
    /// Single-part: the caller's buffer is signed where it is (pure ML-DSA at once rather than
    /// streamed, pure SLH-DSA without the multi-part limit).
    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        match &self.held {
            Held::Stream(None) => pq_sign::sign(&self.key, &self.options, data),
            Held::Buffer(buf) if buf.is_empty() => pq_sign::sign(&self.key, &self.options, data),
            Held::Digest(d) if d.is_empty() => {
                pq_sign::sign_prehashed(&self.key, &self.options, self.hash()?, data)
            }
            _ => {
                self.update(data)?;
                self.finish()
            }
        }
    }
}

struct PqVerify {
    key: Arc<PublicKey>,
    options: SignOptions,
    hash: Option<PreHash>,
    held: Held<MessageVerifier>,
    len: usize,
}

impl PqVerify {
    fn boxed(
        key: &KeyMaterial,
        param: &MechanismParam,
        family: Family,
        input: Input,
    ) -> Result<Box<dyn VerifyOperation>> {
        let (key, facts) = public_key(key)?;
        check_family(facts, family)?;
        let (options, hash) = decode(param, input)?;
        Ok(Box::new(PqVerify {
            len: pq_sign::signature_len_of_public(&key)?,
            held: Held::new(family, input, hash)?,
            key,
            options,
            hash,
        }))
    }

    fn hash(&self) -> Result<PreHash> {
        Ok(self.hash.ok_or(Rv::GENERAL_ERROR)?)
    }

    fn valid(&self, valid: bool) -> Result<()> {
        if !valid {
            Err(Rv::SIGNATURE_INVALID)?
        }
        Ok(())
    }
}

impl VerifyOperation for PqVerify {
    fn multipart(&self) -> bool {
        self.held.multipart()
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        let (key, options) = (&self.key, &self.options);
        if let Some(verifier) = self
            .held
            .update(data, || MessageVerifier::new(key, options))?
        {
            verifier.update(data)?;
        }
        Ok(())
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        // Every parameter set has one signature length (FIPS 204 Table 2, FIPS 205 Table 2).
        let len_ok = signature.len() == self.len;
        let hash = self.hash.ok_or(Rv::GENERAL_ERROR);
        let valid = match &mut self.held {
            Held::Stream(s) => {
                let verifier = match s.take() {
                    Some(v) => v,
                    None => MessageVerifier::new(&self.key, &self.options)?,
                };
                len_ok && verifier.finish(signature)?
            }
            Held::Buffer(buf) => {
                let message = std::mem::take(buf);
                len_ok && pq_sign::verify(&self.key, &self.options, &message, signature)?
            }
            Held::Hash(h) => {
                let digest = h.finish()?;
                len_ok
                    && pq_sign::verify_prehashed(
                        &self.key,
                        &self.options,
                        hash?,
                        &digest,
                        signature,
                    )?
            }
            Held::Digest(d) => {
                let digest = std::mem::take(d);
                len_ok
                    && pq_sign::verify_prehashed(
                        &self.key,
                        &self.options,
                        hash?,
                        &digest,
                        signature,
                    )?
            }
        };
        if !len_ok {
            Err(Rv::SIGNATURE_LEN_RANGE)?
        }
        self.valid(valid)
    }
    fn verify(&mut self, data: &[u8], signature: &[u8]) -> Result<()> {
        if signature.len() != self.len {
            Err(Rv::SIGNATURE_LEN_RANGE)?
        }
        let valid = match &self.held {
            Held::Stream(None) => pq_sign::verify(&self.key, &self.options, data, signature)?,
            Held::Buffer(buf) if buf.is_empty() => {
                pq_sign::verify(&self.key, &self.options, data, signature)?
            }
            Held::Digest(d) if d.is_empty() => {
                pq_sign::verify_prehashed(&self.key, &self.options, self.hash()?, data, signature)?
            }
            _ => {
                self.update(data)?;
                return self.finish(signature);
            }
        };
        self.valid(valid)
    }
}

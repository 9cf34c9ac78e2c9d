//! Post-quantum signatures: ML-DSA (FIPS 204) and SLH-DSA (FIPS 205), pure and pre-hash.
//!
//! - Pure ML-DSA streams: OpenSSL's message update feeds `mu = H(tr ‖ 0 ‖ |ctx| ‖ ctx ‖ M)` as
//!   the bytes arrive, so a multi-part signature holds no message ([`MessageSigner`],
//!   [`MessageVerifier`]).
//! - Pure SLH-DSA reads the message twice (FIPS 205 Algorithm 19: once for the randomizer, once
//!   for the digest), so it is one-shot here ([`sign`], [`verify`]); the mechanism buffers.
//! - HashML-DSA / HashSLH-DSA (FIPS 204 Algorithm 4, FIPS 205 Algorithm 23), which OpenSSL does
//!   not offer: the message is hashed here ([`PreHasher`]), `M' = 1 ‖ |ctx| ‖ ctx ‖ OID(PH) ‖
//!   PH(M)` is built here, and OpenSSL signs `M'` as it stands (its raw message encoding), which
//!   is exactly the internal signing FIPS defines over `M'` ([`sign_prehashed`]).
//!
//! Verification answers a plain `bool`; length checks and PKCS#11 codes are the mechanisms'.

use openssl::hash::{Hasher, MessageDigest};
use openssl::pkey::{Private, Public};
use openssl::pkey_ctx::PkeyCtx;

use crate::crypto::digest::HashAlg;
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::crypto::{discard_errors_unless, openssl_error};
use crate::error::{Result, Rv};
use crate::ffi::openssl_ext::{self, MessageOp, MessageParams};

/// The longest context string FIPS 204 and FIPS 205 allow (its length is one byte of `M'`).
pub const MAX_CONTEXT: usize = 255;

/// What a signature is made with besides the key and message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignOptions {
    /// The context string, at most [`MAX_CONTEXT`] bytes.
    pub context: Vec<u8>,
    /// Deterministic rather than hedged signing (verification ignores it).
    pub deterministic: bool,
}

impl SignOptions {
    fn params(&self, raw: bool) -> Result<MessageParams<'_>> {
        if self.context.len() > MAX_CONTEXT {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        Ok(MessageParams {
            context: &self.context,
            deterministic: self.deterministic,
            raw,
        })
    }
}

/// The largest signature the key makes (ML-DSA and SLH-DSA signatures have one fixed length per
/// parameter set, which OpenSSL reports as the key's size).
pub fn signature_len_of_private(key: &PrivateKey) -> Result<usize> {
    Ok(key.pkey()?.size())
}

/// As [`signature_len_of_private`], for a public key.
pub fn signature_len_of_public(key: &PublicKey) -> Result<usize> {
    Ok(key.pkey()?.size())
}

/// Pure ML-DSA signing fed in parts (FIPS 204 Algorithm 2): nothing of the message is kept.
pub struct MessageSigner {
    ctx: PkeyCtx<Private>,
    max_len: usize,
}

impl MessageSigner {
    pub fn new(key: &PrivateKey, options: &SignOptions) -> Result<MessageSigner> {
        let mut ctx = PkeyCtx::new(key.pkey()?).map_err(openssl_error)?;
        openssl_ext::message_init(&mut ctx, MessageOp::Sign, options.params(false)?)
            .map_err(openssl_error)?;
        // OpenSSL starts mu at the first update and refuses to finish without one: an empty
        // update now makes the empty message signable.
        openssl_ext::message_update(&mut ctx, MessageOp::Sign, &[]).map_err(openssl_error)?;
        Ok(MessageSigner {
            ctx,
            max_len: signature_len_of_private(key)?,
        })
    }

    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        openssl_ext::message_update(&mut self.ctx, MessageOp::Sign, data).map_err(openssl_error)
    }

    /// The signature of everything fed; the signer is spent.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        openssl_ext::sign_message_final(&mut self.ctx, self.max_len).map_err(openssl_error)
    }
}

/// Pure ML-DSA verification fed in parts (FIPS 204 Algorithm 3).
pub struct MessageVerifier {
    ctx: PkeyCtx<Public>,
}

impl MessageVerifier {
    pub fn new(key: &PublicKey, options: &SignOptions) -> Result<MessageVerifier> {
        let mut ctx = PkeyCtx::new(key.pkey()?).map_err(openssl_error)?;
        openssl_ext::message_init(&mut ctx, MessageOp::Verify, options.params(false)?)
            .map_err(openssl_error)?;
        openssl_ext::message_update(&mut ctx, MessageOp::Verify, &[]).map_err(openssl_error)?;
        Ok(MessageVerifier { ctx })
    }

    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        openssl_ext::message_update(&mut self.ctx, MessageOp::Verify, data).map_err(openssl_error)
    }

    /// Whether `signature` is valid for everything fed; the verifier is spent.
    pub fn finish(mut self, signature: &[u8]) -> Result<bool> {
        let valid = openssl_ext::verify_message_final(&mut self.ctx, signature).unwrap_or(false);
        Ok(discard_errors_unless(valid))
    }
}

fn one_shot_sign(key: &PrivateKey, params: MessageParams<'_>, message: &[u8]) -> Result<Vec<u8>> {
    let mut ctx = PkeyCtx::new(key.pkey()?).map_err(openssl_error)?;
    openssl_ext::message_init(&mut ctx, MessageOp::Sign, params).map_err(openssl_error)?;
    let mut sig = Vec::new();
    ctx.sign_to_vec(message, &mut sig).map_err(openssl_error)?;
    Ok(sig)
}

fn one_shot_verify(
    key: &PublicKey,
    params: MessageParams<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let mut ctx = PkeyCtx::new(key.pkey()?).map_err(openssl_error)?;
    openssl_ext::message_init(&mut ctx, MessageOp::Verify, params).map_err(openssl_error)?;
    Ok(discard_errors_unless(
        ctx.verify(message, signature).unwrap_or(false),
    ))
}

/// Pure ML-DSA or SLH-DSA over the whole message (the key says which).
pub fn sign(key: &PrivateKey, options: &SignOptions, message: &[u8]) -> Result<Vec<u8>> {
    one_shot_sign(key, options.params(false)?, message)
}

/// Verifies a signature made by [`sign`] with the same context.
pub fn verify(
    key: &PublicKey,
    options: &SignOptions,
    message: &[u8],
    signature: &[u8],
) -> Result<bool> {
    one_shot_verify(key, options.params(false)?, message, signature)
}

/// The pre-hash function PH of HashML-DSA / HashSLH-DSA (FIPS 204 §5.4, FIPS 205 §10.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreHash {
    /// A SHA-2 or SHA-3 hash.
    Fixed(HashAlg),
    /// SHAKE128 with 256 bits of output.
    Shake128,
    /// SHAKE256 with 512 bits of output.
    Shake256,
}

impl PreHash {
    /// `PH(M)`'s length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            PreHash::Fixed(alg) => alg.output_len(),
            PreHash::Shake128 => 32,
            PreHash::Shake256 => 64,
        }
    }

    /// The last arc of the function's OID under 2.16.840.1.101.3.4.2 (NIST hash algorithms);
    /// `None` for SHA-1, which FIPS 204 and FIPS 205 do not allow.
    fn oid_arc(self) -> Option<u8> {
        Some(match self {
            PreHash::Fixed(HashAlg::Sha1) => return None,
            PreHash::Fixed(HashAlg::Sha256) => 1,
            PreHash::Fixed(HashAlg::Sha384) => 2,
            PreHash::Fixed(HashAlg::Sha512) => 3,
            PreHash::Fixed(HashAlg::Sha224) => 4,
            PreHash::Fixed(HashAlg::Sha3_224) => 7,
            PreHash::Fixed(HashAlg::Sha3_256) => 8,
            PreHash::Fixed(HashAlg::Sha3_384) => 9,
            PreHash::Fixed(HashAlg::Sha3_512) => 10,
            PreHash::Shake128 => 11,
            PreHash::Shake256 => 12,
        })
    }

    /// The DER encoding of the OID, as `M'` carries it.
    fn oid_der(self) -> Result<[u8; 11]> {
        let arc = self.oid_arc().ok_or(Rv::MECHANISM_PARAM_INVALID)?;
        Ok([
            0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, arc,
        ])
    }

    fn md(self) -> MessageDigest {
        match self {
            PreHash::Fixed(alg) => alg.md(),
            PreHash::Shake128 => MessageDigest::shake_128(),
            PreHash::Shake256 => MessageDigest::shake_256(),
        }
    }
}

/// A running pre-hash (PH over the message as it arrives).
pub struct PreHasher {
    inner: Hasher,
    hash: PreHash,
}

impl PreHasher {
    pub fn new(hash: PreHash) -> Result<PreHasher> {
        hash.oid_der()?;
        Ok(PreHasher {
            inner: Hasher::new(hash.md()).map_err(openssl_error)?,
            hash,
        })
    }

    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        self.inner.update(data).map_err(openssl_error)
    }

    /// `PH(M)`; the hasher starts over afterwards.
    pub fn finish(&mut self) -> Result<Vec<u8>> {
        match self.hash {
            PreHash::Fixed(_) => Ok(self.inner.finish().map_err(openssl_error)?.to_vec()),
            PreHash::Shake128 | PreHash::Shake256 => {
                let mut out = vec![0u8; self.hash.output_len()];
                self.inner.finish_xof(&mut out).map_err(openssl_error)?;
                Ok(out)
            }
        }
    }
}

/// `M' = 1 ‖ |ctx| ‖ ctx ‖ OID(PH) ‖ PH(M)` (FIPS 204 Algorithm 4 step 23, FIPS 205 Algorithm 23
/// step 24). A digest of the wrong length is `CKR_DATA_LEN_RANGE` (the caller's input).
fn prehash_message(options: &SignOptions, hash: PreHash, digest: &[u8]) -> Result<Vec<u8>> {
    if options.context.len() > MAX_CONTEXT {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    let oid = hash.oid_der()?;
    if digest.len() != hash.output_len() {
        Err(Rv::DATA_LEN_RANGE)?
    }
    let mut m = Vec::with_capacity(2 + options.context.len() + oid.len() + digest.len());
    m.push(1);
    m.push(options.context.len() as u8);
    m.extend_from_slice(&options.context);
    m.extend_from_slice(&oid);
    m.extend_from_slice(digest);
    Ok(m)
}

/// HashML-DSA / HashSLH-DSA over `digest = PH(M)` (the key says which).
pub fn sign_prehashed(
    key: &PrivateKey,
    options: &SignOptions,
    hash: PreHash,
    digest: &[u8],
) -> Result<Vec<u8>> {
    let m = prehash_message(options, hash, digest)?;
    // The context is inside `M'` already; OpenSSL's raw encoding adds nothing.
    let params = MessageParams {
        context: &[],
        deterministic: options.deterministic,
        raw: true,
    };
    one_shot_sign(key, params, &m)
}

/// Verifies a signature made by [`sign_prehashed`] with the same context and pre-hash.
pub fn verify_prehashed(
    key: &PublicKey,
    options: &SignOptions,
    hash: PreHash,
    digest: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let m = prehash_message(options, hash, digest)?;
    let params = MessageParams {
        context: &[],
        deterministic: false,
        raw: true,
    };
    one_shot_verify(key, params, &m, signature)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "pq_sign_tests.rs"]
mod tests;

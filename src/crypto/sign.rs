//! Signature primitives over already-hashed input (PKCS#1 v1.5, PSS, ECDSA) and over whole
//! messages (Ed25519). Hashing, length checks and PKCS#11 error codes are the mechanisms' job;
//! verification answers a plain `bool` (any OpenSSL complaint about a signature is `false`).

use std::ffi::CStr;

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::md_ctx::MdCtx;
use openssl::pkey::Id;
use openssl::pkey_ctx::{PkeyCtx, PkeyCtxRef};
use openssl::rsa::Padding;
use openssl::sign::RsaPssSaltlen;

use crate::crypto::digest::HashAlg;
use crate::crypto::keys::{Family, KeyFacts, PrivateKey, PublicKey};
use crate::crypto::{discard_errors_unless, openssl_error};
use crate::error::{Result, Rv};
use crate::ffi::openssl_ext::{set_ctx_params, CtxParam};

/// RSA-PSS parameters (RFC 8017 §8.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PssParams {
    pub hash: HashAlg,
    pub mgf1: HashAlg,
    pub salt_len: usize,
}

/// How an RSA signature is padded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaPadding {
    /// PKCS#1 v1.5. With a hash, the input is that hash's digest and OpenSSL builds the
    /// DigestInfo; without, the input is the caller's DigestInfo (`CKM_RSA_PKCS`).
    Pkcs1(Option<HashAlg>),
    /// PSS over a digest of `params.hash`.
    Pss(PssParams),
}

fn set_rsa_padding<T>(ctx: &mut PkeyCtx<T>, padding: RsaPadding) -> Result<()> {
    match padding {
        RsaPadding::Pkcs1(hash) => {
            ctx.set_rsa_padding(Padding::PKCS1).map_err(openssl_error)?;
            if let Some(hash) = hash {
                ctx.set_signature_md(hash.md_ref()).map_err(openssl_error)?;
            }
        }
        RsaPadding::Pss(p) => {
            ctx.set_rsa_padding(Padding::PKCS1_PSS)
                .map_err(openssl_error)?;
            ctx.set_signature_md(p.hash.md_ref())
                .map_err(openssl_error)?;
            ctx.set_rsa_mgf1_md(p.mgf1.md_ref())
                .map_err(openssl_error)?;
            let salt = i32::try_from(p.salt_len).map_err(|_| Rv::MECHANISM_PARAM_INVALID)?;
            ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt))
                .map_err(openssl_error)?;
        }
    }
    Ok(())
}

pub fn rsa_sign(key: &PrivateKey, padding: RsaPadding, input: &[u8]) -> Result<Vec<u8>> {
    let mut ctx = PkeyCtx::new(key.pkey()?).map_err(openssl_error)?;
    ctx.sign_init().map_err(openssl_error)?;
    set_rsa_padding(&mut ctx, padding)?;
    let mut sig = Vec::new();
    ctx.sign_to_vec(input, &mut sig).map_err(openssl_error)?;
    Ok(sig)
}

pub fn rsa_verify(
    key: &PublicKey,
    padding: RsaPadding,
    input: &[u8],
    signature: &[u8],
) -> Result<bool> {
    if padding == RsaPadding::Pkcs1(None) {
        return Ok(pkcs1_raw_verify(key, input, signature));
    }
    let mut ctx = PkeyCtx::new(key.pkey()?).map_err(openssl_error)?;
    ctx.verify_init().map_err(openssl_error)?;
    set_rsa_padding(&mut ctx, padding)?;
    Ok(discard_errors_unless(
        ctx.verify(input, signature).unwrap_or(false),
    ))
}

/// PKCS#1 v1.5 verification of the caller's own input (`CKM_RSA_PKCS`) by encoding and
/// comparing (RFC 8017 §8.2.2): the signature's public operation must give exactly
/// `00 01 FF…FF 00 ‖ input`, with at least 8 bytes of `FF`. OpenSSL's verification without a
/// digest refuses an empty recovered message, although its signing makes one, so a signature
/// over zero bytes (allowed: any length up to k − 11) would never verify.
fn pkcs1_raw_verify(key: &PublicKey, input: &[u8], signature: &[u8]) -> bool {
    let Ok(k) = key.pkey().map(|pkey| pkey.size()) else {
        return false;
    };
    let Some(padding) = k.checked_sub(input.len() + 3).filter(|&n| n >= 8) else {
        return false;
    };
    // A signature numerically not below the modulus is refused by OpenSSL: not a signature.
    let Ok(encoded) = crate::crypto::cipher::rsa_raw_public(key, signature) else {
        return false;
    };
    let mut expected = Vec::with_capacity(k);
    expected.extend_from_slice(&[0x00, 0x01]);
    expected.resize(2 + padding, 0xff);
    expected.push(0x00);
    expected.extend_from_slice(input);
    encoded == expected
}

/// The data of a PKCS#1 v1.5 signature over the caller's own input (`CKM_RSA_PKCS` with
/// recovery): the public operation must give `00 01 FF…FF 00 ‖ data` with at least 8 bytes of
/// `FF`; `None` when it does not (or the signature is not below the modulus). Decoded here
/// rather than by OpenSSL's verify-recover, which refuses empty data although signing makes it.
pub fn pkcs1_raw_recover(key: &PublicKey, signature: &[u8]) -> Option<Vec<u8>> {
    let output = crate::crypto::cipher::rsa_raw_public(key, signature).ok()?;
    let k = key.pkey().ok()?.size();
    let mut encoded = vec![0u8; k.checked_sub(output.len())?];
    encoded.extend_from_slice(&output);
    if encoded.get(..2) != Some(&[0x00, 0x01]) {
        return None;
    }
    let padding = encoded[2..].iter().take_while(|&&b| b == 0xff).count();
    let separator = 2 + padding;
    if padding < 8 || encoded.get(separator) != Some(&0x00) {
        return None;
    }
    Some(encoded[separator + 1..].to_vec())
}

fn ec_field_bytes(facts: KeyFacts) -> Result<usize> {
    match facts.family {
        Family::Ec => Ok(facts.bytes()),
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    }
}

/// ECDSA over `digest` (any length; OpenSSL truncates to the group order as FIPS 186 says).
/// The signature is `r ‖ s`, each left-padded to the field size, as PKCS#11 encodes it.
pub fn ecdsa_sign(key: &PrivateKey, digest: &[u8]) -> Result<Vec<u8>> {
    let n = ec_field_bytes(key.facts()?)? as i32;
    let sig = EcdsaSig::sign(digest, key.ec_key()?).map_err(openssl_error)?;
    let mut out = sig.r().to_vec_padded(n).map_err(openssl_error)?;
    out.extend_from_slice(&sig.s().to_vec_padded(n).map_err(openssl_error)?);
    Ok(out)
}

pub fn ecdsa_verify(key: &PublicKey, digest: &[u8], signature: &[u8]) -> Result<bool> {
    let n = ec_field_bytes(key.facts()?)?;
    if signature.len() != 2 * n {
        return Ok(false);
    }
    let ec = key.pkey()?.ec_key().map_err(openssl_error)?;
    let (r, s) = signature.split_at(n);
    let r = BigNum::from_slice(r).map_err(openssl_error)?;
    let s = BigNum::from_slice(s).map_err(openssl_error)?;
    let sig = EcdsaSig::from_private_components(r, s).map_err(openssl_error)?;
    // ECDSA_do_verify answers 0 for an out-of-range r or s and also queues EC_R_BAD_SIGNATURE,
    // which the `openssl` crate leaves there with `Ok(false)`.
    Ok(discard_errors_unless(
        sig.verify(digest, &ec).unwrap_or(false),
    ))
}

/// Pure Ed25519 (RFC 8032) over the whole message.
pub fn ed25519_sign(key: &PrivateKey, message: &[u8]) -> Result<Vec<u8>> {
    eddsa_sign(key, EddsaScheme::Pure, &[], message)
}

pub fn ed25519_verify(key: &PublicKey, message: &[u8], signature: &[u8]) -> Result<bool> {
    eddsa_verify(key, EddsaScheme::Pure, &[], message, signature)
}

/// Which of RFC 8032's EdDSA schemes to run (§5.1 Ed25519, Ed25519ctx, Ed25519ph; §5.2 Ed448,
/// Ed448ph); the key's curve picks Ed25519 or Ed448.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EddsaScheme {
    /// Ed25519 (no context), or Ed448 (with its context, possibly empty).
    Pure,
    /// Ed25519ctx: a context, which RFC 8032 says should not be empty. OpenSSL refuses an empty
    /// one (`CKR_MECHANISM_PARAM_INVALID`); it is still not pure Ed25519, whose signatures differ.
    /// On Ed448 the same as `Pure`.
    Context,
    /// Ed25519ph / Ed448ph: SHA-512 / SHAKE256 of the message is signed, with a context.
    Prehash,
}

/// The longest context RFC 8032 allows (its length is one octet of dom2 / dom4).
pub const EDDSA_MAX_CONTEXT: usize = 255;

/// OpenSSL's name of the EdDSA instance for a key and scheme; `None` for pure Ed25519, which
/// needs no parameter at all.
fn eddsa_instance(id: Id, scheme: EddsaScheme) -> Result<Option<&'static CStr>> {
    Ok(match (id, scheme) {
        (Id::ED25519, EddsaScheme::Pure) => None,
        (Id::ED25519, EddsaScheme::Context) => Some(c"Ed25519ctx"),
        (Id::ED25519, EddsaScheme::Prehash) => Some(c"Ed25519ph"),
        (Id::ED448, EddsaScheme::Pure | EddsaScheme::Context) => Some(c"Ed448"),
        (Id::ED448, EddsaScheme::Prehash) => Some(c"Ed448ph"),
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    })
}

/// Sets the scheme and context on a digest-sign or digest-verify context of an EdDSA key.
fn eddsa_setup<T>(
    ctx: &mut PkeyCtxRef<T>,
    id: Id,
    scheme: EddsaScheme,
    context: &[u8],
) -> Result<()> {
    if context.len() > EDDSA_MAX_CONTEXT
        || (id == Id::ED25519 && scheme == EddsaScheme::Pure && !context.is_empty())
        || (id == Id::ED25519 && scheme == EddsaScheme::Context && context.is_empty())
    {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    let Some(instance) = eddsa_instance(id, scheme)? else {
        return Ok(());
    };
    set_ctx_params(ctx, &[CtxParam::Utf8(c"instance", instance)]).map_err(openssl_error)?;
    ctx.set_context_string(context).map_err(openssl_error)
}

/// EdDSA (RFC 8032) over the whole message, in the given scheme with the given context.
pub fn eddsa_sign(
    key: &PrivateKey,
    scheme: EddsaScheme,
    context: &[u8],
    message: &[u8],
) -> Result<Vec<u8>> {
    let mut md = MdCtx::new().map_err(openssl_error)?;
    let ctx = md
        .digest_sign_init(None, key.pkey()?)
        .map_err(openssl_error)?;
    eddsa_setup(ctx, key.pkey()?.id(), scheme, context)?;
    let mut sig = Vec::new();
    md.digest_sign_to_vec(message, &mut sig)
        .map_err(openssl_error)?;
    Ok(sig)
}

/// Verifies an EdDSA signature made by [`eddsa_sign`] with the same scheme and context.
pub fn eddsa_verify(
    key: &PublicKey,
    scheme: EddsaScheme,
    context: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool> {
    let mut md = MdCtx::new().map_err(openssl_error)?;
    let ctx = md
        .digest_verify_init(None, key.pkey()?)
        .map_err(openssl_error)?;
    eddsa_setup(ctx, key.pkey()?.id(), scheme, context)?;
    Ok(discard_errors_unless(
        md.digest_verify(message, signature).unwrap_or(false),
    ))
}

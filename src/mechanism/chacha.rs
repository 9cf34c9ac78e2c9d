//! ChaCha20 mechanisms (PKCS#11 3.0 Current Mechanisms §2.54–2.56, RFC 8439) with
//! `CKK_CHACHA20` keys of 32 bytes: key generation, the bare stream cipher `CKM_CHACHA20`, and
//! the AEAD `CKM_CHACHA20_POLY1305`.
//!
//! `CKM_CHACHA20_POLY1305` takes the IETF 96-bit nonce only: OpenSSL implements RFC 8439 and
//! nothing else, and PKCS#11 leaves open which construction a 64-bit nonce would mean, so such
//! a nonce is `CKR_MECHANISM_PARAM_INVALID` rather than a guess.

use cryptoki_sys::{
    CKF_DECRYPT, CKF_ENCRYPT, CKF_GENERATE, CKK_CHACHA20, CKM_CHACHA20, CKM_CHACHA20_KEY_GEN,
    CKM_CHACHA20_POLY1305, CK_ULONG,
};
use zeroize::Zeroizing;

use super::support::{secret_key, OneShot, StreamOp};
use super::{entry, CipherOperation, KeyMaterial, MechanismEntry};
use crate::crypto::modes::{
    chacha20_poly1305_open, ChachaPolySealer, Streaming, CHACHA20_KEY, CHACHA20_POLY1305_NONCE,
    POLY1305_TAG,
};
use crate::error::{Result, Rv};
use crate::types::{MechanismParam, ParamShape};

const KEY: CK_ULONG = CHACHA20_KEY as CK_ULONG;
const CHACHA_KEYS: &[cryptoki_sys::CK_KEY_TYPE] = &[CKK_CHACHA20];
/// A ChaCha20 block, in bytes.
const BLOCK: u128 = 64;

pub(super) fn entries() -> Vec<MechanismEntry> {
    vec![
        entry(CKM_CHACHA20_KEY_GEN, KEY, KEY, CKF_GENERATE),
        MechanismEntry {
            encrypt: Some(chacha20),
            decrypt: Some(chacha20),
            key_types: CHACHA_KEYS,
            param: ParamShape::Chacha20,
            ..entry(CKM_CHACHA20, KEY, KEY, CKF_ENCRYPT | CKF_DECRYPT)
        },
        MechanismEntry {
            encrypt: Some(|k, p| aead(k, p, true)),
            decrypt: Some(|k, p| aead(k, p, false)),
            key_types: CHACHA_KEYS,
            param: ParamShape::ChachaPoly,
            ..entry(CKM_CHACHA20_POLY1305, KEY, KEY, super::AEAD_FLAGS)
        },
    ]
}

/// A ChaCha20 key: 32 bytes.
fn chacha_key(key: &KeyMaterial) -> Result<std::sync::Arc<Zeroizing<Vec<u8>>>> {
    let key = secret_key(key)?;
    if key.len() != CHACHA20_KEY {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    Ok(key)
}

/// `CKM_CHACHA20` with `CK_CHACHA20_PARAMS`: a 32-bit block counter with a 96-bit nonce
/// (RFC 8439), or a 64-bit counter with a 64-bit nonce (the original). The counter bytes are
/// the state's little-endian words, as given. Input that would wrap the counter is
/// `CKR_DATA_LEN_RANGE` before any of it is processed.
fn chacha20(key: &KeyMaterial, param: &MechanismParam) -> Result<Box<dyn CipherOperation>> {
    let key = chacha_key(key)?;
    let MechanismParam::Chacha20 {
        counter,
        counter_bits,
        nonce,
        nonce_bits,
    } = param
    else {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    };
    let sizes_given = counter.len() as CK_ULONG * 8 == *counter_bits
        && nonce.len() as CK_ULONG * 8 == *nonce_bits;
    if !sizes_given || !matches!((*counter_bits, *nonce_bits), (32, 96) | (64, 64)) {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    let mut block = [0u8; 16];
    let (c, n) = block.split_at_mut(counter.len());
    c.copy_from_slice(counter);
    n.copy_from_slice(nonce);
    let mut le = [0u8; 16];
    le[..counter.len()].copy_from_slice(counter);
    let start = u128::from_le_bytes(le);
    // Blocks left: 2^bits − counter; with 64 bits the bytes exceed any caller's data.
    let remaining = match counter_bits {
        32 => Some(((1u128 << 32) - start) * BLOCK),
        _ => None,
    };
    Ok(StreamOp::boxed(
        Streaming::chacha20(&key, &block)?,
        remaining,
    ))
}

/// `CKM_CHACHA20_POLY1305` with `CK_SALSA20_CHACHA20_POLY1305_PARAMS`: encryption streams and
/// appends the 16-byte tag at the end; decryption buffers, checks the tag, and only then gives
/// the plaintext.
fn aead(
    key: &KeyMaterial,
    param: &MechanismParam,
    encrypt: bool,
) -> Result<Box<dyn CipherOperation>> {
    let key = chacha_key(key)?;
    let MechanismParam::Aead { nonce, aad } = param else {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    };
    if nonce.len() != CHACHA20_POLY1305_NONCE {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    if encrypt {
        return Ok(Box::new(Seal(ChachaPolySealer::new(&key, nonce, aad)?)));
    }
    let (nonce, aad) = (nonce.clone(), aad.clone());
    Ok(OneShot::boxed(
        -(POLY1305_TAG as isize),
        move |input, out| {
            if input.len() < POLY1305_TAG {
                Err(Rv::ENCRYPTED_DATA_LEN_RANGE)?
            }
            let (ciphertext, tag) = input.split_at(input.len() - POLY1305_TAG);
            let plain = chacha20_poly1305_open(&key, &nonce, &aad, ciphertext, tag)?
                .ok_or(Rv::ENCRYPTED_DATA_INVALID)?;
            super::put(out, &plain)
        },
    ))
}

struct Seal(ChachaPolySealer);

impl CipherOperation for Seal {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        input_len + if last { POLY1305_TAG } else { 0 }
    }
    fn exact_len(&self) -> bool {
        true
    }
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize> {
        self.0.update(data, out)
    }
    fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        self.0.finish(out)
    }
}

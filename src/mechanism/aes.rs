//! AES mechanisms (PKCS#11 3.0 Current Mechanisms §2.10): ECB, CBC, CBC with PKCS#7 padding
//! (all three also for key wrapping), CTR and GCM. Multi-part buffering lives here; `crate::crypto::cipher` only ever sees whole blocks
//! (or, for GCM, whole messages on decryption).

use std::sync::Arc;

use cryptoki_sys::{
    CKF_DECRYPT, CKF_ENCRYPT, CKF_GENERATE, CKF_UNWRAP, CKF_WRAP, CKM_AES_CBC, CKM_AES_CBC_PAD,
    CKM_AES_CTR, CKM_AES_ECB, CKM_AES_GCM, CKM_AES_KEY_GEN, CK_ULONG,
};
use zeroize::Zeroizing;

use super::entry;
use super::keywrap::{unwrap_by_decrypting, wrap_by_encrypting};
use super::support::{no_param, secret_key};
use super::{CipherOperation, KeyMaterial, MechanismEntry};
use crate::crypto::cipher::{
    aes_gcm_decrypt, AesBlocks, AesCtr, AesGcmEncryptor, AesMode, AES_BLOCK,
};
use crate::error::{Result, Rv};
use crate::types::{MechanismParam, ParamShape};

const MIN_KEY: CK_ULONG = 16;
const MAX_KEY: CK_ULONG = 32;
/// GCM tag lengths accepted, in bits (NIST SP 800-38D allows 96..=128 for general use).
const GCM_TAG_BITS: std::ops::RangeInclusive<CK_ULONG> = 96..=128;

pub(super) fn entries() -> Vec<MechanismEntry> {
    let block_flags = CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP;
    vec![
        entry(CKM_AES_KEY_GEN, MIN_KEY, MAX_KEY, CKF_GENERATE),
        MechanismEntry {
            encrypt: Some(|k, p| AesBlockOp::boxed(k, p, Block::Ecb, true)),
            decrypt: Some(|k, p| AesBlockOp::boxed(k, p, Block::Ecb, false)),
            wrap: Some(|k, p, d| {
                wrap_by_encrypting(
                    |k, p| AesBlockOp::boxed(k, p, Block::Ecb, true),
                    k,
                    p,
                    &zero_pad(d),
                )
            }),
            unwrap: Some(|k, p, d| {
                unwrap_by_decrypting(|k, p| AesBlockOp::boxed(k, p, Block::Ecb, false), k, p, d)
            }),
            key_types: super::AES_KEYS,
            forward: super::Forward::AsIs,
            ..entry(CKM_AES_ECB, MIN_KEY, MAX_KEY, block_flags)
        },
        MechanismEntry {
            encrypt: Some(|k, p| AesBlockOp::boxed(k, p, Block::Cbc, true)),
            decrypt: Some(|k, p| AesBlockOp::boxed(k, p, Block::Cbc, false)),
            wrap: Some(|k, p, d| {
                wrap_by_encrypting(
                    |k, p| AesBlockOp::boxed(k, p, Block::Cbc, true),
                    k,
                    p,
                    &zero_pad(d),
                )
            }),
            unwrap: Some(|k, p, d| {
                unwrap_by_decrypting(|k, p| AesBlockOp::boxed(k, p, Block::Cbc, false), k, p, d)
            }),
            key_types: super::AES_KEYS,
            param: ParamShape::Iv(AES_BLOCK),
            forward: super::Forward::AsIs,
            ..entry(CKM_AES_CBC, MIN_KEY, MAX_KEY, block_flags)
        },
        MechanismEntry {
            encrypt: Some(|k, p| AesBlockOp::boxed(k, p, Block::CbcPad, true)),
            decrypt: Some(|k, p| AesBlockOp::boxed(k, p, Block::CbcPad, false)),
            wrap: Some(|k, p, d| {
                wrap_by_encrypting(|k, p| AesBlockOp::boxed(k, p, Block::CbcPad, true), k, p, d)
            }),
            unwrap: Some(|k, p, d| {
                unwrap_by_decrypting(
                    |k, p| AesBlockOp::boxed(k, p, Block::CbcPad, false),
                    k,
                    p,
                    d,
                )
            }),
            key_types: super::AES_KEYS,
            param: ParamShape::Iv(AES_BLOCK),
            forward: super::Forward::AsIs,
            ..entry(CKM_AES_CBC_PAD, MIN_KEY, MAX_KEY, block_flags)
        },
        MechanismEntry {
            encrypt: Some(Ctr::boxed),
            decrypt: Some(Ctr::boxed),
            key_types: super::AES_KEYS,
            // CK_AES_CTR_PARAMS: the counter width and the first counter block.
            param: ParamShape::Bytes,
            ..entry(CKM_AES_CTR, MIN_KEY, MAX_KEY, CKF_ENCRYPT | CKF_DECRYPT)
        },
        MechanismEntry {
            encrypt: Some(GcmEncrypt::boxed),
            decrypt: Some(GcmDecrypt::boxed),
            key_types: super::AES_KEYS,
            param: ParamShape::Gcm,
            forward: super::Forward::AsIs,
            ..entry(CKM_AES_GCM, MIN_KEY, MAX_KEY, CKF_ENCRYPT | CKF_DECRYPT)
        },
    ]
}

/// An AES key: secret material of 16, 24 or 32 bytes.
fn aes_key(key: &KeyMaterial) -> Result<Arc<Zeroizing<Vec<u8>>>> {
    let key = secret_key(key)?;
    if ![16, 24, 32].contains(&key.len()) {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    Ok(key)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Ecb,
    Cbc,
    CbcPad,
}

/// ECB / CBC / CBC_PAD in either direction, buffering partial blocks between calls.
struct AesBlockOp {
    cipher: AesBlocks,
    encrypt: bool,
    pad: bool,
    /// Bytes not yet processed: less than a block, or (decrypting with padding) the last full
    /// block, which must wait for `finish` because it carries the padding.
    pending: Zeroizing<Vec<u8>>,
}

impl AesBlockOp {
    fn boxed(
        key: &KeyMaterial,
        param: &MechanismParam,
        block: Block,
        encrypt: bool,
    ) -> Result<Box<dyn CipherOperation>> {
        let key = aes_key(key)?;
        let (mode, iv) = match (block, param) {
            (Block::Ecb, _) => {
                no_param(param)?;
                (AesMode::Ecb, None)
            }
            (_, MechanismParam::Bytes(iv)) if iv.len() == AES_BLOCK => {
                (AesMode::Cbc, Some(iv.as_slice()))
            }
            _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
        };
        Ok(Box::new(AesBlockOp {
            cipher: AesBlocks::new(&key, mode, iv, encrypt)?,
            encrypt,
            pad: block == Block::CbcPad,
            pending: Zeroizing::new(Vec::new()),
        }))
    }

    /// How many of `total` buffered bytes `update` may process now.
    fn ready(&self, total: usize) -> usize {
        if !self.encrypt && self.pad {
            total.saturating_sub(1) / AES_BLOCK * AES_BLOCK
        } else {
            total / AES_BLOCK * AES_BLOCK
        }
    }

    fn length_error(&self) -> Rv {
        if self.encrypt {
            Rv::DATA_LEN_RANGE
        } else {
            Rv::ENCRYPTED_DATA_LEN_RANGE
        }
    }
}

impl CipherOperation for AesBlockOp {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        let total = self.pending.len() + input_len;
        match (last, self.encrypt && self.pad) {
            (true, true) => (total / AES_BLOCK + 1) * AES_BLOCK,
            (true, false) => total / AES_BLOCK * AES_BLOCK,
            (false, _) => self.ready(total),
        }
    }

    fn multipart(&self) -> bool {
        true
    }

    fn update(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.pending.extend_from_slice(data);
        let n = self.ready(self.pending.len());
        let out = self.cipher.update(&self.pending[..n])?;
        self.pending.drain(..n);
        Ok(out)
    }

    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let pending = std::mem::take(&mut self.pending);
        match (self.encrypt, self.pad) {
            (_, false) if pending.is_empty() => Ok(Zeroizing::new(Vec::new())),
            (_, false) => Err(self.length_error())?,
            (true, true) => {
                // PKCS#7: always 1..=16 bytes, each the pad length.
                let pad = AES_BLOCK - pending.len();
                let mut last = Zeroizing::new(pending.to_vec());
                last.resize(AES_BLOCK, pad as u8);
                self.cipher.update(&last)
            }
            (false, true) => {
                if pending.len() != AES_BLOCK {
                    Err(Rv::ENCRYPTED_DATA_LEN_RANGE)?
                }
                let mut plain = self.cipher.update(&pending)?;
                let pad = usize::from(plain[AES_BLOCK - 1]);
                let valid = (1..=AES_BLOCK).contains(&pad)
                    && plain[AES_BLOCK - pad..]
                        .iter()
                        .all(|&b| usize::from(b) == pad);
                if !valid {
                    Err(Rv::ENCRYPTED_DATA_INVALID)?
                }
                plain.truncate(AES_BLOCK - pad);
                Ok(plain)
            }
        }
    }

    /// Single-part calls check the whole length first, so nothing is processed on bad input.
    fn run(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let aligned = data.len().is_multiple_of(AES_BLOCK);
        let ok = match (self.encrypt, self.pad) {
            (true, true) => true,
            (true, false) => aligned,
            (false, true) => aligned && !data.is_empty(),
            (false, false) => aligned,
        };
        if !ok {
            Err(self.length_error())?
        }
        let mut out = self.update(data)?;
        out.extend_from_slice(&self.finish()?);
        Ok(out)
    }
}

/// The longest GCM IV: OpenSSL 3.0's GCM takes at most 128 bytes. PKCS#11 allows longer ones;
/// sqlhsm refuses them with `CKR_MECHANISM_PARAM_INVALID` (README, mechanism table).
const GCM_MAX_IV: usize = 128;

/// IV, AAD and tag length from `CK_GCM_PARAMS`.
fn gcm_params(param: &MechanismParam) -> Result<(Vec<u8>, Vec<u8>, usize)> {
    let MechanismParam::Gcm { iv, aad, tag_bits } = param else {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    };
    if iv.len() > GCM_MAX_IV {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    if iv.is_empty() || !GCM_TAG_BITS.contains(tag_bits) || !tag_bits.is_multiple_of(8) {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    Ok((iv.clone(), aad.clone(), (*tag_bits / 8) as usize))
}

struct GcmEncrypt {
    inner: AesGcmEncryptor,
    tag_len: usize,
}

impl GcmEncrypt {
    fn boxed(key: &KeyMaterial, param: &MechanismParam) -> Result<Box<dyn CipherOperation>> {
        let key = aes_key(key)?;
        let (iv, aad, tag_len) = gcm_params(param)?;
        Ok(Box::new(GcmEncrypt {
            inner: AesGcmEncryptor::new(&key, &iv, &aad, tag_len)?,
            tag_len,
        }))
    }
}

impl CipherOperation for GcmEncrypt {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        input_len + if last { self.tag_len } else { 0 }
    }
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(self.inner.update(data)?))
    }
    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(self.inner.finish()?))
    }
}

/// GCM decryption buffers everything: no plaintext leaves before the tag is checked.
struct GcmDecrypt {
    key: Arc<Zeroizing<Vec<u8>>>,
    iv: Vec<u8>,
    aad: Vec<u8>,
    tag_len: usize,
    input: Vec<u8>,
}

impl GcmDecrypt {
    fn boxed(key: &KeyMaterial, param: &MechanismParam) -> Result<Box<dyn CipherOperation>> {
        let key = aes_key(key)?;
        let (iv, aad, tag_len) = gcm_params(param)?;
        Ok(Box::new(GcmDecrypt {
            key,
            iv,
            aad,
            tag_len,
            input: Vec::new(),
        }))
    }
}

impl CipherOperation for GcmDecrypt {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        if last {
            (self.input.len() + input_len).saturating_sub(self.tag_len)
        } else {
            0
        }
    }
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.input.extend_from_slice(data);
        Ok(Zeroizing::new(Vec::new()))
    }
    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let input = std::mem::take(&mut self.input);
        if input.len() < self.tag_len {
            Err(Rv::ENCRYPTED_DATA_LEN_RANGE)?
        }
        let (ciphertext, tag) = input.split_at(input.len() - self.tag_len);
        Ok(
            aes_gcm_decrypt(&self.key, &self.iv, &self.aad, ciphertext, tag)?
                .ok_or(Rv::ENCRYPTED_DATA_INVALID)?,
        )
    }
}

/// Key bytes zero-padded to a whole number of blocks, as ECB and CBC wrapping requires
/// (Current Mechanisms §2.10.3, §2.10.4); unwrapping leaves the padding for the core to cut
/// with `CKA_VALUE_LEN`.
fn zero_pad(data: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(data.to_vec());
    out.resize(data.len().div_ceil(AES_BLOCK) * AES_BLOCK, 0);
    out
}

/// AES-CTR (Current Mechanisms §2.10.6) with `CK_AES_CTR_PARAMS`: `ulCounterBits` (a native
/// `CK_ULONG`) then the 16-byte counter block, whose low `ulCounterBits` bits count. Multi-part,
/// same in both directions. Input that would make the counter wrap within its bits is refused
/// with `CKR_DATA_LEN_RANGE` (both directions) before any of it is processed.
struct Ctr {
    inner: AesCtr,
    /// Bytes that may still be processed before the counter wraps (`None`: more than fits).
    remaining: Option<u128>,
}

const ULONG: usize = size_of::<CK_ULONG>();

impl Ctr {
    fn boxed(key: &KeyMaterial, param: &MechanismParam) -> Result<Box<dyn CipherOperation>> {
        let key = aes_key(key)?;
        let MechanismParam::Bytes(bytes) = param else {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        };
        if bytes.len() != ULONG + AES_BLOCK {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        let (bits, block) = bytes.split_at(ULONG);
        let bits =
            CK_ULONG::from_ne_bytes(bits.try_into().map_err(|_| Rv::MECHANISM_PARAM_INVALID)?);
        if !(1..=128).contains(&bits) {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        let block: [u8; AES_BLOCK] = block.try_into().map_err(|_| Rv::MECHANISM_PARAM_INVALID)?;
        let counter = u128::from_be_bytes(block);
        let mask = if bits == 128 {
            u128::MAX
        } else {
            (1u128 << bits) - 1
        };
        // Blocks left, counting the current one: 2^bits − (counter mod 2^bits).
        let blocks_left = (mask - (counter & mask)).checked_add(1);
        let remaining = blocks_left.and_then(|b| b.checked_mul(AES_BLOCK as u128));
        Ok(Box::new(Ctr {
            inner: AesCtr::new(&key, &block)?,
            remaining,
        }))
    }
}

impl CipherOperation for Ctr {
    fn output_len(&self, input_len: usize, _last: bool) -> usize {
        input_len
    }
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if let Some(remaining) = self.remaining {
            let len = data.len() as u128;
            if len > remaining {
                Err(Rv::DATA_LEN_RANGE)?
            }
            self.remaining = Some(remaining - len);
        }
        self.inner.update(data)
    }
    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(Vec::new()))
    }
}

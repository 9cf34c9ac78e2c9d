//! AES mechanisms (PKCS#11 3.0 Current Mechanisms §2.10): ECB, CBC, CBC with PKCS#7 padding
//! (all three also for key wrapping), CTR, GCM, CCM, OFB, CFB1/8/128 and XTS (with its own
//! key type, `CKK_AES_XTS`). Multi-part buffering lives here and in `support`; `crate::crypto`
//! only ever sees whole blocks (or, for GCM/CCM decryption and XTS, whole messages).

use std::sync::Arc;

use cryptoki_sys::{
    CKF_DECRYPT, CKF_ENCRYPT, CKF_GENERATE, CKF_UNWRAP, CKF_WRAP, CKK_AES_XTS, CKM_AES_CBC,
    CKM_AES_CBC_PAD, CKM_AES_CCM, CKM_AES_CFB1, CKM_AES_CFB128, CKM_AES_CFB8, CKM_AES_CTR,
    CKM_AES_ECB, CKM_AES_GCM, CKM_AES_KEY_GEN, CKM_AES_OFB, CKM_AES_XTS, CKM_AES_XTS_KEY_GEN,
    CK_MECHANISM_TYPE, CK_ULONG,
};
use zeroize::Zeroizing;

use super::entry;
use super::keywrap::{unwrap_by_decrypting, wrap_by_encrypting};
use super::support::{
    block_iv, secret_key, zero_pad, Block, BlockCipher, BlockOp, OneShot, StreamOp,
};
use super::{put, CipherOperation, KeyMaterial, MechanismEntry};
use crate::crypto::cipher::{
    aes_gcm_decrypt, AesBlocks, AesCtr, AesGcmEncryptor, AesMode, AES_BLOCK,
};
use crate::crypto::modes::{
    aes_ccm_open, aes_ccm_seal_into, aes_xts_into, AesFeedback, Streaming, XTS_MAX_DATA,
};
use crate::error::{Result, Rv};
use crate::types::{MechanismParam, ParamShape};

const MIN_KEY: CK_ULONG = 16;
const MAX_KEY: CK_ULONG = 32;
/// `CKK_AES_XTS` keys: two AES-128 or two AES-256 keys.
const XTS_MIN_KEY: CK_ULONG = 32;
const XTS_MAX_KEY: CK_ULONG = 64;
/// GCM tag lengths accepted, in bits (NIST SP 800-38D allows 96..=128 for general use).
const GCM_TAG_BITS: std::ops::RangeInclusive<CK_ULONG> = 96..=128;

pub(super) fn entries() -> Vec<MechanismEntry> {
    let block_flags = CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP;
    vec![
        entry(CKM_AES_KEY_GEN, MIN_KEY, MAX_KEY, CKF_GENERATE),
        MechanismEntry {
            encrypt: Some(|k, p| aes_block(k, p, Block::Ecb, true)),
            decrypt: Some(|k, p| aes_block(k, p, Block::Ecb, false)),
            wrap: Some(|k, p, d| {
                wrap_by_encrypting(
                    |k, p| aes_block(k, p, Block::Ecb, true),
                    k,
                    p,
                    &zero_pad(d, AES_BLOCK),
                )
            }),
            unwrap: Some(|k, p, d| {
                unwrap_by_decrypting(|k, p| aes_block(k, p, Block::Ecb, false), k, p, d)
            }),
            key_types: super::AES_KEYS,
            forward: super::Forward::AsIs,
            ..entry(CKM_AES_ECB, MIN_KEY, MAX_KEY, block_flags)
        },
        MechanismEntry {
            encrypt: Some(|k, p| aes_block(k, p, Block::Cbc, true)),
            decrypt: Some(|k, p| aes_block(k, p, Block::Cbc, false)),
            wrap: Some(|k, p, d| {
                wrap_by_encrypting(
                    |k, p| aes_block(k, p, Block::Cbc, true),
                    k,
                    p,
                    &zero_pad(d, AES_BLOCK),
                )
            }),
            unwrap: Some(|k, p, d| {
                unwrap_by_decrypting(|k, p| aes_block(k, p, Block::Cbc, false), k, p, d)
            }),
            key_types: super::AES_KEYS,
            param: ParamShape::Iv(AES_BLOCK),
            forward: super::Forward::AsIs,
            ..entry(CKM_AES_CBC, MIN_KEY, MAX_KEY, block_flags)
        },
        MechanismEntry {
            encrypt: Some(|k, p| aes_block(k, p, Block::CbcPad, true)),
            decrypt: Some(|k, p| aes_block(k, p, Block::CbcPad, false)),
            wrap: Some(|k, p, d| {
                wrap_by_encrypting(|k, p| aes_block(k, p, Block::CbcPad, true), k, p, d)
            }),
            unwrap: Some(|k, p, d| {
                unwrap_by_decrypting(|k, p| aes_block(k, p, Block::CbcPad, false), k, p, d)
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
            ..entry(CKM_AES_GCM, MIN_KEY, MAX_KEY, super::AEAD_FLAGS)
        },
        feedback(CKM_AES_OFB, AesFeedback::Ofb),
        feedback(CKM_AES_CFB1, AesFeedback::Cfb1),
        feedback(CKM_AES_CFB8, AesFeedback::Cfb8),
        feedback(CKM_AES_CFB128, AesFeedback::Cfb128),
        MechanismEntry {
            encrypt: Some(|k, p| ccm(k, p, true)),
            decrypt: Some(|k, p| ccm(k, p, false)),
            key_types: super::AES_KEYS,
            param: ParamShape::Ccm,
            ..entry(CKM_AES_CCM, MIN_KEY, MAX_KEY, super::AEAD_FLAGS)
        },
        entry(CKM_AES_XTS_KEY_GEN, XTS_MIN_KEY, XTS_MAX_KEY, CKF_GENERATE),
        MechanismEntry {
            encrypt: Some(|k, p| xts(k, p, true)),
            decrypt: Some(|k, p| xts(k, p, false)),
            key_types: &[CKK_AES_XTS],
            param: ParamShape::Iv(AES_BLOCK),
            ..entry(
                CKM_AES_XTS,
                XTS_MIN_KEY,
                XTS_MAX_KEY,
                CKF_ENCRYPT | CKF_DECRYPT,
            )
        },
    ]
}

/// An AES feedback mode (Current Mechanisms §2.10.11–2.10.13; NIST SP 800-38A): a 16-byte IV,
/// multi-part, any data length. (OpenSSL has no AES-CFB64, so `CKM_AES_CFB64` is not offered.)
fn feedback(kind: CK_MECHANISM_TYPE, mode: AesFeedback) -> MechanismEntry {
    macro_rules! op {
        ($encrypt:expr) => {
            Some(match mode {
                AesFeedback::Ofb => |k, p| feedback_op(k, p, AesFeedback::Ofb, $encrypt),
                AesFeedback::Cfb1 => |k, p| feedback_op(k, p, AesFeedback::Cfb1, $encrypt),
                AesFeedback::Cfb8 => |k, p| feedback_op(k, p, AesFeedback::Cfb8, $encrypt),
                AesFeedback::Cfb128 => |k, p| feedback_op(k, p, AesFeedback::Cfb128, $encrypt),
            })
        };
    }
    MechanismEntry {
        encrypt: op!(true),
        decrypt: op!(false),
        key_types: super::AES_KEYS,
        param: ParamShape::Iv(AES_BLOCK),
        ..entry(kind, MIN_KEY, MAX_KEY, CKF_ENCRYPT | CKF_DECRYPT)
    }
}

fn feedback_op(
    key: &KeyMaterial,
    param: &MechanismParam,
    mode: AesFeedback,
    encrypt: bool,
) -> Result<Box<dyn CipherOperation>> {
    let key = aes_key(key)?;
    let iv = iv16(param)?;
    Ok(StreamOp::boxed(
        Streaming::aes_feedback(&key, mode, &iv, encrypt)?,
        None,
    ))
}

/// A 16-byte IV (or XTS tweak) parameter.
fn iv16(param: &MechanismParam) -> Result<[u8; AES_BLOCK]> {
    match param {
        MechanismParam::Bytes(iv) => Ok(iv
            .as_slice()
            .try_into()
            .map_err(|_| Rv::MECHANISM_PARAM_INVALID)?),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    }
}

/// AES-CCM (Current Mechanisms §2.10.8, NIST SP 800-38C) with `CK_CCM_PARAMS`: the data length
/// is declared up front, so the operation runs once, at the end, over everything given
/// (single-part, or buffered across `C_EncryptUpdate` calls). Encryption output is
/// ciphertext ‖ MAC; decryption input the same, and no plaintext leaves before the MAC is
/// checked. Nonce 7..=13 bytes, MAC 4..=16 bytes and even, the data length within what the
/// nonce leaves for the counter; a total other than the declared length is
/// `CKR_DATA_LEN_RANGE` (`CKR_ENCRYPTED_DATA_LEN_RANGE` decrypting).
fn ccm(
    key: &KeyMaterial,
    param: &MechanismParam,
    encrypt: bool,
) -> Result<Box<dyn CipherOperation>> {
    let key = aes_key(key)?;
    let MechanismParam::Ccm {
        data_len,
        nonce,
        aad,
        mac_len,
    } = param
    else {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    };
    let (data_len, mac_len) = match (usize::try_from(*data_len), usize::try_from(*mac_len)) {
        (Ok(d), Ok(m)) => (d, m),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    };
    // The length field has 15 − nonce length bytes (SP 800-38C A.1).
    let length_bytes = 15usize.saturating_sub(nonce.len());
    let fits = length_bytes >= 8 || (data_len as u128) < 1u128 << (8 * length_bytes);
    if !(7..=13).contains(&nonce.len())
        || !(4..=16).contains(&mac_len)
        || !mac_len.is_multiple_of(2)
        || !fits
    {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    let (nonce, aad) = (nonce.clone(), aad.clone());
    Ok(if encrypt {
        OneShot::boxed(mac_len as isize, move |data, out| {
            if data.len() != data_len {
                Err(Rv::DATA_LEN_RANGE)?
            }
            aes_ccm_seal_into(&key, &nonce, &aad, data, mac_len, out)
        })
    } else {
        OneShot::boxed(-(mac_len as isize), move |input, out| {
            if input.len() != data_len + mac_len {
                Err(Rv::ENCRYPTED_DATA_LEN_RANGE)?
            }
            let (ciphertext, mac) = input.split_at(data_len);
            let plain = aes_ccm_open(&key, &nonce, &aad, ciphertext, mac)?
                .ok_or(Rv::ENCRYPTED_DATA_INVALID)?;
            put(out, &plain)
        })
    })
}

/// AES-XTS (Current Mechanisms §2.10.14, NIST SP 800-38E) with a `CKK_AES_XTS` key of 32 or
/// 64 bytes and a 16-byte tweak: one data unit of 16 bytes to 16 MiB, ciphertext stealing for
/// lengths that are not whole blocks. Multi-part input is buffered and processed at the end.
fn xts(
    key: &KeyMaterial,
    param: &MechanismParam,
    encrypt: bool,
) -> Result<Box<dyn CipherOperation>> {
    let key = secret_key(key)?;
    if ![32, 64].contains(&key.len()) {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    let tweak = iv16(param)?;
    Ok(OneShot::boxed(0, move |data, out| {
        if !(AES_BLOCK..=XTS_MAX_DATA).contains(&data.len()) {
            if encrypt {
                Err(Rv::DATA_LEN_RANGE)?
            }
            Err(Rv::ENCRYPTED_DATA_LEN_RANGE)?
        }
        aes_xts_into(&key, &tweak, data, encrypt, out)
    }))
}

/// ECB / CBC / CBC_PAD with an AES key.
fn aes_block(
    key: &KeyMaterial,
    param: &MechanismParam,
    mode: Block,
    encrypt: bool,
) -> Result<Box<dyn CipherOperation>> {
    let key = aes_key(key)?;
    let iv = block_iv(param, mode, AES_BLOCK)?;
    let aes_mode = if iv.is_some() {
        AesMode::Cbc
    } else {
        AesMode::Ecb
    };
    let cipher = BlockCipher::Aes(AesBlocks::new(&key, aes_mode, iv, encrypt)?);
    Ok(BlockOp::boxed(cipher, AES_BLOCK, mode, encrypt))
}

/// An AES key: secret material of 16, 24 or 32 bytes.
fn aes_key(key: &KeyMaterial) -> Result<Arc<Zeroizing<Vec<u8>>>> {
    let key = secret_key(key)?;
    if ![16, 24, 32].contains(&key.len()) {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    Ok(key)
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
    fn exact_len(&self) -> bool {
        true
    }
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize> {
        self.inner.update(data, out)
    }
    fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        self.inner.finish(out)
    }
}

/// GCM decryption buffers everything (a single-part call reads the caller's input as it is):
/// no plaintext leaves before the tag is checked.
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

    /// Opens `input` (ciphertext ‖ tag) into `out`, releasing nothing unless the tag verifies.
    fn open(&self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        if input.len() < self.tag_len {
            Err(Rv::ENCRYPTED_DATA_LEN_RANGE)?
        }
        let (ciphertext, tag) = input.split_at(input.len() - self.tag_len);
        let plain = aes_gcm_decrypt(&self.key, &self.iv, &self.aad, ciphertext, tag)?
            .ok_or(Rv::ENCRYPTED_DATA_INVALID)?;
        put(out, &plain)
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
    fn exact_len(&self) -> bool {
        true
    }
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8], _out: &mut [u8]) -> Result<usize> {
        self.input.extend_from_slice(data);
        Ok(0)
    }
    fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        let input = std::mem::take(&mut self.input);
        self.open(&input, out)
    }
    fn run(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize> {
        if self.input.is_empty() {
            return self.open(data, out);
        }
        self.input.extend_from_slice(data);
        self.finish(out)
    }
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
    fn exact_len(&self) -> bool {
        true
    }
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize> {
        if let Some(remaining) = self.remaining {
            let len = data.len() as u128;
            if len > remaining {
                Err(Rv::DATA_LEN_RANGE)?
            }
            self.remaining = Some(remaining - len);
        }
        self.inner.update(data, out)
    }
    fn finish(&mut self, _out: &mut [u8]) -> Result<usize> {
        Ok(0)
    }
}

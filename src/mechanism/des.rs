//! DES mechanisms (PKCS#11 3.0 Current Mechanisms §2.36–2.39; NIST SP 800-67): Triple DES with
//! double-length (`CKK_DES2`, K1‖K2 used as K1‖K2‖K1) and triple-length (`CKK_DES3`) keys —
//! generation, ECB, CBC and CBC with PKCS#7 padding (all three also for key wrapping); CMAC is
//! in `mac`. Single DES (`CKK_DES`) has the same three modes and its generation, offered only
//! when `[policy] allow_single_des` says so: its 56-bit key falls to exhaustive search.
//!
//! Generated keys have odd parity and no weak, semi-weak or repeated part; a created or
//! unwrapped key must have odd parity (the key-algorithm table's rules).

use std::sync::Arc;

use cryptoki_sys::{
    CKF_DECRYPT, CKF_ENCRYPT, CKF_GENERATE, CKF_UNWRAP, CKF_WRAP, CKK_DES, CKK_DES2, CKK_DES3,
    CKM_DES2_KEY_GEN, CKM_DES3_CBC, CKM_DES3_CBC_PAD, CKM_DES3_ECB, CKM_DES3_KEY_GEN, CKM_DES_CBC,
    CKM_DES_CBC_PAD, CKM_DES_ECB, CKM_DES_KEY_GEN, CK_KEY_TYPE, CK_MECHANISM_TYPE, CK_ULONG,
};
use zeroize::Zeroizing;

use super::keywrap::{unwrap_by_decrypting, wrap_by_encrypting};
use super::support::{block_iv, secret_key, zero_pad, Block, BlockCipher, BlockOp};
use super::{entry, CipherOperation, Gate, KeyMaterial, MechanismEntry};
use crate::crypto::modes::{Streaming, DES_BLOCK, TDES_KEY};
use crate::error::{Result, Rv};
use crate::types::{MechanismParam, ParamShape};

/// The key types Triple DES takes.
pub(super) const TDES_KEYS: &[CK_KEY_TYPE] = &[CKK_DES2, CKK_DES3];
const DES_KEYS: &[CK_KEY_TYPE] = &[CKK_DES];
/// Key sizes in bytes: a double-length key is 16, a triple-length one 24, single DES 8.
pub(super) const TDES_MIN: CK_ULONG = 16;
pub(super) const TDES_MAX: CK_ULONG = 24;
const DES_LEN: CK_ULONG = 8;

pub(super) fn entries() -> Vec<MechanismEntry> {
    let single = |e: MechanismEntry| MechanismEntry {
        gate: Gate::SingleDes,
        ..e
    };
    vec![
        entry(CKM_DES2_KEY_GEN, TDES_MIN, TDES_MIN, CKF_GENERATE),
        entry(CKM_DES3_KEY_GEN, TDES_MAX, TDES_MAX, CKF_GENERATE),
        block_entry(CKM_DES3_ECB, Block::Ecb, false),
        block_entry(CKM_DES3_CBC, Block::Cbc, false),
        block_entry(CKM_DES3_CBC_PAD, Block::CbcPad, false),
        single(entry(CKM_DES_KEY_GEN, DES_LEN, DES_LEN, CKF_GENERATE)),
        single(block_entry(CKM_DES_ECB, Block::Ecb, true)),
        single(block_entry(CKM_DES_CBC, Block::Cbc, true)),
        single(block_entry(CKM_DES_CBC_PAD, Block::CbcPad, true)),
    ]
}

/// One ECB / CBC / CBC_PAD entry, for Triple DES or (`single`) DES. ECB and CBC wrap a key
/// zero-padded to whole blocks (unwrapping leaves the padding for `CKA_VALUE_LEN` to cut).
fn block_entry(kind: CK_MECHANISM_TYPE, mode: Block, single: bool) -> MechanismEntry {
    let (min, max, key_types) = if single {
        (DES_LEN, DES_LEN, DES_KEYS)
    } else {
        (TDES_MIN, TDES_MAX, TDES_KEYS)
    };
    let param = if mode == Block::Ecb {
        ParamShape::None
    } else {
        ParamShape::Iv(DES_BLOCK)
    };
    let base = MechanismEntry {
        key_types,
        param,
        ..entry(
            kind,
            min,
            max,
            CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
        )
    };
    macro_rules! ops {
        ($mode:expr, $single:expr) => {
            MechanismEntry {
                encrypt: Some(|k, p| des_block(k, p, $mode, $single, true)),
                decrypt: Some(|k, p| des_block(k, p, $mode, $single, false)),
                wrap: Some(|k, p, d| {
                    let data = match $mode {
                        Block::CbcPad => Zeroizing::new(d.to_vec()),
                        _ => zero_pad(d, DES_BLOCK),
                    };
                    wrap_by_encrypting(|k, p| des_block(k, p, $mode, $single, true), k, p, &data)
                }),
                unwrap: Some(|k, p, d| {
                    unwrap_by_decrypting(|k, p| des_block(k, p, $mode, $single, false), k, p, d)
                }),
                ..base
            }
        };
    }
    match (mode, single) {
        (Block::Ecb, false) => ops!(Block::Ecb, false),
        (Block::Cbc, false) => ops!(Block::Cbc, false),
        (Block::CbcPad, false) => ops!(Block::CbcPad, false),
        (Block::Ecb, true) => ops!(Block::Ecb, true),
        (Block::Cbc, true) => ops!(Block::Cbc, true),
        (Block::CbcPad, true) => ops!(Block::CbcPad, true),
    }
}

/// The 24-byte EDE key a DES key runs as: a triple-length key as it is, a double-length one as
/// K1‖K2‖K1, and (`single`) a single DES key as K‖K‖K, which is single DES. Any other length
/// is `CKR_KEY_SIZE_RANGE`.
pub(super) fn ede_key(key: &KeyMaterial, single: bool) -> Result<Arc<Zeroizing<Vec<u8>>>> {
    let key = secret_key(key)?;
    let ede = match (key.len(), single) {
        (TDES_KEY, false) => return Ok(key),
        (16, false) => [&key[..], &key[..8]].concat(),
        (8, true) => key.repeat(3),
        _ => Err(Rv::KEY_SIZE_RANGE)?,
    };
    Ok(Arc::new(Zeroizing::new(ede)))
}

fn des_block(
    key: &KeyMaterial,
    param: &MechanismParam,
    mode: Block,
    single: bool,
    encrypt: bool,
) -> Result<Box<dyn CipherOperation>> {
    let key = ede_key(key, single)?;
    let iv = match block_iv(param, mode, DES_BLOCK)? {
        Some(iv) => {
            Some(<&[u8; DES_BLOCK]>::try_from(iv).map_err(|_| Rv::MECHANISM_PARAM_INVALID)?)
        }
        None => None,
    };
    let cipher = BlockCipher::Tdes(Streaming::tdes(&key, iv, encrypt)?);
    Ok(BlockOp::boxed(cipher, DES_BLOCK, mode, encrypt))
}

//! Pieces every mechanism family shares: picking key material of the right kind, checking that
//! a mechanism takes no parameter, mapping PKCS#11 hash and MGF codes, and collecting input
//! (hashed for the multi-part mechanisms, buffered for the single-part ones).

use std::sync::Arc;

use cryptoki_sys::{
    CKG_MGF1_SHA1, CKG_MGF1_SHA224, CKG_MGF1_SHA256, CKG_MGF1_SHA384, CKG_MGF1_SHA3_224,
    CKG_MGF1_SHA3_256, CKG_MGF1_SHA3_384, CKG_MGF1_SHA3_512, CKG_MGF1_SHA512, CKM_SHA224,
    CKM_SHA256, CKM_SHA384, CKM_SHA3_224, CKM_SHA3_256, CKM_SHA3_384, CKM_SHA3_512, CKM_SHA512,
    CKM_SHA_1, CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE,
};
use zeroize::Zeroizing;

use super::{CipherOperation, KeyMaterial};
use crate::crypto::cipher::AesBlocks;
use crate::crypto::digest::{HashAlg, Hasher};
use crate::crypto::keys::{KeyFacts, PrivateKey, PublicKey};
use crate::crypto::modes::Streaming;
use crate::error::{Result, Rv};
use crate::types::MechanismParam;

/// The private key, or `CKR_KEY_TYPE_INCONSISTENT`.
pub(crate) fn private_key(key: &KeyMaterial) -> Result<(Arc<PrivateKey>, KeyFacts)> {
    match key {
        KeyMaterial::Private(k) => Ok((Arc::clone(k), k.facts()?)),
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    }
}

/// The public key (derived from a private one if that is what the core holds).
pub(crate) fn public_key(key: &KeyMaterial) -> Result<(Arc<PublicKey>, KeyFacts)> {
    let public = match key {
        KeyMaterial::Public(k) => Arc::clone(k),
        KeyMaterial::Private(k) => Arc::new(k.public_key()?),
        KeyMaterial::Secret(_) | KeyMaterial::External(_) => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    };
    let kind = public.facts()?;
    Ok((public, kind))
}

/// Secret key bytes, or `CKR_KEY_TYPE_INCONSISTENT`.
pub(crate) fn secret_key(key: &KeyMaterial) -> Result<Arc<Zeroizing<Vec<u8>>>> {
    match key {
        KeyMaterial::Secret(k) => Ok(Arc::clone(k)),
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    }
}

/// Mechanisms without a parameter accept a NULL one or an empty byte string.
pub(crate) fn no_param(param: &MechanismParam) -> Result<()> {
    match param {
        MechanismParam::None => Ok(()),
        MechanismParam::Bytes(b) if b.is_empty() => Ok(()),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    }
}

/// The hash a `CKM_SHA*` code names inside PSS / OAEP parameters.
pub(crate) fn hash_from_ckm(kind: CK_MECHANISM_TYPE) -> Result<HashAlg> {
    Ok(match kind {
        CKM_SHA_1 => HashAlg::Sha1,
        CKM_SHA224 => HashAlg::Sha224,
        CKM_SHA256 => HashAlg::Sha256,
        CKM_SHA384 => HashAlg::Sha384,
        CKM_SHA512 => HashAlg::Sha512,
        CKM_SHA3_224 => HashAlg::Sha3_224,
        CKM_SHA3_256 => HashAlg::Sha3_256,
        CKM_SHA3_384 => HashAlg::Sha3_384,
        CKM_SHA3_512 => HashAlg::Sha3_512,
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    })
}

/// The hash of a `CKG_MGF1_*` code.
pub(crate) fn hash_from_mgf(mgf: CK_RSA_PKCS_MGF_TYPE) -> Result<HashAlg> {
    Ok(match mgf {
        CKG_MGF1_SHA1 => HashAlg::Sha1,
        CKG_MGF1_SHA224 => HashAlg::Sha224,
        CKG_MGF1_SHA256 => HashAlg::Sha256,
        CKG_MGF1_SHA384 => HashAlg::Sha384,
        CKG_MGF1_SHA512 => HashAlg::Sha512,
        CKG_MGF1_SHA3_224 => HashAlg::Sha3_224,
        CKG_MGF1_SHA3_256 => HashAlg::Sha3_256,
        CKG_MGF1_SHA3_384 => HashAlg::Sha3_384,
        CKG_MGF1_SHA3_512 => HashAlg::Sha3_512,
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    })
}

/// Input of a signature operation: hashed as it arrives (multi-part hash-and-sign mechanisms)
/// or kept whole (single-part mechanisms that sign what the caller hands over).
pub(crate) enum Input {
    Hash(Hasher),
    Raw(Zeroizing<Vec<u8>>),
}

impl Input {
    pub(crate) fn new(hash: Option<HashAlg>) -> Result<Input> {
        Ok(match hash {
            Some(alg) => Input::Hash(Hasher::new(alg)?),
            None => Input::Raw(Zeroizing::new(Vec::new())),
        })
    }

    pub(crate) fn multipart(&self) -> bool {
        matches!(self, Input::Hash(_))
    }

    pub(crate) fn update(&mut self, data: &[u8]) -> Result<()> {
        match self {
            Input::Hash(h) => h.update(data),
            Input::Raw(buf) => {
                buf.extend_from_slice(data);
                Ok(())
            }
        }
    }

    /// The digest, or everything buffered; the input starts over afterwards.
    pub(crate) fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Input::Hash(h) => Ok(Zeroizing::new(h.finish()?)),
            Input::Raw(buf) => Ok(std::mem::take(buf)),
        }
    }
}

/// ECB, CBC and CBC with PKCS#7 padding, for AES and Triple DES alike.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    Ecb,
    Cbc,
    CbcPad,
}

/// The unpadded block cipher under a [`BlockOp`]: fed whole blocks, chaining kept.
pub(crate) enum BlockCipher {
    Aes(AesBlocks),
    Tdes(Streaming),
}

impl BlockCipher {
    fn update(&mut self, blocks: &[u8], out: &mut [u8]) -> Result<usize> {
        match self {
            BlockCipher::Aes(c) => c.update_into(blocks, out),
            BlockCipher::Tdes(c) => c.update_into(blocks, out),
        }
    }
}

/// The largest block a [`BlockOp`] runs (AES's).
const MAX_BLOCK: usize = 16;

/// The IV a CBC mode's parameter holds (`block` bytes), or none for ECB (which takes no
/// parameter); `CKR_MECHANISM_PARAM_INVALID` otherwise.
pub(crate) fn block_iv(param: &MechanismParam, mode: Block, block: usize) -> Result<Option<&[u8]>> {
    match (mode, param) {
        (Block::Ecb, _) => no_param(param).map(|()| None),
        (_, MechanismParam::Bytes(iv)) if iv.len() == block => Ok(Some(iv.as_slice())),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    }
}

/// ECB / CBC / CBC_PAD in either direction, buffering partial blocks between calls.
pub(crate) struct BlockOp {
    cipher: BlockCipher,
    block: usize,
    encrypt: bool,
    pad: bool,
    /// Bytes not yet processed: less than a block, or (decrypting with padding) the last full
    /// block, which must wait for `finish` because it carries the padding.
    pending: Zeroizing<Vec<u8>>,
}

impl BlockOp {
    pub(crate) fn boxed(
        cipher: BlockCipher,
        block: usize,
        mode: Block,
        encrypt: bool,
    ) -> Box<dyn CipherOperation> {
        Box::new(BlockOp {
            cipher,
            block,
            encrypt,
            pad: mode == Block::CbcPad,
            // Never more than a block: sized once, so it is never reallocated out of the
            // zeroized buffer.
            pending: Zeroizing::new(Vec::with_capacity(block)),
        })
    }

    /// How many of `total` buffered bytes `update` may process now.
    fn ready(&self, total: usize) -> usize {
        if !self.encrypt && self.pad {
            total.saturating_sub(1) / self.block * self.block
        } else {
            total / self.block * self.block
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

impl CipherOperation for BlockOp {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        let total = self.pending.len() + input_len;
        match (last, self.encrypt && self.pad) {
            (true, true) => (total / self.block + 1) * self.block,
            (true, false) => total / self.block * self.block,
            (false, _) => self.ready(total),
        }
    }

    /// Only a padded decryption learns its length from the last block.
    fn exact_len(&self) -> bool {
        self.encrypt || !self.pad
    }

    fn multipart(&self) -> bool {
        true
    }

    /// Whole blocks go from `data` straight to `out`; only a partial block (and, decrypting
    /// with padding, the last block) waits in `pending`.
    fn update(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize> {
        let block = self.block;
        let ready = self.ready(self.pending.len() + data.len());
        if ready == 0 {
            self.pending.extend_from_slice(data);
            return Ok(0);
        }
        let out = out.get_mut(..ready).ok_or(Rv::GENERAL_ERROR)?;
        let mut data = data;
        let mut written = 0;
        if !self.pending.is_empty() {
            // `ready` ≥ one block, so `data` completes the pending one.
            let take = block - self.pending.len();
            self.pending.extend_from_slice(&data[..take]);
            written = self.cipher.update(&self.pending, &mut out[..block])?;
            self.pending.clear();
            data = &data[take..];
        }
        let direct = ready - written;
        written += self.cipher.update(&data[..direct], &mut out[written..])?;
        self.pending.extend_from_slice(&data[direct..]);
        Ok(written)
    }

    fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        let block = self.block;
        let pending = std::mem::replace(&mut self.pending, Zeroizing::new(Vec::new()));
        match (self.encrypt, self.pad) {
            (_, false) if pending.is_empty() => Ok(0),
            (_, false) => Err(self.length_error())?,
            (true, true) => {
                // PKCS#7: always 1..=block bytes, each the pad length.
                let pad = block - pending.len();
                let mut last = Zeroizing::new([pad as u8; MAX_BLOCK]);
                last[..pending.len()].copy_from_slice(&pending);
                self.cipher.update(&last[..block], out)
            }
            (false, true) => {
                if pending.len() != block {
                    Err(Rv::ENCRYPTED_DATA_LEN_RANGE)?
                }
                let mut plain = Zeroizing::new([0u8; MAX_BLOCK]);
                self.cipher.update(&pending, &mut plain[..block])?;
                let pad = usize::from(plain[block - 1]);
                let valid = (1..=block).contains(&pad)
                    && plain[block - pad..block]
                        .iter()
                        .all(|&b| usize::from(b) == pad);
                if !valid {
                    Err(Rv::ENCRYPTED_DATA_INVALID)?
                }
                super::put(out, &plain[..block - pad])
            }
        }
    }

    /// Single-part calls check the whole length first, so nothing is processed on bad input.
    fn run(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize> {
        let aligned = data.len().is_multiple_of(self.block);
        let ok = match (self.encrypt, self.pad) {
            (true, true) => true,
            (true, false) => aligned,
            (false, true) => aligned && !data.is_empty(),
            (false, false) => aligned,
        };
        if !ok {
            Err(self.length_error())?
        }
        let written = self.update(data, out)?;
        let rest = out.get_mut(written..).ok_or(Rv::GENERAL_ERROR)?;
        Ok(written + self.finish(rest)?)
    }
}

/// Key bytes zero-padded to a whole number of blocks, as ECB and CBC wrapping requires
/// (Current Mechanisms §2.10.3, §2.10.4); unwrapping leaves the padding for the core to cut
/// with `CKA_VALUE_LEN`.
pub(crate) fn zero_pad(data: &[u8], block: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(data.to_vec());
    out.resize(data.len().div_ceil(block) * block, 0);
    out
}

/// What a [`OneShot`] runs over the whole input, writing into the caller's buffer (at least
/// the operation's bound).
type RunOnce = Box<dyn FnMut(&[u8], &mut [u8]) -> Result<usize> + Send>;

/// A mechanism that runs once over the whole input at `finish` (CCM, XTS, the AEAD
/// decryptions that must check the tag before any plaintext leaves): `update` only buffers;
/// a single-part call runs over the caller's input as it is.
pub(crate) struct OneShot {
    input: Zeroizing<Vec<u8>>,
    /// The output is the input plus this many bytes (a tag added) or minus (a tag removed).
    grow: isize,
    run: RunOnce,
}

impl OneShot {
    pub(crate) fn boxed(
        grow: isize,
        run: impl FnMut(&[u8], &mut [u8]) -> Result<usize> + Send + 'static,
    ) -> Box<dyn CipherOperation> {
        Box::new(OneShot {
            input: Zeroizing::new(Vec::new()),
            grow,
            run: Box::new(run),
        })
    }
}

impl CipherOperation for OneShot {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        if !last {
            return 0;
        }
        let total = self.input.len() + input_len;
        total.saturating_add_signed(self.grow)
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
        (self.run)(&input, out)
    }
    fn run(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize> {
        if self.input.is_empty() {
            return (self.run)(data, out);
        }
        self.input.extend_from_slice(data);
        self.finish(out)
    }
}

/// A stream or feedback cipher (AES OFB/CFB, ChaCha20): as many bytes out as in, multi-part,
/// the same in both directions. Input that would run a limited counter past its end is
/// `CKR_DATA_LEN_RANGE` before any of it is processed.
pub(crate) struct StreamOp {
    inner: Streaming,
    /// Bytes that may still be processed (`None`: no limit that a caller can reach).
    remaining: Option<u128>,
}

impl StreamOp {
    pub(crate) fn boxed(inner: Streaming, remaining: Option<u128>) -> Box<dyn CipherOperation> {
        Box::new(StreamOp { inner, remaining })
    }
}

impl CipherOperation for StreamOp {
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
        self.inner.update_into(data, out)
    }
    fn finish(&mut self, _out: &mut [u8]) -> Result<usize> {
        Ok(0)
    }
}

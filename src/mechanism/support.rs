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
    fn update(&mut self, blocks: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            BlockCipher::Aes(c) => c.update(blocks),
            BlockCipher::Tdes(c) => c.update(blocks),
        }
    }
}

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
            pending: Zeroizing::new(Vec::new()),
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
        let block = self.block;
        match (self.encrypt, self.pad) {
            (_, false) if pending.is_empty() => Ok(Zeroizing::new(Vec::new())),
            (_, false) => Err(self.length_error())?,
            (true, true) => {
                // PKCS#7: always 1..=block bytes, each the pad length.
                let pad = block - pending.len();
                let mut last = Zeroizing::new(pending.to_vec());
                last.resize(block, pad as u8);
                self.cipher.update(&last)
            }
            (false, true) => {
                if pending.len() != block {
                    Err(Rv::ENCRYPTED_DATA_LEN_RANGE)?
                }
                let mut plain = self.cipher.update(&pending)?;
                let pad = usize::from(plain[block - 1]);
                let valid = (1..=block).contains(&pad)
                    && plain[block - pad..].iter().all(|&b| usize::from(b) == pad);
                if !valid {
                    Err(Rv::ENCRYPTED_DATA_INVALID)?
                }
                plain.truncate(block - pad);
                Ok(plain)
            }
        }
    }

    /// Single-part calls check the whole length first, so nothing is processed on bad input.
    fn run(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
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
        let mut out = self.update(data)?;
        out.extend_from_slice(&self.finish()?);
        Ok(out)
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

/// What a [`OneShot`] runs over the whole input.
type RunOnce = Box<dyn FnMut(&[u8]) -> Result<Zeroizing<Vec<u8>>> + Send>;

/// A mechanism that runs once over the whole input at `finish` (CCM, XTS, the AEAD
/// decryptions that must check the tag before any plaintext leaves): `update` only buffers.
pub(crate) struct OneShot {
    input: Zeroizing<Vec<u8>>,
    /// The output is the input plus this many bytes (a tag added) or minus (a tag removed).
    grow: isize,
    run: RunOnce,
}

impl OneShot {
    pub(crate) fn boxed(
        grow: isize,
        run: impl FnMut(&[u8]) -> Result<Zeroizing<Vec<u8>>> + Send + 'static,
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
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.input.extend_from_slice(data);
        Ok(Zeroizing::new(Vec::new()))
    }
    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let input = std::mem::take(&mut self.input);
        (self.run)(&input)
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

//! Cipher primitives: RSA encryption (PKCS#1 v1.5, OAEP) and AES (ECB, CBC, GCM). Buffering,
//! padding policy and PKCS#11 error codes are the mechanisms' job; decryption failures that
//! concern the ciphertext answer `None`.

use std::sync::OnceLock;

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::CipherCtx;
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use zeroize::Zeroizing;

use crate::crypto::digest::HashAlg;
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::crypto::openssl_error;
use crate::error::{Result, Rv};

/// AES block size in bytes.
pub const AES_BLOCK: usize = 16;

/// RSA encryption padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RsaEncPadding {
    Pkcs1,
    /// OAEP with its hash, MGF1 hash and label.
    Oaep {
        hash: HashAlg,
        mgf1: HashAlg,
        label: Vec<u8>,
    },
}

/// `RSA_PKCS1_NO_IMPLICIT_REJECT_PADDING` (`openssl/rsa.h`): PKCS#1 v1.5 decryption that
/// reports a bad padding instead of answering a pseudo-random plaintext, as OpenSSL does by
/// default since 3.2 ("implicit rejection"). sqlhsm answers `CKR_ENCRYPTED_DATA_INVALID` /
/// `CKR_WRAPPED_KEY_INVALID` as PKCS#11 3.0 asks, the same code for every padding failure.
const RSA_PKCS1_NO_IMPLICIT_REJECT_PADDING: std::ffi::c_int = 8;

fn set_padding<T>(ctx: &mut PkeyCtx<T>, padding: &RsaEncPadding, decrypt: bool) -> Result<()> {
    match padding {
        RsaEncPadding::Pkcs1 if decrypt => ctx
            .set_rsa_padding(Padding::from_raw(RSA_PKCS1_NO_IMPLICIT_REJECT_PADDING))
            .map_err(openssl_error),
        RsaEncPadding::Pkcs1 => ctx.set_rsa_padding(Padding::PKCS1).map_err(openssl_error),
        RsaEncPadding::Oaep { hash, mgf1, label } => {
            ctx.set_rsa_padding(Padding::PKCS1_OAEP)
                .map_err(openssl_error)?;
            ctx.set_rsa_oaep_md(hash.md_ref()).map_err(openssl_error)?;
            ctx.set_rsa_mgf1_md(mgf1.md_ref()).map_err(openssl_error)?;
            if !label.is_empty() {
                ctx.set_rsa_oaep_label(label).map_err(openssl_error)?;
            }
            Ok(())
        }
    }
}

pub fn rsa_encrypt(key: &PublicKey, padding: &RsaEncPadding, data: &[u8]) -> Result<Vec<u8>> {
    let mut ctx = PkeyCtx::new(key.pkey()?).map_err(openssl_error)?;
    ctx.encrypt_init().map_err(openssl_error)?;
    set_padding(&mut ctx, padding, false)?;
    let mut out = Vec::new();
    ctx.encrypt_to_vec(data, &mut out).map_err(openssl_error)?;
    Ok(out)
}

/// `Ok(None)` when the ciphertext or its padding is invalid.
pub fn rsa_decrypt(
    key: &PrivateKey,
    padding: &RsaEncPadding,
    data: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let mut ctx = PkeyCtx::new(key.pkey()?).map_err(openssl_error)?;
    ctx.decrypt_init().map_err(openssl_error)?;
    set_padding(&mut ctx, padding, true)?;
    // Sized up front so the plaintext is never reallocated out of the zeroized buffer.
    let mut out = Zeroizing::new(vec![0u8; key.pkey()?.size()]);
    match ctx.decrypt(data, Some(&mut out)) {
        Ok(len) => {
            out.truncate(len);
            Ok(Some(out))
        }
        Err(_) => Ok(None),
    }
}

/// The symmetric ciphers sqlhsm runs, each fetched from the provider once per process
/// (`EVP_CIPHER_fetch`) and kept: a cipher handed to an init as the legacy `EVP_aes_*()` object
/// is fetched again on every init in OpenSSL 3, which costs more than encrypting a kilobyte.
macro_rules! symmetric_ciphers {
    ($($alg:ident = $name:literal,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        pub(crate) enum Alg { $($alg),* }

        impl Alg {
            fn name(self) -> &'static str {
                match self { $(Alg::$alg => $name),* }
            }
        }

        const ALGS: usize = [$($name),*].len();
    };
}

symmetric_ciphers! {
    Aes128Ecb = "AES-128-ECB", Aes192Ecb = "AES-192-ECB", Aes256Ecb = "AES-256-ECB",
    Aes128Cbc = "AES-128-CBC", Aes192Cbc = "AES-192-CBC", Aes256Cbc = "AES-256-CBC",
    Aes128Ctr = "AES-128-CTR", Aes192Ctr = "AES-192-CTR", Aes256Ctr = "AES-256-CTR",
    Aes128Gcm = "AES-128-GCM", Aes192Gcm = "AES-192-GCM", Aes256Gcm = "AES-256-GCM",
    Aes128Ccm = "AES-128-CCM", Aes192Ccm = "AES-192-CCM", Aes256Ccm = "AES-256-CCM",
    Aes128Ofb = "AES-128-OFB", Aes192Ofb = "AES-192-OFB", Aes256Ofb = "AES-256-OFB",
    Aes128Cfb1 = "AES-128-CFB1", Aes192Cfb1 = "AES-192-CFB1", Aes256Cfb1 = "AES-256-CFB1",
    Aes128Cfb8 = "AES-128-CFB8", Aes192Cfb8 = "AES-192-CFB8", Aes256Cfb8 = "AES-256-CFB8",
    Aes128Cfb128 = "AES-128-CFB", Aes192Cfb128 = "AES-192-CFB", Aes256Cfb128 = "AES-256-CFB",
    Aes128Xts = "AES-128-XTS", Aes256Xts = "AES-256-XTS",
    Chacha20 = "ChaCha20", Chacha20Poly1305 = "ChaCha20-Poly1305",
    DesEde3Ecb = "DES-EDE3-ECB", DesEde3Cbc = "DES-EDE3-CBC",
}

static FETCHED: [OnceLock<Cipher>; ALGS] = [const { OnceLock::new() }; ALGS];

impl Alg {
    /// The AES cipher of one of the three key sizes (`None` for another length).
    pub(crate) fn aes(key_len: usize, [a128, a192, a256]: [Alg; 3]) -> Option<Alg> {
        match key_len {
            16 => Some(a128),
            24 => Some(a192),
            32 => Some(a256),
            _ => None,
        }
    }

    /// The provider's cipher, fetched on first use.
    pub(crate) fn cipher(self) -> Result<&'static CipherRef> {
        let slot = &FETCHED[self as usize];
        if let Some(cipher) = slot.get() {
            return Ok(cipher);
        }
        let cipher = Cipher::fetch(None, self.name(), None).map_err(openssl_error)?;
        Ok(slot.get_or_init(|| cipher))
    }
}

/// A cipher context keyed for one operation in one direction, unpadded, writing into the
/// caller's slice. Block modes take whole blocks only (`block` bytes; 1 for stream modes).
pub(crate) struct Ctx {
    ctx: CipherCtx,
    block: usize,
}

impl Ctx {
    /// `CKR_KEY_SIZE_RANGE` for a key, `CKR_MECHANISM_PARAM_INVALID` for an IV of another
    /// length than the cipher's.
    pub(crate) fn new(alg: Alg, encrypt: bool, key: &[u8], iv: Option<&[u8]>) -> Result<Ctx> {
        let cipher = alg.cipher()?;
        if key.len() != cipher.key_length() {
            Err(Rv::KEY_SIZE_RANGE)?
        }
        if iv.map(<[u8]>::len) != iv_len(cipher) {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        let mut ctx = CipherCtx::new().map_err(openssl_error)?;
        init(&mut ctx, encrypt, Some(cipher), Some(key), iv).map_err(openssl_error)?;
        ctx.set_padding(false);
        Ok(Ctx {
            block: cipher.block_size(),
            ctx,
        })
    }

    /// An AEAD context (GCM, ChaCha20-Poly1305) with a nonce of any length the cipher takes and
    /// the AAD already fed.
    pub(crate) fn aead(
        alg: Alg,
        encrypt: bool,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
    ) -> Result<Ctx> {
        let cipher = alg.cipher()?;
        if key.len() != cipher.key_length() {
            Err(Rv::KEY_SIZE_RANGE)?
        }
        let keyed = || -> std::result::Result<CipherCtx, openssl::error::ErrorStack> {
            let mut ctx = CipherCtx::new()?;
            init(&mut ctx, encrypt, Some(cipher), None, None)?;
            if Some(nonce.len()) != iv_len(cipher) {
                ctx.set_iv_length(nonce.len())?;
            }
            init(&mut ctx, encrypt, None, Some(key), Some(nonce))?;
            if !aad.is_empty() {
                ctx.cipher_update(aad, None)?;
            }
            Ok(ctx)
        };
        Ok(Ctx {
            ctx: keyed().map_err(openssl_error)?,
            block: 1,
        })
    }

    /// Processes `data` (whole blocks) into the first `data.len()` bytes of `out`; returns that
    /// length. `CKR_DATA_LEN_RANGE` for a partial block.
    pub(crate) fn update(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize> {
        if !data.len().is_multiple_of(self.block) {
            Err(Rv::DATA_LEN_RANGE)?
        }
        if data.is_empty() {
            return Ok(0);
        }
        let out = out.get_mut(..data.len()).ok_or(Rv::GENERAL_ERROR)?;
        if self.block == 1 {
            return self
                .ctx
                .cipher_update(data, Some(out))
                .map_err(openssl_error);
        }
        // The safe binding wants a block of room beyond the input (a padded mode could hold one
        // back); unpadded, the output is exactly the input, so all but the last block go
        // straight to `out` and the last one through a wiped stack block.
        let head = data.len() - self.block;
        let mut written = self
            .ctx
            .cipher_update(&data[..head], Some(out))
            .map_err(openssl_error)?;
        let mut last = Zeroizing::new([0u8; 2 * MAX_BLOCK]);
        let n = self
            .ctx
            .cipher_update(&data[head..], Some(&mut last[..2 * self.block]))
            .map_err(openssl_error)?;
        out.get_mut(written..written + n)
            .ok_or(Rv::GENERAL_ERROR)?
            .copy_from_slice(&last[..n]);
        written += n;
        Ok(written)
    }

    /// An AEAD encryption's end: its tag into `tag`.
    pub(crate) fn finish_tag(&mut self, tag: &mut [u8]) -> Result<()> {
        // Stream-like AEADs hold nothing back: the final call writes no data.
        self.ctx.cipher_final(&mut []).map_err(openssl_error)?;
        self.ctx.tag(tag).map_err(openssl_error)
    }

    /// An AEAD decryption's end: `true` when `tag` verifies.
    pub(crate) fn check_tag(&mut self, tag: &[u8]) -> bool {
        self.ctx.set_tag(tag).is_ok() && self.ctx.cipher_final(&mut []).is_ok()
    }
}

/// The largest block of the ciphers above (AES).
const MAX_BLOCK: usize = AES_BLOCK;

fn iv_len(cipher: &CipherRef) -> Option<usize> {
    match cipher.iv_length() {
        0 => None,
        n => Some(n),
    }
}

fn init(
    ctx: &mut CipherCtx,
    encrypt: bool,
    cipher: Option<&CipherRef>,
    key: Option<&[u8]>,
    iv: Option<&[u8]>,
) -> std::result::Result<(), openssl::error::ErrorStack> {
    if encrypt {
        ctx.encrypt_init(cipher, key, iv)
    } else {
        ctx.decrypt_init(cipher, key, iv)
    }
}

/// Block modes without padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AesMode {
    Ecb,
    Cbc,
}

/// AES in ECB or CBC mode, unpadded, fed whole blocks only; chaining state carries over between
/// calls.
pub struct AesBlocks {
    ctx: Ctx,
}

impl AesBlocks {
    /// `CKR_KEY_SIZE_RANGE` for a key that is not 16, 24 or 32 bytes; CBC needs a 16-byte IV.
    pub fn new(key: &[u8], mode: AesMode, iv: Option<&[u8]>, encrypt: bool) -> Result<AesBlocks> {
        use Alg::*;
        let (algs, iv) = match mode {
            AesMode::Ecb => ([Aes128Ecb, Aes192Ecb, Aes256Ecb], None),
            AesMode::Cbc => match iv {
                Some(iv) if iv.len() == AES_BLOCK => ([Aes128Cbc, Aes192Cbc, Aes256Cbc], Some(iv)),
                _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
            },
        };
        let alg = Alg::aes(key.len(), algs).ok_or(Rv::KEY_SIZE_RANGE)?;
        Ok(AesBlocks {
            ctx: Ctx::new(alg, encrypt, key, iv)?,
        })
    }

    /// Process `blocks` (a multiple of 16 bytes) into `out` (at least as long); returns the
    /// length written, `blocks.len()`.
    pub fn update_into(&mut self, blocks: &[u8], out: &mut [u8]) -> Result<usize> {
        self.ctx.update(blocks, out)
    }

    /// [`AesBlocks::update_into`] into a fresh (zeroized) buffer.
    pub fn update(&mut self, blocks: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; blocks.len()]);
        let len = self.update_into(blocks, &mut out)?;
        out.truncate(len);
        Ok(out)
    }
}

/// Streaming AES-GCM encryption into the caller's buffer; the tag comes out of
/// [`AesGcmEncryptor::finish`].
pub struct AesGcmEncryptor {
    ctx: Ctx,
    tag_len: usize,
}

impl AesGcmEncryptor {
    pub fn new(key: &[u8], iv: &[u8], aad: &[u8], tag_len: usize) -> Result<AesGcmEncryptor> {
        use Alg::*;
        let alg =
            Alg::aes(key.len(), [Aes128Gcm, Aes192Gcm, Aes256Gcm]).ok_or(Rv::KEY_SIZE_RANGE)?;
        if iv.is_empty() || !(1..=16).contains(&tag_len) {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        let ctx = Ctx::aead(alg, true, key, iv, aad)?;
        Ok(AesGcmEncryptor { ctx, tag_len })
    }

    /// Encrypts `data` into the first `data.len()` bytes of `out`.
    pub fn update(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize> {
        self.ctx.update(data, out)
    }

    /// The tag, into the first `tag_len` bytes of `out`.
    pub fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        let tag = out.get_mut(..self.tag_len).ok_or(Rv::GENERAL_ERROR)?;
        self.ctx.finish_tag(tag)?;
        Ok(self.tag_len)
    }
}

/// One-shot AES-GCM decryption; `None` when the tag does not verify (no plaintext escapes).
pub fn aes_gcm_decrypt(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    if aes_gcm_alg(key.len()).is_none() {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    Ok(super::aead::gcm_open(key, iv, aad, ciphertext, tag))
}

pub(crate) fn aes_gcm_alg(key_len: usize) -> Option<Alg> {
    use Alg::*;
    Alg::aes(key_len, [Aes128Gcm, Aes192Gcm, Aes256Gcm])
}

/// AES in counter mode (NIST SP 800-38A §6.5) with a full 128-bit big-endian counter block;
/// limiting the counter to fewer bits is the mechanism's job (it refuses to wrap around).
pub struct AesCtr {
    ctx: Ctx,
}

impl AesCtr {
    /// `CKR_KEY_SIZE_RANGE` for a key that is not 16, 24 or 32 bytes.
    pub fn new(key: &[u8], counter_block: &[u8; AES_BLOCK]) -> Result<AesCtr> {
        use Alg::*;
        let alg =
            Alg::aes(key.len(), [Aes128Ctr, Aes192Ctr, Aes256Ctr]).ok_or(Rv::KEY_SIZE_RANGE)?;
        // Encryption and decryption are the same keystream XOR.
        Ok(AesCtr {
            ctx: Ctx::new(alg, true, key, Some(counter_block))?,
        })
    }

    /// Processes `data` into the first `data.len()` bytes of `out`.
    pub fn update(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize> {
        self.ctx.update(data, out)
    }
}

/// Raw RSA public operation `m^e mod n` (`CKM_RSA_X_509` encrypt / verify). `input` must be as
/// long as the modulus and numerically below it; the mechanism checks both first.
pub fn rsa_raw_public(key: &PublicKey, input: &[u8]) -> Result<Vec<u8>> {
    let mut ctx = PkeyCtx::new(key.pkey()?).map_err(openssl_error)?;
    ctx.encrypt_init().map_err(openssl_error)?;
    ctx.set_rsa_padding(Padding::NONE).map_err(openssl_error)?;
    let mut out = Vec::new();
    ctx.encrypt_to_vec(input, &mut out).map_err(openssl_error)?;
    Ok(out)
}

/// Raw RSA private operation `c^d mod n` (`CKM_RSA_X_509` decrypt / sign), output as long as
/// the modulus. Same preconditions as [`rsa_raw_public`].
pub fn rsa_raw_private(key: &PrivateKey, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let mut ctx = PkeyCtx::new(key.pkey()?).map_err(openssl_error)?;
    ctx.decrypt_init().map_err(openssl_error)?;
    ctx.set_rsa_padding(Padding::NONE).map_err(openssl_error)?;
    let mut out = Zeroizing::new(vec![0u8; key.pkey()?.size()]);
    let len = ctx.decrypt(input, Some(&mut out)).map_err(openssl_error)?;
    out.truncate(len);
    Ok(out)
}

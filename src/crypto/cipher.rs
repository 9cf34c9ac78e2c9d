//! Cipher primitives: RSA encryption (PKCS#1 v1.5, OAEP) and AES (ECB, CBC, GCM). Buffering,
//! padding policy and PKCS#11 error codes are the mechanisms' job; decryption failures that
//! concern the ciphertext answer `None`.

use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::symm::{Cipher, Crypter, Mode};
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

fn aes_cipher(mode: AesMode, key_len: usize) -> Option<Cipher> {
    Some(match (mode, key_len) {
        (AesMode::Ecb, 16) => Cipher::aes_128_ecb(),
        (AesMode::Ecb, 24) => Cipher::aes_192_ecb(),
        (AesMode::Ecb, 32) => Cipher::aes_256_ecb(),
        (AesMode::Cbc, 16) => Cipher::aes_128_cbc(),
        (AesMode::Cbc, 24) => Cipher::aes_192_cbc(),
        (AesMode::Cbc, 32) => Cipher::aes_256_cbc(),
        _ => return None,
    })
}

pub(crate) fn aes_gcm_cipher(key_len: usize) -> Option<Cipher> {
    match key_len {
        16 => Some(Cipher::aes_128_gcm()),
        24 => Some(Cipher::aes_192_gcm()),
        32 => Some(Cipher::aes_256_gcm()),
        _ => None,
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
    crypter: Crypter,
}

impl AesBlocks {
    /// `CKR_KEY_SIZE_RANGE` for a key that is not 16, 24 or 32 bytes; CBC needs a 16-byte IV.
    pub fn new(key: &[u8], mode: AesMode, iv: Option<&[u8]>, encrypt: bool) -> Result<AesBlocks> {
        let cipher = aes_cipher(mode, key.len()).ok_or(Rv::KEY_SIZE_RANGE)?;
        let iv = match mode {
            AesMode::Ecb => None,
            AesMode::Cbc => match iv {
                Some(iv) if iv.len() == AES_BLOCK => Some(iv),
                _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
            },
        };
        let mode = if encrypt {
            Mode::Encrypt
        } else {
            Mode::Decrypt
        };
        let mut crypter = Crypter::new(cipher, mode, key, iv).map_err(openssl_error)?;
        crypter.pad(false);
        Ok(AesBlocks { crypter })
    }

    /// Process `blocks` (a multiple of 16 bytes).
    pub fn update(&mut self, blocks: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if !blocks.len().is_multiple_of(AES_BLOCK) {
            Err(Rv::DATA_LEN_RANGE)?
        }
        let mut out = Zeroizing::new(vec![0u8; blocks.len() + AES_BLOCK]);
        let len = self
            .crypter
            .update(blocks, &mut out)
            .map_err(openssl_error)?;
        out.truncate(len);
        Ok(out)
    }
}

/// Streaming AES-GCM encryption; the tag comes out of [`AesGcmEncryptor::finish`].
pub struct AesGcmEncryptor {
    crypter: Crypter,
    tag_len: usize,
}

impl AesGcmEncryptor {
    pub fn new(key: &[u8], iv: &[u8], aad: &[u8], tag_len: usize) -> Result<AesGcmEncryptor> {
        let cipher = aes_gcm_cipher(key.len()).ok_or(Rv::KEY_SIZE_RANGE)?;
        if iv.is_empty() || !(1..=16).contains(&tag_len) {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        let mut crypter =
            Crypter::new(cipher, Mode::Encrypt, key, Some(iv)).map_err(openssl_error)?;
        crypter.aad_update(aad).map_err(openssl_error)?;
        Ok(AesGcmEncryptor { crypter, tag_len })
    }

    pub fn update(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; data.len() + AES_BLOCK];
        let len = self.crypter.update(data, &mut out).map_err(openssl_error)?;
        out.truncate(len);
        Ok(out)
    }

    /// Any last bytes followed by the tag.
    pub fn finish(&mut self) -> Result<Vec<u8>> {
        let mut out = vec![0u8; AES_BLOCK];
        let len = self.crypter.finalize(&mut out).map_err(openssl_error)?;
        out.truncate(len);
        let mut tag = vec![0u8; self.tag_len];
        self.crypter.get_tag(&mut tag).map_err(openssl_error)?;
        out.extend_from_slice(&tag);
        Ok(out)
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
    if aes_gcm_cipher(key.len()).is_none() {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    Ok(super::aead::gcm_open(key, iv, aad, ciphertext, tag))
}

/// AES in counter mode (NIST SP 800-38A §6.5) with a full 128-bit big-endian counter block;
/// limiting the counter to fewer bits is the mechanism's job (it refuses to wrap around).
pub struct AesCtr {
    crypter: Crypter,
}

impl AesCtr {
    /// `CKR_KEY_SIZE_RANGE` for a key that is not 16, 24 or 32 bytes.
    pub fn new(key: &[u8], counter_block: &[u8; AES_BLOCK]) -> Result<AesCtr> {
        let cipher = match key.len() {
            16 => Cipher::aes_128_ctr(),
            24 => Cipher::aes_192_ctr(),
            32 => Cipher::aes_256_ctr(),
            _ => Err(Rv::KEY_SIZE_RANGE)?,
        };
        // Encryption and decryption are the same keystream XOR.
        let crypter =
            Crypter::new(cipher, Mode::Encrypt, key, Some(counter_block)).map_err(openssl_error)?;
        Ok(AesCtr { crypter })
    }

    pub fn update(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; data.len() + AES_BLOCK]);
        let len = self.crypter.update(data, &mut out).map_err(openssl_error)?;
        out.truncate(len);
        Ok(out)
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

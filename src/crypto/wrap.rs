//! AES key wrapping: RFC 3394 (KW, NIST SP 800-38F §6.2) and RFC 5649 (KWP, §6.3), through
//! OpenSSL's `id-aes*-wrap` / `-wrap-pad` ciphers; and the AES `CKA_CHECK_VALUE`.
//!
//! Length rules are checked here before OpenSSL sees the input, so a bad length is never an
//! OpenSSL error: the mechanisms map [`WrapError`] to the PKCS#11 code of their operation.

use openssl::cipher::{Cipher, CipherRef};
use openssl::cipher_ctx::{CipherCtx, CipherCtxFlags};
use zeroize::Zeroizing;

use crate::crypto::cipher::{AesBlocks, AesMode, AES_BLOCK};
use crate::crypto::openssl_error;
use crate::error::{Result, Rv};

/// Default IV of RFC 3394 §2.2.3.1.
pub const KW_DEFAULT_IV: [u8; 8] = [0xa6; 8];
/// Default alternative IV (the constant half of the AIV) of RFC 5649 §3.
pub const KWP_DEFAULT_IV: [u8; 4] = [0xa6, 0x59, 0x59, 0xa6];

/// Which of the two key-wrap algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyWrap {
    /// RFC 3394: input a multiple of 8 bytes, at least 16; 8-byte IV.
    Kw,
    /// RFC 5649: any input of 1 byte or more; 4-byte IV.
    Kwp,
}

/// Why a wrap or unwrap did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum WrapError {
    /// The input length is not one the algorithm accepts.
    Length,
    /// The integrity check (IV / padding) failed on unwrap.
    Integrity,
}

/// Largest input KWP handles (its length field is 32 bits).
const KWP_MAX: usize = u32::MAX as usize;

impl KeyWrap {
    pub fn iv_len(self) -> usize {
        match self {
            KeyWrap::Kw => 8,
            KeyWrap::Kwp => 4,
        }
    }

    /// Whether `len` plaintext bytes can be wrapped.
    pub fn plaintext_ok(self, len: usize) -> bool {
        match self {
            KeyWrap::Kw => len >= 16 && len.is_multiple_of(8),
            KeyWrap::Kwp => (1..=KWP_MAX).contains(&len),
        }
    }

    /// Whether `len` ciphertext bytes can be unwrapped.
    pub fn ciphertext_ok(self, len: usize) -> bool {
        match self {
            KeyWrap::Kw => len >= 24 && len.is_multiple_of(8),
            KeyWrap::Kwp => len >= 16 && len.is_multiple_of(8) && len - 8 <= KWP_MAX + 7,
        }
    }

    /// Ciphertext length for `len` bytes of plaintext.
    pub fn wrapped_len(self, len: usize) -> usize {
        match self {
            KeyWrap::Kw => len + 8,
            KeyWrap::Kwp => len.div_ceil(8) * 8 + 8,
        }
    }

    fn cipher(self, key_len: usize) -> Option<&'static CipherRef> {
        Some(match (self, key_len) {
            (KeyWrap::Kw, 16) => Cipher::aes_128_wrap(),
            (KeyWrap::Kw, 24) => Cipher::aes_192_wrap(),
            (KeyWrap::Kw, 32) => Cipher::aes_256_wrap(),
            (KeyWrap::Kwp, 16) => Cipher::aes_128_wrap_pad(),
            (KeyWrap::Kwp, 24) => Cipher::aes_192_wrap_pad(),
            (KeyWrap::Kwp, 32) => Cipher::aes_256_wrap_pad(),
            _ => return None,
        })
    }

    fn context(self, key: &[u8], iv: Option<&[u8]>, encrypt: bool) -> Result<CipherCtx> {
        let cipher = self.cipher(key.len()).ok_or(Rv::KEY_SIZE_RANGE)?;
        if iv.is_some_and(|iv| iv.len() != self.iv_len()) {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        let mut ctx = CipherCtx::new().map_err(openssl_error)?;
        ctx.set_flags(CipherCtxFlags::FLAG_WRAP_ALLOW);
        if encrypt {
            ctx.encrypt_init(Some(cipher), Some(key), iv)
        } else {
            ctx.decrypt_init(Some(cipher), Some(key), iv)
        }
        .map_err(openssl_error)?;
        Ok(ctx)
    }

    /// Wrap `data` under the AES key `key` (`iv`: `None` for the RFC default).
    pub fn wrap(
        self,
        key: &[u8],
        iv: Option<&[u8]>,
        data: &[u8],
    ) -> Result<std::result::Result<Vec<u8>, WrapError>> {
        let mut ctx = self.context(key, iv, true)?;
        if !self.plaintext_ok(data.len()) {
            return Ok(Err(WrapError::Length));
        }
        let mut out = vec![0u8; data.len() + 16];
        let len = ctx
            .cipher_update(data, Some(&mut out))
            .map_err(openssl_error)?;
        out.truncate(len);
        Ok(Ok(out))
    }

    /// Unwrap; no plaintext escapes when the integrity check fails.
    pub fn unwrap(
        self,
        key: &[u8],
        iv: Option<&[u8]>,
        data: &[u8],
    ) -> Result<std::result::Result<Zeroizing<Vec<u8>>, WrapError>> {
        let mut ctx = self.context(key, iv, false)?;
        if !self.ciphertext_ok(data.len()) {
            return Ok(Err(WrapError::Length));
        }
        let mut out = Zeroizing::new(vec![0u8; data.len() + 16]);
        match ctx.cipher_update(data, Some(&mut out)) {
            Ok(len) => {
                out.truncate(len);
                Ok(Ok(out))
            }
            Err(_) => Ok(Err(WrapError::Integrity)),
        }
    }
}

/// `CKA_CHECK_VALUE` of an AES key (PKCS#11 3.0 Current Mechanisms §2.10.1): the first three
/// bytes of the ECB encryption of one all-zero block under the key.
pub fn aes_check_value(key: &[u8]) -> Result<[u8; 3]> {
    let mut ecb = AesBlocks::new(key, AesMode::Ecb, None, true)?;
    let block = ecb.update(&[0u8; AES_BLOCK])?;
    let mut out = [0u8; 3];
    out.copy_from_slice(block.get(..3).ok_or(Rv::GENERAL_ERROR)?);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc3394_4_1_and_rfc5649_6() {
        let kek = hex::decode("000102030405060708090A0B0C0D0E0F").unwrap();
        let data = hex::decode("00112233445566778899AABBCCDDEEFF").unwrap();
        let ct = KeyWrap::Kw.wrap(&kek, None, &data).unwrap().unwrap();
        assert_eq!(
            hex::encode_upper(&ct),
            "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"
        );
        assert_eq!(
            KeyWrap::Kw
                .wrap(&kek, Some(&KW_DEFAULT_IV), &data)
                .unwrap()
                .unwrap(),
            ct
        );
        assert_eq!(*KeyWrap::Kw.unwrap(&kek, None, &ct).unwrap().unwrap(), data);
        let mut bad = ct.clone();
        bad[3] ^= 1;
        assert_eq!(
            KeyWrap::Kw.unwrap(&kek, None, &bad).unwrap().unwrap_err(),
            WrapError::Integrity
        );

        let kek = hex::decode("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8").unwrap();
        let ct = KeyWrap::Kwp.wrap(&kek, None, &hex::decode("466f7250617369").unwrap());
        assert_eq!(
            hex::encode(ct.unwrap().unwrap()),
            "afbeb0f07dfbf5419200f2ccb50bb24f"
        );
        let data = hex::decode("c37b7e6492584340bed12207808941155068f738").unwrap();
        let ct = KeyWrap::Kwp.wrap(&kek, None, &data).unwrap().unwrap();
        assert_eq!(
            hex::encode(&ct),
            "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"
        );
        assert_eq!(
            *KeyWrap::Kwp.unwrap(&kek, None, &ct).unwrap().unwrap(),
            data
        );
    }

    #[test]
    fn lengths_and_ivs() {
        let kek = [1u8; 16];
        for (kind, ok, bad) in [
            (KeyWrap::Kw, vec![16, 24, 40], vec![0, 8, 15, 17, 23]),
            (KeyWrap::Kwp, vec![1, 7, 8, 9, 16, 33], vec![0]),
        ] {
            for len in ok {
                let data = vec![0x5au8; len];
                let ct = kind.wrap(&kek, None, &data).unwrap().unwrap();
                assert_eq!(ct.len(), kind.wrapped_len(len));
                assert_eq!(*kind.unwrap(&kek, None, &ct).unwrap().unwrap(), data);
                // A custom IV must match on unwrap.
                let iv = vec![7u8; kind.iv_len()];
                let ct2 = kind.wrap(&kek, Some(&iv), &data).unwrap().unwrap();
                assert_ne!(ct2, ct);
                assert_eq!(*kind.unwrap(&kek, Some(&iv), &ct2).unwrap().unwrap(), data);
                assert_eq!(
                    kind.unwrap(&kek, None, &ct2).unwrap().unwrap_err(),
                    WrapError::Integrity
                );
            }
            for len in bad {
                assert_eq!(
                    kind.wrap(&kek, None, &vec![0u8; len]).unwrap().unwrap_err(),
                    WrapError::Length
                );
            }
            assert_eq!(
                kind.unwrap(&kek, None, &[0u8; 25]).unwrap().unwrap_err(),
                WrapError::Length
            );
            assert_eq!(
                kind.unwrap(&kek, None, &[0u8; 8]).unwrap().unwrap_err(),
                WrapError::Length
            );
            assert!(kind.wrap(&kek, Some(&[0u8; 5]), &[0u8; 16]).is_err());
            assert!(kind.wrap(&[0u8; 20], None, &[0u8; 16]).is_err());
        }
    }

    #[test]
    fn check_value() {
        // FIPS 197 C.1 key; AES-128(0^128) under 000102..0f is c6a13b37878f5b826f4f8162a1c8d879.
        let key = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        assert_eq!(aes_check_value(&key).unwrap(), [0xc6, 0xa1, 0x3b]);
        assert_eq!(
            aes_check_value(&[0u8; 17]).unwrap_err().rv(),
            Rv::KEY_SIZE_RANGE
        );
    }
}

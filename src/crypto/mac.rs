//! Message authentication codes: HMAC (RFC 2104, FIPS 198-1) over SHA-1/SHA-2 and AES-CMAC
//! (NIST SP 800-38B). Streaming; tag length and PKCS#11 error codes are the mechanisms' job.

use openssl::md_ctx::MdCtx;
use openssl::pkey::PKey;
use openssl::symm::Cipher;

use crate::crypto::digest::HashAlg;
use crate::crypto::openssl_error;
use crate::error::{Result, Rv};

/// A MAC computation in progress. The key lives inside OpenSSL's context (which holds its own
/// reference to the key object), so nothing here borrows the caller's bytes.
pub struct Mac {
    ctx: MdCtx,
    len: usize,
}

impl Mac {
    /// HMAC with `alg`; any non-empty key (longer keys are hashed as RFC 2104 says).
    pub fn hmac(alg: HashAlg, key: &[u8]) -> Result<Mac> {
        if key.is_empty() {
            Err(Rv::KEY_SIZE_RANGE)?
        }
        let pkey = PKey::hmac(key).map_err(openssl_error)?;
        let mut ctx = MdCtx::new().map_err(openssl_error)?;
        ctx.digest_sign_init(Some(alg.md_ref()), &pkey)
            .map_err(openssl_error)?;
        Ok(Mac {
            ctx,
            len: alg.output_len(),
        })
    }

    /// AES-CMAC; the key must be 16, 24 or 32 bytes (`CKR_KEY_SIZE_RANGE` otherwise).
    pub fn aes_cmac(key: &[u8]) -> Result<Mac> {
        let cipher = match key.len() {
            16 => Cipher::aes_128_cbc(),
            24 => Cipher::aes_192_cbc(),
            32 => Cipher::aes_256_cbc(),
            _ => Err(Rv::KEY_SIZE_RANGE)?,
        };
        let pkey = PKey::cmac(&cipher, key).map_err(openssl_error)?;
        let mut ctx = MdCtx::new().map_err(openssl_error)?;
        ctx.digest_sign_init(None, &pkey).map_err(openssl_error)?;
        Ok(Mac {
            ctx,
            len: super::cipher::AES_BLOCK,
        })
    }

    /// Triple-DES CMAC (SP 800-38B with the 64-bit block); the key is 24 bytes (a
    /// double-length key is given as K1‖K2‖K1).
    pub fn tdes_cmac(key: &[u8]) -> Result<Mac> {
        if key.len() != super::modes::TDES_KEY {
            Err(Rv::KEY_SIZE_RANGE)?
        }
        let pkey = PKey::cmac(&Cipher::des_ede3_cbc(), key).map_err(openssl_error)?;
        let mut ctx = MdCtx::new().map_err(openssl_error)?;
        ctx.digest_sign_init(None, &pkey).map_err(openssl_error)?;
        Ok(Mac {
            ctx,
            len: super::modes::DES_BLOCK,
        })
    }

    /// Full MAC length in bytes.
    pub fn mac_len(&self) -> usize {
        self.len
    }

    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        self.ctx.digest_sign_update(data).map_err(openssl_error)
    }

    /// The full-length MAC of everything fed so far.
    pub fn finish(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len);
        self.ctx
            .digest_sign_final_to_vec(&mut out)
            .map_err(openssl_error)?;
        Ok(out)
    }
}

/// Constant-time equality of two MACs (lengths are public and compared first).
pub fn mac_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2_and_rfc4493_example_2() {
        let mut m = Mac::hmac(HashAlg::Sha256, b"Jefe").unwrap();
        m.update(b"what do ya want ").unwrap();
        m.update(b"for nothing?").unwrap();
        assert_eq!(
            hex::encode(m.finish().unwrap()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let mut c = Mac::aes_cmac(&key).unwrap();
        c.update(&hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap())
            .unwrap();
        assert_eq!(
            hex::encode(c.finish().unwrap()),
            "070a16b46b4d4144f79bdd9dd04a287c"
        );
        assert!(Mac::aes_cmac(&[0; 20]).is_err());
        // SP 800-38B D.4 (three-key TDEA), example 10: 20 bytes of message.
        let key = hex::decode("8aa83bf8cbda10620bc1bf19fbb6cd58bc313d4a371ca8b5").unwrap();
        let mut t = Mac::tdes_cmac(&key).unwrap();
        t.update(&hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a57").unwrap())
            .unwrap();
        assert_eq!(hex::encode(t.finish().unwrap()), "743ddbe0ce2dc2ed");
        assert!(Mac::tdes_cmac(&[0; 16]).is_err());
        assert!(Mac::hmac(HashAlg::Sha1, &[]).is_err());
        assert!(mac_eq(b"abc", b"abc"));
        assert!(!mac_eq(b"abc", b"abd"));
        assert!(!mac_eq(b"abc", b"ab"));
    }
}

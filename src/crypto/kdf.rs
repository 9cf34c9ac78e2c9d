//! PIN-based key derivation: scrypt (memory-hard), parameters stored per token; and HKDF
//! (RFC 5869), built on HMAC, for the `CKM_HKDF_*` mechanisms.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::openssl_error;
use crate::error::{Error, Result};

/// scrypt parameters as stored in a token record, so they can be raised later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScryptParams {
    pub log_n: u8,
    pub r: u32,
    pub p: u32,
}

impl Default for ScryptParams {
    fn default() -> Self {
        ScryptParams {
            log_n: 15,
            r: 8,
            p: 1,
        }
    }
}

/// Derive a 32-byte key-encryption key from `pin` and `salt`.
pub fn derive_pin_key(
    pin: &[u8],
    salt: &[u8],
    params: ScryptParams,
) -> Result<Zeroizing<[u8; 32]>> {
    let invalid = || Error::Crypto(format!("invalid scrypt parameters {params:?}").into());
    if params.log_n == 0 || params.log_n > 30 || params.r == 0 || params.p == 0 {
        return Err(invalid());
    }
    let n: u64 = 1 << params.log_n;
    let r = u64::from(params.r);
    let p = u64::from(params.p);
    // OpenSSL refuses unless B (128·r·p) plus V (128·r·(N+2)) fit in maxmem; leave 1 MiB slack.
    let maxmem = 128u64
        .checked_mul(r)
        .and_then(|x| x.checked_mul(n.checked_add(2)?.checked_add(p)?))
        .and_then(|x| x.checked_add(1 << 20))
        .ok_or_else(invalid)?;
    let mut key = Zeroizing::new([0u8; 32]);
    openssl::pkcs5::scrypt(pin, salt, n, r, p, maxmem, key.as_mut()).map_err(openssl_error)?;
    Ok(key)
}

/// Mixes a PIN-derived key with a secret held elsewhere (a PROVIDER_ROOT_KEY token's root
/// secret): HMAC-SHA256 keyed by the secret, so neither input alone gives the result.
pub fn bind_to_secret(kek: &[u8; 32], secret: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>> {
    let mut mac = crate::crypto::mac::Mac::hmac(crate::crypto::digest::HashAlg::Sha256, secret)?;
    mac.update(b"sqlhsm/pin-key-bound-to-root")?;
    mac.update(kek)?;
    let out = Zeroizing::new(mac.finish()?);
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&out[..32]);
    Ok(key)
}

/// HKDF-Extract (RFC 5869 §2.2): PRK = HMAC-Hash(salt, IKM). An empty salt is HashLen zeros,
/// as the RFC says when none is given.
pub fn hkdf_extract(
    alg: crate::crypto::digest::HashAlg,
    salt: &[u8],
    ikm: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let zeros = vec![0u8; alg.output_len()];
    let salt = if salt.is_empty() { &zeros[..] } else { salt };
    let mut mac = crate::crypto::mac::Mac::hmac(alg, salt)?;
    mac.update(ikm)?;
    Ok(Zeroizing::new(mac.finish()?))
}

/// HKDF-Expand (RFC 5869 §2.3): `len` bytes of T(1) | T(2) | …; at most 255 blocks
/// (`CKR_KEY_SIZE_RANGE` beyond, and for an empty output).
pub fn hkdf_expand(
    alg: crate::crypto::digest::HashAlg,
    prk: &[u8],
    info: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    if len == 0 || len > 255 * alg.output_len() {
        Err(crate::error::Rv::KEY_SIZE_RANGE)?
    }
    let mut okm = Zeroizing::new(Vec::with_capacity(len + alg.output_len()));
    let mut block = Zeroizing::new(Vec::new());
    let mut counter = 1u8;
    while okm.len() < len {
        let mut mac = crate::crypto::mac::Mac::hmac(alg, prk)?;
        mac.update(&block)?;
        mac.update(info)?;
        mac.update(&[counter])?;
        block = Zeroizing::new(mac.finish()?);
        okm.extend_from_slice(&block);
        counter = counter.wrapping_add(1);
    }
    okm.truncate(len);
    Ok(okm)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc5869_case_1_and_3() {
        use crate::crypto::digest::HashAlg;
        let ikm = [0x0bu8; 22];
        let salt = hex::decode("000102030405060708090a0b0c").unwrap();
        let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
        let prk = hkdf_extract(HashAlg::Sha256, &salt, &ikm).unwrap();
        assert_eq!(
            hex::encode(&*prk),
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
        );
        let okm = hkdf_expand(HashAlg::Sha256, &prk, &info, 42).unwrap();
        assert_eq!(
            hex::encode(&*okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
        let prk = hkdf_extract(HashAlg::Sha256, &[], &ikm).unwrap();
        let okm = hkdf_expand(HashAlg::Sha256, &prk, &[], 42).unwrap();
        assert_eq!(
            hex::encode(&*okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        );
        assert!(hkdf_expand(HashAlg::Sha256, &prk, &[], 255 * 32 + 1).is_err());
        assert!(hkdf_expand(HashAlg::Sha256, &prk, &[], 0).is_err());
        assert_eq!(
            hkdf_expand(HashAlg::Sha256, &prk, &[], 255 * 32)
                .unwrap()
                .len(),
            8160
        );
    }

    const FAST: ScryptParams = ScryptParams {
        log_n: 10,
        r: 8,
        p: 1,
    };

    #[test]
    fn deterministic_and_salted() {
        let a = derive_pin_key(b"1234", b"salt-one", FAST).unwrap();
        let b = derive_pin_key(b"1234", b"salt-one", FAST).unwrap();
        let c = derive_pin_key(b"1234", b"salt-two", FAST).unwrap();
        let d = derive_pin_key(b"12345", b"salt-one", FAST).unwrap();
        assert_eq!(*a, *b);
        assert_ne!(*a, *c);
        assert_ne!(*a, *d);
    }

    #[test]
    fn rfc7914_vector() {
        // RFC 7914 §12, second vector (first 32 bytes of the 64-byte output).
        let key = derive_pin_key(
            b"password",
            b"NaCl",
            ScryptParams {
                log_n: 10,
                r: 8,
                p: 16,
            },
        )
        .unwrap();
        assert_eq!(
            hex::encode(*key),
            "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
        );
    }

    #[test]
    fn large_parameters_fit_maxmem() {
        // log_n 20 with r 8 needs 1 GiB, too much for a unit test; log_n 16 with r 8 (64 MiB)
        // exceeds OpenSSL's 32 MiB default maxmem and so proves ours.
        assert!(derive_pin_key(
            b"x",
            b"y",
            ScryptParams {
                log_n: 0,
                r: 8,
                p: 1
            }
        )
        .is_err());
        assert!(derive_pin_key(
            b"x",
            b"y",
            ScryptParams {
                log_n: 31,
                r: 8,
                p: 1
            }
        )
        .is_err());
        derive_pin_key(
            b"x",
            b"y",
            ScryptParams {
                log_n: 16,
                r: 8,
                p: 1,
            },
        )
        .unwrap();
    }
}

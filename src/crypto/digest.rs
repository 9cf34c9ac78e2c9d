//! Message digests (SHA-1, SHA-2 and SHA-3), the building block of the hash-and-sign mechanisms.

use openssl::hash::MessageDigest;

use crate::crypto::openssl_error;
use crate::error::Result;

/// The hash functions sqlhsm offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
}

impl HashAlg {
    /// Output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha1 => 20,
            HashAlg::Sha224 => 28,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
            HashAlg::Sha3_224 => 28,
            HashAlg::Sha3_256 => 32,
            HashAlg::Sha3_384 => 48,
            HashAlg::Sha3_512 => 64,
        }
    }

    /// The same algorithm as an `EVP_MD` reference, the form `PkeyCtx` setters take.
    pub(crate) fn md_ref(self) -> &'static openssl::md::MdRef {
        use openssl::md::Md;
        match self {
            HashAlg::Sha1 => Md::sha1(),
            HashAlg::Sha224 => Md::sha224(),
            HashAlg::Sha256 => Md::sha256(),
            HashAlg::Sha384 => Md::sha384(),
            HashAlg::Sha512 => Md::sha512(),
            HashAlg::Sha3_224 => Md::sha3_224(),
            HashAlg::Sha3_256 => Md::sha3_256(),
            HashAlg::Sha3_384 => Md::sha3_384(),
            HashAlg::Sha3_512 => Md::sha3_512(),
        }
    }

    pub(crate) fn md(self) -> MessageDigest {
        match self {
            HashAlg::Sha1 => MessageDigest::sha1(),
            HashAlg::Sha224 => MessageDigest::sha224(),
            HashAlg::Sha256 => MessageDigest::sha256(),
            HashAlg::Sha384 => MessageDigest::sha384(),
            HashAlg::Sha512 => MessageDigest::sha512(),
            HashAlg::Sha3_224 => MessageDigest::sha3_224(),
            HashAlg::Sha3_256 => MessageDigest::sha3_256(),
            HashAlg::Sha3_384 => MessageDigest::sha3_384(),
            HashAlg::Sha3_512 => MessageDigest::sha3_512(),
        }
    }
}

/// A running hash.
pub struct Hasher {
    inner: openssl::hash::Hasher,
    alg: HashAlg,
}

impl Hasher {
    pub fn new(alg: HashAlg) -> Result<Hasher> {
        Ok(Hasher {
            inner: openssl::hash::Hasher::new(alg.md()).map_err(openssl_error)?,
            alg,
        })
    }

    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        self.inner.update(data).map_err(openssl_error)
    }

    /// The digest of everything fed so far; the hasher starts over afterwards.
    pub fn finish(&mut self) -> Result<Vec<u8>> {
        Ok(self.inner.finish().map_err(openssl_error)?.to_vec())
    }
}

/// One-shot digest.
pub fn digest(alg: HashAlg, data: &[u8]) -> Result<Vec<u8>> {
    let mut hasher = Hasher::new(alg)?;
    hasher.update(data)?;
    hasher.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_answers_abc() {
        let cases = [
            (HashAlg::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                HashAlg::Sha224,
                "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
            ),
            (
                HashAlg::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (alg, hex) in cases {
            let d = digest(alg, b"abc").unwrap();
            assert_eq!(hex::encode(&d), hex);
            assert_eq!(d.len(), alg.output_len());
        }
        for alg in [HashAlg::Sha384, HashAlg::Sha512] {
            assert_eq!(digest(alg, b"").unwrap().len(), alg.output_len());
        }
    }
}

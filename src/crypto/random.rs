//! Cryptographically secure random bytes.

use crate::crypto::openssl_error;
use crate::error::Result;

/// Fill `buf` with random bytes from OpenSSL's DRBG (the private instance: these bytes become
/// keys, nonces and salts).
pub fn fill(buf: &mut [u8]) -> Result<()> {
    openssl::rand::rand_priv_bytes(buf).map_err(openssl_error)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_differs() {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        fill(&mut a).unwrap();
        fill(&mut b).unwrap();
        assert_ne!(a, b);
        fill(&mut []).unwrap();
    }
}

//! Cryptographically secure random bytes.

use crate::error::Result;

/// Fill `buf` with random bytes from OpenSSL's DRBG.
pub fn fill(buf: &mut [u8]) -> Result<()> {
    let _ = buf;
    todo!("helper")
}

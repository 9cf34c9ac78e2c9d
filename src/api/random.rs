//! Random number generation (PKCS#11 3.0 §5.15).

use super::CK_SESSION_HANDLE;
use crate::core::module::{module, Module};
use crate::crypto::random;
use crate::error::{Result, Rv};

pub fn seed_random(session: CK_SESSION_HANDLE, seed: &[u8]) -> Result<()> {
    module()?.seed_random(session, seed)
}

pub fn generate_random(session: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
    module()?.generate_random(session, out)
}

impl Module {
    pub fn generate_random(&self, session: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        self.session(session)?;
        random::fill(out)
    }

    pub fn seed_random(&self, session: CK_SESSION_HANDLE, _seed: &[u8]) -> Result<()> {
        self.session(session)?;
        // OpenSSL's DRBG seeds itself from the OS; a caller's seed is not mixed in.
        Err(Rv::RANDOM_SEED_NOT_SUPPORTED)?
    }
}

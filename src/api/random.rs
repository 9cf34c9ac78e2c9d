//! Random number generation (PKCS#11 3.0 §5.15).

use super::CK_SESSION_HANDLE;
use crate::core::module::{module, Module};
use crate::crypto::digest::{digest, HashAlg};
use crate::crypto::random;
use crate::error::{Result, Rv};

/// Seeds longer than this are condensed to their SHA-512 digest before they are mixed in: 512
/// bits is more than the generator's 256-bit strength, and a reseed's additional input need
/// not be megabytes.
const SEED_MAX_DIRECT: usize = 4096;

/// `C_SeedRandom`: `reseed` mixes the bytes into the generator (the FFI's
/// `process::reseed_random`, the one place the call can be made).
pub fn seed_random(
    session: CK_SESSION_HANDLE,
    seed: &[u8],
    reseed: fn(&[u8]) -> bool,
) -> Result<()> {
    module()?.seed_random(session, seed, reseed)
}

pub fn generate_random(session: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
    module()?.generate_random(session, out)
}

impl Module {
    pub fn generate_random(&self, session: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
        self.session(session)?;
        random::fill(out)
    }

    /// The caller's seed is additional input to a reseed of OpenSSL's DRBG: it can add
    /// unpredictability, never take any away (the DRBG still draws its own entropy), so any
    /// seed is accepted, an empty one included.
    pub fn seed_random(
        &self,
        session: CK_SESSION_HANDLE,
        seed: &[u8],
        reseed: fn(&[u8]) -> bool,
    ) -> Result<()> {
        self.session(session)?;
        let condensed;
        let input = if seed.len() > SEED_MAX_DIRECT {
            condensed = digest(HashAlg::Sha512, seed)?;
            &condensed[..]
        } else {
            seed
        };
        if !reseed(input) {
            tracing::warn!("C_SeedRandom: the random generator could not be reseeded");
            Err(Rv::FUNCTION_FAILED)?
        }
        Ok(())
    }
}

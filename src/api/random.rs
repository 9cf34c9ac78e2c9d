//! Random number generation (PKCS#11 3.0 §5.15).

use super::CK_SESSION_HANDLE;
use crate::core::module;
use crate::error::Result;

pub fn seed_random(session: CK_SESSION_HANDLE, seed: &[u8]) -> Result<()> {
    module()?.seed_random(session, seed)
}

pub fn generate_random(session: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
    module()?.generate_random(session, out)
}

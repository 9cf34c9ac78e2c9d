//! Random number generation (PKCS#11 3.0 §5.15).

use super::CK_SESSION_HANDLE;
use crate::error::Result;

pub fn seed_random(session: CK_SESSION_HANDLE, seed: &[u8]) -> Result<()> {
    let _ = (session, seed);
    todo!()
}

pub fn generate_random(session: CK_SESSION_HANDLE, out: &mut [u8]) -> Result<()> {
    let _ = (session, out);
    todo!()
}

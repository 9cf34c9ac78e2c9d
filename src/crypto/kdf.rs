//! PIN-based key derivation: scrypt (memory-hard), parameters stored per token.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::Result;

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
    let _ = (pin, salt, params);
    todo!("helper")
}

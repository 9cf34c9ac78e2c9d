//! AES-256-GCM sealing of key material at rest: `nonce (12) ‖ ciphertext ‖ tag (16)`.

use zeroize::Zeroizing;

use crate::error::Result;

/// Length of the AES-256 keys used for sealing (the token key and PIN-derived keys).
pub const SEAL_KEY_LEN: usize = 32;

/// Seal `plaintext` under `key` with `aad` bound to it; a fresh random 96-bit nonce each call.
pub fn seal(key: &[u8; SEAL_KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let _ = (key, aad, plaintext);
    todo!("helper")
}

/// Open what [`seal`] produced. Tampering, a wrong key or a wrong `aad` give `Ok(None)`, so the
/// caller chooses the code (a wrong PIN and a corrupt row are different failures).
pub fn open(
    key: &[u8; SEAL_KEY_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let _ = (key, aad, sealed);
    todo!("helper")
}

//! AES-256-GCM sealing of key material at rest: `nonce (12) ‖ ciphertext ‖ tag (16)`.

use openssl::symm::{Cipher, Crypter, Mode};
use zeroize::Zeroizing;

use crate::crypto::{openssl_error, random};
use crate::error::Result;

/// Length of the AES-256 keys used for sealing (the token key and PIN-derived keys).
pub const SEAL_KEY_LEN: usize = 32;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Seal `plaintext` under `key` with `aad` bound to it; a fresh random 96-bit nonce each call.
pub fn seal(key: &[u8; SEAL_KEY_LEN], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    random::fill(&mut nonce)?;
    let mut crypter = Crypter::new(Cipher::aes_256_gcm(), Mode::Encrypt, key, Some(&nonce))
        .map_err(openssl_error)?;
    crypter.aad_update(aad).map_err(openssl_error)?;
    let mut out = vec![0u8; NONCE_LEN + plaintext.len() + 16 + TAG_LEN];
    out[..NONCE_LEN].copy_from_slice(&nonce);
    let mut len = NONCE_LEN;
    len += crypter
        .update(plaintext, &mut out[len..])
        .map_err(openssl_error)?;
    len += crypter.finalize(&mut out[len..]).map_err(openssl_error)?;
    crypter
        .get_tag(&mut out[len..len + TAG_LEN])
        .map_err(openssl_error)?;
    out.truncate(len + TAG_LEN);
    Ok(out)
}

/// Open what [`seal`] produced. Tampering, a wrong key or a wrong `aad` give `Ok(None)`, so the
/// caller chooses the code (a wrong PIN and a corrupt row are different failures).
pub fn open(
    key: &[u8; SEAL_KEY_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return Ok(None);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    Ok(gcm_open(key, nonce, aad, ciphertext, tag))
}

/// AES-GCM decryption that never lets unauthenticated plaintext out: any failure is `None` and
/// the scratch buffer is zeroized. Shared with the `CKM_AES_GCM` mechanism.
pub(crate) fn gcm_open(
    key: &[u8],
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let alg = super::cipher::aes_gcm_alg(key.len())?;
    let mut ctx = super::cipher::Ctx::aead(alg, false, key, iv, aad).ok()?;
    let mut out = Zeroizing::new(vec![0u8; ciphertext.len()]);
    ctx.update(ciphertext, &mut out).ok()?;
    ctx.check_tag(tag).then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7u8; 32];

    #[test]
    fn round_trip() {
        let sealed = seal(&KEY, b"aad", b"secret key bytes").unwrap();
        assert_eq!(sealed.len(), 12 + 16 + 16);
        let opened = open(&KEY, b"aad", &sealed).unwrap().unwrap();
        assert_eq!(opened.as_slice(), b"secret key bytes");
        let empty = seal(&KEY, b"", b"").unwrap();
        assert_eq!(open(&KEY, b"", &empty).unwrap().unwrap().len(), 0);
    }

    #[test]
    fn fresh_nonce_each_call() {
        assert_ne!(
            seal(&KEY, b"", b"x").unwrap(),
            seal(&KEY, b"", b"x").unwrap()
        );
    }

    #[test]
    fn tampering_is_detected() {
        let sealed = seal(&KEY, b"aad", b"secret key bytes").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(open(&KEY, b"aad", &bad).unwrap().is_none(), "byte {i}");
        }
        assert!(open(&KEY, b"other", &sealed).unwrap().is_none());
        assert!(open(&[8u8; 32], b"aad", &sealed).unwrap().is_none());
        assert!(open(&KEY, b"aad", &sealed[..27]).unwrap().is_none());
        assert!(open(&KEY, b"aad", &sealed[..sealed.len() - 1])
            .unwrap()
            .is_none());
    }
}

//! Saved operation states (`C_GetOperationState` / `C_SetOperationState`, PKCS#11 3.0 §5.6)
//! for digest operations.
//!
//! OpenSSL 3 cannot export a digest context's internal state, so a digest is saved as what
//! rebuilds it: its mechanism and the data digested so far, run again on restore. That holds
//! while the data is at most [`SAVEABLE_DIGEST_BOUND`] bytes (the operation keeps a copy until
//! then, and drops it, becoming unsaveable, beyond); a digest that took a key (`C_DigestKey`)
//! is never saveable, since its state would carry the key's value. Sign, verify, encrypt and
//! decrypt states hold keys and are not saveable either (`CKR_STATE_UNSAVEABLE`).
//!
//! The blob is authenticated with HMAC-SHA-256 under a key made at random once per process,
//! so a state altered, forged or saved by another process is `CKR_SAVED_STATE_INVALID`:
//!
//! ```text
//! "sqlhsm-opstate-1" | mechanism (u64 LE) | multipart (u8) | length (u64 LE) | data | HMAC
//! ```

use std::sync::OnceLock;

use cryptoki_sys::CK_MECHANISM_TYPE;
use zeroize::Zeroizing;

use crate::crypto::digest::HashAlg;
use crate::crypto::mac::{mac_eq, Mac};
use crate::crypto::random;
use crate::error::{Result, Rv};

/// The most data a digest operation keeps to be saveable: 64 KiB.
pub const SAVEABLE_DIGEST_BOUND: usize = 64 * 1024;

const MAGIC: &[u8; 16] = b"sqlhsm-opstate-1";
const TAG_LEN: usize = 32;
const HEADER_LEN: usize = MAGIC.len() + 8 + 1 + 8;

/// A digest state as saved.
#[derive(Debug, PartialEq, Eq)]
pub struct SavedDigest {
    pub mechanism: CK_MECHANISM_TYPE,
    pub multipart: bool,
    pub data: Zeroizing<Vec<u8>>,
}

/// This process's key for the states' MAC.
fn state_key() -> Result<&'static [u8; 32]> {
    static KEY: OnceLock<Zeroizing<[u8; 32]>> = OnceLock::new();
    if let Some(key) = KEY.get() {
        return Ok(key);
    }
    let mut fresh = Zeroizing::new([0u8; 32]);
    random::fill(fresh.as_mut())?;
    Ok(KEY.get_or_init(|| fresh))
}

fn tag(body: &[u8]) -> Result<Vec<u8>> {
    let mut mac = Mac::hmac(HashAlg::Sha256, state_key()?)?;
    mac.update(body)?;
    mac.finish()
}

impl SavedDigest {
    // CK_ULONG is 32 bits on some platforms: the blob always carries 64.
    #[allow(clippy::useless_conversion)]
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.data.len() + TAG_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&u64::from(self.mechanism).to_le_bytes());
        out.push(u8::from(self.multipart));
        out.extend_from_slice(&(self.data.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.data);
        let tag = tag(&out)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// `CKR_SAVED_STATE_INVALID` for anything [`SavedDigest::encode`] did not make in this
    /// process.
    pub fn decode(blob: &[u8]) -> Result<SavedDigest> {
        let invalid = || crate::Error::from(Rv::SAVED_STATE_INVALID);
        let body_len = blob.len().checked_sub(TAG_LEN).ok_or_else(invalid)?;
        let (body, given) = blob.split_at(body_len);
        if body.len() < HEADER_LEN || !mac_eq(&tag(body)?, given) {
            return Err(invalid());
        }
        let (magic, rest) = body.split_at(MAGIC.len());
        let (mechanism, rest) = rest.split_at(8);
        let (multipart, rest) = rest.split_at(1);
        let (len, data) = rest.split_at(8);
        let le = |b: &[u8]| b.try_into().map(u64::from_le_bytes).map_err(|_| invalid());
        if magic != MAGIC || usize::try_from(le(len)?).ok() != Some(data.len()) {
            return Err(invalid());
        }
        Ok(SavedDigest {
            mechanism: CK_MECHANISM_TYPE::try_from(le(mechanism)?).map_err(|_| invalid())?,
            multipart: multipart[0] != 0,
            data: Zeroizing::new(data.to_vec()),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_state_round_trips_and_any_change_is_refused() {
        let saved = SavedDigest {
            mechanism: cryptoki_sys::CKM_SHA256,
            multipart: true,
            data: Zeroizing::new(b"abc".to_vec()),
        };
        let blob = saved.encode().unwrap();
        assert_eq!(SavedDigest::decode(&blob).unwrap(), saved);
        for i in 0..blob.len() {
            let mut forged = blob.clone();
            forged[i] ^= 1;
            assert_eq!(
                SavedDigest::decode(&forged).unwrap_err().rv(),
                Rv::SAVED_STATE_INVALID,
                "byte {i}"
            );
        }
        for len in [0, 10, HEADER_LEN + TAG_LEN - 1, blob.len() - 1] {
            assert_eq!(
                SavedDigest::decode(&blob[..len]).unwrap_err().rv(),
                Rv::SAVED_STATE_INVALID
            );
        }
    }
}

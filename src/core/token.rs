//! The token record kept in `provider_config.config`, and the PIN scheme (PKCS#11 3.0 §5.5, §5.6).
//!
//! Each token has one random AES-256 *token key* that seals all its key material. The token key
//! is itself sealed twice, under a key derived with scrypt from the SO PIN and under one derived
//! from the user PIN. A PIN is checked by unsealing its copy (the GCM tag is the verifier), so no
//! PIN hash is stored, and changing a PIN re-seals the token key only.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::crypto::{aead, kdf, kdf::ScryptParams, random};
use crate::error::{Error, Result, Rv, StorageError};

/// The token key, in memory only while someone is logged in (or briefly during PIN changes).
pub type TokenKey = Zeroizing<[u8; aead::SEAL_KEY_LEN]>;

/// Marks a `provider_config` row as an sqlhsm token record.
pub const RECORD_KIND: &str = "sqlhsm-token";

/// Which PIN a record or operation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinOwner {
    So,
    User,
}

impl PinOwner {
    fn aad_label(self) -> &'static str {
        match self {
            PinOwner::So => "so",
            PinOwner::User => "user",
        }
    }
}

/// One PIN's copy of the token key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRecord {
    pub salt: String,
    pub kdf: ScryptParams,
    /// base64(nonce ‖ AES-256-GCM(token key) ‖ tag) under the PIN-derived key.
    pub wrapped_token_key: String,
    /// The PIN-derived key was bound to the provider's root secret (PROVIDER_ROOT_KEY): this
    /// copy opens only with the remote module's help.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub root_bound: bool,
}

/// The token record stored as JSON in `provider_config.config`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub kind: String,
    /// The stable slot number this token is shown in.
    pub slot: u64,
    /// `CK_TOKEN_INFO.serialNumber` (16 characters).
    pub serial: String,
    /// Names the token key in each `private_key_ctx.keyId`.
    pub token_key_id: String,
    pub so: PinRecord,
    pub user: Option<PinRecord>,
    #[serde(default)]
    pub so_failures: u32,
    #[serde(default)]
    pub user_failures: u32,
    /// Guesses of each PIN being evaluated now; each is already counted in its `*_failures`
    /// (see `core::pin_attempts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub so_attempts: Vec<super::pin_attempts::PinAttempt>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_attempts: Vec<super::pin_attempts::PinAttempt>,
    /// Where the token's keys live: locally (the default) or with a remote PKCS#11 module.
    #[serde(default)]
    pub provider: crate::provider::ProviderSpec,
}

impl TokenRecord {
    /// A fresh record with a new token key sealed under the SO PIN. Returns the key too.
    pub fn create(
        token_id: Uuid,
        slot: u64,
        so_pin: &[u8],
        params: ScryptParams,
    ) -> Result<(TokenRecord, TokenKey)> {
        let mut token_key: TokenKey = Zeroizing::new([0u8; aead::SEAL_KEY_LEN]);
        random::fill(token_key.as_mut())?;
        let mut serial = [0u8; 8];
        random::fill(&mut serial)?;
        let record = TokenRecord {
            kind: RECORD_KIND.to_string(),
            slot,
            serial: hex::encode(serial),
            token_key_id: Uuid::new_v4().to_string(),
            so: seal_token_key(&token_key, token_id, PinOwner::So, so_pin, params, None)?,
            user: None,
            so_failures: 0,
            user_failures: 0,
            so_attempts: Vec::new(),
            user_attempts: Vec::new(),
            provider: crate::provider::ProviderSpec::Local,
        };
        Ok((record, token_key))
    }

    pub fn from_json(value: &serde_json::Value) -> Result<TokenRecord> {
        let record: TokenRecord = serde_json::from_value(value.clone())
            .map_err(|e| StorageError::Corrupt(format!("token record: {e}")))?;
        if record.kind != RECORD_KIND {
            Err(StorageError::Corrupt(
                "provider_config row is not an sqlhsm token".into(),
            ))?
        }
        Ok(record)
    }

    pub fn to_json(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self)
            .map_err(|e| Error::Crypto(format!("token record encoding: {e}").into()))
    }

    pub fn pin(&self, owner: PinOwner) -> Option<&PinRecord> {
        match owner {
            PinOwner::So => Some(&self.so),
            PinOwner::User => self.user.as_ref(),
        }
    }

    pub fn failures(&self, owner: PinOwner) -> u32 {
        match owner {
            PinOwner::So => self.so_failures,
            PinOwner::User => self.user_failures,
        }
    }

    pub fn failures_mut(&mut self, owner: PinOwner) -> &mut u32 {
        match owner {
            PinOwner::So => &mut self.so_failures,
            PinOwner::User => &mut self.user_failures,
        }
    }

    pub fn is_locked(&self, owner: PinOwner, max_failures: u32) -> bool {
        self.failures(owner) >= max_failures
    }
}

fn aad(token_id: Uuid, owner: PinOwner) -> Vec<u8> {
    format!("sqlhsm/token-key/{token_id}/{}", owner.aad_label()).into_bytes()
}

/// The key that seals one PIN's copy: scrypt of the PIN, bound to the root secret if any.
fn pin_key(
    pin: &[u8],
    salt: &[u8],
    params: ScryptParams,
    root: Option<&[u8; 32]>,
) -> Result<Zeroizing<[u8; 32]>> {
    let kek = kdf::derive_pin_key(pin, salt, params)?;
    match root {
        Some(secret) => kdf::bind_to_secret(&kek, secret),
        None => Ok(kek),
    }
}

/// Seals the token key under a key derived from `pin` with fresh salt (and bound to `root`,
/// the provider's root secret, for PROVIDER_ROOT_KEY tokens).
pub fn seal_token_key(
    token_key: &TokenKey,
    token_id: Uuid,
    owner: PinOwner,
    pin: &[u8],
    params: ScryptParams,
    root: Option<&[u8; 32]>,
) -> Result<PinRecord> {
    let mut salt = [0u8; 16];
    random::fill(&mut salt)?;
    let kek = pin_key(pin, &salt, params, root)?;
    let sealed = aead::seal(&kek, &aad(token_id, owner), token_key.as_ref())?;
    Ok(PinRecord {
        salt: B64.encode(salt),
        kdf: params,
        wrapped_token_key: B64.encode(sealed),
        root_bound: root.is_some(),
    })
}

/// Unseals the token key with `pin`; `Ok(None)` when the PIN is wrong.
/// This is deliberately slow (scrypt): call it without holding any lock.
pub fn open_token_key(
    record: &PinRecord,
    token_id: Uuid,
    owner: PinOwner,
    pin: &[u8],
    root: Option<&[u8; 32]>,
) -> Result<Option<TokenKey>> {
    let corrupt = |what: &str| {
        Error::from(StorageError::Corrupt(format!(
            "token PIN record: bad {what}"
        )))
    };
    let salt = B64.decode(&record.salt).map_err(|_| corrupt("salt"))?;
    let sealed = B64
        .decode(&record.wrapped_token_key)
        .map_err(|_| corrupt("wrapped key"))?;
    let root = match (record.root_bound, root) {
        (true, None) => Err(Error::Provider(
            "this PIN record needs the provider's root secret".into(),
        ))?,
        (true, root) => root,
        (false, _) => None,
    };
    let kek = pin_key(pin, &salt, record.kdf, root)?;
    let Some(plain) = aead::open(&kek, &aad(token_id, owner), &sealed)? else {
        return Ok(None);
    };
    let key: [u8; aead::SEAL_KEY_LEN] = plain
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("token key length"))?;
    Ok(Some(Zeroizing::new(key)))
}

/// Checks a PIN's length against the configured bounds.
pub fn check_pin_len(pin: &[u8], min: usize, max: usize) -> Result<()> {
    if pin.len() < min || pin.len() > max {
        Err(Rv::PIN_LEN_RANGE)?
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: ScryptParams = ScryptParams {
        log_n: 10,
        r: 8,
        p: 1,
    };

    #[test]
    fn right_pin_opens_wrong_pin_does_not() {
        let id = Uuid::new_v4();
        let (record, key) = TokenRecord::create(id, 1, b"so-pin", FAST).unwrap();
        let opened = open_token_key(&record.so, id, PinOwner::So, b"so-pin", None)
            .unwrap()
            .unwrap();
        assert_eq!(opened.as_ref(), key.as_ref());
        assert!(open_token_key(&record.so, id, PinOwner::So, b"wrong", None)
            .unwrap()
            .is_none());
        // The SO copy cannot be replayed as the user copy, nor moved to another token.
        assert!(
            open_token_key(&record.so, id, PinOwner::User, b"so-pin", None)
                .unwrap()
                .is_none()
        );
        assert!(
            open_token_key(&record.so, Uuid::new_v4(), PinOwner::So, b"so-pin", None)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_root_bound_copy_needs_the_root_secret() {
        let id = Uuid::new_v4();
        let (_, key) = TokenRecord::create(id, 1, b"so-pin", FAST).unwrap();
        let root = [7u8; 32];
        let bound = seal_token_key(&key, id, PinOwner::So, b"so-pin", FAST, Some(&root)).unwrap();
        assert!(bound.root_bound);
        let opened = open_token_key(&bound, id, PinOwner::So, b"so-pin", Some(&root))
            .unwrap()
            .unwrap();
        assert_eq!(opened.as_ref(), key.as_ref());
        // Without the secret it is a device error (the HSM is needed), not a wrong PIN.
        let missing = open_token_key(&bound, id, PinOwner::So, b"so-pin", None).unwrap_err();
        assert_eq!(missing.rv(), Rv::DEVICE_ERROR);
        // Another secret does not open it.
        assert!(
            open_token_key(&bound, id, PinOwner::So, b"so-pin", Some(&[8u8; 32]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn record_round_trips_through_json() {
        let id = Uuid::new_v4();
        let (mut record, key) = TokenRecord::create(id, 7, b"so-pin", FAST).unwrap();
        record.user = Some(seal_token_key(&key, id, PinOwner::User, b"1234", FAST, None).unwrap());
        record.user_failures = 3;
        let json = record.to_json().unwrap();
        assert!(!json.to_string().contains(&hex::encode(key.as_ref())));
        assert_eq!(TokenRecord::from_json(&json).unwrap(), record);
        assert!(record.is_locked(PinOwner::User, 3));
        assert!(!record.is_locked(PinOwner::User, 4));
    }

    #[test]
    fn pin_length_is_bounded() {
        assert!(check_pin_len(b"1234", 4, 8).is_ok());
        assert_eq!(
            check_pin_len(b"123", 4, 8).unwrap_err().rv(),
            Rv::PIN_LEN_RANGE
        );
        assert_eq!(
            check_pin_len(b"123456789", 4, 8).unwrap_err().rv(),
            Rv::PIN_LEN_RANGE
        );
    }
}

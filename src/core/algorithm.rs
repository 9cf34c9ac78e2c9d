//! The integer codes of the key-management schema's columns, defined once.
//!
//! `key_algorithm` follows OpenTDF's numbering for the values it defines (1–5); sqlhsm's own
//! additions start at 101 so a future OpenTDF value can never collide with them.

use crate::crypto::keys::{Curve, PublicInfo};
use crate::error::{Result, Rv};

/// `asym_key.key_algorithm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    Rsa2048 = 1,
    Rsa4096 = 2,
    EcP256 = 3,
    EcP384 = 4,
    EcP521 = 5,
    /// sqlhsm extension.
    Rsa3072 = 101,
    /// sqlhsm extension: RSA of any other size (imported keys, e.g. 1024 or 8192 bits).
    RsaOther = 102,
    /// sqlhsm extension.
    Ed25519 = 103,
}

impl KeyAlgorithm {
    pub const ALL: [KeyAlgorithm; 8] = [
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa4096,
        KeyAlgorithm::EcP256,
        KeyAlgorithm::EcP384,
        KeyAlgorithm::EcP521,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::RsaOther,
        KeyAlgorithm::Ed25519,
    ];

    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(code: i32) -> Option<KeyAlgorithm> {
        KeyAlgorithm::ALL.into_iter().find(|a| a.code() == code)
    }

    /// The algorithm of a public key, from its PKCS#11-visible values.
    pub fn of(info: &PublicInfo) -> KeyAlgorithm {
        match info {
            PublicInfo::Rsa { bits: 2048, .. } => KeyAlgorithm::Rsa2048,
            PublicInfo::Rsa { bits: 3072, .. } => KeyAlgorithm::Rsa3072,
            PublicInfo::Rsa { bits: 4096, .. } => KeyAlgorithm::Rsa4096,
            PublicInfo::Rsa { .. } => KeyAlgorithm::RsaOther,
            PublicInfo::Ec {
                curve: Curve::P256, ..
            } => KeyAlgorithm::EcP256,
            PublicInfo::Ec {
                curve: Curve::P384, ..
            } => KeyAlgorithm::EcP384,
            PublicInfo::Ec {
                curve: Curve::P521, ..
            } => KeyAlgorithm::EcP521,
            PublicInfo::Ed25519 { .. } => KeyAlgorithm::Ed25519,
        }
    }

    /// The PKCS#11 key type (`CKK_*`).
    pub fn key_type(self) -> cryptoki_sys::CK_KEY_TYPE {
        match self {
            KeyAlgorithm::Rsa2048
            | KeyAlgorithm::Rsa3072
            | KeyAlgorithm::Rsa4096
            | KeyAlgorithm::RsaOther => cryptoki_sys::CKK_RSA,
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 | KeyAlgorithm::EcP521 => {
                cryptoki_sys::CKK_EC
            }
            KeyAlgorithm::Ed25519 => cryptoki_sys::CKK_EC_EDWARDS,
        }
    }

    /// All codes with the given PKCS#11 key type, for an indexed `key_algorithm IN (…)`.
    pub fn codes_for_key_type(key_type: cryptoki_sys::CK_KEY_TYPE) -> Vec<i32> {
        KeyAlgorithm::ALL
            .into_iter()
            .filter(|a| a.key_type() == key_type)
            .map(KeyAlgorithm::code)
            .collect()
    }
}

pub use crate::key_state::{KeyMode, KeyStatus};

/// Maps an unknown stored code to a clear error instead of guessing.
pub fn algorithm_from_row(code: i32) -> Result<KeyAlgorithm> {
    KeyAlgorithm::from_code(code).ok_or_else(|| {
        tracing::error!(code, "asym_key row has an unknown key_algorithm");
        Rv::DEVICE_ERROR.into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opentdf_numbering_is_kept() {
        assert_eq!(KeyAlgorithm::Rsa2048.code(), 1);
        assert_eq!(KeyAlgorithm::Rsa4096.code(), 2);
        assert_eq!(KeyAlgorithm::EcP256.code(), 3);
        assert_eq!(KeyAlgorithm::EcP384.code(), 4);
        assert_eq!(KeyAlgorithm::EcP521.code(), 5);
        for a in KeyAlgorithm::ALL {
            assert_eq!(KeyAlgorithm::from_code(a.code()), Some(a));
        }
        assert_eq!(KeyAlgorithm::from_code(0), None);
    }

    #[test]
    fn key_type_codes_cover_every_algorithm() {
        let mut all: Vec<i32> = [
            cryptoki_sys::CKK_RSA,
            cryptoki_sys::CKK_EC,
            cryptoki_sys::CKK_EC_EDWARDS,
        ]
        .into_iter()
        .flat_map(KeyAlgorithm::codes_for_key_type)
        .collect();
        all.sort();
        let mut expected: Vec<i32> = KeyAlgorithm::ALL.iter().map(|a| a.code()).collect();
        expected.sort();
        assert_eq!(all, expected);
    }
}

//! A key's state columns, `key_status` and `key_mode`: their integer codes, defined once, below
//! both the core (which decides what a state allows) and storage (which keeps it).

/// `key_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    Active = 1,
    Inactive = 2,
    Compromised = 3,
    Expired = 4,
}

impl KeyStatus {
    pub const ALL: [KeyStatus; 4] = [
        KeyStatus::Active,
        KeyStatus::Inactive,
        KeyStatus::Compromised,
        KeyStatus::Expired,
    ];

    /// The column's code.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The status a stored code means; `None` for a code no build has written.
    pub fn from_code(code: i32) -> Option<KeyStatus> {
        KeyStatus::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// `key_mode` (OpenTDF's `KeyMode` numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMode {
    /// Material in the database, sealed under the token key.
    Local = 1,
    /// Like LOCAL, with the token key itself wrapped by a provider's HSM (issue 6).
    ProviderRootKey = 2,
    /// Material held by the provider's HSM (issue 6).
    Remote = 3,
    /// A public key with no private half.
    PublicKeyOnly = 4,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_round_trip() {
        for status in KeyStatus::ALL {
            assert_eq!(KeyStatus::from_code(status.code()), Some(status));
        }
        assert_eq!(
            KeyStatus::ALL.map(KeyStatus::code),
            [1, 2, 3, 4],
            "the stored numbering never changes"
        );
        assert_eq!(KeyStatus::from_code(0), None);
        assert_eq!(KeyStatus::from_code(5), None);
    }
}

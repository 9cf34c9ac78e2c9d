//! The integer codes of the key-management schema's columns, defined once. `key_algorithm`'s
//! are rows of the key-algorithm table, `crate::key_algorithm`.

/// `key_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    Active = 1,
    Inactive = 2,
    Compromised = 3,
    Expired = 4,
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

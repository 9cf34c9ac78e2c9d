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

//! The core: module instance, slots and tokens, sessions, objects and their attribute policy,
//! key storage mapping. It depends on `mechanism`, `crypto`, `storage` and `provider`, never on
//! `ffi`.

pub mod access;
pub mod algorithm;
pub mod attributes;
pub mod extraction;
pub mod fork;
pub mod handles;
pub mod import;
pub mod key_policy;
pub mod key_rows;
pub mod keygen;
pub mod keystore;
pub mod lifecycle;
pub mod module;
pub mod new_keys;
pub mod object;
pub mod object_store;
pub mod op_state;
pub mod operations;
pub mod pin_attempts;
pub mod pins;
pub mod plain_objects;
pub mod policy;
pub mod remote;
pub mod rotation;
pub mod rotation_names;
pub mod session;
pub mod slot_events;
pub mod template;
pub mod token;
pub mod token_mechanisms;

pub use module::{finalize, initialize, module, InitOptions, Module};

/// `manufacturerID` of the module, its slots and tokens.
pub const MANUFACTURER: &str = "sqlhsm project";

/// The crate version as a `CK_VERSION` (major.minor).
pub fn version() -> cryptoki_sys::CK_VERSION {
    let major = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0);
    let minor = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0);
    cryptoki_sys::CK_VERSION { major, minor }
}
#[cfg(test)]
mod tests;

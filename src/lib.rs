//! sqlhsm: a PKCS#11 3.0 module whose tokens and keys live in a SQL database.
//!
//! Layers, dependencies pointing one way: [`ffi`] (the only `unsafe`; its leaf
//! `ffi::openssl_ext` gives `crypto` the OpenSSL calls the `openssl` crate lacks) → [`api`] (one safe module per chapter of the spec) → [`core`] (module, slots, tokens, sessions, objects, attribute
//! policy) → [`mechanism`] / [`crypto`] / [`storage`] / [`provider`] (other PKCS#11 modules that
//! hold REMOTE keys or a token's root key). [`key_algorithm`], the table of key algorithms, sits
//! between those and [`crypto`]: everything above reads it, it calls `crypto`'s constructors.
#![deny(unsafe_code)]
#![deny(clippy::unwrap_used)]

pub mod admin;
pub mod api;
pub mod config;
pub mod core;
pub mod crypto;
pub mod error;
pub mod ffi;
pub mod key_algorithm;
pub mod key_state;
pub mod logging;
pub mod mechanism;
pub mod provider;
pub mod storage;
pub mod types;
pub mod vendor;

pub use error::{Error, Result, Rv};

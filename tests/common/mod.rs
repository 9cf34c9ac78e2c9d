//! Shared helpers for the end-to-end tests in `tests/`.
//!
//! Every test file is its own process, and a PKCS#11 module is process-global (one
//! `C_Initialize` per process), so each file shares ONE initialised [`Pkcs11`] ([`ctx`]) on a
//! fresh database, and each `#[test]` makes its own token ([`new_token`]) with a unique label.
//! The module is loaded the way users load it: the built `libsqlhsm.so`, through the C ABI.
//!
//! One file per job; this one only declares them and re-exports their items, so a test file
//! says `use common::*;`.
#![allow(dead_code)]

mod attributes;
mod backend;
mod c_programs;
mod children;
mod constants;
mod keygen;
mod module;
mod openssl_checks;
mod pg_database;
mod raw_calls;
mod raw_crypt;
mod raw_kem;
mod test_db;
mod tokens;

// Where PostgreSQL test databases come from: one file shared with the crate's unit tests.
#[path = "../support/pg_test_url.rs"]
mod pg_test_url;

// Each test file uses a part of these.
#[allow(unused_imports)]
pub use self::{
    attributes::*, backend::*, c_programs::*, children::*, constants::*, keygen::*, module::*,
    openssl_checks::*, pg_database::*, pg_test_url::*, raw_calls::*, raw_crypt::*, raw_kem::*,
    test_db::*, tokens::*,
};

//! Fuzzing harness for sqlhsm's C ABI (README "Fuzzing"). The targets in `fuzz_targets/` call the
//! `C_*` exports of the `sqlhsm` rlib exactly as a C application would, with raw pointers built
//! from the fuzzer's bytes, on a temporary SQLite store set up once per process ([`fixture`]).
//!
//! What fails a run: a panic anywhere in the module (libfuzzer-sys's panic hook aborts before the
//! module's own boundary guard can turn it into `CKR_GENERAL_ERROR`); any `CKR_GENERAL_ERROR`
//! answer ([`check`]: besides a caught panic it means a poisoned lock or an internal invariant
//! that did not hold — configuration errors, the other source, only happen at `C_Initialize`);
//! a broken two-call convention ([`out`]); an AddressSanitizer report; a libFuzzer timeout.

pub mod attributes;
pub mod fixture;
pub mod input;
pub mod mech;
pub mod mechanisms;
pub mod mem;
pub mod out;
pub mod seeds;
pub mod session;
pub mod templates;
pub mod tmpl;

use cryptoki_sys::{CKR_GENERAL_ERROR, CK_RV};

pub use fixture::fixture;

/// Fails the run on `CKR_GENERAL_ERROR`; passes every other answer on. With
/// `SQLHSM_FUZZ_TRACE=1` every call and its answer are printed (to see what an input does).
pub fn check(what: &str, rv: CK_RV) -> CK_RV {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *TRACE.get_or_init(|| std::env::var_os("SQLHSM_FUZZ_TRACE").is_some_and(|v| v == "1")) {
        eprintln!("{what} -> {} ({rv:#x})", sqlhsm::Rv(rv).name());
    }
    assert_ne!(
        rv, CKR_GENERAL_ERROR,
        "{what} answered CKR_GENERAL_ERROR: a panic, a poisoned lock or a broken invariant in the module (see its log line above)"
    );
    rv
}

/// What every target's `init` does: writes the seed corpus and exits when asked
/// (`SQLHSM_FUZZ_WRITE_SEEDS=<dir>`), else sets the module up before the first input.
pub fn init(target: &str) {
    if let Some(dir) = std::env::var_os("SQLHSM_FUZZ_WRITE_SEEDS") {
        seeds::write(target, std::path::Path::new(&dir));
        std::process::exit(0);
    }
    fixture();
}

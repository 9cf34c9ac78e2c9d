//! Process-level hooks: what sqlhsm must arrange once per process, before any other work.
//!
//! # Cryptography isolated from the host
//!
//! sqlhsm's OpenSSL is a private copy (the `openssl` crate's `vendored` feature), linked
//! statically into the module; the cdylib exports only its `C_*` functions, so the copy's
//! symbols, default library context, providers, error queue and locks belong to sqlhsm alone.
//! The host application's libcrypto, with whatever providers it prefers (a PKCS#11 provider
//! that would call back into sqlhsm, say), is another library that sqlhsm never calls.
//!
//! One channel would still be shared: OpenSSL reads the file `OPENSSL_CONF` names (or its
//! compiled-in default) the first time it is initialised, and that file is the host's —
//! `default_properties = fips=yes`, a provider or engine to load. [`isolate_crypto`] initialises
//! the private copy *without* its configuration before anything else touches it. OpenSSL runs
//! its configuration step once per process (a `CRYPTO_ONCE` in `crypto/init.c`), so the
//! `OPENSSL_INIT_LOAD_CONFIG` the `openssl` crate asks for on its first use afterwards finds the
//! step done and loads nothing.
//!
//! This is the one place outside `src/crypto` (and the TLS connector in `storage::postgres`)
//! that names OpenSSL: the call takes a raw settings pointer, so it is `unsafe`, and all
//! `unsafe` lives in `src/ffi`.

use std::sync::OnceLock;

/// `OPENSSL_INIT_NO_LOAD_CONFIG` (`include/openssl/crypto.h`); `openssl-sys` does not export it.
const OPENSSL_INIT_NO_LOAD_CONFIG: u64 = 0x0000_0080;

/// Initialises sqlhsm's private OpenSSL without reading any configuration file, once per process;
/// later calls return the first call's answer. `false` when OpenSSL could not initialise (out of
/// memory), in which case no cryptography will work either.
///
/// Called first thing in `C_Initialize` and in the admin command's `main`: before either, no
/// sqlhsm code uses OpenSSL.
pub fn isolate_crypto() -> bool {
    static INITIALISED: OnceLock<bool> = OnceLock::new();
    *INITIALISED.get_or_init(|| {
        // Without the SSL strings the TLS errors of the PostgreSQL connection read as numbers;
        // without NO_ATEXIT OpenSSL would free its state at exit while another thread of the
        // host may still be inside sqlhsm (the `openssl` crate asks the same).
        let options = OPENSSL_INIT_NO_LOAD_CONFIG
            | openssl_sys::OPENSSL_INIT_LOAD_SSL_STRINGS
            | openssl_sys::OPENSSL_INIT_NO_ATEXIT;
        // SAFETY: OPENSSL_init_ssl accepts a NULL settings pointer (no settings); the options
        // are OpenSSL's own flags. It is thread-safe and may be called any number of times.
        let ok = unsafe { openssl_sys::OPENSSL_init_ssl(options, std::ptr::null()) } == 1;
        // Whatever happened, the `openssl` crate's own initialisation comes after ours.
        openssl::init();
        ok
    })
}

/// Mixes `additional` into sqlhsm's random generator (`C_SeedRandom`): the primary DRBG of the
/// private OpenSSL is reseeded — from its own entropy source, as always — with the caller's
/// bytes as additional input (NIST SP 800-90A §9.2), which is what OpenSSL 3's `RAND_add`
/// does, but answering whether it worked. The public and private DRBGs derived from it reseed
/// from it before their next output. The caller's bytes can only add to the generator's
/// state, never replace its entropy. `false` when the reseed failed (no entropy from the OS).
///
/// Here rather than in `src/crypto`, beside [`isolate_crypto`], because the `openssl` crate
/// has no safe form of the call.
pub fn reseed_random(additional: &[u8]) -> bool {
    extern "C" {
        // `include/openssl/rand.h` and `evp.h` of OpenSSL 3; `openssl-sys` does not declare
        // them. The library context pointer is NULL for the default one, which is sqlhsm's own.
        fn RAND_get0_primary(ctx: *mut std::ffi::c_void) -> *mut std::ffi::c_void;
        fn EVP_RAND_reseed(
            ctx: *mut std::ffi::c_void,
            prediction_resistance: std::ffi::c_int,
            entropy: *const u8,
            entropy_len: usize,
            additional: *const u8,
            additional_len: usize,
        ) -> std::ffi::c_int;
    }
    isolate_crypto();
    // SAFETY: NULL names the default library context; the DRBG returned is owned by OpenSSL
    // and lives as long as the context (the process: sqlhsm never frees it).
    let primary = unsafe { RAND_get0_primary(std::ptr::null_mut()) };
    if primary.is_null() {
        return false;
    }
    // SAFETY: `primary` is a live DRBG; no entropy is supplied (NULL, 0), so OpenSSL draws its
    // own; `additional` is valid for reads of its length for the duration of the call, which
    // does not keep the pointer. The DRBG locks itself.
    let ok = unsafe {
        EVP_RAND_reseed(
            primary,
            0,
            std::ptr::null(),
            0,
            additional.as_ptr(),
            additional.len(),
        )
    } == 1;
    if !ok {
        crate::crypto::clear_error_queue();
    }
    ok
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn reseeding_keeps_the_generator_working() {
        assert!(super::reseed_random(b"caller's seed"));
        assert!(super::reseed_random(&[0u8; 64]));
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        crate::crypto::random::fill(&mut a).unwrap();
        crate::crypto::random::fill(&mut b).unwrap();
        assert_ne!(a, b);
    }
}

//! The only module that names `openssl`. Everything above it works with the plain types defined
//! here, so a change of crypto library touches this folder alone.

pub mod aead;
pub mod cipher;
pub mod digest;
pub mod kdf;
pub mod keys;
pub mod random;
pub mod sign;

#[cfg(test)]
mod interop_tests;

/// Turns an OpenSSL error stack into the crate's error, keeping the cause for the log.
pub(crate) fn openssl_error(err: openssl::error::ErrorStack) -> crate::error::Error {
    crate::error::Error::Crypto(err.to_string())
}

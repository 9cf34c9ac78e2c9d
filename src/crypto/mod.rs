//! The only module that names `openssl`. Everything above it works with the plain types defined
//! here, so a change of crypto library touches this folder alone.

pub mod aead;
pub mod cipher;
pub mod digest;
pub mod ecdh;
pub mod kdf;
pub mod keys;
pub mod mac;
pub mod random;
pub mod sign;
pub mod wrap;
pub mod x509;

/// Keys shared by the tests of this crate; RSA generation is slow, so each key is made once.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_keys {
    use std::sync::{Arc, OnceLock};

    use super::keys::{Curve, PrivateKey};

    pub(crate) fn rsa_2048() -> Arc<PrivateKey> {
        static KEY: OnceLock<Arc<PrivateKey>> = OnceLock::new();
        Arc::clone(KEY.get_or_init(|| Arc::new(PrivateKey::generate_rsa(2048, &[]).unwrap())))
    }

    pub(crate) fn ec(curve: Curve) -> Arc<PrivateKey> {
        static KEYS: OnceLock<[Arc<PrivateKey>; 3]> = OnceLock::new();
        let keys = KEYS.get_or_init(|| {
            [Curve::P256, Curve::P384, Curve::P521]
                .map(|c| Arc::new(PrivateKey::generate_ec(c).unwrap()))
        });
        let i = match curve {
            Curve::P256 => 0,
            Curve::P384 => 1,
            Curve::P521 => 2,
        };
        Arc::clone(&keys[i])
    }

    pub(crate) fn ed25519() -> Arc<PrivateKey> {
        static KEY: OnceLock<Arc<PrivateKey>> = OnceLock::new();
        Arc::clone(KEY.get_or_init(|| Arc::new(PrivateKey::generate_ed25519().unwrap())))
    }
}

/// Empties this thread's OpenSSL error queue. Another library in the process that uses the same
/// libcrypto (a remote PKCS#11 module such as SoftHSM) may leave errors there; left in place,
/// they make the next unrelated OpenSSL call on the thread (a PostgreSQL TLS handshake) fail.
pub fn clear_error_queue() {
    let dropped = openssl::error::ErrorStack::get();
    if !dropped.errors().is_empty() {
        tracing::debug!(errors = %dropped, "cleared OpenSSL errors left by another library");
    }
}

/// Turns an OpenSSL error stack into the crate's error, keeping the cause for the log.
pub(crate) fn openssl_error(err: openssl::error::ErrorStack) -> crate::error::Error {
    crate::error::Error::Crypto(err.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod interop_tests;

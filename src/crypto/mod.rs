//! The only module that names `openssl`. Everything above it works with the plain types defined
//! here, so a change of crypto library touches this folder alone.

pub mod aead;
pub mod cipher;
pub(crate) mod der;
pub mod digest;
pub mod ecdh;
pub mod hybrid_kem;
pub mod hybrid_keys;
pub mod kdf;
pub mod kem;
pub mod key_files;
pub mod keys;
pub mod mac;
pub mod modes;
pub mod pq_keys;
pub mod pq_sign;
pub mod random;
pub mod sign;
pub mod wrap;
pub mod x509;

/// Keys shared by the tests of this crate; RSA generation is slow, so each key is made once.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_keys {
    use std::sync::{Arc, OnceLock};

    use super::keys::PrivateKey;

    /// The OIDs (`CKA_EC_PARAMS`) of P-256, P-384 and P-521, and Ed25519's: the values of the
    /// key-algorithm table's rows (a test there checks they agree), spelled out here because
    /// `crypto` reads no table.
    pub(crate) const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub(crate) const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    pub(crate) const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
    pub(crate) const CURVES: [&[u8]; 3] = [P256, P384, P521];
    pub(crate) const ED25519_OID: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

    /// The field length in bytes of one of [`CURVES`].
    pub(crate) fn field_bytes(curve: &[u8]) -> usize {
        match CURVES.iter().position(|c| *c == curve) {
            Some(0) => 32,
            Some(1) => 48,
            _ => 66,
        }
    }

    pub(crate) fn rsa_2048() -> Arc<PrivateKey> {
        static KEY: OnceLock<Arc<PrivateKey>> = OnceLock::new();
        Arc::clone(KEY.get_or_init(|| Arc::new(PrivateKey::generate_rsa(2048, &[]).unwrap())))
    }

    /// A key on one of [`CURVES`].
    pub(crate) fn ec(curve: &[u8]) -> Arc<PrivateKey> {
        static KEYS: OnceLock<[Arc<PrivateKey>; 3]> = OnceLock::new();
        let keys =
            KEYS.get_or_init(|| CURVES.map(|c| Arc::new(PrivateKey::generate_ec(c).unwrap())));
        let i = CURVES.iter().position(|c| *c == curve).unwrap();
        Arc::clone(&keys[i])
    }

    /// ML-DSA-65 and SLH-DSA-SHAKE-128f (the fast set, for time).
    pub(crate) fn ml_dsa_65() -> Arc<PrivateKey> {
        static KEY: OnceLock<Arc<PrivateKey>> = OnceLock::new();
        Arc::clone(KEY.get_or_init(|| Arc::new(PrivateKey::generate_pq("ML-DSA-65").unwrap())))
    }

    pub(crate) fn slh_dsa_shake_128f() -> Arc<PrivateKey> {
        static KEY: OnceLock<Arc<PrivateKey>> = OnceLock::new();
        Arc::clone(
            KEY.get_or_init(|| Arc::new(PrivateKey::generate_pq("SLH-DSA-SHAKE-128f").unwrap())),
        )
    }

    pub(crate) fn ed25519() -> Arc<PrivateKey> {
        static KEY: OnceLock<Arc<PrivateKey>> = OnceLock::new();
        Arc::clone(KEY.get_or_init(|| Arc::new(PrivateKey::generate_ed25519().unwrap())))
    }
}

/// Empties this thread's error queue of sqlhsm's own OpenSSL (a private copy: the host
/// application's queue belongs to another library and is never touched). Errors left there by
/// one operation would otherwise be taken by a later, unrelated call for its own: a TLS read on
/// the PostgreSQL connection fails when `SSL_get_error` finds one.
pub fn clear_error_queue() {
    let dropped = openssl::error::ErrorStack::get();
    if !dropped.errors().is_empty() {
        tracing::debug!(errors = %dropped, "cleared OpenSSL errors left on the queue");
    }
}

/// `valid`, after emptying the error queue when it is `false`: a refused signature is an answer,
/// and OpenSSL sometimes queues an error with it that nobody will read.
pub(crate) fn discard_errors_unless(valid: bool) -> bool {
    if !valid {
        let _ = openssl::error::ErrorStack::get();
    }
    valid
}

/// Turns an OpenSSL error stack into the crate's error, keeping the stack itself as the source
/// (and its text as the message the log prints).
pub(crate) fn openssl_error(err: openssl::error::ErrorStack) -> crate::error::Error {
    crate::error::Error::Crypto(crate::error::CryptoError::from_source(err))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod interop_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod error_queue_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::error::Rv;

    #[test]
    fn an_openssl_failure_keeps_the_error_stack_as_its_source() {
        let stack = openssl::pkey::PKey::private_key_from_der(b"not a key").unwrap_err();
        let text = stack.to_string();
        let err = super::openssl_error(stack);
        assert_eq!(err.rv(), Rv::FUNCTION_FAILED);
        // The log prints the error's text: OpenSSL's reasons are in it.
        assert_eq!(err.to_string(), format!("crypto: {text}"));
        let crypto = std::error::Error::source(&err).unwrap();
        let kept = crypto.source().unwrap();
        assert!(kept.downcast_ref::<openssl::error::ErrorStack>().is_some());
    }
}

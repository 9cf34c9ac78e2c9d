//! ML-KEM (FIPS 203): encapsulation (Algorithm 20, ML-KEM.Encaps) with a public key and
//! decapsulation (Algorithm 21, ML-KEM.Decaps) with a private key, through OpenSSL's KEM
//! interface. The shared secret is 32 bytes for every parameter set.
//!
//! Decapsulation never fails on a ciphertext of the right length: one that was not made for
//! the key gives the implicit-rejection secret `J(z‖c)` (FIPS 203 §6.3), a value unrelated to
//! any encapsulation. A ciphertext of the wrong length is refused, as FIPS 203 §7.3 requires
//! of the input check.

use openssl::pkey::{HasPublic, KeyType, PKeyRef};
use zeroize::Zeroizing;

use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::crypto::openssl_error;
use crate::error::{Result, Rv};
use crate::ffi::openssl_ext;

/// The length of ML-KEM's shared secret K, in bytes (FIPS 203 §8, Table 3).
pub const ML_KEM_SECRET_LEN: usize = 32;

/// A fresh shared secret and its ciphertext, as the encapsulating side gets them.
pub struct Encapsulation {
    pub ciphertext: Vec<u8>,
    pub secret: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Encapsulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encapsulation")
            .field("ciphertext_len", &self.ciphertext.len())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The parameter sets and their ciphertext lengths (FIPS 203 §8, Table 3).
const PARAMETER_SETS: [(KeyType, usize); 3] = [
    (KeyType::ML_KEM_512, 768),
    (KeyType::ML_KEM_768, 1088),
    (KeyType::ML_KEM_1024, 1568),
];

/// The ciphertext length of an ML-KEM key's parameter set; a key of another algorithm is
/// `CKR_KEY_TYPE_INCONSISTENT`.
fn ciphertext_len_of<T: HasPublic>(key: &PKeyRef<T>) -> Result<usize> {
    PARAMETER_SETS
        .iter()
        .find(|(kind, _)| key.is_a(*kind))
        .map(|(_, len)| *len)
        .ok_or_else(|| Rv::KEY_TYPE_INCONSISTENT.into())
}

/// The ciphertext length an encapsulation with `key` produces (for the length query).
pub fn ml_kem_ciphertext_len(key: &PublicKey) -> Result<usize> {
    ciphertext_len_of(key.pkey()?)
}

/// ML-KEM.Encaps with fresh randomness.
pub fn ml_kem_encapsulate(key: &PublicKey) -> Result<Encapsulation> {
    encapsulate(key.pkey()?, None)
}

/// ML-KEM.Encaps_internal with the caller's message `m` in place of the randomness (FIPS 203
/// §6.2): only for known-answer tests, where the vector fixes m.
#[cfg(test)]
pub(crate) fn ml_kem_encapsulate_with(key: &PublicKey, m: &[u8]) -> Result<Encapsulation> {
    encapsulate(key.pkey()?, Some(m))
}

fn encapsulate<T: HasPublic>(key: &PKeyRef<T>, m: Option<&[u8]>) -> Result<Encapsulation> {
    let expected = ciphertext_len_of(key)?;
    let out = openssl_ext::kem_encapsulate(key, m).map_err(openssl_error)?;
    if out.ciphertext.len() != expected || out.secret.len() != ML_KEM_SECRET_LEN {
        Err(Rv::GENERAL_ERROR)?
    }
    Ok(Encapsulation {
        ciphertext: out.ciphertext,
        secret: out.secret,
    })
}

/// ML-KEM.Decaps. A ciphertext of the wrong length for the key's parameter set is
/// `CKR_WRAPPED_KEY_LEN_RANGE` (what `C_DecapsulateKey` answers for a ciphertext it cannot
/// take); any ciphertext of the right length gives a secret.
pub fn ml_kem_decapsulate(key: &PrivateKey, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if ciphertext.len() != ciphertext_len_of(key.pkey()?)? {
        Err(Rv::WRAPPED_KEY_LEN_RANGE)?
    }
    let secret = openssl_ext::kem_decapsulate(key.pkey()?, ciphertext).map_err(openssl_error)?;
    if secret.len() != ML_KEM_SECRET_LEN {
        Err(Rv::GENERAL_ERROR)?
    }
    Ok(secret)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use openssl::pkey::{KeyType, PKey};

    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/wycheproof");

    fn vectors(file: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(format!("{DIR}/{file}")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn hx(v: &serde_json::Value) -> Vec<u8> {
        hex::decode(v.as_str().unwrap()).unwrap()
    }

    fn private_from_seed(kind: KeyType, seed: &[u8]) -> PrivateKey {
        PrivateKey::from_openssl(PKey::private_key_from_seed(None, kind, None, seed).unwrap())
    }

    fn public_of(key: &PrivateKey) -> PublicKey {
        key.public_key().unwrap()
    }

    /// Wycheproof's `mlkem_768_encaps_test.json`: with the vector's m in place of randomness
    /// the ciphertext and secret are the vector's; an encapsulation key that is not a valid
    /// one (wrong length, a coefficient not reduced mod q: FIPS 203 §7.2's input check) is
    /// refused, on import or at the latest when encapsulating. Every case is counted.
    #[test]
    fn wycheproof_encapsulation_with_the_vectors_randomness() {
        let doc = vectors("mlkem_768_encaps_test.json");
        let (mut valid, mut refused) = (0, 0);
        for group in doc["testGroups"].as_array().unwrap() {
            assert_eq!(group["parameterSet"], "ML-KEM-768");
            for case in group["tests"].as_array().unwrap() {
                let id = &case["tcId"];
                let ek = hx(&case["ek"]);
                let m = hx(&case["m"]);
                let outcome =
                    PKey::public_key_from_raw_bytes_ex(None, KeyType::ML_KEM_768, None, &ek)
                        .map_err(openssl_error)
                        .and_then(|k| ml_kem_encapsulate_with(&PublicKey::from_openssl(k), &m));
                match case["result"].as_str().unwrap() {
                    "valid" => {
                        let out = outcome.unwrap_or_else(|e| panic!("tcId {id}: {e}"));
                        assert_eq!(out.ciphertext, hx(&case["c"]), "tcId {id}");
                        assert_eq!(*out.secret, hx(&case["K"]), "tcId {id}");
                        valid += 1;
                    }
                    _ => {
                        assert!(outcome.is_err(), "tcId {id} was accepted");
                        refused += 1;
                    }
                }
            }
        }
        assert_eq!(valid + refused, doc["numberOfTests"].as_u64().unwrap());
        assert_eq!((valid, refused), (133, 132));
    }

    #[test]
    fn every_parameter_set_round_trips_and_a_foreign_ciphertext_gives_another_secret() {
        for (kind, ct_len) in PARAMETER_SETS {
            let key = private_from_seed(kind, &[7u8; 64]);
            let public = public_of(&key);
            assert_eq!(ml_kem_ciphertext_len(&public).unwrap(), ct_len);
            let sent = ml_kem_encapsulate(&public).unwrap();
            assert_eq!(sent.ciphertext.len(), ct_len);
            assert_eq!(sent.secret.len(), ML_KEM_SECRET_LEN);
            assert_eq!(
                ml_kem_decapsulate(&key, &sent.ciphertext).unwrap(),
                sent.secret
            );
            // Implicit rejection: a changed ciphertext decapsulates, to another secret.
            let mut changed = sent.ciphertext.clone();
            changed[0] ^= 1;
            let rejected = ml_kem_decapsulate(&key, &changed).unwrap();
            assert_ne!(rejected, sent.secret);
            // … and deterministically so (J(z‖c) depends only on the key and c).
            assert_eq!(ml_kem_decapsulate(&key, &changed).unwrap(), rejected);
        }
    }

    #[test]
    fn a_ciphertext_of_the_wrong_length_is_refused() {
        let key = private_from_seed(KeyType::ML_KEM_768, &[1u8; 64]);
        for len in [0, 767, 1087, 1089, 1568] {
            let err = ml_kem_decapsulate(&key, &vec![0u8; len]).unwrap_err();
            assert_eq!(err.rv(), Rv::WRAPPED_KEY_LEN_RANGE, "length {len}");
        }
    }

    #[test]
    fn keys_of_other_algorithms_are_inconsistent() {
        let ec = crate::crypto::test_keys::ec(crate::crypto::test_keys::P256);
        let public = ec.public_key().unwrap();
        assert_eq!(
            ml_kem_encapsulate(&public).unwrap_err().rv(),
            Rv::KEY_TYPE_INCONSISTENT
        );
        assert_eq!(
            ml_kem_ciphertext_len(&public).unwrap_err().rv(),
            Rv::KEY_TYPE_INCONSISTENT
        );
        assert_eq!(
            ml_kem_decapsulate(&ec, &[0u8; 1088]).unwrap_err().rv(),
            Rv::KEY_TYPE_INCONSISTENT
        );
    }
}

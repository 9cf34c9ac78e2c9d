//! Post-quantum keys (FIPS 203 ML-KEM, FIPS 204 ML-DSA, FIPS 205 SLH-DSA; PKCS#11 3.2 §6.67,
//! §6.68, §6.69): generation, from seed, from the expanded private key, public keys from their
//! encoding, and the raw values PKCS#11 exposes (`CKA_VALUE`, `CKA_SEED`).
//!
//! OpenSSL names these keys by algorithm (`ML-DSA-65`), not by a numeric id, so the table below
//! is what `crypto` knows of them: the name, the family, the lengths of the encodings, and the
//! OID the SubjectPublicKeyInfo and PKCS#8 carry (NIST's, under 2.16.840.1.101.3.4). As for
//! curves, which parameter sets sqlhsm offers is the key-algorithm table's business; a row hands
//! its OpenSSL name to the constructors here.

use std::ffi::CStr;

use openssl::pkey::{HasPublic, PKeyRef};
use zeroize::Zeroizing;

use super::der;
use super::keys::{Family, PrivateKey, PublicKey};
use super::openssl_error;
use crate::error::{Result, Rv};
use crate::ffi::openssl_ext;

/// One post-quantum parameter set as OpenSSL holds it.
pub(crate) struct PqAlgorithm {
    pub(crate) name: &'static CStr,
    pub(crate) family: Family,
    /// Length of the encoded public key (ML-KEM ek, ML-DSA pk, SLH-DSA PK.seed‖PK.root).
    pub(crate) public_len: usize,
    /// Length of the expanded private key (ML-KEM dk, ML-DSA sk, SLH-DSA SK.seed‖SK.prf‖PK).
    pub(crate) private_len: usize,
    /// Length of the seed (ML-KEM d‖z, ML-DSA ξ, SLH-DSA SK.seed‖SK.prf‖PK.seed).
    pub(crate) seed_len: usize,
    /// The last two arcs of the OID under 2.16.840.1.101.3.4 (`4.n` KEMs, `3.n` signatures).
    oid_arcs: [u8; 2],
}

const fn kem(name: &'static CStr, public_len: usize, private_len: usize, arc: u8) -> PqAlgorithm {
    PqAlgorithm {
        name,
        family: Family::MlKem,
        public_len,
        private_len,
        seed_len: 64,
        oid_arcs: [4, arc],
    }
}

const fn dsa(name: &'static CStr, public_len: usize, private_len: usize, arc: u8) -> PqAlgorithm {
    PqAlgorithm {
        name,
        family: Family::MlDsa,
        public_len,
        private_len,
        seed_len: 32,
        oid_arcs: [3, arc],
    }
}

/// SLH-DSA with security parameter `n` bytes: PK = 2n, SK = 4n, the seed its first 3n.
const fn slh(name: &'static CStr, n: usize, arc: u8) -> PqAlgorithm {
    PqAlgorithm {
        name,
        family: Family::SlhDsa,
        public_len: 2 * n,
        private_len: 4 * n,
        seed_len: 3 * n,
        oid_arcs: [3, arc],
    }
}

/// Every parameter set OpenSSL 3.6 offers (FIPS 203 Table 3, FIPS 204 Table 2, FIPS 205
/// Table 2), OIDs from NIST's Computer Security Objects Register.
pub(crate) static PQ_ALGORITHMS: [PqAlgorithm; 18] = [
    kem(c"ML-KEM-512", 800, 1632, 1),
    kem(c"ML-KEM-768", 1184, 2400, 2),
    kem(c"ML-KEM-1024", 1568, 3168, 3),
    dsa(c"ML-DSA-44", 1312, 2560, 17),
    dsa(c"ML-DSA-65", 1952, 4032, 18),
    dsa(c"ML-DSA-87", 2592, 4896, 19),
    slh(c"SLH-DSA-SHA2-128s", 16, 20),
    slh(c"SLH-DSA-SHA2-128f", 16, 21),
    slh(c"SLH-DSA-SHA2-192s", 24, 22),
    slh(c"SLH-DSA-SHA2-192f", 24, 23),
    slh(c"SLH-DSA-SHA2-256s", 32, 24),
    slh(c"SLH-DSA-SHA2-256f", 32, 25),
    slh(c"SLH-DSA-SHAKE-128s", 16, 26),
    slh(c"SLH-DSA-SHAKE-128f", 16, 27),
    slh(c"SLH-DSA-SHAKE-192s", 24, 28),
    slh(c"SLH-DSA-SHAKE-192f", 24, 29),
    slh(c"SLH-DSA-SHAKE-256s", 32, 30),
    slh(c"SLH-DSA-SHAKE-256f", 32, 31),
];

impl PqAlgorithm {
    /// The algorithm's name as text (the key-algorithm table's `openssl_name`).
    pub(crate) fn text(&self) -> &'static str {
        // The table's names are ASCII literals.
        self.name.to_str().unwrap_or_default()
    }

    /// The DER of the algorithm's OBJECT IDENTIFIER (2.16.840.1.101.3.4.a.b).
    pub(crate) fn oid_der(&self) -> Vec<u8> {
        let mut arcs = vec![0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04];
        arcs.extend_from_slice(&self.oid_arcs);
        der::tlv(der::OBJECT_IDENTIFIER, &arcs)
    }

    /// Whether OpenSSL keeps this family's seed apart from the expanded key (ML-KEM, ML-DSA:
    /// the key's `seed` parameter); SLH-DSA's seed is the front of its expanded key.
    fn seed_kept_apart(&self) -> bool {
        self.family != Family::SlhDsa
    }
}

/// The entry of an OpenSSL algorithm name; `CKR_GENERAL_ERROR` for a name the table lacks (a
/// key-algorithm row naming an algorithm `crypto` does not know is a bug).
fn by_name(name: &str) -> Result<&'static PqAlgorithm> {
    PQ_ALGORITHMS
        .iter()
        .find(|a| a.text() == name)
        .ok_or_else(|| Rv::GENERAL_ERROR.into())
}

/// The entry of a key OpenSSL holds, or `None` for a key of another kind.
pub(crate) fn of_key<T>(key: &PKeyRef<T>) -> Option<&'static PqAlgorithm> {
    let name = openssl_ext::type_name(key)?;
    PQ_ALGORITHMS
        .iter()
        .find(|a| a.text().eq_ignore_ascii_case(&name))
}

/// `CKR_ATTRIBUTE_VALUE_INVALID` unless `value` has the length `len`.
fn check_len(value: &[u8], len: usize) -> Result<()> {
    if value.len() != len {
        Err(Rv::ATTRIBUTE_VALUE_INVALID)?
    }
    Ok(())
}

impl PrivateKey {
    /// A fresh key of the post-quantum parameter set OpenSSL names `name`.
    pub fn generate_pq(name: &str) -> Result<PrivateKey> {
        let algorithm = by_name(name)?;
        Ok(PrivateKey::from_openssl(
            openssl_ext::generate_named(algorithm.name, None).map_err(openssl_error)?,
        ))
    }

    /// The key a seed determines (`CKA_SEED`): ML-KEM's 64-byte d‖z, ML-DSA's 32-byte ξ,
    /// SLH-DSA's SK.seed‖SK.prf‖PK.seed (3n bytes). `CKR_ATTRIBUTE_VALUE_INVALID` for a seed of
    /// the wrong length.
    pub fn from_pq_seed(name: &str, seed: &[u8]) -> Result<PrivateKey> {
        let algorithm = by_name(name)?;
        check_len(seed, algorithm.seed_len)?;
        let key = openssl_ext::generate_named(algorithm.name, Some(seed))
            .map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
        Ok(PrivateKey::from_openssl(key))
    }

    /// The key whose expanded private encoding (`CKA_VALUE`) is `value` (ML-KEM dk, ML-DSA sk,
    /// SLH-DSA SK); `CKR_ATTRIBUTE_VALUE_INVALID` when it is not one (wrong length, or a
    /// consistency check of OpenSSL's failing).
    pub fn from_pq_expanded(name: &str, value: &[u8]) -> Result<PrivateKey> {
        let algorithm = by_name(name)?;
        check_len(value, algorithm.private_len)?;
        let key = openssl_ext::private_from_raw(algorithm.name, value)
            .map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
        Ok(PrivateKey::from_openssl(key))
    }

    /// The post-quantum parameter set's OpenSSL name, `None` for other keys.
    pub fn pq_name(&self) -> Option<&'static str> {
        self.openssl()
            .and_then(|k| of_key(k))
            .map(PqAlgorithm::text)
    }

    /// The expanded private key (`CKA_VALUE`), `None` for a key that is not post-quantum.
    pub fn pq_expanded(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        if self.openssl().and_then(|k| of_key(k)).is_none() {
            return Ok(None);
        }
        Ok(Some(Zeroizing::new(
            self.pkey()?.raw_private_key().map_err(openssl_error)?,
        )))
    }

    /// The seed (`CKA_SEED`) when the key has one: `None` for an ML-KEM or ML-DSA key made
    /// from its expanded form only (no seed can be recovered from it), and for other keys.
    pub fn pq_seed(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let Some(algorithm) = self.openssl().and_then(|k| of_key(k)) else {
            return Ok(None);
        };
        if !algorithm.seed_kept_apart() {
            let expanded = Zeroizing::new(self.pkey()?.raw_private_key().map_err(openssl_error)?);
            return Ok(expanded
                .get(..algorithm.seed_len)
                .map(|seed| Zeroizing::new(seed.to_vec())));
        }
        let mut seed = Zeroizing::new(vec![0u8; algorithm.seed_len]);
        match self.pkey()?.seed_into(&mut seed) {
            Ok(n) if n == algorithm.seed_len => Ok(Some(seed)),
            // No seed parameter: the key came from its expanded form. (`seed_into` has taken
            // OpenSSL's error queue into its error, so nothing is left on it.)
            _ => Ok(None),
        }
    }

    /// PKCS#8 of a post-quantum key as sqlhsm seals it: for ML-KEM and ML-DSA with a seed, the
    /// seed-only form (the `seed [0] IMPLICIT OCTET STRING` choice of the IETF LAMPS
    /// encodings; the expanded key follows from it), else OpenSSL's encoding. `None` for other
    /// keys.
    pub(crate) fn pq_pkcs8(&self) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let Some(algorithm) = self.openssl().and_then(|k| of_key(k)) else {
            return Ok(None);
        };
        let seed = match (algorithm.seed_kept_apart(), self.pq_seed()?) {
            (true, Some(seed)) => seed,
            _ => {
                let der = self.pkey()?.private_key_to_pkcs8().map_err(openssl_error)?;
                return Ok(Some(Zeroizing::new(der)));
            }
        };
        const CONTEXT_0: u8 = 0x80;
        const SEQUENCE: u8 = 0x30;
        let private_key = Zeroizing::new(der::tlv(CONTEXT_0, &seed));
        let private_key = Zeroizing::new(der::tlv(der::OCTET_STRING, &private_key));
        let version = der::tlv(der::INTEGER, &[0]);
        let algorithm_id = der::tlv(SEQUENCE, &algorithm.oid_der());
        // Sized once, so no reallocation leaves a copy of the seed behind.
        let mut body = Zeroizing::new(Vec::with_capacity(
            version.len() + algorithm_id.len() + private_key.len(),
        ));
        body.extend_from_slice(&version);
        body.extend_from_slice(&algorithm_id);
        body.extend_from_slice(&private_key);
        Ok(Some(Zeroizing::new(der::tlv(SEQUENCE, &body))))
    }
}

impl PublicKey {
    /// The public key of the parameter set `name` whose encoding (`CKA_VALUE`) is `value`.
    pub fn from_pq_value(name: &str, value: &[u8]) -> Result<PublicKey> {
        let algorithm = by_name(name)?;
        check_len(value, algorithm.public_len)?;
        let key = openssl_ext::public_from_raw(algorithm.name, value)
            .map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
        Ok(PublicKey::from_openssl(key))
    }

    /// The post-quantum parameter set's OpenSSL name, `None` for other keys.
    pub fn pq_name(&self) -> Option<&'static str> {
        self.openssl()
            .and_then(|k| of_key(k))
            .map(PqAlgorithm::text)
    }
}

/// The raw public key of a post-quantum key (`CKA_VALUE` of the public key object).
pub(crate) fn public_value<T: HasPublic>(key: &PKeyRef<T>) -> Result<Vec<u8>> {
    key.raw_public_key().map_err(openssl_error)
}

impl PrivateKey {
    /// Whether this key's expanded private key is `expanded` (a seed and an expanded key given
    /// together must be one key), compared in constant time.
    pub fn pq_expanded_is(&self, expanded: &[u8]) -> Result<bool> {
        let Some(own) = self.pq_expanded()? else {
            return Ok(false);
        };
        Ok(own.len() == expanded.len() && openssl::memcmp::eq(&own, expanded))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sealed_form_is_seed_only_when_a_seed_exists() {
        for name in ["ML-KEM-768", "ML-DSA-65"] {
            let key = PrivateKey::generate_pq(name).unwrap();
            let algorithm = by_name(name).unwrap();
            let seed = key.pq_seed().unwrap().unwrap();
            let der = key.to_pkcs8_der().unwrap();
            // SEQUENCE { INTEGER 0, SEQUENCE { OID }, OCTET STRING { [0] seed } }, nothing more.
            let mut tail = der::tlv(0x80, &seed);
            tail = der::tlv(der::OCTET_STRING, &tail);
            assert!(der.ends_with(&tail), "{name}");
            let oid = algorithm.oid_der();
            assert!(der.windows(oid.len()).any(|w| w == oid), "{name}");
            assert!(der.len() < 32 + seed.len(), "{name}: no expanded key");
            let again = PrivateKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(again.public_values().unwrap(), key.public_values().unwrap());
            assert_eq!(again.pq_seed().unwrap().unwrap(), seed);
            // From the expanded form alone there is no seed, and the expanded form is sealed.
            let expanded = key.pq_expanded().unwrap().unwrap();
            let bare = PrivateKey::from_pq_expanded(name, &expanded).unwrap();
            assert!(bare.pq_seed().unwrap().is_none(), "{name}");
            let der = bare.to_pkcs8_der().unwrap();
            let again = PrivateKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(again.pq_expanded().unwrap().unwrap(), expanded);
        }
        // SLH-DSA: the seed is the front of the key, which is what PKCS#8 carries.
        let key = PrivateKey::generate_pq("SLH-DSA-SHAKE-128f").unwrap();
        let seed = key.pq_seed().unwrap().unwrap();
        assert_eq!(seed.len(), 48);
        let again = PrivateKey::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap();
        assert_eq!(again.pq_seed().unwrap().unwrap(), seed);
    }

    /// Refused seeds, keys and encodings, and keys without a seed, leave OpenSSL's error queue
    /// empty (see `error_queue_tests`: a stale error is taken by a later, unrelated call).
    #[test]
    fn refusals_leave_no_error_behind() {
        use openssl::error::ErrorStack;
        let key = PrivateKey::generate_pq("ML-DSA-44").unwrap();
        let expanded = key.pq_expanded().unwrap().unwrap();
        let public = key.public_key().unwrap().public_values().unwrap();
        let crate::crypto::keys::PublicValues::Encoded { value } = public else {
            panic!("not encoded")
        };
        type Case<'a> = (&'static str, Box<dyn Fn() + 'a>);
        let cases: Vec<Case<'_>> = vec![
            (
                "seed of a wrong length",
                Box::new(|| assert!(PrivateKey::from_pq_seed("ML-DSA-44", &[1; 31]).is_err())),
            ),
            (
                "ML-KEM dk with a wrong hash of ek",
                Box::new(|| {
                    let mut dk = vec![7u8; 1632];
                    dk[1631] ^= 1;
                    let _ = PrivateKey::from_pq_expanded("ML-KEM-512", &dk);
                }),
            ),
            (
                "expanded key only: no seed",
                Box::new(|| {
                    let bare = PrivateKey::from_pq_expanded("ML-DSA-44", &expanded).unwrap();
                    assert!(bare.pq_seed().unwrap().is_none());
                }),
            ),
            (
                "public key of a wrong set",
                Box::new(|| {
                    let _ = PublicKey::from_pq_value("ML-KEM-768", &[0xff; 1184]);
                }),
            ),
            (
                "facts and name",
                Box::new(|| {
                    let again = PublicKey::from_pq_value("ML-DSA-44", &value).unwrap();
                    assert_eq!(again.pq_name(), Some("ML-DSA-44"));
                    assert_eq!(again.facts().unwrap().family, Family::MlDsa);
                }),
            ),
        ];
        for (name, case) in cases {
            let _ = ErrorStack::get();
            case();
            let left = ErrorStack::get();
            assert!(left.errors().is_empty(), "{name}: {left}");
        }
    }

    #[test]
    fn spki_carries_the_nist_oid() {
        for algorithm in &PQ_ALGORITHMS {
            let key = PrivateKey::generate_pq(algorithm.text()).unwrap();
            let spki = key.public_key().unwrap().to_spki_der().unwrap();
            let oid = algorithm.oid_der();
            assert!(
                spki.windows(oid.len()).any(|w| w == oid),
                "{}",
                algorithm.text()
            );
            assert!(key.curve_der().unwrap().is_none());
        }
        assert!(by_name("ML-KEM-2048").is_err());
        assert!(crate::crypto::test_keys::rsa_2048().pq_name().is_none());
    }
}

//! Hybrid KEM keys (OpenTDF's key_algorithm 6, 7, 8; `crate::crypto::hybrid_kem`) as
//! [`PrivateKey`] / [`PublicKey`] values. A hybrid key is not one OpenSSL key object: it is held
//! as OpenTDF's raw encodings (the private key is everything, the public key is derived from it
//! once), and its envelopes are OpenTDF's PKCS#8 and SubjectPublicKeyInfo, so the sealed form
//! and `public_key_ctx.pem` of a hybrid key are the files an OpenTDF key access service reads.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use zeroize::Zeroizing;

use super::hybrid_kem::{HybridKem, HybridKeyPair};
use super::keys::{Family, KeyFacts, PrivateKey, PublicKey};
use crate::error::{Result, Rv};

/// A hybrid private key: the KEM and the key pair in OpenTDF's encodings.
pub(crate) struct HybridPrivateKey {
    pub(crate) kem: HybridKem,
    pub(crate) pair: HybridKeyPair,
}

/// A hybrid public key: the KEM and OpenTDF's raw public key (checked when made).
#[derive(Clone)]
pub(crate) struct HybridPublicKey {
    pub(crate) kem: HybridKem,
    pub(crate) public: Vec<u8>,
}

/// What a hybrid key is: [`Family::Hybrid`], sized (as PKCS#11 3.2 sizes KEM keys) by its
/// public key's length, which tells the three apart (1216, 1249, 1665 bytes).
pub(crate) fn facts(kem: HybridKem) -> KeyFacts {
    KeyFacts {
        family: Family::Hybrid,
        bits: 8 * kem.public_key_len() as u32,
    }
}

const PUBLIC_KEY_PEM: &str = "PUBLIC KEY";

/// The `PUBLIC KEY` PEM of a SubjectPublicKeyInfo, in OpenSSL's layout (64-column base64).
pub(crate) fn spki_pem(der: &[u8]) -> String {
    let body = B64.encode(der);
    let mut pem = format!("-----BEGIN {PUBLIC_KEY_PEM}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {PUBLIC_KEY_PEM}-----\n"));
    pem
}

/// The DER of a `PUBLIC KEY` PEM, `None` when `pem` is not one such block.
pub(crate) fn spki_der_of_pem(pem: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {PUBLIC_KEY_PEM}-----");
    let end = format!("-----END {PUBLIC_KEY_PEM}-----");
    let body = pem.trim().strip_prefix(&begin)?.strip_suffix(&end)?;
    let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    B64.decode(base64.as_bytes()).ok()
}

impl PrivateKey {
    /// A fresh hybrid key pair.
    pub fn generate_hybrid(kem: HybridKem) -> Result<PrivateKey> {
        Ok(PrivateKey::from_hybrid(HybridPrivateKey {
            kem,
            pair: kem.generate()?,
        }))
    }

    /// The hybrid key whose OpenTDF private key (`CKA_VALUE`: X-Wing's 32-byte seed, a
    /// composite's ML-KEM seed ‖ ECPrivateKey) is `value`; `CKR_ATTRIBUTE_VALUE_INVALID` when
    /// it is not one.
    pub fn from_hybrid_private(kem: HybridKem, value: &[u8]) -> Result<PrivateKey> {
        Ok(PrivateKey::from_hybrid(HybridPrivateKey {
            kem,
            pair: kem.key_pair_from_private(value)?,
        }))
    }

    /// The hybrid KEM and OpenTDF's raw private key, `None` for other keys.
    pub fn hybrid_private(&self) -> Option<(HybridKem, &[u8])> {
        self.hybrid().map(|h| (h.kem, &h.pair.private[..]))
    }

    /// A hybrid key from OpenTDF's PKCS#8 (its OID, the raw private key); `None` when `der` is
    /// not one, `CKR_DATA_INVALID` when it names a hybrid but holds no valid key.
    pub(crate) fn hybrid_from_pkcs8_der(der: &[u8]) -> Option<Result<PrivateKey>> {
        let (kem, private) = HybridKem::private_from_pkcs8_der(der)?;
        Some(PrivateKey::from_hybrid_private(kem, &private).map_err(|_| Rv::DATA_INVALID.into()))
    }
}

impl HybridPrivateKey {
    pub(crate) fn public_key(&self) -> HybridPublicKey {
        HybridPublicKey {
            kem: self.kem,
            public: self.pair.public.clone(),
        }
    }

    /// OpenTDF's PKCS#8 of the key: the form sqlhsm seals.
    pub(crate) fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        self.kem.private_to_pkcs8_der(&self.pair.private)
    }
}

impl PublicKey {
    /// The hybrid public key whose OpenTDF encoding (`CKA_VALUE`) is `value`, checked (lengths,
    /// the ML-KEM encapsulation key, the point on its curve): `CKR_ATTRIBUTE_VALUE_INVALID`
    /// when it is not one.
    pub fn from_hybrid_public(kem: HybridKem, value: &[u8]) -> Result<PublicKey> {
        kem.check_public_key(value)?;
        Ok(PublicKey::from_hybrid(HybridPublicKey {
            kem,
            public: value.to_vec(),
        }))
    }

    /// The hybrid KEM and OpenTDF's raw public key, `None` for other keys.
    pub fn hybrid_public(&self) -> Option<(HybridKem, &[u8])> {
        self.hybrid().map(|h| (h.kem, &h.public[..]))
    }

    /// A hybrid key from OpenTDF's SubjectPublicKeyInfo; `None` when `der` is not one,
    /// `CKR_DATA_INVALID` when it names a hybrid but holds no valid key.
    pub(crate) fn hybrid_from_spki_der(der: &[u8]) -> Option<Result<PublicKey>> {
        let (kem, public) = HybridKem::public_from_spki_der(der)?;
        Some(PublicKey::from_hybrid_public(kem, &public).map_err(|_| Rv::DATA_INVALID.into()))
    }
}

impl HybridPublicKey {
    pub(crate) fn to_spki_der(&self) -> Vec<u8> {
        self.kem.public_to_spki_der(&self.public)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::crypto::hybrid_kem::ALL;
    use crate::crypto::keys::PublicValues;

    /// Every hybrid through the key types: generated, sealed as PKCS#8 and read back, its
    /// public key through SPKI PEM and DER, its values, a KEM round trip with the keys' bytes.
    #[test]
    fn hybrid_keys_round_trip_through_their_envelopes() {
        for kem in ALL {
            let key = PrivateKey::generate_hybrid(kem).unwrap();
            assert_eq!(key.facts().unwrap(), facts(kem));
            assert_eq!(key.facts().unwrap().bytes(), kem.public_key_len());
            assert!(key.curve_der().unwrap().is_none());
            let sealed = key.to_pkcs8_der().unwrap();
            let back = PrivateKey::from_pkcs8_der(&sealed).unwrap();
            assert_eq!(back.hybrid_private(), key.hybrid_private());
            let public = key.public_key().unwrap();
            let PublicValues::Encoded { value } = public.public_values().unwrap() else {
                panic!("{kem:?}: not an encoded public key")
            };
            assert_eq!(value.len(), kem.public_key_len());
            assert_eq!(
                key.public_values().unwrap(),
                public.public_values().unwrap()
            );
            let pem = public.to_spki_pem().unwrap();
            let again = PublicKey::from_spki_pem(&pem).unwrap();
            assert_eq!(again.hybrid_public(), public.hybrid_public());
            let der = public.to_spki_der().unwrap();
            assert_eq!(spki_der_of_pem(&pem).unwrap(), der);
            let again = PublicKey::from_spki_der(&der).unwrap();
            assert_eq!(again.hybrid_public(), public.hybrid_public());
            let (_, raw_private) = key.hybrid_private().unwrap();
            assert_eq!(
                key.private_component(cryptoki_sys::CKA_VALUE)
                    .unwrap()
                    .as_deref()
                    .map(|v| &v[..]),
                Some(raw_private)
            );
            let sent = kem.encapsulate(&value).unwrap();
            assert_eq!(
                kem.decapsulate(raw_private, &sent.ciphertext).unwrap(),
                sent.secret
            );
            // A hybrid key is no OpenSSL key: operations that need one refuse it.
            assert_eq!(key.pkey().unwrap_err().rv(), Rv::KEY_TYPE_INCONSISTENT);
            assert_eq!(public.pkey().unwrap_err().rv(), Rv::KEY_TYPE_INCONSISTENT);
            assert!(key.pq_name().is_none());
        }
    }

    #[test]
    fn malformed_hybrid_values_are_refused() {
        for kem in ALL {
            let key = PrivateKey::generate_hybrid(kem).unwrap();
            let (_, private) = key.hybrid_private().unwrap();
            let err = PrivateKey::from_hybrid_private(kem, &private[1..]).unwrap_err();
            assert_eq!(err.rv(), Rv::ATTRIBUTE_VALUE_INVALID, "{kem:?}");
            let public = key.public_key().unwrap();
            let (_, raw) = public.hybrid_public().unwrap();
            let err = PublicKey::from_hybrid_public(kem, &raw[1..]).unwrap_err();
            assert_eq!(err.rv(), Rv::ATTRIBUTE_VALUE_INVALID, "{kem:?}");
            // A hybrid's envelope holding a key of the wrong length is invalid data.
            let spki = kem.public_to_spki_der(&raw[1..]);
            assert!(PublicKey::from_spki_der(&spki).is_err());
        }
        assert!(
            spki_der_of_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_none()
        );
    }
}

//! OpenTDF's hybrid (post-quantum + traditional) KEMs, as byte functions over OpenSSL's
//! ML-KEM, X25519, ECDH and SHA-3, in the encodings OpenTDF's `lib/ocrypto` package uses, so
//! keys and ciphertexts move between sqlhsm and an OpenTDF key access service unchanged:
//!
//! * **X-Wing** (draft-connolly-cfrg-xwing-kem-10, OpenTDF `hpqt:xwing`): the private key is a
//!   32-byte seed, expanded by SHAKE-256 into an ML-KEM-768 seed (64 bytes) and an X25519
//!   scalar (32). Public key `pk_M ‖ pk_X` (1216 bytes), ciphertext `ct_M ‖ ct_X` (1120), shared
//!   secret `SHA3-256(ss_M ‖ ss_X ‖ ct_X ‖ pk_X ‖ "\.//^\")`.
//! * **ML-KEM-768 + ECDH P-256** and **ML-KEM-1024 + ECDH P-384** (the composite KEMs of
//!   draft-ietf-lamps-pq-composite-kem, OpenTDF `hpqt:secp256r1-mlkem768` and
//!   `hpqt:secp384r1-mlkem1024`): public key `pk_M ‖ uncompressed EC point`, private key
//!   `ML-KEM seed (d ‖ z) ‖ ECPrivateKey (RFC 5915 DER)`, ciphertext `ct_M ‖ ephemeral
//!   uncompressed EC point`, shared secret `SHA3-256(ss_M ‖ ss_EC ‖ ct_EC ‖ pk_EC ‖ Label)` with
//!   the labels "MLKEM768-P256" and "MLKEM1024-P384"; `ss_EC` is the ECDH x-coordinate.
//!
//! Every shared secret is 32 bytes. What OpenTDF does with it afterwards (X-Wing: HKDF-SHA256
//! with salt SHA-256("TDF") to an AES-256 key; the composites: the secret itself as the AES-256
//! key; then AES-GCM over the data key) is the caller's business, not the KEM's.

use openssl::bn::{BigNum, BigNumContext};
use openssl::derive::Deriver;
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::hash::{Hasher, MessageDigest};
use openssl::nid::Nid;
use openssl::pkey::{Id, KeyType, PKey, Private};
use zeroize::Zeroizing;

pub use crate::crypto::kem::Encapsulation;
use crate::crypto::openssl_error;
use crate::error::{Result, Rv};
use crate::ffi::openssl_ext::{kem_decapsulate, kem_encapsulate};

/// Length of every hybrid shared secret.
pub const SHARED_SECRET_LEN: usize = 32;
/// An ML-KEM seed `d ‖ z` (FIPS 203 §7.1, ML-KEM.KeyGen_internal).
const MLKEM_SEED_LEN: usize = 64;
/// FIPS 203's encapsulation randomness `m`.
const MLKEM_M_LEN: usize = 32;
const X25519_LEN: usize = 32;
/// The X-Wing domain separator, ASCII art `\./` over `/^\`.
const XWING_LABEL: &[u8] = b"\\.//^\\";

/// The three hybrids OpenTDF defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HybridKem {
    XWing,
    P256MlKem768,
    P384MlKem1024,
}

/// The ML-KEM half's parameter set and sizes.
struct MlKem {
    key_type: KeyType,
    public_len: usize,
    ciphertext_len: usize,
}

const ML_KEM_768: MlKem = MlKem {
    key_type: KeyType::ML_KEM_768,
    public_len: 1184,
    ciphertext_len: 1088,
};
const ML_KEM_1024: MlKem = MlKem {
    key_type: KeyType::ML_KEM_1024,
    public_len: 1568,
    ciphertext_len: 1568,
};

/// The traditional half of a composite.
struct Curve {
    nid: Nid,
    /// Bytes of a field element: the ECDH secret's length.
    field_len: usize,
    label: &'static [u8],
}

const P256: Curve = Curve {
    nid: Nid::X9_62_PRIME256V1,
    field_len: 32,
    label: b"MLKEM768-P256",
};
const P384: Curve = Curve {
    nid: Nid::SECP384R1,
    field_len: 48,
    label: b"MLKEM1024-P384",
};

impl Curve {
    /// An uncompressed point `04 ‖ X ‖ Y`.
    const fn point_len(&self) -> usize {
        1 + 2 * self.field_len
    }

    fn group(&self) -> Result<EcGroup> {
        EcGroup::from_curve_name(self.nid).map_err(openssl_error)
    }
}

/// A key pair in OpenTDF's encodings; the private half is zeroized when dropped.
pub struct HybridKeyPair {
    pub public: Vec<u8>,
    pub private: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for HybridKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridKeyPair")
            .field("public_len", &self.public.len())
            .finish_non_exhaustive()
    }
}

impl HybridKem {
    const fn ml_kem(self) -> &'static MlKem {
        match self {
            HybridKem::XWing | HybridKem::P256MlKem768 => &ML_KEM_768,
            HybridKem::P384MlKem1024 => &ML_KEM_1024,
        }
    }

    const fn curve(self) -> Option<&'static Curve> {
        match self {
            HybridKem::XWing => None,
            HybridKem::P256MlKem768 => Some(&P256),
            HybridKem::P384MlKem1024 => Some(&P384),
        }
    }

    /// Length of the traditional public value (X25519 u-coordinate or uncompressed point), which
    /// is also the traditional ciphertext's.
    const fn traditional_len(self) -> usize {
        match self.curve() {
            Some(curve) => curve.point_len(),
            None => X25519_LEN,
        }
    }

    /// Length of an encoded public key: 1216, 1249 or 1665.
    pub const fn public_key_len(self) -> usize {
        self.ml_kem().public_len + self.traditional_len()
    }

    /// Length of a ciphertext: 1120, 1153 or 1665.
    pub const fn ciphertext_len(self) -> usize {
        self.ml_kem().ciphertext_len + self.traditional_len()
    }

    /// Bytes of encapsulation randomness [`encapsulate_derandomized`] takes: ML-KEM's `m`
    /// followed by the traditional ephemeral private key (X25519 scalar or EC scalar).
    pub fn eseed_len(self) -> usize {
        MLKEM_M_LEN + self.curve().map_or(X25519_LEN, |c| c.field_len)
    }

    /// A fresh key pair.
    pub fn generate(self) -> Result<HybridKeyPair> {
        match self.curve() {
            None => {
                let mut seed = Zeroizing::new(vec![0u8; 32]);
                crate::crypto::random::fill(&mut seed)?;
                self.key_pair_from_private(&seed)
            }
            Some(curve) => {
                let mut private = Zeroizing::new(vec![0u8; MLKEM_SEED_LEN]);
                crate::crypto::random::fill(&mut private)?;
                let group = curve.group()?;
                let ec = EcKey::generate(&group).map_err(openssl_error)?;
                let der = Zeroizing::new(ec.private_key_to_der().map_err(openssl_error)?);
                private.extend_from_slice(&der);
                self.key_pair_from_private(&private)
            }
        }
    }

    /// The key pair an encoded private key stands for: its public key is derived (the private
    /// forms hold everything), and a malformed private key is `CKR_ATTRIBUTE_VALUE_INVALID`
    /// (it arrives as `CKA_VALUE`).
    pub fn key_pair_from_private(self, private: &[u8]) -> Result<HybridKeyPair> {
        let keys = PrivateParts::decode(self, private)?;
        let mut public = keys.ml_kem.raw_public_key().map_err(openssl_error)?;
        public.extend_from_slice(&keys.traditional_public);
        Ok(HybridKeyPair {
            public,
            private: Zeroizing::new(private.to_vec()),
        })
    }

    /// Checks an encoded public key (lengths, the ML-KEM encapsulation-key check of FIPS 203
    /// §7.2, the point on its curve): `CKR_ATTRIBUTE_VALUE_INVALID` when it fails.
    pub fn check_public_key(self, public: &[u8]) -> Result<()> {
        PublicParts::decode(self, public).map(|_| ())
    }

    /// Encapsulates to `public` with fresh randomness.
    pub fn encapsulate(self, public: &[u8]) -> Result<Encapsulation> {
        self.encapsulate_with(public, None)
    }

    /// Encapsulates with the given randomness ([`Self::eseed_len`] bytes), as the specifications'
    /// test vectors do. Nothing outside tests has a use for it: reused randomness gives away
    /// the secret.
    pub fn encapsulate_derandomized(self, public: &[u8], eseed: &[u8]) -> Result<Encapsulation> {
        if eseed.len() != self.eseed_len() {
            Err(Rv::ARGUMENTS_BAD)?
        }
        self.encapsulate_with(public, Some(eseed))
    }

    fn encapsulate_with(self, public: &[u8], eseed: Option<&[u8]>) -> Result<Encapsulation> {
        let peer = PublicParts::decode(self, public)?;
        let (m, ephemeral) = match eseed {
            Some(e) => (Some(&e[..MLKEM_M_LEN]), Some(&e[MLKEM_M_LEN..])),
            None => (None, None),
        };
        let ml_kem = kem_encapsulate(&peer.ml_kem, m).map_err(openssl_error)?;
        let (mut ciphertext, ss_m) = (ml_kem.ciphertext, ml_kem.secret);
        let (ct_t, ss_t) = match self.curve() {
            None => x25519_encapsulate(&peer.traditional, ephemeral)?,
            Some(curve) => ecdh_encapsulate(curve, &peer.traditional, ephemeral)?,
        };
        let secret = self.combine(&ss_m, &ss_t, &ct_t, &peer.traditional)?;
        ciphertext.extend_from_slice(&ct_t);
        Ok(Encapsulation { ciphertext, secret })
    }

    /// The secret `ciphertext` carries for the owner of `private`. A ciphertext of the wrong
    /// length is `CKR_WRAPPED_KEY_LEN_RANGE`; an ephemeral EC point that is not on the curve
    /// `CKR_WRAPPED_KEY_INVALID`. A well-formed ciphertext made for another key is not detected
    /// here (ML-KEM rejects implicitly): it decapsulates to an unrelated secret.
    pub fn decapsulate(self, private: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if ciphertext.len() != self.ciphertext_len() {
            Err(Rv::WRAPPED_KEY_LEN_RANGE)?
        }
        let keys = PrivateParts::decode(self, private)?;
        let (ct_m, ct_t) = ciphertext.split_at(self.ml_kem().ciphertext_len);
        let ss_m = kem_decapsulate(&keys.ml_kem, ct_m).map_err(|_| Rv::WRAPPED_KEY_INVALID)?;
        let ss_t = match (self.curve(), &keys.ec) {
            (Some(curve), Some(ec)) => {
                let peer = ec_public_key(curve, ct_t).map_err(|_| Rv::WRAPPED_KEY_INVALID)?;
                ecdh(ec, &peer, curve.field_len)?
            }
            _ => {
                let peer = PKey::public_key_from_raw_bytes(ct_t, Id::X25519)
                    .map_err(|_| Rv::WRAPPED_KEY_INVALID)?;
                ecdh(&keys.x25519()?, &peer, X25519_LEN)?
            }
        };
        self.combine(&ss_m, &ss_t, ct_t, &keys.traditional_public)
    }

    /// The combiners: both are SHA3-256 over the ML-KEM secret, the traditional secret, the
    /// traditional ciphertext and public key, then a label; only the labels differ.
    fn combine(
        self,
        ss_m: &[u8],
        ss_t: &[u8],
        ct_t: &[u8],
        pk_t: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let label = self.curve().map_or(XWING_LABEL, |c| c.label);
        let mut h = Hasher::new(MessageDigest::sha3_256()).map_err(openssl_error)?;
        for part in [ss_m, ss_t, ct_t, pk_t, label] {
            h.update(part).map_err(openssl_error)?;
        }
        Ok(Zeroizing::new(h.finish().map_err(openssl_error)?.to_vec()))
    }
}

/// DER tags of the envelopes.
const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;

impl HybridKem {
    /// The AlgorithmIdentifier OID, DER-encoded: id-XWing 1.3.6.1.4.1.62253.25722
    /// (draft-connolly-cfrg-xwing-kem-10 §5.8), id-MLKEM768-ECDH-P256-SHA3-256 1.3.6.1.5.5.7.6.59
    /// and id-MLKEM1024-ECDH-P384-SHA3-256 1.3.6.1.5.5.7.6.63 (draft-ietf-lamps-pq-composite-kem).
    pub fn oid_der(self) -> &'static [u8] {
        match self {
            HybridKem::XWing => &[
                0x06, 0x0b, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xe6, 0x2d, 0x81, 0xc8, 0x7a,
            ],
            HybridKem::P256MlKem768 => {
                &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x06, 0x3b]
            }
            HybridKem::P384MlKem1024 => {
                &[0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x06, 0x3f]
            }
        }
    }

    fn algorithm_identifier(self) -> Vec<u8> {
        // The parameters are absent for all three.
        crate::crypto::der::tlv(SEQUENCE, self.oid_der())
    }

    /// The SubjectPublicKeyInfo OpenTDF publishes: the OID, no parameters, the raw public key
    /// as the BIT STRING.
    pub fn public_to_spki_der(self, public: &[u8]) -> Vec<u8> {
        let bits = [&[0u8][..], public].concat();
        let body = [
            self.algorithm_identifier(),
            crate::crypto::der::tlv(BIT_STRING, &bits),
        ]
        .concat();
        crate::crypto::der::tlv(SEQUENCE, &body)
    }

    /// The PKCS#8 (RFC 5958 v1) private key OpenTDF writes: version 0, the OID, the raw private
    /// key as the OCTET STRING.
    pub fn private_to_pkcs8_der(self, private: &[u8]) -> Zeroizing<Vec<u8>> {
        let key = Zeroizing::new(crate::crypto::der::tlv(OCTET_STRING, private));
        let body = Zeroizing::new(
            [
                crate::crypto::der::tlv(INTEGER, &[0]),
                self.algorithm_identifier(),
                key.to_vec(),
            ]
            .concat(),
        );
        Zeroizing::new(crate::crypto::der::tlv(SEQUENCE, &body))
    }

    /// The hybrid and raw public key of a SubjectPublicKeyInfo; `None` when it is not one of
    /// the three (so other parsers may try), or is malformed.
    pub fn public_from_spki_der(der: &[u8]) -> Option<(HybridKem, Vec<u8>)> {
        let body = crate::crypto::der::content(der, SEQUENCE)?;
        let (kem, rest) = Self::split_algorithm(body)?;
        let bits = crate::crypto::der::content(rest, BIT_STRING)?;
        let (&unused, public) = bits.split_first()?;
        (unused == 0 && public.len() == kem.public_key_len()).then(|| (kem, public.to_vec()))
    }

    /// The hybrid and raw private key of a PKCS#8 envelope; `None` as for SPKI.
    pub fn private_from_pkcs8_der(der: &[u8]) -> Option<(HybridKem, Zeroizing<Vec<u8>>)> {
        let body = crate::crypto::der::content(der, SEQUENCE)?;
        let (tag, version, rest) = crate::crypto::der::split_tlv(body)?;
        if tag != INTEGER || version != [0] {
            return None;
        }
        let (kem, rest) = Self::split_algorithm(rest)?;
        let private = crate::crypto::der::content(rest, OCTET_STRING)?;
        Some((kem, Zeroizing::new(private.to_vec())))
    }

    /// The AlgorithmIdentifier at the start of `der` (exactly an OID: parameters must be
    /// absent), and what follows it.
    fn split_algorithm(der: &[u8]) -> Option<(HybridKem, &[u8])> {
        let (tag, algorithm, rest) = crate::crypto::der::split_tlv(der)?;
        if tag != SEQUENCE {
            return None;
        }
        let kem = ALL.into_iter().find(|k| k.oid_der() == algorithm)?;
        Some((kem, rest))
    }
}

/// The three, in `key_algorithm` order (6, 7, 8).
pub const ALL: [HybridKem; 3] = [
    HybridKem::XWing,
    HybridKem::P256MlKem768,
    HybridKem::P384MlKem1024,
];

/// A decoded public key: the ML-KEM encapsulation key and the traditional public value as sent.
struct PublicParts {
    ml_kem: PKey<openssl::pkey::Public>,
    traditional: Vec<u8>,
}

impl PublicParts {
    fn decode(kem: HybridKem, public: &[u8]) -> Result<PublicParts> {
        if public.len() != kem.public_key_len() {
            Err(Rv::ATTRIBUTE_VALUE_INVALID)?
        }
        let (pk_m, pk_t) = public.split_at(kem.ml_kem().public_len);
        let ml_kem = PKey::public_key_from_raw_bytes_ex(None, kem.ml_kem().key_type, None, pk_m)
            .map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
        match kem.curve() {
            None => {
                PKey::public_key_from_raw_bytes(pk_t, Id::X25519)
                    .map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
            }
            Some(curve) => {
                ec_public_key(curve, pk_t).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
            }
        }
        Ok(PublicParts {
            ml_kem,
            traditional: pk_t.to_vec(),
        })
    }
}

/// A decoded private key: ML-KEM's, the traditional one (an EC key, or the X25519 scalar kept
/// as bytes) and the traditional public value the combiner needs.
struct PrivateParts {
    ml_kem: PKey<Private>,
    ec: Option<PKey<Private>>,
    x25519_scalar: Zeroizing<Vec<u8>>,
    traditional_public: Vec<u8>,
}

impl PrivateParts {
    fn decode(kem: HybridKem, private: &[u8]) -> Result<PrivateParts> {
        match kem.curve() {
            None => {
                if private.len() != 32 {
                    Err(Rv::ATTRIBUTE_VALUE_INVALID)?
                }
                let mut expanded = Zeroizing::new(vec![0u8; MLKEM_SEED_LEN + X25519_LEN]);
                let mut shake = Hasher::new(MessageDigest::shake_256()).map_err(openssl_error)?;
                shake.update(private).map_err(openssl_error)?;
                shake.finish_xof(&mut expanded).map_err(openssl_error)?;
                let ml_kem = ml_kem_from_seed(kem, &expanded[..MLKEM_SEED_LEN])?;
                let x25519_scalar = Zeroizing::new(expanded[MLKEM_SEED_LEN..].to_vec());
                let x = PKey::private_key_from_raw_bytes(&x25519_scalar, Id::X25519)
                    .map_err(openssl_error)?;
                let traditional_public = x.raw_public_key().map_err(openssl_error)?;
                Ok(PrivateParts {
                    ml_kem,
                    ec: None,
                    x25519_scalar,
                    traditional_public,
                })
            }
            Some(curve) => {
                if private.len() <= MLKEM_SEED_LEN {
                    Err(Rv::ATTRIBUTE_VALUE_INVALID)?
                }
                let (seed, der) = private.split_at(MLKEM_SEED_LEN);
                let ml_kem = ml_kem_from_seed(kem, seed)?;
                let ec =
                    EcKey::private_key_from_der(der).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
                if ec.group().curve_name() != Some(curve.nid) || ec.check_key().is_err() {
                    Err(Rv::ATTRIBUTE_VALUE_INVALID)?
                }
                let traditional_public = uncompressed(curve, ec.public_key())?;
                let ec = PKey::from_ec_key(ec).map_err(openssl_error)?;
                Ok(PrivateParts {
                    ml_kem,
                    ec: Some(ec),
                    x25519_scalar: Zeroizing::new(Vec::new()),
                    traditional_public,
                })
            }
        }
    }

    fn x25519(&self) -> Result<PKey<Private>> {
        PKey::private_key_from_raw_bytes(&self.x25519_scalar, Id::X25519).map_err(openssl_error)
    }
}

fn ml_kem_from_seed(kem: HybridKem, seed: &[u8]) -> Result<PKey<Private>> {
    PKey::private_key_from_seed(None, kem.ml_kem().key_type, None, seed)
        .map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID.into())
}

/// An X25519 exchange with a new ephemeral key (or the given scalar): `(ct_X, ss_X)`.
fn x25519_encapsulate(
    peer: &[u8],
    ephemeral: Option<&[u8]>,
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let ephemeral = match ephemeral {
        Some(scalar) => PKey::private_key_from_raw_bytes(scalar, Id::X25519),
        None => PKey::generate_x25519(),
    }
    .map_err(openssl_error)?;
    let peer = PKey::public_key_from_raw_bytes(peer, Id::X25519).map_err(openssl_error)?;
    let ss = ecdh(&ephemeral, &peer, X25519_LEN)?;
    Ok((ephemeral.raw_public_key().map_err(openssl_error)?, ss))
}

/// An ECDH exchange with a new ephemeral key (or the given scalar): `(ephemeral point, x)`.
fn ecdh_encapsulate(
    curve: &Curve,
    peer: &[u8],
    ephemeral: Option<&[u8]>,
) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>)> {
    let group = curve.group()?;
    let ephemeral = match ephemeral {
        None => EcKey::generate(&group).map_err(openssl_error)?,
        Some(scalar) => {
            let d = BigNum::from_slice(scalar).map_err(openssl_error)?;
            let mut ctx = BigNumContext::new().map_err(openssl_error)?;
            let mut q = EcPoint::new(&group).map_err(openssl_error)?;
            q.mul_generator2(&group, &d, &mut ctx)
                .map_err(openssl_error)?;
            let key = EcKey::from_private_components(&group, &d, &q).map_err(openssl_error)?;
            // A scalar of zero or beyond the order is no key.
            key.check_key().map_err(|_| Rv::ARGUMENTS_BAD)?;
            key
        }
    };
    let ct = uncompressed(curve, ephemeral.public_key())?;
    let peer = ec_public_key(curve, peer)?;
    let ephemeral = PKey::from_ec_key(ephemeral).map_err(openssl_error)?;
    Ok((ct, ecdh(&ephemeral, &peer, curve.field_len)?))
}

/// A public key from an uncompressed point, refused when it is compressed, off the curve or the
/// point at infinity (OpenSSL's key check).
fn ec_public_key(curve: &Curve, point: &[u8]) -> Result<PKey<openssl::pkey::Public>> {
    if point.len() != curve.point_len() || point[0] != 0x04 {
        Err(Rv::ATTRIBUTE_VALUE_INVALID)?
    }
    let group = curve.group()?;
    let mut ctx = BigNumContext::new().map_err(openssl_error)?;
    let q = EcPoint::from_bytes(&group, point, &mut ctx).map_err(openssl_error)?;
    let key = EcKey::from_public_key(&group, &q).map_err(openssl_error)?;
    key.check_key().map_err(openssl_error)?;
    PKey::from_ec_key(key).map_err(openssl_error)
}

fn uncompressed(curve: &Curve, point: &openssl::ec::EcPointRef) -> Result<Vec<u8>> {
    let mut ctx = BigNumContext::new().map_err(openssl_error)?;
    let group = curve.group()?;
    point
        .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
        .map_err(openssl_error)
}

/// The raw Diffie-Hellman output (X25519's u, or ECDH's x-coordinate), `len` bytes.
fn ecdh<T: openssl::pkey::HasPublic>(
    own: &PKey<Private>,
    peer: &PKey<T>,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut deriver = Deriver::new(own).map_err(openssl_error)?;
    deriver
        .set_peer(peer)
        .map_err(|_| Rv::WRAPPED_KEY_INVALID)?;
    let mut z = Zeroizing::new(vec![0u8; len]);
    // X25519 refuses an all-zero output (a peer value of small order, RFC 7748 §6.1).
    let n = deriver
        .derive(&mut z)
        .map_err(|_| Rv::WRAPPED_KEY_INVALID)?;
    if n != len {
        Err(Rv::GENERAL_ERROR)?
    }
    Ok(z)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

//! Asymmetric keys: generation, import from PKCS#11 components, PKCS#8 / SPKI encoding, and the
//! public values PKCS#11 exposes as attributes (PKCS#11 3.0 Current Mechanisms §2.1 RSA, §2.3
//! EC, §2.3.5 Edwards curves).
//!
//! Which algorithms exist is not decided here: the key-algorithm table (`crate::key_algorithm`)
//! lists them, and calls the constructors below with its row's values. A curve is named by the
//! DER of its OID (the `CKA_EC_PARAMS` value the row carries) and found in OpenSSL's object
//! table, so a named curve OpenSSL knows needs no code here; what a key is comes back as its
//! [`Family`] and size ([`KeyFacts`]) and, for curves, its OID ([`PublicKey::curve_der`]), by
//! which the table finds its row.

use cryptoki_sys::{
    CKA_COEFFICIENT, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_PRIME_1, CKA_PRIME_2,
    CKA_PRIVATE_EXPONENT, CKA_SEED, CKA_VALUE, CK_ATTRIBUTE_TYPE,
};
use openssl::asn1::Asn1Object;
use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::ec::{EcGroup, EcGroupRef, EcKey, EcPoint, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef};
use openssl::rsa::{Rsa, RsaPrivateKeyBuilder};
use zeroize::Zeroizing;

use crate::crypto::der::{self, OBJECT_IDENTIFIER};
use crate::crypto::hybrid_keys::{self, HybridPrivateKey, HybridPublicKey};
use crate::crypto::openssl_error;
use crate::crypto::pq_keys;
use crate::error::{Result, Rv};

/// The family of a key: how its material is held and which operations take it. A column of the
/// key-algorithm table; the size (and, for curves, the OID) tell the members of a family apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Rsa,
    /// Short Weierstrass curves (ECDSA, ECDH).
    Ec,
    /// Twisted Edwards curves (EdDSA).
    Edwards,
    /// Montgomery curves (X25519, X448: ECDH only; RFC 7748).
    Montgomery,
    /// Secret keys: bytes, no OpenSSL key object (AES, generic secrets).
    Secret,
    /// ML-KEM (FIPS 203): key encapsulation.
    MlKem,
    /// ML-DSA (FIPS 204): signatures.
    MlDsa,
    /// SLH-DSA (FIPS 205): stateless hash-based signatures.
    SlhDsa,
    /// OpenTDF's hybrid KEMs (X-Wing; ML-KEM + ECDH composites): two keys held together in
    /// OpenTDF's encodings (`crate::crypto::hybrid_kem`), not one OpenSSL key.
    Hybrid,
}

impl Family {
    /// ML-KEM, ML-DSA and SLH-DSA: keys OpenSSL holds by algorithm name, whose public key is
    /// one encoded value (`CKA_VALUE`) and whose size PKCS#11 3.2 counts in public key bytes.
    pub const fn is_post_quantum(self) -> bool {
        matches!(self, Family::MlKem | Family::MlDsa | Family::SlhDsa)
    }
}

/// What a key is, as OpenSSL reports it: its family and size in bits (RSA modulus, curve field,
/// secret key length; for post-quantum keys eight times the public key's length in bytes, the
/// unit PKCS#11 3.2 sizes them in). Cheap to compute; the operations check keys with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyFacts {
    pub family: Family,
    pub bits: u32,
}

impl KeyFacts {
    /// The size in bytes: RSA modulus (the signature and ciphertext length), curve field (half
    /// an ECDSA signature, the ECDH secret), secret key length.
    pub fn bytes(self) -> usize {
        (self.bits as usize).div_ceil(8)
    }
}

/// The curves whose keys OpenSSL holds as raw bytes (RFC 8032, RFC 7748): their key type, size
/// as PKCS#11 counts it (`CK_MECHANISM_INFO` gives 255 bits for Ed25519, 448 for Ed448) and
/// length of the private value and of the public key.
struct RawCurve {
    id: Id,
    family: Family,
    bits: u32,
    private_len: usize,
    public_len: usize,
}

const RAW_CURVES: [RawCurve; 4] = [
    RawCurve {
        id: Id::ED25519,
        family: Family::Edwards,
        bits: 255,
        private_len: 32,
        public_len: 32,
    },
    RawCurve {
        id: Id::ED448,
        family: Family::Edwards,
        bits: 448,
        private_len: 57,
        public_len: 57,
    },
    RawCurve {
        id: Id::X25519,
        family: Family::Montgomery,
        bits: 255,
        private_len: 32,
        public_len: 32,
    },
    RawCurve {
        id: Id::X448,
        family: Family::Montgomery,
        bits: 448,
        private_len: 56,
        public_len: 56,
    },
];

fn raw_curve(id: Id) -> Option<&'static RawCurve> {
    RAW_CURVES.iter().find(|c| c.id == id)
}

/// A raw-key curve's private key from its `CKA_VALUE`.
fn raw_private(id: Id, value: &[u8]) -> Result<PrivateKey> {
    let curve = raw_curve(id).ok_or(Rv::GENERAL_ERROR)?;
    if value.len() != curve.private_len {
        Err(Rv::ATTRIBUTE_VALUE_INVALID)?
    }
    let pkey =
        PKey::private_key_from_raw_bytes(value, id).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
    Ok(PrivateKey::from_openssl(pkey))
}

/// The public key bytes of a raw-key curve, given raw or in a DER OCTET STRING (the lengths
/// tell them apart); `None` when neither fits.
fn raw_point(curve: &RawCurve, point: &[u8]) -> Option<Vec<u8>> {
    let raw = if point.len() == curve.public_len {
        point
    } else {
        octet_string(point)?
    };
    (raw.len() == curve.public_len).then(|| raw.to_vec())
}

/// A raw-key curve's public key from its `CKA_EC_POINT`, raw or in a DER OCTET STRING.
fn raw_public(id: Id, point: &[u8]) -> Result<PublicKey> {
    let curve = raw_curve(id).ok_or(Rv::GENERAL_ERROR)?;
    let raw = raw_point(curve, point).ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?;
    let pkey =
        PKey::public_key_from_raw_bytes(&raw, id).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
    Ok(PublicKey::from_openssl(pkey))
}

/// True when `der` is exactly one short-form DER OBJECT IDENTIFIER.
pub fn is_der_oid(der: &[u8]) -> bool {
    matches!(der, [OBJECT_IDENTIFIER, len, rest @ ..] if usize::from(*len) == rest.len() && !rest.is_empty())
}

/// The dotted text of a DER OBJECT IDENTIFIER (`06 08 2a 86 48 ce 3d 03 01 07` →
/// `1.2.840.10045.3.1.7`), the form OpenSSL's object table is searched by.
fn oid_text(der: &[u8]) -> Option<String> {
    if !is_der_oid(der) {
        return None;
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for (i, &byte) in der[2..].iter().enumerate() {
        if value > (u64::MAX >> 7) {
            return None;
        }
        value = value << 7 | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - 40 * first);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i == der.len() - 3 {
            return None;
        }
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// The OpenSSL curve (or Edwards key type) an OID names; `CKR_CURVE_NOT_SUPPORTED` when OpenSSL
/// knows none.
fn nid_of(oid_der: &[u8]) -> Result<Nid> {
    let text = oid_text(oid_der).ok_or(Rv::CURVE_NOT_SUPPORTED)?;
    let object = Asn1Object::from_str(&text).map_err(|_| Rv::CURVE_NOT_SUPPORTED)?;
    match object.nid() {
        Nid::UNDEF => Err(Rv::CURVE_NOT_SUPPORTED)?,
        nid => Ok(nid),
    }
}

/// The DER OID of an OpenSSL object, the inverse of [`nid_of`].
fn oid_der_of(nid: Nid) -> Result<Vec<u8>> {
    let name = nid.short_name().map_err(|_| Rv::CURVE_NOT_SUPPORTED)?;
    let object = Asn1Object::from_str(name).map_err(|_| Rv::CURVE_NOT_SUPPORTED)?;
    let content = object.as_slice();
    Ok(der::tlv(OBJECT_IDENTIFIER, content))
}

fn group(oid_der: &[u8]) -> Result<EcGroup> {
    EcGroup::from_curve_name(nid_of(oid_der)?).map_err(|_| Rv::CURVE_NOT_SUPPORTED.into())
}

fn field_bytes(group: &EcGroupRef) -> usize {
    (group.degree() as usize).div_ceil(8)
}

/// The public values of a key, as PKCS#11 attributes expose them, by the shape they take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicValues {
    /// `CKA_MODULUS`, `CKA_PUBLIC_EXPONENT` (big-endian, no leading zeros), `CKA_MODULUS_BITS`.
    Modulus {
        modulus: Vec<u8>,
        public_exponent: Vec<u8>,
        bits: u32,
    },
    /// `CKA_EC_PARAMS` (the curve's OID DER) and `CKA_EC_POINT` (a DER OCTET STRING of the
    /// uncompressed point for EC, of the encoded point for Edwards curves).
    Point {
        params_der: Vec<u8>,
        point_der: Vec<u8>,
    },
    /// `CKA_VALUE` of a post-quantum public key: its encoding (FIPS 203 ek, FIPS 204 pk,
    /// FIPS 205 PK.seed‖PK.root).
    Encoded { value: Vec<u8> },
}

/// RSA private components as `C_CreateObject` receives them (big-endian). The CRT values are
/// optional in PKCS#11; when absent the key is built from `n`, `e`, `d` alone.
#[derive(Default)]
pub struct RsaPrivateComponents {
    pub modulus: Vec<u8>,
    pub public_exponent: Vec<u8>,
    pub private_exponent: Zeroizing<Vec<u8>>,
    pub prime_1: Option<Zeroizing<Vec<u8>>>,
    pub prime_2: Option<Zeroizing<Vec<u8>>>,
    pub exponent_1: Option<Zeroizing<Vec<u8>>>,
    pub exponent_2: Option<Zeroizing<Vec<u8>>>,
    pub coefficient: Option<Zeroizing<Vec<u8>>>,
}

/// A private key. `Debug` never prints material.
///
/// Most keys are one OpenSSL key; a hybrid KEM key (`crate::crypto::hybrid_keys`) is two
/// keys of different algorithms, held in OpenTDF's encodings. Operations that need an OpenSSL
/// key take it by [`PrivateKey::pkey`], which refuses a hybrid key as the wrong type.
pub struct PrivateKey(PrivateForm);

enum PrivateForm {
    OpenSsl(OpenSslPrivate),
    Hybrid(HybridPrivateKey),
}

/// An OpenSSL private key with what every signature asks of it worked out once, when the key
/// is unsealed: its facts, and for an EC key the `EC_KEY` that ECDSA signs with. Asking the
/// `EVP_PKEY` each time (`EVP_PKEY_get1_EC_KEY`) costs a reference count taken and dropped on
/// the key, shared by every thread that signs with it, plus a thousand instructions.
struct OpenSslPrivate {
    pkey: PKey<openssl::pkey::Private>,
    /// `None` when the key is of a type sqlhsm does not use (asked again, to say why).
    facts: Option<KeyFacts>,
    ec: Option<EcKey<openssl::pkey::Private>>,
}

/// A public key: one OpenSSL key or a hybrid KEM public key, as for [`PrivateKey`].
pub struct PublicKey(PublicForm);

enum PublicForm {
    OpenSsl(PKey<openssl::pkey::Public>),
    Hybrid(HybridPublicKey),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey")
    }
}

impl PrivateKey {
    pub(crate) fn from_openssl(pkey: PKey<openssl::pkey::Private>) -> PrivateKey {
        let facts = facts_of(&pkey).ok();
        let ec = match pkey.id() {
            Id::EC => pkey.ec_key().ok(),
            _ => None,
        };
        PrivateKey(PrivateForm::OpenSsl(OpenSslPrivate { pkey, facts, ec }))
    }

    /// The `EC_KEY` of an EC key, for ECDSA; `CKR_KEY_TYPE_INCONSISTENT` for any other.
    pub(crate) fn ec_key(&self) -> Result<&EcKey<openssl::pkey::Private>> {
        match &self.0 {
            PrivateForm::OpenSsl(OpenSslPrivate { ec: Some(ec), .. }) => Ok(ec),
            _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
        }
    }

    pub(crate) fn from_hybrid(key: HybridPrivateKey) -> PrivateKey {
        PrivateKey(PrivateForm::Hybrid(key))
    }

    /// The OpenSSL key, `None` for a hybrid key.
    pub(crate) fn openssl(&self) -> Option<&PKey<openssl::pkey::Private>> {
        match &self.0 {
            PrivateForm::OpenSsl(key) => Some(&key.pkey),
            PrivateForm::Hybrid(_) => None,
        }
    }

    /// The OpenSSL key an operation runs with; a hybrid key is `CKR_KEY_TYPE_INCONSISTENT`
    /// (no mechanism but the hybrid KEMs takes one, and they ask for [`Self::hybrid`]).
    pub(crate) fn pkey(&self) -> Result<&PKey<openssl::pkey::Private>> {
        self.openssl()
            .ok_or_else(|| Rv::KEY_TYPE_INCONSISTENT.into())
    }

    pub(crate) fn hybrid(&self) -> Option<&HybridPrivateKey> {
        match &self.0 {
            PrivateForm::Hybrid(key) => Some(key),
            PrivateForm::OpenSsl(_) => None,
        }
    }
}

impl PublicKey {
    pub(crate) fn from_openssl(pkey: PKey<openssl::pkey::Public>) -> PublicKey {
        PublicKey(PublicForm::OpenSsl(pkey))
    }

    pub(crate) fn from_hybrid(key: HybridPublicKey) -> PublicKey {
        PublicKey(PublicForm::Hybrid(key))
    }

    /// The OpenSSL key, `None` for a hybrid key.
    pub(crate) fn openssl(&self) -> Option<&PKey<openssl::pkey::Public>> {
        match &self.0 {
            PublicForm::OpenSsl(pkey) => Some(pkey),
            PublicForm::Hybrid(_) => None,
        }
    }

    /// As [`PrivateKey::pkey`].
    pub(crate) fn pkey(&self) -> Result<&PKey<openssl::pkey::Public>> {
        self.openssl()
            .ok_or_else(|| Rv::KEY_TYPE_INCONSISTENT.into())
    }

    pub(crate) fn hybrid(&self) -> Option<&HybridPublicKey> {
        match &self.0 {
            PublicForm::Hybrid(key) => Some(key),
            PublicForm::OpenSsl(_) => None,
        }
    }
}

/// Smallest and largest RSA modulus this module will create or import.
pub const RSA_MIN_BITS: u32 = 1024;
pub const RSA_MAX_BITS: u32 = 16384;

impl PrivateKey {
    /// RSA with `bits` (1024..=16384; the registry advertises 2048.. for generation) and the
    /// given big-endian public exponent (default 65537 when empty). `CKR_KEY_SIZE_RANGE` outside
    /// the range, `CKR_ATTRIBUTE_VALUE_INVALID` for an even or tiny exponent.
    pub fn generate_rsa(bits: u32, public_exponent: &[u8]) -> Result<PrivateKey> {
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            Err(Rv::KEY_SIZE_RANGE)?
        }
        let e = if public_exponent.iter().all(|&b| b == 0) {
            if !public_exponent.is_empty() {
                Err(Rv::ATTRIBUTE_VALUE_INVALID)?
            }
            BigNum::from_u32(65537)
        } else {
            BigNum::from_slice(public_exponent)
        }
        .map_err(openssl_error)?;
        if !e.is_bit_set(0) || e.num_bits() < 2 || e.num_bits() > 64 {
            Err(Rv::ATTRIBUTE_VALUE_INVALID)?
        }
        let rsa = Rsa::generate_with_e(bits, &e).map_err(openssl_error)?;
        Ok(PrivateKey::from_openssl(
            PKey::from_rsa(rsa).map_err(openssl_error)?,
        ))
    }

    /// A key on the named curve whose OID DER (`CKA_EC_PARAMS`) is `curve`.
    pub fn generate_ec(curve: &[u8]) -> Result<PrivateKey> {
        let group = group(curve)?;
        let key = EcKey::generate(&group).map_err(openssl_error)?;
        Ok(PrivateKey::from_openssl(
            PKey::from_ec_key(key).map_err(openssl_error)?,
        ))
    }

    pub fn generate_ed25519() -> Result<PrivateKey> {
        Ok(PrivateKey::from_openssl(
            PKey::generate_ed25519().map_err(openssl_error)?,
        ))
    }

    pub fn generate_ed448() -> Result<PrivateKey> {
        Ok(PrivateKey::from_openssl(
            PKey::generate_ed448().map_err(openssl_error)?,
        ))
    }

    pub fn generate_x25519() -> Result<PrivateKey> {
        Ok(PrivateKey::from_openssl(
            PKey::generate_x25519().map_err(openssl_error)?,
        ))
    }

    pub fn generate_x448() -> Result<PrivateKey> {
        Ok(PrivateKey::from_openssl(
            PKey::generate_x448().map_err(openssl_error)?,
        ))
    }

    /// `CKR_WRAPPED_KEY_INVALID`-free: a parse failure is `Error::Storage(Corrupt)`-worthy for
    /// the caller; here it returns `Rv::DATA_INVALID`. Key types sqlhsm cannot use are refused
    /// the same way.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey> {
        if let Some(hybrid) = PrivateKey::hybrid_from_pkcs8_der(der) {
            return hybrid;
        }
        let pkey = PKey::private_key_from_pkcs8(der).map_err(|_| Rv::DATA_INVALID)?;
        let key = PrivateKey::from_openssl(pkey);
        key.facts().map_err(|_| Rv::DATA_INVALID)?;
        Ok(key)
    }

    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        if let Some(hybrid) = self.hybrid() {
            return Ok(hybrid.to_pkcs8_der());
        }
        if let Some(der) = self.pq_pkcs8()? {
            return Ok(der);
        }
        Ok(Zeroizing::new(
            self.pkey()?.private_key_to_pkcs8().map_err(openssl_error)?,
        ))
    }

    /// `CKR_ATTRIBUTE_VALUE_INVALID` when the components do not form a valid key. Missing CRT
    /// values are computed when both primes are present.
    pub fn from_rsa_components(c: &RsaPrivateComponents) -> Result<PrivateKey> {
        let invalid = |_| Rv::ATTRIBUTE_VALUE_INVALID;
        let n = BigNum::from_slice(&c.modulus).map_err(invalid)?;
        let e = BigNum::from_slice(&c.public_exponent).map_err(invalid)?;
        let d = BigNum::from_slice(&c.private_exponent).map_err(invalid)?;
        if !(RSA_MIN_BITS as i32..=RSA_MAX_BITS as i32).contains(&n.num_bits()) {
            Err(Rv::KEY_SIZE_RANGE)?
        }
        let rsa = match (&c.prime_1, &c.prime_2) {
            (Some(p), Some(q)) => {
                let p = BigNum::from_slice(p).map_err(invalid)?;
                let q = BigNum::from_slice(q).map_err(invalid)?;
                let mut ctx = BigNumContext::new_secure().map_err(openssl_error)?;
                let one = BigNum::from_u32(1).map_err(openssl_error)?;
                let mut p1 = BigNum::new().map_err(openssl_error)?;
                p1.checked_sub(&p, &one).map_err(openssl_error)?;
                let mut q1 = BigNum::new().map_err(openssl_error)?;
                q1.checked_sub(&q, &one).map_err(openssl_error)?;
                let dmp1 = given_or(&c.exponent_1, |x| x.nnmod(&d, &p1, &mut ctx))?;
                let dmq1 = given_or(&c.exponent_2, |x| x.nnmod(&d, &q1, &mut ctx))?;
                let iqmp = given_or(&c.coefficient, |x| x.mod_inverse(&q, &p, &mut ctx))?;
                let rsa = Rsa::from_private_components(n, e, d, p, q, dmp1, dmq1, iqmp)
                    .map_err(invalid)?;
                if !rsa.check_key().unwrap_or(false) {
                    Err(Rv::ATTRIBUTE_VALUE_INVALID)?
                }
                rsa
            }
            _ => {
                let e_copy = e.to_owned().map_err(openssl_error)?;
                let n_copy = n.to_owned().map_err(openssl_error)?;
                let d_copy = d.to_owned().map_err(openssl_error)?;
                let rsa = RsaPrivateKeyBuilder::new(n, e, d).map_err(invalid)?.build();
                // Without primes OpenSSL cannot check the key; one round trip m^(e·d) = m does.
                let mut ctx = BigNumContext::new().map_err(openssl_error)?;
                let m = BigNum::from_u32(2).map_err(openssl_error)?;
                let mut c1 = BigNum::new().map_err(openssl_error)?;
                let mut m2 = BigNum::new().map_err(openssl_error)?;
                c1.mod_exp(&m, &e_copy, &n_copy, &mut ctx)
                    .map_err(openssl_error)?;
                m2.mod_exp(&c1, &d_copy, &n_copy, &mut ctx)
                    .map_err(openssl_error)?;
                if m2 != m {
                    Err(Rv::ATTRIBUTE_VALUE_INVALID)?
                }
                rsa
            }
        };
        Ok(PrivateKey::from_openssl(
            PKey::from_rsa(rsa).map_err(openssl_error)?,
        ))
    }

    /// The curve's OID DER (`CKA_EC_PARAMS`) + `CKA_VALUE` (the private scalar, big-endian).
    pub fn from_ec_components(curve: &[u8], private_value: &[u8]) -> Result<PrivateKey> {
        let group = group(curve)?;
        let invalid = |_| Rv::ATTRIBUTE_VALUE_INVALID;
        if private_value.is_empty() || private_value.len() > field_bytes(&group) {
            Err(Rv::ATTRIBUTE_VALUE_INVALID)?
        }
        let d = BigNum::from_slice(private_value).map_err(invalid)?;
        let mut ctx = BigNumContext::new().map_err(openssl_error)?;
        let mut point = EcPoint::new(&group).map_err(openssl_error)?;
        point
            .mul_generator2(&group, &d, &mut ctx)
            .map_err(openssl_error)?;
        let key = EcKey::from_private_components(&group, &d, &point).map_err(invalid)?;
        key.check_key().map_err(invalid)?;
        Ok(PrivateKey::from_openssl(
            PKey::from_ec_key(key).map_err(openssl_error)?,
        ))
    }

    /// Ed25519 from its 32-byte private seed (`CKA_VALUE`).
    pub fn from_ed25519_seed(seed: &[u8]) -> Result<PrivateKey> {
        raw_private(Id::ED25519, seed)
    }

    /// Ed448 from its 57-byte private seed (`CKA_VALUE`).
    pub fn from_ed448_seed(seed: &[u8]) -> Result<PrivateKey> {
        raw_private(Id::ED448, seed)
    }

    /// X25519 from its 32-byte private scalar (`CKA_VALUE`, RFC 7748 little-endian).
    pub fn from_x25519_value(value: &[u8]) -> Result<PrivateKey> {
        raw_private(Id::X25519, value)
    }

    /// X448 from its 56-byte private scalar (`CKA_VALUE`).
    pub fn from_x448_value(value: &[u8]) -> Result<PrivateKey> {
        raw_private(Id::X448, value)
    }

    pub fn public_key(&self) -> Result<PublicKey> {
        let pkey = match &self.0 {
            PrivateForm::OpenSsl(key) => &key.pkey,
            PrivateForm::Hybrid(key) => return Ok(PublicKey::from_hybrid(key.public_key())),
        };
        let der = pkey.public_key_to_der().map_err(openssl_error)?;
        Ok(PublicKey::from_openssl(
            PKey::public_key_from_der(&der).map_err(openssl_error)?,
        ))
    }

    pub fn public_values(&self) -> Result<PublicValues> {
        match &self.0 {
            PrivateForm::OpenSsl(key) => public_values_of(&key.pkey),
            PrivateForm::Hybrid(key) => Ok(hybrid_values(&key.public_key())),
        }
    }

    /// The key's family and size; `CKR_KEY_TYPE_INCONSISTENT` for types sqlhsm does not use.
    pub fn facts(&self) -> Result<KeyFacts> {
        match &self.0 {
            PrivateForm::OpenSsl(OpenSslPrivate {
                facts: Some(facts), ..
            }) => Ok(*facts),
            PrivateForm::OpenSsl(key) => facts_of(&key.pkey),
            PrivateForm::Hybrid(key) => Ok(hybrid_keys::facts(key.kem)),
        }
    }

    /// The OID DER of the key's curve (its `CKA_EC_PARAMS`); `None` for RSA and hybrid keys.
    pub fn curve_der(&self) -> Result<Option<Vec<u8>>> {
        self.openssl().map_or(Ok(None), |pkey| curve_der_of(pkey))
    }

    /// A point on the same curve as this key (an ECDH peer's), raw or in a DER OCTET STRING.
    pub fn peer_point(&self, point: &[u8]) -> Result<PublicKey> {
        peer_point_of(self.pkey()?, point)
    }

    /// RSA private components for the (rare) case a token exports an extractable,
    /// non-sensitive private key: `CKA_PRIVATE_EXPONENT`, primes, etc. by attribute type.
    /// EC and Ed25519 answer `CKA_VALUE`; post-quantum keys `CKA_VALUE` (the expanded key) and
    /// `CKA_SEED`. Returns `None` for attributes that do not apply (or a seed the key lacks).
    pub fn private_component(
        &self,
        attribute: CK_ATTRIBUTE_TYPE,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let secret = |bn: Option<&BigNumRef>| bn.map(|bn| Zeroizing::new(bn.to_vec()));
        match self.facts()?.family {
            Family::Rsa => {
                let rsa = self.pkey()?.rsa().map_err(openssl_error)?;
                Ok(match attribute {
                    CKA_PRIVATE_EXPONENT => secret(Some(rsa.d())),
                    CKA_PRIME_1 => secret(rsa.p()),
                    CKA_PRIME_2 => secret(rsa.q()),
                    CKA_EXPONENT_1 => secret(rsa.dmp1()),
                    CKA_EXPONENT_2 => secret(rsa.dmq1()),
                    CKA_COEFFICIENT => secret(rsa.iqmp()),
                    _ => None,
                })
            }
            Family::Ec if attribute == CKA_VALUE => {
                let ec = self.pkey()?.ec_key().map_err(openssl_error)?;
                let value = ec
                    .private_key()
                    .to_vec_padded(field_bytes(ec.group()) as i32);
                Ok(Some(Zeroizing::new(value.map_err(openssl_error)?)))
            }
            Family::Edwards | Family::Montgomery if attribute == CKA_VALUE => Ok(Some(
                Zeroizing::new(self.pkey()?.raw_private_key().map_err(openssl_error)?),
            )),
            Family::Hybrid if attribute == CKA_VALUE => Ok(self
                .hybrid()
                .map(|key| Zeroizing::new(key.pair.private.to_vec()))),
            family if family.is_post_quantum() => match attribute {
                CKA_VALUE => self.pq_expanded(),
                CKA_SEED => self.pq_seed(),
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }
}

impl PublicKey {
    pub fn from_spki_pem(pem: &str) -> Result<PublicKey> {
        let hybrid =
            hybrid_keys::spki_der_of_pem(pem).and_then(|der| PublicKey::hybrid_from_spki_der(&der));
        if let Some(hybrid) = hybrid {
            return hybrid;
        }
        let pkey = PKey::public_key_from_pem(pem.as_bytes()).map_err(|_| Rv::DATA_INVALID)?;
        Ok(PublicKey::from_openssl(pkey))
    }

    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey> {
        if let Some(hybrid) = PublicKey::hybrid_from_spki_der(der) {
            return hybrid;
        }
        let pkey = PKey::public_key_from_der(der).map_err(|_| Rv::DATA_INVALID)?;
        Ok(PublicKey::from_openssl(pkey))
    }

    pub fn to_spki_pem(&self) -> Result<String> {
        let pkey = match &self.0 {
            PublicForm::OpenSsl(pkey) => pkey,
            PublicForm::Hybrid(key) => return Ok(hybrid_keys::spki_pem(&key.to_spki_der())),
        };
        let pem = pkey.public_key_to_pem().map_err(openssl_error)?;
        String::from_utf8(pem).map_err(|e| crate::error::Error::Crypto(e.to_string().into()))
    }

    pub fn to_spki_der(&self) -> Result<Vec<u8>> {
        match &self.0 {
            PublicForm::OpenSsl(pkey) => pkey.public_key_to_der().map_err(openssl_error),
            PublicForm::Hybrid(key) => Ok(key.to_spki_der()),
        }
    }

    /// `CKR_ATTRIBUTE_VALUE_INVALID` for an even exponent or a modulus out of range.
    pub fn from_rsa_components(modulus: &[u8], public_exponent: &[u8]) -> Result<PublicKey> {
        let invalid = |_| Rv::ATTRIBUTE_VALUE_INVALID;
        let n = BigNum::from_slice(modulus).map_err(invalid)?;
        let e = BigNum::from_slice(public_exponent).map_err(invalid)?;
        if !(RSA_MIN_BITS as i32..=RSA_MAX_BITS as i32).contains(&n.num_bits()) {
            Err(Rv::KEY_SIZE_RANGE)?
        }
        if !e.is_bit_set(0) || e.num_bits() < 2 || !n.is_bit_set(0) {
            Err(Rv::ATTRIBUTE_VALUE_INVALID)?
        }
        let rsa = Rsa::from_public_components(n, e).map_err(invalid)?;
        Ok(PublicKey::from_openssl(
            PKey::from_rsa(rsa).map_err(openssl_error)?,
        ))
    }

    /// `CKA_EC_POINT` on Ed25519: the 32 bytes, raw or in a DER OCTET STRING.
    pub fn from_ed25519_point(point: &[u8]) -> Result<PublicKey> {
        raw_public(Id::ED25519, point)
    }

    /// `CKA_EC_POINT` on Ed448: the 57 bytes, raw or in a DER OCTET STRING.
    pub fn from_ed448_point(point: &[u8]) -> Result<PublicKey> {
        raw_public(Id::ED448, point)
    }

    /// `CKA_EC_POINT` on X25519: the 32 bytes (RFC 7748), raw or in a DER OCTET STRING.
    pub fn from_x25519_point(point: &[u8]) -> Result<PublicKey> {
        raw_public(Id::X25519, point)
    }

    /// `CKA_EC_POINT` on X448: the 56 bytes, raw or in a DER OCTET STRING.
    pub fn from_x448_point(point: &[u8]) -> Result<PublicKey> {
        raw_public(Id::X448, point)
    }

    /// The curve's OID DER (`CKA_EC_PARAMS`) + `CKA_EC_POINT`; the point may be a DER OCTET
    /// STRING or raw.
    pub fn from_ec_point(curve: &[u8], point: &[u8]) -> Result<PublicKey> {
        let group = group(curve)?;
        Self::from_point_on(&group, point)
    }

    /// A point on `group`, raw or in a DER OCTET STRING.
    fn from_point_on(group: &EcGroupRef, point: &[u8]) -> Result<PublicKey> {
        let uncompressed_len = 2 * field_bytes(group) + 1;
        // A raw uncompressed point also starts with 0x04, the OCTET STRING tag; its exact length
        // tells the two apart (the wrapped form is always longer).
        let raw = if point.len() == uncompressed_len && point[0] == 0x04 {
            point
        } else {
            octet_string(point).unwrap_or(point)
        };
        let mut ctx = BigNumContext::new().map_err(openssl_error)?;
        let invalid = |_| Rv::ATTRIBUTE_VALUE_INVALID;
        let pt = EcPoint::from_bytes(group, raw, &mut ctx).map_err(invalid)?;
        let key = EcKey::from_public_key(group, &pt).map_err(invalid)?;
        key.check_key().map_err(invalid)?;
        Ok(PublicKey::from_openssl(
            PKey::from_ec_key(key).map_err(openssl_error)?,
        ))
    }

    /// A point on the same curve as this key (the peer of an ECDH), raw or in a DER OCTET
    /// STRING.
    pub fn peer_point(&self, point: &[u8]) -> Result<PublicKey> {
        peer_point_of(self.pkey()?, point)
    }

    pub fn public_values(&self) -> Result<PublicValues> {
        match &self.0 {
            PublicForm::OpenSsl(pkey) => public_values_of(pkey),
            PublicForm::Hybrid(key) => Ok(hybrid_values(key)),
        }
    }

    /// The key's family and size; `CKR_KEY_TYPE_INCONSISTENT` for types sqlhsm does not use.
    pub fn facts(&self) -> Result<KeyFacts> {
        match &self.0 {
            PublicForm::OpenSsl(pkey) => facts_of(pkey),
            PublicForm::Hybrid(key) => Ok(hybrid_keys::facts(key.kem)),
        }
    }

    /// The OID DER of the key's curve (its `CKA_EC_PARAMS`); `None` for RSA and hybrid keys.
    pub fn curve_der(&self) -> Result<Option<Vec<u8>>> {
        self.openssl().map_or(Ok(None), |pkey| curve_der_of(pkey))
    }
}

/// A hybrid public key's `CKA_VALUE`: OpenTDF's raw public key.
fn hybrid_values(key: &HybridPublicKey) -> PublicValues {
    PublicValues::Encoded {
        value: key.public.clone(),
    }
}

/// A CRT value from the template, or computed by `compute` when the template left it out.
fn given_or(
    given: &Option<Zeroizing<Vec<u8>>>,
    compute: impl FnOnce(&mut BigNum) -> std::result::Result<(), openssl::error::ErrorStack>,
) -> Result<BigNum> {
    match given {
        Some(v) => Ok(BigNum::from_slice(v).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?),
        None => {
            let mut out = BigNum::new_secure().map_err(openssl_error)?;
            compute(&mut out).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
            Ok(out)
        }
    }
}

fn peer_point_of<T: HasPublic>(pkey: &PKeyRef<T>, point: &[u8]) -> Result<PublicKey> {
    if let Some(curve) = raw_curve(pkey.id()).filter(|c| c.family == Family::Montgomery) {
        return raw_public(curve.id, point);
    }
    let ec = pkey.ec_key().map_err(|_| Rv::KEY_TYPE_INCONSISTENT)?;
    PublicKey::from_point_on(ec.group(), point)
}

fn facts_of<T: HasPublic>(pkey: &PKeyRef<T>) -> Result<KeyFacts> {
    let (family, bits) = match pkey.id() {
        Id::RSA => (Family::Rsa, pkey.bits()),
        Id::EC => {
            let ec = pkey.ec_key().map_err(openssl_error)?;
            // Only named curves: explicit parameters have no OID to find a row by.
            ec.group().curve_name().ok_or(Rv::CURVE_NOT_SUPPORTED)?;
            (Family::Ec, ec.group().degree())
        }
        id => match (raw_curve(id), pq_keys::of_key(pkey)) {
            (Some(curve), _) => (curve.family, curve.bits),
            (None, Some(pq)) => (pq.family, 8 * pq.public_len as u32),
            (None, None) => Err(Rv::KEY_TYPE_INCONSISTENT)?,
        },
    };
    Ok(KeyFacts { family, bits })
}

fn curve_der_of<T: HasPublic>(pkey: &PKeyRef<T>) -> Result<Option<Vec<u8>>> {
    let nid = match pkey.id() {
        Id::RSA => return Ok(None),
        Id::EC => {
            let ec = pkey.ec_key().map_err(openssl_error)?;
            ec.group().curve_name().ok_or(Rv::CURVE_NOT_SUPPORTED)?
        }
        id => match raw_curve(id) {
            Some(curve) => Nid::from_raw(curve.id.as_raw()),
            None if pq_keys::of_key(pkey).is_some() => return Ok(None),
            None => Err(Rv::KEY_TYPE_INCONSISTENT)?,
        },
    };
    Ok(Some(oid_der_of(nid)?))
}

fn public_values_of<T: HasPublic>(pkey: &PKeyRef<T>) -> Result<PublicValues> {
    let facts = facts_of(pkey)?;
    let point = match facts.family {
        Family::Rsa => {
            let rsa = pkey.rsa().map_err(openssl_error)?;
            return Ok(PublicValues::Modulus {
                modulus: rsa.n().to_vec(),
                public_exponent: rsa.e().to_vec(),
                bits: facts.bits,
            });
        }
        Family::Ec => {
            let ec = pkey.ec_key().map_err(openssl_error)?;
            let mut ctx = BigNumContext::new().map_err(openssl_error)?;
            ec.public_key()
                .to_bytes(ec.group(), PointConversionForm::UNCOMPRESSED, &mut ctx)
                .map_err(openssl_error)?
        }
        Family::Edwards | Family::Montgomery => pkey.raw_public_key().map_err(openssl_error)?,
        Family::MlKem | Family::MlDsa | Family::SlhDsa => {
            return Ok(PublicValues::Encoded {
                value: pq_keys::public_value(pkey)?,
            })
        }
        Family::Secret | Family::Hybrid => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    };
    Ok(PublicValues::Point {
        params_der: curve_der_of(pkey)?.unwrap_or_default(),
        point_der: der_octet_string(&point),
    })
}

/// DER OCTET STRING around `content` (definite length, short or long form).
pub(crate) fn der_octet_string(content: &[u8]) -> Vec<u8> {
    der::tlv(der::OCTET_STRING, content)
}

fn octet_string(der: &[u8]) -> Option<&[u8]> {
    der::content(der, der::OCTET_STRING)
}

/// The text of a DER PrintableString that spans exactly `der` (`CKA_EC_PARAMS` may name a
/// curve so).
pub fn printable_string(der: &[u8]) -> Option<&str> {
    std::str::from_utf8(der::content(der, der::PRINTABLE_STRING)?).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn rsa_2048() -> &'static PrivateKey {
        static KEY: OnceLock<std::sync::Arc<PrivateKey>> = OnceLock::new();
        KEY.get_or_init(crate::crypto::test_keys::rsa_2048)
    }

    #[test]
    fn curves_by_oid() {
        use crate::crypto::test_keys::{CURVES, ED25519_OID};
        for (curve, bits) in CURVES.into_iter().zip([256, 384, 521]) {
            let key = PrivateKey::generate_ec(curve).unwrap();
            assert_eq!(key.curve_der().unwrap().as_deref(), Some(curve));
            assert_eq!(key.facts().unwrap().bits, bits);
        }
        let ed = PrivateKey::generate_ed25519().unwrap();
        assert_eq!(ed.curve_der().unwrap().as_deref(), Some(ED25519_OID));
        assert_eq!(oid_text(CURVES[0]).as_deref(), Some("1.2.840.10045.3.1.7"));
        // Ed25519's OID names no Weierstrass curve; an unknown or malformed OID no curve at all.
        for bad in [
            ED25519_OID,
            &[0x06, 0x03, 0x2a, 0x03, 0x04][..],
            &[],
            &[0x06, 0x01, 0x81],
        ] {
            let err = PrivateKey::generate_ec(bad).unwrap_err();
            assert_eq!(err.rv(), Rv::CURVE_NOT_SUPPORTED);
        }
        assert!(rsa_2048().curve_der().unwrap().is_none());
    }

    #[test]
    fn rsa_generation_and_info() {
        let key = rsa_2048();
        let PublicValues::Modulus {
            modulus,
            public_exponent,
            bits,
        } = key.public_values().unwrap()
        else {
            panic!("not RSA")
        };
        assert_eq!(bits, 2048);
        assert_eq!(modulus.len(), 256);
        assert_eq!(public_exponent, vec![1, 0, 1]);
        assert_eq!(
            key.facts().unwrap(),
            KeyFacts {
                family: Family::Rsa,
                bits: 2048
            }
        );
        assert_eq!(key.facts().unwrap().bytes(), 256);
        assert_eq!(
            key.public_key().unwrap().public_values().unwrap(),
            key.public_values().unwrap()
        );
        assert_eq!(
            PrivateKey::generate_rsa(512, &[]).unwrap_err().rv(),
            Rv::KEY_SIZE_RANGE
        );
        assert_eq!(
            PrivateKey::generate_rsa(16385, &[]).unwrap_err().rv(),
            Rv::KEY_SIZE_RANGE
        );
        assert_eq!(
            PrivateKey::generate_rsa(2048, &[4]).unwrap_err().rv(),
            Rv::ATTRIBUTE_VALUE_INVALID
        );
    }

    #[test]
    fn rsa_small_key_with_exponent_3() {
        let key = PrivateKey::generate_rsa(1024, &[3]).unwrap();
        let PublicValues::Modulus {
            public_exponent,
            bits,
            ..
        } = key.public_values().unwrap()
        else {
            panic!("not RSA")
        };
        assert_eq!((public_exponent, bits), (vec![3], 1024));
    }

    #[test]
    fn ec_generation_and_info() {
        for (curve, field) in crate::crypto::test_keys::CURVES
            .into_iter()
            .zip([32, 48, 66])
        {
            let key = PrivateKey::generate_ec(curve).unwrap();
            let facts = key.facts().unwrap();
            assert_eq!(facts.family, Family::Ec);
            assert_eq!(facts.bytes(), field);
            let PublicValues::Point {
                params_der,
                point_der,
            } = key.public_values().unwrap()
            else {
                panic!("not EC")
            };
            assert_eq!(params_der, curve);
            let point = octet_string(&point_der).unwrap();
            assert_eq!(point.len(), 2 * field + 1);
            assert_eq!(point[0], 4);
            // Import from components reproduces the public values.
            let value = key.private_component(CKA_VALUE).unwrap().unwrap();
            assert_eq!(value.len(), field);
            let again = PrivateKey::from_ec_components(&params_der, &value).unwrap();
            assert_eq!(again.public_values().unwrap(), key.public_values().unwrap());
            // Public import, wrapped and raw point.
            for p in [&point_der[..], point] {
                let public = PublicKey::from_ec_point(&params_der, p).unwrap();
                assert_eq!(
                    public.public_values().unwrap(),
                    key.public_values().unwrap()
                );
                let peer = public.peer_point(p).unwrap();
                assert_eq!(peer.public_values().unwrap(), key.public_values().unwrap());
            }
            assert!(key.private_component(CKA_PRIME_1).unwrap().is_none());
        }
    }

    #[test]
    fn ed25519_generation_and_info() {
        let key = PrivateKey::generate_ed25519().unwrap();
        assert_eq!(
            key.facts().unwrap(),
            KeyFacts {
                family: Family::Edwards,
                bits: 255
            }
        );
        let PublicValues::Point {
            params_der,
            point_der,
        } = key.public_values().unwrap()
        else {
            panic!("not Ed25519")
        };
        assert_eq!(params_der, crate::crypto::test_keys::ED25519_OID);
        assert_eq!(point_der.len(), 34);
        assert_eq!(&point_der[..2], &[0x04, 0x20]);
        let seed = key.private_component(CKA_VALUE).unwrap().unwrap();
        let again = PrivateKey::from_ed25519_seed(&seed).unwrap();
        assert_eq!(again.public_values().unwrap(), key.public_values().unwrap());
        for p in [&point_der[..], &point_der[2..]] {
            let public = PublicKey::from_ed25519_point(p).unwrap();
            assert_eq!(
                public.public_values().unwrap(),
                key.public_values().unwrap()
            );
        }
        assert!(PublicKey::from_ed25519_point(&point_der[3..]).is_err());
        assert!(PrivateKey::from_ed25519_seed(&[1u8; 31]).is_err());
    }

    #[test]
    fn pkcs8_round_trip() {
        let keys = [
            PrivateKey::generate_ec(crate::crypto::test_keys::CURVES[0]).unwrap(),
            PrivateKey::generate_ed25519().unwrap(),
        ];
        let rsa_der = rsa_2048().to_pkcs8_der().unwrap();
        let rsa = PrivateKey::from_pkcs8_der(&rsa_der).unwrap();
        assert_eq!(
            rsa.public_values().unwrap(),
            rsa_2048().public_values().unwrap()
        );
        for key in &keys {
            let der = key.to_pkcs8_der().unwrap();
            let again = PrivateKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(again.public_values().unwrap(), key.public_values().unwrap());
        }
        assert_eq!(
            PrivateKey::from_pkcs8_der(b"junk").unwrap_err().rv(),
            Rv::DATA_INVALID
        );
    }

    #[test]
    fn spki_round_trip() {
        let public = rsa_2048().public_key().unwrap();
        let pem = public.to_spki_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
        let again = PublicKey::from_spki_pem(&pem).unwrap();
        assert_eq!(
            again.public_values().unwrap(),
            public.public_values().unwrap()
        );
        let der = public.to_spki_der().unwrap();
        assert_eq!(
            PublicKey::from_spki_der(&der)
                .unwrap()
                .to_spki_der()
                .unwrap(),
            der
        );
    }

    #[test]
    fn rsa_import_from_components() {
        let key = rsa_2048();
        let part = |a| key.private_component(a).unwrap().unwrap();
        let PublicValues::Modulus {
            modulus,
            public_exponent,
            ..
        } = key.public_values().unwrap()
        else {
            panic!("not RSA")
        };
        let full = RsaPrivateComponents {
            modulus: modulus.clone(),
            public_exponent: public_exponent.clone(),
            private_exponent: part(CKA_PRIVATE_EXPONENT),
            prime_1: Some(part(CKA_PRIME_1)),
            prime_2: Some(part(CKA_PRIME_2)),
            exponent_1: Some(part(CKA_EXPONENT_1)),
            exponent_2: Some(part(CKA_EXPONENT_2)),
            coefficient: Some(part(CKA_COEFFICIENT)),
        };
        let imported = PrivateKey::from_rsa_components(&full).unwrap();
        assert_eq!(
            imported.public_values().unwrap(),
            key.public_values().unwrap()
        );

        // Primes only: CRT values are computed and equal the generated ones.
        let primes_only = RsaPrivateComponents {
            exponent_1: None,
            exponent_2: None,
            coefficient: None,
            ..RsaPrivateComponents {
                modulus: modulus.clone(),
                public_exponent: public_exponent.clone(),
                private_exponent: part(CKA_PRIVATE_EXPONENT),
                prime_1: Some(part(CKA_PRIME_1)),
                prime_2: Some(part(CKA_PRIME_2)),
                ..Default::default()
            }
        };
        let imported = PrivateKey::from_rsa_components(&primes_only).unwrap();
        for a in [CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_COEFFICIENT] {
            assert_eq!(imported.private_component(a).unwrap(), Some(part(a)));
        }

        // n, e, d alone.
        let minimal = RsaPrivateComponents {
            modulus: modulus.clone(),
            public_exponent: public_exponent.clone(),
            private_exponent: part(CKA_PRIVATE_EXPONENT),
            ..Default::default()
        };
        let imported = PrivateKey::from_rsa_components(&minimal).unwrap();
        assert_eq!(
            imported.public_values().unwrap(),
            key.public_values().unwrap()
        );

        // A wrong private exponent is refused.
        let mut d = part(CKA_PRIVATE_EXPONENT).to_vec();
        d[10] ^= 1;
        let bad = RsaPrivateComponents {
            modulus: modulus.clone(),
            public_exponent: public_exponent.clone(),
            private_exponent: Zeroizing::new(d),
            ..Default::default()
        };
        assert_eq!(
            PrivateKey::from_rsa_components(&bad).unwrap_err().rv(),
            Rv::ATTRIBUTE_VALUE_INVALID
        );

        let public = PublicKey::from_rsa_components(&modulus, &public_exponent).unwrap();
        assert_eq!(
            public.public_values().unwrap(),
            key.public_values().unwrap()
        );
    }

    #[test]
    fn der_lengths() {
        let long = vec![0u8; 133];
        let der = der_octet_string(&long);
        assert_eq!(&der[..3], &[0x04, 0x81, 133]);
        assert_eq!(octet_string(&der).unwrap(), &long[..]);
        let longer = vec![0u8; 300];
        assert_eq!(octet_string(&der_octet_string(&longer)).unwrap().len(), 300);
        assert!(octet_string(&der[..der.len() - 1]).is_none());
    }
}

//! Asymmetric keys: generation, import from PKCS#11 components, PKCS#8 / SPKI encoding, and the
//! public values PKCS#11 exposes as attributes (PKCS#11 3.0 Current Mechanisms §2.1 RSA, §2.3
//! EC, §2.3.5 Edwards curves).

use cryptoki_sys::{
    CKA_COEFFICIENT, CKA_EXPONENT_1, CKA_EXPONENT_2, CKA_PRIME_1, CKA_PRIME_2,
    CKA_PRIVATE_EXPONENT, CKA_VALUE, CK_ATTRIBUTE_TYPE,
};
use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef};
use openssl::rsa::{Rsa, RsaPrivateKeyBuilder};
use zeroize::Zeroizing;

use crate::crypto::{der, openssl_error};
use crate::error::{Result, Rv};

/// Named curves sqlhsm supports for ECDSA / ECDH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
    P521,
}

const P256_OID_DER: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_OID_DER: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521_OID_DER: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];

impl Curve {
    /// DER of the namedCurve OID, the form `CKA_EC_PARAMS` uses.
    pub fn params_der(self) -> &'static [u8] {
        match self {
            Curve::P256 => P256_OID_DER,
            Curve::P384 => P384_OID_DER,
            Curve::P521 => P521_OID_DER,
        }
    }

    /// Parse `CKA_EC_PARAMS`: a DER OID, or a DER PrintableString with the curve name
    /// ("prime256v1", "secp384r1", …) as PKCS#11 3.0 allows. `CKR_CURVE_NOT_SUPPORTED` otherwise.
    pub fn from_params_der(der: &[u8]) -> Result<Curve> {
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            if der == curve.params_der() {
                return Ok(curve);
            }
        }
        match printable_string(der) {
            Some("prime256v1" | "secp256r1" | "P-256") => Ok(Curve::P256),
            Some("secp384r1" | "P-384") => Ok(Curve::P384),
            Some("secp521r1" | "P-521") => Ok(Curve::P521),
            Some(_) => Err(Rv::CURVE_NOT_SUPPORTED)?,
            // A well-formed OID of a curve sqlhsm lacks is unsupported; anything else is not
            // an ECParameters value at all.
            None if is_der_oid(der) => Err(Rv::CURVE_NOT_SUPPORTED)?,
            None => Err(Rv::ATTRIBUTE_VALUE_INVALID)?,
        }
    }

    pub fn field_bytes(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// Field size in bits, the unit of `CK_MECHANISM_INFO` key sizes for EC.
    pub fn bits(self) -> u32 {
        match self {
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }

    fn nid(self) -> Nid {
        match self {
            Curve::P256 => Nid::X9_62_PRIME256V1,
            Curve::P384 => Nid::SECP384R1,
            Curve::P521 => Nid::SECP521R1,
        }
    }

    fn from_nid(nid: Nid) -> Result<Curve> {
        match nid {
            Nid::X9_62_PRIME256V1 => Ok(Curve::P256),
            Nid::SECP384R1 => Ok(Curve::P384),
            Nid::SECP521R1 => Ok(Curve::P521),
            _ => Err(Rv::CURVE_NOT_SUPPORTED)?,
        }
    }

    fn group(self) -> Result<EcGroup> {
        EcGroup::from_curve_name(self.nid()).map_err(openssl_error)
    }
}

/// True when `der` is exactly one short-form DER OBJECT IDENTIFIER.
fn is_der_oid(der: &[u8]) -> bool {
    matches!(der, [0x06, len, rest @ ..] if usize::from(*len) == rest.len() && !rest.is_empty())
}

/// DER of the Ed25519 OID (1.3.101.112), the `CKA_EC_PARAMS` value for Ed25519 keys.
/// PKCS#11 3.0 also allows the PrintableString "edwards25519"; `is_ed25519_params` accepts both.
pub const ED25519_PARAMS_DER: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

pub fn is_ed25519_params(der: &[u8]) -> bool {
    der == ED25519_PARAMS_DER || printable_string(der) == Some("edwards25519")
}

const ED25519_LEN: usize = 32;

/// What kind of asymmetric key this is, for mechanisms to check before use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa { bits: u32 },
    Ec(Curve),
    Ed25519,
}

impl KeyKind {
    /// RSA modulus length in bytes (the signature and ciphertext length), 0 for other kinds.
    pub fn rsa_bytes(self) -> usize {
        match self {
            KeyKind::Rsa { bits } => (bits as usize).div_ceil(8),
            _ => 0,
        }
    }
}

/// The public values of a key, as PKCS#11 attributes expose them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicInfo {
    /// `CKA_MODULUS`, `CKA_PUBLIC_EXPONENT` (big-endian, no leading zeros), `CKA_MODULUS_BITS`.
    Rsa {
        modulus: Vec<u8>,
        public_exponent: Vec<u8>,
        bits: u32,
    },
    /// `CKA_EC_PARAMS` (OID DER) and `CKA_EC_POINT` (DER OCTET STRING of the uncompressed point).
    Ec {
        curve: Curve,
        params_der: Vec<u8>,
        point_der: Vec<u8>,
    },
    /// `CKA_EC_PARAMS` (Ed25519 OID DER) and `CKA_EC_POINT` (DER OCTET STRING of the 32 bytes).
    Ed25519 {
        params_der: Vec<u8>,
        point_der: Vec<u8>,
    },
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

/// A private key held by OpenSSL. `Debug` never prints material.
pub struct PrivateKey(pub(crate) openssl::pkey::PKey<openssl::pkey::Private>);

/// A public key held by OpenSSL.
pub struct PublicKey(pub(crate) openssl::pkey::PKey<openssl::pkey::Public>);

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
        Ok(PrivateKey(PKey::from_rsa(rsa).map_err(openssl_error)?))
    }

    pub fn generate_ec(curve: Curve) -> Result<PrivateKey> {
        let group = curve.group()?;
        let key = EcKey::generate(&group).map_err(openssl_error)?;
        Ok(PrivateKey(PKey::from_ec_key(key).map_err(openssl_error)?))
    }

    pub fn generate_ed25519() -> Result<PrivateKey> {
        Ok(PrivateKey(PKey::generate_ed25519().map_err(openssl_error)?))
    }

    /// `CKR_WRAPPED_KEY_INVALID`-free: a parse failure is `Error::Storage(Corrupt)`-worthy for
    /// the caller; here it returns `Rv::DATA_INVALID`. Key types sqlhsm cannot use are refused
    /// the same way.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey> {
        let pkey = PKey::private_key_from_pkcs8(der).map_err(|_| Rv::DATA_INVALID)?;
        let key = PrivateKey(pkey);
        key.kind().map_err(|_| Rv::DATA_INVALID)?;
        Ok(key)
    }

    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(
            self.0.private_key_to_pkcs8().map_err(openssl_error)?,
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
        Ok(PrivateKey(PKey::from_rsa(rsa).map_err(openssl_error)?))
    }

    /// `CKA_EC_PARAMS` + `CKA_VALUE` (the private scalar, big-endian).
    pub fn from_ec_components(params_der: &[u8], private_value: &[u8]) -> Result<PrivateKey> {
        let curve = Curve::from_params_der(params_der)?;
        let group = curve.group()?;
        let invalid = |_| Rv::ATTRIBUTE_VALUE_INVALID;
        if private_value.is_empty() || private_value.len() > curve.field_bytes() {
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
        Ok(PrivateKey(PKey::from_ec_key(key).map_err(openssl_error)?))
    }

    /// Ed25519 from its 32-byte private seed (`CKA_VALUE`).
    pub fn from_ed25519_seed(seed: &[u8]) -> Result<PrivateKey> {
        if seed.len() != ED25519_LEN {
            Err(Rv::ATTRIBUTE_VALUE_INVALID)?
        }
        let pkey = PKey::private_key_from_raw_bytes(seed, Id::ED25519)
            .map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
        Ok(PrivateKey(pkey))
    }

    pub fn public_key(&self) -> Result<PublicKey> {
        let der = self.0.public_key_to_der().map_err(openssl_error)?;
        Ok(PublicKey(
            PKey::public_key_from_der(&der).map_err(openssl_error)?,
        ))
    }

    pub fn public_info(&self) -> Result<PublicInfo> {
        public_info_of(&self.0)
    }

    /// The key's algorithm and size; `CKR_KEY_TYPE_INCONSISTENT` for types sqlhsm does not use.
    pub fn kind(&self) -> Result<KeyKind> {
        kind_of(&self.0)
    }

    /// RSA private components for the (rare) case a token exports an extractable,
    /// non-sensitive private key: `CKA_PRIVATE_EXPONENT`, primes, etc. by attribute type.
    /// EC and Ed25519 answer `CKA_VALUE`. Returns `None` for attributes that do not apply.
    pub fn private_component(
        &self,
        attribute: CK_ATTRIBUTE_TYPE,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let secret = |bn: Option<&BigNumRef>| bn.map(|bn| Zeroizing::new(bn.to_vec()));
        match self.kind()? {
            KeyKind::Rsa { .. } => {
                let rsa = self.0.rsa().map_err(openssl_error)?;
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
            KeyKind::Ec(curve) if attribute == CKA_VALUE => {
                let ec = self.0.ec_key().map_err(openssl_error)?;
                let value = ec.private_key().to_vec_padded(curve.field_bytes() as i32);
                Ok(Some(Zeroizing::new(value.map_err(openssl_error)?)))
            }
            KeyKind::Ed25519 if attribute == CKA_VALUE => Ok(Some(Zeroizing::new(
                self.0.raw_private_key().map_err(openssl_error)?,
            ))),
            _ => Ok(None),
        }
    }
}

impl PublicKey {
    pub fn from_spki_pem(pem: &str) -> Result<PublicKey> {
        let pkey = PKey::public_key_from_pem(pem.as_bytes()).map_err(|_| Rv::DATA_INVALID)?;
        Ok(PublicKey(pkey))
    }

    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey> {
        let pkey = PKey::public_key_from_der(der).map_err(|_| Rv::DATA_INVALID)?;
        Ok(PublicKey(pkey))
    }

    pub fn to_spki_pem(&self) -> Result<String> {
        let pem = self.0.public_key_to_pem().map_err(openssl_error)?;
        String::from_utf8(pem).map_err(|e| crate::error::Error::Crypto(e.to_string().into()))
    }

    pub fn to_spki_der(&self) -> Result<Vec<u8>> {
        self.0.public_key_to_der().map_err(openssl_error)
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
        Ok(PublicKey(PKey::from_rsa(rsa).map_err(openssl_error)?))
    }

    /// `CKA_EC_PARAMS` + `CKA_EC_POINT`; the point may be a DER OCTET STRING or raw.
    /// Handles Ed25519 params too.
    pub fn from_ec_point(params_der: &[u8], point: &[u8]) -> Result<PublicKey> {
        if is_ed25519_params(params_der) {
            let raw = if point.len() == ED25519_LEN {
                point
            } else {
                octet_string(point).ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?
            };
            if raw.len() != ED25519_LEN {
                Err(Rv::ATTRIBUTE_VALUE_INVALID)?
            }
            let pkey = PKey::public_key_from_raw_bytes(raw, Id::ED25519)
                .map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
            return Ok(PublicKey(pkey));
        }
        let curve = Curve::from_params_der(params_der)?;
        let uncompressed_len = 2 * curve.field_bytes() + 1;
        // A raw uncompressed point also starts with 0x04, the OCTET STRING tag; its exact length
        // tells the two apart (the wrapped form is always longer).
        let raw = if point.len() == uncompressed_len && point[0] == 0x04 {
            point
        } else {
            octet_string(point).unwrap_or(point)
        };
        let group = curve.group()?;
        let mut ctx = BigNumContext::new().map_err(openssl_error)?;
        let invalid = |_| Rv::ATTRIBUTE_VALUE_INVALID;
        let pt = EcPoint::from_bytes(&group, raw, &mut ctx).map_err(invalid)?;
        let key = EcKey::from_public_key(&group, &pt).map_err(invalid)?;
        key.check_key().map_err(invalid)?;
        Ok(PublicKey(PKey::from_ec_key(key).map_err(openssl_error)?))
    }

    pub fn public_info(&self) -> Result<PublicInfo> {
        public_info_of(&self.0)
    }

    /// The key's algorithm and size; `CKR_KEY_TYPE_INCONSISTENT` for types sqlhsm does not use.
    pub fn kind(&self) -> Result<KeyKind> {
        kind_of(&self.0)
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

fn kind_of<T: HasPublic>(pkey: &PKeyRef<T>) -> Result<KeyKind> {
    match pkey.id() {
        Id::RSA => Ok(KeyKind::Rsa { bits: pkey.bits() }),
        Id::EC => {
            let ec = pkey.ec_key().map_err(openssl_error)?;
            let nid = ec.group().curve_name().ok_or(Rv::CURVE_NOT_SUPPORTED)?;
            Ok(KeyKind::Ec(Curve::from_nid(nid)?))
        }
        Id::ED25519 => Ok(KeyKind::Ed25519),
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    }
}

fn public_info_of<T: HasPublic>(pkey: &PKeyRef<T>) -> Result<PublicInfo> {
    match kind_of(pkey)? {
        KeyKind::Rsa { bits } => {
            let rsa = pkey.rsa().map_err(openssl_error)?;
            Ok(PublicInfo::Rsa {
                modulus: rsa.n().to_vec(),
                public_exponent: rsa.e().to_vec(),
                bits,
            })
        }
        KeyKind::Ec(curve) => {
            let ec = pkey.ec_key().map_err(openssl_error)?;
            let mut ctx = BigNumContext::new().map_err(openssl_error)?;
            let point = ec
                .public_key()
                .to_bytes(ec.group(), PointConversionForm::UNCOMPRESSED, &mut ctx)
                .map_err(openssl_error)?;
            Ok(PublicInfo::Ec {
                curve,
                params_der: curve.params_der().to_vec(),
                point_der: der_octet_string(&point),
            })
        }
        KeyKind::Ed25519 => {
            let raw = pkey.raw_public_key().map_err(openssl_error)?;
            Ok(PublicInfo::Ed25519 {
                params_der: ED25519_PARAMS_DER.to_vec(),
                point_der: der_octet_string(&raw),
            })
        }
    }
}

/// DER OCTET STRING around `content` (definite length, short or long form).
pub(crate) fn der_octet_string(content: &[u8]) -> Vec<u8> {
    der::tlv(der::OCTET_STRING, content)
}

fn octet_string(der: &[u8]) -> Option<&[u8]> {
    der::content(der, der::OCTET_STRING)
}

fn printable_string(der: &[u8]) -> Option<&str> {
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

    fn printable(s: &str) -> Vec<u8> {
        let mut v = vec![0x13, s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    #[test]
    fn curve_params() {
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            assert_eq!(Curve::from_params_der(curve.params_der()).unwrap(), curve);
        }
        assert_eq!(
            Curve::from_params_der(&printable("prime256v1")).unwrap(),
            Curve::P256
        );
        assert_eq!(
            Curve::from_params_der(&printable("secp256r1")).unwrap(),
            Curve::P256
        );
        assert_eq!(
            Curve::from_params_der(&printable("P-256")).unwrap(),
            Curve::P256
        );
        assert_eq!(
            Curve::from_params_der(&printable("secp384r1")).unwrap(),
            Curve::P384
        );
        assert_eq!(
            Curve::from_params_der(&printable("secp521r1")).unwrap(),
            Curve::P521
        );
        let err = Curve::from_params_der(ED25519_PARAMS_DER).unwrap_err();
        assert_eq!(err.rv(), Rv::CURVE_NOT_SUPPORTED);
        assert!(Curve::from_params_der(&printable("secp256k1")).is_err());
        assert!(Curve::from_params_der(&[]).is_err());
        assert!(is_ed25519_params(ED25519_PARAMS_DER));
        assert!(is_ed25519_params(&printable("edwards25519")));
        assert!(!is_ed25519_params(P256_OID_DER));
    }

    #[test]
    fn rsa_generation_and_info() {
        let key = rsa_2048();
        let PublicInfo::Rsa {
            modulus,
            public_exponent,
            bits,
        } = key.public_info().unwrap()
        else {
            panic!("not RSA")
        };
        assert_eq!(bits, 2048);
        assert_eq!(modulus.len(), 256);
        assert_eq!(public_exponent, vec![1, 0, 1]);
        assert_eq!(key.kind().unwrap(), KeyKind::Rsa { bits: 2048 });
        assert_eq!(
            key.public_key().unwrap().public_info().unwrap(),
            key.public_info().unwrap()
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
        let PublicInfo::Rsa {
            public_exponent,
            bits,
            ..
        } = key.public_info().unwrap()
        else {
            panic!("not RSA")
        };
        assert_eq!((public_exponent, bits), (vec![3], 1024));
    }

    #[test]
    fn ec_generation_and_info() {
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            let key = PrivateKey::generate_ec(curve).unwrap();
            assert_eq!(key.kind().unwrap(), KeyKind::Ec(curve));
            let PublicInfo::Ec {
                curve: c,
                params_der,
                point_der,
            } = key.public_info().unwrap()
            else {
                panic!("not EC")
            };
            assert_eq!(c, curve);
            assert_eq!(params_der, curve.params_der());
            let point = octet_string(&point_der).unwrap();
            assert_eq!(point.len(), 2 * curve.field_bytes() + 1);
            assert_eq!(point[0], 4);
            // Import from components reproduces the public values.
            let value = key.private_component(CKA_VALUE).unwrap().unwrap();
            assert_eq!(value.len(), curve.field_bytes());
            let again = PrivateKey::from_ec_components(&params_der, &value).unwrap();
            assert_eq!(again.public_info().unwrap(), key.public_info().unwrap());
            // Public import, wrapped and raw point.
            for p in [&point_der[..], point] {
                let public = PublicKey::from_ec_point(&params_der, p).unwrap();
                assert_eq!(public.public_info().unwrap(), key.public_info().unwrap());
            }
            assert!(key.private_component(CKA_PRIME_1).unwrap().is_none());
        }
    }

    #[test]
    fn ed25519_generation_and_info() {
        let key = PrivateKey::generate_ed25519().unwrap();
        assert_eq!(key.kind().unwrap(), KeyKind::Ed25519);
        let PublicInfo::Ed25519 {
            params_der,
            point_der,
        } = key.public_info().unwrap()
        else {
            panic!("not Ed25519")
        };
        assert_eq!(params_der, ED25519_PARAMS_DER);
        assert_eq!(point_der.len(), 34);
        assert_eq!(&point_der[..2], &[0x04, 0x20]);
        let seed = key.private_component(CKA_VALUE).unwrap().unwrap();
        let again = PrivateKey::from_ed25519_seed(&seed).unwrap();
        assert_eq!(again.public_info().unwrap(), key.public_info().unwrap());
        for p in [&point_der[..], &point_der[2..]] {
            let public = PublicKey::from_ec_point(&printable("edwards25519"), p).unwrap();
            assert_eq!(public.public_info().unwrap(), key.public_info().unwrap());
        }
        assert!(PrivateKey::from_ed25519_seed(&[1u8; 31]).is_err());
    }

    #[test]
    fn pkcs8_round_trip() {
        let keys = [
            PrivateKey::generate_ec(Curve::P256).unwrap(),
            PrivateKey::generate_ed25519().unwrap(),
        ];
        let rsa_der = rsa_2048().to_pkcs8_der().unwrap();
        let rsa = PrivateKey::from_pkcs8_der(&rsa_der).unwrap();
        assert_eq!(
            rsa.public_info().unwrap(),
            rsa_2048().public_info().unwrap()
        );
        for key in &keys {
            let der = key.to_pkcs8_der().unwrap();
            let again = PrivateKey::from_pkcs8_der(&der).unwrap();
            assert_eq!(again.public_info().unwrap(), key.public_info().unwrap());
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
        assert_eq!(again.public_info().unwrap(), public.public_info().unwrap());
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
        let PublicInfo::Rsa {
            modulus,
            public_exponent,
            ..
        } = key.public_info().unwrap()
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
        assert_eq!(imported.public_info().unwrap(), key.public_info().unwrap());

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
        assert_eq!(imported.public_info().unwrap(), key.public_info().unwrap());

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
        assert_eq!(public.public_info().unwrap(), key.public_info().unwrap());
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

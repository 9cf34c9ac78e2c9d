//! Asymmetric keys: generation, import from PKCS#11 components, PKCS#8 / SPKI encoding, and the
//! public values PKCS#11 exposes as attributes.

use zeroize::Zeroizing;

use crate::error::Result;

/// Named curves sqlhsm supports for ECDSA / ECDH.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// DER of the namedCurve OID, the form `CKA_EC_PARAMS` uses.
    pub fn params_der(self) -> &'static [u8] {
        todo!("helper")
    }

    /// Parse `CKA_EC_PARAMS`: a DER OID, or a DER PrintableString with the curve name
    /// ("prime256v1", "secp384r1", …) as PKCS#11 3.0 allows. `CKR_CURVE_NOT_SUPPORTED` otherwise.
    pub fn from_params_der(der: &[u8]) -> Result<Curve> {
        let _ = der;
        todo!("helper")
    }

    pub fn field_bytes(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

/// DER of the Ed25519 OID (1.3.101.112), the `CKA_EC_PARAMS` value for Ed25519 keys.
/// PKCS#11 3.0 also allows the PrintableString "edwards25519"; `is_ed25519_params` accepts both.
pub const ED25519_PARAMS_DER: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

pub fn is_ed25519_params(der: &[u8]) -> bool {
    let _ = der;
    todo!("helper")
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

impl PrivateKey {
    /// RSA with `bits` (2048..=16384, multiple of 8 not required) and the given big-endian
    /// public exponent (default 65537 when empty). `CKR_KEY_SIZE_RANGE` outside the range.
    pub fn generate_rsa(bits: u32, public_exponent: &[u8]) -> Result<PrivateKey> {
        let _ = (bits, public_exponent);
        todo!("helper")
    }
    pub fn generate_ec(curve: Curve) -> Result<PrivateKey> {
        let _ = curve;
        todo!("helper")
    }
    pub fn generate_ed25519() -> Result<PrivateKey> {
        todo!("helper")
    }
    /// `CKR_WRAPPED_KEY_INVALID`-free: a parse failure is `Error::Storage(Corrupt)`-worthy for
    /// the caller; here it returns `Rv::DATA_INVALID`.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey> {
        let _ = der;
        todo!("helper")
    }
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        todo!("helper")
    }
    /// `CKR_ATTRIBUTE_VALUE_INVALID` when the components do not form a valid key.
    pub fn from_rsa_components(c: &RsaPrivateComponents) -> Result<PrivateKey> {
        let _ = c;
        todo!("helper")
    }
    /// `CKA_EC_PARAMS` + `CKA_VALUE` (the private scalar, big-endian).
    pub fn from_ec_components(params_der: &[u8], private_value: &[u8]) -> Result<PrivateKey> {
        let _ = (params_der, private_value);
        todo!("helper")
    }
    /// Ed25519 from its 32-byte private seed (`CKA_VALUE`).
    pub fn from_ed25519_seed(seed: &[u8]) -> Result<PrivateKey> {
        let _ = seed;
        todo!("helper")
    }
    pub fn public_key(&self) -> Result<PublicKey> {
        todo!("helper")
    }
    pub fn public_info(&self) -> Result<PublicInfo> {
        todo!("helper")
    }
    /// RSA private components for the (rare) case a token exports an extractable,
    /// non-sensitive private key: `CKA_PRIVATE_EXPONENT`, primes, etc. by attribute type.
    /// Returns `None` for attributes that do not apply to this key type.
    pub fn private_component(
        &self,
        attribute: cryptoki_sys::CK_ATTRIBUTE_TYPE,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let _ = attribute;
        todo!("helper")
    }
}

impl PublicKey {
    pub fn from_spki_pem(pem: &str) -> Result<PublicKey> {
        let _ = pem;
        todo!("helper")
    }
    pub fn to_spki_pem(&self) -> Result<String> {
        todo!("helper")
    }
    pub fn to_spki_der(&self) -> Result<Vec<u8>> {
        todo!("helper")
    }
    pub fn from_rsa_components(modulus: &[u8], public_exponent: &[u8]) -> Result<PublicKey> {
        let _ = (modulus, public_exponent);
        todo!("helper")
    }
    /// `CKA_EC_PARAMS` + `CKA_EC_POINT`; the point may be a DER OCTET STRING or raw.
    /// Handles Ed25519 params too.
    pub fn from_ec_point(params_der: &[u8], point: &[u8]) -> Result<PublicKey> {
        let _ = (params_der, point);
        todo!("helper")
    }
    pub fn public_info(&self) -> Result<PublicInfo> {
        todo!("helper")
    }
}

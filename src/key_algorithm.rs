//! The key-algorithm table: every kind of key sqlhsm makes, stores or uses is one row of
//! [`ALGORITHMS`] — its `asym_key.key_algorithm` number, its one name, its PKCS#11 key type
//! (`CKK_*`) and generation mechanism (`CKM_*_KEY_PAIR_GEN` / `CKM_*_KEY_GEN`), its size, its
//! OID (the DER of `CKA_EC_PARAMS`), the shape of its public attributes and its constructors in
//! `crypto`. Lookups by number, by name, by curve and by (family, size) all read the rows; adding
//! an algorithm is adding a row (see `docs/adding-a-key-algorithm.md`).
//!
//! Placement: below `core`, `mechanism`, `provider` and `admin`, which all read it, and just
//! above `crypto`, whose constructors the rows point at. `crypto` never reads the table (it names
//! a curve by the OID a row hands it and reports a key as its [`Family`] and size), so the arrow
//! points one way and only `crypto` names OpenSSL.
//!
//! Numbering: `key_algorithm` follows OpenTDF's values where it defines them (1–5); sqlhsm's own
//! additions start at 101 so a future OpenTDF value can never collide with them. Secret keys
//! (`sym_key` rows) have no `key_algorithm` column; their rows carry no number.

use cryptoki_sys::{
    CKK_AES, CKK_AES_XTS, CKK_CHACHA20, CKK_DES, CKK_DES2, CKK_DES3, CKK_EC, CKK_EC_EDWARDS,
    CKK_EC_MONTGOMERY, CKK_GENERIC_SECRET, CKK_HKDF, CKK_ML_DSA, CKK_ML_KEM, CKK_RSA,
    CKK_SHA224_HMAC, CKK_SHA256_HMAC, CKK_SHA384_HMAC, CKK_SHA3_224_HMAC, CKK_SHA3_256_HMAC,
    CKK_SHA3_384_HMAC, CKK_SHA3_512_HMAC, CKK_SHA512_HMAC, CKK_SHA_1_HMAC, CKK_SLH_DSA,
    CKM_AES_KEY_GEN, CKM_AES_XTS_KEY_GEN, CKM_CHACHA20_KEY_GEN, CKM_DES2_KEY_GEN, CKM_DES3_KEY_GEN,
    CKM_DES_KEY_GEN, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EC_KEY_PAIR_GEN,
    CKM_EC_MONTGOMERY_KEY_PAIR_GEN, CKM_GENERIC_SECRET_KEY_GEN, CKM_HKDF_KEY_GEN,
    CKM_ML_DSA_KEY_PAIR_GEN, CKM_ML_KEM_KEY_PAIR_GEN, CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_SHA224_KEY_GEN, CKM_SHA256_KEY_GEN, CKM_SHA384_KEY_GEN, CKM_SHA3_224_KEY_GEN,
    CKM_SHA3_256_KEY_GEN, CKM_SHA3_384_KEY_GEN, CKM_SHA3_512_KEY_GEN, CKM_SHA512_KEY_GEN,
    CKM_SHA_1_KEY_GEN, CKM_SLH_DSA_KEY_PAIR_GEN, CKP_ML_DSA_44, CKP_ML_DSA_65, CKP_ML_DSA_87,
    CKP_ML_KEM_1024, CKP_ML_KEM_512, CKP_ML_KEM_768, CKP_SLH_DSA_SHA2_128F, CKP_SLH_DSA_SHA2_128S,
    CKP_SLH_DSA_SHA2_192F, CKP_SLH_DSA_SHA2_192S, CKP_SLH_DSA_SHA2_256F, CKP_SLH_DSA_SHA2_256S,
    CKP_SLH_DSA_SHAKE_128F, CKP_SLH_DSA_SHAKE_128S, CKP_SLH_DSA_SHAKE_192F, CKP_SLH_DSA_SHAKE_192S,
    CKP_SLH_DSA_SHAKE_256F, CKP_SLH_DSA_SHAKE_256S, CK_KEY_TYPE, CK_MECHANISM_TYPE, CK_ULONG,
};
use zeroize::Zeroizing;

use crate::crypto::hybrid_kem::HybridKem;
use crate::crypto::keys::{is_der_oid, printable_string, PrivateKey, PublicKey};
pub use crate::crypto::keys::{Family, KeyFacts};
use crate::error::{Result, Rv};
use crate::vendor;

/// How a key's public values appear as attributes (PKCS#11 3.0 Current Mechanisms §2.1.2,
/// §2.3.3, §2.3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicShape {
    /// `CKA_MODULUS`, `CKA_PUBLIC_EXPONENT` (and `CKA_MODULUS_BITS` on the public key).
    Modulus,
    /// `CKA_EC_PARAMS` and `CKA_EC_POINT`, a DER OCTET STRING of the uncompressed X9.62 point.
    EcPoint,
    /// `CKA_EC_PARAMS` and `CKA_EC_POINT`, a DER OCTET STRING of the RFC 8032 encoding (or, on
    /// a Montgomery curve, of the RFC 7748 public value).
    EdwardsPoint,
    /// `CKA_PARAMETER_SET` and `CKA_VALUE`, the encoded public key (PKCS#11 3.2 ML-KEM, ML-DSA,
    /// SLH-DSA public key objects).
    Value,
    /// A secret key: no public values.
    None,
}

/// What a generation template asks for beyond the algorithm (RSA only, for now).
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    /// `CKA_MODULUS_BITS`.
    pub bits: u32,
    /// `CKA_PUBLIC_EXPONENT`, empty for the default.
    pub public_exponent: &'a [u8],
}

/// Makes a fresh private key of the row's algorithm.
pub type GenerateFn = fn(&KeyAlgorithm, &Request<'_>) -> Result<PrivateKey>;
/// A private key from its `CKA_VALUE` (EC scalar, Edwards seed, post-quantum expanded key) or,
/// for `private_from_seed`, its `CKA_SEED`.
pub type PrivateFromValueFn = fn(&KeyAlgorithm, &[u8]) -> Result<PrivateKey>;
/// A public key from its `CKA_EC_POINT` (raw or in a DER OCTET STRING) or, for
/// [`PublicShape::Value`], its `CKA_VALUE`.
pub type PublicFromPointFn = fn(&KeyAlgorithm, &[u8]) -> Result<PublicKey>;

/// What a secret key's value must be beyond its length, for the key types with rules of their
/// own (DES parity, FIPS 46-3; distinct XTS halves, SP 800-38E).
#[derive(Debug)]
pub struct SecretValue {
    /// Applied to fresh random bytes and to derived values (DES: odd parity in every byte).
    pub fix: fn(&mut [u8]),
    /// Whether a value given to sqlhsm (created, unwrapped, derived) is one.
    pub valid: fn(&[u8]) -> bool,
    /// Whether a fresh value is drawn again: DES weak and semi-weak keys and repeated parts
    /// (which make Triple DES single DES), equal XTS halves.
    pub redraw: fn(&[u8]) -> bool,
}

/// One algorithm.
#[derive(Debug)]
pub struct KeyAlgorithm {
    /// `asym_key.key_algorithm`; `None` for secret keys, whose table has no such column.
    pub code: Option<i32>,
    /// The one spelling: admin arguments and output, JSON, logs, docs, and the prefix of
    /// generated `key_id`s.
    pub name: &'static str,
    pub family: Family,
    /// `CKK_*`.
    pub key_type: CK_KEY_TYPE,
    /// The `CKM_*_KEY_PAIR_GEN` / `CKM_*_KEY_GEN` that makes it; `None` when sqlhsm does not
    /// make it as such (RSA of another size is made by asking for that size).
    pub generation: Option<CK_MECHANISM_TYPE>,
    /// RSA modulus bits, curve field bits (PKCS#11's unit for EC key sizes), secret key bits,
    /// eight times a post-quantum public key's length in bytes (PKCS#11 3.2 sizes those keys in
    /// public key bytes); `None` for "any other size" rows.
    pub bits: Option<u32>,
    /// The DER of the curve's OID, the `CKA_EC_PARAMS` sqlhsm writes; empty for RSA and secrets.
    pub params_der: &'static [u8],
    /// Curve names `CKA_EC_PARAMS` may give as a PrintableString instead (PKCS#11 3.0 allows it).
    pub curve_names: &'static [&'static str],
    pub public: PublicShape,
    /// `CKA_PARAMETER_SET` (`CKP_ML_KEM_*`, `CKP_ML_DSA_*`, `CKP_SLH_DSA_*`); `None` for key
    /// types without parameter sets.
    pub parameter_set: Option<CK_ULONG>,
    /// The name OpenSSL knows a post-quantum parameter set by (`ML-DSA-65`); empty otherwise.
    pub openssl_name: &'static str,
    pub generate: Option<GenerateFn>,
    pub private_from_value: Option<PrivateFromValueFn>,
    /// A private key from `CKA_SEED` (post-quantum keys).
    pub private_from_seed: Option<PrivateFromValueFn>,
    pub public_from_point: Option<PublicFromPointFn>,
    /// Secret keys with rules for their value beyond its length; `None`: any bytes.
    pub secret_value: Option<&'static SecretValue>,
}

/// The rows' defaults, for struct update syntax.
const fn row(name: &'static str, family: Family, key_type: CK_KEY_TYPE) -> KeyAlgorithm {
    KeyAlgorithm {
        code: None,
        name,
        family,
        key_type,
        generation: None,
        bits: None,
        params_der: &[],
        curve_names: &[],
        public: PublicShape::None,
        parameter_set: None,
        openssl_name: "",
        generate: None,
        private_from_value: None,
        private_from_seed: None,
        public_from_point: None,
        secret_value: None,
    }
}

/// A post-quantum row (PKCS#11 3.2 §6.67–§6.69): made by its family's key pair generation,
/// from a seed or the expanded private key, its public key one encoded value of
/// `public_len` bytes.
#[allow(clippy::too_many_arguments)]
const fn pq(
    code: i32,
    name: &'static str,
    family: Family,
    key_type: CK_KEY_TYPE,
    generation: CK_MECHANISM_TYPE,
    parameter_set: CK_ULONG,
    openssl_name: &'static str,
    public_len: u32,
) -> KeyAlgorithm {
    KeyAlgorithm {
        code: Some(code),
        generation: Some(generation),
        bits: Some(8 * public_len),
        public: PublicShape::Value,
        parameter_set: Some(parameter_set),
        openssl_name,
        generate: Some(|row, _| PrivateKey::generate_pq(row.openssl_name)),
        private_from_value: Some(|row, value| {
            PrivateKey::from_pq_expanded(row.openssl_name, value)
        }),
        private_from_seed: Some(|row, seed| PrivateKey::from_pq_seed(row.openssl_name, seed)),
        public_from_point: Some(|row, value| PublicKey::from_pq_value(row.openssl_name, value)),
        ..row(name, family, key_type)
    }
}

const fn ml_kem(
    code: i32,
    name: &'static str,
    set: CK_ULONG,
    openssl: &'static str,
    public_len: u32,
) -> KeyAlgorithm {
    pq(
        code,
        name,
        Family::MlKem,
        CKK_ML_KEM,
        CKM_ML_KEM_KEY_PAIR_GEN,
        set,
        openssl,
        public_len,
    )
}

const fn ml_dsa(
    code: i32,
    name: &'static str,
    set: CK_ULONG,
    openssl: &'static str,
    public_len: u32,
) -> KeyAlgorithm {
    pq(
        code,
        name,
        Family::MlDsa,
        CKK_ML_DSA,
        CKM_ML_DSA_KEY_PAIR_GEN,
        set,
        openssl,
        public_len,
    )
}

/// SLH-DSA with security parameter `n` bytes (public key 2n).
const fn slh_dsa(
    code: i32,
    name: &'static str,
    set: CK_ULONG,
    openssl: &'static str,
    n: u32,
) -> KeyAlgorithm {
    pq(
        code,
        name,
        Family::SlhDsa,
        CKK_SLH_DSA,
        CKM_SLH_DSA_KEY_PAIR_GEN,
        set,
        openssl,
        2 * n,
    )
}

const fn rsa(code: i32, name: &'static str, bits: Option<u32>) -> KeyAlgorithm {
    KeyAlgorithm {
        code: Some(code),
        generation: Some(CKM_RSA_PKCS_KEY_PAIR_GEN),
        bits,
        public: PublicShape::Modulus,
        generate: Some(|_, request| {
            PrivateKey::generate_rsa(request.bits, request.public_exponent)
        }),
        ..row(name, Family::Rsa, CKK_RSA)
    }
}

const fn ec(
    code: i32,
    name: &'static str,
    bits: u32,
    params_der: &'static [u8],
    curve_names: &'static [&'static str],
) -> KeyAlgorithm {
    KeyAlgorithm {
        code: Some(code),
        generation: Some(CKM_EC_KEY_PAIR_GEN),
        bits: Some(bits),
        params_der,
        curve_names,
        public: PublicShape::EcPoint,
        generate: Some(|row, _| PrivateKey::generate_ec(row.params_der)),
        private_from_value: Some(|row, value| {
            PrivateKey::from_ec_components(row.params_der, value)
        }),
        public_from_point: Some(|row, point| PublicKey::from_ec_point(row.params_der, point)),
        ..row(name, Family::Ec, CKK_EC)
    }
}

const fn aes(name: &'static str, bits: u32) -> KeyAlgorithm {
    KeyAlgorithm {
        generation: Some(CKM_AES_KEY_GEN),
        bits: Some(bits),
        ..row(name, Family::Secret, CKK_AES)
    }
}

const fn secret(
    name: &'static str,
    key_type: CK_KEY_TYPE,
    generation: CK_MECHANISM_TYPE,
    bits: u32,
    secret_value: Option<&'static SecretValue>,
) -> KeyAlgorithm {
    KeyAlgorithm {
        generation: Some(generation),
        bits: Some(bits),
        secret_value,
        ..row(name, Family::Secret, key_type)
    }
}

/// DES keys (single, double and triple length): odd parity in every byte (FIPS 46-3 §3), and
/// fresh ones free of weak and semi-weak parts and of repeated parts.
static DES_VALUE: SecretValue = SecretValue {
    fix: |value| value.iter_mut().for_each(|b| *b = odd_parity(*b)),
    valid: |value| value.iter().all(|&b| odd_parity(b) == b),
    redraw: |value| {
        let parts: Vec<&[u8]> = value.chunks(8).collect();
        parts.iter().any(|p| DES_WEAK_KEYS.iter().any(|w| w == p))
            || parts.windows(2).any(|w| w[0] == w[1])
            || (parts.len() == 3 && parts[0] == parts[2])
    },
};

/// `b` with its low bit set so that it has an odd number of bits set.
const fn odd_parity(b: u8) -> u8 {
    let high = b & 0xfe;
    if high.count_ones().is_multiple_of(2) {
        high | 1
    } else {
        high
    }
}

/// The 4 weak and 12 semi-weak DES keys (SP 800-67 Rev. 2 §3.3.2), with parity.
const DES_WEAK_KEYS: [[u8; 8]; 16] = [
    [0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01],
    [0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe],
    [0xe0, 0xe0, 0xe0, 0xe0, 0xf1, 0xf1, 0xf1, 0xf1],
    [0x1f, 0x1f, 0x1f, 0x1f, 0x0e, 0x0e, 0x0e, 0x0e],
    [0x01, 0x1f, 0x01, 0x1f, 0x01, 0x0e, 0x01, 0x0e],
    [0x1f, 0x01, 0x1f, 0x01, 0x0e, 0x01, 0x0e, 0x01],
    [0x01, 0xe0, 0x01, 0xe0, 0x01, 0xf1, 0x01, 0xf1],
    [0xe0, 0x01, 0xe0, 0x01, 0xf1, 0x01, 0xf1, 0x01],
    [0x01, 0xfe, 0x01, 0xfe, 0x01, 0xfe, 0x01, 0xfe],
    [0xfe, 0x01, 0xfe, 0x01, 0xfe, 0x01, 0xfe, 0x01],
    [0x1f, 0xe0, 0x1f, 0xe0, 0x0e, 0xf1, 0x0e, 0xf1],
    [0xe0, 0x1f, 0xe0, 0x1f, 0xf1, 0x0e, 0xf1, 0x0e],
    [0x1f, 0xfe, 0x1f, 0xfe, 0x0e, 0xfe, 0x0e, 0xfe],
    [0xfe, 0x1f, 0xfe, 0x1f, 0xfe, 0x0e, 0xfe, 0x0e],
    [0xe0, 0xfe, 0xe0, 0xfe, 0xf1, 0xfe, 0xf1, 0xfe],
    [0xfe, 0xe0, 0xfe, 0xe0, 0xfe, 0xf1, 0xfe, 0xf1],
];

/// XTS keys: two AES keys, which must differ (SP 800-38E; OpenSSL refuses equal halves too).
static XTS_VALUE: SecretValue = SecretValue {
    fix: |_| {},
    valid: |value| {
        let (k1, k2) = value.split_at(value.len() / 2);
        k1 != k2
    },
    redraw: |value| {
        let (k1, k2) = value.split_at(value.len() / 2);
        k1 == k2
    },
};

pub static RSA_2048: KeyAlgorithm = rsa(1, "rsa-2048", Some(2048));
pub static RSA_4096: KeyAlgorithm = rsa(2, "rsa-4096", Some(4096));
pub static EC_P256: KeyAlgorithm = ec(
    3,
    "ec-p256",
    256,
    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
    &["prime256v1", "secp256r1", "P-256"],
);
pub static EC_P384: KeyAlgorithm = ec(
    4,
    "ec-p384",
    384,
    &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
    &["secp384r1", "P-384"],
);
pub static EC_P521: KeyAlgorithm = ec(
    5,
    "ec-p521",
    521,
    &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
    &["secp521r1", "P-521"],
);
/// sqlhsm extension.
pub static RSA_3072: KeyAlgorithm = rsa(101, "rsa-3072", Some(3072));
/// sqlhsm extension: RSA of any other size (imported keys, e.g. 1024 or 8192 bits, or generated
/// with such a `CKA_MODULUS_BITS`).
pub static RSA_OTHER: KeyAlgorithm = rsa(102, "rsa-other", None);
/// sqlhsm extension.
pub static ED25519: KeyAlgorithm = KeyAlgorithm {
    code: Some(103),
    generation: Some(CKM_EC_EDWARDS_KEY_PAIR_GEN),
    bits: Some(255),
    params_der: &[0x06, 0x03, 0x2b, 0x65, 0x70],
    curve_names: &["edwards25519"],
    public: PublicShape::EdwardsPoint,
    generate: Some(|_, _| PrivateKey::generate_ed25519()),
    private_from_value: Some(|_, seed| PrivateKey::from_ed25519_seed(seed)),
    public_from_point: Some(|_, point| PublicKey::from_ed25519_point(point)),
    ..row("ed25519", Family::Edwards, CKK_EC_EDWARDS)
};
/// sqlhsm extension.
pub static EC_SECP256K1: KeyAlgorithm = ec(
    104,
    "ec-secp256k1",
    256,
    &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a], // 1.3.132.0.10
    &["secp256k1"],
);
/// sqlhsm extension (RFC 5639).
pub static EC_BRAINPOOL_P256R1: KeyAlgorithm = ec(
    105,
    "ec-brainpoolp256r1",
    256,
    &[
        0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07,
    ], // 1.3.36.3.3.2.8.1.1.7
    &["brainpoolP256r1"],
);
/// sqlhsm extension (RFC 5639).
pub static EC_BRAINPOOL_P384R1: KeyAlgorithm = ec(
    106,
    "ec-brainpoolp384r1",
    384,
    &[
        0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b,
    ], // 1.3.36.3.3.2.8.1.1.11
    &["brainpoolP384r1"],
);
/// sqlhsm extension (RFC 5639).
pub static EC_BRAINPOOL_P512R1: KeyAlgorithm = ec(
    107,
    "ec-brainpoolp512r1",
    512,
    &[
        0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d,
    ], // 1.3.36.3.3.2.8.1.1.13
    &["brainpoolP512r1"],
);
/// sqlhsm extension.
pub static EC_P224: KeyAlgorithm = ec(
    108,
    "ec-p224",
    224,
    &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x21], // 1.3.132.0.33
    &["secp224r1", "P-224"],
);
/// sqlhsm extension.
pub static EC_P192: KeyAlgorithm = ec(
    109,
    "ec-p192",
    192,
    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01], // 1.2.840.10045.3.1.1
    &["prime192v1", "secp192r1", "P-192"],
);
/// sqlhsm extension (RFC 8032 Ed448; PKCS#11 counts its size as 448 bits).
pub static ED448: KeyAlgorithm = KeyAlgorithm {
    code: Some(110),
    generation: Some(CKM_EC_EDWARDS_KEY_PAIR_GEN),
    bits: Some(448),
    params_der: &[0x06, 0x03, 0x2b, 0x65, 0x71], // 1.3.101.113
    curve_names: &["edwards448"],
    public: PublicShape::EdwardsPoint,
    generate: Some(|_, _| PrivateKey::generate_ed448()),
    private_from_value: Some(|_, seed| PrivateKey::from_ed448_seed(seed)),
    public_from_point: Some(|_, point| PublicKey::from_ed448_point(point)),
    ..row("ed448", Family::Edwards, CKK_EC_EDWARDS)
};
/// sqlhsm extension (RFC 7748; PKCS#11 counts its size as 255 bits).
pub static X25519: KeyAlgorithm = KeyAlgorithm {
    code: Some(111),
    generation: Some(CKM_EC_MONTGOMERY_KEY_PAIR_GEN),
    bits: Some(255),
    params_der: &[0x06, 0x03, 0x2b, 0x65, 0x6e], // 1.3.101.110
    curve_names: &["curve25519"],
    public: PublicShape::EdwardsPoint,
    generate: Some(|_, _| PrivateKey::generate_x25519()),
    private_from_value: Some(|_, value| PrivateKey::from_x25519_value(value)),
    public_from_point: Some(|_, point| PublicKey::from_x25519_point(point)),
    ..row("x25519", Family::Montgomery, CKK_EC_MONTGOMERY)
};
/// sqlhsm extension (RFC 7748).
pub static X448: KeyAlgorithm = KeyAlgorithm {
    code: Some(112),
    generation: Some(CKM_EC_MONTGOMERY_KEY_PAIR_GEN),
    bits: Some(448),
    params_der: &[0x06, 0x03, 0x2b, 0x65, 0x6f], // 1.3.101.111
    curve_names: &["curve448"],
    public: PublicShape::EdwardsPoint,
    generate: Some(|_, _| PrivateKey::generate_x448()),
    private_from_value: Some(|_, value| PrivateKey::from_x448_value(value)),
    public_from_point: Some(|_, point| PublicKey::from_x448_point(point)),
    ..row("x448", Family::Montgomery, CKK_EC_MONTGOMERY)
};
/// An HMAC key type of PKCS#11 3.0 (`CKK_SHA256_HMAC`, …): a secret of any length, like a
/// generic secret, that its own hash's HMAC mechanisms take.
const fn hmac(
    name: &'static str,
    key_type: CK_KEY_TYPE,
    generation: CK_MECHANISM_TYPE,
) -> KeyAlgorithm {
    KeyAlgorithm {
        generation: Some(generation),
        ..row(name, Family::Secret, key_type)
    }
}

pub static AES_128: KeyAlgorithm = aes("aes-128", 128);
pub static AES_192: KeyAlgorithm = aes("aes-192", 192);
pub static AES_256: KeyAlgorithm = aes("aes-256", 256);
/// sqlhsm extension: AES-XTS (`CKK_AES_XTS`), two AES-128 keys.
pub static AES_128_XTS: KeyAlgorithm = secret(
    "aes-128-xts",
    CKK_AES_XTS,
    CKM_AES_XTS_KEY_GEN,
    256,
    Some(&XTS_VALUE),
);
/// sqlhsm extension: AES-XTS (`CKK_AES_XTS`), two AES-256 keys.
pub static AES_256_XTS: KeyAlgorithm = secret(
    "aes-256-xts",
    CKK_AES_XTS,
    CKM_AES_XTS_KEY_GEN,
    512,
    Some(&XTS_VALUE),
);
pub static CHACHA20: KeyAlgorithm =
    secret("chacha20", CKK_CHACHA20, CKM_CHACHA20_KEY_GEN, 256, None);
/// Double-length Triple DES (K1‖K2, used as K1‖K2‖K1).
pub static DES2: KeyAlgorithm = secret("des2", CKK_DES2, CKM_DES2_KEY_GEN, 128, Some(&DES_VALUE));
pub static DES3: KeyAlgorithm = secret("des3", CKK_DES3, CKM_DES3_KEY_GEN, 192, Some(&DES_VALUE));
/// Single DES: offered only with `[policy] allow_single_des` (its mechanisms; the keys are bytes).
pub static DES: KeyAlgorithm = secret("des", CKK_DES, CKM_DES_KEY_GEN, 64, Some(&DES_VALUE));
/// Secrets of any length (HMAC keys, derivation bases), and the secret keys of a type no other
/// row names.
pub static GENERIC_SECRET: KeyAlgorithm = KeyAlgorithm {
    generation: Some(CKM_GENERIC_SECRET_KEY_GEN),
    ..row("generic-secret", Family::Secret, CKK_GENERIC_SECRET)
};
/// HKDF keys (`CKK_HKDF`, PKCS#11 3.0 Current Mechanisms §2.43), of any length.
pub static HKDF: KeyAlgorithm = KeyAlgorithm {
    generation: Some(CKM_HKDF_KEY_GEN),
    ..row("hkdf", Family::Secret, CKK_HKDF)
};

pub static HMAC_SHA1: KeyAlgorithm = hmac("hmac-sha1", CKK_SHA_1_HMAC, CKM_SHA_1_KEY_GEN);
pub static HMAC_SHA224: KeyAlgorithm = hmac("hmac-sha224", CKK_SHA224_HMAC, CKM_SHA224_KEY_GEN);
pub static HMAC_SHA256: KeyAlgorithm = hmac("hmac-sha256", CKK_SHA256_HMAC, CKM_SHA256_KEY_GEN);
pub static HMAC_SHA384: KeyAlgorithm = hmac("hmac-sha384", CKK_SHA384_HMAC, CKM_SHA384_KEY_GEN);
pub static HMAC_SHA512: KeyAlgorithm = hmac("hmac-sha512", CKK_SHA512_HMAC, CKM_SHA512_KEY_GEN);
pub static HMAC_SHA3_224: KeyAlgorithm =
    hmac("hmac-sha3-224", CKK_SHA3_224_HMAC, CKM_SHA3_224_KEY_GEN);
pub static HMAC_SHA3_256: KeyAlgorithm =
    hmac("hmac-sha3-256", CKK_SHA3_256_HMAC, CKM_SHA3_256_KEY_GEN);
pub static HMAC_SHA3_384: KeyAlgorithm =
    hmac("hmac-sha3-384", CKK_SHA3_384_HMAC, CKM_SHA3_384_KEY_GEN);
pub static HMAC_SHA3_512: KeyAlgorithm =
    hmac("hmac-sha3-512", CKK_SHA3_512_HMAC, CKM_SHA3_512_KEY_GEN);

/// ML-KEM (FIPS 203): 768 and 1024 under OpenTDF's numbers, 512 a sqlhsm extension.
pub static ML_KEM_512: KeyAlgorithm = ml_kem(113, "ml-kem-512", CKP_ML_KEM_512, "ML-KEM-512", 800);
pub static ML_KEM_768: KeyAlgorithm = ml_kem(20, "ml-kem-768", CKP_ML_KEM_768, "ML-KEM-768", 1184);
pub static ML_KEM_1024: KeyAlgorithm =
    ml_kem(21, "ml-kem-1024", CKP_ML_KEM_1024, "ML-KEM-1024", 1568);
/// ML-DSA (FIPS 204), sqlhsm extensions.
pub static ML_DSA_44: KeyAlgorithm = ml_dsa(114, "ml-dsa-44", CKP_ML_DSA_44, "ML-DSA-44", 1312);
pub static ML_DSA_65: KeyAlgorithm = ml_dsa(115, "ml-dsa-65", CKP_ML_DSA_65, "ML-DSA-65", 1952);
pub static ML_DSA_87: KeyAlgorithm = ml_dsa(116, "ml-dsa-87", CKP_ML_DSA_87, "ML-DSA-87", 2592);
/// SLH-DSA (FIPS 205), all twelve parameter sets, sqlhsm extensions.
pub static SLH_DSA_SHA2_128S: KeyAlgorithm = slh_dsa(
    117,
    "slh-dsa-sha2-128s",
    CKP_SLH_DSA_SHA2_128S,
    "SLH-DSA-SHA2-128s",
    16,
);
pub static SLH_DSA_SHA2_128F: KeyAlgorithm = slh_dsa(
    118,
    "slh-dsa-sha2-128f",
    CKP_SLH_DSA_SHA2_128F,
    "SLH-DSA-SHA2-128f",
    16,
);
pub static SLH_DSA_SHA2_192S: KeyAlgorithm = slh_dsa(
    119,
    "slh-dsa-sha2-192s",
    CKP_SLH_DSA_SHA2_192S,
    "SLH-DSA-SHA2-192s",
    24,
);
pub static SLH_DSA_SHA2_192F: KeyAlgorithm = slh_dsa(
    120,
    "slh-dsa-sha2-192f",
    CKP_SLH_DSA_SHA2_192F,
    "SLH-DSA-SHA2-192f",
    24,
);
pub static SLH_DSA_SHA2_256S: KeyAlgorithm = slh_dsa(
    121,
    "slh-dsa-sha2-256s",
    CKP_SLH_DSA_SHA2_256S,
    "SLH-DSA-SHA2-256s",
    32,
);
pub static SLH_DSA_SHA2_256F: KeyAlgorithm = slh_dsa(
    122,
    "slh-dsa-sha2-256f",
    CKP_SLH_DSA_SHA2_256F,
    "SLH-DSA-SHA2-256f",
    32,
);
pub static SLH_DSA_SHAKE_128S: KeyAlgorithm = slh_dsa(
    123,
    "slh-dsa-shake-128s",
    CKP_SLH_DSA_SHAKE_128S,
    "SLH-DSA-SHAKE-128s",
    16,
);
pub static SLH_DSA_SHAKE_128F: KeyAlgorithm = slh_dsa(
    124,
    "slh-dsa-shake-128f",
    CKP_SLH_DSA_SHAKE_128F,
    "SLH-DSA-SHAKE-128f",
    16,
);
pub static SLH_DSA_SHAKE_192S: KeyAlgorithm = slh_dsa(
    125,
    "slh-dsa-shake-192s",
    CKP_SLH_DSA_SHAKE_192S,
    "SLH-DSA-SHAKE-192s",
    24,
);
pub static SLH_DSA_SHAKE_192F: KeyAlgorithm = slh_dsa(
    126,
    "slh-dsa-shake-192f",
    CKP_SLH_DSA_SHAKE_192F,
    "SLH-DSA-SHAKE-192f",
    24,
);
pub static SLH_DSA_SHAKE_256S: KeyAlgorithm = slh_dsa(
    127,
    "slh-dsa-shake-256s",
    CKP_SLH_DSA_SHAKE_256S,
    "SLH-DSA-SHAKE-256s",
    32,
);
pub static SLH_DSA_SHAKE_256F: KeyAlgorithm = slh_dsa(
    128,
    "slh-dsa-shake-256f",
    CKP_SLH_DSA_SHAKE_256F,
    "SLH-DSA-SHAKE-256f",
    32,
);

/// A hybrid KEM row (OpenTDF's key_algorithm 6–8, `crate::crypto::hybrid_kem`): a vendor key
/// type made by its own vendor key pair generation, its public key one value of OpenTDF's raw
/// public key (`CKA_VALUE`), its private key OpenTDF's raw private key (`CKA_VALUE`).
/// No parameter set: the key type names the construction. The constructors are the callers',
/// as a `const fn` cannot hand a [`HybridKem`] to a closure.
const fn hybrid(
    code: i32,
    name: &'static str,
    key_type: CK_KEY_TYPE,
    generation: CK_MECHANISM_TYPE,
    kem: HybridKem,
) -> KeyAlgorithm {
    KeyAlgorithm {
        code: Some(code),
        generation: Some(generation),
        bits: Some(8 * kem.public_key_len() as u32),
        public: PublicShape::Value,
        ..row(name, Family::Hybrid, key_type)
    }
}

/// X-Wing (draft-connolly-cfrg-xwing-kem-10), OpenTDF's key_algorithm 6.
pub static XWING: KeyAlgorithm = KeyAlgorithm {
    generate: Some(|_, _| PrivateKey::generate_hybrid(HybridKem::XWing)),
    private_from_value: Some(|_, value| PrivateKey::from_hybrid_private(HybridKem::XWing, value)),
    public_from_point: Some(|_, value| PublicKey::from_hybrid_public(HybridKem::XWing, value)),
    ..hybrid(
        6,
        "xwing",
        vendor::CKK_SQLHSM_XWING,
        vendor::CKM_SQLHSM_XWING_KEY_PAIR_GEN,
        HybridKem::XWing,
    )
};
/// ML-KEM-768 + ECDH P-256 (draft-ietf-lamps-pq-composite-kem), OpenTDF's key_algorithm 7.
pub static P256_ML_KEM_768: KeyAlgorithm = KeyAlgorithm {
    generate: Some(|_, _| PrivateKey::generate_hybrid(HybridKem::P256MlKem768)),
    private_from_value: Some(|_, value| {
        PrivateKey::from_hybrid_private(HybridKem::P256MlKem768, value)
    }),
    public_from_point: Some(|_, value| {
        PublicKey::from_hybrid_public(HybridKem::P256MlKem768, value)
    }),
    ..hybrid(
        7,
        "p256-ml-kem-768",
        vendor::CKK_SQLHSM_P256_ML_KEM_768,
        vendor::CKM_SQLHSM_P256_ML_KEM_768_KEY_PAIR_GEN,
        HybridKem::P256MlKem768,
    )
};
/// ML-KEM-1024 + ECDH P-384, OpenTDF's key_algorithm 8.
pub static P384_ML_KEM_1024: KeyAlgorithm = KeyAlgorithm {
    generate: Some(|_, _| PrivateKey::generate_hybrid(HybridKem::P384MlKem1024)),
    private_from_value: Some(|_, value| {
        PrivateKey::from_hybrid_private(HybridKem::P384MlKem1024, value)
    }),
    public_from_point: Some(|_, value| {
        PublicKey::from_hybrid_public(HybridKem::P384MlKem1024, value)
    }),
    ..hybrid(
        8,
        "p384-ml-kem-1024",
        vendor::CKK_SQLHSM_P384_ML_KEM_1024,
        vendor::CKM_SQLHSM_P384_ML_KEM_1024_KEY_PAIR_GEN,
        HybridKem::P384MlKem1024,
    )
};

/// Every row; the order is the order names are listed in.
pub static ALGORITHMS: &[&KeyAlgorithm] = &[
    &RSA_2048,
    &RSA_3072,
    &RSA_4096,
    &RSA_OTHER,
    &EC_P256,
    &EC_P384,
    &EC_P521,
    &EC_P224,
    &EC_P192,
    &EC_SECP256K1,
    &EC_BRAINPOOL_P256R1,
    &EC_BRAINPOOL_P384R1,
    &EC_BRAINPOOL_P512R1,
    &ED25519,
    &ED448,
    &X25519,
    &X448,
    &ML_KEM_512,
    &ML_KEM_768,
    &ML_KEM_1024,
    &ML_DSA_44,
    &ML_DSA_65,
    &ML_DSA_87,
    &SLH_DSA_SHA2_128S,
    &SLH_DSA_SHA2_128F,
    &SLH_DSA_SHA2_192S,
    &SLH_DSA_SHA2_192F,
    &SLH_DSA_SHA2_256S,
    &SLH_DSA_SHA2_256F,
    &SLH_DSA_SHAKE_128S,
    &SLH_DSA_SHAKE_128F,
    &SLH_DSA_SHAKE_192S,
    &SLH_DSA_SHAKE_192F,
    &SLH_DSA_SHAKE_256S,
    &SLH_DSA_SHAKE_256F,
    &XWING,
    &P256_ML_KEM_768,
    &P384_ML_KEM_1024,
    &AES_128,
    &AES_192,
    &AES_256,
    &AES_128_XTS,
    &AES_256_XTS,
    &CHACHA20,
    &DES2,
    &DES3,
    &DES,
    &GENERIC_SECRET,
    &HKDF,
    &HMAC_SHA1,
    &HMAC_SHA224,
    &HMAC_SHA256,
    &HMAC_SHA384,
    &HMAC_SHA512,
    &HMAC_SHA3_224,
    &HMAC_SHA3_256,
    &HMAC_SHA3_384,
    &HMAC_SHA3_512,
];

impl KeyAlgorithm {
    /// A fresh private key; `CKR_MECHANISM_INVALID` for rows sqlhsm cannot generate as key
    /// pairs (secret keys are random bytes, made by the caller).
    pub fn generate(&self, request: &Request<'_>) -> Result<PrivateKey> {
        let generate = self.generate.ok_or(Rv::MECHANISM_INVALID)?;
        generate(self, request)
    }

    /// A private key from `CKA_VALUE`; `CKR_ATTRIBUTE_VALUE_INVALID` where the shape has none.
    pub fn private_from_value(&self, value: &[u8]) -> Result<PrivateKey> {
        let make = self.private_from_value.ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?;
        make(self, value)
    }

    /// A private key from `CKA_SEED`; `CKR_ATTRIBUTE_VALUE_INVALID` where the row has none.
    pub fn private_from_seed(&self, seed: &[u8]) -> Result<PrivateKey> {
        let make = self.private_from_seed.ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?;
        make(self, seed)
    }

    /// A public key from `CKA_EC_POINT` (or, for [`PublicShape::Value`], `CKA_VALUE`);
    /// `CKR_ATTRIBUTE_VALUE_INVALID` where the shape has none.
    pub fn public_from_point(&self, point: &[u8]) -> Result<PublicKey> {
        let make = self.public_from_point.ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?;
        make(self, point)
    }

    /// A fresh secret value of `len` bytes for this row: random, made to follow the row's rules
    /// (drawn again while it hits a weak value).
    pub fn fresh_secret(&self, len: usize) -> Result<Zeroizing<Vec<u8>>> {
        let mut value = Zeroizing::new(vec![0u8; len]);
        // A weak draw has a probability below 2^-50: a second one is already a broken generator.
        for _ in 0..4 {
            crate::crypto::random::fill(&mut value)?;
            let Some(rules) = self.secret_value else {
                return Ok(value);
            };
            (rules.fix)(&mut value);
            if !(rules.redraw)(&value) {
                return Ok(value);
            }
        }
        Err(Rv::GENERAL_ERROR)?
    }

    /// The `key_algorithm` column's value; `CKR_GENERAL_ERROR` for a secret key's row (a bug:
    /// only `asym_key` rows have the column).
    pub fn code(&self) -> Result<i32> {
        Ok(self.code.ok_or(Rv::GENERAL_ERROR)?)
    }
}

/// The smallest and largest size in bits of a family's rows: the key sizes its mechanisms
/// advertise in `CK_MECHANISM_INFO` (EC: 256–521, Edwards: 255), so a new curve widens them.
pub const fn bits_range(family: Family) -> (CK_ULONG, CK_ULONG) {
    let (mut min, mut max) = (u32::MAX, 0);
    let mut i = 0;
    while i < ALGORITHMS.len() {
        if let (true, Some(bits)) = (
            ALGORITHMS[i].family as u8 == family as u8,
            ALGORITHMS[i].bits,
        ) {
            if bits < min {
                min = bits;
            }
            if bits > max {
                max = bits;
            }
        }
        i += 1;
    }
    (min as CK_ULONG, max as CK_ULONG)
}

/// The row of a `key_algorithm` number.
pub fn by_code(code: i32) -> Option<&'static KeyAlgorithm> {
    ALGORITHMS.iter().copied().find(|a| a.code == Some(code))
}

/// The row of a stored `key_algorithm`: an unknown number is a clear error, not a guess.
pub fn from_row(code: i32) -> Result<&'static KeyAlgorithm> {
    by_code(code).ok_or_else(|| {
        tracing::error!(code, "asym_key row has an unknown key_algorithm");
        Rv::DEVICE_ERROR.into()
    })
}

/// The row of a name (any case).
pub fn by_name(name: &str) -> Option<&'static KeyAlgorithm> {
    ALGORITHMS
        .iter()
        .copied()
        .find(|a| a.name.eq_ignore_ascii_case(name))
}

/// The rows a generation mechanism makes (all of one family).
pub fn generated_by(
    mechanism: CK_MECHANISM_TYPE,
) -> impl Iterator<Item = &'static KeyAlgorithm> + Clone {
    ALGORITHMS
        .iter()
        .copied()
        .filter(move |a| a.generation == Some(mechanism))
}

/// The curve `CKA_EC_PARAMS` names: its OID DER, or a DER PrintableString with one of the
/// curve's names. `CKR_CURVE_NOT_SUPPORTED` for a curve sqlhsm lacks (a well-formed OID, or a
/// name); `CKR_ATTRIBUTE_VALUE_INVALID` for anything that is not an ECParameters value at all.
pub fn by_ec_params(der: &[u8]) -> Result<&'static KeyAlgorithm> {
    let curves = || {
        ALGORITHMS
            .iter()
            .copied()
            .filter(|a| !a.params_der.is_empty())
    };
    if let Some(row) = curves().find(|a| a.params_der == der) {
        return Ok(row);
    }
    match printable_string(der) {
        Some(name) => curves()
            .find(|a| a.curve_names.contains(&name))
            .ok_or_else(|| Rv::CURVE_NOT_SUPPORTED.into()),
        None if is_der_oid(der) => Err(Rv::CURVE_NOT_SUPPORTED)?,
        None => Err(Rv::ATTRIBUTE_VALUE_INVALID)?,
    }
}

/// The curve of a key of type `key_type` that `CKA_EC_PARAMS` names, for generation: a curve of
/// another key type is `CKR_CURVE_NOT_SUPPORTED`, and so is any value for an Edwards or
/// Montgomery key.
pub fn curve_for(key_type: CK_KEY_TYPE, params: &[u8]) -> Result<&'static KeyAlgorithm> {
    match by_ec_params(params) {
        Ok(row) if row.key_type == key_type => Ok(row),
        Err(e) if key_type == CKK_EC => Err(e),
        _ => Err(Rv::CURVE_NOT_SUPPORTED)?,
    }
}

/// The row of an RSA key of `bits`.
pub fn rsa_of_bits(bits: u32) -> &'static KeyAlgorithm {
    ALGORITHMS
        .iter()
        .copied()
        .find(|a| a.family == Family::Rsa && a.bits == Some(bits))
        .unwrap_or(&RSA_OTHER)
}

/// The row of a key pair, from its public key; `CKR_CURVE_NOT_SUPPORTED` for a curve no row
/// names.
pub fn of_public(public: &PublicKey) -> Result<&'static KeyAlgorithm> {
    of_facts(public.facts()?, || public.curve_der(), || public.pq_name())
}

/// The row of a private key.
pub fn of_private(private: &PrivateKey) -> Result<&'static KeyAlgorithm> {
    of_facts(
        private.facts()?,
        || private.curve_der(),
        || private.pq_name(),
    )
}

fn of_facts(
    facts: KeyFacts,
    curve: impl FnOnce() -> Result<Option<Vec<u8>>>,
    pq_name: impl FnOnce() -> Option<&'static str>,
) -> Result<&'static KeyAlgorithm> {
    match facts.family {
        Family::MlKem | Family::MlDsa | Family::SlhDsa => {
            let name = pq_name().ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
            ALGORITHMS
                .iter()
                .copied()
                .find(|a| a.family == facts.family && a.openssl_name == name)
                .ok_or_else(|| Rv::KEY_TYPE_INCONSISTENT.into())
        }
        // The three hybrids' public keys differ in length, so the size tells them apart.
        Family::Hybrid => ALGORITHMS
            .iter()
            .copied()
            .find(|a| a.family == Family::Hybrid && a.bits == Some(facts.bits))
            .ok_or_else(|| Rv::KEY_TYPE_INCONSISTENT.into()),
        Family::Rsa => Ok(rsa_of_bits(facts.bits)),
        Family::Secret => Err(Rv::KEY_TYPE_INCONSISTENT)?,
        Family::Ec | Family::Edwards | Family::Montgomery => {
            let oid = curve()?.unwrap_or_default();
            ALGORITHMS
                .iter()
                .copied()
                .find(|a| a.family == facts.family && a.params_der == oid.as_slice())
                .ok_or_else(|| Rv::CURVE_NOT_SUPPORTED.into())
        }
    }
}

/// The row of a hybrid KEM key type (one row each: the key type names the construction);
/// `None` for other key types.
pub fn hybrid_of(key_type: CK_KEY_TYPE) -> Option<&'static KeyAlgorithm> {
    ALGORITHMS
        .iter()
        .copied()
        .find(|a| a.family == Family::Hybrid && a.key_type == key_type)
}

/// The one length in bytes a secret key of `key_type` can have (DES2, DES3, DES, ChaCha20), so
/// a template may leave `CKA_VALUE_LEN` out; `None` for types of several sizes or any size.
pub fn fixed_secret_len(key_type: CK_KEY_TYPE) -> Option<usize> {
    let mut rows = ALGORITHMS
        .iter()
        .filter(|a| a.family == Family::Secret && a.key_type == key_type);
    match (rows.next(), rows.next()) {
        (Some(row), None) => row.bits.map(|bits| bits as usize / 8),
        _ => None,
    }
}

/// The row of a secret key of `key_type` and `len` bytes (`None`: not known); a type no row names
/// is a generic secret. `None` only for an AES key of unknown length.
pub fn of_secret(key_type: CK_KEY_TYPE, len: Option<u64>) -> Option<&'static KeyAlgorithm> {
    let bits = len.and_then(|len| u32::try_from(len.checked_mul(8)?).ok());
    let of_type = || {
        ALGORITHMS
            .iter()
            .copied()
            .filter(move |a| a.family == Family::Secret && a.key_type == key_type)
    };
    match of_type().next() {
        None => Some(&GENERIC_SECRET),
        Some(_) => of_type().find(|a| a.bits.is_none() || (bits.is_some() && a.bits == bits)),
    }
}

/// Why a secret value is not a key of its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretFault {
    /// No row has that key type.
    KeyType,
    /// No row of that type has that length (an empty generic secret included).
    Length,
    /// The row's rules refuse it (DES parity, equal XTS halves).
    Value,
}

/// The row a secret key of `key_type` holding `value` belongs to (a type no row names is not a
/// secret key sqlhsm knows), or why none does. With `derived`, the row's fix (DES parity) is
/// applied first, as a derivation makes raw bytes (PKCS#11 3.0 §2.x: parity is set).
pub fn secret_row(
    key_type: CK_KEY_TYPE,
    value: &mut [u8],
    derived: bool,
) -> std::result::Result<&'static KeyAlgorithm, SecretFault> {
    let mut of_type = ALGORITHMS
        .iter()
        .copied()
        .filter(|a| a.family == Family::Secret && a.key_type == key_type)
        .peekable();
    if of_type.peek().is_none() {
        return Err(SecretFault::KeyType);
    }
    let bits = value
        .len()
        .checked_mul(8)
        .and_then(|b| u32::try_from(b).ok());
    let row = of_type
        .find(|a| a.bits.map_or(!value.is_empty(), |b| Some(b) == bits))
        .ok_or(SecretFault::Length)?;
    if let Some(rules) = row.secret_value {
        if derived {
            (rules.fix)(value);
        }
        if !(rules.valid)(value) {
            return Err(SecretFault::Value);
        }
    }
    Ok(row)
}

/// Whether `key_type` is a secret of any non-empty length — a generic secret or an HMAC key
/// type: what `C_CreateObject`, `C_UnwrapKey` and `C_DeriveKey` make of any value, and what
/// derivation takes as a base.
pub fn is_any_length_secret(key_type: CK_KEY_TYPE) -> bool {
    ALGORITHMS
        .iter()
        .any(|a| a.family == Family::Secret && a.key_type == key_type && a.bits.is_none())
}

/// The row of a post-quantum key type and `CKA_PARAMETER_SET`; `CKR_TEMPLATE_INCOMPLETE`
/// without one, `CKR_PARAMETER_SET_NOT_SUPPORTED` for a set no row offers.
pub fn by_parameter_set(
    key_type: CK_KEY_TYPE,
    parameter_set: Option<CK_ULONG>,
) -> Result<&'static KeyAlgorithm> {
    let set = parameter_set.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
    ALGORITHMS
        .iter()
        .copied()
        .find(|a| a.key_type == key_type && a.parameter_set == Some(set))
        .ok_or_else(|| Rv::PARAMETER_SET_NOT_SUPPORTED.into())
}

/// All `key_algorithm` numbers with the given PKCS#11 key type, for an indexed
/// `key_algorithm IN (…)`.
pub fn codes_for_key_type(key_type: CK_KEY_TYPE) -> Vec<i32> {
    ALGORITHMS
        .iter()
        .filter(|a| a.key_type == key_type)
        .filter_map(|a| a.code)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cryptoki_sys::{CKA_SEED, CKA_VALUE};

    fn printable(s: &str) -> Vec<u8> {
        let mut v = vec![0x13, s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    #[test]
    fn opentdf_numbering_is_kept() {
        assert_eq!(RSA_2048.code, Some(1));
        assert_eq!(ML_KEM_768.code, Some(20));
        assert_eq!(ML_KEM_1024.code, Some(21));
        assert_eq!(RSA_4096.code, Some(2));
        assert_eq!(EC_P256.code, Some(3));
        assert_eq!(EC_P384.code, Some(4));
        assert_eq!(EC_P521.code, Some(5));
        assert_eq!(RSA_3072.code, Some(101));
        assert_eq!(RSA_OTHER.code, Some(102));
        assert_eq!(ED25519.code, Some(103));
        let ours = [
            (&EC_SECP256K1, 104),
            (&EC_BRAINPOOL_P256R1, 105),
            (&EC_BRAINPOOL_P384R1, 106),
            (&EC_BRAINPOOL_P512R1, 107),
            (&EC_P224, 108),
            (&EC_P192, 109),
            (&ED448, 110),
            (&X25519, 111),
            (&X448, 112),
        ];
        for (row, code) in ours {
            assert_eq!(row.code, Some(code), "{}", row.name);
        }
        for a in ALGORITHMS {
            if let Some(code) = a.code {
                assert!(std::ptr::eq(by_code(code).unwrap(), *a));
                assert!(std::ptr::eq(from_row(code).unwrap(), *a));
            }
        }
        assert!(by_code(0).is_none());
        assert_eq!(from_row(0).unwrap_err().rv(), Rv::DEVICE_ERROR);
    }

    #[test]
    fn rows_are_consistent() {
        for (i, a) in ALGORITHMS.iter().enumerate() {
            for b in &ALGORITHMS[i + 1..] {
                assert_ne!(a.name, b.name);
                assert!(a.code.is_none() || a.code != b.code, "{}", a.name);
                assert!(a.params_der.is_empty() || a.params_der != b.params_der);
            }
            assert!(std::ptr::eq(by_name(a.name).unwrap(), *a));
            assert!(std::ptr::eq(by_name(&a.name.to_uppercase()).unwrap(), *a));
            // Asymmetric keys have a number, a public shape and a constructor; secrets none.
            let secret = a.family == Family::Secret;
            assert_eq!(a.code.is_none(), secret, "{}", a.name);
            assert_eq!(a.public == PublicShape::None, secret, "{}", a.name);
            assert_eq!(a.generate.is_none(), secret, "{}", a.name);
            // Curves, and only they, have an OID; they, post-quantum and hybrid keys build from
            // a value and a point (a post-quantum or hybrid public key's encoding).
            let curve = matches!(a.family, Family::Ec | Family::Edwards | Family::Montgomery);
            let pq = a.family.is_post_quantum();
            let hybrid = a.family == Family::Hybrid;
            assert_eq!(!a.params_der.is_empty(), curve, "{}", a.name);
            assert_eq!(
                a.private_from_value.is_some(),
                curve || pq || hybrid,
                "{}",
                a.name
            );
            assert_eq!(
                a.public_from_point.is_some(),
                curve || pq || hybrid,
                "{}",
                a.name
            );
            // Post-quantum keys, and only they, have a parameter set, an OpenSSL name and a
            // seed, and a public key that is one value.
            assert_eq!(a.parameter_set.is_some(), pq, "{}", a.name);
            assert_eq!(!a.openssl_name.is_empty(), pq, "{}", a.name);
            assert_eq!(a.private_from_seed.is_some(), pq, "{}", a.name);
            // Hybrid public keys are one value too, with no parameter set (the key type names
            // the construction).
            assert_eq!(a.public == PublicShape::Value, pq || hybrid, "{}", a.name);
            if hybrid {
                assert!(std::ptr::eq(hybrid_of(a.key_type).unwrap(), *a));
            }
            if pq {
                let set = a.parameter_set;
                assert!(std::ptr::eq(by_parameter_set(a.key_type, set).unwrap(), *a));
            }
            assert!(a.secret_value.is_none() || secret, "{}", a.name);
            if curve {
                assert!(std::ptr::eq(by_ec_params(a.params_der).unwrap(), *a));
                for name in a.curve_names {
                    assert!(std::ptr::eq(by_ec_params(&printable(name)).unwrap(), *a));
                }
            }
            // One generation mechanism makes one family.
            if let Some(mechanism) = a.generation {
                assert!(generated_by(mechanism).all(|b| b.family == a.family));
            }
        }
        assert!(by_name("p256").is_none(), "one spelling");
    }

    #[test]
    fn oids_are_crypto_test_curves() {
        use crate::crypto::test_keys::{CURVES, ED25519_OID};
        let table: Vec<&[u8]> = [&EC_P256, &EC_P384, &EC_P521]
            .iter()
            .map(|a| a.params_der)
            .collect();
        assert_eq!(table, CURVES);
        assert_eq!(ED25519.params_der, ED25519_OID);
    }

    #[test]
    fn curve_params() {
        assert!(std::ptr::eq(
            by_ec_params(&printable("prime256v1")).unwrap(),
            &EC_P256
        ));
        assert!(std::ptr::eq(
            by_ec_params(&printable("secp256r1")).unwrap(),
            &EC_P256
        ));
        assert!(std::ptr::eq(
            by_ec_params(&printable("P-256")).unwrap(),
            &EC_P256
        ));
        assert!(std::ptr::eq(
            by_ec_params(&printable("secp384r1")).unwrap(),
            &EC_P384
        ));
        assert!(std::ptr::eq(
            by_ec_params(&printable("secp521r1")).unwrap(),
            &EC_P521
        ));
        assert!(std::ptr::eq(
            by_ec_params(&printable("edwards25519")).unwrap(),
            &ED25519
        ));
        // For an EC key, Ed25519's OID names no curve.
        let err = curve_for(CKK_EC, ED25519.params_der).unwrap_err();
        assert_eq!(err.rv(), Rv::CURVE_NOT_SUPPORTED);
        assert_eq!(
            curve_for(CKK_EC, &printable("secp160r1")).unwrap_err().rv(),
            Rv::CURVE_NOT_SUPPORTED
        );
        let secp160r1_oid = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x08];
        assert_eq!(
            by_ec_params(&secp160r1_oid).unwrap_err().rv(),
            Rv::CURVE_NOT_SUPPORTED
        );
        // The new curves, by OID and by each of their names.
        for (name, row) in [
            ("secp256k1", &EC_SECP256K1),
            ("brainpoolP256r1", &EC_BRAINPOOL_P256R1),
            ("brainpoolP384r1", &EC_BRAINPOOL_P384R1),
            ("brainpoolP512r1", &EC_BRAINPOOL_P512R1),
            ("secp224r1", &EC_P224),
            ("P-224", &EC_P224),
            ("prime192v1", &EC_P192),
            ("P-192", &EC_P192),
        ] {
            assert!(std::ptr::eq(
                curve_for(CKK_EC, &printable(name)).unwrap(),
                row
            ));
            assert!(std::ptr::eq(
                curve_for(CKK_EC, row.params_der).unwrap(),
                row
            ));
        }
        assert!(std::ptr::eq(
            curve_for(CKK_EC_EDWARDS, &printable("edwards448")).unwrap(),
            &ED448
        ));
        for (name, row) in [("curve25519", &X25519), ("curve448", &X448)] {
            assert!(std::ptr::eq(
                curve_for(CKK_EC_MONTGOMERY, &printable(name)).unwrap(),
                row
            ));
            // A Montgomery curve is no EC or Edwards curve, and the reverse.
            for other in [CKK_EC, CKK_EC_EDWARDS] {
                let err = curve_for(other, row.params_der).unwrap_err();
                assert_eq!(err.rv(), Rv::CURVE_NOT_SUPPORTED);
            }
        }
        let err = curve_for(CKK_EC_MONTGOMERY, ED25519.params_der).unwrap_err();
        assert_eq!(err.rv(), Rv::CURVE_NOT_SUPPORTED);
        assert_eq!(
            curve_for(CKK_EC, &[]).unwrap_err().rv(),
            Rv::ATTRIBUTE_VALUE_INVALID
        );
        // For an Edwards key, anything but an Edwards curve is unsupported.
        assert!(std::ptr::eq(
            curve_for(CKK_EC_EDWARDS, ED25519.params_der).unwrap(),
            &ED25519
        ));
        for other in [EC_P256.params_der, &[][..], &printable("curve448")] {
            let err = curve_for(CKK_EC_EDWARDS, other).unwrap_err();
            assert_eq!(err.rv(), Rv::CURVE_NOT_SUPPORTED);
        }
    }

    #[test]
    fn keys_find_their_rows() {
        use crate::crypto::test_keys;
        assert!(std::ptr::eq(
            of_private(&test_keys::rsa_2048()).unwrap(),
            &RSA_2048
        ));
        for a in [&EC_P256, &EC_P384, &EC_P521] {
            let key = test_keys::ec(a.params_der);
            assert!(std::ptr::eq(of_private(&key).unwrap(), a));
            assert!(std::ptr::eq(
                of_public(&key.public_key().unwrap()).unwrap(),
                a
            ));
        }
        let ed = test_keys::ed25519();
        assert!(std::ptr::eq(of_private(&ed).unwrap(), &ED25519));
        // Every new curve: generated by its row, found again from the key, through its
        // constructors from value and point.
        for row in [
            &EC_SECP256K1,
            &EC_BRAINPOOL_P256R1,
            &EC_BRAINPOOL_P384R1,
            &EC_BRAINPOOL_P512R1,
            &EC_P224,
            &EC_P192,
            &ED448,
            &X25519,
            &X448,
        ] {
            let key = row.generate(&Request::default()).unwrap();
            assert!(std::ptr::eq(of_private(&key).unwrap(), row), "{}", row.name);
            let public = key.public_key().unwrap();
            assert!(
                std::ptr::eq(of_public(&public).unwrap(), row),
                "{}",
                row.name
            );
            assert_eq!(key.facts().unwrap().bits, row.bits.unwrap(), "{}", row.name);
            let value = key
                .private_component(cryptoki_sys::CKA_VALUE)
                .unwrap()
                .unwrap();
            let again = row.private_from_value(&value).unwrap();
            assert_eq!(again.public_values().unwrap(), key.public_values().unwrap());
            let crate::crypto::keys::PublicValues::Point {
                params_der,
                point_der,
            } = key.public_values().unwrap()
            else {
                panic!("not a point")
            };
            assert_eq!(params_der, row.params_der, "{}", row.name);
            let public = row.public_from_point(&point_der).unwrap();
            assert_eq!(
                public.public_values().unwrap(),
                key.public_values().unwrap()
            );
        }
        assert!(std::ptr::eq(rsa_of_bits(3072), &RSA_3072));
        assert!(std::ptr::eq(rsa_of_bits(1024), &RSA_OTHER));
        // Ed25519 from printable params: the row's constructors take the value and the point.
        let row = by_ec_params(&printable("edwards25519")).unwrap();
        let seed = ed
            .private_component(cryptoki_sys::CKA_VALUE)
            .unwrap()
            .unwrap();
        let again = row.private_from_value(&seed).unwrap();
        assert_eq!(again.public_values().unwrap(), ed.public_values().unwrap());
        let crate::crypto::keys::PublicValues::Point { point_der, .. } =
            ed.public_values().unwrap()
        else {
            panic!("not a point")
        };
        let public = row.public_from_point(&point_der).unwrap();
        assert_eq!(public.public_values().unwrap(), ed.public_values().unwrap());
        assert!(RSA_2048.public_from_point(&point_der).is_err());
    }

    /// Every post-quantum parameter set: its number, `CKP_*`, generated by its row and found
    /// again from the key, rebuilt from its seed, its expanded form and its public encoding.
    #[test]
    fn post_quantum_rows() {
        use crate::crypto::keys::PublicValues;
        let expected: [(&KeyAlgorithm, i32, CK_KEY_TYPE, CK_ULONG, usize); 18] = [
            (&ML_KEM_512, 113, CKK_ML_KEM, CKP_ML_KEM_512, 800),
            (&ML_KEM_768, 20, CKK_ML_KEM, CKP_ML_KEM_768, 1184),
            (&ML_KEM_1024, 21, CKK_ML_KEM, CKP_ML_KEM_1024, 1568),
            (&ML_DSA_44, 114, CKK_ML_DSA, CKP_ML_DSA_44, 1312),
            (&ML_DSA_65, 115, CKK_ML_DSA, CKP_ML_DSA_65, 1952),
            (&ML_DSA_87, 116, CKK_ML_DSA, CKP_ML_DSA_87, 2592),
            (
                &SLH_DSA_SHA2_128S,
                117,
                CKK_SLH_DSA,
                CKP_SLH_DSA_SHA2_128S,
                32,
            ),
            (
                &SLH_DSA_SHA2_128F,
                118,
                CKK_SLH_DSA,
                CKP_SLH_DSA_SHA2_128F,
                32,
            ),
            (
                &SLH_DSA_SHA2_192S,
                119,
                CKK_SLH_DSA,
                CKP_SLH_DSA_SHA2_192S,
                48,
            ),
            (
                &SLH_DSA_SHA2_192F,
                120,
                CKK_SLH_DSA,
                CKP_SLH_DSA_SHA2_192F,
                48,
            ),
            (
                &SLH_DSA_SHA2_256S,
                121,
                CKK_SLH_DSA,
                CKP_SLH_DSA_SHA2_256S,
                64,
            ),
            (
                &SLH_DSA_SHA2_256F,
                122,
                CKK_SLH_DSA,
                CKP_SLH_DSA_SHA2_256F,
                64,
            ),
            (
                &SLH_DSA_SHAKE_128S,
                123,
                CKK_SLH_DSA,
                CKP_SLH_DSA_SHAKE_128S,
                32,
            ),
            (
                &SLH_DSA_SHAKE_128F,
                124,
                CKK_SLH_DSA,
                CKP_SLH_DSA_SHAKE_128F,
                32,
            ),
            (
                &SLH_DSA_SHAKE_192S,
                125,
                CKK_SLH_DSA,
                CKP_SLH_DSA_SHAKE_192S,
                48,
            ),
            (
                &SLH_DSA_SHAKE_192F,
                126,
                CKK_SLH_DSA,
                CKP_SLH_DSA_SHAKE_192F,
                48,
            ),
            (
                &SLH_DSA_SHAKE_256S,
                127,
                CKK_SLH_DSA,
                CKP_SLH_DSA_SHAKE_256S,
                64,
            ),
            (
                &SLH_DSA_SHAKE_256F,
                128,
                CKK_SLH_DSA,
                CKP_SLH_DSA_SHAKE_256F,
                64,
            ),
        ];
        let pq_rows = ALGORITHMS.iter().filter(|a| a.family.is_post_quantum());
        assert_eq!(pq_rows.count(), expected.len());
        for (row, code, key_type, set, public_len) in expected {
            assert_eq!(row.code, Some(code), "{}", row.name);
            assert_eq!(row.key_type, key_type, "{}", row.name);
            assert_eq!(row.parameter_set, Some(set), "{}", row.name);
            let key = row.generate(&Request::default()).unwrap();
            assert!(std::ptr::eq(of_private(&key).unwrap(), row), "{}", row.name);
            let public = key.public_key().unwrap();
            assert!(
                std::ptr::eq(of_public(&public).unwrap(), row),
                "{}",
                row.name
            );
            let facts = key.facts().unwrap();
            assert_eq!((facts.family, facts.bytes()), (row.family, public_len));
            let PublicValues::Encoded { value } = public.public_values().unwrap() else {
                panic!("{}: not an encoded public key", row.name)
            };
            assert_eq!(value.len(), public_len, "{}", row.name);
            let again = row.public_from_point(&value).unwrap();
            assert_eq!(again.to_spki_der().unwrap(), public.to_spki_der().unwrap());
            // Seed and expanded form each give the same pair back.
            let seed = key.private_component(CKA_SEED).unwrap().unwrap();
            let from_seed = row.private_from_seed(&seed).unwrap();
            assert_eq!(
                from_seed.public_values().unwrap(),
                key.public_values().unwrap()
            );
            let expanded = key.private_component(CKA_VALUE).unwrap().unwrap();
            let from_expanded = row.private_from_value(&expanded).unwrap();
            assert_eq!(
                from_expanded.public_values().unwrap(),
                key.public_values().unwrap()
            );
            // Wrong lengths are invalid values, not errors of the module.
            for bad in [&seed[1..], &expanded[1..]] {
                let err = row.private_from_seed(bad).unwrap_err();
                assert_eq!(err.rv(), Rv::ATTRIBUTE_VALUE_INVALID, "{}", row.name);
            }
            let err = row.public_from_point(&value[1..]).unwrap_err();
            assert_eq!(err.rv(), Rv::ATTRIBUTE_VALUE_INVALID, "{}", row.name);
        }
        assert_eq!(
            by_parameter_set(CKK_ML_DSA, Some(CKP_ML_DSA_87 + 1))
                .unwrap_err()
                .rv(),
            Rv::PARAMETER_SET_NOT_SUPPORTED
        );
        assert_eq!(
            by_parameter_set(CKK_ML_KEM, None).unwrap_err().rv(),
            Rv::TEMPLATE_INCOMPLETE
        );
        assert_eq!(bits_range(Family::MlKem), (800 * 8, 1568 * 8));
        assert_eq!(bits_range(Family::MlDsa), (1312 * 8, 2592 * 8));
        assert_eq!(bits_range(Family::SlhDsa), (32 * 8, 64 * 8));
    }

    /// OpenTDF's hybrids: its numbers 6–8, the vendor key types and generations, generated by
    /// their rows and found again from the keys (by size), rebuilt from their values.
    #[test]
    fn hybrid_rows() {
        let expected = [
            (&XWING, 6, vendor::CKK_SQLHSM_XWING, 1216),
            (
                &P256_ML_KEM_768,
                7,
                vendor::CKK_SQLHSM_P256_ML_KEM_768,
                1249,
            ),
            (
                &P384_ML_KEM_1024,
                8,
                vendor::CKK_SQLHSM_P384_ML_KEM_1024,
                1665,
            ),
        ];
        let hybrid_rows = ALGORITHMS.iter().filter(|a| a.family == Family::Hybrid);
        assert_eq!(hybrid_rows.count(), expected.len());
        for (row, code, key_type, public_len) in expected {
            assert_eq!(
                (row.code, row.key_type),
                (Some(code), key_type),
                "{}",
                row.name
            );
            assert!(std::ptr::eq(by_code(code).unwrap(), row));
            let made: Vec<_> = generated_by(row.generation.unwrap()).collect();
            assert_eq!(made.len(), 1);
            assert!(std::ptr::eq(made[0], row));
            let key = row.generate(&Request::default()).unwrap();
            assert!(std::ptr::eq(of_private(&key).unwrap(), row), "{}", row.name);
            let public = key.public_key().unwrap();
            assert!(
                std::ptr::eq(of_public(&public).unwrap(), row),
                "{}",
                row.name
            );
            assert_eq!(key.facts().unwrap().bytes(), public_len);
            let value = key.private_component(CKA_VALUE).unwrap().unwrap();
            let again = row.private_from_value(&value).unwrap();
            assert_eq!(again.public_values().unwrap(), key.public_values().unwrap());
            let crate::crypto::keys::PublicValues::Encoded { value } =
                public.public_values().unwrap()
            else {
                panic!("{}: not an encoded public key", row.name)
            };
            let again = row.public_from_point(&value).unwrap();
            assert_eq!(again.to_spki_der().unwrap(), public.to_spki_der().unwrap());
        }
        assert!(hybrid_of(CKK_ML_KEM).is_none());
        assert_eq!(bits_range(Family::Hybrid), (1216 * 8, 1665 * 8));
    }

    #[test]
    fn family_sizes() {
        assert_eq!(bits_range(Family::Ec), (192, 521));
        assert_eq!(bits_range(Family::Edwards), (255, 448));
        assert_eq!(bits_range(Family::Montgomery), (255, 448));
        assert_eq!(bits_range(Family::Rsa), (2048, 4096));
    }

    #[test]
    fn secrets() {
        assert!(std::ptr::eq(
            of_secret(CKK_AES, Some(16)).unwrap(),
            &AES_128
        ));
        assert!(std::ptr::eq(
            of_secret(CKK_AES, Some(32)).unwrap(),
            &AES_256
        ));
        assert!(of_secret(CKK_AES, None).is_none());
        let generic = of_secret(CKK_GENERIC_SECRET, Some(20)).unwrap();
        assert!(std::ptr::eq(generic, &GENERIC_SECRET));
        assert!(std::ptr::eq(of_secret(CKK_DES3, Some(24)).unwrap(), &DES3));
        assert!(std::ptr::eq(
            of_secret(CKK_AES_XTS, Some(64)).unwrap(),
            &AES_256_XTS
        ));
        assert!(std::ptr::eq(
            of_secret(cryptoki_sys::CKK_BLOWFISH, Some(16)).unwrap(),
            &GENERIC_SECRET
        ));
        assert_eq!(AES_128.code().unwrap_err().rv(), Rv::GENERAL_ERROR);
        // The HMAC key types are rows of any length, made by their own mechanism.
        for (row, key_type, generation) in [
            (&HMAC_SHA1, CKK_SHA_1_HMAC, CKM_SHA_1_KEY_GEN),
            (&HMAC_SHA224, CKK_SHA224_HMAC, CKM_SHA224_KEY_GEN),
            (&HMAC_SHA256, CKK_SHA256_HMAC, CKM_SHA256_KEY_GEN),
            (&HMAC_SHA384, CKK_SHA384_HMAC, CKM_SHA384_KEY_GEN),
            (&HMAC_SHA512, CKK_SHA512_HMAC, CKM_SHA512_KEY_GEN),
            (&HMAC_SHA3_224, CKK_SHA3_224_HMAC, CKM_SHA3_224_KEY_GEN),
            (&HMAC_SHA3_256, CKK_SHA3_256_HMAC, CKM_SHA3_256_KEY_GEN),
            (&HMAC_SHA3_384, CKK_SHA3_384_HMAC, CKM_SHA3_384_KEY_GEN),
            (&HMAC_SHA3_512, CKK_SHA3_512_HMAC, CKM_SHA3_512_KEY_GEN),
        ] {
            assert!(std::ptr::eq(of_secret(key_type, Some(7)).unwrap(), row));
            assert!(std::ptr::eq(of_secret(key_type, None).unwrap(), row));
            let made: Vec<_> = generated_by(generation).collect();
            assert_eq!(made.len(), 1);
            assert!(std::ptr::eq(made[0], row));
            assert!(is_any_length_secret(key_type));
        }
        assert!(is_any_length_secret(CKK_GENERIC_SECRET));
        assert!(!is_any_length_secret(CKK_AES));
        assert!(!is_any_length_secret(CKK_DES3));
        assert!(!is_any_length_secret(CKK_RSA));
    }

    #[test]
    fn fixed_lengths() {
        assert_eq!(fixed_secret_len(CKK_DES3), Some(24));
        assert_eq!(fixed_secret_len(CKK_DES2), Some(16));
        assert_eq!(fixed_secret_len(CKK_DES), Some(8));
        assert_eq!(fixed_secret_len(CKK_CHACHA20), Some(32));
        for several_or_any in [
            CKK_AES,
            CKK_AES_XTS,
            CKK_GENERIC_SECRET,
            CKK_SHA256_HMAC,
            CKK_RSA,
        ] {
            assert_eq!(fixed_secret_len(several_or_any), None);
        }
    }

    #[test]
    fn secret_values() {
        let mut des3 = hex::decode("0123456789abcdef23456789abcdef01456789abcdef0123").unwrap();
        assert!(std::ptr::eq(
            secret_row(CKK_DES3, &mut des3, false).unwrap(),
            &DES3
        ));
        assert_eq!(
            secret_row(CKK_DES2, &mut des3, false).unwrap_err(),
            SecretFault::Length
        );
        // A parity bit wrong: refused as given, fixed when derived.
        des3[0] ^= 1;
        assert_eq!(
            secret_row(CKK_DES3, &mut des3, false).unwrap_err(),
            SecretFault::Value
        );
        assert!(secret_row(CKK_DES3, &mut des3, true).is_ok());
        assert_eq!(des3[0], 0x01);
        let mut xts = [7u8; 64];
        assert_eq!(
            secret_row(CKK_AES_XTS, &mut xts, false).unwrap_err(),
            SecretFault::Value
        );
        xts[0] = 8;
        assert!(std::ptr::eq(
            secret_row(CKK_AES_XTS, &mut xts, false).unwrap(),
            &AES_256_XTS
        ));
        assert_eq!(
            secret_row(CKK_AES_XTS, &mut [1u8; 48], false).unwrap_err(),
            SecretFault::Length
        );
        assert_eq!(
            secret_row(CKK_GENERIC_SECRET, &mut [], false).unwrap_err(),
            SecretFault::Length
        );
        assert!(std::ptr::eq(
            secret_row(CKK_GENERIC_SECRET, &mut [1], false).unwrap(),
            &GENERIC_SECRET
        ));
        assert_eq!(
            secret_row(cryptoki_sys::CKK_BLOWFISH, &mut [1; 16], false).unwrap_err(),
            SecretFault::KeyType
        );
        // Fresh DES keys have parity, no weak or repeated part; fresh XTS keys distinct halves.
        for _ in 0..32 {
            for row in [&DES, &DES2, &DES3] {
                let mut v = row.fresh_secret(row.bits.unwrap() as usize / 8).unwrap();
                assert!(v.iter().all(|&b| b.count_ones() % 2 == 1));
                assert!(!(DES_VALUE.redraw)(&v));
                assert!(std::ptr::eq(
                    secret_row(row.key_type, &mut v, false).unwrap(),
                    row
                ));
            }
            let v = AES_128_XTS.fresh_secret(32).unwrap();
            assert_ne!(v[..16], v[16..]);
        }
        // The weak-key list has parity, and every weak key is redrawn.
        for weak in DES_WEAK_KEYS {
            assert!((DES_VALUE.valid)(&weak));
            assert!((DES_VALUE.redraw)(&weak));
        }
        let k = hex::decode("0123456789abcdef").unwrap();
        assert!((DES_VALUE.redraw)(&[&k[..], &k[..]].concat()), "K1 = K2");
        let k3 = hex::decode("0123456789abcdef23456789abcdef010123456789abcdef").unwrap();
        assert!((DES_VALUE.redraw)(&k3), "K1 = K3");
        assert_eq!(odd_parity(0x00), 0x01);
        assert_eq!(odd_parity(0x01), 0x01);
        assert_eq!(odd_parity(0xff), 0xfe);
    }

    #[test]
    fn key_type_codes_cover_every_algorithm() {
        let mut all: Vec<i32> = [
            CKK_RSA,
            CKK_EC,
            CKK_EC_EDWARDS,
            CKK_EC_MONTGOMERY,
            CKK_ML_KEM,
            CKK_ML_DSA,
            CKK_SLH_DSA,
            vendor::CKK_SQLHSM_XWING,
            vendor::CKK_SQLHSM_P256_ML_KEM_768,
            vendor::CKK_SQLHSM_P384_ML_KEM_1024,
        ]
        .into_iter()
        .flat_map(codes_for_key_type)
        .collect();
        all.sort();
        let mut expected: Vec<i32> = ALGORITHMS.iter().filter_map(|a| a.code).collect();
        expected.sort();
        assert_eq!(all, expected);
        assert!(codes_for_key_type(CKK_AES).is_empty());
    }
}

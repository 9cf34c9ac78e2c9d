//! Independent checks with OpenSSL: the module's public keys and signatures read back into
//! OpenSSL, the DER wrapping of `CKA_EC_POINT`, and where the libp11 engine is.

use std::path::{Path, PathBuf};
use std::process::Command;

use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use cryptoki::session::Session;

use super::{get_attr, get_bytes, P256, P384, P521};

/// Strips the DER OCTET STRING around `CKA_EC_POINT`.
pub fn unwrap_octet_string(der: &[u8]) -> Vec<u8> {
    assert_eq!(
        der.first(),
        Some(&0x04),
        "CKA_EC_POINT is a DER OCTET STRING"
    );
    let (len, hdr) = match der[1] {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (der[2] as usize, 3),
        0x82 => (((der[2] as usize) << 8) | der[3] as usize, 4),
        n => panic!("unexpected DER length byte {n:#x}"),
    };
    assert_eq!(der.len(), hdr + len, "OCTET STRING length");
    der[hdr..].to_vec()
}

/// Wraps `bytes` in a DER OCTET STRING.
pub fn octet_string(bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![0x04];
    match bytes.len() {
        n if n < 0x80 => v.push(n as u8),
        n if n < 0x100 => v.extend([0x81, n as u8]),
        n => v.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    v.extend_from_slice(bytes);
    v
}

/// The public half read back from the module as an OpenSSL key.
pub fn openssl_public(
    s: &Session,
    public: ObjectHandle,
) -> openssl::pkey::PKey<openssl::pkey::Public> {
    use openssl::bn::{BigNum, BigNumContext};
    use openssl::ec::{EcGroup, EcKey, EcPoint};
    use openssl::nid::Nid;
    use openssl::pkey::{Id, PKey};
    use openssl::rsa::Rsa;

    let kt = match get_attr(s, public, AttributeType::KeyType) {
        Attribute::KeyType(k) => k,
        other => panic!("{other:?}"),
    };
    if kt == KeyType::RSA {
        let n = get_bytes(s, public, AttributeType::Modulus);
        let e = get_bytes(s, public, AttributeType::PublicExponent);
        let rsa = Rsa::from_public_components(
            BigNum::from_slice(&n).expect("n"),
            BigNum::from_slice(&e).expect("e"),
        )
        .expect("rsa");
        PKey::from_rsa(rsa).expect("pkey")
    } else if kt == KeyType::EC {
        let params = get_bytes(s, public, AttributeType::EcParams);
        let nid = if params == P256 {
            Nid::X9_62_PRIME256V1
        } else if params == P384 {
            Nid::SECP384R1
        } else if params == P521 {
            Nid::SECP521R1
        } else {
            panic!("unexpected CKA_EC_PARAMS {params:02x?}")
        };
        let group = EcGroup::from_curve_name(nid).expect("group");
        let point = unwrap_octet_string(&get_bytes(s, public, AttributeType::EcPoint));
        let mut bn = BigNumContext::new().expect("bn ctx");
        let point = EcPoint::from_bytes(&group, &point, &mut bn).expect("EC point");
        PKey::from_ec_key(EcKey::from_public_key(&group, &point).expect("ec key")).expect("pkey")
    } else if kt == KeyType::EC_EDWARDS {
        let point = unwrap_octet_string(&get_bytes(s, public, AttributeType::EcPoint));
        assert_eq!(point.len(), 32, "Ed25519 public key");
        PKey::public_key_from_raw_bytes(&point, Id::ED25519).expect("ed25519")
    } else {
        panic!("unexpected key type {kt:?}")
    }
}

/// Converts a raw `r‖s` ECDSA signature to DER for OpenSSL.
pub fn ecdsa_raw_to_der(sig: &[u8]) -> Vec<u8> {
    use openssl::bn::BigNum;
    assert!(sig.len().is_multiple_of(2), "raw r||s has even length");
    let (r, s) = sig.split_at(sig.len() / 2);
    openssl::ecdsa::EcdsaSig::from_private_components(
        BigNum::from_slice(r).expect("r"),
        BigNum::from_slice(s).expect("s"),
    )
    .expect("sig")
    .to_der()
    .expect("der")
}

/// The libp11 engine, where `openssl version -e` says engines are (Debian's
/// `libengine-pkcs11-openssl` puts it there).
pub fn libp11_engine() -> Option<PathBuf> {
    let out = Command::new("openssl")
        .args(["version", "-e"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let dir = text.split('"').nth(1)?;
    Some(Path::new(dir).join("pkcs11.so")).filter(|p| p.exists())
}

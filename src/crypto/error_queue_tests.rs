//! Every operation of this module, succeeding or refusing its input, leaves the thread's OpenSSL
//! error queue (sqlhsm's own copy's) empty: an error left there would be taken by a later,
//! unrelated call for its own (a TLS read on the PostgreSQL connection fails when
//! `SSL_get_error` finds a stale error), and would be reported as that call's cause.

use openssl::error::ErrorStack;

use super::cipher::{self, RsaEncPadding};
use super::digest::HashAlg;
use super::keys::{PrivateKey, PublicKey, RsaPrivateComponents};
use super::sign::{self, PssParams, RsaPadding};
use super::test_keys;
use super::wrap::KeyWrap;
use super::{aead, ecdh, mac, x509};

/// A named operation to run on an empty queue.
type Case<'a> = (&'static str, Box<dyn Fn() + 'a>);

/// Runs each case on an empty queue and names those that leave something behind.
fn leaks(cases: Vec<Case<'_>>) -> Vec<String> {
    let mut leaked = Vec::new();
    for (name, case) in cases {
        let _ = ErrorStack::get();
        case();
        let left = ErrorStack::get();
        if !left.errors().is_empty() {
            leaked.push(format!("{name}: {left}"));
        }
    }
    leaked
}

#[test]
fn refused_input_leaves_no_error_behind() {
    let rsa = test_keys::rsa_2048();
    let rsa_pub = rsa.public_key().unwrap();
    let ec = test_keys::ec(crate::crypto::test_keys::P256);
    let ec_pub = ec.public_key().unwrap();
    let ed = test_keys::ed25519();
    let ed_pub = ed.public_key().unwrap();
    let pss = RsaPadding::Pss(PssParams {
        hash: HashAlg::Sha256,
        mgf1: HashAlg::Sha256,
        salt_len: 32,
    });
    let pkcs1 = RsaPadding::Pkcs1(Some(HashAlg::Sha256));
    let digest = [0x11u8; 32];
    let p256 = crate::crypto::test_keys::P256;
    // Field-sized halves of an ECDSA signature that are out of range (0, and above the order).
    let zero_r: Vec<u8> = [[0u8; 32], [1u8; 32]].concat();
    let big_r: Vec<u8> = [[0xffu8; 32], [1u8; 32]].concat();
    let cases: Vec<Case<'_>> = vec![
        (
            "ECDSA verify, wrong signature",
            Box::new(|| assert!(!sign::ecdsa_verify(&ec_pub, &digest, &[1u8; 64]).unwrap())),
        ),
        (
            "ECDSA verify, r = 0",
            Box::new(|| assert!(!sign::ecdsa_verify(&ec_pub, &digest, &zero_r).unwrap())),
        ),
        (
            "ECDSA verify, r above the order",
            Box::new(|| assert!(!sign::ecdsa_verify(&ec_pub, &digest, &big_r).unwrap())),
        ),
        (
            "RSA PKCS#1 verify, wrong signature",
            Box::new(|| assert!(!sign::rsa_verify(&rsa_pub, pkcs1, &digest, &[3u8; 256]).unwrap())),
        ),
        (
            "RSA PSS verify, wrong signature",
            Box::new(|| assert!(!sign::rsa_verify(&rsa_pub, pss, &digest, &[3u8; 256]).unwrap())),
        ),
        (
            "RSA verify, signature above the modulus",
            Box::new(|| {
                assert!(!sign::rsa_verify(&rsa_pub, pkcs1, &digest, &[0xffu8; 256]).unwrap())
            }),
        ),
        (
            "Ed25519 verify, wrong signature",
            Box::new(|| assert!(!sign::ed25519_verify(&ed_pub, b"m", &[5u8; 64]).unwrap())),
        ),
        (
            "RSA decrypt, bad padding",
            Box::new(|| {
                let oaep = RsaEncPadding::Oaep {
                    hash: HashAlg::Sha256,
                    mgf1: HashAlg::Sha256,
                    label: Vec::new(),
                };
                for padding in [RsaEncPadding::Pkcs1, oaep] {
                    assert!(cipher::rsa_decrypt(&rsa, &padding, &[7u8; 256])
                        .unwrap()
                        .is_none());
                }
            }),
        ),
        (
            "AES-GCM open, wrong tag",
            Box::new(|| {
                assert!(aead::open(&[1u8; 32], b"aad", &[9u8; 60])
                    .unwrap()
                    .is_none())
            }),
        ),
        (
            "AES key unwrap, integrity failure",
            Box::new(|| {
                for kind in [KeyWrap::Kw, KeyWrap::Kwp] {
                    assert!(kind.unwrap(&[2u8; 16], None, &[4u8; 24]).unwrap().is_err());
                }
            }),
        ),
        (
            "EC public key, point off the curve",
            Box::new(|| {
                let mut point = vec![0x04u8];
                point.extend_from_slice(&[1u8; 64]);
                assert!(PublicKey::from_ec_point(p256, &point).is_err());
            }),
        ),
        (
            "EC private key, scalar 0 and above the order",
            Box::new(|| {
                assert!(PrivateKey::from_ec_components(p256, &[0u8; 32]).is_err());
                assert!(PrivateKey::from_ec_components(p256, &[0xffu8; 32]).is_err());
            }),
        ),
        (
            "RSA private key, inconsistent components",
            Box::new(|| {
                let components = RsaPrivateComponents {
                    modulus: vec![0xc3; 256],
                    public_exponent: vec![1, 0, 1],
                    private_exponent: vec![0x55; 256].into(),
                    prime_1: Some(vec![0xfb; 128].into()),
                    prime_2: Some(vec![0xef; 128].into()),
                    ..Default::default()
                };
                assert!(PrivateKey::from_rsa_components(&components).is_err());
                let no_primes = RsaPrivateComponents {
                    modulus: vec![0xc3; 256],
                    public_exponent: vec![1, 0, 1],
                    private_exponent: vec![0x55; 256].into(),
                    ..Default::default()
                };
                assert!(PrivateKey::from_rsa_components(&no_primes).is_err());
            }),
        ),
        (
            "key parsers, garbage",
            Box::new(|| {
                assert!(PrivateKey::from_pkcs8_der(&[0x30, 0x03, 1, 2, 3]).is_err());
                assert!(PublicKey::from_spki_der(&[0x30, 0x03, 1, 2, 3]).is_err());
                assert!(PublicKey::from_spki_pem("-----BEGIN PUBLIC KEY-----\nAAAA").is_err());
                assert!(PrivateKey::from_ed25519_seed(&[1u8; 31]).is_err());
            }),
        ),
        (
            "ECDH, peer point off the curve",
            Box::new(|| {
                let mut point = vec![0x04u8];
                point.extend_from_slice(&[1u8; 64]);
                assert!(ecdh::ecdh(&ec, &point).is_err());
            }),
        ),
        (
            "certificate, garbage",
            Box::new(|| assert!(x509::certificate_fields(&[0x30, 0x03, 1, 2, 3]).is_err())),
        ),
        (
            "HMAC and CMAC, bad keys",
            Box::new(|| {
                assert!(mac::Mac::aes_cmac(&[0; 20]).is_err());
                assert!(mac::Mac::hmac(HashAlg::Sha1, &[]).is_err());
            }),
        ),
    ];
    assert_eq!(leaks(cases), Vec::<String>::new());
}

#[test]
fn successful_operations_leave_no_error_behind() {
    let rsa = test_keys::rsa_2048();
    let ec = test_keys::ec(crate::crypto::test_keys::P384);
    let ed = test_keys::ed25519();
    let digest = [0x22u8; 32];
    let cases: Vec<Case<'_>> = vec![
        (
            "sign and verify",
            Box::new(|| {
                let pkcs1 = RsaPadding::Pkcs1(Some(HashAlg::Sha256));
                let sig = sign::rsa_sign(&rsa, pkcs1, &digest).unwrap();
                let rsa_pub = rsa.public_key().unwrap();
                assert!(sign::rsa_verify(&rsa_pub, pkcs1, &digest, &sig).unwrap());
                let sig = sign::ecdsa_sign(&ec, &digest).unwrap();
                assert!(sign::ecdsa_verify(&ec.public_key().unwrap(), &digest, &sig).unwrap());
                let sig = sign::ed25519_sign(&ed, b"m").unwrap();
                assert!(sign::ed25519_verify(&ed.public_key().unwrap(), b"m", &sig).unwrap());
            }),
        ),
        (
            "key encodings round trip",
            Box::new(|| {
                for key in [&rsa, &ec, &ed] {
                    let der = key.to_pkcs8_der().unwrap();
                    PrivateKey::from_pkcs8_der(&der).unwrap();
                    let public = key.public_key().unwrap();
                    PublicKey::from_spki_der(&public.to_spki_der().unwrap()).unwrap();
                    PublicKey::from_spki_pem(&public.to_spki_pem().unwrap()).unwrap();
                    key.public_values().unwrap();
                }
            }),
        ),
        (
            "generation",
            Box::new(|| {
                PrivateKey::generate_ec(crate::crypto::test_keys::P521).unwrap();
                PrivateKey::generate_ed25519().unwrap();
            }),
        ),
        (
            "ECDH",
            Box::new(|| {
                let peer = PrivateKey::generate_ec(crate::crypto::test_keys::P384).unwrap();
                let super::keys::PublicValues::Point { point_der, .. } =
                    peer.public_values().unwrap()
                else {
                    panic!("not EC")
                };
                ecdh::ecdh(&ec, &point_der).unwrap();
            }),
        ),
        (
            "seal and open",
            Box::new(|| {
                let sealed = aead::seal(&[3u8; 32], b"a", b"secret").unwrap();
                assert!(aead::open(&[3u8; 32], b"a", &sealed).unwrap().is_some());
            }),
        ),
    ];
    assert_eq!(leaks(cases), Vec::<String>::new());
}

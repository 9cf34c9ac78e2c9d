//! Making keys: generation templates and calls, and session secrets of known value.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::ED25519;

pub fn rsa_templates(bits: u64, label: &str, id: &[u8]) -> (Vec<Attribute>, Vec<Attribute>) {
    let public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::ModulusBits(bits.into()),
        Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
        Attribute::Verify(true),
        Attribute::Encrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    let private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    (public, private)
}

pub fn gen_rsa(s: &Session, bits: u64, label: &str, id: &[u8]) -> (ObjectHandle, ObjectHandle) {
    let (public, private) = rsa_templates(bits, label, id);
    s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .unwrap_or_else(|e| panic!("C_GenerateKeyPair(RSA-{bits}): {e}"))
}

pub fn ec_templates(params: &[u8], label: &str, id: &[u8]) -> (Vec<Attribute>, Vec<Attribute>) {
    let public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::EcParams(params.to_vec()),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    let private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    (public, private)
}

/// EC (`CKM_EC_KEY_PAIR_GEN`) or, for [`ED25519`] params, Edwards key pair generation.
pub fn gen_ec(s: &Session, params: &[u8], label: &str, id: &[u8]) -> (ObjectHandle, ObjectHandle) {
    let (public, private) = ec_templates(params, label, id);
    let mech = if params == ED25519 {
        Mechanism::EccEdwardsKeyPairGen
    } else {
        Mechanism::EccKeyPairGen
    };
    s.generate_key_pair(&mech, &public, &private)
        .unwrap_or_else(|e| panic!("C_GenerateKeyPair({mech:?}): {e}"))
}

pub fn gen_aes(s: &Session, len: u64, label: &str) -> ObjectHandle {
    let t = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::ValueLen(len.into()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    s.generate_key(&Mechanism::AesKeyGen, &t)
        .unwrap_or_else(|e| panic!("C_GenerateKey(AES-{len}): {e}"))
}

/// A session (`CKA_TOKEN` false) secret key holding `value`: AES or generic secret, with every
/// usage flag this suite needs and extractable in the clear, for known-answer tests.
pub fn session_secret(s: &Session, kt: KeyType, value: &[u8], extra: &[Attribute]) -> ObjectHandle {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(kt),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Value(value.to_vec()),
    ];
    t.extend_from_slice(extra);
    s.create_object(&t)
        .unwrap_or_else(|e| panic!("C_CreateObject({kt:?}, {} bytes): {e}", value.len()))
}

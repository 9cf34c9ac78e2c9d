//! Object and key management (§5.7, §5.14): C_GenerateKey, C_GenerateKeyPair, C_CreateObject
//! (imports), C_FindObjects*, C_GetAttributeValue / C_SetAttributeValue rules, C_DestroyObject,
//! private-object visibility, and template / handle / login error paths.

mod common;

use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey};
use openssl::rsa::Rsa;

use common::*;

fn class_of(s: &Session, o: ObjectHandle) -> ObjectClass {
    match get_attr(s, o, AttributeType::Class) {
        Attribute::Class(c) => c,
        other => panic!("{other:?}"),
    }
}

fn key_type_of(s: &Session, o: ObjectHandle) -> KeyType {
    match get_attr(s, o, AttributeType::KeyType) {
        Attribute::KeyType(k) => k,
        other => panic!("{other:?}"),
    }
}

fn assert_sensitive(s: &Session, o: ObjectHandle, t: AttributeType) {
    let info = s.get_attribute_info(o, &[t]).expect("C_GetAttributeValue");
    assert!(
        matches!(info[0], AttributeInfo::Sensitive),
        "{t:?} → CKR_ATTRIBUTE_SENSITIVE, got {:?}",
        info[0]
    );
}

/// Checks that a generated key carries the generation flags and the sqlhsm vendor attributes.
fn assert_generated_secret(s: &Session, o: ObjectHandle) {
    assert!(
        get_bool(s, o, AttributeType::Local),
        "CKA_LOCAL on generated keys"
    );
    assert!(get_bool(s, o, AttributeType::AlwaysSensitive));
    assert!(get_bool(s, o, AttributeType::NeverExtractable));
    let key_id = get_bytes(s, o, AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID));
    assert!(
        !key_id.is_empty() && std::str::from_utf8(&key_id).is_ok(),
        "UTF-8 key_id"
    );
    assert_eq!(get_ulong_vendor(s, o, CKA_SQLHSM_KEY_STATUS), 1, "Active");
    assert_eq!(get_ulong_vendor(s, o, CKA_SQLHSM_KEY_MODE), 1, "LOCAL");
}

#[test]
fn generate_secret_keys() {
    let p = ctx();
    let slot = new_token(p, "gen-secret");
    let s = user_session(p, slot);
    for len in [16u64, 24, 32] {
        let label = format!("aes-{len}");
        let k = gen_aes(&s, len, &label);
        assert_eq!(class_of(&s, k), ObjectClass::SECRET_KEY);
        assert_eq!(key_type_of(&s, k), KeyType::AES);
        match get_attr(&s, k, AttributeType::ValueLen) {
            Attribute::ValueLen(v) => assert_eq!(u64::from(v), len),
            other => panic!("{other:?}"),
        }
        assert_eq!(get_bytes(&s, k, AttributeType::Label), label.as_bytes());
        match get_attr(&s, k, AttributeType::KeyGenMechanism) {
            Attribute::KeyGenMechanism(m) => assert_eq!(m, MechanismType::AES_KEY_GEN),
            other => panic!("{other:?}"),
        }
        assert_sensitive(&s, k, AttributeType::Value);
        assert_generated_secret(&s, k);
    }

    let g = s
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::ValueLen(48.into()),
                Attribute::Label(b"generic".to_vec()),
            ],
        )
        .expect("C_GenerateKey(generic secret)");
    assert_eq!(key_type_of(&s, g), KeyType::GENERIC_SECRET);
    assert_sensitive(&s, g, AttributeType::Value);

    // Template errors (§5.14: class/key type inconsistent with the mechanism →
    // CKR_TEMPLATE_INCONSISTENT; a missing required attribute → CKR_TEMPLATE_INCOMPLETE).
    expect_rv(
        s.generate_key(&Mechanism::AesKeyGen, &[Attribute::Token(true)]),
        RvError::TemplateIncomplete,
    );
    expect_rv(
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(16.into()),
                Attribute::KeyType(KeyType::RSA),
            ],
        ),
        RvError::TemplateInconsistent,
    );
    expect_rv(
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(16.into()),
                Attribute::Class(ObjectClass::PUBLIC_KEY),
            ],
        ),
        RvError::TemplateInconsistent,
    );
    // An AES length other than 16/24/32: the spec allows either code.
    expect_rv_in(
        s.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(17.into())]),
        &[RvError::AttributeValueInvalid, RvError::KeySizeRange],
    );
    // Lengths whose size in bits overflows (found by the templates fuzz target): refused the
    // same way, never a panic caught as CKR_GENERAL_ERROR.
    for len in [u64::MAX, u64::MAX / 4, (u64::MAX >> 3) + 1] {
        expect_rv_in(
            s.generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(len.into())]),
            &[RvError::AttributeValueInvalid, RvError::KeySizeRange],
        );
    }
    // A key pair mechanism is not a key mechanism.
    expect_rv(
        s.generate_key(
            &Mechanism::RsaPkcsKeyPairGen,
            &[Attribute::ValueLen(16.into())],
        ),
        RvError::MechanismInvalid,
    );
}

#[test]
fn generate_key_pairs() {
    let p = ctx();
    let slot = new_token(p, "gen-pairs");
    let s = user_session(p, slot);
    for bits in [2048u64, 3072, 4096] {
        let label = format!("rsa-{bits}");
        let (public, private) = gen_rsa(&s, bits, &label, &[bits as u8, 1]);
        assert_eq!(class_of(&s, public), ObjectClass::PUBLIC_KEY);
        assert_eq!(class_of(&s, private), ObjectClass::PRIVATE_KEY);
        assert_eq!(key_type_of(&s, private), KeyType::RSA);
        let n = get_bytes(&s, public, AttributeType::Modulus);
        assert_eq!(n.len() as u64 * 8, bits, "modulus size");
        // Public values are readable on both halves.
        assert_eq!(get_bytes(&s, private, AttributeType::Modulus), n);
        assert_eq!(
            get_bytes(&s, private, AttributeType::PublicExponent),
            vec![0x01, 0x00, 0x01]
        );
        match get_attr(&s, public, AttributeType::ModulusBits) {
            Attribute::ModulusBits(b) => assert_eq!(u64::from(b), bits),
            other => panic!("{other:?}"),
        }
        for t in [
            AttributeType::PrivateExponent,
            AttributeType::Prime1,
            AttributeType::Prime2,
            AttributeType::Exponent1,
            AttributeType::Exponent2,
            AttributeType::Coefficient,
        ] {
            assert_sensitive(&s, private, t);
        }
        assert_generated_secret(&s, private);
        assert!(get_bool(&s, public, AttributeType::Local));
        // Both halves name the same asym_key row.
        assert_eq!(
            get_bytes(&s, public, AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID)),
            get_bytes(&s, private, AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID))
        );
    }
    for (params, bytes) in [(P256, 32usize), (P384, 48), (P521, 66)] {
        let (public, private) = gen_ec(&s, params, &format!("ec-{bytes}"), &[bytes as u8]);
        assert_eq!(key_type_of(&s, private), KeyType::EC);
        assert_eq!(get_bytes(&s, public, AttributeType::EcParams), params);
        assert_eq!(get_bytes(&s, private, AttributeType::EcParams), params);
        // CKA_EC_POINT: DER OCTET STRING holding the uncompressed point 04‖X‖Y.
        let point = unwrap_octet_string(&get_bytes(&s, public, AttributeType::EcPoint));
        assert_eq!(point.len(), 1 + 2 * bytes);
        assert_eq!(point[0], 0x04);
        assert_sensitive(&s, private, AttributeType::Value);
        assert_generated_secret(&s, private);
        openssl_public(&s, public); // parses as a point on the curve
    }
    let (public, private) = gen_ec(&s, ED25519, "ed25519", b"ed");
    assert_eq!(key_type_of(&s, private), KeyType::EC_EDWARDS);
    let point = unwrap_octet_string(&get_bytes(&s, public, AttributeType::EcPoint));
    assert_eq!(point.len(), 32);
    assert_sensitive(&s, private, AttributeType::Value);
    assert_generated_secret(&s, private);

    // Template errors.
    let (mut public_t, private_t) = rsa_templates(2048, "bad", b"bad");
    public_t.retain(|a| a.attribute_type() != AttributeType::ModulusBits);
    expect_rv(
        s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public_t, &private_t),
        RvError::TemplateIncomplete,
    );
    let (mut public_t, private_t) = ec_templates(P256, "bad", b"bad");
    public_t.retain(|a| a.attribute_type() != AttributeType::EcParams);
    expect_rv(
        s.generate_key_pair(&Mechanism::EccKeyPairGen, &public_t, &private_t),
        RvError::TemplateIncomplete,
    );
    let (mut public_t, private_t) = ec_templates(P256, "bad", b"bad");
    public_t.push(Attribute::KeyType(KeyType::RSA));
    expect_rv(
        s.generate_key_pair(&Mechanism::EccKeyPairGen, &public_t, &private_t),
        RvError::TemplateInconsistent,
    );
    // secp160r1: a well-formed OID the token does not support (secp256k1 it does, since the
    // curve rows grew; tests/curves.rs).
    let k1 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x08];
    let (public_t, private_t) = ec_templates(&k1, "bad", b"bad");
    expect_rv_in(
        s.generate_key_pair(&Mechanism::EccKeyPairGen, &public_t, &private_t),
        &[
            RvError::CurveNotSupported,
            RvError::DomainParamsInvalid,
            RvError::AttributeValueInvalid,
        ],
    );
    // Not DER at all.
    let (public_t, private_t) = ec_templates(&[0xff, 0x00], "bad", b"bad");
    expect_rv_in(
        s.generate_key_pair(&Mechanism::EccKeyPairGen, &public_t, &private_t),
        &[RvError::AttributeValueInvalid, RvError::DomainParamsInvalid],
    );
    // RSA size outside 1024..=16384 bits.
    let (public_t, private_t) = rsa_templates(1023, "bad", b"bad");
    expect_rv_in(
        s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public_t, &private_t),
        &[RvError::KeySizeRange, RvError::AttributeValueInvalid],
    );
    assert!(
        find_by_label(&s, "bad").is_empty(),
        "failed generations leave nothing behind"
    );
}

fn rsa_private_template(rsa: &Rsa<openssl::pkey::Private>, label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Decrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(b"imp-rsa".to_vec()),
        Attribute::Modulus(rsa.n().to_vec()),
        Attribute::PublicExponent(rsa.e().to_vec()),
        Attribute::PrivateExponent(rsa.d().to_vec()),
        Attribute::Prime1(rsa.p().expect("p").to_vec()),
        Attribute::Prime2(rsa.q().expect("q").to_vec()),
        Attribute::Exponent1(rsa.dmp1().expect("dmp1").to_vec()),
        Attribute::Exponent2(rsa.dmq1().expect("dmq1").to_vec()),
        Attribute::Coefficient(rsa.iqmp().expect("iqmp").to_vec()),
    ]
}

#[test]
fn create_object_imports() {
    let p = ctx();
    let slot = new_token(p, "imports");
    let s = user_session(p, slot);

    // RSA private + public.
    let rsa = Rsa::generate(2048).unwrap();
    let rsa_priv = s
        .create_object(&rsa_private_template(&rsa, "imp-rsa"))
        .expect("import RSA private");
    let rsa_pub = s
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Encrypt(true),
            Attribute::Label(b"imp-rsa".to_vec()),
            Attribute::Id(b"imp-rsa".to_vec()),
            Attribute::Modulus(rsa.n().to_vec()),
            Attribute::PublicExponent(rsa.e().to_vec()),
        ])
        .expect("import RSA public");
    assert!(
        !get_bool(&s, rsa_priv, AttributeType::Local),
        "imported keys are not CKA_LOCAL"
    );
    assert!(!get_bool(&s, rsa_priv, AttributeType::AlwaysSensitive));
    assert_eq!(
        get_bytes(&s, rsa_priv, AttributeType::Modulus),
        rsa.n().to_vec()
    );
    assert_sensitive(&s, rsa_priv, AttributeType::PrivateExponent);
    assert_eq!(get_ulong_vendor(&s, rsa_pub, CKA_SQLHSM_KEY_STATUS), 1);
    // The imported private key signs, and OpenSSL verifies with the original public key.
    let sig = s
        .sign(&Mechanism::Sha256RsaPkcs, rsa_priv, b"imported")
        .expect("sign");
    let pkey = PKey::from_rsa(rsa.clone()).unwrap();
    let mut v =
        openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
    v.update(b"imported").unwrap();
    assert!(
        v.verify(&sig).unwrap(),
        "OpenSSL verifies the imported key's signature"
    );
    s.verify(&Mechanism::Sha256RsaPkcs, rsa_pub, b"imported", &sig)
        .expect("verify");

    // A lone public key (no private half) is stored as public-key-only.
    let other = Rsa::generate(2048).unwrap();
    let lone = s
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Label(b"lone-pub".to_vec()),
            Attribute::Modulus(other.n().to_vec()),
            Attribute::PublicExponent(other.e().to_vec()),
        ])
        .expect("import lone public key");
    assert_eq!(
        get_ulong_vendor(&s, lone, CKA_SQLHSM_KEY_MODE),
        4,
        "PUBLIC_KEY_ONLY"
    );

    // EC P-256.
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let ec = EcKey::generate(&group).unwrap();
    let mut bn = BigNumContext::new().unwrap();
    let point = ec
        .public_key()
        .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut bn)
        .unwrap();
    let ec_priv = s
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
            Attribute::Label(b"imp-ec".to_vec()),
            Attribute::EcParams(P256.to_vec()),
            Attribute::Value(ec.private_key().to_vec_padded(32).unwrap()),
        ])
        .expect("import EC private");
    let ec_pub = s
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Label(b"imp-ec".to_vec()),
            Attribute::EcParams(P256.to_vec()),
            Attribute::EcPoint(octet_string(&point)),
        ])
        .expect("import EC public");
    assert_sensitive(&s, ec_priv, AttributeType::Value);
    assert_eq!(
        unwrap_octet_string(&get_bytes(&s, ec_pub, AttributeType::EcPoint)),
        point
    );
    let sig = s
        .sign(&Mechanism::EcdsaSha256, ec_priv, b"ec import")
        .unwrap();
    assert_eq!(sig.len(), 64, "raw r||s");
    s.verify(&Mechanism::EcdsaSha256, ec_pub, b"ec import", &sig)
        .unwrap();
    let epk = PKey::from_ec_key(ec.clone()).unwrap();
    let mut v = openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &epk).unwrap();
    v.update(b"ec import").unwrap();
    assert!(v.verify(&ecdsa_raw_to_der(&sig)).unwrap());

    // Ed25519.
    let ed = PKey::generate_ed25519().unwrap();
    let ed_priv = s
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sign(true),
            Attribute::Label(b"imp-ed".to_vec()),
            Attribute::EcParams(ED25519.to_vec()),
            Attribute::Value(ed.raw_private_key().unwrap()),
        ])
        .expect("import Ed25519 private");
    let ed_pub = s
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Label(b"imp-ed".to_vec()),
            Attribute::EcParams(ED25519.to_vec()),
            Attribute::EcPoint(octet_string(&ed.raw_public_key().unwrap())),
        ])
        .expect("import Ed25519 public");
    let eddsa = Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
        cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
    ));
    let sig = s.sign(&eddsa, ed_priv, b"ed import").unwrap();
    s.verify(&eddsa, ed_pub, b"ed import", &sig).unwrap();
    let edpub =
        PKey::public_key_from_raw_bytes(&ed.raw_public_key().unwrap(), Id::ED25519).unwrap();
    let mut v = openssl::sign::Verifier::new_without_digest(&edpub).unwrap();
    assert!(v.verify_oneshot(&sig, b"ed import").unwrap());

    // AES and generic secret, non-sensitive and extractable: the value reads back.
    let aes_bytes = vec![0x5a; 32];
    let aes = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Label(b"imp-aes".to_vec()),
            Attribute::Value(aes_bytes.clone()),
        ])
        .expect("import AES");
    assert_eq!(get_bytes(&s, aes, AttributeType::Value), aes_bytes);
    match get_attr(&s, aes, AttributeType::ValueLen) {
        Attribute::ValueLen(v) => assert_eq!(u64::from(v), 32),
        other => panic!("{other:?}"),
    }
    let gen = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(false),
            Attribute::Extractable(false),
            Attribute::Label(b"imp-generic".to_vec()),
            Attribute::Value(b"generic secret bytes".to_vec()),
        ])
        .expect("import generic secret");
    // Not extractable → the value is unreadable even though not sensitive.
    assert_sensitive(&s, gen, AttributeType::Value);

    // Template errors on C_CreateObject.
    expect_rv(
        s.create_object(&[
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![1; 16]),
        ]),
        RvError::TemplateIncomplete,
    );
    expect_rv(
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
        ]),
        RvError::TemplateIncomplete,
    );
    expect_rv(
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![1; 17]),
        ]),
        RvError::AttributeValueInvalid,
    );
    // CKA_LOCAL is never settable by the application.
    expect_rv_in(
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![1; 16]),
            Attribute::Local(true),
        ]),
        &[RvError::AttributeReadOnly, RvError::TemplateInconsistent],
    );
    // RSA private key without its private exponent.
    let mut t = rsa_private_template(&rsa, "bad-rsa");
    t.retain(|a| a.attribute_type() != AttributeType::PrivateExponent);
    expect_rv(s.create_object(&t), RvError::TemplateIncomplete);
    // EC point that is not on the curve.
    expect_rv_in(
        s.create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(P256.to_vec()),
            Attribute::EcPoint(octet_string(&[0x04; 65])),
        ]),
        &[RvError::AttributeValueInvalid, RvError::PublicKeyInvalid],
    );
}

#[test]
fn find_objects() {
    let p = ctx();
    let slot = new_token(p, "find");
    let s = user_session(p, slot);
    let (rsa_pub, rsa_priv) = gen_rsa(&s, 2048, "find-rsa", b"\x01\x02");
    let (ec_pub, ec_priv) = gen_ec(&s, P256, "find-ec", b"\x03\x04");
    let aes = gen_aes(&s, 16, "find-aes");

    let by = |t: &[Attribute]| {
        let mut v = s.find_objects(t).expect("C_FindObjects");
        v.sort_by_key(|h| h.handle());
        v
    };
    let sorted = |mut v: Vec<ObjectHandle>| {
        v.sort_by_key(|h| h.handle());
        v
    };
    assert_eq!(
        by(&[Attribute::Label(b"find-rsa".to_vec())]),
        sorted(vec![rsa_pub, rsa_priv])
    );
    assert_eq!(
        by(&[Attribute::Id(b"\x03\x04".to_vec())]),
        sorted(vec![ec_pub, ec_priv])
    );
    assert_eq!(
        by(&[
            Attribute::Id(b"\x03\x04".to_vec()),
            Attribute::Class(ObjectClass::PRIVATE_KEY)
        ]),
        vec![ec_priv]
    );
    assert_eq!(by(&[Attribute::Class(ObjectClass::SECRET_KEY)]), vec![aes]);
    assert_eq!(
        by(&[Attribute::KeyType(KeyType::EC)]),
        sorted(vec![ec_pub, ec_priv])
    );
    assert_eq!(
        by(&[Attribute::Class(ObjectClass::PUBLIC_KEY)]),
        sorted(vec![rsa_pub, ec_pub])
    );
    assert_eq!(
        by(&[]).len(),
        5,
        "empty template finds every object of the token"
    );
    assert!(by(&[Attribute::Label(b"nothing".to_vec())]).is_empty());
    assert!(by(&[
        Attribute::Label(b"find-rsa".to_vec()),
        Attribute::KeyType(KeyType::EC)
    ])
    .is_empty());
    // Objects of other tokens are not found.
    let other = new_token(p, "find-other");
    let so = user_session(p, other);
    assert!(find_by_label(&so, "find-rsa").is_empty());

    // Iterating in small chunks (C_FindObjects with ulMaxObjectCount 1) returns the same.
    let it: Vec<ObjectHandle> = s
        .iter_objects_with_cache_size(&[], std::num::NonZeroUsize::new(1).unwrap())
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(sorted(it), by(&[]));
}

#[test]
fn private_objects_invisible_before_login() {
    let p = ctx();
    let slot = new_token(p, "visibility");
    let s = user_session(p, slot);
    let (public, private) = gen_ec(&s, P256, "vis", b"vis");
    let secret = gen_aes(&s, 16, "vis");
    s.logout().unwrap();

    let ro = p.open_ro_session(slot).unwrap();
    assert_eq!(
        find_by_label(&ro, "vis"),
        vec![public],
        "only the public key is visible"
    );
    assert!(ro
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .unwrap()
        .is_empty());
    // Private objects can't be used or read while logged out.
    let info = ro.get_attribute_info(private, &[AttributeType::Label]);
    assert!(
        info.is_err(),
        "private object handle is unusable before login"
    );
    expect_rv_in(
        ro.sign(&Mechanism::Ecdsa, private, &[0u8; 32]),
        &[
            RvError::UserNotLoggedIn,
            RvError::KeyHandleInvalid,
            RvError::ObjectHandleInvalid,
        ],
    );
    // Creating a private object needs a login too.
    expect_rv(
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::ValueLen(16.into()),
            ],
        ),
        RvError::UserNotLoggedIn,
    );
    // But public operations work: verify with the public key.
    ro.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    let mut found = find_by_label(&ro, "vis");
    found.sort_by_key(|h| h.handle());
    let mut want = vec![public, private, secret];
    want.sort_by_key(|h| h.handle());
    assert_eq!(found, want, "all visible after login");
}

#[test]
fn get_and_set_attributes() {
    let p = ctx();
    let slot = new_token(p, "attrs");
    let s = user_session(p, slot);
    let (public, private) = gen_rsa(&s, 2048, "attrs-rsa", b"a");
    let aes = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Label(b"attrs-aes".to_vec()),
            Attribute::Value(vec![9; 16]),
        ])
        .unwrap();

    // Mixed query: one sensitive, one invalid for the object, one fine.
    let info = s
        .get_attribute_info(
            private,
            &[
                AttributeType::PrivateExponent,
                AttributeType::Value,
                AttributeType::Label,
            ],
        )
        .unwrap();
    assert!(matches!(info[0], AttributeInfo::Sensitive), "{:?}", info[0]);
    assert!(
        matches!(info[1], AttributeInfo::TypeInvalid),
        "CKA_VALUE is no RSA attribute: {:?}",
        info[1]
    );
    assert!(
        matches!(info[2], AttributeInfo::Available(9)),
        "{:?}",
        info[2]
    );
    let info = s
        .get_attribute_info(aes, &[AttributeType::Modulus])
        .unwrap();
    assert!(
        matches!(info[0], AttributeInfo::TypeInvalid),
        "{:?}",
        info[0]
    );

    // Label change is allowed and persists.
    s.update_attributes(private, &[Attribute::Label(b"renamed".to_vec())])
        .expect("set label");
    assert_eq!(get_bytes(&s, private, AttributeType::Label), b"renamed");
    // The halves of a pair share one row, so they share label and CKA_ID (see README).
    assert_eq!(find_by_label(&s, "renamed"), vec![public, private]);
    s.update_attributes(public, &[Attribute::Id(b"new-id".to_vec())])
        .expect("set id");
    assert_eq!(get_bytes(&s, public, AttributeType::Id), b"new-id");
    assert_eq!(get_bytes(&s, private, AttributeType::Id), b"new-id");

    // CKA_SENSITIVE only to true; then it is read-only.
    s.update_attributes(aes, &[Attribute::Sensitive(true)])
        .expect("sensitive → true");
    assert_sensitive(&s, aes, AttributeType::Value);
    assert!(
        !get_bool(&s, aes, AttributeType::AlwaysSensitive),
        "was not always sensitive"
    );
    expect_rv(
        s.update_attributes(aes, &[Attribute::Sensitive(false)]),
        RvError::AttributeReadOnly,
    );
    expect_rv(
        s.update_attributes(private, &[Attribute::Sensitive(false)]),
        RvError::AttributeReadOnly,
    );
    // CKA_EXTRACTABLE only to false.
    s.update_attributes(aes, &[Attribute::Extractable(false)])
        .expect("extractable → false");
    expect_rv(
        s.update_attributes(aes, &[Attribute::Extractable(true)]),
        RvError::AttributeReadOnly,
    );
    // Class and key type are read-only.
    expect_rv(
        s.update_attributes(aes, &[Attribute::Class(ObjectClass::PUBLIC_KEY)]),
        RvError::AttributeReadOnly,
    );
    expect_rv(
        s.update_attributes(aes, &[Attribute::KeyType(KeyType::GENERIC_SECRET)]),
        RvError::AttributeReadOnly,
    );
    expect_rv(
        s.update_attributes(public, &[Attribute::Modulus(vec![1; 256])]),
        RvError::AttributeReadOnly,
    );
    // The vendor key_id is read-only.
    expect_rv(
        s.update_attributes(
            aes,
            &[Attribute::VendorDefined((
                AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID),
                b"mine".to_vec(),
            ))],
        ),
        RvError::AttributeReadOnly,
    );
    // A failed C_SetAttributeValue changes nothing (the template is applied all or nothing).
    expect_rv(
        s.update_attributes(
            aes,
            &[
                Attribute::Label(b"half".to_vec()),
                Attribute::Class(ObjectClass::DATA),
            ],
        ),
        RvError::AttributeReadOnly,
    );
    assert_eq!(get_bytes(&s, aes, AttributeType::Label), b"attrs-aes");
}

#[test]
fn destroy_and_invalid_handles() {
    let p = ctx();
    let slot = new_token(p, "destroy");
    let s = user_session(p, slot);
    let (public, private) = gen_ec(&s, P256, "doomed", b"d");
    s.destroy_object(private).expect("C_DestroyObject(private)");
    expect_rv(
        s.get_attributes(private, &[AttributeType::Label]),
        RvError::ObjectHandleInvalid,
    );
    expect_rv(s.destroy_object(private), RvError::ObjectHandleInvalid);
    expect_rv_in(
        s.sign(&Mechanism::Ecdsa, private, &[0; 32]),
        &[RvError::KeyHandleInvalid, RvError::ObjectHandleInvalid],
    );
    // The public half survives alone.
    assert_eq!(find_by_label(&s, "doomed"), vec![public]);
    s.destroy_object(public).unwrap();
    assert!(find_by_label(&s, "doomed").is_empty());

    // SAFETY: a handle value the module never handed out; the module must reject it.
    let bogus = unsafe { ObjectHandle::new_from_raw(0x7fff_fff0) };
    expect_rv(
        s.get_attributes(bogus, &[AttributeType::Label]),
        RvError::ObjectHandleInvalid,
    );
    expect_rv(s.destroy_object(bogus), RvError::ObjectHandleInvalid);
    expect_rv(
        s.update_attributes(bogus, &[Attribute::Label(b"x".to_vec())]),
        RvError::ObjectHandleInvalid,
    );
    expect_rv(
        s.sign_init(&Mechanism::Ecdsa, bogus),
        RvError::KeyHandleInvalid,
    );
    expect_rv(
        s.encrypt_init(&Mechanism::AesCbcPad([0; 16]), bogus),
        RvError::KeyHandleInvalid,
    );

    // Objects are scoped to their token: a handle from another token's session is invalid.
    let other = new_token(p, "destroy-other");
    let os = user_session(p, other);
    let foreign = gen_aes(&os, 16, "foreign");
    expect_rv(
        s.get_attributes(foreign, &[AttributeType::Label]),
        RvError::ObjectHandleInvalid,
    );

    // Invalid session handle: a closed session.
    let closed = p.open_rw_session_no_drop(slot).unwrap();
    let h = closed.handle();
    // SAFETY: plain C call with a handle this test owns.
    assert_eq!(unsafe { raw().C_CloseSession(h) }, cryptoki_sys::CKR_OK);
    expect_rv(closed.get_session_info(), RvError::SessionHandleInvalid);
    expect_rv(closed.find_objects(&[]), RvError::SessionHandleInvalid);
    expect_rv(closed.generate_random_vec(8), RvError::SessionHandleInvalid);
}

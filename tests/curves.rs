//! The curves beyond P-256/384/521 and Ed25519, through the C ABI: secp256k1, brainpoolP256r1,
//! brainpoolP384r1, brainpoolP512r1, P-224 and P-192 (CKK_EC: generation, import, ECDSA,
//! ECDH), Ed448 and the EdDSA schemes `CK_EDDSA_PARAMS` selects (RFC 8032 §7.2–7.5 known
//! answers, typed in from the RFC), and X25519 / X448 (CKK_EC_MONTGOMERY: generation, import,
//! `CKM_ECDH1_DERIVE` with the peer's raw public value). Each curve is named both by its OID and
//! by a PrintableString name, as PKCS#11 3.0 allows for `CKA_EC_PARAMS`. The Wycheproof files
//! for these curves run in `tests/wycheproof.rs`.

mod common;

use cryptoki::error::RvError;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use common::*;

fn session(label: &str) -> Session {
    let p = ctx();
    let slot = new_token(p, label);
    user_session(p, slot)
}

/// `CKA_EC_PARAMS` naming a curve by a DER PrintableString.
fn printable(name: &str) -> Vec<u8> {
    let mut v = vec![0x13, name.len() as u8];
    v.extend_from_slice(name.as_bytes());
    v
}

fn hx(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

/// A Weierstrass curve: its OID, one of its names, its field length and `key_algorithm`.
struct Curve {
    oid: &'static [u8],
    name: &'static str,
    field: usize,
    code: u64,
}

const WEIERSTRASS: [Curve; 6] = [
    Curve {
        oid: SECP256K1,
        name: "secp256k1",
        field: 32,
        code: 104,
    },
    Curve {
        oid: BRAINPOOL_P256R1,
        name: "brainpoolP256r1",
        field: 32,
        code: 105,
    },
    Curve {
        oid: BRAINPOOL_P384R1,
        name: "brainpoolP384r1",
        field: 48,
        code: 106,
    },
    Curve {
        oid: BRAINPOOL_P512R1,
        name: "brainpoolP512r1",
        field: 64,
        code: 107,
    },
    Curve {
        oid: P224,
        name: "P-224",
        field: 28,
        code: 108,
    },
    Curve {
        oid: P192,
        name: "prime192v1",
        field: 24,
        code: 109,
    },
];

/// A key pair for ECDSA and ECDH on `params`, made by `mech`.
fn pair(s: &Session, mech: &Mechanism, params: &[u8], sign: bool) -> (ObjectHandle, ObjectHandle) {
    // Token keys: they have a `key_algorithm` row (CKA_SQLHSM_KEY_ALGORITHM).
    let mut public = vec![Attribute::Token(true), Attribute::EcParams(params.to_vec())];
    let mut private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Derive(true),
    ];
    if sign {
        public.push(Attribute::Verify(true));
        private.push(Attribute::Sign(true));
    }
    s.generate_key_pair(mech, &public, &private)
        .unwrap_or_else(|e| panic!("C_GenerateKeyPair({mech:?}): {e}"))
}

/// The raw public value in a key's `CKA_EC_POINT` (a DER OCTET STRING).
fn point(s: &Session, key: ObjectHandle) -> Vec<u8> {
    unwrap_octet_string(&get_bytes(s, key, AttributeType::EcPoint))
}

/// The `CKA_VALUE` of a generic secret `CKM_ECDH1_DERIVE` (`CKD_NULL`) makes from `private` and
/// the peer's public value.
fn derive(s: &Session, private: ObjectHandle, peer: &[u8], len: usize) -> Vec<u8> {
    let mech = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), peer));
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::ValueLen((len as u64).into()),
    ];
    let secret = s
        .derive_key(&mech, private, &template)
        .unwrap_or_else(|e| panic!("C_DeriveKey: {e}"));
    get_bytes(s, secret, AttributeType::Value)
}

#[test]
fn weierstrass_curves_generate_sign_and_derive_by_oid_and_by_name() {
    let s = session("curves-ec");
    for c in &WEIERSTRASS {
        for params in [c.oid.to_vec(), printable(c.name)] {
            let (public, private) = pair(&s, &Mechanism::EccKeyPairGen, &params, true);
            // The token writes the OID whatever the template named the curve by.
            assert_eq!(get_bytes(&s, public, AttributeType::EcParams), c.oid);
            assert_eq!(
                get_ulong_vendor(&s, private, CKA_SQLHSM_KEY_ALGORITHM),
                c.code
            );
            let q = point(&s, public);
            assert_eq!((q.len(), q[0]), (2 * c.field + 1, 0x04), "{}", c.name);
            for mech in [
                Mechanism::EcdsaSha256,
                Mechanism::EcdsaSha1,
                Mechanism::Ecdsa,
            ] {
                let data = b"curves: sign and verify";
                let sig = s.sign(&mech, private, data).expect("C_Sign");
                assert_eq!(sig.len(), 2 * c.field, "{}", c.name);
                s.verify(&mech, public, data, &sig).expect("C_Verify");
                let mut bad = sig.clone();
                bad[3] ^= 1;
                expect_rv(
                    s.verify(&mech, public, data, &bad),
                    RvError::SignatureInvalid,
                );
            }
            // ECDH both ways agrees, and on the field length.
            let (peer_public, peer_private) = pair(&s, &Mechanism::EccKeyPairGen, c.oid, false);
            let ours = derive(&s, private, &point(&s, peer_public), c.field);
            let theirs = derive(&s, peer_private, &q, c.field);
            assert_eq!(ours, theirs, "{}", c.name);
        }
    }
}

#[test]
fn weierstrass_import_round_trip() {
    let s = session("curves-ec-import");
    for c in &WEIERSTRASS {
        // A key made elsewhere (here: OpenSSL) imports as its scalar and its point.
        let nid = match c.name {
            "secp256k1" => openssl::nid::Nid::SECP256K1,
            "brainpoolP256r1" => openssl::nid::Nid::BRAINPOOL_P256R1,
            "brainpoolP384r1" => openssl::nid::Nid::BRAINPOOL_P384R1,
            "brainpoolP512r1" => openssl::nid::Nid::BRAINPOOL_P512R1,
            "P-224" => openssl::nid::Nid::SECP224R1,
            _ => openssl::nid::Nid::X9_62_PRIME192V1,
        };
        let group = openssl::ec::EcGroup::from_curve_name(nid).expect("group");
        let key = openssl::ec::EcKey::generate(&group).expect("key");
        let mut bn = openssl::bn::BigNumContext::new().expect("bn");
        let q = key
            .public_key()
            .to_bytes(
                &group,
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut bn,
            )
            .expect("point");
        let d = key.private_key().to_vec_padded(c.field as i32).expect("d");
        let private = s
            .create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Token(false),
                Attribute::Sign(true),
                Attribute::EcParams(printable(c.name)),
                Attribute::Value(d),
            ])
            .expect("C_CreateObject(private)");
        let public = s
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Token(false),
                Attribute::Verify(true),
                Attribute::EcParams(c.oid.to_vec()),
                Attribute::EcPoint(octet_string(&q)),
            ])
            .expect("C_CreateObject(public)");
        assert_eq!(point(&s, private), q, "{}", c.name);
        let sig = s
            .sign(&Mechanism::EcdsaSha384, private, b"imported")
            .expect("C_Sign");
        s.verify(&Mechanism::EcdsaSha384, public, b"imported", &sig)
            .expect("C_Verify");
        // OpenSSL agrees with the token's signature.
        let der = ecdsa_raw_to_der(&sig);
        let ecdsa = openssl::ecdsa::EcdsaSig::from_der(&der).expect("sig");
        let digest =
            openssl::hash::hash(openssl::hash::MessageDigest::sha384(), b"imported").expect("hash");
        assert!(ecdsa.verify(&digest, &key).expect("verify"), "{}", c.name);
        // A point of another curve is not one of this curve's.
        let p256 = gen_ec(&s, P256, "curves-p256", b"p256").0;
        expect_rv_in(
            s.create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Token(false),
                Attribute::EcParams(c.oid.to_vec()),
                Attribute::EcPoint(get_bytes(&s, p256, AttributeType::EcPoint)),
            ]),
            &[RvError::AttributeValueInvalid],
        );
        let _ = s.destroy_object(p256);
    }
}

#[test]
fn mechanism_info_covers_the_new_sizes() {
    let p = ctx();
    let slot = new_token(p, "curves-info");
    let info = |m| p.get_mechanism_info(slot, m).expect("C_GetMechanismInfo");
    for m in [
        MechanismType::ECC_KEY_PAIR_GEN,
        MechanismType::ECDSA,
        MechanismType::ECDSA_SHA256,
        MechanismType::ECDH1_DERIVE,
    ] {
        let i = info(m);
        assert_eq!((i.min_key_size(), i.max_key_size()), (192, 521), "{m:?}");
    }
    for m in [
        MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
        MechanismType::EDDSA,
        MechanismType::ECC_MONTGOMERY_KEY_PAIR_GEN,
    ] {
        let i = info(m);
        assert_eq!((i.min_key_size(), i.max_key_size()), (255, 448), "{m:?}");
    }
    let list = p.get_mechanism_list(slot).expect("C_GetMechanismList");
    assert!(list.contains(&MechanismType::ECC_MONTGOMERY_KEY_PAIR_GEN));
}

// ---------- EdDSA ----------

fn eddsa(scheme: EddsaSignatureScheme<'_>) -> Mechanism<'_> {
    Mechanism::Eddsa(EddsaParams::new(scheme))
}

/// One RFC 8032 test vector: secret key, public key, message, signature, and the scheme.
struct Rfc8032 {
    section: &'static str,
    params: &'static [u8],
    secret: &'static str,
    public: &'static str,
    message: &'static str,
    context: &'static [u8],
    prehash: bool,
    signature: &'static str,
}

const RFC8032: [Rfc8032; 6] = [
    Rfc8032 {
        section: "7.2 Ed25519ctx foo",
        params: ED25519,
        secret: "0305334e381af78f141cb666f6199f57bc3495335a256a95bd2a55bf546663f6",
        public: "dfc9425e4f968f7f0c29f0259cf5f9aed6851c2bb4ad8bfb860cfee0ab248292",
        message: "f726936d19c800494e3fdaff20b276a8",
        context: b"foo",
        prehash: false,
        signature: "55a4cc2f70a54e04288c5f4cd1e45a7bb520b36292911876cada7323198dd87a\
                    8b36950b95130022907a7fb7c4e9b2d5f6cca685a587b4b21f4b888e4e7edb0d",
    },
    Rfc8032 {
        section: "7.3 Ed25519ph abc",
        params: ED25519,
        secret: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        public: "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        message: "616263",
        context: b"",
        prehash: true,
        signature: "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
                    31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
    },
    Rfc8032 {
        section: "7.4 Ed448 blank",
        params: ED448,
        secret: "6c82a562cb808d10d632be89c8513ebf6c929f34ddfa8c9f63c9960ef6e348a3\
                 528c8a3fcc2f044e39a3fc5b94492f8f032e7549a20098f95b",
        public: "5fd7449b59b461fd2ce787ec616ad46a1da1342485a70e1f8a0ea75d80e96778\
                 edf124769b46c7061bd6783df1e50f6cd1fa1abeafe8256180",
        message: "",
        context: b"",
        prehash: false,
        signature: "533a37f6bbe457251f023c0d88f976ae2dfb504a843e34d2074fd823d41a591f\
                    2b233f034f628281f2fd7a22ddd47d7828c59bd0a21bfd3980ff0d2028d4b18a\
                    9df63e006c5d1c2d345b925d8dc00b4104852db99ac5c7cdda8530a113a0f4db\
                    b61149f05a7363268c71d95808ff2e652600",
    },
    Rfc8032 {
        section: "7.4 Ed448 1 octet with context foo",
        params: ED448,
        secret: "c4eab05d357007c632f3dbb48489924d552b08fe0c353a0d4a1f00acda2c463a\
                 fbea67c5e8d2877c5e3bc397a659949ef8021e954e0a12274e",
        public: "43ba28f430cdff456ae531545f7ecd0ac834a55d9358c0372bfa0c6c6798c086\
                 6aea01eb00742802b8438ea4cb82169c235160627b4c3a9480",
        message: "03",
        context: b"foo",
        prehash: false,
        signature: "d4f8f6131770dd46f40867d6fd5d5055de43541f8c5e35abbcd001b32a89f7d2\
                    151f7647f11d8ca2ae279fb842d607217fce6e042f6815ea000c85741de5c8da\
                    1144a6a1aba7f96de42505d7a7298524fda538fccbbb754f578c1cad10d54d0d\
                    5428407e85dcbc98a49155c13764e66c3c00",
    },
    Rfc8032 {
        section: "7.5 Ed448ph abc",
        params: ED448,
        secret: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42\
                 ef7822e0d5104127dc05d6dbefde69e3ab2cec7c867c6e2c49",
        public: "259b71c19f83ef77a7abd26524cbdb3161b590a48f7d17de3ee0ba9c52beb743\
                 c09428a131d6b1b57303d90d8132c276d5ed3d5d01c0f53880",
        message: "616263",
        context: b"",
        prehash: true,
        signature: "822f6901f7480f3d5f562c592994d9693602875614483256505600bbc281ae38\
                    1f54d6bce2ea911574932f52a4e6cadd78769375ec3ffd1b801a0d9b3f4030cd\
                    433964b6457ea39476511214f97469b57dd32dbc560a9a94d00bff07620464a3\
                    ad203df7dc7ce360c3cd3696d9d9fab90f00",
    },
    Rfc8032 {
        section: "7.5 Ed448ph abc with context foo",
        params: ED448,
        secret: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42\
                 ef7822e0d5104127dc05d6dbefde69e3ab2cec7c867c6e2c49",
        public: "259b71c19f83ef77a7abd26524cbdb3161b590a48f7d17de3ee0ba9c52beb743\
                 c09428a131d6b1b57303d90d8132c276d5ed3d5d01c0f53880",
        message: "616263",
        context: b"foo",
        prehash: true,
        signature: "c32299d46ec8ff02b54540982814dce9a05812f81962b649d528095916a2aa48\
                    1065b1580423ef927ecf0af5888f90da0f6a9a85ad5dc3f280d91224ba9911a3\
                    653d00e484e2ce232521481c8658df304bb7745a73514cdb9bf3e15784ab7128\
                    4f8d0704a608c54a6b62d97beb511d132100",
    },
];

fn scheme<'a>(params: &[u8], prehash: bool, context: &'a [u8]) -> EddsaSignatureScheme<'a> {
    match (params == ED448, prehash) {
        (false, false) => EddsaSignatureScheme::Ed25519ctx(context),
        (false, true) => EddsaSignatureScheme::Ed25519ph(context),
        (true, false) => EddsaSignatureScheme::Ed448(context),
        (true, true) => EddsaSignatureScheme::Ed448ph(context),
    }
}

#[test]
fn rfc8032_known_answers() {
    let s = session("curves-rfc8032");
    for v in &RFC8032 {
        let private = s
            .create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC_EDWARDS),
                Attribute::Token(false),
                Attribute::Sign(true),
                Attribute::EcParams(v.params.to_vec()),
                Attribute::Value(hx(v.secret)),
            ])
            .expect("C_CreateObject(private)");
        let public = s
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC_EDWARDS),
                Attribute::Token(false),
                Attribute::Verify(true),
                Attribute::EcParams(v.params.to_vec()),
                Attribute::EcPoint(octet_string(&hx(v.public))),
            ])
            .expect("C_CreateObject(public)");
        // The public key the token derives from the secret is the RFC's.
        assert_eq!(point(&s, private), hx(v.public), "{}", v.section);
        let mech = eddsa(scheme(v.params, v.prehash, v.context));
        let message = hx(v.message);
        let sig = s.sign(&mech, private, &message).expect("C_Sign");
        assert_eq!(hex::encode(&sig), v.signature, "{}", v.section);
        s.verify(&mech, public, &message, &hx(v.signature))
            .expect("C_Verify");
        // Multi-part gives the same signature.
        s.sign_init(&mech, private).expect("C_SignInit");
        for chunk in message.chunks(1) {
            s.sign_update(chunk).expect("C_SignUpdate");
        }
        assert_eq!(
            hex::encode(s.sign_final().expect("C_SignFinal")),
            v.signature
        );
        // The same signature under another scheme, context or message does not verify.
        let other_context = eddsa(scheme(v.params, v.prehash, b"bar"));
        let other_scheme = eddsa(scheme(v.params, !v.prehash, v.context));
        // (Ed25519ctx with the empty context of §7.3 is refused before any verification.)
        let empty_ctx = v.params == ED25519 && v.prehash && v.context.is_empty();
        for (m, data, want) in [
            (&other_context, &message[..], RvError::SignatureInvalid),
            (
                &other_scheme,
                &message[..],
                if empty_ctx {
                    RvError::MechanismParamInvalid
                } else {
                    RvError::SignatureInvalid
                },
            ),
            (&mech, b"other", RvError::SignatureInvalid),
        ] {
            expect_rv(s.verify(m, public, data, &hx(v.signature)), want);
        }
    }
}

#[test]
fn eddsa_parameters_pick_the_scheme() {
    let s = session("curves-eddsa");
    // Ed25519 (§7.2 foo's key): no parameter is pure Ed25519 (§7.1 verified by Wycheproof); an
    // empty context given through the parameters is Ed25519ctx, which RFC 8032 says should not
    // be empty: refused, and never answered with a pure Ed25519 signature.
    let v = &RFC8032[0];
    let private = s
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::Token(false),
            Attribute::Sign(true),
            Attribute::EcParams(printable("edwards25519")),
            Attribute::Value(hx(v.secret)),
        ])
        .expect("C_CreateObject");
    let pure = s
        .sign(&eddsa(EddsaSignatureScheme::Pure), private, b"m")
        .expect("C_Sign(pure)");
    expect_rv(
        s.sign(&eddsa(EddsaSignatureScheme::Ed25519ctx(b"")), private, b"m"),
        RvError::MechanismParamInvalid,
    );
    let ph = s
        .sign(&eddsa(EddsaSignatureScheme::Ed25519ph(b"")), private, b"m")
        .expect("C_Sign(ph)");
    assert_ne!(pure, ph);
    // A context is at most 255 bytes.
    let long = [7u8; 256];
    expect_rv(
        s.sign(
            &eddsa(EddsaSignatureScheme::Ed25519ctx(&long)),
            private,
            b"m",
        ),
        RvError::MechanismParamInvalid,
    );
    s.sign(
        &eddsa(EddsaSignatureScheme::Ed25519ctx(&long[..255])),
        private,
        b"m",
    )
    .expect("255-byte context");
    // Ed448 always has a context: no parameter is Ed448 with an empty one (§7.4 blank).
    let blank = &RFC8032[2];
    let ed448 = s
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::Token(false),
            Attribute::Sign(true),
            Attribute::EcParams(printable("edwards448")),
            Attribute::Value(hx(blank.secret)),
        ])
        .expect("C_CreateObject(Ed448)");
    let sig = s
        .sign(&eddsa(EddsaSignatureScheme::Pure), ed448, &[])
        .expect("C_Sign(Ed448)");
    assert_eq!(hex::encode(sig), blank.signature);
    // An Ed25519 seed is not an Ed448 one.
    expect_rv(
        s.create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::Token(false),
            Attribute::EcParams(ED448.to_vec()),
            Attribute::Value(hx(v.secret)),
        ]),
        RvError::AttributeValueInvalid,
    );
}

#[test]
fn ed448_generates_by_oid_and_by_name() {
    let s = session("curves-ed448");
    for params in [ED448.to_vec(), printable("edwards448")] {
        let (public, private) = pair(&s, &Mechanism::EccEdwardsKeyPairGen, &params, true);
        assert_eq!(get_bytes(&s, public, AttributeType::EcParams), ED448);
        assert_eq!(point(&s, public).len(), 57);
        assert_eq!(get_ulong_vendor(&s, private, CKA_SQLHSM_KEY_ALGORITHM), 110);
        for scheme in [
            EddsaSignatureScheme::Pure,
            EddsaSignatureScheme::Ed448(b"ctx"),
            EddsaSignatureScheme::Ed448ph(b""),
        ] {
            let mech = eddsa(scheme);
            let sig = s.sign(&mech, private, b"ed448").expect("C_Sign");
            assert_eq!(sig.len(), 114);
            s.verify(&mech, public, b"ed448", &sig).expect("C_Verify");
        }
    }
    // Without CKA_EC_PARAMS an Edwards key is still Ed25519.
    let (public, _) = s
        .generate_key_pair(
            &Mechanism::EccEdwardsKeyPairGen,
            &[Attribute::Token(false), Attribute::Verify(true)],
            &[Attribute::Token(false), Attribute::Sign(true)],
        )
        .expect("C_GenerateKeyPair");
    assert_eq!(get_bytes(&s, public, AttributeType::EcParams), ED25519);
}

// ---------- X25519 / X448 ----------

#[test]
fn montgomery_generate_import_and_derive() {
    let s = session("curves-xdh");
    for (oid, name, len, code) in [(X25519, "curve25519", 32, 111), (X448, "curve448", 56, 112)] {
        let mech = Mechanism::EccMontgomeryKeyPairGen;
        let (a_public, a_private) = pair(&s, &mech, oid, false);
        let (b_public, b_private) = pair(&s, &mech, &printable(name), false);
        for (public, private) in [(a_public, a_private), (b_public, b_private)] {
            assert_eq!(get_bytes(&s, public, AttributeType::EcParams), oid);
            assert!(matches!(
                get_attr(&s, private, AttributeType::KeyType),
                Attribute::KeyType(KeyType::EC_MONTGOMERY)
            ));
            assert_eq!(
                get_ulong_vendor(&s, private, CKA_SQLHSM_KEY_ALGORITHM),
                code
            );
        }
        // The peer's public value is passed raw (PKCS#11 3.0 §2.3.9); both sides agree.
        let (qa, qb) = (point(&s, a_public), point(&s, b_public));
        assert_eq!((qa.len(), qb.len()), (len, len));
        let ab = derive(&s, a_private, &qb, len);
        assert_eq!(ab, derive(&s, b_private, &qa, len), "{name}");
        // An imported public key and private value work the same.
        let imported = s
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC_MONTGOMERY),
                Attribute::Token(false),
                Attribute::Derive(true),
                Attribute::EcParams(printable(name)),
                Attribute::EcPoint(octet_string(&qb)),
            ])
            .expect("C_CreateObject(public)");
        assert_eq!(point(&s, imported), qb);
        // A peer value of small order gives an all-zero secret: refused (RFC 7748 §6.1).
        expect_rv(
            s.derive_key(
                &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &vec![0u8; len])),
                a_private,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::Token(false),
                    Attribute::ValueLen((len as u64).into()),
                ],
            ),
            RvError::MechanismParamInvalid,
        );
        // A Montgomery key does not sign, and a Montgomery curve is no EC curve.
        expect_rv_in(
            s.sign(&Mechanism::Ecdsa, a_private, &[1; 32]),
            &[
                RvError::KeyTypeInconsistent,
                RvError::KeyFunctionNotPermitted,
            ],
        );
        let (public_t, private_t) = ec_templates(oid, "bad", b"bad");
        expect_rv(
            s.generate_key_pair(&Mechanism::EccKeyPairGen, &public_t, &private_t),
            RvError::CurveNotSupported,
        );
    }
}

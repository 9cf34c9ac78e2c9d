//! Key management through the C ABI (PKCS#11 3.0 §5.14 and the mechanisms of the key-management
//! issue): C_WrapKey / C_UnwrapKey with AES-KW, AES-KWP and RSA-OAEP (two-call length
//! convention, CKA_WRAP / CKA_UNWRAP / CKA_EXTRACTABLE / CKA_WRAP_WITH_TRUSTED rules, the
//! unwrap template, tampering), C_DeriveKey with ECDH (CKD_NULL and the X9.63 KDFs, raw and DER
//! peer points), C_CopyObject, C_GetObjectSize, and the 3.0 attributes CKA_CHECK_VALUE,
//! CKA_ALLOWED_MECHANISMS, CKA_UNIQUE_ID, CKA_PUBLIC_KEY_INFO; HMAC, CMAC, AES-CTR and
//! RSA_X_509 cross-checked with OpenSSL.

mod common;

use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::vendor_defined::VendorDefinedMechanism;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::hash::{hash, MessageDigest};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::Signer;
use openssl::symm::{encrypt as ossl_encrypt, Cipher};

use common::*;

const AES_KEY: [u8; 32] = [
    0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe, 0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81,
    0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7, 0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4,
];
const MSG: &[u8] = b"sqlhsm key management: wrap, unwrap, derive, copy.";

fn session(label: &str) -> Session {
    let p = ctx();
    let slot = new_token(p, label);
    user_session(p, slot)
}

/// A session AES key generated in the module with the given extra attributes.
fn gen_session_aes(s: &Session, len: u64, extra: &[Attribute]) -> ObjectHandle {
    let mut t = vec![
        Attribute::Token(false),
        Attribute::ValueLen(len.into()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ];
    t.extend_from_slice(extra);
    s.generate_key(&Mechanism::AesKeyGen, &t)
        .unwrap_or_else(|e| panic!("C_GenerateKey(AES): {e}"))
}

/// A key-encryption key: AES-256 generated in the module with CKA_WRAP and CKA_UNWRAP and
/// neither CKA_ENCRYPT nor CKA_DECRYPT (a key that decrypts may not wrap sensitive keys).
fn kek(s: &Session) -> ObjectHandle {
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Token(false),
            Attribute::ValueLen(32.into()),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
        ],
    )
    .expect("C_GenerateKey(AES KEK)")
}

/// AES-ECB of one block under `key` in the module: equality of two keys' behaviour.
fn ecb_block(s: &Session, key: ObjectHandle) -> Vec<u8> {
    s.encrypt(&Mechanism::AesEcb, key, &[0x5a; 16])
        .expect("C_Encrypt(AES_ECB)")
}

fn aes_unwrap_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Sensitive(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

/// The unwrapped key carries the template and the provenance flags of an imported key.
fn assert_unwrapped(s: &Session, h: ObjectHandle, label: &str, class: ObjectClass, kt: KeyType) {
    assert_eq!(get_bytes(s, h, AttributeType::Label), label.as_bytes());
    match get_attr(s, h, AttributeType::Class) {
        Attribute::Class(c) => assert_eq!(c, class),
        o => panic!("{o:?}"),
    }
    match get_attr(s, h, AttributeType::KeyType) {
        Attribute::KeyType(k) => assert_eq!(k, kt),
        o => panic!("{o:?}"),
    }
    assert!(
        !get_bool(s, h, AttributeType::Local),
        "unwrapped: not CKA_LOCAL"
    );
    assert!(
        !get_bool(s, h, AttributeType::AlwaysSensitive),
        "unwrapped: not CKA_ALWAYS_SENSITIVE"
    );
    assert!(
        !get_bool(s, h, AttributeType::NeverExtractable),
        "unwrapped: not CKA_NEVER_EXTRACTABLE"
    );
}

// ---------- wrap / unwrap ----------

#[test]
fn aes_kw_wraps_an_aes_key() {
    let s = session("km-aes-kw");
    // A known KEK and key so the wrapped bytes can be checked against OpenSSL's RFC 3394.
    let kek_value = [0x11u8; 16];
    let kek = session_secret(
        &s,
        KeyType::AES,
        &kek_value,
        &[Attribute::Wrap(true), Attribute::Unwrap(true)],
    );
    let key = session_secret(
        &s,
        KeyType::AES,
        &AES_KEY,
        &[Attribute::Encrypt(true), Attribute::Decrypt(true)],
    );

    // Two-call convention: the NULL-buffer call reports the exact length (key + 8).
    let (reported, wrapped) = raw_wrap_key(&s, cryptoki_sys::CKM_AES_KEY_WRAP, kek, key).unwrap();
    assert_eq!(reported, 40, "C_WrapKey(NULL) length");
    assert_eq!(wrapped.len(), 40);
    let also = s.wrap_key(&Mechanism::AesKeyWrap, kek, key).unwrap();
    assert_eq!(also, wrapped, "AES-KW is deterministic");
    let ossl_kek = openssl::aes::AesKey::new_encrypt(&kek_value).unwrap();
    let mut want = vec![0u8; 40];
    openssl::aes::wrap_key(&ossl_kek, None, &mut want, &AES_KEY).unwrap();
    assert_eq!(wrapped, want, "RFC 3394 wrapping equals OpenSSL's");

    // A too-small buffer: CKR_BUFFER_TOO_SMALL and the needed length.
    let mut m = cryptoki_sys::CK_MECHANISM {
        mechanism: cryptoki_sys::CKM_AES_KEY_WRAP,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    let mut small = [0u8; 8];
    let mut len: cryptoki_sys::CK_ULONG = small.len() as _;
    // SAFETY: `small` has `len` writable bytes; handles belong to this test.
    let rv = unsafe {
        raw().C_WrapKey(
            s.handle(),
            &mut m,
            kek.handle(),
            key.handle(),
            small.as_mut_ptr(),
            &mut len,
        )
    };
    expect_rv(raw_result(rv, Function::WrapKey), RvError::BufferTooSmall);
    assert_eq!(len, 40, "CKR_BUFFER_TOO_SMALL reports the length");

    // Unwrap: the template is applied, and the key behaves like the original.
    let h = s
        .unwrap_key(
            &Mechanism::AesKeyWrap,
            kek,
            &wrapped,
            &aes_unwrap_template("kw-unwrapped"),
        )
        .expect("C_UnwrapKey(AES_KEY_WRAP)");
    assert_unwrapped(&s, h, "kw-unwrapped", ObjectClass::SECRET_KEY, KeyType::AES);
    assert_eq!(ecb_block(&s, h), ecb_block(&s, key));
    match get_attr(&s, h, AttributeType::ValueLen) {
        Attribute::ValueLen(l) => assert_eq!(u64::from(l), 32),
        o => panic!("{o:?}"),
    }

    // Tampering: one flipped bit fails the integrity check; a length that is no multiple of 8
    // is out of range.
    let mut bad = wrapped.clone();
    bad[10] ^= 0x01;
    expect_rv(
        s.unwrap_key(&Mechanism::AesKeyWrap, kek, &bad, &aes_unwrap_template("x")),
        RvError::WrappedKeyInvalid,
    );
    expect_rv_in(
        s.unwrap_key(
            &Mechanism::AesKeyWrap,
            kek,
            &wrapped[..37],
            &aes_unwrap_template("x"),
        ),
        &[RvError::WrappedKeyLenRange, RvError::WrappedKeyInvalid],
    );
    // The unwrap template must say what to build (§5.14: class and key type).
    expect_rv_in(
        s.unwrap_key(
            &Mechanism::AesKeyWrap,
            kek,
            &wrapped,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Token(false),
            ],
        ),
        &[RvError::TemplateIncomplete, RvError::TemplateInconsistent],
    );
}

#[test]
fn aes_kwp_wraps_odd_secrets_and_private_keys() {
    let s = session("km-aes-kwp");
    let kek = kek(&s);

    // A generic secret of odd length (KWP pads; KW cannot wrap it). Readable, so wrapped and
    // unwrapped readable under a KEK of known value (a generated KEK unwraps sensitive keys
    // only).
    let secret: Vec<u8> = (0u8..21).collect();
    let g = session_secret(&s, KeyType::GENERIC_SECRET, &secret, &[]);
    let known_kek = session_secret(
        &s,
        KeyType::AES,
        &[0x42; 32],
        &[Attribute::Wrap(true), Attribute::Unwrap(true)],
    );
    let (reported, wrapped) = raw_wrap_key(&s, CKM_AES_KEY_WRAP_KWP, known_kek, g).unwrap();
    assert_eq!(reported as usize, wrapped.len());
    assert_eq!(wrapped.len(), 32, "21 bytes pad to 24, plus the 8-byte AIV");
    expect_rv_in(
        raw_wrap_key(&s, cryptoki_sys::CKM_AES_KEY_WRAP, known_kek, g),
        &[
            RvError::KeySizeRange,
            RvError::KeyNotWrappable,
            RvError::DataLenRange,
        ],
    );
    let h = raw_unwrap_key(
        &s,
        CKM_AES_KEY_WRAP_KWP,
        known_kek,
        &wrapped,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Label(b"kwp-secret".to_vec()),
        ],
    )
    .expect("C_UnwrapKey(KWP, generic secret)");
    assert_unwrapped(
        &s,
        h,
        "kwp-secret",
        ObjectClass::SECRET_KEY,
        KeyType::GENERIC_SECRET,
    );
    assert_eq!(get_bytes(&s, h, AttributeType::Value), secret);
    let mut bad = wrapped.clone();
    bad[0] ^= 0x80;
    expect_rv(
        raw_unwrap_key(
            &s,
            CKM_AES_KEY_WRAP_KWP,
            known_kek,
            &bad,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Token(false),
            ],
        ),
        RvError::WrappedKeyInvalid,
    );

    // Private keys travel as PKCS#8: RSA and EC, each signs after the round trip and the
    // original public half verifies.
    for (kt, label) in [(KeyType::RSA, "kwp-rsa"), (KeyType::EC, "kwp-ec")] {
        let (public, private) = if kt == KeyType::RSA {
            let (mut pubt, mut privt) = rsa_templates(2048, label, label.as_bytes());
            pubt[0] = Attribute::Token(false);
            privt[0] = Attribute::Token(false);
            privt[3] = Attribute::Extractable(true);
            s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &pubt, &privt)
                .unwrap()
        } else {
            let (mut pubt, mut privt) = ec_templates(P256, label, label.as_bytes());
            pubt[0] = Attribute::Token(false);
            privt[0] = Attribute::Token(false);
            privt[3] = Attribute::Extractable(true);
            s.generate_key_pair(&Mechanism::EccKeyPairGen, &pubt, &privt)
                .unwrap()
        };
        let (reported, wrapped) = raw_wrap_key(&s, CKM_AES_KEY_WRAP_KWP, kek, private)
            .unwrap_or_else(|e| panic!("C_WrapKey(KWP, {kt:?} private): {e}"));
        assert_eq!(reported as usize, wrapped.len());
        let h = raw_unwrap_key(
            &s,
            CKM_AES_KEY_WRAP_KWP,
            kek,
            &wrapped,
            &[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(kt),
                Attribute::Token(false),
                Attribute::Private(true),
                Attribute::Sign(true),
                Attribute::Label(format!("{label}-unwrapped").into_bytes()),
            ],
        )
        .unwrap_or_else(|e| panic!("C_UnwrapKey(KWP, {kt:?} private): {e}"));
        assert_unwrapped(
            &s,
            h,
            &format!("{label}-unwrapped"),
            ObjectClass::PRIVATE_KEY,
            kt,
        );
        let mech = if kt == KeyType::RSA {
            Mechanism::Sha256RsaPkcs
        } else {
            Mechanism::EcdsaSha256
        };
        let sig = s.sign(&mech, h, MSG).expect("sign with the unwrapped key");
        s.verify(&mech, public, MSG, &sig)
            .expect("the original public key verifies");
    }
}

fn rsa_oaep_sha256() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ))
}

/// An OpenSSL RSA key imported as a session pair: public with CKA_WRAP, private with CKA_UNWRAP.
fn import_rsa_wrap_pair(s: &Session, rsa: &Rsa<Private>) -> (ObjectHandle, ObjectHandle) {
    let public = s
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(false),
            Attribute::Wrap(true),
            Attribute::Encrypt(true),
            Attribute::Verify(true),
            Attribute::Modulus(rsa.n().to_vec()),
            Attribute::PublicExponent(rsa.e().to_vec()),
        ])
        .expect("import RSA public");
    let c = |b: Option<&openssl::bn::BigNumRef>| b.unwrap().to_vec();
    let private = s
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Unwrap(true),
            Attribute::Decrypt(true),
            Attribute::Sign(true),
            Attribute::Modulus(rsa.n().to_vec()),
            Attribute::PublicExponent(rsa.e().to_vec()),
            Attribute::PrivateExponent(rsa.d().to_vec()),
            Attribute::Prime1(c(rsa.p())),
            Attribute::Prime2(c(rsa.q())),
            Attribute::Exponent1(c(rsa.dmp1())),
            Attribute::Exponent2(c(rsa.dmq1())),
            Attribute::Coefficient(c(rsa.iqmp())),
        ])
        .expect("import RSA private");
    (public, private)
}

#[test]
fn rsa_oaep_wraps_an_aes_key() {
    let s = session("km-rsa-oaep");
    let rsa = Rsa::generate(2048).unwrap();
    let (public, private) = import_rsa_wrap_pair(&s, &rsa);
    let key = session_secret(
        &s,
        KeyType::AES,
        &AES_KEY,
        &[Attribute::Encrypt(true), Attribute::Decrypt(true)],
    );
    let wrapped = s
        .wrap_key(&rsa_oaep_sha256(), public, key)
        .expect("C_WrapKey(OAEP)");
    assert_eq!(wrapped.len(), 256, "one modulus-sized block");

    // OpenSSL opens it with the private key (OAEP SHA-256 / MGF1-SHA-256, empty label).
    let pkey = PKey::from_rsa(rsa.clone()).unwrap();
    let mut d = openssl::encrypt::Decrypter::new(&pkey).unwrap();
    d.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
    d.set_rsa_oaep_md(MessageDigest::sha256()).unwrap();
    d.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
    let mut out = vec![0u8; d.decrypt_len(&wrapped).unwrap()];
    let n = d.decrypt(&wrapped, &mut out).unwrap();
    assert_eq!(&out[..n], &AES_KEY, "the wrapped bytes hold the key value");

    let h = s
        .unwrap_key(
            &rsa_oaep_sha256(),
            private,
            &wrapped,
            &aes_unwrap_template("oaep-aes"),
        )
        .expect("C_UnwrapKey(OAEP)");
    assert_unwrapped(&s, h, "oaep-aes", ObjectClass::SECRET_KEY, KeyType::AES);
    assert_eq!(ecb_block(&s, h), ecb_block(&s, key));
    let mut bad = wrapped.clone();
    bad[100] ^= 0x04;
    expect_rv_in(
        s.unwrap_key(&rsa_oaep_sha256(), private, &bad, &aes_unwrap_template("x")),
        &[RvError::WrappedKeyInvalid, RvError::EncryptedDataInvalid],
    );
}

#[test]
fn wrap_attribute_rules() {
    let s = session("km-wrap-rules");
    let kek = kek(&s);

    // CKA_EXTRACTABLE false → CKR_KEY_UNEXTRACTABLE.
    let stuck = gen_session_aes(&s, 16, &[Attribute::Extractable(false)]);
    expect_rv(
        s.wrap_key(&Mechanism::AesKeyWrap, kek, stuck),
        RvError::KeyUnextractable,
    );
    // A wrapping key without CKA_WRAP → CKR_KEY_FUNCTION_NOT_PERMITTED; likewise CKA_UNWRAP.
    let target = gen_session_aes(&s, 16, &[Attribute::Extractable(true)]);
    let no_wrap = gen_session_aes(&s, 32, &[Attribute::Wrap(false), Attribute::Unwrap(false)]);
    expect_rv(
        s.wrap_key(&Mechanism::AesKeyWrap, no_wrap, target),
        RvError::KeyFunctionNotPermitted,
    );
    let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, kek, target).unwrap();
    expect_rv(
        s.unwrap_key(
            &Mechanism::AesKeyWrap,
            no_wrap,
            &wrapped,
            &aes_unwrap_template("x"),
        ),
        RvError::KeyFunctionNotPermitted,
    );
    // A mechanism that cannot wrap at all → CKR_MECHANISM_INVALID.
    expect_rv(
        s.wrap_key(&Mechanism::Sha256, kek, target),
        RvError::MechanismInvalid,
    );

    // CKA_WRAP_WITH_TRUSTED: only a CKA_TRUSTED wrapping key may wrap it.
    let guarded = gen_session_aes(
        &s,
        16,
        &[
            Attribute::Extractable(true),
            Attribute::WrapWithTrusted(true),
        ],
    );
    expect_rv(
        s.wrap_key(&Mechanism::AesKeyWrap, kek, guarded),
        RvError::KeyNotWrappable,
    );
    // Only the SO may set CKA_TRUSTED (§4.8): the SO makes a public token KEK.
    s.logout().unwrap();
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    let trusted = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Trusted(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Decrypt(false),
            Attribute::Label(b"trusted-kek".to_vec()),
            Attribute::Value(vec![0x22; 32]),
        ])
        .expect("the SO creates a CKA_TRUSTED wrapping key");
    s.logout().unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert!(get_any_bool(&s, trusted, AttributeType::Trusted));
    let guarded2 = gen_session_aes(
        &s,
        16,
        &[
            Attribute::Extractable(true),
            Attribute::WrapWithTrusted(true),
        ],
    );
    s.wrap_key(&Mechanism::AesKeyWrap, trusted, guarded2)
        .expect("a trusted KEK wraps a CKA_WRAP_WITH_TRUSTED key");
    // The user cannot make a trusted key.
    expect_rv_in(
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Trusted(true),
            Attribute::Wrap(true),
            Attribute::Value(vec![0x33; 16]),
        ]),
        &[RvError::AttributeReadOnly, RvError::TemplateInconsistent],
    );
    // CKA_WRAP_WITH_TRUSTED can only become true.
    expect_rv_in(
        s.update_attributes(guarded2, &[Attribute::WrapWithTrusted(false)]),
        &[RvError::AttributeReadOnly, RvError::ActionProhibited],
    );
}

// ---------- ECDH ----------

fn derive_template(kt: KeyType, len: u64, extractable: bool) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(kt),
        Attribute::Token(false),
        Attribute::ValueLen(len.into()),
        Attribute::Sensitive(!extractable),
        Attribute::Extractable(extractable),
    ];
    if kt == KeyType::AES {
        t.extend([Attribute::Encrypt(true), Attribute::Decrypt(true)]);
    }
    t
}

fn gen_derive_pair(s: &Session, label: &str) -> (ObjectHandle, ObjectHandle, Vec<u8>) {
    let (mut pubt, mut privt) = ec_templates(P256, label, label.as_bytes());
    pubt[0] = Attribute::Token(false);
    privt[0] = Attribute::Token(false);
    privt.push(Attribute::Derive(true));
    let (public, private) = s
        .generate_key_pair(&Mechanism::EccKeyPairGen, &pubt, &privt)
        .unwrap();
    let point = unwrap_octet_string(&get_bytes(s, public, AttributeType::EcPoint));
    (public, private, point)
}

/// ANSI X9.63 KDF (what CKD_SHA*_KDF means): H(Z ‖ counter ‖ SharedInfo), counter from 1.
fn x963_kdf(md: MessageDigest, z: &[u8], shared: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut counter = 1u32;
    while out.len() < len {
        let mut input = z.to_vec();
        input.extend(counter.to_be_bytes());
        input.extend_from_slice(shared);
        out.extend_from_slice(&hash(md, &input).unwrap());
        counter += 1;
    }
    out.truncate(len);
    out
}

#[test]
fn ecdh_derive() {
    let s = session("km-ecdh");
    let (_, a_priv, a_point) = gen_derive_pair(&s, "ecdh-a");
    let (_, b_priv, b_point) = gen_derive_pair(&s, "ecdh-b");

    // Both sides derive the same AES key: encrypt with one, decrypt with the other.
    let ab = s
        .derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &b_point)),
            a_priv,
            &derive_template(KeyType::AES, 32, false),
        )
        .expect("C_DeriveKey(ECDH1, CKD_NULL) → AES");
    let ba = s
        .derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &a_point)),
            b_priv,
            &derive_template(KeyType::AES, 32, false),
        )
        .unwrap();
    let ct = s.encrypt(&Mechanism::AesCbcPad([7; 16]), ab, MSG).unwrap();
    assert_eq!(
        s.decrypt(&Mechanism::AesCbcPad([7; 16]), ba, &ct).unwrap(),
        MSG
    );
    assert!(
        !get_bool(&s, ab, AttributeType::Local),
        "derived keys are not CKA_LOCAL"
    );

    // CKD_NULL against OpenSSL: the peer is an OpenSSL key; Z is the shared x-coordinate.
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let peer = EcKey::generate(&group).unwrap();
    let mut bn = BigNumContext::new().unwrap();
    let peer_point = peer
        .public_key()
        .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut bn)
        .unwrap();
    let a_pub = EcKey::from_public_key(
        &group,
        &openssl::ec::EcPoint::from_bytes(&group, &a_point, &mut bn).unwrap(),
    )
    .unwrap();
    let peer_pkey = PKey::from_ec_key(peer).unwrap();
    let a_pkey = PKey::from_ec_key(a_pub).unwrap();
    let mut deriver = openssl::derive::Deriver::new(&peer_pkey).unwrap();
    deriver.set_peer(&a_pkey).unwrap();
    let z = deriver.derive_to_vec().unwrap();
    assert_eq!(z.len(), 32);

    let derive_value = |kdf: EcKdf, public: &[u8], len: u64| -> Vec<u8> {
        let h = s
            .derive_key(
                &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(kdf, public)),
                a_priv,
                &derive_template(KeyType::GENERIC_SECRET, len, true),
            )
            .unwrap_or_else(|e| panic!("C_DeriveKey(ECDH1) → generic secret: {e}"));
        get_bytes(&s, h, AttributeType::Value)
    };
    assert_eq!(
        derive_value(EcKdf::null(), &peer_point, 32),
        z,
        "CKD_NULL = OpenSSL ECDH"
    );
    // The peer point may also come DER-encoded (an OCTET STRING, as in CKA_EC_POINT).
    let der_point = octet_string(&peer_point);
    assert_eq!(
        derive_value(EcKdf::null(), &der_point, 32),
        z,
        "DER peer point"
    );
    // A shorter CKA_VALUE_LEN truncates Z. The spec does not say from which end: SoftHSMv2
    // keeps the trailing bytes, others the leading ones; either is accepted.
    let short = derive_value(EcKdf::null(), &peer_point, 16);
    assert!(
        short == z[..16] || short == z[16..],
        "CKD_NULL with CKA_VALUE_LEN 16: {} is neither end of Z {}",
        hex::encode(&short),
        hex::encode(&z)
    );

    // X9.63 KDFs, with and without shared data, and lengths beyond one hash block.
    let info = b"sqlhsm shared info";
    for (kdf, md) in [
        (EcKdf::sha1(info), MessageDigest::sha1()),
        (EcKdf::sha224(info), MessageDigest::sha224()),
        (EcKdf::sha256(info), MessageDigest::sha256()),
        (EcKdf::sha384(info), MessageDigest::sha384()),
        (EcKdf::sha512(info), MessageDigest::sha512()),
    ] {
        assert_eq!(
            derive_value(kdf, &peer_point, 48),
            x963_kdf(md, &z, info, 48),
            "CKD_*_KDF with {:?}",
            md.type_()
        );
    }
    assert_eq!(
        derive_value(EcKdf::sha256(&[]), &peer_point, 80),
        x963_kdf(MessageDigest::sha256(), &z, &[], 80)
    );

    // Errors: a point not on the curve; a base key without CKA_DERIVE; CKD_NULL with shared
    // data (§6.3.16: ulSharedDataLen must be 0).
    let mut off = peer_point.clone();
    off[40] ^= 1;
    expect_rv_in(
        s.derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &off)),
            a_priv,
            &derive_template(KeyType::GENERIC_SECRET, 32, true),
        ),
        &[
            RvError::MechanismParamInvalid,
            RvError::DomainParamsInvalid,
            RvError::ArgumentsBad,
        ],
    );
    let (_, no_derive) = gen_ec(&s, P256, "ecdh-no-derive", b"nd");
    expect_rv(
        s.derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &peer_point)),
            no_derive,
            &derive_template(KeyType::GENERIC_SECRET, 32, true),
        ),
        RvError::KeyFunctionNotPermitted,
    );
}

// ---------- objects ----------

#[test]
fn copy_object_and_object_size() {
    let p = ctx();
    let slot = new_token(p, "km-copy");
    let s = user_session(p, slot);
    let original = gen_aes(&s, 32, "copy-source");
    let copy = s
        .copy_object(original, &[Attribute::Label(b"copy-dest".to_vec())])
        .expect("C_CopyObject");
    assert_ne!(copy, original);
    assert_eq!(get_bytes(&s, copy, AttributeType::Label), b"copy-dest");
    assert_eq!(
        get_bytes(&s, original, AttributeType::Label),
        b"copy-source"
    );
    assert!(get_bool(&s, copy, AttributeType::Token));
    assert_eq!(
        ecb_block(&s, copy),
        ecb_block(&s, original),
        "same key material"
    );
    assert_eq!(
        find_by_label(&s, "copy-dest"),
        vec![copy],
        "the copy is a token object"
    );

    // A token key copied to a session object.
    let sess = s
        .copy_object(
            original,
            &[
                Attribute::Token(false),
                Attribute::Label(b"copy-sess".to_vec()),
            ],
        )
        .expect("C_CopyObject to a session object");
    assert!(!get_bool(&s, sess, AttributeType::Token));
    assert_eq!(ecb_block(&s, sess), ecb_block(&s, original));
    // CKA_SENSITIVE may not go back to false in a copy (only to true).
    expect_rv_in(
        s.copy_object(original, &[Attribute::Sensitive(false)]),
        &[RvError::AttributeReadOnly, RvError::TemplateInconsistent],
    );

    // CKA_COPYABLE false → CKR_ACTION_PROHIBITED; and it cannot be set back to true.
    let fixed = gen_session_aes(&s, 16, &[Attribute::Copyable(false)]);
    assert!(!get_any_bool(&s, fixed, AttributeType::Copyable));
    expect_rv(
        s.copy_object(fixed, &[Attribute::Label(b"nope".to_vec())]),
        RvError::ActionProhibited,
    );
    expect_rv_in(
        s.update_attributes(fixed, &[Attribute::Copyable(true)]),
        &[RvError::AttributeReadOnly, RvError::ActionProhibited],
    );

    // C_GetObjectSize: a size for keys (or CKR_INFORMATION_SENSITIVE where the module
    // prefers not to say), CKR_OBJECT_HANDLE_INVALID for a handle that is not one.
    let (public, _) = gen_ec(&s, P256, "size-ec", b"sz");
    assert!(raw_object_size(&s, public).expect("C_GetObjectSize(public key)") > 0);
    match raw_object_size(&s, original) {
        Ok(n) => assert!(n > 0),
        Err(e) => assert_eq!(rv_of::<u64>(Err(e)), RvError::InformationSensitive),
    }
    s.destroy_object(copy).unwrap();
    expect_rv(raw_object_size(&s, copy), RvError::ObjectHandleInvalid);
}

#[test]
fn check_value_of_aes_keys() {
    let s = session("km-check-value");
    for len in [16usize, 24, 32] {
        let value = &AES_KEY[..len];
        let k = session_secret(&s, KeyType::AES, value, &[Attribute::Encrypt(true)]);
        let cipher = match len {
            16 => Cipher::aes_128_ecb(),
            24 => Cipher::aes_192_ecb(),
            _ => Cipher::aes_256_ecb(),
        };
        let mut c =
            openssl::symm::Crypter::new(cipher, openssl::symm::Mode::Encrypt, value, None).unwrap();
        c.pad(false);
        let mut block = vec![0u8; 32];
        let n = c.update(&[0u8; 16], &mut block).unwrap();
        assert_eq!(n, 16);
        assert_eq!(
            get_any_bytes(&s, k, AttributeType::CheckValue),
            block[..3],
            "CKA_CHECK_VALUE of AES-{}",
            len * 8
        );
    }
    // A generated, sensitive key still shows its check value (it is not secret).
    let g = gen_aes(&s, 32, "cv-generated");
    let cv = get_any_bytes(&s, g, AttributeType::CheckValue);
    let zero = s.encrypt(&Mechanism::AesEcb, g, &[0u8; 16]).unwrap();
    assert_eq!(cv, zero[..3]);
    // A wrong check value in a C_CreateObject template is refused (§4.10.3).
    expect_rv_in(
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Value(AES_KEY.to_vec()),
            Attribute::CheckValue(vec![0, 0, 0]),
        ]),
        &[
            RvError::AttributeValueInvalid,
            RvError::TemplateInconsistent,
        ],
    );
}

#[test]
fn allowed_mechanisms_enforced() {
    let s = session("km-allowed");
    let k = gen_session_aes(
        &s,
        16,
        &[Attribute::AllowedMechanisms(vec![
            MechanismType::AES_CBC_PAD,
        ])],
    );
    match get_attr(&s, k, AttributeType::AllowedMechanisms) {
        Attribute::AllowedMechanisms(m) => assert_eq!(m, vec![MechanismType::AES_CBC_PAD]),
        o => panic!("{o:?}"),
    }
    s.encrypt(&Mechanism::AesCbcPad([1; 16]), k, MSG)
        .expect("an allowed mechanism works");
    expect_rv(
        s.encrypt(&Mechanism::AesEcb, k, &[0; 16]),
        RvError::MechanismInvalid,
    );
    expect_rv(
        s.encrypt_init(
            &Mechanism::AesGcm(
                cryptoki::mechanism::aead::GcmParams::new(&mut [0u8; 12], &[], 128.into()).unwrap(),
            ),
            k,
        ),
        RvError::MechanismInvalid,
    );
    // Also for HMAC keys and for wrapping.
    let h = session_secret(
        &s,
        KeyType::GENERIC_SECRET,
        &[9; 32],
        &[
            Attribute::Sign(true),
            Attribute::AllowedMechanisms(vec![MechanismType::SHA256_HMAC]),
        ],
    );
    s.sign(&Mechanism::Sha256Hmac, h, MSG).unwrap();
    expect_rv(
        s.sign(&Mechanism::Sha512Hmac, h, MSG),
        RvError::MechanismInvalid,
    );
    let kw = gen_session_aes(
        &s,
        32,
        &[
            Attribute::Wrap(true),
            Attribute::AllowedMechanisms(vec![MechanismType::AES_KEY_WRAP]),
        ],
    );
    let target = gen_session_aes(
        &s,
        24,
        &[Attribute::Extractable(true), Attribute::Sensitive(false)],
    );
    s.wrap_key(&Mechanism::AesKeyWrap, kw, target).unwrap();
    expect_rv(
        raw_wrap_key(&s, CKM_AES_KEY_WRAP_KWP, kw, target),
        RvError::MechanismInvalid,
    );
}

#[test]
fn unique_id_distinct_and_stable() {
    let s = session("km-unique-id");
    let a = gen_aes(&s, 16, "uid-a");
    let b = gen_aes(&s, 16, "uid-b");
    let (pubk, privk) = gen_ec(&s, P256, "uid-ec", b"uid");
    let sess = gen_session_aes(&s, 16, &[]);
    let ids: Vec<Vec<u8>> = [a, b, pubk, privk, sess]
        .iter()
        .map(|o| get_any_bytes(&s, *o, AttributeType::UniqueId))
        .collect();
    for (i, x) in ids.iter().enumerate() {
        assert!(!x.is_empty(), "CKA_UNIQUE_ID is never empty");
        for y in &ids[i + 1..] {
            assert_ne!(
                x, y,
                "CKA_UNIQUE_ID differs between objects (even a pair's halves)"
            );
        }
    }
    assert_eq!(
        get_any_bytes(&s, a, AttributeType::UniqueId),
        ids[0],
        "stable"
    );
    // Found by it, and stable in a new session.
    assert_eq!(
        s.find_objects(&[Attribute::UniqueId(ids[1].clone())])
            .unwrap(),
        vec![b]
    );
    let s2 = user_session(ctx(), s.get_session_info().unwrap().slot_id());
    let found = s2
        .find_objects(&[Attribute::UniqueId(ids[0].clone())])
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        get_any_bytes(&s2, found[0], AttributeType::UniqueId),
        ids[0]
    );
    // Read-only: set by the token, never by the application.
    expect_rv_in(
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Value(vec![1; 16]),
            Attribute::UniqueId(b"mine".to_vec()),
        ]),
        &[RvError::AttributeReadOnly, RvError::TemplateInconsistent],
    );
    expect_rv_in(
        s.update_attributes(a, &[Attribute::UniqueId(b"mine".to_vec())]),
        &[RvError::AttributeReadOnly, RvError::ActionProhibited],
    );
    // A copy is a new object with a new id.
    let c = s.copy_object(a, &[Attribute::Token(false)]).unwrap();
    assert_ne!(get_any_bytes(&s, c, AttributeType::UniqueId), ids[0]);
}

#[test]
fn public_key_info_and_public_components() {
    let s = session("km-pki");
    let (rsa_pub, rsa_priv) = gen_rsa(&s, 2048, "pki-rsa", b"pki-rsa");
    let (ec_pub, ec_priv) = gen_ec(&s, P256, "pki-ec", b"pki-ec");
    let (ed_pub, ed_priv) = gen_ec(&s, ED25519, "pki-ed", b"pki-ed");
    for (public, private) in [(rsa_pub, rsa_priv), (ec_pub, ec_priv), (ed_pub, ed_priv)] {
        let spki = openssl_public(&s, public).public_key_to_der().unwrap();
        assert_eq!(
            get_any_bytes(&s, public, AttributeType::PublicKeyInfo),
            spki,
            "CKA_PUBLIC_KEY_INFO of the public key is its SPKI"
        );
        assert_eq!(
            get_any_bytes(&s, private, AttributeType::PublicKeyInfo),
            spki,
            "CKA_PUBLIC_KEY_INFO of the private key is its public key's SPKI"
        );
    }
    // RSA modulus and public exponent, EC params and point, on both halves.
    for a in [AttributeType::Modulus, AttributeType::PublicExponent] {
        assert_eq!(
            get_bytes(&s, rsa_priv, a),
            get_bytes(&s, rsa_pub, a),
            "{a:?}"
        );
    }
    for a in [AttributeType::EcParams, AttributeType::EcPoint] {
        assert_eq!(get_bytes(&s, ec_priv, a), get_bytes(&s, ec_pub, a), "{a:?}");
    }
    assert_eq!(get_bytes(&s, ec_priv, AttributeType::EcParams), P256);
    // An imported lone private key gets its public key info too.
    let rsa = Rsa::generate(2048).unwrap();
    let (_, imported) = import_rsa_wrap_pair(&s, &rsa);
    assert_eq!(
        get_any_bytes(&s, imported, AttributeType::PublicKeyInfo),
        rsa.public_key_to_der().unwrap(),
        "SPKI of an imported RSA private key"
    );
}

// ---------- MACs and ciphers cross-checked with OpenSSL ----------

#[test]
fn hmac_matches_openssl() {
    let s = session("km-hmac");
    let key: Vec<u8> = (0u8..40).collect();
    let k = session_secret(
        &s,
        KeyType::GENERIC_SECRET,
        &key,
        &[Attribute::Sign(true), Attribute::Verify(true)],
    );
    let pkey = PKey::hmac(&key).unwrap();
    for (mech, md) in [
        (Mechanism::Sha1Hmac, MessageDigest::sha1()),
        (Mechanism::Sha224Hmac, MessageDigest::sha224()),
        (Mechanism::Sha256Hmac, MessageDigest::sha256()),
        (Mechanism::Sha384Hmac, MessageDigest::sha384()),
        (Mechanism::Sha512Hmac, MessageDigest::sha512()),
    ] {
        let mut signer = Signer::new(md, &pkey).unwrap();
        signer.update(MSG).unwrap();
        let want = signer.sign_to_vec().unwrap();
        let mac = s
            .sign(&mech, k, MSG)
            .unwrap_or_else(|e| panic!("{mech:?}: {e}"));
        assert_eq!(mac, want, "{mech:?} = OpenSSL HMAC");
        s.sign_init(&mech, k).unwrap();
        for c in MSG.chunks(5) {
            s.sign_update(c).unwrap();
        }
        assert_eq!(s.sign_final().unwrap(), want, "{mech:?} multi-part");
        s.verify(&mech, k, MSG, &want).unwrap();
        let mut bad = want.clone();
        bad[0] ^= 1;
        expect_rv(s.verify(&mech, k, MSG, &bad), RvError::SignatureInvalid);
        expect_rv_in(
            s.verify(&mech, k, MSG, &want[..want.len() - 1]),
            &[RvError::SignatureLenRange, RvError::SignatureInvalid],
        );
    }
    // A generated generic secret signs too, and AES keys are not HMAC keys.
    let g = s
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32u64.into()),
                Attribute::Sign(true),
                Attribute::Verify(true),
            ],
        )
        .unwrap();
    let mac = s.sign(&Mechanism::Sha256Hmac, g, MSG).unwrap();
    s.verify(&Mechanism::Sha256Hmac, g, MSG, &mac).unwrap();
    let aes = gen_session_aes(&s, 32, &[Attribute::Sign(true)]);
    expect_rv(
        s.sign(&Mechanism::Sha256Hmac, aes, MSG),
        RvError::KeyTypeInconsistent,
    );
}

#[test]
fn cmac_matches_openssl() {
    let s = session("km-cmac");
    for (len, cipher) in [
        (16usize, Cipher::aes_128_cbc()),
        (24, Cipher::aes_192_cbc()),
        (32, Cipher::aes_256_cbc()),
    ] {
        let key = &AES_KEY[..len];
        let k = session_secret(
            &s,
            KeyType::AES,
            key,
            &[Attribute::Sign(true), Attribute::Verify(true)],
        );
        let pkey = PKey::cmac(&cipher, key).unwrap();
        for msg in [&b""[..], &MSG[..16], MSG] {
            let mut signer = Signer::new_without_digest(&pkey).unwrap();
            signer.update(msg).unwrap();
            let want = signer.sign_to_vec().unwrap();
            let mac = s
                .sign(&Mechanism::AesCMac, k, msg)
                .expect("C_Sign(AES_CMAC)");
            assert_eq!(mac, want, "AES-{} CMAC of {} bytes", len * 8, msg.len());
            s.verify(&Mechanism::AesCMac, k, msg, &want).unwrap();
            let mut bad = want.clone();
            bad[15] ^= 0x40;
            expect_rv(
                s.verify(&Mechanism::AesCMac, k, msg, &bad),
                RvError::SignatureInvalid,
            );
        }
        s.sign_init(&Mechanism::AesCMac, k).unwrap();
        for c in MSG.chunks(7) {
            s.sign_update(c).unwrap();
        }
        let mut signer = Signer::new_without_digest(&pkey).unwrap();
        signer.update(MSG).unwrap();
        assert_eq!(s.sign_final().unwrap(), signer.sign_to_vec().unwrap());
    }
}

/// `CK_AES_CTR_PARAMS` (cryptoki 0.12 has no `Mechanism::AesCtr`).
fn aes_ctr(cb: [u8; 16], counter_bits: u64) -> cryptoki_sys::CK_AES_CTR_PARAMS {
    cryptoki_sys::CK_AES_CTR_PARAMS {
        ulCounterBits: counter_bits as _,
        cb,
    }
}

#[test]
fn aes_ctr_matches_openssl() {
    let s = session("km-ctr");
    let k = session_secret(
        &s,
        KeyType::AES,
        &AES_KEY,
        &[Attribute::Encrypt(true), Attribute::Decrypt(true)],
    );
    let cb = [
        0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe,
        0xff,
    ];
    let params = aes_ctr(cb, 128);
    let mech = Mechanism::VendorDefined(VendorDefinedMechanism::new(
        MechanismType::AES_CTR,
        Some(&params),
    ));
    let want = ossl_encrypt(Cipher::aes_256_ctr(), &AES_KEY, Some(&cb), MSG).unwrap();
    let ct = s.encrypt(&mech, k, MSG).expect("C_Encrypt(AES_CTR)");
    assert_eq!(ct, want, "AES-CTR = OpenSSL (any length, no padding)");
    assert_eq!(s.decrypt(&mech, k, &ct).unwrap(), MSG);
    // Multi-part in odd chunks gives the same stream.
    s.encrypt_init(&mech, k).unwrap();
    let mut multi = Vec::new();
    for c in MSG.chunks(5) {
        multi.extend(s.encrypt_update(c).unwrap());
    }
    multi.extend(s.encrypt_final().unwrap());
    assert_eq!(multi, want);
    // ulCounterBits outside 1..=128 is a bad parameter.
    let bad = aes_ctr(cb, 0);
    let bad_mech = Mechanism::VendorDefined(VendorDefinedMechanism::new(
        MechanismType::AES_CTR,
        Some(&bad),
    ));
    expect_rv_in(
        s.encrypt(&bad_mech, k, MSG),
        &[RvError::MechanismParamInvalid, RvError::ArgumentsBad],
    );
}

#[test]
fn rsa_x_509_matches_openssl() {
    let s = session("km-x509");
    let rsa = Rsa::generate(2048).unwrap();
    let (public, private) = import_rsa_wrap_pair(&s, &rsa);
    // A modulus-sized input below n.
    let mut m = vec![0u8; 256];
    m[1..]
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = i as u8 ^ 0x5c);
    let mut want = vec![0u8; 256];
    let n = rsa.public_encrypt(&m, &mut want, Padding::NONE).unwrap();
    assert_eq!(n, 256);
    let ct = s
        .encrypt(&Mechanism::RsaX509, public, &m)
        .expect("C_Encrypt(RSA_X_509)");
    assert_eq!(ct, want, "raw RSA = OpenSSL");
    assert_eq!(s.decrypt(&Mechanism::RsaX509, private, &ct).unwrap(), m);
    // Raw signature: m^d mod n, verified by OpenSSL's raw public operation.
    let sig = s
        .sign(&Mechanism::RsaX509, private, &m)
        .expect("C_Sign(RSA_X_509)");
    let mut back = vec![0u8; 256];
    rsa.public_decrypt(&sig, &mut back, Padding::NONE).unwrap();
    assert_eq!(back, m);
    s.verify(&Mechanism::RsaX509, public, &m, &sig).unwrap();
    // A shorter input is taken as a big-endian number (left-padded with zeros).
    let short = b"short";
    let ct = s.encrypt(&Mechanism::RsaX509, public, short).unwrap();
    let mut padded = vec![0u8; 256 - short.len()];
    padded.extend_from_slice(short);
    assert_eq!(
        s.decrypt(&Mechanism::RsaX509, private, &ct).unwrap(),
        padded
    );
    // An input of the modulus size but not below n → CKR_DATA_INVALID; longer →
    // CKR_DATA_LEN_RANGE.
    expect_rv_in(
        s.encrypt(&Mechanism::RsaX509, public, &[0xff; 256]),
        &[RvError::DataInvalid, RvError::DataLenRange],
    );
    expect_rv(
        s.encrypt(&Mechanism::RsaX509, public, &[1; 257]),
        RvError::DataLenRange,
    );
}

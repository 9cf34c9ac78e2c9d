//! The key-extraction attacks on PKCS#11 tokens (Clulow 2003; Bortolozzo, Centenaro, Focardi
//! and Steel 2010) through the C ABI, one test per attack, and the rules that refuse them
//! (src/core/extraction.rs, README "Key-extraction attacks"): CKA_TRUSTED set by the SO only,
//! CKA_WRAP_WITH_TRUSTED, wrap-then-decrypt, wrapping under an imported key, deriving with known
//! data, changing usages after creation, and unwrapping a blob as a readable or a known key.

mod common;

use cryptoki::error::RvError;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::misc::KeyDerivationStringData;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeInfo, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle,
};
use cryptoki::session::{Session, UserType};

use common::*;

fn session(label: &str) -> Session {
    let p = ctx();
    let slot = new_token(p, label);
    user_session(p, slot)
}

fn as_so(s: &Session) {
    s.logout().unwrap();
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
}

fn as_user(s: &Session) {
    s.logout().unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
}

/// A session AES-256 key generated in the module: `CKA_LOCAL`, and always sensitive and never
/// extractable unless `extra` says otherwise.
fn generate(s: &Session, extra: &[Attribute]) -> ObjectHandle {
    let mut t = vec![Attribute::Token(false), Attribute::ValueLen(32.into())];
    t.extend_from_slice(extra);
    s.generate_key(&Mechanism::AesKeyGen, &t)
        .unwrap_or_else(|e| panic!("C_GenerateKey(AES): {e}"))
}

/// A key-encryption key as sqlhsm wants one for sensitive keys: generated, sensitive,
/// unextractable, wrapping and unwrapping and nothing that reads a value back out.
fn kek(s: &Session) -> ObjectHandle {
    generate(
        s,
        &[
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Encrypt(false),
            Attribute::Decrypt(false),
        ],
    )
}

/// The key an attacker wants: generated, sensitive, extractable (it may be wrapped).
fn sensitive_target(s: &Session) -> ObjectHandle {
    generate(
        s,
        &[
            Attribute::Extractable(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
        ],
    )
}

/// An AES key the caller imports with a value it knows.
fn imported(s: &Session, value: &[u8], extra: &[Attribute]) -> ObjectHandle {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Value(value.to_vec()),
    ];
    t.extend_from_slice(extra);
    s.create_object(&t)
        .unwrap_or_else(|e| panic!("C_CreateObject(AES): {e}"))
}

fn aes_template(extra: &[Attribute]) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
    ];
    t.extend_from_slice(extra);
    t
}

/// `C_GetAttributeValue(CKA_VALUE)` answers `CKR_ATTRIBUTE_SENSITIVE`.
fn assert_sensitive(s: &Session, key: ObjectHandle) {
    let info = s
        .get_attribute_info(key, &[AttributeType::Value])
        .expect("C_GetAttributeValue");
    assert!(
        matches!(info[0], AttributeInfo::Sensitive),
        "CKA_VALUE → CKR_ATTRIBUTE_SENSITIVE, got {:?}",
        info[0]
    );
}

fn ecb(s: &Session, key: ObjectHandle) -> Vec<u8> {
    s.encrypt(&Mechanism::AesEcb, key, &[0x3c; 16])
        .expect("C_Encrypt(AES_ECB)")
}

/// A public token AES key a user made (the SO sees public objects only).
fn public_token_key(s: &Session, label: &str, extra: &[Attribute]) -> ObjectHandle {
    let mut t = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::ValueLen(32.into()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    t.extend_from_slice(extra);
    s.generate_key(&Mechanism::AesKeyGen, &t)
        .unwrap_or_else(|e| panic!("C_GenerateKey(public AES): {e}"))
}

#[test]
fn trusted_is_set_and_changed_by_the_so_only() {
    let s = session("kx-trusted");
    // The user may not create a trusted key of any class (PKCS#11 3.0 §4.8, §4.10: only the
    // SO sets CKA_TRUSTED to true) — CKR_ATTRIBUTE_READ_ONLY, as SoftHSM answers.
    expect_rv(
        s.create_object(&aes_template(&[
            Attribute::Trusted(true),
            Attribute::Value(vec![1; 16]),
        ])),
        RvError::AttributeReadOnly,
    );
    let (mut pubt, privt) = ec_templates(P256, "kx-ec", b"kx-ec");
    pubt.push(Attribute::Trusted(true));
    expect_rv(
        s.generate_key_pair(&Mechanism::EccKeyPairGen, &pubt, &privt),
        RvError::AttributeReadOnly,
    );
    expect_rv(
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::ValueLen(16.into()), Attribute::Trusted(true)],
        ),
        RvError::AttributeReadOnly,
    );

    // Nor set it later; the SO may, on the public objects it sees: a secret key, a public key
    // and a certificate.
    let key = public_token_key(&s, "kx-trusted-aes", &[Attribute::Wrap(true)]);
    let (ec_public, _) = gen_ec(&s, P256, "kx-trusted-ec", b"kx-trusted-ec");
    let cert = make_cert("kx-trusted");
    expect_rv(
        s.create_object(&cert_template(&cert, true)),
        RvError::AttributeReadOnly,
    );
    let cert = s
        .create_object(&cert_template(&cert, false))
        .expect("the user creates an untrusted certificate");
    for h in [key, ec_public, cert] {
        expect_rv(
            s.update_attributes(h, &[Attribute::Trusted(true)]),
            RvError::AttributeReadOnly,
        );
    }
    as_so(&s);
    for h in [key, ec_public, cert] {
        s.update_attributes(h, &[Attribute::Trusted(true)])
            .expect("the SO sets CKA_TRUSTED");
    }
    let so_made = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Trusted(true),
            Attribute::Wrap(true),
            Attribute::Value(vec![2; 32]),
        ])
        .expect("the SO creates a trusted public secret key");
    as_user(&s);
    for h in [key, ec_public, cert, so_made] {
        assert!(get_any_bool(&s, h, AttributeType::Trusted), "{h:?}");
        // Clearing it, or copying without it, would turn a key that wrapped sensitive keys
        // into one that unwraps them readable: the SO's too.
        expect_rv(
            s.update_attributes(h, &[Attribute::Trusted(false)]),
            RvError::AttributeReadOnly,
        );
        expect_rv(
            s.copy_object(h, &[Attribute::Trusted(false)]),
            RvError::AttributeReadOnly,
        );
    }
    // Setting it to what it is is harmless.
    s.update_attributes(key, &[Attribute::Trusted(true)])
        .expect("CKA_TRUSTED to its current value");
    as_so(&s);
    s.update_attributes(key, &[Attribute::Trusted(false)])
        .expect("the SO clears CKA_TRUSTED");
    as_user(&s);
    assert!(!get_any_bool(&s, key, AttributeType::Trusted));
}

#[test]
fn wrap_with_trusted_wraps_under_trusted_keys_only_and_only_turns_on() {
    let s = session("kx-wwt");
    let target = sensitive_target(&s);
    // The user turns it on later (false → true is allowed; §4.10).
    s.update_attributes(target, &[Attribute::WrapWithTrusted(true)])
        .expect("CKA_WRAP_WITH_TRUSTED false → true");
    expect_rv(
        s.update_attributes(target, &[Attribute::WrapWithTrusted(false)]),
        RvError::AttributeReadOnly,
    );
    expect_rv(
        s.copy_object(target, &[Attribute::WrapWithTrusted(false)]),
        RvError::AttributeReadOnly,
    );
    // Even the best untrusted KEK may not wrap it: CKR_KEY_NOT_WRAPPABLE.
    let kek = kek(&s);
    expect_rv(
        s.wrap_key(&Mechanism::AesKeyWrap, kek, target),
        RvError::KeyNotWrappable,
    );
    let trusted = public_token_key(
        &s,
        "kx-wwt-kek",
        &[
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Decrypt(false),
        ],
    );
    as_so(&s);
    s.update_attributes(trusted, &[Attribute::Trusted(true)])
        .unwrap();
    as_user(&s);
    let wrapped = s
        .wrap_key(&Mechanism::AesKeyWrap, trusted, target)
        .expect("a trusted KEK wraps a CKA_WRAP_WITH_TRUSTED key");
    let back = s
        .unwrap_key(
            &Mechanism::AesKeyWrap,
            trusted,
            &wrapped,
            &aes_template(&[Attribute::Encrypt(true)]),
        )
        .unwrap();
    assert_eq!(ecb(&s, back), ecb(&s, target));
}

/// Attack (a): wrap a sensitive key under K, then C_Decrypt the blob with K. The blob is the
/// key under a plain cipher (AES-KW, ECB, CBC also decrypt), so a K that both wraps and
/// decrypts hands the key out. Refused at the wrap: a key with CKA_DECRYPT may not wrap
/// sensitive keys (CKR_KEY_NOT_WRAPPABLE), and CKA_DECRYPT cannot be added later.
#[test]
fn attack_wrap_then_decrypt_with_the_same_key() {
    let s = session("kx-wrap-decrypt");
    let target = sensitive_target(&s);
    // The defaults (SoftHSM's) give a generated AES key every usage.
    let both = generate(&s, &[]);
    assert!(
        get_any_bool(&s, both, AttributeType::Wrap)
            && get_any_bool(&s, both, AttributeType::Decrypt)
    );
    for mechanism in [Mechanism::AesKeyWrap, Mechanism::AesEcb] {
        expect_rv(
            s.wrap_key(&mechanism, both, target),
            RvError::KeyNotWrappable,
        );
    }
    // Why: with a readable key the same two calls give its value back.
    let value = [0x5au8; 32];
    let readable = imported(
        &s,
        &value,
        &[Attribute::Sensitive(false), Attribute::Extractable(true)],
    );
    let wrapped = s
        .wrap_key(&Mechanism::AesKeyWrap, both, readable)
        .expect("a readable key wraps under any wrapping key");
    let opened = s
        .decrypt(&Mechanism::AesKeyWrap, both, &wrapped)
        .expect("C_Decrypt(AES_KEY_WRAP) of a wrapping");
    assert_eq!(
        opened, value,
        "the attack works where the rule does not apply"
    );

    // A KEK without CKA_DECRYPT wraps it, cannot decrypt the blob, and cannot be given
    // CKA_DECRYPT afterwards, nor have a copy that decrypts.
    let kek = kek(&s);
    let wrapped = s
        .wrap_key(&Mechanism::AesKeyWrap, kek, target)
        .expect("a single-purpose KEK wraps a sensitive key");
    expect_rv(
        s.decrypt(&Mechanism::AesKeyWrap, kek, &wrapped),
        RvError::KeyFunctionNotPermitted,
    );
    expect_rv(
        s.update_attributes(kek, &[Attribute::Decrypt(true)]),
        RvError::AttributeReadOnly,
    );
    expect_rv(
        s.copy_object(kek, &[Attribute::Decrypt(true)]),
        RvError::AttributeReadOnly,
    );
    // A plain copy is the same KEK, usages included.
    let copy = s.copy_object(kek, &[]).expect("C_CopyObject(KEK)");
    assert!(!get_any_bool(&s, copy, AttributeType::Decrypt));
    expect_rv(
        s.decrypt(&Mechanism::AesKeyWrap, copy, &wrapped),
        RvError::KeyFunctionNotPermitted,
    );

    // An RSA public key wraps for whoever holds its private half (here, with CKA_DECRYPT):
    // it must be trusted by the SO to wrap a sensitive key.
    let (rsa_public, _) = gen_rsa(&s, 2048, "kx-rsa", b"kx-rsa");
    let oaep = Mechanism::RsaPkcsOaep(cryptoki::mechanism::rsa::PkcsOaepParams::new(
        MechanismType::SHA256,
        cryptoki::mechanism::rsa::PkcsMgfType::MGF1_SHA256,
        cryptoki::mechanism::rsa::PkcsOaepSource::empty(),
    ));
    expect_rv(
        s.wrap_key(&oaep, rsa_public, target),
        RvError::KeyNotWrappable,
    );
}

/// Attack (b): import a key whose value the attacker knows, with CKA_WRAP, wrap a sensitive
/// key under it and unwrap the blob off the token. Refused: a sensitive key is wrapped only
/// under a trusted key or a key generated here that was always sensitive and never
/// extractable (CKR_KEY_NOT_WRAPPABLE) — not an imported, unwrapped or derived one.
#[test]
fn attack_wrap_under_a_key_the_attacker_imported() {
    let s = session("kx-imported-kek");
    let target = sensitive_target(&s);
    let known = imported(
        &s,
        &[0x11; 32],
        &[
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Decrypt(false),
        ],
    );
    // Sensitive and unextractable by default, but not CKA_LOCAL: its value came from outside.
    assert!(get_any_bool(&s, known, AttributeType::Sensitive));
    assert!(!get_any_bool(&s, known, AttributeType::Local));
    expect_rv(
        s.wrap_key(&Mechanism::AesKeyWrap, known, target),
        RvError::KeyNotWrappable,
    );

    // A key that came in by C_UnwrapKey is no better: its value was in the caller's blob.
    let kek = kek(&s);
    let readable = imported(
        &s,
        &[0x22; 32],
        &[Attribute::Sensitive(false), Attribute::Extractable(true)],
    );
    let blob = s.wrap_key(&Mechanism::AesKeyWrap, kek, readable).unwrap();
    let unwrapped_kek = s
        .unwrap_key(
            &Mechanism::AesKeyWrap,
            kek,
            &blob,
            &aes_template(&[
                Attribute::Wrap(true),
                Attribute::Decrypt(false),
                Attribute::Extractable(false),
            ]),
        )
        .unwrap();
    expect_rv(
        s.wrap_key(&Mechanism::AesKeyWrap, unwrapped_kek, target),
        RvError::KeyNotWrappable,
    );

    // An RSA public key the attacker imported (he holds the private key).
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    let public = s
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(false),
            Attribute::Wrap(true),
            Attribute::Modulus(rsa.n().to_vec()),
            Attribute::PublicExponent(rsa.e().to_vec()),
        ])
        .unwrap();
    let oaep = Mechanism::RsaPkcsOaep(cryptoki::mechanism::rsa::PkcsOaepParams::new(
        MechanismType::SHA1,
        cryptoki::mechanism::rsa::PkcsMgfType::MGF1_SHA1,
        cryptoki::mechanism::rsa::PkcsOaepSource::empty(),
    ));
    expect_rv(s.wrap_key(&oaep, public, target), RvError::KeyNotWrappable);
    // The legitimate path still works.
    s.wrap_key(&Mechanism::AesKeyWrap, kek, target)
        .expect("a generated single-purpose KEK wraps it");
}

/// Attack (c): derive from the sensitive key with data the attacker knows (XOR with zeros,
/// concatenation) into a readable key, or into a key with other usages. Refused: a key derived
/// from a sensitive (unextractable) secret key is sensitive (unextractable) whatever the
/// template says (PKCS#11 3.0 for these mechanisms; sqlhsm for every derivation from a
/// secret key but the one-way KDFs), and a key with CKA_DERIVE may not wrap sensitive keys.
/// ECDH derives from a private key and the peer's public point: the result is the shared
/// secret, not the base key, so it may be readable.
#[test]
fn attack_derive_with_known_data() {
    let s = session("kx-derive");
    // ECDH (key agreement): a readable shared secret is allowed, the base stays sensitive.
    let (mut pubt, mut privt) = ec_templates(P256, "kx-ecdh", b"kx-ecdh");
    pubt[0] = Attribute::Token(false);
    privt[0] = Attribute::Token(false);
    privt.push(Attribute::Derive(true));
    let (public, private) = s
        .generate_key_pair(&Mechanism::EccKeyPairGen, &pubt, &privt)
        .unwrap();
    let point = unwrap_octet_string(&get_bytes(&s, public, AttributeType::EcPoint));
    let derived = s
        .derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &point)),
            private,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
                Attribute::Wrap(true),
                Attribute::Decrypt(false),
            ],
        )
        .expect("ECDH into a readable key");
    assert_eq!(get_bytes(&s, derived, AttributeType::Value).len(), 32);
    // A derived key is no KEK for sensitive keys (not CKA_LOCAL, nor always sensitive).
    let target = sensitive_target(&s);
    let kek_from_ecdh = s
        .derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &point)),
            private,
            &aes_template(&[
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
                Attribute::Decrypt(false),
            ]),
        )
        .unwrap();
    expect_rv(
        s.wrap_key(&Mechanism::AesKeyWrap, kek_from_ecdh, target),
        RvError::KeyNotWrappable,
    );

    // A KEK that may derive could copy its value into a key that decrypts (XOR with zeros):
    // CKA_DERIVE and CKA_WRAP together do not wrap sensitive keys, and CKA_DERIVE is fixed.
    let deriving_kek = generate(
        &s,
        &[
            Attribute::Wrap(true),
            Attribute::Decrypt(false),
            Attribute::Derive(true),
        ],
    );
    expect_rv(
        s.wrap_key(&Mechanism::AesKeyWrap, deriving_kek, target),
        RvError::KeyNotWrappable,
    );
    let kek = kek(&s);
    expect_rv(
        s.update_attributes(kek, &[Attribute::Derive(true)]),
        RvError::AttributeReadOnly,
    );

    // Derivations from a secret base whose output carries the base's bits. Where the
    // mechanism is offered (the derivation family adds it), the derived key is sensitive and
    // unextractable as its base, whatever the template asks; where it is not, the call is
    // CKR_MECHANISM_INVALID.
    let base = generate(&s, &[Attribute::Derive(true), Attribute::Encrypt(true)]);
    let zeros = [0u8; 32];
    let readable = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::ValueLen(32.into()),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    let slot = s.get_session_info().unwrap().slot_id();
    let offered = ctx().get_mechanism_list(slot).unwrap();
    for (mechanism, kind) in [
        (
            Mechanism::XorBaseAndData(KeyDerivationStringData::new(&zeros)),
            MechanismType::XOR_BASE_AND_DATA,
        ),
        (
            Mechanism::ConcatenateBaseAndData(KeyDerivationStringData::new(&zeros)),
            MechanismType::CONCATENATE_BASE_AND_DATA,
        ),
    ] {
        let result = s.derive_key(&mechanism, base, &readable);
        if !offered.contains(&kind) {
            expect_rv(result, RvError::MechanismInvalid);
            continue;
        }
        let h = result.unwrap_or_else(|e| panic!("C_DeriveKey({kind}): {e}"));
        assert!(get_any_bool(&s, h, AttributeType::Sensitive), "{kind}");
        assert!(!get_any_bool(&s, h, AttributeType::Extractable), "{kind}");
        assert_sensitive(&s, h);
    }
}

/// Attack (d): change a key's usages after creation to combine roles (give a wrapping key
/// CKA_DECRYPT), or undo its protection (CKA_SENSITIVE false, CKA_EXTRACTABLE true), directly
/// or through C_CopyObject. Refused with CKR_ATTRIBUTE_READ_ONLY: the usages that move a
/// secret key's value are fixed at creation, CKA_SENSITIVE only turns on, CKA_EXTRACTABLE only
/// off.
#[test]
fn attack_change_usages_after_creation() {
    let s = session("kx-usages");
    let kek = kek(&s);
    for usage in [
        Attribute::Decrypt(true),
        Attribute::Encrypt(true),
        Attribute::Derive(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
    ] {
        expect_rv(
            s.update_attributes(kek, std::slice::from_ref(&usage)),
            RvError::AttributeReadOnly,
        );
        expect_rv(
            s.copy_object(kek, std::slice::from_ref(&usage)),
            RvError::AttributeReadOnly,
        );
    }
    // Restating a usage is harmless; the usages that only compute (sign, verify) may change.
    s.update_attributes(kek, &[Attribute::Wrap(true), Attribute::Decrypt(false)])
        .expect("usages to their current values");
    s.update_attributes(kek, &[Attribute::Sign(false)])
        .expect("CKA_SIGN may change");

    let target = sensitive_target(&s);
    let stuck = generate(&s, &[]);
    expect_rv(
        s.update_attributes(target, &[Attribute::Sensitive(false)]),
        RvError::AttributeReadOnly,
    );
    expect_rv(
        s.copy_object(target, &[Attribute::Sensitive(false)]),
        RvError::AttributeReadOnly,
    );
    expect_rv(
        s.update_attributes(stuck, &[Attribute::Extractable(true)]),
        RvError::AttributeReadOnly,
    );
    expect_rv(
        s.copy_object(stuck, &[Attribute::Extractable(true)]),
        RvError::AttributeReadOnly,
    );
    expect_rv(
        s.wrap_key(&Mechanism::AesKeyWrap, kek, stuck),
        RvError::KeyUnextractable,
    );
    // The one-way moves that protect more are allowed.
    s.update_attributes(target, &[Attribute::Extractable(false)])
        .expect("CKA_EXTRACTABLE true → false");
    expect_rv(
        s.wrap_key(&Mechanism::AesKeyWrap, kek, target),
        RvError::KeyUnextractable,
    );
}

/// Attack (e): unwrap a wrapped sensitive key again as a readable one (or as a second key with
/// other attributes), or unwrap a value the attacker chose (C_Encrypt under the unwrapping
/// key) as a "sensitive" key and then wrap real keys under it. Refused: under a key that may
/// wrap sensitive keys, C_UnwrapKey makes sensitive keys only (CKR_TEMPLATE_INCONSISTENT);
/// an unwrapped key is never a KEK for sensitive keys (CKR_KEY_NOT_WRAPPABLE).
#[test]
fn attack_unwrap_as_a_readable_or_known_key() {
    let s = session("kx-unwrap");
    let kek = kek(&s);
    let target = sensitive_target(&s);
    let blob = s.wrap_key(&Mechanism::AesKeyWrap, kek, target).unwrap();
    expect_rv(
        s.unwrap_key(
            &Mechanism::AesKeyWrap,
            kek,
            &blob,
            &aes_template(&[Attribute::Sensitive(false), Attribute::Extractable(true)]),
        ),
        RvError::TemplateInconsistent,
    );
    // Unwrapped twice with different usages: both copies stay sensitive, neither is a KEK.
    let twin = s
        .unwrap_key(
            &Mechanism::AesKeyWrap,
            kek,
            &blob,
            &aes_template(&[
                Attribute::Extractable(true),
                Attribute::Wrap(true),
                Attribute::Encrypt(true),
                Attribute::Decrypt(false),
            ]),
        )
        .expect("unwrap as a sensitive key");
    assert!(get_any_bool(&s, twin, AttributeType::Sensitive));
    assert!(!get_any_bool(&s, twin, AttributeType::AlwaysSensitive));
    assert_eq!(ecb(&s, twin), ecb(&s, target));
    assert_sensitive(&s, twin);
    let other = sensitive_target(&s);
    expect_rv(
        s.wrap_key(&Mechanism::AesKeyWrap, twin, other),
        RvError::KeyNotWrappable,
    );

    // A key with CKA_ENCRYPT and CKA_UNWRAP: encrypt a chosen value and unwrap it. The new key
    // is "sensitive", but its value is the attacker's, so it wraps no sensitive key.
    let enc_unwrap = generate(
        &s,
        &[
            Attribute::Encrypt(true),
            Attribute::Unwrap(true),
            Attribute::Decrypt(false),
            Attribute::Wrap(false),
        ],
    );
    let chosen = [0x77u8; 32];
    let forged = s
        .encrypt(&Mechanism::AesKeyWrap, enc_unwrap, &chosen)
        .expect("C_Encrypt(AES_KEY_WRAP) of a chosen value");
    let known = s
        .unwrap_key(
            &Mechanism::AesKeyWrap,
            enc_unwrap,
            &forged,
            &aes_template(&[Attribute::Wrap(true), Attribute::Decrypt(false)]),
        )
        .expect("the chosen value unwraps");
    let expected = openssl::symm::encrypt(
        openssl::symm::Cipher::aes_256_ecb(),
        &chosen,
        None,
        &[0x3c; 16],
    )
    .unwrap();
    assert_eq!(
        ecb(&s, known)[..],
        expected[..16],
        "the key is the chosen value"
    );
    expect_rv(
        s.wrap_key(&Mechanism::AesKeyWrap, known, other),
        RvError::KeyNotWrappable,
    );

    // Under a key that never wrapped a sensitive key (the caller's own), readable keys unwrap.
    let own = imported(
        &s,
        &[0x33; 32],
        &[Attribute::Wrap(true), Attribute::Unwrap(true)],
    );
    let readable = imported(
        &s,
        &[0x44; 32],
        &[Attribute::Sensitive(false), Attribute::Extractable(true)],
    );
    let own_blob = s.wrap_key(&Mechanism::AesKeyWrap, own, readable).unwrap();
    let back = s
        .unwrap_key(
            &Mechanism::AesKeyWrap,
            own,
            &own_blob,
            &aes_template(&[Attribute::Sensitive(false), Attribute::Extractable(true)]),
        )
        .expect("a readable key under the caller's own KEK");
    assert_eq!(get_bytes(&s, back, AttributeType::Value), [0x44; 32]);
}

// ---------- certificates ----------

struct Cert {
    der: Vec<u8>,
    subject: Vec<u8>,
}

fn make_cert(cn: &str) -> Cert {
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    Cert {
        der: cert.to_der().unwrap(),
        subject: cert.subject_name().to_der().unwrap(),
    }
}

fn cert_template(c: &Cert, trusted: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Trusted(trusted),
        Attribute::Subject(c.subject.clone()),
        Attribute::Value(c.der.clone()),
    ]
}

//! Return codes and states PKCS#11 3.0 prescribes, through the C ABI:
//! - a `C_*Init` with a NULL mechanism ends the active operation (§5.8 ff.);
//! - a key with `CKA_ALWAYS_AUTHENTICATE` needs a `CKU_CONTEXT_SPECIFIC` login after each
//!   `*Init`, good for that one operation (§4.9, §5.6);
//! - a session object created without the user's login is not private unless asked (§4.4,
//!   sqlhsm's token-specific default).

mod common;

use cryptoki::context::Function;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki_sys::{CKR_OK, CK_MECHANISM, CK_RV, CK_ULONG};

use common::*;

// ---------- helpers ----------

/// A raw `CK_MECHANISM` without parameter.
fn raw_mechanism(kind: u64) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: kind,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    }
}

/// `C_Sign` single-part, two-call: returns the length query's answer and then the call's.
fn raw_sign(s: &Session, data: &[u8]) -> (CK_RV, CK_RV) {
    let mut len: CK_ULONG = 0;
    let mut input = data.to_vec();
    // SAFETY: live buffers; a NULL output asks for the length.
    let query = unsafe {
        raw().C_Sign(
            s.handle(),
            input.as_mut_ptr(),
            input.len() as CK_ULONG,
            std::ptr::null_mut(),
            &mut len,
        )
    };
    if query != CKR_OK {
        return (query, query);
    }
    let mut out = vec![0u8; len as usize];
    // SAFETY: `out` holds `len` bytes.
    let rv = unsafe {
        raw().C_Sign(
            s.handle(),
            input.as_mut_ptr(),
            input.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len,
        )
    };
    (query, rv)
}

fn rv(code: CK_RV) -> cryptoki::error::Result<()> {
    raw_result(code, Function::Sign)
}

/// A P-256 key pair (token objects) whose private half has `CKA_ALWAYS_AUTHENTICATE` =
/// `always`.
fn ec_pair(s: &Session, label: &str, always: bool) -> (ObjectHandle, ObjectHandle) {
    let (public, mut private) = ec_templates(P256, label, label.as_bytes());
    private.push(Attribute::AlwaysAuthenticate(always));
    s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .expect("C_GenerateKeyPair")
}

fn always_authenticate(s: &Session, key: ObjectHandle) -> bool {
    match get_attr(s, key, AttributeType::AlwaysAuthenticate) {
        Attribute::AlwaysAuthenticate(b) => b,
        other => panic!("not CKA_ALWAYS_AUTHENTICATE: {other:?}"),
    }
}

// ---------- NULL mechanism ----------

#[test]
fn a_null_mechanism_ends_the_active_operation() {
    let p = ctx();
    let slot = new_token(p, "null-mech");
    let s = user_session(p, slot);
    let aes = session_secret(&s, KeyType::AES, &[7u8; 16], &[Attribute::Sign(true)]);
    let (public, private) = gen_ec(&s, P256, "null-mech-ec", b"nm");
    let h = s.handle();
    let null = std::ptr::null_mut();

    // With nothing active there is nothing to end: the cancel form still succeeds, whatever
    // the key handle says.
    // SAFETY (every raw call below): live session, NULL or live mechanism, handles by value.
    unsafe {
        assert_eq!(raw().C_EncryptInit(h, null, 0), CKR_OK);
        assert_eq!(raw().C_DecryptInit(h, null, 0), CKR_OK);
        assert_eq!(raw().C_DigestInit(h, null), CKR_OK);
        assert_eq!(raw().C_SignInit(h, null, 0), CKR_OK);
        assert_eq!(raw().C_VerifyInit(h, null, 0), CKR_OK);
    }

    let data = [0x42u8; 16];
    let mut out = [0u8; 64];
    let mut out_len: CK_ULONG;
    let mut input = data;
    let sig = s
        .sign(&Mechanism::Ecdsa, private, &[1u8; 32])
        .expect("C_Sign");

    // Encrypt: Init, end it with NULL, then C_Encrypt finds nothing; a new Init is not
    // CKR_OPERATION_ACTIVE.
    s.encrypt_init(&Mechanism::AesEcb, aes)
        .expect("C_EncryptInit");
    unsafe { assert_eq!(raw().C_EncryptInit(h, null, aes.handle()), CKR_OK) };
    out_len = out.len() as CK_ULONG;
    let r = unsafe { raw().C_Encrypt(h, input.as_mut_ptr(), 16, out.as_mut_ptr(), &mut out_len) };
    expect_rv(rv(r), RvError::OperationNotInitialized);
    s.encrypt_init(&Mechanism::AesEcb, aes)
        .expect("C_EncryptInit after the NULL form");
    unsafe { assert_eq!(raw().C_EncryptInit(h, null, 0), CKR_OK) };

    // Decrypt.
    s.decrypt_init(&Mechanism::AesEcb, aes)
        .expect("C_DecryptInit");
    unsafe { assert_eq!(raw().C_DecryptInit(h, null, 0), CKR_OK) };
    out_len = out.len() as CK_ULONG;
    let r = unsafe { raw().C_Decrypt(h, input.as_mut_ptr(), 16, out.as_mut_ptr(), &mut out_len) };
    expect_rv(rv(r), RvError::OperationNotInitialized);
    s.decrypt_init(&Mechanism::AesEcb, aes)
        .expect("C_DecryptInit after the NULL form");
    unsafe { assert_eq!(raw().C_DecryptInit(h, null, 0), CKR_OK) };

    // Digest (multi-part started, then ended).
    s.digest_init(&Mechanism::Sha256).expect("C_DigestInit");
    s.digest_update(&data).expect("C_DigestUpdate");
    unsafe { assert_eq!(raw().C_DigestInit(h, null), CKR_OK) };
    expect_rv(s.digest_final(), RvError::OperationNotInitialized);
    assert_eq!(
        s.digest(&Mechanism::Sha256, &data).expect("C_Digest").len(),
        32
    );

    // Sign.
    s.sign_init(&Mechanism::Ecdsa, private).expect("C_SignInit");
    unsafe { assert_eq!(raw().C_SignInit(h, null, private.handle()), CKR_OK) };
    let (query, _) = raw_sign(&s, &[1u8; 32]);
    expect_rv(rv(query), RvError::OperationNotInitialized);
    s.sign_init(&Mechanism::Ecdsa, private)
        .expect("C_SignInit after the NULL form");
    unsafe { assert_eq!(raw().C_SignInit(h, null, 0), CKR_OK) };

    // Verify.
    s.verify_init(&Mechanism::Ecdsa, public)
        .expect("C_VerifyInit");
    unsafe { assert_eq!(raw().C_VerifyInit(h, null, 0), CKR_OK) };
    expect_rv(s.verify_final(&sig), RvError::OperationNotInitialized);
    s.verify(&Mechanism::Ecdsa, public, &[1u8; 32], &sig)
        .expect("C_Verify after the NULL form");

    // Ending one operation leaves the others alone.
    s.sign_init(&Mechanism::Ecdsa, private).expect("C_SignInit");
    s.digest_init(&Mechanism::Sha256).expect("C_DigestInit");
    unsafe { assert_eq!(raw().C_DigestInit(h, null), CKR_OK) };
    let (query, signed) = raw_sign(&s, &[1u8; 32]);
    assert_eq!(
        (query, signed),
        (CKR_OK, CKR_OK),
        "the sign operation survived"
    );

    // The session handle is still checked first.
    let r = unsafe { raw().C_SignInit(0xdead_beef, null, 0) };
    expect_rv(rv(r), RvError::SessionHandleInvalid);
    // A mechanism that is there is still decoded as before.
    let mut bogus = raw_mechanism(0x7fff_0000);
    let r = unsafe { raw().C_SignInit(h, &mut bogus, private.handle()) };
    expect_rv(rv(r), RvError::MechanismInvalid);
}

// ---------- CKA_ALWAYS_AUTHENTICATE ----------

#[test]
fn always_authenticate_defaults_to_false_and_is_readable() {
    let p = ctx();
    let slot = new_token(p, "aa-default");
    let s = user_session(p, slot);
    let (_, plain) = gen_ec(&s, P256, "aa-default-plain", b"p");
    assert!(!always_authenticate(&s, plain), "the default is CK_FALSE");
    let (_, demanding) = ec_pair(&s, "aa-default-on", true);
    assert!(always_authenticate(&s, demanding));
    // Stored with the token object: another session reads it back.
    let other = p.open_ro_session(slot).expect("C_OpenSession");
    let found = find_by_label_class(&other, "aa-default-on", ObjectClass::PRIVATE_KEY);
    assert_eq!(found.len(), 1);
    assert!(always_authenticate(&other, found[0]));
    // It cannot be taken back: the PIN per use is the point.
    expect_rv(
        s.update_attributes(demanding, &[Attribute::AlwaysAuthenticate(false)]),
        RvError::AttributeReadOnly,
    );
    s.update_attributes(demanding, &[Attribute::AlwaysAuthenticate(true)])
        .expect("setting the current value is harmless");
}

#[test]
fn always_authenticate_needs_a_context_login_per_operation() {
    let p = ctx();
    let slot = new_token(p, "aa-enforce");
    let s = user_session(p, slot);
    let (public, key) = ec_pair(&s, "aa-enforce", true);
    let digest = [3u8; 32];
    let user_pin = pin(USER_PIN);

    // Without the context-specific login: CKR_USER_NOT_LOGGED_IN (the length query too), and
    // the operation is over.
    s.sign_init(&Mechanism::Ecdsa, key).expect("C_SignInit");
    let (query, _) = raw_sign(&s, &digest);
    expect_rv(rv(query), RvError::UserNotLoggedIn);
    let (query, _) = raw_sign(&s, &digest);
    expect_rv(rv(query), RvError::OperationNotInitialized);

    // With it: the length query and the signature both work, and the signature verifies.
    s.sign_init(&Mechanism::Ecdsa, key).expect("C_SignInit");
    s.login(UserType::ContextSpecific, Some(&user_pin))
        .expect("C_Login(CKU_CONTEXT_SPECIFIC)");
    let (query, signed) = raw_sign(&s, &digest);
    assert_eq!((query, signed), (CKR_OK, CKR_OK));

    // The login was spent with that operation: the next one needs its own.
    s.sign_init(&Mechanism::Ecdsa, key).expect("C_SignInit");
    let (query, _) = raw_sign(&s, &digest);
    expect_rv(rv(query), RvError::UserNotLoggedIn);
    // A context login made before the *Init counts for nothing.
    unsafe {
        assert_eq!(
            raw().C_SignInit(s.handle(), std::ptr::null_mut(), 0),
            CKR_OK
        )
    };
    expect_rv(
        s.login(UserType::ContextSpecific, Some(&user_pin)),
        RvError::OperationNotInitialized,
    );
    s.sign_init(&Mechanism::Ecdsa, key).expect("C_SignInit");
    expect_rv(s.sign_final().map(|_| ()), RvError::UserNotLoggedIn);

    // Multi-part: one login covers Init … Final; the next C_SignInit needs a new one.
    s.sign_init(&Mechanism::EcdsaSha256, key)
        .expect("C_SignInit");
    s.login(UserType::ContextSpecific, Some(&user_pin))
        .expect("C_Login(CKU_CONTEXT_SPECIFIC)");
    s.sign_update(b"first part, ").expect("C_SignUpdate");
    s.sign_update(b"second part").expect("C_SignUpdate");
    let sig = s.sign_final().expect("C_SignFinal");
    s.verify(
        &Mechanism::EcdsaSha256,
        public,
        b"first part, second part",
        &sig,
    )
    .expect("the signature made under the context login verifies");
    s.sign_init(&Mechanism::EcdsaSha256, key)
        .expect("C_SignInit");
    expect_rv(s.sign_update(b"again"), RvError::UserNotLoggedIn);
    expect_rv(s.sign_update(b"again"), RvError::OperationNotInitialized);

    // The user's normal login is untouched by all this.
    let info = s.get_session_info().expect("C_GetSessionInfo");
    assert_eq!(
        info.session_state(),
        cryptoki::session::SessionState::RwUser
    );
}

#[test]
fn a_wrong_context_pin_counts_as_a_failure() {
    let p = ctx();
    let label = "aa-wrong-pin";
    let slot = new_token(p, label);
    let s = user_session(p, slot);
    let (_, key) = ec_pair(&s, label, true);
    s.sign_init(&Mechanism::Ecdsa, key).expect("C_SignInit");
    let before = ctx_db().user_failures(label);
    expect_rv(
        s.login(UserType::ContextSpecific, Some(&pin("not-the-pin"))),
        RvError::PinIncorrect,
    );
    assert_eq!(ctx_db().user_failures(label), before + 1);
    // The operation still waits for a good one.
    s.login(UserType::ContextSpecific, Some(&pin(USER_PIN)))
        .expect("C_Login(CKU_CONTEXT_SPECIFIC)");
    assert_eq!(
        ctx_db().user_failures(label),
        0,
        "a good PIN resets the count"
    );
    assert_eq!(raw_sign(&s, &[9u8; 32]), (CKR_OK, CKR_OK));
}

#[test]
fn a_context_login_without_an_operation_is_operation_not_initialized() {
    let p = ctx();
    let slot = new_token(p, "aa-no-op");
    let s = user_session(p, slot);
    let user_pin = USER_PIN.as_bytes().to_vec();
    expect_rv(
        s.login(UserType::ContextSpecific, Some(&pin(USER_PIN))),
        RvError::OperationNotInitialized,
    );
    let mut pin_bytes = user_pin.clone();
    let mut name = b"user".to_vec();
    // SAFETY: live session and buffers.
    let r = unsafe {
        raw().C_LoginUser(
            s.handle(),
            cryptoki_sys::CKU_CONTEXT_SPECIFIC,
            pin_bytes.as_mut_ptr(),
            pin_bytes.len() as CK_ULONG,
            name.as_mut_ptr(),
            name.len() as CK_ULONG,
        )
    };
    expect_rv(
        raw_result(r, Function::LoginUser),
        RvError::OperationNotInitialized,
    );

    // A digest is not an operation with a key: still nothing to authenticate.
    s.digest_init(&Mechanism::Sha256).expect("C_DigestInit");
    expect_rv(
        s.login(UserType::ContextSpecific, Some(&pin(USER_PIN))),
        RvError::OperationNotInitialized,
    );

    // A key without CKA_ALWAYS_AUTHENTICATE signs without one; a context login during its
    // operation is accepted and changes nothing.
    let (_, plain) = ec_pair(&s, "aa-no-op-plain", false);
    s.sign_init(&Mechanism::Ecdsa, plain).expect("C_SignInit");
    assert_eq!(raw_sign(&s, &[5u8; 32]), (CKR_OK, CKR_OK));
    s.sign_init(&Mechanism::Ecdsa, plain).expect("C_SignInit");
    s.login(UserType::ContextSpecific, Some(&pin(USER_PIN)))
        .expect("accepted while an operation is active");
    assert_eq!(raw_sign(&s, &[5u8; 32]), (CKR_OK, CKR_OK));
}

#[test]
fn always_authenticate_applies_to_decryption() {
    let p = ctx();
    let slot = new_token(p, "aa-decrypt");
    let s = user_session(p, slot);
    let (public, mut private) = rsa_templates(2048, "aa-decrypt", b"aad");
    private.push(Attribute::AlwaysAuthenticate(true));
    let (public, private) = s
        .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .expect("C_GenerateKeyPair");
    let secret = b"for the key holder only";
    let sealed = s
        .encrypt(&Mechanism::RsaPkcs, public, secret)
        .expect("C_Encrypt with the public key needs no context login");
    expect_rv(
        s.decrypt(&Mechanism::RsaPkcs, private, &sealed),
        RvError::UserNotLoggedIn,
    );
    s.decrypt_init(&Mechanism::RsaPkcs, private)
        .expect("C_DecryptInit");
    s.login(UserType::ContextSpecific, Some(&pin(USER_PIN)))
        .expect("C_Login(CKU_CONTEXT_SPECIFIC)");
    let mut input = sealed.clone();
    let mut out = vec![0u8; 512];
    let mut len = out.len() as CK_ULONG;
    // SAFETY: live buffers.
    let r = unsafe {
        raw().C_Decrypt(
            s.handle(),
            input.as_mut_ptr(),
            input.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len,
        )
    };
    raw_result(r, Function::Decrypt).expect("C_Decrypt after the context login");
    assert_eq!(&out[..len as usize], secret);
}

// ---------- CKA_PRIVATE default of session objects ----------

#[test]
fn a_session_object_made_without_login_is_not_private_by_default() {
    let p = ctx();
    let slot = new_token(p, "public-import");
    let s = p
        .open_rw_session(slot)
        .expect("C_OpenSession (not logged in)");

    // The pkcs11-provider / Kryoptic import path: a session key without CKA_PRIVATE.
    let key = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Encrypt(true),
            Attribute::Value(vec![0x11; 16]),
        ])
        .expect("C_CreateObject of a session key without login");
    assert!(!get_bool(&s, key, AttributeType::Private));
    // Still sensitive by default: making it without a login does not make it readable.
    assert!(get_bool(&s, key, AttributeType::Sensitive));
    // (cryptoki leaves out what C_GetAttributeValue answered CKR_ATTRIBUTE_SENSITIVE for.)
    assert!(s
        .get_attributes(key, &[AttributeType::Value])
        .expect("C_GetAttributeValue")
        .is_empty());
    s.encrypt(&Mechanism::AesEcb, key, &[0u8; 16])
        .expect("usable in the session");

    // A private key imported the same way (EC, P-256, scalar 1 is a valid key).
    let mut scalar = vec![0u8; 32];
    scalar[31] = 1;
    let ec = s
        .create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::Token(false),
            Attribute::Sign(true),
            Attribute::EcParams(P256.to_vec()),
            Attribute::Value(scalar),
        ])
        .expect("C_CreateObject of a session private key without login");
    assert!(!get_bool(&s, ec, AttributeType::Private));

    // A generated session key too.
    let generated = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[Attribute::Token(false), Attribute::ValueLen(16.into())],
        )
        .expect("C_GenerateKey of a session key without login");
    assert!(!get_bool(&s, generated, AttributeType::Private));

    // Asking for a private one still needs the login.
    expect_rv(
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Value(vec![0x11; 16]),
        ]),
        RvError::UserNotLoggedIn,
    );
    // A token object keeps its private default, so leaving CKA_PRIVATE out does not let a
    // session without login store one.
    expect_rv(
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Value(vec![0x11; 16]),
        ]),
        RvError::UserNotLoggedIn,
    );
    expect_rv(
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Value(b"secret notes".to_vec()),
        ]),
        RvError::UserNotLoggedIn,
    );

    // Logged in as the user, the class defaults are unchanged: private.
    s.login(UserType::User, Some(&pin(USER_PIN)))
        .expect("C_Login(USER)");
    let private_by_default = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Value(vec![0x22; 16]),
        ])
        .expect("C_CreateObject logged in");
    assert!(get_bool(&s, private_by_default, AttributeType::Private));
    // And the public session objects made before stay visible.
    assert!(get_bool(&s, key, AttributeType::Sensitive));
    s.logout().expect("C_Logout");
    expect_rv(
        s.get_attributes(private_by_default, &[AttributeType::Label])
            .map(|_| ()),
        RvError::ObjectHandleInvalid,
    );
    assert!(!get_bool(&s, ec, AttributeType::Private));
}

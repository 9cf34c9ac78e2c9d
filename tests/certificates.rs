//! Non-key objects (PKCS#11 3.0 §4.4 data objects, §4.6 X.509 public-key certificates) through
//! the C ABI: create as token and session objects, find by class / label / id / subject /
//! application, read CKA_VALUE back, modify the label, destroy; private data objects are
//! invisible before login; token objects survive C_Finalize + C_Initialize.

mod common;

use std::process::{Command, Stdio};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::{X509Builder, X509NameBuilder};

use common::*;

/// A self-signed X.509 certificate and the DER pieces PKCS#11 stores beside it.
struct Cert {
    der: Vec<u8>,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    /// DER INTEGER of the serial number (CKA_SERIAL_NUMBER is the DER encoding).
    serial: Vec<u8>,
}

fn make_cert(cn: &str, serial: u32) -> Cert {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "sqlhsm tests")
        .unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let sn = Asn1Integer::from_bn(&BigNum::from_u32(serial).unwrap()).unwrap();
    b.set_serial_number(&sn).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    // DER INTEGER: tag 2, length, big-endian two's complement (a leading 0 if the top bit is set).
    let mut n = BigNum::from_u32(serial).unwrap().to_vec();
    if n.first().is_some_and(|b| b & 0x80 != 0) {
        n.insert(0, 0);
    }
    let mut serial_der = vec![0x02, n.len() as u8];
    serial_der.extend(n);
    Cert {
        der: cert.to_der().unwrap(),
        subject: cert.subject_name().to_der().unwrap(),
        issuer: cert.issuer_name().to_der().unwrap(),
        serial: serial_der,
    }
}

fn cert_template(token: bool, label: &str, id: &[u8], c: &Cert) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Token(token),
        Attribute::Private(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
        Attribute::Subject(c.subject.clone()),
        Attribute::Issuer(c.issuer.clone()),
        Attribute::SerialNumber(c.serial.clone()),
        Attribute::Value(c.der.clone()),
    ]
}

/// DER of OID 1.3.6.1.4.1.99999.1 (an arbitrary CKA_OBJECT_ID).
const OID: &[u8] = &[
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, 0x01,
];

fn data_template(token: bool, private: bool, label: &str, value: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(token),
        Attribute::Private(private),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Application(b"sqlhsm-tests".to_vec()),
        Attribute::ObjectId(OID.to_vec()),
        Attribute::Value(value.to_vec()),
    ]
}

fn sorted(mut v: Vec<ObjectHandle>) -> Vec<ObjectHandle> {
    v.sort_by_key(|h| h.handle());
    v
}

fn assert_cert(s: &Session, h: ObjectHandle, c: &Cert, label: &str, id: &[u8]) {
    match get_attr(s, h, AttributeType::Class) {
        Attribute::Class(k) => assert_eq!(k, ObjectClass::CERTIFICATE),
        o => panic!("{o:?}"),
    }
    match get_attr(s, h, AttributeType::CertificateType) {
        Attribute::CertificateType(t) => assert_eq!(t, CertificateType::X_509),
        o => panic!("{o:?}"),
    }
    assert_eq!(get_bytes(s, h, AttributeType::Value), c.der, "CKA_VALUE");
    assert_eq!(get_any_bytes(s, h, AttributeType::Subject), c.subject);
    assert_eq!(get_any_bytes(s, h, AttributeType::Issuer), c.issuer);
    assert_eq!(get_any_bytes(s, h, AttributeType::SerialNumber), c.serial);
    assert_eq!(get_bytes(s, h, AttributeType::Label), label.as_bytes());
    assert_eq!(get_bytes(s, h, AttributeType::Id), id);
}

#[test]
fn certificates_as_token_and_session_objects() {
    let p = ctx();
    let slot = new_token(p, "certs");
    let s = user_session(p, slot);
    let a = make_cert("sqlhsm cert A", 0x1234);
    let b = make_cert("sqlhsm cert B", 0x80_0001);

    let token_cert = s
        .create_object(&cert_template(true, "cert-a", b"id-a", &a))
        .expect("C_CreateObject(CKO_CERTIFICATE, token)");
    let sess_cert = s
        .create_object(&cert_template(false, "cert-b", b"id-b", &b))
        .expect("C_CreateObject(CKO_CERTIFICATE, session)");
    assert_cert(&s, token_cert, &a, "cert-a", b"id-a");
    assert_cert(&s, sess_cert, &b, "cert-b", b"id-b");
    assert!(get_bool(&s, token_cert, AttributeType::Token));
    assert!(!get_bool(&s, sess_cert, AttributeType::Token));

    // Find by class, label, id, subject, and combinations; keys do not match.
    gen_aes(&s, 16, "cert-a");
    assert_eq!(
        sorted(
            s.find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
                .unwrap()
        ),
        sorted(vec![token_cert, sess_cert])
    );
    assert_eq!(
        find_by_label_class(&s, "cert-a", ObjectClass::CERTIFICATE),
        vec![token_cert]
    );
    assert_eq!(
        s.find_objects(&[Attribute::Id(b"id-b".to_vec())]).unwrap(),
        vec![sess_cert]
    );
    assert_eq!(
        s.find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Subject(a.subject.clone())
        ])
        .unwrap(),
        vec![token_cert]
    );
    assert_eq!(
        s.find_objects(&[
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::SerialNumber(b.serial.clone())
        ])
        .unwrap(),
        vec![sess_cert]
    );

    // Public certificates are visible to a session that has not logged in (another
    // application's view: a fresh token would need its own login state, so log out here).
    s.logout().unwrap();
    let ro = p.open_ro_session(slot).unwrap();
    assert_eq!(
        find_by_label_class(&ro, "cert-a", ObjectClass::CERTIFICATE),
        vec![token_cert],
        "a public token certificate is visible before login"
    );
    drop(ro);
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();

    // The label can change; the new label finds it.
    s.update_attributes(token_cert, &[Attribute::Label(b"cert-a2".to_vec())])
        .unwrap();
    assert_eq!(find_by_label(&s, "cert-a2"), vec![token_cert]);

    // Required attributes (§4.6.3): CKA_CERTIFICATE_TYPE, and for X.509 CKA_SUBJECT and
    // CKA_VALUE.
    for missing in [
        AttributeType::CertificateType,
        AttributeType::Subject,
        AttributeType::Value,
    ] {
        let t: Vec<Attribute> = cert_template(false, "incomplete", b"x", &a)
            .into_iter()
            .filter(|at| at.attribute_type() != missing)
            .collect();
        let r = s.create_object(&t);
        assert!(
            matches!(
                r,
                Err(cryptoki::error::Error::Pkcs11(
                    RvError::TemplateIncomplete,
                    _
                ))
            ),
            "a certificate without {missing:?}: want CKR_TEMPLATE_INCOMPLETE, got {r:?}"
        );
    }

    // Destroy: gone from find, handle invalid.
    s.destroy_object(token_cert).unwrap();
    s.destroy_object(sess_cert).unwrap();
    assert!(s
        .find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)])
        .unwrap()
        .is_empty());
    expect_rv(
        s.get_attributes(token_cert, &[AttributeType::Value]),
        RvError::ObjectHandleInvalid,
    );
}

#[test]
fn session_certificate_goes_with_its_session() {
    let p = ctx();
    let slot = new_token(p, "certs-session");
    let s = user_session(p, slot);
    let c = make_cert("sqlhsm session cert", 7);
    let other = user_session(p, slot);
    let h = other
        .create_object(&cert_template(false, "sess-cert", b"sc", &c))
        .unwrap();
    assert_eq!(
        find_by_label(&s, "sess-cert"),
        vec![h],
        "seen by other sessions"
    );
    other.close().unwrap();
    assert!(
        find_by_label(&s, "sess-cert").is_empty(),
        "a session object is destroyed with its session"
    );
}

#[test]
fn data_objects() {
    let p = ctx();
    let slot = new_token(p, "data-objects");
    let s = user_session(p, slot);
    let value = b"opaque application data \x00\x01\x02".to_vec();
    let token_data = s
        .create_object(&data_template(true, false, "data-tok", &value))
        .expect("C_CreateObject(CKO_DATA, token)");
    let sess_data = s
        .create_object(&data_template(false, false, "data-sess", b"session"))
        .expect("C_CreateObject(CKO_DATA, session)");
    let secret_data = s
        .create_object(&data_template(true, true, "data-priv", b"private"))
        .expect("C_CreateObject(CKO_DATA, private token)");

    assert_eq!(get_bytes(&s, token_data, AttributeType::Value), value);
    assert_eq!(
        get_any_bytes(&s, token_data, AttributeType::Application),
        b"sqlhsm-tests"
    );
    assert_eq!(get_any_bytes(&s, token_data, AttributeType::ObjectId), OID);
    assert_eq!(
        sorted(
            s.find_objects(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Application(b"sqlhsm-tests".to_vec())
            ])
            .unwrap()
        ),
        sorted(vec![token_data, sess_data, secret_data])
    );
    assert_eq!(
        s.find_objects(&[Attribute::Class(ObjectClass::DATA), Attribute::Token(false)])
            .unwrap(),
        vec![sess_data]
    );
    assert!(s
        .find_objects(&[Attribute::Application(b"someone-else".to_vec())])
        .unwrap()
        .is_empty());
    // A data object without CKA_VALUE is valid (§4.5: every attribute has a default).
    let minimal = s
        .create_object(&[Attribute::Class(ObjectClass::DATA), Attribute::Token(false)])
        .expect("a minimal data object");
    assert!(get_bytes(&s, minimal, AttributeType::Value).is_empty());
    // The value can be modified (CKA_MODIFIABLE defaults to true).
    s.update_attributes(sess_data, &[Attribute::Value(b"changed".to_vec())])
        .unwrap();
    assert_eq!(get_bytes(&s, sess_data, AttributeType::Value), b"changed");

    // A private data object is invisible before login, visible after.
    s.logout().unwrap();
    let public = p.open_rw_session(slot).unwrap();
    let seen = public
        .find_objects(&[Attribute::Class(ObjectClass::DATA)])
        .unwrap();
    assert!(seen.contains(&token_data), "public data object visible");
    assert!(
        !seen.contains(&secret_data),
        "private data object invisible"
    );
    expect_rv(
        public.get_attributes(secret_data, &[AttributeType::Value]),
        RvError::ObjectHandleInvalid,
    );
    // A public session may make public session objects but no private ones.
    public
        .create_object(&data_template(false, false, "data-public", b"p"))
        .expect("public session object before login");
    expect_rv(
        public.create_object(&data_template(false, true, "data-x", b"x")),
        RvError::UserNotLoggedIn,
    );
    public.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert!(public
        .find_objects(&[Attribute::Class(ObjectClass::DATA)])
        .unwrap()
        .contains(&secret_data));
    assert_eq!(
        get_bytes(&public, secret_data, AttributeType::Value),
        b"private"
    );

    public.destroy_object(token_data).unwrap();
    assert!(find_by_label(&public, "data-tok").is_empty());
}

const PERSIST_TOKEN: &str = "certs-persist";

/// Token certificates and data objects survive C_Finalize + C_Initialize. The module is
/// process-global and this file's other tests share it, so the cycle runs in a child process
/// (this test binary, `persist_child`) on its own database.
#[test]
fn token_objects_persist_across_finalize() {
    let db = TestDb::new("certs-persist");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "persist_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .envs(db.envs())
        .env("SQLHSM_CERT_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child failed: {:?}", out.status);
    assert!(
        stdout.contains("persist child: ok"),
        "the child ran its checks"
    );
}

/// Runs only in the child process `token_objects_persist_across_finalize` starts.
#[test]
fn persist_child() {
    if std::env::var_os("SQLHSM_CERT_CHILD").is_none() {
        return;
    }
    let start = || {
        let p = Pkcs11::new(module_path()).unwrap();
        p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .expect("C_Initialize");
        p
    };
    let c = make_cert("sqlhsm persisted cert", 42);
    let p = start();
    let slot = new_token(&p, PERSIST_TOKEN);
    {
        let s = user_session(&p, slot);
        s.create_object(&cert_template(true, "p-cert", b"p-id", &c))
            .expect("token certificate");
        s.create_object(&data_template(true, true, "p-data", b"persisted value"))
            .expect("private token data object");
        s.create_object(&data_template(false, false, "p-gone", b"session only"))
            .expect("session data object");
    }
    p.finalize().expect("C_Finalize");

    let p = start();
    let slot = slot_by_label(&p, PERSIST_TOKEN).expect("token after restart");
    let s = user_session(&p, slot);
    let certs = find_by_label_class(&s, "p-cert", ObjectClass::CERTIFICATE);
    assert_eq!(certs.len(), 1, "the certificate persisted");
    assert_cert(&s, certs[0], &c, "p-cert", b"p-id");
    let data = find_by_label_class(&s, "p-data", ObjectClass::DATA);
    assert_eq!(data.len(), 1, "the data object persisted");
    assert_eq!(
        get_bytes(&s, data[0], AttributeType::Value),
        b"persisted value"
    );
    assert_eq!(
        get_any_bytes(&s, data[0], AttributeType::Application),
        b"sqlhsm-tests"
    );
    assert!(get_bool(&s, data[0], AttributeType::Private));
    assert!(
        find_by_label(&s, "p-gone").is_empty(),
        "session objects do not persist"
    );
    println!("persist child: ok");
}

/// PKCS#11 3.0 §4.6.3: CKA_ID, CKA_ISSUER and CKA_SERIAL_NUMBER of an X.509 certificate are
/// modifiable. (A certificate has no CKA_KEY_TYPE; the attribute table used to be chosen by key
/// type, so every X.509 attribute looked foreign to it: CKR_ATTRIBUTE_TYPE_INVALID.)
#[test]
fn x509_attributes_can_be_changed() {
    let p = ctx();
    let slot = new_token(p, "cert-set");
    let s = user_session(p, slot);
    let c = make_cert("sqlhsm cert set", 0x42);
    let other = make_cert("sqlhsm other issuer", 0x4242);
    for token in [false, true] {
        let label = format!("cert-set-{token}");
        let h = s
            .create_object(&cert_template(token, &label, b"old-id", &c))
            .expect("C_CreateObject(CKO_CERTIFICATE)");
        s.update_attributes(
            h,
            &[
                Attribute::Id(b"new-id".to_vec()),
                Attribute::Issuer(other.issuer.clone()),
                Attribute::SerialNumber(other.serial.clone()),
            ],
        )
        .unwrap_or_else(|e| panic!("C_SetAttributeValue (token {token}): {e}"));
        assert_eq!(get_bytes(&s, h, AttributeType::Id), b"new-id");
        assert_eq!(get_any_bytes(&s, h, AttributeType::Issuer), other.issuer);
        assert_eq!(
            get_any_bytes(&s, h, AttributeType::SerialNumber),
            other.serial
        );
        // Found by the new CKA_ID, from another session too (token: read back from the row).
        let fresh = p.open_ro_session(slot).expect("C_OpenSession");
        let found = fresh
            .find_objects(&[
                Attribute::Class(ObjectClass::CERTIFICATE),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(b"new-id".to_vec()),
            ])
            .expect("C_FindObjects");
        assert_eq!(found, vec![h]);
        assert_eq!(
            get_any_bytes(&fresh, h, AttributeType::Issuer),
            other.issuer
        );
        // What is not a certificate's attribute is still refused, and its value is fixed.
        expect_rv(
            s.update_attributes(h, &[Attribute::Sign(true)]),
            RvError::AttributeTypeInvalid,
        );
        expect_rv(
            s.update_attributes(h, &[Attribute::Value(other.der.clone())]),
            RvError::AttributeReadOnly,
        );
        // C_CopyObject follows the same table.
        let copy = s
            .copy_object(h, &[Attribute::Id(b"copy-id".to_vec())])
            .expect("C_CopyObject of a certificate with a new CKA_ID");
        assert_eq!(get_bytes(&s, copy, AttributeType::Id), b"copy-id");
        assert_eq!(get_bytes(&s, copy, AttributeType::Value), c.der);
        expect_rv(
            s.copy_object(h, &[Attribute::Sign(true)]),
            RvError::AttributeTypeInvalid,
        );
    }
}

/// C_GetObjectSize counts a data object's value; C_CopyObject may give the copy a new value,
/// as C_SetAttributeValue may.
#[test]
fn data_object_size_and_copy_follow_the_value() {
    let p = ctx();
    let slot = new_token(p, "data-size");
    let s = user_session(p, slot);
    for (token, private) in [(false, false), (true, false), (true, true)] {
        let small = s
            .create_object(&data_template(token, private, "data-small", &[1u8; 100]))
            .expect("C_CreateObject 100 B");
        let large = s
            .create_object(&data_template(token, private, "data-large", &[1u8; 10_240]))
            .expect("C_CreateObject 10 KiB");
        let small_size = raw_object_size(&s, small).expect("C_GetObjectSize");
        let large_size = raw_object_size(&s, large).expect("C_GetObjectSize");
        assert!(
            small_size >= 100 && large_size >= small_size + 10_140,
            "token {token} private {private}: 100 B -> {small_size}, 10 KiB -> {large_size}"
        );

        let copy = s
            .copy_object(small, &[Attribute::Value(b"another value".to_vec())])
            .unwrap_or_else(|e| panic!("C_CopyObject with a new CKA_VALUE: {e}"));
        assert_eq!(get_bytes(&s, copy, AttributeType::Value), b"another value");
        assert_eq!(get_bytes(&s, small, AttributeType::Value), vec![1u8; 100]);
        let plain_copy = s.copy_object(large, &[]).expect("C_CopyObject");
        assert_eq!(
            get_bytes(&s, plain_copy, AttributeType::Value),
            vec![1u8; 10_240]
        );
        expect_rv(
            s.copy_object(small, &[Attribute::Sign(true)]),
            RvError::AttributeTypeInvalid,
        );
    }
}

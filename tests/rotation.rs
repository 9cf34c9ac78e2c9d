//! Rotation that standard clients survive, through the C ABI on the backend under test: after a
//! rotation, a search by label, by `CKA_ID` or by both finds one key of each class — the
//! successor — because the predecessor gave up the names the successor took
//! (`<label>@<key_id>`, `CKA_ID` ‖ `@<key_id>`), and its certificate went with it. The
//! predecessor stays reachable by `CKA_SQLHSM_KEY_ID`, by status and by the derived names, and
//! still verifies and decrypts what it made. Also: a second rotation, a successor given new
//! names, another process's view, `pkcs11-tool --id`, and `sqlhsm db migrate` renaming keys
//! rotated by versions that left both keys one name.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::{X509Builder, X509NameBuilder};

const CKA_SQLHSM_ROTATED_FROM: u64 = 0xD351_0006;
const CKA_SQLHSM_ROTATED_TO: u64 = 0xD351_0007;
const LABEL: &str = "signer";
const ID: &[u8] = &[0x01];
const DATA: &[u8] = b"signed before the rotation";
const SECRET: &[u8] = b"encrypted before the rotation";
const IV: [u8; 16] = [3; 16];
/// `[cache] coherence_ms` of the test configuration (the default), and the slack a loaded test
/// machine gets on top of it.
const COHERENCE_MS: u64 = 1000;
const SLACK_MS: u64 = 4000;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Ec,
    Rsa,
}

fn vendor(kind: u64, value: Vec<u8>) -> Attribute {
    Attribute::VendorDefined((AttributeType::VendorDefined(kind), value))
}

fn by_key_id(key_id: &str) -> Attribute {
    vendor(CKA_SQLHSM_KEY_ID, key_id.as_bytes().to_vec())
}

fn by_status(status: u64) -> Attribute {
    vendor(CKA_SQLHSM_KEY_STATUS, status.to_ne_bytes().to_vec())
}

fn label(name: &str) -> Attribute {
    Attribute::Label(name.as_bytes().to_vec())
}

/// The derived `CKA_ID` of a rotated-out key: its old bytes, then the ASCII of `@<key_id>`.
fn derived_id(id: &[u8], key_id: &str) -> Vec<u8> {
    [id, format!("@{key_id}").as_bytes()].concat()
}

fn find(s: &Session, template: &[Attribute]) -> Vec<ObjectHandle> {
    sorted(s.find_objects(template).expect("C_FindObjects"))
}

fn sorted(mut handles: Vec<ObjectHandle>) -> Vec<ObjectHandle> {
    handles.sort_by_key(|h| h.handle());
    handles
}

fn key_id(s: &Session, key: ObjectHandle) -> String {
    String::from_utf8(get_bytes(
        s,
        key,
        AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID),
    ))
    .expect("utf-8 key_id")
}

fn text(s: &Session, o: ObjectHandle, t: AttributeType) -> String {
    String::from_utf8(get_bytes(s, o, t)).expect("utf-8")
}

/// A key pair named `name` / `id`, the successor of `rotated_from` when given (a rotation
/// through PKCS#11 alone: the generation template names the key it replaces).
fn generate(
    s: &Session,
    kind: Kind,
    name: &str,
    id: &[u8],
    rotated_from: Option<&str>,
) -> (ObjectHandle, ObjectHandle) {
    let (public, mut private, mechanism) = match kind {
        Kind::Ec => {
            let (public, private) = ec_templates(P256, name, id);
            (public, private, Mechanism::EccKeyPairGen)
        }
        Kind::Rsa => {
            let (public, private) = rsa_templates(2048, name, id);
            (public, private, Mechanism::RsaPkcsKeyPairGen)
        }
    };
    if let Some(from) = rotated_from {
        private.push(vendor(CKA_SQLHSM_ROTATED_FROM, from.as_bytes().to_vec()));
    }
    s.generate_key_pair(&mechanism, &public, &private)
        .unwrap_or_else(|e| {
            panic!("C_GenerateKeyPair({kind:?}, rotated from {rotated_from:?}): {e}")
        })
}

/// An AES key named `name` / `id`, the successor of `rotated_from` when given.
fn generate_aes(s: &Session, name: &str, id: &[u8], rotated_from: Option<&str>) -> ObjectHandle {
    let mut template = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::ValueLen(32.into()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        label(name),
        Attribute::Id(id.to_vec()),
    ];
    if let Some(from) = rotated_from {
        template.push(vendor(CKA_SQLHSM_ROTATED_FROM, from.as_bytes().to_vec()));
    }
    s.generate_key(&Mechanism::AesKeyGen, &template)
        .unwrap_or_else(|e| panic!("C_GenerateKey(AES, rotated from {rotated_from:?}): {e}"))
}

fn sign_mechanism(kind: Kind) -> Mechanism<'static> {
    match kind {
        Kind::Ec => Mechanism::EcdsaSha256,
        Kind::Rsa => Mechanism::Sha256RsaPkcs,
    }
}

fn oaep() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ))
}

/// An X.509 certificate over the public key of `public` (issued by a throw-away CA), stored
/// with `C_CreateObject` under `name` / `id`.
fn store_certificate(s: &Session, public: ObjectHandle, name: &str, id: &[u8]) -> ObjectHandle {
    let subject_key = openssl_public(s, public);
    let ca_key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut subject = X509NameBuilder::new().unwrap();
    subject.append_entry_by_nid(Nid::COMMONNAME, name).unwrap();
    let subject = subject.build();
    let mut issuer = X509NameBuilder::new().unwrap();
    issuer
        .append_entry_by_nid(Nid::COMMONNAME, "rotation test CA")
        .unwrap();
    let issuer = issuer.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&Asn1Integer::from_bn(&BigNum::from_u32(7).unwrap()).unwrap())
        .unwrap();
    b.set_subject_name(&subject).unwrap();
    b.set_issuer_name(&issuer).unwrap();
    b.set_pubkey(&subject_key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
    b.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let cert = b.build();
    s.create_object(&[
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Token(true),
        Attribute::Private(false),
        label(name),
        Attribute::Id(id.to_vec()),
        Attribute::Subject(cert.subject_name().to_der().unwrap()),
        Attribute::Value(cert.to_der().unwrap()),
    ])
    .expect("C_CreateObject(certificate)")
}

/// The history event `event` of `key_id`, its new value as JSON.
fn event_new_value(key_id: &str, event: &str) -> serde_json::Value {
    let rows = ctx_db().query_texts(&format!(
        "SELECT CAST(new_value AS TEXT) FROM key_event WHERE key_id = '{key_id}' AND event = '{event}'"
    ));
    assert_eq!(rows.len(), 1, "one {event} event of {key_id}: {rows:?}");
    serde_json::from_str(&rows[0]).expect("event JSON")
}

fn pair_rotation(kind: Kind, token: &str) {
    let p = ctx();
    let s = user_session(p, new_token(p, token));
    let (old_public, old_private) = generate(&s, kind, LABEL, ID, None);
    let old = key_id(&s, old_private);
    let signature = s
        .sign(&sign_mechanism(kind), old_private, DATA)
        .expect("sign before the rotation");
    let ciphertext = (kind == Kind::Rsa).then(|| s.encrypt(&oaep(), old_public, SECRET).unwrap());
    let cert = store_certificate(&s, old_public, LABEL, ID);
    // Before the rotation the certificate pairs with the key by CKA_ID.
    assert_eq!(find(&s, &[Attribute::Id(ID.to_vec())]).len(), 3);

    let (new_public, new_private) = generate(&s, kind, LABEL, ID, Some(&old));
    let new = key_id(&s, new_private);
    assert_ne!(new, old);
    let successor = sorted(vec![new_public, new_private]);

    // Every search by the name finds the successor alone: one key of each class.
    assert_eq!(find(&s, &[label(LABEL)]), successor, "by label");
    assert_eq!(
        find(&s, &[Attribute::Id(ID.to_vec())]),
        successor,
        "by CKA_ID"
    );
    assert_eq!(
        find(&s, &[label(LABEL), Attribute::Id(ID.to_vec())]),
        successor,
        "by label and CKA_ID"
    );
    for (class, key) in [
        (ObjectClass::PRIVATE_KEY, new_private),
        (ObjectClass::PUBLIC_KEY, new_public),
    ] {
        assert_eq!(
            find(&s, &[label(LABEL), Attribute::Class(class)]),
            vec![key]
        );
        assert_eq!(
            find(&s, &[Attribute::Id(ID.to_vec()), Attribute::Class(class)]),
            vec![key]
        );
    }
    // The successor has no certificate until the operator stores one: never the old key's.
    assert!(find(
        &s,
        &[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(ID.to_vec())
        ]
    )
    .is_empty());

    // The predecessor: by key_id, by status, by the derived names — with its certificate.
    let predecessor = sorted(vec![old_public, old_private]);
    assert_eq!(find(&s, &[by_key_id(&old)]), predecessor);
    assert_eq!(
        find(
            &s,
            &[Attribute::Class(ObjectClass::PRIVATE_KEY), by_status(2)]
        ),
        vec![old_private],
        "by class and status Inactive"
    );
    let old_label = format!("{LABEL}@{old}");
    let old_id = derived_id(ID, &old);
    let with_cert = sorted(vec![old_public, old_private, cert]);
    assert_eq!(
        find(&s, &[label(&old_label)]),
        with_cert,
        "by derived label"
    );
    assert_eq!(
        find(&s, &[Attribute::Id(old_id.clone())]),
        with_cert,
        "by derived CKA_ID"
    );
    assert_eq!(
        find(
            &s,
            &[
                label(&old_label),
                Attribute::Class(ObjectClass::PRIVATE_KEY)
            ]
        ),
        vec![old_private]
    );
    for object in [old_public, old_private, cert] {
        assert_eq!(text(&s, object, AttributeType::Label), old_label);
        assert_eq!(get_bytes(&s, object, AttributeType::Id), old_id);
    }
    for key in [new_public, new_private] {
        assert_eq!(text(&s, key, AttributeType::Label), LABEL);
        assert_eq!(get_bytes(&s, key, AttributeType::Id), ID);
    }
    assert_eq!(
        text(
            &s,
            old_private,
            AttributeType::VendorDefined(CKA_SQLHSM_ROTATED_TO)
        ),
        new
    );

    // The old key still does what an Inactive key does, on data it made; only the new one signs.
    s.verify(&sign_mechanism(kind), old_public, DATA, &signature)
        .expect("the predecessor verifies its signature");
    if let Some(ciphertext) = &ciphertext {
        assert_eq!(
            s.decrypt(&oaep(), old_private, ciphertext)
                .expect("the predecessor decrypts"),
            SECRET
        );
    }
    expect_rv(
        s.sign(&sign_mechanism(kind), old_private, DATA),
        cryptoki::error::RvError::KeyFunctionNotPermitted,
    );
    let fresh = s
        .sign(&sign_mechanism(kind), new_private, DATA)
        .expect("the successor signs");
    s.verify(&sign_mechanism(kind), new_public, DATA, &fresh)
        .unwrap();

    // The history records the rename, with the certificate that followed.
    let rotated = event_new_value(&old, "rotated");
    assert_eq!(rotated["label"], old_label.as_str(), "{rotated}");
    assert_eq!(rotated["id"], hex::encode(&old_id), "{rotated}");
    assert_eq!(rotated["certificates"].as_array().map(Vec::len), Some(1));

    // A second rotation renames the second generation the same way.
    let (newer_public, newer_private) = generate(&s, kind, LABEL, ID, Some(&new));
    assert_eq!(
        find(&s, &[label(LABEL)]),
        sorted(vec![newer_public, newer_private])
    );
    assert_eq!(
        find(&s, &[Attribute::Id(ID.to_vec())]),
        sorted(vec![newer_public, newer_private])
    );
    assert_eq!(find(&s, &[label(&format!("{LABEL}@{new}"))]), successor);
    assert_eq!(find(&s, &[Attribute::Id(derived_id(ID, &new))]), successor);
    assert_eq!(find(&s, &[label(&old_label)]), with_cert, "the first stays");
    assert_eq!(
        find(
            &s,
            &[Attribute::Class(ObjectClass::PRIVATE_KEY), by_status(2)]
        ),
        sorted(vec![old_private, new_private])
    );
    assert_eq!(
        find(
            &s,
            &[Attribute::Class(ObjectClass::PRIVATE_KEY), by_status(1)]
        ),
        vec![newer_private]
    );
}

#[test]
fn an_ec_pair_rotation_leaves_its_names_to_the_successor() {
    pair_rotation(Kind::Ec, "rot-ec");
}

#[test]
fn an_rsa_pair_rotation_leaves_its_names_to_the_successor() {
    pair_rotation(Kind::Rsa, "rot-rsa");
}

#[test]
fn an_aes_key_rotation_leaves_its_names_to_the_successor() {
    let p = ctx();
    let s = user_session(p, new_token(p, "rot-aes"));
    let old_key = generate_aes(&s, LABEL, ID, None);
    let old = key_id(&s, old_key);
    let ciphertext = s
        .encrypt(&Mechanism::AesCbcPad(IV), old_key, SECRET)
        .unwrap();
    let new_key = generate_aes(&s, LABEL, ID, Some(&old));
    assert_eq!(find(&s, &[label(LABEL)]), vec![new_key]);
    assert_eq!(find(&s, &[Attribute::Id(ID.to_vec())]), vec![new_key]);
    assert_eq!(
        find(
            &s,
            &[label(LABEL), Attribute::Class(ObjectClass::SECRET_KEY)]
        ),
        vec![new_key]
    );
    assert_eq!(find(&s, &[by_key_id(&old)]), vec![old_key]);
    assert_eq!(
        find(
            &s,
            &[Attribute::Class(ObjectClass::SECRET_KEY), by_status(2)]
        ),
        vec![old_key]
    );
    let by_derived = find(&s, &[label(&format!("{LABEL}@{old}"))]);
    assert_eq!(by_derived, vec![old_key]);
    assert_eq!(
        find(&s, &[Attribute::Id(derived_id(ID, &old))]),
        vec![old_key]
    );
    assert_eq!(
        s.decrypt(&Mechanism::AesCbcPad(IV), by_derived[0], &ciphertext)
            .expect("the predecessor decrypts what it encrypted"),
        SECRET
    );
    expect_rv(
        s.encrypt(&Mechanism::AesCbcPad(IV), old_key, SECRET),
        cryptoki::error::RvError::KeyFunctionNotPermitted,
    );
    s.encrypt(&Mechanism::AesCbcPad(IV), new_key, SECRET)
        .expect("the successor encrypts");
}

/// A successor given a new label or `CKA_ID` leaves the predecessor the name it did not take.
#[test]
fn a_successor_with_new_names_leaves_the_old_ones() {
    let p = ctx();
    let s = user_session(p, new_token(p, "rot-options"));
    let (a_public, a_private) = generate(&s, Kind::Ec, LABEL, ID, None);
    let a = key_id(&s, a_private);
    let cert = store_certificate(&s, a_public, LABEL, ID);

    // A new label, the same CKA_ID: the predecessor keeps its label, gives up its CKA_ID.
    let (b_public, b_private) = generate(&s, Kind::Ec, "signer-2", ID, Some(&a));
    let b = key_id(&s, b_private);
    for object in [a_public, a_private, cert] {
        assert_eq!(text(&s, object, AttributeType::Label), LABEL);
        assert_eq!(get_bytes(&s, object, AttributeType::Id), derived_id(ID, &a));
    }
    assert_eq!(
        find(&s, &[label(LABEL)]),
        sorted(vec![a_public, a_private, cert])
    );
    assert_eq!(
        find(&s, &[Attribute::Id(ID.to_vec())]),
        sorted(vec![b_public, b_private])
    );

    // The same label, a new CKA_ID: the predecessor keeps its CKA_ID, gives up its label.
    let (c_public, c_private) = generate(&s, Kind::Ec, "signer-2", &[0x02], Some(&b));
    for key in [b_public, b_private] {
        assert_eq!(text(&s, key, AttributeType::Label), format!("signer-2@{b}"));
        assert_eq!(get_bytes(&s, key, AttributeType::Id), ID);
    }
    assert_eq!(
        find(&s, &[label("signer-2")]),
        sorted(vec![c_public, c_private])
    );

    // Both new: nothing to give up.
    let c = key_id(&s, c_private);
    let (d_public, d_private) = generate(&s, Kind::Ec, "signer-4", &[0x04], Some(&c));
    assert_eq!(text(&s, c_private, AttributeType::Label), "signer-2");
    assert_eq!(get_bytes(&s, c_private, AttributeType::Id), vec![0x02]);
    assert_eq!(
        find(&s, &[label("signer-4")]),
        sorted(vec![d_public, d_private])
    );
    let rotated = event_new_value(&c, "rotated");
    assert!(
        rotated.get("label").is_none() && rotated.get("id").is_none(),
        "no rename recorded: {rotated}"
    );
}

/// OpenSC's `pkcs11-tool --id 01 --sign` signs with the successor after a rotation (before the
/// rename it took the first key with that CKA_ID, the Inactive predecessor, and failed).
#[test]
fn pkcs11_tool_signs_with_the_successor_by_id() {
    if Command::new("pkcs11-tool").arg("--help").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "pkcs11-tool not found (CI is set, so this is a failure: install opensc)"
        );
        announce("skipped: pkcs11-tool (opensc) is not installed");
        return;
    }
    let p = ctx();
    let token = "rot-tool";
    let s = user_session(p, new_token(p, token));
    let (_, old_private) = generate(&s, Kind::Ec, LABEL, ID, None);
    let old = key_id(&s, old_private);
    let (new_public, _) = generate(&s, Kind::Ec, LABEL, ID, Some(&old));
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let input = dir.path().join("data");
    let output = dir.path().join("signature");
    std::fs::write(&input, DATA).unwrap();
    let out = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(module_path())
        .args(["--token-label", token, "--login", "--pin", USER_PIN])
        .args(["--sign", "--id", "01", "--mechanism", "ECDSA-SHA256"])
        .arg("--input-file")
        .arg(&input)
        .arg("--output-file")
        .arg(&output)
        .envs(ctx_db().envs())
        .output()
        .expect("run pkcs11-tool");
    assert!(
        out.status.success(),
        "pkcs11-tool --sign --id 01: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let signature = std::fs::read(&output).unwrap();
    s.verify(&Mechanism::EcdsaSha256, new_public, DATA, &signature)
        .expect("pkcs11-tool signed with the successor");
}

/// Another process that had found (and cached) the predecessor by its label finds the successor
/// alone by that label once this process rotates, and its cached handle reads the new name,
/// within the coherence bound.
#[test]
fn another_process_finds_one_key_by_label_after_the_rotation() {
    const TOKEN: &str = "rot-observed";
    if let Some(role) = child_role() {
        if role == "observer" {
            observe(TOKEN);
        }
        return;
    }
    let p = ctx();
    let s = user_session(p, new_token(p, TOKEN));
    let (_, old_private) = generate(&s, Kind::Ec, LABEL, ID, None);
    let old = key_id(&s, old_private);
    let sync = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let child = spawn_child(
        "another_process_finds_one_key_by_label_after_the_rotation",
        "observer",
        ctx_db(),
        &[(ENV_CHILD_SYNC, sync.path().display().to_string())],
    );
    wait_children_ready(sync.path(), 1);
    let (_, new_private) = generate(&s, Kind::Ec, LABEL, ID, Some(&old));
    let new = key_id(&s, new_private);
    std::fs::write(sync.path().join("go"), b"").unwrap();
    let out = finish_child("observer", child);
    assert!(
        out.contains(&format!("successor {new}")),
        "the other process found {new}:\n{out}"
    );
}

/// The child of the test above.
fn observe(token: &str) {
    let p = child_init();
    let s = user_session(&p, slot_by_label(&p, token).expect("the parent's token"));
    let private = |s: &Session| {
        find(
            s,
            &[label(LABEL), Attribute::Class(ObjectClass::PRIVATE_KEY)],
        )
    };
    let before = private(&s);
    assert_eq!(before.len(), 1, "one key by label before the rotation");
    let old_private = before[0];
    let old = key_id(&s, old_private);
    // Cached, material included.
    s.sign(&Mechanism::EcdsaSha256, old_private, DATA).unwrap();
    child_ready_then_wait("observer");
    let started = Instant::now();
    let deadline = started + Duration::from_millis(COHERENCE_MS + SLACK_MS);
    let derived = format!("{LABEL}@{old}");
    let successor = loop {
        let found = private(&s);
        let cached_label = text(&s, old_private, AttributeType::Label);
        if let [one] = found[..] {
            let found_id = key_id(&s, one);
            if found_id != old && cached_label == derived {
                break found_id;
            }
        }
        assert!(
            Instant::now() < deadline,
            "after {} ms: by label {found:?} (the old key is {old}), the cached old key labelled {cached_label:?}",
            started.elapsed().as_millis()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let line = format!(
        "rotation: another process found the successor alone by label {} ms after the go",
        started.elapsed().as_millis()
    );
    announce(&line);
    println!("{line}");
    assert_eq!(
        find(&s, &[label(&derived)]).len(),
        2,
        "the old pair by its new name"
    );
    println!("successor {successor}");
    drop(s);
    println!("child observer: ok");
    p.finalize().expect("C_Finalize");
}

/// Keys rotated by earlier versions share their names with their successor; `sqlhsm db
/// migrate` renames them (and their certificates) as a rotation now does, once.
#[test]
fn migrate_renames_keys_rotated_by_earlier_versions() {
    let p = ctx();
    let token = "rot-legacy";
    let s = user_session(p, new_token(p, token));
    let (old_public, old_private) = generate(&s, Kind::Ec, LABEL, ID, None);
    let old = key_id(&s, old_private);
    let cert = store_certificate(&s, old_public, LABEL, ID);
    let (new_public, new_private) = generate(&s, Kind::Ec, LABEL, ID, Some(&old));
    let aes_old = generate_aes(&s, "sealer", &[0x0a], None);
    let aes_old_id = key_id(&s, aes_old);
    let aes_new = generate_aes(&s, "sealer", &[0x0a], Some(&aes_old_id));

    // What an earlier version left: the old names on the predecessors and the certificate.
    let db = ctx_db();
    let restore = |table: &str, row: &str, half: &str, name: &str, id: &str| {
        let paths = [
            ("label".to_string(), name),
            ("id".to_string(), id),
            (format!("{half},label"), name),
            (format!("{half},id"), id),
        ];
        let value = match db.backend {
            Backend::Sqlite => {
                let paths: Vec<String> = paths
                    .iter()
                    .map(|(path, v)| format!("'$.{}', '{v}'", path.replace(',', ".")))
                    .collect();
                format!("json_set(metadata, {})", paths.join(", "))
            }
            Backend::Postgres => paths
                .iter()
                .fold("metadata".to_string(), |inner, (path, v)| {
                    format!("jsonb_set({inner}, '{{{path}}}', '\"{v}\"')")
                }),
        };
        db.query_texts(&format!(
            "UPDATE {table} SET metadata = {value} WHERE {row}"
        ));
    };
    for half in ["public", "private"] {
        restore("asym_key", &format!("key_id = '{old}'"), half, LABEL, "01");
    }
    restore(
        "sym_key",
        &format!("key_id = '{aes_old_id}'"),
        "secret",
        "sealer",
        "0a",
    );
    let cert_row = String::from_utf8(get_any_bytes(&s, cert, AttributeType::UniqueId)).unwrap();
    restore(
        "p11_object",
        &format!("id = '{cert_row}'"),
        "object",
        LABEL,
        "01",
    );
    // The module finds by the database: both keys now answer to the one name.
    assert_eq!(
        find(
            &s,
            &[label(LABEL), Attribute::Class(ObjectClass::PRIVATE_KEY)]
        ),
        sorted(vec![old_private, new_private]),
        "the state an earlier version left"
    );
    assert_eq!(find(&s, &[label("sealer")]), sorted(vec![aes_old, aes_new]));

    let migrate = || {
        let out = Command::new(env!("CARGO_BIN_EXE_sqlhsm"))
            .args(["db", "migrate", "--json"])
            .envs(db.envs())
            .env_remove("SQLHSM_LOG")
            .output()
            .expect("run sqlhsm db migrate");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "sqlhsm db migrate: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
        report["renamed"]
            .as_array()
            .expect("renamed")
            .iter()
            .filter(|r| r["key_id"] == old.as_str() || r["key_id"] == aes_old_id.as_str())
            .cloned()
            .collect::<Vec<_>>()
    };
    let renamed = migrate();
    assert_eq!(renamed.len(), 2, "{renamed:?}");
    let ec = renamed
        .iter()
        .find(|r| r["key_id"] == old.as_str())
        .unwrap();
    assert_eq!(ec["new"]["label"], format!("{LABEL}@{old}"));
    assert_eq!(ec["certificates"], 1);
    assert!(migrate().is_empty(), "a second run renames nothing");

    assert_eq!(
        find(&s, &[label(LABEL)]),
        sorted(vec![new_public, new_private])
    );
    assert_eq!(
        find(&s, &[Attribute::Id(ID.to_vec())]),
        sorted(vec![new_public, new_private])
    );
    assert_eq!(
        find(&s, &[label(&format!("{LABEL}@{old}"))]),
        sorted(vec![old_public, old_private, cert])
    );
    assert_eq!(
        find(&s, &[Attribute::Id(derived_id(ID, &old))]),
        sorted(vec![old_public, old_private, cert])
    );
    assert_eq!(find(&s, &[label("sealer")]), vec![aes_new]);
    assert_eq!(
        find(&s, &[label(&format!("sealer@{aes_old_id}"))]),
        vec![aes_old]
    );
    let event = event_new_value(&old, "renamed");
    assert_eq!(event["label"], format!("{LABEL}@{old}"), "{event}");
    assert_eq!(event["rotated_to"], key_id(&s, new_private).as_str());
}

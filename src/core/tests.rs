//! In-process tests of the core through the safe API of [`Module`], on an in-memory SQLite
//! store. The C ABI is covered by the tests in `tests/`.

use cryptoki_sys::*;

use super::Module;
use crate::config::Config;
use crate::error::Rv;
use crate::types::AttributeRequest;
use crate::types::{Attribute, Mechanism, OutBuf};

const SO_PIN: &[u8] = b"so-secret";
const USER_PIN: &[u8] = b"user-1234";

fn module() -> Module {
    let config =
        Config::from_toml_str("[security]\npin_kdf_log_n = 10\nmax_pin_failures = 3\n").unwrap();
    let storage =
        crate::storage::open(&crate::config::DatabaseConfig::with_url("sqlite::memory:")).unwrap();
    Module::new(config, storage).unwrap()
}

fn label(text: &str) -> [u8; 32] {
    super::pins::padded(text)
}

/// A token with a user PIN, and a R/W session logged in as the user.
fn ready() -> (Module, CK_SESSION_HANDLE) {
    let m = module();
    let slot = *m.slot_list(true).unwrap().last().unwrap();
    m.init_token(slot, SO_PIN, &label("core-test")).unwrap();
    let so = m
        .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    m.login(so, CKU_SO, Some(SO_PIN)).unwrap();
    m.init_pin(so, USER_PIN).unwrap();
    m.logout(so).unwrap();
    m.login(so, CKU_USER, Some(USER_PIN)).unwrap();
    (m, so)
}

fn rv<T: std::fmt::Debug>(result: crate::Result<T>) -> Rv {
    result.unwrap_err().rv()
}

fn ec_pair(
    m: &Module,
    session: CK_SESSION_HANDLE,
    token: bool,
    extra_private: &[Attribute],
) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let params = crate::key_algorithm::EC_P256.params_der.to_vec();
    let public = vec![
        Attribute::new(CKA_EC_PARAMS, params),
        Attribute::from_bool(CKA_TOKEN, token),
        Attribute::new(CKA_LABEL, b"ec".to_vec()),
    ];
    let mut private = vec![
        Attribute::from_bool(CKA_TOKEN, token),
        Attribute::new(CKA_ID, b"ec-1".to_vec()),
    ];
    private.extend_from_slice(extra_private);
    m.generate_key_pair(
        session,
        &Mechanism::new(CKM_EC_KEY_PAIR_GEN),
        &public,
        &private,
    )
    .unwrap()
}

fn sign(
    m: &Module,
    session: CK_SESSION_HANDLE,
    mechanism: CK_MECHANISM_TYPE,
    key: CK_OBJECT_HANDLE,
    data: &[u8],
) -> Vec<u8> {
    m.sign_init(session, &Mechanism::new(mechanism), key)
        .unwrap();
    let mut out = OutBuf::query();
    m.sign(session, data, &mut out).unwrap();
    let mut buffer = vec![0u8; out.len()];
    let mut out = OutBuf::buffer(&mut buffer);
    m.sign(session, data, &mut out).unwrap();
    let len = out.len();
    buffer.truncate(len);
    buffer
}

#[test]
fn token_lifecycle_and_slots() {
    let m = module();
    let slots = m.slot_list(true).unwrap();
    assert_eq!(slots.len(), 1, "a fresh store shows only the empty slot");
    let info = m.token_info(slots[0]).unwrap();
    assert_eq!(info.flags & CKF_TOKEN_INITIALIZED, 0);
    m.init_token(slots[0], SO_PIN, &label("first")).unwrap();
    let after = m.slot_list(true).unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(
        after[0], slots[0],
        "the token keeps the slot it was initialized on"
    );
    let info = m.token_info(slots[0]).unwrap();
    assert_ne!(info.flags & CKF_TOKEN_INITIALIZED, 0);
    assert_eq!(&info.label[..5], b"first");
    assert_eq!(
        rv(m.init_token(after[1], SO_PIN, &label("first"))),
        Rv::ARGUMENTS_BAD,
        "labels are unique"
    );
}

#[test]
fn pins_lock_after_the_configured_failures_and_so_unlocks() {
    let (m, session) = ready();
    m.logout(session).unwrap();
    for _ in 0..3 {
        assert_eq!(
            rv(m.login(session, CKU_USER, Some(b"wrong-pin"))),
            Rv::PIN_INCORRECT
        );
    }
    assert_eq!(
        rv(m.login(session, CKU_USER, Some(USER_PIN))),
        Rv::PIN_LOCKED
    );
    let slot = m.session_basics(session).unwrap().0;
    assert_ne!(m.token_info(slot).unwrap().flags & CKF_USER_PIN_LOCKED, 0);
    m.login(session, CKU_SO, Some(SO_PIN)).unwrap();
    m.init_pin(session, b"new-user-pin").unwrap();
    m.logout(session).unwrap();
    m.login(session, CKU_USER, Some(b"new-user-pin")).unwrap();
    assert_eq!(m.token_info(slot).unwrap().flags & CKF_USER_PIN_LOCKED, 0);
}

#[test]
fn set_pin_rewraps_the_token_key_only() {
    let (m, session) = ready();
    let (_, private) = ec_pair(&m, session, true, &[]);
    m.set_pin(session, USER_PIN, b"changed-pin").unwrap();
    m.logout(session).unwrap();
    assert_eq!(
        rv(m.login(session, CKU_USER, Some(USER_PIN))),
        Rv::PIN_INCORRECT
    );
    m.login(session, CKU_USER, Some(b"changed-pin")).unwrap();
    assert_eq!(
        sign(&m, session, CKM_ECDSA_SHA256, private, b"data").len(),
        64
    );
}

#[test]
fn private_objects_are_invisible_before_login() {
    let (m, session) = ready();
    let (public, private) = ec_pair(&m, session, true, &[]);
    let all = m.find(&m.access(session).unwrap(), &[]).unwrap();
    assert!(all.contains(&public) && all.contains(&private));
    m.logout(session).unwrap();
    let visible = m.find(&m.access(session).unwrap(), &[]).unwrap();
    assert_eq!(visible, vec![public]);
    assert_eq!(
        rv(m.sign_init(session, &Mechanism::new(CKM_ECDSA), private)),
        Rv::KEY_HANDLE_INVALID
    );
}

#[test]
fn find_uses_label_id_class_and_key_type() {
    let (m, session) = ready();
    let (public, private) = ec_pair(&m, session, true, &[]);
    let access = m.access(session).unwrap();
    let by_label = m
        .find(&access, &[Attribute::new(CKA_LABEL, b"ec".to_vec())])
        .unwrap();
    assert_eq!(by_label, vec![public, private], "a pair shares its label");
    let by_class = m
        .find(
            &access,
            &[Attribute::from_ulong(CKA_CLASS, CKO_PRIVATE_KEY)],
        )
        .unwrap();
    assert_eq!(by_class, vec![private]);
    let by_type = m
        .find(&access, &[Attribute::from_ulong(CKA_KEY_TYPE, CKK_RSA)])
        .unwrap();
    assert!(by_type.is_empty());
    let by_id = m
        .find(&access, &[Attribute::new(CKA_ID, b"ec-1".to_vec())])
        .unwrap();
    assert_eq!(by_id.len(), 2);
    let by_key_id = m
        .find(
            &access,
            &[Attribute::new(
                crate::vendor::CKA_SQLHSM_KEY_ID,
                b"ec-1".to_vec(),
            )],
        )
        .unwrap();
    assert_eq!(by_key_id.len(), 2, "key_id comes from a printable CKA_ID");
}

#[test]
fn attributes_follow_the_policy() {
    let (m, session) = ready();
    let (_, private) = ec_pair(&m, session, true, &[]);
    let mut buffer = [0u8; 64];
    let mut requests = vec![
        AttributeRequest {
            kind: CKA_VALUE,
            out: OutBuf::query(),
            unavailable: false,
        },
        AttributeRequest {
            kind: CKA_EC_POINT,
            out: OutBuf::query(),
            unavailable: false,
        },
        AttributeRequest {
            kind: CKA_MODULUS,
            out: OutBuf::query(),
            unavailable: false,
        },
        AttributeRequest {
            kind: CKA_LABEL,
            out: OutBuf::buffer(&mut buffer),
            unavailable: false,
        },
    ];
    assert_eq!(
        rv(m.get_attribute_value(session, private, &mut requests)),
        Rv::ATTRIBUTE_SENSITIVE
    );
    assert!(requests[0].unavailable, "the private value is sensitive");
    assert!(
        !requests[1].unavailable && requests[1].out.len() == 67,
        "EC point as DER OCTET STRING"
    );
    assert!(requests[2].unavailable, "an EC key has no modulus");
    assert_eq!(requests[3].out.len(), 2);

    let set = |attrs: Vec<Attribute>| m.set_attribute_value(session, private, &attrs);
    assert_eq!(
        rv(set(vec![Attribute::from_bool(CKA_SENSITIVE, false)])),
        Rv::ATTRIBUTE_READ_ONLY
    );
    assert_eq!(
        rv(set(vec![Attribute::from_bool(CKA_EXTRACTABLE, true)])),
        Rv::ATTRIBUTE_READ_ONLY
    );
    assert_eq!(
        rv(set(vec![Attribute::from_ulong(CKA_KEY_TYPE, CKK_RSA)])),
        Rv::ATTRIBUTE_READ_ONLY
    );
    set(vec![Attribute::new(CKA_LABEL, b"renamed".to_vec())]).unwrap();
    let found = m
        .find(
            &m.access(session).unwrap(),
            &[Attribute::new(CKA_LABEL, b"renamed".to_vec())],
        )
        .unwrap();
    assert_eq!(
        found.len(),
        2,
        "the new label reaches the database and both halves"
    );
}

#[test]
fn usage_flags_are_enforced() {
    let (m, session) = ready();
    let (_, private) = ec_pair(&m, session, false, &[Attribute::from_bool(CKA_SIGN, false)]);
    assert_eq!(
        rv(m.sign_init(session, &Mechanism::new(CKM_ECDSA), private)),
        Rv::KEY_FUNCTION_NOT_PERMITTED
    );
}

#[test]
fn operation_state_rules() {
    let (m, session) = ready();
    let (public, private) = ec_pair(&m, session, false, &[]);
    let mut out = OutBuf::query();
    assert_eq!(
        rv(m.sign(session, b"x", &mut out)),
        Rv::OPERATION_NOT_INITIALIZED
    );
    m.sign_init(session, &Mechanism::new(CKM_ECDSA_SHA256), private)
        .unwrap();
    assert_eq!(
        rv(m.sign_init(session, &Mechanism::new(CKM_ECDSA_SHA256), private)),
        Rv::OPERATION_ACTIVE
    );
    // A too-small buffer keeps the operation and hands out the same signature on retry.
    let mut small = [0u8; 10];
    let mut out = OutBuf::buffer(&mut small);
    assert_eq!(rv(m.sign(session, b"data", &mut out)), Rv::BUFFER_TOO_SMALL);
    assert_eq!(out.len(), 64);
    let mut big = [0u8; 64];
    let mut out = OutBuf::buffer(&mut big);
    m.sign(session, b"data", &mut out).unwrap();
    m.verify_init(session, &Mechanism::new(CKM_ECDSA_SHA256), public)
        .unwrap();
    m.verify(session, b"data", &big).unwrap();
    m.verify_init(session, &Mechanism::new(CKM_ECDSA_SHA256), public)
        .unwrap();
    assert_eq!(rv(m.verify(session, b"other", &big)), Rv::SIGNATURE_INVALID);
}

#[test]
fn secret_keys_encrypt_and_survive_reload() {
    let (m, session) = ready();
    let template = [
        Attribute::from_ulong(CKA_VALUE_LEN, 32),
        Attribute::from_bool(CKA_TOKEN, true),
        Attribute::new(CKA_LABEL, b"aes".to_vec()),
    ];
    let key = m
        .generate_key(session, &Mechanism::new(CKM_AES_KEY_GEN), &template)
        .unwrap();
    let gcm = Mechanism {
        kind: CKM_AES_GCM,
        param: crate::types::MechanismParam::Gcm {
            iv: vec![7; 12],
            aad: b"aad".to_vec(),
            tag_bits: 128,
        },
    };
    m.encrypt_init(session, &gcm, key).unwrap();
    let mut ciphertext = vec![0u8; 64];
    let mut out = OutBuf::buffer(&mut ciphertext);
    m.encrypt(session, b"hello", &mut out).unwrap();
    let n = out.len();
    ciphertext.truncate(n);
    assert_eq!(ciphertext.len(), 5 + 16);

    // A second module on the same store (another process) finds and uses the key.
    let storage = m.storage.clone();
    let other = Module::new(m.config.clone(), storage).unwrap();
    let slot = m.session_basics(session).unwrap().0;
    let s2 = other.open_session(slot, CKF_SERIAL_SESSION).unwrap();
    other.login(s2, CKU_USER, Some(USER_PIN)).unwrap();
    let found = other
        .find(
            &other.access(s2).unwrap(),
            &[Attribute::new(CKA_LABEL, b"aes".to_vec())],
        )
        .unwrap();
    assert_eq!(found.len(), 1);
    other.decrypt_init(s2, &gcm, found[0]).unwrap();
    let mut plain = vec![0u8; 64];
    let mut out = OutBuf::buffer(&mut plain);
    other.decrypt(s2, &ciphertext, &mut out).unwrap();
    let n = out.len();
    assert_eq!(&plain[..n], b"hello");
}

#[test]
fn read_only_sessions_cannot_write_token_objects() {
    let (m, session) = ready();
    let slot = m.session_basics(session).unwrap().0;
    let ro = m.open_session(slot, CKF_SERIAL_SESSION).unwrap();
    let template = [
        Attribute::from_ulong(CKA_VALUE_LEN, 16),
        Attribute::from_bool(CKA_TOKEN, true),
    ];
    assert_eq!(
        rv(m.generate_key(ro, &Mechanism::new(CKM_AES_KEY_GEN), &template)),
        Rv::SESSION_READ_ONLY
    );
    let session_only = [Attribute::from_ulong(CKA_VALUE_LEN, 16)];
    m.generate_key(ro, &Mechanism::new(CKM_AES_KEY_GEN), &session_only)
        .unwrap();
    assert_eq!(
        rv(m.login(ro, CKU_SO, Some(SO_PIN))),
        Rv::USER_ANOTHER_ALREADY_LOGGED_IN
    );
    m.logout(ro).unwrap();
    assert_eq!(
        rv(m.login(ro, CKU_SO, Some(SO_PIN))),
        Rv::SESSION_READ_ONLY_EXISTS
    );
}

#[test]
fn session_objects_die_with_their_session() {
    let (m, session) = ready();
    let slot = m.session_basics(session).unwrap().0;
    let other = m
        .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    let (public, _) = ec_pair(&m, other, false, &[]);
    assert!(m.objects.get(public).unwrap().is_some());
    m.close_session(other).unwrap();
    assert!(m.objects.get(public).unwrap().is_none());
}

#[test]
fn destroying_both_halves_deletes_the_row() {
    let (m, session) = ready();
    let (public, private) = ec_pair(&m, session, true, &[]);
    m.destroy_object(session, public).unwrap();
    let access = m.access(session).unwrap();
    assert_eq!(m.find(&access, &[]).unwrap(), vec![private]);
    m.destroy_object(session, private).unwrap();
    assert!(m.find(&access, &[]).unwrap().is_empty());
    assert_eq!(
        rv(m.destroy_object(session, private)),
        Rv::OBJECT_HANDLE_INVALID
    );
}

#[test]
fn copies_keep_material_and_apply_the_template() {
    let (m, session) = ready();
    let template = [
        Attribute::from_ulong(CKA_VALUE_LEN, 16),
        Attribute::from_bool(CKA_TOKEN, true),
        Attribute::new(CKA_LABEL, b"original".to_vec()),
    ];
    let key = m
        .generate_key(session, &Mechanism::new(CKM_AES_KEY_GEN), &template)
        .unwrap();
    let copy = m
        .copy_object(
            session,
            key,
            &[
                Attribute::new(CKA_LABEL, b"copy".to_vec()),
                Attribute::from_bool(CKA_TOKEN, false),
            ],
        )
        .unwrap();
    assert_ne!(copy, key);
    let check = |handle| {
        let mut buffer = [0u8; 3];
        let mut requests = vec![AttributeRequest {
            kind: CKA_CHECK_VALUE,
            out: OutBuf::buffer(&mut buffer),
            unavailable: false,
        }];
        m.get_attribute_value(session, handle, &mut requests)
            .unwrap();
        buffer
    };
    assert_eq!(check(key), check(copy), "same key value, same check value");
    assert_eq!(
        rv(m.copy_object(session, key, &[Attribute::from_bool(CKA_EXTRACTABLE, true)])),
        Rv::ATTRIBUTE_READ_ONLY,
        "a copy cannot become extractable"
    );
    m.set_attribute_value(session, key, &[Attribute::from_bool(CKA_COPYABLE, false)])
        .unwrap();
    assert_eq!(rv(m.copy_object(session, key, &[])), Rv::ACTION_PROHIBITED);
    assert!(m.object_size(session, key).unwrap() > 16);
}

fn certificate_der() -> Vec<u8> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "core test").unwrap();
    let name = name.build();
    let mut builder = X509Builder::new().unwrap();
    builder.set_subject_name(&name).unwrap();
    builder.set_issuer_name(&name).unwrap();
    builder.set_pubkey(&key).unwrap();
    builder
        .set_serial_number(&BigNum::from_u32(7).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    builder
        .set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    builder
        .set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    builder.sign(&key, MessageDigest::sha256()).unwrap();
    builder.build().to_der().unwrap()
}

fn read(
    m: &Module,
    session: CK_SESSION_HANDLE,
    handle: CK_OBJECT_HANDLE,
    kind: CK_ATTRIBUTE_TYPE,
) -> Vec<u8> {
    let mut buffer = vec![0u8; 4096];
    let mut requests = vec![AttributeRequest {
        kind,
        out: OutBuf::buffer(&mut buffer),
        unavailable: false,
    }];
    m.get_attribute_value(session, handle, &mut requests)
        .unwrap();
    let len = requests[0].out.len();
    drop(requests);
    buffer.truncate(len);
    buffer
}

#[test]
fn certificates_and_data_objects_live_in_their_own_table() {
    let (m, session) = ready();
    let der = certificate_der();
    let cert = m
        .create_object(
            session,
            &[
                Attribute::from_ulong(CKA_CLASS, CKO_CERTIFICATE),
                Attribute::from_ulong(CKA_CERTIFICATE_TYPE, CKC_X_509),
                Attribute::from_bool(CKA_TOKEN, true),
                Attribute::new(
                    CKA_SUBJECT,
                    crate::crypto::x509::certificate_fields(&der)
                        .unwrap()
                        .subject,
                ),
                Attribute::new(CKA_VALUE, der.clone()),
                Attribute::new(CKA_LABEL, b"cert".to_vec()),
                Attribute::new(CKA_ID, vec![1, 2]),
            ],
        )
        .unwrap();
    assert_eq!(read(&m, session, cert, CKA_VALUE), der);
    assert_eq!(
        read(&m, session, cert, CKA_SERIAL_NUMBER),
        vec![0x02, 0x01, 0x07],
        "taken from the certificate"
    );
    let data = m
        .create_object(
            session,
            &[
                Attribute::from_ulong(CKA_CLASS, CKO_DATA),
                Attribute::from_bool(CKA_TOKEN, true),
                Attribute::new(CKA_APPLICATION, b"app".to_vec()),
                Attribute::new(CKA_VALUE, b"secret data".to_vec()),
                Attribute::new(CKA_LABEL, b"data".to_vec()),
            ],
        )
        .unwrap();
    let access = m.access(session).unwrap();
    let certs = m
        .find(
            &access,
            &[Attribute::from_ulong(CKA_CLASS, CKO_CERTIFICATE)],
        )
        .unwrap();
    assert_eq!(certs, vec![cert]);
    let by_label = m
        .find(&access, &[Attribute::new(CKA_LABEL, b"data".to_vec())])
        .unwrap();
    assert_eq!(by_label, vec![data]);

    // Another process sees both; the private data object only after login, and its value is
    // sealed at rest.
    let other = Module::new(m.config.clone(), m.storage.clone()).unwrap();
    let slot = m.session_basics(session).unwrap().0;
    let s2 = other.open_session(slot, CKF_SERIAL_SESSION).unwrap();
    let public_view = other.find(&other.access(s2).unwrap(), &[]).unwrap();
    assert_eq!(public_view.len(), 1, "only the certificate before login");
    other.login(s2, CKU_USER, Some(USER_PIN)).unwrap();
    let found = other
        .find(
            &other.access(s2).unwrap(),
            &[Attribute::new(CKA_LABEL, b"data".to_vec())],
        )
        .unwrap();
    assert_eq!(read(&other, s2, found[0], CKA_VALUE), b"secret data");
    let row = m
        .storage
        .find_objects(
            &crate::storage::KeyFilter {
                provider_config_id: access.token,
                ..Default::default()
            },
            Some(CKO_DATA as i64),
        )
        .unwrap();
    assert!(!row[0]
        .value
        .as_ref()
        .unwrap()
        .windows(11)
        .any(|w| w == b"secret data"));

    m.set_attribute_value(
        session,
        cert,
        &[Attribute::new(CKA_LABEL, b"renamed".to_vec())],
    )
    .unwrap();
    assert_eq!(
        m.find(&access, &[Attribute::new(CKA_LABEL, b"renamed".to_vec())])
            .unwrap(),
        vec![cert]
    );
    let copy = m
        .copy_object(session, cert, &[Attribute::from_bool(CKA_TOKEN, false)])
        .unwrap();
    assert_eq!(read(&m, session, copy, CKA_VALUE), der);
    m.destroy_object(session, cert).unwrap();
    assert!(m
        .find(
            &access,
            &[
                Attribute::from_ulong(CKA_CLASS, CKO_CERTIFICATE),
                Attribute::from_bool(CKA_TOKEN, true)
            ]
        )
        .unwrap()
        .is_empty());
}

#[test]
fn changes_by_another_process_reach_cached_objects_within_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("coherence.db").display());
    let config = Config::from_toml_str(&format!(
        "[database]\nurl = \"{url}\"\n[security]\npin_kdf_log_n = 10\n[cache]\ncoherence_ms = 100\n"
    ))
    .unwrap();
    let open = || {
        let storage = crate::storage::open(&config.database).unwrap();
        Module::new(config.clone(), storage).unwrap()
    };
    let a = open();
    let slot = *a.slot_list(true).unwrap().last().unwrap();
    a.init_token(slot, SO_PIN, &label("coherence")).unwrap();
    let sa = a
        .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    a.login(sa, CKU_SO, Some(SO_PIN)).unwrap();
    a.init_pin(sa, USER_PIN).unwrap();
    a.logout(sa).unwrap();
    a.login(sa, CKU_USER, Some(USER_PIN)).unwrap();
    let (_, first) = ec_pair(&a, sa, true, &[]);
    let params = crate::key_algorithm::EC_P256.params_der.to_vec();
    let (_, second) = a
        .generate_key_pair(
            sa,
            &Mechanism::new(CKM_EC_KEY_PAIR_GEN),
            &[
                Attribute::new(CKA_EC_PARAMS, params),
                Attribute::from_bool(CKA_TOKEN, true),
                Attribute::new(CKA_LABEL, b"other".to_vec()),
            ],
            &[Attribute::from_bool(CKA_TOKEN, true)],
        )
        .unwrap();
    sign(&a, sa, CKM_ECDSA_SHA256, first, b"cached");
    sign(&a, sa, CKM_ECDSA_SHA256, second, b"cached");

    // Process B destroys the first key and forbids signing with the second.
    let b = open();
    let sb = b
        .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)
        .unwrap();
    b.login(sb, CKU_USER, Some(USER_PIN)).unwrap();
    let access = b.access(sb).unwrap();
    let privates = b
        .find(
            &access,
            &[Attribute::from_ulong(CKA_CLASS, CKO_PRIVATE_KEY)],
        )
        .unwrap();
    let by_label = |label: &[u8]| {
        privates
            .iter()
            .copied()
            .find(|h| b.objects.get(*h).unwrap().unwrap().attrs.get(CKA_LABEL) == Some(label))
            .unwrap()
    };
    let (b_first, b_second) = (by_label(b"ec"), by_label(b"other"));
    b.destroy_object(sb, b_first).unwrap();
    b.set_attribute_value(sb, b_second, &[Attribute::from_bool(CKA_SIGN, false)])
        .unwrap();

    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(
        rv(a.sign_init(sa, &Mechanism::new(CKM_ECDSA), first)),
        Rv::KEY_HANDLE_INVALID
    );
    assert_eq!(
        rv(a.sign_init(sa, &Mechanism::new(CKM_ECDSA), second)),
        Rv::KEY_FUNCTION_NOT_PERMITTED
    );
}

#[test]
fn wrap_unwrap_and_derive() {
    let (m, session) = ready();
    let aes = |extra: &[Attribute]| {
        let mut template = vec![Attribute::from_ulong(CKA_VALUE_LEN, 32)];
        template.extend_from_slice(extra);
        m.generate_key(session, &Mechanism::new(CKM_AES_KEY_GEN), &template)
            .unwrap()
    };
    // A key that wraps sensitive keys may not decrypt (it would decrypt its wrappings).
    let kek = aes(&[Attribute::from_bool(CKA_DECRYPT, false)]);
    let target = aes(&[Attribute::from_bool(CKA_EXTRACTABLE, true)]);
    let locked = aes(&[]);
    let kw = Mechanism::new(CKM_AES_KEY_WRAP);
    let mut query = OutBuf::query();
    let decrypting = aes(&[]);
    assert_eq!(
        rv(m.wrap_key(session, &kw, decrypting, target, &mut query)),
        Rv::KEY_NOT_WRAPPABLE
    );
    m.wrap_key(session, &kw, kek, target, &mut query).unwrap();
    assert_eq!(query.len(), 40, "RFC 3394 adds 8 bytes");
    let mut wrapped = vec![0u8; 40];
    let mut out = OutBuf::buffer(&mut wrapped);
    m.wrap_key(session, &kw, kek, target, &mut out).unwrap();
    let mut sink = OutBuf::query();
    assert_eq!(
        rv(m.wrap_key(session, &kw, kek, locked, &mut sink)),
        Rv::KEY_UNEXTRACTABLE
    );

    let template = [
        Attribute::from_ulong(CKA_CLASS, CKO_SECRET_KEY),
        Attribute::from_ulong(CKA_KEY_TYPE, CKK_AES),
        Attribute::new(CKA_LABEL, b"unwrapped".to_vec()),
    ];
    let unwrapped = m
        .unwrap_key(session, &kw, kek, &wrapped, &template)
        .unwrap();
    assert_eq!(
        read(&m, session, unwrapped, CKA_CHECK_VALUE),
        read(&m, session, target, CKA_CHECK_VALUE)
    );
    assert!(!m
        .objects
        .get(unwrapped)
        .unwrap()
        .unwrap()
        .attrs
        .flag(CKA_LOCAL));
    wrapped[5] ^= 1;
    assert_eq!(
        rv(m.unwrap_key(session, &kw, kek, &wrapped, &template)),
        Rv::WRAPPED_KEY_INVALID
    );

    // ECDH: each side derives from its private key and the other's public point.
    let derive_flag = [Attribute::from_bool(CKA_DERIVE, true)];
    let (a_pub, a_priv) = ec_pair(&m, session, false, &derive_flag);
    let (b_pub, b_priv) = ec_pair(&m, session, false, &derive_flag);
    let derive = |private, peer_public| {
        let point = read(&m, session, peer_public, CKA_EC_POINT);
        let mechanism = Mechanism {
            kind: CKM_ECDH1_DERIVE,
            param: crate::types::MechanismParam::Ecdh {
                kdf: CKD_SHA256_KDF,
                shared_data: Vec::new(),
                public_data: point,
            },
        };
        let template = [
            Attribute::from_ulong(CKA_KEY_TYPE, CKK_AES),
            Attribute::from_ulong(CKA_VALUE_LEN, 32),
        ];
        m.derive_key(session, &mechanism, private, &template)
            .unwrap()
            .0
    };
    let ab = derive(a_priv, b_pub);
    let ba = derive(b_priv, a_pub);
    assert_eq!(
        read(&m, session, ab, CKA_CHECK_VALUE),
        read(&m, session, ba, CKA_CHECK_VALUE)
    );
}

#[test]
fn key_status_governs_every_operation_and_enters_the_history() {
    use crate::vendor::{CKA_SQLHSM_EXPIRATION, CKA_SQLHSM_KEY_ID, CKA_SQLHSM_KEY_STATUS};
    let (m, session) = ready();
    let (public, private) = ec_pair(&m, session, true, &[]);
    let signature = sign(&m, session, CKM_ECDSA_SHA256, private, b"data");
    let set_status = |status: CK_ULONG| {
        m.set_attribute_value(
            session,
            private,
            &[Attribute::from_ulong(CKA_SQLHSM_KEY_STATUS, status)],
        )
    };
    let can_sign = || {
        m.sign_init(session, &Mechanism::new(CKM_ECDSA_SHA256), private)
            .map(|_| m.sign_final(session, &mut OutBuf::query()))
    };
    let can_verify = || {
        m.verify_init(session, &Mechanism::new(CKM_ECDSA_SHA256), public)?;
        m.verify(session, b"data", &signature)
    };

    // Inactive: old data stays readable, nothing new is protected.
    set_status(2).unwrap();
    assert_eq!(rv(can_sign()), Rv::KEY_FUNCTION_NOT_PERMITTED);
    can_verify().unwrap();
    let status = read(&m, session, public, CKA_SQLHSM_KEY_STATUS);
    assert_eq!(
        status,
        2u64.to_ne_bytes(),
        "both halves share the row's status"
    );
    set_status(1).unwrap();
    sign(&m, session, CKM_ECDSA_SHA256, private, b"again");

    // A status change made after C_SignInit is caught before the single-part call.
    m.sign_init(session, &Mechanism::new(CKM_ECDSA_SHA256), private)
        .unwrap();
    set_status(2).unwrap();
    let mut out = [0u8; 64];
    assert_eq!(
        rv(m.sign(session, b"late", &mut OutBuf::buffer(&mut out))),
        Rv::KEY_FUNCTION_NOT_PERMITTED
    );
    set_status(1).unwrap();

    // An expiration in the past: Expired, even though nobody updated the status.
    let past = (chrono::Utc::now().timestamp() - 10) as CK_ULONG;
    m.set_attribute_value(
        session,
        private,
        &[Attribute::from_ulong(CKA_SQLHSM_EXPIRATION, past)],
    )
    .unwrap();
    assert_eq!(
        read(&m, session, private, CKA_SQLHSM_KEY_STATUS),
        4u64.to_ne_bytes()
    );
    assert_eq!(rv(can_sign()), Rv::KEY_FUNCTION_NOT_PERMITTED);
    can_verify().unwrap();
    assert!(
        !read(&m, session, private, CKA_END_DATE).is_empty(),
        "CKA_END_DATE follows the expiration"
    );
    // Only the SO may bring it back with a future expiration; the user may not.
    let future = (chrono::Utc::now().timestamp() + 3600) as CK_ULONG;
    assert_eq!(
        rv(m.set_attribute_value(
            session,
            private,
            &[Attribute::from_ulong(CKA_SQLHSM_EXPIRATION, future)]
        )),
        Rv::ATTRIBUTE_VALUE_INVALID
    );
    assert_eq!(rv(set_status(1)), Rv::ATTRIBUTE_VALUE_INVALID);

    // Compromised: nothing at all, and for good.
    set_status(3).unwrap();
    assert_eq!(rv(can_sign()), Rv::KEY_FUNCTION_NOT_PERMITTED);
    assert_eq!(rv(can_verify()), Rv::KEY_FUNCTION_NOT_PERMITTED);
    assert_eq!(rv(set_status(1)), Rv::ATTRIBUTE_VALUE_INVALID);

    // Searchable by status, through the index.
    let access = m.access(session).unwrap();
    let compromised = m
        .find(&access, &[Attribute::from_ulong(CKA_SQLHSM_KEY_STATUS, 3)])
        .unwrap();
    assert_eq!(compromised, vec![public, private]);
    assert!(m
        .find(&access, &[Attribute::from_ulong(CKA_SQLHSM_KEY_STATUS, 1)])
        .unwrap()
        .is_empty());

    let key_id = String::from_utf8(read(&m, session, private, CKA_SQLHSM_KEY_ID)).unwrap();
    m.destroy_object(session, private).unwrap();
    m.destroy_object(session, public).unwrap();
    let history: Vec<String> = m
        .storage
        .key_events(&key_id)
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(history.first().map(String::as_str), Some("generated"));
    assert!(
        history.iter().filter(|e| *e == "status").count() >= 5,
        "{history:?}"
    );
    assert!(history.contains(&"expiration".to_string()), "{history:?}");
    assert_eq!(
        history.iter().filter(|e| *e == "destroyed").count(),
        2,
        "{history:?}"
    );
    assert!(m
        .storage
        .key_events(&key_id)
        .unwrap()
        .iter()
        .all(|e| e.actor.starts_with("pkcs11:")));
}

#[test]
fn an_expiration_reached_after_sign_init_is_caught_before_sign() {
    use crate::vendor::CKA_SQLHSM_EXPIRATION;
    let (m, session) = ready();
    let (_, private) = ec_pair(&m, session, true, &[]);
    // Expires at the start of a second at least 1 s away: the check at C_SignInit passes, and
    // nothing in the table changes before C_Sign — only time passes.
    let expires = chrono::Utc::now().timestamp() + 2;
    m.set_attribute_value(
        session,
        private,
        &[Attribute::from_ulong(
            CKA_SQLHSM_EXPIRATION,
            expires as CK_ULONG,
        )],
    )
    .unwrap();
    m.sign_init(session, &Mechanism::new(CKM_ECDSA_SHA256), private)
        .unwrap();
    while chrono::Utc::now().timestamp() < expires {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut out = [0u8; 64];
    assert_eq!(
        rv(m.sign(session, b"late", &mut OutBuf::buffer(&mut out))),
        Rv::KEY_FUNCTION_NOT_PERMITTED,
        "the key expired between C_SignInit and C_Sign"
    );
}

#[test]
fn rotation_retires_the_predecessor_and_links_both() {
    use crate::vendor::{
        CKA_SQLHSM_KEY_ID, CKA_SQLHSM_KEY_STATUS, CKA_SQLHSM_ROTATED_FROM, CKA_SQLHSM_ROTATED_TO,
    };
    let (m, session) = ready();
    let (old_public, old_private) = ec_pair(&m, session, true, &[]);
    let old_id = read(&m, session, old_private, CKA_SQLHSM_KEY_ID);
    let successor = m
        .rotate_key(
            session,
            old_private,
            &super::rotation::RotateOptions::default(),
        )
        .unwrap();
    let [new_public, new_private] = successor[..] else {
        panic!("a pair: {successor:?}")
    };
    let new_id = read(&m, session, new_private, CKA_SQLHSM_KEY_ID);
    assert_ne!(new_id, old_id);
    assert_eq!(
        read(&m, session, new_private, CKA_SQLHSM_KEY_STATUS),
        1u64.to_ne_bytes()
    );
    assert_eq!(
        read(&m, session, old_private, CKA_SQLHSM_KEY_STATUS),
        2u64.to_ne_bytes(),
        "the predecessor is Inactive"
    );
    assert_eq!(read(&m, session, old_public, CKA_SQLHSM_ROTATED_TO), new_id);
    assert_eq!(
        read(&m, session, new_public, CKA_SQLHSM_ROTATED_FROM),
        old_id
    );
    // The successor takes the label; the predecessor gives it up for `<label>@<key_id>`.
    let new_label = read(&m, session, new_private, CKA_LABEL);
    assert_eq!(new_label, b"ec");
    assert_eq!(
        read(&m, session, old_private, CKA_LABEL),
        [&new_label[..], b"@", &old_id].concat()
    );
    assert_eq!(
        read(&m, session, new_public, CKA_EC_PARAMS),
        read(&m, session, old_public, CKA_EC_PARAMS)
    );
    assert_eq!(
        rv(m.sign_init(session, &Mechanism::new(CKM_ECDSA), old_private)),
        Rv::KEY_FUNCTION_NOT_PERMITTED
    );
    sign(
        &m,
        session,
        CKM_ECDSA_SHA256,
        new_private,
        b"from the successor",
    );
    let old_history: Vec<String> = m
        .storage
        .key_events(&String::from_utf8(old_id.clone()).unwrap())
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(old_history, vec!["generated", "rotated"]);

    // Through PKCS#11 alone: a generation naming the key it replaces, here a secret key.
    let aes = m
        .generate_key(
            session,
            &Mechanism::new(CKM_AES_KEY_GEN),
            &[
                Attribute::from_ulong(CKA_VALUE_LEN, 32),
                Attribute::from_bool(CKA_TOKEN, true),
            ],
        )
        .unwrap();
    let aes_id = read(&m, session, aes, CKA_SQLHSM_KEY_ID);
    let template = [
        Attribute::from_ulong(CKA_VALUE_LEN, 32),
        Attribute::from_bool(CKA_TOKEN, true),
        Attribute::new(CKA_SQLHSM_ROTATED_FROM, aes_id.clone()),
    ];
    let next = m
        .generate_key(session, &Mechanism::new(CKM_AES_KEY_GEN), &template)
        .unwrap();
    assert_eq!(read(&m, session, next, CKA_SQLHSM_ROTATED_FROM), aes_id);
    assert_eq!(
        read(&m, session, aes, CKA_SQLHSM_KEY_STATUS),
        2u64.to_ne_bytes()
    );
    // Relabelling a key keeps its rotation links (they sit beside the attributes in the row).
    let new_label = [Attribute::new(CKA_LABEL, b"relabelled".to_vec())];
    m.set_attribute_value(session, next, &new_label).unwrap();
    m.set_attribute_value(session, new_private, &new_label)
        .unwrap();
    m.objects.mark_token_objects_stale().unwrap();
    assert_eq!(read(&m, session, next, CKA_SQLHSM_ROTATED_FROM), aes_id);
    assert_eq!(
        read(&m, session, new_private, CKA_SQLHSM_ROTATED_FROM),
        old_id
    );
    assert_eq!(read(&m, session, new_public, CKA_LABEL), b"relabelled");

    // Options name the successor: the predecessor keeps the name the successor does not take.
    let options = super::rotation::RotateOptions {
        label: Some(b"ec-next".to_vec()),
        id: None,
    };
    let third = m.rotate_key(session, new_private, &options).unwrap();
    let [third_public, third_private] = third[..] else {
        panic!("a pair: {third:?}")
    };
    for handle in [third_public, third_private] {
        assert_eq!(read(&m, session, handle, CKA_LABEL), b"ec-next");
        assert_eq!(read(&m, session, handle, CKA_ID), b"ec-1");
    }
    assert_eq!(read(&m, session, new_private, CKA_LABEL), b"relabelled");
    assert_eq!(
        read(&m, session, new_private, CKA_ID),
        [&b"ec-1@"[..], &new_id].concat()
    );
    let options = super::rotation::RotateOptions {
        label: None,
        id: Some(vec![9]),
    };
    let fourth = m.rotate_key(session, next, &options).unwrap();
    assert_eq!(read(&m, session, fourth[0], CKA_ID), [9]);
    assert_eq!(read(&m, session, next, CKA_ID), b"");
    assert_eq!(
        read(&m, session, next, CKA_LABEL),
        [
            &b"relabelled@"[..],
            &read(&m, session, next, CKA_SQLHSM_KEY_ID)
        ]
        .concat()
    );
    // A successor must be a token key of the same kind.
    let wrong_kind = [
        Attribute::new(CKA_SQLHSM_ROTATED_FROM, aes_id),
        Attribute::from_bool(CKA_TOKEN, true),
    ];
    let params = crate::key_algorithm::EC_P256.params_der.to_vec();
    assert!(m
        .generate_key_pair(
            session,
            &Mechanism::new(CKM_EC_KEY_PAIR_GEN),
            &[
                Attribute::new(CKA_EC_PARAMS, params),
                Attribute::from_bool(CKA_TOKEN, true)
            ],
            &wrong_kind
        )
        .is_err());
}

#[test]
fn rotating_a_secret_key_makes_its_successor_with_the_keys_own_mechanism() {
    use crate::vendor::CKA_SQLHSM_KEY_STATUS;
    let (m, session) = ready();
    for (mechanism, key_type) in [
        (CKM_AES_KEY_GEN, CKK_AES),
        (CKM_GENERIC_SECRET_KEY_GEN, CKK_GENERIC_SECRET),
        (CKM_SHA384_KEY_GEN, CKK_SHA384_HMAC),
        (CKM_SHA3_256_KEY_GEN, CKK_SHA3_256_HMAC),
    ] {
        let key = m
            .generate_key(
                session,
                &Mechanism::new(mechanism),
                &[
                    Attribute::from_ulong(CKA_VALUE_LEN, 32),
                    Attribute::from_bool(CKA_TOKEN, true),
                ],
            )
            .unwrap();
        let successor = m
            .rotate_key(session, key, &super::rotation::RotateOptions::default())
            .unwrap();
        let [next] = successor[..] else {
            panic!("one secret key: {successor:?}")
        };
        assert_eq!(
            read(&m, session, next, CKA_KEY_TYPE),
            key_type.to_ne_bytes()
        );
        assert_eq!(
            read(&m, session, next, CKA_KEY_GEN_MECHANISM),
            mechanism.to_ne_bytes()
        );
        assert_eq!(read(&m, session, next, CKA_VALUE_LEN), 32u64.to_ne_bytes());
        assert_eq!(
            read(&m, session, key, CKA_SQLHSM_KEY_STATUS),
            2u64.to_ne_bytes()
        );
    }
}

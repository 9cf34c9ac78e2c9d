//! Post-quantum keys through the C ABI (PKCS#11 3.2 §6.67 ML-KEM, §6.68 ML-DSA, §6.69 SLH-DSA):
//! `C_GenerateKeyPair` for every parameter set, mechanism info, `C_CreateObject` of public keys
//! and of private keys from the seed, the expanded key or both, the attributes they show
//! (`CKA_PARAMETER_SET`, `CKA_VALUE`, `CKA_SEED` under the sensitivity rules,
//! `CKA_PUBLIC_KEY_INFO` with NIST's OIDs), how the private key is sealed and wrapped, and
//! rotation.
//!
//! Keys from seeds are checked against Project Wycheproof (`tests/data/wycheproof/`):
//! `mlkem_768_keygen_seed_test.json` (seed d‖z → ek, dk) and the keys of the three
//! `mldsa_*_sign_seed_test.json` files (seed ξ → pk; seeds of a wrong length refused). The
//! signatures in those files are for the signing tests; here only their keys are used.

mod common;

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{
    Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle, ParameterSetType,
};
use cryptoki::session::Session;
use cryptoki::types::Ulong;
use serde_json::Value;

use common::*;

const CKA_SQLHSM_ROTATED_FROM: u64 = 0x8000_0000 | 0x5351_0006;

fn session(label: &str) -> Session {
    let p = ctx();
    let slot = new_token(p, label);
    user_session(p, slot)
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn load(file: &str) -> Value {
    let path = format!(
        "{}/tests/data/wycheproof/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read vectors")).expect("json")
}

fn set(value: u64) -> Attribute {
    Attribute::ParameterSet(ParameterSetType::try_from(Ulong::from(value)).expect("set"))
}

/// One parameter set: key type, generation mechanism, `CKP_*`, `key_algorithm`, public key
/// length, expanded private key length, seed length, last arcs of the OID.
struct Set {
    name: &'static str,
    key_type: KeyType,
    set: u64,
    code: u64,
    public_len: usize,
    private_len: usize,
    seed_len: usize,
    oid_arcs: [u8; 2],
}

const fn kem(name: &'static str, set: u64, code: u64, lens: (usize, usize), arc: u8) -> Set {
    Set {
        name,
        key_type: KeyType::ML_KEM,
        set,
        code,
        public_len: lens.0,
        private_len: lens.1,
        seed_len: 64,
        oid_arcs: [4, arc],
    }
}

const fn dsa(name: &'static str, set: u64, code: u64, lens: (usize, usize), arc: u8) -> Set {
    Set {
        name,
        key_type: KeyType::ML_DSA,
        set,
        code,
        public_len: lens.0,
        private_len: lens.1,
        seed_len: 32,
        oid_arcs: [3, arc],
    }
}

const fn slh(name: &'static str, set: u64, code: u64, n: usize, arc: u8) -> Set {
    Set {
        name,
        key_type: KeyType::SLH_DSA,
        set,
        code,
        public_len: 2 * n,
        private_len: 4 * n,
        seed_len: 3 * n,
        oid_arcs: [3, arc],
    }
}

/// FIPS 203 Table 3, FIPS 204 Table 2, FIPS 205 Table 2; `CKP_*` of PKCS#11 3.2; OIDs from
/// NIST's register (2.16.840.1.101.3.4.4.1–3 and .3.17–31).
static SETS: [Set; 18] = [
    kem("ML-KEM-512", 1, 113, (800, 1632), 1),
    kem("ML-KEM-768", 2, 20, (1184, 2400), 2),
    kem("ML-KEM-1024", 3, 21, (1568, 3168), 3),
    dsa("ML-DSA-44", 1, 114, (1312, 2560), 17),
    dsa("ML-DSA-65", 2, 115, (1952, 4032), 18),
    dsa("ML-DSA-87", 3, 116, (2592, 4896), 19),
    slh("SLH-DSA-SHA2-128s", 1, 117, 16, 20),
    slh("SLH-DSA-SHA2-128f", 3, 118, 16, 21),
    slh("SLH-DSA-SHA2-192s", 5, 119, 24, 22),
    slh("SLH-DSA-SHA2-192f", 7, 120, 24, 23),
    slh("SLH-DSA-SHA2-256s", 9, 121, 32, 24),
    slh("SLH-DSA-SHA2-256f", 11, 122, 32, 25),
    slh("SLH-DSA-SHAKE-128s", 2, 123, 16, 26),
    slh("SLH-DSA-SHAKE-128f", 4, 124, 16, 27),
    slh("SLH-DSA-SHAKE-192s", 6, 125, 24, 28),
    slh("SLH-DSA-SHAKE-192f", 8, 126, 24, 29),
    slh("SLH-DSA-SHAKE-256s", 10, 127, 32, 30),
    slh("SLH-DSA-SHAKE-256f", 12, 128, 32, 31),
];

fn by_name(name: &str) -> &'static Set {
    SETS.iter().find(|s| s.name == name).expect("parameter set")
}

impl Set {
    /// The DER of the parameter set's OID.
    fn oid(&self) -> Vec<u8> {
        let mut der = vec![0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04];
        der.extend_from_slice(&self.oid_arcs);
        der
    }

    fn generation(&self) -> Mechanism<'static> {
        match self.key_type {
            KeyType::ML_KEM => Mechanism::MlKemKeyPairGen,
            KeyType::ML_DSA => Mechanism::MlDsaKeyPairGen,
            _ => Mechanism::SlhDsaKeyPairGen,
        }
    }

    fn is_kem(&self) -> bool {
        self.key_type == KeyType::ML_KEM
    }
}

fn ulong(s: &Session, o: ObjectHandle, t: AttributeType) -> u64 {
    match get_attr(s, o, t) {
        Attribute::ParameterSet(v) => **v,
        Attribute::KeyType(v) => *v,
        other => panic!("{t:?}: {other:?}"),
    }
}

fn rv(e: Error) -> RvError {
    match e {
        Error::Pkcs11(rv, _) => rv,
        other => panic!("not a PKCS#11 error: {other}"),
    }
}

/// The raw public key an SPKI ends in (its BIT STRING's content after the unused-bits byte).
fn spki_holds(spki: &[u8], oid: &[u8], public: &[u8]) -> bool {
    spki.ends_with(public) && spki.windows(oid.len()).any(|w| w == oid)
}

fn generate(
    s: &Session,
    p: &Set,
    label: &str,
    token: bool,
    private_extra: &[Attribute],
) -> cryptoki::error::Result<(ObjectHandle, ObjectHandle)> {
    let public = vec![
        Attribute::Token(token),
        Attribute::Label(label.as_bytes().to_vec()),
        set(p.set),
    ];
    let mut private = vec![
        Attribute::Token(token),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Private(true),
    ];
    private.extend_from_slice(private_extra);
    s.generate_key_pair(&p.generation(), &public, &private)
}

#[test]
fn every_parameter_set_generates_with_its_attributes() {
    let s = session("pq-generate");
    for p in &SETS {
        let (public, private) = generate(&s, p, p.name, true, &[]).expect(p.name);
        for o in [public, private] {
            assert_eq!(
                ulong(&s, o, AttributeType::KeyType),
                *p.key_type,
                "{}",
                p.name
            );
            assert_eq!(
                ulong(&s, o, AttributeType::ParameterSet),
                p.set,
                "{}",
                p.name
            );
            assert_eq!(get_ulong_vendor(&s, o, CKA_SQLHSM_KEY_ALGORITHM), p.code);
        }
        let value = bytes(&s, public, AttributeType::Value);
        assert_eq!(value.len(), p.public_len, "{}", p.name);
        for o in [public, private] {
            let spki = bytes(&s, o, AttributeType::PublicKeyInfo);
            assert!(spki_holds(&spki, &p.oid(), &value), "{}: SPKI", p.name);
        }
        // OpenSSL reads the SPKI as the same key.
        let spki = bytes(&s, public, AttributeType::PublicKeyInfo);
        let key = openssl::pkey::PKey::public_key_from_der(&spki).expect("SPKI parses");
        assert_eq!(key.raw_public_key().expect("raw"), value, "{}", p.name);
        // The private values are sensitive: a generated key is sensitive and unextractable.
        for t in [AttributeType::Value, AttributeType::Seed] {
            let answer = raw_bytes(&s, private, t);
            assert_eq!(
                answer,
                Err(cryptoki_sys::CKR_ATTRIBUTE_SENSITIVE),
                "{}",
                p.name
            );
        }
        // KEM keys encapsulate and decapsulate by default; the others have no such attribute.
        for (o, t) in [
            (public, AttributeType::Encapsulate),
            (private, AttributeType::Decapsulate),
        ] {
            match s.get_attributes(o, &[t]).expect("usage") {
                v if !p.is_kem() => assert!(v.is_empty(), "{}: {v:?}", p.name),
                v => assert!(
                    matches!(
                        v[..],
                        [Attribute::Encapsulate(true)] | [Attribute::Decapsulate(true)]
                    ),
                    "{}: {v:?}",
                    p.name
                ),
            }
        }
        assert_eq!(
            get_attr(&s, private, AttributeType::KeyGenMechanism),
            Attribute::KeyGenMechanism(p.generation().mechanism_type())
        );
    }
}

#[test]
fn private_values_follow_the_sensitivity_rules() {
    let s = session("pq-sensitive");
    let p = by_name("ML-DSA-65");
    let (_, private) = generate(&s, p, "sensitive", false, &[]).expect("generate");
    for t in [AttributeType::Value, AttributeType::Seed] {
        let raw = raw_bytes(&s, private, t);
        assert_eq!(raw, Err(cryptoki_sys::CKR_ATTRIBUTE_SENSITIVE), "{t:?}");
    }
    // Extractable and not sensitive: both readable, and they make the same key again.
    let readable = [Attribute::Sensitive(false), Attribute::Extractable(true)];
    let (public, private) = generate(&s, p, "readable", false, &readable).expect("generate");
    let seed = bytes(&s, private, AttributeType::Seed);
    let expanded = bytes(&s, private, AttributeType::Value);
    assert_eq!((seed.len(), expanded.len()), (p.seed_len, p.private_len));
    let again = import_private(&s, p, Some(&seed), Some(&expanded)).expect("seed and value");
    assert_eq!(
        bytes(&s, again, AttributeType::PublicKeyInfo),
        bytes(&s, public, AttributeType::PublicKeyInfo)
    );
    // Sensitive once more, never readable again (CKA_SENSITIVE only turns on).
    s.update_attributes(private, &[Attribute::Sensitive(true)])
        .expect("set sensitive");
    let raw = raw_bytes(&s, private, AttributeType::Seed);
    assert_eq!(raw, Err(cryptoki_sys::CKR_ATTRIBUTE_SENSITIVE));
}

/// A byte-string attribute (`CKA_VALUE`, `CKA_SEED`, `CKA_PUBLIC_KEY_INFO`).
fn bytes(s: &Session, o: ObjectHandle, t: AttributeType) -> Vec<u8> {
    match get_attr(s, o, t) {
        Attribute::Value(b) | Attribute::Seed(b) | Attribute::PublicKeyInfo(b) => b,
        other => panic!("not a byte attribute: {other:?}"),
    }
}

/// `C_GetAttributeValue` of one attribute: its value, or the `CKR_*` the module answered
/// (cryptoki's `get_attributes` drops an unavailable attribute without saying why).
fn raw_bytes(s: &Session, o: ObjectHandle, t: AttributeType) -> Result<Vec<u8>, u64> {
    let mut a = cryptoki_sys::CK_ATTRIBUTE {
        type_: t.into(),
        pValue: std::ptr::null_mut(),
        ulValueLen: 0,
    };
    // SAFETY: a length query: no buffer, one attribute.
    let rv = unsafe { raw().C_GetAttributeValue(s.handle(), o.handle(), &mut a, 1) };
    if rv != cryptoki_sys::CKR_OK {
        return Err(rv);
    }
    Ok(bytes(s, o, t))
}

#[test]
fn mechanism_info_gives_public_key_bytes() {
    let p = ctx();
    let slot = new_token(p, "pq-info");
    for (mechanism, min, max) in [
        (MechanismType::ML_KEM_KEY_PAIR_GEN, 800, 1568),
        (MechanismType::ML_DSA_KEY_PAIR_GEN, 1312, 2592),
        (MechanismType::SLH_DSA_KEY_PAIR_GEN, 32, 64),
    ] {
        assert!(p
            .get_mechanism_list(slot)
            .expect("list")
            .contains(&mechanism));
        let info = p.get_mechanism_info(slot, mechanism).expect("info");
        assert_eq!((info.min_key_size(), info.max_key_size()), (min, max));
        assert!(info.generate_key_pair(), "{mechanism}");
        assert!(!info.sign() && !info.encapsulate(), "{mechanism}");
    }
}

#[test]
fn generation_needs_a_supported_parameter_set() {
    let s = session("pq-sets");
    let private = [Attribute::Token(false)];
    let err = s
        .generate_key_pair(
            &Mechanism::MlDsaKeyPairGen,
            &[Attribute::Token(false)],
            &private,
        )
        .unwrap_err();
    assert_eq!(rv(err), RvError::TemplateIncomplete);
    let err = s
        .generate_key_pair(&Mechanism::MlKemKeyPairGen, &[set(4)], &private)
        .unwrap_err();
    assert_eq!(
        rv(err),
        RvError::UnknownErrorCode(cryptoki_sys::CKR_PARAMETER_SET_NOT_SUPPORTED)
    );
    // A private template may repeat the set, not contradict it.
    let p = by_name("ML-KEM-512");
    let ok = generate(&s, p, "repeat", false, &[set(p.set)]);
    assert!(ok.is_ok(), "{ok:?}");
    let err = generate(&s, p, "contradict", false, &[set(3)]).unwrap_err();
    assert_eq!(rv(err), RvError::TemplateInconsistent);
}

fn import_private(
    s: &Session,
    p: &Set,
    seed: Option<&[u8]>,
    expanded: Option<&[u8]>,
) -> cryptoki::error::Result<ObjectHandle> {
    let mut template = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(p.key_type),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        set(p.set),
    ];
    if let Some(seed) = seed {
        template.push(Attribute::Seed(seed.to_vec()));
    }
    if let Some(expanded) = expanded {
        template.push(Attribute::Value(expanded.to_vec()));
    }
    s.create_object(&template)
}

fn import_public(s: &Session, p: &Set, value: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
    s.create_object(&[
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(p.key_type),
        Attribute::Token(false),
        set(p.set),
        Attribute::Value(value.to_vec()),
    ])
}

#[test]
fn ml_kem_768_keys_from_wycheproof_seeds() {
    let s = session("pq-mlkem-seeds");
    let p = by_name("ML-KEM-768");
    let doc = load("mlkem_768_keygen_seed_test.json");
    let mut checked = 0;
    for group in doc["testGroups"].as_array().expect("groups") {
        assert_eq!(group["parameterSet"], "ML-KEM-768");
        for tc in group["tests"].as_array().expect("tests") {
            let id = &tc["tcId"];
            let (seed, ek, dk) = (hx(&tc["seed"]), hx(&tc["ek"]), hx(&tc["dk"]));
            assert_eq!(tc["result"], "valid", "{id}");
            let from_seed = import_private(&s, p, Some(&seed), None).expect("from seed");
            let spki = bytes(&s, from_seed, AttributeType::PublicKeyInfo);
            assert!(spki_holds(&spki, &p.oid(), &ek), "tcId {id}: ek");
            assert_eq!(bytes(&s, from_seed, AttributeType::Value), dk, "tcId {id}");
            assert_eq!(bytes(&s, from_seed, AttributeType::Seed), seed, "tcId {id}");
            // The expanded form alone: the same key, without a seed.
            let from_dk = import_private(&s, p, None, Some(&dk)).expect("from dk");
            let spki = bytes(&s, from_dk, AttributeType::PublicKeyInfo);
            assert!(spki_holds(&spki, &p.oid(), &ek), "tcId {id}: ek from dk");
            assert_eq!(
                raw_bytes(&s, from_dk, AttributeType::Seed),
                Err(cryptoki_sys::CKR_ATTRIBUTE_TYPE_INVALID)
            );
            // Both, agreeing.
            import_private(&s, p, Some(&seed), Some(&dk)).expect("seed and dk");
            // The public key alone.
            let public = import_public(&s, p, &ek).expect("ek");
            assert_eq!(bytes(&s, public, AttributeType::Value), ek);
            for o in [from_seed, from_dk, public] {
                s.destroy_object(o).expect("destroy");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 100);
}

#[test]
fn ml_dsa_keys_from_wycheproof_seeds() {
    let s = session("pq-mldsa-seeds");
    for (file, name) in [
        ("mldsa_44_sign_seed_test.json", "ML-DSA-44"),
        ("mldsa_65_sign_seed_test.json", "ML-DSA-65"),
        ("mldsa_87_sign_seed_test.json", "ML-DSA-87"),
    ] {
        let p = by_name(name);
        let doc = load(file);
        let (mut derived, mut refused) = (0, 0);
        for group in doc["testGroups"].as_array().expect("groups") {
            let seed = hx(&group["privateSeed"]);
            match &group["publicKey"] {
                Value::Null => {
                    // The lengths groups: a seed of the wrong length is no ML-DSA key.
                    assert_ne!(seed.len(), 32, "{file}");
                    let err = import_private(&s, p, Some(&seed), None).unwrap_err();
                    assert_eq!(rv(err), RvError::AttributeValueInvalid, "{file}");
                    refused += 1;
                }
                pk => {
                    let pk = hx(pk);
                    let key = import_private(&s, p, Some(&seed), None).expect(file);
                    let spki = bytes(&s, key, AttributeType::PublicKeyInfo);
                    assert!(
                        spki_holds(&spki, &p.oid(), &pk),
                        "{file}: {}",
                        group["source"]
                    );
                    // The expanded key it shows builds the same key, and agrees with the seed.
                    let expanded = bytes(&s, key, AttributeType::Value);
                    assert_eq!(expanded.len(), p.private_len);
                    let again = import_private(&s, p, None, Some(&expanded)).expect("expanded");
                    assert_eq!(bytes(&s, again, AttributeType::PublicKeyInfo), spki);
                    let both = import_private(&s, p, Some(&seed), Some(&expanded)).expect("both");
                    for o in [key, again, both] {
                        s.destroy_object(o).expect("destroy");
                    }
                    derived += 1;
                }
            }
        }
        assert!(
            derived >= 20 && refused >= 1,
            "{file}: {derived} derived, {refused} refused"
        );
    }
}

#[test]
fn seed_and_expanded_key_must_agree() {
    let s = session("pq-disagree");
    for name in ["ML-KEM-512", "ML-DSA-44", "SLH-DSA-SHAKE-128f"] {
        let p = by_name(name);
        let readable = [Attribute::Sensitive(false), Attribute::Extractable(true)];
        let (_, a) = generate(&s, p, "a", false, &readable).expect("a");
        let (_, b) = generate(&s, p, "b", false, &readable).expect("b");
        let seed_a = bytes(&s, a, AttributeType::Seed);
        let expanded_b = bytes(&s, b, AttributeType::Value);
        let err = import_private(&s, p, Some(&seed_a), Some(&expanded_b)).unwrap_err();
        assert_eq!(rv(err), RvError::AttributeValueInvalid, "{name}");
        // Neither form at all; wrong lengths of each.
        let err = import_private(&s, p, None, None).unwrap_err();
        assert_eq!(rv(err), RvError::TemplateIncomplete, "{name}");
        let err = import_private(&s, p, Some(&seed_a[1..]), None).unwrap_err();
        assert_eq!(rv(err), RvError::AttributeValueInvalid, "{name}");
        let err = import_private(&s, p, None, Some(&expanded_b[1..])).unwrap_err();
        assert_eq!(rv(err), RvError::AttributeValueInvalid, "{name}");
        // The expanded form of a SLH-DSA key holds its seed: one comes back.
        if p.key_type == KeyType::SLH_DSA {
            let key = import_private(&s, p, None, Some(&expanded_b)).expect("expanded");
            let seed = bytes(&s, key, AttributeType::Seed);
            assert_eq!(seed, expanded_b[..p.seed_len]);
        }
    }
}

#[test]
fn public_keys_import_by_parameter_set() {
    let s = session("pq-public");
    for name in ["ML-KEM-1024", "ML-DSA-87", "SLH-DSA-SHA2-192s"] {
        let p = by_name(name);
        let (public, _) = generate(&s, p, name, false, &[]).expect("generate");
        let value = bytes(&s, public, AttributeType::Value);
        let imported = import_public(&s, p, &value).expect("import");
        assert_eq!(ulong(&s, imported, AttributeType::ParameterSet), p.set);
        assert_eq!(
            bytes(&s, imported, AttributeType::PublicKeyInfo),
            bytes(&s, public, AttributeType::PublicKeyInfo)
        );
        let err = import_public(&s, p, &value[1..]).unwrap_err();
        assert_eq!(rv(err), RvError::AttributeValueInvalid, "{name}");
        let err = s
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(p.key_type),
                Attribute::Token(false),
                Attribute::Value(value.clone()),
            ])
            .unwrap_err();
        assert_eq!(rv(err), RvError::TemplateIncomplete, "{name}");
        let err = s
            .create_object(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(p.key_type),
                Attribute::Token(false),
                set(13),
                Attribute::Value(value),
            ])
            .unwrap_err();
        assert_eq!(rv(err), RvError::AttributeValueInvalid, "{name}");
    }
}

#[test]
fn token_keys_are_sealed_in_seed_form_with_an_spki() {
    let s = session("pq-sealed");
    let db = ctx_db();
    for name in ["ML-KEM-768", "ML-DSA-65", "SLH-DSA-SHA2-128f"] {
        let p = by_name(name);
        let (public, private) = generate(&s, p, name, true, &[]).expect("generate");
        let key_id = String::from_utf8(get_bytes_vendor(&s, private)).expect("key id");
        let rows = db.query_texts(&format!(
            "SELECT CAST(private_key_ctx AS TEXT) FROM asym_key WHERE key_id = '{key_id}'"
        ));
        let ctx: Value = serde_json::from_str(&rows[0]).expect("private_key_ctx");
        let wrapped = ctx["wrappedKey"].as_str().expect("wrappedKey");
        // base64 of nonce ‖ PKCS#8 ‖ tag: the seed form (ML-KEM, ML-DSA) is about a hundred
        // bytes, the expanded one thousands; SLH-DSA's only form is its 4n-byte key.
        let sealed_len = wrapped.len() * 3 / 4;
        let pkcs8_len = sealed_len - 28;
        let expected = match p.key_type {
            KeyType::SLH_DSA => 20 + p.private_len,
            _ => 22 + p.seed_len,
        };
        assert!(
            pkcs8_len.abs_diff(expected) <= 4,
            "{name}: {pkcs8_len} bytes sealed"
        );
        let rows = db.query_texts(&format!(
            "SELECT CAST(public_key_ctx AS TEXT) FROM asym_key WHERE key_id = '{key_id}'"
        ));
        let ctx: Value = serde_json::from_str(&rows[0]).expect("public_key_ctx");
        let pem = ctx["pem"].as_str().expect("pem");
        let key = openssl::pkey::PKey::public_key_from_pem(pem.as_bytes()).expect("PEM");
        assert_eq!(
            key.public_key_to_der().expect("der"),
            bytes(&s, public, AttributeType::PublicKeyInfo)
        );
    }
}

fn get_bytes_vendor(s: &Session, o: ObjectHandle) -> Vec<u8> {
    let t = AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID);
    get_any_bytes(s, o, t)
}

#[test]
fn a_successor_of_a_post_quantum_key_is_linked() {
    let s = session("pq-rotate");
    for name in ["ML-DSA-87", "ML-KEM-512", "SLH-DSA-SHAKE-192f"] {
        let p = by_name(name);
        let (_, private) = generate(&s, p, name, true, &[]).expect("generate");
        let key_id = get_bytes_vendor(&s, private);
        // A successor generated with CKA_SQLHSM_ROTATED_FROM in the private template.
        let public = [Attribute::Token(true), set(p.set)];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::VendorDefined((
                AttributeType::VendorDefined(CKA_SQLHSM_ROTATED_FROM),
                key_id.clone(),
            )),
        ];
        let (_, successor) = s
            .generate_key_pair(&p.generation(), &public, &private_template)
            .expect("successor");
        assert_eq!(ulong(&s, successor, AttributeType::ParameterSet), p.set);
        assert_eq!(
            get_ulong_vendor(&s, successor, CKA_SQLHSM_KEY_ALGORITHM),
            p.code
        );
    }
}

#[test]
fn private_keys_wrap_and_unwrap_as_pkcs8() {
    let s = session("pq-wrap");
    // An imported KEK: it cannot have wrapped a sensitive key, so it unwraps readable ones.
    let kek = session_secret(&s, KeyType::AES, &[0x42; 32], &[]);
    for name in ["ML-KEM-768", "ML-DSA-65", "SLH-DSA-SHA2-128s"] {
        let p = by_name(name);
        let readable = [Attribute::Extractable(true), Attribute::Sensitive(false)];
        let (public, private) = generate(&s, p, name, false, &readable).expect("generate");
        let (_, wrapped) = raw_wrap_key(&s, CKM_AES_KEY_WRAP_KWP, kek, private).expect("wrap");
        if p.key_type != KeyType::SLH_DSA {
            assert!(
                wrapped.len() < 128,
                "{name}: the seed form, not the expanded key"
            );
        }
        let unwrapped = raw_unwrap_key(
            &s,
            CKM_AES_KEY_WRAP_KWP,
            kek,
            &wrapped,
            &[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(p.key_type),
                Attribute::Token(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ],
        )
        .expect("unwrap");
        assert_eq!(ulong(&s, unwrapped, AttributeType::ParameterSet), p.set);
        assert_eq!(
            bytes(&s, unwrapped, AttributeType::PublicKeyInfo),
            bytes(&s, public, AttributeType::PublicKeyInfo),
            "{name}"
        );
        // The wrapped form carries the seed (ML-KEM, ML-DSA: the seed-only PKCS#8), so the
        // unwrapped key has it too.
        assert_eq!(
            bytes(&s, unwrapped, AttributeType::Seed),
            bytes(&s, private, AttributeType::Seed),
            "{name}"
        );
    }
}

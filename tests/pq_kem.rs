//! ML-KEM key encapsulation through the C ABI (PKCS#11 3.2 §5.18 `C_EncapsulateKey` /
//! `C_DecapsulateKey`, mechanism `CKM_ML_KEM`), called through the raw function list.
//!
//! - Wycheproof `mlkem_512/768/1024_test.json` (in `tests/data/wycheproof/`): every case's
//!   private key is imported from its seed (d‖z) with `C_CreateObject`; a seed of the wrong
//!   length must be refused there; every ciphertext is decapsulated, a valid case to the
//!   vector's K (including the implicit-rejection cases, which are `valid` with the
//!   rejection secret as K), a ciphertext of the wrong length refused with
//!   `CKR_WRAPPED_KEY_LEN_RANGE`. Every case is counted.
//! - `mlkem_768_encaps_test.json`: the encapsulation keys, imported as public keys; a valid one
//!   encapsulates, an invalid one (wrong length, coefficient not reduced) is refused at import.
//!   (That the encapsulation with the vector's m gives its c and K is checked below the C ABI,
//!   in `src/crypto/kem.rs`: PKCS#11 has no way to pass m.)
//! - Keys imported from the seed, from the expanded decapsulation key alone, and public keys
//!   from the encapsulation key, all agree.
//! - Interop with RustCrypto's `ml-kem`: its encapsulations decapsulate in sqlhsm, sqlhsm's
//!   decapsulate there, implicit rejection included.
//! - The call's rules: usage flags, key classes and types, the two-call convention (a length
//!   query makes no key), the new key's template and attributes.

mod common;

use std::collections::BTreeMap;

use cryptoki::error::RvError;
use cryptoki::object::{AttributeType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use ml_kem::kem::Decapsulate;
use ml_kem::{Ciphertext, EncapsulateDeterministic, EncodedSizeUser, KemCore, B32};
use serde_json::Value;

use common::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/wycheproof");

/// The parameter sets: `CKP_*`, Wycheproof's name, and the encapsulation key, ciphertext
/// lengths (FIPS 203 Table 3).
const SETS: [(CK_ULONG, &str, usize, usize); 3] = [
    (CKP_ML_KEM_512, "ML-KEM-512", 800, 768),
    (CKP_ML_KEM_768, "ML-KEM-768", 1184, 1088),
    (CKP_ML_KEM_1024, "ML-KEM-1024", 1568, 1568),
];

fn set_named(name: &str) -> CK_ULONG {
    SETS.iter().find(|s| s.1 == name).expect("parameter set").0
}

fn session(label: &str) -> Session {
    let p = ctx();
    let slot = new_token(p, label);
    user_session(p, slot)
}

fn load(file: &str) -> Value {
    let text = std::fs::read_to_string(format!("{DIR}/{file}")).expect("vector file");
    serde_json::from_str(&text).expect("JSON")
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or("")).expect("hex")
}

fn bytes(t: CK_ATTRIBUTE_TYPE, v: &[u8]) -> RawAttr {
    (t, v.to_vec())
}

/// A private ML-KEM key (session object) from its seed d‖z.
fn private_from_seed(
    s: &Session,
    set: CK_ULONG,
    seed: &[u8],
) -> cryptoki::error::Result<ObjectHandle> {
    raw_create_object(
        s,
        vec![
            raw_ulong(CKA_CLASS, CKO_PRIVATE_KEY),
            raw_ulong(CKA_KEY_TYPE, CKK_ML_KEM),
            raw_ulong(CKA_PARAMETER_SET, set),
            raw_bool(CKA_TOKEN, false),
            raw_bool(CKA_DECAPSULATE, true),
            bytes(CKA_SEED, seed),
        ],
    )
}

/// A private ML-KEM key from its expanded decapsulation key dk alone.
fn private_from_value(
    s: &Session,
    set: CK_ULONG,
    dk: &[u8],
) -> cryptoki::error::Result<ObjectHandle> {
    raw_create_object(
        s,
        vec![
            raw_ulong(CKA_CLASS, CKO_PRIVATE_KEY),
            raw_ulong(CKA_KEY_TYPE, CKK_ML_KEM),
            raw_ulong(CKA_PARAMETER_SET, set),
            raw_bool(CKA_TOKEN, false),
            raw_bool(CKA_DECAPSULATE, true),
            bytes(CKA_VALUE, dk),
        ],
    )
}

/// A public ML-KEM key from its encapsulation key ek.
fn public_from_value(
    s: &Session,
    set: CK_ULONG,
    ek: &[u8],
) -> cryptoki::error::Result<ObjectHandle> {
    raw_create_object(
        s,
        vec![
            raw_ulong(CKA_CLASS, CKO_PUBLIC_KEY),
            raw_ulong(CKA_KEY_TYPE, CKK_ML_KEM),
            raw_ulong(CKA_PARAMETER_SET, set),
            raw_bool(CKA_TOKEN, false),
            raw_bool(CKA_ENCAPSULATE, true),
            bytes(CKA_VALUE, ek),
        ],
    )
}

/// The template of a readable shared-secret key: a generic secret of the whole secret.
fn readable_secret() -> Vec<RawAttr> {
    vec![
        raw_ulong(CKA_CLASS, CKO_SECRET_KEY),
        raw_ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET),
        raw_bool(CKA_TOKEN, false),
        raw_bool(CKA_SENSITIVE, false),
        raw_bool(CKA_EXTRACTABLE, true),
    ]
}

fn value(s: &Session, key: ObjectHandle) -> Vec<u8> {
    get_bytes(s, key, AttributeType::Value)
}

fn decapsulated(s: &Session, key: ObjectHandle, ct: &[u8]) -> cryptoki::error::Result<Vec<u8>> {
    let secret = raw_decapsulate(s, CKM_ML_KEM, key, readable_secret(), ct)?;
    Ok(value(s, secret))
}

fn rv_is<T: std::fmt::Debug>(r: cryptoki::error::Result<T>, want: RvError) -> bool {
    matches!(r, Err(cryptoki::error::Error::Pkcs11(got, _)) if got == want)
}

/// Counts by outcome, and the cases that did not behave.
#[derive(Default)]
struct Tally {
    counts: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

impl Tally {
    fn ok(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }
    fn fail(&mut self, id: &Value, why: String) {
        self.failures.push(format!("tcId {id}: {why}"));
    }
    fn total(&self) -> usize {
        self.counts.values().sum::<usize>() + self.failures.len()
    }
}

/// Every case of an `mlkem_<n>_test.json`: import from seed, then decapsulate.
fn wycheproof_decapsulation(file: &str, label: &str) {
    let doc = load(file);
    let s = session(label);
    let mut tally = Tally::default();
    for group in doc["testGroups"].as_array().expect("groups") {
        let set = set_named(group["parameterSet"].as_str().expect("parameterSet"));
        let (_, _, ek_len, ct_len) = *SETS.iter().find(|x| x.0 == set).expect("set");
        for case in group["tests"].as_array().expect("tests") {
            let id = &case["tcId"];
            let (seed, ct) = (hx(&case["seed"]), hx(&case["c"]));
            let valid = case["result"] == "valid";
            let key = match private_from_seed(&s, set, &seed) {
                Ok(key) => key,
                Err(e) if !valid && seed.len() != 64 => {
                    if rv_is::<()>(Err(e), RvError::AttributeValueInvalid) {
                        tally.ok("seed of the wrong length refused at import");
                    } else {
                        tally.fail(id, "bad seed refused with another code".into());
                    }
                    continue;
                }
                Err(e) => {
                    tally.fail(id, format!("import failed: {e}"));
                    continue;
                }
            };
            if !valid && seed.len() != 64 {
                tally.fail(id, "a seed of the wrong length was imported".into());
                continue;
            }
            // The vector's ek is the key's public half: what it encapsulates, the key
            // decapsulates.
            let ek = hx(&case["ek"]);
            if !ek.is_empty() {
                if ek.len() != ek_len {
                    tally.fail(
                        id,
                        "the vector's ek has the wrong length for its set".into(),
                    );
                }
                let agrees = public_from_value(&s, set, &ek).and_then(|public| {
                    let (ct, sent) = raw_encapsulate(&s, CKM_ML_KEM, public, readable_secret())?;
                    let _ = s.destroy_object(public);
                    Ok(decapsulated(&s, key, &ct)? == value(&s, sent))
                });
                if !matches!(agrees, Ok(true)) {
                    tally.fail(id, format!("ek is not the key's public half: {agrees:?}"));
                }
            }
            match (valid, decapsulated(&s, key, &ct)) {
                (true, Ok(k)) if k == hx(&case["K"]) => tally.ok("decapsulated to K"),
                (true, Ok(_)) => tally.fail(id, "wrong secret".into()),
                (true, Err(e)) => tally.fail(id, format!("refused: {e}")),
                (false, r) if ct.len() != ct_len => {
                    if rv_is(r, RvError::WrappedKeyLenRange) {
                        tally.ok("ciphertext of the wrong length refused");
                    } else {
                        tally.fail(id, "wrong-length ciphertext not refused as such".into());
                    }
                }
                (false, r) => tally.fail(id, format!("invalid case of unknown kind: {r:?}")),
            }
            let _ = s.destroy_object(key);
        }
    }
    println!("{file}: {:?}", tally.counts);
    assert_eq!(
        tally.total() as u64,
        doc["numberOfTests"].as_u64().expect("numberOfTests"),
        "every case accounted for"
    );
    assert!(
        tally.failures.is_empty(),
        "{file}:\n  {}",
        tally.failures.join("\n  ")
    );
}

#[test]
fn wycheproof_mlkem_512() {
    wycheproof_decapsulation("mlkem_512_test.json", "wp-mlkem-512");
}

#[test]
fn wycheproof_mlkem_768() {
    wycheproof_decapsulation("mlkem_768_test.json", "wp-mlkem-768");
}

#[test]
fn wycheproof_mlkem_1024() {
    wycheproof_decapsulation("mlkem_1024_test.json", "wp-mlkem-1024");
}

/// `mlkem_768_encaps_test.json` through the C ABI: a valid encapsulation key imports and
/// encapsulates; an invalid one is refused when imported.
#[test]
fn wycheproof_mlkem_768_encapsulation_keys() {
    let file = "mlkem_768_encaps_test.json";
    let doc = load(file);
    let s = session("wp-mlkem-768-encaps");
    let mut tally = Tally::default();
    for group in doc["testGroups"].as_array().expect("groups") {
        let set = set_named(group["parameterSet"].as_str().expect("parameterSet"));
        for case in group["tests"].as_array().expect("tests") {
            let id = &case["tcId"];
            let imported = public_from_value(&s, set, &hx(&case["ek"]));
            match (case["result"] == "valid", imported) {
                (true, Ok(key)) => match raw_encapsulate(&s, CKM_ML_KEM, key, readable_secret()) {
                    Ok((ct, secret)) if ct.len() == 1088 && value(&s, secret).len() == 32 => {
                        tally.ok("valid key encapsulates")
                    }
                    Ok(_) => tally.fail(id, "wrong lengths".into()),
                    Err(e) => tally.fail(id, format!("encapsulation refused: {e}")),
                },
                (true, Err(e)) => tally.fail(id, format!("import refused: {e}")),
                (false, Ok(_)) => tally.fail(id, "invalid encapsulation key imported".into()),
                (false, Err(e)) => {
                    if rv_is::<()>(Err(e), RvError::AttributeValueInvalid) {
                        tally.ok("invalid key refused at import");
                    } else {
                        tally.fail(id, "invalid key refused with another code".into());
                    }
                }
            }
        }
    }
    println!("{file}: {:?}", tally.counts);
    assert_eq!(
        tally.total() as u64,
        doc["numberOfTests"].as_u64().expect("count")
    );
    assert!(
        tally.failures.is_empty(),
        "{file}:\n  {}",
        tally.failures.join("\n  ")
    );
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    openssl::rand::rand_bytes(&mut b).expect("random");
    b
}

fn b32(b: &[u8]) -> B32 {
    B32::try_from(b).expect("32 bytes")
}

/// RustCrypto's `ml-kem` and sqlhsm agree both ways, on keys RustCrypto made (imported into
/// sqlhsm from the seed, from the expanded key, and as a public key), and on implicit
/// rejection.
fn interop_with_rustcrypto<K: KemCore>(set: CK_ULONG, label: &str) {
    let s = session(label);
    let (d, z) = (random::<32>(), random::<32>());
    let (dk, ek) = K::generate_deterministic(&b32(&d), &b32(&z));
    let from_seed = private_from_seed(&s, set, &[d, z].concat()).expect("import from seed");
    let from_value =
        private_from_value(&s, set, dk.as_bytes().as_slice()).expect("import expanded");
    let public = public_from_value(&s, set, ek.as_bytes().as_slice()).expect("import public");

    // RustCrypto encapsulates, sqlhsm decapsulates (with either form of the private key).
    for _ in 0..4 {
        let (ct, k) = ek
            .encapsulate_deterministic(&b32(&random::<32>()))
            .expect("encaps");
        assert_eq!(
            decapsulated(&s, from_seed, ct.as_slice()).unwrap(),
            k.as_slice()
        );
        assert_eq!(
            decapsulated(&s, from_value, ct.as_slice()).unwrap(),
            k.as_slice()
        );
    }
    // sqlhsm encapsulates, RustCrypto decapsulates.
    for _ in 0..4 {
        let (ct, secret) = raw_encapsulate(&s, CKM_ML_KEM, public, readable_secret()).unwrap();
        let ct = Ciphertext::<K>::try_from(ct.as_slice()).expect("ciphertext length");
        assert_eq!(
            dk.decapsulate(&ct).expect("decaps").as_slice(),
            value(&s, secret)
        );
    }
    // A changed ciphertext: both give the same implicit-rejection secret.
    let (ct, _) = raw_encapsulate(&s, CKM_ML_KEM, public, readable_secret()).unwrap();
    let mut changed = ct.clone();
    changed[7] ^= 0x20;
    let theirs = dk
        .decapsulate(&Ciphertext::<K>::try_from(changed.as_slice()).unwrap())
        .unwrap();
    let ours = decapsulated(&s, from_seed, &changed).unwrap();
    assert_eq!(ours, theirs.as_slice());
    assert_ne!(ours, decapsulated(&s, from_seed, &ct).unwrap());
}

#[test]
fn interop_with_rustcrypto_ml_kem_512() {
    interop_with_rustcrypto::<ml_kem::MlKem512>(CKP_ML_KEM_512, "kem-interop-512");
}

#[test]
fn interop_with_rustcrypto_ml_kem_768() {
    interop_with_rustcrypto::<ml_kem::MlKem768>(CKP_ML_KEM_768, "kem-interop-768");
}

#[test]
fn interop_with_rustcrypto_ml_kem_1024() {
    interop_with_rustcrypto::<ml_kem::MlKem1024>(CKP_ML_KEM_1024, "kem-interop-1024");
}

/// A key pair sqlhsm generates: RustCrypto encapsulates to its public value, sqlhsm
/// decapsulates.
#[test]
fn rustcrypto_encapsulates_to_a_key_sqlhsm_generated() {
    let s = session("kem-generated");
    let (public, private) = generate_pair(&s, CKP_ML_KEM_768);
    let ek_bytes = get_bytes(&s, public, AttributeType::Value);
    let ek = <ml_kem::MlKem768 as KemCore>::EncapsulationKey::from_bytes(
        &ml_kem::Encoded::<<ml_kem::MlKem768 as KemCore>::EncapsulationKey>::try_from(
            ek_bytes.as_slice(),
        )
        .expect("ek length"),
    );
    let (ct, k) = ek
        .encapsulate_deterministic(&b32(&random::<32>()))
        .expect("encaps");
    assert_eq!(
        decapsulated(&s, private, ct.as_slice()).unwrap(),
        k.as_slice()
    );
}

/// An ML-KEM key pair generated by sqlhsm (session objects).
fn generate_pair(s: &Session, set: CK_ULONG) -> (ObjectHandle, ObjectHandle) {
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, MlKemParameterSetType, ParameterSetType};
    let set = match set {
        CKP_ML_KEM_512 => MlKemParameterSetType::ML_KEM_512,
        CKP_ML_KEM_768 => MlKemParameterSetType::ML_KEM_768,
        _ => MlKemParameterSetType::ML_KEM_1024,
    };
    s.generate_key_pair(
        &Mechanism::MlKemKeyPairGen,
        &[
            Attribute::Token(false),
            Attribute::Encapsulate(true),
            Attribute::ParameterSet(ParameterSetType::from(set)),
        ],
        &[Attribute::Token(false), Attribute::Decapsulate(true)],
    )
    .expect("ML-KEM key pair")
}

fn count_objects(s: &Session) -> usize {
    s.find_objects(&[]).expect("find").len()
}

#[test]
fn mechanism_info_claims_encapsulation_and_the_public_key_range() {
    let p = ctx();
    let slot = new_token(p, "kem-info");
    let info = p
        .get_mechanism_info(slot, cryptoki::mechanism::MechanismType::ML_KEM)
        .expect("info");
    assert!(info.encapsulate() && info.decapsulate());
    assert!(!info.encrypt() && !info.derive() && !info.wrap());
    assert_eq!((info.min_key_size(), info.max_key_size()), (800, 1568));
    assert!(raw_mechanism_list(slot).contains(&CKM_ML_KEM));
}

/// The two-call convention: a NULL buffer reports the length and makes no key, a buffer too
/// small is `CKR_BUFFER_TOO_SMALL` with the length and makes no key; then the call works.
#[test]
fn a_length_query_makes_no_key() {
    let s = session("kem-two-call");
    for (set, _, _, ct_len) in SETS {
        let (public, private) = generate_pair(&s, set);
        let before = count_objects(&s);
        let query =
            raw_encapsulate_with(&s, CKM_ML_KEM, None, public, readable_secret(), None).unwrap();
        assert_eq!(query.reported as usize, ct_len);
        assert!(query.key.is_none());
        assert_eq!(count_objects(&s), before);
        let small = raw_encapsulate_with(
            &s,
            CKM_ML_KEM,
            None,
            public,
            readable_secret(),
            Some(ct_len - 1),
        );
        assert!(rv_is(small, RvError::BufferTooSmall));
        assert_eq!(count_objects(&s), before);
        let done = raw_encapsulate_with(
            &s,
            CKM_ML_KEM,
            None,
            public,
            readable_secret(),
            Some(ct_len + 10),
        )
        .unwrap();
        assert_eq!(done.reported as usize, ct_len);
        assert_eq!(done.ciphertext.len(), ct_len);
        let key = done.key.expect("a key");
        assert_eq!(count_objects(&s), before + 1);
        assert_eq!(
            decapsulated(&s, private, &done.ciphertext).unwrap(),
            value(&s, key)
        );
    }
}

/// The new key: CKA_LOCAL, CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE false and
/// CKA_EXTRACTABLE true unless the template says otherwise (§5.18); an AES key of the length
/// asked for, which is the shared secret's leading bytes; both sides agree.
#[test]
fn the_new_key_follows_the_template_and_section_5_18() {
    let s = session("kem-new-key");
    let (public, private) = generate_pair(&s, CKP_ML_KEM_768);
    let aes = |len: u64| {
        vec![
            raw_ulong(CKA_CLASS, CKO_SECRET_KEY),
            raw_ulong(CKA_KEY_TYPE, CKK_AES),
            raw_ulong(CKA_VALUE_LEN, len),
            raw_bool(CKA_TOKEN, false),
            raw_bool(CKA_ENCRYPT, true),
        ]
    };
    let (ct, sent) = raw_encapsulate(&s, CKM_ML_KEM, public, aes(16)).unwrap();
    let received = raw_decapsulate(&s, CKM_ML_KEM, private, aes(16), &ct).unwrap();
    for key in [sent, received] {
        assert_eq!(raw_get_ulong(&s, key, CKA_KEY_TYPE).unwrap(), CKK_AES);
        assert_eq!(raw_get_ulong(&s, key, CKA_VALUE_LEN).unwrap(), 16);
        assert!(!get_bool(&s, key, AttributeType::Local));
        assert!(!get_bool(&s, key, AttributeType::AlwaysSensitive));
        assert!(!get_bool(&s, key, AttributeType::NeverExtractable));
        assert!(get_bool(&s, key, AttributeType::Extractable));
        assert!(get_bool(&s, key, AttributeType::Sensitive));
        assert!(get_bool(&s, key, AttributeType::Encrypt));
    }
    // Equal keys: the same ciphertext under each encrypts alike.
    let whole = decapsulated(&s, private, &ct).unwrap();
    let probe = raw_secret(&s, CKK_AES, &whole[..16]).unwrap();
    let data = [0x5au8; 16];
    let enc = |key| {
        s.encrypt(&cryptoki::mechanism::Mechanism::AesEcb, key, &data)
            .expect("encrypt")
    };
    assert_eq!(enc(sent), enc(probe));
    assert_eq!(enc(received), enc(probe));
    // Not extractable when the template says so.
    let mut fixed = aes(32);
    fixed.push(raw_bool(CKA_EXTRACTABLE, false));
    let key = raw_decapsulate(&s, CKM_ML_KEM, private, fixed, &ct).unwrap();
    assert!(!get_bool(&s, key, AttributeType::Extractable));
    // A token object, and CKA_VALUE_LEN left out: the whole secret (AES-256).
    let token = vec![
        raw_ulong(CKA_CLASS, CKO_SECRET_KEY),
        raw_ulong(CKA_KEY_TYPE, CKK_AES),
        raw_bool(CKA_TOKEN, true),
        raw_bool(CKA_SENSITIVE, false),
    ];
    let key = raw_decapsulate(&s, CKM_ML_KEM, private, token, &ct).unwrap();
    assert_eq!(value(&s, key), whole);
    assert!(get_bool(&s, key, AttributeType::Token));
    s.destroy_object(key).unwrap();
}

#[test]
fn templates_the_shared_secret_cannot_satisfy_are_refused() {
    let s = session("kem-templates");
    let (public, private) = generate_pair(&s, CKP_ML_KEM_512);
    let (ct, _) = raw_encapsulate(&s, CKM_ML_KEM, public, readable_secret()).unwrap();
    let before = count_objects(&s);
    let with = |extra: Vec<RawAttr>| {
        let mut t = vec![
            raw_ulong(CKA_CLASS, CKO_SECRET_KEY),
            raw_bool(CKA_TOKEN, false),
        ];
        t.extend(extra);
        t
    };
    let cases: Vec<(Vec<RawAttr>, RvError)> = vec![
        // No key type: as C_DeriveKey, the template must name it.
        (with(vec![]), RvError::TemplateIncomplete),
        // Longer than the 32-byte secret.
        (
            with(vec![
                raw_ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET),
                raw_ulong(CKA_VALUE_LEN, 33),
            ]),
            RvError::TemplateInconsistent,
        ),
        // An AES key of no AES length.
        (
            with(vec![
                raw_ulong(CKA_KEY_TYPE, CKK_AES),
                raw_ulong(CKA_VALUE_LEN, 20),
            ]),
            RvError::KeySizeRange,
        ),
        // Not a secret key.
        (
            vec![
                raw_ulong(CKA_CLASS, CKO_PRIVATE_KEY),
                raw_ulong(CKA_KEY_TYPE, CKK_AES),
            ],
            RvError::TemplateInconsistent,
        ),
        // A value of its own.
        (
            with(vec![
                raw_ulong(CKA_KEY_TYPE, CKK_GENERIC_SECRET),
                bytes(CKA_VALUE, &[1; 32]),
            ]),
            RvError::AttributeReadOnly,
        ),
    ];
    for (template, want) in cases {
        let enc = raw_encapsulate_with(&s, CKM_ML_KEM, None, public, template.clone(), Some(2000));
        assert!(rv_is(enc, want), "encapsulate: {want:?}");
        let dec = raw_decapsulate(&s, CKM_ML_KEM, private, template, &ct);
        assert!(rv_is(dec, want), "decapsulate: {want:?}");
    }
    assert_eq!(count_objects(&s), before, "a refused call made a key");
}

#[test]
fn keys_and_mechanisms_that_do_not_fit_are_refused() {
    let s = session("kem-keys");
    let (public, private) = generate_pair(&s, CKP_ML_KEM_768);
    let (ct, _) = raw_encapsulate(&s, CKM_ML_KEM, public, readable_secret()).unwrap();
    // Each key in the other's role.
    let r = raw_encapsulate_with(&s, CKM_ML_KEM, None, private, readable_secret(), Some(2000));
    assert!(rv_is(r, RvError::KeyTypeInconsistent));
    let r = raw_decapsulate(&s, CKM_ML_KEM, public, readable_secret(), &ct);
    assert!(rv_is(r, RvError::KeyTypeInconsistent));
    // A key of another type (an EC key pair), and a secret key.
    let ec = generate_ec_pair(&s);
    let r = raw_encapsulate_with(&s, CKM_ML_KEM, None, ec.0, readable_secret(), Some(2000));
    assert!(rv_is(r, RvError::KeyTypeInconsistent));
    let r = raw_decapsulate(&s, CKM_ML_KEM, ec.1, readable_secret(), &ct);
    assert!(rv_is(r, RvError::KeyTypeInconsistent));
    let aes = raw_secret(&s, CKK_AES, &[3; 32]).unwrap();
    let r = raw_decapsulate(&s, CKM_ML_KEM, aes, readable_secret(), &ct);
    assert!(rv_is(r, RvError::KeyTypeInconsistent));
    // A mechanism that is no KEM, and CKM_ML_KEM with a parameter.
    let r = raw_decapsulate(&s, CKM_AES_ECB, private, readable_secret(), &ct);
    assert!(rv_is(r, RvError::MechanismInvalid));
    let mut param = [0u8; 8];
    let r = raw_decapsulate_with(
        &s,
        CKM_ML_KEM,
        Some(&mut param),
        private,
        readable_secret(),
        &ct,
    );
    assert!(rv_is(r, RvError::MechanismParamInvalid));
    // A ciphertext of another parameter set's length.
    let r = raw_decapsulate(&s, CKM_ML_KEM, private, readable_secret(), &ct[..768]);
    assert!(rv_is(r, RvError::WrappedKeyLenRange));
    // An invalid handle.
    // SAFETY: a handle no object has.
    let nothing = unsafe { ObjectHandle::new_from_raw(0x7fff_fff0) };
    let r = raw_decapsulate(&s, CKM_ML_KEM, nothing, readable_secret(), &ct);
    assert!(rv_is(r, RvError::KeyHandleInvalid));
}

fn generate_ec_pair(s: &Session) -> (ObjectHandle, ObjectHandle) {
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::Attribute;
    let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(false),
            Attribute::EcParams(p256),
            Attribute::Verify(true),
        ],
        &[
            Attribute::Token(false),
            Attribute::Sign(true),
            Attribute::Derive(true),
        ],
    )
    .expect("EC key pair")
}

/// CKA_ENCAPSULATE / CKA_DECAPSULATE false: the key may not do it.
#[test]
fn usage_flags_are_required() {
    let s = session("kem-usage");
    let (d, z) = (random::<32>(), random::<32>());
    let (_, ek) = ml_kem::MlKem768::generate_deterministic(&b32(&d), &b32(&z));
    let mut public = vec![
        raw_ulong(CKA_CLASS, CKO_PUBLIC_KEY),
        raw_ulong(CKA_KEY_TYPE, CKK_ML_KEM),
        raw_ulong(CKA_PARAMETER_SET, CKP_ML_KEM_768),
        raw_bool(CKA_TOKEN, false),
        bytes(CKA_VALUE, ek.as_bytes().as_slice()),
    ];
    public.push(raw_bool(CKA_ENCAPSULATE, false));
    let public = raw_create_object(&s, public).unwrap();
    let r = raw_encapsulate_with(&s, CKM_ML_KEM, None, public, readable_secret(), Some(2000));
    assert!(rv_is(r, RvError::KeyFunctionNotPermitted));
    let private = raw_create_object(
        &s,
        vec![
            raw_ulong(CKA_CLASS, CKO_PRIVATE_KEY),
            raw_ulong(CKA_KEY_TYPE, CKK_ML_KEM),
            raw_ulong(CKA_PARAMETER_SET, CKP_ML_KEM_768),
            raw_bool(CKA_TOKEN, false),
            raw_bool(CKA_DECAPSULATE, false),
            bytes(CKA_SEED, &[d, z].concat()),
        ],
    )
    .unwrap();
    let r = raw_decapsulate(&s, CKM_ML_KEM, private, readable_secret(), &[0u8; 1088]);
    assert!(rv_is(r, RvError::KeyFunctionNotPermitted));
}

/// CKA_ENCAPSULATE_TEMPLATE / CKA_DECAPSULATE_TEMPLATE join the caller's template; a conflict
/// is CKR_KEY_HANDLE_INVALID when encapsulating and CKR_TEMPLATE_INCONSISTENT when
/// decapsulating (§5.18).
#[test]
fn the_keys_templates_join_the_callers() {
    let s = session("kem-key-templates");
    let (d, z) = (random::<32>(), random::<32>());
    let (_, ek) = ml_kem::MlKem768::generate_deterministic(&b32(&d), &b32(&z));
    let mut only_aes = [raw_ulong(CKA_KEY_TYPE, CKK_AES)];
    let only_aes = attribute_array(&mut only_aes);
    let public = raw_create_object(
        &s,
        vec![
            raw_ulong(CKA_CLASS, CKO_PUBLIC_KEY),
            raw_ulong(CKA_KEY_TYPE, CKK_ML_KEM),
            raw_ulong(CKA_PARAMETER_SET, CKP_ML_KEM_768),
            raw_bool(CKA_TOKEN, false),
            raw_bool(CKA_ENCAPSULATE, true),
            bytes(CKA_VALUE, ek.as_bytes().as_slice()),
            (CKA_ENCAPSULATE_TEMPLATE, only_aes.clone()),
        ],
    )
    .unwrap();
    let private = raw_create_object(
        &s,
        vec![
            raw_ulong(CKA_CLASS, CKO_PRIVATE_KEY),
            raw_ulong(CKA_KEY_TYPE, CKK_ML_KEM),
            raw_ulong(CKA_PARAMETER_SET, CKP_ML_KEM_768),
            raw_bool(CKA_TOKEN, false),
            raw_bool(CKA_DECAPSULATE, true),
            bytes(CKA_SEED, &[d, z].concat()),
            (CKA_DECAPSULATE_TEMPLATE, only_aes),
        ],
    )
    .unwrap();
    // The caller's template names no key type: the key's template supplies CKK_AES.
    let no_type = vec![
        raw_ulong(CKA_CLASS, CKO_SECRET_KEY),
        raw_bool(CKA_TOKEN, false),
    ];
    let (ct, sent) = raw_encapsulate(&s, CKM_ML_KEM, public, no_type.clone()).unwrap();
    assert_eq!(raw_get_ulong(&s, sent, CKA_KEY_TYPE).unwrap(), CKK_AES);
    let received = raw_decapsulate(&s, CKM_ML_KEM, private, no_type, &ct).unwrap();
    assert_eq!(raw_get_ulong(&s, received, CKA_KEY_TYPE).unwrap(), CKK_AES);
    // A conflict.
    let r = raw_encapsulate_with(&s, CKM_ML_KEM, None, public, readable_secret(), Some(2000));
    assert!(rv_is(r, RvError::KeyHandleInvalid));
    let r = raw_decapsulate(&s, CKM_ML_KEM, private, readable_secret(), &ct);
    assert!(rv_is(r, RvError::TemplateInconsistent));
}

/// An attribute array (`CKA_*_TEMPLATE`'s value): the `CK_ATTRIBUTE` structures' bytes, each
/// pointing into `entries`, which must outlive every use of the bytes.
fn attribute_array(entries: &mut [RawAttr]) -> Vec<u8> {
    let structs = raw_attrs(entries);
    let size = std::mem::size_of::<CK_ATTRIBUTE>() * structs.len();
    // SAFETY: `structs` is a live, initialised array of `size` bytes.
    unsafe { std::slice::from_raw_parts(structs.as_ptr().cast::<u8>(), size) }.to_vec()
}

/// A read-only session cannot make a token key; a session not logged in cannot see a private
/// key.
#[test]
fn sessions_are_checked_as_for_unwrap_and_derive() {
    let p = ctx();
    let slot = new_token(p, "kem-sessions");
    let s = user_session(p, slot);
    let (d, z) = (random::<32>(), random::<32>());
    let private = raw_create_object(
        &s,
        vec![
            raw_ulong(CKA_CLASS, CKO_PRIVATE_KEY),
            raw_ulong(CKA_KEY_TYPE, CKK_ML_KEM),
            raw_ulong(CKA_PARAMETER_SET, CKP_ML_KEM_768),
            raw_bool(CKA_TOKEN, true),
            raw_bool(CKA_PRIVATE, true),
            raw_bool(CKA_DECAPSULATE, true),
            bytes(CKA_SEED, &[d, z].concat()),
        ],
    )
    .unwrap();
    let ro = p.open_ro_session(slot).unwrap();
    let mut token = readable_secret();
    token.retain(|(t, _)| *t != CKA_TOKEN);
    token.push(raw_bool(CKA_TOKEN, true));
    let r = raw_decapsulate(&ro, CKM_ML_KEM, private, token, &[0u8; 1088]);
    assert!(rv_is(r, RvError::SessionReadOnly));
    s.logout().unwrap();
    let r = raw_decapsulate(&ro, CKM_ML_KEM, private, readable_secret(), &[0u8; 1088]);
    assert!(rv_is(r, RvError::KeyHandleInvalid));
}

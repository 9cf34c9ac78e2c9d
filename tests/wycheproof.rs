//! Project Wycheproof test vectors driven through the module's PKCS#11 interface.
//!
//! Every file in `tests/data/wycheproof/` (a subset of Project Wycheproof's `testvectors_v1`, commit
//! dac1dd4729fd1f8dd9e1e9f3dce51d783da6c166, Apache-2.0: see the `LICENSE` beside them) has one
//! `#[test]` here (the post-quantum key files: their keys in `tests/pq_keys.rs`). Each test group's
//! key is imported with `C_CreateObject` as a session object (`CKA_TOKEN` false) on one token
//! per file, and every case runs through the module (verify, decrypt, unwrap, derive, MAC).
//! `valid` cases must succeed and give the expected output, `invalid` cases must be rejected,
//! `acceptable` cases may go either way (but never with a wrong output). Each test prints its
//! per-file counts and fails listing the tcIds that did not behave.
//!
//! Cases are skipped only for a reason written next to the skip and counted in the report:
//! - ECDH (`ecdh_<curve>_test.json`, SPKI-encoded peer keys): a non-`acceptable` case whose
//!   SPKI names another curve or explicit curve parameters. `CKM_ECDH1_DERIVE` passes only the peer *point*
//!   (`CK_ECDH1_DERIVE_PARAMS.pPublicData`), so the curve in the SPKI never reaches the module;
//!   whether such a key is refused is the application's check, not the token's. Likewise a case
//!   whose SPKI does not parse as DER has no point to hand over.
//!
//! - AES-GCM (`aes_gcm_test.json`): a `valid` case whose IV is longer than 128 bytes. PKCS#11
//!   allows such IVs, but OpenSSL 3.0's GCM (under sqlhsm) takes at most 128 bytes, so sqlhsm
//!   refuses them with `CKR_MECHANISM_PARAM_INVALID` — a documented limit (README), checked
//!   here, not a silent gap.
//!
//! - AES-XTS (`aes_xts_test.json`): a case with a 48-byte key (two AES-192 keys). PKCS#11's
//!   `CKK_AES_XTS` keys are 32 or 64 bytes and OpenSSL has no AES-192-XTS, so the key's import
//!   must be refused (`CKR_ATTRIBUTE_VALUE_INVALID`, checked here) and its cases cannot run.
//!
//! - ECDSA with DER signatures (`ecdsa_secp256r1_sha3_256_test.json`): an `invalid` case whose
//!   signature is not the canonical DER of two integers that fit the field (BER lengths,
//!   trailing bytes, over-long or negative integers, …). PKCS#11 signatures are raw `r‖s`, so
//!   such a signature has no form to hand to the module; the cases that do convert (wrong
//!   values, `r` or `s` zero or ≥ n, …) all reach it.
//!
//! No other file or case is skipped: GCM vectors all use 128-bit tags and IVs PKCS#11 allows
//! (`ulIvLen` ≥ 1; the zero-length IV cases are `invalid` and must be rejected).

mod common;

use std::collections::{BTreeMap, HashMap};

use cryptoki::error::Error;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::hkdf::{HkdfParams, HkdfSalt};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use openssl::bn::BigNumContext;
use openssl::ec::PointConversionForm;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde_json::Value;

use common::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/wycheproof");

// ---------- the report ----------

/// What the module did with one case.
enum Outcome {
    /// Succeeded, with the expected output where the case has one.
    Accepted,
    /// Succeeded but gave something other than the expected output.
    WrongOutput(String),
    /// Refused (the reason: a CK_RV or what differed).
    Rejected(String),
}

fn rejected(e: Error) -> Outcome {
    match e {
        Error::Pkcs11(rv, _) => Outcome::Rejected(format!("{rv:?}")),
        other => Outcome::Rejected(other.to_string()),
    }
}

#[derive(Default)]
struct Report {
    file: String,
    total: usize,
    valid_passed: usize,
    invalid_rejected: usize,
    acceptable_accepted: usize,
    acceptable_rejected: usize,
    skipped: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

impl Report {
    fn new(file: &str, doc: &Value) -> Report {
        Report {
            file: file.to_string(),
            total: doc["numberOfTests"].as_u64().unwrap_or(0) as usize,
            ..Report::default()
        }
    }

    fn record(&mut self, tc: &Value, outcome: Outcome) {
        let id = tc["tcId"].as_u64().unwrap_or(0);
        let result = tc["result"].as_str().unwrap_or("?");
        let comment = tc["comment"].as_str().unwrap_or("");
        match (result, outcome) {
            ("valid", Outcome::Accepted) => self.valid_passed += 1,
            ("invalid", Outcome::Rejected(_)) => self.invalid_rejected += 1,
            ("acceptable", Outcome::Accepted) => self.acceptable_accepted += 1,
            ("acceptable", Outcome::Rejected(_)) => self.acceptable_rejected += 1,
            (_, Outcome::WrongOutput(why)) => self.failures.push(format!(
                "tcId {id} ({result}, {comment}): wrong output: {why}"
            )),
            ("valid", Outcome::Rejected(why)) => self
                .failures
                .push(format!("tcId {id} (valid, {comment}): rejected: {why}")),
            ("invalid", Outcome::Accepted) => self
                .failures
                .push(format!("tcId {id} (invalid, {comment}): accepted")),
            (r, _) => self
                .failures
                .push(format!("tcId {id}: unknown result {r:?}")),
        }
    }

    fn skip(&mut self, why: &'static str) {
        *self.skipped.entry(why).or_default() += 1;
    }

    /// Prints the counts, checks that every case was accounted for, fails on any mismatch.
    fn finish(self) {
        let skipped: usize = self.skipped.values().sum();
        println!(
            "{}: {} cases: valid passed {}, invalid rejected {}, acceptable accepted {} / \
             rejected {}, skipped {}, failed {}",
            self.file,
            self.total,
            self.valid_passed,
            self.invalid_rejected,
            self.acceptable_accepted,
            self.acceptable_rejected,
            skipped,
            self.failures.len()
        );
        for (why, n) in &self.skipped {
            println!("  skipped {n}: {why}");
        }
        let seen = self.valid_passed
            + self.invalid_rejected
            + self.acceptable_accepted
            + self.acceptable_rejected
            + skipped
            + self.failures.len();
        assert_eq!(
            seen, self.total,
            "{}: every case is counted once",
            self.file
        );
        assert!(
            self.failures.is_empty(),
            "{}: {} case(s) did not behave:\n  {}",
            self.file,
            self.failures.len(),
            self.failures.join("\n  ")
        );
    }
}

// ---------- loading ----------

fn load(file: &str) -> Value {
    let path = format!("{DIR}/{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or("")).expect("hex field")
}

fn groups(doc: &Value) -> &Vec<Value> {
    doc["testGroups"].as_array().expect("testGroups")
}

fn tests(group: &Value) -> &Vec<Value> {
    group["tests"].as_array().expect("tests")
}

/// One token per file, and a logged-in R/W session on it.
fn session_for(file: &str) -> Session {
    let p = ctx();
    let label = format!("wp-{}", file.trim_end_matches(".json"));
    // Token labels are at most 32 bytes.
    let label: String = label.chars().take(32).collect();
    let slot = new_token(p, &label);
    user_session(p, slot)
}

fn hash_mech(name: &str) -> MechanismType {
    match name {
        "SHA-1" => MechanismType::SHA1,
        "SHA-224" => MechanismType::SHA224,
        "SHA-256" => MechanismType::SHA256,
        "SHA-384" => MechanismType::SHA384,
        "SHA-512" => MechanismType::SHA512,
        other => panic!("unexpected hash {other}"),
    }
}

fn mgf(name: &str) -> PkcsMgfType {
    match name {
        "SHA-1" => PkcsMgfType::MGF1_SHA1,
        "SHA-224" => PkcsMgfType::MGF1_SHA224,
        "SHA-256" => PkcsMgfType::MGF1_SHA256,
        "SHA-384" => PkcsMgfType::MGF1_SHA384,
        "SHA-512" => PkcsMgfType::MGF1_SHA512,
        other => panic!("unexpected MGF hash {other}"),
    }
}

// ---------- key import ----------

fn import_ec_public(s: &Session, spki: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
    let pkey = PKey::public_key_from_der(spki).expect("EC SPKI");
    let ec = pkey.ec_key().expect("EC key");
    let group = ec.group();
    let params = match group.curve_name() {
        Some(Nid::X9_62_PRIME256V1) => P256,
        Some(Nid::SECP384R1) => P384,
        Some(Nid::SECP521R1) => P521,
        Some(Nid::SECP224R1) => P224,
        Some(Nid::SECP256K1) => SECP256K1,
        Some(Nid::BRAINPOOL_P256R1) => BRAINPOOL_P256R1,
        other => panic!("unexpected curve {other:?}"),
    };
    let mut bn = BigNumContext::new().expect("bn");
    let point = ec
        .public_key()
        .to_bytes(group, PointConversionForm::UNCOMPRESSED, &mut bn)
        .expect("point");
    s.create_object(&[
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::Token(false),
        Attribute::Verify(true),
        Attribute::EcParams(params.to_vec()),
        Attribute::EcPoint(octet_string(&point)),
    ])
}

fn import_rsa_public(s: &Session, spki: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
    let rsa = Rsa::public_key_from_der(spki).expect("RSA SPKI");
    s.create_object(&[
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Token(false),
        Attribute::Verify(true),
        Attribute::Modulus(rsa.n().to_vec()),
        Attribute::PublicExponent(rsa.e().to_vec()),
    ])
}

/// An RSA private key from the group's PKCS#8, as CRT components, allowed to decrypt.
fn import_rsa_private(s: &Session, pkcs8: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
    let rsa = PKey::private_key_from_pkcs8(pkcs8)
        .expect("PKCS#8")
        .rsa()
        .expect("RSA key");
    let c = |b: Option<&openssl::bn::BigNumRef>| b.expect("CRT component").to_vec();
    s.create_object(&[
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::RSA),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Decrypt(true),
        Attribute::Modulus(rsa.n().to_vec()),
        Attribute::PublicExponent(rsa.e().to_vec()),
        Attribute::PrivateExponent(rsa.d().to_vec()),
        Attribute::Prime1(c(rsa.p())),
        Attribute::Prime2(c(rsa.q())),
        Attribute::Exponent1(c(rsa.dmp1())),
        Attribute::Exponent2(c(rsa.dmq1())),
        Attribute::Coefficient(c(rsa.iqmp())),
    ])
}

/// Session secret keys by key bytes, so a key shared by many cases is imported once.
struct SecretKeys<'a> {
    s: &'a Session,
    kt: KeyType,
    flags: Vec<Attribute>,
    cache: HashMap<Vec<u8>, ObjectHandle>,
}

impl<'a> SecretKeys<'a> {
    fn new(s: &'a Session, kt: KeyType, flags: Vec<Attribute>) -> Self {
        SecretKeys {
            s,
            kt,
            flags,
            cache: HashMap::new(),
        }
    }

    fn get(&mut self, key: &[u8]) -> ObjectHandle {
        let (s, kt, flags) = (self.s, self.kt, &self.flags);
        *self
            .cache
            .entry(key.to_vec())
            .or_insert_with(|| session_secret(s, kt, key, flags))
    }
}

/// A group whose key the module refused to import: every case counts as rejected.
fn record_group_rejected(r: &mut Report, group: &Value, e: Error) {
    let why = format!("key import: {e}");
    for tc in tests(group) {
        r.record(tc, Outcome::Rejected(why.clone()));
    }
}

// ---------- one function per schema ----------

/// `ecdsa_p1363_verify_schema_v1.json`: raw r‖s signatures with CKM_ECDSA_SHA*.
fn ecdsa_p1363_verify(file: &str) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    for g in groups(&doc) {
        let mech = match g["sha"].as_str() {
            Some("SHA-224") => Mechanism::EcdsaSha224,
            Some("SHA-256") => Mechanism::EcdsaSha256,
            Some("SHA-384") => Mechanism::EcdsaSha384,
            Some("SHA-512") => Mechanism::EcdsaSha512,
            other => panic!("unexpected sha {other:?}"),
        };
        let key = match import_ec_public(&s, &hx(&g["publicKeyDer"])) {
            Ok(k) => k,
            Err(e) => {
                record_group_rejected(&mut r, g, e);
                continue;
            }
        };
        for tc in tests(g) {
            let out = match s.verify(&mech, key, &hx(&tc["msg"]), &hx(&tc["sig"])) {
                Ok(()) => Outcome::Accepted,
                Err(e) => rejected(e),
            };
            r.record(tc, out);
        }
    }
    r.finish();
}

/// `ecdsa_verify_schema_v1.json` (DER signatures) with a mechanism cryptoki 0.12 cannot name
/// (`CKM_ECDSA_SHA3_*`, called through the raw function list). PKCS#11 signatures are raw
/// `r‖s`, so each DER signature is converted first; one that is not the canonical DER of two
/// integers of at most the field's length has no `r‖s` form and never reaches the module: an
/// `invalid` one is skipped (and counted), any other fails the test.
fn ecdsa_der_verify_raw(file: &str, mech: u64, field: usize) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    for g in groups(&doc) {
        let key = match import_ec_public(&s, &hx(&g["publicKeyDer"])) {
            Ok(k) => k,
            Err(e) => {
                record_group_rejected(&mut r, g, e);
                continue;
            }
        };
        for tc in tests(g) {
            let Some(sig) = der_to_raw(&hx(&tc["sig"]), field) else {
                if tc["result"] == "invalid" {
                    r.skip("invalid DER signature with no r‖s form (never reaches the module)");
                } else {
                    r.record(tc, Outcome::Rejected("no r‖s form".into()));
                }
                continue;
            };
            let out = match raw_verify(&s, mech, None, key, &hx(&tc["msg"]), &sig, None) {
                Ok(()) => Outcome::Accepted,
                Err(e) => rejected(e),
            };
            r.record(tc, out);
        }
    }
    r.finish();
}

/// The `r‖s` form (each `field` bytes) of a DER ECDSA signature: only when the bytes are the
/// canonical DER encoding of two non-negative integers (OpenSSL's parse, re-encoded to the same
/// bytes) that fit the field.
fn der_to_raw(der: &[u8], field: usize) -> Option<Vec<u8>> {
    let sig = openssl::ecdsa::EcdsaSig::from_der(der).ok()?;
    if sig.to_der().ok()? != der || sig.r().is_negative() || sig.s().is_negative() {
        return None;
    }
    let mut out = Vec::with_capacity(2 * field);
    for n in [sig.r(), sig.s()] {
        out.extend(n.to_vec_padded(i32::try_from(field).ok()?).ok()?);
    }
    Some(out)
}

/// `eddsa_verify_schema_v1.json`: pure Ed25519 (no parameter) or Ed448 (an empty context, as
/// the vectors use; the parameter given) with CKM_EDDSA.
fn eddsa_verify(file: &str, params: &[u8], scheme: EddsaSignatureScheme) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    let mech = Mechanism::Eddsa(EddsaParams::new(scheme));
    for g in groups(&doc) {
        let pk = hx(&g["publicKey"]["pk"]);
        let key = match s.create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC_EDWARDS),
            Attribute::Token(false),
            Attribute::Verify(true),
            Attribute::EcParams(params.to_vec()),
            Attribute::EcPoint(octet_string(&pk)),
        ]) {
            Ok(k) => k,
            Err(e) => {
                record_group_rejected(&mut r, g, e);
                continue;
            }
        };
        for tc in tests(g) {
            let out = match s.verify(&mech, key, &hx(&tc["msg"]), &hx(&tc["sig"])) {
                Ok(()) => Outcome::Accepted,
                Err(e) => rejected(e),
            };
            r.record(tc, out);
        }
    }
    r.finish();
}

/// `rsassa_pkcs1_verify_schema_v1.json`: CKM_SHA*_RSA_PKCS verification.
fn rsa_pkcs1_verify(file: &str) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    for g in groups(&doc) {
        let mech = match g["sha"].as_str() {
            Some("SHA-1") => Mechanism::Sha1RsaPkcs,
            Some("SHA-224") => Mechanism::Sha224RsaPkcs,
            Some("SHA-256") => Mechanism::Sha256RsaPkcs,
            Some("SHA-384") => Mechanism::Sha384RsaPkcs,
            Some("SHA-512") => Mechanism::Sha512RsaPkcs,
            other => panic!("unexpected sha {other:?}"),
        };
        let key = match import_rsa_public(&s, &hx(&g["publicKeyDer"])) {
            Ok(k) => k,
            Err(e) => {
                record_group_rejected(&mut r, g, e);
                continue;
            }
        };
        for tc in tests(g) {
            let out = match s.verify(&mech, key, &hx(&tc["msg"]), &hx(&tc["sig"])) {
                Ok(()) => Outcome::Accepted,
                Err(e) => rejected(e),
            };
            r.record(tc, out);
        }
    }
    r.finish();
}

/// `rsassa_pkcs1_verify_schema_v1.json` with a mechanism cryptoki 0.12 cannot name
/// (`CKM_SHA3_*_RSA_PKCS`, called through the raw function list).
fn rsa_pkcs1_verify_raw(file: &str, mech: u64) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    for g in groups(&doc) {
        let key = match import_rsa_public(&s, &hx(&g["publicKeyDer"])) {
            Ok(k) => k,
            Err(e) => {
                record_group_rejected(&mut r, g, e);
                continue;
            }
        };
        for tc in tests(g) {
            let (msg, sig) = (hx(&tc["msg"]), hx(&tc["sig"]));
            let out = match raw_verify(&s, mech, None, key, &msg, &sig, None) {
                Ok(()) => Outcome::Accepted,
                Err(e) => rejected(e),
            };
            r.record(tc, out);
        }
    }
    r.finish();
}

/// The same file through `C_VerifyRecover` with `CKM_RSA_PKCS` (the key with
/// `CKA_VERIFY_RECOVER`): a case is accepted when the recovered data is exactly the DER
/// DigestInfo of the message's hash, as PKCS#1 v1.5 verification requires.
fn rsa_pkcs1_verify_recover(file: &str) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(&format!("vr-{file}"));
    for g in groups(&doc) {
        let (md, prefix): (_, &[u8]) = match g["sha"].as_str() {
            Some("SHA-256") => (
                openssl::hash::MessageDigest::sha256(),
                &[
                    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04,
                    0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
                ],
            ),
            other => panic!("unexpected sha {other:?}"),
        };
        let key = match import_rsa_public(&s, &hx(&g["publicKeyDer"])) {
            Ok(k) => k,
            Err(e) => {
                record_group_rejected(&mut r, g, e);
                continue;
            }
        };
        for tc in tests(g) {
            let msg = hx(&tc["msg"]);
            let mut expected = prefix.to_vec();
            expected.extend_from_slice(&openssl::hash::hash(md, &msg).expect("hash"));
            let out = match raw_verify_recover(&s, CKM_RSA_PKCS_RAW, key, &hx(&tc["sig"])) {
                Ok(data) if data == expected => Outcome::Accepted,
                Ok(data) => Outcome::Rejected(format!("recovered {}", hex::encode(data))),
                Err(e) => rejected(e),
            };
            r.record(tc, out);
        }
    }
    r.finish();
}

/// `CKM_RSA_PKCS` as the raw number, for the raw recover calls.
const CKM_RSA_PKCS_RAW: u64 = 0x0000_0001;

/// `C_VerifyRecoverInit` and `C_VerifyRecover` (cryptoki 0.12 has neither), two-call.
fn raw_verify_recover(
    s: &Session,
    mech: u64,
    key: ObjectHandle,
    signature: &[u8],
) -> cryptoki::error::Result<Vec<u8>> {
    use cryptoki::context::Function;
    let mut m = cryptoki_sys::CK_MECHANISM {
        mechanism: mech,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    // SAFETY: a live session and key of this test; `m` outlives the call.
    let rv = unsafe { raw().C_VerifyRecoverInit(s.handle(), &mut m, key.handle()) };
    raw_result(rv, Function::VerifyRecoverInit)?;
    let sig = signature.as_ptr().cast_mut();
    let sig_len = signature.len() as cryptoki_sys::CK_ULONG;
    let mut len: cryptoki_sys::CK_ULONG = 0;
    // SAFETY: `signature` is readable; a NULL output asks for the length.
    let rv =
        unsafe { raw().C_VerifyRecover(s.handle(), sig, sig_len, std::ptr::null_mut(), &mut len) };
    raw_result(rv, Function::VerifyRecover)?;
    let mut out = vec![0u8; len as usize];
    // SAFETY: `out` has `len` writable bytes.
    let rv = unsafe { raw().C_VerifyRecover(s.handle(), sig, sig_len, out.as_mut_ptr(), &mut len) };
    raw_result(rv, Function::VerifyRecover)?;
    out.truncate(len as usize);
    Ok(out)
}

/// `rsassa_pss_verify_schema_v1.json`: CKM_SHA*_RSA_PKCS_PSS with the group's MGF1 hash and
/// salt length.
fn rsa_pss_verify(file: &str) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    for g in groups(&doc) {
        assert_eq!(g["mgf"].as_str(), Some("MGF1"), "{file}: only MGF1 exists");
        let sha = g["sha"].as_str().expect("sha");
        let params = PkcsPssParams {
            hash_alg: hash_mech(sha),
            mgf: mgf(g["mgfSha"].as_str().expect("mgfSha")),
            s_len: g["sLen"].as_u64().expect("sLen").into(),
        };
        let mech = match sha {
            "SHA-1" => Mechanism::Sha1RsaPkcsPss(params),
            "SHA-256" => Mechanism::Sha256RsaPkcsPss(params),
            "SHA-384" => Mechanism::Sha384RsaPkcsPss(params),
            "SHA-512" => Mechanism::Sha512RsaPkcsPss(params),
            other => panic!("unexpected sha {other}"),
        };
        let key = match import_rsa_public(&s, &hx(&g["publicKeyDer"])) {
            Ok(k) => k,
            Err(e) => {
                record_group_rejected(&mut r, g, e);
                continue;
            }
        };
        for tc in tests(g) {
            let out = match s.verify(&mech, key, &hx(&tc["msg"]), &hx(&tc["sig"])) {
                Ok(()) => Outcome::Accepted,
                Err(e) => rejected(e),
            };
            r.record(tc, out);
        }
    }
    r.finish();
}

/// Decryption outcome against the expected plaintext.
fn decrypted(res: cryptoki::error::Result<Vec<u8>>, want: &[u8]) -> Outcome {
    match res {
        Ok(pt) if pt == want => Outcome::Accepted,
        Ok(pt) => Outcome::WrongOutput(format!(
            "plaintext {} != expected {}",
            hex::encode(pt),
            hex::encode(want)
        )),
        Err(e) => rejected(e),
    }
}

/// `rsaes_pkcs1_decrypt_schema_v1.json`: CKM_RSA_PKCS decryption. Also checks RFC 8017 §7.2.2
/// as the file's notes ask: every `InvalidPkcs1Padding` case fails with the same CK_RV, so
/// the error is no padding oracle.
fn rsa_pkcs1_decrypt(file: &str) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    let mut padding_errors: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for g in groups(&doc) {
        let key = match import_rsa_private(&s, &hx(&g["privateKeyPkcs8"])) {
            Ok(k) => k,
            Err(e) => {
                record_group_rejected(&mut r, g, e);
                continue;
            }
        };
        for tc in tests(g) {
            let res = s.decrypt(&Mechanism::RsaPkcs, key, &hx(&tc["ct"]));
            let out = decrypted(res, &hx(&tc["msg"]));
            let padding_flag = tc["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "InvalidPkcs1Padding"));
            if let (true, Outcome::Rejected(why)) = (padding_flag, &out) {
                padding_errors
                    .entry(why.clone())
                    .or_default()
                    .push(tc["tcId"].as_u64().unwrap_or(0));
            }
            r.record(tc, out);
        }
    }
    assert!(
        padding_errors.len() <= 1,
        "{file}: invalid PKCS#1 paddings must be indistinguishable, got {padding_errors:?}"
    );
    r.finish();
}

/// `rsaes_oaep_decrypt_schema_v1.json`: CKM_RSA_PKCS_OAEP with the group's hashes and the
/// case's label as `CKZ_DATA_SPECIFIED` source data.
fn rsa_oaep_decrypt(file: &str) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    for g in groups(&doc) {
        assert_eq!(g["mgf"].as_str(), Some("MGF1"), "{file}: only MGF1 exists");
        let hash = hash_mech(g["sha"].as_str().expect("sha"));
        let mgf = mgf(g["mgfSha"].as_str().expect("mgfSha"));
        let key = match import_rsa_private(&s, &hx(&g["privateKeyPkcs8"])) {
            Ok(k) => k,
            Err(e) => {
                record_group_rejected(&mut r, g, e);
                continue;
            }
        };
        for tc in tests(g) {
            let label = hx(&tc["label"]);
            let source = if label.is_empty() {
                PkcsOaepSource::empty()
            } else {
                PkcsOaepSource::data_specified(&label)
            };
            let mech = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash, mgf, source));
            let out = decrypted(s.decrypt(&mech, key, &hx(&tc["ct"])), &hx(&tc["msg"]));
            r.record(tc, out);
        }
    }
    r.finish();
}

/// `aead_test_schema_v1.json` (AES-GCM): CKM_AES_GCM decryption of ct‖tag; valid cases are
/// also encrypted with the given IV and must give ct‖tag.
fn aead_gcm(file: &str) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    let mut keys = SecretKeys::new(
        &s,
        KeyType::AES,
        vec![Attribute::Encrypt(true), Attribute::Decrypt(true)],
    );
    for g in groups(&doc) {
        let tag_bits = g["tagSize"].as_u64().expect("tagSize");
        for tc in tests(g) {
            let key = keys.get(&hx(&tc["key"]));
            let (iv, aad, msg) = (hx(&tc["iv"]), hx(&tc["aad"]), hx(&tc["msg"]));
            if iv.len() > 128 {
                // sqlhsm's documented GCM limit: the IV must be refused, not mishandled.
                let mut long = iv.clone();
                let params = GcmParams::new(&mut long, &aad, tag_bits.into()).expect("params");
                let refused = s.decrypt(&Mechanism::AesGcm(params), key, &hx(&tc["ct"]));
                assert!(
                    matches!(refused, Err(Error::Pkcs11(cryptoki::error::RvError::MechanismParamInvalid, _))),
                    "tcId {}: a {}-byte GCM IV must give CKR_MECHANISM_PARAM_INVALID, got {refused:?}",
                    tc["tcId"],
                    iv.len()
                );
                r.skip("AES-GCM IV longer than 128 bytes: refused by sqlhsm's documented limit (OpenSSL 3.0)");
                continue;
            }
            let mut ct_tag = hx(&tc["ct"]);
            ct_tag.extend(hx(&tc["tag"]));
            let mut iv_d = iv.clone();
            let out = match GcmParams::new(&mut iv_d, &aad, tag_bits.into()) {
                Ok(p) => decrypted(s.decrypt(&Mechanism::AesGcm(p), key, &ct_tag), &msg),
                Err(e) => Outcome::Rejected(format!("GcmParams: {e}")),
            };
            let out = match (tc["result"].as_str(), out) {
                (Some("valid"), Outcome::Accepted) => {
                    let mut iv_e = iv.clone();
                    let p = GcmParams::new(&mut iv_e, &aad, tag_bits.into()).expect("params");
                    match s.encrypt(&Mechanism::AesGcm(p), key, &msg) {
                        Ok(c) if c == ct_tag => Outcome::Accepted,
                        Ok(c) => Outcome::WrongOutput(format!(
                            "encrypt gave {} != ct||tag {}",
                            hex::encode(c),
                            hex::encode(&ct_tag)
                        )),
                        Err(e) => rejected(e),
                    }
                }
                (_, o) => o,
            };
            r.record(tc, out);
        }
    }
    r.finish();
}

/// `ind_cpa_test_schema_v1.json` (AES-CBC-PKCS5): CKM_AES_CBC_PAD decryption; valid cases are
/// also encrypted and must give ct.
fn ind_cpa_cbc_pad(file: &str) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    let mut keys = SecretKeys::new(
        &s,
        KeyType::AES,
        vec![Attribute::Encrypt(true), Attribute::Decrypt(true)],
    );
    for g in groups(&doc) {
        for tc in tests(g) {
            let key = keys.get(&hx(&tc["key"]));
            let iv: [u8; 16] = hx(&tc["iv"]).try_into().expect("16-byte IV");
            let (msg, ct) = (hx(&tc["msg"]), hx(&tc["ct"]));
            let mech = Mechanism::AesCbcPad(iv);
            let out = decrypted(s.decrypt(&mech, key, &ct), &msg);
            let out = match (tc["result"].as_str(), out) {
                (Some("valid"), Outcome::Accepted) => match s.encrypt(&mech, key, &msg) {
                    Ok(c) if c == ct => Outcome::Accepted,
                    Ok(c) => Outcome::WrongOutput(format!("encrypt gave {}", hex::encode(c))),
                    Err(e) => rejected(e),
                },
                (_, o) => o,
            };
            r.record(tc, out);
        }
    }
    r.finish();
}

/// `keywrap_test_schema_v1.json`: C_UnwrapKey of ct into a generic secret (CKA_VALUE must be
/// msg) with CKM_AES_KEY_WRAP or CKM_AES_KEY_WRAP_KWP; valid cases are also wrapped
/// (C_WrapKey of a generic secret holding msg must give ct).
fn keywrap(file: &str, mech: u64) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    let mut keys = SecretKeys::new(
        &s,
        KeyType::AES,
        vec![Attribute::Wrap(true), Attribute::Unwrap(true)],
    );
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    for g in groups(&doc) {
        for tc in tests(g) {
            let kek = keys.get(&hx(&tc["key"]));
            let (msg, ct) = (hx(&tc["msg"]), hx(&tc["ct"]));
            let out = match raw_unwrap_key(&s, mech, kek, &ct, &template) {
                Ok(h) => {
                    let value = get_bytes(&s, h, AttributeType::Value);
                    let _ = s.destroy_object(h);
                    if value == msg {
                        Outcome::Accepted
                    } else {
                        Outcome::WrongOutput(format!("unwrapped {}", hex::encode(value)))
                    }
                }
                Err(e) => rejected(e),
            };
            let out = match (tc["result"].as_str(), out) {
                (Some("valid"), Outcome::Accepted) => {
                    let k = session_secret(&s, KeyType::GENERIC_SECRET, &msg, &[]);
                    let res = raw_wrap_key(&s, mech, kek, k);
                    let _ = s.destroy_object(k);
                    match res {
                        Ok((_, w)) if w == ct => Outcome::Accepted,
                        Ok((_, w)) => Outcome::WrongOutput(format!("wrap gave {}", hex::encode(w))),
                        Err(e) => rejected(e),
                    }
                }
                (_, o) => o,
            };
            r.record(tc, out);
        }
    }
    r.finish();
}

/// `mac_test_schema_v1.json` (HMAC): generic secret keys with CKM_SHA*_HMAC. Full-length tags:
/// C_Verify decides, and valid cases must also C_Sign to the tag. Truncated tags (a group's
/// `tagSize` below the hash size): CKM_SHA*_HMAC always gives the full MAC, so the case is
/// accepted iff the signed MAC starts with the tag; and C_Verify of the truncated tag must
/// fail (the mechanism's signature length is fixed; `_HMAC_GENERAL` is for truncation).
fn mac(file: &str, mech: Mechanism, full_len: usize) {
    mac_with(
        file,
        full_len,
        |s, key, msg| s.sign(&mech, key, msg),
        |s, key, msg, tag| s.verify(&mech, key, msg, tag),
    );
}

/// [`mac`] with a mechanism cryptoki 0.12 cannot name (`CKM_SHA3_*_HMAC`), called through the
/// raw function list.
fn mac_raw(file: &str, mech: u64, full_len: usize) {
    mac_with(
        file,
        full_len,
        |s, key, msg| raw_sign(s, mech, None, key, msg, None),
        |s, key, msg, tag| raw_verify(s, mech, None, key, msg, tag, None),
    );
}

fn mac_with(
    file: &str,
    full_len: usize,
    sign: impl Fn(&Session, ObjectHandle, &[u8]) -> cryptoki::error::Result<Vec<u8>>,
    verify: impl Fn(&Session, ObjectHandle, &[u8], &[u8]) -> cryptoki::error::Result<()>,
) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    let mut keys = SecretKeys::new(
        &s,
        KeyType::GENERIC_SECRET,
        vec![Attribute::Sign(true), Attribute::Verify(true)],
    );
    for g in groups(&doc) {
        let tag_len = (g["tagSize"].as_u64().expect("tagSize") / 8) as usize;
        for tc in tests(g) {
            let key = keys.get(&hx(&tc["key"]));
            let (msg, tag) = (hx(&tc["msg"]), hx(&tc["tag"]));
            let out = if tag_len == full_len {
                match verify(&s, key, &msg, &tag) {
                    Ok(()) if tc["result"] == "valid" => match sign(&s, key, &msg) {
                        Ok(m) if m == tag => Outcome::Accepted,
                        Ok(m) => Outcome::WrongOutput(format!("C_Sign gave {}", hex::encode(m))),
                        Err(e) => rejected(e),
                    },
                    Ok(()) => Outcome::Accepted,
                    Err(e) => rejected(e),
                }
            } else {
                match sign(&s, key, &msg) {
                    Ok(m) if m.len() != full_len => {
                        Outcome::WrongOutput(format!("C_Sign gave {} bytes", m.len()))
                    }
                    Ok(m) if m.starts_with(&tag) => match verify(&s, key, &msg, &tag) {
                        Ok(()) => Outcome::WrongOutput(
                            "C_Verify accepted a truncated tag for a fixed-length MAC".into(),
                        ),
                        Err(_) => Outcome::Accepted,
                    },
                    Ok(_) => Outcome::Rejected("truncated tag is not a prefix of the MAC".into()),
                    Err(e) => rejected(e),
                }
            };
            r.record(tc, out);
        }
    }
    r.finish();
}

// ----- HKDF -----

/// `CKM_HKDF_DERIVE` (extract and expand) from a generic secret holding the IKM, into a generic
/// secret of `size` bytes read back with `CKA_VALUE`. An empty salt is `CKF_HKDF_SALT_NULL`
/// (RFC 5869: HashLen zeros), any other `CKF_HKDF_SALT_DATA`. The `invalid` cases ask for more
/// than 255 blocks and must be refused.
fn hkdf(file: &str, hash: MechanismType) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    let mut keys = SecretKeys::new(&s, KeyType::GENERIC_SECRET, vec![Attribute::Derive(true)]);
    for g in groups(&doc) {
        for tc in tests(g) {
            let (ikm, salt, info, okm) = (
                hx(&tc["ikm"]),
                hx(&tc["salt"]),
                hx(&tc["info"]),
                hx(&tc["okm"]),
            );
            let size = tc["size"].as_u64().expect("size");
            let base = keys.get(&ikm);
            let salt = match salt.is_empty() {
                true => HkdfSalt::Null,
                false => HkdfSalt::Data(&salt),
            };
            let mechanism = Mechanism::HkdfDerive(HkdfParams::new(hash, Some(salt), Some(&info)));
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::GENERIC_SECRET),
                Attribute::ValueLen(size.into()),
                Attribute::Token(false),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
            ];
            let out = match s.derive_key(&mechanism, base, &template) {
                Ok(key) => {
                    let value = get_bytes(&s, key, AttributeType::Value);
                    let _ = s.destroy_object(key);
                    match value == okm {
                        true => Outcome::Accepted,
                        false => Outcome::WrongOutput(hex::encode(value)),
                    }
                }
                Err(e) => rejected(e),
            };
            r.record(tc, out);
        }
    }
    r.finish();
}

/// Runs `m` under `key` over `input`, single-part and (when `chunk` is given) multi-part too;
/// both must agree.
fn crypt_both(
    s: &Session,
    encrypt: bool,
    m: &mut cryptoki_sys::CK_MECHANISM,
    key: ObjectHandle,
    input: &[u8],
    chunk: Option<usize>,
) -> cryptoki::error::Result<Vec<u8>> {
    let single = raw_crypt(s, encrypt, m, key, input, None)?;
    if let Some(chunk) = chunk {
        let parts = raw_crypt(s, encrypt, m, key, input, Some(chunk))?;
        assert_eq!(parts, single, "multi-part differs from single-part");
    }
    Ok(single)
}

/// Session keys of a `CKK_*` cryptoki 0.12 cannot name, by key bytes.
struct RawKeys<'a> {
    s: &'a Session,
    key_type: u64,
    cache: HashMap<Vec<u8>, ObjectHandle>,
}

impl<'a> RawKeys<'a> {
    fn new(s: &'a Session, key_type: u64) -> Self {
        RawKeys {
            s,
            key_type,
            cache: HashMap::new(),
        }
    }

    /// The key, imported once; a refused import is asked again each time.
    fn get(&mut self, key: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
        if let Some(h) = self.cache.get(key) {
            return Ok(*h);
        }
        let h = raw_secret(self.s, self.key_type, key)?;
        self.cache.insert(key.to_vec(), h);
        Ok(h)
    }
}

/// An AEAD case (`aead_test_schema_v1.json`): decryption of ct‖tag with `params` (built from
/// the case) must give msg, and valid cases must also encrypt to ct‖tag; both single-part and
/// in 7-byte pieces.
fn aead_case<P>(
    s: &Session,
    mech: u64,
    key: ObjectHandle,
    tc: &Value,
    mut params: impl FnMut() -> P,
) -> Outcome {
    let mut ct_tag = hx(&tc["ct"]);
    ct_tag.extend(hx(&tc["tag"]));
    let msg = hx(&tc["msg"]);
    let mut p = params();
    let mut m = raw_mech(mech, Some(&mut p));
    let out = decrypted(crypt_both(s, false, &mut m, key, &ct_tag, Some(7)), &msg);
    match (tc["result"].as_str(), out) {
        (Some("valid"), Outcome::Accepted) => {
            let mut p = params();
            let mut m = raw_mech(mech, Some(&mut p));
            match crypt_both(s, true, &mut m, key, &msg, Some(7)) {
                Ok(c) if c == ct_tag => Outcome::Accepted,
                Ok(c) => Outcome::WrongOutput(format!(
                    "encrypt gave {} != ct||tag {}",
                    hex::encode(c),
                    hex::encode(&ct_tag)
                )),
                Err(e) => rejected(e),
            }
        }
        (_, o) => o,
    }
}

/// `aead_test_schema_v1.json` (AES-CCM): `CKM_AES_CCM` with `CK_CCM_PARAMS` (the data length
/// declared: the plaintext's; the MAC length: the group's tag size).
fn aead_ccm(file: &str) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    let mut keys = SecretKeys::new(
        &s,
        KeyType::AES,
        vec![Attribute::Encrypt(true), Attribute::Decrypt(true)],
    );
    for g in groups(&doc) {
        let mac_len = g["tagSize"].as_u64().expect("tagSize") / 8;
        for tc in tests(g) {
            let key = keys.get(&hx(&tc["key"]));
            let (mut iv, mut aad) = (hx(&tc["iv"]), hx(&tc["aad"]));
            let data_len = hx(&tc["msg"]).len() as u64;
            let out = aead_case(&s, cryptoki_sys::CKM_AES_CCM, key, tc, || {
                cryptoki_sys::CK_CCM_PARAMS {
                    ulDataLen: data_len,
                    pNonce: iv.as_mut_ptr(),
                    ulNonceLen: iv.len() as u64,
                    pAAD: aad.as_mut_ptr(),
                    ulAADLen: aad.len() as u64,
                    ulMACLen: mac_len,
                }
            });
            r.record(tc, out);
        }
    }
    r.finish();
}

/// `aead_test_schema_v1.json` (ChaCha20-Poly1305): `CKM_CHACHA20_POLY1305` with
/// `CK_SALSA20_CHACHA20_POLY1305_PARAMS` and `CKK_CHACHA20` keys.
fn aead_chacha20_poly1305(file: &str) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    let mut keys = RawKeys::new(&s, cryptoki_sys::CKK_CHACHA20);
    for g in groups(&doc) {
        for tc in tests(g) {
            let key = match keys.get(&hx(&tc["key"])) {
                Ok(k) => k,
                Err(e) => {
                    r.record(tc, rejected(e));
                    continue;
                }
            };
            let (mut iv, mut aad) = (hx(&tc["iv"]), hx(&tc["aad"]));
            let out = aead_case(&s, cryptoki_sys::CKM_CHACHA20_POLY1305, key, tc, || {
                cryptoki_sys::CK_SALSA20_CHACHA20_POLY1305_PARAMS {
                    pNonce: iv.as_mut_ptr(),
                    ulNonceLen: iv.len() as u64,
                    pAAD: aad.as_mut_ptr(),
                    ulAADLen: aad.len() as u64,
                }
            });
            r.record(tc, out);
        }
    }
    r.finish();
}

/// `ind_cpa_test_schema_v1.json` (AES-XTS): `CKM_AES_XTS` with `CKK_AES_XTS` keys; the case's
/// IV is the tweak's leading bytes (the sector number, little-endian), zero-padded to the
/// 16-byte parameter. Decryption of ct must give msg and encryption of msg ct, single-part and
/// multi-part.
fn ind_cpa_xts(file: &str) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    let mut keys = RawKeys::new(&s, cryptoki_sys::CKK_AES_XTS);
    for g in groups(&doc) {
        for tc in tests(g) {
            let raw_key = hx(&tc["key"]);
            if raw_key.len() == 48 {
                // Two AES-192 keys: PKCS#11 has no such CKK_AES_XTS key (32 or 64 bytes) and
                // OpenSSL no AES-192-XTS; the import must be refused.
                let refused = keys.get(&raw_key);
                assert!(
                    matches!(
                        refused,
                        Err(Error::Pkcs11(
                            cryptoki::error::RvError::AttributeValueInvalid,
                            _
                        ))
                    ),
                    "tcId {}: a 48-byte CKK_AES_XTS key must be refused, got {refused:?}",
                    tc["tcId"]
                );
                r.skip("AES-192-XTS (48-byte key): not a PKCS#11 CKK_AES_XTS size; import refused");
                continue;
            }
            let key = match keys.get(&raw_key) {
                Ok(k) => k,
                Err(e) => {
                    r.record(tc, rejected(e));
                    continue;
                }
            };
            let mut tweak = hx(&tc["iv"]);
            tweak.resize(16, 0);
            let mut tweak: [u8; 16] = tweak.try_into().expect("16-byte tweak");
            let (msg, ct) = (hx(&tc["msg"]), hx(&tc["ct"]));
            let mut m = raw_mech(cryptoki_sys::CKM_AES_XTS, Some(&mut tweak));
            let out = decrypted(crypt_both(&s, false, &mut m, key, &ct, Some(11)), &msg);
            let out = match (tc["result"].as_str(), out) {
                (Some("valid"), Outcome::Accepted) => {
                    match crypt_both(&s, true, &mut m, key, &msg, Some(11)) {
                        Ok(c) if c == ct => Outcome::Accepted,
                        Ok(c) => Outcome::WrongOutput(format!("encrypt gave {}", hex::encode(c))),
                        Err(e) => rejected(e),
                    }
                }
                (_, o) => o,
            };
            r.record(tc, out);
        }
    }
    r.finish();
}

// ----- ECDH -----

/// Reads one DER TLV: (tag, contents, rest). Definite lengths only.
fn der_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&l0, mut b) = b.split_first()?;
    let len = if l0 < 0x80 {
        l0 as usize
    } else {
        let n = (l0 & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let len = b[..n].iter().fold(0usize, |a, &x| (a << 8) | x as usize);
        b = &b[n..];
        len
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

/// A Weierstrass curve of the ECDH files: its name there, `CKA_EC_PARAMS` and field length.
struct EcdhCurve {
    name: &'static str,
    params: &'static [u8],
    field: usize,
}

const ECDH_CURVES: [EcdhCurve; 4] = [
    EcdhCurve {
        name: "secp256r1",
        params: P256,
        field: 32,
    },
    EcdhCurve {
        name: "secp224r1",
        params: P224,
        field: 28,
    },
    EcdhCurve {
        name: "secp256k1",
        params: SECP256K1,
        field: 32,
    },
    EcdhCurve {
        name: "brainpoolP256r1",
        params: BRAINPOOL_P256R1,
        field: 32,
    },
];

/// id-ecPublicKey (1.2.840.10045.2.1), the start of an EC SPKI's AlgorithmIdentifier.
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

const SKIP_ECDH_CURVE: &str = "SPKI names another curve or explicit parameters: \
    CKM_ECDH1_DERIVE passes only the point, the module never sees the curve";
const SKIP_ECDH_DER: &str =
    "SPKI does not parse as DER (InvalidAsn): there is no point to pass to the module";

/// The peer point of an SPKI on `curve`, or why the case cannot reach the module.
fn spki_point(spki: &[u8], curve: &EcdhCurve) -> Result<Vec<u8>, &'static str> {
    let (tag, body, rest) = der_tlv(spki).ok_or(SKIP_ECDH_DER)?;
    if tag != 0x30 || !rest.is_empty() {
        return Err(SKIP_ECDH_DER);
    }
    let (tag, alg, body) = der_tlv(body).ok_or(SKIP_ECDH_DER)?;
    if tag != 0x30 {
        return Err(SKIP_ECDH_DER);
    }
    let (tag, bits, rest) = der_tlv(body).ok_or(SKIP_ECDH_DER)?;
    if tag != 0x03 || !rest.is_empty() {
        return Err(SKIP_ECDH_DER);
    }
    if alg != [EC_PUBLIC_KEY_OID, curve.params].concat() {
        return Err(SKIP_ECDH_CURVE);
    }
    // The BIT STRING's first byte counts unused bits; an empty BIT STRING gives an empty point,
    // which the module must refuse.
    Ok(bits.get(1..).unwrap_or(&[]).to_vec())
}

/// The uncompressed point an SPKI on `curve` ends with (`00 04 x y` closing its BIT STRING),
/// found without parsing the (possibly malformed) structure before it.
fn trailing_point(spki: &[u8], curve: &EcdhCurve) -> Option<Vec<u8>> {
    let (n, len) = (spki.len(), 2 * curve.field + 1);
    (n > len && spki[n - len - 1] == 0 && spki[n - len] == 0x04).then(|| spki[n - len..].to_vec())
}

/// The derived secret's `CKA_VALUE` (`CKM_ECDH1_DERIVE`, `CKD_NULL`, the peer's public value
/// raw), or why the module refused.
fn derived(
    s: &Session,
    key: ObjectHandle,
    public: &[u8],
    len: usize,
) -> cryptoki::error::Result<Vec<u8>> {
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::ValueLen((len as u64).into()),
    ];
    let mech = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), public));
    let h = s.derive_key(&mech, key, &template)?;
    let value = get_bytes(s, h, AttributeType::Value);
    let _ = s.destroy_object(h);
    Ok(value)
}

fn shared_outcome(res: cryptoki::error::Result<Vec<u8>>, tc: &Value) -> Outcome {
    match res {
        Ok(value) if value == hx(&tc["shared"]) => Outcome::Accepted,
        Ok(value) => Outcome::WrongOutput(format!("shared secret {}", hex::encode(value))),
        Err(e) => rejected(e),
    }
}

/// `ecdh_test_schema_v1.json` (encoding `asn`): the private scalar is imported as a CKK_EC
/// private key on the file's curve with CKA_DERIVE; C_DeriveKey with CKM_ECDH1_DERIVE /
/// CKD_NULL and the peer's point (raw) derives a field-long generic secret whose CKA_VALUE must
/// be `shared`.
fn ecdh(file: &str) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    let mut privs: HashMap<Vec<u8>, Result<ObjectHandle, String>> = HashMap::new();
    for g in groups(&doc) {
        let curve = ECDH_CURVES
            .iter()
            .find(|c| g["curve"].as_str() == Some(c.name))
            .unwrap_or_else(|| panic!("{file}: unexpected curve {}", g["curve"]));
        assert_eq!(
            g["encoding"].as_str(),
            Some("asn"),
            "{file}: SPKI peer keys"
        );
        for tc in tests(g) {
            let spki = hx(&tc["public"]);
            let point = match spki_point(&spki, curve) {
                Ok(p) => p,
                // An `acceptable` case (odd but tolerable SPKI encodings, or explicit
                // parameters that are the curve's) still holds a point on it: run it, either
                // outcome is fine but a wrong secret is not.
                Err(_)
                    if tc["result"] == "acceptable" && trailing_point(&spki, curve).is_some() =>
                {
                    trailing_point(&spki, curve).unwrap_or_default()
                }
                Err(why) => {
                    r.skip(why);
                    continue;
                }
            };
            // The scalar may carry a leading zero byte (DER integer style): field-long exactly.
            let mut d = hx(&tc["private"]);
            while d.len() > curve.field && d[0] == 0 {
                d.remove(0);
            }
            while d.len() < curve.field {
                d.insert(0, 0);
            }
            let key = privs
                .entry(d.clone())
                .or_insert_with(|| {
                    s.create_object(&[
                        Attribute::Class(ObjectClass::PRIVATE_KEY),
                        Attribute::KeyType(KeyType::EC),
                        Attribute::Token(false),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Derive(true),
                        Attribute::EcParams(curve.params.to_vec()),
                        Attribute::Value(d.clone()),
                    ])
                    .map_err(|e| e.to_string())
                })
                .clone();
            let key = match key {
                Ok(k) => k,
                Err(e) => {
                    r.record(tc, Outcome::Rejected(format!("private key import: {e}")));
                    continue;
                }
            };
            let out = shared_outcome(derived(&s, key, &point, curve.field), tc);
            r.record(tc, out);
        }
    }
    r.finish();
}

/// `xdh_comp_schema_v1.json` (X25519, X448): the private value is imported as a
/// CKK_EC_MONTGOMERY private key (`CKA_EC_PARAMS` the curve's OID) with CKA_DERIVE;
/// CKM_ECDH1_DERIVE with the peer's raw public value must give `shared`. A peer value of small
/// order (all-zero secret) is refused; those cases are `acceptable`.
fn xdh(file: &str, params: &[u8], len: usize) {
    let doc = load(file);
    let mut r = Report::new(file, &doc);
    let s = session_for(file);
    for g in groups(&doc) {
        for tc in tests(g) {
            let key = s.create_object(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC_MONTGOMERY),
                Attribute::Token(false),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Derive(true),
                Attribute::EcParams(params.to_vec()),
                Attribute::Value(hx(&tc["private"])),
            ]);
            let key = match key {
                Ok(k) => k,
                Err(e) => {
                    r.record(tc, Outcome::Rejected(format!("private key import: {e}")));
                    continue;
                }
            };
            let out = shared_outcome(derived(&s, key, &hx(&tc["public"]), len), tc);
            let _ = s.destroy_object(key);
            r.record(tc, out);
        }
    }
    r.finish();
}

// ---------- one test per file ----------

/// Every file in the directory has a test below; a new file fails this until it gets one.
#[test]
fn every_file_has_a_test() {
    let known = [
        "aes_cbc_pkcs5_test.json",
        "aes_ccm_test.json",
        "aes_gcm_test.json",
        "aes_kwp_test.json",
        "aes_wrap_test.json",
        "aes_xts_test.json",
        "chacha20_poly1305_test.json",
        "ecdh_brainpoolP256r1_test.json",
        "ecdh_secp224r1_test.json",
        "ecdh_secp256k1_test.json",
        "ecdh_secp256r1_test.json",
        "ecdsa_brainpoolP256r1_sha256_p1363_test.json",
        "ecdsa_secp224r1_sha224_p1363_test.json",
        "ecdsa_secp256k1_sha256_p1363_test.json",
        "ecdsa_secp256r1_sha256_p1363_test.json",
        "ecdsa_secp256r1_sha3_256_test.json",
        "ecdsa_secp384r1_sha384_p1363_test.json",
        "ecdsa_secp521r1_sha512_p1363_test.json",
        "ed25519_test.json",
        "ed448_test.json",
        "hkdf_sha256_test.json",
        "hkdf_sha512_test.json",
        "hmac_sha256_test.json",
        "hmac_sha384_test.json",
        "hmac_sha3_256_test.json",
        "hmac_sha3_512_test.json",
        "hmac_sha512_test.json",
        // Their keys (seed → public key) are checked in tests/pq_keys.rs.
        "mldsa_44_sign_seed_test.json",
        "mldsa_65_sign_seed_test.json",
        "mldsa_87_sign_seed_test.json",
        // ML-KEM: tests/pq_kem.rs (C_DecapsulateKey, C_CreateObject) and src/crypto/kem.rs
        // (encapsulation with the vector's randomness, which the C ABI cannot pass); the
        // keygen file in tests/pq_keys.rs.
        "mlkem_1024_test.json",
        "mlkem_512_test.json",
        "mlkem_768_encaps_test.json",
        "mlkem_768_keygen_seed_test.json",
        "mlkem_768_test.json",
        "rsa_oaep_2048_sha1_mgf1sha1_test.json",
        "rsa_oaep_2048_sha256_mgf1sha256_test.json",
        "rsa_pkcs1_2048_test.json",
        "rsa_pss_2048_sha256_mgf1_32_test.json",
        "rsa_signature_2048_sha256_test.json",
        "rsa_signature_2048_sha3_256_test.json",
        "x25519_test.json",
        "x448_test.json",
    ];
    let mut on_disk: Vec<String> = std::fs::read_dir(DIR)
        .unwrap_or_else(|e| panic!("{DIR}: {e}"))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk, known,
        "Wycheproof files and the tests here must match"
    );
}

#[test]
fn ecdsa_secp256r1_sha256_p1363() {
    ecdsa_p1363_verify("ecdsa_secp256r1_sha256_p1363_test.json");
}

#[test]
fn ecdsa_secp384r1_sha384_p1363() {
    ecdsa_p1363_verify("ecdsa_secp384r1_sha384_p1363_test.json");
}

#[test]
fn ecdsa_secp521r1_sha512_p1363() {
    ecdsa_p1363_verify("ecdsa_secp521r1_sha512_p1363_test.json");
}

#[test]
fn ecdsa_secp224r1_sha224_p1363() {
    ecdsa_p1363_verify("ecdsa_secp224r1_sha224_p1363_test.json");
}

#[test]
fn ecdsa_secp256k1_sha256_p1363() {
    ecdsa_p1363_verify("ecdsa_secp256k1_sha256_p1363_test.json");
}

#[test]
fn ecdsa_brainpoolp256r1_sha256_p1363() {
    ecdsa_p1363_verify("ecdsa_brainpoolP256r1_sha256_p1363_test.json");
}

#[test]
fn ed25519() {
    eddsa_verify("ed25519_test.json", ED25519, EddsaSignatureScheme::Pure);
}

#[test]
fn ed448() {
    eddsa_verify("ed448_test.json", ED448, EddsaSignatureScheme::Ed448(&[]));
}

#[test]
fn rsa_signature_2048_sha256() {
    rsa_pkcs1_verify("rsa_signature_2048_sha256_test.json");
}

#[test]
fn rsa_signature_2048_sha256_verify_recover() {
    rsa_pkcs1_verify_recover("rsa_signature_2048_sha256_test.json");
}

#[test]
fn rsa_pss_2048_sha256_mgf1_32() {
    rsa_pss_verify("rsa_pss_2048_sha256_mgf1_32_test.json");
}

#[test]
fn rsa_pkcs1_2048_decrypt() {
    rsa_pkcs1_decrypt("rsa_pkcs1_2048_test.json");
}

#[test]
fn rsa_oaep_2048_sha1_mgf1sha1() {
    rsa_oaep_decrypt("rsa_oaep_2048_sha1_mgf1sha1_test.json");
}

#[test]
fn rsa_oaep_2048_sha256_mgf1sha256() {
    rsa_oaep_decrypt("rsa_oaep_2048_sha256_mgf1sha256_test.json");
}

#[test]
fn aes_gcm() {
    aead_gcm("aes_gcm_test.json");
}

#[test]
fn aes_ccm() {
    aead_ccm("aes_ccm_test.json");
}

#[test]
fn aes_xts() {
    ind_cpa_xts("aes_xts_test.json");
}

#[test]
fn chacha20_poly1305() {
    aead_chacha20_poly1305("chacha20_poly1305_test.json");
}

#[test]
fn aes_cbc_pkcs5() {
    ind_cpa_cbc_pad("aes_cbc_pkcs5_test.json");
}

#[test]
fn aes_wrap() {
    keywrap("aes_wrap_test.json", cryptoki_sys::CKM_AES_KEY_WRAP);
}

#[test]
fn aes_kwp() {
    keywrap("aes_kwp_test.json", CKM_AES_KEY_WRAP_KWP);
}

#[test]
fn hkdf_sha256() {
    hkdf("hkdf_sha256_test.json", MechanismType::SHA256);
}

#[test]
fn hkdf_sha512() {
    hkdf("hkdf_sha512_test.json", MechanismType::SHA512);
}

#[test]
fn hmac_sha256() {
    mac("hmac_sha256_test.json", Mechanism::Sha256Hmac, 32);
}

#[test]
fn hmac_sha512() {
    mac("hmac_sha512_test.json", Mechanism::Sha512Hmac, 64);
}

#[test]
fn ecdh_secp256r1() {
    ecdh("ecdh_secp256r1_test.json");
}

#[test]
fn ecdh_secp224r1() {
    ecdh("ecdh_secp224r1_test.json");
}

#[test]
fn ecdh_secp256k1() {
    ecdh("ecdh_secp256k1_test.json");
}

#[test]
fn ecdh_brainpoolp256r1() {
    ecdh("ecdh_brainpoolP256r1_test.json");
}

#[test]
fn x25519() {
    xdh("x25519_test.json", X25519, 32);
}

#[test]
fn x448() {
    xdh("x448_test.json", X448, 56);
}

#[test]
fn hmac_sha384() {
    mac("hmac_sha384_test.json", Mechanism::Sha384Hmac, 48);
}

#[test]
fn hmac_sha3_256() {
    mac_raw(
        "hmac_sha3_256_test.json",
        cryptoki_sys::CKM_SHA3_256_HMAC,
        32,
    );
}

#[test]
fn hmac_sha3_512() {
    mac_raw(
        "hmac_sha3_512_test.json",
        cryptoki_sys::CKM_SHA3_512_HMAC,
        64,
    );
}

#[test]
fn rsa_signature_2048_sha3_256() {
    rsa_pkcs1_verify_raw(
        "rsa_signature_2048_sha3_256_test.json",
        cryptoki_sys::CKM_SHA3_256_RSA_PKCS,
    );
}

#[test]
fn ecdsa_secp256r1_sha3_256() {
    ecdsa_der_verify_raw(
        "ecdsa_secp256r1_sha3_256_test.json",
        cryptoki_sys::CKM_ECDSA_SHA3_256,
        32,
    );
}

//! OpenTDF's hybrid KEMs through the C ABI: the vendor key types `CKK_SQLHSM_XWING`,
//! `CKK_SQLHSM_P256_ML_KEM_768`, `CKK_SQLHSM_P384_ML_KEM_1024`, their KEM mechanisms in
//! `C_EncapsulateKey` / `C_DecapsulateKey` and their key pair generations, called through the
//! raw function list (cryptoki has no names for vendor mechanisms).
//!
//! What the C ABI can check against outside values, and what it cannot:
//! - X-Wing (draft-connolly-cfrg-xwing-kem-10, `tests/data/hybrid/xwing_draft10.txt`): each
//!   vector's private key (the seed) is imported with `C_CreateObject`, the draft's ciphertext
//!   decapsulated into an extractable generic secret whose `CKA_VALUE` must be the vector's
//!   shared secret, and the public key sqlhsm derives is the vector's. Appendix D's key pair
//!   (`xwing_draft10_x509.pem`): the imported private key's `CKA_PUBLIC_KEY_INFO` is the
//!   draft's SubjectPublicKeyInfo byte for byte.
//! - The composites: no published ciphertext/secret pair exists for any key, and a ciphertext
//!   with a known secret can only be made with derandomised encapsulation, which PKCS#11 has no
//!   way to ask for; so the combiner's known answers are checked below the C ABI
//!   (`src/crypto/hybrid_kem/tests.rs`). Here OpenTDF's own key pairs
//!   (`tests/data/hybrid/opentdf_keys.pem`) are imported, their public values and
//!   SubjectPublicKeyInfo must be OpenTDF's byte for byte, and encapsulation to OpenTDF's
//!   public key decapsulates with OpenTDF's private key to the same secret.
//! - A wrapped (AES-KWP) hybrid private key is OpenTDF's PKCS#8 (for Appendix D's key, the
//!   draft's bytes) and unwraps into a key that decapsulates.
//! - For all three: generated pairs round trip (also as token objects read back from storage
//!   after a new login), a ciphertext of the wrong length is `CKR_WRAPPED_KEY_LEN_RANGE`, a key
//!   of another hybrid, of ML-KEM or in the wrong role is `CKR_KEY_TYPE_INCONSISTENT`.

mod common;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use cryptoki::error::RvError;
use cryptoki::object::{AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use cryptoki_sys::CKM_AES_KEY_WRAP_KWP;
use cryptoki_sys::*;

use common::*;

/// sqlhsm's vendor numbers (`include/sqlhsm.h`), written out as the other tests do.
const CKK_SQLHSM_XWING: CK_ULONG = 0xD351_0006;
const CKK_SQLHSM_P256_ML_KEM_768: CK_ULONG = 0xD351_0007;
const CKK_SQLHSM_P384_ML_KEM_1024: CK_ULONG = 0xD351_0008;
const CKM_SQLHSM_XWING: CK_ULONG = 0xD351_1006;
const CKM_SQLHSM_P256_ML_KEM_768: CK_ULONG = 0xD351_1007;
const CKM_SQLHSM_P384_ML_KEM_1024: CK_ULONG = 0xD351_1008;
const CKM_SQLHSM_XWING_KEY_PAIR_GEN: CK_ULONG = 0xD351_2006;
const CKM_SQLHSM_P256_ML_KEM_768_KEY_PAIR_GEN: CK_ULONG = 0xD351_2007;
const CKM_SQLHSM_P384_ML_KEM_1024_KEY_PAIR_GEN: CK_ULONG = 0xD351_2008;

/// One hybrid: key type, KEM mechanism, generation mechanism, OpenTDF's key_algorithm, public
/// key and ciphertext lengths (README, "Hybrid KEMs").
struct Hybrid {
    key_type: CK_ULONG,
    kem: CK_ULONG,
    generation: CK_ULONG,
    key_algorithm: CK_ULONG,
    public_len: usize,
    ciphertext_len: usize,
}

const XWING: Hybrid = Hybrid {
    key_type: CKK_SQLHSM_XWING,
    kem: CKM_SQLHSM_XWING,
    generation: CKM_SQLHSM_XWING_KEY_PAIR_GEN,
    key_algorithm: 6,
    public_len: 1184 + 32,
    ciphertext_len: 1088 + 32,
};
const P256_ML_KEM_768: Hybrid = Hybrid {
    key_type: CKK_SQLHSM_P256_ML_KEM_768,
    kem: CKM_SQLHSM_P256_ML_KEM_768,
    generation: CKM_SQLHSM_P256_ML_KEM_768_KEY_PAIR_GEN,
    key_algorithm: 7,
    public_len: 1184 + 65,
    ciphertext_len: 1088 + 65,
};
const P384_ML_KEM_1024: Hybrid = Hybrid {
    key_type: CKK_SQLHSM_P384_ML_KEM_1024,
    kem: CKM_SQLHSM_P384_ML_KEM_1024,
    generation: CKM_SQLHSM_P384_ML_KEM_1024_KEY_PAIR_GEN,
    key_algorithm: 8,
    public_len: 1568 + 97,
    ciphertext_len: 1568 + 97,
};
const ALL: [&Hybrid; 3] = [&XWING, &P256_ML_KEM_768, &P384_ML_KEM_1024];

fn session(label: &str) -> Session {
    let p = ctx();
    let slot = new_token(p, label);
    user_session(p, slot)
}

fn bytes(t: CK_ATTRIBUTE_TYPE, v: &[u8]) -> RawAttr {
    (t, v.to_vec())
}

fn rv_is<T: std::fmt::Debug>(r: cryptoki::error::Result<T>, want: RvError) -> bool {
    matches!(r, Err(cryptoki::error::Error::Pkcs11(got, _)) if got == want)
}

fn private_key(s: &Session, h: &Hybrid, value: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
    raw_create_object(
        s,
        vec![
            raw_ulong(CKA_CLASS, CKO_PRIVATE_KEY),
            raw_ulong(CKA_KEY_TYPE, h.key_type),
            raw_bool(CKA_TOKEN, false),
            raw_bool(CKA_DECAPSULATE, true),
            bytes(CKA_VALUE, value),
        ],
    )
}

fn public_key(s: &Session, h: &Hybrid, value: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
    raw_create_object(
        s,
        vec![
            raw_ulong(CKA_CLASS, CKO_PUBLIC_KEY),
            raw_ulong(CKA_KEY_TYPE, h.key_type),
            raw_bool(CKA_TOKEN, false),
            raw_bool(CKA_ENCAPSULATE, true),
            bytes(CKA_VALUE, value),
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

fn public_key_info(s: &Session, key: ObjectHandle) -> Vec<u8> {
    get_any_bytes(s, key, AttributeType::PublicKeyInfo)
}

fn decapsulated(
    s: &Session,
    h: &Hybrid,
    key: ObjectHandle,
    ct: &[u8],
) -> cryptoki::error::Result<Vec<u8>> {
    let secret = raw_decapsulate(s, h.kem, key, readable_secret(), ct)?;
    Ok(value(s, secret))
}

/// The secret of a fresh encapsulation to `public`, and its ciphertext.
fn encapsulated(s: &Session, h: &Hybrid, public: ObjectHandle) -> (Vec<u8>, Vec<u8>) {
    let (ct, key) = raw_encapsulate(s, h.kem, public, readable_secret()).expect("encapsulate");
    (value(s, key), ct)
}

/// `C_GenerateKeyPair` with a vendor mechanism (no parameter): (public, private).
fn generate_pair(
    s: &Session,
    mech: CK_MECHANISM_TYPE,
    mut public: Vec<RawAttr>,
    mut private: Vec<RawAttr>,
) -> cryptoki::error::Result<(ObjectHandle, ObjectHandle)> {
    let mut m = raw_mechanism(mech, None);
    let mut pt = raw_attrs(&mut public);
    let mut kt = raw_attrs(&mut private);
    let (mut hp, mut hk): (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) = (0, 0);
    // SAFETY: `m`, both templates (pointing into `public` and `private`) and both handles live
    // across the call.
    let rv = unsafe {
        raw().C_GenerateKeyPair(
            s.handle(),
            &mut m,
            pt.as_mut_ptr(),
            pt.len() as CK_ULONG,
            kt.as_mut_ptr(),
            kt.len() as CK_ULONG,
            &mut hp,
            &mut hk,
        )
    };
    raw_result(rv, cryptoki::context::Function::GenerateKeyPair)?;
    // SAFETY: handles the module just returned.
    Ok(unsafe {
        (
            ObjectHandle::new_from_raw(hp),
            ObjectHandle::new_from_raw(hk),
        )
    })
}

fn session_pair(s: &Session, h: &Hybrid) -> (ObjectHandle, ObjectHandle) {
    generate_pair(
        s,
        h.generation,
        vec![raw_bool(CKA_TOKEN, false), raw_bool(CKA_ENCAPSULATE, true)],
        vec![raw_bool(CKA_TOKEN, false), raw_bool(CKA_DECAPSULATE, true)],
    )
    .expect("hybrid key pair")
}

/// The DER of every PEM block of `text`, in order.
fn pem_blocks(text: &str) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("-----BEGIN ") {
            body = Some(String::new());
        } else if line.starts_with("-----END ") {
            let b64 = body.take().expect("END without BEGIN");
            blocks.push(B64.decode(b64).expect("base64"));
        } else if let Some(b) = body.as_mut() {
            b.push_str(line.trim());
        }
    }
    blocks
}

/// The content of the DER element at the start of `der`, and what follows it.
fn der_element(der: &[u8]) -> (u8, &[u8], &[u8]) {
    let (tag, first) = (der[0], der[1]);
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        let len = der[2..2 + n]
            .iter()
            .fold(0usize, |acc, &b| acc << 8 | b as usize);
        (len, 2 + n)
    };
    (tag, &der[header..header + len], &der[header + len..])
}

/// The last element of a DER SEQUENCE: the raw key of OpenTDF's PKCS#8 (its OCTET STRING) or
/// SubjectPublicKeyInfo (its BIT STRING, whose first byte counts unused bits).
fn last_element(der: &[u8]) -> (u8, Vec<u8>) {
    let (tag, mut rest, _) = der_element(der);
    assert_eq!(tag, 0x30, "not a SEQUENCE");
    loop {
        let (tag, content, after) = der_element(rest);
        if after.is_empty() {
            return (tag, content.to_vec());
        }
        rest = after;
    }
}

fn raw_private_of_pkcs8(der: &[u8]) -> Vec<u8> {
    let (tag, content) = last_element(der);
    assert_eq!(tag, 0x04, "PKCS#8 privateKey is an OCTET STRING");
    content
}

fn raw_public_of_spki(der: &[u8]) -> Vec<u8> {
    let (tag, content) = last_element(der);
    assert_eq!(tag, 0x03, "subjectPublicKey is a BIT STRING");
    assert_eq!(content[0], 0, "no unused bits");
    content[1..].to_vec()
}

/// The draft's vectors: `name value` lines, a value continuing on indented lines, vectors
/// separated by blank lines.
fn xwing_vectors() -> Vec<std::collections::HashMap<String, Vec<u8>>> {
    let text = include_str!("data/hybrid/xwing_draft10.txt");
    let mut vectors = Vec::new();
    for block in text.split("\n\n") {
        let mut fields = std::collections::HashMap::new();
        let mut name = String::new();
        let mut hex_value = String::new();
        for line in block.lines().filter(|l| !l.starts_with('#')) {
            if line.starts_with(' ') {
                hex_value.push_str(line.trim());
                continue;
            }
            if !name.is_empty() {
                fields.insert(std::mem::take(&mut name), hex::decode(&hex_value).unwrap());
            }
            let mut parts = line.split_whitespace();
            name = parts.next().unwrap_or_default().to_string();
            hex_value = parts.next().unwrap_or_default().to_string();
        }
        if !name.is_empty() {
            fields.insert(name, hex::decode(&hex_value).unwrap());
        }
        if fields.contains_key("ss") {
            vectors.push(fields);
        }
    }
    vectors
}

#[test]
fn xwing_draft_vectors_decapsulate_to_their_shared_secrets() {
    let s = session("hybrid-xwing-kat");
    let vectors = xwing_vectors();
    assert_eq!(vectors.len(), 2);
    for v in &vectors {
        let private = private_key(&s, &XWING, &v["sk"]).expect("import the seed");
        assert_eq!(
            decapsulated(&s, &XWING, private, &v["ct"]).unwrap(),
            v["ss"]
        );
        // The public key, imported from the vector, encapsulates to the imported private key.
        let public = public_key(&s, &XWING, &v["pk"]).expect("import the public key");
        assert_eq!(value(&s, public), v["pk"]);
        let (secret, ct) = encapsulated(&s, &XWING, public);
        assert_eq!(ct.len(), XWING.ciphertext_len);
        assert_eq!(decapsulated(&s, &XWING, private, &ct).unwrap(), secret);
        // A readable private key shows the seed it was made from.
        let readable = raw_create_object(
            &s,
            vec![
                raw_ulong(CKA_CLASS, CKO_PRIVATE_KEY),
                raw_ulong(CKA_KEY_TYPE, CKK_SQLHSM_XWING),
                raw_bool(CKA_TOKEN, false),
                raw_bool(CKA_SENSITIVE, false),
                raw_bool(CKA_EXTRACTABLE, true),
                bytes(CKA_VALUE, &v["sk"]),
            ],
        )
        .unwrap();
        assert_eq!(value(&s, readable), v["sk"]);
    }
}

/// Appendix D: the key pair with private key 00 01 … 1f, as PKCS#8 and SubjectPublicKeyInfo.
#[test]
fn xwing_appendix_d_key_pair_has_the_drafts_subject_public_key_info() {
    let s = session("hybrid-xwing-x509");
    let blocks = pem_blocks(include_str!("data/hybrid/xwing_draft10_x509.pem"));
    assert_eq!(blocks.len(), 2);
    let (pkcs8, spki) = (&blocks[0], &blocks[1]);
    let seed = raw_private_of_pkcs8(pkcs8);
    assert_eq!(seed, (0u8..32).collect::<Vec<_>>());
    let private = private_key(&s, &XWING, &seed).unwrap();
    assert_eq!(public_key_info(&s, private), *spki);
    let public = public_key(&s, &XWING, &raw_public_of_spki(spki)).unwrap();
    assert_eq!(public_key_info(&s, public), *spki);
}

/// OpenTDF's own P-256 and P-384 hybrid key pairs, as its `lib/ocrypto` wrote them.
#[test]
fn opentdfs_composite_key_pairs_import_unchanged_and_agree() {
    let s = session("hybrid-opentdf");
    let blocks = pem_blocks(include_str!("data/hybrid/opentdf_keys.pem"));
    assert_eq!(blocks.len(), 4);
    for (pair, h) in blocks.chunks(2).zip([&P256_ML_KEM_768, &P384_ML_KEM_1024]) {
        let (spki, pkcs8) = (&pair[0], &pair[1]);
        let raw_public = raw_public_of_spki(spki);
        assert_eq!(raw_public.len(), h.public_len);
        let public = public_key(&s, h, &raw_public).unwrap();
        let private = private_key(&s, h, &raw_private_of_pkcs8(pkcs8)).unwrap();
        // The public key sqlhsm derives from OpenTDF's private key is OpenTDF's, and so are
        // both envelopes.
        assert_eq!(value(&s, public), raw_public);
        assert_eq!(public_key_info(&s, private), *spki);
        assert_eq!(public_key_info(&s, public), *spki);
        let (secret, ct) = encapsulated(&s, h, public);
        assert_eq!((ct.len(), secret.len()), (h.ciphertext_len, 32));
        assert_eq!(decapsulated(&s, h, private, &ct).unwrap(), secret);
    }
}

#[test]
fn generated_pairs_round_trip_and_the_mechanisms_are_listed() {
    let p = ctx();
    let slot = new_token(p, "hybrid-generate");
    let s = user_session(p, slot);
    let listed = raw_mechanism_list(slot);
    for h in ALL {
        assert!(listed.contains(&h.kem) && listed.contains(&h.generation));
        let (public, private) = session_pair(&s, h);
        assert_eq!(raw_get_ulong(&s, public, CKA_KEY_TYPE).unwrap(), h.key_type);
        assert_eq!(
            raw_get_ulong(&s, private, CKA_KEY_TYPE).unwrap(),
            h.key_type
        );
        assert_eq!(value(&s, public).len(), h.public_len);
        assert_eq!(
            raw_get_ulong(&s, private, CKA_KEY_GEN_MECHANISM).unwrap(),
            h.generation
        );
        // The private key's value is sensitive.
        let r = s.get_attributes(private, &[AttributeType::Value]);
        assert!(
            matches!(r.as_deref(), Ok([]) | Err(_)),
            "a sensitive private key showed its value"
        );
        let (secret, ct) = encapsulated(&s, h, public);
        assert_eq!(ct.len(), h.ciphertext_len);
        assert_eq!(decapsulated(&s, h, private, &ct).unwrap(), secret);
        // An AES key from the template: the whole 32-byte secret, AES-256, on both sides.
        let aes = vec![
            raw_ulong(CKA_CLASS, CKO_SECRET_KEY),
            raw_ulong(CKA_KEY_TYPE, CKK_AES),
            raw_bool(CKA_TOKEN, false),
        ];
        let (ct, sent) = raw_encapsulate(&s, h.kem, public, aes.clone()).unwrap();
        let received = raw_decapsulate(&s, h.kem, private, aes, &ct).unwrap();
        for key in [sent, received] {
            assert_eq!(raw_get_ulong(&s, key, CKA_KEY_TYPE).unwrap(), CKK_AES);
            assert_eq!(raw_get_ulong(&s, key, CKA_VALUE_LEN).unwrap(), 32);
        }
    }
}

/// Token objects are sealed (OpenTDF's PKCS#8) and stored (OpenTDF's SPKI PEM): after a new
/// login their material is read back from storage and still agrees.
#[test]
fn token_pairs_survive_a_new_login() {
    let p = ctx();
    let slot = new_token(p, "hybrid-token");
    let s = user_session(p, slot);
    let pairs: Vec<_> = ALL
        .iter()
        .map(|h| {
            generate_pair(
                &s,
                h.generation,
                vec![raw_bool(CKA_TOKEN, true), raw_bool(CKA_ENCAPSULATE, true)],
                vec![raw_bool(CKA_TOKEN, true), raw_bool(CKA_DECAPSULATE, true)],
            )
            .expect("token pair")
        })
        .collect();
    let publics: Vec<_> = pairs.iter().map(|(public, _)| value(&s, *public)).collect();
    // Token keys are `asym_key` rows under OpenTDF's key_algorithm numbers.
    for (h, (public, private)) in ALL.iter().zip(&pairs) {
        for key in [*public, *private] {
            let algorithm = raw_get_ulong(&s, key, CKA_SQLHSM_KEY_ALGORITHM).unwrap();
            assert_eq!(algorithm, h.key_algorithm);
        }
    }
    // A logout forgets the token's key material: what follows reads it from storage.
    s.logout().unwrap();
    s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .unwrap();
    for (h, ((public, private), before)) in ALL.iter().zip(pairs.iter().zip(&publics)) {
        assert_eq!(value(&s, *public), *before);
        let (secret, ct) = encapsulated(&s, h, *public);
        assert_eq!(decapsulated(&s, h, *private, &ct).unwrap(), secret);
    }
}

#[test]
fn ciphertexts_of_the_wrong_length_are_refused() {
    let s = session("hybrid-lengths");
    for h in ALL {
        let (public, private) = session_pair(&s, h);
        let (_, ct) = encapsulated(&s, h, public);
        let longer = [&ct[..], &[0]].concat();
        for bad in [&ct[..ct.len() - 1], &longer[..], &[][..]] {
            let r = raw_decapsulate(&s, h.kem, private, readable_secret(), bad);
            assert!(
                rv_is(r, RvError::WrappedKeyLenRange),
                "length {}",
                bad.len()
            );
        }
    }
}

#[test]
fn keys_and_mechanisms_that_do_not_fit_are_refused() {
    let s = session("hybrid-mismatch");
    let (xwing_public, xwing_private) = session_pair(&s, &XWING);
    let (_, xwing_ct) = encapsulated(&s, &XWING, xwing_public);
    // Another hybrid's mechanism with an X-Wing key, both ways.
    for other in [&P256_ML_KEM_768, &P384_ML_KEM_1024] {
        let r = raw_encapsulate_with(&s, other.kem, None, xwing_public, readable_secret(), None);
        assert!(rv_is(r, RvError::KeyTypeInconsistent));
        let r = raw_decapsulate(&s, other.kem, xwing_private, readable_secret(), &xwing_ct);
        assert!(rv_is(r, RvError::KeyTypeInconsistent));
    }
    // Each key in the other's role.
    let r = raw_encapsulate_with(&s, XWING.kem, None, xwing_private, readable_secret(), None);
    assert!(rv_is(r, RvError::KeyTypeInconsistent));
    let r = raw_decapsulate(&s, XWING.kem, xwing_public, readable_secret(), &xwing_ct);
    assert!(rv_is(r, RvError::KeyTypeInconsistent));
    // CKM_ML_KEM with a hybrid key, a hybrid mechanism with an ML-KEM key.
    let r = raw_decapsulate(&s, CKM_ML_KEM, xwing_private, readable_secret(), &xwing_ct);
    assert!(rv_is(r, RvError::KeyTypeInconsistent));
    let (ml_kem_public, _) = generate_pair(
        &s,
        CKM_ML_KEM_KEY_PAIR_GEN,
        vec![
            raw_bool(CKA_TOKEN, false),
            raw_bool(CKA_ENCAPSULATE, true),
            raw_ulong(CKA_PARAMETER_SET, CKP_ML_KEM_768),
        ],
        vec![raw_bool(CKA_TOKEN, false), raw_bool(CKA_DECAPSULATE, true)],
    )
    .unwrap();
    let r = raw_encapsulate_with(&s, XWING.kem, None, ml_kem_public, readable_secret(), None);
    assert!(rv_is(r, RvError::KeyTypeInconsistent));
    // The mechanisms take no parameter.
    let mut param = [0u8; 8];
    let r = raw_decapsulate_with(
        &s,
        XWING.kem,
        Some(&mut param),
        xwing_private,
        readable_secret(),
        &xwing_ct,
    );
    assert!(rv_is(r, RvError::MechanismParamInvalid));
    // A generation mechanism is no KEM, nor a KEM a generation.
    let r = raw_decapsulate(
        &s,
        XWING.generation,
        xwing_private,
        readable_secret(),
        &xwing_ct,
    );
    assert!(rv_is(r, RvError::MechanismInvalid));
    let r = generate_pair(&s, XWING.kem, vec![], vec![]);
    assert!(rv_is(r, RvError::MechanismInvalid));
}

#[test]
fn malformed_keys_are_refused_at_import() {
    let s = session("hybrid-import");
    for h in ALL {
        let (public, _) = session_pair(&s, h);
        let good = value(&s, public);
        let r = public_key(&s, h, &good[1..]);
        assert!(rv_is(r, RvError::AttributeValueInvalid));
    }
    // X-Wing's private key is exactly 32 bytes; a composite's is a seed and an ECPrivateKey.
    let r = private_key(&s, &XWING, &[7u8; 31]);
    assert!(rv_is(r, RvError::AttributeValueInvalid));
    let r = private_key(&s, &P256_ML_KEM_768, &[7u8; 64]);
    assert!(rv_is(r, RvError::AttributeValueInvalid));
    // The value is required.
    let r = raw_create_object(
        &s,
        vec![
            raw_ulong(CKA_CLASS, CKO_PRIVATE_KEY),
            raw_ulong(CKA_KEY_TYPE, CKK_SQLHSM_XWING),
            raw_bool(CKA_TOKEN, false),
        ],
    );
    assert!(rv_is(r, RvError::TemplateIncomplete));
}

/// A hybrid private key wraps (AES-KWP) as OpenTDF's PKCS#8 — for Appendix D's key, the
/// draft's own bytes, read back by decrypting the wrapping under a second key of the same
/// value — and unwraps into a key that decapsulates as the original does.
#[test]
fn private_keys_wrap_as_opentdfs_pkcs8_and_unwrap() {
    use cryptoki::object::{Attribute, KeyType, ObjectClass};
    let s = session("hybrid-wrap");
    let kek = session_secret(&s, KeyType::AES, &[0x42; 32], &[]);
    let reader = session_secret(&s, KeyType::AES, &[0x42; 32], &[Attribute::Wrap(false)]);
    let blocks = pem_blocks(include_str!("data/hybrid/xwing_draft10_x509.pem"));
    let pkcs8 = &blocks[0];
    let private = raw_create_object(
        &s,
        vec![
            raw_ulong(CKA_CLASS, CKO_PRIVATE_KEY),
            raw_ulong(CKA_KEY_TYPE, CKK_SQLHSM_XWING),
            raw_bool(CKA_TOKEN, false),
            raw_bool(CKA_SENSITIVE, false),
            raw_bool(CKA_EXTRACTABLE, true),
            raw_bool(CKA_DECAPSULATE, true),
            bytes(CKA_VALUE, &raw_private_of_pkcs8(pkcs8)),
        ],
    )
    .unwrap();
    let (_, wrapped) = raw_wrap_key(&s, CKM_AES_KEY_WRAP_KWP, kek, private).expect("wrap");
    let mut m = raw_mechanism(CKM_AES_KEY_WRAP_KWP, None);
    let plain = raw_crypt(&s, false, &mut m, reader, &wrapped, None).expect("KWP decrypt");
    assert_eq!(plain, *pkcs8, "the draft's PKCS#8");
    let unwrapped = raw_unwrap_key(
        &s,
        CKM_AES_KEY_WRAP_KWP,
        kek,
        &wrapped,
        &[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::new_vendor_defined(CKK_SQLHSM_XWING).unwrap()),
            Attribute::Token(false),
            Attribute::Decapsulate(true),
        ],
    )
    .expect("unwrap");
    assert_eq!(
        raw_get_ulong(&s, unwrapped, CKA_KEY_TYPE).unwrap(),
        CKK_SQLHSM_XWING
    );
    assert_eq!(public_key_info(&s, unwrapped), blocks[1]);
    let public = public_key(&s, &XWING, &raw_public_of_spki(&blocks[1])).unwrap();
    let (secret, ct) = encapsulated(&s, &XWING, public);
    assert_eq!(decapsulated(&s, &XWING, unwrapped, &ct).unwrap(), secret);
}

//! The bounded object cache through the C ABI, with `[cache] max_objects = 4`: a process touches
//! many more token objects than the cache holds, and every handle keeps working — signing and
//! decrypting with keys the cache evicted (read again from the store and unsealed again),
//! reading their attributes, finding them under the handles they had — while a deleted evicted
//! object (by this process or behind its back) is `CKR_OBJECT_HANDLE_INVALID` from then on.

mod common;

use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use common::*;

/// The cache budget under test; the test touches several times as many objects.
const MAX_OBJECTS: usize = 4;
const PAIRS: usize = 8;
const SECRETS: usize = 4;

fn label(s: &Session, handle: ObjectHandle) -> String {
    String::from_utf8(get_bytes(s, handle, AttributeType::Label)).expect("a UTF-8 label")
}

/// Sign with `private`, verify with `public`: both go through the cache.
fn sign_and_verify(s: &Session, private: ObjectHandle, public: ObjectHandle, what: &str) {
    let message = format!("signed by {what}");
    let signature = s
        .sign(&Mechanism::EcdsaSha256, private, message.as_bytes())
        .unwrap_or_else(|e| panic!("C_Sign with {what}: {e}"));
    s.verify(
        &Mechanism::EcdsaSha256,
        public,
        message.as_bytes(),
        &signature,
    )
    .unwrap_or_else(|e| panic!("C_Verify with {what}: {e}"));
}

fn gcm(iv: &mut [u8; 12]) -> Mechanism<'_> {
    let params = GcmParams::new(iv, b"", 128.into()).expect("GCM parameters");
    Mechanism::AesGcm(params)
}

#[test]
fn evicted_objects_keep_their_handles_and_work() {
    let db = TestDb::with_options(
        "object_cache",
        TestDbOptions {
            extra_toml: format!("[cache]\nmax_objects = {MAX_OBJECTS}\n"),
            ..TestDbOptions::default()
        },
    );
    let p = init(&db);
    let slot = new_token(&p, "cache");
    let s = user_session(&p, slot);

    let pairs: Vec<(ObjectHandle, ObjectHandle)> = (0..PAIRS)
        .map(|i| gen_ec(&s, P256, &format!("pair-{i}"), &[i as u8]))
        .collect();
    let secrets: Vec<ObjectHandle> = (0..SECRETS)
        .map(|i| gen_aes(&s, 32, &format!("secret-{i}")))
        .collect();
    const { assert!(2 * PAIRS + SECRETS > 4 * MAX_OBJECTS) };

    // Ciphertexts made now, decrypted after their keys were evicted.
    let plaintext = b"sealed while cached".to_vec();
    let mut sealed = Vec::new();
    for (i, secret) in secrets.iter().enumerate() {
        let mut iv = [i as u8; 12];
        let ciphertext = s
            .encrypt(&gcm(&mut iv), *secret, &plaintext)
            .expect("C_Encrypt");
        sealed.push(ciphertext);
    }

    // Every key, twice round, each round touching four times the budget: whatever was used
    // before the round is evicted by the time it is used again.
    for round in 0..2 {
        for (i, (public, private)) in pairs.iter().enumerate() {
            sign_and_verify(&s, *private, *public, &format!("pair-{i}, round {round}"));
        }
        for (i, secret) in secrets.iter().enumerate() {
            let mut iv = [i as u8; 12];
            let decrypted = s
                .decrypt(&gcm(&mut iv), *secret, &sealed[i])
                .unwrap_or_else(|e| panic!("C_Decrypt with secret-{i}, round {round}: {e}"));
            assert_eq!(decrypted, plaintext);
        }
    }

    // Attributes through the handles of evicted objects, and the same handles found again.
    for (i, (public, private)) in pairs.iter().enumerate() {
        assert_eq!(label(&s, *public), format!("pair-{i}"));
        assert_eq!(label(&s, *private), format!("pair-{i}"));
    }
    for (i, (public, private)) in pairs.iter().enumerate() {
        let mut found = find_by_label(&s, &format!("pair-{i}"));
        found.sort_by_key(|h| h.handle());
        let mut expected = vec![*public, *private];
        expected.sort_by_key(|h| h.handle());
        assert_eq!(found, expected, "pair-{i} keeps its handles");
    }
    let mut all = s
        .find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])
        .expect("C_FindObjects");
    all.sort_by_key(|h| h.handle());
    let mut expected = secrets.clone();
    expected.sort_by_key(|h| h.handle());
    assert_eq!(
        all, expected,
        "a find over more objects than the cache holds"
    );
    for (i, secret) in secrets.iter().enumerate() {
        assert_eq!(label(&s, *secret), format!("secret-{i}"));
    }

    // Destroyed through the module while evicted: the handle is invalid from then on.
    let (doomed_public, doomed_private) = pairs[0];
    for (public, private) in &pairs[1..] {
        sign_and_verify(&s, *private, *public, "a key that evicts pair-0");
    }
    s.destroy_object(doomed_private).expect("C_DestroyObject");
    expect_rv(
        s.get_attributes(doomed_private, &[AttributeType::Label]),
        RvError::ObjectHandleInvalid,
    );
    expect_rv(
        s.sign(&Mechanism::EcdsaSha256, doomed_private, b"gone"),
        RvError::KeyHandleInvalid,
    );
    assert_eq!(find_by_label(&s, "pair-0"), vec![doomed_public]);

    // Deleted behind the module's back while evicted.
    let victim = secrets[SECRETS - 1];
    for (public, private) in &pairs[1..] {
        sign_and_verify(&s, *private, *public, "a key that evicts the victim");
    }
    let label_of = match db.backend {
        Backend::Postgres => "metadata->>'label'",
        Backend::Sqlite => "json_extract(metadata, '$.label')",
    };
    let victim_label = format!("secret-{}", SECRETS - 1);
    db.query_texts(&format!(
        "DELETE FROM sym_key WHERE {label_of} = '{victim_label}'"
    ));
    assert!(db
        .query_texts(&format!(
            "SELECT key_id FROM sym_key WHERE {label_of} = '{victim_label}'"
        ))
        .is_empty());
    expect_rv(
        s.get_attributes(victim, &[AttributeType::Label]),
        RvError::ObjectHandleInvalid,
    );
    expect_rv(
        s.get_attributes(victim, &[AttributeType::Label]),
        RvError::ObjectHandleInvalid,
    );

    // The others still work under their first handles.
    for (i, (public, private)) in pairs.iter().enumerate().skip(1) {
        sign_and_verify(&s, *private, *public, &format!("pair-{i} at the end"));
    }
    for (i, secret) in secrets.iter().enumerate().take(SECRETS - 1) {
        let mut iv = [i as u8; 12];
        let decrypted = s
            .decrypt(&gcm(&mut iv), *secret, &sealed[i])
            .expect("C_Decrypt at the end");
        assert_eq!(decrypted, plaintext);
    }
    drop(s);
    p.finalize().expect("C_Finalize");
}

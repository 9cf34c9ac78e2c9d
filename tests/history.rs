//! A key and its history commit together (issue 10): every change of the key store that has a
//! history event — creation by generation or import, destruction (of a whole key or of one half
//! of a pair), a status or expiration change, a token's deletion or re-initialisation — is
//! written in the same transaction as its event, or not at all.
//!
//! The fault is real, not mocked: a trigger in the test database refuses every `key_event` insert
//! of one token, the way a full disk, a revoked grant or a broken replica would. The call must
//! then fail with `CKR_DEVICE_ERROR` (the error map's answer for a storage failure: the token's
//! store, not the request, is at fault) and the key tables must be as they were. Each test has
//! its own token, so the trigger of one never touches another running beside it.

mod common;

use std::process::{Command, Stdio};

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

const CKA_SQLHSM_EXPIRATION: u64 = 0xD351_0005;

/// Runs statements (DDL) on the store behind the module's back: on PostgreSQL in one batch, on
/// SQLite through the `sqlite3` program (see [`TestDb::query_texts`] for why not in-process).
fn execute(db: &TestDb, sql: &str) {
    match &db.pg {
        Some(pg) => pg
            .client()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}")),
        None => {
            db.query_texts(sql);
        }
    }
}

/// The id of the token labelled `label`.
fn token_id(db: &TestDb, label: &str) -> String {
    let ids = db.query_texts(&format!(
        "SELECT CAST(id AS TEXT) FROM provider_config WHERE provider_name = '{label}'"
    ));
    assert_eq!(ids.len(), 1, "one token {label:?}: {ids:?}");
    ids[0].clone()
}

/// Makes every `key_event` insert for `token` fail; [`allow_history`] undoes it.
fn refuse_history(db: &TestDb, token: &str) {
    let name = trigger_name(token);
    let sql = match db.backend {
        Backend::Sqlite => format!(
            "CREATE TRIGGER {name} BEFORE INSERT ON key_event \
             WHEN NEW.provider_config_id = '{token}' \
             BEGIN SELECT RAISE(ABORT, 'no history'); END;"
        ),
        Backend::Postgres => format!(
            "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'no history'; END $$; \
             CREATE TRIGGER {name} BEFORE INSERT ON key_event FOR EACH ROW \
             WHEN (NEW.provider_config_id = '{token}') EXECUTE FUNCTION {name}();"
        ),
    };
    execute(db, &sql);
}

fn allow_history(db: &TestDb, token: &str) {
    let name = trigger_name(token);
    let sql = match db.backend {
        Backend::Sqlite => format!("DROP TRIGGER {name};"),
        Backend::Postgres => {
            format!("DROP TRIGGER {name} ON key_event; DROP FUNCTION {name}();")
        }
    };
    execute(db, &sql);
}

fn trigger_name(token: &str) -> String {
    format!("no_history_{}", token.replace('-', ""))
}

/// How many rows of `table` answer `condition`.
fn count(db: &TestDb, table: &str, condition: &str) -> usize {
    let v = db.query_texts(&format!(
        "SELECT CAST(COUNT(*) AS TEXT) FROM {table} WHERE {condition}"
    ));
    v[0].parse().unwrap_or_else(|_| panic!("count {v:?}"))
}

fn of_token(token: &str) -> String {
    format!("provider_config_id = '{token}'")
}

/// The token's keys (both tables) that have no creation event.
fn keys_without_creation_event(db: &TestDb, token: &str) -> usize {
    ["asym_key", "sym_key"]
        .iter()
        .map(|table| {
            count(
                db,
                table,
                &format!(
                    "{} AND NOT EXISTS (SELECT 1 FROM key_event e WHERE e.key_id = {table}.key_id \
                     AND e.event IN ('generated', 'imported'))",
                    of_token(token)
                ),
            )
        })
        .sum()
}

fn events_of(db: &TestDb, key_id: &str) -> Vec<String> {
    db.query_texts(&format!(
        "SELECT event FROM key_event WHERE key_id = '{key_id}' ORDER BY at, id"
    ))
}

fn key_id_of(s: &Session, key: ObjectHandle) -> String {
    String::from_utf8(get_bytes(
        s,
        key,
        AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID),
    ))
    .expect("key_id is text")
}

fn aes_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::ValueLen(32.into()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

fn aes_import_template(label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Value(vec![0x42; 32]),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

/// A token of its own, and the id of its `provider_config` row.
fn setup(label: &str) -> (&'static TestDb, Session, String) {
    let p = ctx();
    let db = ctx_db();
    let slot = new_token(p, label);
    let s = user_session(p, slot);
    let token = token_id(db, label);
    (db, s, token)
}

#[test]
fn every_new_key_has_its_creation_event() {
    let (db, s, token) = setup("hist-created");
    let generated = gen_aes(&s, 32, "hist-created-aes");
    let (_, private) = gen_ec(&s, P256, "hist-created-ec", b"ec");
    let imported = s
        .create_object(&aes_import_template("hist-created-imported"))
        .expect("C_CreateObject");
    assert_eq!(events_of(db, &key_id_of(&s, generated)), ["generated"]);
    assert_eq!(events_of(db, &key_id_of(&s, private)), ["generated"]);
    assert_eq!(events_of(db, &key_id_of(&s, imported)), ["imported"]);
    assert_eq!(keys_without_creation_event(db, &token), 0);
}

#[test]
fn no_key_is_stored_when_its_creation_event_cannot_be() {
    let (db, s, token) = setup("hist-no-create");
    refuse_history(db, &token);
    expect_rv(
        s.generate_key(&Mechanism::AesKeyGen, &aes_template("hist-no-create-aes")),
        RvError::DeviceError,
    );
    let (public, private) = ec_templates(P256, "hist-no-create-ec", b"ec");
    expect_rv(
        s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private),
        RvError::DeviceError,
    );
    expect_rv(
        s.create_object(&aes_import_template("hist-no-create-imported")),
        RvError::DeviceError,
    );
    assert_eq!(
        count(db, "sym_key", &of_token(&token)),
        0,
        "no secret key row"
    );
    assert_eq!(
        count(db, "asym_key", &of_token(&token)),
        0,
        "no key pair row"
    );
    assert!(
        find_by_label(&s, "hist-no-create-aes").is_empty(),
        "no object either"
    );

    // With its history writable again the same calls store keys, each with its event.
    allow_history(db, &token);
    gen_aes(&s, 32, "hist-no-create-aes");
    s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .expect("C_GenerateKeyPair");
    s.create_object(&aes_import_template("hist-no-create-imported"))
        .expect("C_CreateObject");
    assert_eq!(count(db, "sym_key", &of_token(&token)), 2);
    assert_eq!(count(db, "asym_key", &of_token(&token)), 1);
    assert_eq!(keys_without_creation_event(db, &token), 0);
}

#[test]
fn no_key_is_destroyed_when_its_destruction_event_cannot_be() {
    let (db, s, token) = setup("hist-no-destroy");
    let aes = gen_aes(&s, 32, "hist-no-destroy-aes");
    let (public, private) = gen_ec(&s, P256, "hist-no-destroy-ec", b"ec");
    let (aes_id, pair_id) = (key_id_of(&s, aes), key_id_of(&s, private));
    refuse_history(db, &token);

    expect_rv(s.destroy_object(aes), RvError::DeviceError);
    assert_eq!(
        count(db, "sym_key", &format!("key_id = '{aes_id}'")),
        1,
        "the secret key row is still there"
    );
    // One half of a pair: the row stays, only that half's attributes go; not without its event.
    expect_rv(s.destroy_object(public), RvError::DeviceError);
    let public_half = match db.backend {
        Backend::Sqlite => "json_extract(metadata, '$.public') IS NOT NULL",
        Backend::Postgres => "metadata ? 'public'",
    };
    assert_eq!(
        count(
            db,
            "asym_key",
            &format!("key_id = '{pair_id}' AND {public_half}")
        ),
        1,
        "the public half is still in the row"
    );
    expect_rv(s.destroy_object(private), RvError::DeviceError);
    assert_eq!(count(db, "asym_key", &format!("key_id = '{pair_id}'")), 1);
    // The objects are still there and still work.
    let ciphertext = s
        .encrypt(&Mechanism::AesCbcPad([3; 16]), aes, b"still here")
        .expect("the key survived its failed destruction");
    assert_eq!(
        s.decrypt(&Mechanism::AesCbcPad([3; 16]), aes, &ciphertext)
            .unwrap(),
        b"still here"
    );
    s.sign(&Mechanism::EcdsaSha256, private, b"data")
        .expect("the private key survived its failed destruction");

    allow_history(db, &token);
    s.destroy_object(aes).expect("C_DestroyObject");
    s.destroy_object(public).expect("C_DestroyObject(public)");
    s.destroy_object(private).expect("C_DestroyObject(private)");
    assert_eq!(count(db, "sym_key", &of_token(&token)), 0);
    assert_eq!(count(db, "asym_key", &of_token(&token)), 0);
    assert_eq!(events_of(db, &aes_id), ["generated", "destroyed"]);
    assert_eq!(
        events_of(db, &pair_id),
        ["generated", "destroyed", "destroyed"],
        "one event per half"
    );
}

#[test]
fn no_expiration_or_status_change_without_its_event() {
    let (db, s, token) = setup("hist-no-state");
    let aes = gen_aes(&s, 32, "hist-no-state-aes");
    let key_id = key_id_of(&s, aes);
    refuse_history(db, &token);
    let in_a_year = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 365 * 86_400;
    let set = |kind: u64, value: u64| {
        s.update_attributes(
            aes,
            &[Attribute::VendorDefined((
                AttributeType::VendorDefined(kind),
                value.to_ne_bytes().to_vec(),
            ))],
        )
    };
    expect_rv(set(CKA_SQLHSM_EXPIRATION, in_a_year), RvError::DeviceError);
    assert_eq!(
        count(
            db,
            "sym_key",
            &format!("key_id = '{key_id}' AND expiration IS NULL")
        ),
        1,
        "the expiration did not change"
    );
    expect_rv(set(CKA_SQLHSM_KEY_STATUS, 2), RvError::DeviceError);
    assert_eq!(
        count(
            db,
            "sym_key",
            &format!("key_id = '{key_id}' AND key_status = 1")
        ),
        1,
        "the status did not change"
    );
    assert_eq!(get_ulong_vendor(&s, aes, CKA_SQLHSM_KEY_STATUS), 1);
    assert_eq!(get_ulong_vendor(&s, aes, CKA_SQLHSM_EXPIRATION), 0);

    allow_history(db, &token);
    set(CKA_SQLHSM_EXPIRATION, in_a_year).expect("set the expiration");
    set(CKA_SQLHSM_KEY_STATUS, 2).expect("deactivate");
    assert_eq!(
        events_of(db, &key_id),
        ["generated", "expiration", "status"]
    );
}

/// `CKA_END_DATE` is the expiration seen as an attribute: setting it through
/// `C_SetAttributeValue` moves the key's expiration, which is a lifecycle change with its event.
#[test]
fn an_end_date_change_commits_with_its_expiration_event() {
    let (db, s, token) = setup("hist-end-date");
    let aes = gen_aes(&s, 32, "hist-end-date-aes");
    let key_id = key_id_of(&s, aes);
    let end = || Attribute::EndDate(cryptoki::types::Date::new(*b"2031", *b"01", *b"01"));
    let expiring = format!("key_id = '{key_id}' AND expiration IS NOT NULL");
    refuse_history(db, &token);
    expect_rv(s.update_attributes(aes, &[end()]), RvError::DeviceError);
    assert_eq!(
        count(db, "sym_key", &expiring),
        0,
        "the expiration did not change"
    );

    allow_history(db, &token);
    s.update_attributes(aes, &[end()])
        .expect("set CKA_END_DATE");
    assert_eq!(count(db, "sym_key", &expiring), 1);
    assert_eq!(events_of(db, &key_id), ["generated", "expiration"]);
    // The same date again changes nothing and records nothing.
    s.update_attributes(aes, &[end()])
        .expect("set CKA_END_DATE again");
    assert_eq!(events_of(db, &key_id), ["generated", "expiration"]);
}

#[test]
fn no_key_is_removed_by_re_initialisation_without_its_event() {
    let p = ctx();
    let (db, s, token) = setup("hist-reinit");
    let aes = gen_aes(&s, 32, "hist-reinit-aes");
    let key_id = key_id_of(&s, aes);
    let slot = s.get_session_info().unwrap().slot_id();
    drop(s);
    refuse_history(db, &token);
    expect_rv(
        p.init_token(slot, &pin(SO_PIN), "hist-reinit"),
        RvError::DeviceError,
    );
    assert_eq!(count(db, "sym_key", &of_token(&token)), 1, "the key stays");

    allow_history(db, &token);
    p.init_token(slot, &pin(SO_PIN), "hist-reinit")
        .expect("C_InitToken");
    assert_eq!(count(db, "sym_key", &of_token(&token)), 0);
    assert_eq!(events_of(db, &key_id), ["generated", "destroyed"]);
}

/// `sqlhsm token delete` deletes the token's keys and writes their `destroyed` events in one
/// transaction.
#[test]
fn no_token_is_deleted_without_its_keys_events() {
    let db = TestDb::new("history-cli");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sqlhsm"))
            .args(args)
            .stdin(Stdio::null())
            .env("SQLHSM_DB", db.url())
            .env("SQLHSM_CONF", &db.conf)
            .env("SQLHSM_PIN", USER_PIN)
            .env("SQLHSM_SO_PIN", SO_PIN)
            .env_remove("SQLHSM_LOG")
            .output()
            .expect("run sqlhsm")
    };
    let ok = |args: &[&str]| {
        let out = run(args);
        assert!(
            out.status.success(),
            "sqlhsm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(&["token", "init", "doomed"]);
    ok(&[
        "key",
        "generate",
        "--token",
        "doomed",
        "--algorithm",
        "aes-256",
    ]);
    ok(&[
        "key",
        "generate",
        "--token",
        "doomed",
        "--algorithm",
        "ec-p256",
    ]);
    let token = token_id(&db, "doomed");
    let key_ids = db.query_texts(&format!(
        "SELECT key_id FROM sym_key WHERE {0} UNION ALL SELECT key_id FROM asym_key WHERE {0}",
        of_token(&token)
    ));
    assert_eq!(key_ids.len(), 2);
    refuse_history(&db, &token);
    let out = run(&["token", "delete", "doomed", "--yes"]);
    assert!(
        !out.status.success(),
        "token delete succeeded without writing the keys' history"
    );
    assert_eq!(count(&db, "provider_config", &format!("id = '{token}'")), 1);
    assert_eq!(count(&db, "sym_key", &of_token(&token)), 1);
    assert_eq!(count(&db, "asym_key", &of_token(&token)), 1);

    allow_history(&db, &token);
    ok(&["token", "delete", "doomed", "--yes"]);
    assert_eq!(count(&db, "provider_config", &format!("id = '{token}'")), 0);
    for key_id in &key_ids {
        assert_eq!(events_of(&db, key_id), ["generated", "destroyed"]);
    }
}

//! The storage contract: one suite every backend must pass.
//!
//! Each check takes a fresh, empty store. [`run_contract`] runs them all against one store;
//! [`storage_contract_tests!`](crate::storage_contract_tests) turns each into its own `#[test]`
//! for a backend, which gives one failure per broken rule instead of one for the lot.
//!
//! Timestamps are compared at microsecond precision, what both SQLite (text) and PostgreSQL
//! (`timestamptz`) keep.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    AsymKeyRow, FoundRow, KeyEvent, KeyFilter, KeyTable, NewKeyRow, ObjectMetadata, ObjectRow,
    Search, Storage, SymKeyRow, TokenRow,
};
use crate::error::{Error, StorageError};
use crate::key_state::KeyStatus;
use crate::Rv;

/// One contract check; it gets a fresh store.
pub type Check = fn(Arc<dyn Storage>);

/// Every contract check, by name, for [`run_contract`] and the test macro.
pub const CHECKS: &[(&str, Check)] = &[
    ("tokens_insert_get_list", tokens_insert_get_list),
    ("token_label_conflict", token_label_conflict),
    ("rename_token", rename_token),
    (
        "update_token_config_stores_result",
        update_token_config_stores_result,
    ),
    (
        "update_token_config_error_writes_nothing",
        update_token_config_error_writes_nothing,
    ),
    (
        "update_token_config_missing_token",
        update_token_config_missing_token,
    ),
    (
        "concurrent_config_updates_are_exact",
        concurrent_config_updates_are_exact,
    ),
    ("asym_round_trip", asym_round_trip),
    ("asym_find_by_each_field", asym_find_by_each_field),
    ("asym_update_and_delete", asym_update_and_delete),
    ("sym_round_trip", sym_round_trip),
    ("sym_find_by_each_field", sym_find_by_each_field),
    ("sym_update_and_delete", sym_update_and_delete),
    ("key_id_conflict", key_id_conflict),
    ("key_id_exists", key_id_exists),
    ("delete_token_removes_keys", delete_token_removes_keys),
    (
        "delete_token_keys_keeps_token",
        delete_token_keys_keeps_token,
    ),
    (
        "finds_are_ordered_by_creation",
        finds_are_ordered_by_creation,
    ),
    ("objects_round_trip", objects_round_trip),
    ("search_spans_every_table", search_spans_every_table),
    ("key_state_and_events", key_state_and_events),
    ("rotation_is_one_transaction", rotation_is_one_transaction),
    ("rename_is_one_transaction", rename_is_one_transaction),
    (
        "every_change_records_its_event",
        every_change_records_its_event,
    ),
    ("no_change_without_its_event", no_change_without_its_event),
];

/// Runs every check against `storage` (which should start empty).
pub fn run_contract(storage: Arc<dyn Storage>) {
    for (name, check) in CHECKS {
        eprintln!("storage contract: {name} on {}", storage.describe());
        check(storage.clone());
    }
}

/// One `#[test]` per contract check. `$make` is an expression giving `(guard, Arc<backend>)`
/// for a fresh store; the guard (a temp dir, say) lives until the check ends.
#[macro_export]
macro_rules! storage_contract_tests {
    ($make:expr) => {
        $crate::storage_contract_tests!(@each $make;
            tokens_insert_get_list, token_label_conflict, rename_token,
            update_token_config_stores_result, update_token_config_error_writes_nothing,
            update_token_config_missing_token, concurrent_config_updates_are_exact,
            asym_round_trip, asym_find_by_each_field, asym_update_and_delete,
            sym_round_trip, sym_find_by_each_field, sym_update_and_delete,
            key_id_conflict, key_id_exists, delete_token_removes_keys,
            delete_token_keys_keeps_token, finds_are_ordered_by_creation, objects_round_trip,
            search_spans_every_table,
            key_state_and_events, rotation_is_one_transaction, rename_is_one_transaction,
            every_change_records_its_event, no_change_without_its_event,
            all_checks_in_one_store);
    };
    (@each $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let (_guard, storage) = $make;
                $crate::storage::contract::$check(storage);
            }
        )*
    };
}

/// All checks, one after another, in one store: rows left by one check must not confuse the next.
pub fn all_checks_in_one_store(storage: Arc<dyn Storage>) {
    run_contract(storage)
}

/// Now, at the precision storage keeps.
fn now() -> DateTime<Utc> {
    let micros = Utc::now().timestamp_micros();
    DateTime::from_timestamp_micros(micros).unwrap()
}

const NONE: Vec<Uuid> = Vec::new();

static NEXT_SLOT: AtomicU64 = AtomicU64::new(1);

fn token(name: &str) -> TokenRow {
    let at = now();
    TokenRow {
        id: Uuid::new_v4(),
        provider_name: format!("{name}-{}", Uuid::new_v4().simple()),
        config: json!({ "slot": NEXT_SLOT.fetch_add(1, Ordering::Relaxed), "failures": 0 }),
        metadata: json!({ "note": name }),
        created_at: at,
        updated_at: at,
    }
}

fn new_token(storage: &dyn Storage) -> TokenRow {
    let row = token("t");
    storage.insert_token(&row).unwrap();
    row
}

fn asym(token: Uuid, label: &str, ck_id: &str, algorithm: i32) -> AsymKeyRow {
    let at = now();
    AsymKeyRow {
        id: Uuid::new_v4(),
        provider_config_id: token,
        key_id: format!("asym-{}", Uuid::new_v4()),
        key_algorithm: algorithm,
        key_status: KeyStatus::Active,
        key_mode: 0,
        expiration: Some(at + Duration::days(365)),
        public_key_ctx: Some(json!({ "spki": "MFkwEwYHKoZIzj0CAQ" })),
        private_key_ctx: Some(json!({ "sealed": "AAEC" })),
        metadata: json!({ "label": label, "id": ck_id, "sign": true }),
        created_at: at,
        updated_at: at,
    }
}

fn sym(token: Uuid, label: &str, ck_id: &str) -> SymKeyRow {
    let at = now();
    SymKeyRow {
        id: Uuid::new_v4(),
        provider_config_id: token,
        key_id: format!("sym-{}", Uuid::new_v4()),
        key_status: KeyStatus::Active,
        key_mode: 0,
        expiration: None,
        key_value: Some(vec![0, 1, 2, 255]),
        metadata: json!({ "label": label, "id": ck_id }),
        created_at: at,
        updated_at: at,
    }
}

/// What the checks need of a key row to write its events.
trait KeyRow {
    fn token(&self) -> Uuid;
    fn key_id(&self) -> &str;
}

impl KeyRow for AsymKeyRow {
    fn token(&self) -> Uuid {
        self.provider_config_id
    }
    fn key_id(&self) -> &str {
        &self.key_id
    }
}

impl KeyRow for SymKeyRow {
    fn token(&self) -> Uuid {
        self.provider_config_id
    }
    fn key_id(&self) -> &str {
        &self.key_id
    }
}

fn key_event(token: Uuid, key_id: &str, what: &str) -> KeyEvent {
    KeyEvent {
        id: Uuid::new_v4(),
        key_id: key_id.to_string(),
        provider_config_id: token,
        event: what.to_string(),
        actor: "contract".into(),
        old_value: None,
        new_value: Some(json!({ "status": 1 })),
        at: now(),
    }
}

fn created(row: &impl KeyRow) -> KeyEvent {
    key_event(row.token(), row.key_id(), "generated")
}

fn destroyed(row: &impl KeyRow) -> KeyEvent {
    key_event(row.token(), row.key_id(), "destroyed")
}

/// The template of the `destroyed` events a token's deletion records.
fn token_deleted(token: Uuid) -> KeyEvent {
    key_event(token, "", "destroyed")
}

fn insert_asym(storage: &dyn Storage, row: &AsymKeyRow) -> Result<(), StorageError> {
    storage.insert_key(NewKeyRow::Asym(row), &created(row))
}

fn insert_sym(storage: &dyn Storage, row: &SymKeyRow) -> Result<(), StorageError> {
    storage.insert_key(NewKeyRow::Sym(row), &created(row))
}

/// The kinds of a key's events, oldest first.
fn history(storage: &dyn Storage, key_id: &str) -> Vec<String> {
    let events = storage.key_events(key_id).unwrap();
    events.into_iter().map(|e| e.event).collect()
}

fn filter(token: Uuid) -> KeyFilter {
    KeyFilter {
        provider_config_id: token,
        ..KeyFilter::default()
    }
}

fn ids<T>(rows: &[T], id: impl Fn(&T) -> Uuid) -> Vec<Uuid> {
    rows.iter().map(id).collect()
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StorageError>, what: &str) {
    assert!(
        matches!(result, Err(StorageError::Conflict(_))),
        "{what}: expected Conflict, got {result:?}"
    );
}

pub fn tokens_insert_get_list(storage: Arc<dyn Storage>) {
    assert!(!storage.describe().is_empty());
    let a = token("a");
    let b = token("b");
    storage.insert_token(&a).unwrap();
    storage.insert_token(&b).unwrap();
    assert_eq!(storage.get_token(a.id).unwrap(), Some(a.clone()));
    assert_eq!(storage.get_token(b.id).unwrap(), Some(b.clone()));
    assert_eq!(storage.get_token(Uuid::new_v4()).unwrap(), None);
    let listed = storage.list_tokens().unwrap();
    assert!(listed.contains(&a) && listed.contains(&b), "{listed:?}");
}

pub fn token_label_conflict(storage: Arc<dyn Storage>) {
    let a = new_token(&*storage);
    let mut same_label = token("other");
    same_label.provider_name = a.provider_name.clone();
    assert_conflict(storage.insert_token(&same_label), "same provider_name");
    assert_conflict(storage.insert_token(&a), "same id");
    assert_eq!(storage.get_token(same_label.id).unwrap(), None);
}

pub fn rename_token(storage: Arc<dyn Storage>) {
    let a = new_token(&*storage);
    let b = new_token(&*storage);
    let name = format!("renamed-{}", Uuid::new_v4());
    storage.rename_token(a.id, &name).unwrap();
    let renamed = storage.get_token(a.id).unwrap().unwrap();
    assert_eq!(renamed.provider_name, name);
    assert!(renamed.updated_at >= a.updated_at);
    assert_eq!(renamed.config, a.config);
    assert_conflict(
        storage.rename_token(b.id, &name),
        "rename onto a taken label",
    );
    assert_eq!(
        storage.get_token(b.id).unwrap().unwrap().provider_name,
        b.provider_name
    );
}

pub fn update_token_config_stores_result(storage: Arc<dyn Storage>) {
    let a = new_token(&*storage);
    let stored = storage
        .update_token_config(a.id, &mut |config: &mut Value| {
            config["failures"] = json!(3);
            Ok(())
        })
        .unwrap()
        .unwrap();
    assert_eq!(stored["failures"], json!(3));
    let row = storage.get_token(a.id).unwrap().unwrap();
    assert_eq!(row.config, stored);
    assert_eq!(row.config["slot"], a.config["slot"]);
    assert!(row.updated_at >= a.updated_at);
    assert_eq!(row.created_at, a.created_at);
}

pub fn update_token_config_error_writes_nothing(storage: Arc<dyn Storage>) {
    let a = new_token(&*storage);
    let result = storage
        .update_token_config(a.id, &mut |config: &mut Value| {
            config["failures"] = json!(99);
            Err(Rv::PIN_INCORRECT.into())
        })
        .unwrap();
    assert!(matches!(result, Err(Error::Pkcs11(rv)) if rv == Rv::PIN_INCORRECT));
    assert_eq!(storage.get_token(a.id).unwrap().unwrap(), a);
}

pub fn update_token_config_missing_token(storage: Arc<dyn Storage>) {
    let mut called = false;
    let result = storage
        .update_token_config(Uuid::new_v4(), &mut |_: &mut Value| {
            called = true;
            Ok(())
        })
        .unwrap();
    assert!(matches!(result, Err(Error::Pkcs11(rv)) if rv == Rv::TOKEN_NOT_PRESENT));
    assert!(!called);
}

pub fn concurrent_config_updates_are_exact(storage: Arc<dyn Storage>) {
    const THREADS: u64 = 8;
    const ROUNDS: u64 = 50;
    let a = new_token(&*storage);
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let storage = storage.clone();
            std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    storage
                        .update_token_config(a.id, &mut |config: &mut Value| {
                            let n = config["failures"].as_u64().unwrap_or(0);
                            config["failures"] = json!(n + 1);
                            Ok(())
                        })
                        .unwrap()
                        .unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let row = storage.get_token(a.id).unwrap().unwrap();
    assert_eq!(row.config["failures"], json!(THREADS * ROUNDS));
}

pub fn asym_round_trip(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let full = asym(t.id, "full", "0a0b", 3);
    let mut sparse = asym(t.id, "sparse", "", 1);
    sparse.expiration = None;
    sparse.public_key_ctx = None;
    sparse.private_key_ctx = None;
    sparse.metadata = json!({});
    insert_asym(&*storage, &full).unwrap();
    insert_asym(&*storage, &sparse).unwrap();
    assert_eq!(storage.get_asym_key(full.id).unwrap(), Some(full.clone()));
    assert_eq!(storage.get_asym_key(sparse.id).unwrap(), Some(sparse));
    assert_eq!(storage.get_asym_key(Uuid::new_v4()).unwrap(), None);
    assert_eq!(
        storage.get_sym_key(full.id).unwrap(),
        None,
        "tables are separate"
    );
}

pub fn sym_round_trip(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let mut full = sym(t.id, "full", "0a0b");
    full.expiration = Some(now() + Duration::hours(1));
    let mut sparse = sym(t.id, "sparse", "");
    sparse.key_value = None;
    sparse.metadata = json!({ "nested": { "a": [1, 2] } });
    insert_sym(&*storage, &full).unwrap();
    insert_sym(&*storage, &sparse).unwrap();
    assert_eq!(storage.get_sym_key(full.id).unwrap(), Some(full.clone()));
    assert_eq!(storage.get_sym_key(sparse.id).unwrap(), Some(sparse));
    assert_eq!(storage.get_sym_key(Uuid::new_v4()).unwrap(), None);
    assert_eq!(
        storage.get_asym_key(full.id).unwrap(),
        None,
        "tables are separate"
    );
}

pub fn asym_find_by_each_field(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let other = new_token(&*storage);
    let rsa = asym(t.id, "signing", "01", 0);
    let ec = asym(t.id, "signing", "02", 3);
    let ed = asym(t.id, "other", "01", 0x40);
    let foreign = asym(other.id, "signing", "01", 0);
    for row in [&rsa, &ec, &ed, &foreign] {
        insert_asym(&*storage, row).unwrap();
    }
    let find = |f: KeyFilter| {
        let mut found = ids(&storage.find_asym_keys(&f).unwrap(), |r| r.id);
        found.sort();
        found
    };
    let sorted = |mut v: Vec<Uuid>| {
        v.sort();
        v
    };
    assert_eq!(find(filter(t.id)), sorted(vec![rsa.id, ec.id, ed.id]));
    assert_eq!(
        find(KeyFilter {
            label: Some("signing".into()),
            ..filter(t.id)
        }),
        sorted(vec![rsa.id, ec.id])
    );
    assert_eq!(
        find(KeyFilter {
            ck_id: Some("01".into()),
            ..filter(t.id)
        }),
        sorted(vec![rsa.id, ed.id])
    );
    assert_eq!(
        find(KeyFilter {
            key_algorithms: Some(vec![3, 0x40]),
            ..filter(t.id)
        }),
        sorted(vec![ec.id, ed.id])
    );
    assert_eq!(
        find(KeyFilter {
            key_algorithms: Some(vec![]),
            ..filter(t.id)
        }),
        NONE
    );
    assert_eq!(
        find(KeyFilter {
            key_id: Some(ec.key_id.clone()),
            ..filter(t.id)
        }),
        vec![ec.id]
    );
    assert_eq!(
        find(KeyFilter {
            label: Some("signing".into()),
            ck_id: Some("01".into()),
            key_algorithms: Some(vec![0]),
            key_id: Some(rsa.key_id.clone()),
            ..filter(t.id)
        }),
        vec![rsa.id]
    );
    assert_eq!(
        find(KeyFilter {
            label: Some("nope".into()),
            ..filter(t.id)
        }),
        NONE
    );
    assert_eq!(
        find(KeyFilter {
            key_id: Some(foreign.key_id.clone()),
            ..filter(t.id)
        }),
        NONE,
        "another token's key"
    );
    assert_eq!(find(filter(other.id)), vec![foreign.id]);
    assert_eq!(storage.find_asym_keys(&filter(t.id)).unwrap().len(), 3);
    assert!(storage.find_sym_keys(&filter(t.id)).unwrap().is_empty());
}

pub fn sym_find_by_each_field(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let other = new_token(&*storage);
    let a = sym(t.id, "wrap", "01");
    let b = sym(t.id, "wrap", "02");
    let c = sym(t.id, "mac", "01");
    let foreign = sym(other.id, "wrap", "01");
    for row in [&a, &b, &c, &foreign] {
        insert_sym(&*storage, row).unwrap();
    }
    let find = |f: KeyFilter| {
        let mut found = ids(&storage.find_sym_keys(&f).unwrap(), |r| r.id);
        found.sort();
        found
    };
    let sorted = |mut v: Vec<Uuid>| {
        v.sort();
        v
    };
    assert_eq!(find(filter(t.id)), sorted(vec![a.id, b.id, c.id]));
    assert_eq!(
        find(KeyFilter {
            label: Some("wrap".into()),
            ..filter(t.id)
        }),
        sorted(vec![a.id, b.id])
    );
    assert_eq!(
        find(KeyFilter {
            ck_id: Some("01".into()),
            ..filter(t.id)
        }),
        sorted(vec![a.id, c.id])
    );
    assert_eq!(
        find(KeyFilter {
            key_id: Some(b.key_id.clone()),
            ..filter(t.id)
        }),
        vec![b.id]
    );
    assert_eq!(
        find(KeyFilter {
            key_algorithms: Some(vec![12345]),
            ..filter(t.id)
        }),
        sorted(vec![a.id, b.id, c.id]),
        "key_algorithms is ignored for secret keys"
    );
    assert_eq!(
        find(KeyFilter {
            label: Some("wrap".into()),
            ck_id: Some("01".into()),
            ..filter(t.id)
        }),
        vec![a.id]
    );
    assert_eq!(find(filter(other.id)), vec![foreign.id]);
    let found = storage.find_sym_keys(&KeyFilter {
        key_id: Some(a.key_id.clone()),
        ..filter(t.id)
    });
    assert_eq!(found.unwrap(), vec![a]);
}

pub fn asym_update_and_delete(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let row = asym(t.id, "before", "01", 3);
    insert_asym(&*storage, &row).unwrap();
    let metadata = json!({ "label": "after", "id": "02" });
    assert!(storage
        .update_key_attributes(KeyTable::Asym, row.id, &metadata, None, None)
        .unwrap());
    let updated = storage.get_asym_key(row.id).unwrap().unwrap();
    assert_eq!(updated.metadata, metadata);
    assert_eq!(updated.expiration, None);
    assert!(updated.updated_at >= row.updated_at);
    assert_eq!(
        (updated.created_at, &updated.key_id),
        (row.created_at, &row.key_id)
    );
    assert_eq!(updated.private_key_ctx, row.private_key_ctx);
    let by_new_label = KeyFilter {
        label: Some("after".into()),
        ..filter(t.id)
    };
    assert_eq!(storage.find_asym_keys(&by_new_label).unwrap().len(), 1);
    let by_old_label = KeyFilter {
        label: Some("before".into()),
        ..filter(t.id)
    };
    assert!(storage.find_asym_keys(&by_old_label).unwrap().is_empty());
    let expiry = Some(now() + Duration::days(1));
    assert!(storage
        .update_key_attributes(KeyTable::Asym, row.id, &metadata, expiry, None)
        .unwrap());
    assert_eq!(
        storage.get_asym_key(row.id).unwrap().unwrap().expiration,
        expiry
    );

    assert!(storage
        .delete_key(KeyTable::Asym, row.id, &destroyed(&row))
        .unwrap());
    assert!(!storage
        .delete_key(KeyTable::Asym, row.id, &destroyed(&row))
        .unwrap());
    assert_eq!(storage.get_asym_key(row.id).unwrap(), None);
    assert!(!storage
        .update_key_attributes(KeyTable::Asym, row.id, &metadata, None, None)
        .unwrap());
}

pub fn sym_update_and_delete(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let row = sym(t.id, "before", "01");
    insert_sym(&*storage, &row).unwrap();
    let metadata = json!({ "label": "after", "id": "02" });
    let expiry = Some(now() + Duration::days(1));
    assert!(storage
        .update_key_attributes(KeyTable::Sym, row.id, &metadata, expiry, None)
        .unwrap());
    let updated = storage.get_sym_key(row.id).unwrap().unwrap();
    assert_eq!(updated.metadata, metadata);
    assert_eq!(updated.expiration, expiry);
    assert_eq!(updated.key_value, row.key_value);
    assert!(updated.updated_at >= row.updated_at);
    let by_id = KeyFilter {
        ck_id: Some("02".into()),
        ..filter(t.id)
    };
    assert_eq!(storage.find_sym_keys(&by_id).unwrap().len(), 1);

    assert!(storage
        .delete_key(KeyTable::Sym, row.id, &destroyed(&row))
        .unwrap());
    assert!(!storage
        .delete_key(KeyTable::Sym, row.id, &destroyed(&row))
        .unwrap());
    assert_eq!(storage.get_sym_key(row.id).unwrap(), None);
    assert!(!storage
        .update_key_attributes(KeyTable::Sym, row.id, &metadata, None, None)
        .unwrap());
}

pub fn key_id_conflict(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let first = asym(t.id, "a", "01", 0);
    insert_asym(&*storage, &first).unwrap();
    let mut second = asym(t.id, "b", "02", 0);
    second.key_id = first.key_id.clone();
    assert_conflict(insert_asym(&*storage, &second), "asym key_id");
    assert_conflict(insert_asym(&*storage, &first), "asym id");
    assert_eq!(storage.get_asym_key(second.id).unwrap(), None);

    let first = sym(t.id, "a", "01");
    insert_sym(&*storage, &first).unwrap();
    let mut second = sym(t.id, "b", "02");
    second.key_id = first.key_id.clone();
    assert_conflict(insert_sym(&*storage, &second), "sym key_id");
    assert_eq!(storage.get_sym_key(second.id).unwrap(), None);
}

pub fn key_id_exists(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let a = asym(t.id, "a", "01", 0);
    let s = sym(t.id, "s", "01");
    assert!(!storage.key_id_exists(&a.key_id).unwrap());
    insert_asym(&*storage, &a).unwrap();
    insert_sym(&*storage, &s).unwrap();
    assert!(storage.key_id_exists(&a.key_id).unwrap());
    assert!(storage.key_id_exists(&s.key_id).unwrap());
    assert!(!storage.key_id_exists("never-used").unwrap());
    storage
        .delete_key(KeyTable::Sym, s.id, &destroyed(&s))
        .unwrap();
    assert!(!storage.key_id_exists(&s.key_id).unwrap());
}

pub fn delete_token_removes_keys(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let keep = new_token(&*storage);
    let a = asym(t.id, "a", "01", 0);
    let s = sym(t.id, "s", "01");
    let kept = sym(keep.id, "s", "01");
    insert_asym(&*storage, &a).unwrap();
    insert_sym(&*storage, &s).unwrap();
    insert_sym(&*storage, &kept).unwrap();
    storage.delete_token(t.id, &token_deleted(t.id)).unwrap();
    assert_eq!(storage.get_token(t.id).unwrap(), None);
    assert_eq!(storage.get_asym_key(a.id).unwrap(), None);
    assert_eq!(storage.get_sym_key(s.id).unwrap(), None);
    assert!(!storage.key_id_exists(&a.key_id).unwrap());
    assert!(!storage
        .list_tokens()
        .unwrap()
        .iter()
        .any(|row| row.id == t.id));
    assert_eq!(storage.get_sym_key(kept.id).unwrap(), Some(kept));
    assert!(storage.get_token(keep.id).unwrap().is_some());
    // The label is free again.
    let mut again = token("again");
    again.provider_name = t.provider_name.clone();
    storage.insert_token(&again).unwrap();
}

pub fn delete_token_keys_keeps_token(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let a = asym(t.id, "a", "01", 0);
    let s = sym(t.id, "s", "01");
    insert_asym(&*storage, &a).unwrap();
    insert_sym(&*storage, &s).unwrap();
    storage
        .delete_token_keys(t.id, &token_deleted(t.id))
        .unwrap();
    assert_eq!(storage.get_token(t.id).unwrap(), Some(t.clone()));
    assert!(storage.find_asym_keys(&filter(t.id)).unwrap().is_empty());
    assert!(storage.find_sym_keys(&filter(t.id)).unwrap().is_empty());
}

pub fn finds_are_ordered_by_creation(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let base = now();
    // Inserted out of order; found in created_at order.
    let mut rows: Vec<AsymKeyRow> = (0..5)
        .map(|i| {
            let mut row = asym(t.id, "same", "01", 0);
            row.created_at = base - Duration::seconds(i);
            row
        })
        .collect();
    for row in &rows {
        insert_asym(&*storage, row).unwrap();
    }
    rows.sort_by_key(|row| row.created_at);
    let found = storage.find_asym_keys(&filter(t.id)).unwrap();
    assert_eq!(found, rows);

    let mut syms: Vec<SymKeyRow> = (0..5)
        .map(|i| {
            let mut row = sym(t.id, "same", "01");
            row.created_at = base + Duration::milliseconds(i * 7) - Duration::seconds(i % 2);
            row
        })
        .collect();
    for row in &syms {
        insert_sym(&*storage, row).unwrap();
    }
    syms.sort_by_key(|row| row.created_at);
    let found = storage.find_sym_keys(&filter(t.id)).unwrap();
    assert_eq!(found, syms);
    // The same question twice gives the same order.
    assert_eq!(storage.find_sym_keys(&filter(t.id)).unwrap(), found);
}

/// The rows a search finds, in the order it hands them over.
fn search(storage: &dyn Storage, search: &Search) -> Vec<FoundRow> {
    let mut found = Vec::new();
    storage
        .visit_rows(search, &mut |row| found.push(row))
        .unwrap();
    found
}

/// One search over the three tables finds what the finds table by table find, in their order
/// (asym, sym, objects; each oldest first), with every column as stored, and each table's
/// conditions apply to its own rows only.
pub fn search_spans_every_table(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let other = token("other");
    storage.insert_token(&other).unwrap();
    let base = now();
    let mut asyms: Vec<AsymKeyRow> = (0..3)
        .map(|i| {
            let mut row = asym(t.id, "same", "01", i);
            row.created_at = base - Duration::seconds(i.into());
            row
        })
        .collect();
    asyms[1].public_key_ctx = None;
    asyms[2].expiration = None;
    for row in &asyms {
        insert_asym(&*storage, row).unwrap();
    }
    asyms.sort_by_key(|row| row.created_at);
    let mut syms = vec![sym(t.id, "same", "01"), sym(t.id, "same", "02")];
    syms[0].created_at = base + Duration::seconds(1);
    syms[1].key_value = None;
    syms[1].key_status = KeyStatus::Inactive;
    for row in &syms {
        insert_sym(&*storage, row).unwrap();
    }
    syms.sort_by_key(|row| row.created_at);
    let object = |class: i64, id: &str, value: Option<Vec<u8>>| ObjectRow {
        id: Uuid::new_v4(),
        provider_config_id: t.id,
        object_class: class,
        value,
        metadata: json!({ "label": "same", "id": id }),
        created_at: base,
        updated_at: base,
    };
    let objects = [object(1, "01", Some(vec![7, 8])), object(0, "03", None)];
    for row in &objects {
        storage.insert_object(row).unwrap();
    }
    // Another token's and another label's rows are never found.
    insert_sym(&*storage, &sym(other.id, "same", "01")).unwrap();
    insert_sym(&*storage, &sym(t.id, "elsewhere", "01")).unwrap();
    let everything = Search {
        filter: KeyFilter {
            label: Some("same".into()),
            ..filter(t.id)
        },
        asym: true,
        sym: true,
        objects: true,
        object_class: None,
    };
    let found = search(&*storage, &everything);
    let mut expected: Vec<FoundRow> = asyms
        .iter()
        .map(|row| FoundRow::Key(super::KeyRow::Asym(row.clone())))
        .chain(
            syms.iter()
                .map(|row| FoundRow::Key(super::KeyRow::Sym(row.clone()))),
        )
        .collect();
    let mut by_table = storage
        .find_objects(&everything.filter, None)
        .unwrap()
        .into_iter()
        .map(FoundRow::Object)
        .collect();
    expected.append(&mut by_table);
    assert_eq!(found, expected);
    assert_eq!(found.len(), 3 + 2 + 2);

    // Only the tables asked for; the class applies to objects, algorithms to asym rows, key
    // fields to key rows.
    let only = |asym: bool, sym: bool, objects: bool| Search {
        asym,
        sym,
        objects,
        ..everything.clone()
    };
    assert_eq!(search(&*storage, &only(true, false, false)).len(), 3);
    assert_eq!(search(&*storage, &only(false, true, false)).len(), 2);
    assert_eq!(search(&*storage, &only(false, false, true)).len(), 2);
    assert!(search(&*storage, &only(false, false, false)).is_empty());
    let certificates = Search {
        object_class: Some(1),
        ..only(false, false, true)
    };
    assert_eq!(
        search(&*storage, &certificates),
        vec![FoundRow::Object(objects[0].clone())]
    );
    let mut algorithms = everything.clone();
    algorithms.filter.key_algorithms = Some(vec![1, 2]);
    assert_eq!(search(&*storage, &algorithms).len(), 2 + 2 + 2);
    algorithms.filter.key_algorithms = Some(Vec::new());
    assert_eq!(
        search(&*storage, &algorithms).len(),
        2 + 2,
        "no asym row can match"
    );
    let mut inactive = everything.clone();
    inactive.filter.key_status = Some(KeyStatus::Inactive);
    assert_eq!(
        search(&*storage, &inactive),
        [
            vec![FoundRow::Key(super::KeyRow::Sym(
                syms.iter()
                    .find(|row| row.key_status == KeyStatus::Inactive)
                    .unwrap()
                    .clone()
            ))],
            expected[5..].to_vec()
        ]
        .concat()
    );
    let mut by_id = everything.clone();
    by_id.filter.ck_id = Some("03".into());
    assert_eq!(
        search(&*storage, &by_id),
        vec![FoundRow::Object(objects[1].clone())]
    );
}

pub fn objects_round_trip(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let at = now();
    let object = |class: i64, label: &str, id: &str| ObjectRow {
        id: Uuid::new_v4(),
        provider_config_id: t.id,
        object_class: class,
        value: Some(vec![1, 2, 3]),
        metadata: json!({ "label": label, "id": id, "object": { "label": label } }),
        created_at: at,
        updated_at: at,
    };
    let cert = object(1, "cert", "01");
    let data = object(0, "data", "02");
    storage.insert_object(&cert).unwrap();
    storage.insert_object(&data).unwrap();
    assert_eq!(storage.get_object(cert.id).unwrap(), Some(cert.clone()));
    let all = storage.find_objects(&filter(t.id), None).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        storage.find_objects(&filter(t.id), Some(1)).unwrap(),
        vec![cert.clone()]
    );
    let by_label = KeyFilter {
        label: Some("data".into()),
        ..filter(t.id)
    };
    assert_eq!(
        storage.find_objects(&by_label, None).unwrap(),
        vec![data.clone()]
    );
    let by_id = KeyFilter {
        ck_id: Some("01".into()),
        ..filter(t.id)
    };
    assert_eq!(
        storage.find_objects(&by_id, None).unwrap(),
        vec![cert.clone()]
    );
    let metadata = json!({ "label": "renamed", "id": "01" });
    assert!(storage.update_object(cert.id, &metadata, &[9, 9]).unwrap());
    let updated = storage.get_object(cert.id).unwrap().unwrap();
    assert_eq!(updated.metadata, metadata);
    assert_eq!(updated.value, Some(vec![9, 9]));
    assert!(updated.updated_at >= cert.updated_at);
    assert!(storage.delete_object(cert.id).unwrap());
    assert!(!storage.delete_object(cert.id).unwrap());
    assert!(!storage.update_object(cert.id, &metadata, &[]).unwrap());
    storage
        .delete_token_keys(t.id, &token_deleted(t.id))
        .unwrap();
    assert!(
        storage
            .find_objects(&filter(t.id), None)
            .unwrap()
            .is_empty(),
        "re-initialisation removes objects"
    );
    storage.insert_object(&object(0, "again", "03")).unwrap();
    storage.delete_token(t.id, &token_deleted(t.id)).unwrap();
    assert!(storage
        .find_objects(&filter(t.id), None)
        .unwrap()
        .is_empty());
}

pub fn key_state_and_events(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let a = asym(t.id, "a", "01", 0);
    let s = sym(t.id, "s", "02");
    insert_asym(&*storage, &a).unwrap();
    insert_sym(&*storage, &s).unwrap();
    let event = |key_id: &str, what: &str| KeyEvent {
        id: Uuid::new_v4(),
        key_id: key_id.to_string(),
        provider_config_id: t.id,
        event: what.to_string(),
        actor: "test".into(),
        old_value: Some(json!({ "status": 1 })),
        new_value: Some(json!({ "status": 2 })),
        at: now(),
    };
    let later = Some(now() + Duration::days(7));
    assert!(storage
        .set_key_state(
            KeyTable::Asym,
            a.id,
            KeyStatus::Inactive,
            later,
            None,
            &event(&a.key_id, "status")
        )
        .unwrap());
    let stored = storage.get_asym_key(a.id).unwrap().unwrap();
    assert_eq!(
        (stored.key_status, stored.expiration),
        (KeyStatus::Inactive, later)
    );
    assert!(storage
        .set_key_state(
            KeyTable::Sym,
            s.id,
            KeyStatus::Compromised,
            None,
            None,
            &event(&s.key_id, "status")
        )
        .unwrap());
    assert_eq!(
        storage.get_sym_key(s.id).unwrap().unwrap().key_status,
        KeyStatus::Compromised
    );
    let by_status = KeyFilter {
        key_status: Some(KeyStatus::Inactive),
        ..filter(t.id)
    };
    assert_eq!(storage.find_asym_keys(&by_status).unwrap().len(), 1);
    assert!(storage.find_sym_keys(&by_status).unwrap().is_empty());

    // An event of its own, for what happened outside the store.
    storage
        .record_event(&event(&a.key_id, "remote-retired"))
        .unwrap();
    assert!(storage
        .delete_key(KeyTable::Asym, a.id, &destroyed(&a))
        .unwrap());
    let events = storage.key_events(&a.key_id).unwrap();
    assert_eq!(
        history(&*storage, &a.key_id),
        ["generated", "status", "remote-retired", "destroyed"],
        "history outlives the key, oldest first"
    );
    assert_eq!(events[1].new_value, Some(json!({ "status": 2 })));
    assert!(!storage
        .set_key_state(
            KeyTable::Asym,
            a.id,
            KeyStatus::Active,
            None,
            None,
            &event(&a.key_id, "status")
        )
        .unwrap());
    assert!(!storage
        .delete_key(KeyTable::Asym, a.id, &destroyed(&a))
        .unwrap());
    assert_eq!(
        storage.key_events(&a.key_id).unwrap().len(),
        4,
        "nothing recorded for a gone row"
    );

    // A new expiration with the metadata that follows it, in the same transaction.
    let end_date = json!({ "label": "s", "id": "02", "secret": { "end_date": "20300101" } });
    assert!(storage
        .set_key_state(
            KeyTable::Sym,
            s.id,
            KeyStatus::Compromised,
            later,
            Some(&end_date),
            &event(&s.key_id, "expiration")
        )
        .unwrap());
    let stored = storage.get_sym_key(s.id).unwrap().unwrap();
    assert_eq!((stored.expiration, stored.metadata), (later, end_date));
    assert_eq!(
        history(&*storage, &s.key_id),
        ["generated", "status", "expiration"]
    );
}

/// A certificate row of token `token` with `CKA_ID` `id`, for the checks that rename objects
/// with a key.
fn certificate(token: Uuid, label: &str, id: &str) -> ObjectRow {
    let at = now();
    ObjectRow {
        id: Uuid::new_v4(),
        provider_config_id: token,
        object_class: 1,
        value: Some(vec![0x30, 0x00]),
        metadata: json!({ "label": label, "id": id, "object": { "label": label, "id": id } }),
        created_at: at,
        updated_at: at,
    }
}

pub fn rotation_is_one_transaction(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let old = asym(t.id, "k", "01", 3);
    insert_asym(&*storage, &old).unwrap();
    let cert = certificate(t.id, "k", "01");
    let other_cert = certificate(t.id, "k", "01");
    storage.insert_object(&cert).unwrap();
    storage.insert_object(&other_cert).unwrap();
    let successor = asym(t.id, "k", "01", 3);
    let event = KeyEvent {
        id: Uuid::new_v4(),
        key_id: old.key_id.clone(),
        provider_config_id: t.id,
        event: "rotated".into(),
        actor: "test".into(),
        old_value: None,
        new_value: Some(json!({ "rotated_to": successor.key_id })),
        at: now(),
    };
    let linked = json!({ "label": "k@old", "id": "01406f6c64", "rotated_to": successor.key_id });
    let renamed_cert = ObjectMetadata {
        id: cert.id,
        metadata: json!({ "label": "k@old", "id": "01406f6c64", "object": { "label": "k@old" } }),
    };
    // An object that is gone is skipped, not an error.
    let gone = ObjectMetadata {
        id: Uuid::new_v4(),
        metadata: json!({ "label": "gone" }),
    };
    assert!(storage
        .rotate_key(
            NewKeyRow::Asym(&successor),
            KeyTable::Asym,
            old.id,
            &linked,
            &[renamed_cert.clone(), gone.clone()],
            std::slice::from_ref(&event)
        )
        .unwrap());
    let before = storage.get_asym_key(old.id).unwrap().unwrap();
    assert_eq!(
        (before.key_status, before.metadata.clone()),
        (KeyStatus::Inactive, linked.clone())
    );
    assert_eq!(
        storage.get_asym_key(successor.id).unwrap(),
        Some(successor.clone())
    );
    assert_eq!(history(&*storage, &old.key_id), ["generated", "rotated"]);
    let stored_cert = storage.get_object(cert.id).unwrap().unwrap();
    assert_eq!(stored_cert.metadata, renamed_cert.metadata);
    assert!(stored_cert.updated_at >= cert.updated_at);
    assert_eq!(stored_cert.value, cert.value, "only the metadata changes");
    assert_eq!(
        storage.get_object(other_cert.id).unwrap(),
        Some(other_cert.clone()),
        "an object not named is left alone"
    );
    // The renamed names are the indexed ones now.
    let by_label = |label: &str| KeyFilter {
        label: Some(label.into()),
        ..filter(t.id)
    };
    assert_eq!(
        storage.find_asym_keys(&by_label("k")).unwrap(),
        vec![successor.clone()]
    );
    assert_eq!(storage.find_asym_keys(&by_label("k@old")).unwrap().len(), 1);
    assert_eq!(
        storage.find_objects(&by_label("k@old"), Some(1)).unwrap(),
        vec![stored_cert.clone()]
    );

    // A successor whose key_id is taken: nothing of the rotation is written, objects included.
    let mut clash = asym(t.id, "k", "01", 3);
    clash.key_id = successor.key_id.clone();
    let clash_cert = ObjectMetadata {
        id: other_cert.id,
        metadata: json!({ "label": "must not be written" }),
    };
    let err = storage.rotate_key(
        NewKeyRow::Asym(&clash),
        KeyTable::Asym,
        successor.id,
        &linked,
        std::slice::from_ref(&clash_cert),
        std::slice::from_ref(&event),
    );
    assert!(matches!(err, Err(StorageError::Conflict(_))), "{err:?}");
    assert_eq!(
        storage
            .get_asym_key(successor.id)
            .unwrap()
            .unwrap()
            .key_status,
        successor.key_status
    );
    assert_eq!(
        storage.get_object(other_cert.id).unwrap(),
        Some(other_cert.clone())
    );
    assert_eq!(history(&*storage, &old.key_id), ["generated", "rotated"]);

    // A predecessor that already has a successor (a second rotation racing the first): false,
    // nothing written, the first rotation's link kept.
    let second = asym(t.id, "k", "01", 3);
    let relinked = json!({ "label": "k@old@old", "rotated_to": second.key_id });
    assert!(!storage
        .rotate_key(
            NewKeyRow::Asym(&second),
            KeyTable::Asym,
            old.id,
            &relinked,
            std::slice::from_ref(&clash_cert),
            std::slice::from_ref(&event)
        )
        .unwrap());
    assert_eq!(storage.get_asym_key(second.id).unwrap(), None);
    assert_eq!(
        storage.get_asym_key(old.id).unwrap().unwrap().metadata,
        linked
    );
    assert_eq!(
        storage.get_object(other_cert.id).unwrap(),
        Some(other_cert.clone())
    );
    assert_eq!(history(&*storage, &old.key_id), ["generated", "rotated"]);

    // A predecessor that is gone: false, nothing written.
    let orphan = sym(t.id, "s", "02");
    assert!(!storage
        .rotate_key(
            NewKeyRow::Sym(&orphan),
            KeyTable::Sym,
            Uuid::new_v4(),
            &linked,
            std::slice::from_ref(&clash_cert),
            &[]
        )
        .unwrap());
    assert_eq!(storage.get_sym_key(orphan.id).unwrap(), None);
    assert_eq!(
        storage.get_object(other_cert.id).unwrap(),
        Some(other_cert.clone())
    );
}

/// Renaming a key with its certificates: the key's metadata, the objects' and the event in one
/// transaction; nothing when the key is gone or the event cannot be written.
pub fn rename_is_one_transaction(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let key = sym(t.id, "k", "01");
    insert_sym(&*storage, &key).unwrap();
    let cert = certificate(t.id, "k", "01");
    storage.insert_object(&cert).unwrap();
    let renamed = json!({ "label": "k@x", "id": "01", "secret": { "label": "k@x" } });
    let renamed_cert = ObjectMetadata {
        id: cert.id,
        metadata: json!({ "label": "k@x", "id": "01", "object": { "label": "k@x" } }),
    };
    let taken = storage.key_events(&key.key_id).unwrap().remove(0);
    let clash = KeyEvent {
        id: taken.id,
        ..key_event(t.id, &key.key_id, "renamed")
    };
    assert!(storage
        .rename_key(
            KeyTable::Sym,
            key.id,
            &renamed,
            std::slice::from_ref(&renamed_cert),
            &clash
        )
        .is_err());
    assert_eq!(storage.get_sym_key(key.id).unwrap(), Some(key.clone()));
    assert_eq!(storage.get_object(cert.id).unwrap(), Some(cert.clone()));
    assert_eq!(history(&*storage, &key.key_id), ["generated"]);

    assert!(storage
        .rename_key(
            KeyTable::Sym,
            key.id,
            &renamed,
            std::slice::from_ref(&renamed_cert),
            &key_event(t.id, &key.key_id, "renamed")
        )
        .unwrap());
    let stored = storage.get_sym_key(key.id).unwrap().unwrap();
    assert_eq!(stored.metadata, renamed);
    assert_eq!(
        (
            stored.key_status,
            stored.expiration,
            stored.key_value.clone()
        ),
        (key.key_status, key.expiration, key.key_value.clone()),
        "only the metadata changes"
    );
    assert_eq!(
        storage.get_object(cert.id).unwrap().unwrap().metadata,
        renamed_cert.metadata
    );
    assert_eq!(history(&*storage, &key.key_id), ["generated", "renamed"]);

    // A key that is gone: false, nothing written.
    let other = certificate(t.id, "o", "02");
    storage.insert_object(&other).unwrap();
    let touch_other = ObjectMetadata {
        id: other.id,
        metadata: json!({ "label": "must not be written" }),
    };
    assert!(!storage
        .rename_key(
            KeyTable::Asym,
            Uuid::new_v4(),
            &renamed,
            std::slice::from_ref(&touch_other),
            &key_event(t.id, "nobody", "renamed")
        )
        .unwrap());
    assert_eq!(storage.get_object(other.id).unwrap(), Some(other));
    assert!(storage.key_events("nobody").unwrap().is_empty());
}

/// Each change of a key writes its event with it: creation, an attribute change that is part of
/// the history (one half of a pair destroyed), destruction, and a token's deletion or
/// re-initialisation (one `destroyed` per key).
pub fn every_change_records_its_event(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let pair = asym(t.id, "pair", "01", 3);
    let secret = sym(t.id, "secret", "02");
    insert_asym(&*storage, &pair).unwrap();
    insert_sym(&*storage, &secret).unwrap();
    assert_eq!(history(&*storage, &pair.key_id), ["generated"]);
    assert_eq!(history(&*storage, &secret.key_id), ["generated"]);

    // An attribute change outside the history records nothing; one inside it, its event.
    let relabelled = json!({ "label": "renamed", "id": "01" });
    assert!(storage
        .update_key_attributes(KeyTable::Asym, pair.id, &relabelled, None, None)
        .unwrap());
    assert_eq!(history(&*storage, &pair.key_id), ["generated"]);
    let private_only = json!({ "label": "renamed", "id": "01", "private": {} });
    assert!(storage
        .update_key_attributes(
            KeyTable::Asym,
            pair.id,
            &private_only,
            None,
            Some(&destroyed(&pair))
        )
        .unwrap());
    assert_eq!(
        storage.get_asym_key(pair.id).unwrap().unwrap().metadata,
        private_only
    );
    assert_eq!(history(&*storage, &pair.key_id), ["generated", "destroyed"]);
    assert!(storage
        .delete_key(KeyTable::Asym, pair.id, &destroyed(&pair))
        .unwrap());
    assert_eq!(storage.get_asym_key(pair.id).unwrap(), None);
    assert_eq!(
        history(&*storage, &pair.key_id),
        ["generated", "destroyed", "destroyed"]
    );
    // A row already gone: false, and no event.
    assert!(!storage
        .update_key_attributes(
            KeyTable::Asym,
            pair.id,
            &private_only,
            None,
            Some(&destroyed(&pair))
        )
        .unwrap());
    assert_eq!(storage.key_events(&pair.key_id).unwrap().len(), 3);

    // Re-initialisation: one event per key, copied from the template, each with its own id.
    let second = sym(t.id, "second", "03");
    insert_sym(&*storage, &second).unwrap();
    let reinit = token_deleted(t.id);
    assert_eq!(storage.delete_token_keys(t.id, &reinit).unwrap(), 2);
    for key in [&secret, &second] {
        let events = storage.key_events(&key.key_id).unwrap();
        assert_eq!(events.len(), 2);
        let last = &events[1];
        assert_eq!(
            (last.event.as_str(), &last.actor, &last.new_value, last.at),
            ("destroyed", &reinit.actor, &reinit.new_value, reinit.at)
        );
        assert_ne!(last.id, reinit.id);
    }
    assert!(storage.get_token(t.id).unwrap().is_some());
    assert_eq!(storage.delete_token_keys(t.id, &reinit).unwrap(), 0);

    // Deletion: the same, and the token goes too.
    let last = asym(t.id, "last", "04", 3);
    insert_asym(&*storage, &last).unwrap();
    assert_eq!(storage.delete_token(t.id, &token_deleted(t.id)).unwrap(), 1);
    assert_eq!(history(&*storage, &last.key_id), ["generated", "destroyed"]);
    assert_eq!(storage.get_token(t.id).unwrap(), None);
}

/// A change whose event cannot be written is not written either. The event fails here because
/// its id is taken (a unique violation in the real database, no mock); every backend must roll
/// the change back with it.
pub fn no_change_without_its_event(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let kept = sym(t.id, "kept", "01");
    insert_sym(&*storage, &kept).unwrap();
    let taken = storage.key_events(&kept.key_id).unwrap().remove(0);
    let clash = |key: &dyn KeyRow, what: &str| KeyEvent {
        id: taken.id,
        ..key_event(t.id, key.key_id(), what)
    };

    let pair = asym(t.id, "pair", "02", 3);
    let secret = sym(t.id, "secret", "03");
    assert_conflict(
        storage.insert_key(NewKeyRow::Asym(&pair), &clash(&pair, "generated")),
        "asym insert whose event clashes",
    );
    assert_conflict(
        storage.insert_key(NewKeyRow::Sym(&secret), &clash(&secret, "imported")),
        "sym insert whose event clashes",
    );
    assert_eq!(storage.get_asym_key(pair.id).unwrap(), None);
    assert_eq!(storage.get_sym_key(secret.id).unwrap(), None);
    assert!(!storage.key_id_exists(&pair.key_id).unwrap());
    assert!(storage.key_events(&pair.key_id).unwrap().is_empty());

    assert!(storage
        .delete_key(KeyTable::Sym, kept.id, &clash(&kept, "destroyed"))
        .is_err());
    assert_eq!(storage.get_sym_key(kept.id).unwrap(), Some(kept.clone()));

    let changed = json!({ "label": "changed" });
    let later = Some(now() + Duration::days(1));
    assert!(storage
        .update_key_attributes(
            KeyTable::Sym,
            kept.id,
            &changed,
            later,
            Some(&clash(&kept, "destroyed"))
        )
        .is_err());
    assert!(storage
        .set_key_state(
            KeyTable::Sym,
            kept.id,
            KeyStatus::Inactive,
            later,
            Some(&changed),
            &clash(&kept, "status")
        )
        .is_err());
    assert_eq!(storage.get_sym_key(kept.id).unwrap(), Some(kept.clone()));
    assert_eq!(history(&*storage, &kept.key_id), ["generated"]);
}

/// [`no_change_without_its_event`] for a fault the backend's own test installs: after
/// `refuse_events(token)`, every `key_event` insert of that token fails in the database (a
/// trigger). Nothing of a key insert, a re-initialisation or a token deletion is written then.
pub fn refused_events_write_nothing(storage: Arc<dyn Storage>, refuse_events: &dyn Fn(Uuid)) {
    let t = new_token(&*storage);
    let pair = asym(t.id, "pair", "01", 3);
    insert_asym(&*storage, &pair).unwrap();
    refuse_events(t.id);

    let secret = sym(t.id, "secret", "02");
    let other = asym(t.id, "other", "03", 3);
    let refused = |result: Result<(), StorageError>, what: &str| {
        assert!(result.is_err(), "{what}: written without its event")
    };
    refused(insert_sym(&*storage, &secret), "sym insert");
    refused(insert_asym(&*storage, &other), "asym insert");
    assert_eq!(storage.get_sym_key(secret.id).unwrap(), None);
    assert_eq!(storage.get_asym_key(other.id).unwrap(), None);
    assert!(storage
        .delete_key(KeyTable::Asym, pair.id, &destroyed(&pair))
        .is_err());
    assert!(storage
        .delete_token_keys(t.id, &token_deleted(t.id))
        .is_err());
    assert!(storage.delete_token(t.id, &token_deleted(t.id)).is_err());
    assert_eq!(storage.get_asym_key(pair.id).unwrap(), Some(pair.clone()));
    assert!(storage.get_token(t.id).unwrap().is_some());
    assert_eq!(history(&*storage, &pair.key_id), ["generated"]);
}

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

use super::{AsymKeyRow, KeyEvent, KeyFilter, KeyTable, ObjectRow, Storage, SymKeyRow, TokenRow};
use crate::error::{Error, StorageError};
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
    ("key_state_and_events", key_state_and_events),
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
            key_state_and_events,
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
        key_status: 1,
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
        key_status: 1,
        key_mode: 0,
        expiration: None,
        key_value: Some(vec![0, 1, 2, 255]),
        metadata: json!({ "label": label, "id": ck_id }),
        created_at: at,
        updated_at: at,
    }
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
    storage.insert_asym_key(&full).unwrap();
    storage.insert_asym_key(&sparse).unwrap();
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
    storage.insert_sym_key(&full).unwrap();
    storage.insert_sym_key(&sparse).unwrap();
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
        storage.insert_asym_key(row).unwrap();
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
        storage.insert_sym_key(row).unwrap();
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
    storage.insert_asym_key(&row).unwrap();
    let metadata = json!({ "label": "after", "id": "02" });
    assert!(storage
        .update_asym_key_attributes(row.id, &metadata, None)
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
        .update_asym_key_attributes(row.id, &metadata, expiry)
        .unwrap());
    assert_eq!(
        storage.get_asym_key(row.id).unwrap().unwrap().expiration,
        expiry
    );

    assert!(storage.delete_asym_key(row.id).unwrap());
    assert!(!storage.delete_asym_key(row.id).unwrap());
    assert_eq!(storage.get_asym_key(row.id).unwrap(), None);
    assert!(!storage
        .update_asym_key_attributes(row.id, &metadata, None)
        .unwrap());
}

pub fn sym_update_and_delete(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let row = sym(t.id, "before", "01");
    storage.insert_sym_key(&row).unwrap();
    let metadata = json!({ "label": "after", "id": "02" });
    let expiry = Some(now() + Duration::days(1));
    assert!(storage
        .update_sym_key_attributes(row.id, &metadata, expiry)
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

    assert!(storage.delete_sym_key(row.id).unwrap());
    assert!(!storage.delete_sym_key(row.id).unwrap());
    assert_eq!(storage.get_sym_key(row.id).unwrap(), None);
    assert!(!storage
        .update_sym_key_attributes(row.id, &metadata, None)
        .unwrap());
}

pub fn key_id_conflict(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let first = asym(t.id, "a", "01", 0);
    storage.insert_asym_key(&first).unwrap();
    let mut second = asym(t.id, "b", "02", 0);
    second.key_id = first.key_id.clone();
    assert_conflict(storage.insert_asym_key(&second), "asym key_id");
    assert_conflict(storage.insert_asym_key(&first), "asym id");
    assert_eq!(storage.get_asym_key(second.id).unwrap(), None);

    let first = sym(t.id, "a", "01");
    storage.insert_sym_key(&first).unwrap();
    let mut second = sym(t.id, "b", "02");
    second.key_id = first.key_id.clone();
    assert_conflict(storage.insert_sym_key(&second), "sym key_id");
    assert_eq!(storage.get_sym_key(second.id).unwrap(), None);
}

pub fn key_id_exists(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let a = asym(t.id, "a", "01", 0);
    let s = sym(t.id, "s", "01");
    assert!(!storage.key_id_exists(&a.key_id).unwrap());
    storage.insert_asym_key(&a).unwrap();
    storage.insert_sym_key(&s).unwrap();
    assert!(storage.key_id_exists(&a.key_id).unwrap());
    assert!(storage.key_id_exists(&s.key_id).unwrap());
    assert!(!storage.key_id_exists("never-used").unwrap());
    storage.delete_sym_key(s.id).unwrap();
    assert!(!storage.key_id_exists(&s.key_id).unwrap());
}

pub fn delete_token_removes_keys(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let keep = new_token(&*storage);
    let a = asym(t.id, "a", "01", 0);
    let s = sym(t.id, "s", "01");
    let kept = sym(keep.id, "s", "01");
    storage.insert_asym_key(&a).unwrap();
    storage.insert_sym_key(&s).unwrap();
    storage.insert_sym_key(&kept).unwrap();
    storage.delete_token(t.id).unwrap();
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
    storage.insert_asym_key(&a).unwrap();
    storage.insert_sym_key(&s).unwrap();
    storage.delete_token_keys(t.id).unwrap();
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
        storage.insert_asym_key(row).unwrap();
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
        storage.insert_sym_key(row).unwrap();
    }
    syms.sort_by_key(|row| row.created_at);
    let found = storage.find_sym_keys(&filter(t.id)).unwrap();
    assert_eq!(found, syms);
    // The same question twice gives the same order.
    assert_eq!(storage.find_sym_keys(&filter(t.id)).unwrap(), found);
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
    storage.delete_token_keys(t.id).unwrap();
    assert!(
        storage
            .find_objects(&filter(t.id), None)
            .unwrap()
            .is_empty(),
        "re-initialisation removes objects"
    );
    storage.insert_object(&object(0, "again", "03")).unwrap();
    storage.delete_token(t.id).unwrap();
    assert!(storage
        .find_objects(&filter(t.id), None)
        .unwrap()
        .is_empty());
}

pub fn key_state_and_events(storage: Arc<dyn Storage>) {
    let t = new_token(&*storage);
    let a = asym(t.id, "a", "01", 0);
    let s = sym(t.id, "s", "02");
    storage.insert_asym_key(&a).unwrap();
    storage.insert_sym_key(&s).unwrap();
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
        .set_key_state(KeyTable::Asym, a.id, 2, later, &event(&a.key_id, "status"))
        .unwrap());
    let stored = storage.get_asym_key(a.id).unwrap().unwrap();
    assert_eq!((stored.key_status, stored.expiration), (2, later));
    assert!(storage
        .set_key_state(KeyTable::Sym, s.id, 3, None, &event(&s.key_id, "status"))
        .unwrap());
    assert_eq!(storage.get_sym_key(s.id).unwrap().unwrap().key_status, 3);
    let by_status = KeyFilter {
        key_status: Some(2),
        ..filter(t.id)
    };
    assert_eq!(storage.find_asym_keys(&by_status).unwrap().len(), 1);
    assert!(storage.find_sym_keys(&by_status).unwrap().is_empty());

    storage
        .record_event(&event(&a.key_id, "destroyed"))
        .unwrap();
    storage.delete_asym_key(a.id).unwrap();
    let history = storage.key_events(&a.key_id).unwrap();
    let kinds: Vec<&str> = history.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["status", "destroyed"],
        "history outlives the key, oldest first"
    );
    assert_eq!(history[0].new_value, Some(json!({ "status": 2 })));
    assert!(!storage
        .set_key_state(KeyTable::Asym, a.id, 1, None, &event(&a.key_id, "status"))
        .unwrap());
    assert_eq!(
        storage.key_events(&a.key_id).unwrap().len(),
        2,
        "nothing recorded for a gone row"
    );
}

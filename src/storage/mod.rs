//! The key store: a small synchronous trait over the three tables of the key-management schema,
//! chosen by URL scheme (`sqlite:` or `postgres://`). It only ever sees ciphertext for
//! secrets: sealing happens above it, in the core.
//!
//! Timestamps are kept to the microsecond (PostgreSQL's `timestamptz` precision; SQLite stores
//! RFC 3339 text with six fractional digits). Every backend passes the suite in [`contract`].
//!
//! The SQL backends share one statement layer, [`sql`]: each statement written once from a
//! small [`sql::Dialect`], rows decoded once, and [`Storage`] implemented once for every
//! [`sql::Driver`]. [`sqlite`] and [`postgres`] are drivers (connections, pooling, the change
//! feed, error mapping, the migrations' lock) with their dialect; a new dialect is one such file,
//! its `migrations/<dialect>/` directory and the lines that name it
//! (`docs/adding-a-sql-dialect.md`).

mod caller_pool;
mod change_feed;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub mod contract;
pub mod migrations;
mod pg_error;
pub mod postgres;
pub mod sql;
pub mod sqlite;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::config::DatabaseConfig;
use crate::error::{Error, StorageError};
use crate::key_state::KeyStatus;

pub type StorageResult<T> = std::result::Result<T, StorageError>;

/// A `provider_config` row: one token.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenRow {
    pub id: Uuid,
    /// The token label (unique).
    pub provider_name: String,
    /// The token record (see `core::token`), opaque to storage.
    pub config: Value,
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An `asym_key` row: one key pair (or one half of it).
#[derive(Clone, Debug, PartialEq)]
pub struct AsymKeyRow {
    pub id: Uuid,
    pub provider_config_id: Uuid,
    pub key_id: String,
    pub key_algorithm: i32,
    pub key_status: KeyStatus,
    pub key_mode: i32,
    pub expiration: Option<DateTime<Utc>>,
    pub public_key_ctx: Option<Value>,
    pub private_key_ctx: Option<Value>,
    /// PKCS#11 attributes without a column. Top-level `label` (string) and `id` (hex of `CKA_ID`)
    /// are indexed.
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A `sym_key` row: one secret key.
#[derive(Clone, Debug, PartialEq)]
pub struct SymKeyRow {
    pub id: Uuid,
    pub provider_config_id: Uuid,
    pub key_id: String,
    pub key_status: KeyStatus,
    pub key_mode: i32,
    pub expiration: Option<DateTime<Utc>>,
    /// Sealed key bytes; never the key itself.
    pub key_value: Option<Vec<u8>>,
    /// As for [`AsymKeyRow::metadata`].
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which key table a row is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyTable {
    Asym,
    Sym,
}

impl KeyTable {
    pub fn name(self) -> &'static str {
        match self {
            KeyTable::Asym => "asym_key",
            KeyTable::Sym => "sym_key",
        }
    }
}

/// A `key_event` row: one lifecycle event of a key, kept after the key is gone.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyEvent {
    pub id: Uuid,
    pub key_id: String,
    pub provider_config_id: Uuid,
    /// `created`, `imported`, `status`, `expiration`, `rotated`, `destroyed`, …
    pub event: String,
    /// Who: `pkcs11:<process>@<host>` or `admin:<user>@<host>`.
    pub actor: String,
    pub old_value: Option<Value>,
    pub new_value: Option<Value>,
    pub at: DateTime<Utc>,
}

impl KeyEvent {
    /// This event for another key: a copy with `key_id` and a new `id`. A token's deletion
    /// records one `destroyed` per key this way.
    pub fn for_key(&self, key_id: &str) -> KeyEvent {
        KeyEvent {
            id: Uuid::new_v4(),
            key_id: key_id.to_string(),
            ..self.clone()
        }
    }
}

/// A key row read from either key table.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyRow {
    Asym(AsymKeyRow),
    Sym(SymKeyRow),
}

impl KeyRow {
    pub fn into_asym(self) -> Option<AsymKeyRow> {
        match self {
            KeyRow::Asym(row) => Some(row),
            KeyRow::Sym(_) => None,
        }
    }

    pub fn into_sym(self) -> Option<SymKeyRow> {
        match self {
            KeyRow::Sym(row) => Some(row),
            KeyRow::Asym(_) => None,
        }
    }
}

/// A key row to insert: a new key, or the successor a rotation inserts.
#[derive(Clone, Copy, Debug)]
pub enum NewKeyRow<'a> {
    Asym(&'a AsymKeyRow),
    Sym(&'a SymKeyRow),
}

/// A `p11_object` row: a PKCS#11 object that is not a key (certificate, data).
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectRow {
    pub id: Uuid,
    pub provider_config_id: Uuid,
    /// `CKA_CLASS`.
    pub object_class: i64,
    /// `CKA_VALUE`: clear for public objects, sealed for private ones.
    pub value: Option<Vec<u8>>,
    /// As for [`AsymKeyRow::metadata`]; `label` and `id` are indexed.
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// New `metadata` for a `p11_object` row, written in the transaction of a key's change.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectMetadata {
    pub id: Uuid,
    pub metadata: Value,
}

/// Indexed search criteria; every `Some` narrows the SQL `WHERE`. What no column or index covers
/// is filtered above storage on the (few) rows returned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyFilter {
    pub provider_config_id: Uuid,
    /// `metadata.label`.
    pub label: Option<String>,
    /// `metadata.id` (lowercase hex of `CKA_ID`).
    pub ck_id: Option<String>,
    /// `key_algorithm IN (…)` (asym only; ignored for sym).
    pub key_algorithms: Option<Vec<i32>>,
    pub key_id: Option<String>,
    /// `key_status = …` (indexed).
    pub key_status: Option<KeyStatus>,
}

/// The search behind `C_FindObjectsInit`, over every table that holds objects: the rows of the
/// tables it wants that the filter selects ([`Storage::visit_rows`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Search {
    /// `key_algorithms` applies to `asym_key` rows only, the key fields (`key_algorithms`,
    /// `key_id`, `key_status`) to key rows only.
    pub filter: KeyFilter,
    pub asym: bool,
    pub sym: bool,
    pub objects: bool,
    /// `CKA_CLASS` of the `p11_object` rows, when given.
    pub object_class: Option<i64>,
}

/// A row the search found.
#[derive(Clone, Debug, PartialEq)]
pub enum FoundRow {
    Key(KeyRow),
    Object(ObjectRow),
}

/// A read-modify-write of a token record inside one write transaction, so concurrent failed
/// logins in several processes count exactly.
pub type ConfigUpdate<'a> = &'a mut dyn FnMut(&mut Value) -> Result<(), Error>;

/// The storage contract every backend implements. All methods are safe to call from many threads.
pub trait Storage: Send + Sync {
    /// A short name for logs ("sqlite:/path", "postgres://host/db" without password).
    fn describe(&self) -> String;

    /// `Err(StorageError::Missing)` when the store has not been created yet (a SQLite file that
    /// does not exist). Such a store reads as empty, and the first write that needs it (a new
    /// token) creates it; read-only tools use this to say so instead of listing nothing.
    fn require_existing(&self) -> StorageResult<()> {
        Ok(())
    }

    /// Creates the store when it does not exist yet, with the current schema (`sqlhsm db
    /// migrate`). A PostgreSQL database is created by its administrator and migrated at open.
    fn create(&self) -> StorageResult<()> {
        Ok(())
    }

    /// Why the store cannot be written, when it can only be read (a read-only SQLite file);
    /// writes then fail with [`StorageError::ReadOnly`].
    fn read_only(&self) -> Option<String> {
        None
    }

    /// The privileges the module needs that the store's current role lacks, by name
    /// (`INSERT on key_event`); empty where the backend has no roles (SQLite).
    fn missing_privileges(&self) -> StorageResult<Vec<String>> {
        Ok(Vec::new())
    }

    fn list_tokens(&self) -> StorageResult<Vec<TokenRow>>;
    fn get_token(&self, id: Uuid) -> StorageResult<Option<TokenRow>>;
    /// `Conflict` when `provider_name` is taken.
    fn insert_token(&self, row: &TokenRow) -> StorageResult<()>;
    /// Rename (`C_InitToken` with a new label); `Conflict` when taken.
    fn rename_token(&self, id: Uuid, provider_name: &str) -> StorageResult<()>;
    /// Applies `update` to the current config in one write transaction and stores the result;
    /// returns the stored config. If `update` fails, nothing is written and its error is returned
    /// as `Ok(Err(..))`. A token that does not exist answers `Ok(Err(CKR_TOKEN_NOT_PRESENT))`
    /// without calling `update`. `update` must not call back into storage: it runs while this
    /// call holds the write lock.
    fn update_token_config(
        &self,
        id: Uuid,
        update: ConfigUpdate<'_>,
    ) -> StorageResult<Result<Value, Error>>;
    /// Deletes the token and all its keys and objects, and records `destroyed` for each key, in
    /// one transaction. `destroyed` is a template: each key deleted gets a copy with its
    /// `key_id` and a new `id` ([`KeyEvent::for_key`]). Returns the number of keys deleted.
    fn delete_token(&self, id: Uuid, destroyed: &KeyEvent) -> StorageResult<usize>;
    /// Deletes all keys and objects of a token (re-initialisation), recording `destroyed` for
    /// each key as [`Storage::delete_token`] does, in one transaction.
    fn delete_token_keys(&self, id: Uuid, destroyed: &KeyEvent) -> StorageResult<usize>;

    /// Inserts a key row and records `created` (its `generated` or `imported` event), in one
    /// transaction: a key is never stored without its creation event. `Conflict` (and nothing
    /// written) when the row's `id` or `key_id` is taken.
    fn insert_key(&self, row: NewKeyRow<'_>, created: &KeyEvent) -> StorageResult<()>;
    /// The row `id` of `table`.
    fn get_key(&self, table: KeyTable, id: Uuid) -> StorageResult<Option<KeyRow>>;
    /// The rows of `table` the filter selects (`key_algorithms` applies to asym only), oldest
    /// first.
    fn find_keys(&self, table: KeyTable, filter: &KeyFilter) -> StorageResult<Vec<KeyRow>>;
    /// The rows [`Storage::find_keys`] returns, in the same order, handed to `each` one at a
    /// time as they are read, so that a search over a million rows never holds them all.
    fn visit_keys(
        &self,
        table: KeyTable,
        filter: &KeyFilter,
        each: &mut dyn FnMut(KeyRow),
    ) -> StorageResult<()>;
    /// Replaces `metadata` and `expiration`, bumps `updated_at` and records `event` when given,
    /// in one transaction; false (nothing recorded) when the row is gone.
    fn update_key_attributes(
        &self,
        table: KeyTable,
        id: Uuid,
        metadata: &Value,
        expiration: Option<DateTime<Utc>>,
        event: Option<&KeyEvent>,
    ) -> StorageResult<bool>;
    /// Deletes a key row and records `destroyed`, in one transaction; false (nothing recorded)
    /// when the row was already gone.
    fn delete_key(&self, table: KeyTable, id: Uuid, destroyed: &KeyEvent) -> StorageResult<bool>;
    /// True when `key_id` is used by any asym or sym row.
    fn key_id_exists(&self, key_id: &str) -> StorageResult<bool>;

    fn insert_object(&self, row: &ObjectRow) -> StorageResult<()>;
    fn get_object(&self, id: Uuid) -> StorageResult<Option<ObjectRow>>;
    /// Objects of a token by the filter's label and `CKA_ID` (its key fields are ignored) and,
    /// when given, class.
    fn find_objects(&self, filter: &KeyFilter, class: Option<i64>)
        -> StorageResult<Vec<ObjectRow>>;
    /// The rows [`Storage::find_objects`] returns, one at a time, as [`Storage::visit_keys`].
    fn visit_objects(
        &self,
        filter: &KeyFilter,
        class: Option<i64>,
        each: &mut dyn FnMut(ObjectRow),
    ) -> StorageResult<()>;
    /// The rows a [`Search`] selects, handed to `each` one at a time as they are read: the
    /// `asym_key` rows first, then `sym_key`, then `p11_object`, each table's oldest first (what
    /// [`Storage::visit_keys`] and [`Storage::visit_objects`] give, table by table), in one
    /// statement: on PostgreSQL one round trip for the whole search.
    fn visit_rows(&self, search: &Search, each: &mut dyn FnMut(FoundRow)) -> StorageResult<()>;
    /// Replaces `metadata` and `value` and bumps `updated_at`; false when the row is gone.
    fn update_object(&self, id: Uuid, metadata: &Value, value: &[u8]) -> StorageResult<bool>;
    fn delete_object(&self, id: Uuid) -> StorageResult<bool>;

    /// A number that changes after any commit to the store by another connection, process or
    /// host (and may change after this process's own writes). Cheap: SQLite answers from
    /// `PRAGMA data_version` on a watch connection, PostgreSQL from a counter of the
    /// notifications its `LISTEN` connection received (read by a thread of its own, or, without
    /// threads, here: a look at what has arrived, never a wait), with no round trip. The core
    /// compares it to decide when cached objects must be revalidated.
    fn change_marker(&self) -> StorageResult<u64>;

    /// In a forked child, for a store the parent opened: lets go of what can be let go without
    /// touching the parent's use of the database, so that the child can open the store afresh.
    /// Whatever would talk to the parent's database sessions (a PostgreSQL connection's
    /// goodbye) is left alone, and leaked with the inherited instance. `at_rest` says whether
    /// every call of the parent had finished at the fork; an error means this child cannot
    /// safely open the store again.
    fn release_after_fork(&self, at_rest: bool) -> StorageResult<()>;

    /// Records an event on its own. Every change of the store writes its event in its own
    /// transaction (the methods above); this is for what happens outside the store, such as a
    /// REMOTE key's object retired in its HSM after the row changed.
    fn record_event(&self, event: &KeyEvent) -> StorageResult<()>;
    /// A key's events, oldest first.
    fn key_events(&self, key_id: &str) -> StorageResult<Vec<KeyEvent>>;
    /// A rotation in one transaction: inserts the successor, makes the predecessor Inactive
    /// (a Compromised one stays Compromised) with `old_metadata` (which links the successor and
    /// carries the predecessor's new names), replaces the metadata of the `objects` given (the
    /// predecessor's certificates, renamed with it; a row gone meanwhile is skipped), and
    /// records `events`. `Conflict` when the successor's `key_id` is taken; false (and nothing
    /// written) when the predecessor is gone or already has a successor (`rotated_to` in its
    /// metadata), so that two racing rotations of one key cannot both succeed.
    fn rotate_key(
        &self,
        successor: NewKeyRow<'_>,
        old_table: KeyTable,
        old_id: Uuid,
        old_metadata: &Value,
        objects: &[ObjectMetadata],
        events: &[KeyEvent],
    ) -> StorageResult<bool>;
    /// Replaces a key row's `metadata` and that of the `objects` given (a row gone meanwhile is
    /// skipped), bumps their `updated_at` and records `event`, in one transaction; false (and
    /// nothing written) when the key row is gone. For renaming a rotated-out key and its
    /// certificates.
    fn rename_key(
        &self,
        table: KeyTable,
        id: Uuid,
        metadata: &Value,
        objects: &[ObjectMetadata],
        event: &KeyEvent,
    ) -> StorageResult<bool>;

    /// Sets `key_status` and `expiration` (and `metadata` when given: `CKA_END_DATE` follows
    /// the expiration) and records `event`, in one transaction; false when the row is gone
    /// (nothing is recorded then).
    fn set_key_state(
        &self,
        table: KeyTable,
        id: Uuid,
        status: KeyStatus,
        expiration: Option<DateTime<Utc>>,
        metadata: Option<&Value>,
        event: &KeyEvent,
    ) -> StorageResult<bool>;
}

/// Typed forms of [`Storage::get_key`] and [`Storage::find_keys`], for callers that know the
/// table.
impl dyn Storage {
    pub fn get_asym_key(&self, id: Uuid) -> StorageResult<Option<AsymKeyRow>> {
        Ok(self
            .get_key(KeyTable::Asym, id)?
            .and_then(KeyRow::into_asym))
    }

    pub fn get_sym_key(&self, id: Uuid) -> StorageResult<Option<SymKeyRow>> {
        Ok(self.get_key(KeyTable::Sym, id)?.and_then(KeyRow::into_sym))
    }

    pub fn find_asym_keys(&self, filter: &KeyFilter) -> StorageResult<Vec<AsymKeyRow>> {
        let rows = self.find_keys(KeyTable::Asym, filter)?;
        Ok(rows.into_iter().filter_map(KeyRow::into_asym).collect())
    }

    pub fn find_sym_keys(&self, filter: &KeyFilter) -> StorageResult<Vec<SymKeyRow>> {
        let rows = self.find_keys(KeyTable::Sym, filter)?;
        Ok(rows.into_iter().filter_map(KeyRow::into_sym).collect())
    }
}

/// Whether a store may run threads of its own (the application's `C_Initialize` says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// The default (PostgreSQL: the `LISTEN` thread).
    Allowed,
    /// `CKF_LIBRARY_CANT_CREATE_OS_THREADS`: everything on the caller's threads.
    Forbidden,
}

/// Opens the store `config.url` names: `sqlite:/path/to.db` (or `sqlite::memory:` for tests), or
/// `postgres://…` / `postgresql://…`. The other `[database]` settings apply where they mean
/// something (`busy_timeout_ms` to both, the pool, timeouts and `password_env` to PostgreSQL).
///
/// Opening never creates a store: a SQLite file that does not exist reads as empty until the
/// first write creates it ([`Storage::create`] does so on purpose).
pub fn open(config: &DatabaseConfig) -> StorageResult<Arc<dyn Storage>> {
    open_with(config, Threads::Allowed)
}

/// [`open`], saying whether the store may run threads of its own. SQLite never does (every call
/// happens on the caller's thread). PostgreSQL does by default (the `LISTEN` thread); with [`Threads::Forbidden`] (the application's
/// `CKF_LIBRARY_CANT_CREATE_OS_THREADS`) it opens its connections on the calling threads and
/// reads its change feed at the coherence checks instead.
pub fn open_with(config: &DatabaseConfig, threads: Threads) -> StorageResult<Arc<dyn Storage>> {
    let url = config.url.as_str();
    if let Some(path) = url.strip_prefix("sqlite:") {
        // `sqlite:///abs/path` and `sqlite:/abs/path` name the same file.
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(StorageError::Backend(
                "empty SQLite path in the database URL".into(),
            ));
        }
        return Ok(Arc::new(sqlite::SqliteStorage::open(
            path,
            config.busy_timeout_ms,
        )?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PostgresStorage::open_with(
            config, threads,
        )?));
    }
    Err(StorageError::Backend(format!(
        "unsupported database URL scheme in {:?}; use sqlite:/path or postgres://user@host/db",
        url.split(':').next().unwrap_or_default()
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn open_url(url: &str) -> StorageResult<Arc<dyn Storage>> {
        open(&DatabaseConfig::with_url(url))
    }

    #[test]
    fn open_picks_the_backend_by_scheme() {
        let memory = open_url("sqlite::memory:").unwrap();
        assert_eq!(memory.describe(), "sqlite::memory:");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let file = open_url(&format!("sqlite://{}", path.display())).unwrap();
        assert_eq!(file.describe(), format!("sqlite:{}", path.display()));
        assert!(!path.exists(), "opening (and reading) creates nothing");
        assert!(file.list_tokens().unwrap().is_empty());
        assert!(!path.exists());
        file.create().unwrap();
        assert!(path.exists());
        assert!(open_url("sqlite:").is_err());
        assert!(matches!(
            open_url("mysql://x"),
            Err(StorageError::Backend(_))
        ));
        // A closed port: the PostgreSQL backend answers, with a connection error.
        let closed = DatabaseConfig {
            connect_timeout_ms: 500,
            ..DatabaseConfig::with_url("postgresql://u@127.0.0.1:1/db")
        };
        match open(&closed) {
            Err(StorageError::Backend(message)) => {
                assert!(message.contains("cannot connect"), "{message}")
            }
            Err(other) => panic!("expected Backend, got {other:?}"),
            Ok(_) => panic!("connected to a closed port"),
        }
    }

    #[test]
    fn contract_through_open() {
        contract::run_contract(open_url("sqlite::memory:").unwrap());
    }

    #[test]
    fn postgres_contract_through_open() {
        let Some(db) = postgres::testing::test_database() else {
            return;
        };
        let storage = open(&db.settings()).unwrap();
        assert!(storage.describe().starts_with("postgres://"));
        contract::run_contract(storage);
    }

    #[test]
    fn postgres_without_threads_contract_through_open() {
        let Some(db) = postgres::testing::test_database() else {
            return;
        };
        let storage = open_with(&db.settings(), Threads::Forbidden).unwrap();
        assert!(storage.describe().starts_with("postgres://"));
        contract::run_contract(storage);
    }
}

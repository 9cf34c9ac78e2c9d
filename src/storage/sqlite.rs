//! SQLite backend.
//!
//! One database file, opened in WAL mode with `synchronous=FULL` (a key is durable once the call
//! returns) and foreign keys on. Many threads (and processes) use it at once:
//! * a small connection pool, so readers never queue behind one global lock;
//! * every write is a `BEGIN IMMEDIATE` transaction, so lock waits happen up front inside the busy
//!   timeout instead of as a deadlock when a reader tries to upgrade;
//! * driver errors become [`StorageError`] kinds (busy, conflict, corrupt, read-only, access,
//!   backend) in one place; problems with the file itself are explained with its path and the
//!   cause the file system gives (permission, not a directory, no room for `-wal` / `-shm`);
//! * a file that does not exist is never created by reading: it reads as an empty store, and
//!   the first write creates it (see [`SqliteStorage`]);
//! * a file SQLite can only open read-only serves reads, and writes fail with
//!   [`StorageError::ReadOnly`] naming the file and why.
//!
//! Timestamps are RFC 3339 UTC text with six fractional digits, so text order is time order;
//! like PostgreSQL's `timestamptz`, they keep microseconds.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use chrono::SecondsFormat;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, ErrorCode, OpenFlags, OptionalExtension};
use rusqlite::{Row, Transaction, TransactionBehavior};

use super::migrations::{self, Dialect, MigrationTarget};
use super::*;

/// The metadata expressions the indexes in `migrations/sqlite/0001_init.sql` are built on. The
/// queries must use exactly these, or SQLite scans the table.
const LABEL_EXPR: &str = "json_extract(metadata, '$.label')";
const CK_ID_EXPR: &str = "json_extract(metadata, '$.id')";

/// Idle connections kept for reuse; more may be open while busy.
const MAX_IDLE: usize = 8;

const ASYM_COLUMNS: &str = "id, provider_config_id, key_id, key_algorithm, key_status, key_mode, \
     expiration, public_key_ctx, private_key_ctx, metadata, created_at, updated_at";
const SYM_COLUMNS: &str = "id, provider_config_id, key_id, key_status, key_mode, expiration, \
     key_value, metadata, created_at, updated_at";
const TOKEN_COLUMNS: &str = "id, provider_name, config, metadata, created_at, updated_at";
const OBJECT_COLUMNS: &str =
    "id, provider_config_id, object_class, value, metadata, created_at, updated_at";

/// The SQLite key store.
///
/// A file store is opened lazily: a file that does not exist yet is not created by reading.
/// Until it exists, reads are answered by an empty stand-in (an in-memory database with the
/// current schema, read-only), so `C_GetSlotList` shows the one empty slot and `sqlhsm key
/// list` can say that there is no store; the first write creates the file, its directory and
/// the schema. Another process may create the file meanwhile: every read of a store not yet
/// seen checks for the file again and starts using it when it appears.
pub struct SqliteStorage {
    /// What `describe` says.
    location: String,
    pool: Pool,
}

/// Where connections come from.
enum Source {
    File {
        path: String,
        busy_timeout: Duration,
    },
    /// `:memory:` is private to its connection, so an in-memory store has exactly one, shared by
    /// checkout.
    Memory,
}

struct Pool {
    source: Source,
    idle: Mutex<Vec<Connection>>,
    /// Signalled on check-in; only waited on for the single in-memory connection.
    returned: Condvar,
    /// The file's state (unused for `:memory:`).
    file: FileState,
}

/// What a file store knows about its file.
#[derive(Default)]
struct FileState {
    /// The file exists and was prepared (WAL mode, current schema); set once, never cleared.
    ready: AtomicBool,
    /// Held while preparing, so threads racing to first open or create the file do it once.
    preparing: Mutex<()>,
    /// Why the file cannot be written, when SQLite opened it read-only.
    read_only: Mutex<Option<String>>,
    /// A connection that never writes, so its `PRAGMA data_version` changes with every commit
    /// of any other connection (this process's pool included); opened on first use.
    watch: Mutex<Option<Connection>>,
    /// Stand-ins answering reads while the file does not exist.
    stand_ins: Mutex<Vec<Connection>>,
}

/// A checked-out connection; goes back to the pool on drop.
struct PooledConnection<'a> {
    pool: &'a Pool,
    connection: Option<Connection>,
    /// An empty stand-in for a file that does not exist yet.
    stand_in: bool,
}

impl std::ops::Deref for PooledConnection<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Only `Drop` takes the connection out.
        match &self.connection {
            Some(connection) => connection,
            None => unreachable!("connection used after check-in"),
        }
    }
}

impl std::ops::DerefMut for PooledConnection<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        match &mut self.connection {
            Some(connection) => connection,
            None => unreachable!("connection used after check-in"),
        }
    }
}

impl Drop for PooledConnection<'_> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            if self.stand_in {
                self.pool.check_in_stand_in(connection);
            } else {
                self.pool.check_in(connection);
            }
        }
    }
}

fn poisoned() -> StorageError {
    StorageError::Backend("connection pool lock poisoned".into())
}

impl Pool {
    fn lock_idle(&self) -> StorageResult<MutexGuard<'_, Vec<Connection>>> {
        self.idle.lock().map_err(|_| poisoned())
    }

    /// A connection for reading: the file's, or a stand-in while the file does not exist.
    fn check_out(&self) -> StorageResult<PooledConnection<'_>> {
        if let Source::File { .. } = &self.source {
            if !self.prepare(false)? {
                return self.stand_in();
            }
        }
        self.check_out_prepared()
    }

    /// A connection for a write transaction: creates the file when it does not exist yet (a
    /// write is what creates a store), and refuses when the file is read-only.
    fn writer(&self) -> StorageResult<PooledConnection<'_>> {
        if let Source::File { .. } = &self.source {
            self.prepare(true)?;
            let read_only = self.file.read_only.lock().map_err(|_| poisoned())?;
            if let Some(why) = read_only.as_ref() {
                return Err(StorageError::ReadOnly(why.clone()));
            }
        }
        self.check_out_prepared()
    }

    fn check_out_prepared(&self) -> StorageResult<PooledConnection<'_>> {
        let mut idle = self.lock_idle()?;
        let connection = match &self.source {
            Source::File { path, busy_timeout } => match idle.pop() {
                Some(connection) => connection,
                None => {
                    // Open outside the lock: opening touches the disk.
                    drop(idle);
                    open_connection(path, *busy_timeout, false).map_err(|e| explain(path, e))?
                }
            },
            Source::Memory => loop {
                if let Some(connection) = idle.pop() {
                    break connection;
                }
                idle = self.returned.wait(idle).map_err(|_| poisoned())?;
            },
        };
        Ok(PooledConnection {
            pool: self,
            connection: Some(connection),
            stand_in: false,
        })
    }

    fn stand_in(&self) -> StorageResult<PooledConnection<'_>> {
        let spare = self.file.stand_ins.lock().map_err(|_| poisoned())?.pop();
        let connection = match spare {
            Some(connection) => connection,
            None => {
                let mut connection = open_memory()?;
                migrations::run(&mut SqliteMigrator(&mut connection), Dialect::Sqlite)?;
                connection
                    .execute_batch("PRAGMA query_only = ON;")
                    .map_err(map_error)?;
                connection
            }
        };
        Ok(PooledConnection {
            pool: self,
            connection: Some(connection),
            stand_in: true,
        })
    }

    fn check_in_stand_in(&self, connection: Connection) {
        if self.file.ready.load(Ordering::Acquire) {
            return; // the file exists now; stand-ins are done
        }
        if let Ok(mut spare) = self.file.stand_ins.lock() {
            if spare.len() < MAX_IDLE {
                spare.push(connection);
            }
        }
    }

    fn check_in(&self, connection: Connection) {
        // A transaction left open (a panic in a config update closure) must not leak into the
        // next caller; if it cannot be rolled back, the connection is dropped.
        if !connection.is_autocommit() && connection.execute_batch("ROLLBACK").is_err() {
            if matches!(self.source, Source::Memory) {
                tracing::error!("in-memory SQLite connection stuck in a transaction");
                // Put it back anyway: without it the in-memory store is gone.
            } else {
                return;
            }
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE || matches!(self.source, Source::Memory) {
                idle.push(connection);
            }
        }
        self.returned.notify_one();
    }

    /// Makes sure the file is open and current: returns false when it does not exist (and
    /// `create` is false). With `create`, a missing file is created with its directory. Every
    /// failure names the path and, for access problems, the cause the file system gives.
    fn prepare(&self, create: bool) -> StorageResult<bool> {
        let Source::File { path, busy_timeout } = &self.source else {
            return Ok(true);
        };
        if self.file.ready.load(Ordering::Acquire) {
            return Ok(true);
        }
        let _preparing = self.file.preparing.lock().map_err(|_| poisoned())?;
        if self.file.ready.load(Ordering::Acquire) {
            return Ok(true);
        }
        match std::fs::metadata(path) {
            Ok(metadata) if metadata.is_dir() => {
                return Err(StorageError::Access(format!(
                    "cannot open the key store {path}: it is a directory"
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !create {
                    return Ok(false);
                }
                create_parent_dir(path)?;
            }
            Err(e) => return Err(unusable(path, &e)),
        }
        let mut first =
            open_connection(path, *busy_timeout, create).map_err(|e| explain(path, e))?;
        let read_only = first.is_readonly(rusqlite::MAIN_DB).map_err(map_error)?;
        if read_only {
            let why = format!(
                "the key store {path} is read-only: {}",
                write_refusal(path).unwrap_or_else(|| "SQLite opened it read-only".into())
            );
            // A read-only file keeps its journal mode; the schema must already be current.
            migrations::run(&mut SqliteMigrator(&mut first), Dialect::Sqlite).map_err(
                |e| match e {
                    StorageError::ReadOnly(_) | StorageError::Migration { .. } => {
                        StorageError::ReadOnly(format!(
                            "{why}, and its schema is older than this build: it must be \
                             migrated (`sqlhsm db migrate`) by a user who may write it"
                        ))
                    }
                    other => explain(path, other),
                },
            )?;
            tracing::warn!(path, reason = %why, "SQLite key store opened read-only: reads work, writes fail");
            *self.file.read_only.lock().map_err(|_| poisoned())? = Some(why);
        } else {
            let mode = enable_wal(&first, *busy_timeout).map_err(|e| explain(path, e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(%mode, "SQLite refused WAL journal mode");
            }
            let applied = migrations::run(&mut SqliteMigrator(&mut first), Dialect::Sqlite)
                .map_err(|e| explain(path, e))?;
            if applied > 0 {
                tracing::info!(path, applied, "applied SQLite schema migrations");
            }
        }
        self.lock_idle()?.push(first);
        self.file.ready.store(true, Ordering::Release);
        if let Ok(mut spare) = self.file.stand_ins.lock() {
            spare.clear();
        }
        Ok(true)
    }

    /// `PRAGMA data_version` of the watch connection; 0 while the file does not exist.
    fn change_marker(&self) -> StorageResult<u64> {
        let Source::File { path, busy_timeout } = &self.source else {
            return Ok(0); // `:memory:`: no other process can reach it
        };
        if !self.prepare(false)? {
            return Ok(0);
        }
        let mut watch = self
            .file
            .watch
            .lock()
            .map_err(|_| StorageError::Backend("the watch connection was poisoned".into()))?;
        if watch.is_none() {
            *watch =
                Some(open_connection(path, *busy_timeout, false).map_err(|e| explain(path, e))?);
        }
        let Some(connection) = watch.as_ref() else {
            return Ok(0);
        };
        let version: i64 = connection
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(map_error)?;
        Ok(version as u64)
    }
}

/// Opens one file connection with the per-connection pragmas; only `create` makes a missing
/// file.
fn open_connection(path: &str, busy_timeout: Duration, create: bool) -> StorageResult<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let connection = Connection::open_with_flags(path, flags).map_err(map_error)?;
    connection.busy_timeout(busy_timeout).map_err(map_error)?;
    connection
        .execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")
        .map_err(map_error)?;
    Ok(connection)
}

/// Why the file system refuses this process write access to `path`, if it does (`Permission
/// denied (os error 13)`, `Read-only file system (os error 30)`). Opening for writing creates
/// nothing and changes nothing.
fn write_refusal(path: &str) -> Option<String> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(_) => None,
        Err(e) => Some(format!("{path}: {e}")),
    }
}

/// An access failure of `path` found by the file system (`e`), as the operator should read it.
fn unusable(path: &str, e: &std::io::Error) -> StorageError {
    // ENOTDIR: say which part of the path is not a directory.
    let through_a_file = Path::new(path)
        .ancestors()
        .skip(1)
        .find(|ancestor| ancestor.is_file());
    match through_a_file {
        Some(file) => StorageError::Access(format!(
            "cannot open the key store {path}: {} is a file, not a directory",
            file.display()
        )),
        None => StorageError::Access(format!("cannot open the key store {path}: {e}")),
    }
}

/// An error from opening or preparing the file, with the path and the cause. SQLite says only
/// "unable to open database file" or "attempt to write a readonly database"; the file system
/// says why.
fn explain(path: &str, error: StorageError) -> StorageError {
    // `Access`: SQLite could not open or read; `ReadOnly`: it could not write.
    let (sqlite, reading) = match error {
        StorageError::Access(sqlite) => (sqlite, true),
        StorageError::ReadOnly(sqlite) => (sqlite, false),
        StorageError::Corrupt(text) => {
            return StorageError::Corrupt(format!(
                "{path} is not a usable SQLite key store: {text}"
            ))
        }
        other => return other,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return StorageError::Missing(format!("no key store at {path}"))
        }
        Err(e) => return unusable(path, &e),
        Ok(_) => {}
    }
    if let Err(e) = std::fs::File::open(path) {
        return StorageError::Access(format!("cannot open the key store {path}: {e}"));
    }
    if !reading {
        if let Some(refusal) = write_refusal(path) {
            return StorageError::ReadOnly(format!("the key store {path} is read-only: {refusal}"));
        }
    }
    // The file itself can be read: what SQLite could not create or open is beside it (WAL mode
    // keeps `-wal` and `-shm` files next to the database, and even a reader needs `-shm`).
    let dir = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    StorageError::Access(format!(
        "cannot open the key store {path}: {sqlite}; the directory {} must let this process \
         create {path}-wal and {path}-shm (or they must exist and be writable)",
        dir.display()
    ))
}

/// Switches the file to WAL (a property of the file, so set once at open). While another
/// process is creating or converting the same file, SQLite answers `SQLITE_BUSY` here without
/// consulting the busy handler, so the switch is retried until the busy timeout runs out.
fn enable_wal(connection: &Connection, busy_timeout: Duration) -> StorageResult<String> {
    let deadline = std::time::Instant::now() + busy_timeout;
    loop {
        match connection.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        }) {
            Ok(mode) => return Ok(mode),
            Err(e) => match map_error(e) {
                StorageError::Busy(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                other => return Err(other),
            },
        }
    }
}

fn open_memory() -> StorageResult<Connection> {
    let connection = Connection::open_in_memory().map_err(map_error)?;
    connection
        .execute_batch("PRAGMA foreign_keys = ON;")
        .map_err(map_error)?;
    Ok(connection)
}

/// Creates the database's directory (owner-only on Unix) when it is missing.
fn create_parent_dir(path: &str) -> StorageResult<()> {
    let Some(parent) = Path::new(path).parent() else {
        return Ok(());
    };
    if parent.as_os_str().is_empty() || parent.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(parent).map_err(|e| {
        StorageError::Backend(format!("cannot create directory {}: {e}", parent.display()))
    })
}

impl SqliteStorage {
    /// Opens the database at `path` and brings its schema up to date — without creating it: a
    /// file that does not exist yet reads as an empty store (see [`SqliteStorage`]), and the
    /// first write creates it. `:memory:` gives a private in-memory database for tests.
    pub fn open(path: &str, busy_timeout_ms: u64) -> StorageResult<SqliteStorage> {
        let busy_timeout = Duration::from_millis(busy_timeout_ms);
        let location = format!("sqlite:{path}");
        if path == ":memory:" {
            let mut first = open_memory()?;
            migrations::run(&mut SqliteMigrator(&mut first), Dialect::Sqlite)?;
            return Ok(SqliteStorage {
                location,
                pool: Pool {
                    source: Source::Memory,
                    idle: Mutex::new(vec![first]),
                    returned: Condvar::new(),
                    file: FileState::default(),
                },
            });
        }
        let storage = SqliteStorage {
            location,
            pool: Pool {
                source: Source::File {
                    path: path.to_string(),
                    busy_timeout,
                },
                idle: Mutex::new(Vec::new()),
                returned: Condvar::new(),
                file: FileState::default(),
            },
        };
        if !storage.pool.prepare(false)? {
            // A path the operator wrote may be mistyped: say so. The built-in default is what
            // every program loading the module through p11-kit finds for a user who never made
            // a store; that is normal, not worth a line on their terminal.
            let message = "no key store at this path yet: it reads as empty until the first \
                           write (C_InitToken, `sqlhsm token init`, `sqlhsm db migrate`) creates it";
            if storage.location == crate::config::default_database_url() {
                tracing::info!(path, "{message}");
            } else {
                tracing::warn!(path, "{message}");
            }
        }
        Ok(storage)
    }

    /// Runs `work` in a `BEGIN IMMEDIATE` transaction and commits when it succeeds.
    fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> StorageResult<T> {
        let mut connection = self.pool.writer()?;
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_error)?;
        let value = work(&tx).map_err(map_error)?;
        tx.commit().map_err(map_error)?;
        Ok(value)
    }

    fn find<T>(
        &self,
        table: &str,
        columns: &str,
        filter: &KeyFilter,
        with_algorithms: bool,
        decode: fn(&Row<'_>) -> rusqlite::Result<T>,
    ) -> StorageResult<Vec<T>> {
        let (sql, values) = match find_query(table, columns, filter, with_algorithms) {
            Some(query) => query,
            None => return Ok(Vec::new()),
        };
        let connection = self.pool.check_out()?;
        let mut statement = connection.prepare_cached(&sql).map_err(map_error)?;
        let rows = statement
            .query_map(params_from_iter(values), decode)
            .map_err(map_error)?;
        rows.collect::<rusqlite::Result<Vec<T>>>()
            .map_err(map_error)
    }

    fn get<T>(
        &self,
        table: &str,
        columns: &str,
        id: Uuid,
        decode: fn(&Row<'_>) -> rusqlite::Result<T>,
    ) -> StorageResult<Option<T>> {
        let connection = self.pool.check_out()?;
        let sql = format!("SELECT {columns} FROM {table} WHERE id = ?1");
        let mut statement = connection.prepare_cached(&sql).map_err(map_error)?;
        statement
            .query_row([id.to_string()], decode)
            .optional()
            .map_err(map_error)
    }

    fn delete_row(&self, table: &str, id: Uuid, event: Option<&KeyEvent>) -> StorageResult<bool> {
        let sql = format!("DELETE FROM {table} WHERE id = ?1");
        self.write(|tx| {
            let changed = tx.execute(&sql, [id.to_string()])? > 0;
            record_if(tx, changed, event)
        })
    }
}

/// Records `event` (when given) if the row it is about changed, in the caller's transaction;
/// returns `changed`.
/// `(id, metadata as JSON text)` of each object, encoded before the transaction starts.
fn object_metadata_texts(objects: &[ObjectMetadata]) -> StorageResult<Vec<(String, String)>> {
    objects
        .iter()
        .map(|o| Ok((o.id.to_string(), json_text(&o.metadata)?)))
        .collect()
}

/// Replaces the metadata of `p11_object` rows in the caller's transaction (a row gone is
/// skipped).
fn update_object_metadata(
    tx: &Transaction<'_>,
    objects: &[(String, String)],
    now: &str,
) -> rusqlite::Result<()> {
    for (id, metadata) in objects {
        tx.execute(
            "UPDATE p11_object SET metadata = ?1, updated_at = ?2 WHERE id = ?3",
            params![metadata, now, id],
        )?;
    }
    Ok(())
}

fn record_if(
    tx: &Transaction<'_>,
    changed: bool,
    event: Option<&KeyEvent>,
) -> rusqlite::Result<bool> {
    if let (true, Some(event)) = (changed, event) {
        insert_event(tx, event)?;
    }
    Ok(changed)
}

/// Deletes every key and object of a token and records `destroyed` for each key deleted (the
/// `RETURNING` rows, so no key goes without its event), in the caller's transaction; returns the
/// number of keys.
fn delete_token_contents(
    tx: &Transaction<'_>,
    token: &str,
    destroyed: &KeyEvent,
) -> rusqlite::Result<usize> {
    let mut keys = 0;
    for table in [KeyTable::Asym, KeyTable::Sym] {
        let mut statement = tx.prepare_cached(&format!(
            "DELETE FROM {} WHERE provider_config_id = ?1 RETURNING key_id",
            table.name()
        ))?;
        let key_ids = statement
            .query_map([token], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for key_id in &key_ids {
            insert_event(tx, &destroyed.for_key(key_id))?;
        }
        keys += key_ids.len();
    }
    tx.execute(
        "DELETE FROM p11_object WHERE provider_config_id = ?1",
        [token],
    )?;
    Ok(keys)
}

/// Builds the `SELECT` for a [`KeyFilter`] with bound parameters; `None` when the filter can
/// match nothing (an empty algorithm list).
fn find_query(
    table: &str,
    columns: &str,
    filter: &KeyFilter,
    with_algorithms: bool,
) -> Option<(String, Vec<SqlValue>)> {
    let mut sql = format!("SELECT {columns} FROM {table} WHERE provider_config_id = ?");
    let mut values = vec![SqlValue::Text(filter.provider_config_id.to_string())];
    if let Some(label) = &filter.label {
        sql.push_str(&format!(" AND {LABEL_EXPR} = ?"));
        values.push(SqlValue::Text(label.clone()));
    }
    if let Some(ck_id) = &filter.ck_id {
        sql.push_str(&format!(" AND {CK_ID_EXPR} = ?"));
        values.push(SqlValue::Text(ck_id.clone()));
    }
    if with_algorithms {
        if let Some(algorithms) = &filter.key_algorithms {
            if algorithms.is_empty() {
                return None;
            }
            let marks = vec!["?"; algorithms.len()].join(", ");
            sql.push_str(&format!(" AND key_algorithm IN ({marks})"));
            values.extend(algorithms.iter().map(|a| SqlValue::Integer(i64::from(*a))));
        }
    }
    if let Some(key_id) = &filter.key_id {
        sql.push_str(" AND key_id = ?");
        values.push(SqlValue::Text(key_id.clone()));
    }
    if let Some(status) = filter.key_status {
        sql.push_str(" AND key_status = ?");
        values.push(SqlValue::Integer(i64::from(status)));
    }
    sql.push_str(" ORDER BY created_at, id");
    Some((sql, values))
}

/// The one mapping from driver errors to storage error kinds. Messages name tables and
/// constraints, never values.
fn map_error(error: rusqlite::Error) -> StorageError {
    use rusqlite::Error as E;
    match &error {
        E::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                StorageError::Busy(error.to_string())
            }
            ErrorCode::ConstraintViolation
                if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StorageError::Conflict(error.to_string())
            }
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                StorageError::Corrupt(error.to_string())
            }
            // Reading a WAL database needs its `-shm` file: when it cannot be made or locked,
            // nothing can be read, which is an access problem, not a read-only store.
            ErrorCode::ReadOnly
                if matches!(
                    failure.extended_code,
                    rusqlite::ffi::SQLITE_READONLY_CANTINIT
                        | rusqlite::ffi::SQLITE_READONLY_DIRECTORY
                        | rusqlite::ffi::SQLITE_READONLY_CANTLOCK
                        | rusqlite::ffi::SQLITE_READONLY_RECOVERY
                ) =>
            {
                StorageError::Access(error.to_string())
            }
            ErrorCode::ReadOnly => StorageError::ReadOnly(error.to_string()),
            ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::AuthorizationForStatementDenied => StorageError::Access(error.to_string()),
            _ => StorageError::Backend(error.to_string()),
        },
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnType(..)
        | E::Utf8Error(..) => StorageError::Corrupt(error.to_string()),
        _ => StorageError::Backend(error.to_string()),
    }
}

/// Marks a decoding failure so [`map_error`] reports it as corrupt data.
fn corrupt(column: usize, what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        Box::new(StorageError::Corrupt(what)),
    )
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn json_text(value: &Value) -> StorageResult<String> {
    serde_json::to_string(value).map_err(|e| StorageError::Backend(format!("JSON encoding: {e}")))
}

fn get_uuid(row: &Row<'_>, column: usize) -> rusqlite::Result<Uuid> {
    let text: String = row.get(column)?;
    Uuid::parse_str(&text).map_err(|_| corrupt(column, format!("bad uuid in column {column}")))
}

fn get_time(row: &Row<'_>, column: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(column)?;
    DateTime::parse_from_rfc3339(&text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| corrupt(column, format!("bad timestamp in column {column}")))
}

fn get_opt_time(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<String>>(column)? {
        None => Ok(None),
        Some(_) => get_time(row, column).map(Some),
    }
}

fn get_json(row: &Row<'_>, column: usize) -> rusqlite::Result<Value> {
    let text: String = row.get(column)?;
    serde_json::from_str(&text).map_err(|_| corrupt(column, format!("bad JSON in column {column}")))
}

fn get_opt_json(row: &Row<'_>, column: usize) -> rusqlite::Result<Option<Value>> {
    match row.get::<_, Option<String>>(column)? {
        None => Ok(None),
        Some(_) => get_json(row, column).map(Some),
    }
}

fn decode_token(row: &Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: get_uuid(row, 0)?,
        provider_name: row.get(1)?,
        config: get_json(row, 2)?,
        metadata: get_json(row, 3)?,
        created_at: get_time(row, 4)?,
        updated_at: get_time(row, 5)?,
    })
}

fn decode_asym(row: &Row<'_>) -> rusqlite::Result<AsymKeyRow> {
    Ok(AsymKeyRow {
        id: get_uuid(row, 0)?,
        provider_config_id: get_uuid(row, 1)?,
        key_id: row.get(2)?,
        key_algorithm: row.get(3)?,
        key_status: row.get(4)?,
        key_mode: row.get(5)?,
        expiration: get_opt_time(row, 6)?,
        public_key_ctx: get_opt_json(row, 7)?,
        private_key_ctx: get_opt_json(row, 8)?,
        metadata: get_json(row, 9)?,
        created_at: get_time(row, 10)?,
        updated_at: get_time(row, 11)?,
    })
}

fn decode_sym(row: &Row<'_>) -> rusqlite::Result<SymKeyRow> {
    Ok(SymKeyRow {
        id: get_uuid(row, 0)?,
        provider_config_id: get_uuid(row, 1)?,
        key_id: row.get(2)?,
        key_status: row.get(3)?,
        key_mode: row.get(4)?,
        expiration: get_opt_time(row, 5)?,
        key_value: row.get(6)?,
        metadata: get_json(row, 7)?,
        created_at: get_time(row, 8)?,
        updated_at: get_time(row, 9)?,
    })
}

fn decode_object(row: &Row<'_>) -> rusqlite::Result<ObjectRow> {
    Ok(ObjectRow {
        id: get_uuid(row, 0)?,
        provider_config_id: get_uuid(row, 1)?,
        object_class: row.get(2)?,
        value: row.get(3)?,
        metadata: get_json(row, 4)?,
        created_at: get_time(row, 5)?,
        updated_at: get_time(row, 6)?,
    })
}

fn insert_row(tx: &Transaction<'_>, row: NewKeyRow<'_>) -> rusqlite::Result<usize> {
    match row {
        NewKeyRow::Asym(row) => insert_asym(tx, row),
        NewKeyRow::Sym(row) => insert_sym(tx, row),
    }
}

fn insert_asym(tx: &Transaction<'_>, row: &AsymKeyRow) -> rusqlite::Result<usize> {
    tx.execute(
        &format!(
            "INSERT INTO asym_key ({ASYM_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ),
        params![
            row.id.to_string(),
            row.provider_config_id.to_string(),
            row.key_id,
            row.key_algorithm,
            row.key_status,
            row.key_mode,
            row.expiration.map(timestamp),
            row.public_key_ctx.as_ref().map(Value::to_string),
            row.private_key_ctx.as_ref().map(Value::to_string),
            row.metadata.to_string(),
            timestamp(row.created_at),
            timestamp(row.updated_at)
        ],
    )
}

fn insert_sym(tx: &Transaction<'_>, row: &SymKeyRow) -> rusqlite::Result<usize> {
    tx.execute(
        &format!(
            "INSERT INTO sym_key ({SYM_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            row.id.to_string(),
            row.provider_config_id.to_string(),
            row.key_id,
            row.key_status,
            row.key_mode,
            row.expiration.map(timestamp),
            row.key_value,
            row.metadata.to_string(),
            timestamp(row.created_at),
            timestamp(row.updated_at)
        ],
    )
}

const EVENT_COLUMNS: &str =
    "id, key_id, provider_config_id, event, actor, old_value, new_value, at";

fn insert_event(tx: &Transaction<'_>, event: &KeyEvent) -> rusqlite::Result<usize> {
    let json = |value: &Option<Value>| value.as_ref().map(Value::to_string);
    tx.execute(
        &format!("INSERT INTO key_event ({EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
        params![
            event.id.to_string(),
            event.key_id,
            event.provider_config_id.to_string(),
            event.event,
            event.actor,
            json(&event.old_value),
            json(&event.new_value),
            timestamp(event.at)
        ],
    )
}

fn decode_event(row: &Row<'_>) -> rusqlite::Result<KeyEvent> {
    Ok(KeyEvent {
        id: get_uuid(row, 0)?,
        key_id: row.get(1)?,
        provider_config_id: get_uuid(row, 2)?,
        event: row.get(3)?,
        actor: row.get(4)?,
        old_value: get_opt_json(row, 5)?,
        new_value: get_opt_json(row, 6)?,
        at: get_time(row, 7)?,
    })
}

impl Storage for SqliteStorage {
    fn describe(&self) -> String {
        self.location.clone()
    }

    fn require_existing(&self) -> StorageResult<()> {
        match &self.pool.source {
            Source::File { path, .. } if !self.pool.prepare(false)? => {
                Err(StorageError::Missing(format!("no key store at {path}")))
            }
            _ => Ok(()),
        }
    }

    fn create(&self) -> StorageResult<()> {
        self.pool.prepare(true).map(|_| ())
    }

    fn read_only(&self) -> Option<String> {
        self.pool
            .file
            .read_only
            .lock()
            .ok()
            .and_then(|why| why.clone())
    }

    fn list_tokens(&self) -> StorageResult<Vec<TokenRow>> {
        let connection = self.pool.check_out()?;
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM provider_config ORDER BY created_at, id");
        let mut statement = connection.prepare_cached(&sql).map_err(map_error)?;
        let rows = statement.query_map([], decode_token).map_err(map_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(map_error)
    }

    fn get_token(&self, id: Uuid) -> StorageResult<Option<TokenRow>> {
        self.get("provider_config", TOKEN_COLUMNS, id, decode_token)
    }

    fn insert_token(&self, row: &TokenRow) -> StorageResult<()> {
        let config = json_text(&row.config)?;
        let metadata = json_text(&row.metadata)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO provider_config (id, provider_name, config, metadata, created_at, \
                 updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    row.id.to_string(),
                    row.provider_name,
                    config,
                    metadata,
                    timestamp(row.created_at),
                    timestamp(row.updated_at)
                ],
            )
        })?;
        Ok(())
    }

    fn rename_token(&self, id: Uuid, provider_name: &str) -> StorageResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE provider_config SET provider_name = ?1, updated_at = ?2 WHERE id = ?3",
                params![provider_name, timestamp(Utc::now()), id.to_string()],
            )
        })?;
        Ok(())
    }

    fn update_token_config(
        &self,
        id: Uuid,
        update: ConfigUpdate<'_>,
    ) -> StorageResult<Result<Value, Error>> {
        let mut connection = self.pool.writer()?;
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_error)?;
        let current: Option<String> = tx
            .query_row(
                "SELECT config FROM provider_config WHERE id = ?1",
                [id.to_string()],
                |row| row.get(0),
            )
            .optional()
            .map_err(map_error)?;
        let Some(current) = current else {
            return Ok(Err(Error::Pkcs11(crate::Rv::TOKEN_NOT_PRESENT)));
        };
        let mut config: Value = serde_json::from_str(&current)
            .map_err(|_| StorageError::Corrupt("bad JSON in provider_config.config".into()))?;
        if let Err(error) = update(&mut config) {
            // Dropping `tx` rolls back; nothing was written.
            return Ok(Err(error));
        }
        tx.execute(
            "UPDATE provider_config SET config = ?1, updated_at = ?2 WHERE id = ?3",
            params![json_text(&config)?, timestamp(Utc::now()), id.to_string()],
        )
        .map_err(map_error)?;
        tx.commit().map_err(map_error)?;
        Ok(Ok(config))
    }

    fn delete_token(&self, id: Uuid, destroyed: &KeyEvent) -> StorageResult<usize> {
        let id = id.to_string();
        self.write(|tx| {
            let keys = delete_token_contents(tx, &id, destroyed)?;
            tx.execute("DELETE FROM provider_config WHERE id = ?1", [&id])?;
            Ok(keys)
        })
    }

    fn delete_token_keys(&self, id: Uuid, destroyed: &KeyEvent) -> StorageResult<usize> {
        self.write(|tx| delete_token_contents(tx, &id.to_string(), destroyed))
    }

    fn insert_key(&self, row: NewKeyRow<'_>, created: &KeyEvent) -> StorageResult<()> {
        self.write(|tx| {
            insert_row(tx, row)?;
            insert_event(tx, created)
        })?;
        Ok(())
    }

    fn rotate_key(
        &self,
        successor: NewKeyRow<'_>,
        old_table: KeyTable,
        old_id: Uuid,
        old_metadata: &Value,
        objects: &[ObjectMetadata],
        events: &[KeyEvent],
    ) -> StorageResult<bool> {
        let sql = format!(
            "UPDATE {} SET key_status = CASE WHEN key_status = 3 THEN 3 ELSE 2 END, \
             metadata = ?1, updated_at = ?2 \
             WHERE id = ?3 AND IFNULL(json_extract(metadata, '$.rotated_to'), '') = ''",
            old_table.name()
        );
        let metadata = json_text(old_metadata)?;
        let objects = object_metadata_texts(objects)?;
        let mut connection = self.pool.writer()?;
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_error)?;
        let now = timestamp(Utc::now());
        let changed = tx
            .execute(&sql, params![metadata, now, old_id.to_string()])
            .map_err(map_error)?;
        if changed == 0 {
            return Ok(false); // dropping `tx` rolls back
        }
        insert_row(&tx, successor).map_err(map_error)?;
        update_object_metadata(&tx, &objects, &now).map_err(map_error)?;
        for event in events {
            insert_event(&tx, event).map_err(map_error)?;
        }
        tx.commit().map_err(map_error)?;
        Ok(true)
    }

    fn rename_key(
        &self,
        table: KeyTable,
        id: Uuid,
        metadata: &Value,
        objects: &[ObjectMetadata],
        event: &KeyEvent,
    ) -> StorageResult<bool> {
        let sql = format!(
            "UPDATE {} SET metadata = ?1, updated_at = ?2 WHERE id = ?3",
            table.name()
        );
        let metadata = json_text(metadata)?;
        let objects = object_metadata_texts(objects)?;
        let mut connection = self.pool.writer()?;
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_error)?;
        let now = timestamp(Utc::now());
        let changed = tx
            .execute(&sql, params![metadata, now, id.to_string()])
            .map_err(map_error)?;
        if changed == 0 {
            return Ok(false); // dropping `tx` rolls back
        }
        update_object_metadata(&tx, &objects, &now).map_err(map_error)?;
        insert_event(&tx, event).map_err(map_error)?;
        tx.commit().map_err(map_error)?;
        Ok(true)
    }

    fn get_asym_key(&self, id: Uuid) -> StorageResult<Option<AsymKeyRow>> {
        self.get("asym_key", ASYM_COLUMNS, id, decode_asym)
    }

    fn get_sym_key(&self, id: Uuid) -> StorageResult<Option<SymKeyRow>> {
        self.get("sym_key", SYM_COLUMNS, id, decode_sym)
    }

    fn find_asym_keys(&self, filter: &KeyFilter) -> StorageResult<Vec<AsymKeyRow>> {
        self.find("asym_key", ASYM_COLUMNS, filter, true, decode_asym)
    }

    fn find_sym_keys(&self, filter: &KeyFilter) -> StorageResult<Vec<SymKeyRow>> {
        self.find("sym_key", SYM_COLUMNS, filter, false, decode_sym)
    }

    fn update_key_attributes(
        &self,
        table: KeyTable,
        id: Uuid,
        metadata: &Value,
        expiration: Option<DateTime<Utc>>,
        event: Option<&KeyEvent>,
    ) -> StorageResult<bool> {
        let metadata = json_text(metadata)?;
        let sql = format!(
            "UPDATE {} SET metadata = ?1, expiration = ?2, updated_at = ?3 WHERE id = ?4",
            table.name()
        );
        self.write(|tx| {
            let changed = tx.execute(
                &sql,
                params![
                    metadata,
                    expiration.map(timestamp),
                    timestamp(Utc::now()),
                    id.to_string()
                ],
            )? > 0;
            record_if(tx, changed, event)
        })
    }

    fn delete_key(&self, table: KeyTable, id: Uuid, destroyed: &KeyEvent) -> StorageResult<bool> {
        self.delete_row(table.name(), id, Some(destroyed))
    }

    fn key_id_exists(&self, key_id: &str) -> StorageResult<bool> {
        let connection = self.pool.check_out()?;
        let mut statement = connection
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM asym_key WHERE key_id = ?1) \
                 OR EXISTS (SELECT 1 FROM sym_key WHERE key_id = ?1)",
            )
            .map_err(map_error)?;
        statement
            .query_row([key_id], |row| row.get(0))
            .map_err(map_error)
    }

    fn insert_object(&self, row: &ObjectRow) -> StorageResult<()> {
        let metadata = json_text(&row.metadata)?;
        self.write(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO p11_object ({OBJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    row.id.to_string(),
                    row.provider_config_id.to_string(),
                    row.object_class,
                    row.value,
                    metadata,
                    timestamp(row.created_at),
                    timestamp(row.updated_at)
                ],
            )
        })?;
        Ok(())
    }

    fn get_object(&self, id: Uuid) -> StorageResult<Option<ObjectRow>> {
        self.get("p11_object", OBJECT_COLUMNS, id, decode_object)
    }

    fn find_objects(
        &self,
        filter: &KeyFilter,
        class: Option<i64>,
    ) -> StorageResult<Vec<ObjectRow>> {
        let mut sql =
            format!("SELECT {OBJECT_COLUMNS} FROM p11_object WHERE provider_config_id = ?");
        let mut values = vec![SqlValue::Text(filter.provider_config_id.to_string())];
        if let Some(class) = class {
            sql.push_str(" AND object_class = ?");
            values.push(SqlValue::Integer(class));
        }
        if let Some(label) = &filter.label {
            sql.push_str(&format!(" AND {LABEL_EXPR} = ?"));
            values.push(SqlValue::Text(label.clone()));
        }
        if let Some(ck_id) = &filter.ck_id {
            sql.push_str(&format!(" AND {CK_ID_EXPR} = ?"));
            values.push(SqlValue::Text(ck_id.clone()));
        }
        sql.push_str(" ORDER BY created_at, id");
        let connection = self.pool.check_out()?;
        let mut statement = connection.prepare_cached(&sql).map_err(map_error)?;
        let rows = statement
            .query_map(params_from_iter(values), decode_object)
            .map_err(map_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(map_error)
    }

    fn update_object(&self, id: Uuid, metadata: &Value, value: &[u8]) -> StorageResult<bool> {
        let metadata = json_text(metadata)?;
        let changed = self.write(|tx| {
            tx.execute(
                "UPDATE p11_object SET metadata = ?1, value = ?2, updated_at = ?3 WHERE id = ?4",
                params![metadata, value, timestamp(Utc::now()), id.to_string()],
            )
        })?;
        Ok(changed > 0)
    }

    fn delete_object(&self, id: Uuid) -> StorageResult<bool> {
        self.delete_row("p11_object", id, None)
    }

    fn record_event(&self, event: &KeyEvent) -> StorageResult<()> {
        self.write(|tx| insert_event(tx, event))?;
        Ok(())
    }

    fn key_events(&self, key_id: &str) -> StorageResult<Vec<KeyEvent>> {
        let connection = self.pool.check_out()?;
        let mut statement = connection
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM key_event WHERE key_id = ?1 ORDER BY at, id"
            ))
            .map_err(map_error)?;
        let rows = statement
            .query_map([key_id], decode_event)
            .map_err(map_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(map_error)
    }

    fn set_key_state(
        &self,
        table: KeyTable,
        id: Uuid,
        status: i32,
        expiration: Option<DateTime<Utc>>,
        metadata: Option<&Value>,
        event: &KeyEvent,
    ) -> StorageResult<bool> {
        let sql = format!(
            "UPDATE {} SET key_status = ?1, expiration = ?2, updated_at = ?3, \
             metadata = COALESCE(?5, metadata) WHERE id = ?4",
            table.name()
        );
        let metadata = metadata.map(json_text).transpose()?;
        self.write(|tx| {
            let changed = tx.execute(
                &sql,
                params![
                    status,
                    expiration.map(timestamp),
                    timestamp(Utc::now()),
                    id.to_string(),
                    metadata
                ],
            )? > 0;
            record_if(tx, changed, Some(event))
        })
    }

    /// SQLite keeps, per process, one record of each open database file and of the locks its
    /// connections hold on it, and a new connection to the same file joins that record instead
    /// of asking the kernel for locks. In a child those inherited records claim locks only the
    /// parent holds (POSIX locks are per process), so a new connection would read and write
    /// without real locks. Closing every inherited connection first empties them; it is safe for
    /// the parent because a closing connection only checkpoints or removes the WAL when it gets
    /// an exclusive lock, which the parent's own connections prevent.
    fn release_after_fork(&self, at_rest: bool) -> StorageResult<()> {
        let stuck = || {
            StorageError::Backend(format!(
                "{}: the process forked while another thread was using this SQLite store, so \
                 this child cannot open it safely (fork when no PKCS#11 call is running, or exec)",
                self.location
            ))
        };
        if !at_rest {
            return Err(stuck());
        }
        let closed = match self.pool.idle.try_lock() {
            Ok(mut idle) => std::mem::take(&mut *idle),
            Err(_) => return Err(stuck()),
        };
        drop(closed);
        let watch = self.pool.file.watch.try_lock().map_err(|_| stuck())?.take();
        drop(watch);
        Ok(())
    }

    fn change_marker(&self) -> StorageResult<u64> {
        self.pool.change_marker()
    }
}

/// Lets the dialect-neutral migration runner drive one SQLite connection.
struct SqliteMigrator<'a>(&'a mut Connection);

impl MigrationTarget for SqliteMigrator<'_> {
    fn begin(&mut self) -> StorageResult<()> {
        self.0.execute_batch("BEGIN IMMEDIATE").map_err(map_error)
    }
    fn commit(&mut self) -> StorageResult<()> {
        self.0.execute_batch("COMMIT").map_err(map_error)
    }
    fn rollback(&mut self) -> StorageResult<()> {
        self.0.execute_batch("ROLLBACK").map_err(map_error)
    }
    fn execute_batch(&mut self, sql: &str) -> StorageResult<()> {
        self.0.execute_batch(sql).map_err(map_error)
    }
    fn current_version(&mut self) -> StorageResult<i64> {
        self.0
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                [],
                |row| row.get(0),
            )
            .map_err(map_error)
    }
    fn record_version(&mut self, version: i64) -> StorageResult<()> {
        self.0
            .execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, timestamp(Utc::now())],
            )
            .map(|_| ())
            .map_err(map_error)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn temp_db() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/sqlhsm.db");
        let path = path.to_str().unwrap().to_string();
        (dir, path)
    }

    mod file_contract {
        use super::*;
        crate::storage_contract_tests!({
            let (dir, path) = temp_db();
            let storage = SqliteStorage::open(&path, 5000).unwrap();
            (dir, std::sync::Arc::new(storage))
        });
    }

    mod memory_contract {
        use super::*;
        crate::storage_contract_tests!({
            let storage = SqliteStorage::open(":memory:", 5000).unwrap();
            ((), std::sync::Arc::new(storage))
        });
    }

    /// A trigger that fails every `key_event` insert of `token`: the event cannot be written,
    /// as with a full disk or a broken grant.
    fn refuse_events(storage: &SqliteStorage, token: Uuid) {
        let name = format!("refuse_events_{}", token.simple());
        storage
            .pool
            .check_out()
            .unwrap()
            .execute_batch(&format!(
                "CREATE TRIGGER {name} BEFORE INSERT ON key_event \
                 WHEN NEW.provider_config_id = '{token}' \
                 BEGIN SELECT RAISE(ABORT, 'no history'); END;"
            ))
            .unwrap();
    }

    #[test]
    fn refused_events_write_nothing() {
        let (_dir, path) = temp_db();
        for path in [path.as_str(), ":memory:"] {
            let storage = std::sync::Arc::new(SqliteStorage::open(path, 5000).unwrap());
            let faulty = storage.clone();
            crate::storage::contract::refused_events_write_nothing(storage, &move |token| {
                refuse_events(&faulty, token)
            });
        }
    }

    #[test]
    fn create_makes_directories_wal_and_current_schema() {
        let (_dir, path) = temp_db();
        let storage = SqliteStorage::open(&path, 1000).unwrap();
        assert!(!Path::new(&path).exists());
        storage.create().unwrap();
        assert!(Path::new(&path).exists());
        assert_eq!(storage.describe(), format!("sqlite:{path}"));
        let connection = storage.pool.check_out().unwrap();
        let mode: String = connection
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = connection
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let fk: i64 = connection
            .query_row("PRAGMA foreign_keys", [], |row| row.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let version: i64 = connection
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(version, migrations::latest_version(Dialect::Sqlite));
    }

    #[test]
    fn reopening_applies_nothing_twice() {
        let (_dir, path) = temp_db();
        SqliteStorage::open(&path, 1000).unwrap().create().unwrap();
        let storage = SqliteStorage::open(&path, 1000).unwrap();
        let connection = storage.pool.check_out().unwrap();
        let rows: i64 = connection
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(rows, migrations::latest_version(Dialect::Sqlite));
    }

    /// A commit through any other connection moves the watch connection's `data_version`.
    #[test]
    fn another_connections_commit_moves_the_change_marker() {
        let (_dir, path) = temp_db();
        let watcher = SqliteStorage::open(&path, 5000).unwrap();
        watcher.create().unwrap();
        let writer = SqliteStorage::open(&path, 5000).unwrap();
        let before = watcher.change_marker().unwrap();
        assert_eq!(
            watcher.change_marker().unwrap(),
            before,
            "stable without writes"
        );
        let at = Utc::now();
        writer
            .insert_token(&TokenRow {
                id: Uuid::new_v4(),
                provider_name: "noticed".into(),
                config: serde_json::json!({ "slot": 77 }),
                metadata: serde_json::json!({}),
                created_at: at,
                updated_at: at,
            })
            .unwrap();
        assert_ne!(watcher.change_marker().unwrap(), before);
    }

    /// Several processes starting at once race to create and migrate the same file.
    #[test]
    fn concurrent_first_opens_all_succeed() {
        let (_dir, path) = temp_db();
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || SqliteStorage::open(&path, 5000)?.create())
            })
            .collect();
        for handle in handles {
            handle.join().unwrap().unwrap();
        }
        let storage = SqliteStorage::open(&path, 5000).unwrap();
        let connection = storage.pool.check_out().unwrap();
        let rows: i64 = connection
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(rows, migrations::latest_version(Dialect::Sqlite));
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let (_dir, path) = temp_db();
        SqliteStorage::open(&path, 1000).unwrap().create().unwrap();
        let connection = Connection::open(&path).unwrap();
        connection
            .execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 'x')",
                [],
            )
            .unwrap();
        drop(connection);
        match SqliteStorage::open(&path, 1000) {
            Err(StorageError::SchemaTooNew { found: 9999, .. }) => {}
            Err(other) => panic!("expected SchemaTooNew, got {other:?}"),
            Ok(_) => panic!("expected SchemaTooNew, got a store"),
        }
    }

    #[test]
    fn corrupt_rows_are_reported_as_corrupt() {
        let storage = SqliteStorage::open(":memory:", 1000).unwrap();
        let id = Uuid::new_v4();
        {
            let connection = storage.pool.check_out().unwrap();
            connection
                .execute(
                    "INSERT INTO provider_config VALUES (?1, 't', '{}', '{}', 'yesterday', 'x')",
                    [id.to_string()],
                )
                .unwrap();
        }
        assert!(matches!(
            storage.get_token(id),
            Err(StorageError::Corrupt(_))
        ));
    }

    /// A find by label or by `CKA_ID` must be an index search, not a scan of all keys.
    #[test]
    fn finds_use_the_metadata_indexes() {
        let storage = SqliteStorage::open(":memory:", 1000).unwrap();
        let connection = storage.pool.check_out().unwrap();
        let token = Uuid::new_v4();
        let cases = [
            (
                "asym_key",
                ASYM_COLUMNS,
                true,
                KeyFilter {
                    provider_config_id: token,
                    label: Some("l".into()),
                    ..KeyFilter::default()
                },
                "asym_key_label_idx",
            ),
            (
                "asym_key",
                ASYM_COLUMNS,
                true,
                KeyFilter {
                    provider_config_id: token,
                    ck_id: Some("0102".into()),
                    ..KeyFilter::default()
                },
                "asym_key_ck_id_idx",
            ),
            (
                "asym_key",
                ASYM_COLUMNS,
                true,
                KeyFilter {
                    provider_config_id: token,
                    key_algorithms: Some(vec![1, 3]),
                    ..KeyFilter::default()
                },
                "asym_key_algorithm_idx",
            ),
            (
                "sym_key",
                SYM_COLUMNS,
                false,
                KeyFilter {
                    provider_config_id: token,
                    label: Some("l".into()),
                    ..KeyFilter::default()
                },
                "sym_key_label_idx",
            ),
            (
                "sym_key",
                SYM_COLUMNS,
                false,
                KeyFilter {
                    provider_config_id: token,
                    ck_id: Some("0102".into()),
                    ..KeyFilter::default()
                },
                "sym_key_ck_id_idx",
            ),
        ];
        for (table, columns, with_algorithms, filter, index) in cases {
            let (sql, values) = find_query(table, columns, &filter, with_algorithms).unwrap();
            let mut statement = connection
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let plan: Vec<String> = statement
                .query_map(params_from_iter(values), |row| row.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("\n");
            assert!(
                plan.contains(&format!("USING INDEX {index}")),
                "{table} {filter:?}: {plan}"
            );
            assert!(!plan.contains(&format!("SCAN {table}")), "{plan}");
        }
    }

    #[test]
    fn the_index_expressions_match_the_migration() {
        let sql = migrations::migrations(Dialect::Sqlite)[0].sql;
        assert!(sql.contains(LABEL_EXPR));
        assert!(sql.contains(CK_ID_EXPR));
    }

    #[test]
    fn slot_numbers_are_unique() {
        let storage = SqliteStorage::open(":memory:", 1000).unwrap();
        let now = Utc::now();
        let token = |name: &str| TokenRow {
            id: Uuid::new_v4(),
            provider_name: name.into(),
            config: serde_json::json!({ "slot": 7 }),
            metadata: serde_json::json!({}),
            created_at: now,
            updated_at: now,
        };
        storage.insert_token(&token("a")).unwrap();
        assert!(matches!(
            storage.insert_token(&token("b")),
            Err(StorageError::Conflict(_))
        ));
    }

    #[test]
    fn busy_past_the_timeout_is_busy() {
        let (_dir, path) = temp_db();
        let storage = SqliteStorage::open(&path, 50).unwrap();
        storage.create().unwrap();
        let mut blocker = Connection::open(&path).unwrap();
        let tx = blocker
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let result = storage.rename_token(Uuid::new_v4(), "x");
        assert!(matches!(result, Err(StorageError::Busy(_))), "{result:?}");
        drop(tx);
    }

    fn token_row(name: &str, slot: u64) -> TokenRow {
        let at = Utc::now();
        TokenRow {
            id: Uuid::new_v4(),
            provider_name: name.into(),
            config: serde_json::json!({ "slot": slot }),
            metadata: serde_json::json!({}),
            created_at: at,
            updated_at: at,
        }
    }

    /// Reading a store whose file does not exist finds nothing and creates nothing, not even its
    /// directory; the first write creates both.
    #[test]
    fn reads_never_create_the_file() {
        let (dir, path) = temp_db();
        let storage = SqliteStorage::open(&path, 1000).unwrap();
        let filter = KeyFilter {
            provider_config_id: Uuid::new_v4(),
            ..KeyFilter::default()
        };
        assert!(storage.list_tokens().unwrap().is_empty());
        assert_eq!(storage.get_token(Uuid::new_v4()).unwrap(), None);
        assert!(storage.find_asym_keys(&filter).unwrap().is_empty());
        assert!(storage.find_sym_keys(&filter).unwrap().is_empty());
        assert!(storage.find_objects(&filter, None).unwrap().is_empty());
        assert!(!storage.key_id_exists("k").unwrap());
        assert!(storage.key_events("k").unwrap().is_empty());
        assert_eq!(storage.change_marker().unwrap(), 0);
        match storage.require_existing() {
            Err(StorageError::Missing(message)) => {
                assert_eq!(message, format!("no key store at {path}"))
            }
            other => panic!("expected Missing, got {other:?}"),
        }
        assert!(
            !dir.path().join("nested").exists(),
            "not even the directory"
        );

        storage.insert_token(&token_row("first", 1)).unwrap();
        assert!(Path::new(&path).exists());
        storage.require_existing().unwrap();
        assert_eq!(storage.list_tokens().unwrap().len(), 1);
    }

    /// A store opened before its file existed uses the file as soon as another process (here
    /// another store) creates it.
    #[test]
    fn a_file_created_elsewhere_is_used_at_once() {
        let (_dir, path) = temp_db();
        let early = SqliteStorage::open(&path, 1000).unwrap();
        assert!(early.list_tokens().unwrap().is_empty());
        let before = early.change_marker().unwrap();
        let creator = SqliteStorage::open(&path, 1000).unwrap();
        creator
            .insert_token(&token_row("made-elsewhere", 1))
            .unwrap();
        let tokens = early.list_tokens().unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].provider_name, "made-elsewhere");
        assert_ne!(early.change_marker().unwrap(), before);
        early.insert_token(&token_row("second", 2)).unwrap();
        assert_eq!(creator.list_tokens().unwrap().len(), 2);
    }

    /// A file deleted under a running store is not silently re-created empty by a new
    /// connection: it is reported missing.
    #[test]
    fn a_deleted_file_is_reported_not_recreated() {
        let (_dir, path) = temp_db();
        let storage = SqliteStorage::open(&path, 1000).unwrap();
        storage.create().unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
        // The one pooled connection (opened before the deletion) is in use, so the pool opens a
        // new one.
        let held = storage.pool.check_out().unwrap();
        match storage.pool.check_out() {
            Err(StorageError::Missing(message)) => assert!(message.contains(&path), "{message}"),
            Err(other) => panic!("expected Missing, got {other:?}"),
            Ok(_) => panic!("expected Missing, got a connection"),
        }
        drop(held);
        assert!(!Path::new(&path).exists());
    }

    /// Paths that cannot name a store are refused at open, with the path and the cause.
    #[test]
    fn unusable_paths_name_the_path_and_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        std::fs::write(&file, b"not a directory").unwrap();
        let through_a_file = file.join("keys.db");
        let through_a_file = through_a_file.to_str().unwrap();
        match SqliteStorage::open(through_a_file, 1000) {
            Err(StorageError::Access(message)) => assert_eq!(
                message,
                format!(
                    "cannot open the key store {through_a_file}: {} is a file, not a directory",
                    file.display()
                )
            ),
            Err(other) => panic!("expected Access, got {other:?}"),
            Ok(_) => panic!("opened a store under a file"),
        }
        let directory = dir.path().to_str().unwrap();
        match SqliteStorage::open(directory, 1000) {
            Err(StorageError::Access(message)) => {
                assert!(
                    message.contains(directory) && message.contains("is a directory"),
                    "{message}"
                )
            }
            Err(other) => panic!("expected Access, got {other:?}"),
            Ok(_) => panic!("opened a directory as a store"),
        }
        match SqliteStorage::open(file.to_str().unwrap(), 1000) {
            Err(StorageError::Corrupt(message)) => {
                assert!(
                    message.starts_with(&format!(
                        "{} is not a usable SQLite key store",
                        file.display()
                    )),
                    "{message}"
                )
            }
            Err(other) => panic!("expected Corrupt, got {other:?}"),
            Ok(_) => panic!("opened a text file as a store"),
        }
    }
}

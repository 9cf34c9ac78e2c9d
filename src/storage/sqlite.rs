//! SQLite backend: the driver under the shared SQL layer ([`super::sql`]), and SQLite's
//! [`Dialect`](sql::Dialect) ([`SqliteDialect`]).
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
use rusqlite::types::{FromSql, ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::TransactionBehavior;
use rusqlite::{params, params_from_iter, Connection, ErrorCode, OpenFlags, ToSql};

use super::migrations::{self, Dialect, MigrationTarget};
use super::sql::{self, Param, Sql};
use super::*;

/// Idle connections kept for reuse; more may be open while busy.
const MAX_IDLE: usize = 8;

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
}

/// SQLite's spelling of the shared statements ([`super::sql`]).
pub struct SqliteDialect;

/// The one instance the driver hands out.
pub static SQLITE: SqliteDialect = SqliteDialect;

impl sql::Dialect for SqliteDialect {
    fn placeholder(&self, n: usize, sql: &mut String) {
        sql.push('?');
        sql.push_str(&n.to_string());
    }

    /// Exactly the expressions the indexes in `migrations/sqlite/0001_init.sql` are built on.
    fn json_text(&self, column: &str, field: &str) -> String {
        format!("json_extract({column}, '$.{field}')")
    }

    /// Every write transaction is `BEGIN IMMEDIATE`: it holds the database's write lock from its
    /// start, so a read in it needs no lock of its own.
    fn lock_selected_rows(&self) -> &'static str {
        ""
    }
}

/// A [`Param`] in SQLite's encoding: UUIDs, JSON and timestamps as text.
struct Bind<'p, 'a>(&'p Param<'a>);

impl ToSql for Bind<'_, '_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self.0 {
            Param::Uuid(id) => ToSqlOutput::Owned(SqlValue::Text(id.to_string())),
            Param::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Param::I32(n) => ToSqlOutput::Owned(SqlValue::Integer(i64::from(n))),
            Param::I64(n) => ToSqlOutput::Owned(SqlValue::Integer(n)),
            Param::Json(None) | Param::Time(None) | Param::Bytes(None) => {
                ToSqlOutput::Owned(SqlValue::Null)
            }
            Param::Json(Some(value)) => ToSqlOutput::Owned(SqlValue::Text(value.to_string())),
            Param::Time(Some(at)) => ToSqlOutput::Owned(SqlValue::Text(timestamp(at))),
            Param::Bytes(Some(bytes)) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            // The dialect binds lists value by value (`IN (?, …)`).
            Param::I32s(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "SQLite binds no arrays".into(),
                ))
            }
        })
    }
}

/// One connection (a transaction's, or one for reading) running the shared statements.
struct SqliteConn<'c>(&'c Connection);

impl SqliteConn<'_> {
    fn prepare(&self, sql: &Sql<'_>) -> StorageResult<rusqlite::CachedStatement<'_>> {
        self.0.prepare_cached(sql.text()).map_err(map_error)
    }
}

impl sql::Conn for SqliteConn<'_> {
    fn query(
        &mut self,
        sql: &Sql<'_>,
        each: &mut dyn FnMut(&dyn sql::Row) -> StorageResult<()>,
    ) -> StorageResult<()> {
        let mut statement = self.prepare(sql)?;
        let mut rows = statement
            .query(params_from_iter(sql.params().iter().map(Bind)))
            .map_err(map_error)?;
        while let Some(row) = rows.next().map_err(map_error)? {
            each(&SqliteRow(row))?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &Sql<'_>) -> StorageResult<u64> {
        let changed = self
            .prepare(sql)?
            .execute(params_from_iter(sql.params().iter().map(Bind)))
            .map_err(map_error)?;
        Ok(changed as u64)
    }
}

/// A result row; UUIDs, JSON and timestamps are decoded from their text.
struct SqliteRow<'r, 's>(&'r rusqlite::Row<'s>);

impl SqliteRow<'_, '_> {
    fn get<T: FromSql>(&self, column: usize) -> StorageResult<T> {
        self.0.get(column).map_err(map_error)
    }

    fn parse<T, E: std::fmt::Display>(
        &self,
        column: usize,
        what: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> StorageResult<Option<T>> {
        match self.get::<Option<String>>(column)? {
            None => Ok(None),
            Some(text) => parse(&text)
                .map(Some)
                .map_err(|e| sql::row::corrupt(column, what, e)),
        }
    }
}

impl sql::Row for SqliteRow<'_, '_> {
    fn opt_text(&self, column: usize) -> StorageResult<Option<String>> {
        self.get(column)
    }
    fn i32(&self, column: usize) -> StorageResult<i32> {
        self.get(column)
    }
    fn i64(&self, column: usize) -> StorageResult<i64> {
        self.get(column)
    }
    fn bool(&self, column: usize) -> StorageResult<bool> {
        self.get(column)
    }
    fn opt_bytes(&self, column: usize) -> StorageResult<Option<Vec<u8>>> {
        self.get(column)
    }
    fn opt_uuid(&self, column: usize) -> StorageResult<Option<Uuid>> {
        self.parse(column, "uuid", Uuid::parse_str)
    }
    fn opt_json(&self, column: usize) -> StorageResult<Option<Value>> {
        self.parse(column, "JSON", |text| serde_json::from_str::<Value>(text))
    }
    fn opt_time(&self, column: usize) -> StorageResult<Option<DateTime<Utc>>> {
        self.parse(column, "timestamp", |text| {
            DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
        })
    }
}

impl sql::Driver for SqliteStorage {
    fn dialect(&self) -> &'static dyn sql::Dialect {
        &SQLITE
    }

    fn read<T>(
        &self,
        work: impl FnOnce(&mut dyn sql::Conn) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let connection = self.pool.check_out()?;
        work(&mut SqliteConn(&connection))
    }

    /// A `BEGIN IMMEDIATE` transaction: lock waits happen up front, inside the busy timeout,
    /// never as a deadlock when a reader tries to upgrade.
    fn write<T>(
        &self,
        work: impl FnOnce(&mut dyn sql::Conn) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let mut connection = self.pool.writer()?;
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_error)?;
        let value = work(&mut SqliteConn(&tx))?;
        tx.commit().map_err(map_error)?;
        Ok(value)
    }

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

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
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
                KeyTable::Asym,
                KeyFilter {
                    provider_config_id: token,
                    label: Some("l".into()),
                    ..KeyFilter::default()
                },
                "asym_key_label_idx",
            ),
            (
                KeyTable::Asym,
                KeyFilter {
                    provider_config_id: token,
                    ck_id: Some("0102".into()),
                    ..KeyFilter::default()
                },
                "asym_key_ck_id_idx",
            ),
            (
                KeyTable::Asym,
                KeyFilter {
                    provider_config_id: token,
                    key_algorithms: Some(vec![1, 3]),
                    ..KeyFilter::default()
                },
                "asym_key_algorithm_idx",
            ),
            (
                KeyTable::Sym,
                KeyFilter {
                    provider_config_id: token,
                    label: Some("l".into()),
                    ..KeyFilter::default()
                },
                "sym_key_label_idx",
            ),
            (
                KeyTable::Sym,
                KeyFilter {
                    provider_config_id: token,
                    ck_id: Some("0102".into()),
                    ..KeyFilter::default()
                },
                "sym_key_ck_id_idx",
            ),
        ];
        for (table, filter, index) in cases {
            let sql = sql::find_keys_sql(&SQLITE, table, &filter).unwrap();
            let mut statement = connection
                .prepare(&format!("EXPLAIN QUERY PLAN {}", sql.text()))
                .unwrap();
            let plan: Vec<String> = statement
                .query_map(params_from_iter(sql.params().iter().map(Bind)), |row| {
                    row.get::<_, String>(3)
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("\n");
            assert!(
                plan.contains(&format!("USING INDEX {index}")),
                "{table:?} {filter:?}: {plan}"
            );
            assert!(!plan.contains(&format!("SCAN {}", table.name())), "{plan}");
        }
    }

    #[test]
    fn the_index_expressions_match_the_migration() {
        let sql = migrations::migrations(Dialect::Sqlite)[0].sql;
        use sql::Dialect as _;
        assert!(sql.contains(&SQLITE.json_text("metadata", "label")));
        assert!(sql.contains(&SQLITE.json_text("metadata", "id")));
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
        assert!(storage
            .find_keys(KeyTable::Asym, &filter)
            .unwrap()
            .is_empty());
        assert!(storage
            .find_keys(KeyTable::Sym, &filter)
            .unwrap()
            .is_empty());
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

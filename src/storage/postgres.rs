//! PostgreSQL backend: the driver under the shared SQL layer ([`super::sql`]), and
//! PostgreSQL's [`Dialect`](sql::Dialect) ([`PostgresDialect`]).
//!
//! Many processes on many hosts may share one database, so everything that must be exact is
//! decided by the server:
//! * a pool of connections per process, sized by `database.pool_size` ([`super::caller_pool`]),
//!   which opens them on the calling thread and runs nothing between calls, so that it serves
//!   an application that forbids threads (`CKF_LIBRARY_CANT_CREATE_OS_THREADS`,
//!   [`Threads::Forbidden`]) as well; the change feed is read by a thread of its own, or then by
//!   the caller ([`super::change_feed::PolledFeed`]);
//! * a lookup is one round trip: each statement is sent with its parameters' types named
//!   (`query_typed`: no separate `Prepare`), a search over every object table is one statement
//!   ([`Storage::visit_rows`]), and a connection used less than a second ago is handed out
//!   without the pool's check;
//! * every connection starts with `statement_timeout` and `lock_timeout` set (through the startup
//!   `options`), so a call fails instead of hanging; the lock timeout is `database.busy_timeout_ms`,
//!   as for SQLite;
//! * a token's failed-login counter is changed under `SELECT … FOR UPDATE` of its row
//!   ([`Storage::update_token_config`]), so concurrent logins from several hosts count exactly;
//! * migrations run in one transaction under a transaction-scoped advisory lock, so processes
//!   starting together migrate once;
//! * driver errors become [`StorageError`] kinds in one place ([`map_error`]).
//!
//! TLS follows the URL's `sslmode` (`disable`, `prefer`, `require`) with libpq's meaning: the
//! channel is encrypted but the server certificate is not verified. Naming `openssl` here is the
//! one exception to "only `crypto` names openssl": `postgres-openssl` wants an `SslConnector`.
//!
//! The password comes from the URL, else from the environment variable named by
//! `database.password_env`, else from the password file (`PGPASSFILE` or `~/.pgpass`, libpq's
//! format). [`Storage::describe`] never shows it.

use std::path::PathBuf;
use std::time::Duration;

use ::postgres::error::SqlState;
use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::types::{FromSql, ToSql, Type};
use ::postgres::{Client, GenericClient, Row};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;
use tokio_postgres::config::Host;

use super::caller_pool::{self, CallerPool, CheckoutError, Lease, Targets, DEFAULT_PORT};
use super::change_feed::{ChangeFeed, PolledFeed};
use super::migrations::{self, Dialect, MigrationTarget};
use super::pg_error::error_text;
use super::sql::{self, Param, Sql};
use super::*;
use crate::config::DatabaseConfig;

/// The advisory lock that serialises migrators of one database: "sqlhsm" in ASCII, then 1.
const MIGRATION_LOCK_KEY: i64 = 0x7371_6c68_736d_0001;

enum Feed {
    Thread(ChangeFeed),
    Polled(PolledFeed),
}

/// The PostgreSQL key store.
pub struct PostgresStorage {
    /// What `describe` says: `postgres://user@host:port/db`, never a password.
    location: String,
    pool: CallerPool,
    /// What [`Storage::change_marker`] reads.
    changes: Feed,
}

impl PostgresStorage {
    /// Connects to the database `settings.url` names and brings its schema up to date; the
    /// store runs threads of its own.
    pub fn open(settings: &DatabaseConfig) -> StorageResult<PostgresStorage> {
        PostgresStorage::open_with(settings, Threads::Allowed)
    }

    /// [`PostgresStorage::open`], with threads of its own or (`Threads::Forbidden`) none: then
    /// the change feed is read at the coherence checks instead of by a thread.
    ///
    /// Opening makes one connection and one query on it when the schema is current (the
    /// migrations' look at its version); that connection is the pool's first, so the calls
    /// after `open` use it without connecting again. The change feed's thread connects on its
    /// own, without holding `open` up.
    pub fn open_with(
        settings: &DatabaseConfig,
        threads: Threads,
    ) -> StorageResult<PostgresStorage> {
        let mut config: tokio_postgres::Config = settings.url.parse().map_err(|e| {
            StorageError::Backend(format!(
                "invalid PostgreSQL URL {}: {e} (sslmode may be disable, prefer or require)",
                settings.redacted_url()
            ))
        })?;
        apply_settings(&mut config, settings)?;
        let location = describe_config(&config);
        let tls = tls_connector()?;
        let connect_timeout = Duration::from_millis(settings.connect_timeout_ms.max(1));

        // A direct connection for the migrations: a refused or timed-out connection reports its
        // own cause at once.
        let targets = std::sync::Arc::new(Targets::new(config.clone())?);
        let mut first = caller_pool::connect(&targets.last(), &tls).map_err(|e| {
            StorageError::Backend(format!("cannot connect to {location}: {}", error_text(&e)))
        })?;
        let applied = migrations::run(&mut PostgresMigrator(&mut first), Dialect::Postgres)?;
        if applied > 0 {
            tracing::info!(%location, applied, "applied PostgreSQL schema migrations");
        }

        let changes = match threads {
            Threads::Allowed => Feed::Thread(
                ChangeFeed::start(::postgres::Config::from(config), tls.clone()).map_err(|e| {
                    StorageError::Backend(format!("cannot start the change feed thread: {e}"))
                })?,
            ),
            Threads::Forbidden => Feed::Polled(PolledFeed::start(
                targets.clone(),
                tls.clone(),
                connect_timeout,
            )?),
        };
        let pool = CallerPool::new(
            targets,
            tls,
            settings.pool_size as usize,
            Duration::from_millis(settings.busy_timeout_ms),
            connect_timeout,
        );
        // The migrating connection is the pool's first.
        pool.adopt(first);
        Ok(PostgresStorage {
            location,
            pool,
            changes,
        })
    }

    fn client(&self) -> StorageResult<Lease<'_>> {
        self.pool.get().map_err(|e| match e {
            CheckoutError::Busy => StorageError::Busy(format!(
                "all {} connections to {} stayed in use for {:?}",
                self.pool.max_size(),
                self.location,
                self.pool.wait()
            )),
            CheckoutError::Connect(e) => StorageError::Backend(format!(
                "cannot connect to {}: {}",
                self.location,
                error_text(&e)
            )),
            CheckoutError::Other(e) => e,
        })
    }
}

/// Timeouts, session settings and the password, on top of what the URL says.
fn apply_settings(
    config: &mut tokio_postgres::Config,
    settings: &DatabaseConfig,
) -> StorageResult<()> {
    config.connect_timeout(Duration::from_millis(settings.connect_timeout_ms.max(1)));
    // `lock_timeout = 0` would mean "wait forever"; a busy timeout of 0 means "do not wait".
    let session = format!(
        "-c statement_timeout={} -c lock_timeout={}",
        settings.statement_timeout_ms,
        settings.busy_timeout_ms.max(1)
    );
    let options = match config.get_options() {
        Some(given) if !given.trim().is_empty() => format!("{given} {session}"),
        _ => session,
    };
    config.options(&options);
    if config.get_application_name().is_none() {
        config.application_name("sqlhsm");
    }
    if config.get_password().is_some() {
        return Ok(());
    }
    if let Some(name) = &settings.password_env {
        let password = std::env::var(name).map_err(|_| {
            StorageError::Backend(format!(
                "database.password_env names {name}, but that environment variable is not set"
            ))
        })?;
        config.password(password);
        return Ok(());
    }
    let (host, port, dbname, user) = pgpass_key(config);
    if let Some(password) = pgpass_path()
        .and_then(|path| read_pgpass(&path))
        .and_then(|text| pgpass_lookup(&text, &host, port, &dbname, &user))
    {
        config.password(password);
    }
    Ok(())
}

/// `(host, port, database, user)` as libpq matches them against the password file: a Unix
/// socket counts as `localhost`, the database defaults to the user name.
fn pgpass_key(config: &tokio_postgres::Config) -> (String, u16, String, String) {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) => name.clone(),
        _ => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(DEFAULT_PORT);
    let user = config.get_user().unwrap_or_default().to_string();
    let dbname = config.get_dbname().unwrap_or(&user).to_string();
    (host, port, dbname, user)
}

/// `postgres://user@host:port/db`, built from the parsed configuration so no password can slip
/// in.
fn describe_config(config: &tokio_postgres::Config) -> String {
    let (_, port, dbname, user) = pgpass_key(config);
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(name)) if name.contains(':') => format!("[{name}]"),
        Some(Host::Tcp(name)) => name.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        #[allow(unreachable_patterns)]
        _ => "localhost".to_string(),
    };
    format!("postgres://{user}@{host}:{port}/{dbname}")
}

/// TLS as libpq's `prefer` and `require` do it: encrypt, do not authenticate the server.
///
/// Made once per process: `SslConnector::builder` loads the system's trusted certificates
/// (several milliseconds), which a connector that verifies nothing never reads, so a
/// `C_Initialize` after a `C_Finalize` reuses the first one. It holds no connection and no
/// descriptor, so a forked child may use it too.
fn tls_connector() -> StorageResult<MakeTlsConnector> {
    static MADE: std::sync::OnceLock<MakeTlsConnector> = std::sync::OnceLock::new();
    if let Some(made) = MADE.get() {
        return Ok(made.clone());
    }
    let made = new_tls_connector()?;
    Ok(MADE.get_or_init(|| made).clone())
}

fn new_tls_connector() -> StorageResult<MakeTlsConnector> {
    let tls_error =
        |e: openssl::error::ErrorStack| StorageError::Backend(format!("TLS setup: {e}"));
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(tls_error)?;
    builder.set_verify(SslVerifyMode::NONE);
    let mut connector = MakeTlsConnector::new(builder.build());
    connector.set_callback(|connect, _domain| {
        connect.set_verify_hostname(false);
        Ok(())
    });
    Ok(connector)
}

/// The password file: `PGPASSFILE` when set, else `~/.pgpass`.
fn pgpass_path() -> Option<PathBuf> {
    match std::env::var_os("PGPASSFILE") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => dirs::home_dir().map(|home| home.join(".pgpass")),
    }
}

/// The password file's text, if it is a regular file only its owner can read (libpq ignores it
/// otherwise, with a warning).
fn read_pgpass(path: &std::path::Path) -> Option<String> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "password file has group or world access; ignored (use chmod 0600)"
            );
            return None;
        }
    }
    std::fs::read_to_string(path).ok()
}

/// One line of a password file split at unescaped `:`, each field with `\` escapes removed and
/// a flag telling whether it was a bare `*` (a wildcard).
fn pgpass_fields(line: &str) -> Vec<(String, bool)> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut escaped_any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                escaped_any = true;
                match chars.next() {
                    Some(next) => field.push(next),
                    None => field.push('\\'),
                }
            }
            ':' => {
                let wildcard = field == "*" && !escaped_any;
                fields.push((std::mem::take(&mut field), wildcard));
                escaped_any = false;
            }
            _ => field.push(c),
        }
    }
    let wildcard = field == "*" && !escaped_any;
    fields.push((field, wildcard));
    fields
}

/// Looks `host:port:database:user` up in a password file's text (libpq's format: one
/// `hostname:port:database:username:password` per line, `*` matches anything, `\` escapes `:`
/// and `\`, `#` starts a comment line); the first matching line wins.
pub fn pgpass_lookup(
    text: &str,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<String> {
    let port = port.to_string();
    let wanted = [host, port.as_str(), dbname, user];
    text.lines()
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .map(pgpass_fields)
        .filter(|fields| fields.len() >= 5)
        .find(|fields| {
            fields
                .iter()
                .zip(wanted)
                .all(|((value, wildcard), wanted)| *wildcard || value == wanted)
        })
        .map(|fields| fields[4].0.clone())
}

/// The one mapping from driver errors to storage error kinds.
fn map_error(error: ::postgres::Error) -> StorageError {
    let text = error_text(&error);
    let Some(code) = error.code() else {
        // No SQLSTATE: the connection broke, timed out or could not be made.
        return StorageError::Backend(text);
    };
    if *code == SqlState::UNIQUE_VIOLATION {
        StorageError::Conflict(text)
    } else if *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::QUERY_CANCELED
    {
        // Waiting on other writers past `lock_timeout`, losing a race, or running past
        // `statement_timeout`: the caller may try again.
        StorageError::Busy(text)
    } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
        StorageError::Corrupt(text)
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        // The server answered: this role may not do it (`sqlhsm db check` names what is
        // missing). Not an outage.
        StorageError::Access(text)
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        // A standby, or `default_transaction_read_only`: reads work, writes cannot.
        StorageError::ReadOnly(text)
    } else {
        StorageError::Backend(text)
    }
}

/// PostgreSQL's spelling of the shared statements ([`super::sql`]).
pub struct PostgresDialect;

/// The one instance the driver hands out.
pub static POSTGRES: PostgresDialect = PostgresDialect;

impl sql::Dialect for PostgresDialect {
    fn placeholder(&self, n: usize, sql: &mut String) {
        sql.push('$');
        sql.push_str(&n.to_string());
    }

    /// Exactly the expressions the indexes in `migrations/postgres/0001_init.sql` are built on.
    fn json_text(&self, column: &str, field: &str) -> String {
        format!("{column}->>'{field}'")
    }

    fn in_list(&self, column: &str, _count: usize) -> (String, sql::InList) {
        (format!("{column} = ANY(?)"), sql::InList::Array)
    }

    fn null_of(&self, ty: sql::ColumnType) -> &'static str {
        match ty {
            sql::ColumnType::Uuid => "NULL::uuid",
            sql::ColumnType::Text => "NULL::text",
            sql::ColumnType::Int => "NULL::integer",
            sql::ColumnType::BigInt => "NULL::bigint",
            sql::ColumnType::Time => "NULL::timestamptz",
            sql::ColumnType::Json => "NULL::jsonb",
            sql::ColumnType::Bytes => "NULL::bytea",
        }
    }
}

/// A [`Param`] as the driver binds it (`uuid`, `jsonb`, `timestamptz`, arrays natively), with
/// the type it is sent as: a statement whose parameter types are named is parsed, bound and run
/// in one round trip, where one the server has to type first takes a `Prepare` before.
fn bind<'p>(param: &'p Param<'_>) -> (&'p (dyn ToSql + Sync), Type) {
    match param {
        Param::Uuid(id) => (id, Type::UUID),
        Param::Text(text) => (text, Type::TEXT),
        Param::I32(n) => (n, Type::INT4),
        Param::I64(n) => (n, Type::INT8),
        Param::Json(value) => (value, Type::JSONB),
        Param::Time(at) => (at, Type::TIMESTAMPTZ),
        Param::Bytes(bytes) => (bytes, Type::BYTEA),
        Param::I32s(list) => (list, Type::INT4_ARRAY),
    }
}

/// A shared statement, run with its parameters' types named (one round trip); its rows as
/// they arrive.
fn run<'c, C: GenericClient>(
    client: &'c mut C,
    sql: &Sql<'_>,
) -> StorageResult<::postgres::RowIter<'c>> {
    client
        .query_typed_raw(sql.text(), sql.params().iter().map(bind))
        .map_err(map_error)
}

/// A client or an open transaction running the shared statements.
struct PgConn<'c, C: GenericClient>(&'c mut C);

impl<C: GenericClient> sql::Conn for PgConn<'_, C> {
    fn query(
        &mut self,
        sql: &Sql<'_>,
        each: &mut dyn FnMut(&dyn sql::Row) -> StorageResult<()>,
    ) -> StorageResult<()> {
        // Row by row as they arrive, so a search over a million rows never holds them all.
        let mut rows = run(self.0, sql)?;
        while let Some(row) = rows.next().map_err(map_error)? {
            each(&PgRow(&row))?;
        }
        Ok(())
    }

    fn execute(&mut self, sql: &Sql<'_>) -> StorageResult<u64> {
        let mut rows = run(self.0, sql)?;
        while rows.next().map_err(map_error)?.is_some() {}
        Ok(rows.rows_affected().unwrap_or(0))
    }
}

/// A result row; a column of an unexpected type is corrupt data.
struct PgRow<'r>(&'r Row);

impl PgRow<'_> {
    fn get<'r, T: FromSql<'r>>(&'r self, column: usize) -> StorageResult<T> {
        self.0.try_get(column).map_err(|e| {
            let name = self.0.columns().get(column).map_or("?", |c| c.name());
            StorageError::Corrupt(format!("column {name}: {e}"))
        })
    }
}

impl sql::Row for PgRow<'_> {
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
        self.get(column)
    }
    fn opt_json(&self, column: usize) -> StorageResult<Option<Value>> {
        self.get(column)
    }
    fn opt_time(&self, column: usize) -> StorageResult<Option<DateTime<Utc>>> {
        self.get(column)
    }
}

impl sql::Driver for PostgresStorage {
    fn dialect(&self) -> &'static dyn sql::Dialect {
        &POSTGRES
    }

    fn read<T>(
        &self,
        work: impl FnOnce(&mut dyn sql::Conn) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let mut client = self.client()?;
        work(&mut PgConn(&mut *client))
    }

    /// Dropping the transaction on error rolls it back.
    fn write<T>(
        &self,
        work: impl FnOnce(&mut dyn sql::Conn) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(map_error)?;
        let value = work(&mut PgConn(&mut tx))?;
        tx.commit().map_err(map_error)?;
        Ok(value)
    }

    /// A single statement is atomic on its own: no `BEGIN`/`COMMIT` round trips.
    fn execute_one(&self, sql: &Sql<'_>) -> StorageResult<u64> {
        sql::Conn::execute(&mut PgConn(&mut *self.client()?), sql)
    }

    fn describe(&self) -> String {
        self.location.clone()
    }

    /// Nothing is closed: a pooled connection's socket is shared with the parent, and closing it
    /// (or ending its session) would end the parent's. The inherited pool and change feed are
    /// leaked with the instance: their threads do not exist in the child; without threads, the
    /// idle list, the feed's connection and their runtimes are simply never touched again.
    fn release_after_fork(&self, _at_rest: bool) -> StorageResult<()> {
        Ok(())
    }

    fn change_marker(&self) -> StorageResult<u64> {
        Ok(match &self.changes {
            Feed::Thread(feed) => feed.marker(),
            Feed::Polled(feed) => feed.marker(),
        })
    }

    fn missing_privileges(&self) -> StorageResult<Vec<String>> {
        let mut client = self.client()?;
        let mut missing = Vec::new();
        let schema_usage: bool = client
            .query_one(
                "SELECT has_schema_privilege(current_user, current_schema(), 'USAGE')",
                &[],
            )
            .map_err(map_error)?
            .get(0);
        if !schema_usage {
            missing.push("USAGE on the schema".to_string());
        }
        for (table, privileges) in migrations::POSTGRES_APP_PRIVILEGES {
            for privilege in *privileges {
                let held: bool = client
                    .query_one(
                        "SELECT has_table_privilege(current_user, $1, $2)",
                        &[table, privilege],
                    )
                    .map_err(map_error)?
                    .get(0);
                if !held {
                    missing.push(format!("{privilege} on {table}"));
                }
            }
        }
        Ok(missing)
    }
}

/// Lets the dialect-neutral migration runner drive one PostgreSQL connection.
struct PostgresMigrator<'a>(&'a mut Client);

impl MigrationTarget for PostgresMigrator<'_> {
    fn begin(&mut self) -> StorageResult<()> {
        // The advisory lock is released with the transaction, whatever happens to it; other
        // migrators of this database wait here (up to `lock_timeout`) and then find nothing to
        // do. A long migration must not be cut off by `statement_timeout`.
        self.0
            .batch_execute(&format!(
                "BEGIN; SET LOCAL statement_timeout = 0; \
                 SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY});"
            ))
            .map_err(map_error)
    }
    fn commit(&mut self) -> StorageResult<()> {
        self.0.batch_execute("COMMIT").map_err(map_error)
    }
    fn rollback(&mut self) -> StorageResult<()> {
        self.0.batch_execute("ROLLBACK").map_err(map_error)
    }
    fn execute_batch(&mut self, sql: &str) -> StorageResult<()> {
        self.0.batch_execute(sql).map_err(map_error)
    }
    fn current_version(&mut self) -> StorageResult<i64> {
        let row = self
            .0
            .query_typed_one(
                "SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations",
                &[],
            )
            .map_err(map_error)?;
        sql::Row::i64(&PgRow(&row), 0)
    }
    fn record_version(&mut self, version: i64) -> StorageResult<()> {
        self.0
            .execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())",
                &[&version],
            )
            .map(|_| ())
            .map_err(map_error)
    }
}

/// Test support for the unit tests: a fresh database per store on the server named by
/// `SQLHSM_TEST_PG`. Not part of the shipped library.
#[cfg(test)]
pub mod testing;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::testing::{test_database, with_database};
    use super::*;

    /// A fresh database and a store on it; returns from the calling test when the server is
    /// unreachable (outside CI).
    macro_rules! store {
        () => {
            store!(|settings| settings)
        };
        ($adjust:expr) => {
            store!($adjust, Threads::Allowed)
        };
        ($adjust:expr, $threads:expr) => {{
            let Some(db) = test_database() else {
                return;
            };
            let adjust: fn(DatabaseConfig) -> DatabaseConfig = $adjust;
            let storage = PostgresStorage::open_with(&adjust(db.settings()), $threads).unwrap();
            (db, storage)
        }};
    }

    /// The same contract, kept by the store that runs no thread of its own.
    mod contract_without_threads {
        use super::*;
        crate::storage_contract_tests!({
            let (db, storage) = store!(|settings| settings, Threads::Forbidden);
            (db, Arc::new(storage))
        });
    }

    mod contract {
        use super::*;
        crate::storage_contract_tests!({
            let (db, storage) = store!();
            (db, Arc::new(storage))
        });
    }

    /// A trigger that fails every `key_event` insert of `token`: the event cannot be written,
    /// as with a full disk or a revoked grant.
    fn refuse_events(storage: &PostgresStorage, token: Uuid) {
        let name = format!("refuse_events_{}", token.simple());
        storage
            .client()
            .unwrap()
            .batch_execute(&format!(
                "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'no history'; END $$; \
                 CREATE TRIGGER {name} BEFORE INSERT ON key_event FOR EACH ROW \
                 WHEN (NEW.provider_config_id = '{token}') EXECUTE FUNCTION {name}();"
            ))
            .unwrap();
    }

    #[test]
    fn refused_events_write_nothing() {
        let (_db, storage) = store!();
        let storage = Arc::new(storage);
        let faulty = storage.clone();
        crate::storage::contract::refused_events_write_nothing(storage, &move |token| {
            refuse_events(&faulty, token)
        });
    }

    fn count_versions(storage: &PostgresStorage) -> i64 {
        storage
            .client()
            .unwrap()
            .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
            .unwrap()
            .get(0)
    }

    #[test]
    fn open_applies_the_current_schema_once() {
        let (db, storage) = store!();
        assert_eq!(
            count_versions(&storage),
            migrations::latest_version(Dialect::Postgres)
        );
        drop(storage);
        let again = PostgresStorage::open(&db.settings()).unwrap();
        assert_eq!(
            count_versions(&again),
            migrations::latest_version(Dialect::Postgres)
        );
        let mut client = again.client().unwrap();
        assert_eq!(
            migrations::run(&mut PostgresMigrator(&mut client), Dialect::Postgres).unwrap(),
            0
        );
    }

    /// Several processes starting at once race to migrate the same fresh database; the advisory
    /// lock makes them take turns.
    #[test]
    fn concurrent_first_opens_all_succeed() {
        let Some(db) = test_database() else {
            return;
        };
        let settings = db.settings();
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let settings = settings.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    PostgresStorage::open(&settings).map(|_| ())
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap().unwrap();
        }
        let storage = PostgresStorage::open(&settings).unwrap();
        assert_eq!(
            count_versions(&storage),
            migrations::latest_version(Dialect::Postgres)
        );
    }

    /// Several stores on one database stand for several processes: the row lock, not a lock in
    /// this process, keeps the failed-login counter exact.
    /// The grants the README gives an application role suffice once the schema exists: no
    /// CREATE privilege is needed to open, read and write. The history is append-only for it
    /// (`SELECT, INSERT` on `key_event`), and without `INSERT` there no key can be stored: a
    /// key never enters the store without its creation event.
    #[test]
    fn an_application_role_without_create_can_use_a_migrated_store() {
        let (db, storage) = store!();
        let role = format!("sqlhsm_app_{}", Uuid::new_v4().simple());
        let mut admin = storage.client().unwrap();
        admin
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN;
                 REVOKE CREATE ON SCHEMA public FROM PUBLIC;
                 GRANT USAGE ON SCHEMA public TO {role};
                 GRANT SELECT, INSERT, UPDATE, DELETE ON provider_config, asym_key, sym_key, p11_object TO {role};
                 GRANT SELECT, INSERT ON key_event TO {role};
                 GRANT SELECT ON schema_migrations TO {role};"
            ))
            .unwrap();
        let url = db.url.replacen("postgres@", &format!("{role}@"), 1);
        let app = PostgresStorage::open(&DatabaseConfig::with_url(url)).unwrap();
        assert!(app.list_tokens().unwrap().is_empty());
        let at = Utc::now();
        let token = Uuid::new_v4();
        app.insert_token(&TokenRow {
            id: token,
            provider_name: "app".into(),
            config: serde_json::json!({ "slot": 1 }),
            metadata: serde_json::json!({}),
            created_at: at,
            updated_at: at,
        })
        .unwrap();
        assert_eq!(app.missing_privileges().unwrap(), Vec::<String>::new());
        assert_eq!(
            storage.missing_privileges().unwrap(),
            Vec::<String>::new(),
            "the owner"
        );
        let key = |key_id: &str| SymKeyRow {
            id: Uuid::new_v4(),
            provider_config_id: token,
            key_id: key_id.into(),
            key_status: crate::key_state::KeyStatus::Active,
            key_mode: 0,
            expiration: None,
            key_value: Some(vec![1, 2, 3]),
            metadata: serde_json::json!({}),
            created_at: at,
            updated_at: at,
        };
        let created = |key_id: &str| KeyEvent {
            id: Uuid::new_v4(),
            key_id: key_id.into(),
            provider_config_id: token,
            event: "generated".into(),
            actor: "app".into(),
            old_value: None,
            new_value: None,
            at,
        };
        let stored = key("stored");
        app.insert_key(NewKeyRow::Sym(&stored), &created("stored"))
            .unwrap();
        assert_eq!(app.key_events("stored").unwrap().len(), 1);
        // Without key_event the role cannot keep history: named by the check, and the refusal
        // is an access error, not an outage.
        admin
            .batch_execute(&format!("REVOKE INSERT ON key_event FROM {role}"))
            .unwrap();
        assert_eq!(
            app.missing_privileges().unwrap(),
            vec!["INSERT on key_event"]
        );
        let refused = key("refused");
        match app.insert_key(NewKeyRow::Sym(&refused), &created("refused")) {
            Err(StorageError::Access(message)) => {
                assert!(
                    message.contains("42501") && message.contains("key_event"),
                    "{message}"
                )
            }
            other => panic!("expected Access, got {other:?}"),
        }
        assert_eq!(app.get_key(KeyTable::Sym, refused.id).unwrap(), None);
        drop(app);
        admin
            .batch_execute(&format!(
                "REVOKE ALL ON provider_config, asym_key, sym_key, p11_object, key_event, schema_migrations FROM {role};
                 REVOKE USAGE ON SCHEMA public FROM {role};
                 DROP ROLE {role};"
            ))
            .unwrap();
    }

    /// A commit by another store (process, host) reaches this store's change marker through
    /// LISTEN/NOTIFY, without a query per check.
    #[test]
    fn another_stores_commit_moves_the_change_marker() {
        let (db, storage) = store!();
        let other = PostgresStorage::open(&db.settings()).unwrap();
        // Wait until the listener is connected (it counts its first connection as a change).
        let start = Instant::now();
        while storage.change_marker().unwrap() == 0 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let before = storage.change_marker().unwrap();
        let at = Utc::now();
        other
            .insert_token(&TokenRow {
                id: Uuid::new_v4(),
                provider_name: "noticed".into(),
                config: serde_json::json!({ "slot": 77 }),
                metadata: serde_json::json!({}),
                created_at: at,
                updated_at: at,
            })
            .unwrap();
        let start = Instant::now();
        while storage.change_marker().unwrap() == before {
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "no notification within 2 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        eprintln!("change feed: notification after {:?}", start.elapsed());
    }

    #[test]
    fn config_updates_are_exact_across_stores() {
        const STORES: usize = 4;
        const ROUNDS: u64 = 25;
        let (db, first) = store!();
        let now = Utc::now();
        let token = TokenRow {
            id: Uuid::new_v4(),
            provider_name: "shared".into(),
            config: serde_json::json!({ "slot": 1, "failures": 0 }),
            metadata: serde_json::json!({}),
            created_at: now,
            updated_at: now,
        };
        first.insert_token(&token).unwrap();
        let handles: Vec<_> = (0..STORES)
            .map(|_| {
                let store = PostgresStorage::open(&db.settings()).unwrap();
                std::thread::spawn(move || {
                    for _ in 0..ROUNDS {
                        store
                            .update_token_config(token.id, &mut |config: &mut Value| {
                                let n = config["failures"].as_u64().unwrap();
                                config["failures"] = serde_json::json!(n + 1);
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
        let stored = first.get_token(token.id).unwrap().unwrap();
        assert_eq!(
            stored.config["failures"],
            serde_json::json!(STORES as u64 * ROUNDS)
        );
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let (db, storage) = store!();
        storage
            .client()
            .unwrap()
            .execute("INSERT INTO schema_migrations (version) VALUES (9999)", &[])
            .unwrap();
        drop(storage);
        match PostgresStorage::open(&db.settings()) {
            Err(StorageError::SchemaTooNew { found: 9999, .. }) => {}
            Err(other) => panic!("expected SchemaTooNew, got {other:?}"),
            Ok(_) => panic!("expected SchemaTooNew, got a store"),
        }
    }

    #[test]
    fn sessions_carry_the_timeouts() {
        for threads in [Threads::Allowed, Threads::Forbidden] {
            let (_db, storage) = store!(
                |settings| DatabaseConfig {
                    statement_timeout_ms: 1234,
                    busy_timeout_ms: 567,
                    ..settings
                },
                threads
            );
            let mut client = storage.client().unwrap();
            let mut show = |what: &str| -> String {
                client
                    .query_one(&format!("SHOW {what}"), &[])
                    .unwrap()
                    .get(0)
            };
            assert_eq!(show("statement_timeout"), "1234ms", "{threads:?}");
            assert_eq!(show("lock_timeout"), "567ms", "{threads:?}");
            assert_eq!(show("application_name"), "sqlhsm", "{threads:?}");
        }
    }

    #[test]
    fn a_long_statement_is_cut_off_as_busy() {
        let (_db, storage) = store!(|settings| DatabaseConfig {
            statement_timeout_ms: 200,
            ..settings
        });
        let started = Instant::now();
        let error = storage
            .client()
            .unwrap()
            .batch_execute("SELECT pg_sleep(5)")
            .unwrap_err();
        assert!(matches!(map_error(error), StorageError::Busy(_)));
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn a_locked_token_is_busy_after_the_busy_timeout() {
        let (db, storage) = store!(|settings| DatabaseConfig {
            busy_timeout_ms: 100,
            ..settings
        });
        let now = Utc::now();
        let token = TokenRow {
            id: Uuid::new_v4(),
            provider_name: "locked".into(),
            config: serde_json::json!({ "slot": 1 }),
            metadata: serde_json::json!({}),
            created_at: now,
            updated_at: now,
        };
        storage.insert_token(&token).unwrap();
        let mut blocker: Client = db
            .url
            .parse::<::postgres::Config>()
            .unwrap()
            .connect(::postgres::NoTls)
            .unwrap();
        let mut tx = blocker.transaction().unwrap();
        tx.execute(
            "SELECT 1 FROM provider_config WHERE id = $1 FOR UPDATE",
            &[&token.id],
        )
        .unwrap();
        let result = storage.update_token_config(token.id, &mut |_: &mut Value| Ok(()));
        assert!(matches!(result, Err(StorageError::Busy(_))), "{result:?}");
        tx.rollback().unwrap();
        storage
            .update_token_config(token.id, &mut |_: &mut Value| Ok(()))
            .unwrap()
            .unwrap();
    }

    #[test]
    fn an_exhausted_pool_is_busy() {
        for threads in [Threads::Allowed, Threads::Forbidden] {
            let (_db, storage) = store!(
                |settings| DatabaseConfig {
                    pool_size: 1,
                    busy_timeout_ms: 100,
                    connect_timeout_ms: 100,
                    ..settings
                },
                threads
            );
            let held = storage.client().unwrap();
            let result = storage.list_tokens();
            assert!(
                matches!(&result, Err(StorageError::Busy(m)) if m.contains("all 1 connections")),
                "{threads:?}: {result:?}"
            );
            drop(held);
            storage.list_tokens().unwrap();
        }
    }

    /// Without threads the pool holds at most `pool_size` connections, all opened by callers,
    /// and a caller waiting for one gets the first one returned.
    #[test]
    fn without_threads_the_pool_is_bounded_and_shared() {
        let (db, storage) = store!(
            |settings| DatabaseConfig {
                pool_size: 2,
                busy_timeout_ms: 5000,
                ..settings
            },
            Threads::Forbidden
        );
        let sessions = |db: &super::testing::TestDatabase| -> i64 {
            let mut client = db
                .url
                .parse::<::postgres::Config>()
                .unwrap()
                .connect(::postgres::NoTls)
                .unwrap();
            client
                .query_one(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND application_name = 'sqlhsm'",
                    &[],
                )
                .unwrap()
                .get(0)
        };
        let storage = Arc::new(storage);
        let first = storage.client().unwrap();
        let second = storage.client().unwrap();
        // Two pooled and the feed's.
        assert_eq!(sessions(&db), 3);
        let waiting = {
            let storage = storage.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                storage.list_tokens().unwrap();
                started.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        drop(first);
        let waited = waiting.join().unwrap();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        drop(second);
        assert_eq!(sessions(&db), 3, "no connection beyond pool_size + 1");
    }

    /// Without threads: the server ends every session of the store (a restart, an
    /// administrator). The change feed notices at its next look and reconnects over the
    /// following ones, counting the loss and the gap as changes; the pool replaces its broken
    /// connection.
    #[test]
    fn without_threads_broken_connections_are_replaced() {
        let (db, storage) = store!(|settings| settings, Threads::Forbidden);
        storage.list_tokens().unwrap();
        let before = storage.change_marker().unwrap();
        let mut admin = db
            .url
            .parse::<::postgres::Config>()
            .unwrap()
            .connect(::postgres::NoTls)
            .unwrap();
        let ended: i64 = admin
            .query_one(
                "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(ended, 2, "the pooled connection and the feed's");
        let started = Instant::now();
        let mut looks = 0;
        while storage.change_marker().unwrap() < before + 2 {
            looks += 1;
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the feed did not reconnect ({looks} looks)"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "change feed: lost and back after {:?}, {looks} looks",
            started.elapsed()
        );
        // A connection idle past the check is checked and replaced: the call succeeds.
        std::thread::sleep(caller_pool::VALIDATE_IDLE + Duration::from_millis(100));
        storage.list_tokens().unwrap();
        // The feed listens again: another store's commit is heard.
        let marker = storage.change_marker().unwrap();
        let other = PostgresStorage::open(&db.settings()).unwrap();
        insert_noticed(&other, "after-reconnect", 78);
        wait_for_marker_change(&storage, marker);
    }

    fn insert_noticed(storage: &PostgresStorage, name: &str, slot: u64) {
        let at = Utc::now();
        storage
            .insert_token(&TokenRow {
                id: Uuid::new_v4(),
                provider_name: name.into(),
                config: serde_json::json!({ "slot": slot }),
                metadata: serde_json::json!({}),
                created_at: at,
                updated_at: at,
            })
            .unwrap();
    }

    /// Looks at the marker until it moves from `before` (at most 2 s).
    fn wait_for_marker_change(storage: &PostgresStorage, before: u64) -> Duration {
        let start = Instant::now();
        while storage.change_marker().unwrap() == before {
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "no notification within 2 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        start.elapsed()
    }

    /// Without threads the feed is read by the look itself: a commit by another store moves
    /// the marker at the first look after its notification arrived, and looks without a
    /// change leave it alone.
    #[test]
    fn without_threads_another_stores_commit_moves_the_change_marker() {
        let (db, storage) = store!(|settings| settings, Threads::Forbidden);
        let other = PostgresStorage::open(&db.settings()).unwrap();
        let before = storage.change_marker().unwrap();
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(20));
            assert_eq!(storage.change_marker().unwrap(), before, "nothing changed");
        }
        insert_noticed(&other, "noticed", 77);
        let after = wait_for_marker_change(&storage, before);
        eprintln!("polled change feed: notification after {after:?}");
        // The store's own writes are heard too (the marker may move after them).
        let marker = storage.change_marker().unwrap();
        insert_noticed(&storage, "own", 79);
        wait_for_marker_change(&storage, marker);
    }

    #[test]
    fn a_closed_port_fails_fast_as_backend() {
        let settings = DatabaseConfig {
            connect_timeout_ms: 500,
            ..DatabaseConfig::with_url("postgres://postgres:pw@127.0.0.1:1/test")
        };
        for threads in [Threads::Allowed, Threads::Forbidden] {
            let started = Instant::now();
            match PostgresStorage::open_with(&settings, threads) {
                Err(StorageError::Backend(message)) => {
                    assert!(message.contains("127.0.0.1:1"), "{message}");
                    assert!(!message.contains("pw"), "{message}");
                }
                Err(other) => panic!("expected Backend, got {other:?}"),
                Ok(_) => panic!("connected to a closed port"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{threads:?}: {:?}",
                started.elapsed()
            );
        }
    }

    /// A non-routable address: the connect timeout, not the kernel's, ends the attempt.
    #[test]
    fn an_unanswering_host_times_out() {
        let settings = DatabaseConfig {
            connect_timeout_ms: 300,
            ..DatabaseConfig::with_url("postgres://postgres@10.255.255.1:5432/test")
        };
        for threads in [Threads::Allowed, Threads::Forbidden] {
            let started = Instant::now();
            assert!(matches!(
                PostgresStorage::open_with(&settings, threads),
                Err(StorageError::Backend(_))
            ));
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{threads:?}: {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn describe_hides_the_password() {
        let mut config: tokio_postgres::Config =
            "postgres://hsm:s3cret@db.example:6543/keys?sslmode=require"
                .parse()
                .unwrap();
        apply_settings(&mut config, &DatabaseConfig::default()).unwrap();
        assert_eq!(
            describe_config(&config),
            "postgres://hsm@db.example:6543/keys"
        );
        let config: tokio_postgres::Config = "postgresql://hsm@db".parse().unwrap();
        assert_eq!(describe_config(&config), "postgres://hsm@db:5432/hsm");

        // The same through a real store, when there is a server.
        let Some(db) = test_database() else {
            return;
        };
        let with_password = format!("{}?password=never-shown", db.url.split('?').next().unwrap());
        let storage = PostgresStorage::open(&DatabaseConfig::with_url(with_password)).unwrap();
        assert!(
            !storage.describe().contains("never-shown"),
            "{}",
            storage.describe()
        );
        assert!(storage.describe().starts_with("postgres://"));
    }

    #[test]
    fn tls_follows_sslmode() {
        let Some(db) = test_database() else {
            return;
        };
        for mode in ["disable", "prefer", "require"] {
            let url = format!("{}?sslmode={mode}", db.url);
            let storage = match PostgresStorage::open(&DatabaseConfig::with_url(url)) {
                Ok(storage) => storage,
                // A server without TLS refuses `require`; that is the point of `require`.
                Err(StorageError::Backend(message)) if mode == "require" => {
                    eprintln!("server without TLS: {message}");
                    continue;
                }
                Err(other) => panic!("sslmode={mode}: {other:?}"),
            };
            let ssl: bool = storage
                .client()
                .unwrap()
                .query_one(
                    "SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
                    &[],
                )
                .unwrap()
                .get(0);
            if mode == "disable" {
                assert!(!ssl);
            }
            if mode == "require" {
                assert!(ssl);
            }
        }
        let url = format!("{}?sslmode=verify-full", db.url);
        assert!(matches!(
            PostgresStorage::open(&DatabaseConfig::with_url(url)),
            Err(StorageError::Backend(_))
        ));
    }

    #[test]
    fn password_env_is_used_and_must_exist() {
        let mut config: tokio_postgres::Config = "postgres://hsm@db/keys".parse().unwrap();
        let settings = DatabaseConfig {
            password_env: Some("SQLHSM_TEST_PG_PASSWORD_SURELY_UNSET".into()),
            ..DatabaseConfig::default()
        };
        assert!(matches!(
            apply_settings(&mut config, &settings),
            Err(StorageError::Backend(message)) if message.contains("SURELY_UNSET")
        ));
        // `PATH` is always set: it stands in for a password variable.
        let settings = DatabaseConfig {
            password_env: Some("PATH".into()),
            ..DatabaseConfig::default()
        };
        apply_settings(&mut config, &settings).unwrap();
        let path = std::env::var("PATH").unwrap();
        assert_eq!(config.get_password(), Some(path.as_bytes()));
        // A password in the URL wins.
        let mut config: tokio_postgres::Config = "postgres://hsm:given@db/keys".parse().unwrap();
        apply_settings(&mut config, &settings).unwrap();
        assert_eq!(config.get_password(), Some(&b"given"[..]));
    }

    #[test]
    fn options_from_the_url_are_kept() {
        let mut config: tokio_postgres::Config =
            "postgres://hsm@db/keys?options=-c%20search_path%3Dhsm"
                .parse()
                .unwrap();
        apply_settings(&mut config, &DatabaseConfig::default()).unwrap();
        assert_eq!(
            config.get_options(),
            Some("-c search_path=hsm -c statement_timeout=10000 -c lock_timeout=5000")
        );
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let text = "\
# comment:with:five:colons:here
db.example:5432:keys:hsm:first
db.example:5432:keys:hsm:second
*:*:*:admin:wild\\:card\\\\
localhost:6543:*:hsm:local
short:line
host\\:v6:5432:keys:hsm:escaped-host
db.example:5432:keys:empty:
other:5432:keys:hsm:pass:trailing-field
";
        let lookup = |host, port, db, user| pgpass_lookup(text, host, port, db, user);
        assert_eq!(
            lookup("db.example", 5432, "keys", "hsm").as_deref(),
            Some("first")
        );
        assert_eq!(
            lookup("any", 1, "thing", "admin").as_deref(),
            Some("wild:card\\")
        );
        assert_eq!(
            lookup("localhost", 6543, "x", "hsm").as_deref(),
            Some("local")
        );
        assert_eq!(lookup("localhost", 5432, "x", "hsm"), None);
        assert_eq!(
            lookup("host:v6", 5432, "keys", "hsm").as_deref(),
            Some("escaped-host")
        );
        assert_eq!(
            lookup("db.example", 5432, "keys", "empty").as_deref(),
            Some("")
        );
        assert_eq!(
            lookup("other", 5432, "keys", "hsm").as_deref(),
            Some("pass")
        );
        assert_eq!(lookup("short", 5432, "line", "x"), None);
        assert_eq!(
            lookup("DB.EXAMPLE", 5432, "keys", "hsm"),
            None,
            "case matters"
        );
        // A literal `\*` is not a wildcard.
        assert_eq!(pgpass_lookup("\\*:*:*:*:pw", "h", 1, "d", "u"), None);
        assert_eq!(
            pgpass_lookup("\\*:*:*:*:pw\r\n", "*", 1, "d", "u").as_deref(),
            Some("pw")
        );
    }

    #[test]
    fn pgpass_key_defaults_like_libpq() {
        let config: tokio_postgres::Config = "postgres://hsm@db.example/keys".parse().unwrap();
        assert_eq!(
            pgpass_key(&config),
            ("db.example".into(), 5432, "keys".into(), "hsm".into())
        );
        let config: tokio_postgres::Config =
            "host=/run/postgresql user=hsm port=6000".parse().unwrap();
        assert_eq!(
            pgpass_key(&config),
            ("localhost".into(), 6000, "hsm".into(), "hsm".into())
        );
    }

    #[cfg(unix)]
    #[test]
    fn pgpass_files_readable_by_others_are_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "*:*:*:*:pw\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read_pgpass(&path), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_pgpass(&path).as_deref(), Some("*:*:*:*:pw\n"));
        assert_eq!(read_pgpass(dir.path()), None, "a directory");
        assert_eq!(read_pgpass(&dir.path().join("missing")), None);
    }

    #[test]
    fn corrupt_rows_are_reported_as_corrupt() {
        let (_db, storage) = store!();
        let id = Uuid::new_v4();
        {
            let mut client = storage.client().unwrap();
            // A column of the wrong type, as a foreign schema change would leave it.
            client
                .batch_execute(
                    "ALTER TABLE provider_config ALTER COLUMN metadata TYPE TEXT USING metadata::text",
                )
                .unwrap();
            client
                .execute(
                    "INSERT INTO provider_config VALUES ($1, 't', '{}', '{}', now(), now())",
                    &[&id],
                )
                .unwrap();
        }
        let result = storage.get_token(id);
        assert!(
            matches!(result, Err(StorageError::Corrupt(_))),
            "{result:?}"
        );
    }

    #[test]
    fn slot_numbers_are_unique() {
        let (_db, storage) = store!();
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

    /// A find by label, `CKA_ID` or algorithm must be able to use its index.
    #[test]
    fn finds_use_the_metadata_indexes() {
        let (_db, storage) = store!();
        let mut client = storage.client().unwrap();
        // On empty tables a scan is cheapest; forbid it to see whether the index applies at all.
        client.batch_execute("SET enable_seqscan = off").unwrap();
        let token = Uuid::new_v4();
        let cases = [
            (
                KeyTable::Asym,
                KeyFilter {
                    label: Some("l".into()),
                    ..filter(token)
                },
                "asym_key_label_idx",
            ),
            (
                KeyTable::Asym,
                KeyFilter {
                    ck_id: Some("0102".into()),
                    ..filter(token)
                },
                "asym_key_ck_id_idx",
            ),
            (
                KeyTable::Asym,
                KeyFilter {
                    key_algorithms: Some(vec![1, 3]),
                    ..filter(token)
                },
                "asym_key_algorithm_idx",
            ),
            (
                KeyTable::Sym,
                KeyFilter {
                    label: Some("l".into()),
                    ..filter(token)
                },
                "sym_key_label_idx",
            ),
            (
                KeyTable::Sym,
                KeyFilter {
                    ck_id: Some("0102".into()),
                    ..filter(token)
                },
                "sym_key_ck_id_idx",
            ),
        ];
        let mut plan_of = |sql: &Sql<'_>| -> String {
            let binds: Vec<_> = sql.params().iter().map(bind).collect();
            let plan: Vec<String> = client
                .query_typed(&format!("EXPLAIN {}", sql.text()), &binds)
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .collect();
            plan.join("\n")
        };
        for (table, filter, index) in cases {
            let sql = sql::find_keys_sql(&POSTGRES, table, &filter).unwrap();
            let plan = plan_of(&sql);
            assert!(plan.contains(index), "{table:?} {filter:?}: {plan}");
        }
        // The search over every table: each branch on its own table's label index.
        let search = Search {
            filter: KeyFilter {
                label: Some("l".into()),
                ..filter(token)
            },
            asym: true,
            sym: true,
            objects: true,
            object_class: None,
        };
        let plan = plan_of(&sql::search_sql(&POSTGRES, &search).unwrap());
        for index in [
            "asym_key_label_idx",
            "sym_key_label_idx",
            "p11_object_label_idx",
        ] {
            assert!(plan.contains(index), "search: {plan}");
        }
        client.batch_execute("RESET enable_seqscan").unwrap();
    }

    fn filter(token: Uuid) -> KeyFilter {
        KeyFilter {
            provider_config_id: token,
            ..KeyFilter::default()
        }
    }

    #[test]
    fn the_index_expressions_match_the_migration() {
        let sql = migrations::migrations(Dialect::Postgres)[0].sql;
        use sql::Dialect as _;
        assert!(sql.contains(&format!("({})", POSTGRES.json_text("metadata", "label"))));
        assert!(sql.contains(&format!("({})", POSTGRES.json_text("metadata", "id"))));
    }

    #[test]
    fn test_urls_get_their_own_database() {
        assert_eq!(
            with_database("postgres://u@h:1/test?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgresql://u@h", "x"), "postgresql://u@h/x");
    }
}

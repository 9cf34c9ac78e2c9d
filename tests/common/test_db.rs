//! A fresh store per test ([`TestDb`]): the configuration file and the SQLite file or
//! PostgreSQL database behind it, and reads made behind the module's back.

use std::path::{Path, PathBuf};

use super::{announce, test_pg_url, Backend, PgDatabase, ENV_TEST_BACKEND, MAX_PIN_FAILURES};

/// How a [`TestDb`] is configured. `Default` gives what [`TestDb::new`] uses.
#[derive(Clone, Debug)]
pub struct TestDbOptions {
    /// Default: `SQLHSM_TEST_BACKEND`.
    pub backend: Backend,
    /// Where PostgreSQL test databases are created from. Default: `SQLHSM_TEST_PG`, else
    /// [`DEFAULT_TEST_PG`].
    pub pg_base_url: String,
    /// `[security] max_pin_failures`. Default [`MAX_PIN_FAILURES`].
    pub max_pin_failures: usize,
    /// `[security] pin_kdf_log_n`. Default 10 (fast: tests log in often).
    pub pin_kdf_log_n: u32,
    /// `[database] busy_timeout_ms`. Default 10000.
    pub busy_timeout_ms: u64,
    /// More lines for the `[database]` table (`connect_timeout_ms = 1000`, …).
    pub database_toml: String,
    /// More tables appended to the file (`[cache]\ncoherence_ms = 1000\n`).
    pub extra_toml: String,
}

impl Default for TestDbOptions {
    fn default() -> Self {
        TestDbOptions {
            backend: Backend::from_env(),
            pg_base_url: test_pg_url(),
            max_pin_failures: MAX_PIN_FAILURES,
            pin_kdf_log_n: 10,
            busy_timeout_ms: 10_000,
            database_toml: String::new(),
            extra_toml: String::new(),
        }
    }
}

/// A fresh store for a test: a directory under cargo's per-target temp dir holding the config
/// file and, on SQLite, the database file; on PostgreSQL a fresh database ([`PgDatabase`]).
pub struct TestDb {
    pub dir: PathBuf,
    /// The SQLite file (on PostgreSQL: where it would be; it is never created).
    pub db: PathBuf,
    pub conf: PathBuf,
    pub backend: Backend,
    /// The PostgreSQL database, when `backend` is [`Backend::Postgres`].
    pub pg: Option<PgDatabase>,
}

impl TestDb {
    /// A fresh store on the backend `SQLHSM_TEST_BACKEND` names, with the test configuration.
    ///
    /// When a PostgreSQL database cannot be created and `CI` is unset, this prints
    /// `skipped: PostgreSQL unreachable: <why>` and ends the test process successfully: every
    /// test of a process runs on the same backend, so none of them could run.
    pub fn new(name: &str) -> TestDb {
        TestDb::with_options(name, TestDbOptions::default())
    }

    /// [`TestDb::new`] with other settings.
    pub fn with_options(name: &str, options: TestDbOptions) -> TestDb {
        match TestDb::try_with_options(name, options) {
            Ok(db) => db,
            Err(why) => {
                if std::env::var_os("CI").is_some() {
                    panic!(
                        "PostgreSQL unreachable: {why} (CI is set, so this is a failure, not a skip)"
                    );
                }
                // On stderr and stdout, past libtest's capture: the process ends here.
                let line = format!("skipped: PostgreSQL unreachable: {why}");
                announce(&line);
                use std::io::Write;
                let mut out = std::io::stdout();
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
                std::process::exit(0);
            }
        }
    }

    /// Like [`TestDb::with_options`], but returns why a PostgreSQL database could not be made.
    pub fn try_with_options(name: &str, options: TestDbOptions) -> Result<TestDb, String> {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(base).expect("create CARGO_TARGET_TMPDIR");
        let pg = match options.backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgDatabase::create(&options.pg_base_url).map_err(|e| {
                let shown = redact(&options.pg_base_url);
                format!("{shown}: {e}")
            })?),
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("sqlhsm-{name}-"))
            .tempdir_in(base)
            .expect("tempdir")
            .keep();
        let db = dir.join("sqlhsm.db");
        let conf = dir.join("sqlhsm.toml");
        let test_db = TestDb {
            dir,
            db,
            conf,
            backend: options.backend,
            pg,
        };
        std::fs::write(&test_db.conf, test_db.config_with(&options)).expect("write config");
        static SHOWN: std::sync::Once = std::sync::Once::new();
        SHOWN.call_once(|| {
            announce(&format!(
                "sqlhsm tests: backend {} ({}, process {})",
                test_db.backend.name(),
                redact(&test_db.url()),
                std::process::id()
            ))
        });
        Ok(test_db)
    }

    pub fn url(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => format!("sqlite:{}", self.db.display()),
        }
    }

    fn config_with(&self, o: &TestDbOptions) -> String {
        let pool = match self.backend {
            // Several test threads and re-executed processes share one server whose
            // max_connections is 100 by default.
            Backend::Postgres => "pool_size = 4\n",
            Backend::Sqlite => "",
        };
        format!(
            "[database]\nurl = \"{}\"\nbusy_timeout_ms = {}\n{pool}{}\n\n\
             [security]\nmax_pin_failures = {}\npin_kdf_log_n = {}\n\
             min_pin_len = 4\nmax_pin_len = 255\n\n[log]\nlevel = \"warn\"\n\n{}\n",
            self.url(),
            o.busy_timeout_ms,
            o.database_toml.trim_end(),
            o.max_pin_failures,
            o.pin_kdf_log_n,
            o.extra_toml
        )
    }

    /// Points the module at this database. Env vars are read at `C_Initialize`.
    pub fn set_env(&self) {
        std::env::set_var("SQLHSM_DB", self.url());
        std::env::set_var("SQLHSM_CONF", &self.conf);
        if std::env::var_os("SQLHSM_LOG").is_none() {
            std::env::set_var("SQLHSM_LOG", "warn");
        }
    }

    /// The same settings as environment pairs, for child processes.
    pub fn envs(&self) -> Vec<(String, String)> {
        vec![
            ("SQLHSM_DB".into(), self.url()),
            ("SQLHSM_CONF".into(), self.conf.display().to_string()),
            (ENV_TEST_BACKEND.into(), self.backend.name().into()),
        ]
    }

    /// Runs `sql` (one text column per row) on this store behind the module's back.
    pub fn query_texts(&self, sql: &str) -> Vec<String> {
        match &self.pg {
            Some(pg) => pg
                .client()
                .query(sql, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .iter()
                .map(|row| row.get::<_, Option<String>>(0).unwrap_or_default())
                .collect(),
            // In another process: a second SQLite library in this one (the test's, beside the
            // module's own) would share the module's POSIX locks on the file, and releasing
            // them would release the module's, letting another process delete the WAL under it.
            None => {
                let out = std::process::Command::new("sqlite3")
                    .args(["-json", "-cmd", ".timeout 10000"])
                    .arg(&self.db)
                    .arg(sql)
                    .output()
                    .expect("run sqlite3 (Debian package sqlite3)");
                assert!(
                    out.status.success(),
                    "sqlite3 {sql}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let text = String::from_utf8_lossy(&out.stdout);
                if text.trim().is_empty() {
                    return Vec::new();
                }
                let rows: Vec<serde_json::Map<String, serde_json::Value>> =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{sql}: {e}: {text}"));
                rows.into_iter()
                    .map(|row| match row.into_iter().next().map(|(_, v)| v) {
                        Some(serde_json::Value::String(s)) => s,
                        Some(serde_json::Value::Null) | None => String::new(),
                        Some(other) => other.to_string(),
                    })
                    .collect()
            }
        }
    }

    /// A token's consecutive wrong user PINs, read from its record in `provider_config`.
    pub fn user_failures(&self, token_label: &str) -> u64 {
        self.token_counter(token_label, "user_failures")
    }

    /// A number in a token's record in `provider_config` (`user_failures`, `so_failures`).
    pub fn token_counter(&self, token_label: &str, field: &str) -> u64 {
        let sql = match self.backend {
            Backend::Postgres => format!(
                "SELECT (config->>'{field}') FROM provider_config \
                 WHERE provider_name = '{token_label}'"
            ),
            Backend::Sqlite => format!(
                "SELECT CAST(json_extract(config, '$.{field}') AS TEXT) \
                 FROM provider_config WHERE provider_name = '{token_label}'"
            ),
        };
        let v = self.query_texts(&sql);
        assert_eq!(v.len(), 1, "one token record for {token_label}");
        v[0].parse()
            .unwrap_or_else(|_| panic!("{field} {:?}", v[0]))
    }
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(_)) => {
            let (userinfo, host) = rest.rsplit_once('@').unwrap_or(("", rest));
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The test configuration for the SQLite file `db`: a cheap scrypt cost so logins are fast, and
/// a low lockout count. ([`TestDb`] writes its own, for either backend.)
pub fn config_text(db: &Path) -> String {
    format!(
        "[database]\nurl = \"sqlite:{}\"\nbusy_timeout_ms = 10000\n\n\
         [security]\nmax_pin_failures = {MAX_PIN_FAILURES}\npin_kdf_log_n = 10\n\
         min_pin_len = 4\nmax_pin_len = 255\n\n[log]\nlevel = \"warn\"\n",
        db.display()
    )
}

//! Shared helpers for the end-to-end tests in `tests/`.
//!
//! Every test file is its own process, and a PKCS#11 module is process-global (one
//! `C_Initialize` per process), so each file shares ONE initialised [`Pkcs11`] ([`ctx`]) on a
//! fresh database, and each `#[test]` makes its own token ([`new_token`]) with a unique label.
//! The module is loaded the way users load it: the built `libsqlhsm.so`, through the C ABI.
#![allow(dead_code)]

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

pub const SO_PIN: &str = "so-pin-0000";
pub const USER_PIN: &str = "user-pin-1111";
/// `[security] max_pin_failures` in the test configuration (the default is 10).
pub const MAX_PIN_FAILURES: usize = 5;

/// sqlhsm's vendor attributes (`include/sqlhsm.h`, `src/vendor.rs`). Written out here rather
/// than taken from the `sqlhsm` rlib, so the tests link nothing of the module but the `.so`.
pub const CKA_SQLHSM_KEY_ID: u64 = 0x8000_0000 | 0x5351_0001;
pub const CKA_SQLHSM_KEY_STATUS: u64 = 0x8000_0000 | 0x5351_0002;
pub const CKA_SQLHSM_KEY_MODE: u64 = 0x8000_0000 | 0x5351_0003;
pub const CKA_SQLHSM_KEY_ALGORITHM: u64 = 0x8000_0000 | 0x5351_0004;

/// DER-encoded `CKA_EC_PARAMS` (namedCurve OIDs).
pub const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
pub const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
pub const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// The built module, found from the test executable (`target/<profile>/deps/<test>-<hash>`):
/// `target/<profile>/deps/libsqlhsm.so` (what `cargo test` just built: cargo builds the cdylib
/// there for tests but does not copy it up), else `target/<profile>/libsqlhsm.so` (what
/// `cargo build` leaves). `$SQLHSM_MODULE` overrides both.
pub fn module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("SQLHSM_MODULE") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut profile_dir = exe.parent().expect("exe dir").to_path_buf();
    if profile_dir.ends_with("deps") || profile_dir.ends_with("examples") {
        profile_dir.pop();
    }
    let candidates = [
        profile_dir.join("deps").join("libsqlhsm.so"),
        profile_dir.join("libsqlhsm.so"),
    ];
    for so in &candidates {
        if so.exists() {
            return so.clone();
        }
    }
    panic!(
        "libsqlhsm.so not found (looked at {candidates:?}): build the cdylib first (`cargo build`)"
    );
}

/// Environment variable choosing the backend of every integration test: `sqlite` (default) or
/// `postgres`.
pub const ENV_TEST_BACKEND: &str = "SQLHSM_TEST_BACKEND";
#[path = "../support/pg_test_url.rs"]
mod pg_test_url;
// Not every test file uses every name.
#[allow(unused_imports)]
pub use pg_test_url::{pg_url_with_database, test_pg_url, DEFAULT_TEST_PG, ENV_TEST_PG};

/// The storage backend a test process runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// From `SQLHSM_TEST_BACKEND`; unset or empty means SQLite. Anything unknown is an error,
    /// so a typo never quietly tests the wrong backend.
    pub fn from_env() -> Backend {
        match std::env::var(ENV_TEST_BACKEND)
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" | "pg" => Backend::Postgres,
            other => panic!("{ENV_TEST_BACKEND}={other:?}: expected `sqlite` or `postgres`"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Writes a line to the real stderr: `eprintln!` inside a `#[test]` is captured and only shown
/// when the test fails, but which backend ran and why a test was skipped must always be visible.
pub fn announce(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Connects to a PostgreSQL URL (tests only ever use `sslmode=disable`-style local servers).
pub fn pg_connect(url: &str) -> Result<postgres::Client, String> {
    let mut config: postgres::Config = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    config.connect_timeout(std::time::Duration::from_secs(5));
    config
        .connect(postgres::NoTls)
        .map_err(|e| match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        })
}

/// A PostgreSQL database made for one test (or one test process); dropped, with any remaining
/// connections forced out, when this value is dropped. The database behind the process-wide
/// [`ctx`] lives in a static and is never dropped, so creating a database also drops those left
/// behind by test processes of this machine that have exited (their pid is in the name).
pub struct PgDatabase {
    pub name: String,
    pub url: String,
    base_url: String,
}

impl PgDatabase {
    /// Creates `sqlhsm_it_<pid>_<n>_<random>` on the server of `base_url`.
    pub fn create(base_url: &str) -> Result<PgDatabase, String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let mut client = pg_connect(base_url)?;
        reap_dead_databases(&mut client);
        let rand: u32 = {
            let mut b = [0u8; 4];
            openssl::rand::rand_bytes(&mut b).expect("random bytes");
            u32::from_ne_bytes(b)
        };
        let name = format!(
            "sqlhsm_it_{}_{}_{rand:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        Ok(PgDatabase {
            url: pg_url_with_database(base_url, &name),
            name,
            base_url: base_url.to_string(),
        })
    }

    /// A new connection to this database (for checks made behind the module's back).
    pub fn client(&self) -> postgres::Client {
        pg_connect(&self.url).unwrap_or_else(|e| panic!("connect to {}: {e}", self.name))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Best effort: a database left behind is only untidy, and the next run reaps it.
        if let Ok(mut client) = pg_connect(&self.base_url) {
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            if let Err(e) = client.batch_execute(&sql) {
                announce(&format!("could not drop test database {}: {e}", self.name));
            }
        }
    }
}

/// Drops `sqlhsm_it_<pid>_…` databases whose process no longer runs. Only for a server on this
/// machine: a pid means nothing on another host.
fn reap_dead_databases(client: &mut postgres::Client) {
    let base = test_pg_url();
    if !(base.contains("@127.0.0.1") || base.contains("@localhost") || base.contains("@[::1]")) {
        return;
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(rows) = client.query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'sqlhsm\\_it\\_%'",
            &[],
        ) else {
            return;
        };
        for row in rows {
            let name: String = row.get(0);
            let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = client.batch_execute(&sql);
                }
            }
        }
    });
}

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

/// Loads the module without initialising it.
pub fn load() -> Pkcs11 {
    Pkcs11::new(module_path()).expect("load libsqlhsm.so")
}

/// Loads and initialises the module on `db`.
pub fn init(db: &TestDb) -> Pkcs11 {
    db.set_env();
    let p = load();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    p
}

struct Shared {
    pkcs11: Pkcs11,
    db: TestDb,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        let name = std::env::current_exe()
            .ok()
            .and_then(|e| e.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "test".into());
        let db = TestDb::new(name.split('-').next().unwrap_or("test"));
        let pkcs11 = init(&db);
        Shared { pkcs11, db }
    })
}

/// The process-wide initialised module, on a fresh database of this test file.
pub fn ctx() -> &'static Pkcs11 {
    &shared().pkcs11
}

/// The database behind [`ctx`].
pub fn ctx_db() -> &'static TestDb {
    &shared().db
}

/// The raw C function list of the same loaded module (`dlopen` returns the same handle), for
/// the calls `cryptoki` does not expose or hides (NULL pointers, two-call buffers,
/// `C_CloseAllSessions`).
pub fn raw() -> &'static cryptoki_sys::Pkcs11 {
    static RAW: OnceLock<cryptoki_sys::Pkcs11> = OnceLock::new();
    // SAFETY: loading the module under test; its initialisers are the module's own.
    RAW.get_or_init(|| unsafe { cryptoki_sys::Pkcs11::new(module_path()) }.expect("dlopen"))
}

pub fn pin(s: &str) -> AuthPin {
    AuthPin::from(s)
}

/// Serialises token creation: two tests must not both pick the same empty slot.
static TOKEN_LOCK: Mutex<()> = Mutex::new(());

/// The slot holding the uninitialised token (`CKF_TOKEN_PRESENT`, not `CKF_TOKEN_INITIALIZED`).
pub fn empty_slot(p: &Pkcs11) -> Slot {
    let slots = p.get_slots_with_token().expect("C_GetSlotList");
    let empty: Vec<Slot> = slots
        .into_iter()
        .filter(|s| {
            !p.get_token_info(*s)
                .expect("C_GetTokenInfo")
                .token_initialized()
        })
        .collect();
    assert_eq!(
        empty.len(),
        1,
        "exactly one slot holds an uninitialised token"
    );
    empty[0]
}

/// The slot whose token carries `label`.
pub fn slot_by_label(p: &Pkcs11, label: &str) -> Option<Slot> {
    p.get_slots_with_token()
        .expect("C_GetSlotList")
        .into_iter()
        .find(|s| {
            p.get_token_info(*s)
                .map(|t| t.label() == label)
                .unwrap_or(false)
        })
}

/// Initialises a new token `label` (SO PIN [`SO_PIN`]) on the empty slot, without a user PIN.
/// Another process (the admin command in some tests) may take the empty slot between
/// `C_GetSlotList` and `C_InitToken`; the module then refuses with `CKR_ARGUMENTS_BAD` and the
/// slots are listed again.
pub fn new_token_no_user_pin(p: &Pkcs11, label: &str) -> Slot {
    let _g = TOKEN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let slot = empty_slot(p);
        match p.init_token(slot, &pin(SO_PIN), label) {
            Ok(()) => return slot,
            Err(Error::Pkcs11(RvError::ArgumentsBad, _))
                if attempt < 10 && slot_by_label(p, label).is_none() =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
            }
            Err(e) => panic!("C_InitToken({label}): {e}"),
        }
    }
}

/// Initialises a new token `label` with SO PIN [`SO_PIN`] and user PIN [`USER_PIN`].
pub fn new_token(p: &Pkcs11, label: &str) -> Slot {
    let slot = new_token_no_user_pin(p, label);
    let s = p.open_rw_session(slot).expect("C_OpenSession");
    s.login(UserType::So, Some(&pin(SO_PIN)))
        .expect("C_Login(SO)");
    s.init_pin(&pin(USER_PIN)).expect("C_InitPIN");
    s.logout().expect("C_Logout");
    slot
}

/// An R/W session logged in as the user.
pub fn user_session(p: &Pkcs11, slot: Slot) -> Session {
    let s = p.open_rw_session(slot).expect("C_OpenSession");
    match s.login(UserType::User, Some(&pin(USER_PIN))) {
        Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("C_Login(USER): {e}"),
    }
    s
}

/// The `CK_RV` of a failed call; panics on success or on a non-PKCS#11 error.
#[track_caller]
pub fn rv_of<T: Debug>(r: cryptoki::error::Result<T>) -> RvError {
    match r {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// Asserts that `r` failed with `want`.
#[track_caller]
pub fn expect_rv<T: Debug>(r: cryptoki::error::Result<T>, want: RvError) {
    let got = rv_of(r);
    assert_eq!(got, want, "expected CKR {want:?}, got {got:?}");
}

/// Asserts that `r` failed with one of `wants` (where the spec allows more than one code).
#[track_caller]
pub fn expect_rv_in<T: Debug>(r: cryptoki::error::Result<T>, wants: &[RvError]) {
    let got = rv_of(r);
    assert!(
        wants.contains(&got),
        "expected one of {wants:?}, got {got:?}"
    );
}

// ---------- attribute access ----------

pub fn get_attr(s: &Session, o: ObjectHandle, t: AttributeType) -> Attribute {
    let mut v = s.get_attributes(o, &[t]).expect("C_GetAttributeValue");
    assert_eq!(v.len(), 1, "attribute {t:?} is available");
    v.remove(0)
}

pub fn get_bytes(s: &Session, o: ObjectHandle, t: AttributeType) -> Vec<u8> {
    match get_attr(s, o, t) {
        Attribute::Value(v)
        | Attribute::Label(v)
        | Attribute::Id(v)
        | Attribute::Modulus(v)
        | Attribute::PublicExponent(v)
        | Attribute::EcParams(v)
        | Attribute::EcPoint(v)
        | Attribute::VendorDefined((_, v)) => v,
        other => panic!("not a byte attribute: {other:?}"),
    }
}

pub fn get_bool(s: &Session, o: ObjectHandle, t: AttributeType) -> bool {
    match get_attr(s, o, t) {
        Attribute::Token(b)
        | Attribute::Private(b)
        | Attribute::Sensitive(b)
        | Attribute::Extractable(b)
        | Attribute::AlwaysSensitive(b)
        | Attribute::NeverExtractable(b)
        | Attribute::Local(b)
        | Attribute::Sign(b)
        | Attribute::Verify(b)
        | Attribute::Encrypt(b)
        | Attribute::Decrypt(b)
        | Attribute::Modifiable(b)
        | Attribute::Destroyable(b) => b,
        other => panic!("not a boolean attribute: {other:?}"),
    }
}

pub fn get_ulong_vendor(s: &Session, o: ObjectHandle, t: u64) -> u64 {
    let b = get_bytes(s, o, AttributeType::VendorDefined(t));
    assert_eq!(b.len(), std::mem::size_of::<u64>(), "CK_ULONG attribute");
    u64::from_ne_bytes(b.try_into().expect("8 bytes"))
}

// ---------- key generation ----------

pub fn rsa_templates(bits: u64, label: &str, id: &[u8]) -> (Vec<Attribute>, Vec<Attribute>) {
    let public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::ModulusBits(bits.into()),
        Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
        Attribute::Verify(true),
        Attribute::Encrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    let private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    (public, private)
}

pub fn gen_rsa(s: &Session, bits: u64, label: &str, id: &[u8]) -> (ObjectHandle, ObjectHandle) {
    let (public, private) = rsa_templates(bits, label, id);
    s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .unwrap_or_else(|e| panic!("C_GenerateKeyPair(RSA-{bits}): {e}"))
}

pub fn ec_templates(params: &[u8], label: &str, id: &[u8]) -> (Vec<Attribute>, Vec<Attribute>) {
    let public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::EcParams(params.to_vec()),
        Attribute::Verify(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    let private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_vec()),
    ];
    (public, private)
}

/// EC (`CKM_EC_KEY_PAIR_GEN`) or, for [`ED25519`] params, Edwards key pair generation.
pub fn gen_ec(s: &Session, params: &[u8], label: &str, id: &[u8]) -> (ObjectHandle, ObjectHandle) {
    let (public, private) = ec_templates(params, label, id);
    let mech = if params == ED25519 {
        Mechanism::EccEdwardsKeyPairGen
    } else {
        Mechanism::EccKeyPairGen
    };
    s.generate_key_pair(&mech, &public, &private)
        .unwrap_or_else(|e| panic!("C_GenerateKeyPair({mech:?}): {e}"))
}

pub fn gen_aes(s: &Session, len: u64, label: &str) -> ObjectHandle {
    let t = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::ValueLen(len.into()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    s.generate_key(&Mechanism::AesKeyGen, &t)
        .unwrap_or_else(|e| panic!("C_GenerateKey(AES-{len}): {e}"))
}

pub fn find_by_label(s: &Session, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .expect("C_FindObjects")
}

pub fn find_by_label_class(s: &Session, label: &str, class: ObjectClass) -> Vec<ObjectHandle> {
    s.find_objects(&[
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Class(class),
    ])
    .expect("C_FindObjects")
}

// ---------- independent checks with OpenSSL ----------

/// Strips the DER OCTET STRING around `CKA_EC_POINT`.
pub fn unwrap_octet_string(der: &[u8]) -> Vec<u8> {
    assert_eq!(
        der.first(),
        Some(&0x04),
        "CKA_EC_POINT is a DER OCTET STRING"
    );
    let (len, hdr) = match der[1] {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (der[2] as usize, 3),
        0x82 => (((der[2] as usize) << 8) | der[3] as usize, 4),
        n => panic!("unexpected DER length byte {n:#x}"),
    };
    assert_eq!(der.len(), hdr + len, "OCTET STRING length");
    der[hdr..].to_vec()
}

/// Wraps `bytes` in a DER OCTET STRING.
pub fn octet_string(bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![0x04];
    match bytes.len() {
        n if n < 0x80 => v.push(n as u8),
        n if n < 0x100 => v.extend([0x81, n as u8]),
        n => v.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    v.extend_from_slice(bytes);
    v
}

/// The public half read back from the module as an OpenSSL key.
pub fn openssl_public(
    s: &Session,
    public: ObjectHandle,
) -> openssl::pkey::PKey<openssl::pkey::Public> {
    use openssl::bn::{BigNum, BigNumContext};
    use openssl::ec::{EcGroup, EcKey, EcPoint};
    use openssl::nid::Nid;
    use openssl::pkey::{Id, PKey};
    use openssl::rsa::Rsa;

    let kt = match get_attr(s, public, AttributeType::KeyType) {
        Attribute::KeyType(k) => k,
        other => panic!("{other:?}"),
    };
    if kt == KeyType::RSA {
        let n = get_bytes(s, public, AttributeType::Modulus);
        let e = get_bytes(s, public, AttributeType::PublicExponent);
        let rsa = Rsa::from_public_components(
            BigNum::from_slice(&n).expect("n"),
            BigNum::from_slice(&e).expect("e"),
        )
        .expect("rsa");
        PKey::from_rsa(rsa).expect("pkey")
    } else if kt == KeyType::EC {
        let params = get_bytes(s, public, AttributeType::EcParams);
        let nid = if params == P256 {
            Nid::X9_62_PRIME256V1
        } else if params == P384 {
            Nid::SECP384R1
        } else if params == P521 {
            Nid::SECP521R1
        } else {
            panic!("unexpected CKA_EC_PARAMS {params:02x?}")
        };
        let group = EcGroup::from_curve_name(nid).expect("group");
        let point = unwrap_octet_string(&get_bytes(s, public, AttributeType::EcPoint));
        let mut bn = BigNumContext::new().expect("bn ctx");
        let point = EcPoint::from_bytes(&group, &point, &mut bn).expect("EC point");
        PKey::from_ec_key(EcKey::from_public_key(&group, &point).expect("ec key")).expect("pkey")
    } else if kt == KeyType::EC_EDWARDS {
        let point = unwrap_octet_string(&get_bytes(s, public, AttributeType::EcPoint));
        assert_eq!(point.len(), 32, "Ed25519 public key");
        PKey::public_key_from_raw_bytes(&point, Id::ED25519).expect("ed25519")
    } else {
        panic!("unexpected key type {kt:?}")
    }
}

/// Converts a raw `r‖s` ECDSA signature to DER for OpenSSL.
pub fn ecdsa_raw_to_der(sig: &[u8]) -> Vec<u8> {
    use openssl::bn::BigNum;
    assert!(sig.len().is_multiple_of(2), "raw r||s has even length");
    let (r, s) = sig.split_at(sig.len() / 2);
    openssl::ecdsa::EcdsaSig::from_private_components(
        BigNum::from_slice(r).expect("r"),
        BigNum::from_slice(s).expect("s"),
    )
    .expect("sig")
    .to_der()
    .expect("der")
}

// ---------- C programs ----------

/// Compiles `tests/c/<name>.c` against `include/` (the committed `pkcs11.h` and `sqlhsm.h`)
/// with the system C compiler (`$CC`, else `cc`), warnings as errors, linking `libs`; returns
/// the executable.
pub fn compile_c(name: &str, libs: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sqlhsm-c-{name}"));
    std::fs::create_dir_all(out.parent().expect("target tmp dir")).expect("target tmp dir");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let source = root.join("tests/c").join(format!("{name}.c"));
    let status = std::process::Command::new(&cc)
        .args([
            "-Wall",
            "-Wextra",
            "-Werror",
            "-std=c11",
            "-D_DEFAULT_SOURCE",
        ])
        .arg(format!("-I{}", root.join("include").display()))
        .arg(&source)
        .arg("-o")
        .arg(&out)
        .args(libs)
        .status()
        .unwrap_or_else(|e| panic!("running {cc}: {e} (install gcc)"));
    assert!(status.success(), "compiling {} failed", source.display());
    out
}

// ---------- re-executed child processes ----------

/// Environment variable naming the role of a re-executed test process.
pub const ENV_CHILD_ROLE: &str = "SQLHSM_CHILD_ROLE";
/// Environment variable naming the directory where children report readiness and wait for `go`.
pub const ENV_CHILD_SYNC: &str = "SQLHSM_CHILD_SYNC";

/// The role this process was re-executed for, if it was.
pub fn child_role() -> Option<String> {
    std::env::var(ENV_CHILD_ROLE).ok().filter(|r| !r.is_empty())
}

/// Re-executes this test binary running only the test `test`, as `role`, on `db`, with `env`
/// added. Its output is captured for [`finish_child`].
pub fn spawn_child(
    test: &str,
    role: &str,
    db: &TestDb,
    env: &[(&str, String)],
) -> std::process::Child {
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .envs(db.envs())
        .env(ENV_CHILD_ROLE, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child")
}

/// Waits for a child, prints its output, asserts it succeeded and said `child <role>: ok`, and
/// returns its stdout.
#[track_caller]
pub fn finish_child(role: &str, child: std::process::Child) -> String {
    let out = child.wait_with_output().expect("wait for child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!(
        "--- {role} ---\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "child {role} failed: {:?}",
        out.status
    );
    assert!(
        stdout.contains(&format!("child {role}: ok")),
        "child {role} did not finish its work"
    );
    stdout
}

/// In a child: loads and initialises the module on the database its environment names.
pub fn child_init() -> Pkcs11 {
    let p = load();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize in child");
    p
}

/// In a child started with [`ENV_CHILD_SYNC`]: reports `role` ready and waits for the parent's
/// `go` (so that every child's work overlaps, not just their start-up).
pub fn child_ready_then_wait(role: &str) {
    let Some(dir) = std::env::var_os(ENV_CHILD_SYNC) else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::write(dir.join(format!("ready-{role}")), b"").expect("write ready file");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !dir.join("go").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no go from the parent"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// In the parent: waits until `n` children are ready, then lets them all go at once.
pub fn release_children(sync_dir: &Path, n: usize) {
    wait_children_ready(sync_dir, n);
    std::fs::write(sync_dir.join("go"), b"").expect("write go file");
}

/// In the parent: waits until `n` children started with [`ENV_CHILD_SYNC`] = `sync_dir` are
/// ready (the `go` is then up to the caller: [`release_children`]).
pub fn wait_children_ready(sync_dir: &Path, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let ready = std::fs::read_dir(sync_dir)
            .expect("read sync dir")
            .filter(|e| {
                e.as_ref()
                    .map(|e| e.file_name().to_string_lossy().starts_with("ready-"))
                    .unwrap_or(false)
            })
            .count();
        if ready >= n {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {ready} of {n} children became ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

// ---------- PKCS#11 3.0 calls and constants cryptoki 0.12 does not expose ----------

/// `CKM_AES_KEY_WRAP_KWP` (RFC 5649, PKCS#11 3.0 §2.14.3); cryptoki 0.12 names only
/// `CKM_AES_KEY_WRAP_PAD`, which is a different mechanism.
pub const CKM_AES_KEY_WRAP_KWP: u64 = 0x0000_210B;

/// The `CK_RV` of a raw call as a cryptoki result, so [`expect_rv`] and friends apply.
pub fn raw_result(
    rv: cryptoki_sys::CK_RV,
    f: cryptoki::context::Function,
) -> cryptoki::error::Result<()> {
    cryptoki::error::Rv::from(rv).into_result(f)
}

/// Template attributes as the C structures (pointing into `template`, which must outlive them).
pub fn raw_template(template: &[Attribute]) -> Vec<cryptoki_sys::CK_ATTRIBUTE> {
    template.iter().map(|a| a.into()).collect()
}

/// `C_WrapKey` with a raw mechanism (`mech`, no parameter), two-call convention: returns the
/// length the NULL-buffer call reported and the wrapped bytes.
pub fn raw_wrap_key(
    s: &Session,
    mech: u64,
    wrapping_key: ObjectHandle,
    key: ObjectHandle,
) -> cryptoki::error::Result<(u64, Vec<u8>)> {
    use cryptoki::context::Function;
    let mut m = cryptoki_sys::CK_MECHANISM {
        mechanism: mech,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    let mut len: cryptoki_sys::CK_ULONG = 0;
    // SAFETY: valid session/object handles of this test; NULL output asks for the length.
    let rv = unsafe {
        raw().C_WrapKey(
            s.handle(),
            &mut m,
            wrapping_key.handle(),
            key.handle(),
            std::ptr::null_mut(),
            &mut len,
        )
    };
    raw_result(rv, Function::WrapKey)?;
    let reported = len;
    let mut out = vec![0u8; len as usize];
    // SAFETY: `out` has `len` writable bytes.
    let rv = unsafe {
        raw().C_WrapKey(
            s.handle(),
            &mut m,
            wrapping_key.handle(),
            key.handle(),
            out.as_mut_ptr(),
            &mut len,
        )
    };
    raw_result(rv, Function::WrapKey)?;
    out.truncate(len as usize);
    Ok((reported, out))
}

/// `C_UnwrapKey` with a raw mechanism (`mech`, no parameter).
pub fn raw_unwrap_key(
    s: &Session,
    mech: u64,
    unwrapping_key: ObjectHandle,
    wrapped: &[u8],
    template: &[Attribute],
) -> cryptoki::error::Result<ObjectHandle> {
    use cryptoki::context::Function;
    let mut m = cryptoki_sys::CK_MECHANISM {
        mechanism: mech,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    };
    let mut t = raw_template(template);
    let mut wrapped = wrapped.to_vec();
    let mut h: cryptoki_sys::CK_OBJECT_HANDLE = 0;
    // SAFETY: every pointer refers to a live local buffer of the stated length.
    let rv = unsafe {
        raw().C_UnwrapKey(
            s.handle(),
            &mut m,
            unwrapping_key.handle(),
            wrapped.as_mut_ptr(),
            wrapped.len() as cryptoki_sys::CK_ULONG,
            t.as_mut_ptr(),
            t.len() as cryptoki_sys::CK_ULONG,
            &mut h,
        )
    };
    raw_result(rv, Function::UnwrapKey)?;
    // SAFETY: a handle the module just returned.
    Ok(unsafe { ObjectHandle::new_from_raw(h) })
}

/// `C_GetObjectSize` (cryptoki 0.12 has no wrapper).
pub fn raw_object_size(s: &Session, o: ObjectHandle) -> cryptoki::error::Result<u64> {
    let mut size: cryptoki_sys::CK_ULONG = 0;
    // SAFETY: valid handles; `size` is a live out-parameter.
    let rv = unsafe { raw().C_GetObjectSize(s.handle(), o.handle(), &mut size) };
    raw_result(rv, cryptoki::context::Function::GetObjectSize)?;
    Ok(size)
}

/// A session (`CKA_TOKEN` false) secret key holding `value`: AES or generic secret, with every
/// usage flag this suite needs and extractable in the clear, for known-answer tests.
pub fn session_secret(s: &Session, kt: KeyType, value: &[u8], extra: &[Attribute]) -> ObjectHandle {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(kt),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Value(value.to_vec()),
    ];
    t.extend_from_slice(extra);
    s.create_object(&t)
        .unwrap_or_else(|e| panic!("C_CreateObject({kt:?}, {} bytes): {e}", value.len()))
}

/// Any byte-string attribute's value (`CKA_CHECK_VALUE`, `CKA_UNIQUE_ID`, `CKA_SUBJECT`, …).
pub fn get_any_bytes(s: &Session, o: ObjectHandle, t: AttributeType) -> Vec<u8> {
    match get_attr(s, o, t) {
        Attribute::Value(v)
        | Attribute::Label(v)
        | Attribute::Id(v)
        | Attribute::Modulus(v)
        | Attribute::PublicExponent(v)
        | Attribute::EcParams(v)
        | Attribute::EcPoint(v)
        | Attribute::CheckValue(v)
        | Attribute::UniqueId(v)
        | Attribute::PublicKeyInfo(v)
        | Attribute::Subject(v)
        | Attribute::Issuer(v)
        | Attribute::SerialNumber(v)
        | Attribute::Application(v)
        | Attribute::ObjectId(v)
        | Attribute::VendorDefined((_, v)) => v,
        other => panic!("not a byte attribute: {other:?}"),
    }
}

/// Any boolean attribute's value (`CKA_COPYABLE`, `CKA_WRAP`, `CKA_TRUSTED`, …).
pub fn get_any_bool(s: &Session, o: ObjectHandle, t: AttributeType) -> bool {
    match get_attr(s, o, t) {
        Attribute::Copyable(b)
        | Attribute::Wrap(b)
        | Attribute::Unwrap(b)
        | Attribute::Derive(b)
        | Attribute::Trusted(b)
        | Attribute::WrapWithTrusted(b) => b,
        _ => get_bool(s, o, t),
    }
}

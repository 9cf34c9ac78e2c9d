//! Faults an operator meets (issue 10, §6), seen the way an operator sees them: the module
//! loaded by a fresh process (this test binary re-executed as a child) and the `sqlhsm`
//! command, each with its stderr and exit status captured.
//!
//! - A bad `SQLHSM_DB`, an unknown key in the file, a missing `SQLHSM_CONF` file or a bad
//!   `SQLHSM_LOG` makes `C_Initialize` print one line naming the input and the problem, with
//!   logging not configured, once however often the application retries; the admin command
//!   prints the same line.
//! - Reading never creates a SQLite store: `C_Initialize`, `C_GetSlotList` and the admin
//!   command's read-only commands leave a mistyped path alone (the admin command says that there
//!   is no store, exit 3); `C_InitToken`, `sqlhsm token init` and `sqlhsm db migrate` create it;
//!   a process that started before the file existed uses it once another process made it; the
//!   zero-configuration default still works on first use. (SQLite only.)
//! - A read-only file, a read-only directory, an unreadable file, an untraversable directory and
//!   a path through a file: each error names the path and the cause and never says
//!   "unreachable"; a read-only store still serves reads (sign with an existing key) and answers
//!   writes with `CKR_TOKEN_WRITE_PROTECTED`. Run as `nobody` (through `setpriv`) when the tests
//!   run as root, since permission bits do not apply to root. (SQLite only.)
//! - Log lines (issue 11 §3): plain text, no ANSI colour, when stderr is not a terminal — from
//!   the module inside another program and from the admin command; tokens named by label and
//!   statuses by name; the admin command says one clear message when it fails, not the
//!   module's error lines before it.
//! - PostgreSQL: a role holding exactly the README's grants on a store its owner migrated does
//!   every key operation through the module, with history; `sqlhsm db check` names a missing
//!   privilege. (PostgreSQL only.)

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::UserType;

/// The unprivileged user permission tests run as when this process is root.
const NOBODY: u32 = 65534;
/// What the admin command adds when a store does not exist yet.
const CREATED_BY: &str = "(it is created by `sqlhsm token init` or `sqlhsm db migrate`)";
/// Test settings: a cheap scrypt cost; no database URL (each test names its store).
const FAST_CONF: &str = "[security]\npin_kdf_log_n = 10\n";

const CKA_SQLHSM_KEY_ID: u64 = 0xD351_0001;
const CKA_SQLHSM_KEY_STATUS: u64 = 0xD351_0002;
const CKA_SQLHSM_ROTATED_FROM: u64 = 0xD351_0006;

// ---------- helpers ----------

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A directory of one test under cargo's per-target temp dir, open to the unprivileged user.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(base).expect("create CARGO_TARGET_TMPDIR");
        let dir = tempfile::Builder::new()
            .prefix(&format!("sqlhsm-faults-{name}-"))
            .tempdir_in(base)
            .expect("tempdir")
            .keep();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for sub in ["home", "config", "data"] {
            std::fs::create_dir(dir.join(sub)).expect("mkdir");
        }
        let scratch = Scratch { dir };
        scratch.write("fast.toml", FAST_CONF);
        scratch
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path(relative);
        std::fs::write(&path, text).expect("write");
        path
    }

    /// A directory that the unprivileged user owns (chowned when we are root).
    fn owned_dir(&self, relative: &str) -> PathBuf {
        let dir = self.path(relative);
        std::fs::create_dir_all(&dir).expect("mkdir");
        if is_root() {
            std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).expect("chown");
        }
        dir
    }
}

/// A child's environment: none of the caller's sqlhsm settings, HOME and the XDG directories
/// inside `scratch` (so no configuration file of this machine is found and the default store
/// lands there), the test PINs, the fast configuration unless `env` overrides it.
fn prepare(command: &mut Command, scratch: &Scratch, env: &[(&str, String)]) {
    for variable in [
        "SQLHSM_DB",
        "SQLHSM_CONF",
        "SQLHSM_LOG",
        "SQLHSM_PIN",
        "SQLHSM_SO_PIN",
    ] {
        command.env_remove(variable);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("HOME", scratch.path("home"))
        .env("XDG_CONFIG_HOME", scratch.path("config"))
        .env("XDG_DATA_HOME", scratch.path("data"))
        .env("SQLHSM_CONF", scratch.path("fast.toml"))
        .env("SQLHSM_PIN", USER_PIN)
        .env("SQLHSM_SO_PIN", SO_PIN)
        .env("USER", "operator");
    for (key, value) in env {
        command.env(key, value);
    }
}

/// `program args…`, as the unprivileged user when `unprivileged` and we are root.
fn command(program: &Path, args: &[&str], unprivileged: bool) -> Command {
    if unprivileged && is_root() {
        let mut command = Command::new("setpriv");
        command
            .args([
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
                "--",
            ])
            .arg(program)
            .args(args);
        command
    } else {
        let mut command = Command::new(program);
        command.args(args);
        command
    }
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn of(output: Output) -> Ran {
        Ran {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The non-empty stderr lines.
    fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    #[track_caller]
    fn expect_code(&self, code: i32, what: &str) -> &Ran {
        assert_eq!(
            self.code,
            Some(code),
            "{what}\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs the admin command.
fn admin(scratch: &Scratch, args: &[&str], env: &[(&str, String)], unprivileged: bool) -> Ran {
    let mut command = command(Path::new(env!("CARGO_BIN_EXE_sqlhsm")), args, unprivileged);
    prepare(&mut command, scratch, env);
    Ran::of(command.output().expect("run sqlhsm"))
}

/// Runs this test binary again as `role` (see [`child`]); the child prints `child <role>: ok`
/// when its checks passed.
fn module_child(scratch: &Scratch, role: &str, env: &[(&str, String)], unprivileged: bool) -> Ran {
    let exe = std::env::current_exe().expect("current_exe");
    let mut command = command(
        &exe,
        &["--exact", "child", "--nocapture", "--test-threads", "1"],
        unprivileged,
    );
    prepare(&mut command, scratch, env);
    command.env(ENV_CHILD_ROLE, role);
    // The module must come from this build, whoever the child runs as.
    command.env("SQLHSM_MODULE", module_path());
    Ran::of(command.output().expect("run child"))
}

#[track_caller]
fn expect_child_ok(ran: &Ran, role: &str) {
    assert!(
        ran.code == Some(0) && ran.stdout.contains(&format!("child {role}: ok")),
        "child {role} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        ran.code,
        ran.stdout,
        ran.stderr
    );
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

/// True (after saying why) when this run is on PostgreSQL, where the SQLite file tests mean
/// nothing.
fn skip_unless_sqlite(test: &str) -> bool {
    if Backend::from_env() == Backend::Sqlite {
        return false;
    }
    println!("skipped: {test} is about SQLite files (SQLHSM_TEST_BACKEND=postgres)");
    true
}

// ---------- the re-executed child ----------

fn initialize(p: &Pkcs11) -> cryptoki::error::Result<()> {
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
}

fn env_path(name: &str) -> PathBuf {
    PathBuf::from(std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set")))
}

fn vendor_bytes(kind: u64, value: Vec<u8>) -> Attribute {
    Attribute::VendorDefined((AttributeType::VendorDefined(kind), value))
}

/// What a re-executed child does; nothing in a normal run.
#[test]
fn child() {
    let Some(role) = child_role() else { return };
    match role.as_str() {
        "init-loop" => child_init_loop(),
        "missing-then-init-token" => child_missing_then_init_token(),
        "missing-then-elsewhere" => child_missing_then_elsewhere(),
        "zero-config" => child_zero_config(),
        "read-only-store" => child_read_only_store(),
        "cannot-open" => child_cannot_open(),
        "pg-app-keys" => child_pg_app_keys(),
        "wrong-pin-logged" => child_wrong_pin_logged(),
        other => panic!("unknown child role {other}"),
    }
    println!("child {role}: ok");
}

/// `C_Initialize` 100 times with the environment's (bad) settings, then 10 more after
/// `SQLHSM_DB` became `$SQLHSM_FAULTS_NEXT_DB`, when that is set. Every call must answer
/// `CKR_GENERAL_ERROR`.
fn child_init_loop() {
    let p = load();
    let mut answers = Vec::new();
    for _ in 0..100 {
        answers.push(initialize(&p));
    }
    if let Ok(next) = std::env::var("SQLHSM_FAULTS_NEXT_DB") {
        std::env::set_var("SQLHSM_DB", next);
        for _ in 0..10 {
            answers.push(initialize(&p));
        }
    }
    for answer in &answers {
        assert!(
            matches!(answer, Err(Error::Pkcs11(RvError::GeneralError, _))),
            "{answer:?}"
        );
    }
    println!("{} x CKR_GENERAL_ERROR", answers.len());
}

/// On a store whose file does not exist: the one empty slot, and nothing created, until
/// `C_InitToken` creates the file and the token.
fn child_missing_then_init_token() {
    let file = env_path("SQLHSM_FAULTS_FILE");
    let p = load();
    initialize(&p).expect("C_Initialize on a missing store");
    let slots = p.get_slots_with_token().expect("C_GetSlotList");
    assert_eq!(slots.len(), 1, "the one empty slot");
    let info = p.get_token_info(slots[0]).expect("C_GetTokenInfo");
    assert!(!info.token_initialized());
    p.get_mechanism_list(slots[0]).expect("C_GetMechanismList");
    assert!(!file.exists(), "reading created {}", file.display());
    p.init_token(slots[0], &pin(SO_PIN), "first")
        .expect("C_InitToken");
    assert!(
        file.exists(),
        "C_InitToken did not create {}",
        file.display()
    );
    assert!(slot_by_label(&p, "first").is_some());
    assert_eq!(p.get_slots_with_token().expect("C_GetSlotList").len(), 2);
}

/// A process that started on a missing store sees the store another process creates.
fn child_missing_then_elsewhere() {
    let file = env_path("SQLHSM_FAULTS_FILE");
    let p = load();
    initialize(&p).expect("C_Initialize on a missing store");
    assert_eq!(p.get_slots_with_token().expect("C_GetSlotList").len(), 1);
    assert!(!file.exists());
    // Another process: the admin command, with this process's environment.
    let out = Command::new(env!("CARGO_BIN_EXE_sqlhsm"))
        .args(["token", "init", "made-elsewhere"])
        .stdin(Stdio::null())
        .output()
        .expect("run sqlhsm");
    assert!(out.status.success(), "{out:?}");
    assert!(file.exists());
    let slot = slot_by_label(&p, "made-elsewhere").expect("the other process's token is seen");
    let session = p.open_ro_session(slot).expect("C_OpenSession");
    session
        .login(UserType::User, Some(&pin(USER_PIN)))
        .expect("C_Login on the token made elsewhere");
    assert_eq!(p.get_slots_with_token().expect("C_GetSlotList").len(), 2);
}

/// No configuration at all: the default store under `$XDG_DATA_HOME`, created on first use.
fn child_zero_config() {
    let data = env_path("XDG_DATA_HOME");
    let file = data.join("sqlhsm").join("sqlhsm.db");
    let p = load();
    initialize(&p).expect("C_Initialize with no configuration");
    let slots = p.get_slots_with_token().expect("C_GetSlotList");
    assert_eq!(slots.len(), 1);
    assert!(
        !data.join("sqlhsm").exists(),
        "reading created the directory"
    );
    p.init_token(slots[0], &pin(SO_PIN), "zero-config")
        .expect("C_InitToken");
    assert!(
        file.exists(),
        "the default store {} was not created",
        file.display()
    );
    assert!(slot_by_label(&p, "zero-config").is_some());
}

/// A token, then a login with a wrong user PIN (the parent reads the log line it causes).
fn child_wrong_pin_logged() {
    let p = load();
    initialize(&p).expect("C_Initialize");
    let slot = p.get_slots_with_token().expect("C_GetSlotList")[0];
    p.init_token(slot, &pin(SO_PIN), "logged-token")
        .expect("C_InitToken");
    let slot = slot_by_label(&p, "logged-token").expect("the new token");
    let session = p.open_rw_session(slot).expect("C_OpenSession");
    session
        .login(UserType::So, Some(&pin(SO_PIN)))
        .expect("SO login");
    session.init_pin(&pin(USER_PIN)).expect("C_InitPIN");
    session.logout().expect("logout");
    let refused = session.login(UserType::User, Some(&pin("not-the-pin")));
    assert!(
        matches!(refused, Err(Error::Pkcs11(RvError::PinIncorrect, _))),
        "{refused:?}"
    );
}

/// A read-only store: the token says it is write-protected, a key made before signs, and a new
/// key is refused with `CKR_TOKEN_WRITE_PROTECTED`.
fn child_read_only_store() {
    let p = load();
    initialize(&p).expect("C_Initialize on a read-only store");
    let slot = slot_by_label(&p, "ro").expect("token ro");
    assert!(p
        .get_token_info(slot)
        .expect("C_GetTokenInfo")
        .write_protected());
    let s = p.open_rw_session(slot).expect("C_OpenSession (R/W)");
    let keys = find_by_label_class(&s, "s", ObjectClass::PUBLIC_KEY);
    assert_eq!(
        keys.len(),
        1,
        "the public key made before the file became read-only"
    );
    // A guess that cannot be counted is never evaluated (the PIN lockout is exact), so a
    // read-only store refuses logins, the correct PIN included.
    expect_rv(
        s.login(UserType::User, Some(&pin(USER_PIN))),
        RvError::TokenWriteProtected,
    );
}

/// `C_Initialize` on a store that cannot be opened: `CKR_FUNCTION_FAILED`, the code PKCS#11 3.0
/// §5.4 allows (the log line says why).
fn child_cannot_open() {
    let p = load();
    expect_rv(initialize(&p), RvError::FunctionFailed);
}

/// Every key operation as a role holding only the README's grants.
fn child_pg_app_keys() {
    let p = load();
    initialize(&p).expect("C_Initialize as the application role");
    let slot = new_token(&p, "app");
    let s = user_session(&p, slot);
    let ec = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]; // P-256
    let (_, old) = gen_ec(&s, &ec, "signing", b"id-1");
    let old_id = get_bytes(&s, old, AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID));
    // Rotation through PKCS#11: a generation naming its predecessor.
    let (public, mut private) = ec_templates(&ec, "signing", b"id-2");
    private.push(vendor_bytes(CKA_SQLHSM_ROTATED_FROM, old_id.clone()));
    let (_, new) = s
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .expect("rotation");
    let new_id = get_bytes(&s, new, AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID));
    s.update_attributes(
        new,
        &[vendor_bytes(
            CKA_SQLHSM_KEY_STATUS,
            3u64.to_ne_bytes().to_vec(),
        )],
    )
    .expect("mark compromised");
    let aes: ObjectHandle = gen_aes(&s, 16, "data");
    let aes_id = get_bytes(&s, aes, AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID));
    s.destroy_object(aes).expect("C_DestroyObject");
    println!(
        "keys: {} {} {}",
        String::from_utf8_lossy(&old_id),
        String::from_utf8_lossy(&new_id),
        String::from_utf8_lossy(&aes_id)
    );
}

// ---------- configuration errors ----------

/// Environment variables for a child.
type Env = Vec<(&'static str, String)>;

/// Each bad input: `C_Initialize` fails with `CKR_GENERAL_ERROR` and prints one line naming the
/// input and the problem, with `SQLHSM_LOG` unset, once for 100 calls; a second distinct error
/// in the same process gets its own line; the admin command prints the same line, exit 2.
#[test]
fn configuration_errors_say_what_and_where_once() {
    let scratch = Scratch::new("config");
    let typo = scratch.write(
        "typo.toml",
        &format!(
            "[database]\nurl = \"{}\"\nbusy_timout_ms = 10\n",
            sqlite_url(&scratch.path("keys.db"))
        ),
    );
    let absent = scratch.path("absent.toml");
    let good_db = sqlite_url(&scratch.path("keys.db"));
    let cases: Vec<(&str, Env, String)> = vec![
        (
            "a SQLHSM_DB without a scheme",
            vec![("SQLHSM_DB", "/var/lib/sqlhsm/keys.db".into())],
            "sqlhsm: configuration: SQLHSM_DB \"/var/lib/sqlhsm/keys.db\" has an unsupported \
             scheme; use sqlite:/path/to/sqlhsm.db or postgres://user@host/db"
                .into(),
        ),
        (
            "an unknown key in the file",
            vec![("SQLHSM_CONF", typo.display().to_string())],
            format!(
                "sqlhsm: configuration: {}: line 3: `busy_timout_ms = 10`: unknown field \
                 `busy_timout_ms`, expected one of",
                typo.display()
            ),
        ),
        (
            "a SQLHSM_CONF naming no file",
            vec![("SQLHSM_CONF", absent.display().to_string())],
            format!(
                "sqlhsm: configuration: SQLHSM_CONF names {}, which cannot be read: No such \
                 file or directory (os error 2)",
                absent.display()
            ),
        ),
        (
            "a bad SQLHSM_LOG",
            vec![
                ("SQLHSM_LOG", "verbose".into()),
                ("SQLHSM_DB", good_db.clone()),
            ],
            "sqlhsm: configuration: SQLHSM_LOG \"verbose\" is not one of error, warn, info, \
             debug, trace"
                .into(),
        ),
    ];
    for (what, env, expected) in &cases {
        let ran = module_child(&scratch, "init-loop", env, false);
        expect_child_ok(&ran, "init-loop");
        assert!(
            ran.stdout.contains("100 x CKR_GENERAL_ERROR"),
            "{what}: {}",
            ran.stdout
        );
        let lines = ran.stderr_lines();
        assert_eq!(
            lines.len(),
            1,
            "{what}: one line for 100 calls:\n{}",
            ran.stderr
        );
        assert!(
            lines[0].starts_with(expected.as_str()),
            "{what}:\n got: {}\nwant: {expected}",
            lines[0]
        );
        let by_admin = admin(&scratch, &["token", "list"], env, false);
        by_admin.expect_code(2, what);
        assert_eq!(
            by_admin.stderr_lines(),
            lines,
            "{what}: the admin command says the same"
        );
    }
    // Once per distinct message: a second mistake in the same process is printed too.
    let mut env = cases[0].1.clone();
    env.push(("SQLHSM_FAULTS_NEXT_DB", "mysql://db/keys".into()));
    let ran = module_child(&scratch, "init-loop", &env, false);
    expect_child_ok(&ran, "init-loop");
    let lines = ran.stderr_lines();
    assert_eq!(lines.len(), 2, "{}", ran.stderr);
    assert!(lines[1].starts_with("sqlhsm: configuration: SQLHSM_DB \"mysql://db/keys\""));
    assert!(!scratch.path("keys.db").exists());
}

// ---------- a store that does not exist ----------

/// `C_Initialize` and reads on a missing file create nothing; `C_InitToken` creates it.
#[test]
fn the_module_reads_a_missing_store_as_empty_and_creates_it_at_init_token() {
    if skip_unless_sqlite("the_module_reads_a_missing_store_as_empty") {
        return;
    }
    let scratch = Scratch::new("missing-module");
    let file = scratch.path("kyes.db");
    let env = [
        ("SQLHSM_DB", sqlite_url(&file)),
        ("SQLHSM_FAULTS_FILE", file.display().to_string()),
    ];
    let ran = module_child(&scratch, "missing-then-init-token", &env, false);
    expect_child_ok(&ran, "missing-then-init-token");
    // At the default log level the module says that the store does not exist yet.
    assert!(
        ran.stderr.contains("no key store at this path yet") && ran.stderr.contains("kyes.db"),
        "{}",
        ran.stderr
    );

    let file = scratch.path("elsewhere/keys.db");
    std::fs::create_dir(scratch.path("elsewhere")).expect("mkdir");
    let env = [
        ("SQLHSM_DB", sqlite_url(&file)),
        ("SQLHSM_FAULTS_FILE", file.display().to_string()),
    ];
    let ran = module_child(&scratch, "missing-then-elsewhere", &env, false);
    expect_child_ok(&ran, "missing-then-elsewhere");
}

/// With no configuration at all the module works on its default file, made at first use.
#[test]
fn the_zero_configuration_default_works_on_first_use() {
    if skip_unless_sqlite("the_zero_configuration_default_works_on_first_use") {
        return;
    }
    let scratch = Scratch::new("zero-config");
    // No SQLHSM_CONF either: nothing but the defaults.
    let ran = module_child(
        &scratch,
        "zero-config",
        &[("SQLHSM_CONF", String::new())],
        false,
    );
    expect_child_ok(&ran, "zero-config");
    assert!(scratch.path("data/sqlhsm/sqlhsm.db").exists());
    // A missing default store is normal (every GnuTLS program loads the installed module
    // through p11-kit, for users who never made a store): no line on stderr at the default
    // level. A configured path that is missing is still reported (test above).
    assert!(
        !ran.stderr.contains("no key store"),
        "the missing default store was reported:\n{}",
        ran.stderr
    );
}

/// Every admin command but `token init` and `db migrate` says that a missing store is missing
/// (exit 3) and creates neither the file nor its directory.
#[test]
fn admin_commands_on_a_missing_store_say_so_and_create_nothing() {
    if skip_unless_sqlite("admin_commands_on_a_missing_store_say_so") {
        return;
    }
    let scratch = Scratch::new("missing-admin");
    let file = scratch.path("typo/kyes.db");
    let env = [("SQLHSM_DB", sqlite_url(&file))];
    let expected = format!("sqlhsm: no key store at {} {CREATED_BY}", file.display());
    let commands: &[&[&str]] = &[
        &["token", "list"],
        &["token", "show", "t"],
        &["token", "delete", "t"],
        &["key", "list"],
        &["key", "list", "--json"],
        &["key", "show", "k"],
        &["key", "history", "k"],
        &["key", "export-public", "k"],
        &["key", "generate", "--token", "t", "--algorithm", "aes-128"],
        &["key", "destroy", "k"],
        &["db", "status"],
        &["db", "check"],
    ];
    for args in commands {
        let ran = admin(&scratch, args, &env, false);
        ran.expect_code(3, &format!("{args:?}"));
        assert_eq!(ran.stderr_lines(), vec![expected.as_str()], "{args:?}");
        assert!(
            !scratch.path("typo").exists(),
            "{args:?} created the directory"
        );
    }
    // `db migrate` creates the store; then the read-only commands work on it.
    admin(&scratch, &["db", "migrate"], &env, false).expect_code(0, "db migrate");
    assert!(file.exists());
    let listed = admin(&scratch, &["key", "list", "--json"], &env, false);
    listed.expect_code(0, "key list");
    assert_eq!(listed.stdout.trim(), "[]");
    // `token init` creates a store too (with `--db`).
    let other = scratch.path("other/keys.db");
    let url = sqlite_url(&other);
    admin(&scratch, &["--db", &url, "token", "list"], &[], false).expect_code(3, "token list");
    admin(&scratch, &["--db", &url, "token", "init", "t"], &[], false).expect_code(0, "token init");
    assert!(other.exists());
    let tokens = admin(&scratch, &["--db", &url, "token", "list"], &[], false);
    tokens.expect_code(0, "token list");
    assert!(tokens.stdout.contains('t'), "{}", tokens.stdout);
}

// ---------- log lines ----------

#[track_caller]
fn assert_plain(text: &str, what: &str) {
    assert!(
        !text.contains('\u{1b}'),
        "{what}: ANSI escapes in a log that is not a terminal:\n{text}"
    );
}

/// The module inside another program, its stderr a pipe: plain lines, the token by its label.
#[test]
fn the_module_logs_plain_lines_naming_the_token_by_label() {
    let scratch = Scratch::new("log-module");
    let env = [
        ("SQLHSM_DB", sqlite_url(&scratch.path("keys.db"))),
        ("SQLHSM_LOG", "warn".to_string()),
    ];
    let ran = module_child(&scratch, "wrong-pin-logged", &env, false);
    expect_child_ok(&ran, "wrong-pin-logged");
    assert_plain(&ran.stderr, "the module");
    let line = ran
        .stderr_lines()
        .into_iter()
        .find(|l| l.contains("wrong PIN"))
        .unwrap_or_else(|| panic!("no wrong-PIN line:\n{}", ran.stderr))
        .to_string();
    assert!(line.contains("token=logged-token"), "{line}");
}

/// The admin command: one message when it fails (not the module's error lines three times
/// first), plain log lines when they are asked for, statuses and tokens by name.
#[test]
fn the_admin_command_says_one_thing_and_logs_plain_named_lines() {
    let scratch = Scratch::new("log-admin");
    let env = [("SQLHSM_DB", sqlite_url(&scratch.path("keys.db")))];
    admin(&scratch, &["token", "init", "plain"], &env, false).expect_code(0, "token init");
    // A remote provider whose PIN variable is not set: the module's client logs an error on
    // each of its tries; the command says it once.
    let failed = admin(
        &scratch,
        &[
            "token",
            "init",
            "remote",
            "--provider",
            "pkcs11",
            "--module",
            "/nonexistent/remote-module.so",
            "--remote-token",
            "hsm",
            "--remote-pin-env",
            "SQLHSM_TEST_UNSET_REMOTE_PIN",
        ],
        &env,
        false,
    );
    failed.expect_code(1, "token init with an unusable provider");
    assert_eq!(
        failed.stderr_lines(),
        vec![
            "sqlhsm: the remote provider is not usable: provider: the remote PIN variable \
             SQLHSM_TEST_UNSET_REMOTE_PIN is not set"
        ],
        "one clear message"
    );

    // Log lines asked for: plain, with names.
    let made = admin(
        &scratch,
        &[
            "key",
            "generate",
            "--token",
            "plain",
            "--algorithm",
            "aes-128",
        ],
        &env,
        false,
    );
    made.expect_code(0, "key generate");
    let key_id = made
        .stdout
        .split_whitespace()
        .nth(2)
        .expect("key_id")
        .to_string();
    let mut logged = env.to_vec();
    logged.push(("SQLHSM_LOG", "info".into()));
    let changed = admin(
        &scratch,
        &["key", "set-status", &key_id, "inactive"],
        &logged,
        false,
    );
    changed.expect_code(0, "set-status");
    assert_plain(&changed.stderr, "the admin command's log");
    assert!(
        changed
            .stderr
            .lines()
            .any(|l| l.contains("key state changed")
                && l.contains("from=\"active\" to=\"inactive\"")),
        "statuses by name:\n{}",
        changed.stderr
    );
    logged.push(("SQLHSM_PIN", "wrong-pin-7".into()));
    let refused = admin(
        &scratch,
        &["key", "set-status", &key_id, "active"],
        &logged,
        false,
    );
    refused.expect_code(1, "set-status with a wrong PIN");
    assert_plain(&refused.stderr, "the admin command's log");
    assert!(
        refused
            .stderr
            .lines()
            .any(|l| l.contains("wrong PIN") && l.contains("token=plain")),
        "the token by its label:\n{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains("sqlhsm: wrong user PIN for token \"plain\" (CKR_PIN_INCORRECT)"),
        "{}",
        refused.stderr
    );
}

// ---------- permissions ----------

/// Runs the permission checks as the unprivileged user, or says why they cannot run.
fn unprivileged_available() -> bool {
    if !is_root() {
        return true; // permission bits apply to this user already
    }
    let works = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--",
            "true",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !works {
        println!("skipped: running as root and `setpriv` cannot switch to uid {NOBODY}");
    }
    works
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[track_caller]
fn expect_refusal(ran: &Ran, what: &str, expected: &str) {
    ran.expect_code(3, what);
    assert_eq!(ran.stderr_lines(), vec![expected], "{what}");
    assert!(
        !ran.stderr.contains("unreachable"),
        "{what}: {}",
        ran.stderr
    );
}

/// A read-only file serves reads (listing, signing with an existing key) and refuses writes
/// naming the path and the cause; the token says it is write-protected.
#[test]
fn a_read_only_file_serves_reads_and_refuses_writes_by_name() {
    if skip_unless_sqlite("a_read_only_file_serves_reads") || !unprivileged_available() {
        return;
    }
    let scratch = Scratch::new("read-only-file");
    let dir = scratch.owned_dir("store");
    let file = dir.join("keys.db");
    let env = [("SQLHSM_DB", sqlite_url(&file))];
    admin(&scratch, &["token", "init", "ro"], &env, true).expect_code(0, "token init");
    admin(
        &scratch,
        &[
            "key",
            "generate",
            "--token",
            "ro",
            "--algorithm",
            "ec-p256",
            "--label",
            "s",
        ],
        &env,
        true,
    )
    .expect_code(0, "key generate");
    chmod(&file, 0o444);

    let listed = admin(&scratch, &["key", "list", "--json"], &env, true);
    listed.expect_code(0, "key list on a read-only file");
    assert!(listed.stdout.contains("\"s\""), "{}", listed.stdout);
    let expected = format!(
        "sqlhsm: the key store {0} is read-only: {0}: Permission denied (os error 13)",
        file.display()
    );
    let ran = admin(&scratch, &["token", "init", "second"], &env, true);
    expect_refusal(&ran, "token init", &expected);
    // Generating needs a login, which a read-only store refuses: it cannot count the guess.
    let args = ["key", "generate", "--token", "ro", "--algorithm", "aes-128"];
    let ran = admin(&scratch, &args, &env, true);
    expect_refusal(
        &ran,
        "key generate",
        &expected.replacen("sqlhsm: ", "sqlhsm: cannot log in to \"ro\": ", 1),
    );
    let ran = module_child(&scratch, "read-only-store", &env, true);
    expect_child_ok(&ran, "read-only-store");
    assert!(
        ran.stderr.contains("opened read-only") && ran.stderr.contains(&file.display().to_string()),
        "the module says so once, at C_Initialize:\n{}",
        ran.stderr
    );
    chmod(&file, 0o644);
}

/// A directory SQLite cannot create `-wal` / `-shm` files in, a file without read permission, a
/// directory that cannot be entered, and a path through a file: each is refused with the path
/// and the cause, and the module's `C_Initialize` answers `CKR_DEVICE_ERROR` with the same words
/// in its log.
#[test]
fn unusable_paths_are_named_with_their_cause() {
    if skip_unless_sqlite("unusable_paths_are_named_with_their_cause") || !unprivileged_available()
    {
        return;
    }
    let scratch = Scratch::new("unusable");
    let dir = scratch.owned_dir("store");
    let file = dir.join("keys.db");
    let env = [("SQLHSM_DB", sqlite_url(&file))];
    admin(&scratch, &["token", "init", "t"], &env, true).expect_code(0, "token init");
    for suffix in ["-wal", "-shm"] {
        assert!(
            !dir.join(format!("keys.db{suffix}")).exists(),
            "left {suffix} behind"
        );
    }

    // The directory is read-only: WAL mode cannot make its files beside the database.
    chmod(&dir, 0o555);
    let expected = format!("sqlhsm: cannot open the key store {0}: ", file.display());
    let ran = admin(&scratch, &["key", "list"], &env, true);
    ran.expect_code(3, "key list in a read-only directory");
    let line = ran.stderr_lines().join("\n");
    assert!(line.starts_with(&expected), "{line}");
    assert!(
        line.contains(&format!(
            "the directory {} must let this process create",
            dir.display()
        )),
        "{line}"
    );
    assert!(!line.contains("unreachable"), "{line}");
    let child = module_child(&scratch, "cannot-open", &env, true);
    expect_child_ok(&child, "cannot-open");
    assert!(
        child
            .stderr
            .contains(&format!("the directory {}", dir.display())),
        "{}",
        child.stderr
    );
    chmod(&dir, 0o755);

    // The file cannot be read.
    chmod(&file, 0o000);
    let ran = admin(&scratch, &["key", "list"], &env, true);
    expect_refusal(
        &ran,
        "key list on an unreadable file",
        &format!(
            "sqlhsm: cannot open the key store {}: Permission denied (os error 13)",
            file.display()
        ),
    );
    let child = module_child(&scratch, "cannot-open", &env, true);
    expect_child_ok(&child, "cannot-open");
    assert!(
        child.stderr.contains("Permission denied"),
        "{}",
        child.stderr
    );
    chmod(&file, 0o644);

    // The directory cannot be entered: the file's existence cannot even be checked.
    chmod(&dir, 0o700);
    if is_root() {
        std::os::unix::fs::chown(&dir, Some(0), Some(0)).expect("chown");
    } else {
        chmod(&dir, 0o000);
    }
    let ran = admin(&scratch, &["key", "list"], &env, true);
    expect_refusal(
        &ran,
        "key list in an untraversable directory",
        &format!(
            "sqlhsm: cannot open the key store {}: Permission denied (os error 13)",
            file.display()
        ),
    );
    let ran = admin(&scratch, &["token", "init", "x"], &env, true);
    expect_refusal(
        &ran,
        "token init in an untraversable directory",
        &format!(
            "sqlhsm: cannot open the key store {}: Permission denied (os error 13)",
            file.display()
        ),
    );
    chmod(&dir, 0o755);

    // A path through a file.
    let plain = scratch.write("plain", "not a directory");
    let through = plain.join("keys.db");
    let env = [("SQLHSM_DB", sqlite_url(&through))];
    let expected = format!(
        "sqlhsm: cannot open the key store {}: {} is a file, not a directory",
        through.display(),
        plain.display()
    );
    for args in [
        &["key", "list"][..],
        &["token", "init", "t"][..],
        &["db", "migrate"][..],
    ] {
        let ran = admin(&scratch, args, &env, false);
        expect_refusal(&ran, &format!("{args:?} through a file"), &expected);
    }
    let child = module_child(&scratch, "cannot-open", &env, false);
    expect_child_ok(&child, "cannot-open");
    assert!(
        child.stderr.contains("is a file, not a directory"),
        "{}",
        child.stderr
    );
}

// ---------- PostgreSQL grants ----------

/// Roles and a database made for the grants test; dropped at the end whatever happens.
struct PgRoles {
    base: String,
    roles: Vec<String>,
    db: Option<PgDatabase>,
}

impl Drop for PgRoles {
    fn drop(&mut self) {
        drop(self.db.take()); // the database first: the owner role owns it
        if let Ok(mut client) = pg_connect(&self.base) {
            for role in &self.roles {
                let _ = client.batch_execute(&format!("DROP ROLE IF EXISTS {role}"));
            }
        }
    }
}

fn with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}

/// The README's `GRANT` statements for the application role, for `database` and `role`.
fn readme_grants(database: &str, role: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let grants: Vec<String> = readme
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("GRANT ") && l.ends_with("TO sqlhsm_app;"))
        .map(|l| {
            l.replace("DATABASE sqlhsm ", &format!("DATABASE \"{database}\" "))
                .replace("sqlhsm_app", role)
        })
        .collect();
    assert!(grants.len() >= 4, "the README's grants: {grants:?}");
    grants
}

/// A role with exactly the README's grants, on a store its owner role migrated, generates,
/// rotates, marks compromised and destroys keys through the module, with their history; `db
/// check` finds nothing missing, and names `INSERT on key_event` once it is revoked.
#[test]
fn the_readme_grants_are_enough_for_every_key_operation() {
    if Backend::from_env() != Backend::Postgres {
        println!(
            "skipped: the_readme_grants_are_enough_for_every_key_operation is about PostgreSQL \
             roles (set SQLHSM_TEST_BACKEND=postgres)"
        );
        return;
    }
    let base = test_pg_url();
    let db = match PgDatabase::create(&base) {
        Ok(db) => db,
        Err(why) if std::env::var_os("CI").is_none() => {
            println!("skipped: PostgreSQL unreachable: {why}");
            return;
        }
        Err(why) => panic!("PostgreSQL unreachable: {why}"),
    };
    let suffix = &db.name[db.name.len() - 8..];
    let owner = format!("sqlhsm_owner_{suffix}");
    let app = format!("sqlhsm_app_{suffix}");
    let url = db.url.clone();
    let name = db.name.clone();
    let guard = PgRoles {
        base: base.clone(),
        roles: vec![app.clone(), owner.clone()],
        db: Some(db),
    };
    let superuser = || pg_connect(&url).expect("connect as the test superuser");
    superuser()
        .batch_execute(&format!(
            "CREATE ROLE {owner} LOGIN; CREATE ROLE {app} LOGIN;
             ALTER DATABASE \"{name}\" OWNER TO {owner};
             ALTER SCHEMA public OWNER TO {owner};
             REVOKE CREATE ON SCHEMA public FROM PUBLIC;"
        ))
        .expect("roles");
    let scratch = Scratch::new("pg-grants");
    let conf = scratch.write(
        "pg.toml",
        &format!("{FAST_CONF}[database]\npool_size = 2\n"),
    );
    let conf = ("SQLHSM_CONF", conf.display().to_string());
    let owner_env = [("SQLHSM_DB", with_user(&url, &owner)), conf.clone()];
    admin(&scratch, &["db", "migrate"], &owner_env, false).expect_code(0, "db migrate as owner");
    let mut client = superuser();
    for grant in readme_grants(&name, &app) {
        client
            .batch_execute(&grant)
            .unwrap_or_else(|e| panic!("{grant}: {e}"));
    }

    let app_env = [("SQLHSM_DB", with_user(&url, &app)), conf];
    let ran = module_child(&scratch, "pg-app-keys", &app_env, false);
    expect_child_ok(&ran, "pg-app-keys");
    let keys: Vec<String> = ran
        .stdout
        .lines()
        .find_map(|l| l.split_once("keys: ").map(|(_, ids)| ids))
        .expect("key ids")
        .split(' ')
        .map(str::to_string)
        .collect();
    let events = |key_id: &str| -> Vec<String> {
        let ran = admin(
            &scratch,
            &["key", "history", key_id, "--json"],
            &app_env,
            false,
        );
        ran.expect_code(0, "key history as the application role");
        let events: serde_json::Value = serde_json::from_str(&ran.stdout).expect("JSON");
        events
            .as_array()
            .expect("an array")
            .iter()
            .map(|e| e["event"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(events(&keys[0]), ["generated", "rotated"]);
    assert_eq!(events(&keys[1]), ["generated", "status"]);
    assert_eq!(events(&keys[2]), ["generated", "destroyed"]);
    let checked = admin(&scratch, &["db", "check"], &app_env, false);
    checked.expect_code(0, "db check as the application role");

    // Without INSERT on key_event: named by `db check`, and a status change is refused as a
    // privilege problem, not an outage.
    client
        .batch_execute(&format!("REVOKE INSERT ON key_event FROM {app}"))
        .expect("revoke");
    let checked = admin(&scratch, &["db", "check"], &app_env, false);
    checked.expect_code(1, "db check without INSERT on key_event");
    assert!(
        checked
            .stdout
            .contains("problem: store: the database role lacks INSERT on key_event"),
        "{}",
        checked.stdout
    );
    let refused = admin(
        &scratch,
        &["key", "set-status", &keys[0], "active"],
        &app_env,
        false,
    );
    refused.expect_code(3, "set-status without INSERT on key_event");
    assert!(
        refused
            .stderr
            .contains("permission denied for table key_event")
            && !refused.stderr.contains("unreachable"),
        "{}",
        refused.stderr
    );
    drop(client);
    drop(guard);
}

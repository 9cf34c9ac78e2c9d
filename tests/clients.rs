//! The clients users already have, against the built module, before and after a key rotation:
//! Java 17's SunPKCS11 (a program using `KeyStore`, `Signature` and `Cipher`, then `keytool` and
//! `jarsigner`), GnuTLS's `p11tool` and `certtool`, p11-kit (`p11-kit-proxy.so` and GnuTLS through
//! a p11-kit module configuration), OpenSC's `pkcs11-tool`, python-pkcs11 and OpenSSL's libp11
//! engine. Each drives `tests/clients/<client>.sh` (the commands the README shows) on a token of
//! its own, on the backend `SQLHSM_TEST_BACKEND` names:
//!
//! 1. `sqlhsm token init`; the script's `setup` makes the key pair `signer` (CKA_ID 01) and, for
//!    Java, GnuTLS and the engine, a self-signed certificate for it stored on the token;
//! 2. `before`: the client selects the key by label, id or URI, signs (and encrypts), keeping what
//!    it made;
//! 3. `sqlhsm key rotate`;
//! 4. `after`: the client, naming the key exactly as before, reaches exactly one key, the
//!    successor, and signs with it (checked against the successor's public key as the admin
//!    command exports it); the predecessor, reached by its derived name (label
//!    `signer@<key_id>`, CKA_ID `01` followed by `@<key_id>`), still verifies and decrypts what it
//!    made. Java, GnuTLS and the engine store a certificate for the successor.
//!
//! A client that is not installed skips with the reason printed; with `CI` set it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::Value;

/// The demo's PINs (examples/demo.rs), so the README's snippets are the scripts' lines.
const SO_PIN: &str = "demo-so-pin";
const PIN: &str = "demo-user-pin";
/// Where `.ci/run` makes the virtual environment with python-pkcs11 (under the target
/// directory, so CI leaves the system's python alone); `SQLHSM_TEST_PYTHON` names another python.
const VENV: &str = "clients-venv";
/// The unprivileged user the p11-kit script runs as when the tests run as root (p11-kit reads
/// no user configuration in a program running as root): `nobody`.
const UNPRIVILEGED: &str = "65534";

/// What a client needs: commands (with the Debian package that has them) and whether it must run
/// as an unprivileged user.
struct Client {
    /// `tests/clients/<script>.sh`, and the token's label `clients-<script>`.
    script: &'static str,
    commands: &'static [(&'static str, &'static str)],
    unprivileged: bool,
}

const OPENSSL_ENGINE: (&str, &str) = ("openssl", "openssl");
const PKCS11_TOOL: (&str, &str) = ("pkcs11-tool", "opensc");

#[test]
fn java_sunpkcs11_keytool_jarsigner() {
    run(&Client {
        script: "java",
        commands: &[
            ("java", "openjdk-17-jdk-headless"),
            ("javac", "openjdk-17-jdk-headless"),
            ("keytool", "openjdk-17-jdk-headless"),
            ("jarsigner", "openjdk-17-jdk-headless"),
            OPENSSL_ENGINE,
            PKCS11_TOOL,
        ],
        unprivileged: false,
    });
}

#[test]
fn gnutls_p11tool_certtool() {
    run(&Client {
        script: "gnutls",
        commands: &[
            ("p11tool", "gnutls-bin"),
            ("certtool", "gnutls-bin"),
            OPENSSL_ENGINE,
        ],
        unprivileged: false,
    });
}

#[test]
fn p11_kit_proxy_and_module_config() {
    run(&Client {
        script: "p11-kit",
        commands: &[
            ("p11-kit", "p11-kit"),
            ("p11tool", "gnutls-bin"),
            PKCS11_TOOL,
            OPENSSL_ENGINE,
        ],
        unprivileged: true,
    });
}

#[test]
fn pkcs11_tool_by_id() {
    run(&Client {
        script: "pkcs11-tool",
        commands: &[PKCS11_TOOL, OPENSSL_ENGINE],
        unprivileged: false,
    });
}

#[test]
fn python_pkcs11() {
    run(&Client {
        script: "python-pkcs11",
        commands: &[OPENSSL_ENGINE],
        unprivileged: false,
    });
}

#[test]
fn openssl_libp11_engine() {
    run(&Client {
        script: "openssl-engine",
        commands: &[OPENSSL_ENGINE, PKCS11_TOOL],
        unprivileged: false,
    });
}

/// Fails under `CI`, else prints why the client is skipped and returns false.
fn available(client: &Client) -> bool {
    let mut missing: Vec<String> = client
        .commands
        .iter()
        .filter(|(command, _)| !on_path(command))
        .map(|(command, package)| format!("`{command}` (Debian package {package})"))
        .collect();
    let needs_engine = client.commands.contains(&OPENSSL_ENGINE);
    if needs_engine && common::libp11_engine().is_none() {
        missing.push("the libp11 engine (Debian package libengine-pkcs11-openssl)".into());
    }
    if client.script == "python-pkcs11" && python().is_none() {
        missing.push(format!(
            "python-pkcs11: no virtual environment target/{VENV} (make it as .ci/run does: \
             python3 -m venv target/{VENV} && target/{VENV}/bin/pip install python-pkcs11==0.10.1)"
        ));
    }
    if client.unprivileged && is_root() && !on_path("setpriv") {
        missing
            .push("`setpriv` (Debian package util-linux), to run as an unprivileged user".into());
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!("{}: missing {}", client.script, missing.join(", "));
    assert!(
        std::env::var_os("CI").is_none(),
        "{why} (CI is set, so this is a failure, not a skip; .ci/run installs them)"
    );
    common::announce(&format!("skipped: {why}"));
    false
}

fn on_path(command: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {command}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The python of the virtual environment with python-pkcs11.
fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SQLHSM_TEST_PYTHON") {
        return Some(PathBuf::from(p));
    }
    // CARGO_TARGET_TMPDIR is <target>/tmp.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent()?;
    let python = target.join(VENV).join("bin").join("python");
    let works = Command::new(&python)
        .args(["-c", "import pkcs11"])
        .output()
        .is_ok_and(|o| o.status.success());
    works.then_some(python)
}

/// One client's run: its directory, store and environment.
struct Run {
    name: &'static str,
    script: PathBuf,
    work: PathBuf,
    envs: Vec<(String, String)>,
    /// `setpriv` arguments when the commands run as an unprivileged user.
    as_user: Option<Vec<String>>,
    /// Kept so a PostgreSQL database lives as long as the run.
    _db: common::TestDb,
}

impl Run {
    fn new(client: &Client) -> Run {
        let db = common::TestDb::new(client.script);
        let token = format!("clients-{}", client.script);
        let as_user = (client.unprivileged && is_root()).then(|| {
            [
                "--reuid",
                UNPRIVILEGED,
                "--regid",
                UNPRIVILEGED,
                "--clear-groups",
                "--",
            ]
            .map(String::from)
            .to_vec()
        });
        let mut module = common::module_path();
        let mut admin = PathBuf::from(env!("CARGO_BIN_EXE_sqlhsm"));
        let mut script_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
        // The unprivileged user's run lives in a directory of its own under /tmp; when it cannot
        // read the checkout (one under /root), with copies of the binaries and scripts.
        let work = if let Some(user) = &as_user {
            let work = tempfile::Builder::new()
                .prefix("sqlhsm-clients-")
                .tempdir()
                .expect("tempdir")
                .keep();
            let readable = Command::new("setpriv")
                .args(user)
                .args(["test", "-r"])
                .arg(&module)
                .args(["-a", "-r"])
                .arg(&admin)
                .args(["-a", "-r"])
                .arg(script_dir.join("common.sh"))
                .status()
                .is_ok_and(|s| s.success());
            if !readable {
                let copies = work.join("bin");
                std::fs::create_dir(&copies).expect("mkdir");
                for from in [&module, &admin] {
                    let to = copies.join(from.file_name().expect("file name"));
                    std::fs::copy(from, &to).expect("copy a binary for the unprivileged user");
                }
                module = copies.join("libsqlhsm.so");
                admin = copies.join("sqlhsm");
                for entry in std::fs::read_dir(&script_dir).expect("tests/clients") {
                    let from = entry.expect("entry").path();
                    let to = copies.join(from.file_name().expect("file name"));
                    std::fs::copy(&from, &to).expect("copy a script for the unprivileged user");
                }
                script_dir = copies;
            }
            let chown = Command::new("chown")
                .arg("-R")
                .arg(format!("{UNPRIVILEGED}:{UNPRIVILEGED}"))
                .arg(&work)
                .status()
                .expect("chown");
            assert!(chown.success(), "chown {}", work.display());
            work
        } else {
            db.dir.clone()
        };
        // The store: the backend's (on SQLite a file in the run's directory), and a config with
        // a cheap PIN KDF.
        let url = match &db.pg {
            Some(pg) => pg.url.clone(),
            None => format!("sqlite:{}", work.join("keys.db").display()),
        };
        let pool = if db.pg.is_some() {
            "pool_size = 4\n"
        } else {
            ""
        };
        let conf = work.join("sqlhsm.toml");
        std::fs::write(
            &conf,
            format!(
                "[database]\nurl = \"{url}\"\nbusy_timeout_ms = 10000\n{pool}\n\
                 [security]\npin_kdf_log_n = 10\n\n[log]\nlevel = \"warn\"\n"
            ),
        )
        .expect("write config");
        let script = script_dir.join(format!("{}.sh", client.script));
        let mut envs: Vec<(String, String)> = vec![
            ("SQLHSM_DB".into(), url),
            ("SQLHSM_CONF".into(), conf.display().to_string()),
            ("SQLHSM_LOG".into(), "warn".into()),
            ("MODULE".into(), module.display().to_string()),
            ("SQLHSM".into(), admin.display().to_string()),
            ("WORK".into(), work.display().to_string()),
            ("TOKEN".into(), token),
            ("PIN".into(), PIN.into()),
            ("SO_PIN".into(), SO_PIN.into()),
        ];
        if let Some(python) = python() {
            envs.push(("PYTHON".into(), python.display().to_string()));
        }
        Run {
            name: client.script,
            script,
            work,
            envs,
            as_user,
            _db: db,
        }
    }

    fn token(&self) -> &str {
        &self
            .envs
            .iter()
            .find(|(k, _)| k == "TOKEN")
            .expect("TOKEN")
            .1
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = match &self.as_user {
            Some(args) => {
                let mut c = Command::new("setpriv");
                c.args(args).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.current_dir(&self.work)
            .env_remove("SQLHSM_PIN")
            .env_remove("SQLHSM_SO_PIN")
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// `sqlhsm --json ARGS` with the PINs in its environment; the parsed output.
    fn admin(&self, args: &[&str]) -> Value {
        let admin = PathBuf::from(
            &self
                .envs
                .iter()
                .find(|(k, _)| k == "SQLHSM")
                .expect("SQLHSM")
                .1,
        );
        let out = self
            .command(&admin)
            .arg("--json")
            .args(args)
            .env("SQLHSM_PIN", PIN)
            .env("SQLHSM_SO_PIN", SO_PIN)
            .output()
            .expect("run sqlhsm");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "sqlhsm {args:?}: {}: {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("sqlhsm {args:?}: {e}: {stdout}"))
    }

    /// Runs the script's `phase` with `extra` in its environment; its output and whether it
    /// passed.
    fn phase(&self, phase: &str, extra: &[(&str, String)]) -> (bool, String) {
        let started = Instant::now();
        // Bounded: a phase takes seconds; a client waiting for a terminal must not hang CI.
        let out: Output = self
            .command(Path::new("timeout"))
            .args(["--kill-after=10", "300", "bash"])
            .arg(&self.script)
            .arg(phase)
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .expect("run the client script");
        let text = format!(
            "{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        common::announce(&format!(
            "clients: {} {phase}: {} in {:.1} s",
            self.name,
            if out.status.success() { "ok" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        ));
        (out.status.success(), text)
    }

    /// The token's asymmetric keys as `key list --json` shows them.
    fn keys(&self) -> Vec<Value> {
        let listed = self.admin(&["key", "list", "--token", self.token()]);
        listed
            .as_array()
            .unwrap_or_else(|| panic!("key list --json is not an array: {listed}"))
            .clone()
    }
}

fn text<'a>(key: &'a Value, field: &str) -> &'a str {
    key[field].as_str().unwrap_or_default()
}

fn run(client: &Client) {
    if !available(client) {
        return;
    }
    let started = Instant::now();
    let run = Run::new(client);
    println!("{}: work directory {}", run.name, run.work.display());

    let token = run.admin(&["token", "init", run.token()]);
    let slot = token["slot"]
        .as_u64()
        .unwrap_or_else(|| panic!("token init --json has no slot: {token}"));
    let slot = ("SLOT", slot.to_string());

    let (ok, out) = run.phase("setup", std::slice::from_ref(&slot));
    println!("{out}");
    assert!(ok, "{} setup failed; output above", run.name);
    let keys = run.keys();
    assert_eq!(keys.len(), 1, "one key after setup: {keys:?}");
    let old_kid = text(&keys[0], "key_id").to_string();
    assert_eq!(text(&keys[0], "label"), "signer");

    let (ok, out) = run.phase("before", &[slot.clone(), ("KID", old_kid.clone())]);
    println!("{out}");
    assert!(ok, "{} before the rotation failed; output above", run.name);

    let rotated = run.admin(&["key", "rotate", &old_kid]);
    let new_kid = text(&rotated["new"], "key_id").to_string();
    assert!(
        !new_kid.is_empty() && new_kid != old_kid,
        "rotate: {rotated}"
    );

    // The derived-name rule: the successor keeps label and CKA_ID; the predecessor's become
    // `<label>@<key_id>` and `<CKA_ID>` followed by the ASCII of `@<key_id>`.
    let old_label = format!("signer@{old_kid}");
    let old_id = format!("01{}", hex_of(format!("@{old_kid}").as_bytes()));
    let keys = run.keys();
    let find = |kid: &str| {
        keys.iter()
            .find(|k| text(k, "key_id") == kid)
            .unwrap_or_else(|| panic!("{kid} not listed: {keys:?}"))
    };
    let (old, new) = (find(&old_kid), find(&new_kid));
    assert_eq!(text(old, "status"), "inactive", "{old}");
    assert_eq!(text(new, "status"), "active", "{new}");
    assert_eq!(
        (text(new, "label"), text(new, "id")),
        ("signer", "01"),
        "the successor keeps label and CKA_ID: {new}"
    );
    let renamed = text(old, "label") == old_label;
    let rule = if renamed {
        format!("the predecessor is `{old_label}`, as the derived-name rule makes it")
    } else {
        format!(
            "the predecessor is still labelled `{}` with CKA_ID `{}`: the derived-name rule \
             (label `{old_label}`, CKA_ID {old_id}) is not in this build, so label, id and URI \
             name two keys",
            text(old, "label"),
            text(old, "id")
        )
    };
    println!("after rotation: {rule}");

    let (ok, out) = run.phase(
        "after",
        &[
            slot,
            ("OLD_KID", old_kid.clone()),
            ("NEW_KID", new_kid.clone()),
            ("OLD_LABEL", old_label.clone()),
            ("OLD_ID", old_id.clone()),
        ],
    );
    println!("{out}");
    assert!(
        ok,
        "{} after the rotation failed ({rule}); output above",
        run.name
    );
    assert!(renamed, "{rule}");
    assert_eq!(text(old, "id"), old_id, "the predecessor's CKA_ID: {old}");
    common::announce(&format!(
        "clients: {}: all phases passed in {:.1} s",
        run.name,
        started.elapsed().as_secs_f64()
    ));
    if run.as_user.is_some() {
        let _ = std::fs::remove_dir_all(&run.work);
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! `C_Initialize` with `CKF_LIBRARY_CANT_CREATE_OS_THREADS` (PKCS#11 3.0 §5.4): the module may
//! not start threads, and must still work, on the backend `SQLHSM_TEST_BACKEND` names. On
//! PostgreSQL that is the store's threadless mode (connections opened by the calls that need
//! them, the change feed read at the coherence checks).
//!
//! A thread of the test samples `/proc/self/task` every millisecond from before `C_Initialize`
//! to after `C_Finalize`, through token initialisation, logins, key generation, searches,
//! signatures, another process marking a key compromised (seen here within `coherence_ms` plus
//! slack) and GnuTLS's `p11tool` listing the token (GnuTLS initialises every module with the
//! flag): no other thread may ever appear. Without the flag, the same PostgreSQL store does run
//! threads, which shows the sampler would see them.
//!
//! One test in this file, so no other test thread of this process starts or ends meanwhile.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};

use common::*;

const TOKEN: &str = "no-threads";
const COHERENCE_MS: u64 = 1000;
const SLACK_MS: u64 = 500;

/// The process's thread ids.
fn tasks() -> BTreeSet<u32> {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Watches `/proc/self/task` from a thread of its own (counted in its baseline).
struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<BTreeSet<u32>>,
    baseline: BTreeSet<u32>,
}

impl Sampler {
    fn start() -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(AtomicUsize::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (stop, samples) = (stop.clone(), samples.clone());
            std::thread::spawn(move || {
                let baseline = tasks();
                ready_tx.send(baseline.clone()).expect("send baseline");
                let mut seen = BTreeSet::new();
                while !stop.load(Ordering::Acquire) {
                    seen.extend(tasks().difference(&baseline).copied());
                    samples.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(1));
                }
                seen.extend(tasks().difference(&baseline).copied());
                seen
            })
        };
        let baseline = ready_rx.recv().expect("sampler baseline");
        Sampler {
            stop,
            samples,
            thread,
            baseline,
        }
    }

    /// Threads that appeared since the start (however briefly, down to the sampling period).
    fn new_threads(&self) -> BTreeSet<u32> {
        tasks().difference(&self.baseline).copied().collect()
    }

    /// Stops; returns every thread seen that was not there at the start, and the sample count.
    fn finish(self) -> (BTreeSet<u32>, usize) {
        self.stop.store(true, Ordering::Release);
        let seen = self.thread.join().expect("sampler");
        (seen, self.samples.load(Ordering::Relaxed))
    }
}

#[test]
fn cant_create_os_threads_is_honoured() {
    // The server by name, not by address: the driver's own name lookup would run on a thread.
    let defaults = TestDbOptions::default();
    let pg_base_url = defaults.pg_base_url.replacen("@127.0.0.1", "@localhost", 1);
    let db = TestDb::with_options(
        "init-threads",
        TestDbOptions {
            extra_toml: format!("[cache]\ncoherence_ms = {COHERENCE_MS}\n"),
            pg_base_url,
            ..defaults
        },
    );
    db.set_env();
    let p = load();
    let sampler = Sampler::start();

    p.initialize(CInitializeArgs::new(
        CInitializeFlags::OS_LOCKING_OK | CInitializeFlags::LIBRARY_CANT_CREATE_OS_THREADS,
    ))
    .expect("C_Initialize(CKF_LIBRARY_CANT_CREATE_OS_THREADS)");
    assert_eq!(
        sampler.new_threads(),
        BTreeSet::new(),
        "C_Initialize started a thread"
    );
    work(&p, &db);
    assert_eq!(
        sampler.new_threads(),
        BTreeSet::new(),
        "the module started a thread"
    );
    p.clone().finalize().expect("C_Finalize");
    let (seen, samples) = sampler.finish();
    assert!(samples > 100, "the sampler looked only {samples} times");
    assert_eq!(
        seen,
        BTreeSet::new(),
        "threads appeared while the module worked without threads ({samples} samples)"
    );
    let line = format!(
        "init_threads: {}: no thread of the module's in {samples} samples of /proc/self/task",
        db.backend.name()
    );
    println!("{line}");
    announce(&line);

    if let Some(pg) = &db.pg {
        // C_Finalize closed every connection it opened.
        let sessions = || -> i64 {
            pg.client()
                .query_one(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND application_name = 'sqlhsm'",
                    &[],
                )
                .expect("count sessions")
                .get(0)
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while sessions() > 0 {
            assert!(
                Instant::now() < deadline,
                "{} connections of the module are still open after C_Finalize",
                sessions()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Without the flag the same store runs threads of its own (the default mode, kept).
        let before = tasks();
        p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .expect("C_Initialize without the flag");
        let after = tasks();
        assert!(
            after.len() > before.len(),
            "the threaded PostgreSQL store is expected to run threads ({} before, {} after)",
            before.len(),
            after.len()
        );
        p.finalize().expect("C_Finalize");
    }
}

/// Everything an application does, on the caller's thread only.
fn work(p: &Pkcs11, db: &TestDb) {
    let slot = new_token(p, TOKEN);
    let s = user_session(p, slot);
    let (_, key) = gen_ec(&s, P256, "no-threads", b"nt");
    let aes = gen_aes(&s, 32, "no-threads-aes");
    s.sign(&Mechanism::Ecdsa, key, &[1u8; 32]).expect("C_Sign");
    s.encrypt(&Mechanism::AesCbcPad([0u8; 16]), aes, b"secret")
        .expect("C_Encrypt");
    assert_eq!(
        find_by_label_class(&s, "no-threads", ObjectClass::PRIVATE_KEY),
        vec![key],
        "C_FindObjects"
    );
    s.logout().expect("C_Logout");
    s.login(UserType::User, Some(&pin(USER_PIN)))
        .expect("C_Login");
    s.sign(&Mechanism::EcdsaSha256, key, b"again")
        .expect("C_Sign after a new login");

    compromised_elsewhere_is_seen(&s, key, db);
    gnutls_lists_the_token(db);
}

/// Another process (the admin command) marks the cached key compromised; signing with it here
/// must be refused within `coherence_ms` plus slack of that process's exit.
fn compromised_elsewhere_is_seen(s: &Session, key: cryptoki::object::ObjectHandle, db: &TestDb) {
    let key_id = String::from_utf8(get_bytes(
        s,
        key,
        AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID),
    ))
    .expect("key_id is text");
    let started = Instant::now();
    let mut admin = Command::new(env!("CARGO_BIN_EXE_sqlhsm"))
        .args(["key", "set-status", &key_id, "compromised"])
        .envs(db.envs())
        .env("SQLHSM_PIN", USER_PIN)
        .env_remove("SQLHSM_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sqlhsm key set-status");
    let deadline = started + Duration::from_secs(60);
    let mut exited = None;
    let refused = loop {
        if exited.is_none() && admin.try_wait().expect("try_wait").is_some() {
            exited = Some(Instant::now());
        }
        match s.sign(&Mechanism::EcdsaSha256, key, b"still usable?") {
            Ok(_) => {}
            Err(cryptoki::error::Error::Pkcs11(RvError::KeyFunctionNotPermitted, _)) => {
                break Instant::now();
            }
            Err(e) => panic!("C_Sign failed with {e}, expected CKR_KEY_FUNCTION_NOT_PERMITTED"),
        }
        assert!(
            Instant::now() < deadline,
            "the compromise was never seen here"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = admin.wait_with_output().expect("wait for sqlhsm");
    assert!(
        out.status.success(),
        "sqlhsm key set-status: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let exited = exited.unwrap_or(refused);
    let after_exit = refused.saturating_duration_since(exited);
    let line = format!(
        "init_threads: {}: compromised by another process, refused here {} ms after it exited \
         ({} ms after it started; bound {COHERENCE_MS} + {SLACK_MS} ms)",
        db.backend.name(),
        after_exit.as_millis(),
        refused.duration_since(started).as_millis()
    );
    println!("{line}");
    announce(&line);
    assert!(
        after_exit <= Duration::from_millis(COHERENCE_MS + SLACK_MS),
        "{line}"
    );
    assert_eq!(
        get_ulong_vendor(s, key, CKA_SQLHSM_KEY_STATUS),
        3,
        "the key reads Compromised here"
    );
}

/// GnuTLS's `p11tool --provider` (which initialises modules with the flag) lists the token.
fn gnutls_lists_the_token(db: &TestDb) {
    let found = Command::new("p11tool").arg("--version").output();
    if !found.is_ok_and(|out| out.status.success()) {
        let why = "p11tool not found (Debian package gnutls-bin)";
        if std::env::var_os("CI").is_some() {
            panic!("{why}; CI is set, so this is a failure, not a skip");
        }
        announce(&format!("skipped: the GnuTLS check: {why}"));
        return;
    }
    let out = Command::new("p11tool")
        .arg("--provider")
        .arg(module_path())
        .arg("--list-tokens")
        .envs(db.envs())
        .stdin(Stdio::null())
        .output()
        .expect("run p11tool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(&format!("token={TOKEN}")),
        "p11tool --provider {} --list-tokens on {}: {:?}\n{stdout}{stderr}",
        module_path().display(),
        db.backend.name(),
        out.status
    );
    announce(&format!(
        "init_threads: {}: p11tool --list-tokens shows token={TOKEN}",
        db.backend.name()
    ));
}

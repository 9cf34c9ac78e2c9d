//! fork() from a busy program, on the backend `SQLHSM_TEST_BACKEND` names: `tests/c/fork.c` runs
//! 2 threads signing and 2 generating token keys non-stop while its main thread forks 100 times;
//! every child calls `C_GetSlotList` (must be `CKR_CRYPTOKI_NOT_INITIALIZED`), `C_Initialize`,
//! logs in, signs and verifies with the parent's key, generates a token key and finalizes.
//! Required: 0 hangs, 0 child errors, 0 parent errors; afterwards the store holds exactly the keys
//! the parent and the children reported, SQLite's integrity check passes, and a fresh process
//! signs with the shared key. The same again with every `C_Initialize` passing
//! `CKF_LIBRARY_CANT_CREATE_OS_THREADS` (PostgreSQL's threadless mode: connections and change
//! feed driven by the calls, inherited by each child and left alone there).

mod common;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectClass;

use common::*;

const FORKS: usize = 100;

fn field(line: &str, name: &str) -> usize {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {line:?}"))
}

#[test]
fn a_hundred_forks_from_a_busy_parent() {
    forks_from_a_busy_parent("fork", false);
}

#[test]
fn a_hundred_forks_from_a_busy_parent_without_threads() {
    forks_from_a_busy_parent("fork-no-threads", true);
}

fn forks_from_a_busy_parent(name: &str, no_os_threads: bool) {
    // One at a time: each run loads the machine fully (two at once on two cores pushed lock
    // waits past the busy timeout), and both initialise this process's module at the end.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let exe = compile_c("fork", &["-ldl", "-lpthread"]);
    let db = TestDb::new(name);
    let started = std::time::Instant::now();
    let out = std::process::Command::new(&exe)
        .arg(module_path())
        .envs(db.envs())
        .env("FORK_TOKEN", "fork")
        .env("FORKS", FORKS.to_string())
        .env("FORK_NO_OS_THREADS", if no_os_threads { "1" } else { "0" })
        .output()
        .expect("run tests/c/fork.c");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- fork stdout ---\n{stdout}--- stderr ---\n{stderr}");
    assert!(out.status.success(), "fork program: {:?}", out.status);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("fork summary:"))
        .expect("a summary line");
    announce(&format!(
        "fork ({}{}): {line} in {:.1} s",
        db.backend.name(),
        if no_os_threads {
            ", CKF_LIBRARY_CANT_CREATE_OS_THREADS"
        } else {
            ""
        },
        started.elapsed().as_secs_f64()
    ));
    assert_eq!(field(line, "forks"), FORKS);
    assert_eq!(field(line, "hangs"), 0, "children hung");
    assert_eq!(field(line, "child_errors"), 0, "children failed");
    assert_eq!(field(line, "parent_errors"), 0, "the parent failed");
    assert!(
        field(line, "parent_ops") > 0,
        "the parent's threads did nothing"
    );

    // Behind the module's back: what was reported is what is stored.
    let label = match db.backend {
        Backend::Sqlite => "json_extract(metadata, '$.label')",
        Backend::Postgres => "metadata->>'label'",
    };
    let count = |table: &str, pattern: &str| -> usize {
        db.query_texts(&format!(
            "SELECT key_id FROM {table} WHERE {label} LIKE '{pattern}'"
        ))
        .len()
    };
    let parent_rows = count("asym_key", "fork-parent-%") + count("sym_key", "fork-parent-%");
    assert_eq!(parent_rows, field(line, "parent_keys"), "the parent's keys");
    assert_eq!(count("sym_key", "fork-child-%"), FORKS, "one key per child");
    if db.backend == Backend::Sqlite {
        assert_eq!(
            db.query_texts("PRAGMA integrity_check"),
            vec!["ok".to_string()],
            "SQLite integrity"
        );
    }

    // A fresh process signs with the key every child used.
    let p = init(&db);
    let slot = slot_by_label(&p, "fork").expect("the token");
    let s = user_session(&p, slot);
    let private = find_by_label_class(&s, "fork-signer", ObjectClass::PRIVATE_KEY);
    let public = find_by_label_class(&s, "fork-signer", ObjectClass::PUBLIC_KEY);
    let signature = s
        .sign(&Mechanism::EcdsaSha256, private[0], b"after the forks")
        .expect("C_Sign");
    s.verify(
        &Mechanism::EcdsaSha256,
        public[0],
        b"after the forks",
        &signature,
    )
    .expect("C_Verify");
    drop(s);
    p.finalize().expect("C_Finalize");
}

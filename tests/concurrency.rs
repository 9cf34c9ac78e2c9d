//! Concurrency: 8 threads with their own sessions signing with one token key, and several
//! processes creating and using keys in one database at once (SQLite or PostgreSQL, as
//! `SQLHSM_TEST_BACKEND` says). The multi-process part
//! re-executes this test binary with `SQLHSM_CHILD_ROLE` set and only `child_process` selected.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectClass;

use common::*;

#[test]
fn eight_threads_sign_with_one_key() {
    let p = ctx();
    let slot = new_token(p, "threads");
    let (public, private) = {
        let s = user_session(p, slot);
        gen_ec(&s, P256, "shared", b"sh")
    };
    let ops = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(3);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let ops = Arc::clone(&ops);
            std::thread::spawn(move || {
                let p = ctx();
                // Own session per thread; the login is per token, so only the first counts.
                let s = user_session(p, slot);
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let msg = format!("thread {t} op {n}");
                    let sig = s
                        .sign(&Mechanism::EcdsaSha256, private, msg.as_bytes())
                        .unwrap_or_else(|e| panic!("thread {t}: C_Sign: {e}"));
                    if n.is_multiple_of(16) {
                        s.verify(&Mechanism::EcdsaSha256, public, msg.as_bytes(), &sig)
                            .unwrap_or_else(|e| panic!("thread {t}: C_Verify: {e}"));
                    }
                    n += 1;
                }
                ops.fetch_add(n, Ordering::Relaxed);
                n
            })
        })
        .collect();
    for (t, h) in handles.into_iter().enumerate() {
        let n = h.join().unwrap_or_else(|_| panic!("thread {t} panicked"));
        assert!(n > 0, "thread {t} made progress");
    }
    let total = ops.load(Ordering::Relaxed);
    // Printed for information only; timing is never asserted.
    println!(
        "8 threads: {total} ECDSA P-256 signatures in 3 s = {:.0} ops/s",
        total as f64 / 3.0
    );
}

const TOKEN: &str = "multi-process";
const WORKERS: usize = 2;
const KEYS_PER_WORKER: usize = 4;

fn child(db: &TestDb, role: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .envs(db.envs())
        .env("SQLHSM_CHILD_ROLE", role)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child")
}

fn wait(role: &str, c: std::process::Child) {
    let out = c.wait_with_output().unwrap();
    println!(
        "--- {role} ---\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "child {role} failed: {:?}",
        out.status
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("child {role}: ok")));
}

#[test]
fn processes_share_one_database() {
    let db = TestDb::new("multi-process");
    wait("setup", child(&db, "setup"));
    let workers: Vec<_> = (0..WORKERS)
        .map(|i| (format!("worker{i}"), child(&db, &format!("worker{i}"))))
        .collect();
    for (role, c) in workers {
        wait(&role, c);
    }
    wait("verify", child(&db, "verify"));
}

/// Runs only in the child processes `processes_share_one_database` starts.
#[test]
fn child_process() {
    let Ok(role) = std::env::var("SQLHSM_CHILD_ROLE") else {
        return;
    };
    // Not the shared `ctx()`: the child's env (set by the parent) names the database.
    let p = cryptoki::context::Pkcs11::new(module_path()).unwrap();
    p.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ))
    .expect("C_Initialize in child");
    match role.as_str() {
        "setup" => {
            let slot = new_token(&p, TOKEN);
            let s = user_session(&p, slot);
            gen_ec(&s, P256, "shared-ec", b"shared");
        }
        "verify" => {
            let slot = slot_by_label(&p, TOKEN).expect("token");
            let s = user_session(&p, slot);
            for w in 0..WORKERS {
                for k in 0..KEYS_PER_WORKER {
                    let label = format!("worker{w}-ec{k}");
                    assert_eq!(find_by_label(&s, &label).len(), 2, "{label}: pair present");
                    let label = format!("worker{w}-aes{k}");
                    assert_eq!(find_by_label(&s, &label).len(), 1, "{label} present");
                }
            }
            let privs = s
                .find_objects(&[cryptoki::object::Attribute::Class(ObjectClass::PRIVATE_KEY)])
                .unwrap();
            assert_eq!(
                privs.len(),
                1 + WORKERS * KEYS_PER_WORKER,
                "no extra or lost keys"
            );
        }
        worker => {
            let slot = slot_by_label(&p, TOKEN).expect("token made by setup");
            let s = user_session(&p, slot);
            let shared = find_by_label_class(&s, "shared-ec", ObjectClass::PRIVATE_KEY);
            assert_eq!(
                shared.len(),
                1,
                "the key made by another process is visible"
            );
            let shared_pub = find_by_label_class(&s, "shared-ec", ObjectClass::PUBLIC_KEY)[0];
            for k in 0..KEYS_PER_WORKER {
                let (public, private) =
                    gen_ec(&s, P256, &format!("{worker}-ec{k}"), worker.as_bytes());
                let aes = gen_aes(&s, 32, &format!("{worker}-aes{k}"));
                let sig = s.sign(&Mechanism::EcdsaSha256, private, b"mine").unwrap();
                s.verify(&Mechanism::EcdsaSha256, public, b"mine", &sig)
                    .unwrap();
                let sig = s
                    .sign(&Mechanism::EcdsaSha256, shared[0], b"shared")
                    .unwrap();
                s.verify(&Mechanism::EcdsaSha256, shared_pub, b"shared", &sig)
                    .unwrap();
                let ct = s
                    .encrypt(&Mechanism::AesCbcPad([k as u8; 16]), aes, b"data")
                    .unwrap();
                assert_eq!(
                    s.decrypt(&Mechanism::AesCbcPad([k as u8; 16]), aes, &ct)
                        .unwrap(),
                    b"data"
                );
            }
        }
    }
    println!("child {role}: ok");
    p.finalize().unwrap();
}

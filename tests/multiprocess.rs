//! Many processes and threads on one token, on the backend `SQLHSM_TEST_BACKEND` names.
//!
//! `four_processes_four_threads`: 4 re-executed worker processes × 4 threads each generate EC
//! P-256 key pairs and AES keys with unique labels, find them, sign / verify and encrypt /
//! decrypt with them, use a key another process made, and destroy half of what they made — all
//! at once. Every call must succeed (in particular no `CKR_GENERAL_ERROR`); afterwards a fresh
//! process finds exactly the keys that should remain, and every key has its own `key_id`.
//!
//! `concurrent_wrong_logins_count_exactly`: with `max_pin_failures = 12`, 4 processes make 11
//! wrong `C_Login(CKU_USER)` attempts at once (several threads each); the PIN must not be locked;
//! one more wrong attempt locks it. The stored counter is checked as well (11, then 12).
//!
//! The parent only orchestrates: each role runs in a child (`child_process`, selected by
//! `SQLHSM_CHILD_ROLE`), because the module's configuration is per process.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};

use common::*;

const TOKEN: &str = "multiprocess";
const PROCESSES: usize = 4;
const THREADS: usize = 4;
/// Key pairs and AES keys each thread makes; the odd-numbered ones are destroyed again.
const KEYS_PER_THREAD: usize = 12;

const PIN_TOKEN: &str = "wrong-logins";
const PIN_LIMIT: usize = 12;
/// Wrong attempts per process in the concurrent round: 11 in all, one short of the limit.
const WRONG_PER_PROCESS: [usize; PROCESSES] = [3, 3, 3, 2];

fn ec_label(w: usize, t: usize, k: usize) -> String {
    format!("mp-w{w}-t{t}-ec{k}")
}

fn aes_label(w: usize, t: usize, k: usize) -> String {
    format!("mp-w{w}-t{t}-aes{k}")
}

fn sync_dir(db: &TestDb, name: &str) -> std::path::PathBuf {
    let dir = db.dir.join(name);
    std::fs::create_dir_all(&dir).expect("sync dir");
    dir
}

#[test]
fn four_processes_four_threads() {
    if child_role().is_some() {
        return;
    }
    let db = TestDb::new("multiprocess");
    finish_child("setup", spawn_child("child_process", "setup", &db, &[]));

    let sync = sync_dir(&db, "work");
    let workers: Vec<_> = (0..PROCESSES)
        .map(|w| {
            let role = format!("worker{w}");
            let c = spawn_child(
                "child_process",
                &role,
                &db,
                &[(ENV_CHILD_SYNC, sync.display().to_string())],
            );
            (role, c)
        })
        .collect();
    release_children(&sync, PROCESSES);
    let started = Instant::now();
    let (mut operations, mut errors) = (0u64, 0u64);
    for (role, c) in workers {
        let out = finish_child(&role, c);
        // libtest may print `test child_process ... ` in front of the child's first line.
        let tag = format!("{role}: operations=");
        let line = out
            .lines()
            .find_map(|l| l.find(&tag).map(|at| &l[at..]))
            .unwrap_or_else(|| panic!("{role} printed no summary"));
        let field = |name: &str| -> u64 {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} in {line:?}"))
        };
        operations += field("operations");
        errors += field("errors");
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "multiprocess: {} processes={PROCESSES} threads={THREADS} operations={operations} \
         errors={errors} in {elapsed:.1} s",
        db.backend.name()
    );
    announce(&format!(
        "multiprocess: {} processes={PROCESSES} threads={THREADS} operations={operations} \
         errors={errors} in {elapsed:.1} s",
        db.backend.name()
    ));
    assert_eq!(
        errors, 0,
        "no call failed (the workers' output above lists them)"
    );

    finish_child("verify", spawn_child("child_process", "verify", &db, &[]));

    // Behind the module's back: one row per remaining key, and no key_id twice.
    let remaining = 1 + PROCESSES * THREADS * KEYS_PER_THREAD / 2;
    let asym = db.query_texts("SELECT key_id FROM asym_key");
    let sym = db.query_texts("SELECT key_id FROM sym_key");
    assert_eq!(asym.len(), remaining, "asym_key rows");
    assert_eq!(sym.len(), remaining - 1, "sym_key rows");
    let mut all: Vec<&String> = asym.iter().chain(sym.iter()).collect();
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "no duplicate key_id in the database");
}

#[test]
fn concurrent_wrong_logins_count_exactly() {
    if child_role().is_some() {
        return;
    }
    let db = TestDb::with_options(
        "wrong-logins",
        TestDbOptions {
            max_pin_failures: PIN_LIMIT,
            ..TestDbOptions::default()
        },
    );
    finish_child(
        "pin-setup",
        spawn_child("child_process", "pin-setup", &db, &[]),
    );
    let sync = sync_dir(&db, "pins");
    let children: Vec<_> = WRONG_PER_PROCESS
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let role = format!("pin-wrong{i}");
            let c = spawn_child(
                "child_process",
                &role,
                &db,
                &[
                    (ENV_CHILD_SYNC, sync.display().to_string()),
                    ("SQLHSM_WRONG_LOGINS", n.to_string()),
                ],
            );
            (role, c)
        })
        .collect();
    release_children(&sync, PROCESSES);
    for (role, c) in children {
        finish_child(&role, c);
    }
    let concurrent: usize = WRONG_PER_PROCESS.iter().sum();
    assert_eq!(
        db.user_failures(PIN_TOKEN),
        concurrent as u64,
        "every concurrent wrong login counted once"
    );
    // Not locked after 11; locked by the 12th (checked through PKCS#11 in the child).
    finish_child(
        "pin-last",
        spawn_child("child_process", "pin-last", &db, &[]),
    );
    assert_eq!(db.user_failures(PIN_TOKEN), PIN_LIMIT as u64);
    println!(
        "multiprocess: {} wrong logins: {concurrent} concurrent from {PROCESSES} processes \
         counted exactly, locked by attempt {PIN_LIMIT}",
        db.backend.name()
    );
}

/// Runs only in the children the tests above start.
#[test]
fn child_process() {
    let Some(role) = child_role() else {
        return;
    };
    let p = child_init();
    match role.as_str() {
        "setup" => {
            let slot = new_token(&p, TOKEN);
            let s = user_session(&p, slot);
            gen_ec(&s, P256, "mp-shared", b"shared");
        }
        "verify" => verify(&p),
        "pin-setup" => {
            new_token(&p, PIN_TOKEN);
        }
        "pin-last" => {
            let slot = slot_by_label(&p, PIN_TOKEN).expect("token");
            let info = p.get_token_info(slot).expect("C_GetTokenInfo");
            assert!(
                !info.user_pin_locked(),
                "not locked after {} of {PIN_LIMIT} failures",
                PIN_LIMIT - 1
            );
            assert!(
                info.user_pin_final_try(),
                "CKF_USER_PIN_FINAL_TRY after {} of {PIN_LIMIT} failures",
                PIN_LIMIT - 1
            );
            let s = p.open_rw_session(slot).expect("C_OpenSession");
            expect_rv_in(
                s.login(UserType::User, Some(&pin("wrong-pin-9999"))),
                &[RvError::PinIncorrect, RvError::PinLocked],
            );
            assert!(
                p.get_token_info(slot)
                    .expect("C_GetTokenInfo")
                    .user_pin_locked(),
                "locked after {PIN_LIMIT} failures"
            );
            expect_rv(
                s.login(UserType::User, Some(&pin(USER_PIN))),
                RvError::PinLocked,
            );
        }
        r if r.starts_with("pin-wrong") => {
            let n: usize = std::env::var("SQLHSM_WRONG_LOGINS")
                .expect("SQLHSM_WRONG_LOGINS")
                .parse()
                .expect("a count");
            let slot = slot_by_label(&p, PIN_TOKEN).expect("token");
            // One session per thread, opened before the start signal.
            let sessions: Vec<Session> = (0..n)
                .map(|_| p.open_rw_session(slot).expect("C_OpenSession"))
                .collect();
            child_ready_then_wait(r);
            std::thread::scope(|scope| {
                for s in sessions {
                    scope.spawn(move || {
                        expect_rv(
                            s.login(UserType::User, Some(&pin("wrong-pin-9999"))),
                            RvError::PinIncorrect,
                        )
                    });
                }
            });
        }
        worker => work(&p, worker),
    }
    println!("child {role}: ok");
    p.finalize().expect("C_Finalize");
}

/// Counts operations and records every failed call (rather than stopping at the first).
struct Tally {
    operations: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn check<T>(&self, what: &str, r: cryptoki::error::Result<T>) -> Option<T> {
        self.operations.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("{what}: {e}"));
                None
            }
        }
    }

    fn fail(&self, what: String) {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(what);
    }
}

fn work(p: &Pkcs11, role: &str) {
    let w: usize = role
        .strip_prefix("worker")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unknown role {role}"));
    let slot = slot_by_label(p, TOKEN).expect("token made by setup");
    let tally = Tally {
        operations: AtomicU64::new(0),
        errors: Mutex::new(Vec::new()),
    };
    // Sessions and the login before the start signal, so the timed part is the key work.
    let sessions: Vec<Session> = (0..THREADS).map(|_| user_session(p, slot)).collect();
    child_ready_then_wait(role);
    std::thread::scope(|scope| {
        for (t, s) in sessions.into_iter().enumerate() {
            let tally = &tally;
            scope.spawn(move || thread_work(&s, w, t, tally));
        }
    });
    let errors = tally.errors.into_inner().unwrap_or_else(|p| p.into_inner());
    for e in &errors {
        println!("{role}: ERROR {e}");
    }
    let general = errors.iter().filter(|e| e.contains("GeneralError")).count();
    println!(
        "{role}: operations={} errors={} general_errors={general}",
        tally.operations.load(Ordering::Relaxed),
        errors.len()
    );
}

fn thread_work(s: &Session, w: usize, t: usize, tally: &Tally) {
    let shared = tally
        .check(
            "C_FindObjects(shared)",
            s.find_objects(&[
                Attribute::Label(b"mp-shared".to_vec()),
                Attribute::Class(ObjectClass::PRIVATE_KEY),
            ]),
        )
        .unwrap_or_default();
    if shared.len() != 1 {
        tally.fail(format!("shared key: found {} objects", shared.len()));
    }
    for k in 0..KEYS_PER_THREAD {
        let ec = ec_label(w, t, k);
        let aes = aes_label(w, t, k);
        let (public, private) = ec_templates(P256, &ec, format!("{w}.{t}.{k}").as_bytes());
        let Some((public, private)) = tally.check(
            "C_GenerateKeyPair",
            s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private),
        ) else {
            continue;
        };
        let Some(secret) = tally.check(
            "C_GenerateKey",
            s.generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::ValueLen(32.into()),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Label(aes.as_bytes().to_vec()),
                ],
            ),
        ) else {
            continue;
        };
        let found = find_counted(s, tally, &ec);
        if found.len() != 2 {
            tally.fail(format!("{ec}: found {} objects, want 2", found.len()));
        }
        let found = find_counted(s, tally, &aes);
        if found != [secret] {
            tally.fail(format!("{aes}: found {found:?}, want [{secret:?}]"));
        }
        let msg = format!("{ec} signs");
        if let Some(sig) = tally.check(
            "C_Sign",
            s.sign(&Mechanism::EcdsaSha256, private, msg.as_bytes()),
        ) {
            tally.check(
                "C_Verify",
                s.verify(&Mechanism::EcdsaSha256, public, msg.as_bytes(), &sig),
            );
        }
        if let Some(&other) = shared.first() {
            tally.check(
                "C_Sign(shared)",
                s.sign(&Mechanism::EcdsaSha256, other, msg.as_bytes()),
            );
        }
        let iv = [k as u8; 16];
        if let Some(ct) = tally.check(
            "C_Encrypt",
            s.encrypt(&Mechanism::AesCbcPad(iv), secret, msg.as_bytes()),
        ) {
            if let Some(pt) = tally.check(
                "C_Decrypt",
                s.decrypt(&Mechanism::AesCbcPad(iv), secret, &ct),
            ) {
                if pt != msg.as_bytes() {
                    tally.fail(format!("{aes}: decryption gave other bytes"));
                }
            }
        }
        if k % 2 == 1 {
            for (what, h) in [("private", private), ("public", public), ("aes", secret)] {
                tally.check(&format!("C_DestroyObject({what})"), s.destroy_object(h));
            }
            for label in [&ec, &aes] {
                let left = find_counted(s, tally, label);
                if !left.is_empty() {
                    tally.fail(format!(
                        "{label}: {} objects left after destroy",
                        left.len()
                    ));
                }
            }
        }
    }
}

fn find_counted(s: &Session, tally: &Tally, label: &str) -> Vec<ObjectHandle> {
    tally
        .check(
            "C_FindObjects",
            s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())]),
        )
        .unwrap_or_default()
}

/// A fresh process sees exactly the keys that should remain, each with its own key_id.
fn verify(p: &Pkcs11) {
    let slot = slot_by_label(p, TOKEN).expect("token");
    let s = user_session(p, slot);
    for w in 0..PROCESSES {
        for t in 0..THREADS {
            for k in 0..KEYS_PER_THREAD {
                let (want_ec, want_aes) = if k % 2 == 0 { (2, 1) } else { (0, 0) };
                let ec = ec_label(w, t, k);
                assert_eq!(find_by_label(&s, &ec).len(), want_ec, "{ec}");
                let aes = aes_label(w, t, k);
                assert_eq!(find_by_label(&s, &aes).len(), want_aes, "{aes}");
            }
        }
    }
    let remaining = PROCESSES * THREADS * KEYS_PER_THREAD / 2;
    let class = |c: ObjectClass| {
        s.find_objects(&[Attribute::Class(c)])
            .expect("C_FindObjects")
    };
    let privates = class(ObjectClass::PRIVATE_KEY);
    let publics = class(ObjectClass::PUBLIC_KEY);
    let secrets = class(ObjectClass::SECRET_KEY);
    assert_eq!(
        privates.len(),
        remaining + 1,
        "private keys (+ the shared one)"
    );
    assert_eq!(
        publics.len(),
        remaining + 1,
        "public keys (+ the shared one)"
    );
    assert_eq!(secrets.len(), remaining, "secret keys");

    let key_id = |h: ObjectHandle| -> String {
        String::from_utf8(get_bytes(
            &s,
            h,
            AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID),
        ))
        .expect("CKA_SQLHSM_KEY_ID is UTF-8")
    };
    let mut ids: Vec<String> = privates
        .iter()
        .chain(&secrets)
        .map(|&h| key_id(h))
        .collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "no duplicate CKA_SQLHSM_KEY_ID");
    // A pair's halves are one row, so each public key's key_id is a private key's.
    for h in publics {
        let id = key_id(h);
        assert!(
            ids.binary_search(&id).is_ok(),
            "public key {id} has its pair"
        );
    }
    println!("verify: {n} keys, {n} distinct key_ids");
}

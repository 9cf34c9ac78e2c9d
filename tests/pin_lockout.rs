//! PIN lockout under concurrency, on the backend `SQLHSM_TEST_BACKEND` names.
//!
//! With `max_pin_failures = 3`, 4 re-executed processes × 4 threads guess one PIN at the same
//! moment, each thread until it is told `CKR_PIN_LOCKED`. A `CKR_PIN_INCORRECT` answer is a guess
//! that was evaluated (the derivation ran and its verdict came back), so across every process the
//! answers must number exactly the limit, the stored counter must equal it, and afterwards the
//! correct PIN is refused too. This runs for the user PIN and for the SO PIN.
//!
//! `correct_pin_racing_wrong_guesses`: the same storm, with one more process logging in with the
//! correct PIN at the same moment. Either the correct login was evaluated before the lock (it
//! succeeds; the counter restarts at the guesses still in flight, so at most `2 × limit − 1`
//! wrong guesses are evaluated in all) or after it (`CKR_PIN_LOCKED`, and exactly `limit`); in
//! both cases the PIN ends locked and the correct PIN is refused.
//!
//! The PIN derivation is made slower than the other tests' (`pin_kdf_log_n = 14`) so that the
//! guesses really overlap.

mod common;

use cryptoki::error::RvError;
use cryptoki::session::{Session, UserType};

use common::*;

const LIMIT: usize = 3;
const PROCESSES: usize = 4;
const THREADS: usize = 4;
/// A thread stops after this many guesses even if never told `CKR_PIN_LOCKED`.
const MAX_TRIES_PER_THREAD: usize = 8;
const TOKEN: &str = "lockout";

/// What one storm of guesses did, summed over the processes.
#[derive(Debug, Default)]
struct Storm {
    incorrect: usize,
    locked: usize,
    /// The racing correct login's answer, when there was one.
    correct: Option<String>,
}

fn db() -> TestDb {
    TestDb::with_options(
        "pin-lockout",
        TestDbOptions {
            max_pin_failures: LIMIT,
            pin_kdf_log_n: 14,
            ..TestDbOptions::default()
        },
    )
}

/// Starts the guessing processes at once and adds up what they report.
fn storm(db: &TestDb, name: &str, which: &str, racing_correct: bool) -> Storm {
    let sync = db.dir.join(name);
    std::fs::create_dir_all(&sync).expect("sync dir");
    // The racer is a process of its own: a login is per application, so a correct login would
    // make its process's other sessions answer CKR_USER_ALREADY_LOGGED_IN.
    let processes = PROCESSES + usize::from(racing_correct);
    let children: Vec<_> = (0..processes)
        .map(|i| {
            let racer = i == PROCESSES;
            let role = match racer {
                true => "racer".to_string(),
                false => format!("guess{i}"),
            };
            let c = spawn_child(
                "child_process",
                &role,
                db,
                &[
                    (ENV_CHILD_SYNC, sync.display().to_string()),
                    ("SQLHSM_GUESS_PIN", which.to_string()),
                    ("SQLHSM_GUESS_RACER", racer.to_string()),
                ],
            );
            (role, c)
        })
        .collect();
    release_children(&sync, processes);
    let mut total = Storm::default();
    for (role, c) in children {
        let out = finish_child(&role, c);
        let line = out
            .lines()
            .find_map(|l| l.find("guesses:").map(|at| &l[at..]))
            .unwrap_or_else(|| panic!("{role} printed no summary"));
        let field = |name: &str| -> String {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} in {line:?}"))
                .to_string()
        };
        total.incorrect += field("incorrect").parse::<usize>().expect("count");
        total.locked += field("locked").parse::<usize>().expect("count");
        let correct = field("correct");
        if correct != "-" {
            total.correct = Some(correct);
        }
    }
    total
}

fn setup(db: &TestDb) {
    finish_child("setup", spawn_child("child_process", "setup", db, &[]));
}

fn check_locked(db: &TestDb, which: &str) {
    finish_child(
        "check-locked",
        spawn_child(
            "child_process",
            "check-locked",
            db,
            &[("SQLHSM_GUESS_PIN", which.to_string())],
        ),
    );
}

#[test]
fn concurrent_wrong_user_pins_stop_at_the_limit() {
    if child_role().is_some() {
        return;
    }
    let db = db();
    setup(&db);
    let s = storm(&db, "user", "user", false);
    println!(
        "pin lockout ({}): user PIN, {PROCESSES} processes x {THREADS} threads: \
         {} wrong guesses evaluated, {} told locked (limit {LIMIT})",
        db.backend.name(),
        s.incorrect,
        s.locked
    );
    assert_eq!(s.incorrect, LIMIT, "wrong guesses evaluated");
    assert_eq!(s.locked, PROCESSES * THREADS, "every thread ends locked");
    assert_eq!(db.token_counter(TOKEN, "user_failures"), LIMIT as u64);
    check_locked(&db, "user");
}

#[test]
fn concurrent_wrong_so_pins_stop_at_the_limit() {
    if child_role().is_some() {
        return;
    }
    let db = db();
    setup(&db);
    let s = storm(&db, "so", "so", false);
    println!(
        "pin lockout ({}): SO PIN, {PROCESSES} processes x {THREADS} threads: \
         {} wrong guesses evaluated, {} told locked (limit {LIMIT})",
        db.backend.name(),
        s.incorrect,
        s.locked
    );
    assert_eq!(s.incorrect, LIMIT, "wrong guesses evaluated");
    assert_eq!(db.token_counter(TOKEN, "so_failures"), LIMIT as u64);
    check_locked(&db, "so");
}

#[test]
fn correct_pin_racing_wrong_guesses() {
    if child_role().is_some() {
        return;
    }
    let db = db();
    setup(&db);
    let s = storm(&db, "race", "user", true);
    let correct = s.correct.clone().expect("the racer reported");
    println!(
        "pin lockout ({}): correct user PIN racing {PROCESSES} x {THREADS} wrong guessers: \
         correct login {correct}, {} wrong guesses evaluated (limit {LIMIT})",
        db.backend.name(),
        s.incorrect
    );
    match correct.as_str() {
        "ok" => assert!(
            (LIMIT..2 * LIMIT).contains(&s.incorrect),
            "a success restarts the count at the guesses in flight: {s:?}"
        ),
        "locked" => assert_eq!(s.incorrect, LIMIT, "{s:?}"),
        other => panic!("the correct login answered {other}"),
    }
    assert_eq!(db.token_counter(TOKEN, "user_failures"), LIMIT as u64);
    check_locked(&db, "user");
}

fn user_type(which: &str) -> UserType {
    match which {
        "so" => UserType::So,
        _ => UserType::User,
    }
}

fn right_pin(which: &str) -> &'static str {
    match which {
        "so" => SO_PIN,
        _ => USER_PIN,
    }
}

/// One thread's guesses until it is told the PIN is locked: (incorrect, locked).
fn guess_until_locked(s: &Session, which: &str) -> (usize, usize) {
    let mut incorrect = 0;
    for _ in 0..MAX_TRIES_PER_THREAD {
        match rv_of(s.login(user_type(which), Some(&pin("wrong-pin-9999")))) {
            RvError::PinIncorrect => incorrect += 1,
            RvError::PinLocked => return (incorrect, 1),
            other => panic!("a wrong PIN answered {other:?}"),
        }
    }
    (incorrect, 0)
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
            new_token(&p, TOKEN);
        }
        "check-locked" => {
            let which = std::env::var("SQLHSM_GUESS_PIN").expect("SQLHSM_GUESS_PIN");
            let slot = slot_by_label(&p, TOKEN).expect("token");
            let info = p.get_token_info(slot).expect("C_GetTokenInfo");
            match which.as_str() {
                "so" => assert!(info.so_pin_locked(), "CKF_SO_PIN_LOCKED"),
                _ => assert!(info.user_pin_locked(), "CKF_USER_PIN_LOCKED"),
            }
            let s = p.open_rw_session(slot).expect("C_OpenSession");
            expect_rv(
                s.login(user_type(&which), Some(&pin(right_pin(&which)))),
                RvError::PinLocked,
            );
        }
        guesser => {
            let which = std::env::var("SQLHSM_GUESS_PIN").expect("SQLHSM_GUESS_PIN");
            let racer = std::env::var("SQLHSM_GUESS_RACER").as_deref() == Ok("true");
            let slot = slot_by_label(&p, TOKEN).expect("token");
            // One session per thread (the racer: one for its correct login), opened before the
            // start signal.
            let threads = if racer { 0 } else { THREADS };
            let sessions: Vec<Session> = (0..threads)
                .map(|_| p.open_rw_session(slot).expect("C_OpenSession"))
                .collect();
            let racer_session = racer.then(|| p.open_rw_session(slot).expect("C_OpenSession"));
            child_ready_then_wait(guesser);
            let (counts, correct) = std::thread::scope(|scope| {
                let which = which.as_str();
                let correct = racer_session.map(|s| {
                    scope.spawn(move || {
                        match s.login(user_type(which), Some(&pin(right_pin(which)))) {
                            Ok(()) => "ok".to_string(),
                            Err(cryptoki::error::Error::Pkcs11(RvError::PinLocked, _)) => {
                                "locked".to_string()
                            }
                            Err(e) => format!("{e:?}"),
                        }
                    })
                });
                let threads: Vec<_> = sessions
                    .into_iter()
                    .map(|s| scope.spawn(move || guess_until_locked(&s, which)))
                    .collect();
                let counts: Vec<(usize, usize)> = threads
                    .into_iter()
                    .map(|t| t.join().expect("guessing thread"))
                    .collect();
                (counts, correct.map(|t| t.join().expect("racing thread")))
            });
            let incorrect: usize = counts.iter().map(|c| c.0).sum();
            let locked: usize = counts.iter().map(|c| c.1).sum();
            println!(
                "guesses: incorrect={incorrect} locked={locked} correct={}",
                correct.as_deref().unwrap_or("-")
            );
        }
    }
    println!("child {role}: ok");
    p.finalize().expect("C_Finalize");
}

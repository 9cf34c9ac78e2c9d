//! `C_Initialize` with `CKF_LIBRARY_CANT_CREATE_OS_THREADS` (PKCS#11 3.0 §5.4): the module may
//! not start threads. On SQLite it works without any (counted in `/proc/self/task` before and
//! after, and after real work); on PostgreSQL, whose pool and change feed are threads, it
//! answers `CKR_NEED_TO_CREATE_THREADS`.
//!
//! One test in this file, so no other test thread of this process starts or ends meanwhile.

mod common;

use cryptoki::context::{CInitializeArgs, CInitializeFlags};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::session::UserType;

use common::*;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .count()
}

#[test]
fn cant_create_os_threads_is_honoured() {
    let db = TestDb::new("init-threads");
    db.set_env();
    let p = load();
    let no_threads = CInitializeArgs::new(
        CInitializeFlags::OS_LOCKING_OK | CInitializeFlags::LIBRARY_CANT_CREATE_OS_THREADS,
    );
    let before = threads();
    match db.backend {
        Backend::Sqlite => {
            p.initialize(no_threads)
                .expect("C_Initialize(CKF_LIBRARY_CANT_CREATE_OS_THREADS) on SQLite");
            assert_eq!(threads(), before, "C_Initialize started a thread");
            // Real work: a token, a login, a token key, a signature.
            let slot = new_token(&p, "no-threads");
            let s = user_session(&p, slot);
            let (_, key) = gen_ec(&s, P256, "no-threads", b"nt");
            s.sign(&Mechanism::Ecdsa, key, &[1u8; 32]).expect("C_Sign");
            s.logout().expect("C_Logout");
            s.login(UserType::User, Some(&pin(USER_PIN)))
                .expect("C_Login");
            assert_eq!(threads(), before, "the module started a thread");
            p.finalize().expect("C_Finalize");
            assert_eq!(threads(), before);
        }
        Backend::Postgres => {
            expect_rv(p.initialize(no_threads), RvError::NeedToCreateThreads);
            assert_eq!(threads(), before, "the refused C_Initialize left a thread");
            // Refused, not half-done: without the flag the same module initialises, and its
            // store does run threads of its own (the reason for the refusal).
            p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
                .expect("C_Initialize without the flag");
            assert!(
                threads() > before,
                "the PostgreSQL store is expected to run threads ({} before, {} after)",
                before,
                threads()
            );
            p.finalize().expect("C_Finalize");
        }
    }
}

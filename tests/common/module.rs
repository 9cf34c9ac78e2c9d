//! Loading the built module the way users load it: the `.so` through the C ABI, one
//! initialised [`Pkcs11`] per test process ([`ctx`]) and the raw C function list ([`raw`]).

use std::path::PathBuf;
use std::sync::OnceLock;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};

use super::TestDb;

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

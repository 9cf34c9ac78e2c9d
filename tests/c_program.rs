//! Compiles `tests/c/smoke.c` against `include/sqlhsm.h` and the committed `include/pkcs11.h` with the
//! system C compiler, and runs it on a fresh database: a C application using the module through
//! `dlopen`, covering the raw-ABI rules (NULL pointers, two-call buffers, mixed attribute
//! queries) that the cryptoki crate hides, and the PKCS#11 3.2 interface (`C_GetInterface`'s
//! default list, `C_VerifySignature*` through it).

mod common;

use std::path::Path;
use std::process::Command;

fn run(exe: &Path, db: &common::TestDb, label: &str) -> String {
    let out = Command::new(exe)
        .arg(common::module_path())
        .envs(db.envs())
        .env("SMOKE_LABEL", label)
        .output()
        .expect("run smoke");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- smoke {label} stdout ---\n{stdout}--- stderr ---\n{stderr}");
    assert!(
        out.status.success(),
        "smoke ({label}) exited with {:?}",
        out.status
    );
    stdout
}

#[test]
fn c_program_smoke() {
    let exe = common::compile_c("smoke", &["-ldl"]);
    let db = common::TestDb::new("c-program");
    let stdout = run(&exe, &db, "c-smoke-1");
    for step in [
        "ok: C_GetFunctionList",
        "ok: C_GetInterface",
        "ok: C_Initialize/C_GetInfo",
        "ok: C_GetSlotList two-call",
        "ok: C_InitToken",
        "ok: C_GenerateKeyPair(EC P-256)",
        "ok: C_Sign two-call",
        "ok: C_Verify",
        "ok: C_VerifySignature (3.2)",
        "ok: C_GetAttributeValue mixed",
        "ok: C_FindObjects",
        "ok: fork: the child must C_Initialize",
        "ok: C_Finalize",
    ] {
        assert!(stdout.contains(step), "missing step {step:?}");
    }
    assert!(stdout.trim_end().ends_with("ALL OK"));
    // A second process on the same database sees the first token and makes its own.
    let stdout = run(&exe, &db, "c-smoke-2");
    assert!(stdout.contains("ALL OK"));
}

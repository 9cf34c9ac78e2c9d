//! Runs `tests/pkcs11_tool.sh` (OpenSC's `pkcs11-tool` plus `openssl`) against the built module,
//! so `cargo test` covers it, on the backend under test.

mod common;

use std::path::Path;
use std::process::Command;

#[test]
fn pkcs11_tool_scenario() {
    let tool = Command::new("pkcs11-tool").arg("--help").output();
    assert!(
        tool.is_ok(),
        "pkcs11-tool not found: install Debian package `opensc` (.ci/run does)"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pkcs11_tool.sh");
    // The script writes its own config (low scrypt cost) but keeps the store of the backend
    // under test (SQLite or PostgreSQL, from SQLHSM_TEST_BACKEND).
    let db = common::TestDb::new("pkcs11-tool");
    let store = db
        .envs()
        .into_iter()
        .find(|(name, _)| name.as_str() == "SQLHSM_DB")
        .map(|(_, value)| value)
        .expect("TestDb names a store");
    let out = Command::new("bash")
        .arg(&script)
        .arg(common::module_path())
        .arg(&db.dir)
        .env("SQLHSM_DB", store)
        .env_remove("SQLHSM_CONF")
        .output()
        .expect("run tests/pkcs11_tool.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n--- stderr ---\n{stderr}");
    assert!(
        out.status.success(),
        "tests/pkcs11_tool.sh failed ({:?}); output above",
        out.status
    );
    assert!(stdout.contains("pkcs11-tool scenario: ALL OK"));
}

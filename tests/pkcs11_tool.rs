//! Runs `tests/pkcs11_tool.sh` (OpenSC's `pkcs11-tool` plus `openssl`) against the built module,
//! so `cargo test` covers it. The script makes its own database in a fresh directory.

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
    let work = common::TestDb::new("pkcs11-tool").dir;
    let out = Command::new("bash")
        .arg(&script)
        .arg(common::module_path())
        .arg(&work)
        .env_remove("SQLHSM_DB")
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

//! Re-executed child processes: a test binary runs itself again as a named role, and the
//! parent starts children together and checks what they said.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};

use super::{load, TestDb};

/// Environment variable naming the role of a re-executed test process.
pub const ENV_CHILD_ROLE: &str = "SQLHSM_CHILD_ROLE";
/// Environment variable naming the directory where children report readiness and wait for `go`.
pub const ENV_CHILD_SYNC: &str = "SQLHSM_CHILD_SYNC";

/// The role this process was re-executed for, if it was.
pub fn child_role() -> Option<String> {
    std::env::var(ENV_CHILD_ROLE).ok().filter(|r| !r.is_empty())
}

/// Re-executes this test binary running only the test `test`, as `role`, on `db`, with `env`
/// added. Its output is captured for [`finish_child`].
pub fn spawn_child(
    test: &str,
    role: &str,
    db: &TestDb,
    env: &[(&str, String)],
) -> std::process::Child {
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .envs(db.envs())
        .env(ENV_CHILD_ROLE, role)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn child")
}

/// Waits for a child, prints its output, asserts it succeeded and said `child <role>: ok`, and
/// returns its stdout.
#[track_caller]
pub fn finish_child(role: &str, child: std::process::Child) -> String {
    let out = child.wait_with_output().expect("wait for child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!(
        "--- {role} ---\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "child {role} failed: {:?}",
        out.status
    );
    assert!(
        stdout.contains(&format!("child {role}: ok")),
        "child {role} did not finish its work"
    );
    stdout
}

/// In a child: loads and initialises the module on the database its environment names.
pub fn child_init() -> Pkcs11 {
    let p = load();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize in child");
    p
}

/// In a child started with [`ENV_CHILD_SYNC`]: reports `role` ready and waits for the parent's
/// `go` (so that every child's work overlaps, not just their start-up).
pub fn child_ready_then_wait(role: &str) {
    let Some(dir) = std::env::var_os(ENV_CHILD_SYNC) else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::write(dir.join(format!("ready-{role}")), b"").expect("write ready file");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !dir.join("go").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no go from the parent"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// In the parent: waits until `n` children are ready, then lets them all go at once.
pub fn release_children(sync_dir: &Path, n: usize) {
    wait_children_ready(sync_dir, n);
    std::fs::write(sync_dir.join("go"), b"").expect("write go file");
}

/// In the parent: waits until `n` children started with [`ENV_CHILD_SYNC`] = `sync_dir` are
/// ready (the `go` is then up to the caller: [`release_children`]).
pub fn wait_children_ready(sync_dir: &Path, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let ready = std::fs::read_dir(sync_dir)
            .expect("read sync dir")
            .filter(|e| {
                e.as_ref()
                    .map(|e| e.file_name().to_string_lossy().starts_with("ready-"))
                    .unwrap_or(false)
            })
            .count();
        if ready >= n {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {ready} of {n} children became ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

//! C programs compiled against the committed header.

use std::path::{Path, PathBuf};

/// Compiles `tests/c/<name>.c` against `include/` (the committed `pkcs11.h` and `sqlhsm.h`)
/// with the system C compiler (`$CC`, else `cc`), warnings as errors, linking `libs`; returns
/// the executable.
pub fn compile_c(name: &str, libs: &[&str]) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sqlhsm-c-{name}"));
    std::fs::create_dir_all(out.parent().expect("target tmp dir")).expect("target tmp dir");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let source = root.join("tests/c").join(format!("{name}.c"));
    let status = std::process::Command::new(&cc)
        .args([
            "-Wall",
            "-Wextra",
            "-Werror",
            "-std=c11",
            "-D_DEFAULT_SOURCE",
        ])
        .arg(format!("-I{}", root.join("include").display()))
        .arg(&source)
        .arg("-o")
        .arg(&out)
        .args(libs)
        .status()
        .unwrap_or_else(|e| panic!("running {cc}: {e} (install gcc)"));
    assert!(status.success(), "compiling {} failed", source.display());
    out
}

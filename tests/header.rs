//! The committed C header `include/sqlhsm.h` must be exactly what `build.rs` generates with
//! cbindgen from the current code (the header is generated, committed, and must not drift from
//! the code), and it must compile after a PKCS#11 3.2 `pkcs11.h` and after a 3.0 one (NSS's).
//!
//! To regenerate the committed header after changing an export or a vendor constant:
//!
//! ```text
//! SQLHSM_BLESS=1 cargo test --test header
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

/// What build.rs generated for this build.
const GENERATED: &str = include_str!(concat!(env!("OUT_DIR"), "/sqlhsm.h"));

/// The two PKCS#11 3.2 types the header declares itself after a `pkcs11.h` older than 3.2
/// (cbindgen.toml's `after_includes`): the only typedefs it may have.
const PRE_3_2_TYPES: [&str; 2] = [
    "typedef CK_ULONG CK_SESSION_VALIDATION_FLAGS_TYPE;",
    "typedef struct CK_ASYNC_DATA CK_ASYNC_DATA;",
];

fn committed_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include/sqlhsm.h")
}

#[test]
fn committed_header_matches_generated() {
    let path = committed_path();
    if std::env::var_os("SQLHSM_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("include/")).expect("create include/");
        std::fs::write(&path, GENERATED).expect("write include/sqlhsm.h");
        eprintln!("rewrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != GENERATED {
        let first_difference = committed
            .lines()
            .zip(GENERATED.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "one is a prefix of the other".to_owned(),
                |i| format!("first difference at line {}", i + 1),
            );
        panic!(
            "include/sqlhsm.h is out of date with the code ({first_difference}).\n\
             Regenerate it with:  SQLHSM_BLESS=1 cargo test --test header\n\
             and commit the result."
        );
    }
}

/// The `cc` flags that pre-include a PKCS#11 3.x `pkcs11.h`: always the public-domain 3.2 header
/// committed as `include/pkcs11.h` (what `tests/c/` programs use), and NSS's 3.0 one when
/// installed (the header then declares the two 3.2 types its prototypes need).
///
/// p11-kit's `pkcs11.h` is not among them: it is a 2.40 header and lacks `CK_INTERFACE`, which
/// `C_GetInterfaceList`/`C_GetInterface` need.
fn pkcs11_headers() -> Vec<(String, Vec<String>)> {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/pkcs11.h");
    let mut found = vec![(
        committed.display().to_string(),
        vec!["-include".into(), committed.display().to_string()],
    )];
    let nss = Path::new("/usr/include/nss/pkcs11.h");
    let nspr = Path::new("/usr/include/nspr/prtypes.h");
    if nss.exists() && nspr.exists() {
        found.push((
            nss.display().to_string(),
            vec![
                "-I/usr/include/nss".into(),
                "-I/usr/include/nspr".into(),
                "-include".into(),
                "pkcs11.h".into(),
            ],
        ));
    }
    found
}

#[test]
fn header_compiles_after_a_pkcs11_3_x_header() {
    let headers = pkcs11_headers();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    for (name, flags) in headers {
        let output = Command::new(&cc)
            .args(["-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-x", "c"])
            .args(&flags)
            .arg(committed_path())
            .output()
            .unwrap_or_else(|e| panic!("could not run {cc}: {e}"));
        assert!(
            output.status.success(),
            "include/sqlhsm.h does not compile after {name}:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn header_declares_every_export_and_the_vendor_constants() {
    for function in [
        "C_Initialize",
        "C_GetFunctionList",
        "C_GetInterfaceList",
        "C_GetInterface",
        "C_GetAttributeValue",
        "C_LoginUser",
        "C_SessionCancel",
        "C_MessageVerifyFinal",
        "C_EncapsulateKey",
        "C_DecapsulateKey",
        "C_VerifySignatureInit",
        "C_VerifySignature",
        "C_VerifySignatureUpdate",
        "C_VerifySignatureFinal",
        "C_GetSessionValidationFlags",
        "C_AsyncComplete",
        "C_AsyncGetID",
        "C_AsyncJoin",
        "C_WrapKeyAuthenticated",
        "C_UnwrapKeyAuthenticated",
    ] {
        assert!(
            GENERATED.contains(&format!("CK_RV {function}(")),
            "{function} missing"
        );
    }
    assert_eq!(
        GENERATED.matches("\nCK_RV C_").count(),
        104,
        "the PKCS#11 3.2 list has 104 functions (the 92 of 3.0 and 12 more)"
    );
    for constant in [
        "CKA_SQLHSM_KEY_ID",
        "CKA_SQLHSM_KEY_STATUS",
        "CKA_SQLHSM_KEY_MODE",
        "CKA_SQLHSM_KEY_ALGORITHM",
        "CKK_SQLHSM_XWING",
        "CKM_SQLHSM_P384_ML_KEM_1024_KEY_PAIR_GEN",
    ] {
        assert!(
            GENERATED.contains(&format!("#define {constant} ")),
            "{constant} missing"
        );
    }
    // Nothing but the C_* functions and the CKA_/CKK_/CKM_SQLHSM_* constants.
    for line in GENERATED.lines() {
        if PRE_3_2_TYPES.contains(&line) {
            continue;
        }
        if let Some(name) = line.strip_prefix("#define ") {
            assert!(
                ["CKA_SQLHSM_", "CKK_SQLHSM_", "CKM_SQLHSM_"]
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
                    || name == "SQLHSM_H",
                "unexpected {line}"
            );
        }
        assert!(
            !line.starts_with("typedef") && !line.starts_with("struct"),
            "unexpected {line}"
        );
    }
}

//! Generates the C header `$OUT_DIR/sqlhsm.h` with cbindgen. The header is generated, never
//! edited by hand: the committed copy, `include/sqlhsm.h`, is compared with it by
//! `tests/header.rs`, which fails when it drifts. Nothing is written into the source tree, only
//! into `OUT_DIR`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    // sqlhsm's OpenSSL is linked statically into the module (src/ffi/process.rs). It frees its
    // per-thread state with pthread key destructors that live in this library, so once loaded
    // the library must stay mapped — or a thread ending after the application's dlclose() jumps
    // into unmapped code. The system's libcrypto.so is linked `-z nodelete` for the same reason.
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let unix = std::env::var("CARGO_CFG_TARGET_FAMILY").is_ok_and(|f| f == "unix");
    if unix && target_os != "macos" && target_os != "ios" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }

    let crate_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is not a valid cbindgen configuration");

    // Only the FFI module (every C_* export) and the vendor constants make up the header; the
    // rest of the crate has nothing for C callers. cbindgen follows `mod` items from ffi/mod.rs.
    let sources = [
        crate_dir.join("src/ffi/mod.rs"),
        crate_dir.join("src/vendor.rs"),
    ];
    let mut builder = cbindgen::Builder::new().with_config(config);
    for source in &sources {
        builder = builder.with_src(source);
    }
    let bindings = builder
        .generate()
        .expect("cbindgen could not generate the header");
    // `write_to_file` leaves an identical file untouched, so its mtime stays stable.
    bindings.write_to_file(out_dir.join("sqlhsm.h"));
}

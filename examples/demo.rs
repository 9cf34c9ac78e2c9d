//! sqlhsm demonstration: loads the built `libsqlhsm.so` through the `cryptoki` crate (so through
//! the C ABI, as any PKCS#11 application would), initialises a token on a fresh SQLite database
//! in a temp dir, generates an EC P-256 key pair and an RSA-2048 key pair, signs and verifies.
//!
//! Run with `cargo run --example demo` (cargo builds the cdylib alongside the example).

use std::path::PathBuf;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// `target/<profile>/examples/demo` → `target/<profile>/deps/libsqlhsm.so` (built with the
/// example) or `target/<profile>/libsqlhsm.so` (left by `cargo build`); `$SQLHSM_MODULE` wins.
fn module_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SQLHSM_MODULE") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let profile = exe
        .parent()
        .and_then(|d| d.parent())
        .ok_or("unexpected executable location")?;
    for cand in [
        profile.join("deps/libsqlhsm.so"),
        profile.join("libsqlhsm.so"),
    ] {
        if cand.exists() {
            return Ok(cand);
        }
    }
    Err(format!(
        "libsqlhsm.so not found next to {}; run `cargo build` first",
        exe.display()
    )
    .into())
}

fn main() -> Result<()> {
    let dir = tempfile::Builder::new().prefix("sqlhsm-demo-").tempdir()?;
    let db = dir.path().join("sqlhsm.db");
    let conf = dir.path().join("sqlhsm.toml");
    std::fs::write(
        &conf,
        format!(
            "[database]\nurl = \"sqlite:{}\"\n\n[security]\npin_kdf_log_n = 12\n",
            db.display()
        ),
    )?;
    std::env::set_var("SQLHSM_DB", format!("sqlite:{}", db.display()));
    std::env::set_var("SQLHSM_CONF", &conf);
    println!("1. database: {} (config {})", db.display(), conf.display());

    let module = module_path()?;
    println!("2. loading {}", module.display());
    let p = Pkcs11::new(&module)?;
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let info = p.get_library_info()?;
    println!(
        "   C_Initialize ok: {} — {} (PKCS#11 {})",
        info.manufacturer_id(),
        info.library_description(),
        info.cryptoki_version()
    );

    let slot = p
        .get_slots_with_token()?
        .into_iter()
        .find(|s| {
            p.get_token_info(*s)
                .map(|t| !t.token_initialized())
                .unwrap_or(false)
        })
        .ok_or("no slot with an uninitialised token")?;
    let so_pin = AuthPin::from("demo-so-pin");
    let user_pin = AuthPin::from("demo-user-pin");
    p.init_token(slot, &so_pin, "demo")?;
    println!("3. C_InitToken: token \"demo\" in slot {}", slot.id());
    let s = p.open_rw_session(slot)?;
    s.login(UserType::So, Some(&so_pin))?;
    s.init_pin(&user_pin)?;
    s.logout()?;
    s.login(UserType::User, Some(&user_pin))?;
    println!("4. user PIN set, logged in as user");

    let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let (ec_pub, ec_priv) = s.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::EcParams(p256),
            Attribute::Verify(true),
            Attribute::Label(b"demo-ec".to_vec()),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
            Attribute::Label(b"demo-ec".to_vec()),
        ],
    )?;
    println!("5. generated EC P-256 key pair (handles {ec_pub}, {ec_priv})");
    let msg = b"hello from sqlhsm";
    let sig = s.sign(&Mechanism::EcdsaSha256, ec_priv, msg)?;
    s.verify(&Mechanism::EcdsaSha256, ec_pub, msg, &sig)?;
    println!("6. ECDSA-SHA256 signature ({} bytes) verified", sig.len());

    let (rsa_pub, rsa_priv) = s.generate_key_pair(
        &Mechanism::RsaPkcsKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::ModulusBits(2048.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
            Attribute::Verify(true),
            Attribute::Label(b"demo-rsa".to_vec()),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
            Attribute::Label(b"demo-rsa".to_vec()),
        ],
    )?;
    println!("7. generated RSA-2048 key pair (handles {rsa_pub}, {rsa_priv})");
    let sig = s.sign(&Mechanism::Sha256RsaPkcs, rsa_priv, msg)?;
    s.verify(&Mechanism::Sha256RsaPkcs, rsa_pub, msg, &sig)?;
    println!(
        "8. SHA256-RSA-PKCS signature ({} bytes) verified",
        sig.len()
    );

    s.logout()?;
    drop(s);
    p.finalize()?;
    println!("9. C_Finalize ok; the database is removed with the temp dir. Done.");
    Ok(())
}

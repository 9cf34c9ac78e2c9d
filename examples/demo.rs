//! sqlhsm demonstration: loads the built `libsqlhsm.so` through the `cryptoki` crate (so through
//! the C ABI, as any PKCS#11 application would) with no configuration at all, so the module uses
//! its embedded SQLite default (a file under the user's data directory; `SQLHSM_DB` or
//! `SQLHSM_CONF` override it). It initialises the token "sqlhsm-demo" (or reuses it on later
//! runs), generates an EC P-256 and an RSA-2048 key pair (or finds the ones an earlier run left
//! in the database), signs and verifies with each.
//!
//! Run with `cargo run --example demo` (cargo builds the cdylib alongside the example).

use std::path::PathBuf;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
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

const TOKEN: &str = "sqlhsm-demo";

/// The demo's key pair labelled `label`: found in the database, or generated as token objects.
fn key_pair(
    s: &Session,
    label: &str,
    mechanism: &Mechanism,
    public_extra: &[Attribute],
) -> Result<(ObjectHandle, ObjectHandle, bool)> {
    let find = |class| -> Result<Option<ObjectHandle>> {
        let found = s.find_objects(&[Attribute::Class(class), Attribute::Label(label.into())])?;
        Ok(found.first().copied())
    };
    if let (Some(public), Some(private)) = (
        find(ObjectClass::PUBLIC_KEY)?,
        find(ObjectClass::PRIVATE_KEY)?,
    ) {
        return Ok((public, private, false));
    }
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Verify(true),
        Attribute::Label(label.into()),
    ];
    public.extend_from_slice(public_extra);
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Label(label.into()),
    ];
    let (public, private) = s.generate_key_pair(mechanism, &public, &private)?;
    Ok((public, private, true))
}

fn main() -> Result<()> {
    let config = sqlhsm::config::Config::load()?;
    println!(
        "1. key store: {} (the module's default unless SQLHSM_DB/SQLHSM_CONF say otherwise)",
        config.database.redacted_url()
    );

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

    let so_pin = AuthPin::from("demo-so-pin");
    let user_pin = AuthPin::from("demo-user-pin");
    let existing = p.get_slots_with_initialized_token()?.into_iter().find(|s| {
        p.get_token_info(*s)
            .map(|t| t.label() == TOKEN)
            .unwrap_or(false)
    });
    let slot = match existing {
        Some(slot) => {
            println!(
                "3. token \"{TOKEN}\" found in slot {} (made by an earlier run)",
                slot.id()
            );
            slot
        }
        None => {
            let slot = p
                .get_slots_with_token()?
                .into_iter()
                .find(|s| {
                    p.get_token_info(*s)
                        .map(|t| !t.token_initialized())
                        .unwrap_or(false)
                })
                .ok_or("no slot with an uninitialised token")?;
            p.init_token(slot, &so_pin, TOKEN)?;
            let s = p.open_rw_session(slot)?;
            s.login(UserType::So, Some(&so_pin))?;
            s.init_pin(&user_pin)?;
            println!(
                "3. C_InitToken + C_InitPIN: token \"{TOKEN}\" created in slot {}",
                slot.id()
            );
            slot
        }
    };
    let s = p.open_rw_session(slot)?;
    s.login(UserType::User, Some(&user_pin))?;
    println!("4. logged in as user");

    let msg = b"hello from sqlhsm";
    let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let rsa = [
        Attribute::ModulusBits(2048.into()),
        Attribute::PublicExponent(vec![1, 0, 1]),
    ];
    for (step, label, generate, sign, extra) in [
        (
            5,
            "demo-ec",
            Mechanism::EccKeyPairGen,
            Mechanism::EcdsaSha256,
            vec![Attribute::EcParams(p256)],
        ),
        (
            6,
            "demo-rsa",
            Mechanism::RsaPkcsKeyPairGen,
            Mechanism::Sha256RsaPkcs,
            rsa.to_vec(),
        ),
    ] {
        let (public, private, generated) = key_pair(&s, label, &generate, &extra)?;
        let how = if generated {
            "generated"
        } else {
            "found in the database"
        };
        let signature = s.sign(&sign, private, msg)?;
        s.verify(&sign, public, msg, &signature)?;
        println!(
            "{step}. {label}: key pair {how}; {sign:?} signature of {} bytes made and verified",
            signature.len()
        );
    }

    s.logout()?;
    drop(s);
    p.finalize()?;
    println!("7. C_Finalize ok. Run again: the token and keys are still there.");
    Ok(())
}

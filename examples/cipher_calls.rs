//! A fixed number of AES-256-GCM encryptions through the C ABI with a token key, for counting
//! instructions per call (instruction counts are repeatable under load; timings are not):
//!
//! ```sh
//! cargo build --profile profiling --lib --example cipher_calls
//! valgrind --tool=callgrind --callgrind-out-file=gcm.out \
//!     target/profiling/examples/cipher_calls 1024 single 200
//! callgrind_annotate --inclusive=yes gcm.out | grep -E 'C_Encrypt|C_Decrypt'
//! ```
//!
//! Arguments: the data length in bytes, `single` (`C_EncryptInit`, a length query and
//! `C_Encrypt`, as the `cryptoki` crate makes them), `multi` (`C_EncryptInit`, then
//! `C_EncryptUpdate` and `C_EncryptFinal`, each with its length query) or `decrypt` (single-part
//! `C_Decrypt` of one ciphertext), and the number of operations. Each operation takes a fresh
//! IV. The module is the `libsqlhsm.so` built beside the example, on a fresh SQLite token.

use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn module() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("unexpected executable location")?;
    [
        profile.join("deps/libsqlhsm.so"),
        profile.join("libsqlhsm.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .ok_or_else(|| "libsqlhsm.so not built".into())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let len: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1024);
    let mode = args.next().unwrap_or_else(|| "single".to_owned());
    let count: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(100);
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("sqlhsm.toml"),
        "[security]\npin_kdf_log_n = 10\n",
    )?;
    std::env::set_var("SQLHSM_CONF", dir.path().join("sqlhsm.toml"));
    std::env::set_var(
        "SQLHSM_DB",
        format!("sqlite:{}", dir.path().join("calls.db").display()),
    );
    let p = Pkcs11::new(module()?)?;
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slot = *p.get_slots_with_token()?.first().ok_or("no slot")?;
    let so_pin = AuthPin::from("calls-so-pin");
    let pin = AuthPin::from("calls-user-pin");
    p.init_token(slot, &so_pin, "calls")?;
    let s = p.open_rw_session(slot)?;
    s.login(UserType::So, Some(&so_pin))?;
    s.init_pin(&pin)?;
    s.logout()?;
    s.login(UserType::User, Some(&pin))?;
    let key = s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Value(vec![0x42; 32]),
    ])?;
    let data = vec![0x5au8; len];
    let mut iv = [0u8; 12];
    let sealed = {
        let mechanism = Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into())?);
        s.encrypt(&mechanism, key, &data)?
    };
    for i in 0..count {
        iv[..4].copy_from_slice(&i.to_be_bytes());
        let mechanism = Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into())?);
        match mode.as_str() {
            "single" => {
                s.encrypt(&mechanism, key, &data)?;
            }
            "multi" => {
                s.encrypt_init(&mechanism, key)?;
                s.encrypt_update(&data)?;
                s.encrypt_final()?;
            }
            "decrypt" => {
                let mut zero = [0u8; 12];
                let mechanism = Mechanism::AesGcm(GcmParams::new(&mut zero, b"", 128.into())?);
                s.decrypt(&mechanism, key, &sealed)?;
            }
            other => Err(format!("unknown mode {other}"))?,
        }
    }
    drop(s);
    p.finalize()?;
    Ok(())
}

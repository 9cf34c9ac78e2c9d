//! sqlhsm's cryptography does not depend on the host application's OpenSSL: not on its
//! configuration (`OPENSSL_CONF`: default properties, providers, engines), not on its error
//! queue, and not on an engine that routes the host's OpenSSL into sqlhsm itself.
//!
//! - A re-executed child process plays an application whose OpenSSL configuration sqlhsm could
//!   not satisfy (`default_properties = fips=yes` with no FIPS provider; a provider module that
//!   does not exist; an engine that does not exist). It loads the system's `libcrypto.so.3` as
//!   such an application has it, lets it read that configuration, and checks the configuration
//!   is in force (the host cannot even fetch SHA-256). Then it runs the key operations through
//!   the C ABI — initialise, init token, login, generate, import, sign, verify, encrypt,
//!   decrypt, derive, wrap, unwrap, digest — leaving an error of its own on the thread's host
//!   error queue before each call, and checks after each call that the queue holds exactly that
//!   error: sqlhsm neither reads, adds to nor clears the application's queue.
//! - The admin command `sqlhsm` works under the same `fips=yes` configuration.
//! - The OpenSSL command with the libp11 engine (`libengine-pkcs11-openssl`) signs with sqlhsm
//!   keys by `pkcs11:` URI, sqlhsm running inside the OpenSSL application it serves.
//! - The module exports only PKCS#11 functions and needs no system libcrypto/libssl, so its
//!   private OpenSSL can be neither seen nor replaced by the host; and it is marked NODELETE,
//!   since that OpenSSL's thread-exit destructors live inside it.

mod common;

use std::ffi::{c_char, c_int, c_ulong, c_void, CString};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::UserType;

use common::*;

/// How long a child may take before it counts as hung (the reentrancy this guards against
/// spins forever).
const CHILD_TIMEOUT: Duration = Duration::from_secs(180);

/// Environment variable telling the child its host configuration must be visibly in force.
const ENV_HOST_BROKEN: &str = "SQLHSM_TEST_HOST_CANNOT_HASH";

/// The host configurations: name, file text, and whether the host's own default context can no
/// longer hash under it (checked in the child, so a test that thinks it set a trap really did).
const CONFIGS: [(&str, &str, bool); 3] = [
    (
        "fips-properties",
        "openssl_conf = init\n[init]\nalg_section = algs\n[algs]\ndefault_properties = fips=yes\n",
        true,
    ),
    (
        "missing-provider",
        "openssl_conf = init\n[init]\nproviders = providers\n[providers]\n\
         missing = missing\n[missing]\nmodule = /nonexistent/sqlhsm-test-provider.so\n\
         activate = 1\n",
        true,
    ),
    (
        "missing-engine",
        "openssl_conf = init\n[init]\nengines = engines\n[engines]\nmissing = missing\n\
         [missing]\ndynamic_path = /nonexistent/sqlhsm-test-engine.so\ninit = 1\n\
         default_algorithms = ALL\n",
        false,
    ),
];

const OPENSSL_INIT_LOAD_CONFIG: u64 = 0x0000_0040;
const ERR_LIB_USER: c_int = 128;

/// The system's libcrypto, loaded as the application in this process has it.
struct HostCrypto {
    _lib: libloading::Library,
    init_crypto: unsafe extern "C" fn(u64, *const c_void) -> c_int,
    md_fetch: unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> *mut c_void,
    md_free: unsafe extern "C" fn(*mut c_void),
    err_new: unsafe extern "C" fn(),
    err_set_error: unsafe extern "C" fn(c_int, c_int, *const c_char, ...),
    err_peek_error: unsafe extern "C" fn() -> c_ulong,
    err_peek_last_error: unsafe extern "C" fn() -> c_ulong,
    err_clear_error: unsafe extern "C" fn(),
}

impl HostCrypto {
    fn load() -> HostCrypto {
        // SAFETY: the system libcrypto's initialisers are OpenSSL's own; each symbol is read
        // with the prototype of OpenSSL 3's headers.
        unsafe {
            let lib = libloading::Library::new("libcrypto.so.3").expect("dlopen libcrypto.so.3");
            macro_rules! sym {
                ($name:literal) => {
                    *lib.get(concat!($name, "\0").as_bytes())
                        .expect(concat!("libcrypto.so.3 lacks ", $name))
                };
            }
            HostCrypto {
                init_crypto: sym!("OPENSSL_init_crypto"),
                md_fetch: sym!("EVP_MD_fetch"),
                md_free: sym!("EVP_MD_free"),
                err_new: sym!("ERR_new"),
                err_set_error: sym!("ERR_set_error"),
                err_peek_error: sym!("ERR_peek_error"),
                err_peek_last_error: sym!("ERR_peek_last_error"),
                err_clear_error: sym!("ERR_clear_error"),
                _lib: lib,
            }
        }
    }

    /// What an application does first: initialise OpenSSL with its configuration.
    fn init_with_config(&self) {
        // SAFETY: NULL settings are allowed (the default configuration file, here OPENSSL_CONF).
        let ok = unsafe { (self.init_crypto)(OPENSSL_INIT_LOAD_CONFIG, std::ptr::null()) };
        println!("host OPENSSL_init_crypto(LOAD_CONFIG) = {ok}");
    }

    /// Whether the host's default library context can fetch SHA-256 under its configuration.
    fn can_hash(&self) -> bool {
        let name = CString::new("SHA256").expect("no NUL");
        // SAFETY: NULL library context and properties mean the defaults; the result is freed.
        unsafe {
            let md = (self.md_fetch)(std::ptr::null_mut(), name.as_ptr(), std::ptr::null());
            let found = !md.is_null();
            (self.md_free)(md);
            (self.err_clear_error)();
            found
        }
    }

    /// Empties the host queue and leaves one error of the application's on it; returns its code.
    fn leave_error(&self, reason: c_int) -> c_ulong {
        // SAFETY: ERR_new then ERR_set_error is what ERR_raise expands to; a NULL format means
        // no data.
        unsafe {
            (self.err_clear_error)();
            (self.err_new)();
            (self.err_set_error)(ERR_LIB_USER, reason, std::ptr::null());
            let code = (self.err_peek_last_error)();
            assert_ne!(code, 0, "the host error queue took no error");
            code
        }
    }

    /// The first and last error on the host queue (equal to `code` when it holds just that one).
    fn first_and_last(&self) -> (c_ulong, c_ulong) {
        // SAFETY: plain reads of this thread's error queue.
        unsafe { ((self.err_peek_error)(), (self.err_peek_last_error)()) }
    }
}

/// Runs each PKCS#11 call with an application error on the host queue and checks that the
/// queue is unchanged afterwards.
struct Calls {
    host: HostCrypto,
    reason: c_int,
    calls: usize,
}

impl Calls {
    /// Makes the call with an application error on the host queue; returns its result and, when
    /// the queue no longer holds exactly that error, what changed.
    fn call<T>(&mut self, what: &str, call: impl FnOnce() -> T) -> (T, Option<String>) {
        self.reason += 1;
        let code = self.host.leave_error(self.reason);
        let out = call();
        let (first, last) = self.host.first_and_last();
        self.calls += 1;
        let changed = (first != code || last != code).then(|| {
            format!(
                "{what}: the application's error queue changed: it held {code:#x}, now first \
                 {first:#x}, last {last:#x}"
            )
        });
        (out, changed)
    }

    fn run<T>(&mut self, what: &str, call: impl FnOnce() -> T) -> T {
        let (out, changed) = self.call(what, call);
        if let Some(changed) = changed {
            panic!("{changed}");
        }
        out
    }

    fn ok<T>(&mut self, what: &str, call: impl FnOnce() -> cryptoki::error::Result<T>) -> T {
        let (out, changed) = self.call(what, call);
        let out = out.unwrap_or_else(|e| panic!("{what} failed under the host's OpenSSL: {e}"));
        if let Some(changed) = changed {
            panic!("{changed}");
        }
        out
    }
}

fn private_template(label: &str, extra: &[Attribute]) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    t.extend_from_slice(extra);
    t
}

/// RFC 6979 §A.2.5: a P-256 private key and its public point.
const RFC6979_P256_D: &str = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
const RFC6979_P256_Q: &str = "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6\
                              7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";

/// The child: an application whose OpenSSL configuration sqlhsm could not satisfy.
fn key_operations_child() {
    let host = HostCrypto::load();
    host.init_with_config();
    let can_hash = host.can_hash();
    println!("host default context can fetch SHA-256: {can_hash}");
    if std::env::var_os(ENV_HOST_BROKEN).is_some() {
        assert!(
            !can_hash,
            "the host configuration is not in force: the test would prove nothing"
        );
    }
    let mut c = Calls {
        host,
        reason: 0,
        calls: 0,
    };
    let p: Pkcs11 = c.ok("C_Initialize", || {
        let p = load();
        p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map(|()| p)
    });
    let slot = c.run("C_GetSlotList", || empty_slot(&p));
    c.ok("C_InitToken", || {
        p.init_token(slot, &pin(SO_PIN), "isolation")
    });
    let s = c.ok("C_OpenSession", || p.open_rw_session(slot));
    c.ok("C_Login(SO)", || s.login(UserType::So, Some(&pin(SO_PIN))));
    c.ok("C_InitPIN", || s.init_pin(&pin(USER_PIN)));
    c.ok("C_Logout", || s.logout());
    c.ok("C_Login(USER)", || {
        s.login(UserType::User, Some(&pin(USER_PIN)))
    });

    // Generation.
    let (ec_pub_t, _) = ec_templates(P256, "iso-ec", b"1");
    let derive = [Attribute::Sign(true), Attribute::Derive(true)];
    let (ec_pub, ec_priv) = c.ok("C_GenerateKeyPair(EC P-256)", || {
        s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &ec_pub_t,
            &private_template("iso-ec", &derive),
        )
    });
    let (peer_pub, peer_priv) = c.ok("C_GenerateKeyPair(EC P-256, peer)", || {
        s.generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &ec_pub_t,
            &private_template("iso-peer", &derive),
        )
    });
    let (rsa_pub_t, rsa_priv_t) = rsa_templates(2048, "iso-rsa", b"2");
    let (rsa_pub, rsa_priv) = c.ok("C_GenerateKeyPair(RSA-2048)", || {
        s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &rsa_pub_t, &rsa_priv_t)
    });
    let (ed_pub_t, ed_priv_t) = ec_templates(ED25519, "iso-ed", b"3");
    let (ed_pub, ed_priv) = c.ok("C_GenerateKeyPair(Ed25519)", || {
        s.generate_key_pair(&Mechanism::EccEdwardsKeyPairGen, &ed_pub_t, &ed_priv_t)
    });
    let aes_t = |label: &str| {
        private_template(
            label,
            &[
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
            ],
        )
    };
    let aes = c.ok("C_GenerateKey(AES-256)", || {
        s.generate_key(&Mechanism::AesKeyGen, &aes_t("iso-aes"))
    });
    let spki = c.ok("C_GetAttributeValue(CKA_PUBLIC_KEY_INFO)", || {
        s.get_attributes(ec_pub, &[AttributeType::PublicKeyInfo])
    });
    assert!(
        matches!(spki.first(), Some(Attribute::PublicKeyInfo(der)) if der.first() == Some(&0x30)),
        "an SPKI for the EC key"
    );

    // Import.
    let d = hex::decode(RFC6979_P256_D).expect("hex");
    let q = hex::decode(RFC6979_P256_Q.replace(' ', "")).expect("hex");
    let imported_priv = c.ok("C_CreateObject(EC private)", || {
        s.create_object(&private_template(
            "iso-imported",
            &[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Sign(true),
                Attribute::EcParams(P256.to_vec()),
                Attribute::Value(d.clone()),
            ],
        ))
    });
    let imported_pub = c.ok("C_CreateObject(EC public)", || {
        s.create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Label(b"iso-imported".to_vec()),
            Attribute::EcParams(P256.to_vec()),
            Attribute::EcPoint(octet_string(&q)),
        ])
    });
    let imported_aes = c.ok("C_CreateObject(AES)", || {
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Extractable(true),
            // Its value is known: readable, so any wrapping key may wrap it (a sensitive key
            // wraps only under a key that cannot decrypt).
            Attribute::Sensitive(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Label(b"iso-imported-aes".to_vec()),
            Attribute::Value((0u8..32).collect()),
        ])
    });

    // Sign and verify.
    let msg = b"sqlhsm does not share the host's OpenSSL";
    let pss = Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    });
    let eddsa = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
    for (what, mechanism, private, public) in [
        ("ECDSA-SHA256", Mechanism::EcdsaSha256, ec_priv, ec_pub),
        (
            "ECDSA-SHA256 (imported)",
            Mechanism::EcdsaSha256,
            imported_priv,
            imported_pub,
        ),
        (
            "SHA256-RSA-PKCS",
            Mechanism::Sha256RsaPkcs,
            rsa_priv,
            rsa_pub,
        ),
        ("SHA256-RSA-PKCS-PSS", pss, rsa_priv, rsa_pub),
        ("EdDSA", eddsa, ed_priv, ed_pub),
    ] {
        let sig = c.ok(&format!("C_Sign({what})"), || {
            s.sign(&mechanism, private, msg)
        });
        c.ok(&format!("C_Verify({what})"), || {
            s.verify(&mechanism, public, msg, &sig)
        });
        let mut bad = sig.clone();
        bad[sig.len() / 2] ^= 0x40;
        let refused = c.run(&format!("C_Verify({what}, bad signature)"), || {
            s.verify(&mechanism, public, msg, &bad)
        });
        assert_eq!(
            rv_of(refused),
            RvError::SignatureInvalid,
            "{what}: a bad signature"
        );
    }

    // Encrypt and decrypt.
    let mut iv = [9u8; 12];
    fn gcm(iv: &mut [u8; 12]) -> Mechanism<'_> {
        Mechanism::AesGcm(GcmParams::new(iv, b"aad", 128.into()).expect("GCM params"))
    }
    let ct = c.ok("C_Encrypt(AES-GCM)", || s.encrypt(&gcm(&mut iv), aes, msg));
    let pt = c.ok("C_Decrypt(AES-GCM)", || s.decrypt(&gcm(&mut iv), aes, &ct));
    assert_eq!(pt, msg);
    let mut tampered = ct.clone();
    tampered[0] ^= 1;
    let refused = c.run("C_Decrypt(AES-GCM, tampered)", || {
        s.decrypt(&gcm(&mut iv), aes, &tampered)
    });
    assert_eq!(rv_of(refused), RvError::EncryptedDataInvalid);
    let cbc = Mechanism::AesCbcPad([3u8; 16]);
    let cbc_ct = c.ok("C_Encrypt(AES-CBC-PAD)", || {
        s.encrypt(&cbc, imported_aes, msg)
    });
    let pt = c.ok("C_Decrypt(AES-CBC-PAD)", || {
        s.decrypt(&cbc, imported_aes, &cbc_ct)
    });
    assert_eq!(pt, msg);
    let oaep = Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ));
    let ct = c.ok("C_Encrypt(RSA-OAEP)", || s.encrypt(&oaep, rsa_pub, msg));
    let pt = c.ok("C_Decrypt(RSA-OAEP)", || s.decrypt(&oaep, rsa_priv, &ct));
    assert_eq!(pt, msg);

    // Derive: both sides of an ECDH agree.
    let point =
        |public: ObjectHandle| unwrap_octet_string(&get_bytes(&s, public, AttributeType::EcPoint));
    let (ec_point, peer_point) = c.run("C_GetAttributeValue(CKA_EC_POINT)", || {
        (point(ec_pub), point(peer_pub))
    });
    let derived = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::ValueLen(32.into()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ];
    let ab = c.ok("C_DeriveKey(ECDH1)", || {
        let params = Ecdh1DeriveParams::new(EcKdf::sha256(b"isolation"), &peer_point);
        s.derive_key(&Mechanism::Ecdh1Derive(params), ec_priv, &derived)
    });
    let ba = c.ok("C_DeriveKey(ECDH1, peer)", || {
        let params = Ecdh1DeriveParams::new(EcKdf::sha256(b"isolation"), &ec_point);
        s.derive_key(&Mechanism::Ecdh1Derive(params), peer_priv, &derived)
    });
    let ct = c.ok("C_Encrypt(derived)", || s.encrypt(&cbc, ab, msg));
    let pt = c.ok("C_Decrypt(derived by the peer)", || {
        s.decrypt(&cbc, ba, &ct)
    });
    assert_eq!(pt, msg, "both sides of the ECDH derived the same key");

    // Wrap and unwrap.
    let wrapped = c.ok("C_WrapKey(AES-KW)", || {
        s.wrap_key(&Mechanism::AesKeyWrap, aes, imported_aes)
    });
    let unwrapped = c.ok("C_UnwrapKey(AES-KW)", || {
        s.unwrap_key(
            &Mechanism::AesKeyWrap,
            aes,
            &wrapped,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(false),
                Attribute::Decrypt(true),
            ],
        )
    });
    let pt = c.ok("C_Decrypt(unwrapped)", || {
        s.decrypt(&cbc, unwrapped, &cbc_ct)
    });
    assert_eq!(pt, msg);
    let mut corrupt = wrapped.clone();
    corrupt[5] ^= 1;
    let refused = c.run("C_UnwrapKey(AES-KW, corrupt)", || {
        s.unwrap_key(
            &Mechanism::AesKeyWrap,
            aes,
            &corrupt,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(false),
            ],
        )
    });
    assert_ne!(rv_of(refused), RvError::GeneralError);

    // Digest and random.
    let digest = c.ok("C_Digest(SHA-256)", || s.digest(&Mechanism::Sha256, b"abc"));
    assert_eq!(
        hex::encode(digest),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    c.ok("C_GenerateRandom", || s.generate_random_vec(32));

    // A wrong PIN is refused as such, and the right one still opens the token.
    c.ok("C_Logout", || s.logout());
    let refused = c.run("C_Login(wrong PIN)", || {
        s.login(UserType::User, Some(&pin("wrong-pin-2222")))
    });
    assert_eq!(rv_of(refused), RvError::PinIncorrect);
    c.ok("C_Login(USER) again", || {
        s.login(UserType::User, Some(&pin(USER_PIN)))
    });
    c.ok("C_Sign after login again", || {
        s.sign(&Mechanism::EcdsaSha256, ec_priv, msg)
    });
    drop(s);
    c.ok("C_Finalize", || p.finalize());
    println!(
        "{} calls, each with the application's error on the host queue: unchanged",
        c.calls
    );
    println!("child {}: ok", child_role().unwrap_or_default());
}

/// Runs this test binary again as `role` with `env`, stdout and stderr to files; waits at most
/// [`CHILD_TIMEOUT`] (a hang is killed and reported); returns its status and output.
fn run_child(
    test: &str,
    role: &str,
    dir: &Path,
    db: &TestDb,
    env: &[(&str, String)],
) -> (Option<std::process::ExitStatus>, String) {
    let out_path = dir.join(format!("{role}.out"));
    let out = std::fs::File::create(&out_path).expect("child output file");
    let err = out.try_clone().expect("clone output file");
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .envs(db.envs())
        .env(ENV_CHILD_ROLE, role)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn child");
    let deadline = Instant::now() + CHILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    (status, text)
}

#[test]
fn key_operations_ignore_the_hosts_openssl_configuration_and_error_queue() {
    if child_role().is_some() {
        key_operations_child();
        return;
    }
    let test = "key_operations_ignore_the_hosts_openssl_configuration_and_error_queue";
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let mut failures = Vec::new();
    for (name, text, host_cannot_hash) in CONFIGS {
        let conf = dir.path().join(format!("{name}.cnf"));
        std::fs::write(&conf, text).expect("write OpenSSL configuration");
        let db = TestDb::new(&format!("isolation-{name}"));
        let mut env = vec![("OPENSSL_CONF", conf.display().to_string())];
        if host_cannot_hash {
            env.push((ENV_HOST_BROKEN, "1".into()));
        }
        let (status, out) = run_child(test, name, dir.path(), &db, &env);
        println!("--- host configuration {name} ---\n{out}");
        match status {
            None => failures.push(format!(
                "{name}: the child hung (killed after {} s)",
                CHILD_TIMEOUT.as_secs()
            )),
            Some(status) if !status.success() || !out.contains(&format!("child {name}: ok")) => {
                // The panic's message is the line after "panicked at".
                let lines: Vec<&str> = out.lines().collect();
                let why = lines
                    .iter()
                    .position(|l| l.contains("panicked at"))
                    .and_then(|at| lines.get(at + 1))
                    .or_else(|| lines.iter().rev().find(|l| !l.trim().is_empty()))
                    .copied()
                    .unwrap_or_default();
                failures.push(format!("{name}: {status}: {why}"));
            }
            Some(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn openssl_with_the_libp11_engine_signs_with_sqlhsm_keys() {
    if child_role().is_some() {
        return;
    }
    let Some(engine) = libp11_engine() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the libp11 engine is missing (Debian package libengine-pkcs11-openssl), and CI is set"
        );
        announce(
            "skipped: no libp11 engine (install libengine-pkcs11-openssl) or no openssl command",
        );
        return;
    };
    let p = ctx();
    let slot = new_token(p, "engine");
    let s = user_session(p, slot);
    let (ec_pub, _) = gen_ec(&s, P256, "engine-ec", b"e1");
    let (rsa_pub, _) = gen_rsa(&s, 2048, "engine-rsa", b"e2");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let data = dir.path().join("data");
    std::fs::write(&data, b"signed by sqlhsm inside an OpenSSL application").expect("data");
    for (label, public) in [("engine-ec", ec_pub), ("engine-rsa", rsa_pub)] {
        let sig = dir.path().join(format!("{label}.sig"));
        let uri = format!("pkcs11:token=engine;object={label};type=private;pin-value={USER_PIN}");
        // `-engine` makes the engine OpenSSL's default for every algorithm in that process,
        // sqlhsm's own operations included had it shared the application's OpenSSL.
        let mut cmd = Command::new("timeout");
        cmd.arg("120")
            .arg("openssl")
            .args([
                "dgst", "-sha256", "-engine", "pkcs11", "-keyform", "engine", "-sign",
            ])
            .arg(&uri)
            .arg("-out")
            .arg(&sig)
            .arg(&data)
            .env("PKCS11_MODULE_PATH", module_path())
            .envs(ctx_db().envs());
        let out = cmd.output().expect("run openssl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "openssl dgst -engine pkcs11 ({}) with {label}: {}: {text}",
            engine.display(),
            out.status
        );
        let signature = std::fs::read(&sig).expect("signature file");
        let key = openssl_public(&s, public);
        let mut verifier =
            openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &key)
                .expect("verifier");
        let message = std::fs::read(&data).expect("data");
        assert!(
            verifier
                .verify_oneshot(&signature, &message)
                .expect("verify"),
            "{label}: the signature made through the engine verifies"
        );
    }
}

#[test]
fn module_exports_only_pkcs11_and_links_no_system_openssl() {
    if child_role().is_some() {
        return;
    }
    let module = module_path();
    let nm = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&module)
        .output()
        .expect("run nm (binutils)");
    assert!(
        nm.status.success(),
        "nm: {}",
        String::from_utf8_lossy(&nm.stderr)
    );
    let symbols: Vec<String> = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect();
    assert!(symbols.iter().any(|s| s == "C_GetFunctionList"));
    let foreign: Vec<&String> = symbols.iter().filter(|s| !s.starts_with("C_")).collect();
    assert!(
        foreign.is_empty(),
        "libsqlhsm.so exports more than PKCS#11 functions: {foreign:?}"
    );
    let readelf = Command::new("readelf")
        .arg("-d")
        .arg(&module)
        .output()
        .expect("run readelf (binutils)");
    let dynamic = String::from_utf8_lossy(&readelf.stdout);
    let needed: Vec<&str> = dynamic.lines().filter(|l| l.contains("(NEEDED)")).collect();
    assert!(
        !needed.is_empty(),
        "readelf -d found no NEEDED entries: {dynamic}"
    );
    assert!(
        !needed
            .iter()
            .any(|l| l.contains("libcrypto") || l.contains("libssl")),
        "libsqlhsm.so links the system's OpenSSL: {needed:?}"
    );
    // The private OpenSSL's thread-exit destructors live in the module: it must never be
    // unmapped while threads that used it live on (build.rs links it `-z nodelete`).
    assert!(
        dynamic
            .lines()
            .any(|l| l.contains("(FLAGS_1)") && l.contains("NODELETE")),
        "libsqlhsm.so is not marked NODELETE: {dynamic}"
    );
}

#[test]
fn the_admin_command_ignores_the_hosts_openssl_configuration() {
    if child_role().is_some() {
        return;
    }
    let db = TestDb::new("isolation-admin");
    let conf = db.dir.join("fips-properties.cnf");
    std::fs::write(&conf, CONFIGS[0].1).expect("write OpenSSL configuration");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sqlhsm"))
            .args(args)
            .stdin(Stdio::null())
            .envs(db.envs())
            .env("SQLHSM_PIN", USER_PIN)
            .env("SQLHSM_SO_PIN", SO_PIN)
            .env("OPENSSL_CONF", &conf)
            .env_remove("SQLHSM_LOG")
            .output()
            .expect("run sqlhsm");
        assert!(
            out.status.success(),
            "sqlhsm {args:?} under OPENSSL_CONF with default_properties = fips=yes: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["token", "init", "admin-fips"]);
    run(&[
        "key",
        "generate",
        "--token",
        "admin-fips",
        "--algorithm",
        "ec-p256",
    ]);
}

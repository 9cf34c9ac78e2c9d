//! Key modes REMOTE, PROVIDER_ROOT_KEY and PUBLIC_KEY_ONLY with a real remote module: SoftHSMv2
//! (`libsofthsm2.so`, Debian package `softhsm2`) behind sqlhsm tokens made with
//! `sqlhsm token init --provider pkcs11`. What is in the HSM is checked with SoftHSM's side of
//! the world (`pkcs11-tool` on `libsofthsm2.so`, another process); what is in the database
//! with SQL; signatures and ciphertexts with OpenSSL. Runs on SQLite and, with
//! `SQLHSM_TEST_BACKEND=postgres`, on PostgreSQL.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Padding;
use openssl::sign::Verifier;

const HSM_PIN: &str = "4321";
const HSM_SO_PIN: &str = "87654321";
const CKA_SQLHSM_ROTATED_FROM: u64 = 0xD351_0006;
/// Every SoftHSM token the tests of this file use, made before any test loads SoftHSM.
/// One per test: SoftHSM's file store is not built for several writers on one token at once.
const HSM_TOKENS: &[&str] = &[
    "hsm-keys",
    "hsm-root",
    "hsm-fault",
    "hsm-gone",
    "hsm-life",
    "hsm-admin",
    "hsm-kx",
    "hsm-pub",
    "hsm-mac",
    "hsm-threads",
    "hsm-rotate",
    "hsm-mechs",
    "hsm-sha3",
];

/// The SoftHSM set-up of this test process: its module, configuration and token directory.
struct SoftHsm {
    module: PathBuf,
    conf: PathBuf,
    dir: PathBuf,
}

fn softhsm_module() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SQLHSM_TEST_SOFTHSM") {
        return Some(PathBuf::from(p));
    }
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// SoftHSM, set up once: `None` (with the reason printed) when it is not installed and this is
/// not CI; in CI a missing SoftHSM is a failure.
fn softhsm() -> Option<&'static SoftHsm> {
    static HSM: OnceLock<Option<SoftHsm>> = OnceLock::new();
    HSM.get_or_init(|| {
        let Some(module) = softhsm_module() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "libsofthsm2.so not found (CI is set, so this is a failure: install softhsm2)"
            );
            announce("skipped: SoftHSMv2 (libsofthsm2.so) is not installed");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("softhsm-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("tempdir")
            .keep();
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).expect("token dir");
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("softhsm2.conf");
        // Before anything in this process loads SoftHSM (sqlhsm loads it on first remote use).
        std::env::set_var("SOFTHSM2_CONF", &conf);
        std::fs::write(dir.join("pin"), format!("{HSM_PIN}\n")).expect("pin file");
        for label in HSM_TOKENS {
            let out = Command::new("softhsm2-util")
                .args(["--init-token", "--free", "--label", label])
                .args(["--pin", HSM_PIN, "--so-pin", HSM_SO_PIN])
                .env("SOFTHSM2_CONF", &conf)
                .output()
                .expect("run softhsm2-util");
            assert!(
                out.status.success(),
                "softhsm2-util --init-token {label}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Some(SoftHsm { module, conf, dir })
    })
    .as_ref()
}

impl SoftHsm {
    /// A file holding the right remote PIN (shared; tests that break a PIN use their own).
    fn pin_file(&self) -> PathBuf {
        self.dir.join("pin")
    }

    /// A private symlink to the module, so a test can make "the module" disappear.
    fn module_link(&self, name: &str) -> PathBuf {
        let link_dir = self.dir.join(format!("link-{name}"));
        std::fs::create_dir_all(&link_dir).expect("link dir");
        let link = link_dir.join("libsofthsm2.so");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&self.module, &link).expect("symlink module");
        link
    }

    /// `pkcs11-tool --list-objects` on the SoftHSM token, logged in: SoftHSM's own account of
    /// what it holds, from another process.
    fn list_objects(&self, token: &str) -> String {
        let out = Command::new("pkcs11-tool")
            .args(["--module"])
            .arg(&self.module)
            .args(["--token-label", token, "--login", "--pin", HSM_PIN])
            .arg("--list-objects")
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .expect("run pkcs11-tool");
        assert!(out.status.success(), "pkcs11-tool --list-objects {token}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One object of a `pkcs11-tool --list-objects` listing (its heading line and the indented
/// lines under it), found by kind and exact label.
fn listed(listing: &str, kind: &str, label: &str) -> Option<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in listing.lines() {
        if !line.is_empty() && !line.starts_with(' ') {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks.into_iter().find(|block| {
        block.starts_with(kind)
            && block
                .lines()
                .any(|l| l.trim().strip_prefix("label:").map(str::trim) == Some(label))
    })
}

/// The object is sensitive and cannot be extracted, as `pkcs11-tool` shows its access flags.
fn hsm_protected(block: &str) -> bool {
    block.lines().any(|l| {
        let l = l.trim();
        l.starts_with("Access:")
            && l.contains("sensitive")
            && !l.replace("never extractable", "").contains("extractable")
    })
}

/// Creates an sqlhsm token in front of a SoftHSM token with the admin command.
fn init_provider_token(label: &str, module: &Path, remote: &str, pin_file: &Path, extra: &[&str]) {
    let hsm = softhsm().expect("softhsm");
    let db = ctx_db();
    let out = Command::new(env!("CARGO_BIN_EXE_sqlhsm"))
        .args(["token", "init", label, "--provider", "pkcs11", "--module"])
        .arg(module)
        .args(["--remote-token", remote, "--remote-pin-file"])
        .arg(pin_file)
        .args(extra)
        .env("SQLHSM_DB", db.url())
        .env("SQLHSM_CONF", &db.conf)
        .env("SQLHSM_PIN", USER_PIN)
        .env("SQLHSM_SO_PIN", SO_PIN)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env_remove("SQLHSM_LOG")
        .output()
        .expect("run sqlhsm");
    assert!(
        out.status.success(),
        "sqlhsm token init {label}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn slot_of(label: &str) -> cryptoki::slot::Slot {
    slot_by_label(ctx(), label).unwrap_or_else(|| {
        let p = ctx();
        let all: Vec<_> = p
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .map(|s| (s, p.get_token_info(s).map(|t| t.label().to_string())))
            .collect();
        panic!("no slot for token {label}: {all:?}")
    })
}

/// A P-256 key made by OpenSSL and its uncompressed public point.
fn openssl_p256() -> (openssl::ec::EcKey<openssl::pkey::Private>, Vec<u8>) {
    let group =
        openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("group");
    let key = openssl::ec::EcKey::generate(&group).expect("EC key");
    let mut bn = openssl::bn::BigNumContext::new().expect("bn");
    let point = key
        .public_key()
        .to_bytes(
            &group,
            openssl::ec::PointConversionForm::UNCOMPRESSED,
            &mut bn,
        )
        .expect("point");
    (key, point)
}

/// An sqlhsm token `label` in front of the SoftHSM token `remote`, with the shared PIN file.
fn token_on_hsm(label: &str, remote: &str) -> cryptoki::slot::Slot {
    let hsm = softhsm().expect("softhsm");
    init_provider_token(label, &hsm.module, remote, &hsm.pin_file(), &[]);
    slot_of(label)
}

fn key_id(s: &Session, key: ObjectHandle) -> String {
    String::from_utf8(get_bytes(
        s,
        key,
        AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID),
    ))
    .expect("utf-8 key id")
}

fn mode(s: &Session, key: ObjectHandle) -> u64 {
    get_ulong_vendor(s, key, CKA_SQLHSM_KEY_MODE)
}

fn one(db: &TestDb, sql: &str) -> String {
    let rows = db.query_texts(sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows.into_iter().next().unwrap_or_default()
}

fn verify_ecdsa(s: &Session, public: ObjectHandle, data: &[u8], raw_sig: &[u8]) -> bool {
    let key = openssl_public(s, public);
    let mut v = Verifier::new(MessageDigest::sha256(), &key).expect("verifier");
    v.update(data).expect("update");
    v.verify(&ecdsa_raw_to_der(raw_sig)).expect("verify")
}

fn oaep_sha256() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ))
}

/// SoftHSM 2.6 does RSA-OAEP with SHA-1 only; sqlhsm forwards what the remote offers.
fn oaep_sha1() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA1,
        PkcsMgfType::MGF1_SHA1,
        PkcsOaepSource::empty(),
    ))
}

fn oaep_encrypt(public: &PKey<openssl::pkey::Public>, plain: &[u8], sha1: bool) -> Vec<u8> {
    let md = if sha1 {
        openssl::md::Md::sha1()
    } else {
        openssl::md::Md::sha256()
    };
    let mut ctx = openssl::pkey_ctx::PkeyCtx::new(public).expect("ctx");
    ctx.encrypt_init().expect("init");
    ctx.set_rsa_padding(Padding::PKCS1_OAEP).expect("padding");
    ctx.set_rsa_oaep_md(md).expect("md");
    ctx.set_rsa_mgf1_md(md).expect("mgf");
    let mut out = Vec::new();
    ctx.encrypt_to_vec(plain, &mut out).expect("encrypt");
    out
}

#[test]
fn remote_keys_are_made_and_used_in_the_hsm() {
    let Some(hsm) = softhsm() else { return };
    init_provider_token("remote-keys", &hsm.module, "hsm-keys", &hsm.pin_file(), &[]);
    let s = user_session(ctx(), slot_of("remote-keys"));

    let (ec_public, ec_private) = gen_ec(&s, P256, "ec-remote", b"ec-remote");
    let (rsa_public, rsa_private) = gen_rsa(&s, 2048, "rsa-remote", b"rsa-remote");
    let aes = gen_aes(&s, 32, "aes-remote");
    for key in [ec_private, rsa_private, aes] {
        assert_eq!(mode(&s, key), 3, "key mode REMOTE");
        assert!(get_bool(&s, key, AttributeType::Sensitive));
        assert!(!get_bool(&s, key, AttributeType::Extractable));
    }
    // The public halves are cached here, so they have a mode too (the row's).
    assert_eq!(mode(&s, ec_public), 3);

    // SoftHSM holds them, sensitive and never extractable.
    let listing = hsm.list_objects("hsm-keys");
    for (kind, label) in [
        ("Private Key Object; EC", "ec-remote"),
        ("Private Key Object; RSA", "rsa-remote"),
        ("Secret Key Object; AES", "aes-remote"),
    ] {
        let block = listed(&listing, kind, label)
            .unwrap_or_else(|| panic!("{kind} {label} not in SoftHSM:\n{listing}"));
        assert!(hsm_protected(&block), "{label} in SoftHSM: {block}");
        assert!(
            block.contains("never extractable"),
            "{label} in SoftHSM: {block}"
        );
    }

    // The database holds references only: no sealed private key, no secret value.
    let db = ctx_db();
    for key in [ec_private, rsa_private] {
        let id = key_id(&s, key);
        let ctx_text = one(
            db,
            &format!("SELECT CAST(private_key_ctx AS TEXT) FROM asym_key WHERE key_id = '{id}'"),
        );
        assert!(ctx_text.contains("\"remote\""), "{ctx_text}");
        assert!(!ctx_text.contains("wrappedKey"), "{ctx_text}");
    }
    let aes_id = key_id(&s, aes);
    assert_eq!(
        one(
            db,
            &format!("SELECT CASE WHEN key_value IS NULL THEN 'null' ELSE 'set' END FROM sym_key WHERE key_id = '{aes_id}'"),
        ),
        "null"
    );
    assert_eq!(
        one(
            db,
            &format!("SELECT CAST(key_mode AS TEXT) FROM sym_key WHERE key_id = '{aes_id}'")
        ),
        "3"
    );

    // ECDSA-SHA256: hashed here, signed in SoftHSM, verified by OpenSSL.
    let data = b"signed by the HSM behind sqlhsm";
    let sig = s
        .sign(&Mechanism::EcdsaSha256, ec_private, data)
        .expect("C_Sign ECDSA");
    assert!(
        verify_ecdsa(&s, ec_public, data, &sig),
        "ECDSA verifies in OpenSSL"
    );
    // Multi-part too.
    s.sign_init(&Mechanism::EcdsaSha256, ec_private)
        .expect("C_SignInit");
    s.sign_update(&data[..10]).expect("update");
    s.sign_update(&data[10..]).expect("update");
    let sig = s.sign_final().expect("C_SignFinal");
    assert!(verify_ecdsa(&s, ec_public, data, &sig));
    // Verification runs locally on the cached public key.
    s.verify(&Mechanism::EcdsaSha256, ec_public, data, &sig)
        .expect("C_Verify");

    // RSA PKCS#1 v1.5 with SHA-256, verified by OpenSSL.
    let sig = s
        .sign(&Mechanism::Sha256RsaPkcs, rsa_private, data)
        .expect("C_Sign RSA");
    let rsa_key = openssl_public(&s, rsa_public);
    let mut v = Verifier::new(MessageDigest::sha256(), &rsa_key).expect("verifier");
    v.update(data).expect("update");
    assert!(
        v.verify(&sig).expect("verify"),
        "RSA signature verifies in OpenSSL"
    );

    // RSA-OAEP: encrypted by OpenSSL, decrypted in SoftHSM through sqlhsm.
    let secret = b"only the HSM can read this";
    let ciphertext = oaep_encrypt(&rsa_key, secret, true);
    let plain = s
        .decrypt(&oaep_sha1(), rsa_private, &ciphertext)
        .expect("C_Decrypt OAEP");
    assert_eq!(plain, secret);
    // A damaged ciphertext is the caller's error, not a device error.
    let mut bad = ciphertext.clone();
    bad[10] ^= 1;
    // (SoftHSM says CKR_GENERAL_ERROR, passed on as CKR_FUNCTION_FAILED.)
    expect_rv_in(
        s.decrypt(&oaep_sha1(), rsa_private, &bad),
        &[
            RvError::EncryptedDataInvalid,
            RvError::DataInvalid,
            RvError::FunctionFailed,
        ],
    );
    // What the remote does not offer is refused as such, not as a device failure.
    expect_rv(
        s.decrypt(&oaep_sha256(), rsa_private, &ciphertext),
        RvError::MechanismParamInvalid,
    );

    // AES-GCM with the remote secret key, both ways.
    let aad = b"header";
    let mut iv = [3u8; 12];
    let gcm = Mechanism::AesGcm(
        cryptoki::mechanism::aead::GcmParams::new(&mut iv, aad, 128.into()).expect("gcm"),
    );
    let sealed = s.encrypt(&gcm, aes, secret).expect("C_Encrypt GCM");
    assert_eq!(sealed.len(), secret.len() + 16);
    let opened = s.decrypt(&gcm, aes, &sealed).expect("C_Decrypt GCM");
    assert_eq!(opened, secret);

    // Status is enforced here before anything reaches the HSM.
    s.update_attributes(
        ec_private,
        &[Attribute::VendorDefined((
            AttributeType::VendorDefined(CKA_SQLHSM_KEY_STATUS),
            3u64.to_ne_bytes().to_vec(),
        ))],
    )
    .expect("mark compromised");
    expect_rv(
        s.sign(&Mechanism::EcdsaSha256, ec_private, data),
        RvError::KeyFunctionNotPermitted,
    );
    // Usage flags too: the EC key was not made for decryption.
    expect_rv_in(
        s.decrypt_init(&Mechanism::Ecdsa, ec_private),
        &[
            RvError::KeyTypeInconsistent,
            RvError::KeyFunctionNotPermitted,
            RvError::MechanismInvalid,
        ],
    );

    // Destroying the REMOTE key destroys its SoftHSM objects (on_destroy = destroy).
    let rsa_id = key_id(&s, rsa_private);
    s.destroy_object(rsa_private).expect("C_DestroyObject");
    let listing = hsm.list_objects("hsm-keys");
    assert!(
        listed(&listing, "Private Key Object; RSA", "rsa-remote").is_none(),
        "the remote RSA key is gone:\n{listing}"
    );
    let history = db.query_texts(&format!(
        "SELECT event FROM key_event WHERE key_id = '{rsa_id}' ORDER BY at"
    ));
    assert!(
        history.iter().any(|e| e == "remote-retired"),
        "history records the remote side: {history:?}"
    );
}

#[test]
fn remote_unwrap_and_derive_stay_in_the_hsm() {
    let Some(hsm) = softhsm() else { return };
    let s = user_session(ctx(), token_on_hsm("remote-kx", "hsm-kx"));

    // Unwrap: an AES key wrapped by OpenSSL under the remote RSA key's public half.
    let (mut public, mut private) = rsa_templates(2048, "kx-rsa", b"kx-rsa");
    public.push(Attribute::Wrap(true));
    private.push(Attribute::Unwrap(true));
    let (rsa_public, rsa_private) = s
        .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .expect("RSA pair");
    let key = [0x5au8; 32];
    let wrapped = oaep_encrypt(&openssl_public(&s, rsa_public), &key, true);
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(b"kx-unwrapped".to_vec()),
    ];
    let unwrapped = s
        .unwrap_key(&oaep_sha1(), rsa_private, &wrapped, &template)
        .expect("C_UnwrapKey with a REMOTE key");
    assert_eq!(mode(&s, unwrapped), 3, "the unwrapped key is REMOTE too");
    let block = [0x11u8; 16];
    let enc = s
        .encrypt(&Mechanism::AesEcb, unwrapped, &block)
        .expect("AES-ECB");
    let expected = openssl::symm::encrypt(openssl::symm::Cipher::aes_256_ecb(), &key, None, &block)
        .expect("openssl");
    assert_eq!(
        enc,
        expected[..16],
        "SoftHSM unwrapped exactly OpenSSL's key"
    );

    // Derive: ECDH with a peer made by OpenSSL; the shared secret stays in SoftHSM.
    let (mut public, mut private) = ec_templates(P256, "kx-ec", b"kx-ec");
    public.push(Attribute::Derive(true));
    private.push(Attribute::Derive(true));
    let (ec_public, ec_private) = s
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .expect("EC pair");
    let (peer, peer_point) = openssl_p256();
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(b"kx-derived".to_vec()),
    ];
    let derived = s
        .derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &peer_point)),
            ec_private,
            &template,
        )
        .expect("C_DeriveKey with a REMOTE key");
    assert_eq!(mode(&s, derived), 3);
    let ours = openssl_public(&s, ec_public);
    let peer_key = PKey::from_ec_key(peer).expect("pkey");
    let mut deriver = openssl::derive::Deriver::new(&peer_key).expect("deriver");
    deriver.set_peer(&ours).expect("peer");
    let shared = deriver.derive_to_vec().expect("derive");
    let enc = s
        .encrypt(&Mechanism::AesEcb, derived, &block)
        .expect("AES-ECB");
    let expected =
        openssl::symm::encrypt(openssl::symm::Cipher::aes_256_ecb(), &shared, None, &block)
            .expect("openssl");
    assert_eq!(
        enc,
        expected[..16],
        "the derived key is the ECDH shared secret"
    );

    let listing = hsm.list_objects("hsm-kx");
    for label in ["kx-unwrapped", "kx-derived"] {
        let block = listed(&listing, "Secret Key Object; AES", label)
            .unwrap_or_else(|| panic!("{label} not in SoftHSM:\n{listing}"));
        assert!(hsm_protected(&block), "{block}");
    }
}

#[test]
fn rotation_marks_the_remote_predecessor() {
    let Some(hsm) = softhsm() else { return };
    let keep = ["--on-destroy", "keep"];
    init_provider_token(
        "remote-life",
        &hsm.module,
        "hsm-life",
        &hsm.pin_file(),
        &keep,
    );
    let s = user_session(ctx(), slot_of("remote-life"));
    let (_, old) = gen_ec(&s, P256, "life", b"life-1");
    let old_id = key_id(&s, old);
    let (public, mut private) = ec_templates(P256, "life", b"life-2");
    private.push(Attribute::VendorDefined((
        AttributeType::VendorDefined(CKA_SQLHSM_ROTATED_FROM),
        old_id.clone().into_bytes(),
    )));
    let (new_public, new) = s
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .expect("rotation");
    assert_eq!(mode(&s, new), 3);
    assert_eq!(get_ulong_vendor(&s, old, CKA_SQLHSM_KEY_STATUS), 2);
    let listing = hsm.list_objects("hsm-life");
    assert!(
        listed(&listing, "Private Key Object; EC", "rotated:life").is_some(),
        "the predecessor is relabelled in SoftHSM:\n{listing}"
    );
    assert!(listed(&listing, "Private Key Object; EC", "life").is_some());
    // The successor signs; the Inactive predecessor no longer does.
    let sig = s.sign(&Mechanism::EcdsaSha256, new, b"x").expect("sign");
    assert!(verify_ecdsa(&s, new_public, b"x", &sig));
    expect_rv(
        s.sign(&Mechanism::EcdsaSha256, old, b"x"),
        RvError::KeyFunctionNotPermitted,
    );
    // on_destroy = keep: the remote object stays, marked.
    s.destroy_object(old).expect("destroy");
    let listing = hsm.list_objects("hsm-life");
    assert!(
        listed(&listing, "Private Key Object; EC", "destroyed:life").is_some(),
        "kept and relabelled:\n{listing}"
    );
}

/// A rotation on a REMOTE token leaves the label and `CKA_ID` to the successor as on a local
/// one: the predecessor answers to `<label>@<key_id>` (and `CKA_ID` ‖ `@<key_id>`), and its
/// material, still in the HSM under its own remote reference, decrypts what it encrypted.
#[test]
fn remote_rotation_leaves_its_names_to_the_successor() {
    if softhsm().is_none() {
        return;
    }
    let s = user_session(ctx(), token_on_hsm("remote-rotate", "hsm-rotate"));
    let rotated_from = |key_id: &str| {
        Attribute::VendorDefined((
            AttributeType::VendorDefined(CKA_SQLHSM_ROTATED_FROM),
            key_id.as_bytes().to_vec(),
        ))
    };
    let find = |template: &[Attribute]| {
        let mut found = s.find_objects(template).expect("C_FindObjects");
        found.sort_by_key(|h| h.handle());
        found
    };
    let sorted = |mut handles: Vec<ObjectHandle>| {
        handles.sort_by_key(|h| h.handle());
        handles
    };
    let derived_id = |id: &[u8], key_id: &str| [id, format!("@{key_id}").as_bytes()].concat();

    // An EC pair made in the HSM, rotated through PKCS#11.
    let (old_public, old_private) = gen_ec(&s, P256, "signer", &[0x01]);
    assert_eq!(mode(&s, old_private), 3);
    let old = key_id(&s, old_private);
    let signature = s
        .sign(&Mechanism::EcdsaSha256, old_private, b"before")
        .expect("sign in the HSM");
    let (public, mut private) = ec_templates(P256, "signer", &[0x01]);
    private.push(rotated_from(&old));
    let (new_public, new_private) = s
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .expect("rotation");
    assert_eq!(mode(&s, new_private), 3);
    let successor = sorted(vec![new_public, new_private]);
    let predecessor = sorted(vec![old_public, old_private]);
    assert_eq!(find(&[Attribute::Label(b"signer".to_vec())]), successor);
    assert_eq!(find(&[Attribute::Id(vec![0x01])]), successor);
    let old_label = format!("signer@{old}").into_bytes();
    assert_eq!(find(&[Attribute::Label(old_label.clone())]), predecessor);
    assert_eq!(
        find(&[Attribute::Id(derived_id(&[0x01], &old))]),
        predecessor
    );
    assert!(verify_ecdsa(&s, old_public, b"before", &signature));
    let fresh = s
        .sign(&Mechanism::EcdsaSha256, new_private, b"after")
        .expect("the successor signs in the HSM");
    assert!(verify_ecdsa(&s, new_public, b"after", &fresh));

    // An AES key in the HSM: the renamed predecessor still decrypts there.
    let aes_template = |from: Option<&str>| {
        let mut t = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::ValueLen(32.into()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Label(b"sealer".to_vec()),
            Attribute::Id(vec![0x02]),
        ];
        t.extend(from.map(rotated_from));
        t
    };
    let old_aes = s
        .generate_key(&Mechanism::AesKeyGen, &aes_template(None))
        .expect("AES in the HSM");
    assert_eq!(mode(&s, old_aes), 3);
    let old_aes_id = key_id(&s, old_aes);
    let iv = [5u8; 16];
    let sealed = s
        .encrypt(&Mechanism::AesCbcPad(iv), old_aes, b"sealed before")
        .expect("encrypt in the HSM");
    let new_aes = s
        .generate_key(&Mechanism::AesKeyGen, &aes_template(Some(&old_aes_id)))
        .expect("rotation");
    assert_eq!(find(&[Attribute::Label(b"sealer".to_vec())]), vec![new_aes]);
    assert_eq!(find(&[Attribute::Id(vec![0x02])]), vec![new_aes]);
    let by_derived = find(&[Attribute::Label(
        format!("sealer@{old_aes_id}").into_bytes(),
    )]);
    assert_eq!(by_derived, vec![old_aes]);
    assert_eq!(
        find(&[Attribute::Id(derived_id(&[0x02], &old_aes_id))]),
        vec![old_aes]
    );
    assert_eq!(
        s.decrypt(&Mechanism::AesCbcPad(iv), by_derived[0], &sealed)
            .expect("the predecessor decrypts in the HSM"),
        b"sealed before"
    );
}

#[test]
fn provider_root_key_token_needs_its_hsm() {
    if let Some(role) = child_role() {
        return root_child(&role);
    }
    let Some(hsm) = softhsm() else { return };
    let db = ctx_db();
    let link = hsm.module_link("root");
    init_provider_token(
        "rooted",
        &link,
        "hsm-root",
        &hsm.pin_file(),
        &["--key-mode", "provider-root-key"],
    );
    let s = user_session(ctx(), slot_of("rooted"));
    let (public, private) = gen_ec(&s, P256, "rooted-ec", b"rooted-ec");
    assert_eq!(mode(&s, private), 2, "key mode PROVIDER_ROOT_KEY");
    let sig = s
        .sign(&Mechanism::EcdsaSha256, private, b"fast and local")
        .expect("sign");
    assert!(verify_ecdsa(&s, public, b"fast and local", &sig));
    // The material is sealed here (locally, under the token key) ...
    let ctx_text = one(
        db,
        "SELECT CAST(private_key_ctx AS TEXT) FROM asym_key WHERE key_id = 'rooted-ec'",
    );
    assert!(ctx_text.contains("wrappedKey"), "{ctx_text}");
    // A post-quantum pair is sealed the same way (here, under the token key).
    let set = cryptoki::object::ParameterSetType::try_from(cryptoki::types::Ulong::from(
        cryptoki_sys::CKP_ML_DSA_65,
    ))
    .expect("set");
    let (_, pq_private) = s
        .generate_key_pair(
            &Mechanism::MlDsaKeyPairGen,
            &[Attribute::Token(true), Attribute::ParameterSet(set)],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(b"rooted-ml-dsa".to_vec()),
            ],
        )
        .expect("ML-DSA-65 on a PROVIDER_ROOT_KEY token");
    assert_eq!(mode(&s, pq_private), 2, "key mode PROVIDER_ROOT_KEY");
    let pq_id = key_id(&s, pq_private);
    let ctx_text = one(
        db,
        &format!("SELECT CAST(private_key_ctx AS TEXT) FROM asym_key WHERE key_id = '{pq_id}'"),
    );
    assert!(ctx_text.contains("wrappedKey"), "{ctx_text}");
    // A PIN change re-seals the token key bound to the root secret: the new PIN opens it.
    s.set_pin(&pin(USER_PIN), &pin("user-pin-2222"))
        .expect("C_SetPIN on a PROVIDER_ROOT_KEY token");
    s.logout().expect("logout");
    s.login(
        cryptoki::session::UserType::User,
        Some(&pin("user-pin-2222")),
    )
    .expect("login with the new PIN");
    s.set_pin(&pin("user-pin-2222"), &pin(USER_PIN))
        .expect("PIN back");
    s.sign(&Mechanism::EcdsaSha256, private, b"after")
        .expect("sign after the PIN change");
    // ... and the root key is in SoftHSM.
    let listing = hsm.list_objects("hsm-root");
    assert!(
        listed(&listing, "Secret Key Object; AES", "sqlhsm-root:rooted").is_some(),
        "{listing}"
    );

    // Another process, with the module gone: no login (a device error, not a wrong PIN);
    // a local token works; when the module is back, the login works with no restart.
    // (The LOCAL token is made here: C_InitToken in the child would race this process's.)
    let local = new_token(ctx(), "rootless-local");
    let ls = user_session(ctx(), local);
    gen_ec(&ls, P256, "local", b"rootless-local");
    let sync = tempfile::tempdir().expect("sync dir");
    std::fs::remove_file(&link).expect("remove the module");
    let child = spawn_child(
        "provider_root_key_token_needs_its_hsm",
        "rootless",
        db,
        &[
            (ENV_CHILD_SYNC, sync.path().display().to_string()),
            ("SOFTHSM2_CONF", hsm.conf.display().to_string()),
        ],
    );
    wait_children_ready(sync.path(), 1);
    std::os::unix::fs::symlink(&hsm.module, &link).expect("restore the module");
    std::fs::write(sync.path().join("go"), b"").expect("go");
    finish_child("rootless", child);
    assert_eq!(
        db.user_failures("rooted"),
        0,
        "a missing HSM is not a wrong PIN"
    );
}

fn root_child(role: &str) {
    let p = child_init();
    let slot = slot_by_label(&p, "rooted").expect("rooted token");
    let s = p.open_rw_session(slot).expect("session");
    expect_rv(
        s.login(cryptoki::session::UserType::User, Some(&pin(USER_PIN))),
        RvError::DeviceError,
    );
    let local = slot_by_label(&p, "rootless-local").expect("local token");
    let ls = user_session(&p, local);
    let k = find_by_label_class(&ls, "local", ObjectClass::PRIVATE_KEY);
    ls.sign(&Mechanism::EcdsaSha256, k[0], b"x")
        .expect("a LOCAL token still signs");
    child_ready_then_wait(role);
    s.login(cryptoki::session::UserType::User, Some(&pin(USER_PIN)))
        .expect("login once the module is back");
    let key = find_by_label_class(&s, "rooted-ec", ObjectClass::PRIVATE_KEY);
    s.sign(&Mechanism::EcdsaSha256, key[0], b"x").expect("sign");
    println!("child {role}: ok");
}

#[test]
fn remote_faults_stay_with_their_token() {
    let Some(hsm) = softhsm() else { return };
    // A wrong remote PIN: the token's REMOTE keys fail with CKR_DEVICE_ERROR ...
    let pin_file = hsm.dir.join("fault-pin");
    std::fs::write(&pin_file, format!("{HSM_PIN}\n")).expect("pin");
    init_provider_token("remote-fault", &hsm.module, "hsm-fault", &pin_file, &[]);
    std::fs::write(&pin_file, "0000\n").expect("break the pin");
    let s = user_session(ctx(), slot_of("remote-fault"));
    let (public, private) = ec_templates(P256, "fault", b"fault");
    expect_rv(
        s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private),
        RvError::DeviceError,
    );
    // ... while a LOCAL token of the same process keeps working.
    let local = new_token(ctx(), "fault-local");
    let ls = user_session(ctx(), local);
    let (_, k) = gen_ec(&ls, P256, "local", b"local");
    ls.sign(&Mechanism::EcdsaSha256, k, b"x")
        .expect("LOCAL token signs");
    // The right PIN again: recovered, no restart.
    std::fs::write(&pin_file, format!("{HSM_PIN}\n")).expect("fix the pin");
    let (_, key) = gen_ec(&s, P256, "fault", b"fault");
    s.sign(&Mechanism::EcdsaSha256, key, b"x")
        .expect("sign after recovery");

    // A missing module: same story.
    let link = hsm.module_link("gone");
    init_provider_token("remote-gone", &link, "hsm-gone", &hsm.pin_file(), &[]);
    std::fs::remove_file(&link).expect("remove module");
    let s = user_session(ctx(), slot_of("remote-gone"));
    let (public, private) = ec_templates(P256, "gone", b"gone");
    expect_rv(
        s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private),
        RvError::DeviceError,
    );
    // Its log lines name the token by label, not by the row's UUID.
    let db = ctx_db();
    let out = Command::new(env!("CARGO_BIN_EXE_sqlhsm"))
        .args([
            "key",
            "generate",
            "--token",
            "remote-gone",
            "--algorithm",
            "ec-p256",
        ])
        .env("SQLHSM_DB", db.url())
        .env("SQLHSM_CONF", &db.conf)
        .env("SQLHSM_PIN", USER_PIN)
        .env("SQLHSM_LOG", "error")
        .env("SOFTHSM2_CONF", &hsm.conf)
        .output()
        .expect("run sqlhsm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "generate without the module: {stderr}"
    );
    let token_id = one(
        db,
        "SELECT CAST(id AS TEXT) FROM provider_config WHERE provider_name = 'remote-gone'",
    );
    assert!(
        stderr.contains("token=remote-gone") && !stderr.contains(&token_id),
        "log lines name the token by label:\n{stderr}"
    );
    ls.sign(&Mechanism::EcdsaSha256, k, b"y")
        .expect("LOCAL token signs");
    std::os::unix::fs::symlink(&hsm.module, &link).expect("restore");
    let (_, key) = gen_ec(&s, P256, "gone", b"gone");
    s.sign(&Mechanism::EcdsaSha256, key, b"x")
        .expect("sign after the module returns");
}

#[test]
fn public_key_only_objects_verify_and_encrypt() {
    if softhsm().is_none() {
        return;
    }
    let s = user_session(ctx(), token_on_hsm("remote-pub", "hsm-pub"));
    let (ec, point) = openssl_p256();
    let ec_public = s
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::Token(true),
            Attribute::EcParams(P256.to_vec()),
            Attribute::EcPoint(octet_string(&point)),
            Attribute::Verify(true),
            Attribute::Label(b"pub-only-ec".to_vec()),
            Attribute::Id(b"pub-only-ec".to_vec()),
        ])
        .expect("C_CreateObject EC public");
    assert_eq!(mode(&s, ec_public), 4, "PUBLIC_KEY_ONLY");
    let ec_pkey = PKey::from_ec_key(ec).expect("pkey");
    let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &ec_pkey).expect("signer");
    signer.update(b"message").expect("update");
    let der = signer.sign_to_vec().expect("sign");
    let parsed = openssl::ecdsa::EcdsaSig::from_der(&der).expect("der");
    let mut raw = parsed.r().to_vec_padded(32).expect("r");
    raw.extend(parsed.s().to_vec_padded(32).expect("s"));
    s.verify(&Mechanism::EcdsaSha256, ec_public, b"message", &raw)
        .expect("verifies with no private half");
    expect_rv(
        s.verify(&Mechanism::EcdsaSha256, ec_public, b"other", &raw),
        RvError::SignatureInvalid,
    );
    let privates = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(b"pub-only-ec".to_vec()),
        ])
        .expect("find");
    assert!(privates.is_empty(), "no private half");

    let rsa = openssl::rsa::Rsa::generate(2048).expect("rsa");
    let rsa_public = s
        .create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(true),
            Attribute::Modulus(rsa.n().to_vec()),
            Attribute::PublicExponent(rsa.e().to_vec()),
            Attribute::Encrypt(true),
            Attribute::Label(b"pub-only-rsa".to_vec()),
        ])
        .expect("C_CreateObject RSA public");
    assert_eq!(mode(&s, rsa_public), 4);
    let ciphertext = s
        .encrypt(&oaep_sha256(), rsa_public, b"for the private key's owner")
        .expect("C_Encrypt with a lone public key");
    let private = PKey::from_rsa(rsa).expect("pkey");
    let mut ctx = openssl::pkey_ctx::PkeyCtx::new(&private).expect("ctx");
    ctx.decrypt_init().expect("init");
    ctx.set_rsa_padding(Padding::PKCS1_OAEP).expect("padding");
    ctx.set_rsa_oaep_md(openssl::md::Md::sha256()).expect("md");
    ctx.set_rsa_mgf1_md(openssl::md::Md::sha256()).expect("mgf");
    let mut plain = Vec::new();
    ctx.decrypt_to_vec(&ciphertext, &mut plain)
        .expect("decrypt");
    assert_eq!(plain, b"for the private key's owner");
    let db = ctx_db();
    assert_eq!(
        one(
            db,
            "SELECT CASE WHEN private_key_ctx IS NULL THEN 'none' ELSE 'some' END FROM asym_key WHERE key_id = 'pub-only-ec'",
        ),
        "none"
    );
}

/// Runs the admin command on this process's store with the remote PIN in `HSM_PIN_FOR_SQLHSM`
/// (when `pin_env` is set); returns (exit code, stdout, stderr).
fn admin(args: &[&str], pin_env: bool) -> (i32, String, String) {
    let hsm = softhsm().expect("softhsm");
    let db = ctx_db();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sqlhsm"));
    command
        .args(args)
        .env("SQLHSM_DB", db.url())
        .env("SQLHSM_CONF", &db.conf)
        .env("SQLHSM_PIN", USER_PIN)
        .env("SQLHSM_SO_PIN", SO_PIN)
        .env("SOFTHSM2_CONF", &hsm.conf)
        .env_remove("SQLHSM_LOG");
    if pin_env {
        command.env("HSM_PIN_FOR_SQLHSM", HSM_PIN);
    } else {
        command.env_remove("HSM_PIN_FOR_SQLHSM");
    }
    let out = command.output().expect("run sqlhsm");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn admin_command_runs_provider_tokens() {
    let Some(hsm) = softhsm() else { return };
    let module = hsm.module.display().to_string();
    let init = [
        "token",
        "init",
        "remote-admin",
        "--provider",
        "pkcs11",
        "--module",
        module.as_str(),
        "--remote-token",
        "hsm-admin",
        "--remote-pin-env",
        "HSM_PIN_FOR_SQLHSM",
    ];
    // Without the remote PIN the provider cannot be reached: refused, and no token is left.
    let (code, _, err) = admin(&init, false);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("HSM_PIN_FOR_SQLHSM"),
        "the cause is named: {err}"
    );
    let (_, list, _) = admin(&["token", "list"], true);
    assert!(!list.contains("remote-admin"), "{list}");
    // The PIN source is stored, never the PIN.
    let (code, out, err) = admin(&init, true);
    assert_eq!(code, 0, "{out}{err}");
    let (_, show, _) = admin(&["token", "show", "remote-admin"], true);
    assert!(
        show.contains("pkcs11") && show.contains("hsm-admin"),
        "{show}"
    );
    assert!(show.contains("HSM_PIN_FOR_SQLHSM"), "{show}");
    let configs = ctx_db().query_texts(
        "SELECT CAST(config AS TEXT) FROM provider_config WHERE provider_name = 'remote-admin'",
    );
    assert!(!configs[0].contains(HSM_PIN), "{}", configs[0]);

    for (algorithm, label) in [("ec-p384", "adm-ec"), ("aes-128", "adm-aes")] {
        let (code, out, err) = admin(
            &[
                "key",
                "generate",
                "--token",
                "remote-admin",
                "--algorithm",
                algorithm,
                "--label",
                label,
            ],
            true,
        );
        assert_eq!(code, 0, "{out}{err}");
    }
    let (_, keys, _) = admin(&["key", "list", "--token", "remote-admin", "--json"], true);
    let keys: serde_json::Value = serde_json::from_str(&keys).expect("json");
    let modes: Vec<_> = keys
        .as_array()
        .expect("array")
        .iter()
        .map(|k| k["mode"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(modes, ["remote", "remote"], "{keys}");
    let listing = hsm.list_objects("hsm-admin");
    assert!(
        listed(&listing, "Private Key Object; EC", "adm-ec").is_some(),
        "{listing}"
    );
    assert!(
        listed(&listing, "Secret Key Object; AES", "adm-aes").is_some(),
        "{listing}"
    );

    // db check asks the HSM about every REMOTE key.
    // (Other tests' tokens share this store and may be mid-fault: only ours is judged.)
    let (_, out, err) = admin(&["db", "check", "--json"], true);
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}{err}"));
    let ours = report["tokens"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["token"] == "remote-admin"))
        .cloned()
        .unwrap_or_else(|| panic!("remote-admin not checked: {report}"));
    assert_eq!(ours["verified"], 2, "{ours}");
    assert_eq!(ours["problems"], serde_json::json!([]), "{ours}");

    // Deleting the token destroys its keys in the HSM too.
    let (code, out, err) = admin(&["token", "delete", "remote-admin", "--yes"], true);
    assert_eq!(code, 0, "{out}{err}");
    let listing = hsm.list_objects("hsm-admin");
    assert!(
        listed(&listing, "Private Key Object; EC", "adm-ec").is_none(),
        "{listing}"
    );
    assert!(
        listed(&listing, "Secret Key Object; AES", "adm-aes").is_none(),
        "{listing}"
    );
}

#[test]
fn remote_secret_keys_mac_and_stream() {
    if softhsm().is_none() {
        return;
    }
    let s = user_session(ctx(), token_on_hsm("remote-mac", "hsm-mac"));
    // An HMAC key made in the HSM: MACs made and checked there.
    let mac_key = s
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::ValueLen(32.into()),
                Attribute::Sign(true),
                Attribute::Verify(true),
                Attribute::Label(b"mac-remote".to_vec()),
            ],
        )
        .expect("C_GenerateKey generic secret");
    assert_eq!(mode(&s, mac_key), 3);
    let message = b"authenticated by the HSM";
    let mac = s
        .sign(&Mechanism::Sha256Hmac, mac_key, message)
        .expect("HMAC");
    assert_eq!(mac.len(), 32);
    s.verify(&Mechanism::Sha256Hmac, mac_key, message, &mac)
        .expect("the MAC verifies");
    // Multi-part gives the same MAC.
    s.sign_init(&Mechanism::Sha256Hmac, mac_key).expect("init");
    s.sign_update(&message[..7]).expect("update");
    s.sign_update(&message[7..]).expect("update");
    assert_eq!(s.sign_final().expect("final"), mac);
    let mut bad = mac.clone();
    bad[0] ^= 1;
    expect_rv(
        s.verify(&Mechanism::Sha256Hmac, mac_key, message, &bad),
        RvError::SignatureInvalid,
    );
    // PKCS#11 3.2's C_VerifySignature* (the cryptoki crate finds them in the default 3.2
    // interface): the HSM checks the MAC given first, single and multi-part.
    s.verify_signature_init(&Mechanism::Sha256Hmac, mac_key, &mac)
        .expect("C_VerifySignatureInit");
    s.verify_signature(message).expect("the MAC verifies");
    s.verify_signature_init(&Mechanism::Sha256Hmac, mac_key, &mac)
        .expect("C_VerifySignatureInit");
    s.verify_signature_update(&message[..7]).expect("update");
    s.verify_signature_update(&message[7..]).expect("update");
    s.verify_signature_final()
        .expect("the MAC verifies in parts");
    s.verify_signature_init(&Mechanism::Sha256Hmac, mac_key, &bad)
        .expect("C_VerifySignatureInit");
    expect_rv(s.verify_signature(message), RvError::SignatureInvalid);
    // The MAC length of a key in the HSM is the HSM's to check: at the end, not at the *Init.
    s.verify_signature_init(&Mechanism::Sha256Hmac, mac_key, &mac[..31])
        .expect("C_VerifySignatureInit");
    expect_rv_in(
        s.verify_signature(message),
        &[RvError::SignatureLenRange, RvError::SignatureInvalid],
    );

    // AES-CBC-PAD in several parts: gathered and sent in one call, output at the end.
    let aes = gen_aes(&s, 16, "stream-remote");
    let iv = [9u8; 16];
    let plain: Vec<u8> = (0..100u8).collect();
    let sealed = s
        .encrypt(&Mechanism::AesCbcPad(iv), aes, &plain)
        .expect("single-part encrypt");
    assert_eq!(sealed.len(), 112);
    s.decrypt_init(&Mechanism::AesCbcPad(iv), aes)
        .expect("C_DecryptInit");
    let mut opened = s.decrypt_update(&sealed[..40]).expect("update");
    opened.extend(s.decrypt_update(&sealed[40..]).expect("update"));
    opened.extend(s.decrypt_final().expect("C_DecryptFinal"));
    assert_eq!(opened, plain);
}

#[test]
fn remote_signing_from_many_threads() {
    if softhsm().is_none() {
        return;
    }
    let slot = token_on_hsm("remote-threads", "hsm-threads");
    let s = user_session(ctx(), slot);
    let (public, private) = gen_ec(&s, P256, "threads", b"threads");
    let public_key = openssl_public(&s, public);
    let threads = 4;
    let per_thread = 25;
    let signed: Vec<(Vec<u8>, Vec<u8>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let session = user_session(ctx(), slot);
                    (0..per_thread)
                        .map(|i| {
                            let data = format!("thread {t} message {i}").into_bytes();
                            let sig = session
                                .sign(&Mechanism::EcdsaSha256, private, &data)
                                .expect("C_Sign through the session pool");
                            (data, sig)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    assert_eq!(signed.len(), threads * per_thread);
    for (data, sig) in &signed {
        let mut v = Verifier::new(MessageDigest::sha256(), &public_key).expect("verifier");
        v.update(data).expect("update");
        assert!(v.verify(&ecdsa_raw_to_der(sig)).expect("verify"));
    }
}

/// A REMOTE token lists what sqlhsm and SoftHSM can both do with its keys: forwarded
/// mechanisms SoftHSM has, hash-and-sign over a raw signature it has, generation it has, and
/// digests (no key); not what only sqlhsm computes (AES-CTR, ECDH with a KDF is fine only as
/// forwarded, …) when SoftHSM lacks it. A local token lists the whole registry.
#[test]
fn a_remote_token_lists_what_both_sides_can_do() {
    use cryptoki::mechanism::MechanismType;
    // SoftHSM is not loaded into this process by the test itself: finalizing a second handle
    // on it would end the sessions sqlhsm holds there for the other tests.
    if softhsm().is_none() {
        return;
    }
    let slot = token_on_hsm("remote-mechs", "hsm-mechs");
    let local = ctx()
        .get_mechanism_list(new_token(ctx(), "local-mechs"))
        .unwrap();
    let remote = ctx().get_mechanism_list(slot).unwrap();
    assert!(
        remote.len() < local.len(),
        "{} of {}",
        remote.len(),
        local.len()
    );
    for m in &remote {
        assert!(local.contains(m), "{m} is not sqlhsm's");
    }
    // SoftHSM 2.6 has these, so the REMOTE token offers them.
    for m in [
        MechanismType::RSA_PKCS,
        MechanismType::RSA_PKCS_PSS,
        MechanismType::ECDSA,
        MechanismType::AES_GCM,
        MechanismType::RSA_PKCS_KEY_PAIR_GEN,
        MechanismType::ECC_KEY_PAIR_GEN,
        MechanismType::AES_KEY_GEN,
    ] {
        assert!(remote.contains(&m), "{m} is offered: SoftHSM has it");
    }
    // Hash-and-sign over SoftHSM's raw signatures, and digests, computed here.
    for m in [
        MechanismType::ECDSA_SHA256,
        MechanismType::SHA256_RSA_PKCS,
        MechanismType::SHA256,
    ] {
        assert!(remote.contains(&m), "{m} is offered");
    }
    // Computed only by sqlhsm: a REMOTE key cannot use it.
    let m = MechanismType::AES_CTR;
    assert!(local.contains(&m));
    assert!(!remote.contains(&m), "{m} needs the key here");
    expect_rv(
        ctx().get_mechanism_info(slot, m),
        cryptoki::error::RvError::MechanismInvalid,
    );
    // Post-quantum pairs are generated in the remote module only when it lists their
    // mechanism; SoftHSM 2.6 has none, so a REMOTE token neither offers nor makes them.
    let rs = user_session(ctx(), slot);
    for (m, generation) in [
        (
            MechanismType::ML_KEM_KEY_PAIR_GEN,
            Mechanism::MlKemKeyPairGen,
        ),
        (
            MechanismType::ML_DSA_KEY_PAIR_GEN,
            Mechanism::MlDsaKeyPairGen,
        ),
        (
            MechanismType::SLH_DSA_KEY_PAIR_GEN,
            Mechanism::SlhDsaKeyPairGen,
        ),
    ] {
        assert!(local.contains(&m));
        assert!(!remote.contains(&m), "{m}: SoftHSM lacks it");
        let set = cryptoki::object::ParameterSetType::try_from(cryptoki::types::Ulong::from(1))
            .expect("set");
        expect_rv(
            rs.generate_key_pair(
                &generation,
                &[Attribute::Token(true), Attribute::ParameterSet(set)],
                &[Attribute::Token(true), Attribute::Private(true)],
            ),
            cryptoki::error::RvError::MechanismInvalid,
        );
    }
    // The info keeps only what both sides allow: SoftHSM signs with CKM_RSA_PKCS.
    let ours = ctx()
        .get_mechanism_info(slot, MechanismType::RSA_PKCS)
        .unwrap();
    assert!(ours.sign() && ours.verify());
    assert!(ours.min_key_size() >= 1024);
}

#[test]
fn remote_hmac_key_types_and_sha3_hash_and_sign() {
    if softhsm().is_none() {
        return;
    }
    let s = user_session(ctx(), token_on_hsm("remote-sha3", "hsm-sha3"));
    // HMAC key types are generic secrets in the HSM, used there by their HMAC mechanism.
    let message = b"HMAC key types behind sqlhsm";
    for (key_gen, hmac, key_type, len) in [
        (
            Mechanism::Sha256KeyGen,
            Mechanism::Sha256Hmac,
            cryptoki_sys::CKK_SHA256_HMAC,
            32,
        ),
        (
            Mechanism::Sha384KeyGen,
            Mechanism::Sha384Hmac,
            cryptoki_sys::CKK_SHA384_HMAC,
            48,
        ),
    ] {
        let key = s
            .generate_key(
                &key_gen,
                // SoftHSM wants HMAC keys at least as long as the hash.
                &[
                    Attribute::Token(true),
                    Attribute::ValueLen((len as u64).into()),
                    Attribute::Sign(true),
                    Attribute::Verify(true),
                ],
            )
            .expect("C_GenerateKey HMAC key type");
        assert_eq!(mode(&s, key), 3);
        assert_eq!(
            raw_get_ulong(&s, key, cryptoki_sys::CKA_KEY_TYPE).unwrap(),
            key_type
        );
        let mac = s.sign(&hmac, key, message).expect("HMAC in the HSM");
        assert_eq!(mac.len(), len);
        s.verify(&hmac, key, message, &mac).expect("verifies");
        // SHA-3 HMAC is not forwarded (cryptoki cannot name it).
        expect_rv(
            raw_sign(
                &s,
                cryptoki_sys::CKM_SHA3_256_HMAC,
                None,
                key,
                message,
                None,
            ),
            RvError::KeyTypeInconsistent,
        );
    }
    let key = s
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Sign(true),
            ],
        )
        .expect("generic secret");
    expect_rv(
        raw_sign(
            &s,
            cryptoki_sys::CKM_SHA3_256_HMAC,
            None,
            key,
            message,
            None,
        ),
        RvError::MechanismInvalid,
    );

    // SHA-3 hash-and-sign: hashed here, the raw signature made in the HSM.
    let (ec_public, ec_private) = gen_ec(&s, P256, "ec-sha3", b"ec-sha3");
    let (rsa_public, rsa_private) = gen_rsa(&s, 2048, "rsa-sha3", b"rsa-sha3");
    let data = b"SHA-3 signed by the HSM";
    let sig = raw_sign(
        &s,
        cryptoki_sys::CKM_ECDSA_SHA3_256,
        None,
        ec_private,
        data,
        Some(5),
    )
    .expect("ECDSA-SHA3-256");
    let key = openssl_public(&s, ec_public);
    let mut v = Verifier::new(MessageDigest::sha3_256(), &key).expect("verifier");
    v.update(data).expect("update");
    assert!(v.verify(&ecdsa_raw_to_der(&sig)).expect("verify"));
    let sig = raw_sign(
        &s,
        cryptoki_sys::CKM_SHA3_256_RSA_PKCS,
        None,
        rsa_private,
        data,
        None,
    )
    .expect("SHA3-256 RSA PKCS#1");
    let key = openssl_public(&s, rsa_public);
    let mut v = Verifier::new(MessageDigest::sha3_256(), &key).expect("verifier");
    v.update(data).expect("update");
    assert!(v.verify(&sig).expect("verify"), "DigestInfo of SHA3-256");
    // PSS with SHA-3 cannot be expressed to the HSM.
    let mut pss = Vec::new();
    for v in [
        cryptoki_sys::CKM_SHA3_256,
        cryptoki_sys::CKG_MGF1_SHA3_256,
        32,
    ] {
        pss.extend_from_slice(&v.to_ne_bytes());
    }
    expect_rv(
        raw_sign(
            &s,
            cryptoki_sys::CKM_SHA3_256_RSA_PKCS_PSS,
            Some(&mut pss),
            rsa_private,
            data,
            None,
        ),
        RvError::MechanismInvalid,
    );
}

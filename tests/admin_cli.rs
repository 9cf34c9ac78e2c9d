//! The `sqlhsm` admin command, run as users run it: the built binary on a fresh store (SQLite,
//! or PostgreSQL with `SQLHSM_TEST_BACKEND=postgres`), PINs from `SQLHSM_PIN` / `SQLHSM_SO_PIN`.

mod common;

use std::process::{Command, Output, Stdio};

use common::TestDb;
use serde_json::Value;

const SO_PIN: &str = "so-pin-0000";
const USER_PIN: &str = "user-pin-1111";
const USER: &str = "cli-tester";

/// Exit codes the command documents.
const REFUSED: i32 = 1;
const USAGE: i32 = 2;
const UNREACHABLE: i32 = 3;

struct Cli {
    db: TestDb,
}

impl Cli {
    fn new(name: &str) -> Cli {
        Cli {
            db: TestDb::new(name),
        }
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sqlhsm"));
        command
            .args(args)
            .stdin(Stdio::null())
            .env("SQLHSM_DB", self.db.url())
            .env("SQLHSM_CONF", &self.db.conf)
            .env("SQLHSM_PIN", USER_PIN)
            .env("SQLHSM_SO_PIN", SO_PIN)
            .env("USER", USER)
            .env_remove("SQLHSM_LOG");
        for (k, v) in env {
            command.env(k, v);
        }
        for k in unset {
            command.env_remove(k);
        }
        command.output().expect("run sqlhsm")
    }

    /// Runs and expects `code`; returns stdout.
    fn expect(&self, code: i32, args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> String {
        let out = self.command(args, env, unset);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "sqlhsm {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        stdout
    }

    fn ok(&self, args: &[&str]) -> String {
        self.expect(0, args, &[], &[])
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}\n{text}"))
    }

    fn keys(&self, filters: &[&str]) -> Vec<Value> {
        let mut args = vec!["key", "list"];
        args.extend_from_slice(filters);
        match self.json(&args) {
            Value::Array(keys) => keys,
            other => panic!("key list --json: not an array: {other}"),
        }
    }

    fn key(&self, key_id: &str) -> Value {
        self.json(&["key", "show", key_id])
    }
}

fn key_ids(keys: &[Value]) -> Vec<String> {
    keys.iter()
        .map(|k| k["key_id"].as_str().expect("key_id").to_string())
        .collect()
}

fn the_key_with(keys: &[Value], field: &str, value: &str) -> String {
    let found: Vec<&Value> = keys.iter().filter(|k| k[field] == value).collect();
    assert_eq!(found.len(), 1, "one key with {field} = {value}: {keys:?}");
    found[0]["key_id"].as_str().expect("key_id").to_string()
}

/// `generated key <key_id> on token "…"` → the key_id.
fn created_key_id(stdout: &str) -> String {
    stdout
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no key_id in {stdout:?}"))
        .to_string()
}

fn events(cli: &Cli, key_id: &str) -> Vec<Value> {
    match cli.json(&["key", "history", key_id]) {
        Value::Array(events) => events,
        other => panic!("history: {other}"),
    }
}

#[test]
fn help_documents_exit_codes_and_pins_never_come_from_argv() {
    let cli = Cli::new("cli-help");
    let help = cli.ok(&["--help"]);
    for needle in [
        "Exit codes",
        "0  success",
        "2  usage",
        "3  the key store",
        "SQLHSM_PIN",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    // No flag takes a PIN value: clap refuses them as unknown arguments (usage error).
    cli.expect(USAGE, &["token", "init", "t", "--pin", "1234"], &[], &[]);
    cli.expect(USAGE, &["token", "init", "t", "--so-pin", "1234"], &[], &[]);
    cli.expect(
        USAGE,
        &["token", "delete", "t", "--user-pin", "1234"],
        &[],
        &[],
    );
    for sub in [
        &["token", "init", "--help"][..],
        &["key", "set-status", "--help"],
    ] {
        let text = cli.ok(sub);
        assert!(
            !text.contains("--pin "),
            "{sub:?} offers a PIN flag:\n{text}"
        );
    }
    cli.expect(USAGE, &["key", "list", "--status", "bogus"], &[], &[]);
    cli.expect(USAGE, &["key", "list", "--expiring-within", "30"], &[], &[]);
    cli.expect(USAGE, &["frobnicate"], &[], &[]);
}

#[test]
fn an_unreachable_store_is_exit_3_a_bad_url_exit_2() {
    let cli = Cli::new("cli-unreachable");
    cli.expect(
        UNREACHABLE,
        &["--db", "postgres://nobody@127.0.0.1:1/none", "db", "status"],
        &[],
        &[],
    );
    cli.expect(USAGE, &["--db", "mysql://x/y", "db", "status"], &[], &[]);
}

#[test]
fn no_pin_and_no_terminal_is_a_usage_error() {
    let cli = Cli::new("cli-nopin");
    cli.expect(
        USAGE,
        &["token", "init", "nopin"],
        &[],
        &["SQLHSM_PIN", "SQLHSM_SO_PIN"],
    );
    // From files instead.
    let so = cli.db.dir.join("so.pin");
    let user = cli.db.dir.join("user.pin");
    std::fs::write(&so, format!("{SO_PIN}\n")).expect("write");
    std::fs::write(&user, format!("{USER_PIN}\n")).expect("write");
    let so = so.display().to_string();
    let user = user.display().to_string();
    cli.expect(
        0,
        &[
            "token",
            "init",
            "from-files",
            "--so-pin-file",
            &so,
            "--pin-file",
            &user,
        ],
        &[],
        &["SQLHSM_PIN", "SQLHSM_SO_PIN"],
    );
    // The user PIN from the file works (the environment's is the same; prove the file's is read
    // by giving the environment a wrong one).
    cli.expect(
        0,
        &[
            "key",
            "generate",
            "--token",
            "from-files",
            "--algorithm",
            "aes-128",
            "--pin-file",
            &user,
        ],
        &[("SQLHSM_PIN", "wrong-pin-9")],
        &[],
    );
}

#[test]
fn tokens_init_list_show_delete() {
    let cli = Cli::new("cli-tokens");
    assert!(cli.ok(&["token", "init", "alpha"]).contains("alpha"));
    // The JSON of `token init` shows the user PIN it has just set.
    let beta = cli.json(&["token", "init", "beta"]);
    assert_eq!(beta["user_pin"], "ok", "{beta}");
    assert_eq!(beta["so_pin"], "ok", "{beta}");
    cli.expect(REFUSED, &["token", "init", "alpha"], &[], &[]);

    let table = cli.ok(&["token", "list"]);
    assert!(table.starts_with("LABEL"), "{table}");
    assert!(table.contains("alpha") && table.contains("beta"), "{table}");
    let Value::Array(tokens) = cli.json(&["token", "list"]) else {
        panic!("token list --json is not an array")
    };
    assert_eq!(tokens.len(), 2);
    let alpha = &tokens[0];
    assert_eq!(alpha["label"], "alpha");
    assert_eq!(alpha["keys"], 0);
    assert_eq!(alpha["user_pin"], "ok");
    assert_eq!(alpha["so_pin"], "ok");
    assert!(alpha["slot"].as_u64().is_some());
    assert_eq!(alpha["serial"].as_str().map(str::len), Some(16));

    cli.ok(&[
        "key",
        "generate",
        "--token",
        "alpha",
        "--algorithm",
        "ec-p256",
    ]);
    let shown = cli.json(&["token", "show", "alpha"]);
    assert_eq!(shown["keys"], 1);
    assert!(cli.ok(&["token", "show", "alpha"]).contains("serial:"));
    cli.expect(REFUSED, &["token", "show", "gamma"], &[], &[]);

    // Delete asks first: without a terminal and without --yes it refuses, naming --yes.
    let out = cli.command(&["token", "delete", "alpha"], &[], &[]);
    assert_eq!(out.status.code(), Some(USAGE));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--yes"), "{stderr}");
    assert_eq!(
        cli.json(&["token", "show", "alpha"])["keys"],
        1,
        "nothing deleted"
    );
    // Delete needs the right SO PIN; a wrong one is counted and refused, and said to be the SO's.
    let out = cli.command(
        &["token", "delete", "alpha", "--yes"],
        &[("SQLHSM_SO_PIN", "not-the-so-pin")],
        &[],
    );
    assert_eq!(out.status.code(), Some(REFUSED));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "sqlhsm: wrong SO PIN for token \"alpha\" (CKR_PIN_INCORRECT)"
    );
    assert_eq!(cli.json(&["token", "show", "alpha"])["so_pin"], "1 failed");
    let key_id = the_key_with(&cli.keys(&["--token", "alpha"]), "algorithm", "ec-p256");
    cli.ok(&["token", "delete", "alpha", "-y"]);
    cli.expect(REFUSED, &["token", "show", "alpha"], &[], &[]);
    assert_eq!(cli.keys(&[]).len(), 0);
    // The key's history outlives the token.
    let history = events(&cli, &key_id);
    assert!(
        history.iter().any(|e| e["event"] == "destroyed"
            && e["actor"]
                .as_str()
                .unwrap_or("")
                .starts_with(&format!("admin:{USER}@"))),
        "{history:?}"
    );
}

/// The curve rows added after P-256/384/521 and Ed25519: each is generated by its name, reported
/// under it, and found by it.
#[test]
fn new_curve_algorithms_generate_by_name() {
    let cli = Cli::new("cli-curves");
    cli.ok(&["token", "init", "curves"]);
    let algorithms = [
        "ec-p224",
        "ec-p192",
        "ec-secp256k1",
        "ec-brainpoolp256r1",
        "ec-brainpoolp384r1",
        "ec-brainpoolp512r1",
        "ed448",
        "x25519",
        "x448",
    ];
    for algorithm in algorithms {
        let out = cli.ok(&[
            "key",
            "generate",
            "--token",
            "curves",
            "--algorithm",
            algorithm,
            "--label",
            algorithm,
        ]);
        assert!(out.starts_with("generated key "), "{out}");
    }
    let keys = cli.keys(&[]);
    assert_eq!(keys.len(), algorithms.len());
    for algorithm in algorithms {
        let id = the_key_with(&keys, "label", algorithm);
        assert_eq!(cli.key(&id)["algorithm"], algorithm);
        assert_eq!(
            key_ids(&cli.keys(&["--algorithm", algorithm])),
            vec![id],
            "{algorithm}"
        );
    }
}

/// Every post-quantum algorithm by name; the public key exported as the SubjectPublicKeyInfo
/// OpenSSL reads, a rotation's successor of the same parameter set, and `db check` verifying
/// their sealed keys.
#[test]
fn post_quantum_algorithms_generate_export_rotate_and_check() {
    let cli = Cli::new("cli-pq");
    cli.ok(&["token", "init", "pq"]);
    // (name, OpenSSL's name, raw public key length)
    let algorithms = [
        ("ml-kem-512", "ML-KEM-512", 800),
        ("ml-kem-768", "ML-KEM-768", 1184),
        ("ml-kem-1024", "ML-KEM-1024", 1568),
        ("ml-dsa-44", "ML-DSA-44", 1312),
        ("ml-dsa-65", "ML-DSA-65", 1952),
        ("ml-dsa-87", "ML-DSA-87", 2592),
        ("slh-dsa-sha2-128s", "SLH-DSA-SHA2-128s", 32),
        ("slh-dsa-sha2-128f", "SLH-DSA-SHA2-128f", 32),
        ("slh-dsa-sha2-192s", "SLH-DSA-SHA2-192s", 48),
        ("slh-dsa-sha2-192f", "SLH-DSA-SHA2-192f", 48),
        ("slh-dsa-sha2-256s", "SLH-DSA-SHA2-256s", 64),
        ("slh-dsa-sha2-256f", "SLH-DSA-SHA2-256f", 64),
        ("slh-dsa-shake-128s", "SLH-DSA-SHAKE-128s", 32),
        ("slh-dsa-shake-128f", "SLH-DSA-SHAKE-128f", 32),
        ("slh-dsa-shake-192s", "SLH-DSA-SHAKE-192s", 48),
        ("slh-dsa-shake-192f", "SLH-DSA-SHAKE-192f", 48),
        ("slh-dsa-shake-256s", "SLH-DSA-SHAKE-256s", 64),
        ("slh-dsa-shake-256f", "SLH-DSA-SHAKE-256f", 64),
    ];
    for (algorithm, openssl_name, public_len) in algorithms {
        let id = created_key_id(&cli.ok(&[
            "key",
            "generate",
            "--token",
            "pq",
            "--algorithm",
            algorithm,
            "--label",
            algorithm,
        ]));
        assert_eq!(cli.key(&id)["algorithm"], algorithm);
        let pem = cli.ok(&["key", "export-public", &id]);
        let key = openssl::pkey::PKey::public_key_from_pem(pem.as_bytes()).expect("PEM parses");
        assert_eq!(
            key.raw_public_key().expect("raw").len(),
            public_len,
            "{algorithm}"
        );
        let named = openssl::pkey::PKey::public_key_from_raw_bytes_ex(
            None,
            match openssl_name {
                "ML-KEM-512" => openssl::pkey::KeyType::ML_KEM_512,
                "ML-KEM-768" => openssl::pkey::KeyType::ML_KEM_768,
                "ML-KEM-1024" => openssl::pkey::KeyType::ML_KEM_1024,
                "ML-DSA-44" => openssl::pkey::KeyType::ML_DSA_44,
                "ML-DSA-65" => openssl::pkey::KeyType::ML_DSA_65,
                "ML-DSA-87" => openssl::pkey::KeyType::ML_DSA_87,
                _ => continue,
            },
            None,
            &key.raw_public_key().expect("raw"),
        )
        .expect("a key of that set");
        assert!(named.public_eq(&key), "{algorithm}: the SPKI names its set");
    }
    assert_eq!(
        key_ids(&cli.keys(&["--algorithm", "ml-dsa-65"])).len(),
        1,
        "key list --algorithm"
    );
    let signer = the_key_with(&cli.keys(&[]), "label", "ml-dsa-65");
    let out = cli.ok(&["key", "rotate", &signer]);
    let successor = out
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("no successor in {out:?}"))
        .to_string();
    assert_eq!(cli.key(&successor)["algorithm"], "ml-dsa-65");
    let kem = the_key_with(&cli.keys(&[]), "label", "ml-kem-1024");
    let out = cli.ok(&["key", "rotate", &kem]);
    let successor = out
        .split_whitespace()
        .nth(3)
        .expect("successor")
        .to_string();
    assert_eq!(cli.key(&successor)["algorithm"], "ml-kem-1024");
    // A PKCS#8 file in the seed-only form (Wycheproof's first ML-DSA-44 key) imports as that
    // key: its exported public key is the vector's.
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/wycheproof/mldsa_44_sign_seed_test.json"
        ))
        .expect("vectors"),
    )
    .expect("json");
    let group = &doc["testGroups"][0];
    let hex_of = |v: &Value| hex::decode(v.as_str().expect("hex")).expect("hex");
    let der = cli.db.dir.join("ml-dsa-44.der");
    std::fs::write(&der, hex_of(&group["privateKeyPkcs8"])).expect("write");
    let imported = created_key_id(&cli.ok(&[
        "key",
        "import",
        "--token",
        "pq",
        "--label",
        "imported-ml-dsa",
        &der.display().to_string(),
    ]));
    assert_eq!(cli.key(&imported)["algorithm"], "ml-dsa-44");
    let pem = cli.ok(&["key", "export-public", &imported]);
    let key = openssl::pkey::PKey::public_key_from_pem(pem.as_bytes()).expect("PEM parses");
    assert_eq!(
        key.raw_public_key().expect("raw"),
        hex_of(&group["publicKey"])
    );
    // Status and history as for any key.
    let slh = the_key_with(&cli.keys(&[]), "label", "slh-dsa-shake-256f");
    cli.ok(&["key", "set-status", &slh, "inactive"]);
    assert_eq!(cli.key(&slh)["status"], "inactive");
    let kinds: Vec<String> = events(&cli, &slh)
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("generated"),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "status"), "{kinds:?}");
    let rotated: Vec<String> = events(&cli, &signer)
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_string))
        .collect();
    assert!(rotated.iter().any(|k| k == "rotated"), "{rotated:?}");
    let check = cli.json(&["db", "check"]);
    assert_eq!(check["ok"], true, "{check}");
    let verified = check["tokens"][0]["verified"].as_u64().unwrap_or(0);
    assert_eq!(verified as usize, algorithms.len() + 3, "{check}");
}

/// The DER of the first PEM block of `text` labelled `label`.
fn pem_der(text: &str, label: &str) -> Vec<u8> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).expect("BEGIN") + begin.len();
    let body = &text[start..start + text[start..].find(&end).expect("END")];
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
}

/// OpenTDF's hybrid KEMs by name: generated, the public key exported as OpenTDF's
/// SubjectPublicKeyInfo (its OID, the raw public key), rotated to the same construction, an
/// OpenTDF key file imported as a pair whose exported public key is OpenTDF's, and `db check`
/// opening every sealed key.
#[test]
fn hybrid_kem_keys_generate_export_rotate_import_and_check() {
    let cli = Cli::new("cli-hybrid");
    cli.ok(&["token", "init", "hybrid"]);
    // (name, the DER of OpenTDF's OID, raw public key length)
    let algorithms: [(&str, &[u8], usize); 3] = [
        (
            "xwing",
            &[6, 11, 43, 6, 1, 4, 1, 131, 230, 45, 129, 200, 122],
            1216,
        ),
        ("p256-ml-kem-768", &[6, 8, 43, 6, 1, 5, 5, 7, 6, 59], 1249),
        ("p384-ml-kem-1024", &[6, 8, 43, 6, 1, 5, 5, 7, 6, 63], 1665),
    ];
    for (algorithm, oid, public_len) in algorithms {
        let id = created_key_id(&cli.ok(&[
            "key",
            "generate",
            "--token",
            "hybrid",
            "--algorithm",
            algorithm,
            "--label",
            algorithm,
        ]));
        assert_eq!(cli.key(&id)["algorithm"], algorithm);
        let der = pem_der(&cli.ok(&["key", "export-public", &id]), "PUBLIC KEY");
        assert!(der.windows(oid.len()).any(|w| w == oid), "{algorithm}: OID");
        // The BIT STRING ends the SPKI: 03, its length, no unused bits, the raw key.
        let bit_string = der.len() - public_len - 1;
        assert_eq!(der[bit_string], 0, "{algorithm}: unused bits");
        assert_eq!(
            der[bit_string - 4..bit_string - 2],
            [0x03, 0x82],
            "{algorithm}"
        );
    }
    let xwing = the_key_with(&cli.keys(&[]), "label", "xwing");
    let out = cli.ok(&["key", "rotate", &xwing]);
    let successor = out
        .split_whitespace()
        .nth(3)
        .expect("successor")
        .to_string();
    assert_eq!(cli.key(&successor)["algorithm"], "xwing");
    // OpenTDF's own P-256 key pair, as its lib/ocrypto wrote it.
    let opentdf = include_str!("data/hybrid/opentdf_keys.pem");
    let private_start = opentdf
        .find("-----BEGIN PRIVATE KEY-----")
        .expect("private key");
    let private_end = opentdf[private_start..]
        .find("-----END PRIVATE KEY-----")
        .expect("END")
        + private_start
        + "-----END PRIVATE KEY-----".len();
    let file = cli.db.dir.join("opentdf-p256.pem");
    std::fs::write(&file, &opentdf[private_start..private_end]).expect("write");
    let imported = created_key_id(&cli.ok(&[
        "key",
        "import",
        "--token",
        "hybrid",
        &file.display().to_string(),
    ]));
    let info = cli.key(&imported);
    assert_eq!(info["algorithm"], "p256-ml-kem-768");
    assert_eq!(info["objects"], serde_json::json!(["public", "private"]));
    let exported = pem_der(&cli.ok(&["key", "export-public", &imported]), "PUBLIC KEY");
    assert_eq!(
        exported,
        pem_der(opentdf, "PUBLIC KEY"),
        "OpenTDF's own SPKI"
    );
    let check = cli.json(&["db", "check"]);
    assert_eq!(check["ok"], true, "{check}");
    let verified = check["tokens"][0]["verified"].as_u64().unwrap_or(0);
    assert_eq!(
        verified, 5,
        "three generated, a successor, an import: {check}"
    );
}

#[test]
fn keys_generate_import_lifecycle_rotate_destroy_history_and_db() {
    let cli = Cli::new("cli-keys");
    cli.ok(&["token", "init", "keys"]);

    // Generate one key of every algorithm, labelled by its name.
    let algorithms = [
        "ec-p256", "ec-p384", "ec-p521", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519", "aes-128",
        "aes-256",
    ];
    for algorithm in algorithms {
        let out = cli.ok(&[
            "key",
            "generate",
            "--token",
            "keys",
            "--algorithm",
            algorithm,
            "--label",
            algorithm,
        ]);
        assert!(out.starts_with("generated key "), "{out}");
    }
    let with_id = created_key_id(&cli.ok(&[
        "key",
        "generate",
        "--token",
        "keys",
        "--algorithm",
        "ec-p256",
        "--id",
        "00ff10",
        "--label",
        "with-id",
    ]));
    assert_eq!(with_id, "00ff10", "a binary CKA_ID gives its hex as key_id");

    let keys = cli.keys(&[]);
    assert_eq!(keys.len(), algorithms.len() + 1);
    for key in &keys {
        for field in ["key_id", "label", "token", "status", "mode", "algorithm"] {
            assert!(key[field].is_string(), "{field} in {key}");
        }
        assert!(key.get("expiration").is_some(), "{key}");
        assert_eq!(key["status"], "active");
        assert_eq!(key["mode"], "local");
        assert_eq!(key["token"], "keys");
    }
    for algorithm in algorithms {
        let id = the_key_with(&keys, "label", algorithm);
        assert_eq!(cli.key(&id)["algorithm"], algorithm);
    }
    let table = cli.ok(&["key", "list"]);
    assert!(table.starts_with("KEY_ID"), "{table}");
    assert!(
        table.contains("rsa-3072") && table.contains("aes-256"),
        "{table}"
    );
    let p384 = cli.keys(&["--algorithm", "ec-p384"]);
    assert_eq!(
        key_ids(&p384),
        vec![the_key_with(&keys, "label", "ec-p384")]
    );
    assert_eq!(
        cli.keys(&["--token", "keys", "--algorithm", "ec-p256"])
            .len(),
        2
    );
    cli.expect(REFUSED, &["key", "list", "--token", "nope"], &[], &[]);

    let p256 = the_key_with(&keys, "label", "ec-p256");
    let shown = cli.ok(&["key", "show", &p256]);
    assert!(
        shown.contains(&p256) && shown.contains("ec-p256"),
        "{shown}"
    );
    cli.expect(REFUSED, &["key", "show", "no-such-key"], &[], &[]);

    // export-public: PEM that OpenSSL reads, for EC, RSA and Ed25519; none for a secret key.
    for label in ["ec-p256", "rsa-2048", "ed25519"] {
        let pem = cli.ok(&["key", "export-public", &the_key_with(&keys, "label", label)]);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
        openssl::pkey::PKey::public_key_from_pem(pem.as_bytes()).expect("PEM parses");
    }
    let out_file = cli.db.dir.join("p256.pem");
    cli.ok(&[
        "key",
        "export-public",
        &p256,
        "--out",
        &out_file.display().to_string(),
    ]);
    assert!(std::fs::read_to_string(&out_file)
        .expect("read")
        .contains("PUBLIC KEY"));
    cli.expect(
        REFUSED,
        &[
            "key",
            "export-public",
            &the_key_with(&keys, "label", "aes-128"),
        ],
        &[],
        &[],
    );

    // Imports: a PEM private key (becomes a pair), a public key, raw AES bytes.
    let dir = &cli.db.dir;
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).expect("group");
    let ec = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("ec"))
        .expect("pkey");
    let private_pem = dir.join("ec.pem");
    std::fs::write(&private_pem, ec.private_key_to_pem_pkcs8().expect("pem")).expect("write");
    let imported = created_key_id(&cli.ok(&[
        "key",
        "import",
        "--token",
        "keys",
        &private_pem.display().to_string(),
        "--label",
        "imported-ec",
    ]));
    let info = cli.key(&imported);
    assert_eq!(info["algorithm"], "ec-p384");
    assert_eq!(info["mode"], "local");
    assert_eq!(info["label"], "imported-ec");
    assert_eq!(info["objects"], serde_json::json!(["public", "private"]));
    let exported = cli.ok(&["key", "export-public", &imported]);
    assert_eq!(
        openssl::pkey::PKey::public_key_from_pem(exported.as_bytes())
            .expect("pem")
            .public_key_to_der()
            .expect("der"),
        ec.public_key_to_der().expect("der"),
        "the exported public key is the imported key's"
    );

    let rsa = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa"))
        .expect("pkey");
    let public_pem = dir.join("rsa-pub.pem");
    std::fs::write(&public_pem, rsa.public_key_to_pem().expect("pem")).expect("write");
    let public_only = created_key_id(&cli.ok(&[
        "key",
        "import",
        "--token",
        "keys",
        &public_pem.display().to_string(),
    ]));
    let info = cli.key(&public_only);
    assert_eq!(info["algorithm"], "rsa-2048");
    assert_eq!(info["mode"], "public-key-only");

    let aes_file = dir.join("aes.bin");
    std::fs::write(&aes_file, [7u8; 32]).expect("write");
    let aes_path = aes_file.display().to_string();
    let aes = created_key_id(&cli.ok(&["key", "import", "--token", "keys", "--aes", &aes_path]));
    assert_eq!(cli.key(&aes)["algorithm"], "aes-256");
    let garbage = dir.join("garbage.bin");
    std::fs::write(&garbage, b"not a key").expect("write");
    let garbage = garbage.display().to_string();
    cli.expect(
        USAGE,
        &["key", "import", "--token", "keys", &garbage],
        &[],
        &[],
    );
    cli.expect(
        USAGE,
        &["key", "import", "--token", "keys", "--aes", &garbage],
        &[],
        &[],
    );

    // Status: active → inactive → compromised; compromised → active is refused.
    let ed = the_key_with(&keys, "label", "ed25519");
    cli.ok(&["key", "set-status", &ed, "inactive"]);
    assert_eq!(cli.key(&ed)["status"], "inactive");
    cli.ok(&["key", "set-status", &ed, "compromised"]);
    assert_eq!(cli.key(&ed)["status"], "compromised");
    cli.expect(REFUSED, &["key", "set-status", &ed, "active"], &[], &[]);
    assert_eq!(cli.key(&ed)["status"], "compromised");
    assert_eq!(
        key_ids(&cli.keys(&["--status", "compromised"])),
        vec![ed.clone()]
    );
    cli.expect(
        REFUSED,
        &["key", "set-status", &p256, "inactive"],
        &[("SQLHSM_PIN", "wrong-pin-0")],
        &[],
    );
    assert_eq!(cli.key(&p256)["status"], "active");

    // Expiration: in the past → expired; soon → found by --expiring-within.
    let aes128 = the_key_with(&keys, "label", "aes-128");
    cli.ok(&["key", "set-expiration", &aes128, "2020-01-01"]);
    assert_eq!(
        key_ids(&cli.keys(&["--status", "expired"])),
        vec![aes128.clone()]
    );
    assert_eq!(cli.key(&aes128)["status"], "expired");
    // Only the security officer brings an expired key back, with a future expiration.
    cli.expect(
        REFUSED,
        &["key", "set-expiration", &aes128, "never"],
        &[],
        &[],
    );
    assert_eq!(cli.key(&aes128)["status"], "expired");
    cli.ok(&["key", "set-expiration", &aes128, "never", "--so"]);
    assert_eq!(cli.key(&aes128)["status"], "active");
    cli.ok(&["key", "set-expiration", &aes128, "2020-01-01"]);
    let soon = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    let rsa3072 = the_key_with(&keys, "label", "rsa-3072");
    cli.ok(&["key", "set-expiration", &rsa3072, &soon]);
    assert_eq!(
        key_ids(&cli.keys(&["--expiring-within", "30d"])),
        vec![rsa3072.clone()]
    );
    assert!(cli.keys(&["--expiring-within", "12h"]).is_empty());
    cli.ok(&["key", "set-expiration", &rsa3072, "never"]);
    assert!(cli.keys(&["--expiring-within", "30d"]).is_empty());
    cli.expect(
        USAGE,
        &["key", "set-expiration", &rsa3072, "soonish"],
        &[],
        &[],
    );

    // Rotation: a new Active key, the old one Inactive, linked both ways.
    let rotated = cli.json(&["key", "rotate", &p256]);
    let successor = rotated["new"]["key_id"]
        .as_str()
        .expect("new key_id")
        .to_string();
    assert_ne!(successor, p256);
    assert_eq!(rotated["new"]["status"], "active");
    assert_eq!(rotated["new"]["algorithm"], "ec-p256");
    assert_eq!(rotated["new"]["label"], "ec-p256");
    let old = cli.key(&p256);
    assert_eq!(old["status"], "inactive");
    assert_eq!(old["rotated_to"], successor.as_str());
    assert_eq!(cli.key(&successor)["rotated_from"], p256.as_str());
    let shown = cli.ok(&["key", "show", &p256]);
    assert!(
        shown.contains(&format!("rotated to:    {successor}")),
        "{shown}"
    );

    // Destroy: asks first (refused without a terminal or --yes); the key is gone, its history
    // stays.
    cli.expect(USAGE, &["key", "destroy", &successor], &[], &[]);
    cli.key(&successor);
    cli.ok(&["key", "destroy", &successor, "--yes"]);
    cli.expect(REFUSED, &["key", "show", &successor], &[], &[]);
    let successor_history = events(&cli, &successor);
    let kinds: Vec<&str> = successor_history
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(kinds.contains(&"destroyed"), "{kinds:?}");
    assert!(
        kinds.contains(&"rotated") || kinds.contains(&"generated"),
        "{kinds:?}"
    );
    let old_kinds: Vec<String> = events(&cli, &p256)
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_string))
        .collect();
    assert!(old_kinds.contains(&"rotated".to_string()), "{old_kinds:?}");
    cli.expect(REFUSED, &["key", "history", "never-existed"], &[], &[]);

    // History: creation, then the admin's status changes under the admin actor.
    let history = events(&cli, &ed);
    let kinds: Vec<&str> = history.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"generated"), "{kinds:?}");
    let admin = format!("admin:{USER}@");
    let status_events: Vec<&Value> = history.iter().filter(|e| e["event"] == "status").collect();
    assert_eq!(status_events.len(), 2, "{history:?}");
    // Every event the admin caused names the admin: creation and status changes alike.
    for e in &history {
        assert!(e["actor"].as_str().unwrap_or("").starts_with(&admin), "{e}");
    }
    for e in events(&cli, &p256).iter().chain(successor_history.iter()) {
        assert!(
            e["actor"].as_str().unwrap_or("").starts_with(&admin),
            "rotation and destruction name the admin: {e}"
        );
    }
    let table = cli.ok(&["key", "history", &ed]);
    assert!(table.starts_with("AT") && table.contains(&admin), "{table}");

    // db: migrate, status, check.
    assert!(cli.ok(&["db", "migrate"]).contains("version"));
    let status = cli.json(&["db", "status"]);
    assert_eq!(status["backend"], cli.db.backend.name());
    assert!(
        status["schema_version"].as_i64().unwrap_or(0) >= 4,
        "{status}"
    );
    assert_eq!(status["tokens"], 1);
    assert_eq!(status["keys"], cli.keys(&[]).len());
    assert!(!status["url"].as_str().unwrap_or("").is_empty());
    let text = cli.ok(&["db", "status"]);
    assert!(text.contains("schema version:"), "{text}");

    let check = cli.json(&["db", "check"]);
    assert_eq!(check["ok"], true, "{check}");
    let verified = check["tokens"][0]["verified"].as_u64().unwrap_or(0);
    // Every key with sealed material: all but the lone public key.
    assert_eq!(verified as usize, cli.keys(&[]).len() - 1, "{check}");
    assert!(cli.ok(&["db", "check"]).contains("0 problem(s)"));
    // A wrong user PIN: the token is reported unusable, exit 1.
    let out = cli.expect(
        REFUSED,
        &["db", "check"],
        &[("SQLHSM_PIN", "wrong-pin-1")],
        &[],
    );
    assert!(out.contains("unusable"), "{out}");
    // Without a PIN nothing sealed is verified: said per token, and a failure unless
    // --structure-only says the structure is enough.
    let out = cli.expect(REFUSED, &["db", "check"], &[], &["SQLHSM_PIN"]);
    let sealed = cli.keys(&[]).len() - 1;
    assert!(
        out.contains(&format!(
            "not verified: keys: {sealed} key(s): no user PIN given (SQLHSM_PIN or --pin-file)"
        )),
        "{out}"
    );
    assert!(out.contains("--structure-only"), "{out}");
    let mut args = vec!["db", "check", "--json"];
    let report: Value =
        serde_json::from_str(&cli.expect(REFUSED, &args, &[], &["SQLHSM_PIN"])).expect("JSON");
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["complete"], false, "{report}");
    assert_eq!(report["tokens"][0]["unverified"], sealed, "{report}");
    args.push("--structure-only");
    let report: Value =
        serde_json::from_str(&cli.expect(0, &args, &[], &["SQLHSM_PIN"])).expect("JSON");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["structure_only"], true, "{report}");
    assert_eq!(report["tokens"][0]["verified"], 0, "{report}");
    // --structure-only opens nothing even with a PIN, and a wrong PIN does not matter to it.
    let out = cli.expect(
        0,
        &["db", "check", "--structure-only"],
        &[("SQLHSM_PIN", "wrong-pin-2")],
        &[],
    );
    assert!(out.contains("structure ok"), "{out}");
}

/// Runs and expects `code`; returns stderr.
fn stderr_of(cli: &Cli, code: i32, args: &[&str], env: &[(&str, &str)], unset: &[&str]) -> String {
    let out = cli.command(args, env, unset);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "sqlhsm {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stderr
}

/// `set-status expired` works through the lifecycle (and only the SO undoes it, as the command
/// says); export-public has a JSON shape; history names statuses and classes; a new key has a
/// CKA_ID whose hex is its key_id.
#[test]
fn expiring_hints_json_shapes_and_default_ids() {
    let cli = Cli::new("cli-lifecycle");
    cli.ok(&["token", "init", "life"]);
    let made = cli.json(&[
        "key",
        "generate",
        "--token",
        "life",
        "--algorithm",
        "ec-p256",
        "--label",
        "signer",
    ]);
    let key_id = made["key_id"].as_str().expect("key_id").to_string();
    // A CKA_ID by default: 8 random bytes, whose hex is the key_id.
    assert_eq!(made["id"], key_id.as_str(), "{made}");
    assert_eq!(key_id.len(), 16, "{made}");
    assert!(hex::decode(&key_id).is_ok(), "{made}");
    let aes = cli.json(&[
        "key",
        "generate",
        "--token",
        "life",
        "--algorithm",
        "aes-128",
    ]);
    assert_eq!(aes["id"], aes["key_id"], "{aes}");
    assert_ne!(aes["id"], made["id"]);

    // export-public --json: the key's identity and the PEM as a field.
    let exported = cli.json(&["key", "export-public", &key_id]);
    assert_eq!(exported["key_id"], key_id.as_str());
    assert_eq!(exported["algorithm"], "ec-p256");
    assert_eq!(exported["label"], "signer");
    assert_eq!(exported["token"], "life");
    let pem = exported["pem"].as_str().expect("pem");
    assert_eq!(pem, cli.ok(&["key", "export-public", &key_id]));
    openssl::pkey::PKey::public_key_from_pem(pem.as_bytes()).expect("PEM parses");

    // set-status offers expired, and it works: the key expires now.
    let help = cli.ok(&["key", "set-status", "--help"]);
    assert!(help.contains("expired"), "{help}");
    let out = cli.ok(&["key", "set-status", &key_id, "expired"]);
    assert!(out.contains("is expired"), "{out}");
    assert_eq!(cli.key(&key_id)["status"], "expired");
    // Bringing it back: the SO's, with --so, and the command says so.
    let said = stderr_of(
        &cli,
        REFUSED,
        &["key", "set-status", &key_id, "active"],
        &[],
        &[],
    );
    assert!(
        said.contains("only the security officer") && said.contains("--so"),
        "{said}"
    );
    let said = stderr_of(
        &cli,
        REFUSED,
        &["key", "set-expiration", &key_id, "never"],
        &[],
        &[],
    );
    assert!(
        said.contains("only the security officer") && said.contains("--so"),
        "{said}"
    );
    assert_eq!(cli.key(&key_id)["status"], "expired");
    cli.ok(&["key", "set-expiration", &key_id, "never", "--so"]);
    assert_eq!(cli.key(&key_id)["status"], "active");
    cli.ok(&["key", "set-status", &key_id, "compromised"]);
    let said = stderr_of(
        &cli,
        REFUSED,
        &["key", "set-status", &key_id, "active"],
        &[],
        &[],
    );
    assert!(said.contains("compromised, which is final"), "{said}");

    // History by name: statuses, and the class of what was destroyed.
    cli.ok(&["key", "destroy", &key_id, "--yes"]);
    let history = events(&cli, &key_id);
    let statuses: Vec<&str> = history
        .iter()
        .filter_map(|e| e["new"]["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        ["active", "expired", "active", "compromised"],
        "{history:?}"
    );
    let destroyed: Vec<&Value> = history
        .iter()
        .filter(|e| e["event"] == "destroyed")
        .collect();
    assert!(!destroyed.is_empty(), "{history:?}");
    for e in destroyed {
        let class = e["old"]["class"].as_str().unwrap_or_default();
        assert!(["public", "private"].contains(&class), "{e}");
    }
    let table = cli.ok(&["key", "history", &key_id]);
    assert!(table.contains("\"status\":\"expired\""), "{table}");

    // A PIN whose length the store does not allow: the allowed range is said.
    let said = stderr_of(
        &cli,
        USAGE,
        &["token", "init", "short"],
        &[("SQLHSM_SO_PIN", "12")],
        &[],
    );
    assert!(said.contains("4 to 255 bytes"), "{said}");
}

/// `token set-pin` (user with the old PIN; the SO for the user; the SO's own) and `token
/// unlock` (the SO clears a user lockout, the PIN stays).
#[test]
fn pins_change_and_a_locked_user_pin_is_unlocked() {
    let cli = Cli::new("cli-pins");
    cli.ok(&["token", "init", "pins"]);
    let generate = [
        "key",
        "generate",
        "--token",
        "pins",
        "--algorithm",
        "aes-128",
    ];
    let new_user = "user-pin-2222";
    // The user changes the user PIN, proving the old one; a wrong old one is the user's.
    let said = stderr_of(
        &cli,
        REFUSED,
        &["token", "set-pin", "pins"],
        &[("SQLHSM_PIN", "wrong-pin-3"), ("SQLHSM_NEW_PIN", new_user)],
        &[],
    );
    assert!(said.contains("wrong user PIN for token \"pins\""), "{said}");
    let out = cli.expect(
        0,
        &["token", "set-pin", "pins", "user"],
        &[("SQLHSM_NEW_PIN", new_user)],
        &[],
    );
    assert!(
        out.contains("user PIN of token \"pins\" is changed"),
        "{out}"
    );
    cli.expect(REFUSED, &generate, &[], &[]);
    cli.expect(0, &generate, &[("SQLHSM_PIN", new_user)], &[]);
    // A new PIN too short: the range is said.
    let said = stderr_of(
        &cli,
        USAGE,
        &["token", "set-pin", "pins"],
        &[("SQLHSM_PIN", new_user), ("SQLHSM_NEW_PIN", "1")],
        &[],
    );
    assert!(said.contains("4 to 255 bytes"), "{said}");
    // No new PIN and no terminal: a usage error naming the sources.
    let said = stderr_of(
        &cli,
        USAGE,
        &["token", "set-pin", "pins"],
        &[("SQLHSM_PIN", new_user)],
        &[],
    );
    assert!(said.contains("SQLHSM_NEW_PIN"), "{said}");

    // Locked by wrong guesses (the test configuration allows 5).
    for _ in 0..5 {
        cli.expect(REFUSED, &generate, &[("SQLHSM_PIN", "wrong-pin-4")], &[]);
    }
    assert_eq!(cli.json(&["token", "show", "pins"])["user_pin"], "locked");
    let said = stderr_of(&cli, REFUSED, &generate, &[("SQLHSM_PIN", new_user)], &[]);
    assert!(
        said.contains("locked") && said.contains("sqlhsm token unlock pins"),
        "{said}"
    );
    // The SO unlocks it: the PIN is unchanged and works again.
    let said = stderr_of(
        &cli,
        REFUSED,
        &["token", "unlock", "pins"],
        &[("SQLHSM_SO_PIN", "wrong-so-pin")],
        &[],
    );
    assert!(said.contains("wrong SO PIN"), "{said}");
    let unlocked = cli.json(&["token", "unlock", "pins"]);
    assert_eq!(unlocked["user_pin"], "ok", "{unlocked}");
    assert_eq!(unlocked["failures_cleared"], 5, "{unlocked}");
    cli.expect(0, &generate, &[("SQLHSM_PIN", new_user)], &[]);

    // The SO sets a new user PIN without the old one (C_InitPIN).
    let pin_file = cli.db.dir.join("new-user.pin");
    std::fs::write(&pin_file, "user-pin-3333\n").expect("write");
    let pin_file = pin_file.display().to_string();
    let out = cli.expect(
        0,
        &[
            "token",
            "set-pin",
            "pins",
            "user",
            "--so",
            "--new-pin-file",
            &pin_file,
        ],
        &[],
        &["SQLHSM_PIN"],
    );
    assert!(out.contains("SO set a new user PIN"), "{out}");
    cli.expect(REFUSED, &generate, &[("SQLHSM_PIN", new_user)], &[]);
    cli.expect(0, &generate, &[("SQLHSM_PIN", "user-pin-3333")], &[]);

    // The SO changes the SO PIN.
    cli.expect(
        0,
        &["token", "set-pin", "pins", "so"],
        &[("SQLHSM_NEW_PIN", "so-pin-4444")],
        &[],
    );
    cli.expect(REFUSED, &["token", "unlock", "pins"], &[], &[]);
    cli.expect(
        0,
        &["token", "unlock", "pins"],
        &[("SQLHSM_SO_PIN", "so-pin-4444")],
        &[],
    );
}

/// A self-signed certificate (DER) for `CN=<cn>` with this serial.
fn certificate(cn: &str, serial: u32) -> Vec<u8> {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let group =
        openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("group");
    let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("ec"))
        .expect("pkey");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", cn).expect("CN");
    name.append_entry_by_text("O", "sqlhsm tests").expect("O");
    let name = name.build();
    let mut builder = X509Builder::new().expect("builder");
    builder.set_version(2).expect("version");
    builder.set_subject_name(&name).expect("subject");
    builder.set_issuer_name(&name).expect("issuer");
    builder.set_pubkey(&key).expect("key");
    let serial = BigNum::from_u32(serial)
        .expect("bn")
        .to_asn1_integer()
        .expect("int");
    builder.set_serial_number(&serial).expect("serial");
    builder
        .set_not_before(&Asn1Time::from_unix(1_767_225_600).expect("time"))
        .expect("not before");
    builder
        .set_not_after(&Asn1Time::from_unix(1_798_761_600).expect("time"))
        .expect("not after");
    builder
        .sign(&key, openssl::hash::MessageDigest::sha256())
        .expect("sign");
    builder.build().to_der().expect("der")
}

/// `cert list|show`, `data list|show`: objects made the PKCS#11 way (`C_CreateObject`, here
/// through the crate's own core on the same store), read back by the command.
#[test]
fn certificates_and_data_objects_are_listed_and_shown() {
    use sqlhsm::types::Attribute;
    let cli = Cli::new("cli-objects");
    cli.ok(&["token", "init", "objs"]);
    {
        let user = cli.db.dir.join("user.pin");
        std::fs::write(&user, USER_PIN).expect("write");
        let admin = sqlhsm::admin::Admin::open(sqlhsm::admin::Options {
            db: Some(cli.db.url()),
            json: false,
            pins: sqlhsm::admin::pins::PinSource {
                user_file: Some(user),
                ..Default::default()
            },
        })
        .expect("open the store");
        let token = admin.token("objs").expect("token");
        let session = admin.user_session(&token).expect("session");
        let ulong = |kind, value: u64| Attribute::from_ulong(kind, value);
        let der = certificate("web.example", 0x1f2e);
        let subject = openssl::x509::X509::from_der(&der)
            .expect("der")
            .subject_name()
            .to_der()
            .expect("subject");
        let create = |template: Vec<Attribute>| {
            admin
                .module
                .create_object(session.handle, &template)
                .expect("C_CreateObject")
        };
        create(vec![
            ulong(cryptoki_sys::CKA_CLASS, cryptoki_sys::CKO_CERTIFICATE),
            ulong(cryptoki_sys::CKA_CERTIFICATE_TYPE, cryptoki_sys::CKC_X_509),
            Attribute::from_bool(cryptoki_sys::CKA_TOKEN, true),
            Attribute::new(cryptoki_sys::CKA_LABEL, b"web".to_vec()),
            Attribute::new(cryptoki_sys::CKA_ID, vec![0xab, 0xcd]),
            Attribute::new(cryptoki_sys::CKA_SUBJECT, subject),
            Attribute::new(cryptoki_sys::CKA_VALUE, der),
        ]);
        create(vec![
            ulong(cryptoki_sys::CKA_CLASS, cryptoki_sys::CKO_DATA),
            Attribute::from_bool(cryptoki_sys::CKA_TOKEN, true),
            Attribute::from_bool(cryptoki_sys::CKA_PRIVATE, false),
            Attribute::new(cryptoki_sys::CKA_LABEL, b"note".to_vec()),
            Attribute::new(cryptoki_sys::CKA_APPLICATION, b"tests".to_vec()),
            Attribute::new(cryptoki_sys::CKA_VALUE, b"hello".to_vec()),
        ]);
        create(vec![
            ulong(cryptoki_sys::CKA_CLASS, cryptoki_sys::CKO_DATA),
            Attribute::from_bool(cryptoki_sys::CKA_TOKEN, true),
            Attribute::new(cryptoki_sys::CKA_LABEL, b"secret-note".to_vec()),
            Attribute::new(cryptoki_sys::CKA_VALUE, b"do not print".to_vec()),
        ]);
    }
    // Certificates: no PIN needed to read them.
    let Value::Array(certs) = cli.json(&["cert", "list"]) else {
        panic!("cert list --json is not an array")
    };
    assert_eq!(certs.len(), 1, "{certs:?}");
    assert_eq!(certs[0]["subject"], "CN=web.example, O=sqlhsm tests");
    let table = cli.ok(&["cert", "list", "--token", "objs"]);
    assert!(
        table.starts_with("OBJECT_ID") && table.contains("CN=web.example"),
        "{table}"
    );
    let shown = cli.expect(0, &["cert", "show", "web"], &[], &["SQLHSM_PIN"]);
    for needle in [
        "subject:    CN=web.example, O=sqlhsm tests",
        "issuer:     CN=web.example, O=sqlhsm tests",
        "serial:     1f:2e",
        "not before: 2026-01-01T00:00:00+00:00",
        "not after:  2027-01-01T00:00:00+00:00",
        "CKA_ID:     abcd",
    ] {
        assert!(shown.contains(needle), "{needle:?} in\n{shown}");
    }
    let by_id = cli.json(&["cert", "show", certs[0]["object_id"].as_str().expect("id")]);
    assert_eq!(by_id["serial"], "1f:2e");
    assert_eq!(by_id["not_after"], "2027-01-01T00:00:00+00:00");
    cli.expect(REFUSED, &["cert", "show", "nothing-so-named"], &[], &[]);

    // Data objects: a public one's value is shown, a private one's never.
    let Value::Array(data) = cli.json(&["data", "list"]) else {
        panic!("data list --json is not an array")
    };
    assert_eq!(data.len(), 2, "{data:?}");
    let note = cli.json(&["data", "show", "note"]);
    assert_eq!(note["application"], "tests");
    assert_eq!(note["private"], false);
    assert_eq!(note["value_hex"], hex::encode("hello"));
    let secret = cli.ok(&["data", "show", "secret-note"]);
    assert!(secret.contains("private:     yes"), "{secret}");
    assert!(secret.contains("sealed under the token key"), "{secret}");
    assert!(!secret.contains(&hex::encode("do not print")), "{secret}");
    assert_eq!(
        cli.json(&["data", "list"]).as_array().map(Vec::len),
        Some(2)
    );
    let Value::Array(none) = cli.json(&["cert", "list", "--token", "objs"]) else {
        panic!("not an array")
    };
    assert_eq!(none.len(), 1);
}

/// Progress bars only on a terminal: piped, a bulk import, an RSA generation and `db check`
/// print nothing on stderr; under a pseudo-terminal (`script`) the import draws its bar.
#[test]
fn progress_is_shown_on_a_terminal_only() {
    let cli = Cli::new("cli-progress");
    cli.ok(&["token", "init", "bulk"]);
    let dir = &cli.db.dir;
    let mut files = Vec::new();
    for i in 0..3u8 {
        let path = dir.join(format!("aes-{i}.bin"));
        std::fs::write(&path, [i; 16]).expect("write");
        files.push(path.display().to_string());
    }
    let mut args = vec!["key", "import", "--token", "bulk", "--aes"];
    args.extend(files.iter().map(String::as_str));
    let out = cli.command(&args, &[], &[]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "no progress when piped"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.contains(&format!("from {}", files[2])), "{stdout}");
    // --label names one key: refused with several files.
    let mut labelled = args.clone();
    labelled.extend(["--label", "x"]);
    cli.expect(USAGE, &labelled, &[], &[]);
    for args in [
        &[
            "key",
            "generate",
            "--token",
            "bulk",
            "--algorithm",
            "rsa-2048",
        ][..],
        &["db", "check"],
    ] {
        let out = cli.command(args, &[], &[]);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "{args:?}: no progress when piped"
        );
    }

    // Under a terminal. `script` (util-linux) gives the command a pseudo-terminal.
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "`script` (util-linux) is missing, and CI is set"
        );
        println!("skipped: the terminal half needs `script` (util-linux)");
        return;
    }
    let mut more = Vec::new();
    for i in 3..6u8 {
        let path = dir.join(format!("aes-{i}.bin"));
        std::fs::write(&path, [i; 16]).expect("write");
        more.push(path.display().to_string());
    }
    let line = format!(
        "{} key import --token bulk --aes {}",
        env!("CARGO_BIN_EXE_sqlhsm"),
        more.join(" ")
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .env("SQLHSM_DB", cli.db.url())
        .env("SQLHSM_CONF", &cli.db.conf)
        .env("SQLHSM_PIN", USER_PIN)
        .env("TERM", "xterm")
        .env_remove("SQLHSM_LOG")
        .output()
        .expect("run script");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("importing"),
        "no progress bar on a terminal:\n{shown:?}"
    );
    assert!(shown.contains("imported key"), "{shown}");
}

/// A key the admin command makes is found by `pkcs11-tool --id <key_id>`: its default CKA_ID
/// is the key_id's bytes.
#[test]
fn pkcs11_tool_selects_admin_keys_by_id() {
    if Command::new("pkcs11-tool").arg("--help").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "pkcs11-tool (opensc) is missing, and CI is set"
        );
        println!("skipped: pkcs11-tool (opensc) is not installed");
        return;
    }
    let cli = Cli::new("cli-p11tool");
    cli.ok(&["token", "init", "tooled"]);
    let made = cli.json(&[
        "key",
        "generate",
        "--token",
        "tooled",
        "--algorithm",
        "ec-p256",
        "--label",
        "by-default-id",
    ]);
    let key_id = made["key_id"].as_str().expect("key_id");
    let out = Command::new("pkcs11-tool")
        .args(["--module"])
        .arg(common::module_path())
        .args([
            "--token-label",
            "tooled",
            "--login",
            "--pin",
            USER_PIN,
            "--list-objects",
            "--type",
            "privkey",
            "--id",
            key_id,
        ])
        .stdin(Stdio::null())
        .env("SQLHSM_DB", cli.db.url())
        .env("SQLHSM_CONF", &cli.db.conf)
        .output()
        .expect("run pkcs11-tool");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{listed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        listed.contains("by-default-id") && listed.contains(&format!("ID:         {key_id}")),
        "{listed}"
    );
}

/// `key rotate --label / --id` name the successor; without them it takes the key's label and
/// CKA_ID, which the key gives up for `<label>@<key_id>` (and CKA_ID ‖ `@<key_id>`).
#[test]
fn key_rotate_names_the_successor() {
    let cli = Cli::new("cli-rotate");
    cli.ok(&["token", "init", "rot"]);
    let a = created_key_id(&cli.ok(&[
        "key",
        "generate",
        "--token",
        "rot",
        "--algorithm",
        "ec-p256",
        "--label",
        "signer",
        "--id",
        "01",
    ]));
    let derived_id = |key_id: &str| format!("01{}", hex::encode(format!("@{key_id}")));
    let help = cli.ok(&["key", "rotate", "--help"]);
    for needle in ["--label", "--id", "LABEL@KEY_ID"] {
        assert!(
            help.contains(needle),
            "key rotate --help lacks {needle:?}:\n{help}"
        );
    }

    // Default: the successor takes both names, the key gives both up.
    let out = cli.ok(&["key", "rotate", &a]);
    assert!(
        out.contains(&format!(
            "labelled \"signer@{a}\", CKA_ID {}",
            derived_id(&a)
        )),
        "the new names are reported: {out}"
    );
    let b = out
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("no successor in {out:?}"))
        .to_string();
    let (old, new) = (cli.key(&a), cli.key(&b));
    assert_eq!(old["label"], format!("signer@{a}"));
    assert_eq!(old["id"], derived_id(&a));
    assert_eq!(
        (new["label"].as_str(), new["id"].as_str()),
        (Some("signer"), Some("01"))
    );
    let active_signers: Vec<Value> = cli
        .keys(&[])
        .into_iter()
        .filter(|k| k["label"] == "signer")
        .collect();
    assert_eq!(key_ids(&active_signers), vec![b.clone()]);

    // --label: the successor is relabelled, the key keeps its label and gives up its CKA_ID.
    let rotated = cli.json(&["key", "rotate", &b, "--label", "signer-v3"]);
    let c = rotated["new"]["key_id"]
        .as_str()
        .expect("key_id")
        .to_string();
    assert_eq!(rotated["new"]["label"], "signer-v3");
    assert_eq!(rotated["new"]["id"], "01");
    assert_eq!(rotated["old"]["label"], "signer");
    assert_eq!(rotated["old"]["id"], derived_id(&b));

    // --id: the successor gets a new CKA_ID, the key keeps its own and gives up its label.
    let rotated = cli.json(&["key", "rotate", &c, "--id", "0a0b"]);
    assert_eq!(rotated["new"]["label"], "signer-v3");
    assert_eq!(rotated["new"]["id"], "0a0b");
    assert_eq!(rotated["old"]["label"], format!("signer-v3@{c}"));
    assert_eq!(rotated["old"]["id"], "01");
    let d = rotated["new"]["key_id"]
        .as_str()
        .expect("key_id")
        .to_string();

    // Both: the key keeps both names.
    let out = cli.ok(&["key", "rotate", &d, "--label", "signer-v5", "--id", "05"]);
    assert!(
        !out.contains("labelled") && !out.contains("CKA_ID"),
        "{out}"
    );
    let old = cli.key(&d);
    assert_eq!(
        (old["label"].as_str(), old["id"].as_str()),
        (Some("signer-v3"), Some("0a0b"))
    );

    cli.expect(USAGE, &["key", "rotate", &d, "--id", "zz"], &[], &[]);
    // A key is replaced once: the first key again is refused and nothing changes.
    cli.expect(REFUSED, &["key", "rotate", &a], &[], &[]);
    assert_eq!(cli.key(&a)["label"], format!("signer@{a}"));
    let kinds: Vec<String> = events(&cli, &a)
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_string))
        .collect();
    assert_eq!(kinds, ["generated", "rotated"]);
}

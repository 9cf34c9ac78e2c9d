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
    cli.ok(&["token", "init", "beta"]);
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

    // Delete needs the right SO PIN; a wrong one is counted and refused.
    cli.expect(
        REFUSED,
        &["token", "delete", "alpha"],
        &[("SQLHSM_SO_PIN", "not-the-so-pin")],
        &[],
    );
    assert_eq!(cli.json(&["token", "show", "alpha"])["so_pin"], "1 failed");
    let key_id = the_key_with(&cli.keys(&["--token", "alpha"]), "algorithm", "ec-p256");
    cli.ok(&["token", "delete", "alpha"]);
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

    // Destroy: the key is gone, its history stays.
    cli.ok(&["key", "destroy", &successor]);
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
    // Without a PIN the sealed keys are skipped, and said to be.
    let out = cli.expect(0, &["db", "check"], &[], &["SQLHSM_PIN"]);
    assert!(out.contains("skipped"), "{out}");
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
    let kinds: Vec<String> = events(&cli, &a)
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_string))
        .collect();
    assert_eq!(kinds, ["generated", "rotated"]);
}

//! Persistence and at-rest encryption: import a known EC key, RSA key and AES key, finalise,
//! scan what is stored for the secret bytes (raw, hex or base64) — the SQLite file and its -wal,
//! or on PostgreSQL every column of every table (the four of the schema first) as text — then re-initialise and use them.

mod common;

use cryptoki::context::{CInitializeArgs, CInitializeFlags};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;

use common::*;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.len() <= hay.len() && hay.windows(needle.len()).any(|w| w == needle)
}

/// What an attacker with the database would read. SQLite: every file of the database (main,
/// -wal, -shm, -journal) as bytes. PostgreSQL (no file to scan): every column of every row of
/// the four tables, each cast to text.
fn db_bytes(db: &TestDb) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    match db.backend {
        Backend::Sqlite => {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let path = format!("{}{suffix}", db.db.display());
                if let Ok(b) = std::fs::read(&path) {
                    out.push((path, b));
                }
            }
        }
        Backend::Postgres => {
            // The four tables of the schema, then any other table (history, …) in name order.
            let mut tables: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
            let mut others = db.query_texts(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            );
            others.retain(|t| !tables.contains(t));
            others.sort();
            tables.extend(others);
            for table in &tables {
                let columns = db.query_texts(&format!(
                    "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = '{table}' \
                     ORDER BY ordinal_position"
                ));
                assert!(!columns.is_empty(), "table {table} exists");
                let each = columns
                    .iter()
                    .map(|c| format!("COALESCE(\"{c}\"::text, '')"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let rows =
                    db.query_texts(&format!("SELECT concat_ws(E'\\n', {each}) FROM {table}"));
                out.push((
                    format!("table {table} ({} rows)", rows.len()),
                    rows.join("\n").into_bytes(),
                ));
            }
        }
    }
    assert!(
        !out.is_empty() && !out[0].1.is_empty(),
        "database content exists"
    );
    out
}

/// The tables of the schema that hold tokens and objects.
const TABLES: [&str; 4] = ["provider_config", "asym_key", "sym_key", "p11_object"];

/// `secret` as it could appear in stored text or bytes: raw, hex, and base64 at each of the
/// three byte alignments (the part of the encoding that depends on `secret` alone).
fn encodings(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    use base64::Engine;
    let mut v = vec![
        ("raw", secret.to_vec()),
        ("hex", hex::encode(secret).into_bytes()),
        ("HEX", hex::encode_upper(secret).into_bytes()),
    ];
    for offset in 0..3 {
        let mut padded = vec![0u8; offset];
        padded.extend_from_slice(secret);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&padded);
        if b64.len() > 12 {
            v.push(("base64", b64.as_bytes()[4..b64.len() - 4].to_vec()));
        }
    }
    v
}

#[test]
fn keys_persist_and_are_encrypted_at_rest() {
    let db = TestDb::new("persistence");
    let p = init(&db);
    let slot = new_token(&p, "persist");

    // Known key material.
    let aes_key: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let ec = EcKey::generate(&group).unwrap();
    let ec_scalar = ec.private_key().to_vec_padded(32).unwrap();
    let ec_pkcs8 = PKey::from_ec_key(ec.clone())
        .unwrap()
        .private_key_to_pkcs8()
        .unwrap();
    let mut bn = BigNumContext::new().unwrap();
    let ec_point = ec
        .public_key()
        .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut bn)
        .unwrap();
    let rsa = Rsa::generate(2048).unwrap();
    let rsa_d = rsa.d().to_vec();
    let rsa_p = rsa.p().unwrap().to_vec();
    let rsa_pkcs8 = PKey::from_rsa(rsa.clone())
        .unwrap()
        .private_key_to_pkcs8()
        .unwrap();
    let rsa_der = rsa.private_key_to_der().unwrap();

    {
        let s = user_session(&p, slot);
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Label(b"p-aes".to_vec()),
            Attribute::Value(aes_key.clone()),
        ])
        .expect("import AES");
        s.create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
            Attribute::Label(b"p-ec".to_vec()),
            Attribute::EcParams(P256.to_vec()),
            Attribute::Value(ec_scalar.clone()),
        ])
        .expect("import EC private");
        s.create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::EC),
            Attribute::Token(true),
            Attribute::Verify(true),
            Attribute::Label(b"p-ec".to_vec()),
            Attribute::EcParams(P256.to_vec()),
            Attribute::EcPoint(octet_string(&ec_point)),
        ])
        .expect("import EC public");
        s.create_object(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
            Attribute::Decrypt(true),
            Attribute::Label(b"p-rsa".to_vec()),
            Attribute::Modulus(rsa.n().to_vec()),
            Attribute::PublicExponent(rsa.e().to_vec()),
            Attribute::PrivateExponent(rsa_d.clone()),
            Attribute::Prime1(rsa_p.clone()),
            Attribute::Prime2(rsa.q().unwrap().to_vec()),
            Attribute::Exponent1(rsa.dmp1().unwrap().to_vec()),
            Attribute::Exponent2(rsa.dmq1().unwrap().to_vec()),
            Attribute::Coefficient(rsa.iqmp().unwrap().to_vec()),
        ])
        .expect("import RSA private");
        // A generated key as well.
        gen_aes(&s, 32, "p-gen");
    }
    p.clone().finalize().expect("C_Finalize");

    // Nothing secret in the database files; the PIN neither.
    for (path, bytes) in db_bytes(&db) {
        println!("scanning {path} ({} bytes)", bytes.len());
        for (what, secret) in [
            ("AES key", &aes_key[..]),
            ("EC scalar", &ec_scalar[..]),
            ("EC PKCS#8", &ec_pkcs8[..]),
            ("RSA d", &rsa_d[..]),
            ("RSA p", &rsa_p[..]),
            ("RSA PKCS#8", &rsa_pkcs8[..]),
            ("RSA PKCS#1", &rsa_der[..]),
            ("user PIN", USER_PIN.as_bytes()),
            ("SO PIN", SO_PIN.as_bytes()),
        ] {
            for (encoding, needle) in encodings(secret) {
                assert!(
                    !contains(&bytes, &needle),
                    "{what} found in plaintext ({encoding}) in {path}"
                );
            }
        }
        // Public data is stored (sanity check that the scan looks at the right file).
        if path == db.db.display().to_string() || path.starts_with("table provider_config") {
            assert!(
                contains(&bytes, b"persist"),
                "token label is in the main database file"
            );
        }
    }

    // Re-initialise: everything is still there and works.
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize again");
    let slot = slot_by_label(&p, "persist").expect("token survives C_Finalize");
    let s = user_session(&p, slot);
    let aes = find_by_label(&s, "p-aes");
    assert_eq!(aes.len(), 1);
    let iv = [3u8; 16];
    let ct = s
        .encrypt(&Mechanism::AesCbcPad(iv), aes[0], b"persisted")
        .unwrap();
    let want = openssl::symm::encrypt(
        openssl::symm::Cipher::aes_256_cbc(),
        &aes_key,
        Some(&iv),
        b"persisted",
    )
    .unwrap();
    assert_eq!(ct, want, "the same AES key after re-initialisation");

    let ec_priv = find_by_label_class(&s, "p-ec", ObjectClass::PRIVATE_KEY);
    let ec_pub = find_by_label_class(&s, "p-ec", ObjectClass::PUBLIC_KEY);
    assert_eq!((ec_priv.len(), ec_pub.len()), (1, 1));
    let sig = s
        .sign(&Mechanism::EcdsaSha256, ec_priv[0], b"after restart")
        .unwrap();
    s.verify(&Mechanism::EcdsaSha256, ec_pub[0], b"after restart", &sig)
        .unwrap();
    let pk = PKey::from_ec_key(ec).unwrap();
    let mut v = openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &pk).unwrap();
    v.update(b"after restart").unwrap();
    assert!(v.verify(&ecdsa_raw_to_der(&sig)).unwrap());

    let rsa_priv = find_by_label_class(&s, "p-rsa", ObjectClass::PRIVATE_KEY);
    assert_eq!(rsa_priv.len(), 1);
    let mut ct = vec![0u8; 256];
    let n = rsa
        .public_encrypt(b"rsa persisted", &mut ct, openssl::rsa::Padding::PKCS1)
        .unwrap();
    let pt = s
        .decrypt(&Mechanism::RsaPkcs, rsa_priv[0], &ct[..n])
        .unwrap();
    assert_eq!(pt, b"rsa persisted");
    assert_eq!(find_by_label(&s, "p-gen").len(), 1);
    drop(s);
    p.finalize().unwrap();
}

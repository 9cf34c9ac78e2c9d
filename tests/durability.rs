//! Durability, on the backend `SQLHSM_TEST_BACKEND` names: when `C_GenerateKey`,
//! `C_GenerateKeyPair` or `C_CreateObject` returns `CKR_OK`, the key is committed.
//!
//! `another_process_finds_the_key_at_once`: a re-executed process, already initialised and
//! logged in and waiting, is released the moment the call returns here and must find the new
//! key on its first `C_FindObjects` (no retry).
//!
//! `key_survives_its_process_being_killed`: a child generates and imports keys, then aborts
//! (no `C_Finalize`, no destructors); this process still finds all of them.

mod common;

use std::time::Instant;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::Session;

use common::*;

/// A call under test: its name, how many objects it makes, and the call itself.
type Op<'a> = (&'static str, usize, &'a dyn Fn(&str));

fn import_aes(s: &Session, label: &str) {
    s.create_object(&[
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Encrypt(true),
        Attribute::Value(vec![0x5a; 32]),
        Attribute::Label(label.as_bytes().to_vec()),
    ])
    .expect("C_CreateObject");
}

#[test]
fn another_process_finds_the_key_at_once() {
    if child_role().is_some() {
        return;
    }
    let p = ctx();
    let token = "durable-now";
    let slot = new_token(p, token);
    let s = user_session(p, slot);
    let ops: [Op; 3] = [
        ("C_GenerateKey", 1, &|label| {
            gen_aes(&s, 32, label);
        }),
        ("C_GenerateKeyPair", 2, &|label| {
            gen_ec(&s, P256, label, b"now");
        }),
        ("C_CreateObject", 1, &|label| import_aes(&s, label)),
    ];
    for (i, (call, objects, op)) in ops.iter().enumerate() {
        let label = format!("now-{i}");
        let sync = ctx_db().dir.join(format!("sync-{i}"));
        std::fs::create_dir_all(&sync).expect("sync dir");
        let child = spawn_child(
            "child_process",
            "find",
            ctx_db(),
            &[
                (ENV_CHILD_SYNC, sync.display().to_string()),
                ("SQLHSM_FIND_TOKEN", token.to_string()),
                ("SQLHSM_FIND_LABEL", label.clone()),
                ("SQLHSM_FIND_COUNT", objects.to_string()),
            ],
        );
        wait_children_ready(&sync, 1);
        op(&label);
        let returned = Instant::now();
        std::fs::write(sync.join("go"), b"").expect("go");
        finish_child("find", child);
        println!(
            "durability: {call} returned; another process found the key on its first C_FindObjects (its run ended {} ms later)",
            returned.elapsed().as_millis()
        );
    }
}

#[test]
fn key_survives_its_process_being_killed() {
    if child_role().is_some() {
        return;
    }
    let p = ctx();
    let token = "durable-crash";
    let slot = new_token(p, token);
    let out = spawn_child(
        "child_process",
        "generate-then-abort",
        ctx_db(),
        &[("SQLHSM_FIND_TOKEN", token.to_string())],
    )
    .wait_with_output()
    .expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!(
        "--- generate-then-abort ---\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("generated, aborting"),
        "the child got as far as its abort"
    );
    assert!(
        !out.status.success(),
        "the child was killed: {:?}",
        out.status
    );
    let s = user_session(p, slot);
    assert_eq!(find_by_label(&s, "crash-aes").len(), 1, "C_GenerateKey");
    assert_eq!(find_by_label(&s, "crash-ec").len(), 2, "C_GenerateKeyPair");
    assert_eq!(find_by_label(&s, "crash-import").len(), 1, "C_CreateObject");
    let aes = find_by_label(&s, "crash-aes")[0];
    s.encrypt(&Mechanism::AesCbcPad([0; 16]), aes, b"usable")
        .expect("the key of the killed process works");
}

/// Runs only in the children the tests above start.
#[test]
fn child_process() {
    let Some(role) = child_role() else {
        return;
    };
    let p = child_init();
    let token = std::env::var("SQLHSM_FIND_TOKEN").expect("SQLHSM_FIND_TOKEN");
    let slot = slot_by_label(&p, &token).expect("token");
    let s = user_session(&p, slot);
    match role.as_str() {
        "find" => {
            let label = std::env::var("SQLHSM_FIND_LABEL").expect("SQLHSM_FIND_LABEL");
            let want: usize = std::env::var("SQLHSM_FIND_COUNT")
                .expect("SQLHSM_FIND_COUNT")
                .parse()
                .expect("a count");
            child_ready_then_wait(&role);
            let found = find_by_label(&s, &label);
            assert_eq!(found.len(), want, "{label} on the first C_FindObjects");
        }
        "generate-then-abort" => {
            gen_aes(&s, 32, "crash-aes");
            gen_ec(&s, P256, "crash-ec", b"crash");
            import_aes(&s, "crash-import");
            use std::io::Write;
            println!("generated, aborting");
            let _ = std::io::stdout().flush();
            std::process::abort();
        }
        other => panic!("unknown role {other}"),
    }
    println!("child {role}: ok");
    drop(s);
    p.finalize().expect("C_Finalize");
}

//! Cache coherence across processes, on the backend `SQLHSM_TEST_BACKEND` names: this process
//! generates two token key pairs and signs with them (so their private keys are unwrapped and
//! cached here); a re-executed child process then destroys one, and later clears `CKA_SIGN` on
//! the other. This process keeps calling `C_SignInit` (through `C_Sign`) every 10 ms until it
//! fails with `CKR_KEY_HANDLE_INVALID` / `CKR_OBJECT_HANDLE_INVALID` (destroyed) or
//! `CKR_KEY_FUNCTION_NOT_PERMITTED` (flag cleared). The delay, measured from the moment the
//! child's call returned, must stay within `[cache] coherence_ms` (set to 1000, the default)
//! plus 500 ms of slack.

mod common;

use std::process::Child;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use common::*;

const TOKEN: &str = "coherence";
const COHERENCE_MS: u64 = 1000;
const SLACK_MS: u64 = 500;
const POLL: Duration = Duration::from_millis(10);

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros()
}

/// Polls signing with `key` until it fails, while `child` makes its change. Returns the delay
/// from the child's change to the first failure, and from the child's exit to it, in ms.
fn delay_until_refused(
    what: &str,
    s: &Session,
    key: ObjectHandle,
    mut child: Child,
    accept: &[RvError],
) -> (f64, Option<f64>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut exited_us = None;
    let refused_us = loop {
        if exited_us.is_none() && child.try_wait().expect("try_wait").is_some() {
            exited_us = Some(now_us());
        }
        match s.sign(&Mechanism::EcdsaSha256, key, b"still cached?") {
            Ok(_) => {}
            Err(cryptoki::error::Error::Pkcs11(rv, _)) if accept.contains(&rv) => {
                break now_us();
            }
            Err(e) => panic!("{what}: C_Sign failed with {e}, expected one of {accept:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never seen by this process (waited 60 s)"
        );
        std::thread::sleep(POLL);
    };
    let out = finish_child(what, child);
    let changed_us: u128 = out
        .lines()
        .find_map(|l| l.split("changed at ").nth(1))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{what}: the child printed no change time"));
    assert!(
        refused_us + 1000 >= changed_us,
        "{what}: refused {} µs before the child changed anything",
        changed_us - refused_us
    );
    let ms = |from: u128| (refused_us as f64 - from as f64) / 1000.0;
    (ms(changed_us), exited_us.map(ms))
}

#[test]
fn destroy_and_attribute_change_seen_within_bound() {
    if child_role().is_some() {
        return;
    }
    let db = TestDb::with_options(
        "coherence",
        TestDbOptions {
            extra_toml: format!("[cache]\ncoherence_ms = {COHERENCE_MS}\n"),
            ..TestDbOptions::default()
        },
    );
    let p = init(&db);
    let slot = new_token(&p, TOKEN);
    let s = user_session(&p, slot);
    let (_, doomed) = gen_ec(&s, P256, "coh-destroy", b"d");
    let (_, restricted) = gen_ec(&s, P256, "coh-attr", b"a");
    for key in [doomed, restricted] {
        s.sign(&Mechanism::EcdsaSha256, key, b"now cached")
            .expect("C_Sign before the change");
    }

    let (destroy_ms, destroy_exit_ms) = delay_until_refused(
        "destroy",
        &s,
        doomed,
        spawn_child("child_process", "destroy", &db, &[]),
        &[RvError::KeyHandleInvalid, RvError::ObjectHandleInvalid],
    );
    let (attr_ms, attr_exit_ms) = delay_until_refused(
        "set-attribute",
        &s,
        restricted,
        spawn_child("child_process", "set-attribute", &db, &[]),
        &[RvError::KeyFunctionNotPermitted],
    );
    // The new value is what this process reads now, too.
    assert!(!get_bool(&s, restricted, AttributeType::Sign));

    let line = format!(
        "coherence: {} destroy seen after {destroy_ms:.0} ms, attribute change seen after \
         {attr_ms:.0} ms (from the child's exit: {}, {}; bound {COHERENCE_MS} + {SLACK_MS} ms)",
        db.backend.name(),
        destroy_exit_ms.map_or("-".into(), |v| format!("{v:.0} ms")),
        attr_exit_ms.map_or("-".into(), |v| format!("{v:.0} ms")),
    );
    println!("{line}");
    announce(&line);
    for (what, ms) in [("destroy", destroy_ms), ("attribute change", attr_ms)] {
        assert!(
            ms <= (COHERENCE_MS + SLACK_MS) as f64,
            "{what} seen after {ms:.0} ms, over {COHERENCE_MS} + {SLACK_MS} ms"
        );
    }
    drop(s);
    p.finalize().expect("C_Finalize");
}

/// Runs only in the child the test above starts: another process changing the keys.
#[test]
fn child_process() {
    let Some(role) = child_role() else {
        return;
    };
    let p = child_init();
    let slot = slot_by_label(&p, TOKEN).expect("token");
    let s = user_session(&p, slot);
    let label = if role == "destroy" {
        "coh-destroy"
    } else {
        "coh-attr"
    };
    let private = find_by_label_class(&s, label, ObjectClass::PRIVATE_KEY);
    assert_eq!(
        private.len(),
        1,
        "{label}: the other process's key is found"
    );
    match role.as_str() {
        "destroy" => s.destroy_object(private[0]).expect("C_DestroyObject"),
        "set-attribute" => s
            .update_attributes(private[0], &[Attribute::Sign(false)])
            .expect("C_SetAttributeValue(CKA_SIGN = false)"),
        other => panic!("unknown role {other}"),
    }
    println!("changed at {}", now_us());
    drop(s);
    println!("child {role}: ok");
    p.finalize().expect("C_Finalize");
}

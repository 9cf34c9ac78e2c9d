//! `C_Finalize` then `C_Initialize` in one process, on the backend `SQLHSM_TEST_BACKEND` names:
//! handles an application kept from before must never name another session or object after it
//! (PKCS#11 3.0 §5.4 ends every session at `C_Finalize`; sqlhsm's handle numbers are the
//! process's, so they never come back).
//!
//! This file runs one test: it finalizes the module, which the other test files' shared context
//! must never see.

mod common;

use cryptoki::context::{CInitializeArgs, CInitializeFlags};
use cryptoki::object::{AttributeType, ObjectClass};

use common::*;

#[test]
fn handles_never_come_back_after_reinitialization() {
    let db = TestDb::new("reinitialize");
    let p = init(&db);
    let slot = new_token(&p, "reinit");
    let s = user_session(&p, slot);
    let (ec_pub, ec_priv) = gen_ec(&s, P256, "old-ec", b"ec");
    let aes = gen_aes(&s, 32, "old-aes");
    let old_objects = [ec_pub.handle(), ec_priv.handle(), aes.handle()];
    let old_session = s.handle();
    // The session stays open into C_Finalize, as in an application that forgot it.
    std::mem::forget(s);
    p.finalize().expect("C_Finalize");

    let p = load();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize again");
    // The same objects and as many new ones as before: none may reuse an old number.
    let s = user_session(&p, slot);
    let mut new_objects = Vec::new();
    new_objects.push(gen_aes(&s, 16, "new-aes").handle());
    for label in ["old-aes", "old-ec"] {
        new_objects.extend(find_by_label(&s, label).iter().map(|o| o.handle()));
    }
    new_objects.push(gen_ec(&s, P256, "new-ec", b"new").1.handle());
    println!(
        "handles before: {old_objects:?} session {old_session}; after: {new_objects:?} session {}",
        s.handle()
    );
    for handle in &new_objects {
        assert!(
            !old_objects.contains(handle),
            "object handle {handle} was handed out again"
        );
    }
    assert_ne!(s.handle(), old_session, "session handle handed out again");

    // The old handles name nothing now.
    for old in old_objects {
        // SAFETY: any number is a valid argument; the module must refuse an unknown one.
        let stale = unsafe { cryptoki::object::ObjectHandle::new_from_raw(old) };
        expect_rv(
            s.get_attributes(stale, &[AttributeType::Class]),
            cryptoki::error::RvError::ObjectHandleInvalid,
        );
    }
    let mut info = cryptoki_sys::CK_SESSION_INFO::default();
    // SAFETY: `info` is a live out-parameter.
    let rv = unsafe { raw().C_GetSessionInfo(old_session, &mut info) };
    expect_rv(
        raw_result(rv, cryptoki::context::Function::GetSessionInfo),
        cryptoki::error::RvError::SessionHandleInvalid,
    );
    // The keys themselves are the same keys under their new handles.
    let found = find_by_label_class(&s, "old-ec", ObjectClass::PRIVATE_KEY);
    assert_eq!(found.len(), 1);
}

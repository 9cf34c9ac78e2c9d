//! Slot and token management (§5.5), session management and login (§5.6): slot list/info, token
//! info, mechanism list/info, C_InitToken / C_InitPIN / C_SetPIN, login/logout for SO and user,
//! PIN failure counting and lockout, R/O vs R/W session rules.
//! Each #[test] makes its own token on the shared module (see `common`).

mod common;

/// These tests count slots and look for the one empty slot, which another test creating a
/// token at the same moment would change; so the tests of this file run one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

use cryptoki::error::RvError;
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::{SessionState, UserType};

use common::*;

#[test]
fn slot_list_and_info() {
    let _serial = serial();
    let p = ctx();
    let slot = new_token(p, "slots-a");

    let all = p.get_all_slots().expect("C_GetSlotList(FALSE)");
    let present = p.get_slots_with_token().expect("C_GetSlotList(TRUE)");
    let inited = p.get_slots_with_initialized_token().expect("initialised");
    assert!(all.contains(&slot) && present.contains(&slot) && inited.contains(&slot));
    // Every slot holds a token (the spare one an uninitialised token).
    assert_eq!(all.len(), present.len());
    let empty = empty_slot(p);
    assert!(!inited.contains(&empty));

    let info = p.get_slot_info(slot).expect("C_GetSlotInfo");
    assert!(info.token_present(), "CKF_TOKEN_PRESENT");
    assert!(!info.removable_device());
    assert!(!info.hardware_slot());
    let einfo = p.get_slot_info(empty).expect("C_GetSlotInfo(empty)");
    assert!(einfo.token_present(), "the spare slot has a (blank) token");

    let bad = cryptoki::slot::Slot::try_from(0xdead_beefu64).unwrap();
    expect_rv(p.get_slot_info(bad), RvError::SlotIdInvalid);
    expect_rv(p.get_token_info(bad), RvError::SlotIdInvalid);
    expect_rv(p.get_mechanism_list(bad), RvError::SlotIdInvalid);
    expect_rv(p.open_rw_session(bad), RvError::SlotIdInvalid);
}

#[test]
fn token_info_flags() {
    let _serial = serial();
    let p = ctx();
    let slot = new_token_no_user_pin(p, "tokinfo");
    let t = p.get_token_info(slot).expect("C_GetTokenInfo");
    assert_eq!(t.label(), "tokinfo");
    assert!(t.token_initialized(), "CKF_TOKEN_INITIALIZED");
    assert!(t.rng(), "CKF_RNG");
    assert!(t.login_required(), "CKF_LOGIN_REQUIRED");
    assert!(!t.user_pin_initialized(), "no user PIN yet");
    assert!(!t.write_protected());
    assert_eq!(t.min_pin_length(), 4, "[security] min_pin_len");
    assert_eq!(t.max_pin_length(), 255, "[security] max_pin_len");
    assert!(!t.serial_number().is_empty());
    assert_eq!(t.session_count(), Some(0));

    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    s.init_pin(&pin(USER_PIN)).unwrap();
    let t = p.get_token_info(slot).unwrap();
    assert!(
        t.user_pin_initialized(),
        "CKF_USER_PIN_INITIALIZED after C_InitPIN"
    );
    assert_eq!(t.session_count(), Some(1));
    assert_eq!(t.rw_session_count(), Some(1));

    let empty = p.get_token_info(empty_slot(p)).unwrap();
    assert!(!empty.token_initialized());
}

#[test]
fn mechanism_list_and_info() {
    let _serial = serial();
    let p = ctx();
    let slot = new_token(p, "mechs");
    let list = p.get_mechanism_list(slot).expect("C_GetMechanismList");
    let want = [
        MechanismType::RSA_PKCS_KEY_PAIR_GEN,
        MechanismType::RSA_PKCS,
        MechanismType::SHA256_RSA_PKCS,
        MechanismType::SHA384_RSA_PKCS,
        MechanismType::SHA512_RSA_PKCS,
        MechanismType::RSA_PKCS_PSS,
        MechanismType::SHA256_RSA_PKCS_PSS,
        MechanismType::SHA384_RSA_PKCS_PSS,
        MechanismType::SHA512_RSA_PKCS_PSS,
        MechanismType::RSA_PKCS_OAEP,
        MechanismType::ECC_KEY_PAIR_GEN,
        MechanismType::ECDSA,
        MechanismType::ECDSA_SHA256,
        MechanismType::ECDSA_SHA384,
        MechanismType::ECDSA_SHA512,
        MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
        MechanismType::EDDSA,
        MechanismType::AES_KEY_GEN,
        MechanismType::AES_GCM,
        MechanismType::AES_CBC_PAD,
        MechanismType::GENERIC_SECRET_KEY_GEN,
        MechanismType::SHA1,
        MechanismType::SHA256,
        MechanismType::SHA384,
        MechanismType::SHA512,
    ];
    for m in want {
        assert!(list.contains(&m), "{m} is in C_GetMechanismList");
    }
    // The spare slot's blank token lists the same mechanisms (PKCS#11 lets it; pkcs11-tool
    // reads them before C_InitToken).
    let _ = p
        .get_mechanism_list(empty_slot(p))
        .expect("mechanisms of the blank token");

    let rsa = p
        .get_mechanism_info(slot, MechanismType::RSA_PKCS_KEY_PAIR_GEN)
        .unwrap();
    assert!(rsa.generate_key_pair());
    assert!(
        rsa.min_key_size() <= 2048 && rsa.max_key_size() >= 4096,
        "RSA 2048..4096 bits"
    );
    let sign = p
        .get_mechanism_info(slot, MechanismType::SHA256_RSA_PKCS_PSS)
        .unwrap();
    assert!(sign.sign() && sign.verify() && !sign.encrypt());
    let oaep = p
        .get_mechanism_info(slot, MechanismType::RSA_PKCS_OAEP)
        .unwrap();
    assert!(oaep.encrypt() && oaep.decrypt());
    let ec = p
        .get_mechanism_info(slot, MechanismType::ECC_KEY_PAIR_GEN)
        .unwrap();
    assert!(ec.generate_key_pair());
    assert!(
        ec.min_key_size() <= 256 && ec.max_key_size() >= 521,
        "P-256..P-521 in bits"
    );
    assert!(ec.ec_from_oid() && ec.ec_uncompressed());
    let ecdsa = p.get_mechanism_info(slot, MechanismType::ECDSA).unwrap();
    assert!(ecdsa.sign() && ecdsa.verify());
    let aes = p
        .get_mechanism_info(slot, MechanismType::AES_KEY_GEN)
        .unwrap();
    assert!(aes.generate());
    assert!(
        aes.min_key_size() <= 16 && aes.max_key_size() >= 32,
        "AES sizes in bytes"
    );
    let gcm = p.get_mechanism_info(slot, MechanismType::AES_GCM).unwrap();
    assert!(gcm.encrypt() && gcm.decrypt());
    let sha = p.get_mechanism_info(slot, MechanismType::SHA256).unwrap();
    assert!(sha.digest());

    // A mechanism the token does not have (single DES, withheld by the default `[policy]`).
    expect_rv(
        p.get_mechanism_info(slot, MechanismType::DES_CBC_PAD),
        RvError::MechanismInvalid,
    );
}

#[test]
fn init_token_creates_slot_and_label_is_unique() {
    let _serial = serial();
    let p = ctx();
    let before = p.get_all_slots().unwrap().len();
    let slot = new_token_no_user_pin(p, "inittok");
    let after = p.get_all_slots().unwrap();
    assert_eq!(after.len(), before + 1, "a new spare slot appears");
    assert!(
        after.contains(&slot),
        "the slot keeps its id as the new token's slot"
    );
    assert_eq!(slot_by_label(p, "inittok"), Some(slot));

    // Label taken: a second token with the same label is refused, and no slot is used up.
    let _g = p.get_all_slots().unwrap();
    let spare = empty_slot(p);
    let r = p.init_token(spare, &pin(SO_PIN), "inittok");
    assert!(r.is_err(), "duplicate token label must be refused");
    assert!(!p.get_token_info(spare).unwrap().token_initialized());

    // Re-initialising an existing token needs its SO PIN.
    expect_rv(
        p.init_token(slot, &pin("wrong-so-pin"), "inittok"),
        RvError::PinIncorrect,
    );

    // Re-initialising with the right SO PIN wipes its objects and keeps the slot.
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    s.init_pin(&pin(USER_PIN)).unwrap();
    s.logout().unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    gen_aes(&s, 16, "wiped");
    // Sessions open on the token → CKR_SESSION_EXISTS.
    expect_rv(
        p.init_token(slot, &pin(SO_PIN), "inittok"),
        RvError::SessionExists,
    );
    drop(s);
    p.init_token(slot, &pin(SO_PIN), "inittok-renamed")
        .expect("re-initialise");
    assert_eq!(p.get_token_info(slot).unwrap().label(), "inittok-renamed");
    assert!(!p.get_token_info(slot).unwrap().user_pin_initialized());
    let s = p.open_rw_session(slot).unwrap();
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    s.init_pin(&pin(USER_PIN)).unwrap();
    s.logout().unwrap();
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert!(
        find_by_label(&s, "wiped").is_empty(),
        "C_InitToken destroyed the objects"
    );
}

#[test]
fn pins_login_logout() {
    let _serial = serial();
    let p = ctx();
    let slot = new_token_no_user_pin(p, "pins");
    let s = p.open_rw_session(slot).unwrap();

    // No user PIN yet.
    expect_rv(
        s.login(UserType::User, Some(&pin(USER_PIN))),
        RvError::UserPinNotInitialized,
    );
    // C_InitPIN needs the SO.
    expect_rv(s.init_pin(&pin(USER_PIN)), RvError::UserNotLoggedIn);
    expect_rv(s.logout(), RvError::UserNotLoggedIn);

    expect_rv(
        s.login(UserType::So, Some(&pin("nope-nope"))),
        RvError::PinIncorrect,
    );
    s.login(UserType::So, Some(&pin(SO_PIN))).expect("SO login");
    assert_eq!(
        s.get_session_info().unwrap().session_state(),
        SessionState::RwSecurityOfficer
    );
    expect_rv(
        s.login(UserType::So, Some(&pin(SO_PIN))),
        RvError::UserAlreadyLoggedIn,
    );
    expect_rv(
        s.login(UserType::User, Some(&pin(USER_PIN))),
        RvError::UserAnotherAlreadyLoggedIn,
    );
    // PIN length limits (min_pin_len = 4).
    expect_rv(s.init_pin(&pin("123")), RvError::PinLenRange);
    s.init_pin(&pin(USER_PIN)).expect("C_InitPIN");
    // The SO may change the SO PIN.
    s.set_pin(&pin(SO_PIN), &pin("so-pin-2222"))
        .expect("C_SetPIN(SO)");
    s.logout().expect("C_Logout");
    assert_eq!(
        s.get_session_info().unwrap().session_state(),
        SessionState::RwPublic
    );
    expect_rv(
        s.login(UserType::So, Some(&pin(SO_PIN))),
        RvError::PinIncorrect,
    );
    s.login(UserType::So, Some(&pin("so-pin-2222"))).unwrap();
    s.set_pin(&pin("so-pin-2222"), &pin(SO_PIN)).unwrap();
    s.logout().unwrap();

    s.login(UserType::User, Some(&pin(USER_PIN)))
        .expect("user login");
    assert_eq!(
        s.get_session_info().unwrap().session_state(),
        SessionState::RwUser
    );
    expect_rv(
        s.login(UserType::User, Some(&pin(USER_PIN))),
        RvError::UserAlreadyLoggedIn,
    );
    expect_rv(
        s.login(UserType::So, Some(&pin(SO_PIN))),
        RvError::UserAnotherAlreadyLoggedIn,
    );
    // A key made before the PIN change must still work after it (the token key is re-wrapped,
    // not re-made).
    let k = gen_aes(&s, 32, "pin-change-key");
    // C_SetPIN as user: wrong old PIN, bad length, then a real change.
    expect_rv(
        s.set_pin(&pin("wrong-old"), &pin("new-user-pin")),
        RvError::PinIncorrect,
    );
    expect_rv(s.set_pin(&pin(USER_PIN), &pin("abc")), RvError::PinLenRange);
    s.set_pin(&pin(USER_PIN), &pin("new-user-pin"))
        .expect("C_SetPIN(user)");
    s.logout().unwrap();
    expect_rv(
        s.login(UserType::User, Some(&pin(USER_PIN))),
        RvError::PinIncorrect,
    );
    s.login(UserType::User, Some(&pin("new-user-pin")))
        .expect("login with new PIN");
    let mut iv = [7u8; 16];
    iv[0] = 1;
    let ct = s
        .encrypt(
            &cryptoki::mechanism::Mechanism::AesCbcPad(iv),
            k,
            b"still usable",
        )
        .expect("key survives C_SetPIN");
    let pt = s
        .decrypt(&cryptoki::mechanism::Mechanism::AesCbcPad(iv), k, &ct)
        .unwrap();
    assert_eq!(pt, b"still usable");
    // Login state is per token, shared by all sessions of the application.
    let s2 = p.open_ro_session(slot).unwrap();
    assert_eq!(
        s2.get_session_info().unwrap().session_state(),
        SessionState::RoUser
    );
    s2.logout().expect("logout from another session");
    assert_eq!(
        s.get_session_info().unwrap().session_state(),
        SessionState::RwPublic
    );
}

#[test]
fn pin_lockout_and_unlock() {
    let _serial = serial();
    let p = ctx();
    let slot = new_token(p, "lockout");
    let s = p.open_rw_session(slot).unwrap();

    for i in 0..MAX_PIN_FAILURES - 1 {
        expect_rv(
            s.login(UserType::User, Some(&pin("bad-pin!"))),
            RvError::PinIncorrect,
        );
        let t = p.get_token_info(slot).unwrap();
        assert!(
            t.user_pin_count_low() || t.user_pin_final_try(),
            "CKF_USER_PIN_COUNT_LOW after {} failure(s)",
            i + 1
        );
        assert!(!t.user_pin_locked());
    }
    assert!(
        p.get_token_info(slot).unwrap().user_pin_final_try(),
        "CKF_USER_PIN_FINAL_TRY"
    );
    // The last allowed failure locks the PIN; the right PIN then no longer works.
    expect_rv_in(
        s.login(UserType::User, Some(&pin("bad-pin!"))),
        &[RvError::PinIncorrect, RvError::PinLocked],
    );
    assert!(
        p.get_token_info(slot).unwrap().user_pin_locked(),
        "CKF_USER_PIN_LOCKED"
    );
    expect_rv(
        s.login(UserType::User, Some(&pin(USER_PIN))),
        RvError::PinLocked,
    );
    expect_rv(
        s.login(UserType::User, Some(&pin("bad-pin!"))),
        RvError::PinLocked,
    );

    // The SO's C_InitPIN unlocks and resets the counter.
    s.login(UserType::So, Some(&pin(SO_PIN))).unwrap();
    s.init_pin(&pin(USER_PIN)).unwrap();
    s.logout().unwrap();
    let t = p.get_token_info(slot).unwrap();
    assert!(!t.user_pin_locked() && !t.user_pin_count_low() && !t.user_pin_final_try());
    s.login(UserType::User, Some(&pin(USER_PIN)))
        .expect("unlocked");
    s.logout().unwrap();

    // A successful login resets the failure count.
    expect_rv(
        s.login(UserType::User, Some(&pin("bad-pin!"))),
        RvError::PinIncorrect,
    );
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    s.logout().unwrap();
    assert!(!p.get_token_info(slot).unwrap().user_pin_count_low());

    // The lock lives in the database: it is also the SO's (separate counter).
    for _ in 0..MAX_PIN_FAILURES {
        let _ = s.login(UserType::So, Some(&pin("bad-so-pin")));
    }
    assert!(
        p.get_token_info(slot).unwrap().so_pin_locked(),
        "CKF_SO_PIN_LOCKED"
    );
    expect_rv(
        s.login(UserType::So, Some(&pin(SO_PIN))),
        RvError::PinLocked,
    );
    // The user is unaffected.
    s.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
}

#[test]
fn sessions_open_close_info() {
    let _serial = serial();
    let p = ctx();
    let slot = new_token(p, "sessions");
    let ro = p.open_ro_session(slot).expect("R/O session");
    let rw = p.open_rw_session(slot).expect("R/W session");
    let info = ro.get_session_info().unwrap();
    assert_eq!(info.slot_id(), slot);
    assert!(!info.read_write());
    assert_eq!(info.session_state(), SessionState::RoPublic);
    let info = rw.get_session_info().unwrap();
    assert!(info.read_write());
    assert_eq!(info.session_state(), SessionState::RwPublic);
    assert_eq!(p.get_token_info(slot).unwrap().session_count(), Some(2));
    assert_eq!(p.get_token_info(slot).unwrap().rw_session_count(), Some(1));

    // SO login with an R/O session open → CKR_SESSION_READ_ONLY_EXISTS.
    expect_rv(
        rw.login(UserType::So, Some(&pin(SO_PIN))),
        RvError::SessionReadOnlyExists,
    );
    // SO login from the R/O session itself is refused too.
    expect_rv(
        ro.login(UserType::So, Some(&pin(SO_PIN))),
        RvError::SessionReadOnlyExists,
    );
    drop(ro);
    rw.login(UserType::So, Some(&pin(SO_PIN)))
        .expect("SO login with only R/W sessions");
    // While the SO is logged in, no R/O session may be opened.
    expect_rv(p.open_ro_session(slot), RvError::SessionReadWriteSoExists);
    rw.logout().unwrap();

    // Object creation in an R/O session: token objects → CKR_SESSION_READ_ONLY.
    let ro = p.open_ro_session(slot).unwrap();
    ro.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    assert_eq!(
        ro.get_session_info().unwrap().session_state(),
        SessionState::RoUser
    );
    let tmpl = |token: bool| {
        vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(token),
            Attribute::Value(vec![0x11; 16]),
            Attribute::Label(b"ro-key".to_vec()),
        ]
    };
    expect_rv(ro.create_object(&tmpl(true)), RvError::SessionReadOnly);
    expect_rv(
        ro.generate_key(
            &cryptoki::mechanism::Mechanism::AesKeyGen,
            &[Attribute::Token(true), Attribute::ValueLen(16.into())],
        ),
        RvError::SessionReadOnly,
    );
    // A token object made in a R/W session can't be changed or destroyed from an R/O one.
    let k = rw.create_object(&tmpl(true)).expect("create in R/W");
    expect_rv(
        ro.update_attributes(k, &[Attribute::Label(b"x".to_vec())]),
        RvError::SessionReadOnly,
    );
    expect_rv(ro.destroy_object(k), RvError::SessionReadOnly);
    rw.destroy_object(k).unwrap();
    drop(ro);
    drop(rw);

    // C_CloseAllSessions invalidates every handle on the slot and ends the login.
    let a = p.open_rw_session(slot).unwrap();
    let b = p.open_ro_session(slot).unwrap();
    a.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    // SAFETY: plain call through the module's C ABI with a valid slot id.
    let rv = unsafe { raw().C_CloseAllSessions(slot.id()) };
    assert_eq!(rv, cryptoki_sys::CKR_OK, "C_CloseAllSessions");
    expect_rv(a.get_session_info(), RvError::SessionHandleInvalid);
    expect_rv(b.get_session_info(), RvError::SessionHandleInvalid);
    assert_eq!(p.get_token_info(slot).unwrap().session_count(), Some(0));
    let c = p.open_ro_session(slot).unwrap();
    assert_eq!(
        c.get_session_info().unwrap().session_state(),
        SessionState::RoPublic,
        "closing the last session logs out"
    );
    // Closing a closed session → CKR_SESSION_HANDLE_INVALID (cryptoki's drop ignores it).
    expect_rv(a.close(), RvError::SessionHandleInvalid);
    std::mem::forget(b);
}

#[test]
fn session_objects_in_ro_session() {
    let _serial = serial();
    // PKCS#11 §4.2: R/O sessions may create, modify and destroy *session* objects.
    let p = ctx();
    let slot = new_token(p, "ro-session-objects");
    let ro = p.open_ro_session(slot).unwrap();
    ro.login(UserType::User, Some(&pin(USER_PIN))).unwrap();
    let k = ro
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Value(vec![0x22; 16]),
            Attribute::Label(b"session-key".to_vec()),
        ])
        .expect("session object in R/O session");
    ro.update_attributes(k, &[Attribute::Label(b"session-key-2".to_vec())])
        .unwrap();
    assert_eq!(find_by_label(&ro, "session-key-2"), vec![k]);
    // Session objects die with their session.
    let other = p.open_ro_session(slot).unwrap();
    drop(ro);
    assert!(find_by_label(&other, "session-key-2").is_empty());
}

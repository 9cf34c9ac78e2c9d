//! Tokens and sessions: a new token per test, user sessions, and the `CK_RV` of a failed call.

use std::fmt::Debug;
use std::sync::Mutex;

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::{SO_PIN, USER_PIN};

pub fn pin(s: &str) -> AuthPin {
    AuthPin::from(s)
}

/// Serialises token creation: two tests must not both pick the same empty slot.
static TOKEN_LOCK: Mutex<()> = Mutex::new(());

/// The slot holding the uninitialised token (`CKF_TOKEN_PRESENT`, not `CKF_TOKEN_INITIALIZED`).
pub fn empty_slot(p: &Pkcs11) -> Slot {
    let slots = p.get_slots_with_token().expect("C_GetSlotList");
    let empty: Vec<Slot> = slots
        .into_iter()
        .filter(|s| match p.get_token_info(*s) {
            Ok(info) => !info.token_initialized(),
            // Another test of this process may delete a token between `C_GetSlotList` and
            // `C_GetTokenInfo`; the spec's answer for that slot is CKR_TOKEN_NOT_PRESENT.
            Err(Error::Pkcs11(RvError::TokenNotPresent, _)) => false,
            Err(e) => panic!("C_GetTokenInfo: {e}"),
        })
        .collect();
    assert_eq!(
        empty.len(),
        1,
        "exactly one slot holds an uninitialised token"
    );
    empty[0]
}

/// The slot whose token carries `label`.
pub fn slot_by_label(p: &Pkcs11, label: &str) -> Option<Slot> {
    p.get_slots_with_token()
        .expect("C_GetSlotList")
        .into_iter()
        .find(|s| {
            p.get_token_info(*s)
                .map(|t| t.label() == label)
                .unwrap_or(false)
        })
}

/// Initialises a new token `label` (SO PIN [`SO_PIN`]) on the empty slot, without a user PIN.
/// Another process (the admin command in some tests) may take the empty slot between
/// `C_GetSlotList` and `C_InitToken`; the module then refuses with `CKR_ARGUMENTS_BAD` and the
/// slots are listed again.
pub fn new_token_no_user_pin(p: &Pkcs11, label: &str) -> Slot {
    let _g = TOKEN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let slot = empty_slot(p);
        match p.init_token(slot, &pin(SO_PIN), label) {
            Ok(()) => return slot,
            Err(Error::Pkcs11(RvError::ArgumentsBad, _))
                if attempt < 10 && slot_by_label(p, label).is_none() =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
            }
            Err(e) => panic!("C_InitToken({label}): {e}"),
        }
    }
}

/// Initialises a new token `label` with SO PIN [`SO_PIN`] and user PIN [`USER_PIN`].
pub fn new_token(p: &Pkcs11, label: &str) -> Slot {
    let slot = new_token_no_user_pin(p, label);
    let s = p.open_rw_session(slot).expect("C_OpenSession");
    s.login(UserType::So, Some(&pin(SO_PIN)))
        .expect("C_Login(SO)");
    s.init_pin(&pin(USER_PIN)).expect("C_InitPIN");
    s.logout().expect("C_Logout");
    slot
}

/// An R/W session logged in as the user.
pub fn user_session(p: &Pkcs11, slot: Slot) -> Session {
    let s = p.open_rw_session(slot).expect("C_OpenSession");
    match s.login(UserType::User, Some(&pin(USER_PIN))) {
        Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("C_Login(USER): {e}"),
    }
    s
}

/// The `CK_RV` of a failed call; panics on success or on a non-PKCS#11 error.
#[track_caller]
pub fn rv_of<T: Debug>(r: cryptoki::error::Result<T>) -> RvError {
    match r {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// Asserts that `r` failed with `want`.
#[track_caller]
pub fn expect_rv<T: Debug>(r: cryptoki::error::Result<T>, want: RvError) {
    let got = rv_of(r);
    assert_eq!(got, want, "expected CKR {want:?}, got {got:?}");
}

/// Asserts that `r` failed with one of `wants` (where the spec allows more than one code).
#[track_caller]
pub fn expect_rv_in<T: Debug>(r: cryptoki::error::Result<T>, wants: &[RvError]) {
    let got = rv_of(r);
    assert!(
        wants.contains(&got),
        "expected one of {wants:?}, got {got:?}"
    );
}

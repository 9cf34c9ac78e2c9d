//! Target `session`: a fuzzed sequence of session and login calls — `C_OpenSession` (any flags,
//! slot), `C_CloseSession`, `C_CloseAllSessions`, `C_GetSessionInfo`, `C_Login` / `C_Logout`
//! (user, SO, context-specific or any user type; right, wrong, empty or NULL PINs),
//! `C_SessionCancel`, `C_GetOperationState`, `C_GenerateRandom` / `C_SeedRandom`, slot and token
//! information, and operations left active across those calls (`C_FindObjectsInit`,
//! `C_SignInit`). The PINs themselves are never changed (no `C_InitPIN`, `C_SetPIN`,
//! `C_InitToken`), so that the next input can log in again; after each input the user is
//! logged in again on a session kept open for that.

use std::sync::Mutex;

use cryptoki_sys::*;
use sqlhsm::ffi;

use crate::fixture::{fixture, login, Fixture, SO_PIN, USER_PIN};
use crate::input::Reader;
use crate::mem::{field, Arena};
use crate::{check, out, tmpl};

/// Steps (modulo [`STEPS`]).
pub const STEP_OPEN: u8 = 0;
pub const STEP_CLOSE: u8 = 1;
pub const STEP_CLOSE_ALL: u8 = 2;
pub const STEP_INFO: u8 = 3;
pub const STEP_LOGIN: u8 = 4;
pub const STEP_LOGOUT: u8 = 5;
pub const STEP_FIND: u8 = 6;
pub const STEP_SIGN: u8 = 7;
pub const STEP_RANDOM: u8 = 8;
pub const STEP_CANCEL: u8 = 9;
pub const STEP_OPERATION_STATE: u8 = 10;
pub const STEP_SLOT: u8 = 11;
const STEPS: u8 = 12;

const OPEN_FLAGS: &[CK_FLAGS] = &[
    CKF_SERIAL_SESSION | CKF_RW_SESSION,
    CKF_SERIAL_SESSION,
    CKF_RW_SESSION,
    0,
    CKF_SERIAL_SESSION | CKF_RW_SESSION | 0x100,
];
const USER_TYPES: &[CK_USER_TYPE] = &[CKU_USER, CKU_SO, CKU_CONTEXT_SPECIFIC, CKU_USER, 7];

/// The session that holds the user's login between inputs once an input has closed the
/// fixture's anchor (or logged out).
static HOLDER: Mutex<Option<CK_SESSION_HANDLE>> = Mutex::new(None);

fn slot(r: &mut Reader, fx: &Fixture) -> CK_SLOT_ID {
    match r.u8() % 8 {
        0 => fx.slot + 1,
        1 => r.ulong(),
        _ => fx.slot,
    }
}

/// One of this input's sessions, the anchor, or a handle that is none.
fn pick(r: &mut Reader, fx: &Fixture, mine: &[CK_SESSION_HANDLE]) -> CK_SESSION_HANDLE {
    let i = r.u8();
    match i {
        0..=223 if !mine.is_empty() => mine[usize::from(i) % mine.len()],
        224..=231 => fx.anchor,
        _ => r.choose(&[CK_INVALID_HANDLE, CK_ULONG::MAX, 0x7fff_ffff, 1]),
    }
}

fn state(session: CK_SESSION_HANDLE) -> Option<CK_STATE> {
    let mut info = CK_SESSION_INFO {
        slotID: 0,
        state: 0,
        flags: 0,
        ulDeviceError: 0,
    };
    // SAFETY: `info` is a live output location.
    let rv = check("C_GetSessionInfo", unsafe {
        ffi::C_GetSessionInfo(session, &mut info)
    });
    (rv == CKR_OK).then_some(info.state)
}

fn step(r: &mut Reader, arena: &mut Arena, fx: &Fixture, mine: &mut Vec<CK_SESSION_HANDLE>) {
    match r.u8() % STEPS {
        STEP_OPEN => {
            let flags = r.choose(OPEN_FLAGS);
            let s = slot(r, fx);
            let out = if r.one_in(32) {
                std::ptr::null_mut()
            } else {
                arena.keep(CK_INVALID_HANDLE)
            };
            // SAFETY: `out` is NULL or live; no application pointer or callback.
            let rv = check("C_OpenSession", unsafe {
                ffi::C_OpenSession(s, flags, std::ptr::null_mut(), None, out)
            });
            if rv == CKR_OK {
                assert!(
                    !out.is_null(),
                    "C_OpenSession answered CKR_OK with a NULL handle pointer"
                );
                // SAFETY: live.
                mine.push(unsafe { *out });
            }
        }
        STEP_CLOSE => {
            let h = pick(r, fx, mine);
            // SAFETY: no pointers.
            if check("C_CloseSession", unsafe { ffi::C_CloseSession(h) }) == CKR_OK {
                mine.retain(|&m| m != h);
                assert_eq!(
                    state(h),
                    None,
                    "session {h} still answers after C_CloseSession"
                );
            }
        }
        STEP_CLOSE_ALL => {
            let s = slot(r, fx);
            // SAFETY: no pointers.
            if check("C_CloseAllSessions", unsafe { ffi::C_CloseAllSessions(s) }) == CKR_OK
                && s == fx.slot
            {
                for &h in mine.iter() {
                    assert_eq!(
                        state(h),
                        None,
                        "session {h} still answers after C_CloseAllSessions"
                    );
                }
                mine.clear();
            }
        }
        STEP_INFO => {
            let h = pick(r, fx, mine);
            if r.one_in(16) {
                // SAFETY: a NULL output pointer, refused.
                check("C_GetSessionInfo", unsafe {
                    ffi::C_GetSessionInfo(h, std::ptr::null_mut())
                });
            } else {
                state(h);
            }
        }
        STEP_LOGIN => {
            let h = pick(r, fx, mine);
            let user = r.choose(USER_TYPES);
            let good: &[u8] = if user == CKU_SO { SO_PIN } else { USER_PIN };
            let pin = match r.u8() % 4 {
                0 => field(r, arena, 32, Some(good)),
                _ => crate::mem::Field::of(arena, good),
            };
            // SAFETY: the PIN is NULL or live for its stated length (or refused unread).
            check("C_Login", unsafe {
                ffi::C_Login(h, user, pin.ptr, pin.len)
            });
        }
        STEP_LOGOUT => {
            let h = pick(r, fx, mine);
            // SAFETY: no pointers.
            check("C_Logout", unsafe { ffi::C_Logout(h) });
        }
        STEP_FIND => {
            let h = pick(r, fx, mine);
            let entries = tmpl::entries(r, arena, fx, 4);
            let (t, n) = tmpl::lay_out(r, arena, &entries);
            // SAFETY: as in `attributes`.
            check("C_FindObjectsInit", unsafe {
                ffi::C_FindObjectsInit(h, t, n)
            });
            if r.bool() {
                let found = arena.array(vec![CK_INVALID_HANDLE; 4]);
                let count = arena.keep(0 as CK_ULONG);
                // SAFETY: room for 4 handles; `count` is live.
                check("C_FindObjects", unsafe {
                    ffi::C_FindObjects(h, found, 4, count)
                });
            }
            if r.bool() {
                // SAFETY: no pointers.
                check("C_FindObjectsFinal", unsafe { ffi::C_FindObjectsFinal(h) });
            }
        }
        STEP_SIGN => {
            let h = pick(r, fx, mine);
            let mut m = CK_MECHANISM {
                mechanism: CKM_SHA256_HMAC,
                pParameter: std::ptr::null_mut(),
                ulParameterLen: 0,
            };
            let key = fx.object("hmac32-token");
            // SAFETY: a live mechanism.
            check("C_SignInit", unsafe { ffi::C_SignInit(h, &mut m, key) });
            if r.bool() {
                let data = r.blob(64);
                let d = crate::mem::Field::of(arena, &data);
                out::call(r, arena, "C_Sign", None, |p, l| {
                    // SAFETY: live buffers of their stated lengths.
                    unsafe { ffi::C_Sign(h, d.ptr, d.len, p, l) }
                });
            }
        }
        STEP_RANDOM => {
            let h = pick(r, fx, mine);
            let f = field(r, arena, 256, None);
            if r.bool() {
                // SAFETY: the seed is NULL or live for its stated length (or refused unread).
                check("C_SeedRandom", unsafe {
                    ffi::C_SeedRandom(h, f.ptr, f.len)
                });
            } else {
                // SAFETY: the buffer is NULL or live for its stated length (or refused unread).
                check("C_GenerateRandom", unsafe {
                    ffi::C_GenerateRandom(h, f.ptr, f.len)
                });
            }
        }
        STEP_CANCEL => {
            let h = pick(r, fx, mine);
            let flags = r.choose(&[
                CKF_FIND_OBJECTS,
                CKF_SIGN,
                CKF_FIND_OBJECTS | CKF_SIGN,
                0,
                CK_ULONG::MAX,
            ]);
            // SAFETY: no pointers.
            check("C_SessionCancel", unsafe { ffi::C_SessionCancel(h, flags) });
        }
        STEP_OPERATION_STATE => {
            let h = pick(r, fx, mine);
            out::call(r, arena, "C_GetOperationState", None, |p, l| {
                // SAFETY: the output is NULL or live for its stated length.
                unsafe { ffi::C_GetOperationState(h, p, l) }
            });
        }
        _ => {
            let s = slot(r, fx);
            // SAFETY: all-zero is a valid value of these plain C structures.
            let (mut slot_info, mut token_info): (CK_SLOT_INFO, CK_TOKEN_INFO) =
                unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
            // SAFETY: live output locations.
            unsafe {
                check("C_GetSlotInfo", ffi::C_GetSlotInfo(s, &mut slot_info));
                check("C_GetTokenInfo", ffi::C_GetTokenInfo(s, &mut token_info));
            }
            let mut info = CK_MECHANISM_INFO {
                ulMinKeySize: 0,
                ulMaxKeySize: 0,
                flags: 0,
            };
            let m = if r.bool() {
                fx.mechanisms[usize::from(r.u8()) % fx.mechanisms.len()].0
            } else {
                r.ulong()
            };
            // SAFETY: a live output location.
            check("C_GetMechanismInfo", unsafe {
                ffi::C_GetMechanismInfo(s, m, &mut info)
            });
        }
    }
}

/// Logs the user in again, on a session kept open for it, whatever the input did.
fn restore_login(fx: &Fixture) {
    let mut holder = HOLDER.lock().unwrap_or_else(|p| p.into_inner());
    let keep = fx.open_session();
    match state(keep) {
        Some(CKS_RW_USER_FUNCTIONS) => {}
        Some(CKS_RW_SO_FUNCTIONS) => {
            // SAFETY: no pointers.
            assert_eq!(unsafe { ffi::C_Logout(keep) }, CKR_OK, "C_Logout (restore)");
            login(keep, CKU_USER, USER_PIN);
        }
        _ => login(keep, CKU_USER, USER_PIN),
    }
    if let Some(old) = holder.replace(keep) {
        // SAFETY: no pointers. It may be gone already (C_CloseAllSessions).
        check("C_CloseSession", unsafe { ffi::C_CloseSession(old) });
    }
}

/// One fuzzing iteration.
pub fn run(data: &[u8]) {
    let fx = fixture();
    let mut r = Reader::new(data);
    let mut arena = Arena::default();
    let mut mine = vec![fx.open_session()];
    let steps = 1 + r.u8() % 16;
    for _ in 0..steps {
        step(&mut r, &mut arena, fx, &mut mine);
        if r.is_empty() {
            break;
        }
    }
    for h in mine {
        // SAFETY: no pointers.
        check("C_CloseSession", unsafe { ffi::C_CloseSession(h) });
    }
    restore_login(fx);
}

//! Target `templates`: the object-making functions with fuzzed templates — `C_CreateObject`,
//! `C_GenerateKey`, `C_GenerateKeyPair`, `C_CopyObject` (of a fixed object), `C_WrapKey`,
//! `C_UnwrapKey` (of fuzzed bytes, or of what `C_WrapKey` just made) and `C_DeriveKey` (ECDH with
//! a real peer point, or anything else) — then an attribute read of what was made, and its
//! destruction. Objects are session objects unless the step allows token objects, in which case
//! `CKA_DESTROYABLE` is taken out of the template so that they can be destroyed again; RSA key
//! generation is held at 2048 bits ([`tmpl::small_rsa`]).

use cryptoki_sys::*;
use sqlhsm::ffi;

use crate::fixture::{fixture, Fixture};
use crate::input::Reader;
use crate::mech::mechanism;
use crate::mechanisms::key;
use crate::mem::{field, Arena};
use crate::tmpl::{self, Entry};
use crate::{attributes, check, out};

/// Steps (modulo [`STEPS`]).
pub const STEP_CREATE: u8 = 0;
pub const STEP_GENERATE: u8 = 1;
pub const STEP_GENERATE_PAIR: u8 = 2;
pub const STEP_COPY: u8 = 3;
pub const STEP_WRAP: u8 = 4;
pub const STEP_UNWRAP: u8 = 5;
pub const STEP_WRAP_UNWRAP: u8 = 6;
pub const STEP_DERIVE: u8 = 7;
const STEPS: u8 = 8;

/// The fuzzed template of one step, made safe to clean up (see the module doc). The first byte
/// says whether token objects are allowed (1 in 4).
fn template(
    r: &mut Reader,
    arena: &mut Arena,
    fx: &Fixture,
    allow_token: bool,
    copy: bool,
) -> (*mut CK_ATTRIBUTE, CK_ULONG) {
    let mut entries: Vec<Entry> = tmpl::entries(r, arena, fx, 14);
    if allow_token {
        tmpl::destroyable(&mut entries);
    } else {
        tmpl::session_only(&mut entries, arena, copy);
    }
    tmpl::small_rsa(&mut entries, arena);
    tmpl::lay_out(r, arena, &entries)
}

fn allow_token(r: &mut Reader) -> bool {
    r.one_in(4)
}

/// A handle output location, now and then NULL (the call must then fail and make nothing).
fn handle_out(r: &mut Reader, arena: &mut Arena) -> *mut CK_OBJECT_HANDLE {
    if r.one_in(32) {
        std::ptr::null_mut()
    } else {
        arena.keep(CK_INVALID_HANDLE)
    }
}

/// Records what a call made (when it says it made something).
fn made(
    what: &str,
    rv: CK_RV,
    outs: &[*mut CK_OBJECT_HANDLE],
    created: &mut Vec<CK_OBJECT_HANDLE>,
) {
    check(what, rv);
    if outs.iter().any(|p| p.is_null()) {
        assert_ne!(
            rv, CKR_OK,
            "{what} answered CKR_OK with a NULL handle pointer"
        );
        return;
    }
    if rv == CKR_OK {
        for &p in outs {
            // SAFETY: a live location in the arena.
            let h = unsafe { *p };
            assert_ne!(
                h, CK_INVALID_HANDLE,
                "{what} answered CKR_OK without a handle"
            );
            created.push(h);
        }
    }
}

fn step(
    r: &mut Reader,
    arena: &mut Arena,
    fx: &Fixture,
    session: CK_SESSION_HANDLE,
    created: &mut Vec<CK_OBJECT_HANDLE>,
) {
    match r.u8() % STEPS {
        STEP_CREATE => {
            let tok = allow_token(r);
            let (t, n) = template(r, arena, fx, tok, false);
            let h = handle_out(r, arena);
            // SAFETY: template and handle are NULL or live (see `mem`).
            let rv = unsafe { ffi::C_CreateObject(session, t, n, h) };
            made("C_CreateObject", rv, &[h], created);
        }
        STEP_GENERATE => {
            let m = mechanism(r, arena, fx, CKF_GENERATE);
            let tok = allow_token(r);
            let (t, n) = template(r, arena, fx, tok, false);
            let h = handle_out(r, arena);
            // SAFETY: as above.
            let rv = unsafe { ffi::C_GenerateKey(session, m.ptr, t, n, h) };
            made("C_GenerateKey", rv, &[h], created);
        }
        STEP_GENERATE_PAIR => {
            let m = mechanism(r, arena, fx, CKF_GENERATE_KEY_PAIR);
            let tok = allow_token(r);
            let (tp, np) = template(r, arena, fx, tok, false);
            let (tq, nq) = template(r, arena, fx, tok, false);
            let hp = handle_out(r, arena);
            let hq = handle_out(r, arena);
            // SAFETY: as above.
            let rv = unsafe { ffi::C_GenerateKeyPair(session, m.ptr, tp, np, tq, nq, hp, hq) };
            made("C_GenerateKeyPair", rv, &[hp, hq], created);
        }
        STEP_COPY => {
            let original = key(r, fx);
            let tok = allow_token(r);
            let (t, n) = template(r, arena, fx, tok, true);
            let h = handle_out(r, arena);
            // SAFETY: as above.
            let rv = unsafe { ffi::C_CopyObject(session, original, t, n, h) };
            made("C_CopyObject", rv, &[h], created);
        }
        STEP_WRAP => {
            wrap(r, arena, fx, session);
        }
        STEP_UNWRAP | STEP_WRAP_UNWRAP => {
            let round_trip = r.one_in(2);
            let (m, wrapping, wrapped) = if round_trip {
                match wrap(r, arena, fx, session) {
                    Some((m, k, bytes)) => (
                        m,
                        crate::mechanisms::partner(fx, k),
                        crate::mem::Field::of(arena, &bytes),
                    ),
                    None => return,
                }
            } else {
                let m = mechanism(r, arena, fx, CKF_UNWRAP).ptr;
                let k = key(r, fx);
                (m, k, field(r, arena, 600, None))
            };
            let tok = allow_token(r);
            let (t, n) = template(r, arena, fx, tok, false);
            let h = handle_out(r, arena);
            // SAFETY: as above; the wrapped bytes are a live buffer of their stated length.
            let rv = unsafe {
                ffi::C_UnwrapKey(session, m, wrapping, wrapped.ptr, wrapped.len, t, n, h)
            };
            made("C_UnwrapKey", rv, &[h], created);
        }
        _ => {
            let m = mechanism(r, arena, fx, CKF_DERIVE);
            let base = key(r, fx);
            let tok = allow_token(r);
            let (t, n) = template(r, arena, fx, tok, false);
            let h = handle_out(r, arena);
            // SAFETY: as above.
            let rv = unsafe { ffi::C_DeriveKey(session, m.ptr, base, t, n, h) };
            made("C_DeriveKey", rv, &[h], created);
        }
    }
}

/// `C_WrapKey` of a fixed key with a fuzzed mechanism; the mechanism, the wrapping key and the
/// wrapped bytes when it worked.
fn wrap(
    r: &mut Reader,
    arena: &mut Arena,
    fx: &Fixture,
    session: CK_SESSION_HANDLE,
) -> Option<(*mut CK_MECHANISM, CK_OBJECT_HANDLE, Vec<u8>)> {
    let m = mechanism(r, arena, fx, CKF_WRAP);
    let wrapping = key(r, fx);
    let target = key(r, fx);
    let o = out::call(r, arena, "C_WrapKey", None, |p, l| {
        // SAFETY: the mechanism is NULL or live; the output is a live buffer of its length.
        unsafe { ffi::C_WrapKey(session, m.ptr, wrapping, target, p, l) }
    });
    o.data.map(|d| (m.ptr, wrapping, d))
}

/// One fuzzing iteration.
pub fn run(data: &[u8]) {
    let fx = fixture();
    let mut r = Reader::new(data);
    let mut arena = Arena::default();
    let session = fx.open_session();
    let mut created = Vec::new();
    let steps = 1 + r.u8() % 3;
    for _ in 0..steps {
        step(&mut r, &mut arena, fx, session, &mut created);
        if r.is_empty() {
            break;
        }
    }
    for &h in &created {
        attributes::get(&mut r, &mut arena, session, h);
    }
    for h in created {
        // SAFETY: no pointers.
        let rv = unsafe { ffi::C_DestroyObject(session, h) };
        check("C_DestroyObject", rv);
    }
    fx.close_session(session);
}

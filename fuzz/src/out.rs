//! Fuzzed output buffers under the two-call convention of PKCS#11 3.0 §5.2, and the checks every
//! answer must pass: a successful call never reports more bytes than the buffer held, a
//! `CKR_BUFFER_TOO_SMALL` reports a length that then suffices, and so does a length query.

use cryptoki_sys::*;

use crate::check;
use crate::input::Reader;
use crate::mem::{Arena, HUGE_LENS};

/// Modes of [`call`].
pub const OUT_QUERY: u8 = 0;
pub const OUT_EXACT: u8 = 1;
pub const OUT_BIG: u8 = 2;
pub const OUT_SHORTER: u8 = 3;
pub const OUT_HUGE: u8 = 4;
pub const OUT_NULL_LEN: u8 = 5;
pub const OUT_IN_PLACE: u8 = 6;
pub const OUT_TWO_CALL: u8 = 7;
const OUT_MODES: u8 = 8;

/// Larger reported lengths are not followed up (no real output is that big).
const FOLLOW_UP_LIMIT: CK_ULONG = 1 << 20;

/// The answer of an output call and, on success into a buffer, the bytes written.
pub struct Output {
    pub rv: CK_RV,
    pub data: Option<Vec<u8>>,
}

/// Calls `f(pOut, pulOutLen)` with a fuzzed output buffer. `in_place` is the input buffer when
/// the function allows the output to overwrite it (`C_Encrypt`, `C_Decrypt` and their parts).
pub fn call(
    r: &mut Reader,
    arena: &mut Arena,
    what: &str,
    in_place: Option<(*mut u8, CK_ULONG)>,
    mut f: impl FnMut(*mut u8, *mut CK_ULONG) -> CK_RV,
) -> Output {
    let mode = r.u8() % OUT_MODES;
    match mode {
        OUT_QUERY | OUT_TWO_CALL => {
            let len = arena.keep(r.ulong());
            let rv = check(what, f(std::ptr::null_mut(), len));
            // SAFETY: `len` is live in the arena.
            let reported = unsafe { *len };
            if mode == OUT_QUERY || rv != CKR_OK || reported > FOLLOW_UP_LIMIT {
                return Output { rv, data: None };
            }
            let out = buffer_call(arena, what, &mut f, reported as usize, reported, None);
            assert_ne!(
                out.rv, CKR_BUFFER_TOO_SMALL,
                "{what}: the length query answered {reported}, which did not suffice"
            );
            out
        }
        OUT_NULL_LEN => {
            let p = arena.zeroed(16);
            Output {
                rv: check(what, f(p, std::ptr::null_mut())),
                data: None,
            }
        }
        OUT_HUGE => {
            let huge = r.choose(HUGE_LENS);
            buffer_call(arena, what, &mut f, 16, huge, None)
        }
        OUT_IN_PLACE if in_place.is_some() => {
            let (p, len) = in_place.unwrap_or((std::ptr::null_mut(), 0));
            buffer_call(arena, what, &mut f, len as usize, len, Some(p))
        }
        OUT_SHORTER => {
            let n = r.len(600);
            let declared = r.len(n) as CK_ULONG;
            buffer_call(arena, what, &mut f, n, declared, None)
        }
        OUT_EXACT => {
            let n = r.len(600);
            buffer_call(arena, what, &mut f, n, n as CK_ULONG, None)
        }
        _ => buffer_call(arena, what, &mut f, 8192, 8192, None),
    }
}

/// One call into a buffer of `size` bytes (or `at`) stated as `declared`, with the follow-up
/// after `CKR_BUFFER_TOO_SMALL`.
fn buffer_call(
    arena: &mut Arena,
    what: &str,
    f: &mut impl FnMut(*mut u8, *mut CK_ULONG) -> CK_RV,
    size: usize,
    declared: CK_ULONG,
    at: Option<*mut u8>,
) -> Output {
    let p = at.unwrap_or_else(|| arena.zeroed(size));
    let len = arena.keep(declared);
    let rv = check(what, f(p, len));
    // SAFETY: `len` is live in the arena.
    let reported = unsafe { *len };
    match rv {
        CKR_OK => {
            assert!(
                reported <= declared,
                "{what}: CKR_OK with {reported} bytes reported into a buffer of {declared}"
            );
            assert!(
                reported as usize <= size,
                "{what}: CKR_OK with {reported} bytes reported into a real buffer of {size}"
            );
            // SAFETY: `p` holds `size` ≥ `reported` bytes.
            let data = unsafe { std::slice::from_raw_parts(p, reported as usize) }.to_vec();
            Output {
                rv,
                data: Some(data),
            }
        }
        CKR_BUFFER_TOO_SMALL => {
            assert!(
                reported > declared,
                "{what}: CKR_BUFFER_TOO_SMALL reporting {reported} bytes for a buffer of {declared}"
            );
            if reported > FOLLOW_UP_LIMIT {
                return Output { rv, data: None };
            }
            let out = buffer_call(arena, what, f, reported as usize, reported, None);
            assert_ne!(
                out.rv, CKR_BUFFER_TOO_SMALL,
                "{what}: CKR_BUFFER_TOO_SMALL reported {reported} bytes, which did not suffice"
            );
            out
        }
        _ => Output { rv, data: None },
    }
}

//! Target `attributes`: `C_GetAttributeValue` with fuzzed request arrays (NULL values for length
//! queries, exact, long, short and absurd buffers, `CK_UNAVAILABLE_INFORMATION` lengths) on the
//! fixed objects of every class, checked against PKCS#11 3.0 §5.7 and then repeated with buffers
//! of exactly the lengths the first call reported (the two-call convention);
//! `C_SetAttributeValue` with fuzzed templates on a copy of a fixed object (so the fixed objects
//! never change), `C_GetObjectSize`, and `C_FindObjects*` with a fuzzed template.

use cryptoki_sys::*;
use sqlhsm::ffi;

use crate::check;
use crate::fixture::{fixture, Fixture};
use crate::input::Reader;
use crate::mechanisms::key;
use crate::mem::{Arena, Field, HUGE_LENS};
use crate::tmpl::{self, lay_out, Entry};

/// Modes of one request entry (modulo [`REQ_MODES`]).
pub const REQ_QUERY: u8 = 0;
pub const REQ_EXACT: u8 = 1;
pub const REQ_BIG: u8 = 2;
pub const REQ_SHORTER: u8 = 3;
pub const REQ_HUGE: u8 = 4;
pub const REQ_UNAVAILABLE: u8 = 5;
const REQ_MODES: u8 = 6;

/// Steps (modulo [`STEPS`]).
pub const STEP_GET: u8 = 0;
pub const STEP_SET_ON_COPY: u8 = 1;
pub const STEP_GET_ON_COPY: u8 = 2;
pub const STEP_SIZE: u8 = 3;
pub const STEP_FIND: u8 = 4;
const STEPS: u8 = 5;

/// The answers after which §5.7 says every `ulValueLen` has been written.
const PER_ENTRY: &[CK_RV] = &[
    CKR_OK,
    CKR_ATTRIBUTE_SENSITIVE,
    CKR_ATTRIBUTE_TYPE_INVALID,
    CKR_BUFFER_TOO_SMALL,
];

struct Request {
    kind: CK_ATTRIBUTE_TYPE,
    field: Field,
    /// What the buffer really holds (`None` for NULL and for lengths the module must refuse).
    capacity: Option<CK_ULONG>,
}

fn request(r: &mut Reader, arena: &mut Arena) -> Request {
    let kind = if r.u8() < 240 {
        r.choose(tmpl::KNOWN)
    } else {
        r.ulong()
    };
    let (field, capacity) = match r.u8() % REQ_MODES {
        REQ_QUERY => (
            Field {
                ptr: std::ptr::null_mut(),
                len: r.ulong(),
            },
            None,
        ),
        REQ_EXACT => {
            let n = r.len(300);
            (
                Field {
                    ptr: arena.zeroed(n),
                    len: n as CK_ULONG,
                },
                Some(n as CK_ULONG),
            )
        }
        REQ_SHORTER => {
            let n = r.len(300);
            let declared = r.len(n) as CK_ULONG;
            (
                Field {
                    ptr: arena.zeroed(n),
                    len: declared,
                },
                Some(declared),
            )
        }
        REQ_HUGE => (
            Field {
                ptr: arena.zeroed(16),
                len: r.choose(HUGE_LENS),
            },
            None,
        ),
        REQ_UNAVAILABLE => (
            Field {
                ptr: arena.zeroed(16),
                len: CK_UNAVAILABLE_INFORMATION,
            },
            Some(0),
        ),
        _ => (
            Field {
                ptr: arena.zeroed(1024),
                len: 1024,
            },
            Some(1024),
        ),
    };
    Request {
        kind,
        field,
        capacity,
    }
}

/// A fuzzed `C_GetAttributeValue` on `object`, checked, then the two-call follow-up.
pub fn get(
    r: &mut Reader,
    arena: &mut Arena,
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
) {
    let n = r.u8() % 10;
    let requests: Vec<Request> = (0..n).map(|_| request(r, arena)).collect();
    let entries: Vec<Entry> = requests
        .iter()
        .map(|q| Entry {
            kind: q.kind,
            field: q.field,
            value: None,
        })
        .collect();
    let (array, count) = lay_out(r, arena, &entries);
    // SAFETY: the array and every value buffer are NULL or live for their stated lengths, or
    // the lengths are ones the module refuses unread.
    let rv = check("C_GetAttributeValue", unsafe {
        ffi::C_GetAttributeValue(session, object, array, count)
    });
    // Only a plain array (the one `lay_out` keeps as is) is read back.
    let plain =
        !array.is_null() && array.is_aligned() && count == requests.len() as CK_ULONG && count > 0;
    if !plain || !PER_ENTRY.contains(&rv) {
        return;
    }
    // SAFETY: `array` is the live, aligned array of `count` entries laid out above.
    let answered: Vec<CK_ULONG> = unsafe { std::slice::from_raw_parts(array, count as usize) }
        .iter()
        .map(|a| a.ulValueLen)
        .collect();
    let mut follow_up = Vec::new();
    for (q, &len) in requests.iter().zip(&answered) {
        if rv == CKR_OK {
            assert_ne!(
                len, CK_UNAVAILABLE_INFORMATION,
                "C_GetAttributeValue answered CKR_OK with attribute {:#x} unavailable",
                q.kind
            );
        }
        if let (Some(cap), true) = (q.capacity, len != CK_UNAVAILABLE_INFORMATION) {
            assert!(
                len <= cap,
                "C_GetAttributeValue reported {len} bytes of {:#x} written into a buffer of {cap}",
                q.kind
            );
        }
        if q.field.ptr.is_null() && len != CK_UNAVAILABLE_INFORMATION && len <= 1 << 20 {
            follow_up.push((q.kind, len));
        }
    }
    if follow_up.is_empty() {
        return;
    }
    // The two-call convention: buffers of exactly the reported lengths must suffice and be
    // filled to exactly those lengths.
    let mut second: Vec<CK_ATTRIBUTE> = follow_up
        .iter()
        .map(|&(kind, len)| CK_ATTRIBUTE {
            type_: kind,
            pValue: arena.zeroed(len as usize).cast(),
            ulValueLen: len,
        })
        .collect();
    // SAFETY: every value buffer holds its stated length.
    let rv2 = check("C_GetAttributeValue", unsafe {
        ffi::C_GetAttributeValue(
            session,
            object,
            second.as_mut_ptr(),
            second.len() as CK_ULONG,
        )
    });
    assert_ne!(
        rv2, CKR_BUFFER_TOO_SMALL,
        "C_GetAttributeValue: buffers of the lengths a query reported did not suffice"
    );
    if PER_ENTRY.contains(&rv2) {
        for (a, &(kind, len)) in second.iter().zip(&follow_up) {
            assert_eq!(
                a.ulValueLen, len,
                "C_GetAttributeValue: attribute {kind:#x} was {len} bytes long on query, not on reading"
            );
        }
    }
}

fn copy_of(
    r: &mut Reader,
    fx: &Fixture,
    session: CK_SESSION_HANDLE,
    copy: &mut Option<(CK_OBJECT_HANDLE, bool)>,
) -> Option<(CK_OBJECT_HANDLE, bool)> {
    if copy.is_none() {
        let o = fx.objects[usize::from(r.u8()) % fx.objects.len()].clone();
        let mut h = CK_INVALID_HANDLE;
        // SAFETY: an empty template; `h` is a live output location.
        let rv = unsafe { ffi::C_CopyObject(session, o.handle, std::ptr::null_mut(), 0, &mut h) };
        if check("C_CopyObject", rv) == CKR_OK {
            *copy = Some((h, o.token));
        }
    }
    *copy
}

/// One fuzzing iteration.
pub fn run(data: &[u8]) {
    let fx = fixture();
    let mut r = Reader::new(data);
    let mut arena = Arena::default();
    let session = fx.open_session();
    let mut copy: Option<(CK_OBJECT_HANDLE, bool)> = None;
    let steps = 1 + r.u8() % 4;
    for _ in 0..steps {
        match r.u8() % STEPS {
            STEP_SET_ON_COPY => {
                if let Some((h, token)) = copy_of(&mut r, fx, session, &mut copy) {
                    let mut entries = tmpl::entries(&mut r, &mut arena, fx, 8);
                    if token {
                        tmpl::destroyable(&mut entries);
                    }
                    let (t, n) = lay_out(&mut r, &mut arena, &entries);
                    // SAFETY: as in `get`.
                    let rv = unsafe { ffi::C_SetAttributeValue(session, h, t, n) };
                    check("C_SetAttributeValue", rv);
                }
            }
            STEP_GET_ON_COPY => {
                if let Some((h, _)) = copy_of(&mut r, fx, session, &mut copy) {
                    get(&mut r, &mut arena, session, h);
                }
            }
            STEP_SIZE => {
                let object = key(&mut r, fx);
                let size = if r.one_in(16) {
                    std::ptr::null_mut()
                } else {
                    arena.keep(0 as CK_ULONG)
                };
                // SAFETY: `size` is NULL or live.
                check("C_GetObjectSize", unsafe {
                    ffi::C_GetObjectSize(session, object, size)
                });
            }
            STEP_FIND => find(&mut r, &mut arena, fx, session),
            _ => {
                let object = key(&mut r, fx);
                get(&mut r, &mut arena, session, object);
            }
        }
        if r.is_empty() {
            break;
        }
    }
    if let Some((h, _)) = copy {
        // SAFETY: no pointers.
        check("C_DestroyObject", unsafe {
            ffi::C_DestroyObject(session, h)
        });
    }
    fx.close_session(session);
}

fn find(r: &mut Reader, arena: &mut Arena, fx: &Fixture, session: CK_SESSION_HANDLE) {
    let entries = tmpl::entries(r, arena, fx, 6);
    let (t, n) = lay_out(r, arena, &entries);
    // SAFETY: as in `get`.
    let rv = check("C_FindObjectsInit", unsafe {
        ffi::C_FindObjectsInit(session, t, n)
    });
    if rv != CKR_OK {
        return;
    }
    let max = CK_ULONG::from(r.u8() % 8);
    let found = arena.array(vec![CK_INVALID_HANDLE; max as usize]);
    let count = arena.keep(0 as CK_ULONG);
    // SAFETY: `found` holds `max` handles; `count` is live.
    let rv = check("C_FindObjects", unsafe {
        ffi::C_FindObjects(session, found, max, count)
    });
    if rv == CKR_OK {
        // SAFETY: live.
        let got = unsafe { *count };
        assert!(
            got <= max,
            "C_FindObjects returned {got} handles into room for {max}"
        );
    }
    // SAFETY: no pointers.
    check("C_FindObjectsFinal", unsafe {
        ffi::C_FindObjectsFinal(session)
    });
}

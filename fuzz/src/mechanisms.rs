//! Target `mechanisms`: every mechanism-taking `*Init` of an operation (`C_EncryptInit`,
//! `C_DecryptInit`, `C_SignInit`, `C_VerifyInit`, `C_DigestInit`, and PKCS#11 3.2's
//! `C_VerifySignatureInit` with a fuzzed signature) with a fuzzed mechanism and parameter on a
//! fixed key (or a bad handle), then single-part or multi-part calls with fuzzed data and output
//! buffers, a NULL-mechanism cancel, a second `*Init`, or a context-specific login. Round trips
//! (encrypt then decrypt, sign then verify both ways) with the same mechanism must give back the
//! plaintext and verify.

use cryptoki_sys::*;
use sqlhsm::ffi;

use crate::fixture::{fixture, Fixture, USER_PIN};
use crate::input::Reader;
use crate::mech::{mechanism, Mech};
use crate::mem::{field, Arena, Field, MAX_LEN};
use crate::{check, out};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Encrypt,
    Decrypt,
    Sign,
    Verify,
    Digest,
    VerifySignature,
}

/// New operations go at the end, so the seeds' indices keep their meaning.
pub const OPS: &[Op] = &[
    Op::Encrypt,
    Op::Decrypt,
    Op::Sign,
    Op::Verify,
    Op::Digest,
    Op::VerifySignature,
];

/// Steps of one iteration (first byte of each step, modulo [`STEPS`]).
pub const STEP_ONE: u8 = 0; // followed by an Op index
pub const STEP_ENCRYPT_DECRYPT: u8 = 1;
pub const STEP_SIGN_VERIFY: u8 = 2;
const STEPS: u8 = 3;

/// What follows a successful `*Init` (modulo [`AFTER`]).
pub const AFTER_SINGLE: u8 = 0;
pub const AFTER_MULTI: u8 = 1;
pub const AFTER_CANCEL: u8 = 2;
pub const AFTER_INIT_AGAIN: u8 = 3;
pub const AFTER_CONTEXT_LOGIN: u8 = 4;
const AFTER: u8 = 5;

fn flags(op: Op) -> CK_FLAGS {
    match op {
        Op::Encrypt => CKF_ENCRYPT,
        Op::Decrypt => CKF_DECRYPT,
        Op::Sign => CKF_SIGN,
        Op::Verify | Op::VerifySignature => CKF_VERIFY,
        Op::Digest => CKF_DIGEST,
    }
}

fn name(op: Op, part: &str) -> String {
    format!("C_{op:?}{part}")
}

/// A fixed object's handle by the fuzzer's choice, or now and then a handle that is not one.
pub fn key(r: &mut Reader, fx: &Fixture) -> CK_OBJECT_HANDLE {
    let i = r.u8();
    if i < 240 {
        fx.objects[usize::from(i) % fx.objects.len()].handle
    } else {
        r.choose(&[CK_INVALID_HANDLE, 0xffff_ffff, CK_ULONG::MAX, 0x7fff])
    }
}

/// The other half of a fixed key pair (the key itself for a secret key).
pub fn partner(fx: &Fixture, handle: CK_OBJECT_HANDLE) -> CK_OBJECT_HANDLE {
    let Some(o) = fx.objects.iter().find(|o| o.handle == handle) else {
        return handle;
    };
    let other = if o.name.contains("-public") {
        o.name.replace("-public", "-private")
    } else if o.name.contains("-private") {
        o.name.replace("-private", "-public")
    } else {
        return handle;
    };
    match fx.object(&other) {
        CK_INVALID_HANDLE => handle,
        h => h,
    }
}

fn init(op: Op, session: CK_SESSION_HANDLE, m: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE) -> CK_RV {
    init_with(op, session, m, key, Field::null())
}

/// [`init`] with the signature `C_VerifySignatureInit` takes (the other `*Init`s take none).
fn init_with(
    op: Op,
    session: CK_SESSION_HANDLE,
    m: *mut CK_MECHANISM,
    key: CK_OBJECT_HANDLE,
    signature: Field,
) -> CK_RV {
    // SAFETY: `m` is NULL or a mechanism laid out by `mech` in live memory; the signature is a
    // live buffer of its stated length (or NULL).
    let rv = unsafe {
        match op {
            Op::Encrypt => ffi::C_EncryptInit(session, m, key),
            Op::Decrypt => ffi::C_DecryptInit(session, m, key),
            Op::Sign => ffi::C_SignInit(session, m, key),
            Op::Verify => ffi::C_VerifyInit(session, m, key),
            Op::Digest => ffi::C_DigestInit(session, m),
            Op::VerifySignature => {
                ffi::C_VerifySignatureInit(session, m, key, signature.ptr, signature.len)
            }
        }
    };
    check(&name(op, "Init"), rv)
}

/// Fuzzed input bytes (`pData`, `ulDataLen`).
fn data(r: &mut Reader, arena: &mut Arena) -> Field {
    if r.one_in(8) {
        field(r, arena, 300, None)
    } else {
        let d = r.blob(300);
        Field::of(arena, &d)
    }
}

fn in_place(f: Field) -> Option<(*mut u8, CK_ULONG)> {
    (!f.ptr.is_null() && f.len <= MAX_LEN).then_some((f.ptr, f.len))
}

/// The single-part call of `op` on `input`; the output (or, for verify, `signature`) fuzzed.
fn single(
    r: &mut Reader,
    arena: &mut Arena,
    op: Op,
    session: CK_SESSION_HANDLE,
    input: Field,
    signature: Field,
) -> out::Output {
    let what = name(op, "");
    match op {
        Op::Encrypt => out::call(r, arena, &what, in_place(input), |p, l| {
            // SAFETY: input and output are live buffers of their stated lengths.
            unsafe { ffi::C_Encrypt(session, input.ptr, input.len, p, l) }
        }),
        Op::Decrypt => out::call(r, arena, &what, in_place(input), |p, l| {
            // SAFETY: as above.
            unsafe { ffi::C_Decrypt(session, input.ptr, input.len, p, l) }
        }),
        Op::Sign => out::call(r, arena, &what, None, |p, l| {
            // SAFETY: as above.
            unsafe { ffi::C_Sign(session, input.ptr, input.len, p, l) }
        }),
        Op::Digest => out::call(r, arena, &what, None, |p, l| {
            // SAFETY: as above.
            unsafe { ffi::C_Digest(session, input.ptr, input.len, p, l) }
        }),
        Op::Verify => {
            // SAFETY: data and signature are live buffers of their stated lengths.
            let rv = unsafe {
                ffi::C_Verify(session, input.ptr, input.len, signature.ptr, signature.len)
            };
            out::Output {
                rv: check(&what, rv),
                data: None,
            }
        }
        Op::VerifySignature => {
            // SAFETY: the data is a live buffer of its stated length.
            let rv = unsafe { ffi::C_VerifySignature(session, input.ptr, input.len) };
            out::Output {
                rv: check(&what, rv),
                data: None,
            }
        }
    }
}

/// Some `*Update` calls then the `*Final`.
fn multi(r: &mut Reader, arena: &mut Arena, fx: &Fixture, op: Op, session: CK_SESSION_HANDLE) {
    let parts = r.u8() % 4;
    for _ in 0..parts {
        let input = data(r, arena);
        let what = name(op, "Update");
        let rv = match op {
            Op::Encrypt => {
                out::call(r, arena, &what, in_place(input), |p, l| {
                    // SAFETY: input and output are live buffers of their stated lengths.
                    unsafe { ffi::C_EncryptUpdate(session, input.ptr, input.len, p, l) }
                })
                .rv
            }
            Op::Decrypt => {
                out::call(r, arena, &what, in_place(input), |p, l| {
                    // SAFETY: as above.
                    unsafe { ffi::C_DecryptUpdate(session, input.ptr, input.len, p, l) }
                })
                .rv
            }
            // SAFETY: the input is a live buffer of its stated length.
            Op::Sign => check(&what, unsafe {
                ffi::C_SignUpdate(session, input.ptr, input.len)
            }),
            // SAFETY: as above.
            Op::Verify => check(&what, unsafe {
                ffi::C_VerifyUpdate(session, input.ptr, input.len)
            }),
            // SAFETY: as above.
            Op::VerifySignature => check(&what, unsafe {
                ffi::C_VerifySignatureUpdate(session, input.ptr, input.len)
            }),
            Op::Digest if r.one_in(4) => {
                let k = key(r, fx);
                // SAFETY: no pointers.
                check("C_DigestKey", unsafe { ffi::C_DigestKey(session, k) })
            }
            // SAFETY: as above.
            Op::Digest => check(&what, unsafe {
                ffi::C_DigestUpdate(session, input.ptr, input.len)
            }),
        };
        if rv != CKR_OK {
            return;
        }
    }
    let what = name(op, "Final");
    match op {
        Op::Encrypt => {
            out::call(r, arena, &what, None, |p, l| {
                // SAFETY: the output is a live buffer of its stated length.
                unsafe { ffi::C_EncryptFinal(session, p, l) }
            });
        }
        Op::Decrypt => {
            out::call(r, arena, &what, None, |p, l| {
                // SAFETY: as above.
                unsafe { ffi::C_DecryptFinal(session, p, l) }
            });
        }
        Op::Sign => {
            out::call(r, arena, &what, None, |p, l| {
                // SAFETY: as above.
                unsafe { ffi::C_SignFinal(session, p, l) }
            });
        }
        Op::Digest => {
            out::call(r, arena, &what, None, |p, l| {
                // SAFETY: as above.
                unsafe { ffi::C_DigestFinal(session, p, l) }
            });
        }
        Op::Verify => {
            let sig = field(r, arena, 600, None);
            // SAFETY: the signature is a live buffer of its stated length.
            check(&what, unsafe {
                ffi::C_VerifyFinal(session, sig.ptr, sig.len)
            });
        }
        Op::VerifySignature => {
            // SAFETY: no pointers.
            check(&what, unsafe { ffi::C_VerifySignatureFinal(session) });
        }
    }
}

fn one(r: &mut Reader, arena: &mut Arena, fx: &Fixture, session: CK_SESSION_HANDLE) {
    let op = r.choose(OPS);
    let m = mechanism(r, arena, fx, flags(op));
    let k = key(r, fx);
    let signature = match op {
        Op::VerifySignature => field(r, arena, 600, None),
        _ => Field::null(),
    };
    // Now and then the NULL mechanism: ends whatever is active (CKR_OK even when nothing is).
    let mp = if r.one_in(32) {
        std::ptr::null_mut()
    } else {
        m.ptr
    };
    let rv = init_with(op, session, mp, k, signature);
    if mp.is_null() {
        assert_eq!(
            rv,
            CKR_OK,
            "{}(NULL) must end the operation with CKR_OK",
            name(op, "Init")
        );
    }
    match r.u8() % AFTER {
        AFTER_MULTI => multi(r, arena, fx, op, session),
        AFTER_CANCEL => {
            let rv = init(op, session, std::ptr::null_mut(), 0);
            assert_eq!(
                rv,
                CKR_OK,
                "{}(NULL) must end the operation with CKR_OK",
                name(op, "Init")
            );
            let input = data(r, arena);
            let sig = data(r, arena);
            let after = single(r, arena, op, session, input, sig).rv;
            assert!(
                after == CKR_OPERATION_NOT_INITIALIZED || after == CKR_ARGUMENTS_BAD,
                "{} after the operation was ended answered {after:#x}",
                name(op, "")
            );
        }
        AFTER_INIT_AGAIN => {
            let again = init_with(op, session, m.ptr, k, signature);
            if rv == CKR_OK && !mp.is_null() {
                assert_eq!(
                    again,
                    CKR_OPERATION_ACTIVE,
                    "a second {} while one is active",
                    name(op, "Init")
                );
            }
            let input = data(r, arena);
            let sig = data(r, arena);
            single(r, arena, op, session, input, sig);
        }
        AFTER_CONTEXT_LOGIN => {
            let pin: &[u8] = if r.one_in(8) { b"wrong pin" } else { USER_PIN };
            // SAFETY: the PIN is live.
            let rv = unsafe {
                ffi::C_Login(
                    session,
                    CKU_CONTEXT_SPECIFIC,
                    pin.as_ptr().cast_mut(),
                    pin.len() as CK_ULONG,
                )
            };
            check("C_Login(CKU_CONTEXT_SPECIFIC)", rv);
            let input = data(r, arena);
            let sig = data(r, arena);
            single(r, arena, op, session, input, sig);
        }
        _ => {
            let input = data(r, arena);
            let sig = data(r, arena);
            single(r, arena, op, session, input, sig);
        }
    }
}

/// Mechanisms whose decryption gives back exactly the encrypted input (raw RSA pads it).
fn round_trips(kind: CK_MECHANISM_TYPE) -> bool {
    kind != CKM_RSA_X_509
}

fn encrypt_decrypt(r: &mut Reader, arena: &mut Arena, fx: &Fixture, session: CK_SESSION_HANDLE) {
    let Mech { ptr: m, kind } = mechanism(r, arena, fx, CKF_ENCRYPT);
    let k = key(r, fx);
    let plain = r.blob(300);
    if init(Op::Encrypt, session, m, k) != CKR_OK {
        return;
    }
    let input = Field::of(arena, &plain);
    let enc = single(r, arena, Op::Encrypt, session, input, Field::null());
    let Some(cipher) = enc.data else {
        // A query, or a failure: end whatever is left.
        init(Op::Encrypt, session, std::ptr::null_mut(), 0);
        return;
    };
    if init(Op::Decrypt, session, m, partner(fx, k)) != CKR_OK {
        return;
    }
    let input = Field::of(arena, &cipher);
    let dec = single(r, arena, Op::Decrypt, session, input, Field::null());
    if let Some(back) = dec.data {
        if round_trips(kind) {
            assert_eq!(back, plain, "decrypting mechanism {kind:#x}'s ciphertext");
        }
    }
    init(Op::Decrypt, session, std::ptr::null_mut(), 0);
}

fn sign_verify(r: &mut Reader, arena: &mut Arena, fx: &Fixture, session: CK_SESSION_HANDLE) {
    let Mech { ptr: m, kind } = mechanism(r, arena, fx, CKF_SIGN);
    let k = key(r, fx);
    let message = r.blob(300);
    if init(Op::Sign, session, m, k) != CKR_OK {
        return;
    }
    let input = Field::of(arena, &message);
    let signed = single(r, arena, Op::Sign, session, input, Field::null());
    let Some(signature) = signed.data else {
        init(Op::Sign, session, std::ptr::null_mut(), 0);
        return;
    };
    if init(Op::Verify, session, m, partner(fx, k)) != CKR_OK {
        return;
    }
    let input = Field::of(arena, &message);
    let sig = Field::of(arena, &signature);
    let rv = single(r, arena, Op::Verify, session, input, sig).rv;
    assert_eq!(rv, CKR_OK, "verifying mechanism {kind:#x}'s own signature");
    // The same, with the signature given first (PKCS#11 3.2).
    let rv = init_with(Op::VerifySignature, session, m, partner(fx, k), sig);
    assert_eq!(
        rv, CKR_OK,
        "C_VerifySignatureInit with mechanism {kind:#x}'s own signature"
    );
    let rv = single(r, arena, Op::VerifySignature, session, input, Field::null()).rv;
    assert_eq!(
        rv, CKR_OK,
        "C_VerifySignature of mechanism {kind:#x}'s own signature"
    );
}

/// One fuzzing iteration.
pub fn run(data: &[u8]) {
    let fx = fixture();
    let mut r = Reader::new(data);
    let mut arena = Arena::default();
    let session = fx.open_session();
    let steps = 1 + r.u8() % 4;
    for _ in 0..steps {
        match r.u8() % STEPS {
            STEP_ENCRYPT_DECRYPT => encrypt_decrypt(&mut r, &mut arena, fx, session),
            STEP_SIGN_VERIFY => sign_verify(&mut r, &mut arena, fx, session),
            _ => one(&mut r, &mut arena, fx, session),
        }
        if r.is_empty() {
            break;
        }
    }
    fx.close_session(session);
}

//! The functions issue 13 adds, through the C ABI: RSA from 1024 bits, `C_SignRecover` /
//! `C_VerifyRecover`, `C_SeedRandom`, `C_GetOperationState` / `C_SetOperationState` for
//! digests, the four dual functions and `C_WaitForSlotEvent` (woken by another process, and
//! by `C_Finalize` from another thread).

mod common;

use std::ptr::null_mut;
use std::time::{Duration, Instant};

use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

fn mech(kind: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: kind,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

fn mech_iv(kind: CK_MECHANISM_TYPE, iv: &mut [u8; 16]) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: kind,
        pParameter: iv.as_mut_ptr().cast(),
        ulParameterLen: 16,
    }
}

/// A two-call output: the length a NULL buffer reports, then the bytes (`Err(rv)` when either
/// call fails).
fn two_call(call: impl Fn(*mut u8, &mut CK_ULONG) -> CK_RV) -> Result<(CK_ULONG, Vec<u8>), CK_RV> {
    let mut len: CK_ULONG = 0;
    let rv = call(null_mut(), &mut len);
    if rv != CKR_OK {
        return Err(rv);
    }
    let reported = len;
    let mut out = vec![0u8; len as usize];
    let rv = call(out.as_mut_ptr(), &mut len);
    if rv != CKR_OK {
        return Err(rv);
    }
    out.truncate(len as usize);
    Ok((reported, out))
}

fn sign_recover(
    s: &Session,
    kind: CK_MECHANISM_TYPE,
    key: ObjectHandle,
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let mut m = mech(kind);
    // SAFETY: live session and key of this test; `m` outlives the call.
    let rv = unsafe { raw().C_SignRecoverInit(s.handle(), &mut m, key.handle()) };
    if rv != CKR_OK {
        return Err(rv);
    }
    two_call(|out, len| {
        // SAFETY: `data` is readable, `out` NULL or writable for `*len` bytes.
        unsafe {
            raw().C_SignRecover(
                s.handle(),
                data.as_ptr().cast_mut(),
                data.len() as CK_ULONG,
                out,
                len,
            )
        }
    })
    .map(|(_, sig)| sig)
}

fn verify_recover_init(s: &Session, kind: CK_MECHANISM_TYPE, key: ObjectHandle) -> CK_RV {
    let mut m = mech(kind);
    // SAFETY: live session and key of this test.
    unsafe { raw().C_VerifyRecoverInit(s.handle(), &mut m, key.handle()) }
}

fn verify_recover_call(s: &Session, sig: &[u8], out: *mut u8, len: &mut CK_ULONG) -> CK_RV {
    // SAFETY: `sig` is readable, `out` NULL or writable for `*len` bytes.
    unsafe {
        raw().C_VerifyRecover(
            s.handle(),
            sig.as_ptr().cast_mut(),
            sig.len() as CK_ULONG,
            out,
            len,
        )
    }
}

fn verify_recover(
    s: &Session,
    kind: CK_MECHANISM_TYPE,
    key: ObjectHandle,
    sig: &[u8],
) -> Result<(CK_ULONG, Vec<u8>), CK_RV> {
    let rv = verify_recover_init(s, kind, key);
    if rv != CKR_OK {
        return Err(rv);
    }
    two_call(|out, len| verify_recover_call(s, sig, out, len))
}

fn slot_session(label: &str) -> (cryptoki::slot::Slot, Session) {
    let slot = new_token(ctx(), label);
    (slot, user_session(ctx(), slot))
}

#[test]
fn rsa_1024_is_generated_and_advertised() {
    let (slot, s) = slot_session("rsa1024");
    let info = ctx()
        .get_mechanism_info(
            slot,
            cryptoki::mechanism::MechanismType::RSA_PKCS_KEY_PAIR_GEN,
        )
        .unwrap();
    assert_eq!((info.min_key_size(), info.max_key_size()), (1024, 16384));
    let (public, private) = gen_rsa(&s, 1024, "rsa1024", b"r1");
    assert_eq!(
        get_attr(&s, public, cryptoki::object::AttributeType::ModulusBits),
        Attribute::ModulusBits(1024.into())
    );
    let sig = s
        .sign(&Mechanism::Sha256RsaPkcs, private, b"hello")
        .unwrap();
    assert_eq!(sig.len(), 128);
    s.verify(&Mechanism::Sha256RsaPkcs, public, b"hello", &sig)
        .unwrap();
    let (public, private) = rsa_templates(1023, "rsa1023", b"r2");
    expect_rv(
        s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private),
        cryptoki::error::RvError::KeySizeRange,
    );
}

#[test]
fn sign_and_verify_with_recovery() {
    let (slot, s) = slot_session("recover");
    for kind in [CKM_RSA_PKCS, CKM_RSA_X_509] {
        let info = ctx()
            .get_mechanism_info(slot, kind.try_into().unwrap())
            .unwrap();
        assert!(info.sign_recover() && info.verify_recover(), "0x{kind:x}");
    }
    let (public, private) = gen_rsa(&s, 2048, "recover", b"rc");
    // CKM_RSA_PKCS: the data comes back as signed; the signature is C_Sign's.
    let data = b"recover me".to_vec();
    let sig = sign_recover(&s, CKM_RSA_PKCS, private, &data).unwrap();
    assert_eq!(sig, s.sign(&Mechanism::RsaPkcs, private, &data).unwrap());
    let (bound, recovered) = verify_recover(&s, CKM_RSA_PKCS, public, &sig).unwrap();
    assert_eq!(
        bound,
        256 - 11,
        "the length query answers the most it can carry"
    );
    assert_eq!(recovered, data);
    // Empty data, and the longest allowed (k - 11); one more is CKR_DATA_LEN_RANGE.
    let sig = sign_recover(&s, CKM_RSA_PKCS, private, b"").unwrap();
    assert_eq!(
        verify_recover(&s, CKM_RSA_PKCS, public, &sig).unwrap().1,
        b""
    );
    let long = vec![0x5a; 245];
    let sig = sign_recover(&s, CKM_RSA_PKCS, private, &long).unwrap();
    assert_eq!(
        verify_recover(&s, CKM_RSA_PKCS, public, &sig).unwrap().1,
        long
    );
    assert_eq!(
        sign_recover(&s, CKM_RSA_PKCS, private, &[0; 246]),
        Err(CKR_DATA_LEN_RANGE)
    );
    // A buffer too small gets the exact length; the retry gets the data.
    let sig = sign_recover(&s, CKM_RSA_PKCS, private, &data).unwrap();
    assert_eq!(verify_recover_init(&s, CKM_RSA_PKCS, public), CKR_OK);
    let mut small = [0u8; 4];
    let mut len = small.len() as CK_ULONG;
    assert_eq!(
        verify_recover_call(&s, &sig, small.as_mut_ptr(), &mut len),
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(len, data.len() as CK_ULONG);
    let mut right = vec![0u8; len as usize];
    assert_eq!(
        verify_recover_call(&s, &sig, right.as_mut_ptr(), &mut len),
        CKR_OK
    );
    assert_eq!(right, data);
    // The operation ended: another call has nothing to recover.
    assert_eq!(
        verify_recover_call(&s, &sig, right.as_mut_ptr(), &mut len),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // A bad signature, a short one.
    let mut bad = sig.clone();
    bad[100] ^= 1;
    assert_eq!(
        verify_recover(&s, CKM_RSA_PKCS, public, &bad),
        Err(CKR_SIGNATURE_INVALID)
    );
    assert_eq!(
        verify_recover(&s, CKM_RSA_PKCS, public, &sig[1..]),
        Err(CKR_SIGNATURE_LEN_RANGE)
    );
    // A C_Sign signature over a DigestInfo recovers to it (the same block).
    let sig = s
        .sign(&Mechanism::RsaPkcs, private, b"digest-info")
        .unwrap();
    assert_eq!(
        verify_recover(&s, CKM_RSA_PKCS, public, &sig).unwrap().1,
        b"digest-info"
    );

    // CKM_RSA_X_509: the whole k-byte block, leading zeros included.
    let sig = sign_recover(&s, CKM_RSA_X_509, private, b"raw").unwrap();
    let (bound, block) = verify_recover(&s, CKM_RSA_X_509, public, &sig).unwrap();
    assert_eq!(bound, 256);
    assert_eq!(block.len(), 256);
    assert!(block[..253].iter().all(|b| *b == 0));
    assert_eq!(&block[253..], b"raw");
    assert_eq!(
        verify_recover(&s, CKM_RSA_X_509, public, &[0xff; 256]),
        Err(CKR_SIGNATURE_INVALID)
    );

    // Other mechanisms do not recover.
    assert_eq!(
        sign_recover(&s, CKM_SHA256_RSA_PKCS, private, b"x"),
        Err(CKR_MECHANISM_INVALID)
    );
    assert_eq!(
        verify_recover_init(&s, CKM_RSA_PKCS_PSS, public),
        CKR_MECHANISM_INVALID
    );
    // NULL pMechanism ends the operation.
    assert_eq!(verify_recover_init(&s, CKM_RSA_PKCS, public), CKR_OK);
    // SAFETY: NULL mechanism: the key handle is not looked at.
    assert_eq!(
        unsafe { raw().C_VerifyRecoverInit(s.handle(), null_mut(), 0) },
        CKR_OK
    );
    assert_eq!(
        verify_recover_call(&s, &sig, null_mut(), &mut len),
        CKR_OPERATION_NOT_INITIALIZED
    );
}

#[test]
fn recovery_needs_its_own_usage_attributes() {
    let (_, s) = slot_session("recover-usage");
    let (mut public, mut private) = rsa_templates(2048, "no-recover", b"nr");
    public.push(Attribute::VerifyRecover(false));
    private.push(Attribute::SignRecover(false));
    let (public, private) = s
        .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .unwrap();
    assert_eq!(
        sign_recover(&s, CKM_RSA_PKCS, private, b"x"),
        Err(CKR_KEY_FUNCTION_NOT_PERMITTED)
    );
    assert_eq!(
        verify_recover_init(&s, CKM_RSA_X_509, public),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    // C_Sign is still allowed (CKA_SIGN is true).
    s.sign(&Mechanism::RsaPkcs, private, b"x").unwrap();
}

#[test]
fn seed_random_is_accepted() {
    let (_, s) = slot_session("seed");
    s.seed_random(b"some application entropy").unwrap();
    s.seed_random(&[]).unwrap();
    s.seed_random(&vec![7u8; 100_000]).unwrap();
    let a = s.generate_random_vec(32).unwrap();
    let b = s.generate_random_vec(32).unwrap();
    assert_ne!(a, b);
}

fn get_state(s: &Session) -> Result<Vec<u8>, CK_RV> {
    two_call(|out, len| {
        // SAFETY: `out` NULL or writable for `*len` bytes.
        unsafe { raw().C_GetOperationState(s.handle(), out, len) }
    })
    .map(|(reported, blob)| {
        assert_eq!(reported as usize, blob.len());
        blob
    })
}

fn set_state(s: &Session, blob: &[u8], enc: CK_OBJECT_HANDLE, auth: CK_OBJECT_HANDLE) -> CK_RV {
    // SAFETY: `blob` is readable for its length.
    unsafe {
        raw().C_SetOperationState(
            s.handle(),
            blob.as_ptr().cast_mut(),
            blob.len() as CK_ULONG,
            enc,
            auth,
        )
    }
}

#[test]
fn digest_states_are_saved_and_restored() {
    let (slot, s) = slot_session("opstate");
    assert_eq!(get_state(&s), Err(CKR_OPERATION_NOT_INITIALIZED));
    s.digest_init(&Mechanism::Sha256).unwrap();
    s.digest_update(b"hello ").unwrap();
    let blob = get_state(&s).unwrap();
    // The saved state continues in another session, and the original goes on too.
    let other = ctx().open_ro_session(slot).unwrap();
    assert_eq!(set_state(&other, &blob, 0, 0), CKR_OK);
    other.digest_update(b"world").unwrap();
    s.digest_update(b"world").unwrap();
    let expected = ctx()
        .open_ro_session(slot)
        .unwrap()
        .digest(&Mechanism::Sha256, b"hello world")
        .unwrap();
    assert_eq!(other.digest_final().unwrap(), expected);
    assert_eq!(s.digest_final().unwrap(), expected);
    // A forged or truncated state, and a key given that is not needed.
    let mut forged = blob.clone();
    let last = forged.len() - 40;
    forged[last] ^= 0x20;
    assert_eq!(set_state(&other, &forged, 0, 0), CKR_SAVED_STATE_INVALID);
    assert_eq!(
        set_state(&other, &blob[..20], 0, 0),
        CKR_SAVED_STATE_INVALID
    );
    assert_eq!(set_state(&other, b"", 0, 0), CKR_SAVED_STATE_INVALID);
    let key = gen_aes(&s, 16, "opstate-key");
    assert_eq!(
        set_state(&other, &blob, key.handle(), 0),
        CKR_KEY_NOT_NEEDED
    );
    // Restoring replaces what the session was doing.
    s.digest_init(&Mechanism::Sha512).unwrap();
    assert_eq!(set_state(&s, &blob, 0, 0), CKR_OK);
    s.digest_update(b"world").unwrap();
    assert_eq!(s.digest_final().unwrap(), expected);
    // Keyed operations are not saveable, nor is a digest that took a key.
    let (_, private) = gen_rsa(&s, 2048, "opstate-rsa", b"os");
    s.sign_init(&Mechanism::Sha256RsaPkcs, private).unwrap();
    assert_eq!(get_state(&s), Err(CKR_STATE_UNSAVEABLE));
    s.digest_init(&Mechanism::Sha256).unwrap();
    assert_eq!(get_state(&s), Err(CKR_STATE_UNSAVEABLE));
    s.sign_final().unwrap();
    assert!(get_state(&s).is_ok());
    let secret = session_secret(&s, KeyType::GENERIC_SECRET, b"0123456789abcdef", &[]);
    // SAFETY: live session and key.
    assert_eq!(
        unsafe { raw().C_DigestKey(s.handle(), secret.handle()) },
        CKR_OK
    );
    assert_eq!(get_state(&s), Err(CKR_STATE_UNSAVEABLE));
    s.digest_final().unwrap();
    // Beyond the saveable bound (64 KiB) the digest goes on, unsaveable.
    s.digest_init(&Mechanism::Sha256).unwrap();
    s.digest_update(&vec![1u8; 64 * 1024]).unwrap();
    assert!(get_state(&s).is_ok());
    s.digest_update(b"one more").unwrap();
    assert_eq!(get_state(&s), Err(CKR_STATE_UNSAVEABLE));
    s.digest_final().unwrap();
}

#[derive(Clone, Copy)]
enum Dual {
    DigestEncrypt,
    SignEncrypt,
    DecryptDigest,
    DecryptVerify,
}

/// One raw dual update into `out` (NULL for the length query).
fn dual_call(which: Dual, s: &Session, part: &[u8], out: *mut u8, len: &mut CK_ULONG) -> CK_RV {
    let (h, p, n) = (s.handle(), part.as_ptr().cast_mut(), part.len() as CK_ULONG);
    // SAFETY: `part` is readable, `out` NULL or writable for `*len` bytes.
    unsafe {
        match which {
            Dual::DigestEncrypt => raw().C_DigestEncryptUpdate(h, p, n, out, len),
            Dual::SignEncrypt => raw().C_SignEncryptUpdate(h, p, n, out, len),
            Dual::DecryptDigest => raw().C_DecryptDigestUpdate(h, p, n, out, len),
            Dual::DecryptVerify => raw().C_DecryptVerifyUpdate(h, p, n, out, len),
        }
    }
}

/// A dual update's output (two-call: the NULL query first, which changes nothing).
fn dual(which: Dual, s: &Session, part: &[u8]) -> Result<Vec<u8>, CK_RV> {
    two_call(|out, len| dual_call(which, s, part, out, len)).map(|(_, bytes)| bytes)
}

fn cipher_init(s: &Session, encrypt: bool, key: ObjectHandle, iv: &mut [u8; 16]) {
    let mut m = mech_iv(CKM_AES_CBC_PAD, iv);
    // SAFETY: live session and key; `m` and its IV outlive the call.
    let rv = unsafe {
        match encrypt {
            true => raw().C_EncryptInit(s.handle(), &mut m, key.handle()),
            false => raw().C_DecryptInit(s.handle(), &mut m, key.handle()),
        }
    };
    assert_eq!(rv, CKR_OK);
}

#[test]
fn dual_functions_feed_both_operations() {
    let (_, s) = slot_session("dual");
    let aes = session_secret(
        &s,
        KeyType::AES,
        &[0x11; 16],
        &[Attribute::Encrypt(true), Attribute::Decrypt(true)],
    );
    let hmac = session_secret(
        &s,
        KeyType::GENERIC_SECRET,
        &[0x22; 32],
        &[Attribute::Sign(true), Attribute::Verify(true)],
    );
    let parts: [&[u8]; 3] = [b"first part, ", b"the second one, ", b"and the last"];
    let message: Vec<u8> = parts.concat();
    let mut iv = [7u8; 16];
    let ciphertext = s.encrypt(&Mechanism::AesCbcPad(iv), aes, &message).unwrap();
    let digest = s.digest(&Mechanism::Sha256, &message).unwrap();
    let mac = s.sign(&Mechanism::Sha256Hmac, hmac, &message).unwrap();

    // C_DigestEncryptUpdate: digest and ciphertext of the same parts.
    s.digest_init(&Mechanism::Sha256).unwrap();
    cipher_init(&s, true, aes, &mut iv);
    let mut out = Vec::new();
    for part in parts {
        out.extend(dual(Dual::DigestEncrypt, &s, part).unwrap());
    }
    out.extend(s.encrypt_final().unwrap());
    assert_eq!(out, ciphertext);
    assert_eq!(s.digest_final().unwrap(), digest);

    // C_SignEncryptUpdate.
    s.sign_init(&Mechanism::Sha256Hmac, hmac).unwrap();
    cipher_init(&s, true, aes, &mut iv);
    let mut out = Vec::new();
    for part in parts {
        out.extend(dual(Dual::SignEncrypt, &s, part).unwrap());
    }
    out.extend(s.encrypt_final().unwrap());
    assert_eq!(out, ciphertext);
    assert_eq!(s.sign_final().unwrap(), mac);

    // C_DecryptDigestUpdate: the digest sees what the decryption released.
    s.digest_init(&Mechanism::Sha256).unwrap();
    cipher_init(&s, false, aes, &mut iv);
    let mut plain = Vec::new();
    for chunk in ciphertext.chunks(16) {
        plain.extend(dual(Dual::DecryptDigest, &s, chunk).unwrap());
    }
    let tail = s.decrypt_final().unwrap();
    // CBC-PAD holds its last block back: that part reaches the digest through C_DigestUpdate.
    s.digest_update(&tail).unwrap();
    plain.extend(tail);
    assert_eq!(plain, message);
    assert_eq!(s.digest_final().unwrap(), digest);

    // C_DecryptVerifyUpdate.
    s.verify_init(&Mechanism::Sha256Hmac, hmac).unwrap();
    cipher_init(&s, false, aes, &mut iv);
    let mut plain = Vec::new();
    for chunk in ciphertext.chunks(16) {
        plain.extend(dual(Dual::DecryptVerify, &s, chunk).unwrap());
    }
    let tail = s.decrypt_final().unwrap();
    s.verify_update(&tail).unwrap();
    plain.extend(tail);
    assert_eq!(plain, message);
    s.verify_final(&mac).unwrap();

    // Both operations must be active; a failure ends both.
    cipher_init(&s, true, aes, &mut iv);
    assert_eq!(
        dual(Dual::DigestEncrypt, &s, b"x"),
        Err(CKR_OPERATION_NOT_INITIALIZED)
    );
    expect_rv(
        s.encrypt_final(),
        cryptoki::error::RvError::OperationNotInitialized,
    );
    s.digest_init(&Mechanism::Sha256).unwrap();
    assert_eq!(
        dual(Dual::DigestEncrypt, &s, b"x"),
        Err(CKR_OPERATION_NOT_INITIALIZED)
    );
    // A too small buffer changes neither operation.
    s.digest_init(&Mechanism::Sha256).unwrap();
    cipher_init(&s, true, aes, &mut iv);
    let mut one = [0u8; 1];
    let mut len: CK_ULONG = 1;
    let part = [0u8; 32];
    let rv = dual_call(Dual::DigestEncrypt, &s, &part, one.as_mut_ptr(), &mut len);
    assert_eq!(rv, CKR_BUFFER_TOO_SMALL);
    assert!(len >= 32);
    assert_eq!(
        s.digest_final().unwrap(),
        s.digest(&Mechanism::Sha256, b"").unwrap()
    );
    assert_eq!(
        s.encrypt_final().unwrap().len(),
        16,
        "only the padding block: nothing was encrypted"
    );
}

/// `C_WaitForSlotEvent` with `CKF_DONT_BLOCK`: `Ok(None)` for `CKR_NO_EVENT`.
fn poll_event() -> Result<Option<CK_SLOT_ID>, CK_RV> {
    let mut slot: CK_SLOT_ID = 0;
    // SAFETY: `slot` is writable; pReserved NULL.
    match unsafe { raw().C_WaitForSlotEvent(CKF_DONT_BLOCK, &mut slot, null_mut()) } {
        CKR_OK => Ok(Some(slot)),
        CKR_NO_EVENT => Ok(None),
        rv => Err(rv),
    }
}

fn drain_events() {
    while poll_event().unwrap().is_some() {}
}

/// One lock for the tests that watch slot events: another test's tokens are events too.
static EVENTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn slot_events_of_this_process() {
    let _one = EVENTS.lock().unwrap_or_else(|e| e.into_inner());
    ctx();
    drain_events();
    let slot = new_token(ctx(), "event-here");
    // Other tests make tokens meanwhile: ours is among the events.
    let mut seen = Vec::new();
    while let Some(event) = poll_event().unwrap() {
        seen.push(event);
    }
    assert!(seen.contains(&slot.id()), "{seen:?} lacks {}", slot.id());
    let mut again = Vec::new();
    while let Some(event) = poll_event().unwrap() {
        again.push(event);
    }
    assert!(!again.contains(&slot.id()), "each event is reported once");
    let mut slot_out: CK_SLOT_ID = 0;
    let mut reserved = 0u8;
    // SAFETY: pReserved must be NULL; it is not read.
    let rv = unsafe {
        raw().C_WaitForSlotEvent(
            CKF_DONT_BLOCK,
            &mut slot_out,
            std::ptr::from_mut(&mut reserved).cast(),
        )
    };
    assert_eq!(rv, CKR_ARGUMENTS_BAD);
}

#[test]
fn a_token_deleted_by_the_admin_command_is_an_event() {
    let _one = EVENTS.lock().unwrap_or_else(|e| e.into_inner());
    let slot = new_token(ctx(), "event-gone");
    drain_events();
    let db = ctx_db();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sqlhsm"))
        .args(["token", "delete", "event-gone", "--yes"])
        .stdin(std::process::Stdio::null())
        .envs(db.envs())
        .env("SQLHSM_SO_PIN", SO_PIN)
        .env("SQLHSM_PIN", USER_PIN)
        .output()
        .expect("run sqlhsm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A blocking wait: the other process's delete moved the store's change marker.
    let mut seen = Vec::new();
    let started = Instant::now();
    while !seen.contains(&slot.id()) && started.elapsed() < Duration::from_secs(30) {
        let mut event: CK_SLOT_ID = 0;
        // SAFETY: `event` is writable; pReserved NULL.
        assert_eq!(
            unsafe { raw().C_WaitForSlotEvent(0, &mut event, null_mut()) },
            CKR_OK
        );
        seen.push(event);
    }
    assert!(seen.contains(&slot.id()), "{seen:?}");
    expect_rv(
        ctx().get_token_info(slot),
        cryptoki::error::RvError::SlotIdInvalid,
    );
}

#[test]
fn a_blocking_wait_sees_a_token_made_by_another_process() {
    if let Some(role) = child_role() {
        if role == "maker" {
            let p = child_init();
            std::thread::sleep(Duration::from_millis(500));
            new_token(&p, "event-elsewhere");
            println!("child maker: ok");
        }
        return;
    }
    let _one = EVENTS.lock().unwrap_or_else(|e| e.into_inner());
    ctx();
    drain_events();
    let child = spawn_child(
        "a_blocking_wait_sees_a_token_made_by_another_process",
        "maker",
        ctx_db(),
        &[],
    );
    let started = Instant::now();
    let mut found = None;
    while found.is_none() && started.elapsed() < Duration::from_secs(60) {
        let mut slot: CK_SLOT_ID = 0;
        // SAFETY: `slot` is writable; pReserved NULL. Blocks until an event.
        let rv = unsafe { raw().C_WaitForSlotEvent(0, &mut slot, null_mut()) };
        assert_eq!(rv, CKR_OK);
        let label = ctx()
            .get_token_info(cryptoki::slot::Slot::try_from(slot).unwrap())
            .map(|i| i.label().trim_end().to_string());
        if label.is_ok_and(|l| l == "event-elsewhere") {
            found = Some(slot);
        }
    }
    assert!(found.is_some(), "no event for the other process's token");
    finish_child("maker", child);
}

#[test]
fn finalize_from_another_thread_ends_a_wait() {
    if child_role().as_deref() == Some("finalizer") {
        let p = child_init();
        drain_events();
        let waiter = std::thread::spawn(|| {
            let mut slot: CK_SLOT_ID = 0;
            let started = Instant::now();
            loop {
                // SAFETY: `slot` is writable; pReserved NULL. Blocks until an event (the
                // parent's other tests make tokens) or C_Finalize.
                let rv = unsafe { raw().C_WaitForSlotEvent(0, &mut slot, null_mut()) };
                if rv != CKR_OK {
                    return (rv, started.elapsed());
                }
            }
        });
        std::thread::sleep(Duration::from_millis(700));
        p.finalize().unwrap();
        let (rv, waited) = waiter.join().unwrap();
        assert_eq!(rv, CKR_CRYPTOKI_NOT_INITIALIZED);
        assert!(
            waited >= Duration::from_millis(600) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        println!("child finalizer: ok");
        return;
    }
    if child_role().is_some() {
        return;
    }
    let child = spawn_child(
        "finalize_from_another_thread_ends_a_wait",
        "finalizer",
        ctx_db(),
        &[],
    );
    finish_child("finalizer", child);
}

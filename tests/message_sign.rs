//! Message-based signing and verifying (PKCS#11 3.0 `C_MessageSignInit` … `C_MessageSignFinal`,
//! `C_MessageVerifyInit` … `C_MessageVerifyFinal`) through the C ABI. cryptoki 0.12 has no
//! message-based signing, so the calls go through the raw function list.

mod common;

use std::ptr::null_mut;

use cryptoki::object::{Attribute, KeyType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

use common::*;

fn session(label: &str) -> Session {
    let p = ctx();
    let slot = new_token(p, label);
    user_session(p, slot)
}

fn mechanism(kind: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: kind,
        pParameter: null_mut(),
        ulParameterLen: 0,
    }
}

fn check(rv: CK_RV, what: &str) {
    assert_eq!(rv, CKR_OK, "{what}: 0x{rv:x}");
}

fn message_sign_init(s: &Session, kind: CK_MECHANISM_TYPE, key: ObjectHandle) -> CK_RV {
    let mut m = mechanism(kind);
    // SAFETY: a valid session and key of this test; `m` outlives the call.
    unsafe { raw().C_MessageSignInit(s.handle(), &mut m, key.handle()) }
}

fn message_verify_init(s: &Session, kind: CK_MECHANISM_TYPE, key: ObjectHandle) -> CK_RV {
    let mut m = mechanism(kind);
    // SAFETY: as above.
    unsafe { raw().C_MessageVerifyInit(s.handle(), &mut m, key.handle()) }
}

/// `C_SignMessage` with a NULL per-message parameter: the length query, then the signature.
fn sign_message(s: &Session, data: &[u8]) -> Result<Vec<u8>, CK_RV> {
    let mut len: CK_ULONG = 0;
    // SAFETY: `data` holds its length; NULL output asks for the length.
    let rv = unsafe {
        raw().C_SignMessage(
            s.handle(),
            null_mut(),
            0,
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            null_mut(),
            &mut len,
        )
    };
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut out = vec![0u8; len as usize];
    // SAFETY: `out` has `len` writable bytes.
    let rv = unsafe {
        raw().C_SignMessage(
            s.handle(),
            null_mut(),
            0,
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len,
        )
    };
    if rv != CKR_OK {
        return Err(rv);
    }
    out.truncate(len as usize);
    Ok(out)
}

fn sign_message_begin(s: &Session) -> CK_RV {
    // SAFETY: a NULL parameter of length 0.
    unsafe { raw().C_SignMessageBegin(s.handle(), null_mut(), 0) }
}

/// A part that is not the last (`pulSignatureLen` NULL).
fn sign_message_part(s: &Session, part: &[u8]) -> CK_RV {
    // SAFETY: `part` holds its length; no output.
    unsafe {
        raw().C_SignMessageNext(
            s.handle(),
            null_mut(),
            0,
            part.as_ptr() as *mut u8,
            part.len() as CK_ULONG,
            null_mut(),
            null_mut(),
        )
    }
}

/// The last part into a buffer of `capacity` bytes (`None`: a length query); the CK_RV and the
/// length written back.
fn sign_message_last(s: &Session, part: &[u8], out: Option<&mut [u8]>) -> (CK_RV, CK_ULONG) {
    let (p, mut len) = match out {
        Some(buf) => (buf.as_mut_ptr(), buf.len() as CK_ULONG),
        None => (null_mut(), 0),
    };
    // SAFETY: `part` holds its length; `p` (when non-NULL) has `len` writable bytes.
    let rv = unsafe {
        raw().C_SignMessageNext(
            s.handle(),
            null_mut(),
            0,
            part.as_ptr() as *mut u8,
            part.len() as CK_ULONG,
            p,
            &mut len,
        )
    };
    (rv, len)
}

fn message_sign_final(s: &Session) -> CK_RV {
    // SAFETY: a session handle only.
    unsafe { raw().C_MessageSignFinal(s.handle()) }
}

fn verify_message(s: &Session, data: &[u8], signature: &[u8]) -> CK_RV {
    // SAFETY: `data` and `signature` hold their lengths.
    unsafe {
        raw().C_VerifyMessage(
            s.handle(),
            null_mut(),
            0,
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            signature.as_ptr() as *mut u8,
            signature.len() as CK_ULONG,
        )
    }
}

fn verify_message_begin(s: &Session) -> CK_RV {
    // SAFETY: a NULL parameter of length 0.
    unsafe { raw().C_VerifyMessageBegin(s.handle(), null_mut(), 0) }
}

/// One part; `signature` `None` while more parts follow.
fn verify_message_next(s: &Session, part: &[u8], signature: Option<&[u8]>) -> CK_RV {
    let (p, len) = match signature {
        Some(sig) => (sig.as_ptr() as *mut u8, sig.len() as CK_ULONG),
        None => (null_mut(), 0),
    };
    // SAFETY: `part` and the signature hold their lengths.
    unsafe {
        raw().C_VerifyMessageNext(
            s.handle(),
            null_mut(),
            0,
            part.as_ptr() as *mut u8,
            part.len() as CK_ULONG,
            p,
            len,
        )
    }
}

fn message_verify_final(s: &Session) -> CK_RV {
    // SAFETY: a session handle only.
    unsafe { raw().C_MessageVerifyFinal(s.handle()) }
}

/// Plain `C_SignInit` + `C_Sign`.
fn plain_sign(s: &Session, kind: CK_MECHANISM_TYPE, key: ObjectHandle, data: &[u8]) -> Vec<u8> {
    let mut m = mechanism(kind);
    // SAFETY: valid handles; `m` outlives the call.
    check(
        unsafe { raw().C_SignInit(s.handle(), &mut m, key.handle()) },
        "C_SignInit",
    );
    let mut out = vec![0u8; 1024];
    let mut len = out.len() as CK_ULONG;
    // SAFETY: `data` holds its length, `out` has `len` writable bytes.
    let rv = unsafe {
        raw().C_Sign(
            s.handle(),
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len,
        )
    };
    check(rv, "C_Sign");
    out.truncate(len as usize);
    out
}

/// Plain `C_VerifyInit` + `C_Verify`.
fn plain_verify(
    s: &Session,
    kind: CK_MECHANISM_TYPE,
    key: ObjectHandle,
    data: &[u8],
    signature: &[u8],
) -> CK_RV {
    let mut m = mechanism(kind);
    // SAFETY: valid handles; `m` outlives the call.
    check(
        unsafe { raw().C_VerifyInit(s.handle(), &mut m, key.handle()) },
        "C_VerifyInit",
    );
    // SAFETY: `data` and `signature` hold their lengths.
    unsafe {
        raw().C_Verify(
            s.handle(),
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            signature.as_ptr() as *mut u8,
            signature.len() as CK_ULONG,
        )
    }
}

fn hmac_key(s: &Session, sign: bool) -> ObjectHandle {
    session_secret(
        s,
        KeyType::GENERIC_SECRET,
        b"a message-signing key, 32 bytes!",
        &[Attribute::Sign(sign), Attribute::Verify(true)],
    )
}

/// Mechanism, signing key, verifying key, whether Begin/Next is allowed.
fn cases(s: &Session) -> Vec<(CK_MECHANISM_TYPE, ObjectHandle, ObjectHandle, bool)> {
    let hmac = hmac_key(s, true);
    let (ec_pub, ec_priv) = gen_ec(s, P256, "msg-ec", b"msg-ec");
    let (ed_pub, ed_priv) = gen_ec(s, ED25519, "msg-ed", b"msg-ed");
    let (rsa_pub, rsa_priv) = gen_rsa(s, 2048, "msg-rsa", b"msg-rsa");
    vec![
        (CKM_SHA256_HMAC, hmac, hmac, true),
        (CKM_SHA384_HMAC, hmac, hmac, true),
        (CKM_ECDSA_SHA256, ec_priv, ec_pub, true),
        (CKM_EDDSA, ed_priv, ed_pub, true),
        (CKM_SHA256_RSA_PKCS, rsa_priv, rsa_pub, true),
        // Raw PKCS#1 v1.5 refuses C_SignUpdate, and so C_SignMessageBegin.
        (CKM_RSA_PKCS, rsa_priv, rsa_pub, false),
    ]
}

#[test]
fn message_signatures_verify_with_plain_verify_and_back() {
    let s = session("msg-cross");
    for (kind, sign_key, verify_key, _) in cases(&s) {
        let data = b"a message signed message-wise".to_vec();
        check(message_sign_init(&s, kind, sign_key), "C_MessageSignInit");
        let sig = sign_message(&s, &data).unwrap();
        check(message_sign_final(&s), "C_MessageSignFinal");
        check(
            plain_verify(&s, kind, verify_key, &data, &sig),
            &format!("C_Verify of a message signature 0x{kind:x}"),
        );

        let plain = plain_sign(&s, kind, sign_key, &data);
        check(
            message_verify_init(&s, kind, verify_key),
            "C_MessageVerifyInit",
        );
        check(
            verify_message(&s, &data, &plain),
            &format!("C_VerifyMessage of a C_Sign signature 0x{kind:x}"),
        );
        let mut forged = plain.clone();
        forged[0] ^= 1;
        assert_eq!(verify_message(&s, &data, &forged), CKR_SIGNATURE_INVALID);
        // A failed verification ends that message only.
        check(verify_message(&s, &data, &plain), "C_VerifyMessage again");
        check(message_verify_final(&s), "C_MessageVerifyFinal");
    }
}

#[test]
fn several_messages_and_multipart_equal_one_shot() {
    let s = session("msg-multi");
    for (kind, sign_key, verify_key, multipart) in cases(&s) {
        check(message_sign_init(&s, kind, sign_key), "C_MessageSignInit");
        check(
            message_verify_init(&s, kind, verify_key),
            "C_MessageVerifyInit",
        );
        let messages: [&[u8]; 3] = [b"first message", b"", b"a third, longer message here"];
        for data in messages {
            let one_shot = sign_message(&s, data).unwrap();
            check(verify_message(&s, data, &one_shot), "C_VerifyMessage");
            if !multipart {
                assert_eq!(
                    sign_message_begin(&s),
                    CKR_FUNCTION_NOT_SUPPORTED,
                    "0x{kind:x}"
                );
                assert_eq!(verify_message_begin(&s), CKR_FUNCTION_NOT_SUPPORTED);
                continue;
            }
            // Multi-part: three parts, the last with the two-call rule.
            let (a, rest) = data.split_at(data.len() / 3);
            let (b, c) = rest.split_at(rest.len() / 2);
            check(sign_message_begin(&s), "C_SignMessageBegin");
            check(sign_message_part(&s, a), "C_SignMessageNext");
            check(sign_message_part(&s, b), "C_SignMessageNext");
            let (rv, needed) = sign_message_last(&s, c, None);
            check(rv, "length query");
            let mut small = vec![0u8; 1];
            let (rv, _) = sign_message_last(&s, c, Some(&mut small));
            assert_eq!(rv, CKR_BUFFER_TOO_SMALL);
            let mut out = vec![0u8; needed as usize];
            let (rv, len) = sign_message_last(&s, c, Some(&mut out));
            check(rv, "last C_SignMessageNext");
            out.truncate(len as usize);
            if kind != CKM_ECDSA_SHA256 {
                assert_eq!(out, one_shot, "0x{kind:x}: multi-part equals one-shot");
            }
            // The multi-part signature verifies one-shot, in parts, and with plain C_Verify.
            check(
                verify_message(&s, data, &out),
                "C_VerifyMessage of multi-part",
            );
            check(verify_message_begin(&s), "C_VerifyMessageBegin");
            check(verify_message_next(&s, a, None), "C_VerifyMessageNext");
            check(verify_message_next(&s, b, None), "C_VerifyMessageNext");
            check(
                verify_message_next(&s, c, Some(&out)),
                "last C_VerifyMessageNext",
            );
            check(verify_message_begin(&s), "C_VerifyMessageBegin");
            check(verify_message_next(&s, data, None), "C_VerifyMessageNext");
            let mut forged = out.clone();
            forged[1] ^= 1;
            assert_eq!(
                verify_message_next(&s, b"", Some(&forged)),
                CKR_SIGNATURE_INVALID
            );
        }
        check(message_sign_final(&s), "C_MessageSignFinal");
        check(message_verify_final(&s), "C_MessageVerifyFinal");
        // The single-part sign/verify operations were untouched all along.
        let sig = plain_sign(&s, kind, sign_key, b"plain");
        check(
            plain_verify(&s, kind, verify_key, b"plain", &sig),
            "C_Verify",
        );
    }
}

#[test]
fn message_functions_follow_the_operation_rules() {
    let s = session("msg-rules");
    let hmac = hmac_key(&s, true);
    let data = b"data";
    // Nothing without Init.
    assert_eq!(sign_message(&s, data), Err(CKR_OPERATION_NOT_INITIALIZED));
    assert_eq!(sign_message_begin(&s), CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(sign_message_part(&s, data), CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(message_sign_final(&s), CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(
        verify_message(&s, data, data),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(verify_message_begin(&s), CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(
        verify_message_next(&s, data, None),
        CKR_OPERATION_NOT_INITIALIZED
    );
    assert_eq!(message_verify_final(&s), CKR_OPERATION_NOT_INITIALIZED);

    check(
        message_sign_init(&s, CKM_SHA256_HMAC, hmac),
        "C_MessageSignInit",
    );
    // One process per session.
    assert_eq!(
        message_sign_init(&s, CKM_SHA256_HMAC, hmac),
        CKR_OPERATION_ACTIVE
    );
    // Next before Begin.
    assert_eq!(sign_message_part(&s, data), CKR_OPERATION_NOT_INITIALIZED);
    // A second message while one is in progress.
    check(sign_message_begin(&s), "C_SignMessageBegin");
    assert_eq!(sign_message_begin(&s), CKR_OPERATION_ACTIVE);
    assert_eq!(sign_message(&s, data), Err(CKR_OPERATION_ACTIVE));
    check(sign_message_part(&s, data), "C_SignMessageNext");
    let mut out = vec![0u8; 32];
    let (rv, len) = sign_message_last(&s, b"", Some(&mut out));
    check(rv, "last part");
    assert_eq!(len, 32);
    // A per-message parameter: no mechanism has one; the process survives.
    let param = [0u8; 4];
    let mut len: CK_ULONG = 32;
    // SAFETY: `param` and `data` hold their lengths, `out` has 32 writable bytes.
    let rv = unsafe {
        raw().C_SignMessage(
            s.handle(),
            param.as_ptr() as *mut _,
            param.len() as CK_ULONG,
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            out.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!(rv, CKR_MECHANISM_PARAM_INVALID);
    // A buffer too small keeps the message: the retry hands the same MAC out.
    let mut small = [0u8; 4];
    let mut len: CK_ULONG = small.len() as CK_ULONG;
    // SAFETY: `data` holds its length, `small` has `len` writable bytes.
    let rv = unsafe {
        raw().C_SignMessage(
            s.handle(),
            null_mut(),
            0,
            data.as_ptr() as *mut u8,
            data.len() as CK_ULONG,
            small.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!(rv, CKR_BUFFER_TOO_SMALL);
    assert_eq!(len, 32);
    assert_eq!(sign_message_begin(&s), CKR_OPERATION_ACTIVE);
    let mac = sign_message(&s, data).unwrap();
    assert_eq!(mac, plain_sign(&s, CKM_SHA256_HMAC, hmac, data));
    // Final ends the process, an unfinished message with it.
    check(sign_message_begin(&s), "C_SignMessageBegin");
    check(message_sign_final(&s), "C_MessageSignFinal");
    assert_eq!(sign_message(&s, data), Err(CKR_OPERATION_NOT_INITIALIZED));
    assert_eq!(message_sign_final(&s), CKR_OPERATION_NOT_INITIALIZED);

    // Verify: one process, one message at a time, Next needs Begin.
    check(
        message_verify_init(&s, CKM_SHA256_HMAC, hmac),
        "C_MessageVerifyInit",
    );
    assert_eq!(
        message_verify_init(&s, CKM_SHA256_HMAC, hmac),
        CKR_OPERATION_ACTIVE
    );
    assert_eq!(
        verify_message_next(&s, data, None),
        CKR_OPERATION_NOT_INITIALIZED
    );
    check(verify_message_begin(&s), "C_VerifyMessageBegin");
    assert_eq!(verify_message_begin(&s), CKR_OPERATION_ACTIVE);
    assert_eq!(verify_message(&s, data, &mac), CKR_OPERATION_ACTIVE);
    check(
        verify_message_next(&s, data, Some(&mac)),
        "C_VerifyMessageNext",
    );
    assert_eq!(
        verify_message_next(&s, data, None),
        CKR_OPERATION_NOT_INITIALIZED
    );
    // C_MessageVerifyInit with a NULL mechanism cancels the process.
    check(verify_message_begin(&s), "C_VerifyMessageBegin");
    // SAFETY: a NULL mechanism (cancel).
    let rv = unsafe { raw().C_MessageVerifyInit(s.handle(), null_mut(), hmac.handle()) };
    check(rv, "cancel");
    assert_eq!(
        verify_message(&s, data, &mac),
        CKR_OPERATION_NOT_INITIALIZED
    );
}

#[test]
fn init_checks_the_key_as_the_other_inits_do() {
    let s = session("msg-keys");
    let no_sign = hmac_key(&s, false);
    assert_eq!(
        message_sign_init(&s, CKM_SHA256_HMAC, no_sign),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    // Verification is allowed on it.
    check(
        message_verify_init(&s, CKM_SHA256_HMAC, no_sign),
        "C_MessageVerifyInit",
    );
    check(message_verify_final(&s), "C_MessageVerifyFinal");
    // A public key cannot sign, a mechanism that does not sign cannot start a process.
    let (ec_pub, ec_priv) = gen_ec(&s, P256, "msg-keys-ec", b"k");
    assert_ne!(message_sign_init(&s, CKM_ECDSA_SHA256, ec_pub), CKR_OK);
    assert_ne!(message_verify_init(&s, CKM_ECDSA_SHA256, ec_priv), CKR_OK);
    assert_eq!(
        message_sign_init(&s, CKM_SHA256, ec_priv),
        CKR_MECHANISM_INVALID
    );
    // SAFETY: a handle no object has; the module must refuse it.
    let bogus = unsafe { ObjectHandle::new_from_raw(0x7fff_fff0) };
    assert_eq!(
        message_sign_init(&s, CKM_SHA256_HMAC, bogus),
        CKR_KEY_HANDLE_INVALID
    );
    // Nothing was started by the refusals.
    assert_eq!(sign_message(&s, b"x"), Err(CKR_OPERATION_NOT_INITIALIZED));
}

#[test]
fn mechanism_info_flags_message_signing() {
    let p = ctx();
    let slot = new_token(p, "msg-info");
    let mut info = CK_MECHANISM_INFO {
        ulMinKeySize: 0,
        ulMaxKeySize: 0,
        flags: 0,
    };
    let id = slot.id();
    for kind in [
        CKM_SHA256_HMAC,
        CKM_AES_CMAC,
        CKM_ECDSA,
        CKM_ECDSA_SHA256,
        CKM_RSA_PKCS,
        CKM_SHA256_RSA_PKCS_PSS,
        CKM_EDDSA,
    ] {
        // SAFETY: `info` is writable.
        check(
            unsafe { raw().C_GetMechanismInfo(id, kind, &mut info) },
            "C_GetMechanismInfo",
        );
        let both = CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY;
        assert_eq!(info.flags & both, both, "0x{kind:x}");
    }
    for kind in [CKM_SHA256, CKM_AES_GCM, CKM_EC_KEY_PAIR_GEN] {
        // SAFETY: `info` is writable.
        check(
            unsafe { raw().C_GetMechanismInfo(id, kind, &mut info) },
            "C_GetMechanismInfo",
        );
        let any = CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY;
        assert_eq!(info.flags & any, 0, "0x{kind:x}");
    }
}

/// `CKA_SQLHSM_KEY_STATUS` set on a token key (1 Active, 2 Inactive, 3 Compromised).
fn set_status(s: &Session, key: ObjectHandle, status: u64) {
    use cryptoki::object::AttributeType;
    s.update_attributes(
        key,
        &[Attribute::VendorDefined((
            AttributeType::VendorDefined(CKA_SQLHSM_KEY_STATUS),
            status.to_ne_bytes().to_vec(),
        ))],
    )
    .unwrap();
}

#[test]
fn key_status_is_checked_at_init_and_at_each_message() {
    let s = session("msg-status");
    let (public, private) = gen_ec(&s, P256, "msg-status", b"st");
    // Inactive: no new signatures, verification still allowed.
    set_status(&s, private, 2);
    assert_eq!(
        message_sign_init(&s, CKM_ECDSA_SHA256, private),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    set_status(&s, private, 1);
    check(
        message_sign_init(&s, CKM_ECDSA_SHA256, private),
        "C_MessageSignInit",
    );
    check(
        message_verify_init(&s, CKM_ECDSA_SHA256, public),
        "C_MessageVerifyInit",
    );
    let sig = sign_message(&s, b"before").unwrap();
    // Deactivated while the process runs: the next message is refused, and the process ends.
    set_status(&s, private, 2);
    assert_eq!(
        sign_message(&s, b"after"),
        Err(CKR_KEY_FUNCTION_NOT_PERMITTED)
    );
    assert_eq!(sign_message_begin(&s), CKR_OPERATION_NOT_INITIALIZED);
    check(verify_message(&s, b"before", &sig), "C_VerifyMessage");
    // Compromised: verification is refused too.
    set_status(&s, public, 3);
    assert_eq!(
        verify_message(&s, b"before", &sig),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
    assert_eq!(
        message_verify_init(&s, CKM_ECDSA_SHA256, public),
        CKR_KEY_FUNCTION_NOT_PERMITTED
    );
}

//! The PKCS#11 3.2 interface through the C ABI, on the backend `SQLHSM_TEST_BACKEND` names:
//! `C_GetInterfaceList` / `C_GetInterface` (three "PKCS 11" interfaces, 3.2 the default, 3.0 and
//! 2.40 on request), every slot of the 3.2 list filled, `C_VerifySignatureInit` …
//! `C_VerifySignatureFinal` for ECDSA, RSA-PSS, EdDSA and HMAC (valid, invalid, wrong length,
//! single- and multi-part, how the operation ends), and the 3.2 functions sqlhsm does not offer.

mod common;

use std::ffi::CStr;
use std::ptr::{null_mut, NonNull};

use common::*;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

// ---------------------------------------------------------------------------------------------
// The interfaces.

fn get_interface(
    name: Option<&CStr>,
    version: Option<(u8, u8)>,
    flags: CK_FLAGS,
) -> Result<&'static CK_INTERFACE, CK_RV> {
    let mut version = version.map(|(major, minor)| CK_VERSION { major, minor });
    let version_ptr = version.as_mut().map_or(null_mut(), std::ptr::from_mut);
    let name_ptr = name.map_or(null_mut(), |n| n.as_ptr().cast_mut().cast());
    let mut interface: *mut CK_INTERFACE = null_mut();
    // SAFETY: every pointer is NULL or a live local.
    let rv = unsafe { raw().C_GetInterface(name_ptr, version_ptr, &mut interface, flags) };
    if rv != CKR_OK {
        return Err(rv);
    }
    // SAFETY: on success the module points us at one of its static interfaces.
    Ok(unsafe { &*interface })
}

/// The version an interface's function list starts with.
fn list_version(interface: &CK_INTERFACE) -> (u8, u8) {
    // SAFETY: every function list starts with a CK_VERSION.
    let v = unsafe { interface.pFunctionList.cast::<CK_VERSION>().read() };
    (v.major, v.minor)
}

fn name_of(interface: &CK_INTERFACE) -> &CStr {
    // SAFETY: the module's interface names are NUL-terminated statics.
    unsafe { CStr::from_ptr(interface.pInterfaceName.cast()) }
}

/// The 3.2 list of the default interface.
fn list_3_2() -> &'static CK_FUNCTION_LIST_3_2 {
    let interface = get_interface(None, None, 0).expect("the default interface");
    assert_eq!(list_version(interface), (3, 2));
    // SAFETY: a (3, 2) list is a CK_FUNCTION_LIST_3_2.
    unsafe { &*interface.pFunctionList.cast::<CK_FUNCTION_LIST_3_2>() }
}

#[test]
fn the_interface_list_offers_3_2_3_0_and_2_40() {
    let _ = ctx();
    let mut count: CK_ULONG = 0;
    // SAFETY: a NULL list asks for the count.
    assert_eq!(
        unsafe { raw().C_GetInterfaceList(null_mut(), &mut count) },
        CKR_OK
    );
    assert_eq!(count, 3);
    let empty = CK_INTERFACE {
        pInterfaceName: null_mut(),
        pFunctionList: null_mut(),
        flags: 0,
    };
    let mut list = [empty; 3];
    let mut short: CK_ULONG = 2;
    // SAFETY: `list` holds more than `short` entries.
    assert_eq!(
        unsafe { raw().C_GetInterfaceList(list.as_mut_ptr(), &mut short) },
        CKR_BUFFER_TOO_SMALL
    );
    assert_eq!(short, 3);
    // SAFETY: `list` holds `count` entries.
    assert_eq!(
        unsafe { raw().C_GetInterfaceList(list.as_mut_ptr(), &mut count) },
        CKR_OK
    );
    let versions: Vec<_> = list.iter().map(list_version).collect();
    assert_eq!(versions, [(3, 2), (3, 0), (2, 40)]);
    for interface in &list {
        assert_eq!(name_of(interface).to_bytes(), b"PKCS 11");
        assert_eq!(
            interface.flags, 0,
            "no interface claims CKF_INTERFACE_FORK_SAFE"
        );
    }
    // SAFETY: a NULL count is refused.
    assert_eq!(
        unsafe { raw().C_GetInterfaceList(list.as_mut_ptr(), null_mut()) },
        CKR_ARGUMENTS_BAD
    );
}

#[test]
fn get_interface_by_name_version_and_flags() {
    let _ = ctx();
    let ours = Some(c"PKCS 11");
    let version = |name, v| get_interface(name, v, 0).map(list_version);
    assert_eq!(version(None, None), Ok((3, 2)), "the default");
    assert_eq!(version(ours, None), Ok((3, 2)));
    assert_eq!(version(ours, Some((3, 2))), Ok((3, 2)));
    assert_eq!(version(ours, Some((3, 0))), Ok((3, 0)));
    assert_eq!(version(None, Some((3, 0))), Ok((3, 0)));
    assert_eq!(version(ours, Some((2, 40))), Ok((2, 40)));
    assert_eq!(version(ours, Some((3, 1))), Err(CKR_ARGUMENTS_BAD));
    assert_eq!(version(ours, Some((3, 3))), Err(CKR_ARGUMENTS_BAD));
    assert_eq!(version(Some(c"PKCS 11 "), None), Err(CKR_ARGUMENTS_BAD));
    assert_eq!(
        version(Some(c"Vendor sqlhsm"), None),
        Err(CKR_ARGUMENTS_BAD)
    );
    assert_eq!(
        get_interface(ours, None, CKF_INTERFACE_FORK_SAFE).map(list_version),
        Err(CKR_ARGUMENTS_BAD)
    );
    // SAFETY: a NULL ppInterface is refused.
    assert_eq!(
        unsafe { raw().C_GetInterface(null_mut(), null_mut(), null_mut(), 0) },
        CKR_ARGUMENTS_BAD
    );
    // The 2.40 interface is what C_GetFunctionList returns.
    let mut list: *mut CK_FUNCTION_LIST = null_mut();
    // SAFETY: `list` is a live local.
    assert_eq!(unsafe { raw().C_GetFunctionList(&mut list) }, CKR_OK);
    let v2 = get_interface(ours, Some((2, 40)), 0).expect("2.40");
    assert_eq!(v2.pFunctionList.cast::<CK_FUNCTION_LIST>(), list);
}

/// The function pointers of a list (everything after its version).
fn slots<T>(list: &T) -> &[usize] {
    // SAFETY: a function list is a CK_VERSION (padded to a word) and then function pointers.
    unsafe {
        std::slice::from_raw_parts(
            std::ptr::from_ref(list).cast::<usize>().add(1),
            (size_of::<T>() - size_of::<usize>()) / size_of::<usize>(),
        )
    }
}

#[test]
fn every_slot_of_the_3_2_list_is_filled_and_the_3_0_list_is_its_prefix() {
    let _ = ctx();
    let l32 = slots(list_3_2());
    assert_eq!(l32.len(), 104);
    assert!(l32.iter().all(|&p| p != 0), "a NULL slot in the 3.2 list");
    let v30 = get_interface(Some(c"PKCS 11"), Some((3, 0)), 0).expect("3.0");
    // SAFETY: a (3, 0) list is a CK_FUNCTION_LIST_3_0.
    let l30 = slots(unsafe { &*v30.pFunctionList.cast::<CK_FUNCTION_LIST_3_0>() });
    assert_eq!(&l32[..l30.len()], l30);
    // The 3.2 slots are the exported functions of the same names.
    let l = list_3_2();
    let raw = raw();
    macro_rules! exported {
        ($($name:ident),*) => {$(
            assert_eq!(
                l.$name.map(|f| f as usize),
                raw.$name.as_ref().ok().map(|f| *f as usize),
                stringify!($name)
            );
        )*};
    }
    exported!(
        C_EncapsulateKey,
        C_DecapsulateKey,
        C_VerifySignatureInit,
        C_VerifySignature,
        C_VerifySignatureUpdate,
        C_VerifySignatureFinal,
        C_GetSessionValidationFlags,
        C_AsyncComplete,
        C_AsyncGetID,
        C_AsyncJoin,
        C_WrapKeyAuthenticated,
        C_UnwrapKeyAuthenticated
    );
}

#[test]
fn the_unoffered_3_2_functions_answer_function_not_supported_whatever_the_pointers() {
    let p = ctx();
    let slot = new_token(p, "iface32-unsupported");
    let s = user_session(p, slot);
    let h = s.handle();
    let l = list_3_2();
    let junk = NonNull::<u8>::dangling().as_ptr();
    for (session, ptr) in [(h, null_mut()), (h, junk), (0xdead_beef, junk)] {
        // SAFETY: each function must answer without touching its pointers.
        unsafe {
            let flags = ptr.cast::<CK_FLAGS>();
            let rv = (l.C_GetSessionValidationFlags.unwrap())(session, 0, flags);
            assert_eq!(rv, CKR_FUNCTION_NOT_SUPPORTED);
            let rv = (l.C_AsyncComplete.unwrap())(session, ptr, ptr.cast());
            assert_eq!(rv, CKR_FUNCTION_NOT_SUPPORTED);
            let rv = (l.C_AsyncGetID.unwrap())(session, ptr, ptr.cast());
            assert_eq!(rv, CKR_FUNCTION_NOT_SUPPORTED);
            let rv = (l.C_AsyncJoin.unwrap())(session, ptr, 7, ptr, CK_ULONG::MAX);
            assert_eq!(rv, CKR_FUNCTION_NOT_SUPPORTED);
            let mech = ptr.cast::<CK_MECHANISM>();
            let len = ptr.cast::<CK_ULONG>();
            let rv = (l.C_WrapKeyAuthenticated.unwrap())(session, mech, 1, 2, ptr, 3, ptr, len);
            assert_eq!(rv, CKR_FUNCTION_NOT_SUPPORTED);
            let (attrs, key) = (ptr.cast::<CK_ATTRIBUTE>(), ptr.cast::<CK_OBJECT_HANDLE>());
            let rv = (l.C_UnwrapKeyAuthenticated.unwrap())(
                session, mech, 1, ptr, 3, attrs, 4, ptr, 5, key,
            );
            assert_eq!(rv, CKR_FUNCTION_NOT_SUPPORTED);
        }
    }
    // The session is still fine.
    s.generate_random_vec(8).expect("the session still works");
}

// ---------------------------------------------------------------------------------------------
// C_VerifySignature*.

fn vs_init(s: &Session, m: &mut CK_MECHANISM, key: ObjectHandle, signature: &[u8]) -> CK_RV {
    let mut sig = signature.to_vec();
    let p = if sig.is_empty() {
        null_mut()
    } else {
        sig.as_mut_ptr()
    };
    // SAFETY: `m` and `sig` are live for the call.
    unsafe { raw().C_VerifySignatureInit(s.handle(), m, key.handle(), p, sig.len() as CK_ULONG) }
}

fn vs(s: &Session, data: &[u8]) -> CK_RV {
    let mut d = data.to_vec();
    // SAFETY: `d` is live for the call.
    unsafe { raw().C_VerifySignature(s.handle(), d.as_mut_ptr(), d.len() as CK_ULONG) }
}

fn vs_update(s: &Session, part: &[u8]) -> CK_RV {
    let mut d = part.to_vec();
    // SAFETY: `d` is live for the call.
    unsafe { raw().C_VerifySignatureUpdate(s.handle(), d.as_mut_ptr(), d.len() as CK_ULONG) }
}

fn vs_final(s: &Session) -> CK_RV {
    // SAFETY: no pointers.
    unsafe { raw().C_VerifySignatureFinal(s.handle()) }
}

/// `C_VerifySignatureInit`, then `C_VerifySignature` over `data`, or one
/// `C_VerifySignatureUpdate` per `parts`-byte piece and `C_VerifySignatureFinal`.
fn verify_signature(
    s: &Session,
    m: &mut CK_MECHANISM,
    key: ObjectHandle,
    data: &[u8],
    signature: &[u8],
    parts: Option<usize>,
) -> CK_RV {
    let rv = vs_init(s, m, key, signature);
    if rv != CKR_OK {
        return rv;
    }
    match parts {
        None => vs(s, data),
        Some(n) => {
            for piece in data.chunks(n) {
                let rv = vs_update(s, piece);
                if rv != CKR_OK {
                    return rv;
                }
            }
            vs_final(s)
        }
    }
}

/// A signing mechanism under test: how to sign (cryptoki), how to verify (raw), the key pair.
struct Case {
    name: &'static str,
    sign: Mechanism<'static>,
    /// The raw mechanism number and its parameter bytes.
    kind: CK_MECHANISM_TYPE,
    param: Vec<u8>,
    signer: ObjectHandle,
    verifier: ObjectHandle,
}

impl Case {
    fn mech(&mut self) -> CK_MECHANISM {
        let (p, len) = if self.param.is_empty() {
            (null_mut(), 0)
        } else {
            (self.param.as_mut_ptr().cast(), self.param.len() as CK_ULONG)
        };
        CK_MECHANISM {
            mechanism: self.kind,
            pParameter: p,
            ulParameterLen: len,
        }
    }
}

fn pss_param() -> Vec<u8> {
    let p = CK_RSA_PKCS_PSS_PARAMS {
        hashAlg: CKM_SHA256,
        mgf: CKG_MGF1_SHA256,
        sLen: 32,
    };
    // SAFETY: a plain C struct read as its bytes.
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(&p).cast::<u8>(), size_of_val(&p)) }
        .to_vec()
}

fn cases(s: &Session, label: &str) -> Vec<Case> {
    use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
    let (ec_pub, ec_priv) = gen_ec(s, P256, &format!("{label}-ec"), b"ec");
    let (ed_pub, ed_priv) = gen_ec(s, ED25519, &format!("{label}-ed"), b"ed");
    let (rsa_pub, rsa_priv) = gen_rsa(s, 2048, &format!("{label}-rsa"), b"rsa");
    let hmac = session_secret(
        s,
        KeyType::GENERIC_SECRET,
        &[0x5a; 32],
        &[Attribute::Sign(true), Attribute::Verify(true)],
    );
    let pss = PkcsPssParams {
        hash_alg: cryptoki::mechanism::MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    };
    vec![
        Case {
            name: "ECDSA-SHA256",
            sign: Mechanism::EcdsaSha256,
            kind: CKM_ECDSA_SHA256,
            param: Vec::new(),
            signer: ec_priv,
            verifier: ec_pub,
        },
        Case {
            name: "RSA-PSS-SHA256",
            sign: Mechanism::Sha256RsaPkcsPss(pss),
            kind: CKM_SHA256_RSA_PKCS_PSS,
            param: pss_param(),
            signer: rsa_priv,
            verifier: rsa_pub,
        },
        Case {
            name: "EdDSA (Ed25519)",
            sign: Mechanism::Eddsa(cryptoki::mechanism::eddsa::EddsaParams::new(
                cryptoki::mechanism::eddsa::EddsaSignatureScheme::Pure,
            )),
            kind: CKM_EDDSA,
            param: Vec::new(),
            signer: ed_priv,
            verifier: ed_pub,
        },
        Case {
            name: "HMAC-SHA256",
            sign: Mechanism::Sha256Hmac,
            kind: CKM_SHA256_HMAC,
            param: Vec::new(),
            signer: hmac,
            verifier: hmac,
        },
    ]
}

const DATA: &[u8] = b"a message verified with the signature given first, PKCS#11 3.2";

#[test]
fn verify_signature_single_and_multi_part_valid_invalid_and_wrong_length() {
    let p = ctx();
    let slot = new_token(p, "iface32-verify");
    let s = user_session(p, slot);
    for mut case in cases(&s, "vs") {
        let name = case.name;
        let sig = s.sign(&case.sign, case.signer, DATA).expect("C_Sign");
        let mut m = case.mech();
        let key = case.verifier;
        // Valid, single and multi-part (pieces of every size, one byte too).
        assert_eq!(
            verify_signature(&s, &mut m, key, DATA, &sig, None),
            CKR_OK,
            "{name}"
        );
        for n in [1, 7, DATA.len()] {
            let rv = verify_signature(&s, &mut m, key, DATA, &sig, Some(n));
            assert_eq!(rv, CKR_OK, "{name} in {n}-byte parts");
        }
        // The operation ended with each: nothing left to finish.
        assert_eq!(vs(&s, DATA), CKR_OPERATION_NOT_INITIALIZED, "{name}");
        assert_eq!(vs_final(&s), CKR_OPERATION_NOT_INITIALIZED, "{name}");
        // Invalid: a changed signature, changed data; single and multi-part.
        let mut bad = sig.clone();
        bad[sig.len() / 2] ^= 0x01;
        let mut other = DATA.to_vec();
        other[0] ^= 0x80;
        for parts in [None, Some(5)] {
            let rv = verify_signature(&s, &mut m, key, DATA, &bad, parts);
            assert_eq!(
                rv, CKR_SIGNATURE_INVALID,
                "{name} changed signature {parts:?}"
            );
            let rv = verify_signature(&s, &mut m, key, &other, &sig, parts);
            assert_eq!(rv, CKR_SIGNATURE_INVALID, "{name} changed data {parts:?}");
            // SIGNATURE_INVALID ended the operation too.
            assert_eq!(vs_final(&s), CKR_OPERATION_NOT_INITIALIZED, "{name}");
        }
        // Wrong lengths are refused at the *Init, and no operation starts.
        let longer = [sig.as_slice(), &[0]].concat();
        for wrong in [&sig[..sig.len() - 1], &longer[..], &[][..]] {
            let rv = vs_init(&s, &mut m, key, wrong);
            assert_eq!(rv, CKR_SIGNATURE_LEN_RANGE, "{name}: {} bytes", wrong.len());
            assert_eq!(vs(&s, DATA), CKR_OPERATION_NOT_INITIALIZED, "{name}");
        }
        // The C_Verify* path agrees (the same operation underneath).
        s.verify(&case.sign, key, DATA, &sig).expect("C_Verify");
    }
}

#[test]
fn verify_signature_operation_rules() {
    let p = ctx();
    let slot = new_token(p, "iface32-rules");
    let s = user_session(p, slot);
    let mut case = cases(&s, "rules").swap_remove(0);
    let sig = s.sign(&case.sign, case.signer, DATA).expect("C_Sign");
    let mut m = case.mech();
    let key = case.verifier;

    // One verification per session, whichever *Init started it.
    assert_eq!(vs_init(&s, &mut m, key, &sig), CKR_OK);
    assert_eq!(vs_init(&s, &mut m, key, &sig), CKR_OPERATION_ACTIVE);
    // SAFETY: `m` is live.
    let rv = unsafe { raw().C_VerifyInit(s.handle(), &mut m, key.handle()) };
    assert_eq!(rv, CKR_OPERATION_ACTIVE);
    // A NULL mechanism ends it (CKR_OK), and then nothing is active.
    // SAFETY: NULL mechanism, NULL signature.
    let rv = unsafe { raw().C_VerifySignatureInit(s.handle(), null_mut(), 0, null_mut(), 0) };
    assert_eq!(rv, CKR_OK);
    assert_eq!(vs(&s, DATA), CKR_OPERATION_NOT_INITIALIZED);
    // C_SessionCancel(CKF_VERIFY) ends it too.
    assert_eq!(vs_init(&s, &mut m, key, &sig), CKR_OK);
    // SAFETY: no pointers.
    assert_eq!(
        unsafe { raw().C_SessionCancel(s.handle(), CKF_VERIFY) },
        CKR_OK
    );
    assert_eq!(vs_final(&s), CKR_OPERATION_NOT_INITIALIZED);

    // The C_Verify* calls cannot finish a C_VerifySignatureInit operation (and the failure
    // ends it), nor the reverse.
    assert_eq!(vs_init(&s, &mut m, key, &sig), CKR_OK);
    let mut d = DATA.to_vec();
    let mut sg = sig.clone();
    // SAFETY: live buffers.
    let rv = unsafe {
        raw().C_Verify(
            s.handle(),
            d.as_mut_ptr(),
            d.len() as CK_ULONG,
            sg.as_mut_ptr(),
            sg.len() as CK_ULONG,
        )
    };
    assert_eq!(rv, CKR_OPERATION_NOT_INITIALIZED);
    assert_eq!(vs(&s, DATA), CKR_OPERATION_NOT_INITIALIZED);
    // SAFETY: `m` is live.
    let rv = unsafe { raw().C_VerifyInit(s.handle(), &mut m, key.handle()) };
    assert_eq!(rv, CKR_OK);
    assert_eq!(vs_update(&s, DATA), CKR_OPERATION_NOT_INITIALIZED);
    // SAFETY: live buffers.
    let rv = unsafe { raw().C_VerifyFinal(s.handle(), sg.as_mut_ptr(), sg.len() as CK_ULONG) };
    assert_eq!(
        rv, CKR_OPERATION_NOT_INITIALIZED,
        "the failed call ended it"
    );

    // C_VerifySignature after an update is refused and ends the operation.
    assert_eq!(vs_init(&s, &mut m, key, &sig), CKR_OK);
    assert_eq!(vs_update(&s, DATA), CKR_OK);
    assert_eq!(vs(&s, DATA), CKR_OPERATION_ACTIVE);
    assert_eq!(vs_final(&s), CKR_OPERATION_NOT_INITIALIZED);

    // A mechanism that is single-part only (raw ECDSA over a digest) refuses updates.
    let mut ecdsa = CK_MECHANISM {
        mechanism: CKM_ECDSA,
        pParameter: null_mut(),
        ulParameterLen: 0,
    };
    let digest = openssl::sha::sha256(DATA);
    let raw_sig = s
        .sign(&Mechanism::Ecdsa, case.signer, &digest)
        .expect("C_Sign(CKM_ECDSA)");
    let rv = verify_signature(&s, &mut ecdsa, key, &digest, &raw_sig, None);
    assert_eq!(rv, CKR_OK);
    assert_eq!(vs_init(&s, &mut ecdsa, key, &raw_sig), CKR_OK);
    assert_eq!(vs_update(&s, &digest), CKR_FUNCTION_NOT_SUPPORTED);
    assert_eq!(vs_final(&s), CKR_OPERATION_NOT_INITIALIZED);
}

#[test]
fn verify_signature_argument_and_key_errors() {
    let p = ctx();
    let slot = new_token(p, "iface32-args");
    let s = user_session(p, slot);
    let mut case = cases(&s, "args").swap_remove(0);
    let sig = s.sign(&case.sign, case.signer, DATA).expect("C_Sign");
    let mut m = case.mech();
    let key = case.verifier;
    let h = s.handle();
    // SAFETY (all the raw calls below): pointers are NULL or live locals; the NULL ones come
    // with lengths the module must refuse before reading.
    unsafe {
        // A NULL signature with a length.
        let rv = raw().C_VerifySignatureInit(h, &mut m, key.handle(), null_mut(), 64);
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        assert_eq!(vs(&s, DATA), CKR_OPERATION_NOT_INITIALIZED);
        // NULL data with a length ends the operation.
        assert_eq!(vs_init(&s, &mut m, key, &sig), CKR_OK);
        assert_eq!(raw().C_VerifySignature(h, null_mut(), 4), CKR_ARGUMENTS_BAD);
        assert_eq!(vs(&s, DATA), CKR_OPERATION_NOT_INITIALIZED);
        assert_eq!(vs_init(&s, &mut m, key, &sig), CKR_OK);
        assert_eq!(
            raw().C_VerifySignatureUpdate(h, null_mut(), 4),
            CKR_ARGUMENTS_BAD
        );
        assert_eq!(vs_final(&s), CKR_OPERATION_NOT_INITIALIZED);
        // An absurd length is refused before anything is read.
        let mut byte = [0u8; 1];
        assert_eq!(vs_init(&s, &mut m, key, &sig), CKR_OK);
        let rv = raw().C_VerifySignatureUpdate(h, byte.as_mut_ptr(), CK_ULONG::MAX);
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        // Sessions and keys.
        let mut sg = sig.clone();
        let (p_sig, l_sig) = (sg.as_mut_ptr(), sg.len() as CK_ULONG);
        let rv = raw().C_VerifySignatureInit(0xdead_beef, &mut m, key.handle(), p_sig, l_sig);
        assert_eq!(rv, CKR_SESSION_HANDLE_INVALID);
        assert_eq!(
            raw().C_VerifySignatureFinal(0xdead_beef),
            CKR_SESSION_HANDLE_INVALID
        );
        let rv = raw().C_VerifySignatureInit(h, &mut m, 0x7fff_fff0, p_sig, l_sig);
        assert_eq!(rv, CKR_KEY_HANDLE_INVALID);
        // The private key cannot verify; a mechanism that does not verify is invalid.
        let rv = raw().C_VerifySignatureInit(h, &mut m, case.signer.handle(), p_sig, l_sig);
        assert!(
            rv == CKR_KEY_TYPE_INCONSISTENT || rv == CKR_KEY_FUNCTION_NOT_PERMITTED,
            "{rv:#x}"
        );
        let mut sha = CK_MECHANISM {
            mechanism: CKM_SHA256,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        let rv = raw().C_VerifySignatureInit(h, &mut sha, key.handle(), p_sig, l_sig);
        assert_eq!(rv, CKR_MECHANISM_INVALID);
        // A key whose CKA_VERIFY is false.
        let hmac = session_secret(
            &s,
            KeyType::GENERIC_SECRET,
            &[1; 32],
            &[Attribute::Sign(true), Attribute::Verify(false)],
        );
        let mut hm = CK_MECHANISM {
            mechanism: CKM_SHA256_HMAC,
            pParameter: null_mut(),
            ulParameterLen: 0,
        };
        let mut tag = [0u8; 32];
        let rv = raw().C_VerifySignatureInit(h, &mut hm, hmac.handle(), tag.as_mut_ptr(), 32);
        assert_eq!(rv, CKR_KEY_FUNCTION_NOT_PERMITTED);
    }
}

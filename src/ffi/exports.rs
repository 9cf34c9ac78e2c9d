//! Every function of the PKCS#11 3.2 function list (§5.4–§5.21), in the spec's order, each written
//! out by hand so cbindgen sees it. Each body is one [`guard`] call that turns the caller's memory
//! into plain values through [`ptr`] and calls the matching `crate::api` function. Pointer checks
//! happen before the api call, so a rejected call has no side effect.
//!
//! Functions sqlhsm does not implement (the 3.2 asynchronous, validation-flag and authenticated
//! wrapping functions) answer `CKR_FUNCTION_NOT_SUPPORTED`, still through the guard.

use cryptoki_sys::{
    CKF_DECRYPT, CKF_DIGEST, CKF_ENCRYPT, CKF_LIBRARY_CANT_CREATE_OS_THREADS, CKF_MESSAGE_DECRYPT,
    CKF_MESSAGE_ENCRYPT, CKF_MESSAGE_SIGN, CKF_MESSAGE_VERIFY, CKF_OS_LOCKING_OK, CKF_SIGN,
    CKF_SIGN_RECOVER, CKF_VERIFY, CKF_VERIFY_RECOVER, CK_ASYNC_DATA, CK_ATTRIBUTE_PTR, CK_BBOOL,
    CK_BYTE_PTR, CK_C_INITIALIZE_ARGS, CK_FLAGS, CK_INFO_PTR, CK_INVALID_HANDLE,
    CK_MECHANISM_INFO_PTR, CK_MECHANISM_PTR, CK_MECHANISM_TYPE, CK_MECHANISM_TYPE_PTR, CK_NOTIFY,
    CK_OBJECT_HANDLE, CK_OBJECT_HANDLE_PTR, CK_RV, CK_SESSION_HANDLE, CK_SESSION_HANDLE_PTR,
    CK_SESSION_INFO_PTR, CK_SESSION_VALIDATION_FLAGS_TYPE, CK_SLOT_ID, CK_SLOT_ID_PTR,
    CK_SLOT_INFO_PTR, CK_TOKEN_INFO_PTR, CK_ULONG, CK_ULONG_PTR, CK_USER_TYPE, CK_UTF8CHAR_PTR,
    CK_VOID_PTR,
};

use super::guard::{guard, guard_operation, guard_uninitialized};
use super::ptr;
use crate::api;
use crate::api::general::InitArgs;
use crate::error::{Result, Rv};
use crate::types::Mechanism;

/// What every mechanism-taking `C_*Init` of an operation does with its `pMechanism`, said once:
/// NULL ends the session's active `operation` (PKCS#11 3.0 §5.8, §5.9, §5.10, §5.11, §5.13: the
/// `*Init` "can be called with pMechanism set to NULL_PTR to terminate an active … operation"),
/// and the key handle is not looked at. The spec allows only `CKR_OK` or
/// `CKR_OPERATION_CANCEL_FAILED` for this form and sqlhsm can always cancel, so the answer is
/// `CKR_OK`, also when nothing was active (like `C_SessionCancel`). Otherwise the mechanism is
/// decoded and `start` runs.
///
/// # Safety
/// As [`ptr::mechanism`].
unsafe fn init_or_end(
    session: CK_SESSION_HANDLE,
    operation: CK_FLAGS,
    p: CK_MECHANISM_PTR,
    start: impl FnOnce(&Mechanism) -> Result<()>,
) -> Result<()> {
    // SAFETY: forwarded contract.
    match unsafe { ptr::mechanism_opt(p) }? {
        None => api::session::session_cancel(session, operation),
        Some(mechanism) => start(&mechanism),
    }
}

// ---------------------------------------------------------------------------------------------
// §5.4 General-purpose functions (C_GetFunctionList, C_GetInterfaceList and C_GetInterface live in
// `function_list`).

#[no_mangle]
pub unsafe extern "C" fn C_Initialize(pInitArgs: CK_VOID_PTR) -> CK_RV {
    guard_uninitialized("C_Initialize", || {
        // Before anything can touch OpenSSL: the private copy must never read the host's
        // OPENSSL_CONF (see `process`).
        if !super::process::isolate_crypto() {
            Err(Rv::GENERAL_ERROR)?
        }
        super::fork::register_handlers()?;
        // SAFETY: a non-NULL pInitArgs points to a CK_C_INITIALIZE_ARGS (§5.4).
        let args = unsafe { ptr::read_opt(pInitArgs.cast::<CK_C_INITIALIZE_ARGS>()) }?;
        let args = args.map(|a| InitArgs {
            mutex_callbacks: [
                a.CreateMutex.is_some(),
                a.DestroyMutex.is_some(),
                a.LockMutex.is_some(),
                a.UnlockMutex.is_some(),
            ]
            .into_iter()
            .map(u8::from)
            .sum(),
            os_locking_ok: a.flags & CKF_OS_LOCKING_OK != 0,
            reserved_is_null: a.pReserved.is_null(),
            cant_create_threads: a.flags & CKF_LIBRARY_CANT_CREATE_OS_THREADS != 0,
        });
        api::general::initialize(args)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Finalize(pReserved: CK_VOID_PTR) -> CK_RV {
    guard("C_Finalize", || {
        if !pReserved.is_null() {
            Err(Rv::ARGUMENTS_BAD)?
        }
        api::general::finalize()
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetInfo(pInfo: CK_INFO_PTR) -> CK_RV {
    guard("C_GetInfo", || {
        // SAFETY: pInfo is writable for one CK_INFO (§5.4).
        let info = unsafe { ptr::out(pInfo) }?;
        info.set(api::general::get_info()?);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// §5.5 Slot and token management.

#[no_mangle]
pub unsafe extern "C" fn C_GetSlotList(
    tokenPresent: CK_BBOOL,
    pSlotList: CK_SLOT_ID_PTR,
    pulCount: CK_ULONG_PTR,
) -> CK_RV {
    guard("C_GetSlotList", || {
        if pulCount.is_null() {
            Err(Rv::ARGUMENTS_BAD)?
        }
        let slots = api::slot::get_slot_list(tokenPresent != 0)?;
        // SAFETY: pulCount is in/out; a non-NULL pSlotList holds *pulCount slot IDs (§5.5).
        unsafe { ptr::fill_list(&slots, pSlotList, pulCount) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetSlotInfo(slotID: CK_SLOT_ID, pInfo: CK_SLOT_INFO_PTR) -> CK_RV {
    guard("C_GetSlotInfo", || {
        // SAFETY: pInfo is writable for one CK_SLOT_INFO (§5.5).
        let info = unsafe { ptr::out(pInfo) }?;
        info.set(api::slot::get_slot_info(slotID)?);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetTokenInfo(slotID: CK_SLOT_ID, pInfo: CK_TOKEN_INFO_PTR) -> CK_RV {
    guard("C_GetTokenInfo", || {
        // SAFETY: pInfo is writable for one CK_TOKEN_INFO (§5.5).
        let info = unsafe { ptr::out(pInfo) }?;
        info.set(api::slot::get_token_info(slotID)?);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismList(
    slotID: CK_SLOT_ID,
    pMechanismList: CK_MECHANISM_TYPE_PTR,
    pulCount: CK_ULONG_PTR,
) -> CK_RV {
    guard("C_GetMechanismList", || {
        if pulCount.is_null() {
            Err(Rv::ARGUMENTS_BAD)?
        }
        let mechanisms = api::slot::get_mechanism_list(slotID)?;
        // SAFETY: pulCount is in/out; a non-NULL list holds *pulCount mechanism types (§5.5).
        unsafe { ptr::fill_list(&mechanisms, pMechanismList, pulCount) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetMechanismInfo(
    slotID: CK_SLOT_ID,
    mechanismType: CK_MECHANISM_TYPE,
    pInfo: CK_MECHANISM_INFO_PTR,
) -> CK_RV {
    guard("C_GetMechanismInfo", || {
        // SAFETY: pInfo is writable for one CK_MECHANISM_INFO (§5.5).
        let info = unsafe { ptr::out(pInfo) }?;
        info.set(api::slot::get_mechanism_info(slotID, mechanismType)?);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_InitToken(
    slotID: CK_SLOT_ID,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
    pLabel: CK_UTF8CHAR_PTR,
) -> CK_RV {
    guard("C_InitToken", || {
        // SAFETY: pPin holds ulPinLen bytes and pLabel 32 bytes (§5.5).
        let (pin, label) = unsafe { (ptr::bytes(pPin, ulPinLen)?, ptr::label(pLabel)?) };
        api::slot::init_token(slotID, pin, &label)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_InitPIN(
    hSession: CK_SESSION_HANDLE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    guard("C_InitPIN", || {
        // SAFETY: pPin holds ulPinLen bytes (§5.5).
        let pin = unsafe { ptr::bytes(pPin, ulPinLen) }?;
        api::slot::init_pin(hSession, pin)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SetPIN(
    hSession: CK_SESSION_HANDLE,
    pOldPin: CK_UTF8CHAR_PTR,
    ulOldLen: CK_ULONG,
    pNewPin: CK_UTF8CHAR_PTR,
    ulNewLen: CK_ULONG,
) -> CK_RV {
    guard("C_SetPIN", || {
        // SAFETY: each PIN pointer holds its stated length (§5.5).
        let (old, new) = unsafe {
            (
                ptr::bytes(pOldPin, ulOldLen)?,
                ptr::bytes(pNewPin, ulNewLen)?,
            )
        };
        api::slot::set_pin(hSession, old, new)
    })
}

// ---------------------------------------------------------------------------------------------
// §5.6 Session management.

#[no_mangle]
pub unsafe extern "C" fn C_OpenSession(
    slotID: CK_SLOT_ID,
    flags: CK_FLAGS,
    pApplication: CK_VOID_PTR,
    Notify: CK_NOTIFY,
    phSession: CK_SESSION_HANDLE_PTR,
) -> CK_RV {
    // sqlhsm never calls back (no CKN_SURRENDER), so the application pointer and callback are
    // accepted and ignored, as §5.6 permits.
    let _ = (pApplication, Notify);
    guard("C_OpenSession", || {
        // SAFETY: phSession is writable for one handle (§5.6).
        let session = unsafe { ptr::out(phSession) }?;
        session.set(api::session::open_session(slotID, flags)?);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_CloseSession(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_CloseSession", || api::session::close_session(hSession))
}

#[no_mangle]
pub unsafe extern "C" fn C_CloseAllSessions(slotID: CK_SLOT_ID) -> CK_RV {
    guard("C_CloseAllSessions", || {
        api::session::close_all_sessions(slotID)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetSessionInfo(
    hSession: CK_SESSION_HANDLE,
    pInfo: CK_SESSION_INFO_PTR,
) -> CK_RV {
    guard("C_GetSessionInfo", || {
        // SAFETY: pInfo is writable for one CK_SESSION_INFO (§5.6).
        let info = unsafe { ptr::out(pInfo) }?;
        info.set(api::session::get_session_info(hSession)?);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SessionCancel(hSession: CK_SESSION_HANDLE, flags: CK_FLAGS) -> CK_RV {
    guard("C_SessionCancel", || {
        api::session::session_cancel(hSession, flags)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetOperationState(
    hSession: CK_SESSION_HANDLE,
    pOperationState: CK_BYTE_PTR,
    pulOperationStateLen: CK_ULONG_PTR,
) -> CK_RV {
    guard("C_GetOperationState", || {
        // SAFETY: the output follows §5.2.
        let mut out = unsafe { ptr::out_buf(pOperationState, pulOperationStateLen) }?;
        let result = api::session::get_operation_state(hSession, &mut out.buf);
        out.finish(result)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SetOperationState(
    hSession: CK_SESSION_HANDLE,
    pOperationState: CK_BYTE_PTR,
    ulOperationStateLen: CK_ULONG,
    hEncryptionKey: CK_OBJECT_HANDLE,
    hAuthenticationKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_SetOperationState", || {
        // SAFETY: pOperationState holds ulOperationStateLen bytes (§5.6).
        let state = unsafe { ptr::bytes(pOperationState, ulOperationStateLen) }?;
        api::session::set_operation_state(hSession, state, hEncryptionKey, hAuthenticationKey)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Login(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
) -> CK_RV {
    guard("C_Login", || {
        // SAFETY: a non-NULL pPin holds ulPinLen bytes; NULL means the protected path (§5.6).
        let pin = unsafe { ptr::bytes_opt(pPin, ulPinLen) }?;
        api::session::login(hSession, userType, pin)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_LoginUser(
    hSession: CK_SESSION_HANDLE,
    userType: CK_USER_TYPE,
    pPin: CK_UTF8CHAR_PTR,
    ulPinLen: CK_ULONG,
    pUsername: CK_UTF8CHAR_PTR,
    ulUsernameLen: CK_ULONG,
) -> CK_RV {
    guard("C_LoginUser", || {
        // SAFETY: each non-NULL pointer holds its stated length (§5.6).
        let (pin, username) = unsafe {
            (
                ptr::bytes_opt(pPin, ulPinLen)?,
                ptr::bytes_opt(pUsername, ulUsernameLen)?,
            )
        };
        api::session::login_user(hSession, userType, pin, username)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Logout(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_Logout", || api::session::logout(hSession))
}

// ---------------------------------------------------------------------------------------------
// §5.7 Object management.

#[no_mangle]
pub unsafe extern "C" fn C_CreateObject(
    hSession: CK_SESSION_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phObject: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard("C_CreateObject", || {
        // SAFETY: pTemplate holds ulCount attributes; phObject is writable (§5.7).
        let (template, object) =
            unsafe { (ptr::template(pTemplate, ulCount)?, ptr::out(phObject)?) };
        object.set(api::object::create_object(hSession, &template)?);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_CopyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phNewObject: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard("C_CopyObject", || {
        // SAFETY: pTemplate holds ulCount attributes; phNewObject is writable (§5.7).
        let (template, object) =
            unsafe { (ptr::template(pTemplate, ulCount)?, ptr::out(phNewObject)?) };
        object.set(api::object::copy_object(hSession, hObject, &template)?);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DestroyObject(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_DestroyObject", || {
        api::object::destroy_object(hSession, hObject)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetObjectSize(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pulSize: CK_ULONG_PTR,
) -> CK_RV {
    guard("C_GetObjectSize", || {
        // SAFETY: pulSize is writable (§5.7).
        let size = unsafe { ptr::out(pulSize) }?;
        size.set(ptr::to_ulong(api::object::get_object_size(
            hSession, hObject,
        )?));
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard("C_GetAttributeValue", || {
        // SAFETY: pTemplate holds ulCount attributes, each non-NULL pValue writable for its
        // ulValueLen bytes (§5.7).
        unsafe {
            ptr::attribute_requests(pTemplate, ulCount, |requests| {
                api::object::get_attribute_value(hSession, hObject, requests)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SetAttributeValue(
    hSession: CK_SESSION_HANDLE,
    hObject: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard("C_SetAttributeValue", || {
        // SAFETY: pTemplate holds ulCount attributes (§5.7).
        let template = unsafe { ptr::template(pTemplate, ulCount) }?;
        api::object::set_attribute_value(hSession, hObject, &template)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsInit(
    hSession: CK_SESSION_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
) -> CK_RV {
    guard("C_FindObjectsInit", || {
        // SAFETY: pTemplate holds ulCount attributes (§5.7).
        let template = unsafe { ptr::template(pTemplate, ulCount) }?;
        api::object::find_objects_init(hSession, &template)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_FindObjects(
    hSession: CK_SESSION_HANDLE,
    phObject: CK_OBJECT_HANDLE_PTR,
    ulMaxObjectCount: CK_ULONG,
    pulObjectCount: CK_ULONG_PTR,
) -> CK_RV {
    guard("C_FindObjects", || {
        // SAFETY: phObject is writable for ulMaxObjectCount handles and pulObjectCount for one
        // count (§5.7).
        let (handles, count) = unsafe {
            (
                ptr::slice_mut(phObject, ulMaxObjectCount)?,
                ptr::out(pulObjectCount)?,
            )
        };
        let found = api::object::find_objects(hSession, handles.len())?;
        let n = found.len().min(handles.len());
        handles[..n].copy_from_slice(&found[..n]);
        count.set(ptr::to_ulong(n));
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_FindObjectsFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_FindObjectsFinal", || {
        api::object::find_objects_final(hSession)
    })
}

// ---------------------------------------------------------------------------------------------
// §5.8 Encryption.

#[no_mangle]
pub unsafe extern "C" fn C_EncryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_EncryptInit", || {
        // SAFETY: a non-NULL pMechanism points to a CK_MECHANISM (§5.8).
        unsafe {
            init_or_end(hSession, CKF_ENCRYPT, pMechanism, |m| {
                api::crypt::encrypt_init(hSession, m, hKey)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Encrypt(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pEncryptedData: CK_BYTE_PTR,
    pulEncryptedDataLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation("C_Encrypt", hSession, CKF_ENCRYPT, || {
        // SAFETY: pData holds ulDataLen bytes; the output follows §5.2 (may overlap pData).
        let (data, mut out) =
            unsafe { ptr::in_out(pData, ulDataLen, pEncryptedData, pulEncryptedDataLen) }?;
        let result = api::crypt::encrypt(hSession, &data, &mut out.buf);
        out.finish(result)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_EncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
    pEncryptedPart: CK_BYTE_PTR,
    pulEncryptedPartLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation("C_EncryptUpdate", hSession, CKF_ENCRYPT, || {
        // SAFETY: pPart holds ulPartLen bytes; the output follows §5.2 (may overlap pPart).
        let (data, mut out) =
            unsafe { ptr::in_out(pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen) }?;
        let result = api::crypt::encrypt_update(hSession, &data, &mut out.buf);
        out.finish(result)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_EncryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastEncryptedPart: CK_BYTE_PTR,
    pulLastEncryptedPartLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation("C_EncryptFinal", hSession, CKF_ENCRYPT, || {
        // SAFETY: the output follows §5.2.
        let mut out = unsafe { ptr::out_buf(pLastEncryptedPart, pulLastEncryptedPartLen) }?;
        let result = api::crypt::encrypt_final(hSession, &mut out.buf);
        out.finish(result)
    })
}

// ---------------------------------------------------------------------------------------------
// §5.9 Decryption.

#[no_mangle]
pub unsafe extern "C" fn C_DecryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_DecryptInit", || {
        // SAFETY: a non-NULL pMechanism points to a CK_MECHANISM (§5.9).
        unsafe {
            init_or_end(hSession, CKF_DECRYPT, pMechanism, |m| {
                api::crypt::decrypt_init(hSession, m, hKey)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Decrypt(
    hSession: CK_SESSION_HANDLE,
    pEncryptedData: CK_BYTE_PTR,
    ulEncryptedDataLen: CK_ULONG,
    pData: CK_BYTE_PTR,
    pulDataLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation("C_Decrypt", hSession, CKF_DECRYPT, || {
        // SAFETY: the input holds its stated length; the output follows §5.2 (may overlap).
        let (data, mut out) =
            unsafe { ptr::in_out(pEncryptedData, ulEncryptedDataLen, pData, pulDataLen) }?;
        let result = api::crypt::decrypt(hSession, &data, &mut out.buf);
        out.finish(result)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DecryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pEncryptedPart: CK_BYTE_PTR,
    ulEncryptedPartLen: CK_ULONG,
    pPart: CK_BYTE_PTR,
    pulPartLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation("C_DecryptUpdate", hSession, CKF_DECRYPT, || {
        // SAFETY: the input holds its stated length; the output follows §5.2 (may overlap).
        let (data, mut out) =
            unsafe { ptr::in_out(pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen) }?;
        let result = api::crypt::decrypt_update(hSession, &data, &mut out.buf);
        out.finish(result)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DecryptFinal(
    hSession: CK_SESSION_HANDLE,
    pLastPart: CK_BYTE_PTR,
    pulLastPartLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation("C_DecryptFinal", hSession, CKF_DECRYPT, || {
        // SAFETY: the output follows §5.2.
        let mut out = unsafe { ptr::out_buf(pLastPart, pulLastPartLen) }?;
        let result = api::crypt::decrypt_final(hSession, &mut out.buf);
        out.finish(result)
    })
}

// ---------------------------------------------------------------------------------------------
// §5.10 Message digesting.

#[no_mangle]
pub unsafe extern "C" fn C_DigestInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
) -> CK_RV {
    guard("C_DigestInit", || {
        // SAFETY: a non-NULL pMechanism points to a CK_MECHANISM (§5.10).
        unsafe {
            init_or_end(hSession, CKF_DIGEST, pMechanism, |m| {
                api::digest::digest_init(hSession, m)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Digest(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pDigest: CK_BYTE_PTR,
    pulDigestLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation("C_Digest", hSession, CKF_DIGEST, || {
        // SAFETY: pData holds ulDataLen bytes; the output follows §5.2.
        let (data, mut out) = unsafe { ptr::in_out(pData, ulDataLen, pDigest, pulDigestLen) }?;
        let result = api::digest::digest(hSession, &data, &mut out.buf);
        out.finish(result)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DigestUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard_operation("C_DigestUpdate", hSession, CKF_DIGEST, || {
        // SAFETY: pPart holds ulPartLen bytes (§5.10).
        let part = unsafe { ptr::bytes(pPart, ulPartLen) }?;
        api::digest::digest_update(hSession, part)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DigestKey(hSession: CK_SESSION_HANDLE, hKey: CK_OBJECT_HANDLE) -> CK_RV {
    guard("C_DigestKey", || api::digest::digest_key(hSession, hKey))
}

#[no_mangle]
pub unsafe extern "C" fn C_DigestFinal(
    hSession: CK_SESSION_HANDLE,
    pDigest: CK_BYTE_PTR,
    pulDigestLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation("C_DigestFinal", hSession, CKF_DIGEST, || {
        // SAFETY: the output follows §5.2.
        let mut out = unsafe { ptr::out_buf(pDigest, pulDigestLen) }?;
        let result = api::digest::digest_final(hSession, &mut out.buf);
        out.finish(result)
    })
}

// ---------------------------------------------------------------------------------------------
// §5.11 Signing and MACing.

#[no_mangle]
pub unsafe extern "C" fn C_SignInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_SignInit", || {
        // SAFETY: a non-NULL pMechanism points to a CK_MECHANISM (§5.11).
        unsafe {
            init_or_end(hSession, CKF_SIGN, pMechanism, |m| {
                api::sign::sign_init(hSession, m, hKey)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Sign(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    pulSignatureLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation("C_Sign", hSession, CKF_SIGN, || {
        // SAFETY: pData holds ulDataLen bytes; the output follows §5.2.
        let (data, mut out) =
            unsafe { ptr::in_out(pData, ulDataLen, pSignature, pulSignatureLen) }?;
        let result = api::sign::sign(hSession, &data, &mut out.buf);
        out.finish(result)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard_operation("C_SignUpdate", hSession, CKF_SIGN, || {
        // SAFETY: pPart holds ulPartLen bytes (§5.11).
        let part = unsafe { ptr::bytes(pPart, ulPartLen) }?;
        api::sign::sign_update(hSession, part)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: CK_BYTE_PTR,
    pulSignatureLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation("C_SignFinal", hSession, CKF_SIGN, || {
        // SAFETY: the output follows §5.2.
        let mut out = unsafe { ptr::out_buf(pSignature, pulSignatureLen) }?;
        let result = api::sign::sign_final(hSession, &mut out.buf);
        out.finish(result)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignRecoverInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_SignRecoverInit", || {
        // SAFETY: a non-NULL pMechanism points to a CK_MECHANISM (§5.11).
        unsafe {
            init_or_end(hSession, CKF_SIGN_RECOVER, pMechanism, |m| {
                api::sign::sign_recover_init(hSession, m, hKey)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignRecover(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    pulSignatureLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation("C_SignRecover", hSession, CKF_SIGN_RECOVER, || {
        // SAFETY: pData holds ulDataLen bytes; the output follows §5.2.
        let (data, mut out) =
            unsafe { ptr::in_out(pData, ulDataLen, pSignature, pulSignatureLen) }?;
        let result = api::sign::sign_recover(hSession, &data, &mut out.buf);
        out.finish(result)
    })
}

// ---------------------------------------------------------------------------------------------
// §5.13 Verifying signatures and MACs.

#[no_mangle]
pub unsafe extern "C" fn C_VerifyInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_VerifyInit", || {
        // SAFETY: a non-NULL pMechanism points to a CK_MECHANISM (§5.13).
        unsafe {
            init_or_end(hSession, CKF_VERIFY, pMechanism, |m| {
                api::sign::verify_init(hSession, m, hKey)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_Verify(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard_operation("C_Verify", hSession, CKF_VERIFY, || {
        // SAFETY: pData and pSignature hold their stated lengths (§5.13).
        let (data, signature) = unsafe {
            (
                ptr::bytes(pData, ulDataLen)?,
                ptr::bytes(pSignature, ulSignatureLen)?,
            )
        };
        api::sign::verify(hSession, data, signature)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard_operation("C_VerifyUpdate", hSession, CKF_VERIFY, || {
        // SAFETY: pPart holds ulPartLen bytes (§5.13).
        let part = unsafe { ptr::bytes(pPart, ulPartLen) }?;
        api::sign::verify_update(hSession, part)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifyFinal(
    hSession: CK_SESSION_HANDLE,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard_operation("C_VerifyFinal", hSession, CKF_VERIFY, || {
        // SAFETY: pSignature holds ulSignatureLen bytes (§5.13).
        let signature = unsafe { ptr::bytes(pSignature, ulSignatureLen) }?;
        api::sign::verify_final(hSession, signature)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifyRecoverInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_VerifyRecoverInit", || {
        // SAFETY: a non-NULL pMechanism points to a CK_MECHANISM (§5.13).
        unsafe {
            init_or_end(hSession, CKF_VERIFY_RECOVER, pMechanism, |m| {
                api::sign::verify_recover_init(hSession, m, hKey)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifyRecover(
    hSession: CK_SESSION_HANDLE,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
    pData: CK_BYTE_PTR,
    pulDataLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation("C_VerifyRecover", hSession, CKF_VERIFY_RECOVER, || {
        // SAFETY: pSignature holds ulSignatureLen bytes; the output follows §5.2.
        let (signature, mut out) =
            unsafe { ptr::in_out(pSignature, ulSignatureLen, pData, pulDataLen) }?;
        let result = api::sign::verify_recover(hSession, &signature, &mut out.buf);
        out.finish(result)
    })
}

// ---------------------------------------------------------------------------------------------
// §5.14 Dual-function cryptographic functions.

#[no_mangle]
pub unsafe extern "C" fn C_DigestEncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
    pEncryptedPart: CK_BYTE_PTR,
    pulEncryptedPartLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation(
        "C_DigestEncryptUpdate",
        hSession,
        CKF_DIGEST | CKF_ENCRYPT,
        || {
            // SAFETY: pPart holds ulPartLen bytes; the output follows §5.2 (may overlap the input).
            let (part, mut out) =
                unsafe { ptr::in_out(pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen) }?;
            let result = api::dual::digest_encrypt_update(hSession, &part, &mut out.buf);
            out.finish(result)
        },
    )
}

#[no_mangle]
pub unsafe extern "C" fn C_DecryptDigestUpdate(
    hSession: CK_SESSION_HANDLE,
    pEncryptedPart: CK_BYTE_PTR,
    ulEncryptedPartLen: CK_ULONG,
    pPart: CK_BYTE_PTR,
    pulPartLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation(
        "C_DecryptDigestUpdate",
        hSession,
        CKF_DECRYPT | CKF_DIGEST,
        || {
            // SAFETY: pEncryptedPart holds ulEncryptedPartLen bytes; the output follows §5.2 (may overlap the input).
            let (part, mut out) =
                unsafe { ptr::in_out(pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen) }?;
            let result = api::dual::decrypt_digest_update(hSession, &part, &mut out.buf);
            out.finish(result)
        },
    )
}

#[no_mangle]
pub unsafe extern "C" fn C_SignEncryptUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
    pEncryptedPart: CK_BYTE_PTR,
    pulEncryptedPartLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation(
        "C_SignEncryptUpdate",
        hSession,
        CKF_SIGN | CKF_ENCRYPT,
        || {
            // SAFETY: pPart holds ulPartLen bytes; the output follows §5.2 (may overlap the input).
            let (part, mut out) =
                unsafe { ptr::in_out(pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen) }?;
            let result = api::dual::sign_encrypt_update(hSession, &part, &mut out.buf);
            out.finish(result)
        },
    )
}

#[no_mangle]
pub unsafe extern "C" fn C_DecryptVerifyUpdate(
    hSession: CK_SESSION_HANDLE,
    pEncryptedPart: CK_BYTE_PTR,
    ulEncryptedPartLen: CK_ULONG,
    pPart: CK_BYTE_PTR,
    pulPartLen: CK_ULONG_PTR,
) -> CK_RV {
    guard_operation(
        "C_DecryptVerifyUpdate",
        hSession,
        CKF_DECRYPT | CKF_VERIFY,
        || {
            // SAFETY: pEncryptedPart holds ulEncryptedPartLen bytes; the output follows §5.2 (may overlap the input).
            let (part, mut out) =
                unsafe { ptr::in_out(pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen) }?;
            let result = api::dual::decrypt_verify_update(hSession, &part, &mut out.buf);
            out.finish(result)
        },
    )
}

// ---------------------------------------------------------------------------------------------
// §5.15 Key management.

#[no_mangle]
pub unsafe extern "C" fn C_GenerateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard("C_GenerateKey", || {
        // SAFETY: pMechanism, the template and phKey follow §5.15.
        let (mechanism, template, key) = unsafe {
            (
                ptr::mechanism(pMechanism)?,
                ptr::template(pTemplate, ulCount)?,
                ptr::out(phKey)?,
            )
        };
        key.set(api::keys::generate_key(hSession, &mechanism, &template)?);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GenerateKeyPair(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    pPublicKeyTemplate: CK_ATTRIBUTE_PTR,
    ulPublicKeyAttributeCount: CK_ULONG,
    pPrivateKeyTemplate: CK_ATTRIBUTE_PTR,
    ulPrivateKeyAttributeCount: CK_ULONG,
    phPublicKey: CK_OBJECT_HANDLE_PTR,
    phPrivateKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard("C_GenerateKeyPair", || {
        // SAFETY: pMechanism, both templates and both handle pointers follow §5.15.
        let (mechanism, public_template, private_template, public_key, private_key) = unsafe {
            (
                ptr::mechanism(pMechanism)?,
                ptr::template(pPublicKeyTemplate, ulPublicKeyAttributeCount)?,
                ptr::template(pPrivateKeyTemplate, ulPrivateKeyAttributeCount)?,
                ptr::out(phPublicKey)?,
                ptr::out(phPrivateKey)?,
            )
        };
        let (public, private) = api::keys::generate_key_pair(
            hSession,
            &mechanism,
            &public_template,
            &private_template,
        )?;
        public_key.set(public);
        private_key.set(private);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_WrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hWrappingKey: CK_OBJECT_HANDLE,
    hKey: CK_OBJECT_HANDLE,
    pWrappedKey: CK_BYTE_PTR,
    pulWrappedKeyLen: CK_ULONG_PTR,
) -> CK_RV {
    guard("C_WrapKey", || {
        // SAFETY: pMechanism points to a CK_MECHANISM; the output follows §5.2.
        let (mechanism, mut out) = unsafe {
            (
                ptr::mechanism(pMechanism)?,
                ptr::out_buf(pWrappedKey, pulWrappedKeyLen)?,
            )
        };
        let result = api::keys::wrap_key(hSession, &mechanism, hWrappingKey, hKey, &mut out.buf);
        out.finish(result)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_UnwrapKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hUnwrappingKey: CK_OBJECT_HANDLE,
    pWrappedKey: CK_BYTE_PTR,
    ulWrappedKeyLen: CK_ULONG,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard("C_UnwrapKey", || {
        // SAFETY: pMechanism, the wrapped key bytes, the template and phKey follow §5.15.
        let (mechanism, wrapped, template, key) = unsafe {
            (
                ptr::mechanism(pMechanism)?,
                ptr::bytes(pWrappedKey, ulWrappedKeyLen)?,
                ptr::template(pTemplate, ulAttributeCount)?,
                ptr::out(phKey)?,
            )
        };
        key.set(api::keys::unwrap_key(
            hSession,
            &mechanism,
            hUnwrappingKey,
            wrapped,
            &template,
        )?);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DeriveKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hBaseKey: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard("C_DeriveKey", || {
        // SAFETY: pMechanism, the template and phKey follow §5.15; an SP 800-108 parameter's
        // additional keys say where their handles go (Current Mechanisms §2.42).
        let (mechanism, template, key, additional) = unsafe {
            (
                ptr::mechanism(pMechanism)?,
                ptr::template(pTemplate, ulAttributeCount)?,
                ptr::out(phKey)?,
                ptr::additional_key_outputs(pMechanism)?,
            )
        };
        let derived = api::keys::derive_key(hSession, &mechanism, hBaseKey, &template);
        match derived {
            Ok((handle, extra)) => {
                key.set(handle);
                for (out, handle) in additional.iter().zip(extra) {
                    out.set(handle);
                }
                Ok(())
            }
            Err(e) => {
                for out in &additional {
                    out.set(CK_INVALID_HANDLE);
                }
                Err(e)
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// PKCS#11 3.2 §5.18 Key encapsulation.

#[no_mangle]
pub unsafe extern "C" fn C_EncapsulateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hPublicKey: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    pCiphertext: CK_BYTE_PTR,
    pulCiphertextLen: CK_ULONG_PTR,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard("C_EncapsulateKey", || {
        // SAFETY: pMechanism, the template and phKey follow §5.18; the ciphertext output
        // follows the two-call convention of §5.2.
        let (mechanism, template, mut out, key) = unsafe {
            (
                ptr::mechanism(pMechanism)?,
                ptr::template(pTemplate, ulAttributeCount)?,
                ptr::out_buf(pCiphertext, pulCiphertextLen)?,
                ptr::out(phKey)?,
            )
        };
        let made =
            api::kem::encapsulate_key(hSession, &mechanism, hPublicKey, &template, &mut out.buf);
        let result = made.map(|handle| {
            if let Some(handle) = handle {
                key.set(handle);
            }
        });
        out.finish(result)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DecapsulateKey(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hPrivateKey: CK_OBJECT_HANDLE,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    pCiphertext: CK_BYTE_PTR,
    ulCiphertextLen: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    guard("C_DecapsulateKey", || {
        // SAFETY: pMechanism, the template, the ciphertext bytes and phKey follow §5.18.
        let (mechanism, template, ciphertext, key) = unsafe {
            (
                ptr::mechanism(pMechanism)?,
                ptr::template(pTemplate, ulAttributeCount)?,
                ptr::bytes(pCiphertext, ulCiphertextLen)?,
                ptr::out(phKey)?,
            )
        };
        key.set(api::kem::decapsulate_key(
            hSession,
            &mechanism,
            hPrivateKey,
            &template,
            ciphertext,
        )?);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// PKCS#11 3.2 §5.15 Verifying signatures given at initialization (`C_VerifySignatureInit` …):
// the same verification operation as `C_VerifyInit` (`CKF_VERIFY`), the signature known first.

#[no_mangle]
pub unsafe extern "C" fn C_VerifySignatureInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard("C_VerifySignatureInit", || {
        // SAFETY: a non-NULL pMechanism points to a CK_MECHANISM; pSignature holds
        // ulSignatureLen bytes (§5.15). The signature is read only to start an operation.
        unsafe {
            init_or_end(hSession, CKF_VERIFY, pMechanism, |m| {
                let signature = ptr::bytes(pSignature, ulSignatureLen)?;
                api::verify_signature::verify_signature_init(hSession, m, hKey, signature)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifySignature(
    hSession: CK_SESSION_HANDLE,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
) -> CK_RV {
    guard_operation("C_VerifySignature", hSession, CKF_VERIFY, || {
        // SAFETY: pData holds ulDataLen bytes (§5.15).
        let data = unsafe { ptr::bytes(pData, ulDataLen) }?;
        api::verify_signature::verify_signature(hSession, data)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifySignatureUpdate(
    hSession: CK_SESSION_HANDLE,
    pPart: CK_BYTE_PTR,
    ulPartLen: CK_ULONG,
) -> CK_RV {
    guard_operation("C_VerifySignatureUpdate", hSession, CKF_VERIFY, || {
        // SAFETY: pPart holds ulPartLen bytes (§5.15).
        let part = unsafe { ptr::bytes(pPart, ulPartLen) }?;
        api::verify_signature::verify_signature_update(hSession, part)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifySignatureFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard_operation("C_VerifySignatureFinal", hSession, CKF_VERIFY, || {
        api::verify_signature::verify_signature_final(hSession)
    })
}

// ---------------------------------------------------------------------------------------------
// PKCS#11 3.2 functions sqlhsm does not offer: validation flags (sqlhsm claims no validation),
// asynchronous operations (every call completes before it returns; no session is
// `CKF_ASYNC_SESSION`), authenticated wrapping. Each answers `CKR_FUNCTION_NOT_SUPPORTED`
// without looking at its pointers.

#[no_mangle]
pub unsafe extern "C" fn C_GetSessionValidationFlags(
    hSession: CK_SESSION_HANDLE,
    type_: CK_SESSION_VALIDATION_FLAGS_TYPE,
    pFlags: *mut CK_FLAGS,
) -> CK_RV {
    let _ = (hSession, type_, pFlags);
    guard("C_GetSessionValidationFlags", not_supported)
}

#[no_mangle]
pub unsafe extern "C" fn C_AsyncComplete(
    hSession: CK_SESSION_HANDLE,
    pFunctionName: CK_UTF8CHAR_PTR,
    pResult: *mut CK_ASYNC_DATA,
) -> CK_RV {
    let _ = (hSession, pFunctionName, pResult);
    guard("C_AsyncComplete", not_supported)
}

#[no_mangle]
pub unsafe extern "C" fn C_AsyncGetID(
    hSession: CK_SESSION_HANDLE,
    pFunctionName: CK_UTF8CHAR_PTR,
    pulID: CK_ULONG_PTR,
) -> CK_RV {
    let _ = (hSession, pFunctionName, pulID);
    guard("C_AsyncGetID", not_supported)
}

#[no_mangle]
pub unsafe extern "C" fn C_AsyncJoin(
    hSession: CK_SESSION_HANDLE,
    pFunctionName: CK_UTF8CHAR_PTR,
    ulID: CK_ULONG,
    pData: CK_BYTE_PTR,
    ulData: CK_ULONG,
) -> CK_RV {
    let _ = (hSession, pFunctionName, ulID, pData, ulData);
    guard("C_AsyncJoin", not_supported)
}

#[no_mangle]
pub unsafe extern "C" fn C_WrapKeyAuthenticated(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hWrappingKey: CK_OBJECT_HANDLE,
    hKey: CK_OBJECT_HANDLE,
    pAssociatedData: CK_BYTE_PTR,
    ulAssociatedDataLen: CK_ULONG,
    pWrappedKey: CK_BYTE_PTR,
    pulWrappedKeyLen: CK_ULONG_PTR,
) -> CK_RV {
    let _ = (hSession, pMechanism, hWrappingKey, hKey);
    let _ = (
        pAssociatedData,
        ulAssociatedDataLen,
        pWrappedKey,
        pulWrappedKeyLen,
    );
    guard("C_WrapKeyAuthenticated", not_supported)
}

#[no_mangle]
pub unsafe extern "C" fn C_UnwrapKeyAuthenticated(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hUnwrappingKey: CK_OBJECT_HANDLE,
    pWrappedKey: CK_BYTE_PTR,
    ulWrappedKeyLen: CK_ULONG,
    pTemplate: CK_ATTRIBUTE_PTR,
    ulAttributeCount: CK_ULONG,
    pAssociatedData: CK_BYTE_PTR,
    ulAssociatedDataLen: CK_ULONG,
    phKey: CK_OBJECT_HANDLE_PTR,
) -> CK_RV {
    let _ = (
        hSession,
        pMechanism,
        hUnwrappingKey,
        pWrappedKey,
        ulWrappedKeyLen,
    );
    let _ = (
        pTemplate,
        ulAttributeCount,
        pAssociatedData,
        ulAssociatedDataLen,
        phKey,
    );
    guard("C_UnwrapKeyAuthenticated", not_supported)
}

/// The body of every function sqlhsm does not offer.
fn not_supported() -> Result<()> {
    Err(Rv::FUNCTION_NOT_SUPPORTED)?
}

// ---------------------------------------------------------------------------------------------
// §5.16 Random number generation.

#[no_mangle]
pub unsafe extern "C" fn C_SeedRandom(
    hSession: CK_SESSION_HANDLE,
    pSeed: CK_BYTE_PTR,
    ulSeedLen: CK_ULONG,
) -> CK_RV {
    guard("C_SeedRandom", || {
        // SAFETY: pSeed holds ulSeedLen bytes (§5.16).
        let seed = unsafe { ptr::bytes(pSeed, ulSeedLen) }?;
        api::random::seed_random(hSession, seed, super::process::reseed_random)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GenerateRandom(
    hSession: CK_SESSION_HANDLE,
    RandomData: CK_BYTE_PTR,
    ulRandomLen: CK_ULONG,
) -> CK_RV {
    guard("C_GenerateRandom", || {
        // SAFETY: RandomData is writable for ulRandomLen bytes (§5.16).
        let out = unsafe { ptr::slice_mut(RandomData, ulRandomLen) }?;
        api::random::generate_random(hSession, out)
    })
}

// ---------------------------------------------------------------------------------------------
// §5.17 Parallel function management (legacy) and §5.5 slot events.

/// A legacy function: §5.17 says it "should simply return the value CKR_FUNCTION_NOT_PARALLEL".
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionStatus(hSession: CK_SESSION_HANDLE) -> CK_RV {
    let _ = hSession;
    guard("C_GetFunctionStatus", || Err(Rv::FUNCTION_NOT_PARALLEL)?)
}

/// A legacy function: §5.17 says it "should simply return the value CKR_FUNCTION_NOT_PARALLEL".
#[no_mangle]
pub unsafe extern "C" fn C_CancelFunction(hSession: CK_SESSION_HANDLE) -> CK_RV {
    let _ = hSession;
    guard("C_CancelFunction", || Err(Rv::FUNCTION_NOT_PARALLEL)?)
}

#[no_mangle]
pub unsafe extern "C" fn C_WaitForSlotEvent(
    flags: CK_FLAGS,
    pSlot: CK_SLOT_ID_PTR,
    pReserved: CK_VOID_PTR,
) -> CK_RV {
    guard("C_WaitForSlotEvent", || {
        if !pReserved.is_null() {
            Err(Rv::ARGUMENTS_BAD)? // §5.5: reserved, NULL_PTR
        }
        // SAFETY: pSlot points to a writable CK_SLOT_ID (§5.5).
        let slot = unsafe { ptr::out(pSlot) }?;
        slot.set(api::slot::wait_for_slot_event(flags)?);
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// §5.12 / §5.9 / §5.11 / §5.13 Message-based encryption, decryption, signing and verifying
// (PKCS#11 3.0).

/// The per-message parameter of the active process of `session` (decoded by its mechanism).
///
/// # Safety
/// As [`ptr::message_param`].
unsafe fn message_param(
    session: CK_SESSION_HANDLE,
    encrypt: bool,
    p: CK_VOID_PTR,
    len: CK_ULONG,
) -> Result<(CK_MECHANISM_TYPE, Option<crate::types::MessageParam>)> {
    let kind = api::message_crypt::message_mechanism(session, encrypt)?;
    // SAFETY: forwarded contract.
    Ok((kind, unsafe { ptr::message_param(kind, p, len) }?))
}

/// Writes what the call produced (a generated IV, a tag) into the caller's parameter.
///
/// # Safety
/// As [`ptr::write_message_param`].
unsafe fn write_back(
    kind: CK_MECHANISM_TYPE,
    p: CK_VOID_PTR,
    len: CK_ULONG,
    written: &api::message_crypt::Written,
) -> Result<()> {
    // SAFETY: forwarded contract.
    unsafe { ptr::write_message_param(kind, p, len, written.iv.as_deref(), written.tag.as_deref()) }
}

/// `C_EncryptMessage` / `C_DecryptMessage`.
///
/// # Safety
/// The caller's pointers follow §5.2 and the per-message parameter's contract.
#[allow(clippy::too_many_arguments)]
unsafe fn crypt_message(
    session: CK_SESSION_HANDLE,
    encrypt: bool,
    p_parameter: CK_VOID_PTR,
    parameter_len: CK_ULONG,
    p_aad: CK_BYTE_PTR,
    aad_len: CK_ULONG,
    p_in: CK_BYTE_PTR,
    in_len: CK_ULONG,
    p_out: CK_BYTE_PTR,
    pul_out: CK_ULONG_PTR,
) -> Result<()> {
    // SAFETY: forwarded contract.
    let (kind, parameter) = unsafe { message_param(session, encrypt, p_parameter, parameter_len) }?;
    // SAFETY: pAssociatedData holds its length; the output follows §5.2.
    let (aad, (data, mut out)) = unsafe {
        (
            ptr::bytes(p_aad, aad_len)?,
            ptr::in_out(p_in, in_len, p_out, pul_out)?,
        )
    };
    let result =
        api::message_crypt::crypt_message(session, encrypt, parameter, aad, &data, &mut out.buf);
    let written = match result {
        Ok(written) => written,
        Err(e) => return out.finish(Err(e)),
    };
    // SAFETY: forwarded contract.
    unsafe { write_back(kind, p_parameter, parameter_len, &written) }?;
    out.finish(Ok(()))
}

/// `C_EncryptMessageBegin` / `C_DecryptMessageBegin`.
///
/// # Safety
/// As [`crypt_message`].
unsafe fn crypt_message_begin(
    session: CK_SESSION_HANDLE,
    encrypt: bool,
    p_parameter: CK_VOID_PTR,
    parameter_len: CK_ULONG,
    p_aad: CK_BYTE_PTR,
    aad_len: CK_ULONG,
) -> Result<()> {
    // SAFETY: forwarded contract.
    let (kind, parameter) = unsafe { message_param(session, encrypt, p_parameter, parameter_len) }?;
    // SAFETY: pAssociatedData holds its length.
    let aad = unsafe { ptr::bytes(p_aad, aad_len) }?;
    let written = api::message_crypt::crypt_message_begin(session, encrypt, parameter, aad)?;
    // SAFETY: forwarded contract.
    unsafe { write_back(kind, p_parameter, parameter_len, &written) }
}

/// `C_EncryptMessageNext` / `C_DecryptMessageNext`.
///
/// # Safety
/// As [`crypt_message`].
#[allow(clippy::too_many_arguments)]
unsafe fn crypt_message_next(
    session: CK_SESSION_HANDLE,
    encrypt: bool,
    p_parameter: CK_VOID_PTR,
    parameter_len: CK_ULONG,
    p_in: CK_BYTE_PTR,
    in_len: CK_ULONG,
    p_out: CK_BYTE_PTR,
    pul_out: CK_ULONG_PTR,
    flags: CK_FLAGS,
) -> Result<()> {
    // SAFETY: forwarded contract.
    let (kind, parameter) = unsafe { message_param(session, encrypt, p_parameter, parameter_len) }?;
    // SAFETY: the input holds its length; the output follows §5.2.
    let (data, mut out) = unsafe { ptr::in_out(p_in, in_len, p_out, pul_out) }?;
    let result = api::message_crypt::crypt_message_next(
        session,
        encrypt,
        parameter,
        &data,
        &mut out.buf,
        flags,
    );
    let written = match result {
        Ok(written) => written,
        Err(e) => return out.finish(Err(e)),
    };
    // SAFETY: forwarded contract.
    unsafe { write_back(kind, p_parameter, parameter_len, &written) }?;
    out.finish(Ok(()))
}

#[no_mangle]
pub unsafe extern "C" fn C_MessageEncryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_MessageEncryptInit", || {
        // SAFETY: a non-NULL pMechanism points to a CK_MECHANISM.
        unsafe {
            init_or_end(hSession, CKF_MESSAGE_ENCRYPT, pMechanism, |m| {
                api::message_crypt::message_crypt_init(hSession, m, hKey, true)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_EncryptMessage(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pAssociatedData: CK_BYTE_PTR,
    ulAssociatedDataLen: CK_ULONG,
    pPlaintext: CK_BYTE_PTR,
    ulPlaintextLen: CK_ULONG,
    pCiphertext: CK_BYTE_PTR,
    pulCiphertextLen: CK_ULONG_PTR,
) -> CK_RV {
    guard("C_EncryptMessage", || {
        // SAFETY: the caller's pointers follow §5.2 and the parameter's contract.
        unsafe {
            crypt_message(
                hSession,
                true,
                pParameter,
                ulParameterLen,
                pAssociatedData,
                ulAssociatedDataLen,
                pPlaintext,
                ulPlaintextLen,
                pCiphertext,
                pulCiphertextLen,
            )
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_EncryptMessageBegin(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pAssociatedData: CK_BYTE_PTR,
    ulAssociatedDataLen: CK_ULONG,
) -> CK_RV {
    guard("C_EncryptMessageBegin", || {
        // SAFETY: as for C_EncryptMessage.
        unsafe {
            crypt_message_begin(
                hSession,
                true,
                pParameter,
                ulParameterLen,
                pAssociatedData,
                ulAssociatedDataLen,
            )
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_EncryptMessageNext(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pPlaintextPart: CK_BYTE_PTR,
    ulPlaintextPartLen: CK_ULONG,
    pCiphertextPart: CK_BYTE_PTR,
    pulCiphertextPartLen: CK_ULONG_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    guard("C_EncryptMessageNext", || {
        // SAFETY: as for C_EncryptMessage.
        unsafe {
            crypt_message_next(
                hSession,
                true,
                pParameter,
                ulParameterLen,
                pPlaintextPart,
                ulPlaintextPartLen,
                pCiphertextPart,
                pulCiphertextPartLen,
                flags,
            )
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_MessageEncryptFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_MessageEncryptFinal", || {
        api::message_crypt::message_crypt_final(hSession, true)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_MessageDecryptInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_MessageDecryptInit", || {
        // SAFETY: a non-NULL pMechanism points to a CK_MECHANISM.
        unsafe {
            init_or_end(hSession, CKF_MESSAGE_DECRYPT, pMechanism, |m| {
                api::message_crypt::message_crypt_init(hSession, m, hKey, false)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DecryptMessage(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pAssociatedData: CK_BYTE_PTR,
    ulAssociatedDataLen: CK_ULONG,
    pCiphertext: CK_BYTE_PTR,
    ulCiphertextLen: CK_ULONG,
    pPlaintext: CK_BYTE_PTR,
    pulPlaintextLen: CK_ULONG_PTR,
) -> CK_RV {
    guard("C_DecryptMessage", || {
        // SAFETY: as for C_EncryptMessage.
        unsafe {
            crypt_message(
                hSession,
                false,
                pParameter,
                ulParameterLen,
                pAssociatedData,
                ulAssociatedDataLen,
                pCiphertext,
                ulCiphertextLen,
                pPlaintext,
                pulPlaintextLen,
            )
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DecryptMessageBegin(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pAssociatedData: CK_BYTE_PTR,
    ulAssociatedDataLen: CK_ULONG,
) -> CK_RV {
    guard("C_DecryptMessageBegin", || {
        // SAFETY: as for C_EncryptMessage.
        unsafe {
            crypt_message_begin(
                hSession,
                false,
                pParameter,
                ulParameterLen,
                pAssociatedData,
                ulAssociatedDataLen,
            )
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_DecryptMessageNext(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pCiphertextPart: CK_BYTE_PTR,
    ulCiphertextPartLen: CK_ULONG,
    pPlaintextPart: CK_BYTE_PTR,
    pulPlaintextPartLen: CK_ULONG_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    guard("C_DecryptMessageNext", || {
        // SAFETY: as for C_EncryptMessage.
        unsafe {
            crypt_message_next(
                hSession,
                false,
                pParameter,
                ulParameterLen,
                pCiphertextPart,
                ulCiphertextPartLen,
                pPlaintextPart,
                pulPlaintextPartLen,
                flags,
            )
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_MessageDecryptFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_MessageDecryptFinal", || {
        api::message_crypt::message_crypt_final(hSession, false)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_MessageSignInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_MessageSignInit", || {
        // SAFETY: a non-NULL pMechanism points to a CK_MECHANISM.
        unsafe {
            init_or_end(hSession, CKF_MESSAGE_SIGN, pMechanism, |m| {
                api::message_sign::message_sign_init(hSession, m, hKey)
            })
        }
    })
}

// The message-based calls use `guard`, not `guard_operation`: an error ends the message (the
// API does that), never the whole message-based process.

#[no_mangle]
pub unsafe extern "C" fn C_SignMessage(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    pulSignatureLen: CK_ULONG_PTR,
) -> CK_RV {
    guard("C_SignMessage", || {
        // SAFETY: pParameter and pData hold their stated lengths; the output follows §5.2.
        let (parameter, (data, mut out)) = unsafe {
            (
                ptr::bytes(pParameter.cast(), ulParameterLen)?,
                ptr::in_out(pData, ulDataLen, pSignature, pulSignatureLen)?,
            )
        };
        let result = api::message_sign::sign_message(hSession, parameter, &data, &mut out.buf);
        out.finish(result)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignMessageBegin(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
) -> CK_RV {
    guard("C_SignMessageBegin", || {
        // SAFETY: pParameter holds ulParameterLen bytes.
        let parameter = unsafe { ptr::bytes(pParameter.cast(), ulParameterLen) }?;
        api::message_sign::sign_message_begin(hSession, parameter)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_SignMessageNext(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    pulSignatureLen: CK_ULONG_PTR,
) -> CK_RV {
    guard("C_SignMessageNext", || {
        // SAFETY: pParameter holds ulParameterLen bytes.
        let parameter = unsafe { ptr::bytes(pParameter.cast(), ulParameterLen) }?;
        if pulSignatureLen.is_null() {
            // More parts follow: no signature yet.
            // SAFETY: pData holds ulDataLen bytes.
            let data = unsafe { ptr::bytes(pData, ulDataLen) }?;
            return api::message_sign::sign_message_next(hSession, parameter, data, None);
        }
        // SAFETY: pData holds ulDataLen bytes; the output follows §5.2.
        let (data, mut out) =
            unsafe { ptr::in_out(pData, ulDataLen, pSignature, pulSignatureLen) }?;
        let result =
            api::message_sign::sign_message_next(hSession, parameter, &data, Some(&mut out.buf));
        out.finish(result)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_MessageSignFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_MessageSignFinal", || {
        api::message_sign::message_sign_final(hSession)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_MessageVerifyInit(
    hSession: CK_SESSION_HANDLE,
    pMechanism: CK_MECHANISM_PTR,
    hKey: CK_OBJECT_HANDLE,
) -> CK_RV {
    guard("C_MessageVerifyInit", || {
        // SAFETY: a non-NULL pMechanism points to a CK_MECHANISM.
        unsafe {
            init_or_end(hSession, CKF_MESSAGE_VERIFY, pMechanism, |m| {
                api::message_sign::message_verify_init(hSession, m, hKey)
            })
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifyMessage(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard("C_VerifyMessage", || {
        // SAFETY: pParameter, pData and pSignature hold their stated lengths.
        let (parameter, data, signature) = unsafe {
            (
                ptr::bytes(pParameter.cast(), ulParameterLen)?,
                ptr::bytes(pData, ulDataLen)?,
                ptr::bytes(pSignature, ulSignatureLen)?,
            )
        };
        api::message_sign::verify_message(hSession, parameter, data, signature)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifyMessageBegin(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
) -> CK_RV {
    guard("C_VerifyMessageBegin", || {
        // SAFETY: pParameter holds ulParameterLen bytes.
        let parameter = unsafe { ptr::bytes(pParameter.cast(), ulParameterLen) }?;
        api::message_sign::verify_message_begin(hSession, parameter)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_VerifyMessageNext(
    hSession: CK_SESSION_HANDLE,
    pParameter: CK_VOID_PTR,
    ulParameterLen: CK_ULONG,
    pData: CK_BYTE_PTR,
    ulDataLen: CK_ULONG,
    pSignature: CK_BYTE_PTR,
    ulSignatureLen: CK_ULONG,
) -> CK_RV {
    guard("C_VerifyMessageNext", || {
        // SAFETY: pParameter and pData hold their stated lengths; a non-NULL pSignature (the
        // last part) holds ulSignatureLen bytes.
        let (parameter, data, signature) = unsafe {
            (
                ptr::bytes(pParameter.cast(), ulParameterLen)?,
                ptr::bytes(pData, ulDataLen)?,
                ptr::bytes_opt(pSignature, ulSignatureLen)?,
            )
        };
        api::message_sign::verify_message_next(hSession, parameter, data, signature)
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_MessageVerifyFinal(hSession: CK_SESSION_HANDLE) -> CK_RV {
    guard("C_MessageVerifyFinal", || {
        api::message_sign::message_verify_final(hSession)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cryptoki_sys::{CK_ATTRIBUTE, CK_INFO, CK_SESSION_HANDLE};
    use std::ptr::{null_mut, NonNull};

    // Each call below is rejected by a pointer check before any `crate::api` function runs (those
    // are `todo!()` in this branch; reaching one would answer CKR_GENERAL_ERROR instead).

    #[test]
    fn null_out_pointers_are_arguments_bad() {
        crate::core::module::initialize_for_tests().expect("a module for the boundary tests");
        let mut word: CK_ULONG = 1;
        // SAFETY: every pointer is NULL or a live local.
        unsafe {
            assert_eq!(C_GetInfo(null_mut()), Rv::ARGUMENTS_BAD.0);
            assert_eq!(
                C_GetSlotList(1, null_mut(), null_mut()),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(
                C_GetMechanismList(0, null_mut(), null_mut()),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(C_GetSlotInfo(0, null_mut()), Rv::ARGUMENTS_BAD.0);
            assert_eq!(C_GetTokenInfo(0, null_mut()), Rv::ARGUMENTS_BAD.0);
            assert_eq!(C_GetMechanismInfo(0, 0, null_mut()), Rv::ARGUMENTS_BAD.0);
            assert_eq!(
                C_OpenSession(0, 0, null_mut(), None, null_mut()),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(C_GetSessionInfo(1, null_mut()), Rv::ARGUMENTS_BAD.0);
            assert_eq!(C_GetObjectSize(1, 1, null_mut()), Rv::ARGUMENTS_BAD.0);
            assert_eq!(
                C_CreateObject(1, null_mut(), 0, null_mut()),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(
                C_FindObjects(1, null_mut(), 4, &mut word),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(
                C_EncryptFinal(1, null_mut(), null_mut()),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(
                C_Sign(1, null_mut(), 0, null_mut(), null_mut()),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(C_GenerateRandom(1, null_mut(), 16), Rv::ARGUMENTS_BAD.0);
            assert_eq!(
                C_InitToken(0, null_mut(), 0, null_mut()),
                Rv::ARGUMENTS_BAD.0
            );
        }
    }

    #[test]
    fn null_inputs_are_arguments_bad() {
        crate::core::module::initialize_for_tests().expect("a module for the boundary tests");
        let mut handle: CK_SESSION_HANDLE = 0;
        // SAFETY: every pointer is NULL or a live local.
        unsafe {
            // A NULL pMechanism of an operation's *Init is the request to end it (§5.8 ff.),
            // not a bad argument; C_GenerateKey has no such form.
            assert_eq!(
                C_GenerateKey(1, null_mut(), null_mut(), 0, &mut handle),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(
                C_SetAttributeValue(1, 1, null_mut(), 2),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(
                C_GetAttributeValue(1, 1, null_mut(), 2),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(
                C_Verify(1, null_mut(), 3, null_mut(), 0),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(C_DigestUpdate(1, null_mut(), 3), Rv::ARGUMENTS_BAD.0);
            assert_eq!(
                C_SetPIN(1, null_mut(), 4, null_mut(), 4),
                Rv::ARGUMENTS_BAD.0
            );
        }
    }

    #[test]
    fn template_with_null_value_and_length_is_arguments_bad() {
        crate::core::module::initialize_for_tests().expect("a module for the boundary tests");
        let template = [CK_ATTRIBUTE {
            type_: 0,
            pValue: null_mut(),
            ulValueLen: 4,
        }];
        let mut object = 0;
        // SAFETY: `template` and `object` are live locals.
        let rv = unsafe { C_CreateObject(1, template.as_ptr().cast_mut(), 1, &mut object) };
        assert_eq!(rv, Rv::ARGUMENTS_BAD.0);
    }

    #[test]
    fn absurd_lengths_are_refused_before_reading() {
        crate::core::module::initialize_for_tests().expect("a module for the boundary tests");
        let byte = 0u8;
        let p = std::ptr::from_ref(&byte).cast_mut();
        // SAFETY: the lengths are refused before `p` is read past its one byte.
        unsafe {
            assert_eq!(C_DigestUpdate(1, p, CK_ULONG::MAX), Rv::ARGUMENTS_BAD.0);
            assert_eq!(C_SignUpdate(1, p, 1 << 40), Rv::ARGUMENTS_BAD.0);
        }
    }

    #[test]
    fn finalize_requires_null_reserved() {
        crate::core::module::initialize_for_tests().expect("a module for the boundary tests");
        let mut x = 0u8;
        // SAFETY: pReserved is only compared with NULL.
        let rv = unsafe { C_Finalize(std::ptr::from_mut(&mut x).cast()) };
        assert_eq!(rv, Rv::ARGUMENTS_BAD.0);
    }

    #[test]
    fn reaching_an_unimplemented_api_is_a_general_error_not_a_crash() {
        crate::core::module::initialize_for_tests().expect("a module for the boundary tests");
        let mut info = std::mem::MaybeUninit::<CK_INFO>::zeroed();
        // SAFETY: `info` is writable for one CK_INFO. Whatever api::general::get_info does (it is
        // a `todo!()` stub in this branch), the call must come back with a CK_RV, not unwind.
        let rv = unsafe { C_GetInfo(info.as_mut_ptr()) };
        let _ = rv;
    }

    #[test]
    fn newer_functions_check_their_pointers() {
        crate::core::module::initialize_for_tests().expect("a module for the boundary tests");
        let dangling = NonNull::<u8>::dangling().as_ptr();
        let mut slot = 0;
        // SAFETY: each call is refused on a NULL pointer before anything is read.
        unsafe {
            assert_eq!(
                C_WaitForSlotEvent(0, null_mut(), null_mut()),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(
                C_WaitForSlotEvent(0, &mut slot, dangling.cast()),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(
                C_GetOperationState(1, dangling, null_mut()),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(
                C_VerifyRecover(1, dangling, 9, dangling, null_mut()),
                Rv::ARGUMENTS_BAD.0
            );
            assert_eq!(
                C_DigestEncryptUpdate(1, dangling, 1, dangling, null_mut()),
                Rv::ARGUMENTS_BAD.0
            );
        }
    }

    #[test]
    fn unsupported_functions() {
        crate::core::module::initialize_for_tests().expect("a module for the boundary tests");
        // SAFETY: unsupported functions never touch their pointers.
        unsafe {
            assert_eq!(C_GetFunctionStatus(1), Rv::FUNCTION_NOT_PARALLEL.0);
            assert_eq!(C_CancelFunction(1), Rv::FUNCTION_NOT_PARALLEL.0);
        }
    }
}

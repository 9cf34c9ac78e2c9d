//! The function lists and interfaces handed to the application (PKCS#11 3.2 §5.4:
//! `C_GetFunctionList`, `C_GetInterfaceList`, `C_GetInterface`).
//!
//! Three interfaces named "PKCS 11" are offered, newest first: version 3.2 (the default) with the
//! `CK_FUNCTION_LIST_3_2`, version 3.0 with the `CK_FUNCTION_LIST_3_0`, and version 2.40 with
//! the `CK_FUNCTION_LIST` that `C_GetFunctionList` also returns. None claims
//! `CKF_INTERFACE_FORK_SAFE`.
//!
//! Why 3.2 is the default (what `C_GetInterface(NULL, NULL, ..)` answers): each list is a prefix
//! of the next one (the 3.0 functions follow the 2.40 ones, the 3.2 functions follow those), so a
//! client built for 3.0 that reads the default list as a `CK_FUNCTION_LIST_3_0` — OpenSC's
//! `pkcs11-tool`, p11-kit, python-pkcs11, GnuTLS, OpenSSL's pkcs11-provider, which all take the
//! default and check only `version.major >= 3` — sees exactly the 3.0 list; while clients that
//! can use 3.2 (the `cryptoki` crate, for one) only look for the 3.2 functions in the default
//! interface. A client that wants the 3.0 list by its version still gets it.

use std::ffi::c_void;

use cryptoki_sys::{
    CK_FLAGS, CK_FUNCTION_LIST, CK_FUNCTION_LIST_3_0, CK_FUNCTION_LIST_3_2,
    CK_FUNCTION_LIST_PTR_PTR, CK_INTERFACE, CK_INTERFACE_PTR, CK_INTERFACE_PTR_PTR, CK_RV,
    CK_ULONG_PTR, CK_UTF8CHAR, CK_UTF8CHAR_PTR, CK_VERSION, CK_VERSION_PTR,
};

use super::exports::*;
use super::guard::guard_uninitialized;
use super::ptr;
use crate::error::Rv;

/// The interface name, NUL-terminated as `CK_INTERFACE.pInterfaceName` requires.
static INTERFACE_NAME: [CK_UTF8CHAR; 8] = *b"PKCS 11\0";

const VERSION_2_40: CK_VERSION = CK_VERSION {
    major: 2,
    minor: 40,
};
const VERSION_3_0: CK_VERSION = CK_VERSION { major: 3, minor: 0 };
const VERSION_3_2: CK_VERSION = CK_VERSION { major: 3, minor: 2 };

macro_rules! function_list {
    ($ty:ident, $version:expr, { $($extra:ident),* }) => {
        $ty {
            version: $version,
            C_Initialize: Some(C_Initialize),
            C_Finalize: Some(C_Finalize),
            C_GetInfo: Some(C_GetInfo),
            C_GetFunctionList: Some(C_GetFunctionList),
            C_GetSlotList: Some(C_GetSlotList),
            C_GetSlotInfo: Some(C_GetSlotInfo),
            C_GetTokenInfo: Some(C_GetTokenInfo),
            C_GetMechanismList: Some(C_GetMechanismList),
            C_GetMechanismInfo: Some(C_GetMechanismInfo),
            C_InitToken: Some(C_InitToken),
            C_InitPIN: Some(C_InitPIN),
            C_SetPIN: Some(C_SetPIN),
            C_OpenSession: Some(C_OpenSession),
            C_CloseSession: Some(C_CloseSession),
            C_CloseAllSessions: Some(C_CloseAllSessions),
            C_GetSessionInfo: Some(C_GetSessionInfo),
            C_GetOperationState: Some(C_GetOperationState),
            C_SetOperationState: Some(C_SetOperationState),
            C_Login: Some(C_Login),
            C_Logout: Some(C_Logout),
            C_CreateObject: Some(C_CreateObject),
            C_CopyObject: Some(C_CopyObject),
            C_DestroyObject: Some(C_DestroyObject),
            C_GetObjectSize: Some(C_GetObjectSize),
            C_GetAttributeValue: Some(C_GetAttributeValue),
            C_SetAttributeValue: Some(C_SetAttributeValue),
            C_FindObjectsInit: Some(C_FindObjectsInit),
            C_FindObjects: Some(C_FindObjects),
            C_FindObjectsFinal: Some(C_FindObjectsFinal),
            C_EncryptInit: Some(C_EncryptInit),
            C_Encrypt: Some(C_Encrypt),
            C_EncryptUpdate: Some(C_EncryptUpdate),
            C_EncryptFinal: Some(C_EncryptFinal),
            C_DecryptInit: Some(C_DecryptInit),
            C_Decrypt: Some(C_Decrypt),
            C_DecryptUpdate: Some(C_DecryptUpdate),
            C_DecryptFinal: Some(C_DecryptFinal),
            C_DigestInit: Some(C_DigestInit),
            C_Digest: Some(C_Digest),
            C_DigestUpdate: Some(C_DigestUpdate),
            C_DigestKey: Some(C_DigestKey),
            C_DigestFinal: Some(C_DigestFinal),
            C_SignInit: Some(C_SignInit),
            C_Sign: Some(C_Sign),
            C_SignUpdate: Some(C_SignUpdate),
            C_SignFinal: Some(C_SignFinal),
            C_SignRecoverInit: Some(C_SignRecoverInit),
            C_SignRecover: Some(C_SignRecover),
            C_VerifyInit: Some(C_VerifyInit),
            C_Verify: Some(C_Verify),
            C_VerifyUpdate: Some(C_VerifyUpdate),
            C_VerifyFinal: Some(C_VerifyFinal),
            C_VerifyRecoverInit: Some(C_VerifyRecoverInit),
            C_VerifyRecover: Some(C_VerifyRecover),
            C_DigestEncryptUpdate: Some(C_DigestEncryptUpdate),
            C_DecryptDigestUpdate: Some(C_DecryptDigestUpdate),
            C_SignEncryptUpdate: Some(C_SignEncryptUpdate),
            C_DecryptVerifyUpdate: Some(C_DecryptVerifyUpdate),
            C_GenerateKey: Some(C_GenerateKey),
            C_GenerateKeyPair: Some(C_GenerateKeyPair),
            C_WrapKey: Some(C_WrapKey),
            C_UnwrapKey: Some(C_UnwrapKey),
            C_DeriveKey: Some(C_DeriveKey),
            C_SeedRandom: Some(C_SeedRandom),
            C_GenerateRandom: Some(C_GenerateRandom),
            C_GetFunctionStatus: Some(C_GetFunctionStatus),
            C_CancelFunction: Some(C_CancelFunction),
            C_WaitForSlotEvent: Some(C_WaitForSlotEvent),
            $($extra: Some($extra),)*
        }
    };
}

/// The functions PKCS#11 3.0 added to the 2.40 list, in the order of `CK_FUNCTION_LIST_3_0`,
/// followed by any `$more` of a later version: the 3.2 list is the 3.0 list with more at its end.
macro_rules! function_list_3 {
    ($ty:ident, $version:expr, { $($more:ident),* }) => {
        function_list!($ty, $version, {
            C_GetInterfaceList,
            C_GetInterface,
            C_LoginUser,
            C_SessionCancel,
            C_MessageEncryptInit,
            C_EncryptMessage,
            C_EncryptMessageBegin,
            C_EncryptMessageNext,
            C_MessageEncryptFinal,
            C_MessageDecryptInit,
            C_DecryptMessage,
            C_DecryptMessageBegin,
            C_DecryptMessageNext,
            C_MessageDecryptFinal,
            C_MessageSignInit,
            C_SignMessage,
            C_SignMessageBegin,
            C_SignMessageNext,
            C_MessageSignFinal,
            C_MessageVerifyInit,
            C_VerifyMessage,
            C_VerifyMessageBegin,
            C_VerifyMessageNext,
            C_MessageVerifyFinal
            $(, $more)*
        })
    };
}

/// The PKCS#11 2.40 function list (also what `C_GetFunctionList` returns).
static FUNCTION_LIST: CK_FUNCTION_LIST = function_list!(CK_FUNCTION_LIST, VERSION_2_40, {});

/// The PKCS#11 3.0 function list.
static FUNCTION_LIST_3_0: CK_FUNCTION_LIST_3_0 =
    function_list_3!(CK_FUNCTION_LIST_3_0, VERSION_3_0, {});

/// The PKCS#11 3.2 function list: the 3.0 list and the functions 3.2 added.
static FUNCTION_LIST_3_2: CK_FUNCTION_LIST_3_2 = function_list_3!(CK_FUNCTION_LIST_3_2, VERSION_3_2, {
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
});

/// `CK_INTERFACE`s hold raw pointers, so a static of them needs a `Sync` wrapper.
struct Interfaces([CK_INTERFACE; 3]);

// SAFETY: the pointers inside point to immutable statics (the name and the function lists); no
// one writes through them, so sharing them between threads is sound.
unsafe impl Sync for Interfaces {}

/// An interface named "PKCS 11" with `list`.
const fn interface<T>(list: &'static T) -> CK_INTERFACE {
    CK_INTERFACE {
        pInterfaceName: INTERFACE_NAME.as_ptr().cast_mut(),
        pFunctionList: std::ptr::from_ref(list).cast_mut().cast::<c_void>(),
        flags: 0,
    }
}

/// Our interfaces, newest first; the first is the default.
static INTERFACES: Interfaces = Interfaces([
    interface(&FUNCTION_LIST_3_2),
    interface(&FUNCTION_LIST_3_0),
    interface(&FUNCTION_LIST),
]);

/// The version of each of [`INTERFACES`], in the same order (each is also the first field of
/// its function list; a unit test holds them equal).
const INTERFACE_VERSIONS: [CK_VERSION; 3] = [VERSION_3_2, VERSION_3_0, VERSION_2_40];

#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(ppFunctionList: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    guard_uninitialized("C_GetFunctionList", || {
        // SAFETY: ppFunctionList is writable for one pointer (§5.4).
        let list = unsafe { ptr::out(ppFunctionList) }?;
        // The caller receives a `*mut` by the spec's signature but must not write through it.
        list.set(std::ptr::from_ref(&FUNCTION_LIST).cast_mut());
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn C_GetInterfaceList(
    pInterfacesList: CK_INTERFACE_PTR,
    pulCount: CK_ULONG_PTR,
) -> CK_RV {
    guard_uninitialized("C_GetInterfaceList", || {
        // SAFETY: pulCount is in/out; a non-NULL list holds *pulCount interfaces (§5.4).
        unsafe { ptr::fill_list(&INTERFACES.0, pInterfacesList, pulCount) }
    })
}

/// True when the caller's NUL-terminated `name` is "PKCS 11". Compares byte by byte and stops
/// at the first difference, so it never reads past the caller's terminator.
///
/// # Safety
/// `name` must be non-NULL and point to a NUL-terminated string.
unsafe fn is_our_name(name: *const CK_UTF8CHAR) -> bool {
    for (i, expected) in INTERFACE_NAME.iter().enumerate() {
        // SAFETY: every byte before the caller's NUL is readable, and we stop at the first
        // mismatch, which at the latest is their NUL or ours.
        if unsafe { name.add(i).read() } != *expected {
            return false;
        }
    }
    true
}

#[no_mangle]
pub unsafe extern "C" fn C_GetInterface(
    pInterfaceName: CK_UTF8CHAR_PTR,
    pVersion: CK_VERSION_PTR,
    ppInterface: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    guard_uninitialized("C_GetInterface", || {
        // SAFETY: ppInterface is writable for one pointer; a non-NULL pVersion points to a
        // CK_VERSION (§5.4).
        let (interface_out, version) =
            unsafe { (ptr::out(ppInterface)?, ptr::read_opt(pVersion)?) };
        // SAFETY: a non-NULL pInterfaceName is NUL-terminated (§5.4).
        if !pInterfaceName.is_null() && !unsafe { is_our_name(pInterfaceName) } {
            Err(Rv::ARGUMENTS_BAD)?
        }
        let found = INTERFACES
            .0
            .iter()
            .zip(INTERFACE_VERSIONS)
            .find(|(interface, v)| {
                version.is_none_or(|want| (want.major, want.minor) == (v.major, v.minor))
                    && interface.flags & flags == flags
            });
        match found {
            Some((interface, _)) => {
                interface_out.set(std::ptr::from_ref(interface).cast_mut());
                Ok(())
            }
            None => Err(Rv::ARGUMENTS_BAD)?,
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use cryptoki_sys::{CKF_INTERFACE_FORK_SAFE, CK_ULONG};
    use std::ffi::CStr;
    use std::ptr::{null, null_mut};

    fn name_of(interface: &CK_INTERFACE) -> &CStr {
        // SAFETY: our interfaces point to the static NUL-terminated name.
        unsafe { CStr::from_ptr(interface.pInterfaceName.cast()) }
    }

    /// The version at the start of the function list an interface points to.
    fn list_version(interface: &CK_INTERFACE) -> (u8, u8) {
        // SAFETY: every list type starts with a CK_VERSION; the pointer is to one of our statics.
        let v = unsafe { interface.pFunctionList.cast::<CK_VERSION>().read() };
        (v.major, v.minor)
    }

    /// The function pointers of a list, each as a usize: every list type is a CK_VERSION
    /// (padded to one word) followed by nullable function pointers.
    fn slots<T>(list: &T) -> &[usize] {
        let words = (size_of::<T>() - size_of::<usize>()) / size_of::<usize>();
        // SAFETY: as said above, `list` is followed by `words` readable pointer-sized slots.
        unsafe {
            std::slice::from_raw_parts(std::ptr::from_ref(list).cast::<usize>().add(1), words)
        }
    }

    #[test]
    fn get_function_list() {
        crate::core::module::initialize_for_tests().expect("a module for the boundary tests");
        assert_eq!(
            // SAFETY: NULL is refused.
            unsafe { C_GetFunctionList(null_mut()) },
            Rv::ARGUMENTS_BAD.0
        );
        let mut list: *mut CK_FUNCTION_LIST = null_mut();
        // SAFETY: `list` is a live local.
        assert_eq!(unsafe { C_GetFunctionList(&mut list) }, Rv::OK.0);
        // SAFETY: we just received a pointer to our static list.
        let list = unsafe { &*list };
        assert_eq!((list.version.major, list.version.minor), (2, 40));
        assert!(list.C_Initialize.is_some() && list.C_WaitForSlotEvent.is_some());
        assert!(list.C_GetFunctionList.is_some());
        // Calling through the list reaches our export.
        let get_info = list.C_GetInfo.expect("C_GetInfo");
        // SAFETY: NULL is refused before any api call.
        assert_eq!(unsafe { get_info(null_mut()) }, Rv::ARGUMENTS_BAD.0);
    }

    #[test]
    fn function_list_3_0_is_complete() {
        crate::core::module::initialize_for_tests().expect("a module for the boundary tests");
        let l = &FUNCTION_LIST_3_0;
        assert_eq!((l.version.major, l.version.minor), (3, 0));
        let all = [
            l.C_GetInterfaceList.is_some(),
            l.C_GetInterface.is_some(),
            l.C_LoginUser.is_some(),
            l.C_SessionCancel.is_some(),
            l.C_MessageEncryptInit.is_some(),
            l.C_MessageVerifyFinal.is_some(),
            l.C_Initialize.is_some(),
            l.C_GenerateRandom.is_some(),
        ];
        assert!(all.iter().all(|x| *x));
        // Every slot of every table is filled.
        let all_filled = |slots: &[usize]| slots.iter().all(|&p| p != 0);
        assert!(all_filled(slots(&FUNCTION_LIST)));
        assert!(all_filled(slots(&FUNCTION_LIST_3_0)));
        assert!(all_filled(slots(&FUNCTION_LIST_3_2)));
    }

    /// Each list is a prefix of the next: a client reading the 3.2 list as a 3.0 one (or either
    /// as a 2.40 one) calls the same functions.
    #[test]
    fn each_list_is_a_prefix_of_the_next() {
        let (v2, v30, v32) = (
            slots(&FUNCTION_LIST),
            slots(&FUNCTION_LIST_3_0),
            slots(&FUNCTION_LIST_3_2),
        );
        assert_eq!((v2.len(), v30.len(), v32.len()), (68, 92, 104));
        assert_eq!(&v30[..v2.len()], v2);
        assert_eq!(&v32[..v30.len()], v30);
        let l = &FUNCTION_LIST_3_2;
        let verify_signature_init = l.C_VerifySignatureInit.map(|f| f as *const () as usize);
        assert_eq!(
            verify_signature_init,
            Some(C_VerifySignatureInit as *const () as usize)
        );
        let unwrap_authenticated = l.C_UnwrapKeyAuthenticated.map(|f| f as *const () as usize);
        assert_eq!(
            unwrap_authenticated,
            Some(C_UnwrapKeyAuthenticated as *const () as usize)
        );
    }

    #[test]
    fn interface_versions_are_their_lists_versions() {
        for (interface, v) in INTERFACES.0.iter().zip(INTERFACE_VERSIONS) {
            assert_eq!(list_version(interface), (v.major, v.minor));
        }
    }

    #[test]
    fn get_interface_list_two_calls() {
        crate::core::module::initialize_for_tests().expect("a module for the boundary tests");
        assert_eq!(
            // SAFETY: NULL count is refused.
            unsafe { C_GetInterfaceList(null_mut(), null_mut()) },
            Rv::ARGUMENTS_BAD.0
        );
        let mut count: CK_ULONG = 0;
        assert_eq!(
            // SAFETY: `count` is live; NULL list asks for the count.
            unsafe { C_GetInterfaceList(null_mut(), &mut count) },
            Rv::OK.0
        );
        assert_eq!(count, 3);

        let empty = CK_INTERFACE {
            pInterfaceName: null_mut(),
            pFunctionList: null_mut(),
            flags: 0,
        };
        let mut list = [empty; 3];
        let mut count: CK_ULONG = 2;
        assert_eq!(
            // SAFETY: `list` holds at least `count` entries.
            unsafe { C_GetInterfaceList(list.as_mut_ptr(), &mut count) },
            Rv::BUFFER_TOO_SMALL.0
        );
        assert_eq!(count, 3);

        let mut count: CK_ULONG = 3;
        assert_eq!(
            // SAFETY: `list` holds `count` entries.
            unsafe { C_GetInterfaceList(list.as_mut_ptr(), &mut count) },
            Rv::OK.0
        );
        assert_eq!(count, 3);
        for interface in &list {
            assert_eq!(name_of(interface).to_bytes(), b"PKCS 11");
            assert!(!interface.pFunctionList.is_null());
            assert_eq!(interface.flags, 0);
        }
        assert_eq!(list_version(&list[0]), (3, 2));
        assert_eq!(list_version(&list[1]), (3, 0));
        assert_eq!(list_version(&list[2]), (2, 40));
    }

    fn get_interface(
        name: Option<&CStr>,
        version: Option<CK_VERSION>,
        flags: CK_FLAGS,
    ) -> Result<(u8, u8), Rv> {
        let mut version = version;
        let version_ptr = version.as_mut().map_or(null_mut(), std::ptr::from_mut);
        let name_ptr = name
            .map_or(null(), CStr::as_ptr)
            .cast::<CK_UTF8CHAR>()
            .cast_mut();
        let mut interface: CK_INTERFACE_PTR = null_mut();
        // SAFETY: all pointers are NULL or live locals.
        let rv = unsafe { C_GetInterface(name_ptr, version_ptr, &mut interface, flags) };
        if rv != Rv::OK.0 {
            return Err(Rv(rv));
        }
        // SAFETY: on success `interface` points to one of our static interfaces.
        let interface = unsafe { &*interface };
        assert_eq!(name_of(interface).to_bytes(), b"PKCS 11");
        Ok(list_version(interface))
    }

    #[test]
    fn get_interface_selection() {
        crate::core::module::initialize_for_tests().expect("a module for the boundary tests");
        let ours = c"PKCS 11";
        assert_eq!(get_interface(None, None, 0), Ok((3, 2)));
        assert_eq!(get_interface(Some(ours), None, 0), Ok((3, 2)));
        assert_eq!(get_interface(Some(ours), Some(VERSION_3_2), 0), Ok((3, 2)));
        assert_eq!(get_interface(Some(ours), Some(VERSION_3_0), 0), Ok((3, 0)));
        assert_eq!(
            get_interface(Some(ours), Some(VERSION_2_40), 0),
            Ok((2, 40))
        );
        assert_eq!(get_interface(None, Some(VERSION_2_40), 0), Ok((2, 40)));
        assert_eq!(
            get_interface(Some(ours), Some(CK_VERSION { major: 3, minor: 1 }), 0),
            Err(Rv::ARGUMENTS_BAD)
        );
        assert_eq!(
            get_interface(Some(c"Vendor XYZ"), None, 0),
            Err(Rv::ARGUMENTS_BAD)
        );
        assert_eq!(
            get_interface(Some(c"PKCS 11 "), None, 0),
            Err(Rv::ARGUMENTS_BAD)
        );
        assert_eq!(
            get_interface(Some(c"PKCS"), None, 0),
            Err(Rv::ARGUMENTS_BAD)
        );
        assert_eq!(
            get_interface(None, None, CKF_INTERFACE_FORK_SAFE),
            Err(Rv::ARGUMENTS_BAD)
        );
        assert_eq!(
            // SAFETY: NULL ppInterface is refused.
            unsafe { C_GetInterface(null_mut(), null_mut(), null_mut(), 0) },
            Rv::ARGUMENTS_BAD.0
        );
    }

    #[test]
    fn the_default_interface_points_to_the_3_2_list() {
        crate::core::module::initialize_for_tests().expect("a module for the boundary tests");
        let mut interface: CK_INTERFACE_PTR = null_mut();
        assert_eq!(
            // SAFETY: `interface` is a live local.
            unsafe { C_GetInterface(null_mut(), null_mut(), &mut interface, 0) },
            Rv::OK.0
        );
        // SAFETY: the default interface's list is our static CK_FUNCTION_LIST_3_2.
        let list = unsafe { &*(*interface).pFunctionList.cast::<CK_FUNCTION_LIST_3_2>() };
        assert!(list.C_GetInterface.is_some() && list.C_MessageVerifyFinal.is_some());
        assert!(list.C_VerifySignatureFinal.is_some());
        let cancel = list.C_CancelFunction.expect("C_CancelFunction");
        // SAFETY: C_CancelFunction takes no pointers.
        assert_eq!(unsafe { cancel(1) }, Rv::FUNCTION_NOT_PARALLEL.0);
    }
}

//! The PKCS#11 calls on the measured path, made through the module's own function list
//! (`C_GetFunctionList`, which every module exports; Kryoptic exports nothing else), one call per
//! step and into a buffer the caller owns: `C_SignInit` + `C_Sign` with room for the largest
//! signature, `C_EncryptInit` + `C_Encrypt` (or `C_EncryptUpdate`s + `C_EncryptFinal`) with room
//! for the ciphertext and tag. No size query and no allocation per call, so the figures are the
//! module's and not a wrapper's. Set-up (tokens, logins, key generation) goes through the
//! `cryptoki` crate.
//!
//! All the benchmark's `unsafe` is here; every pointer handed to the module is to a live value of
//! the stated length, for the duration of the call.

use std::ffi::c_void;
use std::path::Path;
use std::ptr::null_mut;

use cryptoki_sys::*;

use crate::Result;

/// A mechanism and its parameter, built on the stack for each call.
#[derive(Clone, Copy)]
pub enum Mech {
    /// A mechanism without a parameter (`CKM_ECDSA`, `CKM_SHA256_RSA_PKCS`, `CKM_EDDSA` — no
    /// parameter means pure Ed25519 —, `CKM_ML_KEM`).
    Plain(CK_MECHANISM_TYPE),
    /// `CKM_AES_GCM`, 96-bit IV, no AAD, 128-bit tag.
    Gcm([u8; 12]),
    /// `CKM_AES_CBC_PAD` with this IV.
    CbcPad([u8; 16]),
    /// `CKM_CHACHA20_POLY1305`, 96-bit nonce, no AAD.
    ChaChaPoly([u8; 12]),
    /// `CKM_ML_DSA`, hedged signing (`CKH_HEDGE_PREFERRED`), no context.
    MlDsa,
}

fn with_param<P, R>(
    mechanism: CK_MECHANISM_TYPE,
    param: &mut P,
    f: impl FnOnce(*mut CK_MECHANISM) -> R,
) -> R {
    let mut mech = CK_MECHANISM {
        mechanism,
        pParameter: (param as *mut P).cast::<c_void>(),
        ulParameterLen: size_of::<P>() as CK_ULONG,
    };
    f(&mut mech)
}

impl Mech {
    fn with<R>(self, f: impl FnOnce(*mut CK_MECHANISM) -> R) -> R {
        match self {
            Mech::Plain(mechanism) => {
                let mut mech = CK_MECHANISM {
                    mechanism,
                    pParameter: null_mut(),
                    ulParameterLen: 0,
                };
                f(&mut mech)
            }
            Mech::Gcm(mut iv) => {
                let mut p = CK_GCM_PARAMS {
                    pIv: iv.as_mut_ptr(),
                    ulIvLen: iv.len() as CK_ULONG,
                    ulIvBits: 96,
                    pAAD: null_mut(),
                    ulAADLen: 0,
                    ulTagBits: 128,
                };
                with_param(CKM_AES_GCM, &mut p, f)
            }
            Mech::CbcPad(mut iv) => with_param(CKM_AES_CBC_PAD, &mut iv, f),
            Mech::ChaChaPoly(mut nonce) => {
                let mut p = CK_SALSA20_CHACHA20_POLY1305_PARAMS {
                    pNonce: nonce.as_mut_ptr(),
                    ulNonceLen: nonce.len() as CK_ULONG,
                    pAAD: null_mut(),
                    ulAADLen: 0,
                };
                with_param(CKM_CHACHA20_POLY1305, &mut p, f)
            }
            Mech::MlDsa => {
                let mut p = CK_SIGN_ADDITIONAL_CONTEXT {
                    hedgeVariant: CKH_HEDGE_PREFERRED,
                    pContext: null_mut(),
                    ulContextLen: 0,
                };
                with_param(CKM_ML_DSA, &mut p, f)
            }
        }
    }
}

fn check(rv: CK_RV, what: &str) -> Result<()> {
    match rv {
        CKR_OK => Ok(()),
        rv => Err(format!("{what}: CK_RV 0x{rv:x}").into()),
    }
}

fn ulong(n: usize) -> CK_ULONG {
    n as CK_ULONG
}

/// The function list of one loaded module. The library stays loaded for the life of the process
/// (it is leaked): a module's handles and threads may outlive any one measurement.
pub struct Calls {
    list: &'static CK_FUNCTION_LIST,
    /// The same library's exported symbols, for the PKCS#11 3.2 functions the 3.0 list lacks
    /// (`C_EncapsulateKey`, `C_DecapsulateKey`), where the module exports them.
    direct: &'static cryptoki_sys::Pkcs11,
}

/// Looks up one entry of the function list.
macro_rules! function {
    ($calls:expr, $name:ident) => {
        $calls
            .list
            .$name
            .ok_or(concat!("the module has no ", stringify!($name)))?
    };
}

impl Calls {
    pub fn load(path: &Path) -> Result<Calls> {
        // SAFETY: loading a PKCS#11 module runs only its initialisers; cryptoki loads the same
        // file, and the symbols are used per the PKCS#11 ABI.
        let direct: &'static cryptoki_sys::Pkcs11 =
            Box::leak(Box::new(unsafe { cryptoki_sys::Pkcs11::new(path) }?));
        let get = direct
            .C_GetFunctionList
            .as_ref()
            .map_err(|e| format!("{}: no C_GetFunctionList: {e}", path.display()))?;
        let mut list: CK_FUNCTION_LIST_PTR = null_mut();
        // SAFETY: `list` is a live out-pointer.
        check(unsafe { get(&mut list) }, "C_GetFunctionList")?;
        // SAFETY: the module returned its static function list (checked non-NULL below).
        let list = unsafe { list.as_ref() }.ok_or("C_GetFunctionList returned NULL")?;
        Ok(Calls { list, direct })
    }

    /// `C_SignInit` + `C_Sign` into `out`; returns the signature's length.
    pub fn sign(
        &self,
        session: CK_SESSION_HANDLE,
        mech: Mech,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
        out: &mut [u8],
    ) -> Result<usize> {
        let init = function!(self, C_SignInit);
        let sign = function!(self, C_Sign);
        // SAFETY: the mechanism lives for the call.
        check(
            mech.with(|m| unsafe { init(session, m, key) }),
            "C_SignInit",
        )?;
        let mut len = ulong(out.len());
        // SAFETY: `data` and `out` are live for their stated lengths.
        check(
            unsafe {
                sign(
                    session,
                    data.as_ptr().cast_mut(),
                    ulong(data.len()),
                    out.as_mut_ptr(),
                    &mut len,
                )
            },
            "C_Sign",
        )?;
        Ok(len as usize)
    }

    /// `C_VerifyInit` + `C_Verify`; a refused signature is an error.
    pub fn verify(
        &self,
        session: CK_SESSION_HANDLE,
        mech: Mech,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        let init = function!(self, C_VerifyInit);
        let verify = function!(self, C_Verify);
        // SAFETY: the mechanism lives for the call.
        check(
            mech.with(|m| unsafe { init(session, m, key) }),
            "C_VerifyInit",
        )?;
        // SAFETY: `data` and `signature` are live for their stated lengths.
        check(
            unsafe {
                verify(
                    session,
                    data.as_ptr().cast_mut(),
                    ulong(data.len()),
                    signature.as_ptr().cast_mut(),
                    ulong(signature.len()),
                )
            },
            "C_Verify",
        )
    }

    /// Encrypts `data` into `out`: `C_EncryptInit` + `C_Encrypt` when `parts` is 1, otherwise
    /// `C_EncryptInit`, one `C_EncryptUpdate` per part and `C_EncryptFinal`. Returns the
    /// ciphertext's length.
    pub fn encrypt(
        &self,
        session: CK_SESSION_HANDLE,
        mech: Mech,
        key: CK_OBJECT_HANDLE,
        data: &[u8],
        parts: usize,
        out: &mut [u8],
    ) -> Result<usize> {
        let init = function!(self, C_EncryptInit);
        // SAFETY: the mechanism lives for the call.
        check(
            mech.with(|m| unsafe { init(session, m, key) }),
            "C_EncryptInit",
        )?;
        if parts <= 1 {
            let encrypt = function!(self, C_Encrypt);
            let mut len = ulong(out.len());
            // SAFETY: `data` and `out` are live for their stated lengths.
            check(
                unsafe {
                    encrypt(
                        session,
                        data.as_ptr().cast_mut(),
                        ulong(data.len()),
                        out.as_mut_ptr(),
                        &mut len,
                    )
                },
                "C_Encrypt",
            )?;
            return Ok(len as usize);
        }
        let update = function!(self, C_EncryptUpdate);
        let finish = function!(self, C_EncryptFinal);
        let mut done = 0;
        for part in data.chunks(data.len().div_ceil(parts).max(1)) {
            let rest = &mut out[done..];
            let mut len = ulong(rest.len());
            // SAFETY: `part` and `rest` are live for their stated lengths.
            check(
                unsafe {
                    update(
                        session,
                        part.as_ptr().cast_mut(),
                        ulong(part.len()),
                        rest.as_mut_ptr(),
                        &mut len,
                    )
                },
                "C_EncryptUpdate",
            )?;
            done += len as usize;
        }
        let rest = &mut out[done..];
        let mut len = ulong(rest.len());
        // SAFETY: `rest` is live for its stated length.
        check(
            unsafe { finish(session, rest.as_mut_ptr(), &mut len) },
            "C_EncryptFinal",
        )?;
        Ok(done + len as usize)
    }

    /// `C_FindObjectsInit` on `CKA_LABEL` = `label`, one `C_FindObjects` for up to two handles,
    /// `C_FindObjectsFinal`; returns how many were found.
    pub fn find_by_label(&self, session: CK_SESSION_HANDLE, label: &[u8]) -> Result<usize> {
        let init = function!(self, C_FindObjectsInit);
        let find = function!(self, C_FindObjects);
        let finish = function!(self, C_FindObjectsFinal);
        let mut template = [CK_ATTRIBUTE {
            type_: CKA_LABEL,
            pValue: label.as_ptr().cast_mut().cast(),
            ulValueLen: ulong(label.len()),
        }];
        // SAFETY: the template and the label it points to are live for the call.
        check(
            unsafe { init(session, template.as_mut_ptr(), ulong(template.len())) },
            "C_FindObjectsInit",
        )?;
        let mut found = [0 as CK_OBJECT_HANDLE; 2];
        let mut count: CK_ULONG = 0;
        // SAFETY: `found` has room for the stated two handles.
        let rv = unsafe { find(session, found.as_mut_ptr(), ulong(found.len()), &mut count) };
        // SAFETY: ends the search begun above, whatever C_FindObjects answered.
        let end = unsafe { finish(session) };
        check(rv, "C_FindObjects")?;
        check(end, "C_FindObjectsFinal")?;
        Ok(count as usize)
    }

    /// `C_CreateObject` of a secret key of `key_type` (AES, ChaCha20: `cryptoki` does not name
    /// the latter) with `value`, for encryption; a token object when `token`.
    pub fn create_secret(
        &self,
        session: CK_SESSION_HANDLE,
        key_type: CK_KEY_TYPE,
        token: bool,
        label: &[u8],
        value: &[u8],
    ) -> Result<CK_OBJECT_HANDLE> {
        let create = function!(self, C_CreateObject);
        let class: CK_OBJECT_CLASS = CKO_SECRET_KEY;
        let token: CK_BBOOL = if token { CK_TRUE } else { CK_FALSE };
        let yes: CK_BBOOL = CK_TRUE;
        let attr = |type_, value: *const c_void, len: usize| CK_ATTRIBUTE {
            type_,
            pValue: value.cast_mut(),
            ulValueLen: ulong(len),
        };
        let mut template = [
            attr(CKA_CLASS, (&raw const class).cast(), size_of_val(&class)),
            attr(
                CKA_KEY_TYPE,
                (&raw const key_type).cast(),
                size_of_val(&key_type),
            ),
            attr(CKA_TOKEN, (&raw const token).cast(), 1),
            attr(CKA_PRIVATE, (&raw const yes).cast(), 1),
            attr(CKA_ENCRYPT, (&raw const yes).cast(), 1),
            attr(CKA_DECRYPT, (&raw const yes).cast(), 1),
            attr(CKA_LABEL, label.as_ptr().cast(), label.len()),
            attr(CKA_VALUE, value.as_ptr().cast(), value.len()),
        ];
        let mut handle = 0;
        // SAFETY: the template and every value it points to are live for the call.
        check(
            unsafe {
                create(
                    session,
                    template.as_mut_ptr(),
                    ulong(template.len()),
                    &mut handle,
                )
            },
            "C_CreateObject",
        )?;
        Ok(handle)
    }

    pub fn destroy(&self, session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> Result<()> {
        let destroy = function!(self, C_DestroyObject);
        // SAFETY: plain integers.
        check(unsafe { destroy(session, object) }, "C_DestroyObject")
    }

    /// Whether the module exports `C_EncapsulateKey` and `C_DecapsulateKey`.
    pub fn has_kem(&self) -> bool {
        self.direct.C_EncapsulateKey.is_ok() && self.direct.C_DecapsulateKey.is_ok()
    }

    /// `C_EncapsulateKey` with `CKM_ML_KEM` and `public`, the shared secret becoming a session
    /// AES-256 key; writes the ciphertext into `ciphertext` and returns its length and the key.
    pub fn encapsulate(
        &self,
        session: CK_SESSION_HANDLE,
        public: CK_OBJECT_HANDLE,
        ciphertext: &mut [u8],
    ) -> Result<(usize, CK_OBJECT_HANDLE)> {
        if !self.has_kem() {
            Err("the module has no C_EncapsulateKey")?
        }
        let mut template = kem_template();
        let mut len = ulong(ciphertext.len());
        let mut key = 0;
        check(
            Mech::Plain(CKM_ML_KEM).with(|m| {
                // SAFETY: every pointer is to a live value of the stated length, for the call;
                // the symbol was checked above.
                unsafe {
                    self.direct.C_EncapsulateKey(
                        session,
                        m,
                        public,
                        template.as_mut_ptr(),
                        ulong(template.len()),
                        ciphertext.as_mut_ptr(),
                        &mut len,
                        &mut key,
                    )
                }
            }),
            "C_EncapsulateKey",
        )?;
        Ok((len as usize, key))
    }

    /// `C_DecapsulateKey` of `ciphertext` with `CKM_ML_KEM` and `private`, into a session
    /// AES-256 key.
    pub fn decapsulate(
        &self,
        session: CK_SESSION_HANDLE,
        private: CK_OBJECT_HANDLE,
        ciphertext: &[u8],
    ) -> Result<CK_OBJECT_HANDLE> {
        if !self.has_kem() {
            Err("the module has no C_DecapsulateKey")?
        }
        let mut template = kem_template();
        let mut key = 0;
        check(
            Mech::Plain(CKM_ML_KEM).with(|m| {
                // SAFETY: every pointer is to a live value of the stated length, for the call;
                // the symbol was checked above. The module only reads the ciphertext.
                unsafe {
                    self.direct.C_DecapsulateKey(
                        session,
                        m,
                        private,
                        template.as_mut_ptr(),
                        ulong(template.len()),
                        ciphertext.as_ptr().cast_mut(),
                        ulong(ciphertext.len()),
                        &mut key,
                    )
                }
            }),
            "C_DecapsulateKey",
        )?;
        Ok(key)
    }
}

/// The template of an encapsulated shared secret's key: a session AES-256 key.
fn kem_template() -> [CK_ATTRIBUTE; 4] {
    static CLASS: CK_OBJECT_CLASS = CKO_SECRET_KEY;
    static KEY_TYPE: CK_KEY_TYPE = CKK_AES;
    static FALSE: CK_BBOOL = CK_FALSE;
    static TRUE: CK_BBOOL = CK_TRUE;
    let attr = |type_, value: *const c_void, len: usize| CK_ATTRIBUTE {
        type_,
        pValue: value.cast_mut(),
        ulValueLen: ulong(len),
    };
    [
        attr(CKA_CLASS, (&raw const CLASS).cast(), size_of_val(&CLASS)),
        attr(
            CKA_KEY_TYPE,
            (&raw const KEY_TYPE).cast(),
            size_of_val(&KEY_TYPE),
        ),
        attr(CKA_TOKEN, (&raw const FALSE).cast(), 1),
        attr(CKA_ENCRYPT, (&raw const TRUE).cast(), 1),
    ]
}

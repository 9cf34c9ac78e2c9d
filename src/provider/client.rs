//! The connection from one sqlhsm token to its remote PKCS#11 token: the module loaded once per
//! process and path, the remote slot found by label or serial, the remote user logged in with a
//! PIN read from its configured source, and a pool of remote sessions that operations borrow one
//! call at a time.
//!
//! Faults are kept to the token they belong to. A module that will not load, a token that is not
//! there, a refused PIN or a remote call failing with a device-level error is logged with its
//! cause and answered with `CKR_DEVICE_ERROR` (via [`Error::Provider`]); the connection is
//! dropped and the next call tries again from scratch, so a remote that comes back needs no
//! restart. A refused PIN is not retried until its source changes: HSMs lock a PIN after a few
//! failures, and sqlhsm must not be the one that locks it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use cryptoki_sys::{
    CKF_DECRYPT, CKF_DERIVE, CKF_DIGEST, CKF_ENCRYPT, CKF_GENERATE, CKF_GENERATE_KEY_PAIR,
    CKF_SIGN, CKF_SIGN_RECOVER, CKF_UNWRAP, CKF_VERIFY, CKF_VERIFY_RECOVER, CKF_WRAP, CK_FLAGS,
    CK_MECHANISM_INFO, CK_MECHANISM_TYPE, CK_OBJECT_CLASS, CK_ULONG,
};

use super::config::Pkcs11Provider;
use crate::crypto::digest::{digest, HashAlg};
use crate::error::{Error, Result, Rv};

/// The remote modules this process has loaded, one per path, shared by every token naming it
/// (a PKCS#11 module may be initialized only once per process).
#[derive(Default)]
pub struct LoadedModules {
    loaded: Mutex<HashMap<PathBuf, Loaded>>,
    /// Passed on from sqlhsm's own `C_Initialize`: the application lets no library start
    /// threads, the remote module included.
    no_os_threads: std::sync::atomic::AtomicBool,
}

struct Loaded {
    pkcs11: Pkcs11,
    /// Whether sqlhsm called `C_Initialize` (and so owes the `C_Finalize`); false when the
    /// application had initialized the module itself.
    ours: bool,
}

impl LoadedModules {
    fn get(&self, path: &Path) -> Result<Pkcs11> {
        let mut loaded = self.loaded.lock()?;
        if let Some(module) = loaded.get(path) {
            return Ok(module.pkcs11.clone());
        }
        let pkcs11 = Pkcs11::new(path).map_err(|e| {
            Error::Provider(format!(
                "cannot load the PKCS#11 module {}: {e}",
                path.display()
            ))
        })?;
        let ours = match pkcs11.initialize(CInitializeArgs::new(self.init_flags())) {
            Ok(()) => true,
            Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => false,
            Err(e) => Err(Error::Provider(format!(
                "C_Initialize of {} failed: {e}",
                path.display()
            )))?,
        };
        tracing::info!(module = %path.display(), "remote PKCS#11 module loaded");
        loaded.insert(
            path.to_path_buf(),
            Loaded {
                pkcs11: pkcs11.clone(),
                ours,
            },
        );
        Ok(pkcs11)
    }

    /// The flags of a remote module's `C_Initialize`: OS locking, and no threads when the
    /// application forbade them to sqlhsm.
    fn init_flags(&self) -> CInitializeFlags {
        let mut flags = CInitializeFlags::OS_LOCKING_OK;
        if self
            .no_os_threads
            .load(std::sync::atomic::Ordering::Acquire)
        {
            flags |= CInitializeFlags::LIBRARY_CANT_CREATE_OS_THREADS;
        }
        flags
    }

    /// Remote modules loaded from now on are initialised with `CKF_LIBRARY_CANT_CREATE_OS_THREADS`.
    pub fn forbid_os_threads(&self) {
        self.no_os_threads
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// `C_Finalize` of every module sqlhsm initialized (at sqlhsm's own `C_Finalize`).
    pub fn shutdown(&self) {
        let Ok(mut loaded) = self.loaded.lock() else {
            return;
        };
        for (path, module) in loaded.drain() {
            if module.ours {
                if let Err(e) = module.pkcs11.finalize() {
                    tracing::warn!(module = %path.display(), error = %e, "remote C_Finalize failed");
                }
            }
        }
    }
}

/// A live connection: the module, the remote slot, idle logged-in sessions, and the remote
/// handles of objects already looked up.
pub struct Link {
    pkcs11: Pkcs11,
    slot: Slot,
    idle: Mutex<Vec<Session>>,
    handles: RwLock<HashMap<(CK_OBJECT_CLASS, Vec<u8>), ObjectHandle>>,
    /// The remote token's mechanisms, read once per connection.
    mechanisms: std::sync::OnceLock<Arc<RemoteMechanisms>>,
}

/// A remote token's mechanisms and their `CK_MECHANISM_INFO` (flags as the operations they
/// allow; the `cryptoki` crate leaves out numbers it does not know, which could not be
/// forwarded anyway).
pub type RemoteMechanisms = Vec<(CK_MECHANISM_TYPE, CK_MECHANISM_INFO)>;

/// The `CKF_*` operation flags of a remote mechanism's info.
fn operation_flags(info: &cryptoki::mechanism::MechanismInfo) -> CK_FLAGS {
    [
        (info.encrypt(), CKF_ENCRYPT),
        (info.decrypt(), CKF_DECRYPT),
        (info.digest(), CKF_DIGEST),
        (info.sign(), CKF_SIGN),
        (info.sign_recover(), CKF_SIGN_RECOVER),
        (info.verify(), CKF_VERIFY),
        (info.verify_recover(), CKF_VERIFY_RECOVER),
        (info.generate(), CKF_GENERATE),
        (info.generate_key_pair(), CKF_GENERATE_KEY_PAIR),
        (info.wrap(), CKF_WRAP),
        (info.unwrap(), CKF_UNWRAP),
        (info.derive(), CKF_DERIVE),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .fold(0, |flags, (_, flag)| flags | flag)
}

/// Pauses before looking a missing remote object up again.
const STALE_RETRIES: [std::time::Duration; 3] = [
    std::time::Duration::from_millis(0),
    std::time::Duration::from_millis(20),
    std::time::Duration::from_millis(100),
];

/// Idle sessions kept per remote token; more are opened under load and closed when returned.
const MAX_IDLE_SESSIONS: usize = 16;

/// One sqlhsm token's remote PKCS#11 token.
pub struct Remote {
    /// The sqlhsm token's label, which log lines name it by.
    label: String,
    pub spec: Pkcs11Provider,
    modules: Arc<LoadedModules>,
    link: RwLock<Option<Arc<Link>>>,
    /// SHA-256 of the last PIN the remote refused.
    refused_pin: Mutex<Option<Vec<u8>>>,
}

/// How a failed remote call is answered.
enum Verdict {
    /// The caller's input was wrong (bad signature, bad ciphertext, …): the same code, and the
    /// session goes back to the pool.
    Caller(Rv),
    /// The cached remote handle is stale (the object was re-created or the remote restarted).
    StaleHandle,
    /// Anything else is a fault of the remote.
    Fault,
}

fn verdict(error: &CkError) -> Verdict {
    let CkError::Pkcs11(rv, _) = error else {
        return Verdict::Fault;
    };
    Verdict::Caller(match rv {
        RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid => return Verdict::StaleHandle,
        RvError::DataInvalid => Rv::DATA_INVALID,
        RvError::DataLenRange => Rv::DATA_LEN_RANGE,
        RvError::EncryptedDataInvalid => Rv::ENCRYPTED_DATA_INVALID,
        RvError::EncryptedDataLenRange => Rv::ENCRYPTED_DATA_LEN_RANGE,
        RvError::SignatureInvalid => Rv::SIGNATURE_INVALID,
        RvError::SignatureLenRange => Rv::SIGNATURE_LEN_RANGE,
        RvError::MechanismInvalid => Rv::MECHANISM_INVALID,
        // A remote that refuses a mechanism's parameters (SoftHSM answers CKR_ARGUMENTS_BAD to
        // OAEP with SHA-256) refuses the request, it is not broken.
        RvError::MechanismParamInvalid | RvError::ArgumentsBad => Rv::MECHANISM_PARAM_INVALID,
        RvError::KeyTypeInconsistent => Rv::KEY_TYPE_INCONSISTENT,
        RvError::KeySizeRange => Rv::KEY_SIZE_RANGE,
        RvError::KeyFunctionNotPermitted => Rv::KEY_FUNCTION_NOT_PERMITTED,
        RvError::KeyUnextractable => Rv::KEY_UNEXTRACTABLE,
        RvError::KeyNotWrappable => Rv::KEY_NOT_WRAPPABLE,
        RvError::WrappedKeyInvalid => Rv::WRAPPED_KEY_INVALID,
        RvError::WrappedKeyLenRange => Rv::WRAPPED_KEY_LEN_RANGE,
        RvError::TemplateInconsistent => Rv::TEMPLATE_INCONSISTENT,
        RvError::TemplateIncomplete => Rv::TEMPLATE_INCOMPLETE,
        RvError::AttributeValueInvalid => Rv::ATTRIBUTE_VALUE_INVALID,
        RvError::CurveNotSupported => Rv::CURVE_NOT_SUPPORTED,
        RvError::DomainParamsInvalid => Rv::DOMAIN_PARAMS_INVALID,
        // The remote could not do this one call (SoftHSM answers CKR_GENERAL_ERROR to a
        // ciphertext that does not decrypt): the call failed, the connection is fine.
        RvError::GeneralError | RvError::FunctionFailed => Rv::FUNCTION_FAILED,
        _ => return Verdict::Fault,
    })
}

impl Remote {
    pub fn new(label: &str, spec: Pkcs11Provider, modules: Arc<LoadedModules>) -> Remote {
        Remote {
            label: label.to_string(),
            spec,
            modules,
            link: RwLock::new(None),
            refused_pin: Mutex::new(None),
        }
    }

    fn describe_token(&self) -> String {
        match (&self.spec.token_label, &self.spec.token_serial) {
            (Some(label), Some(serial)) => format!("label {label:?}, serial {serial:?}"),
            (Some(label), None) => format!("label {label:?}"),
            (None, Some(serial)) => format!("serial {serial:?}"),
            (None, None) => "(no token named)".into(),
        }
    }

    fn failure(&self, what: &str, cause: impl std::fmt::Display) -> Error {
        let message = format!(
            "{what} failed on the remote token ({}) of module {}: {cause}",
            self.describe_token(),
            self.spec.module.display()
        );
        tracing::error!(token = %self.label, "{message}");
        Error::Provider(message)
    }

    /// The connection, made (module, slot, login) if there is none.
    fn link(&self) -> Result<Arc<Link>> {
        if let Some(link) = self.link.read()?.as_ref() {
            return Ok(Arc::clone(link));
        }
        let mut slot = self.link.write()?;
        if let Some(link) = slot.as_ref() {
            return Ok(Arc::clone(link));
        }
        let link = Arc::new(self.connect()?);
        *slot = Some(Arc::clone(&link));
        Ok(link)
    }

    fn connect(&self) -> Result<Link> {
        // The PIN source first: a missing variable or file is this host's configuration, and
        // is reported as such without touching the remote.
        let pin = self.spec.pin.read().inspect_err(|e| {
            tracing::error!(token = %self.label, error = %e, "remote PIN unavailable");
        })?;
        let pkcs11 = self.modules.get(&self.spec.module).inspect_err(|e| {
            tracing::error!(token = %self.label, error = %e, "remote module unavailable");
        })?;
        let slot = self.find_slot(&pkcs11)?;
        let session = pkcs11
            .open_rw_session(slot)
            .map_err(|e| self.failure("C_OpenSession", e))?;
        let fingerprint = digest(HashAlg::Sha256, pin.as_bytes())?;
        if self.refused_pin.lock()?.as_deref() == Some(fingerprint.as_slice()) {
            Err(Error::Provider(format!(
                "the remote token refused the PIN from {}; it is not tried again until it changes",
                self.spec.pin.describe()
            )))?
        }
        match session.login(UserType::User, Some(&AuthPin::from(pin.as_str()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e @ CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLocked, _)) => {
                *self.refused_pin.lock()? = Some(fingerprint);
                Err(self.failure("C_Login", e))?
            }
            Err(e) => Err(self.failure("C_Login", e))?,
        }
        *self.refused_pin.lock()? = None;
        tracing::info!(token = %self.label, remote = %self.describe_token(), "connected to the remote token");
        Ok(Link {
            pkcs11,
            slot,
            idle: Mutex::new(vec![session]),
            handles: RwLock::new(HashMap::new()),
            mechanisms: std::sync::OnceLock::new(),
        })
    }

    /// The slot holding the configured token. A slot whose token cannot be read is passed
    /// over (one faulty slot of a many-slot HSM must not hide the others); if the token is
    /// not found, the first such fault is part of the message.
    fn find_slot(&self, pkcs11: &Pkcs11) -> Result<Slot> {
        let slots = pkcs11
            .get_slots_with_token()
            .map_err(|e| self.failure("C_GetSlotList", e))?;
        let mut unreadable = None;
        for slot in slots {
            let info = match pkcs11.get_token_info(slot) {
                Ok(info) => info,
                Err(e) => {
                    unreadable.get_or_insert_with(|| {
                        format!("; C_GetTokenInfo of slot {slot} failed: {e}")
                    });
                    continue;
                }
            };
            if !info.token_initialized() {
                continue;
            }
            let label_ok = self
                .spec
                .token_label
                .as_ref()
                .is_none_or(|l| info.label().trim_end() == l);
            let serial_ok = self
                .spec
                .token_serial
                .as_ref()
                .is_none_or(|s| info.serial_number().trim_end() == s);
            if label_ok && serial_ok {
                return Ok(slot);
            }
        }
        Err(self.failure(
            "finding the token",
            format!(
                "no such token in the module{}",
                unreadable.unwrap_or_default()
            ),
        ))
    }

    /// Drops the connection after a fault, so the next call reconnects.
    fn reset(&self, link: &Arc<Link>) {
        if let Ok(mut slot) = self.link.write() {
            if slot.as_ref().is_some_and(|l| Arc::ptr_eq(l, link)) {
                *slot = None;
            }
        }
    }

    /// The remote token's mechanisms (`C_GetMechanismList`, `C_GetMechanismInfo` of its slot),
    /// read on the first call of a connection.
    pub fn mechanisms(&self) -> Result<Arc<RemoteMechanisms>> {
        let link = self.link()?;
        if let Some(known) = link.mechanisms.get() {
            return Ok(Arc::clone(known));
        }
        let read = || -> cryptoki::error::Result<RemoteMechanisms> {
            let mut out = Vec::new();
            for kind in link.pkcs11.get_mechanism_list(link.slot)? {
                let info = link.pkcs11.get_mechanism_info(link.slot, kind)?;
                let size = |n: usize| CK_ULONG::try_from(n).unwrap_or(CK_ULONG::MAX);
                out.push((
                    CK_MECHANISM_TYPE::from(kind),
                    CK_MECHANISM_INFO {
                        ulMinKeySize: size(info.min_key_size()),
                        ulMaxKeySize: size(info.max_key_size()),
                        flags: operation_flags(&info),
                    },
                ));
            }
            Ok(out)
        };
        let list = Arc::new(read().map_err(|e| {
            self.reset(&link);
            self.failure("C_GetMechanismList", e)
        })?);
        Ok(Arc::clone(link.mechanisms.get_or_init(|| list)))
    }

    /// Checks that the remote token can be reached and logged in to now.
    pub fn check(&self) -> Result<()> {
        self.run("connecting", |_, _| Ok(()))
    }

    /// Runs one remote call on a pooled session. A stale object handle is looked up again once.
    pub fn run<T>(
        &self,
        what: &str,
        call: impl Fn(&Session, &Lookup<'_>) -> cryptoki::error::Result<T>,
    ) -> Result<T> {
        // No error-queue care is needed: the remote module uses the host's libcrypto (if any),
        // never sqlhsm's private copy, so neither can see the other's errors.
        let mut pauses = STALE_RETRIES.iter();
        loop {
            let link = self.link()?;
            let pooled = link.idle.lock()?.pop();
            let session = match pooled {
                Some(session) => session,
                None => match link.pkcs11.open_rw_session(link.slot) {
                    Ok(session) => session,
                    Err(e) => {
                        self.reset(&link);
                        Err(self.failure("C_OpenSession", e))?
                    }
                },
            };
            let lookup = Lookup {
                link: &link,
                session: &session,
            };
            match call(&session, &lookup) {
                Ok(value) => {
                    let mut idle = link.idle.lock()?;
                    if idle.len() < MAX_IDLE_SESSIONS {
                        idle.push(session);
                    }
                    return Ok(value);
                }
                Err(e) => match verdict(&e) {
                    Verdict::Caller(rv) => {
                        link.idle.lock()?.push(session);
                        tracing::debug!(token = %self.label, %what, error = %e, "remote refused the input");
                        Err(rv)?
                    }
                    Verdict::StaleHandle => {
                        link.idle.lock()?.push(session);
                        // The cached handle may be stale (a restarted remote), or a key just
                        // made may not be visible yet (HSM clusters replicate new keys with a
                        // delay; SoftHSM re-reads its store under concurrent writers): look it
                        // up again after a short pause.
                        let Some(pause) = pauses.next() else {
                            Err(self.failure(what, "the remote object is gone"))?
                        };
                        link.handles.write()?.clear();
                        std::thread::sleep(*pause);
                    }
                    Verdict::Fault => {
                        drop(session);
                        self.reset(&link);
                        Err(self.failure(what, e))?
                    }
                },
            }
        }
    }
}

/// Finds remote objects by class and `CKA_ID`, remembering their handles for the connection.
pub struct Lookup<'a> {
    link: &'a Link,
    session: &'a Session,
}

impl Lookup<'_> {
    pub fn object(&self, class: ObjectClass, id: &[u8]) -> cryptoki::error::Result<ObjectHandle> {
        let key = (CK_OBJECT_CLASS::from(class), id.to_vec());
        if let Some(handle) = self
            .link
            .handles
            .read()
            .ok()
            .and_then(|h| h.get(&key).copied())
        {
            return Ok(handle);
        }
        let found = self
            .session
            .find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])?;
        let handle = *found.first().ok_or(CkError::Pkcs11(
            RvError::KeyHandleInvalid,
            cryptoki::context::Function::FindObjects,
        ))?;
        if let Ok(mut handles) = self.link.handles.write() {
            handles.insert(key, handle);
        }
        Ok(handle)
    }

    /// Forgets a handle (after the object is destroyed).
    pub fn forget(&self, class: ObjectClass, id: &[u8]) {
        if let Ok(mut handles) = self.link.handles.write() {
            handles.remove(&(CK_OBJECT_CLASS::from(class), id.to_vec()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    fn rv_of(error: RvError) -> Option<Rv> {
        match verdict(&CkError::Pkcs11(error, Function::Sign)) {
            Verdict::Caller(rv) => Some(rv),
            _ => None,
        }
    }

    #[test]
    fn a_thread_ban_is_passed_on_to_remote_modules() {
        let modules = LoadedModules::default();
        let flags = modules.init_flags();
        assert!(flags.contains(CInitializeFlags::OS_LOCKING_OK));
        assert!(!flags.contains(CInitializeFlags::LIBRARY_CANT_CREATE_OS_THREADS));
        modules.forbid_os_threads();
        assert!(modules.init_flags().contains(
            CInitializeFlags::OS_LOCKING_OK | CInitializeFlags::LIBRARY_CANT_CREATE_OS_THREADS
        ));
    }

    #[test]
    fn the_callers_errors_pass_through_and_device_errors_are_faults() {
        assert_eq!(
            rv_of(RvError::SignatureInvalid),
            Some(Rv::SIGNATURE_INVALID)
        );
        assert_eq!(
            rv_of(RvError::EncryptedDataInvalid),
            Some(Rv::ENCRYPTED_DATA_INVALID)
        );
        assert_eq!(
            rv_of(RvError::ArgumentsBad),
            Some(Rv::MECHANISM_PARAM_INVALID)
        );
        assert_eq!(rv_of(RvError::GeneralError), Some(Rv::FUNCTION_FAILED));
        for fault in [
            RvError::DeviceError,
            RvError::DeviceRemoved,
            RvError::TokenNotPresent,
            RvError::SessionHandleInvalid,
            RvError::UserNotLoggedIn,
            RvError::CryptokiNotInitialized,
        ] {
            assert!(
                matches!(
                    verdict(&CkError::Pkcs11(fault, Function::Sign)),
                    Verdict::Fault
                ),
                "{fault:?}"
            );
        }
        assert!(matches!(
            verdict(&CkError::Pkcs11(RvError::KeyHandleInvalid, Function::Sign)),
            Verdict::StaleHandle
        ));
        assert!(matches!(verdict(&CkError::NotSupported), Verdict::Fault));
    }
}

//! Sessions (PKCS#11 3.0 §5.6) and the operations they hold. Each session is its own
//! `Arc<Mutex<Session>>`: the session table's lock is released before any work is done, so two
//! sessions on two threads never wait for each other.

use cryptoki_sys::*;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::mechanism::{
    CipherOperation, DigestOperation, KeyMaterial, RecoverOperation, SignFactory, SignOperation,
    VerifyFactory, VerifyOperation,
};
use crate::types::Mechanism;

/// Whether an operation's key wants the user's PIN once more for this one operation: a key
/// with `CKA_ALWAYS_AUTHENTICATE` true (PKCS#11 3.0 §4.9) is used only after a `C_Login` with
/// `CKU_CONTEXT_SPECIFIC` made after its `*Init`, and that login is spent when the operation
/// ends (the state lives in the operation, so it goes with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextLogin {
    NotRequired,
    Pending,
    Given,
}

/// The key an operation was started with and what it does with it, so its status can be
/// checked again before each single-part call (a key may be deactivated meanwhile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyGuard {
    pub key: CK_OBJECT_HANDLE,
    pub usage: CK_ATTRIBUTE_TYPE,
    pub context_login: ContextLogin,
    pub checked: Checked,
}

/// When the key of an operation last passed its status check, so that the check before a
/// single-part call can be skipped while nothing it depends on has changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The handle table's change count before the check (`HandleTable::changes`).
    pub changes: u64,
    /// The module's clock (`Module::clock_ms`) at which the key's expiration may change the
    /// verdict; `u64::MAX` for a key that never expires.
    pub until_ms: u64,
}

/// Operation states that remember their key.
pub trait Guarded {
    fn guard(&self) -> KeyGuard;
    fn guard_mut(&mut self) -> &mut KeyGuard;
}

/// A signing operation with its two-call bookkeeping.
pub struct SignState {
    pub guard: KeyGuard,
    pub op: Box<dyn SignOperation>,
    /// `C_SignUpdate` was called: single-part `C_Sign` is no longer allowed.
    pub multipart: bool,
    /// A result computed for a caller whose buffer was too small, handed out on the retry.
    pub pending: Option<Zeroizing<Vec<u8>>>,
}

/// A verification: `C_VerifyInit` … `C_Verify` / `C_VerifyFinal`, or `C_VerifySignatureInit` …
/// `C_VerifySignature` / `C_VerifySignatureFinal` (PKCS#11 3.2), which gave the signature first.
pub struct VerifyState {
    pub guard: KeyGuard,
    pub op: Box<dyn VerifyOperation>,
    pub multipart: bool,
    /// The signature given to `C_VerifySignatureInit`; `None` for `C_VerifyInit`. A signature is
    /// public: nothing to zeroize.
    pub given: Option<Vec<u8>>,
}

/// A verification with data recovery (`C_VerifyRecoverInit` … `C_VerifyRecover`).
pub struct RecoverState {
    pub guard: KeyGuard,
    pub op: Box<dyn RecoverOperation>,
    pub pending: Option<Zeroizing<Vec<u8>>>,
}

pub struct CipherState {
    pub guard: KeyGuard,
    pub op: Box<dyn CipherOperation>,
    pub multipart: bool,
    pub pending: Option<Zeroizing<Vec<u8>>>,
}

/// A message-based signing process (`C_MessageSignInit` … `C_MessageSignFinal`, PKCS#11
/// 3.0): what each message's fresh [`SignOperation`] is made from, and the message now being
/// signed, if any (begun with `C_SignMessageBegin`, or a `C_SignMessage` whose buffer was too
/// small).
pub struct MessageSignState {
    pub guard: KeyGuard,
    pub mechanism: Mechanism,
    pub material: KeyMaterial,
    pub factory: SignFactory,
    pub message: Option<SignState>,
}

/// A message-based verification process (`C_MessageVerifyInit` … `C_MessageVerifyFinal`).
pub struct MessageVerifyState {
    pub guard: KeyGuard,
    pub mechanism: Mechanism,
    pub material: KeyMaterial,
    pub factory: VerifyFactory,
    pub message: Option<VerifyState>,
}

/// A message-based encryption or decryption process (`C_MessageEncryptInit` …
/// `C_MessageEncryptFinal`, `C_MessageDecryptInit` … `C_MessageDecryptFinal`): what each
/// message's fresh [`CipherOperation`] is made from, the IV counter of the generators, and the
/// message now in several parts, if any.
pub struct MessageCryptState {
    pub guard: KeyGuard,
    pub mechanism: Mechanism,
    pub material: KeyMaterial,
    pub factory: crate::mechanism::CipherFactory,
    /// The next value of the `CKG_GENERATE_COUNTER` / `CKG_GENERATE` IV counter.
    pub counter: u64,
    pub message: Option<CryptMessage>,
}

/// One message in several parts (`C_EncryptMessageBegin` … the last `C_EncryptMessageNext`).
pub struct CryptMessage {
    pub op: Box<dyn CipherOperation>,
    pub tag_len: usize,
    /// Decrypting: the tag given at `C_DecryptMessageBegin`.
    pub tag: Vec<u8>,
}

macro_rules! guarded {
    ($($state:ty),*) => {
        $(impl Guarded for $state {
            fn guard(&self) -> KeyGuard {
                self.guard
            }
            fn guard_mut(&mut self) -> &mut KeyGuard {
                &mut self.guard
            }
        })*
    };
}
guarded!(SignState, VerifyState, CipherState, RecoverState);
guarded!(MessageSignState, MessageVerifyState, MessageCryptState);

pub struct DigestState {
    pub op: Box<dyn DigestOperation>,
    pub multipart: bool,
    pub pending: Option<Zeroizing<Vec<u8>>>,
    /// What `C_GetOperationState` saves: the mechanism and the data digested so far, while
    /// that is at most [`crate::core::op_state::SAVEABLE_DIGEST_BOUND`] bytes and no key was
    /// digested (`C_DigestKey`: a key's value never leaves in a state). `None` afterwards: the
    /// state is then unsaveable.
    pub replay: Option<Replay>,
}

/// A digest operation as it can be rebuilt: its mechanism run again over the same data.
pub struct Replay {
    pub mechanism: CK_MECHANISM_TYPE,
    pub data: Zeroizing<Vec<u8>>,
}

impl DigestState {
    /// Feeds `data` to the digest, and to the replay record while it stays within its bound.
    pub fn update(&mut self, data: &[u8]) -> crate::error::Result<()> {
        self.op.update(data)?;
        if let Some(replay) = &mut self.replay {
            if replay.data.len() + data.len() > crate::core::op_state::SAVEABLE_DIGEST_BOUND {
                self.replay = None;
            } else {
                replay.data.extend_from_slice(data);
            }
        }
        Ok(())
    }
}

pub struct FindState {
    pub handles: Vec<CK_OBJECT_HANDLE>,
    pub next: usize,
}

/// One open session.
pub struct Session {
    pub handle: CK_SESSION_HANDLE,
    pub slot: CK_SLOT_ID,
    pub token: Uuid,
    pub read_write: bool,
    pub find: Option<FindState>,
    pub sign: Option<SignState>,
    pub verify: Option<VerifyState>,
    pub encrypt: Option<CipherState>,
    pub decrypt: Option<CipherState>,
    pub digest: Option<DigestState>,
    /// `C_SignRecoverInit` … `C_SignRecover` (single-part; the sign state's bookkeeping).
    pub sign_recover: Option<SignState>,
    pub verify_recover: Option<RecoverState>,
    /// `C_MessageSignInit` … `C_MessageSignFinal`.
    pub message_sign: Option<MessageSignState>,
    pub message_verify: Option<MessageVerifyState>,
    /// `C_MessageEncryptInit` … `C_MessageEncryptFinal`.
    pub message_encrypt: Option<MessageCryptState>,
    pub message_decrypt: Option<MessageCryptState>,
}

impl Session {
    pub fn new(
        handle: CK_SESSION_HANDLE,
        slot: CK_SLOT_ID,
        token: Uuid,
        read_write: bool,
    ) -> Session {
        Session {
            handle,
            slot,
            token,
            read_write,
            find: None,
            sign: None,
            verify: None,
            encrypt: None,
            decrypt: None,
            digest: None,
            sign_recover: None,
            verify_recover: None,
            message_sign: None,
            message_verify: None,
            message_encrypt: None,
            message_decrypt: None,
        }
    }

    /// The keys of the operations now active (sign, verify, encrypt, decrypt, signing and
    /// verifying with recovery, and the message-based signing and verifying processes).
    fn keyed_operations(&mut self) -> impl Iterator<Item = &mut KeyGuard> {
        let sign = self.sign.as_mut().map(Guarded::guard_mut);
        let verify = self.verify.as_mut().map(Guarded::guard_mut);
        let encrypt = self.encrypt.as_mut().map(Guarded::guard_mut);
        let decrypt = self.decrypt.as_mut().map(Guarded::guard_mut);
        let sign_recover = self.sign_recover.as_mut().map(Guarded::guard_mut);
        let verify_recover = self.verify_recover.as_mut().map(Guarded::guard_mut);
        let message_sign = self.message_sign.as_mut().map(Guarded::guard_mut);
        let message_verify = self.message_verify.as_mut().map(Guarded::guard_mut);
        let message_encrypt = self.message_encrypt.as_mut().map(Guarded::guard_mut);
        let message_decrypt = self.message_decrypt.as_mut().map(Guarded::guard_mut);
        sign.into_iter()
            .chain(verify)
            .chain(encrypt)
            .chain(decrypt)
            .chain(sign_recover)
            .chain(verify_recover)
            .chain(message_sign)
            .chain(message_verify)
            .chain(message_encrypt)
            .chain(message_decrypt)
    }

    /// Whether a keyed operation is active, the condition of a context-specific login.
    pub fn has_keyed_operation(&mut self) -> bool {
        self.keyed_operations().next().is_some()
    }

    /// Records a context-specific login: every active operation waiting for one may now run
    /// (once). Returns false when no keyed operation is active any more.
    pub fn grant_context_login(&mut self) -> bool {
        let mut any = false;
        for guard in self.keyed_operations() {
            any = true;
            if guard.context_login == ContextLogin::Pending {
                guard.context_login = ContextLogin::Given;
            }
        }
        any
    }

    /// Ends the operations named by `C_SessionCancel` flags.
    pub fn cancel(&mut self, flags: CK_FLAGS) {
        if flags & CKF_FIND_OBJECTS != 0 {
            self.find = None;
        }
        if flags & CKF_SIGN != 0 {
            self.sign = None;
        }
        if flags & CKF_VERIFY != 0 {
            self.verify = None;
        }
        if flags & CKF_ENCRYPT != 0 {
            self.encrypt = None;
        }
        if flags & CKF_DECRYPT != 0 {
            self.decrypt = None;
        }
        if flags & CKF_DIGEST != 0 {
            self.digest = None;
        }
        if flags & CKF_SIGN_RECOVER != 0 {
            self.sign_recover = None;
        }
        if flags & CKF_VERIFY_RECOVER != 0 {
            self.verify_recover = None;
        }
        if flags & CKF_MESSAGE_SIGN != 0 {
            self.message_sign = None;
        }
        if flags & CKF_MESSAGE_VERIFY != 0 {
            self.message_verify = None;
        }
        if flags & CKF_MESSAGE_ENCRYPT != 0 {
            self.message_encrypt = None;
        }
        if flags & CKF_MESSAGE_DECRYPT != 0 {
            self.message_decrypt = None;
        }
    }
}

/// What the application is logged in as, on one token (login state is shared by all sessions
/// of the application with that token, PKCS#11 3.0 §5.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginKind {
    Public,
    User,
    So,
}

/// `CK_SESSION_INFO.state` for a session.
pub fn session_state(login: LoginKind, read_write: bool) -> CK_STATE {
    match (login, read_write) {
        (LoginKind::Public, false) => CKS_RO_PUBLIC_SESSION,
        (LoginKind::Public, true) => CKS_RW_PUBLIC_SESSION,
        (LoginKind::User, false) => CKS_RO_USER_FUNCTIONS,
        (LoginKind::User, true) => CKS_RW_USER_FUNCTIONS,
        (LoginKind::So, _) => CKS_RW_SO_FUNCTIONS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_spec_table() {
        assert_eq!(
            session_state(LoginKind::Public, false),
            CKS_RO_PUBLIC_SESSION
        );
        assert_eq!(session_state(LoginKind::User, true), CKS_RW_USER_FUNCTIONS);
        assert_eq!(session_state(LoginKind::So, true), CKS_RW_SO_FUNCTIONS);
    }
}

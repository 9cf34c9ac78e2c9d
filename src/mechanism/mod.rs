//! Mechanisms (PKCS#11 3.0 §2 of the Current Mechanisms spec): a registry keyed by
//! `CK_MECHANISM_TYPE`, each entry declaring its `CK_MECHANISM_INFO` and the operations it
//! provides. The core never matches on mechanism numbers; it looks the entry up and asks it for an
//! operation object, which then carries all per-operation state (multi-part included).

mod aes;
mod chacha;
mod derive;
mod des;
mod digest;
mod ecdh;
mod ecdsa;
mod eddsa;
mod hybrid;
mod kdf;
mod keywrap;
mod mac;
mod mlkem;
mod pq_keygen;
mod pq_sign;
pub mod registry;
mod rsa;
mod support;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests;

use std::sync::Arc;

use cryptoki_sys::{CK_FLAGS, CK_MECHANISM_INFO, CK_MECHANISM_TYPE, CK_ULONG};
use zeroize::Zeroizing;

use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::error::{Result, Rv};
use crate::types::{MechanismParam, ParamShape};

pub use registry::{all, lookup, param_shape};

/// Key material handed to a mechanism. Private and secret material has already been unwrapped
/// from storage by the core (and is cached there); mechanisms never see the database.
#[derive(Clone)]
pub enum KeyMaterial {
    Private(Arc<PrivateKey>),
    Public(Arc<PublicKey>),
    Secret(Arc<Zeroizing<Vec<u8>>>),
    /// A private or secret key held by another PKCS#11 module (key mode REMOTE): operations are
    /// forwarded to it rather than computed here.
    External(Arc<dyn ExternalKey>),
}

/// A key whose material is elsewhere. It makes the operations the registry would otherwise
/// make from local material; status, usage flags and allowed mechanisms are checked by the core
/// before it is asked. The operation it makes keeps the key (`self: Arc<Self>`).
pub trait ExternalKey: Send + Sync {
    fn sign(self: Arc<Self>, mechanism: &crate::types::Mechanism)
        -> Result<Box<dyn SignOperation>>;
    fn verify(
        self: Arc<Self>,
        mechanism: &crate::types::Mechanism,
    ) -> Result<Box<dyn VerifyOperation>>;
    fn cipher(
        self: Arc<Self>,
        mechanism: &crate::types::Mechanism,
        encrypt: bool,
    ) -> Result<Box<dyn CipherOperation>>;
    /// For the core's key-management calls (unwrap, derive) that need the concrete key.
    fn as_any(&self) -> &dyn std::any::Any;
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyMaterial::Private(_) => f.write_str("KeyMaterial::Private(<redacted>)"),
            KeyMaterial::Public(_) => f.write_str("KeyMaterial::Public"),
            KeyMaterial::Secret(_) => f.write_str("KeyMaterial::Secret(<redacted>)"),
            KeyMaterial::External(_) => f.write_str("KeyMaterial::External"),
        }
    }
}

/// A signing operation in progress (`C_SignInit` … `C_Sign` / `C_SignFinal`).
pub trait SignOperation: Send {
    /// Upper bound of the signature length, known before signing (for the NULL-buffer query).
    fn signature_len(&self) -> usize;
    /// Whether `C_SignUpdate` is allowed (false for raw `CKM_RSA_PKCS`, `CKM_ECDSA`, `CKM_EDDSA`).
    fn multipart(&self) -> bool;
    fn update(&mut self, data: &[u8]) -> Result<()>;
    fn finish(&mut self) -> Result<Vec<u8>>;
    /// Single-part `C_Sign`. The default feeds `update` then `finish`.
    fn sign(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        self.update(data)?;
        self.finish()
    }
}

/// A verification in progress (`C_VerifyInit` … `C_Verify` / `C_VerifyFinal`).
pub trait VerifyOperation: Send {
    /// The one signature length this operation can verify, when it is known before the data
    /// (`C_VerifySignatureInit` refuses any other at once with `CKR_SIGNATURE_LEN_RANGE`). `None`
    /// leaves the check to `finish` (a REMOTE key's module, say).
    fn signature_len(&self) -> Option<usize> {
        None
    }
    fn multipart(&self) -> bool;
    fn update(&mut self, data: &[u8]) -> Result<()>;
    /// `Err(CKR_SIGNATURE_INVALID)` or `Err(CKR_SIGNATURE_LEN_RANGE)` on failure.
    fn finish(&mut self, signature: &[u8]) -> Result<()>;
    fn verify(&mut self, data: &[u8], signature: &[u8]) -> Result<()> {
        self.update(data)?;
        self.finish(signature)
    }
}

/// A verification with data recovery in progress (`C_VerifyRecoverInit` … `C_VerifyRecover`,
/// PKCS#11 3.0 §5.13): single-part, the data comes out of the signature.
pub trait RecoverOperation: Send {
    /// Upper bound of the recovered data's length (for the NULL-buffer query).
    fn recovered_len(&self) -> usize;
    /// The data, or `Err(CKR_SIGNATURE_INVALID)` / `Err(CKR_SIGNATURE_LEN_RANGE)`.
    fn recover(&mut self, signature: &[u8]) -> Result<Vec<u8>>;
}

/// An encryption or decryption in progress. Output goes straight into the caller's buffer:
/// every call is handed an `out` slice at least as long as [`CipherOperation::output_len`]
/// says for it (`update(data, out)`: `output_len(data.len(), false)`; `finish(out)`:
/// `output_len(0, true)`; `run(data, out)`: `output_len(data.len(), true)`) and answers how many
/// bytes it wrote there. What an operation keeps inside (buffered input, a held-back block) is
/// zeroized; what it writes to `out` is the caller's.
pub trait CipherOperation: Send {
    /// Upper bound of the output of `update(input_len)` (or of single-part `run` when `last`).
    fn output_len(&self, input_len: usize, last: bool) -> usize;
    /// Whether the bound of the last call (`output_len(_, true)`) is the exact length it
    /// writes. Then a smaller buffer is too small without computing anything; otherwise (a
    /// padded or RSA decryption, whose length shows only once computed) the core computes into
    /// a zeroized scratch buffer and holds the result for the caller's retry.
    fn exact_len(&self) -> bool {
        false
    }
    fn multipart(&self) -> bool;
    fn update(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize>;
    fn finish(&mut self, out: &mut [u8]) -> Result<usize>;
    /// Single-part `C_Encrypt` / `C_Decrypt`.
    fn run(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize> {
        let written = self.update(data, out)?;
        let rest = out.get_mut(written..).ok_or(Rv::GENERAL_ERROR)?;
        Ok(written + self.finish(rest)?)
    }
    /// [`CipherOperation::run`] into a fresh buffer of the bound's size, zeroized because it
    /// may hold plaintext (key wrapping and unwrapping, tests).
    fn run_vec(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; self.output_len(data.len(), true)]);
        let len = self.run(data, &mut out)?;
        out.truncate(len);
        Ok(out)
    }
    /// [`CipherOperation::update`] into a fresh buffer (tests).
    fn update_vec(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; self.output_len(data.len(), false)]);
        let len = self.update(data, &mut out)?;
        out.truncate(len);
        Ok(out)
    }
    /// [`CipherOperation::finish`] into a fresh buffer (tests).
    fn finish_vec(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; self.output_len(0, true)]);
        let len = self.finish(&mut out)?;
        out.truncate(len);
        Ok(out)
    }
}

/// Hands a result computed whole (RSA, key wrap, a remote module's answer, an AEAD decryption
/// checked before release) to the caller's `out`; returns its length. `out` is at least the
/// operation's bound, so a shorter one is a broken promise, not the caller's error.
pub(crate) fn put(out: &mut [u8], bytes: &[u8]) -> Result<usize> {
    out.get_mut(..bytes.len())
        .ok_or(Rv::GENERAL_ERROR)?
        .copy_from_slice(bytes);
    Ok(bytes.len())
}

/// A digest in progress.
pub trait DigestOperation: Send {
    fn digest_len(&self) -> usize;
    fn update(&mut self, data: &[u8]) -> Result<()>;
    fn finish(&mut self) -> Result<Vec<u8>>;
}

pub type SignFactory = fn(&KeyMaterial, &MechanismParam) -> Result<Box<dyn SignOperation>>;
pub type VerifyFactory = fn(&KeyMaterial, &MechanismParam) -> Result<Box<dyn VerifyOperation>>;
pub type RecoverFactory = fn(&KeyMaterial, &MechanismParam) -> Result<Box<dyn RecoverOperation>>;
pub type CipherFactory = fn(&KeyMaterial, &MechanismParam) -> Result<Box<dyn CipherOperation>>;
pub type DigestFactory = fn(&MechanismParam) -> Result<Box<dyn DigestOperation>>;
/// `C_WrapKey`: encrypts `key_bytes` (a secret key's value, or a private key's PKCS#8) under
/// the wrapping key.
pub type WrapFn = fn(&KeyMaterial, &MechanismParam, &[u8]) -> Result<Vec<u8>>;
/// `C_UnwrapKey`: the inverse of [`WrapFn`]; a bad wrapping gives `CKR_WRAPPED_KEY_INVALID`
/// (or `CKR_WRAPPED_KEY_LEN_RANGE`), and no partial plaintext.
pub type UnwrapFn = fn(&KeyMaterial, &MechanismParam, &[u8]) -> Result<Zeroizing<Vec<u8>>>;
/// What `C_DeriveKey` hands a derivation: the base key, the parameter, and what the core
/// resolved for it.
pub struct DeriveInput<'a> {
    pub base: &'a KeyMaterial,
    /// The base key's `CKA_KEY_TYPE` (secret material alone cannot tell an AES key from a
    /// generic secret, and a PRF chosen in the parameter may want one or the other).
    pub base_type: cryptoki_sys::CK_KEY_TYPE,
    pub param: &'a MechanismParam,
    /// The length asked for (`None`: the mechanism's natural length, e.g. the ECDH shared
    /// secret's).
    pub len: Option<usize>,
    /// The secret values of the keys the parameter names by handle
    /// ([`MechanismParam::key_handles`]), in that order.
    pub keys: &'a [Zeroizing<Vec<u8>>],
    /// The lengths of the additional keys an SP 800-108 derivation makes, in order.
    pub additional: &'a [usize],
}

/// `C_DeriveKey`: the derived value, then one value per additional key (SP 800-108).
pub type DeriveFn = fn(&DeriveInput<'_>) -> Result<Vec<Zeroizing<Vec<u8>>>>;

/// A key-encapsulation mechanism (`C_EncapsulateKey` / `C_DecapsulateKey`, PKCS#11 3.2
/// §5.18): what it does with the public key, the private key, and a ciphertext. The core
/// makes the secret key object from the secret; the KEM only computes.
#[derive(Clone, Copy)]
pub struct Kem {
    /// The ciphertext length an encapsulation with this key makes, known without making one
    /// (the length query of the two-call convention).
    pub ciphertext_len: fn(&KeyMaterial, &MechanismParam) -> Result<usize>,
    /// A fresh shared secret and its ciphertext.
    pub encapsulate: fn(&KeyMaterial, &MechanismParam) -> Result<Encapsulation>,
    /// The shared secret `ciphertext` carries for the private key: a ciphertext of a length
    /// the key cannot take is `CKR_WRAPPED_KEY_LEN_RANGE`; one the KEM rejects otherwise
    /// follows the KEM (ML-KEM's implicit rejection gives a secret, not an error).
    pub decapsulate: DecapsulateFn,
}

/// [`Kem::decapsulate`]: the private key's material, the parameter, the ciphertext.
pub type DecapsulateFn = fn(&KeyMaterial, &MechanismParam, &[u8]) -> Result<Zeroizing<Vec<u8>>>;

pub use crate::crypto::kem::Encapsulation;

/// One registered mechanism.
pub struct MechanismEntry {
    pub kind: CK_MECHANISM_TYPE,
    /// Key sizes (bits for RSA/EC, bytes for AES as the spec says) and `CKF_*` flags. What a
    /// generation mechanism (`CKF_GENERATE`, `CKF_GENERATE_KEY_PAIR`) makes is said by the rows
    /// of the key-algorithm table that name it (`crate::key_algorithm::generated_by`).
    pub info: CK_MECHANISM_INFO,
    /// How the FFI reads the parameter (default: none).
    pub param: ParamShape,
    /// Whether a REMOTE key forwards it (default: never).
    pub forward: Forward,
    pub sign: Option<SignFactory>,
    pub verify: Option<VerifyFactory>,
    /// `C_SignRecoverInit`: a signature from which `verify_recover` gets the data back.
    pub sign_recover: Option<SignFactory>,
    pub verify_recover: Option<RecoverFactory>,
    pub encrypt: Option<CipherFactory>,
    pub decrypt: Option<CipherFactory>,
    pub digest: Option<DigestFactory>,
    pub wrap: Option<WrapFn>,
    pub unwrap: Option<UnwrapFn>,
    pub derive: Option<DeriveFn>,
    /// Key encapsulation and decapsulation; the registry gives such an entry the
    /// `CKF_ENCAPSULATE` and `CKF_DECAPSULATE` flags.
    pub kem: Option<Kem>,
    /// Whether `derive` may make a data object (`CKO_DATA`, its `CKA_VALUE` the derived bytes)
    /// instead of a secret key: `CKM_HKDF_DATA`.
    pub derives_data: bool,
    /// For secret-key mechanisms, the `CKK_*` a key must have (the material alone is bytes and
    /// cannot tell an AES key from an HMAC key); empty when the material's kind decides.
    pub key_types: &'static [cryptoki_sys::CK_KEY_TYPE],
    /// The family of the keys it takes or makes, where a `[policy]` floor applies to their size
    /// (`rsa_min_bits`); `None` otherwise.
    pub family: Option<crate::crypto::keys::Family>,
    /// Whether the configuration must allow it first (default: always offered).
    pub gate: Gate,
}

/// What must be allowed before a mechanism is offered; the core asks the configuration's
/// `[policy]` (a withheld mechanism is `CKR_MECHANISM_INVALID` and not listed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Always,
    /// `[policy] allow_single_des`.
    SingleDes,
}

/// Whether and how an operation with a key held by another PKCS#11 module (key mode REMOTE) is
/// forwarded to it. The REMOTE form itself (the `cryptoki` value the remote module is called
/// with) is written in `crate::provider::mechanisms`, one row per [`Forward::AsIs`] mechanism;
/// a test there checks that the two lists agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    /// Computed here only: a REMOTE key refuses the mechanism with `CKR_MECHANISM_INVALID`.
    Never,
    /// The remote module runs this mechanism, with this parameter.
    AsIs,
    /// Hash-and-sign: the hash runs here (multi-part, and whatever hash-and-sign combinations
    /// the remote offers), then the remote module signs with `then`, itself [`Forward::AsIs`]
    /// (over a DigestInfo when `then` is `CKM_RSA_PKCS`).
    HashFirst {
        hash: crate::crypto::digest::HashAlg,
        then: CK_MECHANISM_TYPE,
    },
}

// What the family files build their entries from. Here, beside `MechanismEntry`, rather than in
// `registry`, which reads the families: so no family imports the table it is collected into.
/// An entry with its `CK_MECHANISM_INFO`, no parameter, no operations and not forwarded;
/// families fill in the rest with struct update syntax.
pub(super) fn entry(
    kind: CK_MECHANISM_TYPE,
    min: CK_ULONG,
    max: CK_ULONG,
    flags: CK_FLAGS,
) -> MechanismEntry {
    MechanismEntry {
        kind,
        info: CK_MECHANISM_INFO {
            ulMinKeySize: min,
            ulMaxKeySize: max,
            flags,
        },
        param: ParamShape::None,
        forward: Forward::Never,
        sign: None,
        verify: None,
        sign_recover: None,
        verify_recover: None,
        encrypt: None,
        decrypt: None,
        digest: None,
        wrap: None,
        unwrap: None,
        derive: None,
        kem: None,
        derives_data: false,
        key_types: &[],
        family: None,
        gate: Gate::Always,
    }
}

/// Secret-key mechanisms that take only AES keys.
/// The flags of an AEAD mechanism: single-message and message-based encryption and decryption
/// (`C_MessageEncryptInit`, … in `crate::api::message_crypt`).
pub(super) const AEAD_FLAGS: CK_FLAGS = cryptoki_sys::CKF_ENCRYPT
    | cryptoki_sys::CKF_DECRYPT
    | cryptoki_sys::CKF_MESSAGE_ENCRYPT
    | cryptoki_sys::CKF_MESSAGE_DECRYPT;

pub(super) const AES_KEYS: &[cryptoki_sys::CK_KEY_TYPE] = &[cryptoki_sys::CKK_AES];

//! The safe PKCS#11 API, one module per chapter of PKCS#11 3.0 §5 (general, slot and token,
//! session, object, encryption, decryption, digest, signing, key management, random) and of the
//! chapters 3.2 added (key encapsulation, verifying a signature given first). The FFI
//! layer converts the caller's memory into the types of `crate::types` and calls these; nothing
//! here sees a raw pointer.

pub mod crypt;
pub mod digest;
pub mod dual;
pub mod general;
pub mod kem;
pub mod keys;
pub mod message_crypt;
pub mod message_sign;
pub mod object;
pub mod random;
pub mod session;
pub mod sign;
pub mod slot;
pub mod verify_signature;

pub use cryptoki_sys::{
    CK_FLAGS, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_SESSION_HANDLE, CK_SLOT_ID, CK_USER_TYPE,
};

//! Key encapsulation (PKCS#11 3.2 §5.18: `C_EncapsulateKey`, `C_DecapsulateKey`): a KEM public
//! key makes a shared secret and its ciphertext, the secret becoming a new secret-key object
//! made from the caller's template; the private key turns the ciphertext back into the same
//! secret. The FFI layer (`src/ffi/exports.rs`) marshals the caller's memory and calls these.

use cryptoki_sys::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};

use crate::core::module::module;
use crate::error::{Result, Rv};
use crate::types::{Attribute, Mechanism, OutBuf};

/// `C_EncapsulateKey`: the ciphertext goes to `ciphertext` under the two-call convention; on a
/// length query (or `CKR_BUFFER_TOO_SMALL`) no key is made and `None` is returned, otherwise the
/// new secret key's handle.
pub fn encapsulate_key(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    public_key: CK_OBJECT_HANDLE,
    template: &[Attribute],
    ciphertext: &mut OutBuf<'_>,
) -> Result<Option<CK_OBJECT_HANDLE>> {
    let _ = (
        module()?,
        session,
        mechanism,
        public_key,
        template,
        ciphertext,
    );
    Err(Rv::MECHANISM_INVALID)?
}

/// `C_DecapsulateKey`: the secret that `ciphertext` carries, as a new secret key made from
/// `template`.
pub fn decapsulate_key(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    private_key: CK_OBJECT_HANDLE,
    template: &[Attribute],
    ciphertext: &[u8],
) -> Result<CK_OBJECT_HANDLE> {
    let _ = (
        module()?,
        session,
        mechanism,
        private_key,
        template,
        ciphertext,
    );
    Err(Rv::MECHANISM_INVALID)?
}

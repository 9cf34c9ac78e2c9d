//! Encryption and decryption (PKCS#11 3.0 §5.8, §5.9).

use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::core::module;
use crate::error::Result;
use crate::types::{Mechanism, OutBuf};

pub fn encrypt_init(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    module()?.encrypt_init(session, mechanism, key)
}

pub fn encrypt(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    module()?.encrypt(session, data, out)
}

pub fn encrypt_update(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    module()?.encrypt_update(session, data, out)
}

pub fn encrypt_final(session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
    module()?.encrypt_final(session, out)
}

pub fn decrypt_init(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    module()?.decrypt_init(session, mechanism, key)
}

pub fn decrypt(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    module()?.decrypt(session, data, out)
}

pub fn decrypt_update(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    module()?.decrypt_update(session, data, out)
}

pub fn decrypt_final(session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
    module()?.decrypt_final(session, out)
}

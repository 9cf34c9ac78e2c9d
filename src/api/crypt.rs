//! Encryption and decryption (PKCS#11 3.0 §5.8, §5.9).

use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::error::Result;
use crate::types::{Mechanism, OutBuf};

pub fn encrypt_init(session: CK_SESSION_HANDLE, mechanism: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    let _ = (session, mechanism, key);
    todo!()
}

pub fn encrypt(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    let _ = (session, data, out);
    todo!()
}

pub fn encrypt_update(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    let _ = (session, data, out);
    todo!()
}

pub fn encrypt_final(session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
    let _ = (session, out);
    todo!()
}

pub fn decrypt_init(session: CK_SESSION_HANDLE, mechanism: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    let _ = (session, mechanism, key);
    todo!()
}

pub fn decrypt(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    let _ = (session, data, out);
    todo!()
}

pub fn decrypt_update(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    let _ = (session, data, out);
    todo!()
}

pub fn decrypt_final(session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
    let _ = (session, out);
    todo!()
}

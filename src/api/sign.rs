//! Signing and verifying (PKCS#11 3.0 §5.11, §5.13).

use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::error::Result;
use crate::types::{Mechanism, OutBuf};

pub fn sign_init(session: CK_SESSION_HANDLE, mechanism: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    let _ = (session, mechanism, key);
    todo!()
}

pub fn sign(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    let _ = (session, data, out);
    todo!()
}

pub fn sign_update(session: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
    let _ = (session, data);
    todo!()
}

pub fn sign_final(session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
    let _ = (session, out);
    todo!()
}

pub fn verify_init(session: CK_SESSION_HANDLE, mechanism: &Mechanism, key: CK_OBJECT_HANDLE) -> Result<()> {
    let _ = (session, mechanism, key);
    todo!()
}

pub fn verify(session: CK_SESSION_HANDLE, data: &[u8], signature: &[u8]) -> Result<()> {
    let _ = (session, data, signature);
    todo!()
}

pub fn verify_update(session: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
    let _ = (session, data);
    todo!()
}

pub fn verify_final(session: CK_SESSION_HANDLE, signature: &[u8]) -> Result<()> {
    let _ = (session, signature);
    todo!()
}

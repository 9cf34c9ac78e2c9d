//! Signing and verifying (PKCS#11 3.0 §5.11, §5.13).

use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::core::module;
use crate::error::Result;
use crate::types::{Mechanism, OutBuf};

pub fn sign_init(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    module()?.sign_init(session, mechanism, key)
}

pub fn sign(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    module()?.sign(session, data, out)
}

pub fn sign_update(session: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
    module()?.sign_update(session, data)
}

pub fn sign_final(session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
    module()?.sign_final(session, out)
}

pub fn verify_init(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    module()?.verify_init(session, mechanism, key)
}

pub fn verify(session: CK_SESSION_HANDLE, data: &[u8], signature: &[u8]) -> Result<()> {
    module()?.verify(session, data, signature)
}

pub fn verify_update(session: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
    module()?.verify_update(session, data)
}

pub fn verify_final(session: CK_SESSION_HANDLE, signature: &[u8]) -> Result<()> {
    module()?.verify_final(session, signature)
}

//! Message digesting (PKCS#11 3.0 §5.10).

use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::error::Result;
use crate::types::{Mechanism, OutBuf};

pub fn digest_init(session: CK_SESSION_HANDLE, mechanism: &Mechanism) -> Result<()> {
    let _ = (session, mechanism);
    todo!()
}

pub fn digest(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    let _ = (session, data, out);
    todo!()
}

pub fn digest_update(session: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
    let _ = (session, data);
    todo!()
}

pub fn digest_key(session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()> {
    let _ = (session, key);
    todo!()
}

pub fn digest_final(session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
    let _ = (session, out);
    todo!()
}

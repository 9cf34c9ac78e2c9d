//! Message digesting (PKCS#11 3.0 §5.10).

use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::core::module;
use crate::error::Result;
use crate::types::{Mechanism, OutBuf};

pub fn digest_init(session: CK_SESSION_HANDLE, mechanism: &Mechanism) -> Result<()> {
    module()?.digest_init(session, mechanism)
}

pub fn digest(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    module()?.digest(session, data, out)
}

pub fn digest_update(session: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
    module()?.digest_update(session, data)
}

pub fn digest_key(session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()> {
    module()?.digest_key(session, key)
}

pub fn digest_final(session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
    module()?.digest_final(session, out)
}

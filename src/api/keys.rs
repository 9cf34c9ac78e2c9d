//! Key management (PKCS#11 3.0 §5.14).

use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::core::module;
use crate::error::Result;
use crate::types::{Attribute, Mechanism, OutBuf};

pub fn generate_key(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    template: &[Attribute],
) -> Result<CK_OBJECT_HANDLE> {
    module()?.generate_key(session, mechanism, template)
}

/// Returns (public key handle, private key handle).
pub fn generate_key_pair(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    public_template: &[Attribute],
    private_template: &[Attribute],
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
    module()?.generate_key_pair(session, mechanism, public_template, private_template)
}

pub fn wrap_key(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    wrapping_key: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    out: &mut OutBuf<'_>,
) -> Result<()> {
    module()?.wrap_key(session, mechanism, wrapping_key, key, out)
}

pub fn unwrap_key(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    unwrapping_key: CK_OBJECT_HANDLE,
    wrapped_key: &[u8],
    template: &[Attribute],
) -> Result<CK_OBJECT_HANDLE> {
    module()?.unwrap_key(session, mechanism, unwrapping_key, wrapped_key, template)
}

pub fn derive_key(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    base_key: CK_OBJECT_HANDLE,
    template: &[Attribute],
) -> Result<CK_OBJECT_HANDLE> {
    module()?.derive_key(session, mechanism, base_key, template)
}

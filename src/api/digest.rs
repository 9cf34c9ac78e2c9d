//! Message digesting (PKCS#11 3.0 §5.10).

use zeroize::Zeroizing;

use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::core::module::{module, Module};
use crate::core::operations::{deliver, step};
use crate::core::session::{DigestState, Replay};
use crate::error::{Result, Rv};
use crate::mechanism::KeyMaterial;
use crate::types::MechanismParam;
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

impl Module {
    pub fn digest_init(&self, session: CK_SESSION_HANDLE, mechanism: &Mechanism) -> Result<()> {
        self.ensure_idle(session, |s| &mut s.digest)?;
        let factory = self.entry(mechanism)?.digest.ok_or(Rv::MECHANISM_INVALID)?;
        let op = factory(&mechanism.param)?;
        let session = self.session(session)?;
        let mut s = session.lock()?;
        if s.digest.is_some() {
            Err(Rv::OPERATION_ACTIVE)?
        }
        // A digest with a parameter could not be rebuilt from its number alone.
        let replay = (mechanism.param == MechanismParam::None).then(|| Replay {
            mechanism: mechanism.kind,
            data: Zeroizing::new(Vec::new()),
        });
        s.digest = Some(DigestState {
            op,
            multipart: false,
            pending: None,
            replay,
        });
        Ok(())
    }

    pub fn digest(
        &self,
        session: CK_SESSION_HANDLE,
        data: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        if s.digest.as_ref().is_some_and(|st| st.multipart) {
            Err(Rv::OPERATION_ACTIVE)?
        }
        deliver(
            &mut s.digest,
            out,
            |st| st.op.digest_len(),
            |st| {
                st.op.update(data)?;
                st.op.finish().map(Zeroizing::new)
            },
        )
    }

    pub fn digest_update(&self, session: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        step(&mut s.digest, |st| {
            st.multipart = true;
            st.update(data)
        })
    }

    /// `C_DigestKey`: feeds a secret key's value into the digest without revealing it.
    pub fn digest_key(&self, session: CK_SESSION_HANDLE, key: CK_OBJECT_HANDLE) -> Result<()> {
        let access = self.access(session)?;
        let object = self.visible_object(&access, key, Rv::KEY_HANDLE_INVALID)?;
        let material = self.material(&access, &object);
        let session = self.session(session)?;
        let mut s = session.lock()?;
        step(&mut s.digest, |st| match material? {
            KeyMaterial::Secret(value) => {
                st.multipart = true;
                // A key's value must never leave in a saved state.
                st.replay = None;
                st.op.update(&value)
            }
            _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
        })
    }

    pub fn digest_final(&self, session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        deliver(
            &mut s.digest,
            out,
            |st| st.op.digest_len(),
            |st| st.op.finish().map(Zeroizing::new),
        )
    }
}

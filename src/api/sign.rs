//! Signing and verifying (PKCS#11 3.0 §5.11, §5.13), with data recovery too
//! (`C_SignRecover`, `C_VerifyRecover`: single-part, each its own operation in the session).
//! The verification steps here also serve `C_VerifySignature*` (PKCS#11 3.2, in
//! `api::verify_signature`), which differ only in when the signature arrives.

use std::sync::Arc;

use cryptoki_sys::{CKA_SIGN, CKA_SIGN_RECOVER, CKA_VERIFY, CKA_VERIFY_RECOVER};
use zeroize::Zeroizing;

use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::core::module::{module, Module};
use crate::core::operations::{deliver, step};
use crate::core::session::{RecoverState, SignState, VerifyState};
use crate::error::{Result, Rv};
use crate::mechanism::{KeyMaterial, SignFactory, SignOperation, VerifyFactory, VerifyOperation};
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

pub fn sign_recover_init(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    module()?.sign_recover_init(session, mechanism, key)
}

pub fn sign_recover(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    module()?.sign_recover(session, data, out)
}

pub fn verify_recover_init(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    module()?.verify_recover_init(session, mechanism, key)
}

pub fn verify_recover(
    session: CK_SESSION_HANDLE,
    signature: &[u8],
    out: &mut OutBuf<'_>,
) -> Result<()> {
    module()?.verify_recover(session, signature, out)
}

/// A signing operation with `material`: made here by the registry's `factory`, or by the
/// module that holds a REMOTE key.
pub(crate) fn sign_operation(
    factory: SignFactory,
    material: &KeyMaterial,
    mechanism: &Mechanism,
) -> Result<Box<dyn SignOperation>> {
    match material {
        KeyMaterial::External(key) => Arc::clone(key).sign(mechanism),
        local => factory(local, &mechanism.param),
    }
}

/// Which `*Init` started the session's verification. Calls of the other form find no operation
/// of theirs (`CKR_OPERATION_NOT_INITIALIZED`; like every failed call inside an operation, that
/// ends the one active): `C_Verify*` cannot finish what `C_VerifySignatureInit` started, nor the
/// reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Started {
    /// `C_VerifyInit`: the signature comes with `C_Verify` / `C_VerifyFinal`.
    VerifyInit,
    /// `C_VerifySignatureInit`: the signature came with the `*Init`.
    VerifySignatureInit,
}

impl Started {
    fn check(self, state: &VerifyState) -> Result<()> {
        let by = match state.given {
            None => Started::VerifyInit,
            Some(_) => Started::VerifySignatureInit,
        };
        if by != self {
            Err(Rv::OPERATION_NOT_INITIALIZED)?
        }
        Ok(())
    }
}

/// The verifying counterpart of [`sign_operation`].
pub(crate) fn verify_operation(
    factory: VerifyFactory,
    material: &KeyMaterial,
    mechanism: &Mechanism,
) -> Result<Box<dyn VerifyOperation>> {
    match material {
        KeyMaterial::External(key) => Arc::clone(key).verify(mechanism),
        local => factory(local, &mechanism.param),
    }
}

impl Module {
    pub fn sign_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let factory = self.entry(mechanism)?.sign.ok_or(Rv::MECHANISM_INVALID)?;
        self.begin(
            session,
            mechanism,
            key,
            CKA_SIGN,
            |s| &mut s.sign,
            |material, guard| {
                Ok(SignState {
                    guard,
                    op: sign_operation(factory, material, mechanism)?,
                    multipart: false,
                    pending: None,
                })
            },
        )
    }

    pub fn sign(
        &self,
        session: CK_SESSION_HANDLE,
        data: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        self.recheck(&session, |s| &mut s.sign)?;
        let mut s = session.lock()?;
        if s.sign.as_ref().is_some_and(|st| st.multipart) {
            Err(Rv::OPERATION_ACTIVE)?
        }
        deliver(
            &mut s.sign,
            out,
            |st| st.op.signature_len(),
            |st| st.op.sign(data).map(Zeroizing::new),
        )
    }

    pub fn sign_update(&self, session: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        step(&mut s.sign, |st| {
            if !st.op.multipart() {
                Err(Rv::FUNCTION_NOT_SUPPORTED)?
            }
            st.multipart = true;
            st.op.update(data)
        })
    }

    pub fn sign_final(&self, session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        deliver(
            &mut s.sign,
            out,
            |st| st.op.signature_len(),
            |st| st.op.finish().map(Zeroizing::new),
        )
    }

    pub fn verify_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.start_verification(session, mechanism, key, None)
    }

    /// The one way a verification starts: `C_VerifyInit` (`given` is `None`: the signature comes
    /// at the end) or `C_VerifySignatureInit` (the signature `given` first, PKCS#11 3.2 §5.15).
    /// Both are the session's one `CKF_VERIFY` operation. A given signature of a length the
    /// operation can never verify is `CKR_SIGNATURE_LEN_RANGE` at once, and no operation starts.
    pub(crate) fn start_verification(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
        given: Option<&[u8]>,
    ) -> Result<()> {
        let factory = self.entry(mechanism)?.verify.ok_or(Rv::MECHANISM_INVALID)?;
        self.begin(
            session,
            mechanism,
            key,
            CKA_VERIFY,
            |s| &mut s.verify,
            |material, guard| {
                let op = verify_operation(factory, material, mechanism)?;
                if let (Some(signature), Some(expected)) = (given, op.signature_len()) {
                    if signature.len() != expected {
                        Err(Rv::SIGNATURE_LEN_RANGE)?
                    }
                }
                Ok(VerifyState {
                    guard,
                    op,
                    multipart: false,
                    given: given.map(<[u8]>::to_vec),
                })
            },
        )
    }

    pub fn verify(&self, session: CK_SESSION_HANDLE, data: &[u8], signature: &[u8]) -> Result<()> {
        self.verify_whole(session, Started::VerifyInit, |st| {
            st.op.verify(data, signature)
        })
    }

    pub fn verify_update(&self, session: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        self.verify_part(session, Started::VerifyInit, data)
    }

    pub fn verify_final(&self, session: CK_SESSION_HANDLE, signature: &[u8]) -> Result<()> {
        self.verify_end(session, Started::VerifyInit, |st| st.op.finish(signature))
    }

    /// The single-part call of a verification started as `started` says (`C_Verify`,
    /// `C_VerifySignature`): not after an update (`CKR_OPERATION_ACTIVE`); it always ends the
    /// operation.
    pub(crate) fn verify_whole(
        &self,
        session: CK_SESSION_HANDLE,
        started: Started,
        run: impl FnOnce(&mut VerifyState) -> Result<()>,
    ) -> Result<()> {
        let session = self.session(session)?;
        self.recheck(&session, |s| &mut s.verify)?;
        let mut s = session.lock()?;
        let result = step(&mut s.verify, |st| {
            started.check(st)?;
            if st.multipart {
                Err(Rv::OPERATION_ACTIVE)?
            }
            run(st)
        });
        s.verify = None;
        result
    }

    /// An update of a verification started as `started` says (`C_VerifyUpdate`,
    /// `C_VerifySignatureUpdate`).
    pub(crate) fn verify_part(
        &self,
        session: CK_SESSION_HANDLE,
        started: Started,
        data: &[u8],
    ) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        step(&mut s.verify, |st| {
            started.check(st)?;
            if !st.op.multipart() {
                Err(Rv::FUNCTION_NOT_SUPPORTED)?
            }
            st.multipart = true;
            st.op.update(data)
        })
    }

    /// The end of a multi-part verification started as `started` says (`C_VerifyFinal`,
    /// `C_VerifySignatureFinal`); it always ends the operation.
    pub(crate) fn verify_end(
        &self,
        session: CK_SESSION_HANDLE,
        started: Started,
        run: impl FnOnce(&mut VerifyState) -> Result<()>,
    ) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        let result = step(&mut s.verify, |st| {
            started.check(st)?;
            run(st)
        });
        s.verify = None;
        result
    }

    pub fn sign_recover_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let factory = self
            .entry(mechanism)?
            .sign_recover
            .ok_or(Rv::MECHANISM_INVALID)?;
        self.begin(
            session,
            mechanism,
            key,
            CKA_SIGN_RECOVER,
            |s| &mut s.sign_recover,
            |material, guard| {
                let op = match material {
                    // The recoverable mechanisms (CKM_RSA_PKCS, CKM_RSA_X_509) sign the data
                    // itself, exactly as C_Sign does: a remote key signs it the same way.
                    KeyMaterial::External(key) => Arc::clone(key).sign(mechanism)?,
                    local => factory(local, &mechanism.param)?,
                };
                Ok(SignState {
                    guard,
                    op,
                    multipart: false,
                    pending: None,
                })
            },
        )
    }

    /// `C_SignRecover`: single-part only; the two-call rule as for `C_Sign`.
    pub fn sign_recover(
        &self,
        session: CK_SESSION_HANDLE,
        data: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        self.recheck(&session, |s| &mut s.sign_recover)?;
        let mut s = session.lock()?;
        deliver(
            &mut s.sign_recover,
            out,
            |st| st.op.signature_len(),
            |st| st.op.sign(data).map(Zeroizing::new),
        )
    }

    pub fn verify_recover_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let factory = self
            .entry(mechanism)?
            .verify_recover
            .ok_or(Rv::MECHANISM_INVALID)?;
        self.begin(
            session,
            mechanism,
            key,
            CKA_VERIFY_RECOVER,
            |s| &mut s.verify_recover,
            |material, guard| {
                Ok(RecoverState {
                    guard,
                    op: factory(material, &mechanism.param)?,
                    pending: None,
                })
            },
        )
    }

    /// `C_VerifyRecover`: a length query answers the most the signature can carry (k − 11 for
    /// `CKM_RSA_PKCS`); a buffer too small gets the exact length, the data kept for the retry.
    pub fn verify_recover(
        &self,
        session: CK_SESSION_HANDLE,
        signature: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        self.recheck(&session, |s| &mut s.verify_recover)?;
        let mut s = session.lock()?;
        deliver(
            &mut s.verify_recover,
            out,
            |st| st.op.recovered_len(),
            |st| st.op.recover(signature).map(Zeroizing::new),
        )
    }
}

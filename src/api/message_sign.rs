//! Message-based signing and verifying (PKCS#11 3.0 "Message-based signing and MACing
//! functions" and "Message-based functions for verifying signatures and MACs"): one process per
//! session from `C_MessageSignInit` to `C_MessageSignFinal` (`C_MessageVerifyInit` …
//! `C_MessageVerifyFinal`), and inside it any number of messages, each signed in one part
//! (`C_SignMessage`) or in several (`C_SignMessageBegin`, then `C_SignMessageNext` until the call
//! with a non-NULL `pulSignatureLen`, or, verifying, a non-NULL `pSignature`).
//!
//! Every sign/verify mechanism of the registry allows it: none defines a per-message parameter,
//! so each message must come with a NULL one (anything else is `CKR_MECHANISM_PARAM_INVALID`),
//! and the parameter given at `*Init` (`CK_RSA_PKCS_PSS_PARAMS`, …) applies to every message.
//! Each message is a fresh [`crate::mechanism::SignOperation`] (or verify operation) made as
//! `C_SignInit` makes it, so a message is signed exactly as `C_Sign` signs it. The mechanisms that
//! refuse `C_SignUpdate` (raw `CKM_RSA_PKCS`, `CKM_RSA_PKCS_PSS`, `CKM_ECDSA`, …) refuse
//! `C_SignMessageBegin` the same way (`CKR_FUNCTION_NOT_SUPPORTED`), and stay usable with
//! `C_SignMessage`.
//!
//! The key is checked at `*Init` as for `C_SignInit` (usage flag, allowed mechanisms, status),
//! and its status again at the start of each message. An error ends the message, not the
//! process; the two-call rule keeps the message going.

use cryptoki_sys::{CKA_SIGN, CKA_VERIFY};
use zeroize::Zeroizing;

use super::sign::{sign_operation, verify_operation};
use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::core::module::{module, Module};
use crate::core::operations::{active, deliver, step};
use crate::core::session::{MessageSignState, MessageVerifyState, SignState, VerifyState};
use crate::error::{Result, Rv};
use crate::types::{Mechanism, OutBuf};

pub fn message_sign_init(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    module()?.message_sign_init(session, mechanism, key)
}

pub fn sign_message(
    session: CK_SESSION_HANDLE,
    parameter: &[u8],
    data: &[u8],
    out: &mut OutBuf<'_>,
) -> Result<()> {
    module()?.sign_message(session, parameter, data, out)
}

pub fn sign_message_begin(session: CK_SESSION_HANDLE, parameter: &[u8]) -> Result<()> {
    module()?.sign_message_begin(session, parameter)
}

/// `out` is `None` while more parts follow (`pulSignatureLen` NULL), the caller's buffer for the
/// last part.
pub fn sign_message_next(
    session: CK_SESSION_HANDLE,
    parameter: &[u8],
    data: &[u8],
    out: Option<&mut OutBuf<'_>>,
) -> Result<()> {
    module()?.sign_message_next(session, parameter, data, out)
}

pub fn message_sign_final(session: CK_SESSION_HANDLE) -> Result<()> {
    module()?.message_sign_final(session)
}

pub fn message_verify_init(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    module()?.message_verify_init(session, mechanism, key)
}

pub fn verify_message(
    session: CK_SESSION_HANDLE,
    parameter: &[u8],
    data: &[u8],
    signature: &[u8],
) -> Result<()> {
    module()?.verify_message(session, parameter, data, signature)
}

pub fn verify_message_begin(session: CK_SESSION_HANDLE, parameter: &[u8]) -> Result<()> {
    module()?.verify_message_begin(session, parameter)
}

/// `signature` is `None` while more parts follow (`pSignature` NULL).
pub fn verify_message_next(
    session: CK_SESSION_HANDLE,
    parameter: &[u8],
    data: &[u8],
    signature: Option<&[u8]>,
) -> Result<()> {
    module()?.verify_message_next(session, parameter, data, signature)
}

pub fn message_verify_final(session: CK_SESSION_HANDLE) -> Result<()> {
    module()?.message_verify_final(session)
}

/// No mechanism has a per-message parameter: the caller's must be NULL.
fn no_parameter(parameter: &[u8]) -> Result<()> {
    match parameter.is_empty() {
        true => Ok(()),
        false => Err(Rv::MECHANISM_PARAM_INVALID.into()),
    }
}

impl MessageSignState {
    fn fresh_message(&self) -> Result<SignState> {
        Ok(SignState {
            guard: self.guard,
            op: sign_operation(self.factory, &self.material, &self.mechanism)?,
            multipart: false,
            pending: None,
        })
    }
}

impl MessageVerifyState {
    fn fresh_message(&self) -> Result<VerifyState> {
        Ok(VerifyState {
            guard: self.guard,
            op: verify_operation(self.factory, &self.material, &self.mechanism)?,
            multipart: false,
            given: None,
        })
    }
}

impl Module {
    pub fn message_sign_init(
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
            |s| &mut s.message_sign,
            |material, guard| {
                let process = MessageSignState {
                    guard,
                    mechanism: mechanism.clone(),
                    material: material.clone(),
                    factory,
                    message: None,
                };
                // A parameter or key the mechanism refuses is refused here, not at the first
                // message.
                process.fresh_message()?;
                Ok(process)
            },
        )
    }

    /// `C_SignMessage`: one message in one part, under the two-call rule; a length query or a
    /// buffer too small keeps the message (and its signature) for the next call.
    pub fn sign_message(
        &self,
        session: CK_SESSION_HANDLE,
        parameter: &[u8],
        data: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        let starts = match session.lock()?.message_sign.as_ref() {
            Some(process) => process.message.is_none(),
            None => Err(Rv::OPERATION_NOT_INITIALIZED)?,
        };
        if starts {
            self.recheck(&session, |s| &mut s.message_sign)?;
        }
        let mut s = session.lock()?;
        let process = active(&mut s.message_sign)?;
        if process.message.as_ref().is_some_and(|m| m.multipart) {
            Err(Rv::OPERATION_ACTIVE)?
        }
        no_parameter(parameter)?;
        if process.message.is_none() {
            process.message = Some(process.fresh_message()?);
        }
        let result = deliver(
            &mut process.message,
            out,
            |m| m.op.signature_len(),
            |m| m.op.sign(data).map(Zeroizing::new),
        );
        // A length query with nothing computed yet leaves no message in progress.
        if process
            .message
            .as_ref()
            .is_some_and(|m| m.pending.is_none())
        {
            process.message = None;
        }
        result
    }

    pub fn sign_message_begin(&self, session: CK_SESSION_HANDLE, parameter: &[u8]) -> Result<()> {
        let session = self.session(session)?;
        let idle = match session.lock()?.message_sign.as_ref() {
            Some(process) => process.message.is_none(),
            None => Err(Rv::OPERATION_NOT_INITIALIZED)?,
        };
        if !idle {
            Err(Rv::OPERATION_ACTIVE)?
        }
        self.recheck(&session, |s| &mut s.message_sign)?;
        let mut s = session.lock()?;
        let process = active(&mut s.message_sign)?;
        no_parameter(parameter)?;
        let mut message = process.fresh_message()?;
        if !message.op.multipart() {
            Err(Rv::FUNCTION_NOT_SUPPORTED)?
        }
        message.multipart = true;
        process.message = Some(message);
        Ok(())
    }

    pub fn sign_message_next(
        &self,
        session: CK_SESSION_HANDLE,
        parameter: &[u8],
        data: &[u8],
        out: Option<&mut OutBuf<'_>>,
    ) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        let process = active(&mut s.message_sign)?;
        if !process.message.as_ref().is_some_and(|m| m.multipart) {
            Err(Rv::OPERATION_NOT_INITIALIZED)?
        }
        if let Err(e) = no_parameter(parameter) {
            process.message = None;
            return Err(e);
        }
        match out {
            None => step(&mut process.message, |m| m.op.update(data)),
            // A length query feeds nothing: the part comes again with the buffer.
            Some(out) => deliver(
                &mut process.message,
                out,
                |m| m.op.signature_len(),
                |m| {
                    m.op.update(data)?;
                    m.op.finish().map(Zeroizing::new)
                },
            ),
        }
    }

    /// Ends the process, and with it a message left unfinished.
    pub fn message_sign_final(&self, session: CK_SESSION_HANDLE) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        match s.message_sign.take() {
            Some(_) => Ok(()),
            None => Err(Rv::OPERATION_NOT_INITIALIZED.into()),
        }
    }

    pub fn message_verify_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let factory = self.entry(mechanism)?.verify.ok_or(Rv::MECHANISM_INVALID)?;
        self.begin(
            session,
            mechanism,
            key,
            CKA_VERIFY,
            |s| &mut s.message_verify,
            |material, guard| {
                let process = MessageVerifyState {
                    guard,
                    mechanism: mechanism.clone(),
                    material: material.clone(),
                    factory,
                    message: None,
                };
                process.fresh_message()?;
                Ok(process)
            },
        )
    }

    pub fn verify_message(
        &self,
        session: CK_SESSION_HANDLE,
        parameter: &[u8],
        data: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        let session = self.session(session)?;
        let idle = match session.lock()?.message_verify.as_ref() {
            Some(process) => process.message.is_none(),
            None => Err(Rv::OPERATION_NOT_INITIALIZED)?,
        };
        if !idle {
            Err(Rv::OPERATION_ACTIVE)?
        }
        self.recheck(&session, |s| &mut s.message_verify)?;
        let mut s = session.lock()?;
        let process = active(&mut s.message_verify)?;
        no_parameter(parameter)?;
        process.fresh_message()?.op.verify(data, signature)
    }

    pub fn verify_message_begin(&self, session: CK_SESSION_HANDLE, parameter: &[u8]) -> Result<()> {
        let session = self.session(session)?;
        let idle = match session.lock()?.message_verify.as_ref() {
            Some(process) => process.message.is_none(),
            None => Err(Rv::OPERATION_NOT_INITIALIZED)?,
        };
        if !idle {
            Err(Rv::OPERATION_ACTIVE)?
        }
        self.recheck(&session, |s| &mut s.message_verify)?;
        let mut s = session.lock()?;
        let process = active(&mut s.message_verify)?;
        no_parameter(parameter)?;
        let mut message = process.fresh_message()?;
        if !message.op.multipart() {
            Err(Rv::FUNCTION_NOT_SUPPORTED)?
        }
        message.multipart = true;
        process.message = Some(message);
        Ok(())
    }

    pub fn verify_message_next(
        &self,
        session: CK_SESSION_HANDLE,
        parameter: &[u8],
        data: &[u8],
        signature: Option<&[u8]>,
    ) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        let process = active(&mut s.message_verify)?;
        if process.message.is_none() {
            Err(Rv::OPERATION_NOT_INITIALIZED)?
        }
        if let Err(e) = no_parameter(parameter) {
            process.message = None;
            return Err(e);
        }
        match signature {
            None => step(&mut process.message, |m| m.op.update(data)),
            Some(signature) => {
                let result = step(&mut process.message, |m| {
                    m.op.update(data)?;
                    m.op.finish(signature)
                });
                process.message = None;
                result
            }
        }
    }

    pub fn message_verify_final(&self, session: CK_SESSION_HANDLE) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        match s.message_verify.take() {
            Some(_) => Ok(()),
            None => Err(Rv::OPERATION_NOT_INITIALIZED.into()),
        }
    }
}

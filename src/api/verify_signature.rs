//! Verifying a signature given at initialization (PKCS#11 3.2 §5.15: `C_VerifySignatureInit`,
//! `C_VerifySignature`, `C_VerifySignatureUpdate`, `C_VerifySignatureFinal`).
//!
//! Every mechanism that verifies (`CKF_VERIFY` in its mechanism info) verifies this way too: it
//! is the same operation as `C_VerifyInit` … `C_VerifyFinal`, in the session's one verification
//! slot, made by the same factories (a REMOTE key's module verifies for it), with the signature
//! kept from the `*Init`. A signature whose length the mechanism can never accept is
//! `CKR_SIGNATURE_LEN_RANGE` at the `*Init` (no operation starts) when the length is known then,
//! otherwise at the end. `C_VerifySignature` and `C_VerifySignatureFinal` always end the
//! operation, answering `CKR_OK` or `CKR_SIGNATURE_INVALID`; a failed update ends it too.

use super::sign::Started;
use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::core::module::module;
use crate::core::session::VerifyState;
use crate::error::Result;
use crate::types::Mechanism;

pub fn verify_signature_init(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    key: CK_OBJECT_HANDLE,
    signature: &[u8],
) -> Result<()> {
    module()?.start_verification(session, mechanism, key, Some(signature))
}

pub fn verify_signature(session: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
    module()?.verify_whole(session, Started::VerifySignatureInit, |st| {
        let signature = given(st);
        st.op.verify(data, &signature)
    })
}

pub fn verify_signature_update(session: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
    module()?.verify_part(session, Started::VerifySignatureInit, data)
}

pub fn verify_signature_final(session: CK_SESSION_HANDLE) -> Result<()> {
    module()?.verify_end(session, Started::VerifySignatureInit, |st| {
        let signature = given(st);
        st.op.finish(&signature)
    })
}

/// The signature given to `C_VerifySignatureInit`, taken out of the state the call ends.
fn given(state: &mut VerifyState) -> Vec<u8> {
    state.given.take().unwrap_or_default()
}

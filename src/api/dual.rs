//! Dual-function cryptographic operations (PKCS#11 3.0 §5.14): one call feeding the same part
//! to two multi-part operations already started in the session (`C_DigestInit` and
//! `C_EncryptInit`, …). Each is the two single updates in the spec's order: the digest or
//! signature sees the plaintext, which for decryption is what the decryption released (a
//! padded mode holds its last block back until `C_DecryptFinal`).
//!
//! Both operations must be active (`CKR_OPERATION_NOT_INITIALIZED` otherwise) and both
//! multi-part. A length query (NULL output) and a buffer too small for the output's bound
//! change neither operation. Any other failure ends both (the FFI's guard does).

use zeroize::Zeroize;

use super::CK_SESSION_HANDLE;
use crate::core::module::{module, Module};
use crate::core::operations::{active, cipher_update, step};
use crate::core::session::CipherState;
use crate::error::{Result, Rv};
use crate::types::OutBuf;

pub fn digest_encrypt_update(
    session: CK_SESSION_HANDLE,
    part: &[u8],
    out: &mut OutBuf<'_>,
) -> Result<()> {
    module()?.digest_encrypt_update(session, part, out)
}

pub fn decrypt_digest_update(
    session: CK_SESSION_HANDLE,
    part: &[u8],
    out: &mut OutBuf<'_>,
) -> Result<()> {
    module()?.decrypt_digest_update(session, part, out)
}

pub fn sign_encrypt_update(
    session: CK_SESSION_HANDLE,
    part: &[u8],
    out: &mut OutBuf<'_>,
) -> Result<()> {
    module()?.sign_encrypt_update(session, part, out)
}

pub fn decrypt_verify_update(
    session: CK_SESSION_HANDLE,
    part: &[u8],
    out: &mut OutBuf<'_>,
) -> Result<()> {
    module()?.decrypt_verify_update(session, part, out)
}

/// Checks that the cipher can go on part by part and reserves its output's bound for `part`:
/// `Ok(false)` when the caller only asked for the length, `CKR_BUFFER_TOO_SMALL` when the
/// buffer is smaller than the bound, both before either operation has seen the part.
fn reserve_cipher(
    slot: &mut Option<CipherState>,
    part: &[u8],
    out: &mut OutBuf<'_>,
) -> Result<bool> {
    let cipher = active(slot)?;
    if !cipher.op.multipart() {
        Err(Rv::FUNCTION_NOT_SUPPORTED)?
    }
    let bound = cipher.op.output_len(part.len(), false);
    out.reserve(bound)
}

/// One multi-part decryption step straight into the caller's buffer (which has room for its
/// bound), then `then` over the plaintext it released.
fn decrypt_part(
    slot: &mut Option<CipherState>,
    part: &[u8],
    out: &mut OutBuf<'_>,
    then: impl FnOnce(&[u8]) -> Result<()>,
) -> Result<()> {
    let bound = active(slot)?.op.output_len(part.len(), false);
    let Some(buffer) = out.space(bound)? else {
        return Ok(());
    };
    let written = step(slot, |s| {
        s.multipart = true;
        s.op.update(part, buffer)
    })?;
    if let Err(e) = then(&buffer[..written]) {
        // The call fails: the plaintext it wrote does not stay behind in the caller's buffer.
        buffer[..written].zeroize();
        return Err(e);
    }
    out.written(written);
    Ok(())
}

impl Module {
    pub fn digest_encrypt_update(
        &self,
        session: CK_SESSION_HANDLE,
        part: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        let s = &mut *s;
        active(&mut s.digest)?;
        if !reserve_cipher(&mut s.encrypt, part, out)? {
            return Ok(());
        }
        step(&mut s.digest, |d| {
            d.multipart = true;
            d.update(part)
        })?;
        cipher_update(&mut s.encrypt, part, out)
    }

    pub fn decrypt_digest_update(
        &self,
        session: CK_SESSION_HANDLE,
        part: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        let s = &mut *s;
        active(&mut s.digest)?;
        if !reserve_cipher(&mut s.decrypt, part, out)? {
            return Ok(());
        }
        let digest = &mut s.digest;
        decrypt_part(&mut s.decrypt, part, out, |plain| {
            step(digest, |d| {
                d.multipart = true;
                d.update(plain)
            })
        })
    }

    pub fn sign_encrypt_update(
        &self,
        session: CK_SESSION_HANDLE,
        part: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        let s = &mut *s;
        if !active(&mut s.sign)?.op.multipart() {
            Err(Rv::FUNCTION_NOT_SUPPORTED)?
        }
        if !reserve_cipher(&mut s.encrypt, part, out)? {
            return Ok(());
        }
        step(&mut s.sign, |st| {
            st.multipart = true;
            st.op.update(part)
        })?;
        cipher_update(&mut s.encrypt, part, out)
    }

    pub fn decrypt_verify_update(
        &self,
        session: CK_SESSION_HANDLE,
        part: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        let s = &mut *s;
        if !active(&mut s.verify)?.op.multipart() {
            Err(Rv::FUNCTION_NOT_SUPPORTED)?
        }
        if !reserve_cipher(&mut s.decrypt, part, out)? {
            return Ok(());
        }
        let verify = &mut s.verify;
        decrypt_part(&mut s.decrypt, part, out, |plain| {
            step(verify, |st| {
                st.multipart = true;
                st.op.update(plain)
            })
        })
    }
}

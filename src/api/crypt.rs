//! Encryption and decryption (PKCS#11 3.0 §5.8, §5.9).

use std::sync::Arc;

use cryptoki_sys::{CKA_DECRYPT, CKA_ENCRYPT, CK_ATTRIBUTE_TYPE};

use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::core::module::{module, Module};
use crate::core::operations::{cipher_final, cipher_single, cipher_update};
use crate::core::session::{CipherState, Session};
use crate::error::{Result, Rv};
use crate::mechanism::KeyMaterial;
use crate::types::{Mechanism, OutBuf};

pub fn encrypt_init(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    module()?.encrypt_init(session, mechanism, key)
}

pub fn encrypt(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    module()?.encrypt(session, data, out)
}

pub fn encrypt_update(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    module()?.encrypt_update(session, data, out)
}

pub fn encrypt_final(session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
    module()?.encrypt_final(session, out)
}

pub fn decrypt_init(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    key: CK_OBJECT_HANDLE,
) -> Result<()> {
    module()?.decrypt_init(session, mechanism, key)
}

pub fn decrypt(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    module()?.decrypt(session, data, out)
}

pub fn decrypt_update(session: CK_SESSION_HANDLE, data: &[u8], out: &mut OutBuf<'_>) -> Result<()> {
    module()?.decrypt_update(session, data, out)
}

pub fn decrypt_final(session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
    module()?.decrypt_final(session, out)
}

impl Module {
    pub fn encrypt_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let factory = self
            .entry(mechanism)?
            .encrypt
            .ok_or(Rv::MECHANISM_INVALID)?;
        self.cipher_init(session, mechanism, key, CKA_ENCRYPT, factory, |s| {
            &mut s.encrypt
        })
    }

    pub fn decrypt_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let factory = self
            .entry(mechanism)?
            .decrypt
            .ok_or(Rv::MECHANISM_INVALID)?;
        self.cipher_init(session, mechanism, key, CKA_DECRYPT, factory, |s| {
            &mut s.decrypt
        })
    }

    /// `C_EncryptInit` and `C_DecryptInit` differ only in usage flag, factory and slot.
    fn cipher_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
        usage: CK_ATTRIBUTE_TYPE,
        factory: crate::mechanism::CipherFactory,
        slot: fn(&mut Session) -> &mut Option<CipherState>,
    ) -> Result<()> {
        self.begin(session, mechanism, key, usage, slot, |material, guard| {
            let op = match material {
                KeyMaterial::External(key) => {
                    Arc::clone(key).cipher(mechanism, usage == CKA_ENCRYPT)?
                }
                local => factory(local, &mechanism.param)?,
            };
            Ok(CipherState {
                guard,
                op,
                multipart: false,
                pending: None,
            })
        })
    }

    pub fn encrypt(
        &self,
        session: CK_SESSION_HANDLE,
        data: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        self.recheck(&session, |s| &mut s.encrypt)?;
        let mut s = session.lock()?;
        cipher_single(&mut s.encrypt, data, out)
    }

    pub fn encrypt_update(
        &self,
        session: CK_SESSION_HANDLE,
        data: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        cipher_update(&mut s.encrypt, data, out)
    }

    pub fn encrypt_final(&self, session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        cipher_final(&mut s.encrypt, out)
    }

    pub fn decrypt(
        &self,
        session: CK_SESSION_HANDLE,
        data: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        self.recheck(&session, |s| &mut s.decrypt)?;
        let mut s = session.lock()?;
        cipher_single(&mut s.decrypt, data, out)
    }

    pub fn decrypt_update(
        &self,
        session: CK_SESSION_HANDLE,
        data: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        cipher_update(&mut s.decrypt, data, out)
    }

    pub fn decrypt_final(&self, session: CK_SESSION_HANDLE, out: &mut OutBuf<'_>) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        cipher_final(&mut s.decrypt, out)
    }
}

//! Message-based encryption and decryption (PKCS#11 3.0 "Message-based encryption functions"
//! and "Message-based decryption functions") for the AEAD mechanisms `CKM_AES_GCM`,
//! `CKM_AES_CCM` and `CKM_CHACHA20_POLY1305`: one process per session from
//! `C_MessageEncryptInit` to `C_MessageEncryptFinal` (decrypting alike), and inside it any number
//! of messages, each in one part (`C_EncryptMessage`) or in several (`C_EncryptMessageBegin`,
//! then `C_EncryptMessageNext` until the call with `CKF_END_OF_MESSAGE`).
//!
//! Each message comes with its own parameter (`CK_GCM_MESSAGE_PARAMS`, `CK_CCM_MESSAGE_PARAMS`,
//! `CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS`), decoded by the FFI into a [`MessageParam`]; the
//! message is then encrypted by the mechanism's own `C_EncryptInit` operation, made with the
//! equivalent single-message parameter, so a message encrypts exactly as `C_Encrypt` would (its
//! ciphertext without the tag, which goes to the parameter's tag buffer). Decryption likewise
//! feeds ciphertext ‖ tag to the `C_DecryptInit` operation, which releases nothing before the tag
//! is checked: multi-part decryption returns no plaintext until the last part.
//!
//! IV generation (encryption only): `CKG_GENERATE_COUNTER` and `CKG_GENERATE` put a per-process
//! counter in the IV's bits after its `ulIvFixedBits` fixed ones, and refuse once the counter
//! would wrap; `CKG_GENERATE_RANDOM` fills them from the DRBG. The IV used is written back.
//! An error ends the message, not the process; the two-call rule keeps the message going.

use cryptoki_sys::{
    CKA_DECRYPT, CKA_ENCRYPT, CKF_END_OF_MESSAGE, CKF_MESSAGE_DECRYPT, CKF_MESSAGE_ENCRYPT,
    CKG_GENERATE, CKG_GENERATE_COUNTER, CKG_GENERATE_RANDOM, CKG_NO_GENERATE, CK_FLAGS,
    CK_MECHANISM_TYPE, CK_ULONG,
};

use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::core::module::{module, Module};
use crate::core::operations::active;
use crate::core::session::{CryptMessage, MessageCryptState, Session};
use crate::crypto::random;
use crate::error::{Result, Rv};
use crate::types::{Mechanism, MechanismParam, MessageParam, OutBuf, ParamShape};

/// What the FFI writes back into the caller's per-message parameter.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// The IV used, when the token generated it.
    pub iv: Option<Vec<u8>>,
    /// The tag, at the end of an encrypted message.
    pub tag: Option<Vec<u8>>,
}

type Slot = fn(&mut Session) -> &mut Option<MessageCryptState>;

fn slot(encrypt: bool) -> Slot {
    match encrypt {
        true => |s| &mut s.message_encrypt,
        false => |s| &mut s.message_decrypt,
    }
}

pub fn message_crypt_init(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    key: CK_OBJECT_HANDLE,
    encrypt: bool,
) -> Result<()> {
    module()?.message_crypt_init(session, mechanism, key, encrypt)
}

/// The mechanism of the active process: the FFI decodes the per-message parameter by it.
pub fn message_mechanism(session: CK_SESSION_HANDLE, encrypt: bool) -> Result<CK_MECHANISM_TYPE> {
    let module = module()?;
    let session = module.session(session)?;
    let mut s = session.lock()?;
    Ok(active(slot(encrypt)(&mut s))?.mechanism.kind)
}

pub fn crypt_message(
    session: CK_SESSION_HANDLE,
    encrypt: bool,
    parameter: Option<MessageParam>,
    aad: &[u8],
    data: &[u8],
    out: &mut OutBuf<'_>,
) -> Result<Written> {
    module()?.crypt_message(session, encrypt, parameter, aad, data, out)
}

pub fn crypt_message_begin(
    session: CK_SESSION_HANDLE,
    encrypt: bool,
    parameter: Option<MessageParam>,
    aad: &[u8],
) -> Result<Written> {
    module()?.crypt_message_begin(session, encrypt, parameter, aad)
}

pub fn crypt_message_next(
    session: CK_SESSION_HANDLE,
    encrypt: bool,
    parameter: Option<MessageParam>,
    data: &[u8],
    out: &mut OutBuf<'_>,
    flags: CK_FLAGS,
) -> Result<Written> {
    module()?.crypt_message_next(session, encrypt, parameter, data, out, flags)
}

pub fn message_crypt_final(session: CK_SESSION_HANDLE, encrypt: bool) -> Result<()> {
    module()?.message_crypt_final(session, encrypt)
}

/// Puts `value` in the low `bits` bits of `iv` (big-endian), keeping the others.
fn set_low_bits(iv: &mut [u8], bits: usize, value: impl Fn(usize) -> bool) {
    for k in 0..bits {
        let byte = iv.len() - 1 - k / 8;
        let mask = 1u8 << (k % 8);
        match value(k) {
            true => iv[byte] |= mask,
            false => iv[byte] &= !mask,
        }
    }
}

impl MessageCryptState {
    /// The IV of the next message: the caller's, or generated as its parameter asks.
    fn message_iv(&mut self, param: &MessageParam, encrypt: bool) -> Result<(Vec<u8>, bool)> {
        if param.generator == CKG_NO_GENERATE {
            return Ok((param.iv.clone(), false));
        }
        if !encrypt {
            Err(Rv::MECHANISM_PARAM_INVALID)? // a decryption is given its IV
        }
        let total = param.iv.len() * 8;
        let fixed = usize::try_from(param.fixed_bits).map_err(|_| Rv::MECHANISM_PARAM_INVALID)?;
        if fixed >= total {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        let free = total - fixed;
        let mut iv = param.iv.clone();
        match param.generator {
            CKG_GENERATE_COUNTER | CKG_GENERATE => {
                let value = self.counter;
                // A counter of `free` bits has 2^free values; never reuse one.
                if free < 64 && value >> free != 0 {
                    Err(Rv::MECHANISM_PARAM_INVALID)?
                }
                self.counter = value.checked_add(1).ok_or(Rv::MECHANISM_PARAM_INVALID)?;
                set_low_bits(&mut iv, free, |k| k < 64 && (value >> k) & 1 == 1);
            }
            CKG_GENERATE_RANDOM => {
                let mut fresh = vec![0u8; iv.len()];
                random::fill(&mut fresh)?;
                set_low_bits(&mut iv, free, |k| {
                    fresh[fresh.len() - 1 - k / 8] & (1 << (k % 8)) != 0
                });
            }
            _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
        }
        Ok((iv, true))
    }

    /// The operation of one message, made as `C_EncryptInit` / `C_DecryptInit` would make it
    /// with the single-message parameter equivalent to `param`.
    fn fresh_message(
        &mut self,
        param: Option<MessageParam>,
        aad: &[u8],
        encrypt: bool,
    ) -> Result<(CryptMessage, Option<Vec<u8>>)> {
        let param = param.ok_or(Rv::MECHANISM_PARAM_INVALID)?;
        let (iv, generated) = self.message_iv(&param, encrypt)?;
        let tag_len = param.tag.len();
        let single = match crate::mechanism::param_shape(self.mechanism.kind) {
            ParamShape::Gcm => MechanismParam::Gcm {
                iv: iv.clone(),
                aad: aad.to_vec(),
                tag_bits: (tag_len * 8) as CK_ULONG,
            },
            ParamShape::Ccm => MechanismParam::Ccm {
                data_len: param.data_len,
                nonce: iv.clone(),
                aad: aad.to_vec(),
                mac_len: tag_len as CK_ULONG,
            },
            ParamShape::ChachaPoly => MechanismParam::Aead {
                nonce: iv.clone(),
                aad: aad.to_vec(),
            },
            _ => Err(Rv::MECHANISM_INVALID)?,
        };
        let op = (self.factory)(&self.material, &single)?;
        let message = CryptMessage {
            op,
            tag_len,
            tag: param.tag,
        };
        Ok((message, generated.then_some(iv)))
    }
}

/// Splits an encryption's `ciphertext ‖ tag` output.
fn split_tag(mut out: Vec<u8>, tag_len: usize) -> Result<(Vec<u8>, Vec<u8>)> {
    if out.len() < tag_len {
        Err(Rv::GENERAL_ERROR)?
    }
    let tag = out.split_off(out.len() - tag_len);
    Ok((out, tag))
}

/// The end of an encrypted message whose first `streamed` bytes of ciphertext are already in
/// `out`: the rest of the ciphertext follows them there and the tag is returned, with the
/// ciphertext's whole length. (Ciphertext and tag are not secret: nothing here is zeroized.)
fn finish_sealed(
    op: &mut dyn crate::mechanism::CipherOperation,
    out: &mut [u8],
    streamed: usize,
    tag_len: usize,
) -> Result<(usize, Vec<u8>)> {
    let mut rest = vec![0u8; op.output_len(0, true)];
    let len = op.finish(&mut rest)?;
    rest.truncate(len);
    let (ciphertext, tag) = split_tag(rest, tag_len)?;
    let end = streamed + ciphertext.len();
    out.get_mut(streamed..end)
        .ok_or(Rv::GENERAL_ERROR)?
        .copy_from_slice(&ciphertext);
    Ok((end, tag))
}

impl Module {
    pub fn message_crypt_init(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
        encrypt: bool,
    ) -> Result<()> {
        let entry = self.entry(mechanism)?;
        let (flag, usage, factory) = match encrypt {
            true => (CKF_MESSAGE_ENCRYPT, CKA_ENCRYPT, entry.encrypt),
            false => (CKF_MESSAGE_DECRYPT, CKA_DECRYPT, entry.decrypt),
        };
        let factory = match factory {
            Some(f) if entry.info.flags & flag != 0 => f,
            _ => Err(Rv::MECHANISM_INVALID)?,
        };
        // Every parameter comes with its message.
        if mechanism.param != MechanismParam::None {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        self.begin(
            session,
            mechanism,
            key,
            usage,
            slot(encrypt),
            |material, guard| {
                Ok(MessageCryptState {
                    guard,
                    mechanism: mechanism.clone(),
                    material: material.clone(),
                    factory,
                    counter: 0,
                    message: None,
                })
            },
        )
    }

    /// `C_EncryptMessage` / `C_DecryptMessage`: one message in one part. The output is as long
    /// as the input; a length query or a buffer too small computes nothing (no IV is used up).
    pub fn crypt_message(
        &self,
        session: CK_SESSION_HANDLE,
        encrypt: bool,
        parameter: Option<MessageParam>,
        aad: &[u8],
        data: &[u8],
        out: &mut OutBuf<'_>,
    ) -> Result<Written> {
        let session = self.session(session)?;
        let slot = slot(encrypt);
        let idle = match slot(&mut *session.lock()?).as_ref() {
            Some(process) => process.message.is_none(),
            None => Err(Rv::OPERATION_NOT_INITIALIZED)?,
        };
        if !idle {
            Err(Rv::OPERATION_ACTIVE)?
        }
        self.recheck(&session, slot)?;
        let mut s = session.lock()?;
        let process = active(slot(&mut s))?;
        let Some(buffer) = out.space(data.len())? else {
            return Ok(Written::default());
        };
        let (mut message, iv) = process.fresh_message(parameter, aad, encrypt)?;
        if encrypt {
            let streamed = message.op.update(data, buffer)?;
            let (len, tag) = finish_sealed(&mut *message.op, buffer, streamed, message.tag_len)?;
            out.written(len);
            Ok(Written { iv, tag: Some(tag) })
        } else {
            // Ciphertext ‖ tag, the form the decryption checks before it releases anything.
            let mut sealed = Vec::with_capacity(data.len() + message.tag.len());
            sealed.extend_from_slice(data);
            sealed.extend_from_slice(&message.tag);
            let len = message.op.run(&sealed, buffer)?;
            out.written(len);
            Ok(Written { iv, tag: None })
        }
    }

    pub fn crypt_message_begin(
        &self,
        session: CK_SESSION_HANDLE,
        encrypt: bool,
        parameter: Option<MessageParam>,
        aad: &[u8],
    ) -> Result<Written> {
        let session = self.session(session)?;
        let slot = slot(encrypt);
        let idle = match slot(&mut *session.lock()?).as_ref() {
            Some(process) => process.message.is_none(),
            None => Err(Rv::OPERATION_NOT_INITIALIZED)?,
        };
        if !idle {
            Err(Rv::OPERATION_ACTIVE)?
        }
        self.recheck(&session, slot)?;
        let mut s = session.lock()?;
        let process = active(slot(&mut s))?;
        let (message, iv) = process.fresh_message(parameter, aad, encrypt)?;
        if !message.op.multipart() {
            Err(Rv::FUNCTION_NOT_SUPPORTED)?
        }
        process.message = Some(message);
        Ok(Written { iv, tag: None })
    }

    /// One part of the message begun; `CKF_END_OF_MESSAGE` in `flags` ends it (encrypting, the
    /// tag goes to this call's parameter; decrypting, the tag is this call's parameter's, or the
    /// one given at the beginning when this call has none, and the whole plaintext comes out).
    pub fn crypt_message_next(
        &self,
        session: CK_SESSION_HANDLE,
        encrypt: bool,
        parameter: Option<MessageParam>,
        data: &[u8],
        out: &mut OutBuf<'_>,
        flags: CK_FLAGS,
    ) -> Result<Written> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        let process = active(slot(encrypt)(&mut s))?;
        if process.message.is_none() {
            Err(Rv::OPERATION_NOT_INITIALIZED)?
        }
        let last = flags & CKF_END_OF_MESSAGE != 0;
        if flags & !CKF_END_OF_MESSAGE != 0 {
            process.message = None;
            Err(Rv::ARGUMENTS_BAD)?
        }
        let message = process
            .message
            .as_mut()
            .ok_or(Rv::OPERATION_NOT_INITIALIZED)?;
        let tag_len = message.tag_len;
        let bound = match (encrypt, last) {
            (true, false) => message.op.output_len(data.len(), false),
            (true, true) => message
                .op
                .output_len(data.len(), true)
                .saturating_sub(tag_len),
            (false, false) => 0,
            (false, true) => message.op.output_len(data.len() + tag_len, true),
        };
        // A length query (or a buffer too small) feeds nothing: the part comes again.
        let Some(buffer) = out.space(bound)? else {
            return Ok(Written::default());
        };
        let result = (|| -> Result<(usize, Written)> {
            if encrypt && last && parameter.as_ref().is_none_or(|p| p.tag.len() != tag_len) {
                Err(Rv::MECHANISM_PARAM_INVALID)?
            }
            let streamed = message.op.update(data, buffer)?;
            if !last {
                return Ok((streamed, Written::default()));
            }
            if encrypt {
                let (len, tag) = finish_sealed(&mut *message.op, buffer, streamed, tag_len)?;
                let written = Written {
                    iv: None,
                    tag: Some(tag),
                };
                return Ok((len, written));
            }
            let tag = match parameter {
                Some(p) => p.tag,
                None => std::mem::take(&mut message.tag),
            };
            if tag.len() != tag_len {
                Err(Rv::MECHANISM_PARAM_INVALID)?
            }
            let rest = buffer.get_mut(streamed..).ok_or(Rv::GENERAL_ERROR)?;
            let mut len = streamed + message.op.update(&tag, rest)?;
            let rest = buffer.get_mut(len..).ok_or(Rv::GENERAL_ERROR)?;
            len += message.op.finish(rest)?;
            Ok((len, Written::default()))
        })();
        if result.is_err() || last {
            process.message = None;
        }
        let (len, written) = result?;
        out.written(len);
        Ok(written)
    }

    /// Ends the process, and with it a message left unfinished.
    pub fn message_crypt_final(&self, session: CK_SESSION_HANDLE, encrypt: bool) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        match slot(encrypt)(&mut s).take() {
            Some(_) => Ok(()),
            None => Err(Rv::OPERATION_NOT_INITIALIZED.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::set_low_bits;

    #[test]
    fn low_bits_keep_the_fixed_part() {
        let mut iv = [0xffu8; 3];
        set_low_bits(&mut iv, 12, |k| k == 0 || k == 11);
        assert_eq!(iv, [0xff, 0xf8, 0x01]);
    }
}

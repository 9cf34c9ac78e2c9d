//! Operations on REMOTE keys, shaped like the registry's: the core drives them exactly like
//! local ones (`*Init`, `*Update`, `*Final`, the two-call buffers). Input is gathered here (or
//! hashed here, for hash-and-sign) and sent to the remote in one single-part call on a pooled
//! session, so no remote session is held between the caller's calls.

use std::sync::Arc;

use cryptoki::object::ObjectClass;
use zeroize::Zeroizing;

use super::keys::RemoteKey;
use super::mechanisms::{self, SignPlan};
use crate::crypto::digest::Hasher;
use crate::error::{Result, Rv};
use crate::mechanism::{CipherOperation, SignOperation, VerifyOperation};
use crate::types::Mechanism;

/// `C_Sign*` with a remote private or secret key.
pub struct RemoteSign {
    key: Arc<RemoteKey>,
    plan: SignPlan,
    hasher: Option<Hasher>,
    data: Zeroizing<Vec<u8>>,
    signature_len: usize,
}

impl RemoteSign {
    pub fn new(key: Arc<RemoteKey>, mechanism: &Mechanism) -> Result<RemoteSign> {
        let plan = mechanisms::sign_plan(mechanism)?;
        let hasher = plan.prehash.map(Hasher::new).transpose()?;
        let signature_len = super::keys::signature_len(key.size, plan.remote.kind);
        Ok(RemoteSign {
            key,
            plan,
            hasher,
            data: Zeroizing::new(Vec::new()),
            signature_len,
        })
    }

    fn input(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(std::mem::take(&mut self.data));
        };
        let hash_alg = hasher.alg();
        let digest = hasher.finish()?;
        let mut input = Zeroizing::new(Vec::new());
        if self.plan.digest_info {
            input.extend_from_slice(mechanisms::digest_info_prefix(hash_alg));
        }
        input.extend_from_slice(&digest);
        Ok(input)
    }
}

impl SignOperation for RemoteSign {
    fn signature_len(&self) -> usize {
        self.signature_len
    }

    fn multipart(&self) -> bool {
        // Raw mechanisms are single-part in PKCS#11; MACs and hash-and-sign are not.
        self.hasher.is_some() || self.key.class == ObjectClass::SECRET_KEY
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        match self.hasher.as_mut() {
            Some(hasher) => hasher.update(data),
            None => {
                self.data.extend_from_slice(data);
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> Result<Vec<u8>> {
        let input = self.input()?;
        let key = &self.key;
        key.remote.run("C_Sign", |session, lookup| {
            let handle = lookup.object(key.class, &key.id)?;
            mechanisms::with_remote(&self.plan.remote, |m| session.sign(m, handle, &input))
        })
    }
}

/// `C_Verify*` with a remote secret key (MACs; public keys verify locally).
pub struct RemoteVerify {
    key: Arc<RemoteKey>,
    mechanism: Mechanism,
    data: Zeroizing<Vec<u8>>,
}

impl RemoteVerify {
    pub fn new(key: Arc<RemoteKey>, mechanism: &Mechanism) -> Result<RemoteVerify> {
        if key.class != ObjectClass::SECRET_KEY {
            Err(Rv::KEY_TYPE_INCONSISTENT)?
        }
        mechanisms::check(mechanism)?;
        Ok(RemoteVerify {
            key,
            mechanism: mechanism.clone(),
            data: Zeroizing::new(Vec::new()),
        })
    }
}

impl VerifyOperation for RemoteVerify {
    fn multipart(&self) -> bool {
        true
    }

    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let key = &self.key;
        let data = std::mem::take(&mut self.data);
        key.remote.run("C_Verify", |session, lookup| {
            let handle = lookup.object(key.class, &key.id)?;
            mechanisms::with_remote(&self.mechanism, |m| {
                session.verify(m, handle, &data, signature)
            })
        })
    }
}

/// `C_Encrypt*` / `C_Decrypt*` with a remote key. Multi-part input is gathered and the result
/// comes out at `*Final` (PKCS#11 lets `*Update` return less than it was given).
pub struct RemoteCipher {
    key: Arc<RemoteKey>,
    mechanism: Mechanism,
    encrypt: bool,
    data: Zeroizing<Vec<u8>>,
}

impl RemoteCipher {
    pub fn new(key: Arc<RemoteKey>, mechanism: &Mechanism, encrypt: bool) -> Result<RemoteCipher> {
        if encrypt && key.class != ObjectClass::SECRET_KEY {
            // Public-key encryption runs locally on the cached public half.
            Err(Rv::KEY_TYPE_INCONSISTENT)?
        }
        mechanisms::check(mechanism)?;
        Ok(RemoteCipher {
            key,
            mechanism: mechanism.clone(),
            encrypt,
            data: Zeroizing::new(Vec::new()),
        })
    }
}

impl CipherOperation for RemoteCipher {
    fn output_len(&self, input_len: usize, last: bool) -> usize {
        if !last {
            return 0;
        }
        let total = self.data.len() + input_len;
        match super::keys::modulus_len(self.key.size) {
            Some(modulus) => modulus,
            // Padding or a tag adds at most one block; decryption never grows.
            None if self.encrypt => total + 16,
            None => total,
        }
    }

    fn multipart(&self) -> bool {
        self.key.class == ObjectClass::SECRET_KEY
    }

    fn update(&mut self, data: &[u8], _out: &mut [u8]) -> Result<usize> {
        self.data.extend_from_slice(data);
        Ok(0)
    }

    fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        let key = &self.key;
        let input = std::mem::take(&mut self.data);
        let (what, encrypt) = if self.encrypt {
            ("C_Encrypt", true)
        } else {
            ("C_Decrypt", false)
        };
        let output = key.remote.run(what, |session, lookup| {
            let handle = lookup.object(key.class, &key.id)?;
            mechanisms::with_remote(&self.mechanism, |m| match encrypt {
                true => session.encrypt(m, handle, &input),
                false => session.decrypt(m, handle, &input),
            })
        })?;
        // Zeroized: decrypting, it is plaintext.
        let output = Zeroizing::new(output);
        crate::mechanism::put(out, &output)
    }
}

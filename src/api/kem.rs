//! Key encapsulation (PKCS#11 3.2 §5.18: `C_EncapsulateKey`, `C_DecapsulateKey`): a KEM public
//! key makes a shared secret and its ciphertext, the secret becoming a new secret-key object
//! made from the caller's template; the private key turns the ciphertext back into the same
//! secret. The FFI layer (`src/ffi/exports.rs`) marshals the caller's memory and calls these.
//!
//! The new key follows §5.18: `CKA_LOCAL`, `CKA_ALWAYS_SENSITIVE` and `CKA_NEVER_EXTRACTABLE`
//! false, `CKA_EXTRACTABLE` as the template says and true when it says nothing (the spec's
//! default here, unlike sqlhsm's false for keys made any other way). The template must name
//! `CKA_KEY_TYPE`, a secret key type, as `C_DeriveKey`'s must. Its `CKA_VALUE_LEN` (3.2 sets
//! no rule for it) may ask for at most the whole shared secret, and the key is its leading
//! bytes; without it the key is the type's fixed length (ChaCha20, DES3), else the whole
//! secret (32 bytes for ML-KEM: an AES-256 key, a 32-byte generic secret).
//!
//! No key-extraction rule (`crate::core::extraction`) is needed beyond those of the other
//! calls: an encapsulation makes a fresh secret and never puts an existing key's value into a
//! ciphertext, so no decapsulation can read a sensitive key out; and a key made here is not
//! local, so it cannot wrap sensitive keys whatever its value.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::keys::{secret_key, Made};
use crate::core::access::Access;
use crate::core::module::{module, Module};
use crate::core::new_keys::first_handle;
use crate::core::new_keys::NewKey;
use crate::core::policy::Origin;
use crate::core::template::{template_ulong, with_key_template};
use crate::error::{Result, Rv};
use crate::key_algorithm;
use crate::types::{Attribute, Mechanism, OutBuf};

/// `C_EncapsulateKey`: the ciphertext goes to `ciphertext` under the two-call convention; on a
/// length query (or `CKR_BUFFER_TOO_SMALL`) no key is made and `None` is returned, otherwise the
/// new secret key's handle.
pub fn encapsulate_key(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    public_key: CK_OBJECT_HANDLE,
    template: &[Attribute],
    ciphertext: &mut OutBuf<'_>,
) -> Result<Option<CK_OBJECT_HANDLE>> {
    module()?.encapsulate_key(session, mechanism, public_key, template, ciphertext)
}

/// `C_DecapsulateKey`: the secret that `ciphertext` carries, as a new secret key made from
/// `template`.
pub fn decapsulate_key(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    private_key: CK_OBJECT_HANDLE,
    template: &[Attribute],
    ciphertext: &[u8],
) -> Result<CK_OBJECT_HANDLE> {
    module()?.decapsulate_key(session, mechanism, private_key, template, ciphertext)
}

impl Module {
    pub fn encapsulate_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        public_key: CK_OBJECT_HANDLE,
        template: &[Attribute],
        ciphertext: &mut OutBuf<'_>,
    ) -> Result<Option<CK_OBJECT_HANDLE>> {
        let access = self.access(session)?;
        let template = &*access.with_private_default(template)?;
        let kem = self.entry(mechanism)?.kem.ok_or(Rv::MECHANISM_INVALID)?;
        let (key, material) = self.usable_key(
            &access,
            public_key,
            CKA_ENCAPSULATE,
            mechanism,
            Rv::KEY_HANDLE_INVALID,
        )?;
        if key.class() != CKO_PUBLIC_KEY {
            Err(Rv::KEY_TYPE_INCONSISTENT)?
        }
        // The key's CKA_ENCAPSULATE_TEMPLATE joins the caller's; a conflict is the key's
        // refusal, which §5.18 answers with CKR_KEY_HANDLE_INVALID.
        let template = &*with_key_template(&key.attrs, CKA_ENCAPSULATE_TEMPLATE, template)
            .map_err(|e| match e.rv() {
                Rv::TEMPLATE_INCONSISTENT => Rv::KEY_HANDLE_INVALID.into(),
                _ => e,
            })?;
        let request = SecretRequest::of(template)?;
        let needed = (kem.ciphertext_len)(&material, &mechanism.param)?;
        if !ciphertext.reserve(needed)? {
            return Ok(None);
        }
        let made = (kem.encapsulate)(&material, &mechanism.param)?;
        let handle = self.store_shared_secret(session, &access, template, request, made.secret)?;
        ciphertext.fill(&made.ciphertext)?;
        Ok(Some(handle))
    }

    pub fn decapsulate_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        private_key: CK_OBJECT_HANDLE,
        template: &[Attribute],
        ciphertext: &[u8],
    ) -> Result<CK_OBJECT_HANDLE> {
        let access = self.access(session)?;
        let template = &*access.with_private_default(template)?;
        let kem = self.entry(mechanism)?.kem.ok_or(Rv::MECHANISM_INVALID)?;
        let (key, material) = self.usable_key(
            &access,
            private_key,
            CKA_DECAPSULATE,
            mechanism,
            Rv::KEY_HANDLE_INVALID,
        )?;
        if key.class() != CKO_PRIVATE_KEY {
            Err(Rv::KEY_TYPE_INCONSISTENT)?
        }
        // The key's CKA_DECAPSULATE_TEMPLATE joins the caller's (a conflict is
        // CKR_TEMPLATE_INCONSISTENT, §5.18).
        let template = &*with_key_template(&key.attrs, CKA_DECAPSULATE_TEMPLATE, template)?;
        let request = SecretRequest::of(template)?;
        let secret = (kem.decapsulate)(&material, &mechanism.param, ciphertext)?;
        self.store_shared_secret(session, &access, template, request, secret)
    }

    /// Stores the secret key a KEM's shared secret becomes (see the module documentation).
    fn store_shared_secret(
        &self,
        session: CK_SESSION_HANDLE,
        access: &Access,
        template: &[Attribute],
        request: SecretRequest,
        mut secret: Zeroizing<Vec<u8>>,
    ) -> Result<CK_OBJECT_HANDLE> {
        let len = request.len.unwrap_or(secret.len());
        if len > secret.len() {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
        secret.truncate(len);
        let mut key = secret_key(
            template,
            request.key_type,
            secret,
            Origin::Imported,
            Made::Derived,
        )?;
        if let NewKey::Secret { attrs, .. } = &mut key {
            if !template.iter().any(|a| a.kind == CKA_EXTRACTABLE) {
                attrs.set_bool(CKA_EXTRACTABLE, true);
            }
        }
        first_handle(self.store_new_key(session, access, key)?)
    }
}

/// What the template asks the shared secret to become, checked before any KEM work.
#[derive(Clone, Copy)]
struct SecretRequest {
    key_type: CK_KEY_TYPE,
    /// `None`: the whole shared secret.
    len: Option<usize>,
}

impl SecretRequest {
    fn of(template: &[Attribute]) -> Result<SecretRequest> {
        if template_ulong(template, CKA_CLASS)?.is_some_and(|c| c != CKO_SECRET_KEY) {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
        let key_type = template_ulong(template, CKA_KEY_TYPE)?.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
        let len = match template_ulong(template, CKA_VALUE_LEN)? {
            Some(len) => Some(usize::try_from(len).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?),
            None => key_algorithm::fixed_secret_len(key_type),
        };
        Ok(SecretRequest { key_type, len })
    }
}

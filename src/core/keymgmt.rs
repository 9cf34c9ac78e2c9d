//! Key management beyond generation (PKCS#11 3.0 §5.7, §5.14): `C_WrapKey`, `C_UnwrapKey`,
//! `C_DeriveKey`, `C_CopyObject`, `C_GetObjectSize`, and the check value of AES keys.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::attributes::{
    self, AttrMap, DERIVED, ONLY_TO_FALSE, ONLY_TO_TRUE, READ_ONLY, SECRET, TOKEN_SET,
};
use super::module::Module;
use super::object::{self, template_bool, template_ulong, Object, ObjectId, Origin};
use super::objects::NewKey;
use crate::crypto::keys::PrivateKey;
use crate::error::{Result, Rv};
use crate::mechanism::{self, KeyMaterial};
use crate::types::{Attribute, Mechanism, OutBuf};

/// Sets or checks `CKA_CHECK_VALUE` on a new AES key.
pub fn apply_check_value(attrs: &mut AttrMap, value: &[u8]) -> Result<()> {
    if attrs.ulong(CKA_KEY_TYPE) != Some(CKK_AES) {
        return Ok(());
    }
    // PKCS#11 3.0 §2.15.1: the first three bytes of the encryption of a zero block.
    let computed = crate::crypto::wrap::aes_check_value(value)?.to_vec();
    match attrs.get(CKA_CHECK_VALUE) {
        // A caller may supply it (for instance from an export) only if it is right.
        Some(given) if !given.is_empty() && given != computed.as_slice() => {
            Err(Rv::ATTRIBUTE_VALUE_INVALID)?
        }
        _ => attrs.set(CKA_CHECK_VALUE, computed),
    }
    Ok(())
}

/// The bytes of a key as a wrapping mechanism sees them: a secret key's value, a private
/// key's PKCS#8.
fn key_bytes(material: &KeyMaterial) -> Result<Zeroizing<Vec<u8>>> {
    match material {
        KeyMaterial::Secret(value) => Ok(Zeroizing::new(value.to_vec())),
        KeyMaterial::Private(private) => private.to_pkcs8_der(),
        KeyMaterial::Public(_) => Err(Rv::KEY_NOT_WRAPPABLE)?,
        // Remote keys are made non-extractable; the remote module would refuse anyway.
        KeyMaterial::External(_) => Err(Rv::KEY_UNEXTRACTABLE)?,
    }
}

/// The attributes a copy starts from: everything the source shows except what names the
/// source itself (its unique id, its row's vendor attributes).
fn stored_attrs(object: &Object) -> AttrMap {
    let mut attrs = AttrMap::new();
    for (kind, value) in object.attrs.iter() {
        let names_the_source =
            kind == CKA_UNIQUE_ID || (kind & 0xFFFF_0000) == crate::vendor::CKA_SQLHSM_BASE;
        if !names_the_source {
            attrs.set(kind, value.to_vec());
        }
    }
    attrs
}

impl Module {
    pub fn wrap_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        wrapping_key: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let access = self.access(session)?;
        let wrap = mechanism::lookup(mechanism.kind)
            .and_then(|e| e.wrap)
            .ok_or(Rv::MECHANISM_INVALID)?;
        let (wrapper, wrapping) = self.usable_key(
            &access,
            wrapping_key,
            CKA_WRAP,
            mechanism,
            Rv::WRAPPING_KEY_HANDLE_INVALID,
        )?;
        let target = self.visible_object(&access, key, Rv::KEY_HANDLE_INVALID)?;
        if !matches!(target.class(), CKO_SECRET_KEY | CKO_PRIVATE_KEY) {
            Err(Rv::KEY_NOT_WRAPPABLE)?
        }
        if !target.attrs.flag(CKA_EXTRACTABLE) {
            Err(Rv::KEY_UNEXTRACTABLE)?
        }
        if target.attrs.flag(CKA_WRAP_WITH_TRUSTED) && !wrapper.attrs.flag(CKA_TRUSTED) {
            Err(Rv::KEY_NOT_WRAPPABLE)?
        }
        let material = self.material(&access, &target)?;
        let bytes = key_bytes(&material)?;
        let wrapped = wrap(&wrapping, &mechanism.param, &bytes)?;
        out.fill(&wrapped).map(|_| ())
    }

    pub fn unwrap_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        unwrapping_key: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let access = self.access(session)?;
        let template = &*access.with_private_default(template)?;
        let unwrap = mechanism::lookup(mechanism.kind)
            .and_then(|e| e.unwrap)
            .ok_or(Rv::MECHANISM_INVALID)?;
        let (_, unwrapping) = self.usable_key(
            &access,
            unwrapping_key,
            CKA_UNWRAP,
            mechanism,
            Rv::UNWRAPPING_KEY_HANDLE_INVALID,
        )?;
        let class = template_ulong(template, CKA_CLASS)?.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
        let key_type = template_ulong(template, CKA_KEY_TYPE)?.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
        if let Some(remote_key) = Self::as_remote_key(&unwrapping) {
            if class != CKO_SECRET_KEY {
                tracing::info!("a REMOTE key unwraps secret keys only");
                Err(Rv::TEMPLATE_INCONSISTENT)?
            }
            let len = template_ulong(template, CKA_VALUE_LEN)?
                .map(|l| usize::try_from(l).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID))
                .transpose()?;
            let attrs = remote_target_attrs(template, key_type, Origin::Imported)?;
            let label = remote_label(&attrs);
            let reference = crate::provider::keys::unwrap_secret(
                remote_key, mechanism, wrapped, key_type, len, &label,
            )?;
            return self.store_remote_result(session, &access, remote_key, attrs, reference);
        }
        let mut bytes = unwrap(&unwrapping, &mechanism.param, wrapped)?;
        let key = match class {
            CKO_SECRET_KEY => {
                // Block-cipher wrappings pad the value; CKA_VALUE_LEN says how much is key.
                if let Some(len) = template_ulong(template, CKA_VALUE_LEN)? {
                    let len = usize::try_from(len).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
                    if len > bytes.len() {
                        Err(Rv::TEMPLATE_INCONSISTENT)?
                    }
                    bytes.truncate(len);
                }
                secret_key(template, key_type, bytes, Origin::Imported)?
            }
            CKO_PRIVATE_KEY => {
                let private =
                    PrivateKey::from_pkcs8_der(&bytes).map_err(|_| Rv::WRAPPED_KEY_INVALID)?;
                // A key of no algorithm sqlhsm has (a curve no row names) is not one to unwrap.
                let algorithm = crate::key_algorithm::of_private(&private)
                    .map_err(|_| Rv::WRAPPED_KEY_INVALID)?;
                if algorithm.key_type != key_type {
                    Err(Rv::TEMPLATE_INCONSISTENT)?
                }
                let public = private.public_key()?;
                let mut attrs = object::build_key_attrs(
                    CKO_PRIVATE_KEY,
                    key_type,
                    template,
                    &[],
                    Origin::Imported,
                )?;
                super::keystore::add_public_values(&mut attrs, &public, CKO_PRIVATE_KEY)?;
                NewKey::Pair {
                    public: None,
                    private: Some(attrs),
                    public_key: Arc::new(public),
                    private_key: Some(Arc::new(private)),
                }
            }
            _ => Err(Rv::TEMPLATE_INCONSISTENT)?,
        };
        first_handle(self.store_new_key(session, &access, key)?)
    }

    pub fn derive_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        base_key: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let access = self.access(session)?;
        let template = &*access.with_private_default(template)?;
        let derive = mechanism::lookup(mechanism.kind)
            .and_then(|e| e.derive)
            .ok_or(Rv::MECHANISM_INVALID)?;
        let (base, material) = self.usable_key(
            &access,
            base_key,
            CKA_DERIVE,
            mechanism,
            Rv::KEY_HANDLE_INVALID,
        )?;
        let class = template_ulong(template, CKA_CLASS)?.unwrap_or(CKO_SECRET_KEY);
        if class != CKO_SECRET_KEY {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
        let key_type = template_ulong(template, CKA_KEY_TYPE)?.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
        let len = match (template_ulong(template, CKA_VALUE_LEN)?, key_type) {
            (Some(len), _) => Some(usize::try_from(len).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?),
            (None, CKK_AES) => Err(Rv::TEMPLATE_INCOMPLETE)?,
            (None, _) => None,
        };
        if let Some(remote_key) = Self::as_remote_key(&material) {
            let mut attrs = remote_target_attrs(template, key_type, Origin::Imported)?;
            attrs.set_bool(CKA_ALWAYS_SENSITIVE, base.attrs.flag(CKA_ALWAYS_SENSITIVE));
            attrs.set_bool(
                CKA_NEVER_EXTRACTABLE,
                base.attrs.flag(CKA_NEVER_EXTRACTABLE),
            );
            let label = remote_label(&attrs);
            let reference =
                crate::provider::keys::derive_secret(remote_key, mechanism, key_type, len, &label)?;
            return self.store_remote_result(session, &access, remote_key, attrs, reference);
        }
        let value = derive(&material, &mechanism.param, len)?;
        let mut key = secret_key(template, key_type, value, Origin::Imported)?;
        if let NewKey::Secret { attrs, .. } = &mut key {
            // A derived key is "always sensitive" / "never extractable" only if its base was and
            // it still is (PKCS#11 3.0 §4.10).
            let always_sensitive =
                base.attrs.flag(CKA_ALWAYS_SENSITIVE) && attrs.flag(CKA_SENSITIVE);
            let never_extractable =
                base.attrs.flag(CKA_NEVER_EXTRACTABLE) && !attrs.flag(CKA_EXTRACTABLE);
            attrs.set_bool(CKA_ALWAYS_SENSITIVE, always_sensitive);
            attrs.set_bool(CKA_NEVER_EXTRACTABLE, never_extractable);
        }
        first_handle(self.store_new_key(session, &access, key)?)
    }

    pub fn copy_object(
        &self,
        session: CK_SESSION_HANDLE,
        handle: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let access = self.access(session)?;
        let source = self.visible_object(&access, handle, Rv::OBJECT_HANDLE_INVALID)?;
        if !source.attrs.flag(CKA_COPYABLE) {
            Err(Rv::ACTION_PROHIBITED)?
        }
        let mut attrs = stored_attrs(&source);
        for attr in template {
            let spec = attributes::spec(attr.kind).ok_or(Rv::ATTRIBUTE_TYPE_INVALID)?;
            if !object::applies_to(&source.attrs, attr.kind) {
                Err(Rv::ATTRIBUTE_TYPE_INVALID)?
            }
            attributes::validate_value(spec, &attr.value)?;
            let current = source.attrs.flag(attr.kind);
            let wanted = attributes::decode_bool(&attr.value).unwrap_or(false);
            // C_CopyObject may also choose where the copy lives and how it is protected.
            // A data object's value is its content, which C_SetAttributeValue may change, so a
            // copy may be given another one too.
            let storage_choice = matches!(
                attr.kind,
                CKA_TOKEN | CKA_PRIVATE | CKA_MODIFIABLE | CKA_DESTROYABLE
            ) || (source.class() == CKO_DATA && attr.kind == CKA_VALUE);
            let forbidden = !storage_choice
                && (spec.has(READ_ONLY)
                    || spec.has(TOKEN_SET)
                    || spec.has(DERIVED)
                    || spec.has(SECRET))
                || (spec.has(ONLY_TO_TRUE) && current && !wanted)
                || (spec.has(ONLY_TO_FALSE) && !current && wanted)
                || (attr.kind == CKA_MODIFIABLE && !current && wanted);
            if forbidden {
                if source.attrs.get(attr.kind) == Some(attr.value.as_slice()) {
                    continue;
                }
                Err(Rv::ATTRIBUTE_READ_ONLY)?
            }
            attrs.set(attr.kind, attr.value.to_vec());
        }
        if matches!(source.class(), CKO_DATA | CKO_CERTIFICATE) {
            // The value came with the other attributes (a plain object holds it in the clear
            // once loaded), or from the template.
            return self.store_plain(session, &access, attrs);
        }
        let material = self.material(&access, &source)?;
        let key = match (source.class(), material) {
            (CKO_SECRET_KEY, KeyMaterial::Secret(value)) => NewKey::Secret {
                attrs,
                value: Zeroizing::new(value.to_vec()),
            },
            (CKO_PRIVATE_KEY, KeyMaterial::Private(private)) => {
                let public = Arc::new(private.public_key()?);
                NewKey::Pair {
                    public: None,
                    private: Some(attrs),
                    public_key: public,
                    private_key: Some(private),
                }
            }
            (CKO_PUBLIC_KEY, KeyMaterial::Public(public)) => NewKey::Pair {
                public: Some(attrs),
                private: None,
                public_key: public,
                private_key: None,
            },
            _ => Err(Rv::ACTION_PROHIBITED)?,
        };
        first_handle(self.store_new_key(session, &access, key)?)
    }

    /// `C_GetObjectSize`: what the object takes in the store (attributes as stored plus sealed
    /// material, or a data object's or certificate's value), an approximation as the spec
    /// allows.
    pub fn object_size(
        &self,
        session: CK_SESSION_HANDLE,
        handle: CK_OBJECT_HANDLE,
    ) -> Result<usize> {
        let access = self.access(session)?;
        let object = self.visible_object(&access, handle, Rv::OBJECT_HANDLE_INVALID)?;
        let attributes = object.attrs.to_json().to_string().len();
        let material = match (&object.sealed, object.id) {
            (Some(sealed), _) => sealed.stored_len(),
            (None, ObjectId::Session(_)) => match object.cached_material()? {
                Some(KeyMaterial::Secret(value)) => value.len(),
                Some(KeyMaterial::Private(private)) => private.to_pkcs8_der()?.len(),
                _ => 0,
            },
            (None, _) => 0,
        };
        // A data object's or certificate's value is held with its attributes, but `to_json`
        // leaves CKA_VALUE out (for keys it is sealed material): count it here.
        let value = match object.class() {
            CKO_DATA | CKO_CERTIFICATE => object.attrs.get(CKA_VALUE).map_or(0, <[u8]>::len),
            _ => 0,
        };
        Ok(attributes + material + value)
    }
}

/// The attributes of a secret key that a REMOTE key unwraps or derives in the remote module:
/// always a token object (the remote holds it), sensitive and non-extractable.
fn remote_target_attrs(
    template: &[Attribute],
    key_type: CK_KEY_TYPE,
    origin: Origin,
) -> Result<AttrMap> {
    if !matches!(key_type, CKK_AES | CKK_GENERIC_SECRET) {
        Err(Rv::TEMPLATE_INCONSISTENT)?
    }
    if template_bool(template, CKA_TOKEN)? == Some(false) {
        tracing::info!("keys made by a REMOTE key are token objects in the remote module");
        Err(Rv::TEMPLATE_INCONSISTENT)?
    }
    let mut attrs =
        object::build_key_attrs(CKO_SECRET_KEY, key_type, template, &[CKA_VALUE_LEN], origin)?;
    attrs.set_bool(CKA_TOKEN, true);
    Ok(attrs)
}

fn remote_label(attrs: &AttrMap) -> String {
    super::remote::remote_label(attrs.get(CKA_LABEL))
}

impl Module {
    /// Records a secret key that a REMOTE key made in the remote module; if the row cannot be
    /// stored, the remote object is destroyed again.
    fn store_remote_result(
        &self,
        session: CK_SESSION_HANDLE,
        access: &super::objects::Access,
        maker: &crate::provider::RemoteKey,
        attrs: AttrMap,
        reference: crate::provider::RemoteRef,
    ) -> Result<CK_OBJECT_HANDLE> {
        let key = NewKey::RemoteSecret {
            attrs,
            remote: reference.clone(),
        };
        match self.store_new_key(session, access, key) {
            Ok(handles) => first_handle(handles),
            Err(e) => {
                let _ = crate::provider::keys::retire(
                    &maker.remote,
                    &reference,
                    crate::provider::OnDestroy::Destroy,
                    "unused",
                );
                Err(e)
            }
        }
    }
}

fn first_handle(handles: Vec<CK_OBJECT_HANDLE>) -> Result<CK_OBJECT_HANDLE> {
    handles
        .into_iter()
        .next()
        .ok_or_else(|| Rv::GENERAL_ERROR.into())
}

/// A secret key from unwrapped or derived bytes and the caller's template.
fn secret_key(
    template: &[Attribute],
    key_type: CK_KEY_TYPE,
    value: Zeroizing<Vec<u8>>,
    origin: Origin,
) -> Result<NewKey> {
    match key_type {
        CKK_AES if matches!(value.len(), 16 | 24 | 32) => {}
        CKK_GENERIC_SECRET if !value.is_empty() => {}
        CKK_AES => Err(Rv::KEY_SIZE_RANGE)?,
        _ => Err(Rv::TEMPLATE_INCONSISTENT)?,
    }
    let attrs =
        object::build_key_attrs(CKO_SECRET_KEY, key_type, template, &[CKA_VALUE_LEN], origin)?;
    Ok(NewKey::Secret { attrs, value })
}

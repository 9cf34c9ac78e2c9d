//! Object management functions (PKCS#11 3.0 §5.7): `C_CreateObject`, `C_CopyObject`,
//! `C_DestroyObject`, `C_GetObjectSize`, `C_GetAttributeValue`, `C_SetAttributeValue`,
//! `C_FindObjects*`. The chapter reads here, over the core's narrow parts: the session's
//! access, the class policy, the object store and cache, storing new keys.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::core::access::Access;
use crate::core::attributes::{self, AttrMap};
use crate::core::module::{module, Module};
use crate::core::new_keys::{first_handle, NewKey};
use crate::core::object::{Half, Object, ObjectId, Sealed};
use crate::core::policy::{self, Rules};
use crate::core::session::{FindState, LoginKind};
use crate::core::template::template_ulong;
use crate::core::{import, lifecycle};
use crate::error::{Result, Rv};
use crate::mechanism::KeyMaterial;
use crate::storage::{KeyEvent, KeyTable};
use crate::types::Attribute;

pub use crate::types::AttributeRequest;

pub fn create_object(
    session: CK_SESSION_HANDLE,
    template: &[Attribute],
) -> Result<CK_OBJECT_HANDLE> {
    module()?.create_object(session, template)
}

pub fn copy_object(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: &[Attribute],
) -> Result<CK_OBJECT_HANDLE> {
    module()?.copy_object(session, object, template)
}

pub fn destroy_object(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> Result<()> {
    module()?.destroy_object(session, object)
}

pub fn get_object_size(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> Result<usize> {
    module()?.object_size(session, object)
}

/// Fills every request it can and returns the spec's error for the template as a whole
/// (`CKR_ATTRIBUTE_SENSITIVE`, `CKR_ATTRIBUTE_TYPE_INVALID` or `CKR_BUFFER_TOO_SMALL`) after
/// processing every entry, as PKCS#11 3.0 §5.7 requires.
pub fn get_attribute_value(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    requests: &mut [AttributeRequest<'_>],
) -> Result<()> {
    module()?.get_attribute_value(session, object, requests)
}

pub fn set_attribute_value(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: &[Attribute],
) -> Result<()> {
    module()?.set_attribute_value(session, object, template)
}

pub fn find_objects_init(session: CK_SESSION_HANDLE, template: &[Attribute]) -> Result<()> {
    module()?.find_objects_init(session, template)
}

pub fn find_objects(session: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
    module()?.find_objects(session, max)
}

pub fn find_objects_final(session: CK_SESSION_HANDLE) -> Result<()> {
    module()?.find_objects_final(session)
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
    pub fn create_object(
        &self,
        session: CK_SESSION_HANDLE,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let access = self.access(session)?;
        let template = &*access.with_private_default(template)?;
        let class = template_ulong(template, CKA_CLASS)?.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
        if matches!(class, CKO_DATA | CKO_CERTIFICATE) {
            return self.create_plain_object(session, &access, class, template);
        }
        let key_type = template_ulong(template, CKA_KEY_TYPE)?.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
        let new_key = import::import_key(class, key_type, template)?;
        let handles = self.store_new_key(session, &access, new_key)?;
        handles
            .into_iter()
            .next()
            .ok_or_else(|| Rv::GENERAL_ERROR.into())
    }

    pub fn destroy_object(
        &self,
        session: CK_SESSION_HANDLE,
        handle: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let access = self.access(session)?;
        let object = self.visible_object(&access, handle, Rv::OBJECT_HANDLE_INVALID)?;
        if object.is_token() && !access.read_write {
            Err(Rv::SESSION_READ_ONLY)?
        }
        if !object.attrs.flag(CKA_DESTROYABLE) {
            Err(Rv::ACTION_PROHIBITED)?
        }
        let key_id = object
            .attrs
            .get(crate::vendor::CKA_SQLHSM_KEY_ID)
            .map(|id| String::from_utf8_lossy(id).into_owned());
        // A token key's destruction and its history event commit together. False when another
        // process destroyed it first (and recorded that).
        let destroyed = || -> Result<KeyEvent> {
            let key_id = key_id.as_deref().ok_or(Rv::GENERAL_ERROR)?;
            let what = serde_json::json!({ "class": object.class() });
            Ok(self.history_event(key_id, object.token, "destroyed", Some(what), None))
        };
        let changed = match object.id {
            ObjectId::Session(_) => false,
            ObjectId::Token {
                row,
                half: Half::Secret,
            } => self.storage.delete_key(KeyTable::Sym, row, &destroyed()?)?,
            ObjectId::Token {
                row,
                half: Half::Standalone,
            } => self.storage.delete_object(row)?,
            ObjectId::Token { row, half } => match self.storage.get_asym_key(row)? {
                None => false,
                Some(mut stored) => {
                    let (name, other) = match half {
                        Half::Public => ("public", "private"),
                        _ => ("private", "public"),
                    };
                    if stored.metadata.get(other).is_some() {
                        // The other half stays: only this half's attributes leave the row.
                        if let Some(map) = stored.metadata.as_object_mut() {
                            map.remove(name);
                        }
                        self.storage.update_key_attributes(
                            KeyTable::Asym,
                            row,
                            &stored.metadata,
                            stored.expiration,
                            Some(&destroyed()?),
                        )?
                    } else {
                        self.storage
                            .delete_key(KeyTable::Asym, row, &destroyed()?)?
                    }
                }
            },
        };
        // The row no longer holds the key; its remote object follows (destroyed or kept, as
        // configured).
        if let (true, Some(key_id), Some(Sealed::Remote(reference))) =
            (changed, &key_id, &object.sealed)
        {
            self.retire_remote(object.token, key_id, reference, "destroyed");
        }
        self.objects.remove(object.id)?;
        Ok(())
    }

    pub fn get_attribute_value(
        &self,
        session: CK_SESSION_HANDLE,
        handle: CK_OBJECT_HANDLE,
        requests: &mut [AttributeRequest<'_>],
    ) -> Result<()> {
        let access = self.access(session)?;
        let object = self.visible_object(&access, handle, Rv::OBJECT_HANDLE_INVALID)?;
        let mut verdict: Option<Rv> = None;
        for request in requests.iter_mut() {
            request.unavailable = false;
            let outcome = self.attribute_bytes(&access, &object, request.kind);
            let result = match outcome {
                Ok(bytes) => request.out.fill(&bytes).map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                let rv = e.rv();
                if !matches!(
                    rv,
                    Rv::ATTRIBUTE_SENSITIVE | Rv::ATTRIBUTE_TYPE_INVALID | Rv::BUFFER_TOO_SMALL
                ) {
                    return Err(e);
                }
                request.unavailable = true;
                verdict.get_or_insert(rv);
            }
        }
        match verdict {
            Some(rv) => Err(rv)?,
            None => Ok(()),
        }
    }

    fn attribute_bytes(
        &self,
        access: &Access,
        object: &Object,
        kind: CK_ATTRIBUTE_TYPE,
    ) -> Result<Vec<u8>> {
        if let Some(value) = object.attrs.get(kind) {
            return Ok(value.to_vec());
        }
        attributes::spec(kind).ok_or(Rv::ATTRIBUTE_TYPE_INVALID)?;
        let material = policy::rules_of(&object.attrs, kind)
            .is_some_and(|rules| rules.contains(Rules::SENSITIVE));
        if !material {
            Err(Rv::ATTRIBUTE_TYPE_INVALID)?
        }
        if object.attrs.flag(CKA_SENSITIVE) || !object.attrs.flag(CKA_EXTRACTABLE) {
            Err(Rv::ATTRIBUTE_SENSITIVE)?
        }
        match self.material(access, object)? {
            KeyMaterial::Secret(value) if kind == CKA_VALUE => Ok(value.to_vec()),
            KeyMaterial::Private(private) => {
                let value = private
                    .private_component(kind)?
                    .ok_or(Rv::ATTRIBUTE_TYPE_INVALID)?;
                Ok(value.to_vec())
            }
            _ => Err(Rv::ATTRIBUTE_TYPE_INVALID)?,
        }
    }

    pub fn set_attribute_value(
        &self,
        session: CK_SESSION_HANDLE,
        handle: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<()> {
        let access = self.access(session)?;
        let object = self.visible_object(&access, handle, Rv::OBJECT_HANDLE_INVALID)?;
        // Status and expiration are row state with transition rules, not plain attributes. A
        // token key's CKA_END_DATE is its expiration, so it follows the same rules (only the SO
        // brings an expired key back).
        let is_token_key =
            matches!(object.id, ObjectId::Token { half, .. } if half != Half::Standalone);
        let (lifecycle, template): (Vec<Attribute>, Vec<Attribute>) =
            template.iter().cloned().partition(|a| {
                lifecycle::is_lifecycle_attribute(a.kind)
                    || (is_token_key && a.kind == CKA_END_DATE)
            });
        let template = template.as_slice();
        if object.is_token() && !access.read_write {
            Err(Rv::SESSION_READ_ONLY)?
        }
        if lifecycle.iter().any(|a| a.kind == CKA_END_DATE) && !object.attrs.flag(CKA_MODIFIABLE) {
            // Unlike status, the end date is an attribute of the key, which CKA_MODIFIABLE freezes.
            Err(Rv::ACTION_PROHIBITED)?
        }
        if template.is_empty() && !lifecycle.is_empty() {
            // Key state, not an attribute of the key: CKA_MODIFIABLE does not freeze it (a key
            // that may not be changed can still be declared compromised).
            return self.set_lifecycle(&access, &object, &lifecycle);
        }
        if !object.attrs.flag(CKA_MODIFIABLE) {
            Err(Rv::ACTION_PROHIBITED)?
        }
        let mut attrs = object.attrs.clone();
        for attr in template {
            let spec = attributes::spec(attr.kind).ok_or(Rv::ATTRIBUTE_TYPE_INVALID)?;
            let rules =
                policy::rules_of(&object.attrs, attr.kind).ok_or(Rv::ATTRIBUTE_TYPE_INVALID)?;
            attributes::validate_value(spec, &attr.value)?;
            if !rules.contains(Rules::MODIFY) {
                if object.attrs.get(attr.kind) == Some(attr.value.as_slice()) {
                    continue; // setting a read-only attribute to its current value is harmless
                }
                Err(Rv::ATTRIBUTE_READ_ONLY)?
            }
            let current = object.attrs.flag(attr.kind);
            let wanted = attributes::decode_bool(&attr.value).unwrap_or(false);
            if policy::one_way_violated(rules, current, wanted) {
                Err(Rv::ATTRIBUTE_READ_ONLY)?
            }
            if policy::so_only_change(rules, current, wanted)
                && access.login.kind() != LoginKind::So
            {
                Err(Rv::ATTRIBUTE_READ_ONLY)?
            }
            attrs.set(attr.kind, attr.value.to_vec());
        }
        match object.id {
            ObjectId::Session(_) => {
                self.objects.insert(object.with_attrs(attrs)?)?;
            }
            ObjectId::Token { row, half } => self.persist_attributes(&object, row, half, attrs)?,
        }
        if !lifecycle.is_empty() {
            let object = self.visible_object(&access, handle, Rv::OBJECT_HANDLE_INVALID)?;
            self.set_lifecycle(&access, &object, &lifecycle)?;
        }
        Ok(())
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
            let rules =
                policy::rules_of(&source.attrs, attr.kind).ok_or(Rv::ATTRIBUTE_TYPE_INVALID)?;
            attributes::validate_value(spec, &attr.value)?;
            let current = source.attrs.flag(attr.kind);
            let wanted = attributes::decode_bool(&attr.value).unwrap_or(false);
            // C_CopyObject may change what C_SetAttributeValue may, and also choose where the
            // copy lives and how it is protected (Rules::COPY).
            let forbidden = !rules.intersects(Rules::MODIFY | Rules::COPY)
                || policy::one_way_violated(rules, current, wanted)
                || policy::so_only_change(rules, current, wanted)
                    && access.login.kind() != LoginKind::So;
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

    pub fn find_objects_init(
        &self,
        session: CK_SESSION_HANDLE,
        template: &[Attribute],
    ) -> Result<()> {
        let access = self.access(session)?;
        {
            let session = self.session(session)?;
            if session.lock()?.find.is_some() {
                Err(Rv::OPERATION_ACTIVE)?
            }
        }
        let handles = self.find(&access, template)?;
        let session = self.session(session)?;
        let mut s = session.lock()?;
        if s.find.is_some() {
            Err(Rv::OPERATION_ACTIVE)?
        }
        s.find = Some(FindState { handles, next: 0 });
        Ok(())
    }

    pub fn find_objects(
        &self,
        session: CK_SESSION_HANDLE,
        max: usize,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        let find = s.find.as_mut().ok_or(Rv::OPERATION_NOT_INITIALIZED)?;
        let end = find.handles.len().min(find.next.saturating_add(max));
        let batch = find.handles[find.next..end].to_vec();
        find.next = end;
        Ok(batch)
    }

    pub fn find_objects_final(&self, session: CK_SESSION_HANDLE) -> Result<()> {
        let session = self.session(session)?;
        let mut s = session.lock()?;
        s.find.take().ok_or(Rv::OPERATION_NOT_INITIALIZED)?;
        Ok(())
    }
}

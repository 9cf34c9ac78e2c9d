//! Object management functions of the module (PKCS#11 3.0 §5.7): create, find, read and
//! change attributes, destroy; and the lookup of a handle's object through the cache. Keys a
//! template describes are read by `import`, stored by `new_keys`.

use cryptoki_sys::*;
use uuid::Uuid;

use super::access::Access;
use super::algorithm::KeyAlgorithm;
use super::attributes::{self, AttrMap};
use super::keystore;
use super::module::Module;
use super::object::{Half, Object, ObjectId, ObjectRef};
use super::policy::{self, Rules};
use super::session::{FindState, LoginKind};
use super::template::{find_in_template, template_bool, template_ulong};
use crate::error::{Result, Rv};
use crate::mechanism::KeyMaterial;
use crate::storage::{KeyEvent, KeyFilter, KeyTable};
use crate::types::{Attribute, AttributeRequest};

impl Module {
    /// The object a handle names, if this session may see it.
    pub fn visible_object(
        &self,
        access: &Access,
        handle: CK_OBJECT_HANDLE,
        invalid: Rv,
    ) -> Result<ObjectRef> {
        self.check_coherence();
        let (object, stale) = self.objects.lookup(handle)?.ok_or(invalid)?;
        let object = if stale {
            self.revalidate(object)?.ok_or(invalid)?
        } else {
            object
        };
        if !access.can_see(&object) {
            Err(invalid)?
        }
        Ok(object)
    }

    /// Re-reads a cached token object that another process may have changed: the fresh copy
    /// replaces it (keeping unsealed material if the sealed bytes are the same), a vanished one
    /// leaves the handle table (`None`). If the store is unreachable the cached copy is used.
    pub(super) fn revalidate(&self, object: ObjectRef) -> Result<Option<ObjectRef>> {
        let ObjectId::Token { row, half } = object.id else {
            return Ok(Some(object));
        };
        let fresh: Result<Option<Object>> = (|| match half {
            Half::Public | Half::Private => Ok(match self.storage.get_asym_key(row)? {
                Some(stored) => keystore::objects_from_asym_row(&stored)?
                    .into_iter()
                    .find(|o| o.id == object.id),
                None => None,
            }),
            Half::Secret => match self.storage.get_sym_key(row)? {
                Some(stored) => keystore::object_from_sym_row(&stored),
                None => Ok(None),
            },
            Half::Standalone => match self.storage.get_object(row)? {
                Some(stored) => {
                    let token_key = self.login_of(object.token)?.token_key();
                    match super::plain_objects::object_from_row(&stored, token_key.as_deref())? {
                        Some(fresh) => Ok(Some(fresh)),
                        // Private and nobody logged in: it is invisible now; check again later.
                        None => Err(Rv::USER_NOT_LOGGED_IN.into()),
                    }
                }
                None => Ok(None),
            },
        })();
        match fresh {
            Ok(Some(fresh)) => {
                let handle = self.objects.insert(fresh)?;
                Ok(self.objects.get(handle)?)
            }
            Ok(None) => {
                tracing::info!(object = ?object.id, "a cached object was destroyed by another process");
                self.objects.remove(object.id)?;
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(object = ?object.id, error = %e, "cannot revalidate a cached object; using the cached copy");
                self.objects.mark_fresh(object.id)?;
                Ok(Some(object))
            }
        }
    }

    /// The object's material, unsealed with the token key on first use and cached after.
    pub fn material(&self, access: &Access, object: &Object) -> Result<KeyMaterial> {
        if let Some(material) = object.cached_material()? {
            return Ok(material);
        }
        if let Some(super::object::Sealed::Remote(reference)) = &object.sealed {
            let material = self.remote_material(object, reference)?;
            *object.material.write()? = Some(material.clone());
            return Ok(material);
        }
        let token_key = access.login.token_key().ok_or(Rv::USER_NOT_LOGGED_IN)?;
        let material = keystore::unseal(object, &token_key)?;
        *object.material.write()? = Some(material.clone());
        Ok(material)
    }

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
        let new_key = super::import::import_key(class, key_type, template)?;
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
        if let (true, Some(key_id), Some(super::object::Sealed::Remote(reference))) =
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
                super::lifecycle::is_lifecycle_attribute(a.kind)
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
            if rules.contains(Rules::SO_ONLY) && wanted && access.login.kind() != LoginKind::So {
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

    /// Writes a token object's new attributes. The halves of a pair share label and `CKA_ID`
    /// (one row, one indexed label), so those two follow on the other half too.
    fn persist_attributes(
        &self,
        object: &Object,
        row: Uuid,
        half: Half,
        attrs: AttrMap,
    ) -> Result<()> {
        if half == Half::Standalone {
            let metadata = super::plain_objects::plain_metadata(&attrs);
            let value = attrs.get(CKA_VALUE).unwrap_or_default();
            let stored = match (
                attrs.flag(CKA_PRIVATE),
                self.login_of(object.token)?.token_key(),
            ) {
                (false, _) => value.to_vec(),
                (true, Some(token_key)) => keystore::seal_secret(&token_key, row, value)?,
                (true, None) => Err(Rv::USER_NOT_LOGGED_IN)?,
            };
            if !self.storage.update_object(row, &metadata, &stored)? {
                Err(Rv::OBJECT_HANDLE_INVALID)?
            }
            self.objects.insert(object.with_attrs(attrs)?)?;
            return Ok(());
        }
        if half == Half::Secret {
            let stored = self
                .storage
                .get_sym_key(row)?
                .ok_or(Rv::OBJECT_HANDLE_INVALID)?;
            let mut metadata = keystore::row_metadata(&[(Half::Secret, &attrs)]);
            keystore::keep_row_extras(&mut metadata, &stored.metadata);
            // The expiration (CKA_END_DATE) changes only through the lifecycle rules.
            if !self.storage.update_key_attributes(
                KeyTable::Sym,
                row,
                &metadata,
                stored.expiration,
                None,
            )? {
                Err(Rv::OBJECT_HANDLE_INVALID)?
            }
            drop(stored);
            self.objects.insert(object.with_attrs(attrs)?)?;
            return Ok(());
        }
        let stored = self
            .storage
            .get_asym_key(row)?
            .ok_or(Rv::OBJECT_HANDLE_INVALID)?;
        let mut halves: Vec<(Half, AttrMap)> = Vec::new();
        for other in keystore::objects_from_asym_row(&stored)? {
            let ObjectId::Token {
                half: other_half, ..
            } = other.id
            else {
                continue;
            };
            if other_half == half {
                halves.push((half, attrs.clone()));
            } else {
                let mut other_attrs = other.attrs.clone();
                for shared in [CKA_LABEL, CKA_ID] {
                    if let Some(value) = attrs.get(shared) {
                        other_attrs.set(shared, value.to_vec());
                    }
                }
                halves.push((other_half, other_attrs));
            }
        }
        let refs: Vec<(Half, &AttrMap)> = halves.iter().map(|(h, a)| (*h, a)).collect();
        let mut metadata = keystore::row_metadata(&refs);
        keystore::keep_row_extras(&mut metadata, &stored.metadata);
        // The expiration (CKA_END_DATE) changes only through the lifecycle rules.
        if !self.storage.update_key_attributes(
            KeyTable::Asym,
            row,
            &metadata,
            stored.expiration,
            None,
        )? {
            Err(Rv::OBJECT_HANDLE_INVALID)?
        }
        let updated = self
            .storage
            .get_asym_key(row)?
            .ok_or(Rv::OBJECT_HANDLE_INVALID)?;
        for fresh in keystore::objects_from_asym_row(&updated)? {
            self.objects.insert(fresh)?;
        }
        Ok(())
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

    /// Every visible object matching `template`: token objects through indexed SQL, session
    /// objects from memory.
    pub fn find(&self, access: &Access, template: &[Attribute]) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let class = template_ulong(template, CKA_CLASS)?;
        let key_type = template_ulong(template, CKA_KEY_TYPE)?;
        let token_wanted = template_bool(template, CKA_TOKEN)?;
        let mut found = Vec::new();
        if token_wanted != Some(false) {
            let mut filter = KeyFilter {
                provider_config_id: access.token,
                ..KeyFilter::default()
            };
            if let Some(label) = find_in_template(template, CKA_LABEL)? {
                filter.label = Some(String::from_utf8_lossy(label).into_owned());
            }
            if let Some(id) = find_in_template(template, CKA_ID)? {
                filter.ck_id = Some(hex::encode(id));
            }
            // Active, Inactive and Compromised are what the column says; Expired may also be an
            // Active row whose expiration passed, so that one is filtered on the rows returned.
            if let Some(status) = template_ulong(template, crate::vendor::CKA_SQLHSM_KEY_STATUS)? {
                filter.key_status = i32::try_from(status).ok().filter(|s| (1..=3).contains(s));
            }
            if let Some(key_id) = find_in_template(template, crate::vendor::CKA_SQLHSM_KEY_ID)? {
                filter.key_id = Some(String::from_utf8_lossy(key_id).into_owned());
            }
            let want_asym = matches!(class, None | Some(CKO_PUBLIC_KEY) | Some(CKO_PRIVATE_KEY));
            let want_sym = matches!(class, None | Some(CKO_SECRET_KEY));
            let mut candidates: Vec<Object> = Vec::new();
            if want_asym {
                let mut asym_filter = filter.clone();
                if let Some(key_type) = key_type {
                    asym_filter.key_algorithms = Some(KeyAlgorithm::codes_for_key_type(key_type));
                }
                let skip = asym_filter
                    .key_algorithms
                    .as_ref()
                    .is_some_and(Vec::is_empty);
                if !skip {
                    for row in self.storage.find_asym_keys(&asym_filter)? {
                        match keystore::objects_from_asym_row(&row) {
                            Ok(objects) => candidates.extend(objects),
                            Err(e) => {
                                tracing::error!(key_id = %row.key_id, error = %e, "skipping an unreadable asym_key row")
                            }
                        }
                    }
                }
            }
            if want_sym && !matches!(key_type, Some(CKK_RSA | CKK_EC | CKK_EC_EDWARDS)) {
                for row in self.storage.find_sym_keys(&filter)? {
                    match keystore::object_from_sym_row(&row) {
                        Ok(Some(object)) => candidates.push(object),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::error!(key_id = %row.key_id, error = %e, "skipping an unreadable sym_key row")
                        }
                    }
                }
            }
            let want_plain = matches!(class, None | Some(CKO_DATA) | Some(CKO_CERTIFICATE))
                && key_type.is_none();
            if want_plain {
                let class = class.and_then(|c| i64::try_from(c).ok());
                let token_key = access.login.token_key();
                for row in self.storage.find_objects(&filter, class)? {
                    match super::plain_objects::object_from_row(&row, token_key.as_deref()) {
                        Ok(Some(object)) => candidates.push(object),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::error!(row = %row.id, error = %e, "skipping an unreadable p11_object row")
                        }
                    }
                }
            }
            for object in candidates {
                if access.can_see(&object) && object.attrs.matches(template) {
                    found.push(self.objects.insert(object)?);
                }
            }
        }
        if token_wanted != Some(true) {
            let mut session_objects = self.objects.session_objects()?;
            session_objects.sort_by_key(|(h, _)| *h);
            for (handle, object) in session_objects {
                if access.can_see(&object) && object.attrs.matches(template) {
                    found.push(handle);
                }
            }
        }
        Ok(found)
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

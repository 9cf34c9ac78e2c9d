//! Objects through the handle cache and the store: the object a handle names (re-read when
//! another process may have changed it), its material (unsealed on first use), the search
//! behind `C_FindObjectsInit`, and writing an object's changed attributes back. The object
//! functions themselves read in `api::object`.

use cryptoki_sys::*;
use uuid::Uuid;

use super::access::Access;
use super::algorithm::KeyStatus;
use super::attributes::AttrMap;
use super::keystore;
use super::module::Module;
use super::object::{Half, Object, ObjectId, ObjectRef};
use super::template::{find_in_template, template_bool, template_ulong};
use crate::error::{Result, Rv};
use crate::key_algorithm;
use crate::mechanism::KeyMaterial;
use crate::storage::{FoundRow, KeyFilter, KeyRow, KeyTable, Search};
use crate::types::Attribute;

impl Module {
    /// The object a handle names, if this session may see it.
    pub fn visible_object(
        &self,
        access: &Access,
        handle: CK_OBJECT_HANDLE,
        invalid: Rv,
    ) -> Result<ObjectRef> {
        let object = self.current_object(handle, invalid)?;
        if !access.can_see(&object) {
            Err(invalid)?
        }
        Ok(object)
    }

    /// The object a handle names as the store now has it, as far as the coherence bound goes:
    /// the cached copy, revalidated when the store has changed, or read again when the cache
    /// evicted it; `invalid` when there is none.
    pub(super) fn current_object(
        &self,
        handle: CK_OBJECT_HANDLE,
        invalid: Rv,
    ) -> Result<ObjectRef> {
        self.check_coherence();
        let (object, stale) = match self.objects.lookup(handle)? {
            Some(cached) => cached,
            None => (self.reload(handle)?.ok_or(invalid)?, false),
        };
        if stale {
            return self.revalidate(object)?.ok_or_else(|| invalid.into());
        }
        Ok(object)
    }

    /// A token object the cache evicted, read again from the store by its id (one query by
    /// primary key) and cached again under the same handle; `None` when the handle names
    /// nothing (never did, or the object is gone: then the handle is forgotten). Its material is
    /// unsealed again when it is needed.
    fn reload(&self, handle: CK_OBJECT_HANDLE) -> Result<Option<ObjectRef>> {
        let Some(id) = self.objects.token_id(handle)? else {
            return Ok(None);
        };
        match self.read_token_object(id) {
            Ok(Some(fresh)) => Ok(Some(self.objects.cache(fresh)?.1)),
            Ok(None) => {
                self.objects.remove(id)?;
                Ok(None)
            }
            // A private data object with nobody logged in: invisible, as it would be cached.
            Err(e) if e.rv() == Rv::USER_NOT_LOGGED_IN => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Re-reads a cached token object that another process may have changed: the fresh copy
    /// replaces it (keeping unsealed material if the sealed bytes are the same), a vanished one
    /// leaves the handle table (`None`). If the store is unreachable the cached copy is used.
    pub(super) fn revalidate(&self, object: ObjectRef) -> Result<Option<ObjectRef>> {
        if !object.is_token() {
            return Ok(Some(object));
        }
        let fresh = self.read_token_object(object.id);
        match fresh {
            Ok(Some(fresh)) => Ok(Some(self.objects.cache(fresh)?.1)),
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

    /// A token object as its row in the store says now (`None`: the row is gone). A private
    /// data object with nobody logged in on its token is `USER_NOT_LOGGED_IN`.
    fn read_token_object(&self, id: ObjectId) -> Result<Option<Object>> {
        let ObjectId::Token { row, half } = id else {
            return Ok(None);
        };
        match half {
            Half::Public | Half::Private => Ok(match self.storage.get_asym_key(row)? {
                Some(stored) => keystore::objects_from_asym_row(&stored)?
                    .into_iter()
                    .find(|o| o.id == id),
                None => None,
            }),
            Half::Secret => match self.storage.get_sym_key(row)? {
                Some(stored) => keystore::object_from_sym_row(&stored),
                None => Ok(None),
            },
            Half::Standalone => match self.storage.get_object(row)? {
                Some(stored) => {
                    let token_key = self.login_of(stored.provider_config_id)?.token_key();
                    match super::plain_objects::object_from_row(&stored, token_key.as_deref())? {
                        Some(fresh) => Ok(Some(fresh)),
                        // Private and nobody logged in: it is invisible now; check again later.
                        None => Err(Rv::USER_NOT_LOGGED_IN.into()),
                    }
                }
                None => Ok(None),
            },
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

    /// Writes a token object's new attributes. The halves of a pair share label and `CKA_ID`
    /// (one row, one indexed label), so those two follow on the other half too.
    pub fn persist_attributes(
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
                filter.key_status = i32::try_from(status)
                    .ok()
                    .and_then(KeyStatus::from_code)
                    .filter(|s| *s != KeyStatus::Expired);
            }
            if let Some(key_id) = find_in_template(template, crate::vendor::CKA_SQLHSM_KEY_ID)? {
                filter.key_id = Some(String::from_utf8_lossy(key_id).into_owned());
            }
            let want_asym = matches!(class, None | Some(CKO_PUBLIC_KEY) | Some(CKO_PRIVATE_KEY));
            let want_sym = matches!(class, None | Some(CKO_SECRET_KEY));
            // Rows arrive one at a time and only handles stay: a search over a million rows holds
            // neither the rows nor their objects. The first matches (a quarter of the cache
            // budget) are cached, since they are usually used next; beyond that a search only
            // registers handles, so listing everything does not flush the cache.
            let cache_first = (self.config.cache.max_objects / 4).max(1);
            let mut failure: Option<crate::error::Error> = None;
            let keep = |object: Object, found: &mut Vec<CK_OBJECT_HANDLE>| -> Result<()> {
                if !access.can_see(&object) || !object.attrs.matches(template) {
                    return Ok(());
                }
                let handle = if found.len() < cache_first || self.objects.is_cached(object.id)? {
                    self.objects.insert(object)?
                } else {
                    self.objects.register(object.id)?
                };
                found.push(handle);
                Ok(())
            };
            let mut record = |outcome: Result<()>| {
                if let Err(e) = outcome {
                    failure.get_or_insert(e);
                }
            };
            let mut search = Search {
                filter,
                asym: want_asym,
                sym: want_sym
                    && !matches!(
                        key_type,
                        Some(CKK_RSA | CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY)
                    ),
                objects: matches!(class, None | Some(CKO_DATA) | Some(CKO_CERTIFICATE))
                    && key_type.is_none(),
                object_class: class.and_then(|c| i64::try_from(c).ok()),
            };
            if let Some(key_type) = key_type {
                search.filter.key_algorithms = Some(key_algorithm::codes_for_key_type(key_type));
            }
            let token_key = access.login.token_key();
            // One statement for every table: on PostgreSQL, one round trip per search.
            self.storage.visit_rows(&search, &mut |row| match row {
                FoundRow::Key(KeyRow::Asym(row)) => match keystore::objects_from_asym_row(&row) {
                    Ok(objects) => {
                        for object in objects {
                            record(keep(object, &mut found));
                        }
                    }
                    Err(e) => {
                        tracing::error!(key_id = %row.key_id, error = %e, "skipping an unreadable asym_key row")
                    }
                },
                FoundRow::Key(KeyRow::Sym(row)) => match keystore::object_from_sym_row(&row) {
                    Ok(Some(object)) => record(keep(object, &mut found)),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(key_id = %row.key_id, error = %e, "skipping an unreadable sym_key row")
                    }
                },
                FoundRow::Object(row) => {
                    match super::plain_objects::object_from_row(&row, token_key.as_deref()) {
                        Ok(Some(object)) => record(keep(object, &mut found)),
                        Ok(None) => {}
                        Err(e) => {
                            tracing::error!(row = %row.id, error = %e, "skipping an unreadable p11_object row")
                        }
                    }
                }
            })?;
            if let Some(e) = failure {
                return Err(e);
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
}

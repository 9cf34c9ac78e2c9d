//! Object functions of the module (PKCS#11 3.0 §5.7): create, find, read and change attributes,
//! destroy; and the storing of new keys shared with key generation.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveDate, Utc};
use cryptoki_sys::*;
use uuid::Uuid;

use super::algorithm::{KeyMode, KeyStatus};
use super::attributes::{
    self, AttrMap, DERIVED, ONLY_TO_FALSE, ONLY_TO_TRUE, READ_ONLY, SECRET, SO_ONLY, TOKEN_SET,
};
use super::keystore;
use super::module::{Login, Module};
use super::object::{
    self, find_in_template, template_bool, template_ulong, Half, Object, ObjectId, ObjectRef,
    Origin,
};
use super::session::{FindState, LoginKind};
use super::token::TokenRecord;
use crate::api::object::AttributeRequest;
use crate::crypto::keys::{PrivateKey, PublicKey, RsaPrivateComponents};
use crate::error::{Result, Rv, StorageError};
use crate::key_algorithm;
use crate::mechanism::KeyMaterial;
use crate::provider::{keys as remote_keys, OnDestroy, RemoteRef};
use crate::storage::{AsymKeyRow, KeyEvent, KeyFilter, KeyTable, NewKeyRow, SymKeyRow};

pub use super::rotation::{Rotation, RotationPlan};
use crate::types::Attribute;

/// What a session may do, read once per call.
pub struct Access {
    pub token: Uuid,
    pub read_write: bool,
    pub login: Login,
}

impl Access {
    pub fn is_user(&self) -> bool {
        self.login.kind() == LoginKind::User
    }

    /// Private objects are invisible until the user logs in.
    pub fn can_see(&self, object: &Object) -> bool {
        object.token == self.token && (!object.is_private() || self.is_user())
    }

    /// The template of a new object with sqlhsm's `CKA_PRIVATE` default applied (PKCS#11 3.0
    /// §4.4 leaves the default to the token): a session object made by a session not logged in
    /// as the user is not private, since such a session could neither make nor see a private
    /// one; so an import without `CKA_PRIVATE` works there, as Kryoptic and pkcs11-provider
    /// expect. Every other object keeps its class's default (private for private and secret
    /// keys and data objects): a token object in particular, so leaving `CKA_PRIVATE` out never
    /// lets a session without login store a token object. Other defaults (`CKA_SENSITIVE`
    /// true, …) do not depend on the login.
    pub fn with_private_default<'a>(
        &self,
        template: &'a [Attribute],
    ) -> Result<std::borrow::Cow<'a, [Attribute]>> {
        let applies = !self.is_user()
            && template_bool(template, CKA_TOKEN)? != Some(true)
            && find_in_template(template, CKA_PRIVATE)?.is_none();
        if !applies {
            return Ok(std::borrow::Cow::Borrowed(template));
        }
        let mut completed = template.to_vec();
        completed.push(Attribute::from_bool(CKA_PRIVATE, false));
        Ok(std::borrow::Cow::Owned(completed))
    }
}

/// A new key ready to be stored: its halves' attributes and material.
pub enum NewKey {
    Pair {
        public: Option<AttrMap>,
        private: Option<AttrMap>,
        public_key: Arc<PublicKey>,
        private_key: Option<Arc<PrivateKey>>,
    },
    Secret {
        attrs: AttrMap,
        value: zeroize::Zeroizing<Vec<u8>>,
    },
    /// A pair generated in the token's remote module (key mode REMOTE); the private half is a
    /// token object.
    RemotePair {
        public: Option<AttrMap>,
        private: AttrMap,
        public_key: Arc<PublicKey>,
        remote: RemoteRef,
    },
    /// A secret token key made in the token's remote module (generated, unwrapped, derived).
    RemoteSecret { attrs: AttrMap, remote: RemoteRef },
}

/// Where a new row's private material comes from.
enum PrivateSource<'a> {
    None,
    /// Sealed here under the token key (absent when nobody is logged in).
    Local(&'a PrivateKey, Option<&'a super::token::TokenKey>),
    Remote(&'a RemoteRef),
}

/// Where a new secret key row's material comes from.
enum SecretSource<'a> {
    Local(&'a [u8], &'a super::token::TokenKey),
    Remote(&'a RemoteRef),
}

/// The mode of a row whose material is sealed here: PROVIDER_ROOT_KEY when the token key is
/// itself protected by the provider's root key.
fn sealed_mode(record: &TokenRecord) -> KeyMode {
    match record.provider.root_key() {
        Some(_) => KeyMode::ProviderRootKey,
        None => KeyMode::Local,
    }
}

/// A REMOTE key is sensitive and non-extractable whatever the template said: its material
/// cannot leave the remote module, and the attributes must not claim otherwise.
fn mark_remote(attrs: &mut AttrMap) {
    attrs.set_bool(CKA_SENSITIVE, true);
    attrs.set_bool(CKA_EXTRACTABLE, false);
    attrs.set_bool(CKA_COPYABLE, false);
}

fn label_of(attrs: &AttrMap) -> String {
    super::remote::remote_label(attrs.get(CKA_LABEL))
}

fn required(template: &[Attribute], kind: CK_ATTRIBUTE_TYPE) -> Result<&[u8]> {
    find_in_template(template, kind)?.ok_or_else(|| Rv::TEMPLATE_INCOMPLETE.into())
}

/// `CKA_END_DATE` (YYYYMMDD) as the `expiration` column: the end of that day, UTC.
pub fn expiration_of(attrs: &AttrMap) -> Option<DateTime<Utc>> {
    end_date_expiration(attrs.get(CKA_END_DATE)?)
}

/// A `CKA_END_DATE` value (YYYYMMDD) as an expiration: the end of that day, UTC; `None` for an
/// empty or unreadable date.
pub fn end_date_expiration(value: &[u8]) -> Option<DateTime<Utc>> {
    let date = std::str::from_utf8(value).ok()?;
    let day = NaiveDate::parse_from_str(date, "%Y%m%d").ok()?;
    Some(day.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc())
}

impl Module {
    pub fn access(&self, session: CK_SESSION_HANDLE) -> Result<Access> {
        let (_, token, read_write) = self.session_basics(session)?;
        let login = self.login_of(token)?;
        Ok(Access {
            token,
            read_write,
            login,
        })
    }

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

    /// Checks the rules for creating a key with these storage attributes; `CKA_TRUSTED` only
    /// the security officer may set to true (PKCS#11 3.0 §4.9).
    fn check_create(
        &self,
        access: &Access,
        token_object: bool,
        private: bool,
        trusted: bool,
    ) -> Result<()> {
        if trusted && access.login.kind() != LoginKind::So {
            Err(Rv::ATTRIBUTE_READ_ONLY)?
        }
        if token_object && !access.read_write {
            Err(Rv::SESSION_READ_ONLY)?
        }
        if private && !access.is_user() {
            Err(Rv::USER_NOT_LOGGED_IN)?
        }
        Ok(())
    }

    /// [`Module::check_create`] for a key's attributes.
    fn check_create_key(&self, access: &Access, attrs: &AttrMap) -> Result<()> {
        self.check_create(
            access,
            attrs.flag(CKA_TOKEN),
            attrs.flag(CKA_PRIVATE),
            attrs.flag(CKA_TRUSTED),
        )
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
        let new_key = match class {
            CKO_PUBLIC_KEY => import_public(template, key_type)?,
            CKO_PRIVATE_KEY => import_private(template, key_type)?,
            CKO_SECRET_KEY => import_secret(template, key_type)?,
            _ => Err(Rv::ATTRIBUTE_VALUE_INVALID)?,
        };
        let handles = self.store_new_key(session, &access, new_key)?;
        handles
            .into_iter()
            .next()
            .ok_or_else(|| Rv::GENERAL_ERROR.into())
    }

    /// Stores a new key (token halves in one row, session halves in memory) and returns the
    /// handles of the objects made, public half first.
    pub fn store_new_key(
        &self,
        session: CK_SESSION_HANDLE,
        access: &Access,
        key: NewKey,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        self.store_key(session, access, key, None)
    }

    /// [`Module::store_new_key`], the new key replacing `rotation`'s key when given (both rows
    /// change in one transaction).
    pub fn store_key(
        &self,
        session: CK_SESSION_HANDLE,
        access: &Access,
        key: NewKey,
        rotation: Option<&Rotation>,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let token_only = |token_object: bool| -> Result<()> {
            if rotation.is_some() && !token_object {
                Err(Rv::TEMPLATE_INCONSISTENT)? // only token keys have a lifecycle to hand over
            }
            Ok(())
        };
        let (public, private, public_key, private_key, remote) = match key {
            NewKey::Pair {
                public,
                private,
                public_key,
                private_key,
            } => (public, private, public_key, private_key, None),
            NewKey::RemotePair {
                public,
                private,
                public_key,
                remote,
            } => (public, Some(private), public_key, None, Some(remote)),
            NewKey::Secret { attrs, value } => {
                return self.store_secret(session, access, attrs, value, rotation)
            }
            NewKey::RemoteSecret {
                mut attrs,
                remote: reference,
            } => {
                self.check_create_key(access, &attrs)?;
                mark_remote(&mut attrs);
                let (row, record) = self.token_row(access.token)?;
                let remote = self
                    .key_holder_in(&row, &record)?
                    .ok_or(Rv::TEMPLATE_INCONSISTENT)?;
                let handle = self
                    .insert_remote_secret(access, &record, attrs, &remote, &reference, rotation)?;
                return Ok(vec![handle]);
            }
        };
        for attrs in public.iter().chain(private.iter()) {
            self.check_create_key(access, attrs)?;
        }
        let mut token_halves = Vec::new();
        let mut session_halves = Vec::new();
        for (half, attrs) in [(Half::Public, public), (Half::Private, private)] {
            let Some(attrs) = attrs else { continue };
            if attrs.flag(CKA_TOKEN) {
                token_halves.push((half, attrs));
            } else {
                session_halves.push((half, attrs));
            }
        }
        token_only(session_halves.is_empty())?;
        let mut handles: Vec<(Half, CK_OBJECT_HANDLE)> = Vec::new();
        if !token_halves.is_empty() {
            let token_key = access.login.token_key();
            let (row, record) = self.token_row(access.token)?;
            let private_in_row = token_halves.iter().any(|(h, _)| *h == Half::Private);
            let holder = match private_in_row {
                true => self.key_holder_in(&row, &record)?,
                false => None,
            };
            // A REMOTE token keeps every private token key in its remote module: one
            // made or received here goes there, and only the reference is stored.
            let imported = match (&holder, private_key.as_deref()) {
                (Some(holder), Some(local)) if remote.is_none() => {
                    let label = token_halves
                        .iter()
                        .find(|(h, _)| *h == Half::Private)
                        .map(|(_, a)| label_of(a))
                        .unwrap_or_default();
                    Some(remote_keys::import_private(holder, local, &label)?)
                }
                _ => None,
            };
            let reference = remote.as_ref().or(imported.as_ref());
            if reference.is_some() {
                for (half, attrs) in token_halves.iter_mut() {
                    if *half == Half::Private {
                        mark_remote(attrs);
                    }
                }
            }
            let source = match (reference, private_key.as_deref()) {
                (Some(reference), _) => PrivateSource::Remote(reference),
                (None, Some(local)) => PrivateSource::Local(local, token_key.as_deref()),
                (None, None) => PrivateSource::None,
            };
            let stored = self.insert_asym_row(
                access,
                &record,
                &token_halves,
                &public_key,
                source,
                rotation,
            );
            match stored {
                Ok(stored) => handles.extend(stored),
                Err(e) => {
                    if let (Some(reference), Some(remote)) = (reference, &holder) {
                        // Nothing refers to the remote object: do not leave it behind.
                        let _ =
                            remote_keys::retire(remote, reference, OnDestroy::Destroy, "unused");
                    }
                    return Err(e);
                }
            }
        }
        for (half, attrs) in session_halves {
            let material = match half {
                Half::Public => KeyMaterial::Public(public_key.clone()),
                _ => KeyMaterial::Private(private_key.clone().ok_or(Rv::GENERAL_ERROR)?),
            };
            handles.push((
                half,
                self.insert_session_object(session, access.token, attrs, material)?,
            ));
        }
        handles.sort_by_key(|(half, _)| *half != Half::Public);
        Ok(handles.into_iter().map(|(_, h)| h).collect())
    }

    /// The secret-key part of [`Module::store_key`].
    fn store_secret(
        &self,
        session: CK_SESSION_HANDLE,
        access: &Access,
        mut attrs: AttrMap,
        value: zeroize::Zeroizing<Vec<u8>>,
        rotation: Option<&Rotation>,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        self.check_create_key(access, &attrs)?;
        attrs.set_ulong(CKA_VALUE_LEN, value.len() as CK_ULONG);
        super::keymgmt::apply_check_value(&mut attrs, &value)?;
        if rotation.is_some() && !attrs.flag(CKA_TOKEN) {
            Err(Rv::TEMPLATE_INCONSISTENT)? // only token keys have a lifecycle to hand over
        }
        if !attrs.flag(CKA_TOKEN) {
            let material = KeyMaterial::Secret(Arc::new(value));
            return Ok(vec![self.insert_session_object(
                session,
                access.token,
                attrs,
                material,
            )?]);
        }
        let (row, record) = self.token_row(access.token)?;
        if let Some(remote) = self.key_holder_in(&row, &record)? {
            // A REMOTE token keeps its secret token keys in the remote module.
            let key_type = attrs.ulong(CKA_KEY_TYPE).unwrap_or(CKK_GENERIC_SECRET);
            let reference =
                remote_keys::import_secret(&remote, key_type, &value, &label_of(&attrs))?;
            drop(value);
            mark_remote(&mut attrs);
            let stored =
                self.insert_remote_secret(access, &record, attrs, &remote, &reference, rotation);
            return match stored {
                Ok(handle) => Ok(vec![handle]),
                Err(e) => {
                    let _ = remote_keys::retire(&remote, &reference, OnDestroy::Destroy, "unused");
                    Err(e)
                }
            };
        }
        let token_key = access.login.token_key().ok_or(Rv::USER_NOT_LOGGED_IN)?;
        Ok(vec![self.insert_sym_row(
            access,
            &record,
            attrs,
            SecretSource::Local(&value, &token_key),
            rotation,
        )?])
    }

    /// Stores the row of a secret key held by the remote module; its length and check value
    /// are read from there.
    fn insert_remote_secret(
        &self,
        access: &Access,
        record: &TokenRecord,
        mut attrs: AttrMap,
        remote: &crate::provider::Remote,
        reference: &RemoteRef,
        rotation: Option<&Rotation>,
    ) -> Result<CK_OBJECT_HANDLE> {
        let (len, check_value) = remote_keys::secret_facts(remote, reference)?;
        attrs.set_ulong(CKA_VALUE_LEN, len as CK_ULONG);
        if let (Some(check), Some(CKK_AES)) = (check_value, attrs.ulong(CKA_KEY_TYPE)) {
            attrs.set(CKA_CHECK_VALUE, check);
        }
        self.insert_sym_row(
            access,
            record,
            attrs,
            SecretSource::Remote(reference),
            rotation,
        )
    }

    fn insert_session_object(
        &self,
        session: CK_SESSION_HANDLE,
        token: Uuid,
        mut attrs: AttrMap,
        material: KeyMaterial,
    ) -> Result<CK_OBJECT_HANDLE> {
        let id = self.next_session_object_id();
        attrs.set(
            CKA_UNIQUE_ID,
            format!("session-{}-{id}", std::process::id()).into_bytes(),
        );
        self.objects.insert(Object {
            id: ObjectId::Session(id),
            token,
            owner_session: Some(session),
            attrs,
            sealed: None,
            material: RwLock::new(Some(material)),
        })
    }

    /// The storage half of storing a new key: the row and its creation event in one
    /// transaction, or, for a rotation, the successor, the predecessor's change and their
    /// events in one transaction. Either way no key is stored without its history.
    fn store_row(
        &self,
        row: NewKeyRow<'_>,
        token: Uuid,
        local: bool,
        rotation: Option<&RotationPlan<'_>>,
    ) -> std::result::Result<(), StorageError> {
        let (key_id, status, expiration) = match row {
            NewKeyRow::Asym(r) => (&r.key_id, r.key_status, r.expiration),
            NewKeyRow::Sym(r) => (&r.key_id, r.key_status, r.expiration),
        };
        match rotation {
            None => {
                let what = if local { "generated" } else { "imported" };
                let state = super::lifecycle::state_json(status, expiration);
                let created = self.history_event(key_id, token, what, None, Some(state));
                self.storage.insert_key(row, &created)
            }
            Some(r) => self.rotate_into(r, row, key_id, status),
        }
    }

    /// After a rotation's rows are stored: a REMOTE predecessor's object is marked and the
    /// cached objects of the replaced key and of its renamed certificates are refreshed.
    fn after_rotation(&self, access: &Access, key_id: &str, plan: &RotationPlan<'_>) -> Result<()> {
        let rotation = plan.rotation;
        tracing::info!(from = %rotation.key_id, to = %key_id, "key rotated");
        let token_key = access.login.token_key();
        for certificate in &plan.certificates {
            if let Some(row) = self.storage.get_object(certificate.id)? {
                if let Some(fresh) =
                    super::plain_objects::object_from_row(&row, token_key.as_deref())?
                {
                    self.objects.insert(fresh)?;
                }
            }
        }
        // A REMOTE predecessor stays usable (Inactive keys decrypt and verify); its remote
        // object is relabelled so the HSM shows it was rotated out.
        if let Some(reference) = &rotation.remote {
            self.retire_remote(access.token, &rotation.key_id, reference, "rotated");
        }
        self.reload_row(rotation.table, rotation.row)
    }

    /// The storage half of a rotation: successor in, predecessor Inactive and linked, events,
    /// one transaction.
    fn rotate_into(
        &self,
        plan: &RotationPlan<'_>,
        successor: NewKeyRow<'_>,
        key_id: &str,
        status: KeyStatus,
    ) -> std::result::Result<(), StorageError> {
        let rotation = plan.rotation;
        let metadata = plan.linked_predecessor(key_id);
        let events = plan.events(key_id, status);
        match self.storage.rotate_key(
            successor,
            rotation.table,
            rotation.row,
            &metadata,
            &plan.certificates,
            &events,
        )? {
            true => Ok(()),
            false => Err(StorageError::Superseded(format!(
                "the key being rotated ({}) was destroyed or rotated meanwhile",
                rotation.key_id
            ))),
        }
    }

    /// Tries the readable `key_id` first and falls back to a generated one on conflict.
    fn with_key_id(
        &self,
        ck_id: &[u8],
        slug: &str,
        mut insert: impl FnMut(&str) -> std::result::Result<(), StorageError>,
    ) -> Result<()> {
        let (preferred, generated) = keystore::key_id_candidates(ck_id, slug);
        if let Some(preferred) = preferred {
            if !self.storage.key_id_exists(&preferred)? {
                match insert(&preferred) {
                    Ok(()) => return Ok(()),
                    Err(StorageError::Conflict(_)) => {}
                    Err(e) => Err(e)?,
                }
            }
        }
        Ok(insert(&generated)?)
    }

    fn insert_asym_row(
        &self,
        access: &Access,
        record: &TokenRecord,
        halves: &[(Half, AttrMap)],
        public_key: &Arc<PublicKey>,
        source: PrivateSource<'_>,
        rotation: Option<&Rotation>,
    ) -> Result<Vec<(Half, CK_OBJECT_HANDLE)>> {
        let algorithm = key_algorithm::of_public(public_key)?;
        if rotation.is_some_and(|r| r.table != KeyTable::Asym || r.key_algorithm != algorithm.code)
        {
            // A successor has its predecessor's algorithm.
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
        let row_id = Uuid::new_v4();
        let has_private = halves.iter().any(|(h, _)| *h == Half::Private);
        let (private_key_ctx, mode) = match (has_private, &source) {
            (true, PrivateSource::Local(private, token_key)) => {
                let token_key = token_key.ok_or(Rv::USER_NOT_LOGGED_IN)?;
                let pkcs8 = private.to_pkcs8_der()?;
                (
                    Some(keystore::seal_private(
                        token_key,
                        &record.token_key_id,
                        row_id,
                        &pkcs8,
                    )?),
                    sealed_mode(record),
                )
            }
            (true, PrivateSource::Remote(reference)) => (
                Some(keystore::remote_private_ctx(reference)),
                KeyMode::Remote,
            ),
            _ => (None, KeyMode::PublicKeyOnly),
        };
        let stored: Vec<(Half, AttrMap)> = halves.iter().map(|(h, a)| (*h, a.clone())).collect();
        let refs: Vec<(Half, &AttrMap)> = stored.iter().map(|(h, a)| (*h, a)).collect();
        let first = refs
            .iter()
            .find(|(h, _)| *h == Half::Private)
            .or(refs.first())
            .map(|(_, a)| *a);
        let ck_id = first
            .and_then(|a| a.get(CKA_ID))
            .unwrap_or_default()
            .to_vec();
        let expiration = first.and_then(expiration_of);
        let now = Utc::now();
        let mut row = AsymKeyRow {
            id: row_id,
            provider_config_id: access.token,
            key_id: String::new(),
            key_algorithm: algorithm.code()?,
            key_status: KeyStatus::Active,
            key_mode: mode as i32,
            expiration,
            public_key_ctx: Some(serde_json::json!({ "pem": public_key.to_spki_pem()? })),
            private_key_ctx,
            metadata: keystore::row_metadata(&refs),
            created_at: now,
            updated_at: now,
        };
        let slug = keystore::algorithm_slug(Some(algorithm));
        let local = first.is_some_and(|a| a.flag(CKA_LOCAL));
        if let Some(r) = rotation {
            r.link_successor(&mut row.metadata);
        }
        let plan = rotation
            .map(|r| self.plan_rotation(access, r, &row.metadata))
            .transpose()?;
        self.with_key_id(&ck_id, slug, |key_id| {
            row.key_id = key_id.to_string();
            self.store_row(NewKeyRow::Asym(&row), access.token, local, plan.as_ref())
        })?;
        tracing::info!(key_id = %row.key_id, algorithm = ?algorithm, "key pair stored");
        if let Some(plan) = &plan {
            self.after_rotation(access, &row.key_id, plan)?;
        }
        let mut handles = Vec::new();
        for object in keystore::objects_from_asym_row(&row)? {
            let ObjectId::Token { half, .. } = object.id else {
                continue;
            };
            if let (Half::Private, PrivateSource::Local(private, _)) = (half, &source) {
                // Cache the material we already hold instead of unsealing it on first use.
                let pkcs8 = private.to_pkcs8_der()?;
                *object.material.write()? = Some(KeyMaterial::Private(Arc::new(
                    PrivateKey::from_pkcs8_der(&pkcs8)?,
                )));
            }
            handles.push((half, self.objects.insert(object)?));
        }
        Ok(handles)
    }

    fn insert_sym_row(
        &self,
        access: &Access,
        record: &TokenRecord,
        attrs: AttrMap,
        source: SecretSource<'_>,
        rotation: Option<&Rotation>,
    ) -> Result<CK_OBJECT_HANDLE> {
        if rotation.is_some_and(|r| r.table != KeyTable::Sym) {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
        let row_id = Uuid::new_v4();
        let now = Utc::now();
        let key_type = attrs.ulong(CKA_KEY_TYPE).unwrap_or(CKK_GENERIC_SECRET);
        let ck_id = attrs.get(CKA_ID).unwrap_or_default().to_vec();
        let mut metadata = keystore::row_metadata(&[(Half::Secret, &attrs)]);
        let (key_value, mode) = match &source {
            SecretSource::Local(value, token_key) => (
                Some(keystore::seal_secret(token_key, row_id, value)?),
                sealed_mode(record),
            ),
            SecretSource::Remote(reference) => {
                if let Some(map) = metadata.as_object_mut() {
                    map.insert("remote".into(), serde_json::json!(reference));
                }
                (None, KeyMode::Remote)
            }
        };
        let mut row = SymKeyRow {
            id: row_id,
            provider_config_id: access.token,
            key_id: String::new(),
            key_status: KeyStatus::Active,
            key_mode: mode as i32,
            expiration: expiration_of(&attrs),
            key_value,
            metadata,
            created_at: now,
            updated_at: now,
        };
        let slug = keystore::algorithm_slug(key_algorithm::of_secret(
            key_type,
            attrs.ulong(CKA_VALUE_LEN),
        ));
        let local = attrs.flag(CKA_LOCAL);
        if let Some(r) = rotation {
            r.link_successor(&mut row.metadata);
        }
        let plan = rotation
            .map(|r| self.plan_rotation(access, r, &row.metadata))
            .transpose()?;
        self.with_key_id(&ck_id, slug, |key_id| {
            row.key_id = key_id.to_string();
            self.store_row(NewKeyRow::Sym(&row), access.token, local, plan.as_ref())
        })?;
        tracing::info!(key_id = %row.key_id, "secret key stored");
        if let Some(plan) = &plan {
            self.after_rotation(access, &row.key_id, plan)?;
        }
        let object = keystore::object_from_sym_row(&row)?.ok_or(Rv::GENERAL_ERROR)?;
        if let SecretSource::Local(value, _) = source {
            *object.material.write()? = Some(KeyMaterial::Secret(Arc::new(
                zeroize::Zeroizing::new(value.to_vec()),
            )));
        }
        self.objects.insert(object)
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
        let spec = attributes::spec(kind).ok_or(Rv::ATTRIBUTE_TYPE_INVALID)?;
        if !spec.has(SECRET) || !object::applies_to(&object.attrs, kind) {
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
        let class = object.class();
        let mut attrs = object.attrs.clone();
        for attr in template {
            let spec = attributes::spec(attr.kind).ok_or(Rv::ATTRIBUTE_TYPE_INVALID)?;
            if !object::applies_to(&object.attrs, attr.kind) {
                Err(Rv::ATTRIBUTE_TYPE_INVALID)?
            }
            attributes::validate_value(spec, &attr.value)?;
            // A data object's value is its content, which the spec lets an application change;
            // for keys and certificates CKA_VALUE is fixed at creation.
            let data_value = class == CKO_DATA && attr.kind == CKA_VALUE;
            let fixed =
                spec.has(READ_ONLY) || spec.has(TOKEN_SET) || spec.has(DERIVED) || spec.has(SECRET);
            if fixed && !data_value {
                if object.attrs.get(attr.kind) == Some(attr.value.as_slice()) {
                    continue; // setting a read-only attribute to its current value is harmless
                }
                Err(Rv::ATTRIBUTE_READ_ONLY)?
            }
            let current = object.attrs.flag(attr.kind);
            let wanted = attributes::decode_bool(&attr.value).unwrap_or(false);
            if spec.has(ONLY_TO_TRUE) && current && !wanted
                || spec.has(ONLY_TO_FALSE) && !current && wanted
            {
                Err(Rv::ATTRIBUTE_READ_ONLY)?
            }
            if spec.has(SO_ONLY) && wanted && access.login.kind() != LoginKind::So {
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
            let mut candidates: Vec<Object> = Vec::new();
            if want_asym {
                let mut asym_filter = filter.clone();
                if let Some(key_type) = key_type {
                    asym_filter.key_algorithms = Some(key_algorithm::codes_for_key_type(key_type));
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

fn import_public(template: &[Attribute], key_type: CK_KEY_TYPE) -> Result<NewKey> {
    let (public_key, consumed): (PublicKey, &[CK_ATTRIBUTE_TYPE]) = match key_type {
        CKK_RSA => (
            PublicKey::from_rsa_components(
                required(template, CKA_MODULUS)?,
                required(template, CKA_PUBLIC_EXPONENT)?,
            )?,
            &[CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_MODULUS_BITS],
        ),
        CKK_EC | CKK_EC_EDWARDS => {
            let curve = curve_of(template, key_type)?;
            (
                curve.public_from_point(required(template, CKA_EC_POINT)?)?,
                &[CKA_EC_PARAMS, CKA_EC_POINT],
            )
        }
        _ => Err(Rv::ATTRIBUTE_VALUE_INVALID)?,
    };
    let mut attrs = object::build_key_attrs(
        CKO_PUBLIC_KEY,
        key_type,
        template,
        consumed,
        Origin::Imported,
    )?;
    if let Some(bits) = template_ulong(template, CKA_MODULUS_BITS)? {
        if let crate::crypto::keys::PublicValues::Modulus { bits: actual, .. } =
            public_key.public_values()?
        {
            if CK_ULONG::from(actual) != bits {
                Err(Rv::TEMPLATE_INCONSISTENT)?
            }
        }
    }
    keystore::add_public_values(&mut attrs, &public_key, CKO_PUBLIC_KEY)?;
    Ok(NewKey::Pair {
        public: Some(attrs),
        private: None,
        public_key: Arc::new(public_key),
        private_key: None,
    })
}

/// The curve a template's `CKA_EC_PARAMS` names for a key of `key_type`: an Edwards curve for
/// an EC key is inconsistent, anything else that does not fit unsupported.
fn curve_of(
    template: &[Attribute],
    key_type: CK_KEY_TYPE,
) -> Result<&'static key_algorithm::KeyAlgorithm> {
    let params = required(template, CKA_EC_PARAMS)?;
    match key_algorithm::by_ec_params(params) {
        Ok(curve) if key_type == CKK_EC && curve.key_type == CKK_EC_EDWARDS => {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
        _ => key_algorithm::curve_for(key_type, params),
    }
}

fn optional_secret(
    template: &[Attribute],
    kind: CK_ATTRIBUTE_TYPE,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    Ok(find_in_template(template, kind)?.map(|v| zeroize::Zeroizing::new(v.to_vec())))
}

fn import_private(template: &[Attribute], key_type: CK_KEY_TYPE) -> Result<NewKey> {
    let (private_key, consumed): (PrivateKey, &[CK_ATTRIBUTE_TYPE]) = match key_type {
        CKK_RSA => {
            let components = RsaPrivateComponents {
                modulus: required(template, CKA_MODULUS)?.to_vec(),
                public_exponent: required(template, CKA_PUBLIC_EXPONENT)?.to_vec(),
                private_exponent: zeroize::Zeroizing::new(
                    required(template, CKA_PRIVATE_EXPONENT)?.to_vec(),
                ),
                prime_1: optional_secret(template, CKA_PRIME_1)?,
                prime_2: optional_secret(template, CKA_PRIME_2)?,
                exponent_1: optional_secret(template, CKA_EXPONENT_1)?,
                exponent_2: optional_secret(template, CKA_EXPONENT_2)?,
                coefficient: optional_secret(template, CKA_COEFFICIENT)?,
            };
            (
                PrivateKey::from_rsa_components(&components)?,
                &[
                    CKA_MODULUS,
                    CKA_PUBLIC_EXPONENT,
                    CKA_PRIVATE_EXPONENT,
                    CKA_PRIME_1,
                    CKA_PRIME_2,
                    CKA_EXPONENT_1,
                    CKA_EXPONENT_2,
                    CKA_COEFFICIENT,
                ],
            )
        }
        CKK_EC | CKK_EC_EDWARDS => {
            let curve = curve_of(template, key_type)?;
            (
                curve.private_from_value(required(template, CKA_VALUE)?)?,
                &[CKA_EC_PARAMS, CKA_VALUE, CKA_EC_POINT],
            )
        }
        _ => Err(Rv::ATTRIBUTE_VALUE_INVALID)?,
    };
    let public_key = private_key.public_key()?;
    let mut attrs = object::build_key_attrs(
        CKO_PRIVATE_KEY,
        key_type,
        template,
        consumed,
        Origin::Imported,
    )?;
    keystore::add_public_values(&mut attrs, &public_key, CKO_PRIVATE_KEY)?;
    Ok(NewKey::Pair {
        public: None,
        private: Some(attrs),
        public_key: Arc::new(public_key),
        private_key: Some(Arc::new(private_key)),
    })
}

fn import_secret(template: &[Attribute], key_type: CK_KEY_TYPE) -> Result<NewKey> {
    let value = zeroize::Zeroizing::new(required(template, CKA_VALUE)?.to_vec());
    match key_type {
        CKK_AES if matches!(value.len(), 16 | 24 | 32) => {}
        CKK_GENERIC_SECRET if !value.is_empty() => {}
        CKK_AES | CKK_GENERIC_SECRET => Err(Rv::ATTRIBUTE_VALUE_INVALID)?,
        _ => Err(Rv::ATTRIBUTE_VALUE_INVALID)?,
    }
    if let Some(len) = template_ulong(template, CKA_VALUE_LEN)? {
        if len != value.len() as CK_ULONG {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
    }
    let attrs = object::build_key_attrs(
        CKO_SECRET_KEY,
        key_type,
        template,
        &[CKA_VALUE, CKA_VALUE_LEN],
        Origin::Imported,
    )?;
    Ok(NewKey::Secret { attrs, value })
}

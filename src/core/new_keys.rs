//! Storing new keys, shared by every function that makes one (`C_CreateObject`,
//! `C_GenerateKey(Pair)`, `C_UnwrapKey`, `C_DeriveKey`, `C_CopyObject`, rotation): token halves in
//! one row with their creation event, or a rotation's rows in one transaction; session halves in
//! memory; material sealed under the token key or held by the token's remote module.

use std::sync::{Arc, RwLock};

use chrono::Utc;
use cryptoki_sys::*;
use uuid::Uuid;

use super::access::Access;
use super::algorithm::{KeyAlgorithm, KeyMode, KeyStatus};
use super::attributes::AttrMap;
use super::keystore;
use super::lifecycle::expiration_of;
use super::module::Module;
use super::object::{Half, Object, ObjectId};
use super::policy;
use super::rotation::{Rotation, RotationPlan};
use super::session::LoginKind;
use super::token::TokenRecord;
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::error::{Result, Rv, StorageError};
use crate::mechanism::KeyMaterial;
use crate::provider::{keys as remote_keys, OnDestroy, RemoteRef};
use crate::storage::{AsymKeyRow, KeyTable, NewKeyRow, SymKeyRow};

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

/// The first handle of what [`Module::store_new_key`] made (the public half of a pair).
pub fn first_handle(handles: Vec<CK_OBJECT_HANDLE>) -> Result<CK_OBJECT_HANDLE> {
    handles
        .into_iter()
        .next()
        .ok_or_else(|| Rv::GENERAL_ERROR.into())
}

impl Module {
    /// Checks the rules for creating a key with these attributes: what only the security
    /// officer may set to true (`CKA_TRUSTED`, PKCS#11 3.0 §4.9), a token object only in a
    /// read/write session, a private one only by the user.
    fn check_create_key(&self, access: &Access, attrs: &AttrMap) -> Result<()> {
        if policy::so_only_set(attrs) && access.login.kind() != LoginKind::So {
            Err(Rv::ATTRIBUTE_READ_ONLY)?
        }
        if attrs.flag(CKA_TOKEN) && !access.read_write {
            Err(Rv::SESSION_READ_ONLY)?
        }
        if attrs.flag(CKA_PRIVATE) && !access.is_user() {
            Err(Rv::USER_NOT_LOGGED_IN)?
        }
        Ok(())
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
        apply_check_value(&mut attrs, &value)?;
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
        status: i32,
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
        let info = public_key.public_info()?;
        let algorithm = KeyAlgorithm::of(&info);
        if rotation
            .is_some_and(|r| r.table != KeyTable::Asym || r.key_algorithm != Some(algorithm.code()))
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
            key_algorithm: algorithm.code(),
            key_status: KeyStatus::Active as i32,
            key_mode: mode as i32,
            expiration,
            public_key_ctx: Some(serde_json::json!({ "pem": public_key.to_spki_pem()? })),
            private_key_ctx,
            metadata: keystore::row_metadata(&refs),
            created_at: now,
            updated_at: now,
        };
        let slug = keystore::algorithm_slug(Some(algorithm), algorithm.key_type());
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
            key_status: KeyStatus::Active as i32,
            key_mode: mode as i32,
            expiration: expiration_of(&attrs),
            key_value,
            metadata,
            created_at: now,
            updated_at: now,
        };
        let slug = keystore::algorithm_slug(None, key_type);
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
}

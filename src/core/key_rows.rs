//! Writing a new key's row: the material sealed under the token key or a remote reference, the
//! readable `key_id`, and the row with its creation event in one transaction — or, for a
//! rotation, the successor, the predecessor's change and their events in one transaction. Either
//! way no key is stored without its history. What goes where is decided in `new_keys`.

use std::sync::Arc;

use chrono::Utc;
use cryptoki_sys::*;
use uuid::Uuid;

use super::access::Access;
use super::algorithm::{KeyMode, KeyStatus};
use super::attributes::AttrMap;
use super::keystore;
use super::lifecycle::expiration_of;
use super::module::Module;
use super::object::{Half, ObjectId};
use super::rotation::{Rotation, RotationPlan};
use super::token::{TokenKey, TokenRecord};
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::error::{Result, Rv, StorageError};
use crate::key_algorithm;
use crate::mechanism::KeyMaterial;
use crate::provider::RemoteRef;
use crate::storage::{AsymKeyRow, KeyTable, NewKeyRow, SymKeyRow};

/// Where a new row's private material comes from.
pub enum PrivateSource<'a> {
    None,
    /// Sealed here under the token key (absent when nobody is logged in).
    Local(&'a PrivateKey, Option<&'a TokenKey>),
    Remote(&'a RemoteRef),
}

/// Where a new secret key row's material comes from.
pub enum SecretSource<'a> {
    Local(&'a [u8], &'a TokenKey),
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

impl Module {
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

    pub(super) fn insert_asym_row(
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

    pub(super) fn insert_sym_row(
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
}

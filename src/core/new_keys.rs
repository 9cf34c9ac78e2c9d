//! Storing new keys, shared by every function that makes one (`C_CreateObject`,
//! `C_GenerateKey(Pair)`, `C_UnwrapKey`, `C_DeriveKey`, `C_CopyObject`, rotation): who may make
//! it, token halves in one row (written by `key_rows`), session halves in memory, material
//! sealed under the token key or held by the token's remote module.

use std::sync::{Arc, RwLock};

use cryptoki_sys::*;
use uuid::Uuid;

use super::access::Access;
use super::attributes::AttrMap;
use super::key_rows::{PrivateSource, SecretSource};
use super::module::Module;
use super::object::{Half, Object, ObjectId};
use super::policy;
use super::rotation::Rotation;
use super::session::LoginKind;
use super::token::TokenRecord;
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::error::{Result, Rv};
use crate::mechanism::KeyMaterial;
use crate::provider::{keys as remote_keys, OnDestroy, RemoteRef};

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
        self.check_key_size(public_key.facts()?)?;
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
}

//! The core's side of remote providers: which tokens hold their keys in another PKCS#11 module
//! (key mode REMOTE) or protect their token key with one (PROVIDER_ROOT_KEY), the material of
//! REMOTE keys, putting keys into the remote module, and retiring remote objects when their
//! rows are destroyed or rotated out. Faults of one token's remote stay with that token.

use std::sync::Arc;

use cryptoki::object::ObjectClass;
use cryptoki_sys::*;
use uuid::Uuid;

use super::module::Module;
use super::object::{Half, Object, ObjectId};
use super::token::{seal_token_key, PinOwner, TokenRecord};
use crate::crypto::keys::{Family, KeyFacts};
use crate::error::{Error, Result, Rv};
use crate::mechanism::KeyMaterial;
use crate::provider::root::{self, RootSecret};
use crate::provider::{keys, Pkcs11Provider, ProviderSpec, Remote, RemoteKey};
use crate::provider::{RemoteRef, RemoteUse};
use crate::storage::TokenRow;

impl Module {
    /// The remote module holding `token`'s keys, when the token is a REMOTE one.
    pub fn key_holder(&self, token: Uuid) -> Result<Option<Arc<Remote>>> {
        let (row, record) = self.token_row(token)?;
        self.key_holder_in(&row, &record)
    }

    /// [`Module::key_holder`] from a token record already read.
    pub(super) fn key_holder_in(
        &self,
        row: &TokenRow,
        record: &TokenRecord,
    ) -> Result<Option<Arc<Remote>>> {
        match &record.provider {
            ProviderSpec::Pkcs11(spec) if spec.use_for == RemoteUse::Keys => Ok(Some(
                self.providers.remote(row.id, &row.provider_name, spec)?,
            )),
            _ => Ok(None),
        }
    }

    fn remote_for(&self, token: Uuid) -> Result<Arc<Remote>> {
        if let Some(remote) = self.providers.cached(token) {
            return Ok(remote);
        }
        let (row, record) = self.token_row(token)?;
        match record.provider {
            ProviderSpec::Pkcs11(spec) => self.providers.remote(token, &row.provider_name, &spec),
            ProviderSpec::Local => Err(Error::Provider(format!(
                "token {token} has REMOTE keys but no pkcs11 provider"
            ))),
        }
    }

    /// The material of a REMOTE key: a handle on the remote object, sized from its attributes.
    pub(super) fn remote_material(
        &self,
        object: &Object,
        reference: &RemoteRef,
    ) -> Result<KeyMaterial> {
        let remote = self.remote_for(object.token)?;
        let (class, size) = match object.id {
            ObjectId::Token {
                half: Half::Secret, ..
            } => {
                let len = object.attrs.ulong(CKA_VALUE_LEN).unwrap_or(32);
                (
                    ObjectClass::SECRET_KEY,
                    KeyFacts {
                        family: Family::Secret,
                        bits: u32::try_from(len.saturating_mul(8)).unwrap_or(256),
                    },
                )
            }
            _ => (ObjectClass::PRIVATE_KEY, private_size(object)?),
        };
        Ok(KeyMaterial::External(Arc::new(RemoteKey {
            remote,
            class,
            id: reference.id_bytes()?,
            size,
        })))
    }

    /// The remote key behind `material`, for unwrap and derive.
    pub(crate) fn as_remote_key(material: &KeyMaterial) -> Option<&RemoteKey> {
        match material {
            KeyMaterial::External(key) => key.as_any().downcast_ref::<RemoteKey>(),
            _ => None,
        }
    }

    /// Retires the remote objects of a destroyed (`mark` "destroyed") or rotated-out
    /// ("rotated") REMOTE key, as the provider's `on_destroy` says. A failure is logged and
    /// recorded, never undoes the catalogue change: the operator finds the object by its label.
    /// Its `remote-retired` event is the only history event not written in the transaction of
    /// the change it records (see [`Module::record_outside_change`]).
    pub fn retire_remote(&self, token: Uuid, key_id: &str, reference: &RemoteRef, mark: &str) {
        let outcome = (|| -> Result<&'static str> {
            let remote = self.remote_for(token)?;
            let on_destroy = remote.spec.on_destroy;
            // A rotated-out key is still usable here (Inactive keys decrypt and verify), so its
            // remote object is only marked, whatever on_destroy says.
            let action = if mark == "destroyed" {
                on_destroy
            } else {
                crate::provider::OnDestroy::Keep
            };
            keys::retire(&remote, reference, action, mark)?;
            Ok(match action {
                crate::provider::OnDestroy::Destroy => "remote object destroyed",
                crate::provider::OnDestroy::Keep => "remote object kept and relabelled",
            })
        })();
        let detail = match &outcome {
            Ok(what) => serde_json::json!({ "remote": reference, "outcome": what }),
            Err(e) => {
                tracing::error!(%key_id, error = %e, "could not retire the remote key object");
                serde_json::json!({ "remote": reference, "outcome": format!("failed: {e}") })
            }
        };
        // The one event written apart from a change of the store: what it records happened in
        // the HSM, in transactions of its own that ours cannot include.
        self.record_outside_change(self.history_event(
            key_id,
            token,
            "remote-retired",
            Some(detail),
            None,
        ));
    }

    /// Retires the remote objects of every REMOTE key of `token`, before its keys are deleted
    /// (token re-initialisation or deletion), while the record still names the provider.
    pub fn retire_all_remote(&self, token: Uuid) -> Result<()> {
        let filter = crate::storage::KeyFilter {
            provider_config_id: token,
            ..Default::default()
        };
        let mut remote = Vec::new();
        for row in self.storage.find_asym_keys(&filter)? {
            if let Some(ctx) = &row.private_key_ctx {
                if let Some(reference) = super::keystore::remote_ref(ctx)? {
                    remote.push((row.key_id, reference));
                }
            }
        }
        for row in self.storage.find_sym_keys(&filter)? {
            if let Some(reference) = super::keystore::remote_ref(&row.metadata)? {
                remote.push((row.key_id, reference));
            }
        }
        for (key_id, reference) in &remote {
            self.retire_remote(token, key_id, reference, "destroyed");
        }
        Ok(())
    }

    /// The root secret of a PROVIDER_ROOT_KEY token, opened by its remote module.
    pub fn root_secret(&self, row: &TokenRow, record: &TokenRecord) -> Result<Option<RootSecret>> {
        let ProviderSpec::Pkcs11(spec) = &record.provider else {
            return Ok(None);
        };
        let Some(root_key) = &spec.root_key else {
            return Ok(None);
        };
        let remote = self.providers.remote(row.id, &row.provider_name, spec)?;
        root::open(&remote, root_key).map(Some)
    }

    /// Gives a freshly initialized token (SO PIN set, no user PIN, no keys) a `pkcs11`
    /// provider. For PROVIDER_ROOT_KEY a root key is made in the remote module and the SO's copy
    /// of the token key is re-sealed bound to it. The remote is reached first: a provider that
    /// does not work is refused rather than stored.
    pub fn attach_provider(
        &self,
        token: Uuid,
        so_pin: &[u8],
        mut spec: Pkcs11Provider,
    ) -> Result<()> {
        let (row, record) = self.token_row(token)?;
        if record.user.is_some() || record.provider != ProviderSpec::Local {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
        let token_key = self.verify_pin(token, PinOwner::So, so_pin)?;
        let remote = self.providers.remote(token, &row.provider_name, &spec)?;
        // Setting up is rare and an operator waits for it: a remote that fails transiently
        // (SoftHSM's store under another process's writes) gets two more tries.
        let mut checked = remote.check();
        for pause_ms in [100, 500] {
            if checked.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(pause_ms));
            checked = remote.check();
        }
        checked?;
        let mut so = None;
        if spec.use_for == RemoteUse::RootKey {
            let (root_key, secret) = root::create(&remote, &row.provider_name)?;
            spec.root_key = Some(root_key);
            so = Some(seal_token_key(
                &token_key,
                token,
                PinOwner::So,
                so_pin,
                record.so.kdf,
                Some(&secret),
            )?);
        }
        let provider = ProviderSpec::Pkcs11(Box::new(spec));
        self.update_record(token, &mut |r| {
            r.provider = provider.clone();
            if let Some(so) = &so {
                r.so = so.clone();
            }
            Ok(())
        })?;
        tracing::info!(token = %row.provider_name, "provider attached");
        Ok(())
    }
}

/// The label a REMOTE key gets in the remote module: its sqlhsm label, or "sqlhsm" if it has
/// none (operators find sqlhsm's objects by label).
pub fn remote_label(label: Option<&[u8]>) -> String {
    match label.map(String::from_utf8_lossy) {
        Some(label) if !label.is_empty() => label.into_owned(),
        _ => "sqlhsm".into(),
    }
}

/// Output sizes of a REMOTE private key, from the public values its object carries.
fn private_size(object: &Object) -> Result<KeyFacts> {
    Ok(match object.attrs.ulong(CKA_KEY_TYPE) {
        Some(CKK_RSA) => KeyFacts {
            family: Family::Rsa,
            bits: 8 * object.attrs.get(CKA_MODULUS).map_or(0, |m| m.len() as u32),
        },
        Some(key_type @ (CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY)) => {
            let params = object.attrs.get(CKA_EC_PARAMS).unwrap_or_default();
            let curve = crate::key_algorithm::curve_for(key_type, params)?;
            KeyFacts {
                family: curve.family,
                bits: curve.bits.ok_or(Rv::CURVE_NOT_SUPPORTED)?,
            }
        }
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    })
}

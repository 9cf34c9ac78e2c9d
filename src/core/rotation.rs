//! Key rotation: a successor with the predecessor's algorithm, usage flags, label and `CKA_ID`
//! (or a new label / `CKA_ID` given for it), a new `key_id` and status Active; the predecessor
//! becomes Inactive (a Compromised one stays so); both record the link
//! (`CKA_SQLHSM_ROTATED_FROM` / `_TO`) and the history the event — all in one transaction, so a
//! crash leaves the old state or the new one.
//!
//! **The predecessor gives up the names its successor takes**, in the same transaction: a label
//! the successor also carries becomes `<label>@<predecessor key_id>`, a `CKA_ID` the successor
//! also carries becomes those bytes followed by the ASCII of `@<predecessor key_id>`
//! ([`Renaming`]). So a search by label, by `CKA_ID` or by a PKCS#11 URI naming them finds one
//! key of each class, the successor, in every process and on every host (the names are stored,
//! not computed by a find rule), and the old key stays reachable by that derived name (stable
//! and unique, since a `key_id` is), by `CKA_SQLHSM_KEY_ID`, or by status. X.509 certificates of
//! the token with the predecessor's old `CKA_ID` and its public key follow it by the same rule,
//! so that a client pairing keys and certificates by `CKA_ID` (Java's SunPKCS11) sees the old key
//! with its certificate and never pairs the new key with the old key's certificate.
//!
//! Through PKCS#11 a rotation is a `C_GenerateKey` / `C_GenerateKeyPair` whose template carries
//! `CKA_SQLHSM_ROTATED_FROM` = the `key_id` being replaced; [`Module::rotate_key`] builds that
//! template from the predecessor itself. [`Module::rename_rotated_predecessors`] gives the same
//! names to predecessors rotated by versions that did not rename them.

use cryptoki_sys::*;
use serde_json::{json, Value};
use uuid::Uuid;

use super::access::Access;
use super::attributes::AttrMap;
use super::keystore;
use super::lifecycle;
use super::module::Module;
use super::object::{Half, ObjectId};
use super::rotation_names::{Renamed, Renaming};
use super::template::find_in_template;
use crate::crypto::keys::PublicKey;
use crate::error::{Result, Rv};
use crate::key_state::KeyStatus;
use crate::storage::{KeyEvent, KeyFilter, KeyTable, ObjectMetadata};
use crate::types::{Attribute, Mechanism};
use crate::vendor;

/// The key a new key replaces.
#[derive(Clone, Debug)]
pub struct Rotation {
    pub table: KeyTable,
    pub row: Uuid,
    pub key_id: String,
    pub token: Uuid,
    pub key_algorithm: Option<i32>,
    pub status: KeyStatus,
    pub metadata: Value,
    pub actor: String,
    /// Where the predecessor's material is, when it is a REMOTE key (its remote objects are
    /// marked once the rotation is stored).
    pub remote: Option<crate::provider::RemoteRef>,
    /// The predecessor's public key (SubjectPublicKeyInfo DER, as re-encoded here), for finding
    /// its certificates; `None` for a secret key.
    pub public_key: Option<Vec<u8>>,
}

impl Rotation {
    /// The successor's metadata names its predecessor.
    pub fn link_successor(&self, metadata: &mut Value) {
        if let Some(map) = metadata.as_object_mut() {
            map.insert("rotated_from".into(), Value::String(self.key_id.clone()));
        }
    }
}

/// What a rotation stores besides the successor: the predecessor's new metadata and the
/// certificates renamed with it.
#[derive(Clone, Debug)]
pub struct RotationPlan<'a> {
    pub rotation: &'a Rotation,
    /// The predecessor's metadata with its new names (not yet linked to the successor).
    predecessor: Value,
    renamed: Renamed,
    pub certificates: Vec<ObjectMetadata>,
}

impl RotationPlan<'_> {
    /// The predecessor's metadata, renamed and naming its successor.
    pub fn linked_predecessor(&self, successor: &str) -> Value {
        let mut metadata = self.predecessor.clone();
        if let Some(map) = metadata.as_object_mut() {
            map.insert("rotated_to".into(), Value::String(successor.to_string()));
        }
        metadata
    }

    pub fn events(&self, successor: &str, successor_status: KeyStatus) -> Vec<KeyEvent> {
        let rotation = self.rotation;
        let new_status = match rotation.status {
            KeyStatus::Compromised => KeyStatus::Compromised,
            _ => KeyStatus::Inactive,
        };
        let mut before = json!({ "status": rotation.status.code() });
        let mut after = json!({ "status": new_status.code(), "rotated_to": successor });
        self.renamed.record(&mut before, &mut after);
        record_certificates(&self.certificates, &mut after);
        let mut old = lifecycle::event(
            &rotation.key_id,
            rotation.token,
            "rotated",
            Some(before),
            Some(after),
        );
        old.actor = rotation.actor.clone();
        let mut new = lifecycle::event(
            successor,
            rotation.token,
            "generated",
            None,
            Some(json!({ "status": successor_status.code(), "rotated_from": rotation.key_id })),
        );
        new.actor = rotation.actor.clone();
        vec![old, new]
    }
}

/// Adds the renamed certificates (their `p11_object` row ids) to a history event's new value.
fn record_certificates(certificates: &[ObjectMetadata], after: &mut Value) {
    if !certificates.is_empty() {
        after["certificates"] = certificates
            .iter()
            .map(|c| Value::String(c.id.to_string()))
            .collect();
    }
}

/// How [`Module::rotate_key`] names the successor. `None` keeps the predecessor's label or
/// `CKA_ID`, which the predecessor then gives up (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RotateOptions {
    pub label: Option<Vec<u8>>,
    pub id: Option<Vec<u8>>,
}

impl RotateOptions {
    /// A successor template with the new names in place of the inherited ones.
    fn apply(&self, template: &mut Vec<Attribute>) {
        for (kind, name) in [(CKA_LABEL, &self.label), (CKA_ID, &self.id)] {
            if let Some(name) = name {
                template.retain(|a| a.kind != kind);
                template.push(Attribute::new(kind, name.clone()));
            }
        }
    }
}

/// A key row as [`Module::rename_rotated_predecessors`] reads it.
struct StoredKey {
    table: KeyTable,
    row: Uuid,
    key_id: String,
    metadata: Value,
    public_key: Option<Vec<u8>>,
}

/// The attributes a successor takes over from its predecessor (never dates: a new key starts
/// A predecessor renamed by [`Module::rename_rotated_predecessors`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenamedPredecessor {
    pub key_id: String,
    pub successor: String,
    pub renamed: Renamed,
    pub certificates: usize,
}

/// a new validity; never `CKA_TRUSTED`: only the SO sets it).
const INHERITED: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_LABEL,
    CKA_ID,
    CKA_DERIVE,
    CKA_ALLOWED_MECHANISMS,
    CKA_SUBJECT,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_ENCAPSULATE,
    CKA_DECAPSULATE,
];

fn inherited(attrs: &AttrMap) -> Vec<Attribute> {
    INHERITED
        .iter()
        .filter_map(|kind| {
            attrs
                .get(*kind)
                .map(|value| Attribute::new(*kind, value.to_vec()))
        })
        .collect()
}

impl Module {
    /// The rotation a generation template asks for (`CKA_SQLHSM_ROTATED_FROM`), if any: the
    /// predecessor must be a token key of this token that the session may see.
    pub fn rotation_from_template(
        &self,
        access: &Access,
        template: &[Attribute],
        table: KeyTable,
    ) -> Result<Option<Rotation>> {
        let Some(key_id) = find_in_template(template, vendor::CKA_SQLHSM_ROTATED_FROM)? else {
            return Ok(None);
        };
        let key_id = std::str::from_utf8(key_id)
            .map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?
            .to_string();
        self.rotation_of(access.token, &key_id, table, access.is_user(), self.actor())
            .map(Some)
    }

    /// The rotation of the key `key_id` of `token`.
    pub fn rotation_of(
        &self,
        token: Uuid,
        key_id: &str,
        table: KeyTable,
        user: bool,
        actor: String,
    ) -> Result<Rotation> {
        let filter = KeyFilter {
            provider_config_id: token,
            key_id: Some(key_id.to_string()),
            ..KeyFilter::default()
        };
        let (row, key_algorithm, status, metadata, remote, public_key) = match table {
            KeyTable::Asym => {
                let row = self
                    .storage
                    .find_asym_keys(&filter)?
                    .into_iter()
                    .next()
                    .ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?;
                let remote = match &row.private_key_ctx {
                    Some(ctx) => keystore::remote_ref(ctx)?,
                    None => None,
                };
                let public_key = public_key_der(&row)?;
                (
                    row.id,
                    Some(row.key_algorithm),
                    row.key_status,
                    row.metadata,
                    remote,
                    public_key,
                )
            }
            KeyTable::Sym => {
                let row = self
                    .storage
                    .find_sym_keys(&filter)?
                    .into_iter()
                    .next()
                    .ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?;
                let remote = keystore::remote_ref(&row.metadata)?;
                (row.id, None, row.key_status, row.metadata, remote, None)
            }
        };
        // A private predecessor is invisible (hence unknown) before the user logs in.
        let private = ["private", "secret"].iter().any(|half| {
            metadata
                .get(half)
                .and_then(|h| h.get("private"))
                .and_then(Value::as_bool)
                == Some(true)
        });
        if private && !user {
            Err(Rv::ATTRIBUTE_VALUE_INVALID)?
        }
        // A key is replaced once: rotating it again would fork the chain and take the names
        // back from its successor. The successor is the one to rotate.
        if let Some(successor) = metadata
            .get("rotated_to")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            tracing::warn!(key_id = %key_id, successor = %successor, "refused to rotate a key that was already rotated");
            Err(Rv::ATTRIBUTE_VALUE_INVALID)?
        }
        Ok(Rotation {
            table,
            row,
            key_id: key_id.to_string(),
            token,
            key_algorithm,
            status,
            metadata,
            actor,
            remote,
            public_key,
        })
    }

    /// What storing `rotation` with a successor whose row metadata is `successor` changes
    /// besides: the predecessor's names and its certificates' (see [`Renaming`]). A private
    /// certificate is only seen, hence renamed, when the user is logged in.
    pub fn plan_rotation<'a>(
        &self,
        access: &Access,
        rotation: &'a Rotation,
        successor: &Value,
    ) -> Result<RotationPlan<'a>> {
        let renaming = Renaming::new(&rotation.key_id, successor)?;
        let (predecessor, renamed) = renaming.rename_row(&rotation.metadata)?;
        let token_key = access.login.token_key();
        let certificates = self.renamed_certificates(
            &renaming,
            rotation.token,
            &rotation.metadata,
            rotation.public_key.as_deref(),
            token_key.as_deref(),
        )?;
        Ok(RotationPlan {
            rotation,
            predecessor,
            renamed,
            certificates,
        })
    }

    /// The new metadata of the X.509 certificates of `token` that belong to the key whose row
    /// metadata is `metadata` and whose public key is `public_key` (their `CKA_ID` is the key's
    /// and their subject public key is the key's), for those `renaming` renames.
    fn renamed_certificates(
        &self,
        renaming: &Renaming,
        token: Uuid,
        metadata: &Value,
        public_key: Option<&[u8]>,
        token_key: Option<&super::token::TokenKey>,
    ) -> Result<Vec<ObjectMetadata>> {
        let Some(public_key) = public_key else {
            return Ok(Vec::new());
        };
        let filter = KeyFilter {
            provider_config_id: token,
            ck_id: Some(
                metadata
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ),
            ..KeyFilter::default()
        };
        let class = i64::try_from(CKO_CERTIFICATE).map_err(|_| Rv::GENERAL_ERROR)?;
        let mut renamed = Vec::new();
        for row in self.storage.find_objects(&filter, Some(class))? {
            let object = match super::plain_objects::object_from_row(&row, token_key) {
                Ok(Some(object)) => object,
                Ok(None) => continue, // private, and nobody is logged in
                Err(e) => {
                    tracing::error!(row = %row.id, error = %e, "skipping an unreadable p11_object row");
                    continue;
                }
            };
            let subject_key = object
                .attrs
                .get(CKA_PUBLIC_KEY_INFO)
                .and_then(|der| PublicKey::from_spki_der(der).ok())
                .and_then(|key| key.to_spki_der().ok());
            if subject_key.as_deref() != Some(public_key) {
                continue;
            }
            let (metadata, changed) = renaming.rename_row(&row.metadata)?;
            if !changed.is_empty() {
                renamed.push(ObjectMetadata {
                    id: row.id,
                    metadata,
                });
            }
        }
        Ok(renamed)
    }

    /// For `sqlhsm db migrate`: gives the names rotation gives (see [`Renaming`]) to every
    /// predecessor that still shares its label or `CKA_ID` with its successor — keys rotated by
    /// versions that did not rename them — and to their certificates, each key with a `renamed`
    /// history event in the transaction of its change. Running it again changes nothing.
    /// Private certificates cannot be read without the token key and keep their names.
    pub fn rename_rotated_predecessors(&self) -> Result<Vec<RenamedPredecessor>> {
        let mut done = Vec::new();
        for token in self.storage.list_tokens()? {
            let filter = KeyFilter {
                provider_config_id: token.id,
                ..KeyFilter::default()
            };
            let mut keys: Vec<StoredKey> = Vec::new();
            for row in self.storage.find_asym_keys(&filter)? {
                let public_key = public_key_der(&row).unwrap_or_else(|e| {
                    tracing::warn!(key_id = %row.key_id, error = %e, "unreadable public key: its certificates keep their names");
                    None
                });
                keys.push(StoredKey {
                    table: KeyTable::Asym,
                    row: row.id,
                    key_id: row.key_id,
                    metadata: row.metadata,
                    public_key,
                });
            }
            for row in self.storage.find_sym_keys(&filter)? {
                keys.push(StoredKey {
                    table: KeyTable::Sym,
                    row: row.id,
                    key_id: row.key_id,
                    metadata: row.metadata,
                    public_key: None,
                });
            }
            let by_key_id: std::collections::HashMap<(KeyTable, &str), &Value> = keys
                .iter()
                .map(|k| ((k.table, k.key_id.as_str()), &k.metadata))
                .collect();
            for key in &keys {
                let Some(successor) = key.metadata.get("rotated_to").and_then(Value::as_str) else {
                    continue;
                };
                let Some(successor_metadata) = by_key_id.get(&(key.table, successor)) else {
                    continue;
                };
                let renaming = Renaming::new(&key.key_id, successor_metadata)?;
                let (metadata, renamed) = renaming.rename_row(&key.metadata)?;
                if renamed.is_empty() {
                    continue;
                }
                let certificates = self.renamed_certificates(
                    &renaming,
                    token.id,
                    &key.metadata,
                    key.public_key.as_deref(),
                    None,
                )?;
                let (mut before, mut after) = (json!({}), json!({ "rotated_to": successor }));
                renamed.record(&mut before, &mut after);
                record_certificates(&certificates, &mut after);
                let event =
                    self.history_event(&key.key_id, token.id, "renamed", Some(before), Some(after));
                if self
                    .storage
                    .rename_key(key.table, key.row, &metadata, &certificates, &event)?
                {
                    tracing::info!(key_id = %key.key_id, %successor, "a rotated-out key gave up its successor's names");
                    done.push(RenamedPredecessor {
                        key_id: key.key_id.clone(),
                        successor: successor.to_string(),
                        renamed,
                        certificates: certificates.len(),
                    });
                }
            }
        }
        Ok(done)
    }

    /// Rotates a token key: generates its successor with the same algorithm and attributes and
    /// retires it, in one transaction. Returns the successor's handles (public half first).
    /// `options` may give the successor a new label or `CKA_ID`; the predecessor then keeps
    /// that name (it gives up only the names the successor takes over).
    pub fn rotate_key(
        &self,
        session: CK_SESSION_HANDLE,
        handle: CK_OBJECT_HANDLE,
        options: &RotateOptions,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let access = self.access(session)?;
        let object = self.visible_object(&access, handle, Rv::KEY_HANDLE_INVALID)?;
        let ObjectId::Token { row, half } = object.id else {
            Err(Rv::KEY_HANDLE_INVALID)?
        };
        let key_id = String::from_utf8_lossy(
            object
                .attrs
                .get(vendor::CKA_SQLHSM_KEY_ID)
                .unwrap_or_default(),
        )
        .into_owned();
        let link = Attribute::new(vendor::CKA_SQLHSM_ROTATED_FROM, key_id.into_bytes());
        match half {
            Half::Secret => {
                // The successor is made as the key was: by its row's generation mechanism.
                let key_type = object
                    .attrs
                    .ulong(CKA_KEY_TYPE)
                    .ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
                let mechanism = crate::key_algorithm::ALGORITHMS
                    .iter()
                    .find(|row| {
                        row.family == crate::key_algorithm::Family::Secret
                            && row.key_type == key_type
                    })
                    .and_then(|row| row.generation)
                    .ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
                let mut template = inherited(&object.attrs);
                template.push(Attribute::new(
                    CKA_VALUE_LEN,
                    object
                        .attrs
                        .get(CKA_VALUE_LEN)
                        .ok_or(Rv::KEY_TYPE_INCONSISTENT)?
                        .to_vec(),
                ));
                template.push(link);
                options.apply(&mut template);
                Ok(vec![self.generate_key(
                    session,
                    &Mechanism::new(mechanism),
                    &template,
                )?])
            }
            Half::Public | Half::Private => {
                let stored = self
                    .storage
                    .get_asym_key(row)?
                    .ok_or(Rv::KEY_HANDLE_INVALID)?;
                let objects = keystore::objects_from_asym_row(&stored)?;
                let half_attrs = |wanted: Half| {
                    objects
                        .iter()
                        .find(|o| matches!(o.id, ObjectId::Token { half, .. } if half == wanted))
                        .map(|o| &o.attrs)
                };
                let source = half_attrs(Half::Private)
                    .or(half_attrs(Half::Public))
                    .ok_or(Rv::KEY_HANDLE_INVALID)?;
                let (mechanism, mut public) = match source.ulong(CKA_KEY_TYPE) {
                    Some(CKK_RSA) => {
                        let modulus = source.get(CKA_MODULUS).ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
                        let exponent = source
                            .get(CKA_PUBLIC_EXPONENT)
                            .ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
                        let bits = (modulus.len() * 8) as CK_ULONG;
                        (
                            CKM_RSA_PKCS_KEY_PAIR_GEN,
                            vec![
                                Attribute::from_ulong(CKA_MODULUS_BITS, bits),
                                Attribute::new(CKA_PUBLIC_EXPONENT, exponent.to_vec()),
                            ],
                        )
                    }
                    Some(CKK_EC) => (
                        CKM_EC_KEY_PAIR_GEN,
                        vec![Attribute::new(
                            CKA_EC_PARAMS,
                            source
                                .get(CKA_EC_PARAMS)
                                .ok_or(Rv::KEY_TYPE_INCONSISTENT)?
                                .to_vec(),
                        )],
                    ),
                    Some(key_type @ (CKK_EC_EDWARDS | CKK_EC_MONTGOMERY)) => (
                        if key_type == CKK_EC_EDWARDS {
                            CKM_EC_EDWARDS_KEY_PAIR_GEN
                        } else {
                            CKM_EC_MONTGOMERY_KEY_PAIR_GEN
                        },
                        vec![Attribute::new(
                            CKA_EC_PARAMS,
                            source
                                .get(CKA_EC_PARAMS)
                                .ok_or(Rv::KEY_TYPE_INCONSISTENT)?
                                .to_vec(),
                        )],
                    ),
                    // A post-quantum successor has the predecessor's parameter set.
                    Some(key_type @ (CKK_ML_KEM | CKK_ML_DSA | CKK_SLH_DSA)) => {
                        let set = source
                            .ulong(CKA_PARAMETER_SET)
                            .ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
                        let row = crate::key_algorithm::by_parameter_set(key_type, Some(set))?;
                        (
                            row.generation.ok_or(Rv::KEY_TYPE_INCONSISTENT)?,
                            vec![Attribute::from_ulong(CKA_PARAMETER_SET, set)],
                        )
                    }
                    // A hybrid KEM successor: its key type's own generation mechanism.
                    other => {
                        let row = other
                            .and_then(crate::key_algorithm::hybrid_of)
                            .ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
                        (row.generation.ok_or(Rv::KEY_TYPE_INCONSISTENT)?, Vec::new())
                    }
                };
                public.extend(
                    half_attrs(Half::Public)
                        .map(inherited)
                        .unwrap_or_else(|| vec![Attribute::from_bool(CKA_TOKEN, true)]),
                );
                let mut private = half_attrs(Half::Private)
                    .map(inherited)
                    .unwrap_or_else(|| vec![Attribute::from_bool(CKA_TOKEN, true)]);
                private.push(link);
                options.apply(&mut public);
                options.apply(&mut private);
                let (public, private) =
                    self.generate_key_pair(session, &Mechanism::new(mechanism), &public, &private)?;
                Ok(vec![public, private])
            }
            Half::Standalone => Err(Rv::KEY_HANDLE_INVALID)?,
        }
    }

    /// For the admin command: changes a key's status and/or expiration by `key_id`, without
    /// PKCS#11's visibility rules. The caller has verified the user PIN (or the SO PIN:
    /// `as_so`, which alone may bring an Expired key back with a future expiration).
    pub fn set_key_state_by_id(
        &self,
        token: Uuid,
        key_id: &str,
        status: Option<i32>,
        expiration: Option<Option<chrono::DateTime<chrono::Utc>>>,
        as_so: bool,
        actor: &str,
    ) -> Result<()> {
        let filter = KeyFilter {
            provider_config_id: token,
            key_id: Some(key_id.to_string()),
            ..KeyFilter::default()
        };
        let (table, row) = match self.storage.find_asym_keys(&filter)?.into_iter().next() {
            Some(row) => (KeyTable::Asym, row.id),
            None => (
                KeyTable::Sym,
                self.storage
                    .find_sym_keys(&filter)?
                    .into_iter()
                    .next()
                    .ok_or(Rv::OBJECT_HANDLE_INVALID)?
                    .id,
            ),
        };
        let login = if as_so {
            super::session::LoginKind::So
        } else {
            super::session::LoginKind::User
        };
        // A code no status has is refused like a forbidden transition.
        let status = status
            .map(|code| KeyStatus::from_code(code).ok_or(Rv::ATTRIBUTE_VALUE_INVALID))
            .transpose()?;
        self.change_key_state(table, row, token, status, expiration, login, actor)
    }
}

/// An `asym_key` row's public key as SubjectPublicKeyInfo DER, encoded as this module encodes
/// it (so that a certificate's key compares equal whatever encoder wrote it).
fn public_key_der(row: &crate::storage::AsymKeyRow) -> Result<Option<Vec<u8>>> {
    match row
        .public_key_ctx
        .as_ref()
        .and_then(|ctx| ctx.get("pem"))
        .and_then(Value::as_str)
    {
        Some(pem) => Ok(Some(PublicKey::from_spki_pem(pem)?.to_spki_der()?)),
        None => Ok(None),
    }
}

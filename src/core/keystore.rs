//! How PKCS#11 objects map onto the schema's rows, and the sealing of key material under the
//! token key. An `asym_key` row holds a key pair: `public_key_ctx = {"pem": SPKI}`,
//! `private_key_ctx = {"keyId": token key id, "wrappedKey": base64(nonce ‖ ct ‖ tag)}` (PKCS#8
//! sealed with AES-256-GCM, the row id as associated data). A `sym_key` row holds a secret key,
//! `key_value` being the sealed bytes. `metadata` keeps the attributes that have no column:
//! `{"label", "id" (hex of CKA_ID), "public": {…}, "private": {…}}` or `{…, "secret": {…}}`,
//! the halves present being the objects the row exposes.

use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use cryptoki_sys::*;
use serde_json::{json, Value};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::attributes::AttrMap;
use super::object::{Half, Object, ObjectId, Sealed};
use super::token::TokenKey;
use crate::crypto::aead;
use crate::crypto::keys::{PrivateKey, PublicKey, PublicValues};
use crate::error::{Error, Result, Rv, StorageError};
use crate::key_algorithm::{self, KeyAlgorithm};
use crate::key_state::KeyStatus;
use crate::mechanism::KeyMaterial;
use crate::provider::RemoteRef;
use crate::storage::{AsymKeyRow, SymKeyRow};
use crate::vendor;

fn corrupt(what: impl Into<String>) -> Error {
    StorageError::Corrupt(what.into()).into()
}

/// The associated data binding sealed material to its row.
pub fn row_aad(row: Uuid) -> Vec<u8> {
    row.to_string().into_bytes()
}

/// `private_key_ctx` for PKCS#8 DER sealed under the token key.
pub fn seal_private(
    token_key: &TokenKey,
    token_key_id: &str,
    row: Uuid,
    pkcs8: &[u8],
) -> Result<Value> {
    let sealed = aead::seal(token_key, &row_aad(row), pkcs8)?;
    Ok(json!({ "keyId": token_key_id, "wrappedKey": B64.encode(sealed) }))
}

/// The reference to a REMOTE key kept under `"remote"` in `private_key_ctx` (key pairs) or
/// `metadata` (secret keys, whose `key_value` is then NULL).
pub fn remote_ref(holder: &Value) -> Result<Option<RemoteRef>> {
    match holder.get("remote") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| corrupt(format!("remote key reference: {e}"))),
    }
}

/// `private_key_ctx` of a REMOTE key pair.
pub fn remote_private_ctx(reference: &RemoteRef) -> Value {
    json!({ "remote": reference })
}

/// `key_value` for secret key bytes sealed under the token key.
pub fn seal_secret(token_key: &TokenKey, row: Uuid, value: &[u8]) -> Result<Vec<u8>> {
    aead::seal(token_key, &row_aad(row), value)
}

/// Adds the public values PKCS#11 shows on a key object (both halves carry them).
pub fn add_public_values(
    attrs: &mut AttrMap,
    public: &PublicKey,
    class: CK_OBJECT_CLASS,
) -> Result<()> {
    match public.public_values()? {
        PublicValues::Modulus {
            modulus,
            public_exponent,
            bits,
        } => {
            attrs.set(CKA_MODULUS, modulus);
            attrs.set(CKA_PUBLIC_EXPONENT, public_exponent);
            if class == CKO_PUBLIC_KEY {
                attrs.set_ulong(CKA_MODULUS_BITS, CK_ULONG::from(bits));
            }
        }
        PublicValues::Point {
            params_der,
            point_der,
        } => {
            attrs.set(CKA_EC_PARAMS, params_der);
            attrs.set(CKA_EC_POINT, point_der);
        }
        // PKCS#11 3.2: both halves carry the parameter set (a hybrid KEM key has none: its
        // key type names it); the public key's CKA_VALUE is its encoding (the private key's
        // is its sealed private form).
        PublicValues::Encoded { value } => {
            if let Some(set) = key_algorithm::of_public(public)?.parameter_set {
                attrs.set_ulong(CKA_PARAMETER_SET, set);
            }
            if class == CKO_PUBLIC_KEY {
                attrs.set(CKA_VALUE, value);
            }
        }
    }
    attrs.set(CKA_PUBLIC_KEY_INFO, public.to_spki_der()?);
    Ok(())
}

/// The lifecycle columns a key row shows as vendor attributes.
struct RowValues<'a> {
    key_id: &'a str,
    status: KeyStatus,
    mode: i32,
    algorithm: Option<i32>,
    expiration: Option<chrono::DateTime<chrono::Utc>>,
    metadata: &'a Value,
}

fn add_row_values(attrs: &mut AttrMap, row: RowValues<'_>) {
    let RowValues {
        key_id,
        status,
        mode,
        algorithm,
        expiration,
        metadata,
    } = row;
    // The status shown (and matched by C_FindObjects) is the effective one: a passed
    // expiration reads Expired even before anyone updates the row.
    let status = super::lifecycle::effective_status(status, expiration, chrono::Utc::now());
    attrs.set(vendor::CKA_SQLHSM_KEY_ID, key_id.as_bytes().to_vec());
    attrs.set_ulong(
        vendor::CKA_SQLHSM_EXPIRATION,
        super::lifecycle::expiration_seconds(expiration),
    );
    for (kind, name) in [
        (vendor::CKA_SQLHSM_ROTATED_FROM, "rotated_from"),
        (vendor::CKA_SQLHSM_ROTATED_TO, "rotated_to"),
    ] {
        let link = metadata
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default();
        attrs.set(kind, link.as_bytes().to_vec());
    }
    attrs.set_ulong(
        vendor::CKA_SQLHSM_KEY_STATUS,
        CK_ULONG::try_from(status.code()).unwrap_or(0),
    );
    attrs.set_ulong(
        vendor::CKA_SQLHSM_KEY_MODE,
        CK_ULONG::try_from(mode).unwrap_or(0),
    );
    if let Some(algorithm) = algorithm {
        attrs.set_ulong(
            vendor::CKA_SQLHSM_KEY_ALGORITHM,
            CK_ULONG::try_from(algorithm).unwrap_or(0),
        );
    }
}

/// The objects a row's metadata may hold, in the order their names are lifted to its top level:
/// the private, secret or plain object, and the public half only when it is alone.
pub const HALVES: [Half; 4] = [Half::Private, Half::Secret, Half::Standalone, Half::Public];

/// The key under which a row's metadata keeps a half's attributes.
pub fn half_name(half: Half) -> &'static str {
    match half {
        Half::Public => "public",
        Half::Private => "private",
        Half::Secret => "secret",
        Half::Standalone => "object",
    }
}

/// The objects an `asym_key` row exposes (one or both halves).
pub fn objects_from_asym_row(row: &AsymKeyRow) -> Result<Vec<Object>> {
    let algorithm = key_algorithm::from_row(row.key_algorithm)?;
    let public_key = match row
        .public_key_ctx
        .as_ref()
        .and_then(|c| c.get("pem"))
        .and_then(Value::as_str)
    {
        Some(pem) => Some(Arc::new(PublicKey::from_spki_pem(pem)?)),
        None => None,
    };
    let mut objects = Vec::new();
    for half in [Half::Public, Half::Private] {
        let Some(stored) = row.metadata.get(half_name(half)) else {
            continue;
        };
        let class = if half == Half::Public {
            CKO_PUBLIC_KEY
        } else {
            CKO_PRIVATE_KEY
        };
        let mut attrs = AttrMap::from_json(stored)?;
        attrs.set_ulong(CKA_CLASS, class);
        attrs.set_ulong(CKA_KEY_TYPE, algorithm.key_type);
        attrs.set_bool(CKA_TOKEN, true);
        attrs.set(
            CKA_UNIQUE_ID,
            format!("{}:{}", row.id, half_name(half)).into_bytes(),
        );
        if let Some(public) = &public_key {
            add_public_values(&mut attrs, public, class)?;
        }
        add_row_values(
            &mut attrs,
            RowValues {
                key_id: &row.key_id,
                status: row.key_status,
                mode: row.key_mode,
                algorithm: algorithm.code,
                expiration: row.expiration,
                metadata: &row.metadata,
            },
        );
        let (sealed, material) = match half {
            Half::Public => {
                let public = public_key
                    .clone()
                    .ok_or_else(|| corrupt("asym_key row without a public key"))?;
                (None, Some(KeyMaterial::Public(public)))
            }
            _ => {
                let ctx = row
                    .private_key_ctx
                    .as_ref()
                    .ok_or_else(|| corrupt("private half without private_key_ctx"))?;
                if let Some(reference) = remote_ref(ctx)? {
                    (Some(Sealed::Remote(reference)), None)
                } else {
                    let wrapped = ctx
                        .get("wrappedKey")
                        .and_then(Value::as_str)
                        .ok_or_else(|| corrupt("private_key_ctx.wrappedKey"))?;
                    let bytes = B64
                        .decode(wrapped)
                        .map_err(|_| corrupt("private_key_ctx.wrappedKey is not base64"))?;
                    (
                        Some(Sealed::Local {
                            bytes,
                            aad: row_aad(row.id),
                        }),
                        None,
                    )
                }
            }
        };
        objects.push(Object {
            id: ObjectId::Token { row: row.id, half },
            token: row.provider_config_id,
            owner_session: None,
            attrs,
            sealed,
            material: RwLock::new(material),
        });
    }
    Ok(objects)
}

/// The secret key object of a `sym_key` row.
pub fn object_from_sym_row(row: &SymKeyRow) -> Result<Option<Object>> {
    let Some(stored) = row.metadata.get(half_name(Half::Secret)) else {
        return Ok(None);
    };
    let mut attrs = AttrMap::from_json(stored)?;
    attrs.set_ulong(CKA_CLASS, CKO_SECRET_KEY);
    attrs.set_bool(CKA_TOKEN, true);
    attrs.set(CKA_UNIQUE_ID, row.id.to_string().into_bytes());
    add_row_values(
        &mut attrs,
        RowValues {
            key_id: &row.key_id,
            status: row.key_status,
            mode: row.key_mode,
            algorithm: None,
            expiration: row.expiration,
            metadata: &row.metadata,
        },
    );
    let sealed = match (&row.key_value, remote_ref(&row.metadata)?) {
        (None, Some(reference)) => Sealed::Remote(reference),
        (Some(bytes), _) => Sealed::Local {
            bytes: bytes.clone(),
            aad: row_aad(row.id),
        },
        (None, None) => Err(corrupt("sym_key row without key_value"))?,
    };
    Ok(Some(Object {
        id: ObjectId::Token {
            row: row.id,
            half: Half::Secret,
        },
        token: row.provider_config_id,
        owner_session: None,
        attrs,
        sealed: Some(sealed),
        material: RwLock::new(None),
    }))
}

/// `metadata` for a row from the attributes of the halves it exposes. Label and `CKA_ID` are
/// lifted to the top level, where they are indexed.
pub fn row_metadata(halves: &[(Half, &AttrMap)]) -> Value {
    let mut metadata = serde_json::Map::new();
    let first = HALVES
        .iter()
        .find_map(|wanted| halves.iter().find(|(half, _)| half == wanted));
    if let Some((_, first)) = first {
        insert_names(&mut metadata, first);
    }
    for (half, attrs) in halves {
        metadata.insert(half_name(*half).into(), attrs.to_json());
    }
    Value::Object(metadata)
}

fn insert_names(metadata: &mut serde_json::Map<String, Value>, attrs: &AttrMap) {
    let label = String::from_utf8_lossy(attrs.get(CKA_LABEL).unwrap_or_default()).into_owned();
    metadata.insert("label".into(), Value::String(label));
    metadata.insert(
        "id".into(),
        Value::String(hex::encode(attrs.get(CKA_ID).unwrap_or_default())),
    );
}

/// Lifts label and `CKA_ID` to the top of stored metadata again (as [`row_metadata`] does),
/// after a half's changed in place.
pub fn lift_names(metadata: &mut Value) -> Result<()> {
    let Some(map) = metadata.as_object_mut() else {
        return Ok(());
    };
    let Some(first) = HALVES.iter().find_map(|half| map.get(half_name(*half))) else {
        return Ok(());
    };
    let attrs = AttrMap::from_json(first)?;
    insert_names(map, &attrs);
    Ok(())
}

/// `metadata` rebuilt from a row's attributes keeps what the old one held beside them (the
/// rotation links, a REMOTE secret key's reference).
pub fn keep_row_extras(metadata: &mut Value, old: &Value) {
    let (Some(new), Some(old)) = (metadata.as_object_mut(), old.as_object()) else {
        return;
    };
    let attribute_keys = ["label", "id"]
        .into_iter()
        .chain(HALVES.iter().map(|half| half_name(*half)));
    let attribute_keys: Vec<&str> = attribute_keys.collect();
    for (key, value) in old {
        if !attribute_keys.contains(&key.as_str()) && !new.contains_key(key) {
            new.insert(key.clone(), value.clone());
        }
    }
}

/// Unseals a token object's material with the token key.
pub fn unseal(object: &Object, token_key: &TokenKey) -> Result<KeyMaterial> {
    let Some(Sealed::Local { bytes, aad }) = object.sealed.as_ref() else {
        Err(Rv::KEY_HANDLE_INVALID)?
    };
    let plain: Zeroizing<Vec<u8>> = aead::open(token_key, aad, bytes)?.ok_or_else(|| {
        tracing::error!(object = ?object.id, "sealed key material failed authentication");
        corrupt("sealed key material failed authentication")
    })?;
    Ok(match object.id {
        ObjectId::Token {
            half: Half::Secret, ..
        } => KeyMaterial::Secret(Arc::new(plain)),
        _ => KeyMaterial::Private(Arc::new(PrivateKey::from_pkcs8_der(&plain)?)),
    })
}

/// A readable, unique `key_id`: the `CKA_ID` when it is printable and free, else generated.
pub fn key_id_candidates(ck_id: &[u8], algorithm: &str) -> (Option<String>, String) {
    let from_id = if !ck_id.is_empty() && ck_id.iter().all(|b| b.is_ascii_graphic()) {
        Some(String::from_utf8_lossy(ck_id).into_owned())
    } else if !ck_id.is_empty() {
        Some(hex::encode(ck_id))
    } else {
        None
    };
    let simple = Uuid::new_v4().simple().to_string();
    let generated = format!("{algorithm}-{}", &simple[..16]);
    (from_id, generated)
}

/// The prefix of generated `key_id`s: the algorithm's name (`ec-p256-…`), `aes` for an AES key
/// of unknown length.
pub fn algorithm_slug(algorithm: Option<&KeyAlgorithm>) -> &'static str {
    algorithm.map_or("aes", |a| a.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_readable() {
        let (from, generated) = key_id_candidates(b"signing-1", "ec-p256");
        assert_eq!(from.as_deref(), Some("signing-1"));
        assert!(generated.starts_with("ec-p256-"));
        let (from, _) = key_id_candidates(&[0, 1, 2], "ec-p256");
        assert_eq!(from.as_deref(), Some("000102"));
        assert_eq!(key_id_candidates(&[], "aes").0, None);
    }

    #[test]
    fn metadata_lifts_label_and_id() {
        let mut attrs = AttrMap::new();
        attrs.set(CKA_LABEL, b"k".to_vec());
        attrs.set(CKA_ID, vec![0xab]);
        let metadata = row_metadata(&[(Half::Public, &attrs), (Half::Private, &attrs)]);
        assert_eq!(metadata["label"], "k");
        assert_eq!(metadata["id"], "ab");
        assert!(metadata.get("public").is_some() && metadata.get("private").is_some());
    }
}

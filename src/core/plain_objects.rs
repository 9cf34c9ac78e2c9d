//! Objects that are not keys (PKCS#11 3.0 §4.4, §4.6): `CKO_DATA` and X.509 `CKO_CERTIFICATE`,
//! kept in the `p11_object` table. A certificate is public by nature and its value is stored as
//! is; the value of a private object (a private data object, say) is sealed under the token key
//! like key material, with the row id as associated data.

use std::sync::RwLock;

use chrono::Utc;
use cryptoki_sys::*;
use serde_json::Value;
use uuid::Uuid;

use super::access::Access;
use super::attributes::{self, AttrMap};
use super::keystore::{row_aad, seal_secret};
use super::module::Module;
use super::object::{Half, Object, ObjectId};
use super::policy::{self, Rules};
use super::session::LoginKind;
use super::template::{find_in_template, template_ulong};
use super::token::TokenKey;
use crate::crypto::{aead, x509};
use crate::error::{Result, Rv, StorageError};
use crate::storage::ObjectRow;
use crate::types::Attribute;

/// Builds a data or certificate object's attributes from the caller's template and defaults.
pub fn build_plain_attrs(
    class: CK_OBJECT_CLASS,
    template: &[Attribute],
    access: &Access,
) -> Result<AttrMap> {
    let certificate_type = match class {
        CKO_CERTIFICATE => {
            let kind =
                template_ulong(template, CKA_CERTIFICATE_TYPE)?.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
            if kind != CKC_X_509 {
                Err(Rv::ATTRIBUTE_VALUE_INVALID)?
            }
            kind
        }
        _ => CK_UNAVAILABLE_INFORMATION,
    };
    let policy = policy::for_class(class).ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?;
    let mut attrs = AttrMap::new();
    attrs.set_ulong(CKA_CLASS, class);
    for attr in template {
        if attr.kind == CKA_CLASS {
            continue;
        }
        let rules = policy::check_create(class, certificate_type, attr)?;
        let wanted = attributes::decode_bool(&attr.value).unwrap_or(false);
        if rules.contains(Rules::SO_ONLY) && wanted && access.login.kind() != LoginKind::So {
            Err(Rv::ATTRIBUTE_READ_ONLY)?
        }
        find_in_template(template, attr.kind)?;
        attrs.set(attr.kind, attr.value.to_vec());
    }
    // PKCS#11 3.0 §4.6.3: an X.509 certificate is created with its value and its subject.
    policy.check_required(certificate_type, template)?;
    policy.apply_defaults(certificate_type, &mut attrs);
    if class == CKO_DATA {
        return Ok(attrs);
    }
    let value = attrs
        .get(CKA_VALUE)
        .ok_or(Rv::TEMPLATE_INCOMPLETE)?
        .to_vec();
    let fields = x509::certificate_fields(&value)?;
    if attrs
        .get(CKA_CHECK_VALUE)
        .is_some_and(|given| !given.is_empty() && given != fields.check_value.as_slice())
    {
        Err(Rv::ATTRIBUTE_VALUE_INVALID)?
    }
    attrs.set(CKA_CHECK_VALUE, fields.check_value);
    attrs.set(CKA_PUBLIC_KEY_INFO, fields.public_key_info);
    // Optional fields a client left out are taken from the certificate itself.
    attrs.set_default(CKA_ISSUER, fields.issuer);
    attrs.set_default(CKA_SERIAL_NUMBER, fields.serial_number);
    Ok(attrs)
}

/// `metadata` of a `p11_object` row.
pub fn plain_metadata(attrs: &AttrMap) -> Value {
    super::keystore::row_metadata(&[(Half::Standalone, attrs)])
}

/// The object of a `p11_object` row; `None` for a private object while nobody is logged in
/// (it is invisible then anyway).
pub fn object_from_row(row: &ObjectRow, token_key: Option<&TokenKey>) -> Result<Option<Object>> {
    let stored = row
        .metadata
        .get("object")
        .ok_or_else(|| StorageError::Corrupt("p11_object without attributes".into()))?;
    let mut attrs = AttrMap::from_json(stored)?;
    let class = CK_OBJECT_CLASS::try_from(row.object_class)
        .map_err(|_| StorageError::Corrupt("negative object class".into()))?;
    attrs.set_ulong(CKA_CLASS, class);
    attrs.set_bool(CKA_TOKEN, true);
    attrs.set(CKA_UNIQUE_ID, row.id.to_string().into_bytes());
    let stored_value = row.value.clone().unwrap_or_default();
    let value = if attrs.flag(CKA_PRIVATE) {
        let Some(token_key) = token_key else {
            return Ok(None);
        };
        match aead::open(token_key, &row_aad(row.id), &stored_value)? {
            Some(plain) => plain.to_vec(),
            None => Err(StorageError::Corrupt(
                "sealed object value failed authentication".into(),
            ))?,
        }
    } else {
        stored_value
    };
    if class == CKO_CERTIFICATE {
        if let Ok(fields) = x509::certificate_fields(&value) {
            attrs.set(CKA_PUBLIC_KEY_INFO, fields.public_key_info);
        }
    }
    attrs.set(CKA_VALUE, value);
    Ok(Some(Object {
        id: ObjectId::Token {
            row: row.id,
            half: Half::Standalone,
        },
        token: row.provider_config_id,
        owner_session: None,
        attrs,
        sealed: None,
        material: RwLock::new(None),
    }))
}

impl Module {
    /// Stores a data or certificate object (token objects in `p11_object`, session objects in
    /// memory) and returns its handle.
    pub fn store_plain(
        &self,
        session: CK_SESSION_HANDLE,
        access: &Access,
        attrs: AttrMap,
    ) -> Result<CK_OBJECT_HANDLE> {
        let token_object = attrs.flag(CKA_TOKEN);
        let private = attrs.flag(CKA_PRIVATE);
        if token_object && !access.read_write {
            Err(Rv::SESSION_READ_ONLY)?
        }
        if private && !access.is_user() {
            Err(Rv::USER_NOT_LOGGED_IN)?
        }
        if !token_object {
            let id = self.next_session_object_id();
            let mut attrs = attrs;
            attrs.set(
                CKA_UNIQUE_ID,
                format!("session-{}-{id}", std::process::id()).into_bytes(),
            );
            return self.objects.insert(Object {
                id: ObjectId::Session(id),
                token: access.token,
                owner_session: Some(session),
                attrs,
                sealed: None,
                material: RwLock::new(None),
            });
        }
        let id = Uuid::new_v4();
        let value = attrs.get(CKA_VALUE).unwrap_or_default().to_vec();
        let stored_value = if private {
            let token_key = access.login.token_key().ok_or(Rv::USER_NOT_LOGGED_IN)?;
            seal_secret(&token_key, id, &value)?
        } else {
            value
        };
        let now = Utc::now();
        let row = ObjectRow {
            id,
            provider_config_id: access.token,
            object_class: i64::try_from(attrs.ulong(CKA_CLASS).unwrap_or(CKO_DATA))
                .map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?,
            value: Some(stored_value),
            metadata: plain_metadata(&attrs),
            created_at: now,
            updated_at: now,
        };
        self.storage.insert_object(&row)?;
        let token_key = access.login.token_key();
        let object = object_from_row(&row, token_key.as_deref())?.ok_or(Rv::USER_NOT_LOGGED_IN)?;
        self.objects.insert(object)
    }

    pub fn create_plain_object(
        &self,
        session: CK_SESSION_HANDLE,
        access: &Access,
        class: CK_OBJECT_CLASS,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let attrs = build_plain_attrs(class, template, access)?;
        self.store_plain(session, access, attrs)
    }
}

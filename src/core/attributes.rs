//! Attributes sqlhsm knows (PKCS#11 3.0 §4.1.2): each one's value encoding, readable name and
//! where its value is kept, declared once; the table drives JSON persistence in the `metadata`
//! column (readable names, typed values). What each class carries and what a caller may do
//! with it is `policy`.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use cryptoki_sys::*;
use serde_json::{Map, Value};

use crate::error::{Result, Rv};
use crate::vendor;

/// How an attribute's bytes are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `CK_BBOOL`, one byte.
    Bool,
    /// `CK_ULONG` in native byte order.
    Ulong,
    /// Opaque bytes (stored as hex).
    Bytes,
    /// UTF-8 text (stored as a JSON string).
    Utf8,
    /// `CK_DATE`: 8 ASCII digits, or empty.
    Date,
    /// An array of `CK_MECHANISM_TYPE`.
    MechanismList,
    /// An array of attributes (`CKF_ARRAY_ATTRIBUTE`), as `crate::types::encode_attribute_array`
    /// writes it (stored as hex); each attribute in it one sqlhsm knows, none an array itself.
    AttributeArray,
}

/// Where an attribute's value is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    /// In the row's `metadata` (JSON, under the attribute's name).
    Metadata,
    /// Nowhere: computed from the row (columns, public key) on load.
    Derived,
    /// Apart from the other attributes: sealed key material, or a data object's or
    /// certificate's value in its own column.
    Apart,
}

#[derive(Debug)]
pub struct AttrSpec {
    pub kind: CK_ATTRIBUTE_TYPE,
    pub name: &'static str,
    pub encoding: Encoding,
    pub kept: Kept,
}

impl AttrSpec {
    /// Whether [`AttrMap::to_json`] persists it.
    pub fn persisted(&self) -> bool {
        self.kept == Kept::Metadata
    }
}

macro_rules! specs {
    ($( $kind:expr, $name:literal, $enc:ident, $kept:ident; )*) => {
        &[ $( AttrSpec { kind: $kind, name: $name, encoding: Encoding::$enc, kept: Kept::$kept }, )* ]
    };
}

static SPECS: &[AttrSpec] = specs! {
    CKA_CLASS, "class", Ulong, Derived;
    CKA_TOKEN, "token", Bool, Derived;
    CKA_PRIVATE, "private", Bool, Metadata;
    CKA_MODIFIABLE, "modifiable", Bool, Metadata;
    CKA_COPYABLE, "copyable", Bool, Metadata;
    CKA_DESTROYABLE, "destroyable", Bool, Metadata;
    CKA_LABEL, "label", Utf8, Metadata;
    CKA_UNIQUE_ID, "unique_id", Utf8, Derived;
    CKA_KEY_TYPE, "key_type", Ulong, Metadata;
    CKA_ID, "id", Bytes, Metadata;
    CKA_START_DATE, "start_date", Date, Metadata;
    CKA_END_DATE, "end_date", Date, Metadata;
    CKA_DERIVE, "derive", Bool, Metadata;
    CKA_LOCAL, "local", Bool, Metadata;
    CKA_KEY_GEN_MECHANISM, "key_gen_mechanism", Ulong, Metadata;
    CKA_ALLOWED_MECHANISMS, "allowed_mechanisms", MechanismList, Metadata;
    CKA_WRAP_TEMPLATE, "wrap_template", AttributeArray, Metadata;
    CKA_UNWRAP_TEMPLATE, "unwrap_template", AttributeArray, Metadata;
    CKA_DERIVE_TEMPLATE, "derive_template", AttributeArray, Metadata;
    CKA_SUBJECT, "subject", Bytes, Metadata;
    CKA_ENCRYPT, "encrypt", Bool, Metadata;
    CKA_DECRYPT, "decrypt", Bool, Metadata;
    CKA_SIGN, "sign", Bool, Metadata;
    CKA_SIGN_RECOVER, "sign_recover", Bool, Metadata;
    CKA_VERIFY, "verify", Bool, Metadata;
    CKA_VERIFY_RECOVER, "verify_recover", Bool, Metadata;
    CKA_WRAP, "wrap", Bool, Metadata;
    CKA_UNWRAP, "unwrap", Bool, Metadata;
    CKA_TRUSTED, "trusted", Bool, Metadata;
    CKA_WRAP_WITH_TRUSTED, "wrap_with_trusted", Bool, Metadata;
    CKA_SENSITIVE, "sensitive", Bool, Metadata;
    CKA_EXTRACTABLE, "extractable", Bool, Metadata;
    CKA_ALWAYS_SENSITIVE, "always_sensitive", Bool, Metadata;
    CKA_NEVER_EXTRACTABLE, "never_extractable", Bool, Metadata;
    CKA_ALWAYS_AUTHENTICATE, "always_authenticate", Bool, Metadata;
    CKA_PUBLIC_KEY_INFO, "public_key_info", Bytes, Derived;
    CKA_MODULUS, "modulus", Bytes, Derived;
    CKA_MODULUS_BITS, "modulus_bits", Ulong, Derived;
    CKA_PUBLIC_EXPONENT, "public_exponent", Bytes, Derived;
    CKA_PRIVATE_EXPONENT, "private_exponent", Bytes, Apart;
    CKA_PRIME_1, "prime_1", Bytes, Apart;
    CKA_PRIME_2, "prime_2", Bytes, Apart;
    CKA_EXPONENT_1, "exponent_1", Bytes, Apart;
    CKA_EXPONENT_2, "exponent_2", Bytes, Apart;
    CKA_COEFFICIENT, "coefficient", Bytes, Apart;
    CKA_EC_PARAMS, "ec_params", Bytes, Derived;
    CKA_EC_POINT, "ec_point", Bytes, Derived;
    CKA_VALUE, "value", Bytes, Apart;
    CKA_PARAMETER_SET, "parameter_set", Ulong, Derived;
    CKA_SEED, "seed", Bytes, Apart;
    CKA_ENCAPSULATE, "encapsulate", Bool, Metadata;
    CKA_DECAPSULATE, "decapsulate", Bool, Metadata;
    CKA_ENCAPSULATE_TEMPLATE, "encapsulate_template", AttributeArray, Metadata;
    CKA_DECAPSULATE_TEMPLATE, "decapsulate_template", AttributeArray, Metadata;
    CKA_VALUE_LEN, "value_len", Ulong, Metadata;
    CKA_CHECK_VALUE, "check_value", Bytes, Metadata;
    CKA_APPLICATION, "application", Utf8, Metadata;
    CKA_OBJECT_ID, "object_id", Bytes, Metadata;
    CKA_CERTIFICATE_TYPE, "certificate_type", Ulong, Metadata;
    CKA_CERTIFICATE_CATEGORY, "certificate_category", Ulong, Metadata;
    CKA_ISSUER, "issuer", Bytes, Metadata;
    CKA_SERIAL_NUMBER, "serial_number", Bytes, Metadata;
    CKA_URL, "url", Utf8, Metadata;
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY, "hash_of_subject_public_key", Bytes, Metadata;
    CKA_HASH_OF_ISSUER_PUBLIC_KEY, "hash_of_issuer_public_key", Bytes, Metadata;
    CKA_JAVA_MIDP_SECURITY_DOMAIN, "java_midp_security_domain", Ulong, Metadata;
    CKA_NAME_HASH_ALGORITHM, "name_hash_algorithm", Ulong, Metadata;
    vendor::CKA_SQLHSM_KEY_ID, "sqlhsm_key_id", Utf8, Derived;
    vendor::CKA_SQLHSM_KEY_STATUS, "sqlhsm_key_status", Ulong, Derived;
    vendor::CKA_SQLHSM_KEY_MODE, "sqlhsm_key_mode", Ulong, Derived;
    vendor::CKA_SQLHSM_KEY_ALGORITHM, "sqlhsm_key_algorithm", Ulong, Derived;
    vendor::CKA_SQLHSM_EXPIRATION, "sqlhsm_expiration", Ulong, Derived;
    vendor::CKA_SQLHSM_ROTATED_FROM, "sqlhsm_rotated_from", Utf8, Derived;
    vendor::CKA_SQLHSM_ROTATED_TO, "sqlhsm_rotated_to", Utf8, Derived;
};

fn index() -> &'static HashMap<CK_ATTRIBUTE_TYPE, &'static AttrSpec> {
    static INDEX: OnceLock<HashMap<CK_ATTRIBUTE_TYPE, &'static AttrSpec>> = OnceLock::new();
    INDEX.get_or_init(|| SPECS.iter().map(|s| (s.kind, s)).collect())
}

/// The encoding and name of an attribute sqlhsm knows, or `None`.
pub fn spec(kind: CK_ATTRIBUTE_TYPE) -> Option<&'static AttrSpec> {
    index().get(&kind).copied()
}

/// Checks a caller-supplied value's shape against its encoding.
pub fn validate_value(spec: &AttrSpec, value: &[u8]) -> Result<()> {
    let ok = match spec.encoding {
        Encoding::Bool => value.len() == 1,
        Encoding::Ulong => value.len() == std::mem::size_of::<CK_ULONG>(),
        Encoding::Date => {
            value.is_empty() || (value.len() == 8 && value.iter().all(u8::is_ascii_digit))
        }
        Encoding::MechanismList => value.len().is_multiple_of(std::mem::size_of::<CK_ULONG>()),
        Encoding::AttributeArray => crate::types::decode_attribute_array(value)?
            .iter()
            .all(|a| match self::spec(a.kind) {
                Some(inner) if inner.encoding != Encoding::AttributeArray => {
                    validate_value(inner, &a.value).is_ok()
                }
                _ => false,
            }),
        Encoding::Bytes | Encoding::Utf8 => true,
    };
    if ok {
        Ok(())
    } else {
        Err(Rv::ATTRIBUTE_VALUE_INVALID)?
    }
}

pub fn encode_bool(value: bool) -> Vec<u8> {
    vec![u8::from(value)]
}

pub fn encode_ulong(value: CK_ULONG) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
}

pub fn decode_bool(value: &[u8]) -> Option<bool> {
    match value {
        [b] => Some(*b != 0),
        _ => None,
    }
}

pub fn decode_ulong(value: &[u8]) -> Option<CK_ULONG> {
    Some(CK_ULONG::from_ne_bytes(value.try_into().ok()?))
}

/// An object's attributes in their PKCS#11 encoding, key material excluded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttrMap(BTreeMap<CK_ATTRIBUTE_TYPE, Vec<u8>>);

impl AttrMap {
    pub fn new() -> Self {
        AttrMap(BTreeMap::new())
    }

    pub fn get(&self, kind: CK_ATTRIBUTE_TYPE) -> Option<&[u8]> {
        self.0.get(&kind).map(Vec::as_slice)
    }

    pub fn set(&mut self, kind: CK_ATTRIBUTE_TYPE, value: Vec<u8>) {
        self.0.insert(kind, value);
    }

    pub fn set_bool(&mut self, kind: CK_ATTRIBUTE_TYPE, value: bool) {
        self.set(kind, encode_bool(value));
    }

    pub fn set_ulong(&mut self, kind: CK_ATTRIBUTE_TYPE, value: CK_ULONG) {
        self.set(kind, encode_ulong(value));
    }

    pub fn set_default(&mut self, kind: CK_ATTRIBUTE_TYPE, value: Vec<u8>) {
        self.0.entry(kind).or_insert(value);
    }

    pub fn contains(&self, kind: CK_ATTRIBUTE_TYPE) -> bool {
        self.0.contains_key(&kind)
    }

    pub fn remove(&mut self, kind: CK_ATTRIBUTE_TYPE) -> Option<Vec<u8>> {
        self.0.remove(&kind)
    }

    /// A boolean attribute; absent or malformed reads as `false`.
    pub fn flag(&self, kind: CK_ATTRIBUTE_TYPE) -> bool {
        self.get(kind).and_then(decode_bool).unwrap_or(false)
    }

    pub fn ulong(&self, kind: CK_ATTRIBUTE_TYPE) -> Option<CK_ULONG> {
        self.get(kind).and_then(decode_ulong)
    }

    pub fn iter(&self) -> impl Iterator<Item = (CK_ATTRIBUTE_TYPE, &[u8])> {
        self.0.iter().map(|(k, v)| (*k, v.as_slice()))
    }

    /// True when every attribute of `template` is present here with the same value (the
    /// `C_FindObjects` matching rule).
    pub fn matches(&self, template: &[crate::types::Attribute]) -> bool {
        template
            .iter()
            .all(|a| self.get(a.kind).is_some_and(|v| v == a.value.as_slice()))
    }

    /// The persisted form: every non-derived attribute under its readable name.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for (kind, value) in self.iter() {
            let Some(spec) = spec(kind) else { continue };
            if !spec.persisted() {
                continue;
            }
            out.insert(spec.name.to_string(), value_to_json(spec, value));
        }
        Value::Object(out)
    }

    /// Reads what [`AttrMap::to_json`] wrote; unknown names are kept out rather than guessed.
    pub fn from_json(json: &Value) -> Result<AttrMap> {
        let mut map = AttrMap::new();
        let Some(object) = json.as_object() else {
            return Ok(map);
        };
        for (name, value) in object {
            let Some(spec) = SPECS.iter().find(|s| s.name == name) else {
                tracing::warn!(attribute = %name, "ignoring an unknown attribute in stored metadata");
                continue;
            };
            map.set(spec.kind, value_from_json(spec, value)?);
        }
        Ok(map)
    }
}

/// One attribute as [`AttrMap::to_json`] persists it: its readable name and stored value;
/// `None` for an attribute that is never persisted (unknown, derived or secret).
pub fn stored_value(kind: CK_ATTRIBUTE_TYPE, value: &[u8]) -> Option<(&'static str, Value)> {
    let spec = spec(kind)?;
    if !spec.persisted() {
        return None;
    }
    Some((spec.name, value_to_json(spec, value)))
}

fn value_to_json(spec: &AttrSpec, value: &[u8]) -> Value {
    match spec.encoding {
        Encoding::Bool => Value::Bool(decode_bool(value).unwrap_or(false)),
        Encoding::Ulong => decode_ulong(value).map_or(Value::Null, Value::from),
        Encoding::Utf8 | Encoding::Date => match std::str::from_utf8(value) {
            Ok(text) => Value::String(text.to_string()),
            Err(_) => serde_json::json!({ "hex": hex::encode(value) }),
        },
        Encoding::Bytes | Encoding::AttributeArray => Value::String(hex::encode(value)),
        Encoding::MechanismList => Value::Array(
            value
                .chunks_exact(std::mem::size_of::<CK_ULONG>())
                .filter_map(decode_ulong)
                .map(Value::from)
                .collect(),
        ),
    }
}

fn value_from_json(spec: &AttrSpec, value: &Value) -> Result<Vec<u8>> {
    let corrupt = || -> crate::error::Error {
        crate::error::StorageError::Corrupt(format!(
            "attribute {} has a malformed stored value",
            spec.name
        ))
        .into()
    };
    Ok(match spec.encoding {
        Encoding::Bool => encode_bool(value.as_bool().ok_or_else(corrupt)?),
        Encoding::Ulong => encode_ulong(value.as_u64().ok_or_else(corrupt)?),
        Encoding::Utf8 | Encoding::Date => match value {
            Value::String(text) => text.as_bytes().to_vec(),
            Value::Object(o) => {
                let text = o.get("hex").and_then(Value::as_str).ok_or_else(corrupt)?;
                hex::decode(text).map_err(|_| corrupt())?
            }
            _ => return Err(corrupt()),
        },
        Encoding::Bytes | Encoding::AttributeArray => {
            hex::decode(value.as_str().ok_or_else(corrupt)?).map_err(|_| corrupt())?
        }
        Encoding::MechanismList => {
            let items = value.as_array().ok_or_else(corrupt)?;
            let mut out = Vec::new();
            for item in items {
                out.extend_from_slice(&encode_ulong(item.as_u64().ok_or_else(corrupt)?));
            }
            out
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_is_unique() {
        assert_eq!(
            index().len(),
            SPECS.len(),
            "duplicate attribute type in SPECS"
        );
        let mut names: Vec<_> = SPECS.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            SPECS.len(),
            "duplicate attribute name in SPECS"
        );
    }

    #[test]
    fn json_round_trip_skips_derived_and_secret() {
        let mut map = AttrMap::new();
        map.set_bool(CKA_SIGN, true);
        map.set_ulong(CKA_KEY_TYPE, CKK_EC);
        map.set(CKA_LABEL, b"signing".to_vec());
        map.set(CKA_ID, vec![0, 1, 0xff]);
        map.set(CKA_END_DATE, b"20301231".to_vec());
        map.set(
            CKA_ALLOWED_MECHANISMS,
            [encode_ulong(CKM_ECDSA), encode_ulong(CKM_ECDSA_SHA256)].concat(),
        );
        let derived = {
            let mut m = map.clone();
            m.set(CKA_EC_POINT, vec![4, 1, 2]);
            m.set(CKA_VALUE, vec![9; 32]);
            m
        };
        let json = derived.to_json();
        assert!(json.get("ec_point").is_none());
        assert!(json.get("value").is_none());
        assert_eq!(json["id"], "0001ff");
        assert_eq!(json["label"], "signing");
        assert_eq!(AttrMap::from_json(&json).unwrap(), map);
    }

    #[test]
    fn value_shapes_are_checked() {
        let sign = spec(CKA_SIGN).unwrap();
        assert!(validate_value(sign, &[1]).is_ok());
        assert_eq!(
            validate_value(sign, &[1, 0]).unwrap_err().rv(),
            Rv::ATTRIBUTE_VALUE_INVALID
        );
        let len = spec(CKA_VALUE_LEN).unwrap();
        assert_eq!(
            validate_value(len, &[1]).unwrap_err().rv(),
            Rv::ATTRIBUTE_VALUE_INVALID
        );
        let date = spec(CKA_END_DATE).unwrap();
        assert!(validate_value(date, b"").is_ok());
        assert!(validate_value(date, b"2030123x").is_err());
    }

    #[test]
    fn material_and_derived_values_are_not_persisted() {
        assert!(!spec(CKA_VALUE).unwrap().persisted());
        assert!(!spec(CKA_PRIVATE_EXPONENT).unwrap().persisted());
        assert!(!spec(CKA_EC_POINT).unwrap().persisted());
        assert!(!spec(CKA_CLASS).unwrap().persisted());
        assert!(spec(CKA_LABEL).unwrap().persisted());
        assert!(spec(CKA_SENSITIVE).unwrap().persisted());
    }
}

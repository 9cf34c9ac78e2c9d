//! Attribute policy (PKCS#11 3.0 §4.1.2 and the per-class tables of §4): each attribute's value
//! encoding and rules are declared once, as flags, instead of scattered through the object code.
//! The same table drives JSON persistence in the `metadata` column (readable names, typed values).

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
}

/// The value is key material: readable only when the key is neither sensitive nor unextractable,
/// and never part of the attribute map (it lives sealed in storage).
pub const SECRET: u32 = 1;
/// Never settable with `C_SetAttributeValue` (only at creation, or not at all).
pub const READ_ONLY: u32 = 1 << 1;
/// May only change from false to true (`CKA_SENSITIVE`, `CKA_WRAP_WITH_TRUSTED`).
pub const ONLY_TO_TRUE: u32 = 1 << 2;
/// May only change from true to false (`CKA_EXTRACTABLE`).
pub const ONLY_TO_FALSE: u32 = 1 << 3;
/// Computed from the row (columns, public key) on load; never persisted in `metadata`.
pub const DERIVED: u32 = 1 << 4;
/// Set by the token, never by a caller's template (`CKA_LOCAL`, `CKA_ALWAYS_SENSITIVE`, …).
pub const TOKEN_SET: u32 = 1 << 5;
/// Only the security officer may set it to true (`CKA_TRUSTED`).
pub const SO_ONLY: u32 = 1 << 6;

#[derive(Debug)]
pub struct AttrSpec {
    pub kind: CK_ATTRIBUTE_TYPE,
    pub name: &'static str,
    pub encoding: Encoding,
    pub flags: u32,
}

impl AttrSpec {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

macro_rules! specs {
    ($( $kind:expr, $name:literal, $enc:ident, $flags:expr; )*) => {
        &[ $( AttrSpec { kind: $kind, name: $name, encoding: Encoding::$enc, flags: $flags }, )* ]
    };
}

static SPECS: &[AttrSpec] = specs! {
    CKA_CLASS, "class", Ulong, READ_ONLY | DERIVED;
    CKA_TOKEN, "token", Bool, READ_ONLY | DERIVED;
    CKA_PRIVATE, "private", Bool, READ_ONLY;
    CKA_MODIFIABLE, "modifiable", Bool, READ_ONLY;
    CKA_COPYABLE, "copyable", Bool, ONLY_TO_FALSE;
    CKA_DESTROYABLE, "destroyable", Bool, 0;
    CKA_LABEL, "label", Utf8, 0;
    CKA_UNIQUE_ID, "unique_id", Utf8, READ_ONLY | DERIVED | TOKEN_SET;
    CKA_KEY_TYPE, "key_type", Ulong, READ_ONLY;
    CKA_ID, "id", Bytes, 0;
    CKA_START_DATE, "start_date", Date, 0;
    CKA_END_DATE, "end_date", Date, 0;
    CKA_DERIVE, "derive", Bool, 0;
    CKA_LOCAL, "local", Bool, READ_ONLY | TOKEN_SET;
    CKA_KEY_GEN_MECHANISM, "key_gen_mechanism", Ulong, READ_ONLY | TOKEN_SET;
    CKA_ALLOWED_MECHANISMS, "allowed_mechanisms", MechanismList, 0;
    CKA_SUBJECT, "subject", Bytes, 0;
    CKA_ENCRYPT, "encrypt", Bool, 0;
    CKA_DECRYPT, "decrypt", Bool, 0;
    CKA_SIGN, "sign", Bool, 0;
    CKA_SIGN_RECOVER, "sign_recover", Bool, 0;
    CKA_VERIFY, "verify", Bool, 0;
    CKA_VERIFY_RECOVER, "verify_recover", Bool, 0;
    CKA_WRAP, "wrap", Bool, 0;
    CKA_UNWRAP, "unwrap", Bool, 0;
    CKA_TRUSTED, "trusted", Bool, SO_ONLY;
    CKA_WRAP_WITH_TRUSTED, "wrap_with_trusted", Bool, ONLY_TO_TRUE;
    CKA_SENSITIVE, "sensitive", Bool, ONLY_TO_TRUE;
    CKA_EXTRACTABLE, "extractable", Bool, ONLY_TO_FALSE;
    CKA_ALWAYS_SENSITIVE, "always_sensitive", Bool, READ_ONLY | TOKEN_SET;
    CKA_NEVER_EXTRACTABLE, "never_extractable", Bool, READ_ONLY | TOKEN_SET;
    // Fixed at creation (the spec does not list it as modifiable): a user who could clear it
    // would undo the PIN-per-use it demands.
    CKA_ALWAYS_AUTHENTICATE, "always_authenticate", Bool, READ_ONLY;
    CKA_PUBLIC_KEY_INFO, "public_key_info", Bytes, READ_ONLY | DERIVED;
    CKA_MODULUS, "modulus", Bytes, READ_ONLY | DERIVED;
    CKA_MODULUS_BITS, "modulus_bits", Ulong, READ_ONLY | DERIVED;
    CKA_PUBLIC_EXPONENT, "public_exponent", Bytes, READ_ONLY | DERIVED;
    CKA_PRIVATE_EXPONENT, "private_exponent", Bytes, SECRET | READ_ONLY;
    CKA_PRIME_1, "prime_1", Bytes, SECRET | READ_ONLY;
    CKA_PRIME_2, "prime_2", Bytes, SECRET | READ_ONLY;
    CKA_EXPONENT_1, "exponent_1", Bytes, SECRET | READ_ONLY;
    CKA_EXPONENT_2, "exponent_2", Bytes, SECRET | READ_ONLY;
    CKA_COEFFICIENT, "coefficient", Bytes, SECRET | READ_ONLY;
    CKA_EC_PARAMS, "ec_params", Bytes, READ_ONLY | DERIVED;
    CKA_EC_POINT, "ec_point", Bytes, READ_ONLY | DERIVED;
    CKA_VALUE, "value", Bytes, SECRET | READ_ONLY;
    CKA_VALUE_LEN, "value_len", Ulong, READ_ONLY;
    CKA_CHECK_VALUE, "check_value", Bytes, READ_ONLY;
    CKA_APPLICATION, "application", Utf8, 0;
    CKA_OBJECT_ID, "object_id", Bytes, 0;
    CKA_CERTIFICATE_TYPE, "certificate_type", Ulong, READ_ONLY;
    CKA_CERTIFICATE_CATEGORY, "certificate_category", Ulong, 0;
    CKA_ISSUER, "issuer", Bytes, 0;
    CKA_SERIAL_NUMBER, "serial_number", Bytes, 0;
    CKA_URL, "url", Utf8, 0;
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY, "hash_of_subject_public_key", Bytes, 0;
    CKA_HASH_OF_ISSUER_PUBLIC_KEY, "hash_of_issuer_public_key", Bytes, 0;
    CKA_JAVA_MIDP_SECURITY_DOMAIN, "java_midp_security_domain", Ulong, 0;
    CKA_NAME_HASH_ALGORITHM, "name_hash_algorithm", Ulong, 0;
    vendor::CKA_SQLHSM_KEY_ID, "sqlhsm_key_id", Utf8, READ_ONLY | DERIVED | TOKEN_SET;
    vendor::CKA_SQLHSM_KEY_STATUS, "sqlhsm_key_status", Ulong, READ_ONLY | DERIVED | TOKEN_SET;
    vendor::CKA_SQLHSM_KEY_MODE, "sqlhsm_key_mode", Ulong, READ_ONLY | DERIVED | TOKEN_SET;
    vendor::CKA_SQLHSM_KEY_ALGORITHM, "sqlhsm_key_algorithm", Ulong, READ_ONLY | DERIVED | TOKEN_SET;
    vendor::CKA_SQLHSM_EXPIRATION, "sqlhsm_expiration", Ulong, READ_ONLY | DERIVED | TOKEN_SET;
    vendor::CKA_SQLHSM_ROTATED_FROM, "sqlhsm_rotated_from", Utf8, READ_ONLY | DERIVED | TOKEN_SET;
    vendor::CKA_SQLHSM_ROTATED_TO, "sqlhsm_rotated_to", Utf8, READ_ONLY | DERIVED | TOKEN_SET;
};

fn index() -> &'static HashMap<CK_ATTRIBUTE_TYPE, &'static AttrSpec> {
    static INDEX: OnceLock<HashMap<CK_ATTRIBUTE_TYPE, &'static AttrSpec>> = OnceLock::new();
    INDEX.get_or_init(|| SPECS.iter().map(|s| (s.kind, s)).collect())
}

/// The policy of an attribute sqlhsm knows, or `None`.
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
            if spec.has(DERIVED) || spec.has(SECRET) {
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
    if spec.has(DERIVED) || spec.has(SECRET) {
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
        Encoding::Bytes => Value::String(hex::encode(value)),
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
        Encoding::Bytes => {
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
    fn policy_flags_follow_the_spec() {
        assert!(spec(CKA_SENSITIVE).unwrap().has(ONLY_TO_TRUE));
        assert!(spec(CKA_EXTRACTABLE).unwrap().has(ONLY_TO_FALSE));
        assert!(spec(CKA_CLASS).unwrap().has(READ_ONLY));
        assert!(spec(CKA_VALUE).unwrap().has(SECRET));
        assert!(spec(CKA_PRIVATE_EXPONENT).unwrap().has(SECRET));
        assert!(!spec(CKA_LABEL).unwrap().has(READ_ONLY));
    }
}

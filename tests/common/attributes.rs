//! Reading attributes back, and finding objects by label.

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

pub fn get_attr(s: &Session, o: ObjectHandle, t: AttributeType) -> Attribute {
    let mut v = s.get_attributes(o, &[t]).expect("C_GetAttributeValue");
    assert_eq!(v.len(), 1, "attribute {t:?} is available");
    v.remove(0)
}

/// The value of the byte-string attributes every key has; any other attribute back.
fn key_bytes(a: Attribute) -> Result<Vec<u8>, Attribute> {
    match a {
        Attribute::Value(v)
        | Attribute::Label(v)
        | Attribute::Id(v)
        | Attribute::Modulus(v)
        | Attribute::PublicExponent(v)
        | Attribute::EcParams(v)
        | Attribute::EcPoint(v)
        | Attribute::VendorDefined((_, v)) => Ok(v),
        other => Err(other),
    }
}

/// The value of the boolean attributes every key has; any other attribute back.
fn key_bool(a: Attribute) -> Result<bool, Attribute> {
    match a {
        Attribute::Token(b)
        | Attribute::Private(b)
        | Attribute::Sensitive(b)
        | Attribute::Extractable(b)
        | Attribute::AlwaysSensitive(b)
        | Attribute::NeverExtractable(b)
        | Attribute::Local(b)
        | Attribute::Sign(b)
        | Attribute::Verify(b)
        | Attribute::Encrypt(b)
        | Attribute::Decrypt(b)
        | Attribute::Modifiable(b)
        | Attribute::Destroyable(b) => Ok(b),
        other => Err(other),
    }
}

pub fn get_bytes(s: &Session, o: ObjectHandle, t: AttributeType) -> Vec<u8> {
    key_bytes(get_attr(s, o, t)).unwrap_or_else(|other| panic!("not a byte attribute: {other:?}"))
}

pub fn get_bool(s: &Session, o: ObjectHandle, t: AttributeType) -> bool {
    key_bool(get_attr(s, o, t)).unwrap_or_else(|other| panic!("not a boolean attribute: {other:?}"))
}

pub fn get_ulong_vendor(s: &Session, o: ObjectHandle, t: u64) -> u64 {
    let b = get_bytes(s, o, AttributeType::VendorDefined(t));
    assert_eq!(b.len(), std::mem::size_of::<u64>(), "CK_ULONG attribute");
    u64::from_ne_bytes(b.try_into().expect("8 bytes"))
}

/// Any byte-string attribute's value (`CKA_CHECK_VALUE`, `CKA_UNIQUE_ID`, `CKA_SUBJECT`, …).
pub fn get_any_bytes(s: &Session, o: ObjectHandle, t: AttributeType) -> Vec<u8> {
    match key_bytes(get_attr(s, o, t)) {
        Ok(v)
        | Err(
            Attribute::CheckValue(v)
            | Attribute::UniqueId(v)
            | Attribute::PublicKeyInfo(v)
            | Attribute::Subject(v)
            | Attribute::Issuer(v)
            | Attribute::SerialNumber(v)
            | Attribute::Application(v)
            | Attribute::ObjectId(v),
        ) => v,
        Err(other) => panic!("not a byte attribute: {other:?}"),
    }
}

/// Any boolean attribute's value (`CKA_COPYABLE`, `CKA_WRAP`, `CKA_TRUSTED`, …).
pub fn get_any_bool(s: &Session, o: ObjectHandle, t: AttributeType) -> bool {
    match key_bool(get_attr(s, o, t)) {
        Ok(b)
        | Err(
            Attribute::Copyable(b)
            | Attribute::Wrap(b)
            | Attribute::Unwrap(b)
            | Attribute::Derive(b)
            | Attribute::Trusted(b)
            | Attribute::WrapWithTrusted(b),
        ) => b,
        Err(other) => panic!("not a boolean attribute: {other:?}"),
    }
}

pub fn find_by_label(s: &Session, label: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .expect("C_FindObjects")
}

pub fn find_by_label_class(s: &Session, label: &str, class: ObjectClass) -> Vec<ObjectHandle> {
    s.find_objects(&[
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Class(class),
    ])
    .expect("C_FindObjects")
}

//! Reading a caller's template (PKCS#11 3.0 §4.1): one attribute's value, duplicates agreeing;
//! and the templates a key carries for the keys it wraps, unwraps or derives
//! (`CKA_WRAP_TEMPLATE`, `CKA_UNWRAP_TEMPLATE`, `CKA_DERIVE_TEMPLATE`, §4.8–4.10).

use cryptoki_sys::*;

use super::attributes;
use crate::error::{Result, Rv};
use crate::types::Attribute;

/// Looks up one attribute in a caller's template; duplicates must agree.
pub fn find_in_template(template: &[Attribute], kind: CK_ATTRIBUTE_TYPE) -> Result<Option<&[u8]>> {
    let mut found: Option<&[u8]> = None;
    for attr in template.iter().filter(|a| a.kind == kind) {
        match found {
            Some(previous) if previous != attr.value.as_slice() => Err(Rv::TEMPLATE_INCONSISTENT)?,
            _ => found = Some(attr.value.as_slice()),
        }
    }
    Ok(found)
}

pub fn template_bool(template: &[Attribute], kind: CK_ATTRIBUTE_TYPE) -> Result<Option<bool>> {
    match find_in_template(template, kind)? {
        None => Ok(None),
        Some(v) => Ok(Some(
            attributes::decode_bool(v).ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?,
        )),
    }
}

pub fn template_ulong(template: &[Attribute], kind: CK_ATTRIBUTE_TYPE) -> Result<Option<CK_ULONG>> {
    match find_in_template(template, kind)? {
        None => Ok(None),
        Some(v) => Ok(Some(
            attributes::decode_ulong(v).ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?,
        )),
    }
}

/// The caller's template for a key that `key` unwraps or derives, with `key`'s template
/// attribute (`CKA_UNWRAP_TEMPLATE`, `CKA_DERIVE_TEMPLATE`) applied: its attributes are added,
/// and one the caller also gives must have the same value (`CKR_TEMPLATE_INCONSISTENT`).
pub fn with_key_template<'a>(
    key: &attributes::AttrMap,
    kind: CK_ATTRIBUTE_TYPE,
    template: &'a [Attribute],
) -> Result<std::borrow::Cow<'a, [Attribute]>> {
    let Some(stored) = key.get(kind) else {
        return Ok(std::borrow::Cow::Borrowed(template));
    };
    let mut merged = template.to_vec();
    for attr in crate::types::decode_attribute_array(stored)? {
        match find_in_template(template, attr.kind)? {
            Some(given) if given != attr.value.as_slice() => Err(Rv::TEMPLATE_INCONSISTENT)?,
            Some(_) => {}
            None => merged.push(attr),
        }
    }
    Ok(std::borrow::Cow::Owned(merged))
}

/// Whether `target` has every attribute of `key`'s `CKA_WRAP_TEMPLATE` with the same value
/// (true when `key` has none).
pub fn matches_key_template(
    key: &attributes::AttrMap,
    kind: CK_ATTRIBUTE_TYPE,
    target: &attributes::AttrMap,
) -> Result<bool> {
    let Some(stored) = key.get(kind) else {
        return Ok(true);
    };
    Ok(crate::types::decode_attribute_array(stored)?
        .iter()
        .all(|a| target.get(a.kind) == Some(a.value.as_slice())))
}

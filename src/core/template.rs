//! Reading a caller's template (PKCS#11 3.0 §4.1): one attribute's value, duplicates agreeing.

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

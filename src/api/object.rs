//! Object management (PKCS#11 3.0 §5.7).

use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::core::module;
use crate::error::Result;
use crate::types::Attribute;

pub use crate::types::AttributeRequest;

pub fn create_object(
    session: CK_SESSION_HANDLE,
    template: &[Attribute],
) -> Result<CK_OBJECT_HANDLE> {
    module()?.create_object(session, template)
}

pub fn copy_object(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: &[Attribute],
) -> Result<CK_OBJECT_HANDLE> {
    module()?.copy_object(session, object, template)
}

pub fn destroy_object(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> Result<()> {
    module()?.destroy_object(session, object)
}

pub fn get_object_size(session: CK_SESSION_HANDLE, object: CK_OBJECT_HANDLE) -> Result<usize> {
    module()?.object_size(session, object)
}

/// Fills every request it can and returns the spec's error for the template as a whole
/// (`CKR_ATTRIBUTE_SENSITIVE`, `CKR_ATTRIBUTE_TYPE_INVALID` or `CKR_BUFFER_TOO_SMALL`) after
/// processing every entry, as PKCS#11 3.0 §5.7 requires.
pub fn get_attribute_value(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    requests: &mut [AttributeRequest<'_>],
) -> Result<()> {
    module()?.get_attribute_value(session, object, requests)
}

pub fn set_attribute_value(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    template: &[Attribute],
) -> Result<()> {
    module()?.set_attribute_value(session, object, template)
}

pub fn find_objects_init(session: CK_SESSION_HANDLE, template: &[Attribute]) -> Result<()> {
    module()?.find_objects_init(session, template)
}

pub fn find_objects(session: CK_SESSION_HANDLE, max: usize) -> Result<Vec<CK_OBJECT_HANDLE>> {
    module()?.find_objects(session, max)
}

pub fn find_objects_final(session: CK_SESSION_HANDLE) -> Result<()> {
    module()?.find_objects_final(session)
}

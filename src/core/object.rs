//! Objects as the core sees them (PKCS#11 3.0 §4): where an object lives, its attributes, its
//! material, and reading a caller's template. What each class carries and the rules for its
//! attributes are the tables of [`super::policy`].

use std::sync::{Arc, RwLock};

use cryptoki_sys::*;
use uuid::Uuid;

use super::attributes::{self, AttrMap};
use crate::error::{Result, Rv};
use crate::mechanism::KeyMaterial;
use crate::types::Attribute;

/// Which of a row's objects a handle names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Half {
    /// The `CKO_PUBLIC_KEY` of an `asym_key` row.
    Public,
    /// The `CKO_PRIVATE_KEY` of an `asym_key` row.
    Private,
    /// The `CKO_SECRET_KEY` of a `sym_key` row.
    Secret,
    /// The certificate or data object of a `p11_object` row.
    Standalone,
}

/// Where an object lives: a database row (token object) or this process's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectId {
    Token { row: Uuid, half: Half },
    Session(u64),
}

/// Where a token key's private or secret material is, as its row says.
#[derive(Clone, PartialEq, Eq)]
pub enum Sealed {
    /// Sealed under the token key (key modes LOCAL and PROVIDER_ROOT_KEY): the bytes and the
    /// associated data they were sealed with.
    Local { bytes: Vec<u8>, aad: Vec<u8> },
    /// Held by the token's remote module (key mode REMOTE).
    Remote(crate::provider::RemoteRef),
}

impl Sealed {
    /// How many bytes of material the row stores.
    pub fn stored_len(&self) -> usize {
        match self {
            Sealed::Local { bytes, .. } => bytes.len(),
            Sealed::Remote(_) => 0,
        }
    }
}

/// An object with its attributes and, for keys, its material (unwrapped on first use).
pub struct Object {
    pub id: ObjectId,
    /// The token (provider_config row) the object belongs to.
    pub token: Uuid,
    /// For session objects: the session that created it (it dies with that session).
    pub owner_session: Option<CK_SESSION_HANDLE>,
    pub attrs: AttrMap,
    /// Sealed private or secret material, for token objects not yet unwrapped.
    pub sealed: Option<Sealed>,
    /// Unwrapped material, cached after first use (public keys are loaded eagerly).
    pub material: RwLock<Option<KeyMaterial>>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("id", &self.id)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Object {
    pub fn class(&self) -> CK_OBJECT_CLASS {
        self.attrs
            .ulong(CKA_CLASS)
            .unwrap_or(CK_UNAVAILABLE_INFORMATION)
    }

    pub fn is_private(&self) -> bool {
        self.attrs.flag(CKA_PRIVATE)
    }

    pub fn is_token(&self) -> bool {
        matches!(self.id, ObjectId::Token { .. })
    }

    /// A copy with other attributes (used for copy-on-write updates of cached objects).
    pub fn with_attrs(&self, attrs: AttrMap) -> Result<Object> {
        Ok(Object {
            id: self.id,
            token: self.token,
            owner_session: self.owner_session,
            attrs,
            sealed: self.sealed.clone(),
            material: RwLock::new(self.material.read()?.clone()),
        })
    }

    pub fn cached_material(&self) -> Result<Option<KeyMaterial>> {
        Ok(self.material.read()?.clone())
    }
}

pub type ObjectRef = Arc<Object>;

/// How an object came to be, for `CKA_LOCAL`, `CKA_KEY_GEN_MECHANISM`, `CKA_ALWAYS_SENSITIVE`
/// and `CKA_NEVER_EXTRACTABLE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Generated(CK_MECHANISM_TYPE),
    Imported,
}

pub use super::policy::{applies, build_key_attrs};

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

//! Objects as the core sees them (PKCS#11 3.0 §4): where an object lives, its attributes, and its
//! material. What each class carries and the rules for its attributes are the tables of
//! `policy`; a caller's template is read by `template`.

use std::sync::{Arc, RwLock};

use cryptoki_sys::*;
use uuid::Uuid;

use super::attributes::AttrMap;
use crate::error::Result;
use crate::mechanism::KeyMaterial;

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

pub use super::policy::{applies, build_key_attrs};

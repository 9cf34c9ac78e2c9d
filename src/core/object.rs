//! Objects as the core sees them (PKCS#11 3.0 §4): where an object lives, its attributes, and
//! the rules for building a new object's attributes from a caller's template and the defaults.
//! Defaults follow SoftHSMv2, the compatibility reference real clients are tested against.

use std::sync::{Arc, RwLock};

use cryptoki_sys::*;
use uuid::Uuid;

use super::attributes::{self, AttrMap, READ_ONLY, SECRET, TOKEN_SET};
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

const COMMON: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_LABEL,
    CKA_UNIQUE_ID,
];
const KEY: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_KEY_TYPE,
    CKA_ID,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_DERIVE,
    CKA_LOCAL,
    CKA_KEY_GEN_MECHANISM,
    CKA_ALLOWED_MECHANISMS,
];
const PUBLIC: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_SUBJECT,
    CKA_ENCRYPT,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_WRAP,
    CKA_TRUSTED,
    CKA_PUBLIC_KEY_INFO,
];
const PRIVATE: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_SUBJECT,
    CKA_SENSITIVE,
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_UNWRAP,
    CKA_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_NEVER_EXTRACTABLE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_PUBLIC_KEY_INFO,
];
const SECRET_KEY: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_NEVER_EXTRACTABLE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_TRUSTED,
    CKA_VALUE,
    CKA_VALUE_LEN,
    CKA_CHECK_VALUE,
];
const RSA_PUBLIC: &[CK_ATTRIBUTE_TYPE] = &[CKA_MODULUS, CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT];
const RSA_PRIVATE: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_MODULUS,
    CKA_PUBLIC_EXPONENT,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_COEFFICIENT,
];
const EC_PUBLIC: &[CK_ATTRIBUTE_TYPE] = &[CKA_EC_PARAMS, CKA_EC_POINT];
// CKA_EC_POINT on the private half is an extension (PKCS#11 3.2 adds it); clients such as
// OpenSSL's providers read it to avoid a second lookup.
const EC_PRIVATE: &[CK_ATTRIBUTE_TYPE] = &[CKA_EC_PARAMS, CKA_EC_POINT, CKA_VALUE];
const VENDOR: &[CK_ATTRIBUTE_TYPE] = &[
    crate::vendor::CKA_SQLHSM_KEY_ID,
    crate::vendor::CKA_SQLHSM_KEY_STATUS,
    crate::vendor::CKA_SQLHSM_KEY_MODE,
    crate::vendor::CKA_SQLHSM_KEY_ALGORITHM,
    crate::vendor::CKA_SQLHSM_EXPIRATION,
    crate::vendor::CKA_SQLHSM_ROTATED_FROM,
    crate::vendor::CKA_SQLHSM_ROTATED_TO,
];

const DATA: &[CK_ATTRIBUTE_TYPE] = &[CKA_APPLICATION, CKA_OBJECT_ID, CKA_VALUE];
const CERTIFICATE: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CERTIFICATE_TYPE,
    CKA_TRUSTED,
    CKA_CERTIFICATE_CATEGORY,
    CKA_CHECK_VALUE,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_PUBLIC_KEY_INFO,
];
const X509: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_SUBJECT,
    CKA_ID,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_VALUE,
    CKA_URL,
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
    CKA_HASH_OF_ISSUER_PUBLIC_KEY,
    CKA_JAVA_MIDP_SECURITY_DOMAIN,
    CKA_NAME_HASH_ALGORITHM,
];

/// Whether `kind` is an attribute of objects of this class and key type (for certificates,
/// `key_type` is the certificate type).
pub fn applies(class: CK_OBJECT_CLASS, key_type: CK_KEY_TYPE, kind: CK_ATTRIBUTE_TYPE) -> bool {
    match class {
        CKO_DATA => return [COMMON, DATA].iter().any(|set| set.contains(&kind)),
        CKO_CERTIFICATE => {
            let x509: &[CK_ATTRIBUTE_TYPE] = if key_type == CKC_X_509 { X509 } else { &[] };
            return [COMMON, CERTIFICATE, x509]
                .iter()
                .any(|set| set.contains(&kind));
        }
        _ => {}
    }
    let type_specific: &[CK_ATTRIBUTE_TYPE] = match (class, key_type) {
        (CKO_PUBLIC_KEY, CKK_RSA) => RSA_PUBLIC,
        (CKO_PRIVATE_KEY, CKK_RSA) => RSA_PRIVATE,
        (CKO_PUBLIC_KEY, CKK_EC | CKK_EC_EDWARDS) => EC_PUBLIC,
        (CKO_PRIVATE_KEY, CKK_EC | CKK_EC_EDWARDS) => EC_PRIVATE,
        _ => &[],
    };
    let class_specific: &[CK_ATTRIBUTE_TYPE] = match class {
        CKO_PUBLIC_KEY => PUBLIC,
        CKO_PRIVATE_KEY => PRIVATE,
        CKO_SECRET_KEY => SECRET_KEY,
        _ => &[],
    };
    [COMMON, KEY, class_specific, type_specific, VENDOR]
        .iter()
        .any(|set| set.contains(&kind))
}

/// [`applies`] for an existing object, from its own attributes: the class, refined by
/// `CKA_KEY_TYPE` for a key and by `CKA_CERTIFICATE_TYPE` for a certificate (a certificate has
/// no key type, and reading one made every X.509 attribute look foreign to it).
pub fn applies_to(attrs: &AttrMap, kind: CK_ATTRIBUTE_TYPE) -> bool {
    let class = attrs.ulong(CKA_CLASS).unwrap_or(CK_UNAVAILABLE_INFORMATION);
    let refinement = match class {
        CKO_CERTIFICATE => CKA_CERTIFICATE_TYPE,
        _ => CKA_KEY_TYPE,
    };
    let subtype = attrs
        .ulong(refinement)
        .unwrap_or(CK_UNAVAILABLE_INFORMATION);
    applies(class, subtype, kind)
}

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

/// Builds a new key object's attributes: defaults for the class, then the caller's template.
/// `consumed` lists attributes the caller of this function handles itself (key material and
/// generation parameters such as `CKA_MODULUS_BITS`); derived public values are added later.
pub fn build_key_attrs(
    class: CK_OBJECT_CLASS,
    key_type: CK_KEY_TYPE,
    template: &[Attribute],
    consumed: &[CK_ATTRIBUTE_TYPE],
    origin: Origin,
) -> Result<AttrMap> {
    if let Some(given) = template_ulong(template, CKA_CLASS)? {
        if given != class {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
    }
    if let Some(given) = template_ulong(template, CKA_KEY_TYPE)? {
        if given != key_type {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
    }

    let mut attrs = AttrMap::new();
    attrs.set_ulong(CKA_CLASS, class);
    attrs.set_ulong(CKA_KEY_TYPE, key_type);
    for attr in template {
        if attr.kind == CKA_CLASS || attr.kind == CKA_KEY_TYPE || consumed.contains(&attr.kind) {
            continue;
        }
        let spec = attributes::spec(attr.kind).ok_or(Rv::ATTRIBUTE_TYPE_INVALID)?;
        attributes::validate_value(spec, &attr.value)?;
        if !applies(class, key_type, attr.kind) {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
        if spec.has(TOKEN_SET)
            || (spec.has(SECRET) && spec.has(READ_ONLY))
            || (spec.has(attributes::DERIVED) && attr.kind != CKA_TOKEN)
        {
            // Set by the token itself (CKA_LOCAL, …) or derived from the key: a caller may not
            // dictate them.
            Err(Rv::ATTRIBUTE_READ_ONLY)?
        }
        find_in_template(template, attr.kind)?;
        attrs.set(attr.kind, attr.value.to_vec());
    }

    apply_defaults(&mut attrs, class, origin);
    Ok(attrs)
}

fn apply_defaults(attrs: &mut AttrMap, class: CK_OBJECT_CLASS, origin: Origin) {
    let t = attributes::encode_bool(true);
    let f = attributes::encode_bool(false);
    attrs.set_default(CKA_TOKEN, f.clone());
    attrs.set_default(
        CKA_PRIVATE,
        attributes::encode_bool(class != CKO_PUBLIC_KEY),
    );
    attrs.set_default(CKA_MODIFIABLE, t.clone());
    attrs.set_default(CKA_COPYABLE, t.clone());
    attrs.set_default(CKA_DESTROYABLE, t.clone());
    attrs.set_default(CKA_LABEL, Vec::new());
    attrs.set_default(CKA_ID, Vec::new());
    attrs.set_default(CKA_START_DATE, Vec::new());
    attrs.set_default(CKA_END_DATE, Vec::new());
    attrs.set_default(CKA_DERIVE, f.clone());
    attrs.set_default(CKA_ALLOWED_MECHANISMS, Vec::new());
    let (local, mechanism) = match origin {
        Origin::Generated(m) => (true, m),
        Origin::Imported => (false, CK_UNAVAILABLE_INFORMATION),
    };
    attrs.set_bool(CKA_LOCAL, local);
    attrs.set_ulong(CKA_KEY_GEN_MECHANISM, mechanism);

    let defaults: &[(CK_ATTRIBUTE_TYPE, bool)] = match class {
        CKO_PUBLIC_KEY => &[
            (CKA_ENCRYPT, true),
            (CKA_VERIFY, true),
            (CKA_VERIFY_RECOVER, true),
            (CKA_WRAP, true),
            (CKA_TRUSTED, false),
        ],
        CKO_PRIVATE_KEY => &[
            (CKA_SENSITIVE, true),
            (CKA_DECRYPT, true),
            (CKA_SIGN, true),
            (CKA_SIGN_RECOVER, true),
            (CKA_UNWRAP, true),
            (CKA_EXTRACTABLE, false),
            (CKA_WRAP_WITH_TRUSTED, false),
            (CKA_ALWAYS_AUTHENTICATE, false),
        ],
        CKO_SECRET_KEY => &[
            (CKA_SENSITIVE, true),
            (CKA_ENCRYPT, true),
            (CKA_DECRYPT, true),
            (CKA_SIGN, true),
            (CKA_VERIFY, true),
            (CKA_WRAP, true),
            (CKA_UNWRAP, true),
            (CKA_EXTRACTABLE, false),
            (CKA_WRAP_WITH_TRUSTED, false),
            (CKA_TRUSTED, false),
        ],
        _ => &[],
    };
    for (kind, value) in defaults {
        attrs.set_default(*kind, attributes::encode_bool(*value));
    }
    if matches!(class, CKO_PUBLIC_KEY | CKO_PRIVATE_KEY) {
        attrs.set_default(CKA_SUBJECT, Vec::new());
    }
    if matches!(class, CKO_PRIVATE_KEY | CKO_SECRET_KEY) {
        // A key is "always sensitive" / "never extractable" only if the token made it so.
        let generated = local;
        attrs.set_bool(CKA_ALWAYS_SENSITIVE, generated && attrs.flag(CKA_SENSITIVE));
        attrs.set_bool(
            CKA_NEVER_EXTRACTABLE,
            generated && !attrs.flag(CKA_EXTRACTABLE),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_secure_and_softhsm_like() {
        let attrs = build_key_attrs(
            CKO_PRIVATE_KEY,
            CKK_EC,
            &[],
            &[],
            Origin::Generated(CKM_EC_KEY_PAIR_GEN),
        )
        .unwrap();
        assert!(attrs.flag(CKA_SENSITIVE));
        assert!(!attrs.flag(CKA_EXTRACTABLE));
        assert!(attrs.flag(CKA_ALWAYS_SENSITIVE));
        assert!(attrs.flag(CKA_NEVER_EXTRACTABLE));
        assert!(attrs.flag(CKA_PRIVATE));
        assert!(attrs.flag(CKA_SIGN));
        assert!(attrs.flag(CKA_LOCAL));
        assert_eq!(
            attrs.ulong(CKA_KEY_GEN_MECHANISM),
            Some(CKM_EC_KEY_PAIR_GEN)
        );

        let public = build_key_attrs(CKO_PUBLIC_KEY, CKK_EC, &[], &[], Origin::Imported).unwrap();
        assert!(!public.flag(CKA_PRIVATE));
        assert!(public.flag(CKA_VERIFY));
        assert!(!public.flag(CKA_LOCAL));
    }

    #[test]
    fn imported_keys_are_not_always_sensitive() {
        let attrs = build_key_attrs(CKO_SECRET_KEY, CKK_AES, &[], &[], Origin::Imported).unwrap();
        assert!(!attrs.flag(CKA_ALWAYS_SENSITIVE));
        assert!(!attrs.flag(CKA_NEVER_EXTRACTABLE));
    }

    #[test]
    fn template_rules() {
        let wrong_class = [Attribute::from_ulong(CKA_CLASS, CKO_PUBLIC_KEY)];
        let err = build_key_attrs(CKO_PRIVATE_KEY, CKK_EC, &wrong_class, &[], Origin::Imported)
            .unwrap_err();
        assert_eq!(err.rv(), Rv::TEMPLATE_INCONSISTENT);

        let sign_on_public = [Attribute::from_bool(CKA_SIGN, true)];
        let err = build_key_attrs(
            CKO_PUBLIC_KEY,
            CKK_EC,
            &sign_on_public,
            &[],
            Origin::Imported,
        )
        .unwrap_err();
        assert_eq!(err.rv(), Rv::TEMPLATE_INCONSISTENT);

        let local = [Attribute::from_bool(CKA_LOCAL, true)];
        let err =
            build_key_attrs(CKO_PRIVATE_KEY, CKK_EC, &local, &[], Origin::Imported).unwrap_err();
        assert_eq!(err.rv(), Rv::ATTRIBUTE_READ_ONLY);

        let unknown = [Attribute::new(0x7fff_fff0, vec![1])];
        let err =
            build_key_attrs(CKO_PRIVATE_KEY, CKK_EC, &unknown, &[], Origin::Imported).unwrap_err();
        assert_eq!(err.rv(), Rv::ATTRIBUTE_TYPE_INVALID);

        let conflicting = [
            Attribute::from_bool(CKA_SIGN, true),
            Attribute::from_bool(CKA_SIGN, false),
        ];
        let err = build_key_attrs(CKO_PRIVATE_KEY, CKK_EC, &conflicting, &[], Origin::Imported)
            .unwrap_err();
        assert_eq!(err.rv(), Rv::TEMPLATE_INCONSISTENT);

        let bad_bool = [Attribute::new(CKA_SIGN, vec![1, 1])];
        let err =
            build_key_attrs(CKO_PRIVATE_KEY, CKK_EC, &bad_bool, &[], Origin::Imported).unwrap_err();
        assert_eq!(err.rv(), Rv::ATTRIBUTE_VALUE_INVALID);
    }
}

//! Attribute policy per object class (PKCS#11 3.0 §4.4–§4.10): for each class one table says
//! which attributes its objects carry, the default of each, and what a caller may do with it —
//! give it when creating, must give it, change it with `C_SetAttributeValue` or
//! `C_CopyObject`, only one way, only as the security officer — and whether it is key material.
//! The object functions read these tables and nothing else; an attribute's encoding and
//! persistence are in [`super::attributes`]. Defaults follow SoftHSMv2, the compatibility
//! reference real clients are tested against.

use bitflags::bitflags;
use cryptoki_sys::*;

use super::attributes::{self, AttrMap};
use super::template::{find_in_template, template_ulong};
use crate::error::{Result, Rv};
use crate::types::Attribute;
use crate::vendor;

/// How an object came to be, for `CKA_LOCAL`, `CKA_KEY_GEN_MECHANISM`, `CKA_ALWAYS_SENSITIVE`
/// and `CKA_NEVER_EXTRACTABLE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Generated(CK_MECHANISM_TYPE),
    Imported,
}

bitflags! {
    /// What a caller may do with one attribute of one class.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Rules: u16 {
        /// A creating template (`C_CreateObject`, `C_GenerateKey(Pair)`, `C_UnwrapKey`,
        /// `C_DeriveKey`) may give it. Key material and public values are not given this way:
        /// the import reads them from the template itself ([`Rules::REQUIRED`]).
        const CREATE = 1;
        /// `C_CreateObject` needs it (`CKR_TEMPLATE_INCOMPLETE` without it).
        const REQUIRED = 1 << 1;
        /// `C_SetAttributeValue` may change it.
        const MODIFY = 1 << 2;
        /// `C_CopyObject` may change it although `C_SetAttributeValue` may not: where the copy
        /// lives and how it is protected.
        const COPY = 1 << 3;
        /// A change may only turn it from false to true (`CKA_SENSITIVE`).
        const TO_TRUE_ONLY = 1 << 4;
        /// A change may only turn it from true to false (`CKA_EXTRACTABLE`).
        const TO_FALSE_ONLY = 1 << 5;
        /// Only the security officer may set it to true (`CKA_TRUSTED`, §4.9) — and, in
        /// sqlhsm, change it at all once set: a user clearing it (or copying the key without
        /// it) would make a key that wrapped sensitive keys unwrap them readable
        /// ([`super::extraction::check_unwrap_template`]).
        const SO_ONLY = 1 << 6;
        /// Key material: never in the attribute map (it is sealed in storage), readable only
        /// from a key that is neither sensitive nor unextractable.
        const SENSITIVE = 1 << 7;
    }
}

/// A new object's value of an attribute its template left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initial {
    /// None: the attribute is absent unless the template gives it.
    Absent,
    Bool(bool),
    /// The empty value (no label, no id, no date, no mechanism list).
    Empty,
    Ulong(CK_ULONG),
    /// Set by the token from how the key came to be ([`Origin`]), whatever the template says:
    /// `CKA_LOCAL`, `CKA_KEY_GEN_MECHANISM`, `CKA_ALWAYS_SENSITIVE`, `CKA_NEVER_EXTRACTABLE`.
    Origin,
    /// Computed by the token: from the key (public values, check value), the certificate
    /// (issuer, serial number) or the row (unique id, vendor attributes).
    Computed,
}

/// One attribute of one class.
#[derive(Debug)]
pub struct Row {
    pub kind: CK_ATTRIBUTE_TYPE,
    /// The key types (for certificates, the certificate types) it applies to; empty: all.
    pub only: &'static [CK_ULONG],
    pub default: Initial,
    pub rules: Rules,
}

impl Row {
    pub fn applies(&self, subtype: CK_ULONG) -> bool {
        self.only.is_empty() || self.only.contains(&subtype)
    }
}

/// The attributes of one object class.
#[derive(Debug)]
pub struct ClassPolicy {
    pub class: CK_OBJECT_CLASS,
    pub rows: &'static [Row],
}

const fn row(kind: CK_ATTRIBUTE_TYPE, default: Initial, rules: Rules) -> Row {
    Row {
        kind,
        only: &[],
        default,
        rules,
    }
}

const fn only(subtypes: &'static [CK_ULONG], row: Row) -> Row {
    Row {
        only: subtypes,
        ..row
    }
}

use Initial::{Absent, Bool, Computed, Empty, Ulong};
const NONE: Rules = Rules::empty();
const CREATE: Rules = Rules::CREATE;
const REQUIRED: Rules = Rules::REQUIRED;
const MODIFY: Rules = Rules::MODIFY;
const COPY: Rules = Rules::COPY;
const TO_TRUE_ONLY: Rules = Rules::TO_TRUE_ONLY;
const TO_FALSE_ONLY: Rules = Rules::TO_FALSE_ONLY;
const SO_ONLY: Rules = Rules::SO_ONLY;
const SENSITIVE: Rules = Rules::SENSITIVE;
/// Settable at creation and changeable afterwards.
const FREE: Rules = CREATE.union(MODIFY);

const RSA: &[CK_ULONG] = &[CKK_RSA];
const EC: &[CK_ULONG] = &[CKK_EC, CKK_EC_EDWARDS, CKK_EC_MONTGOMERY];
const X509: &[CK_ULONG] = &[CKC_X_509];
/// The PKCS#11 3.2 key types with a parameter set, whose public key is one encoded value.
const PQ: &[CK_ULONG] = &[CKK_ML_KEM, CKK_ML_DSA, CKK_SLH_DSA];
/// OpenTDF's hybrid KEM key types (vendor): one encoded value each, no parameter set.
const HYBRID: &[CK_ULONG] = &[
    vendor::CKK_SQLHSM_XWING,
    vendor::CKK_SQLHSM_P256_ML_KEM_768,
    vendor::CKK_SQLHSM_P384_ML_KEM_1024,
];
/// The key types that encapsulate and decapsulate (PKCS#11 3.2 §5.18).
const KEM: &[CK_ULONG] = &[
    CKK_ML_KEM,
    vendor::CKK_SQLHSM_XWING,
    vendor::CKK_SQLHSM_P256_ML_KEM_768,
    vendor::CKK_SQLHSM_P384_ML_KEM_1024,
];

/// A class table: the rows of every class (§4.4: the storage attributes), then `$row`s.
/// `CKA_TOKEN` and `CKA_PRIVATE` are chosen at creation or copy; `CKA_MODIFIABLE` too, a copy
/// only clearing it.
macro_rules! storage_then {
    (private: $private:expr; $($row:expr),* $(,)?) => {
        &[
            row(CKA_CLASS, Computed, CREATE.union(REQUIRED)),
            row(CKA_TOKEN, Bool(false), CREATE.union(COPY)),
            row(CKA_PRIVATE, Bool($private), CREATE.union(COPY)),
            row(CKA_MODIFIABLE, Bool(true), CREATE.union(COPY).union(TO_FALSE_ONLY)),
            row(CKA_COPYABLE, Bool(true), FREE.union(TO_FALSE_ONLY)),
            row(CKA_DESTROYABLE, Bool(true), FREE),
            row(CKA_LABEL, Empty, FREE),
            row(CKA_UNIQUE_ID, Computed, NONE),
            $($row),*
        ]
    };
}

/// A key class's table: the storage rows, the rows of every key (§4.7) and sqlhsm's vendor
/// attributes (from the row: lifecycle state, names, rotation links), then `$row`s.
macro_rules! key_then {
    (private: $private:expr; $($row:expr),* $(,)?) => {
        storage_then!(private: $private;
            row(CKA_KEY_TYPE, Computed, CREATE.union(REQUIRED)),
            row(CKA_ID, Empty, FREE),
            row(CKA_START_DATE, Empty, FREE),
            row(CKA_END_DATE, Empty, FREE),
            row(CKA_LOCAL, Initial::Origin, NONE),
            row(CKA_KEY_GEN_MECHANISM, Initial::Origin, NONE),
            row(CKA_ALLOWED_MECHANISMS, Empty, FREE),
            row(vendor::CKA_SQLHSM_KEY_ID, Computed, NONE),
            row(vendor::CKA_SQLHSM_KEY_STATUS, Computed, NONE),
            row(vendor::CKA_SQLHSM_KEY_MODE, Computed, NONE),
            row(vendor::CKA_SQLHSM_KEY_ALGORITHM, Computed, NONE),
            row(vendor::CKA_SQLHSM_EXPIRATION, Computed, NONE),
            row(vendor::CKA_SQLHSM_ROTATED_FROM, Computed, NONE),
            row(vendor::CKA_SQLHSM_ROTATED_TO, Computed, NONE),
            $($row),*
        )
    };
}

/// `CKO_DATA` (§4.5): private unless said otherwise (it may hold secrets). Its value is its
/// content, which an application may change.
static DATA: &[Row] = storage_then!(private: true;
    row(CKA_APPLICATION, Empty, FREE),
    row(CKA_OBJECT_ID, Empty, FREE),
    row(CKA_VALUE, Empty, FREE),
);

/// `CKO_CERTIFICATE` (§4.6), X.509 only: public, as in SoftHSMv2; created with its value and
/// subject, which it is checked against; optional fields left out are read from it.
static CERTIFICATE: &[Row] = storage_then!(private: false;
        row(CKA_CERTIFICATE_TYPE, Absent, CREATE.union(REQUIRED)),
        row(CKA_TRUSTED, Bool(false), FREE.union(SO_ONLY)),
        row(
            CKA_CERTIFICATE_CATEGORY,
            Ulong(CK_CERTIFICATE_CATEGORY_UNSPECIFIED),
            FREE,
        ),
        // A given check value must be the certificate's.
        row(CKA_CHECK_VALUE, Computed, CREATE),
        row(CKA_START_DATE, Empty, FREE),
        row(CKA_END_DATE, Empty, FREE),
        // Always the certificate's own; a template may repeat it.
        row(CKA_PUBLIC_KEY_INFO, Computed, CREATE),
        only(X509, row(CKA_SUBJECT, Absent, FREE.union(REQUIRED))),
        only(X509, row(CKA_ID, Empty, FREE)),
        only(X509, row(CKA_ISSUER, Computed, FREE)),
        only(X509, row(CKA_SERIAL_NUMBER, Computed, FREE)),
        only(X509, row(CKA_VALUE, Absent, CREATE.union(REQUIRED))),
        only(X509, row(CKA_URL, Empty, FREE)),
        only(X509, row(CKA_HASH_OF_SUBJECT_PUBLIC_KEY, Empty, FREE)),
        only(X509, row(CKA_HASH_OF_ISSUER_PUBLIC_KEY, Empty, FREE)),
        only(
            X509,
            row(
                CKA_JAVA_MIDP_SECURITY_DOMAIN,
                Ulong(CK_SECURITY_DOMAIN_UNSPECIFIED),
                FREE,
            ),
        ),
        only(X509, row(CKA_NAME_HASH_ALGORITHM, Ulong(CKM_SHA_1), FREE)),
);

/// `CKO_PUBLIC_KEY` (§4.8): public; its values are the key's.
static PUBLIC_KEY: &[Row] = key_then!(private: false;
        row(CKA_SUBJECT, Empty, FREE),
        row(CKA_DERIVE, Bool(false), FREE),
        row(CKA_ENCRYPT, Bool(true), FREE),
        row(CKA_VERIFY, Bool(true), FREE),
        row(CKA_VERIFY_RECOVER, Bool(true), FREE),
        row(CKA_WRAP, Bool(true), FREE),
        row(CKA_TRUSTED, Bool(false), FREE.union(SO_ONLY)),
        // What a key wrapped with this one must match (§4.8), fixed at creation.
        row(CKA_WRAP_TEMPLATE, Absent, CREATE),
        row(CKA_PUBLIC_KEY_INFO, Computed, NONE),
        only(RSA, row(CKA_MODULUS, Computed, REQUIRED)),
        only(RSA, row(CKA_MODULUS_BITS, Computed, NONE)),
        only(RSA, row(CKA_PUBLIC_EXPONENT, Computed, REQUIRED)),
        only(EC, row(CKA_EC_PARAMS, Computed, REQUIRED)),
        only(EC, row(CKA_EC_POINT, Computed, REQUIRED)),
        // PKCS#11 3.2 §6.67–§6.69: generation takes the parameter set from the public
        // template; the public key's value is its encoding.
        only(PQ, row(CKA_PARAMETER_SET, Computed, REQUIRED)),
        only(PQ, row(CKA_VALUE, Computed, REQUIRED)),
        // OpenTDF's raw public key.
        only(HYBRID, row(CKA_VALUE, Computed, REQUIRED)),
        only(KEM, row(CKA_ENCAPSULATE, Bool(true), FREE)),
        // What keys encapsulated with this one get (PKCS#11 3.2 §5.18), fixed at creation.
        only(KEM, row(CKA_ENCAPSULATE_TEMPLATE, Absent, CREATE)),
);

/// `CKO_PRIVATE_KEY` (§4.9): private, sensitive and unextractable unless said otherwise.
static PRIVATE_KEY: &[Row] = key_then!(private: true;
        row(CKA_SUBJECT, Empty, FREE),
        row(CKA_DERIVE, Bool(false), FREE),
        row(CKA_SENSITIVE, Bool(true), FREE.union(TO_TRUE_ONLY)),
        row(CKA_DECRYPT, Bool(true), FREE),
        row(CKA_SIGN, Bool(true), FREE),
        row(CKA_SIGN_RECOVER, Bool(true), FREE),
        row(CKA_UNWRAP, Bool(true), FREE),
        row(CKA_EXTRACTABLE, Bool(false), FREE.union(TO_FALSE_ONLY)),
        row(CKA_ALWAYS_SENSITIVE, Initial::Origin, NONE),
        row(CKA_NEVER_EXTRACTABLE, Initial::Origin, NONE),
        row(CKA_WRAP_WITH_TRUSTED, Bool(false), FREE.union(TO_TRUE_ONLY)),
        // Fixed at creation (the spec does not list it as modifiable): a user who could clear
        // it would undo the PIN-per-use it demands.
        row(CKA_ALWAYS_AUTHENTICATE, Bool(false), CREATE),
        // What keys unwrapped or derived with this one get (§4.9), fixed at creation.
        row(CKA_UNWRAP_TEMPLATE, Absent, CREATE),
        row(CKA_DERIVE_TEMPLATE, Absent, CREATE),
        row(CKA_PUBLIC_KEY_INFO, Computed, NONE),
        only(RSA, row(CKA_MODULUS, Computed, REQUIRED)),
        only(RSA, row(CKA_PUBLIC_EXPONENT, Computed, REQUIRED)),
        only(RSA, row(CKA_PRIVATE_EXPONENT, Absent, SENSITIVE.union(REQUIRED))),
        only(RSA, row(CKA_PRIME_1, Absent, SENSITIVE)),
        only(RSA, row(CKA_PRIME_2, Absent, SENSITIVE)),
        only(RSA, row(CKA_EXPONENT_1, Absent, SENSITIVE)),
        only(RSA, row(CKA_EXPONENT_2, Absent, SENSITIVE)),
        only(RSA, row(CKA_COEFFICIENT, Absent, SENSITIVE)),
        only(EC, row(CKA_EC_PARAMS, Computed, REQUIRED)),
        // An extension (PKCS#11 3.2 adds it): clients such as OpenSSL's providers read it to
        // avoid a second lookup.
        only(EC, row(CKA_EC_POINT, Computed, NONE)),
        only(EC, row(CKA_VALUE, Absent, SENSITIVE.union(REQUIRED))),
        // PKCS#11 3.2: a private key is created from its seed, its expanded form (CKA_VALUE)
        // or both (which must agree); the import reads them, so neither is required alone.
        only(PQ, row(CKA_PARAMETER_SET, Computed, REQUIRED)),
        only(PQ, row(CKA_SEED, Absent, SENSITIVE)),
        only(PQ, row(CKA_VALUE, Absent, SENSITIVE)),
        // OpenTDF's raw private key (X-Wing's seed; a composite's ML-KEM seed ‖ ECPrivateKey).
        only(HYBRID, row(CKA_VALUE, Absent, SENSITIVE.union(REQUIRED))),
        only(KEM, row(CKA_DECAPSULATE, Bool(true), FREE)),
        // What keys decapsulated with this one get (§5.18), fixed at creation.
        only(KEM, row(CKA_DECAPSULATE_TEMPLATE, Absent, CREATE)),
);

/// `CKO_SECRET_KEY` (§4.10): private, sensitive and unextractable unless said otherwise.
///
/// Its usages that move its value (encrypt, decrypt, wrap, unwrap, derive) are fixed at
/// creation, neither `C_SetAttributeValue` nor `C_CopyObject` changing them: a key that wraps
/// must not later decrypt what it wrapped, nor a copy of it (see [`super::extraction`]).
static SECRET_KEY: &[Row] = key_then!(private: true;
        row(CKA_SENSITIVE, Bool(true), FREE.union(TO_TRUE_ONLY)),
        row(CKA_DERIVE, Bool(false), CREATE),
        row(CKA_ENCRYPT, Bool(true), CREATE),
        row(CKA_DECRYPT, Bool(true), CREATE),
        row(CKA_SIGN, Bool(true), FREE),
        row(CKA_VERIFY, Bool(true), FREE),
        row(CKA_WRAP, Bool(true), CREATE),
        row(CKA_UNWRAP, Bool(true), CREATE),
        row(CKA_EXTRACTABLE, Bool(false), FREE.union(TO_FALSE_ONLY)),
        row(CKA_ALWAYS_SENSITIVE, Initial::Origin, NONE),
        row(CKA_NEVER_EXTRACTABLE, Initial::Origin, NONE),
        row(CKA_WRAP_WITH_TRUSTED, Bool(false), FREE.union(TO_TRUE_ONLY)),
        row(CKA_TRUSTED, Bool(false), FREE.union(SO_ONLY)),
        // What keys wrapped, unwrapped or derived with this one match or get (§4.10), fixed at
        // creation.
        row(CKA_WRAP_TEMPLATE, Absent, CREATE),
        row(CKA_UNWRAP_TEMPLATE, Absent, CREATE),
        row(CKA_DERIVE_TEMPLATE, Absent, CREATE),
        row(CKA_VALUE, Absent, SENSITIVE.union(REQUIRED)),
        // The key's length; a template may state it (it must then be right).
        row(CKA_VALUE_LEN, Computed, CREATE),
        // An AES key's; a given one must be right.
        row(CKA_CHECK_VALUE, Computed, CREATE),
);

static CLASSES: &[ClassPolicy] = &[
    ClassPolicy {
        class: CKO_DATA,
        rows: DATA,
    },
    ClassPolicy {
        class: CKO_CERTIFICATE,
        rows: CERTIFICATE,
    },
    ClassPolicy {
        class: CKO_PUBLIC_KEY,
        rows: PUBLIC_KEY,
    },
    ClassPolicy {
        class: CKO_PRIVATE_KEY,
        rows: PRIVATE_KEY,
    },
    ClassPolicy {
        class: CKO_SECRET_KEY,
        rows: SECRET_KEY,
    },
];

/// The policy of a class sqlhsm makes objects of, or `None`.
pub fn for_class(class: CK_OBJECT_CLASS) -> Option<&'static ClassPolicy> {
    CLASSES.iter().find(|p| p.class == class)
}

impl ClassPolicy {
    /// The row of `kind` for objects of this class and subtype (key type, or certificate
    /// type), if it is one of their attributes.
    pub fn row(&self, subtype: CK_ULONG, kind: CK_ATTRIBUTE_TYPE) -> Option<&'static Row> {
        self.rows
            .iter()
            .find(|r| r.kind == kind && r.applies(subtype))
    }

    /// The rows that apply to objects of this class and subtype.
    pub fn rows_for(&self, subtype: CK_ULONG) -> impl Iterator<Item = &'static Row> {
        self.rows.iter().filter(move |r| r.applies(subtype))
    }

    /// `CKR_TEMPLATE_INCOMPLETE` unless `template` gives every attribute `C_CreateObject`
    /// needs (in table order, so a contradictory duplicate is reported as the import reading
    /// it would).
    pub fn check_required(&self, subtype: CK_ULONG, template: &[Attribute]) -> Result<()> {
        for row in self.rows_for(subtype) {
            if row.rules.contains(Rules::REQUIRED)
                && find_in_template(template, row.kind)?.is_none()
            {
                Err(Rv::TEMPLATE_INCOMPLETE)?
            }
        }
        Ok(())
    }

    /// Fills in the table's plain defaults (not those set from the origin or computed).
    pub fn apply_defaults(&self, subtype: CK_ULONG, attrs: &mut AttrMap) {
        for row in self.rows_for(subtype) {
            match row.default {
                Bool(value) => attrs.set_default(row.kind, attributes::encode_bool(value)),
                Empty => attrs.set_default(row.kind, Vec::new()),
                Ulong(value) => attrs.set_default(row.kind, attributes::encode_ulong(value)),
                Absent | Initial::Origin | Computed => {}
            }
        }
    }
}

/// The rules of `kind` for objects of this class and subtype (key type, or certificate type);
/// `None` when it is not one of their attributes.
pub fn rules(class: CK_OBJECT_CLASS, subtype: CK_ULONG, kind: CK_ATTRIBUTE_TYPE) -> Option<Rules> {
    Some(for_class(class)?.row(subtype, kind)?.rules)
}

/// Whether `kind` is an attribute of objects of this class and key type (for certificates,
/// `key_type` is the certificate type).
pub fn applies(class: CK_OBJECT_CLASS, key_type: CK_KEY_TYPE, kind: CK_ATTRIBUTE_TYPE) -> bool {
    rules(class, key_type, kind).is_some()
}

/// [`rules`] for an existing object, from its own attributes: the class, refined by
/// `CKA_KEY_TYPE` for a key and by `CKA_CERTIFICATE_TYPE` for a certificate (a certificate has
/// no key type, and reading one made every X.509 attribute look foreign to it).
pub fn rules_of(attrs: &AttrMap, kind: CK_ATTRIBUTE_TYPE) -> Option<Rules> {
    let class = attrs.ulong(CKA_CLASS).unwrap_or(CK_UNAVAILABLE_INFORMATION);
    let refinement = match class {
        CKO_CERTIFICATE => CKA_CERTIFICATE_TYPE,
        _ => CKA_KEY_TYPE,
    };
    let subtype = attrs
        .ulong(refinement)
        .unwrap_or(CK_UNAVAILABLE_INFORMATION);
    rules(class, subtype, kind)
}

/// Whether a change from `current` to `wanted` breaks a one-way rule (`CKA_SENSITIVE` only
/// turns on, `CKA_EXTRACTABLE` only off, …).
pub fn one_way_violated(rules: Rules, current: bool, wanted: bool) -> bool {
    rules.contains(Rules::TO_TRUE_ONLY) && current && !wanted
        || rules.contains(Rules::TO_FALSE_ONLY) && !current && wanted
}

/// Whether a change from `current` to `wanted` is one only the security officer may make:
/// setting an SO-only attribute, or clearing one that is set.
pub fn so_only_change(rules: Rules, current: bool, wanted: bool) -> bool {
    rules.contains(Rules::SO_ONLY) && current != wanted
}

/// Whether these attributes set to true one that only the security officer may set.
pub fn so_only_set(attrs: &AttrMap) -> bool {
    let class = attrs.ulong(CKA_CLASS).unwrap_or(CK_UNAVAILABLE_INFORMATION);
    let Some(policy) = for_class(class) else {
        return false;
    };
    policy
        .rows
        .iter()
        .any(|r| r.rules.contains(Rules::SO_ONLY) && attrs.flag(r.kind))
}

/// Checks one attribute of a creating template against the class's table: known
/// (`CKR_ATTRIBUTE_TYPE_INVALID`), well formed (`CKR_ATTRIBUTE_VALUE_INVALID`), one of the
/// class's attributes (`CKR_TEMPLATE_INCONSISTENT`), and one a template may give
/// (`CKR_ATTRIBUTE_READ_ONLY`). Returns its rules.
pub fn check_create(class: CK_OBJECT_CLASS, subtype: CK_ULONG, attr: &Attribute) -> Result<Rules> {
    let spec = attributes::spec(attr.kind).ok_or(Rv::ATTRIBUTE_TYPE_INVALID)?;
    attributes::validate_value(spec, &attr.value)?;
    let rules = rules(class, subtype, attr.kind).ok_or(Rv::TEMPLATE_INCONSISTENT)?;
    if !rules.contains(Rules::CREATE) {
        // Set by the token itself (CKA_LOCAL, …) or derived from the key: a caller may not
        // dictate them.
        Err(Rv::ATTRIBUTE_READ_ONLY)?
    }
    Ok(rules)
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
        check_create(class, key_type, attr)?;
        find_in_template(template, attr.kind)?;
        attrs.set(attr.kind, attr.value.to_vec());
    }

    if let Some(policy) = for_class(class) {
        policy.apply_defaults(key_type, &mut attrs);
    }
    let (local, mechanism) = match origin {
        Origin::Generated(m) => (true, m),
        Origin::Imported => (false, CK_UNAVAILABLE_INFORMATION),
    };
    attrs.set_bool(CKA_LOCAL, local);
    attrs.set_ulong(CKA_KEY_GEN_MECHANISM, mechanism);
    if matches!(class, CKO_PRIVATE_KEY | CKO_SECRET_KEY) {
        // A key is "always sensitive" / "never extractable" only if the token made it so.
        let generated = local;
        attrs.set_bool(CKA_ALWAYS_SENSITIVE, generated && attrs.flag(CKA_SENSITIVE));
        attrs.set_bool(
            CKA_NEVER_EXTRACTABLE,
            generated && !attrs.flag(CKA_EXTRACTABLE),
        );
    }
    Ok(attrs)
}

#[cfg(test)]
mod tests;

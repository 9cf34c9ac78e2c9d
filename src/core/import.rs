//! Keys from a `C_CreateObject` template (PKCS#11 3.0 §4.8–§4.10): the class's table says what
//! the template must carry; the key's values are read and checked here, and its other
//! attributes built by the policy.

use std::sync::Arc;

use cryptoki_sys::*;

use super::keystore;
use super::new_keys::NewKey;
use super::policy::{self, Origin};
use super::template::{find_in_template, template_ulong};
use crate::crypto::keys::{PrivateKey, PublicKey, RsaPrivateComponents};
use crate::error::{Result, Rv};
use crate::key_algorithm;
use crate::types::Attribute;

/// The key a `C_CreateObject` template describes, ready to be stored.
pub fn import_key(
    class: CK_OBJECT_CLASS,
    key_type: CK_KEY_TYPE,
    template: &[Attribute],
) -> Result<NewKey> {
    match class {
        CKO_PUBLIC_KEY => import_public(template, key_type),
        CKO_PRIVATE_KEY => import_private(template, key_type),
        CKO_SECRET_KEY => import_secret(template, key_type),
        _ => Err(Rv::ATTRIBUTE_VALUE_INVALID)?,
    }
}

/// An attribute the import reads; the class's table makes it required
/// ([`check_import_template`]).
fn required(template: &[Attribute], kind: CK_ATTRIBUTE_TYPE) -> Result<&[u8]> {
    find_in_template(template, kind)?.ok_or_else(|| Rv::TEMPLATE_INCOMPLETE.into())
}

/// Checks a `C_CreateObject` template for what the class's table requires. An EC key's curve
/// is checked first, as the import reads it before its point or value.
fn check_import_template(
    class: CK_OBJECT_CLASS,
    key_type: CK_KEY_TYPE,
    template: &[Attribute],
) -> Result<()> {
    let asymmetric = matches!(class, CKO_PUBLIC_KEY | CKO_PRIVATE_KEY);
    let ec = asymmetric && matches!(key_type, CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY);
    if ec && find_in_template(template, CKA_EC_PARAMS)?.is_some() {
        curve_of(template, key_type)?;
    }
    match policy::for_class(class) {
        Some(policy) => policy.check_required(key_type, template),
        None => Ok(()),
    }
}

fn import_public(template: &[Attribute], key_type: CK_KEY_TYPE) -> Result<NewKey> {
    check_import_template(CKO_PUBLIC_KEY, key_type, template)?;
    let (public_key, consumed): (PublicKey, &[CK_ATTRIBUTE_TYPE]) = match key_type {
        CKK_RSA => (
            PublicKey::from_rsa_components(
                required(template, CKA_MODULUS)?,
                required(template, CKA_PUBLIC_EXPONENT)?,
            )?,
            &[CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_MODULUS_BITS],
        ),
        CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY => {
            let curve = curve_of(template, key_type)?;
            (
                curve.public_from_point(required(template, CKA_EC_POINT)?)?,
                &[CKA_EC_PARAMS, CKA_EC_POINT],
            )
        }
        CKK_ML_KEM | CKK_ML_DSA | CKK_SLH_DSA => (
            parameter_set_of(template, key_type)?
                .public_from_point(required(template, CKA_VALUE)?)?,
            &[CKA_PARAMETER_SET, CKA_VALUE],
        ),
        _ => match key_algorithm::hybrid_of(key_type) {
            Some(row) => (
                row.public_from_point(required(template, CKA_VALUE)?)?,
                &[CKA_VALUE],
            ),
            None => Err(Rv::ATTRIBUTE_VALUE_INVALID)?,
        },
    };
    let mut attrs = policy::build_key_attrs(
        CKO_PUBLIC_KEY,
        key_type,
        template,
        consumed,
        Origin::Imported,
    )?;
    if let Some(bits) = template_ulong(template, CKA_MODULUS_BITS)? {
        if let crate::crypto::keys::PublicValues::Modulus { bits: actual, .. } =
            public_key.public_values()?
        {
            if CK_ULONG::from(actual) != bits {
                Err(Rv::TEMPLATE_INCONSISTENT)?
            }
        }
    }
    keystore::add_public_values(&mut attrs, &public_key, CKO_PUBLIC_KEY)?;
    Ok(NewKey::Pair {
        public: Some(attrs),
        private: None,
        public_key: Arc::new(public_key),
        private_key: None,
    })
}

/// The curve a template's `CKA_EC_PARAMS` names for a key of `key_type`: an Edwards curve for
/// an EC key is inconsistent, anything else that does not fit unsupported.
fn curve_of(
    template: &[Attribute],
    key_type: CK_KEY_TYPE,
) -> Result<&'static key_algorithm::KeyAlgorithm> {
    let params = required(template, CKA_EC_PARAMS)?;
    match key_algorithm::by_ec_params(params) {
        Ok(curve) if key_type == CKK_EC && curve.key_type != CKK_EC => {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
        _ => key_algorithm::curve_for(key_type, params),
    }
}

/// The row of a post-quantum key's `CKA_PARAMETER_SET` (required by the class's table).
fn parameter_set_of(
    template: &[Attribute],
    key_type: CK_KEY_TYPE,
) -> Result<&'static key_algorithm::KeyAlgorithm> {
    let set = template_ulong(template, CKA_PARAMETER_SET)?;
    key_algorithm::by_parameter_set(key_type, set).map_err(|e| match e.rv() {
        // A set sqlhsm lacks is a value it cannot take (PKCS#11 3.2 leaves tokens a subset).
        Rv::PARAMETER_SET_NOT_SUPPORTED => Rv::ATTRIBUTE_VALUE_INVALID.into(),
        _ => e,
    })
}

/// A post-quantum private key from its seed, its expanded form or both (PKCS#11 3.2: at least
/// one; given together they must be one key, else `CKR_ATTRIBUTE_VALUE_INVALID`). The key made
/// from a seed keeps it, so it is sealed in the seed form.
fn post_quantum_private(template: &[Attribute], key_type: CK_KEY_TYPE) -> Result<PrivateKey> {
    let row = parameter_set_of(template, key_type)?;
    let seed = find_in_template(template, CKA_SEED)?;
    let expanded = find_in_template(template, CKA_VALUE)?;
    match (seed, expanded) {
        (Some(seed), expanded) => {
            let key = row.private_from_seed(seed)?;
            if let Some(expanded) = expanded {
                if !key.pq_expanded_is(expanded)? {
                    Err(Rv::ATTRIBUTE_VALUE_INVALID)?
                }
            }
            Ok(key)
        }
        (None, Some(expanded)) => row.private_from_value(expanded),
        (None, None) => Err(Rv::TEMPLATE_INCOMPLETE)?,
    }
}

fn optional_secret(
    template: &[Attribute],
    kind: CK_ATTRIBUTE_TYPE,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    Ok(find_in_template(template, kind)?.map(|v| zeroize::Zeroizing::new(v.to_vec())))
}

fn import_private(template: &[Attribute], key_type: CK_KEY_TYPE) -> Result<NewKey> {
    check_import_template(CKO_PRIVATE_KEY, key_type, template)?;
    let (private_key, consumed): (PrivateKey, &[CK_ATTRIBUTE_TYPE]) = match key_type {
        CKK_RSA => {
            let components = RsaPrivateComponents {
                modulus: required(template, CKA_MODULUS)?.to_vec(),
                public_exponent: required(template, CKA_PUBLIC_EXPONENT)?.to_vec(),
                private_exponent: zeroize::Zeroizing::new(
                    required(template, CKA_PRIVATE_EXPONENT)?.to_vec(),
                ),
                prime_1: optional_secret(template, CKA_PRIME_1)?,
                prime_2: optional_secret(template, CKA_PRIME_2)?,
                exponent_1: optional_secret(template, CKA_EXPONENT_1)?,
                exponent_2: optional_secret(template, CKA_EXPONENT_2)?,
                coefficient: optional_secret(template, CKA_COEFFICIENT)?,
            };
            (
                PrivateKey::from_rsa_components(&components)?,
                &[
                    CKA_MODULUS,
                    CKA_PUBLIC_EXPONENT,
                    CKA_PRIVATE_EXPONENT,
                    CKA_PRIME_1,
                    CKA_PRIME_2,
                    CKA_EXPONENT_1,
                    CKA_EXPONENT_2,
                    CKA_COEFFICIENT,
                ],
            )
        }
        CKK_EC | CKK_EC_EDWARDS | CKK_EC_MONTGOMERY => {
            let curve = curve_of(template, key_type)?;
            (
                curve.private_from_value(required(template, CKA_VALUE)?)?,
                &[CKA_EC_PARAMS, CKA_VALUE, CKA_EC_POINT],
            )
        }
        CKK_ML_KEM | CKK_ML_DSA | CKK_SLH_DSA => (
            post_quantum_private(template, key_type)?,
            &[CKA_PARAMETER_SET, CKA_SEED, CKA_VALUE],
        ),
        _ => match key_algorithm::hybrid_of(key_type) {
            Some(row) => (
                row.private_from_value(required(template, CKA_VALUE)?)?,
                &[CKA_VALUE],
            ),
            None => Err(Rv::ATTRIBUTE_VALUE_INVALID)?,
        },
    };
    let public_key = private_key.public_key()?;
    let mut attrs = policy::build_key_attrs(
        CKO_PRIVATE_KEY,
        key_type,
        template,
        consumed,
        Origin::Imported,
    )?;
    keystore::add_public_values(&mut attrs, &public_key, CKO_PRIVATE_KEY)?;
    Ok(NewKey::Pair {
        public: None,
        private: Some(attrs),
        public_key: Arc::new(public_key),
        private_key: Some(Arc::new(private_key)),
    })
}

fn import_secret(template: &[Attribute], key_type: CK_KEY_TYPE) -> Result<NewKey> {
    check_import_template(CKO_SECRET_KEY, key_type, template)?;
    let mut value = zeroize::Zeroizing::new(required(template, CKA_VALUE)?.to_vec());
    // A type sqlhsm has no row for, a length its rows lack, or a value their rules refuse (DES
    // parity, equal XTS halves: PKCS#11 3.0 says creating such a key is an error).
    if crate::key_algorithm::secret_row(key_type, &mut value, false).is_err() {
        Err(Rv::ATTRIBUTE_VALUE_INVALID)?
    }
    if let Some(len) = template_ulong(template, CKA_VALUE_LEN)? {
        if len != value.len() as CK_ULONG {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
    }
    let attrs = policy::build_key_attrs(
        CKO_SECRET_KEY,
        key_type,
        template,
        &[CKA_VALUE, CKA_VALUE_LEN],
        Origin::Imported,
    )?;
    Ok(NewKey::Secret { attrs, value })
}

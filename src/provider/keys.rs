//! REMOTE keys: making them in the remote module (generation, import, unwrap, derive), reading
//! back their public half, marking and destroying them, and the reference a row keeps to find
//! them again (`{"id": <CKA_ID hex>, "label": …}`). Remote keys are always created as token
//! objects, sensitive and non-extractable; usage is enforced by sqlhsm before any call.

use std::sync::Arc;

use cryptoki::mechanism::Mechanism as CkMechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ParameterSetType};
use cryptoki_sys::*;
use serde::{Deserialize, Serialize};

use super::client::Remote;
use super::config::OnDestroy;
use super::forward::{RemoteCipher, RemoteSign, RemoteVerify};
use super::mechanisms;
use crate::crypto::keys::{Family, KeyFacts, PrivateKey, PublicKey, PublicValues};
use crate::crypto::random;
use crate::error::{Error, Result, Rv};
use crate::key_algorithm::{KeyAlgorithm, PublicShape, Request};
use crate::mechanism::{CipherOperation, ExternalKey, SignOperation, VerifyOperation};
use crate::types::Mechanism;

/// Where a REMOTE key is in its module, as stored in the row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteRef {
    /// Hex of the remote `CKA_ID` (random, 16 bytes).
    pub id: String,
    /// The remote `CKA_LABEL`, for operators looking at the HSM.
    pub label: String,
}

impl RemoteRef {
    pub fn new(id: &[u8], label: &str) -> RemoteRef {
        RemoteRef {
            id: hex::encode(id),
            label: label.to_string(),
        }
    }

    pub fn id_bytes(&self) -> Result<Vec<u8>> {
        hex::decode(&self.id).map_err(|_| {
            crate::error::StorageError::Corrupt("remote key reference: bad id".into()).into()
        })
    }
}

/// The length of a signature (or MAC) a remote key of this family and size makes with
/// `mechanism`.
pub fn signature_len(size: KeyFacts, mechanism: CK_MECHANISM_TYPE) -> usize {
    match size.family {
        Family::Rsa => size.bytes(),
        Family::Ec => 2 * size.bytes(),
        // RFC 8032: R and S, each as long as the encoding of a point (one bit more than the
        // field), 64 bytes for Ed25519.
        Family::Edwards => 2 * (size.bits as usize + 1).div_ceil(8),
        // X25519 and X448 keys only derive; ML-KEM and hybrid keys only encapsulate.
        Family::Montgomery | Family::MlKem | Family::Hybrid => 0,
        // FIPS 204 Table 2, by the public key's length.
        Family::MlDsa => match size.bytes() {
            1312 => 2420,
            1952 => 3309,
            _ => 4627,
        },
        // FIPS 205 Table 2: the size tells only the security level (16, 24 or 32-byte n), so
        // the longer ("fast") signature of that level, an upper bound for the "small" one.
        Family::SlhDsa => match size.bytes() {
            32 => 17088,
            48 => 35664,
            _ => 49856,
        },
        Family::Secret => match mechanism {
            CKM_SHA_1_HMAC => 20,
            CKM_SHA224_HMAC => 28,
            CKM_SHA384_HMAC => 48,
            CKM_SHA512_HMAC => 64,
            CKM_AES_CMAC => 16,
            _ => 32,
        },
    }
}

/// The modulus length in bytes of a remote RSA key, `None` for other families.
pub fn modulus_len(size: KeyFacts) -> Option<usize> {
    (size.family == Family::Rsa).then(|| size.bytes())
}

/// A REMOTE private or secret key, ready for operations.
pub struct RemoteKey {
    pub remote: Arc<Remote>,
    pub class: ObjectClass,
    pub id: Vec<u8>,
    /// What the output bounds of its operations depend on.
    pub size: KeyFacts,
}

impl ExternalKey for RemoteKey {
    fn sign(self: Arc<Self>, mechanism: &Mechanism) -> Result<Box<dyn SignOperation>> {
        Ok(Box::new(RemoteSign::new(self, mechanism)?))
    }

    fn verify(self: Arc<Self>, mechanism: &Mechanism) -> Result<Box<dyn VerifyOperation>> {
        Ok(Box::new(RemoteVerify::new(self, mechanism)?))
    }

    fn cipher(
        self: Arc<Self>,
        mechanism: &Mechanism,
        encrypt: bool,
    ) -> Result<Box<dyn CipherOperation>> {
        Ok(Box::new(RemoteCipher::new(self, mechanism, encrypt)?))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A fresh random remote `CKA_ID`.
fn new_id() -> Result<Vec<u8>> {
    let mut id = vec![0u8; 16];
    random::fill(&mut id)?;
    Ok(id)
}

/// The attributes every remote private or secret key gets.
fn protected(id: &[u8], label: &str, class: ObjectClass, key_type: KeyType) -> Vec<Attribute> {
    vec![
        Attribute::Class(class),
        Attribute::KeyType(key_type),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

/// The usages a remote key needs for what sqlhsm may forward to it (sqlhsm's own flags decide
/// what is actually allowed).
fn usages(class: ObjectClass, key_type: KeyType) -> Vec<Attribute> {
    match (class, key_type) {
        (ObjectClass::PRIVATE_KEY, KeyType::RSA) => vec![
            Attribute::Sign(true),
            Attribute::Decrypt(true),
            Attribute::Unwrap(true),
        ],
        (ObjectClass::PRIVATE_KEY, KeyType::EC) => {
            vec![Attribute::Sign(true), Attribute::Derive(true)]
        }
        (ObjectClass::PRIVATE_KEY, KeyType::ML_KEM) => vec![Attribute::Decapsulate(true)],
        (ObjectClass::PRIVATE_KEY, _) => vec![Attribute::Sign(true)],
        (_, KeyType::AES) => vec![
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Sign(true),
            Attribute::Verify(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
        ],
        _ => vec![
            Attribute::Sign(true),
            Attribute::Verify(true),
            Attribute::Derive(true),
        ],
    }
}

fn remote_key_type(key_type: CK_KEY_TYPE) -> Result<KeyType> {
    Ok(match key_type {
        CKK_RSA => KeyType::RSA,
        CKK_EC => KeyType::EC,
        CKK_EC_EDWARDS => KeyType::EC_EDWARDS,
        CKK_AES => KeyType::AES,
        CKK_ML_KEM => KeyType::ML_KEM,
        CKK_ML_DSA => KeyType::ML_DSA,
        CKK_SLH_DSA => KeyType::SLH_DSA,
        // The HMAC key types are generic secrets in the remote module, whose HMAC mechanisms
        // take those (and `cryptoki` 0.12 names CKK_SHA224/384/512_HMAC as CKK_SHA256_HMAC);
        // which mechanisms the key is used with is checked here.
        t if crate::key_algorithm::is_any_length_secret(t) => KeyType::GENERIC_SECRET,
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    })
}

/// Generates a key pair of `algorithm` in the remote module (`request` for RSA, the curve from
/// the row otherwise); returns its reference and public key.
pub fn generate_pair(
    remote: &Remote,
    algorithm: &'static KeyAlgorithm,
    request: &Request<'_>,
    label: &str,
) -> Result<(RemoteRef, PublicKey)> {
    let id = new_id()?;
    let generation = algorithm.generation.ok_or(Rv::MECHANISM_INVALID)?;
    let key_type = remote_key_type(algorithm.key_type)?;
    let (mechanism, mut public) = match algorithm.public {
        PublicShape::Modulus => {
            let exponent = if request.public_exponent.is_empty() {
                vec![1, 0, 1]
            } else {
                request.public_exponent.to_vec()
            };
            (
                CkMechanism::RsaPkcsKeyPairGen,
                vec![
                    Attribute::ModulusBits(u64::from(request.bits).into()),
                    Attribute::PublicExponent(exponent),
                    Attribute::Verify(true),
                    Attribute::Encrypt(true),
                    Attribute::Wrap(true),
                ],
            )
        }
        PublicShape::EcPoint | PublicShape::EdwardsPoint => {
            let mechanism = match generation {
                CKM_EC_KEY_PAIR_GEN => CkMechanism::EccKeyPairGen,
                _ => CkMechanism::EccEdwardsKeyPairGen,
            };
            let values = vec![
                Attribute::EcParams(algorithm.params_der.to_vec()),
                Attribute::Verify(true),
            ];
            (mechanism, values)
        }
        PublicShape::Value => {
            let mechanism = match generation {
                CKM_ML_KEM_KEY_PAIR_GEN => CkMechanism::MlKemKeyPairGen,
                CKM_ML_DSA_KEY_PAIR_GEN => CkMechanism::MlDsaKeyPairGen,
                CKM_SLH_DSA_KEY_PAIR_GEN => CkMechanism::SlhDsaKeyPairGen,
                _ => Err(Rv::MECHANISM_INVALID)?,
            };
            let set = algorithm.parameter_set.ok_or(Rv::MECHANISM_INVALID)?;
            let set = ParameterSetType::try_from(cryptoki::types::Ulong::from(set))
                .map_err(|_| Rv::MECHANISM_INVALID)?;
            let usage = match algorithm.family {
                Family::MlKem => Attribute::Encapsulate(true),
                _ => Attribute::Verify(true),
            };
            (mechanism, vec![Attribute::ParameterSet(set), usage])
        }
        PublicShape::None => Err(Rv::MECHANISM_INVALID)?,
    };
    public.extend([
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(key_type),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Id(id.clone()),
        Attribute::Label(label.as_bytes().to_vec()),
    ]);
    let mut private = protected(&id, label, ObjectClass::PRIVATE_KEY, key_type);
    private.extend(usages(ObjectClass::PRIVATE_KEY, key_type));
    let public_key = remote.run("C_GenerateKeyPair", |session, _| {
        let (public_handle, _) = session.generate_key_pair(&mechanism, &public, &private)?;
        let wanted = [
            AttributeType::Modulus,
            AttributeType::PublicExponent,
            AttributeType::EcParams,
            AttributeType::EcPoint,
            AttributeType::Value,
        ];
        session.get_attributes(public_handle, &wanted)
    })?;
    let public_key = public_from_attributes(algorithm, &public_key)?;
    tracing::info!(remote_id = %hex::encode(&id), %label, algorithm = algorithm.name, "key pair generated in the remote module");
    Ok((RemoteRef::new(&id, label), public_key))
}

fn public_from_attributes(
    algorithm: &'static KeyAlgorithm,
    attributes: &[Attribute],
) -> Result<PublicKey> {
    let mut modulus = None;
    let mut exponent = None;
    let mut point = None;
    for attribute in attributes {
        match attribute {
            Attribute::Modulus(v) => modulus = Some(v.as_slice()),
            Attribute::PublicExponent(v) => exponent = Some(v.as_slice()),
            Attribute::EcPoint(v) => point = Some(v.as_slice()),
            // A post-quantum public key's encoding, read like a point by the row.
            Attribute::Value(v) if algorithm.public == PublicShape::Value => {
                point = Some(v.as_slice())
            }
            _ => {}
        }
    }
    let missing = || Error::Provider("the remote public key lacks its public values".into());
    // The point is read on the row's curve, the one asked for.
    match algorithm.public {
        PublicShape::Modulus => PublicKey::from_rsa_components(
            modulus.ok_or_else(missing)?,
            exponent.ok_or_else(missing)?,
        ),
        _ => algorithm.public_from_point(point.ok_or_else(missing)?),
    }
}

/// Generates a secret key of `len` bytes in the remote module.
pub fn generate_secret(
    remote: &Remote,
    key_type: CK_KEY_TYPE,
    len: usize,
    label: &str,
) -> Result<RemoteRef> {
    let id = new_id()?;
    let kind = remote_key_type(key_type)?;
    let mechanism = match kind {
        KeyType::AES => CkMechanism::AesKeyGen,
        _ => CkMechanism::GenericSecretKeyGen,
    };
    let mut template = protected(&id, label, ObjectClass::SECRET_KEY, kind);
    template.extend(usages(ObjectClass::SECRET_KEY, kind));
    template.push(Attribute::ValueLen((len as u64).into()));
    remote.run("C_GenerateKey", |session, _| {
        session.generate_key(&mechanism, &template)
    })?;
    tracing::info!(remote_id = %hex::encode(&id), %label, "secret key generated in the remote module");
    Ok(RemoteRef::new(&id, label))
}

/// Puts a secret key made or received here into the remote module.
pub fn import_secret(
    remote: &Remote,
    key_type: CK_KEY_TYPE,
    value: &[u8],
    label: &str,
) -> Result<RemoteRef> {
    let kind = remote_key_type(key_type)?;
    create_protected(
        remote,
        ObjectClass::SECRET_KEY,
        kind,
        label,
        vec![Attribute::Value(value.to_vec())],
    )
}

/// Puts a private key imported here (`C_CreateObject`, `C_UnwrapKey` with a local key) into the
/// remote module; the copy in memory is dropped by the caller right after.
pub fn import_private(remote: &Remote, private: &PrivateKey, label: &str) -> Result<RemoteRef> {
    let secret = |attribute| -> Result<Vec<u8>> {
        Ok(private
            .private_component(attribute)?
            .ok_or(Rv::KEY_TYPE_INCONSISTENT)?
            .to_vec())
    };
    let algorithm = crate::key_algorithm::of_private(private)?;
    let kind = remote_key_type(algorithm.key_type)?;
    let values = match private.public_values()? {
        PublicValues::Modulus {
            modulus,
            public_exponent,
            ..
        } => vec![
            Attribute::Modulus(modulus),
            Attribute::PublicExponent(public_exponent),
            Attribute::PrivateExponent(secret(CKA_PRIVATE_EXPONENT)?),
            Attribute::Prime1(secret(CKA_PRIME_1)?),
            Attribute::Prime2(secret(CKA_PRIME_2)?),
            Attribute::Exponent1(secret(CKA_EXPONENT_1)?),
            Attribute::Exponent2(secret(CKA_EXPONENT_2)?),
            Attribute::Coefficient(secret(CKA_COEFFICIENT)?),
        ],
        PublicValues::Point { params_der, .. } => vec![
            Attribute::EcParams(params_der),
            Attribute::Value(secret(CKA_VALUE)?),
        ],
        // PKCS#11 3.2: the parameter set, and both private forms where the seed exists (the
        // most compatible template).
        PublicValues::Encoded { .. } => {
            let set = algorithm.parameter_set.ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
            let set = ParameterSetType::try_from(cryptoki::types::Ulong::from(set))
                .map_err(|_| Rv::KEY_TYPE_INCONSISTENT)?;
            let mut values = vec![
                Attribute::ParameterSet(set),
                Attribute::Value(secret(CKA_VALUE)?),
            ];
            if let Some(seed) = private.private_component(CKA_SEED)? {
                values.push(Attribute::Seed(seed.to_vec()));
            }
            values
        }
    };
    create_protected(remote, ObjectClass::PRIVATE_KEY, kind, label, values)
}

/// `C_CreateObject` of a protected key (`values` carry its material) in the remote module; the
/// template's secret values are zeroized once sent.
fn create_protected(
    remote: &Remote,
    class: ObjectClass,
    kind: KeyType,
    label: &str,
    mut values: Vec<Attribute>,
) -> Result<RemoteRef> {
    let id = new_id()?;
    let mut template = protected(&id, label, class, kind);
    template.extend(usages(class, kind));
    template.append(&mut values);
    let created = remote.run("C_CreateObject", |session, _| {
        session.create_object(&template)
    });
    scrub(&mut template);
    created?;
    Ok(RemoteRef::new(&id, label))
}

/// Zeroizes the secret values of a template once it has been sent.
fn scrub(template: &mut [Attribute]) {
    use zeroize::Zeroize;
    for attribute in template {
        match attribute {
            Attribute::Value(v)
            | Attribute::PrivateExponent(v)
            | Attribute::Prime1(v)
            | Attribute::Prime2(v)
            | Attribute::Exponent1(v)
            | Attribute::Exponent2(v)
            | Attribute::Coefficient(v) => v.zeroize(),
            _ => {}
        }
    }
}

/// The template of a secret key made by a remote unwrap or derive.
fn new_secret_template(
    key_type: CK_KEY_TYPE,
    len: Option<usize>,
    label: &str,
) -> Result<(Vec<u8>, Vec<Attribute>)> {
    let id = new_id()?;
    let kind = remote_key_type(key_type)?;
    let mut template = protected(&id, label, ObjectClass::SECRET_KEY, kind);
    template.extend(usages(ObjectClass::SECRET_KEY, kind));
    if let Some(len) = len {
        template.push(Attribute::ValueLen((len as u64).into()));
    }
    Ok((id, template))
}

/// A secret key that `maker` makes in the remote module with `mechanism` (`call` is the remote
/// unwrap or derive, given the maker's handle and the new key's template).
fn make_secret(
    maker: &RemoteKey,
    mechanism: &Mechanism,
    (key_type, len, label): (CK_KEY_TYPE, Option<usize>, &str),
    what: &str,
    call: impl Fn(
        &cryptoki::session::Session,
        &CkMechanism<'_>,
        cryptoki::object::ObjectHandle,
        &[Attribute],
    ) -> cryptoki::error::Result<cryptoki::object::ObjectHandle>,
) -> Result<RemoteRef> {
    mechanisms::check(mechanism)?;
    let (id, template) = new_secret_template(key_type, len, label)?;
    maker.remote.run(what, |session, lookup| {
        let handle = lookup.object(maker.class, &maker.id)?;
        mechanisms::with_remote(mechanism, |m| call(session, m, handle, &template))
    })?;
    Ok(RemoteRef::new(&id, label))
}

/// `C_UnwrapKey` in the remote module: the unwrapped secret key never exists outside it.
pub fn unwrap_secret(
    unwrapping: &RemoteKey,
    mechanism: &Mechanism,
    wrapped: &[u8],
    key_type: CK_KEY_TYPE,
    len: Option<usize>,
    label: &str,
) -> Result<RemoteRef> {
    let target = (key_type, len, label);
    make_secret(
        unwrapping,
        mechanism,
        target,
        "C_UnwrapKey",
        |s, m, h, t| s.unwrap_key(m, h, wrapped, t),
    )
}

/// `C_DeriveKey` in the remote module (ECDH): the shared secret stays there.
pub fn derive_secret(
    base: &RemoteKey,
    mechanism: &Mechanism,
    key_type: CK_KEY_TYPE,
    len: Option<usize>,
    label: &str,
) -> Result<RemoteRef> {
    let target = (key_type, len, label);
    make_secret(base, mechanism, target, "C_DeriveKey", |s, m, h, t| {
        s.derive_key(m, h, t)
    })
}

/// The length in bytes of a remote secret key (`CKA_VALUE_LEN`) and its `CKA_CHECK_VALUE`.
pub fn secret_facts(remote: &Remote, reference: &RemoteRef) -> Result<(usize, Option<Vec<u8>>)> {
    let id = reference.id_bytes()?;
    let attributes = remote.run("C_GetAttributeValue", |session, lookup| {
        let handle = lookup.object(ObjectClass::SECRET_KEY, &id)?;
        session.get_attributes(
            handle,
            &[AttributeType::ValueLen, AttributeType::CheckValue],
        )
    })?;
    let mut len = None;
    let mut check = None;
    for attribute in attributes {
        match attribute {
            Attribute::ValueLen(l) => len = usize::try_from(u64::from(l)).ok(),
            Attribute::CheckValue(v) => check = Some(v),
            _ => {}
        }
    }
    let len = len.ok_or_else(|| Error::Provider("remote key without CKA_VALUE_LEN".into()))?;
    Ok((len, check))
}

/// What becomes of the remote objects (both halves of a pair) when their row is destroyed or
/// its key rotated out: destroyed, or kept and relabelled with `mark` as a prefix.
pub fn retire(
    remote: &Remote,
    reference: &RemoteRef,
    on_destroy: OnDestroy,
    mark: &str,
) -> Result<()> {
    let id = reference.id_bytes()?;
    let label = format!("{mark}:{}", reference.label).into_bytes();
    remote.run("retiring a remote key", |session, lookup| {
        let found = session.find_objects(&[Attribute::Id(id.clone())])?;
        for handle in found {
            match on_destroy {
                OnDestroy::Destroy => session.destroy_object(handle)?,
                OnDestroy::Keep => {
                    session.update_attributes(handle, &[Attribute::Label(label.clone())])?
                }
            }
        }
        for class in [
            ObjectClass::PRIVATE_KEY,
            ObjectClass::PUBLIC_KEY,
            ObjectClass::SECRET_KEY,
        ] {
            lookup.forget(class, &id);
        }
        Ok(())
    })?;
    tracing::info!(remote_id = %reference.id, ?on_destroy, %mark, "remote key retired");
    Ok(())
}

/// Whether the remote object of a reference exists and is sensitive and non-extractable, for
/// `sqlhsm db check`.
pub fn verify_protected(
    remote: &Remote,
    reference: &RemoteRef,
    class: ObjectClass,
) -> Result<bool> {
    let id = reference.id_bytes()?;
    let attributes = remote.run("C_GetAttributeValue", |session, lookup| {
        let handle = lookup.object(class, &id)?;
        session.get_attributes(
            handle,
            &[AttributeType::Sensitive, AttributeType::Extractable],
        )
    })?;
    let sensitive = attributes.contains(&Attribute::Sensitive(true));
    let extractable = attributes.contains(&Attribute::Extractable(true));
    Ok(sensitive && !extractable)
}

//! Key management functions (PKCS#11 3.0 §5.14): `C_GenerateKey`, `C_GenerateKeyPair` (built
//! in `core::keygen`), `C_WrapKey`, `C_UnwrapKey`, `C_DeriveKey`.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::{CK_OBJECT_HANDLE, CK_SESSION_HANDLE};
use crate::core::access::Access;
use crate::core::attributes::AttrMap;
use crate::core::extraction;
use crate::core::module::{module, Module};
use crate::core::new_keys::{first_handle, NewKey};
use crate::core::policy::{self, Origin};
use crate::core::template::{
    matches_key_template, template_bool, template_ulong, with_key_template,
};
use crate::crypto::keys::PrivateKey;
use crate::error::{Result, Rv};
use crate::key_algorithm::{self, SecretFault};
use crate::mechanism::{self, KeyMaterial};
use crate::types::{Attribute, Mechanism, OutBuf};

pub fn generate_key(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    template: &[Attribute],
) -> Result<CK_OBJECT_HANDLE> {
    module()?.generate_key(session, mechanism, template)
}

/// Returns (public key handle, private key handle).
pub fn generate_key_pair(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    public_template: &[Attribute],
    private_template: &[Attribute],
) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
    module()?.generate_key_pair(session, mechanism, public_template, private_template)
}

pub fn wrap_key(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    wrapping_key: CK_OBJECT_HANDLE,
    key: CK_OBJECT_HANDLE,
    out: &mut OutBuf<'_>,
) -> Result<()> {
    module()?.wrap_key(session, mechanism, wrapping_key, key, out)
}

pub fn unwrap_key(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    unwrapping_key: CK_OBJECT_HANDLE,
    wrapped_key: &[u8],
    template: &[Attribute],
) -> Result<CK_OBJECT_HANDLE> {
    module()?.unwrap_key(session, mechanism, unwrapping_key, wrapped_key, template)
}

/// The new key's handle, then those of an SP 800-108 derivation's additional keys.
pub fn derive_key(
    session: CK_SESSION_HANDLE,
    mechanism: &Mechanism,
    base_key: CK_OBJECT_HANDLE,
    template: &[Attribute],
) -> Result<(CK_OBJECT_HANDLE, Vec<CK_OBJECT_HANDLE>)> {
    module()?.derive_key(session, mechanism, base_key, template)
}

/// The bytes of a key as a wrapping mechanism sees them: a secret key's value, a private
/// key's PKCS#8.
fn key_bytes(material: &KeyMaterial) -> Result<Zeroizing<Vec<u8>>> {
    match material {
        KeyMaterial::Secret(value) => Ok(Zeroizing::new(value.to_vec())),
        KeyMaterial::Private(private) => private.to_pkcs8_der(),
        KeyMaterial::Public(_) => Err(Rv::KEY_NOT_WRAPPABLE)?,
        // Remote keys are made non-extractable; the remote module would refuse anyway.
        KeyMaterial::External(_) => Err(Rv::KEY_UNEXTRACTABLE)?,
    }
}

impl Module {
    pub fn wrap_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        wrapping_key: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        out: &mut OutBuf<'_>,
    ) -> Result<()> {
        let access = self.access(session)?;
        let wrap = self.entry(mechanism)?.wrap.ok_or(Rv::MECHANISM_INVALID)?;
        let (wrapper, wrapping) = self.usable_key(
            &access,
            wrapping_key,
            CKA_WRAP,
            mechanism,
            Rv::WRAPPING_KEY_HANDLE_INVALID,
        )?;
        let target = self.visible_object(&access, key, Rv::KEY_HANDLE_INVALID)?;
        extraction::check_wrap(&wrapper.attrs, &target.attrs)?;
        // The wrapping key's CKA_WRAP_TEMPLATE says which keys it may wrap (§4.10).
        if !matches_key_template(&wrapper.attrs, CKA_WRAP_TEMPLATE, &target.attrs)? {
            Err(Rv::KEY_NOT_WRAPPABLE)?
        }
        let material = self.material(&access, &target)?;
        let bytes = key_bytes(&material)?;
        let wrapped = wrap(&wrapping, &mechanism.param, &bytes)?;
        out.fill(&wrapped).map(|_| ())
    }

    pub fn unwrap_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        unwrapping_key: CK_OBJECT_HANDLE,
        wrapped: &[u8],
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let access = self.access(session)?;
        let template = &*access.with_private_default(template)?;
        let unwrap = self.entry(mechanism)?.unwrap.ok_or(Rv::MECHANISM_INVALID)?;
        let (unwrapper, unwrapping) = self.usable_key(
            &access,
            unwrapping_key,
            CKA_UNWRAP,
            mechanism,
            Rv::UNWRAPPING_KEY_HANDLE_INVALID,
        )?;
        // The unwrapping key's CKA_UNWRAP_TEMPLATE joins the caller's (§4.10).
        let template = &*with_key_template(&unwrapper.attrs, CKA_UNWRAP_TEMPLATE, template)?;
        extraction::check_unwrap_template(&unwrapper.attrs, template)?;
        let class = template_ulong(template, CKA_CLASS)?.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
        let key_type = template_ulong(template, CKA_KEY_TYPE)?.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
        if let Some(remote_key) = Self::as_remote_key(&unwrapping) {
            if class != CKO_SECRET_KEY {
                tracing::info!("a REMOTE key unwraps secret keys only");
                Err(Rv::TEMPLATE_INCONSISTENT)?
            }
            let len = template_ulong(template, CKA_VALUE_LEN)?
                .map(|l| usize::try_from(l).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID))
                .transpose()?;
            let attrs = remote_target_attrs(template, key_type, Origin::Imported)?;
            let label = remote_label(&attrs);
            let reference = crate::provider::keys::unwrap_secret(
                remote_key, mechanism, wrapped, key_type, len, &label,
            )?;
            return self.store_remote_result(session, &access, remote_key, attrs, reference);
        }
        let mut bytes = unwrap(&unwrapping, &mechanism.param, wrapped)?;
        let key = match class {
            CKO_SECRET_KEY => {
                // Block-cipher wrappings pad the value; CKA_VALUE_LEN says how much is key.
                if let Some(len) = template_ulong(template, CKA_VALUE_LEN)? {
                    let len = usize::try_from(len).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
                    if len > bytes.len() {
                        Err(Rv::TEMPLATE_INCONSISTENT)?
                    }
                    bytes.truncate(len);
                }
                secret_key(template, key_type, bytes, Origin::Imported, Made::Unwrapped)?
            }
            CKO_PRIVATE_KEY => {
                let private =
                    PrivateKey::from_pkcs8_der(&bytes).map_err(|_| Rv::WRAPPED_KEY_INVALID)?;
                // A key of no algorithm sqlhsm has (a curve no row names) is not one to unwrap.
                let algorithm = crate::key_algorithm::of_private(&private)
                    .map_err(|_| Rv::WRAPPED_KEY_INVALID)?;
                if algorithm.key_type != key_type {
                    Err(Rv::TEMPLATE_INCONSISTENT)?
                }
                let public = private.public_key()?;
                let mut attrs = policy::build_key_attrs(
                    CKO_PRIVATE_KEY,
                    key_type,
                    template,
                    &[],
                    Origin::Imported,
                )?;
                crate::core::keystore::add_public_values(&mut attrs, &public, CKO_PRIVATE_KEY)?;
                NewKey::Pair {
                    public: None,
                    private: Some(attrs),
                    public_key: Arc::new(public),
                    private_key: Some(Arc::new(private)),
                }
            }
            _ => Err(Rv::TEMPLATE_INCONSISTENT)?,
        };
        first_handle(self.store_new_key(session, &access, key)?)
    }

    /// `C_DeriveKey`: the new key's handle, then the handles of the additional keys an
    /// SP 800-108 derivation makes (in the order of `pAdditionalDerivedKeys`).
    pub fn derive_key(
        &self,
        session: CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        base_key: CK_OBJECT_HANDLE,
        template: &[Attribute],
    ) -> Result<(CK_OBJECT_HANDLE, Vec<CK_OBJECT_HANDLE>)> {
        let access = self.access(session)?;
        let template = &*access.with_private_default(template)?;
        let entry = self.entry(mechanism)?;
        let derive = entry.derive.ok_or(Rv::MECHANISM_INVALID)?;
        let (base, material) = self.usable_key(
            &access,
            base_key,
            CKA_DERIVE,
            mechanism,
            Rv::KEY_HANDLE_INVALID,
        )?;
        // The base key's CKA_DERIVE_TEMPLATE joins the caller's, for every key made (§4.10).
        let template = &*with_key_template(&base.attrs, CKA_DERIVE_TEMPLATE, template)?;
        let class = template_ulong(template, CKA_CLASS)?.unwrap_or(CKO_SECRET_KEY);
        // A mechanism that derives data (CKM_HKDF_DATA) makes data objects only.
        let data_object = match (class, entry.derives_data) {
            (CKO_SECRET_KEY, false) => false,
            (CKO_DATA, true) => true,
            _ => Err(Rv::TEMPLATE_INCONSISTENT)?,
        };
        let (key_type, len) = match data_object {
            true => (CK_UNAVAILABLE_INFORMATION, data_len(template)?),
            false => requested_key(template)?,
        };
        if let Some(remote_key) = Self::as_remote_key(&material) {
            let mut attrs = remote_target_attrs(template, key_type, Origin::Imported)?;
            attrs.set_bool(CKA_ALWAYS_SENSITIVE, base.attrs.flag(CKA_ALWAYS_SENSITIVE));
            attrs.set_bool(
                CKA_NEVER_EXTRACTABLE,
                base.attrs.flag(CKA_NEVER_EXTRACTABLE),
            );
            let label = remote_label(&attrs);
            let reference =
                crate::provider::keys::derive_secret(remote_key, mechanism, key_type, len, &label)?;
            let handle =
                self.store_remote_result(session, &access, remote_key, attrs, reference)?;
            return Ok((handle, Vec::new()));
        }
        // The keys the parameter names (a salt key, the second key of a concatenation): secret
        // keys the session can see; their protection carries over like the base key's.
        let mut bases = vec![base.clone()];
        let mut values = Vec::new();
        for handle in mechanism.param.key_handles() {
            let object = self.visible_object(&access, handle, Rv::KEY_HANDLE_INVALID)?;
            if object.class() != CKO_SECRET_KEY {
                Err(Rv::KEY_TYPE_INCONSISTENT)?
            }
            match self.material(&access, &object)? {
                KeyMaterial::Secret(value) => values.push(Zeroizing::new(value.to_vec())),
                _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
            }
            bases.push(object);
        }
        let additional = mechanism
            .param
            .additional_templates()
            .iter()
            .map(|t| {
                let t = access.with_private_default(t)?;
                let t = with_key_template(&base.attrs, CKA_DERIVE_TEMPLATE, &t)?.into_owned();
                let (key_type, len) = requested_key(&t)?;
                let len = len.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
                Ok((t, key_type, len))
            })
            .collect::<Result<Vec<_>>>()?;
        let lens: Vec<usize> = additional.iter().map(|(_, _, len)| *len).collect();
        let input = mechanism::DeriveInput {
            base: &material,
            base_type: bases[0]
                .attrs
                .ulong(CKA_KEY_TYPE)
                .unwrap_or(CK_UNAVAILABLE_INFORMATION),
            param: &mechanism.param,
            len,
            keys: &values,
            additional: &lens,
        };
        let mut values = derive(&input)?.into_iter();
        let value = values.next().ok_or(Rv::GENERAL_ERROR)?;
        if data_object {
            let mut data_template: Vec<Attribute> = template
                .iter()
                .filter(|a| a.kind != CKA_VALUE_LEN)
                .cloned()
                .collect();
            if data_template.iter().any(|a| a.kind == CKA_VALUE) {
                Err(Rv::TEMPLATE_INCONSISTENT)?
            }
            data_template.push(Attribute::new(CKA_VALUE, value.to_vec()));
            let attrs =
                crate::core::plain_objects::build_plain_attrs(CKO_DATA, &data_template, &access)?;
            return Ok((self.store_plain(session, &access, attrs)?, Vec::new()));
        }
        let mut keys = vec![derived_key(
            template,
            key_type,
            value,
            mechanism.kind,
            &bases,
        )?];
        for ((t, key_type, _), value) in additional.iter().zip(values) {
            keys.push(derived_key(t, *key_type, value, mechanism.kind, &bases)?);
        }
        if keys.len() != additional.len() + 1 {
            Err(Rv::GENERAL_ERROR)?
        }
        // The keys are stored one by one; if one fails, the ones already made are destroyed, so
        // a failed call leaves no key behind.
        let mut handles = Vec::with_capacity(keys.len());
        for key in keys {
            match self
                .store_new_key(session, &access, key)
                .and_then(first_handle)
            {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    for handle in handles {
                        let _ = self.destroy_object(session, handle);
                    }
                    return Err(e);
                }
            }
        }
        let first = handles.remove(0);
        Ok((first, handles))
    }
}

/// The key type and length a derivation template asks for (an AES key must say its length).
fn requested_key(template: &[Attribute]) -> Result<(CK_KEY_TYPE, Option<usize>)> {
    if template_ulong(template, CKA_CLASS)?.is_some_and(|c| c != CKO_SECRET_KEY) {
        Err(Rv::TEMPLATE_INCONSISTENT)?
    }
    let key_type = template_ulong(template, CKA_KEY_TYPE)?.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
    let len = match (template_ulong(template, CKA_VALUE_LEN)?, key_type) {
        (Some(len), _) => Some(usize::try_from(len).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?),
        (None, CKK_AES) => Err(Rv::TEMPLATE_INCOMPLETE)?,
        // DES keys and ChaCha20 keys have one length, which the key type implies.
        (None, kt) => key_algorithm::fixed_secret_len(kt),
    };
    Ok((key_type, len))
}

/// The length of a derived data object (`CKM_HKDF_DATA`): the template's `CKA_VALUE_LEN`.
fn data_len(template: &[Attribute]) -> Result<Option<usize>> {
    let len = template_ulong(template, CKA_VALUE_LEN)?.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
    Ok(Some(
        usize::try_from(len).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?,
    ))
}

/// A derived secret key with the protection rules of PKCS#11 3.0 §4.10: sensitive and
/// unextractable as its base keys are ([`extraction::inherit_secrecy`], each base key: the
/// base and a key the parameter names, such as the second key of a concatenation), and
/// "always sensitive" / "never extractable" only if every base key was and the new key still is.
fn derived_key(
    template: &[Attribute],
    key_type: CK_KEY_TYPE,
    value: Zeroizing<Vec<u8>>,
    mechanism: CK_MECHANISM_TYPE,
    bases: &[crate::core::object::ObjectRef],
) -> Result<NewKey> {
    let mut key = secret_key(template, key_type, value, Origin::Imported, Made::Derived)?;
    if let NewKey::Secret { attrs, .. } = &mut key {
        for base in bases {
            extraction::inherit_secrecy(mechanism, &base.attrs, attrs);
        }
        let always_sensitive =
            bases.iter().all(|b| b.attrs.flag(CKA_ALWAYS_SENSITIVE)) && attrs.flag(CKA_SENSITIVE);
        let never_extractable = bases.iter().all(|b| b.attrs.flag(CKA_NEVER_EXTRACTABLE))
            && !attrs.flag(CKA_EXTRACTABLE);
        attrs.set_bool(CKA_ALWAYS_SENSITIVE, always_sensitive);
        attrs.set_bool(CKA_NEVER_EXTRACTABLE, never_extractable);
    }
    Ok(key)
}

/// The attributes of a secret key that a REMOTE key unwraps or derives in the remote module:
/// always a token object (the remote holds it), sensitive and non-extractable.
fn remote_target_attrs(
    template: &[Attribute],
    key_type: CK_KEY_TYPE,
    origin: Origin,
) -> Result<AttrMap> {
    if key_type != CKK_AES && !key_algorithm::is_any_length_secret(key_type) {
        Err(Rv::TEMPLATE_INCONSISTENT)?
    }
    if template_bool(template, CKA_TOKEN)? == Some(false) {
        tracing::info!("keys made by a REMOTE key are token objects in the remote module");
        Err(Rv::TEMPLATE_INCONSISTENT)?
    }
    let mut attrs =
        policy::build_key_attrs(CKO_SECRET_KEY, key_type, template, &[CKA_VALUE_LEN], origin)?;
    attrs.set_bool(CKA_TOKEN, true);
    Ok(attrs)
}

fn remote_label(attrs: &AttrMap) -> String {
    crate::core::remote::remote_label(attrs.get(CKA_LABEL))
}

impl Module {
    /// Records a secret key that a REMOTE key made in the remote module; if the row cannot be
    /// stored, the remote object is destroyed again.
    fn store_remote_result(
        &self,
        session: CK_SESSION_HANDLE,
        access: &Access,
        maker: &crate::provider::RemoteKey,
        attrs: AttrMap,
        reference: crate::provider::RemoteRef,
    ) -> Result<CK_OBJECT_HANDLE> {
        let key = NewKey::RemoteSecret {
            attrs,
            remote: reference.clone(),
        };
        match self.store_new_key(session, access, key) {
            Ok(handles) => first_handle(handles),
            Err(e) => {
                let _ = crate::provider::keys::retire(
                    &maker.remote,
                    &reference,
                    crate::provider::OnDestroy::Destroy,
                    "unused",
                );
                Err(e)
            }
        }
    }
}

/// How the bytes of a new secret key were made.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Made {
    Unwrapped,
    Derived,
}

/// A secret key from unwrapped or derived bytes and the caller's template. Unwrapped bytes that
/// their key type refuses (DES parity, equal XTS halves) are `CKR_WRAPPED_KEY_INVALID`; derived
/// bytes get DES parity set first (as do the shared secrets of `C_EncapsulateKey` /
/// `C_DecapsulateKey`, which are derived bytes in this sense).
pub(super) fn secret_key(
    template: &[Attribute],
    key_type: CK_KEY_TYPE,
    value: Zeroizing<Vec<u8>>,
    origin: Origin,
    made: Made,
) -> Result<NewKey> {
    let mut value = value;
    match key_algorithm::secret_row(key_type, &mut value, made == Made::Derived) {
        Ok(_) => {}
        Err(SecretFault::KeyType) => Err(Rv::TEMPLATE_INCONSISTENT)?,
        // An empty generic secret or HMAC key is as unknown a key as a type sqlhsm lacks.
        Err(SecretFault::Length) if key_algorithm::is_any_length_secret(key_type) => {
            Err(Rv::TEMPLATE_INCONSISTENT)?
        }
        Err(SecretFault::Length) => Err(Rv::KEY_SIZE_RANGE)?,
        // Unwrapped bytes its type refuses; derived ones can only be equal XTS halves.
        Err(SecretFault::Value) if made == Made::Unwrapped => Err(Rv::WRAPPED_KEY_INVALID)?,
        Err(SecretFault::Value) => Err(Rv::KEY_SIZE_RANGE)?,
    }
    let attrs =
        policy::build_key_attrs(CKO_SECRET_KEY, key_type, template, &[CKA_VALUE_LEN], origin)?;
    Ok(NewKey::Secret { attrs, value })
}

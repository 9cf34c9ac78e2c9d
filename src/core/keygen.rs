//! Key generation (PKCS#11 3.0 §5.14): `C_GenerateKey` and `C_GenerateKeyPair`. The registry
//! says which mechanism makes what; this module reads the templates and calls `crypto`.

use std::sync::Arc;

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::keystore::add_public_values;
use super::module::Module;
use super::object::{self, find_in_template, template_ulong, Origin};
use super::objects::NewKey;
use crate::crypto::keys::{is_ed25519_params, Curve, PrivateKey, ED25519_PARAMS_DER};
use crate::crypto::random;
use crate::error::{Result, Rv};
use crate::mechanism::{self, KeyGen};
use crate::storage::KeyTable;
use crate::types::{Attribute, Mechanism, MechanismParam};
use crate::vendor;

fn generation_kind(mechanism: &Mechanism) -> Result<KeyGen> {
    let entry = mechanism::lookup(mechanism.kind).ok_or(Rv::MECHANISM_INVALID)?;
    let kind = entry.generate.ok_or(Rv::MECHANISM_INVALID)?;
    if mechanism.param != MechanismParam::None {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    Ok(kind)
}

/// A pair's label and `CKA_ID` are shared (one row): whichever template names them names both.
fn share_identity(public: &mut Vec<Attribute>, private: &mut Vec<Attribute>) -> Result<()> {
    for kind in [CKA_LABEL, CKA_ID] {
        let on_private = find_in_template(private, kind)?.map(<[u8]>::to_vec);
        let on_public = find_in_template(public, kind)?.map(<[u8]>::to_vec);
        match (on_public, on_private) {
            (Some(value), None) => private.push(Attribute::new(kind, value)),
            (None, Some(value)) => public.push(Attribute::new(kind, value)),
            (Some(p), Some(q)) if p != q => {
                public.retain(|a| a.kind != kind);
                public.push(Attribute::new(kind, q));
            }
            _ => {}
        }
    }
    Ok(())
}

impl Module {
    pub fn generate_key(
        &self,
        session: cryptoki_sys::CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        template: &[Attribute],
    ) -> Result<CK_OBJECT_HANDLE> {
        let access = self.access(session)?;
        let kind = generation_kind(mechanism)?;
        let key_type = match kind {
            KeyGen::Aes => CKK_AES,
            KeyGen::GenericSecret => CKK_GENERIC_SECRET,
            _ => Err(Rv::MECHANISM_INVALID)?,
        };
        let len = template_ulong(template, CKA_VALUE_LEN)?.ok_or(Rv::TEMPLATE_INCOMPLETE)?;
        let len = usize::try_from(len).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
        let entry = mechanism::lookup(mechanism.kind).ok_or(Rv::MECHANISM_INVALID)?;
        let in_range =
            (entry.info.ulMinKeySize as usize..=entry.info.ulMaxKeySize as usize).contains(&len);
        if !in_range || (key_type == CKK_AES && !matches!(len, 16 | 24 | 32)) {
            Err(Rv::KEY_SIZE_RANGE)?
        }
        let rotation = self.rotation_from_template(&access, template, KeyTable::Sym)?;
        let mut attrs = object::build_key_attrs(
            CKO_SECRET_KEY,
            key_type,
            template,
            &[CKA_VALUE_LEN, vendor::CKA_SQLHSM_ROTATED_FROM],
            Origin::Generated(mechanism.kind),
        )?;
        attrs.set_ulong(CKA_VALUE_LEN, len as CK_ULONG);
        let mut value = Zeroizing::new(vec![0u8; len]);
        random::fill(&mut value)?;
        let handles = self.store_key(
            session,
            &access,
            NewKey::Secret { attrs, value },
            rotation.as_ref(),
        )?;
        handles
            .into_iter()
            .next()
            .ok_or_else(|| Rv::GENERAL_ERROR.into())
    }

    pub fn generate_key_pair(
        &self,
        session: cryptoki_sys::CK_SESSION_HANDLE,
        mechanism: &Mechanism,
        public_template: &[Attribute],
        private_template: &[Attribute],
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE)> {
        let access = self.access(session)?;
        let kind = generation_kind(mechanism)?;
        let mut public_template = public_template.to_vec();
        let mut private_template = private_template.to_vec();
        share_identity(&mut public_template, &mut private_template)?;
        let (private_key, key_type, consumed): (PrivateKey, CK_KEY_TYPE, &[CK_ATTRIBUTE_TYPE]) =
            match kind {
                KeyGen::RsaPair => {
                    let bits = template_ulong(&public_template, CKA_MODULUS_BITS)?
                        .ok_or(Rv::TEMPLATE_INCOMPLETE)?;
                    let entry = mechanism::lookup(mechanism.kind).ok_or(Rv::MECHANISM_INVALID)?;
                    if bits < entry.info.ulMinKeySize || bits > entry.info.ulMaxKeySize {
                        Err(Rv::KEY_SIZE_RANGE)?
                    }
                    let exponent = find_in_template(&public_template, CKA_PUBLIC_EXPONENT)?
                        .unwrap_or_default();
                    let bits = u32::try_from(bits).map_err(|_| Rv::KEY_SIZE_RANGE)?;
                    (
                        PrivateKey::generate_rsa(bits, exponent)?,
                        CKK_RSA,
                        &[CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT],
                    )
                }
                KeyGen::EcPair => {
                    let params = find_in_template(&public_template, CKA_EC_PARAMS)?
                        .ok_or(Rv::TEMPLATE_INCOMPLETE)?;
                    let curve = Curve::from_params_der(params)?;
                    (PrivateKey::generate_ec(curve)?, CKK_EC, &[CKA_EC_PARAMS])
                }
                KeyGen::EdwardsPair => {
                    let params = find_in_template(&public_template, CKA_EC_PARAMS)?
                        .unwrap_or(ED25519_PARAMS_DER);
                    if !is_ed25519_params(params) {
                        Err(Rv::CURVE_NOT_SUPPORTED)?
                    }
                    (
                        PrivateKey::generate_ed25519()?,
                        CKK_EC_EDWARDS,
                        &[CKA_EC_PARAMS],
                    )
                }
                KeyGen::Aes | KeyGen::GenericSecret => Err(Rv::MECHANISM_INVALID)?,
            };
        let origin = Origin::Generated(mechanism.kind);
        let public_key = private_key.public_key()?;
        // CKA_SQLHSM_ROTATED_FROM (in either template) makes the new pair a rotation's successor.
        let rotation =
            match self.rotation_from_template(&access, &private_template, KeyTable::Asym)? {
                Some(rotation) => Some(rotation),
                None => self.rotation_from_template(&access, &public_template, KeyTable::Asym)?,
            };
        let link = vendor::CKA_SQLHSM_ROTATED_FROM;
        let public_consumed: Vec<CK_ATTRIBUTE_TYPE> =
            consumed.iter().copied().chain([link]).collect();
        let mut public = object::build_key_attrs(
            CKO_PUBLIC_KEY,
            key_type,
            &public_template,
            &public_consumed,
            origin,
        )?;
        let mut private = object::build_key_attrs(
            CKO_PRIVATE_KEY,
            key_type,
            &private_template,
            &[link],
            origin,
        )?;
        add_public_values(&mut public, &public_key, CKO_PUBLIC_KEY)?;
        add_public_values(&mut private, &public_key, CKO_PRIVATE_KEY)?;
        let key = NewKey::Pair {
            public: Some(public),
            private: Some(private),
            public_key: Arc::new(public_key),
            private_key: Some(Arc::new(private_key)),
        };
        let handles = self.store_key(session, &access, key, rotation.as_ref())?;
        match handles.as_slice() {
            [public, private] => Ok((*public, *private)),
            _ => Err(Rv::GENERAL_ERROR)?,
        }
    }
}

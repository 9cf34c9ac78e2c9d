//! ML-KEM key encapsulation (PKCS#11 3.2 Current Mechanisms, "ML-KEM Key Agreement"):
//! `CKM_ML_KEM` in `C_EncapsulateKey` (ML-KEM.Encaps with the public key) and
//! `C_DecapsulateKey` (ML-KEM.Decaps with the private key), FIPS 203 Algorithms 20 and 21. It
//! has no parameter. Its key sizes are the range of ML-KEM public keys in bytes, as the
//! mechanism's section says: 800 (ML-KEM-512) to 1568 (ML-KEM-1024).

use std::sync::Arc;

use cryptoki_sys::{CKK_ML_KEM, CKM_ML_KEM, CK_ULONG};
use zeroize::Zeroizing;

use super::support::no_param;
use super::{entry, Encapsulation, Kem, KeyMaterial, MechanismEntry};
use crate::crypto::kem::{ml_kem_ciphertext_len, ml_kem_decapsulate, ml_kem_encapsulate};
use crate::crypto::keys::{PrivateKey, PublicKey};
use crate::error::{Result, Rv};
use crate::types::MechanismParam;

/// ML-KEM-512's and ML-KEM-1024's encapsulation keys, in bytes (FIPS 203 §8, Table 3).
const MIN_PUBLIC_KEY_BYTES: CK_ULONG = 800;
const MAX_PUBLIC_KEY_BYTES: CK_ULONG = 1568;

pub(super) fn entries() -> Vec<MechanismEntry> {
    vec![MechanismEntry {
        kem: Some(Kem {
            ciphertext_len,
            encapsulate,
            decapsulate,
        }),
        key_types: &[CKK_ML_KEM],
        ..entry(CKM_ML_KEM, MIN_PUBLIC_KEY_BYTES, MAX_PUBLIC_KEY_BYTES, 0)
    }]
}

/// The encapsulation key. A key held by another module (REMOTE) is not forwarded: the
/// mechanism is not one a remote module is asked to run.
fn public(key: &KeyMaterial) -> Result<Arc<PublicKey>> {
    match key {
        KeyMaterial::Public(k) => Ok(Arc::clone(k)),
        KeyMaterial::External(_) => Err(Rv::MECHANISM_INVALID)?,
        KeyMaterial::Private(_) | KeyMaterial::Secret(_) => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    }
}

fn private(key: &KeyMaterial) -> Result<Arc<PrivateKey>> {
    match key {
        KeyMaterial::Private(k) => Ok(Arc::clone(k)),
        KeyMaterial::External(_) => Err(Rv::MECHANISM_INVALID)?,
        KeyMaterial::Public(_) | KeyMaterial::Secret(_) => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    }
}

fn ciphertext_len(key: &KeyMaterial, param: &MechanismParam) -> Result<usize> {
    let key = public(key)?;
    no_param(param)?;
    ml_kem_ciphertext_len(&key)
}

fn encapsulate(key: &KeyMaterial, param: &MechanismParam) -> Result<Encapsulation> {
    let key = public(key)?;
    no_param(param)?;
    ml_kem_encapsulate(&key)
}

fn decapsulate(
    key: &KeyMaterial,
    param: &MechanismParam,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let key = private(key)?;
    no_param(param)?;
    ml_kem_decapsulate(&key, ciphertext)
}

//! OpenTDF's hybrid KEMs as vendor mechanisms (`crate::vendor`; the constructions are
//! `crate::crypto::hybrid_kem`): `CKM_SQLHSM_XWING`, `CKM_SQLHSM_P256_ML_KEM_768` and
//! `CKM_SQLHSM_P384_ML_KEM_1024` in `C_EncapsulateKey` / `C_DecapsulateKey` (no parameter; the
//! 32-byte shared secret becomes the template's secret key, as for `CKM_ML_KEM`), and their key
//! pair generations `CKM_SQLHSM_*_KEY_PAIR_GEN` (one row of the key-algorithm table each). As
//! for ML-KEM, key sizes are public key lengths in bytes (1216, 1249, 1665), so each mechanism
//! takes keys of one size.

use std::sync::Arc;

use cryptoki_sys::{CKF_GENERATE_KEY_PAIR, CK_KEY_TYPE, CK_MECHANISM_TYPE, CK_ULONG};
use zeroize::Zeroizing;

use super::support::no_param;
use super::{entry, Encapsulation, Kem, KeyMaterial, MechanismEntry};
use crate::crypto::hybrid_kem::HybridKem;
use crate::crypto::keys::{Family, PrivateKey, PublicKey};
use crate::error::{Result, Rv};
use crate::types::MechanismParam;
use crate::vendor;

/// One hybrid: its KEM mechanism, key type and key pair generation.
struct Hybrid {
    kem: HybridKem,
    mechanism: CK_MECHANISM_TYPE,
    /// The one key type the KEM mechanism takes.
    key_types: &'static [CK_KEY_TYPE],
    generation: CK_MECHANISM_TYPE,
    /// The KEM's slot: the three functions with `kem` fixed (fn pointers cannot capture it).
    slot: Kem,
}

/// The KEM slot of `$kem`: each function checks the key is a key of that hybrid.
macro_rules! slot {
    ($kem:expr) => {
        Kem {
            ciphertext_len: |key, param| ciphertext_len($kem, key, param),
            encapsulate: |key, param| encapsulate($kem, key, param),
            decapsulate: |key, param, ciphertext| decapsulate($kem, key, param, ciphertext),
        }
    };
}

const HYBRIDS: [Hybrid; 3] = [
    Hybrid {
        kem: HybridKem::XWing,
        mechanism: vendor::CKM_SQLHSM_XWING,
        key_types: &[vendor::CKK_SQLHSM_XWING],
        generation: vendor::CKM_SQLHSM_XWING_KEY_PAIR_GEN,
        slot: slot!(HybridKem::XWing),
    },
    Hybrid {
        kem: HybridKem::P256MlKem768,
        mechanism: vendor::CKM_SQLHSM_P256_ML_KEM_768,
        key_types: &[vendor::CKK_SQLHSM_P256_ML_KEM_768],
        generation: vendor::CKM_SQLHSM_P256_ML_KEM_768_KEY_PAIR_GEN,
        slot: slot!(HybridKem::P256MlKem768),
    },
    Hybrid {
        kem: HybridKem::P384MlKem1024,
        mechanism: vendor::CKM_SQLHSM_P384_ML_KEM_1024,
        key_types: &[vendor::CKK_SQLHSM_P384_ML_KEM_1024],
        generation: vendor::CKM_SQLHSM_P384_ML_KEM_1024_KEY_PAIR_GEN,
        slot: slot!(HybridKem::P384MlKem1024),
    },
];

pub(super) fn entries() -> Vec<MechanismEntry> {
    HYBRIDS
        .iter()
        .flat_map(|hybrid| {
            let size = hybrid.kem.public_key_len() as CK_ULONG;
            [
                MechanismEntry {
                    kem: Some(hybrid.slot),
                    key_types: hybrid.key_types,
                    ..entry(hybrid.mechanism, size, size, 0)
                },
                MechanismEntry {
                    family: Some(Family::Hybrid),
                    ..entry(hybrid.generation, size, size, CKF_GENERATE_KEY_PAIR)
                },
            ]
        })
        .collect()
}

/// The encapsulation key of `kem`. A key held by another module (REMOTE) is not forwarded: no
/// remote module runs these vendor mechanisms.
fn public(kem: HybridKem, key: &KeyMaterial) -> Result<Arc<PublicKey>> {
    let key = match key {
        KeyMaterial::Public(k) => Arc::clone(k),
        KeyMaterial::External(_) => Err(Rv::MECHANISM_INVALID)?,
        KeyMaterial::Private(_) | KeyMaterial::Secret(_) => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    };
    match key.hybrid_public() {
        Some((of, _)) if of == kem => Ok(key),
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    }
}

fn private(kem: HybridKem, key: &KeyMaterial) -> Result<Arc<PrivateKey>> {
    let key = match key {
        KeyMaterial::Private(k) => Arc::clone(k),
        KeyMaterial::External(_) => Err(Rv::MECHANISM_INVALID)?,
        KeyMaterial::Public(_) | KeyMaterial::Secret(_) => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    };
    match key.hybrid_private() {
        Some((of, _)) if of == kem => Ok(key),
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    }
}

fn ciphertext_len(kem: HybridKem, key: &KeyMaterial, param: &MechanismParam) -> Result<usize> {
    public(kem, key)?;
    no_param(param)?;
    Ok(kem.ciphertext_len())
}

fn encapsulate(kem: HybridKem, key: &KeyMaterial, param: &MechanismParam) -> Result<Encapsulation> {
    let key = public(kem, key)?;
    no_param(param)?;
    let (_, value) = key.hybrid_public().ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
    kem.encapsulate(value)
}

fn decapsulate(
    kem: HybridKem,
    key: &KeyMaterial,
    param: &MechanismParam,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let key = private(kem, key)?;
    no_param(param)?;
    let (_, value) = key.hybrid_private().ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
    kem.decapsulate(value, ciphertext)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Each KEM mechanism takes its own hybrid's keys and refuses the others' (and ML-KEM's),
    /// as `CKR_KEY_TYPE_INCONSISTENT`; a round trip through the slot gives one secret.
    #[test]
    fn each_mechanism_takes_its_own_keys_only() {
        let none = MechanismParam::None;
        for hybrid in &HYBRIDS {
            let key = PrivateKey::generate_hybrid(hybrid.kem).unwrap();
            let public = KeyMaterial::Public(Arc::new(key.public_key().unwrap()));
            let private = KeyMaterial::Private(Arc::new(key));
            let slot = hybrid.slot;
            let sent = (slot.encapsulate)(&public, &none).unwrap();
            assert_eq!(
                (slot.ciphertext_len)(&public, &none).unwrap(),
                sent.ciphertext.len()
            );
            let secret = (slot.decapsulate)(&private, &none, &sent.ciphertext).unwrap();
            assert_eq!(secret, sent.secret);
            let err = (slot.decapsulate)(&private, &none, &sent.ciphertext[1..]).unwrap_err();
            assert_eq!(err.rv(), Rv::WRAPPED_KEY_LEN_RANGE);
            // The wrong half, and every other hybrid's mechanism.
            assert_eq!(
                (slot.encapsulate)(&private, &none).unwrap_err().rv(),
                Rv::KEY_TYPE_INCONSISTENT
            );
            for other in HYBRIDS.iter().filter(|o| o.kem != hybrid.kem) {
                let err = (other.slot.encapsulate)(&public, &none).unwrap_err();
                assert_eq!(err.rv(), Rv::KEY_TYPE_INCONSISTENT);
                let err = (other.slot.decapsulate)(&private, &none, &sent.ciphertext);
                assert_eq!(err.unwrap_err().rv(), Rv::KEY_TYPE_INCONSISTENT);
            }
        }
        let ml_kem = crate::key_algorithm::ML_KEM_768
            .generate(&Default::default())
            .unwrap();
        let public = KeyMaterial::Public(Arc::new(ml_kem.public_key().unwrap()));
        let err = (HYBRIDS[0].slot.encapsulate)(&public, &none).unwrap_err();
        assert_eq!(err.rv(), Rv::KEY_TYPE_INCONSISTENT);
    }
}

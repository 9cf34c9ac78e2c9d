//! Key pair generation of the PKCS#11 3.2 post-quantum key types: `CKM_ML_KEM_KEY_PAIR_GEN`
//! (§6.67), `CKM_ML_DSA_KEY_PAIR_GEN` (§6.68), `CKM_SLH_DSA_KEY_PAIR_GEN` (§6.69). The parameter
//! set comes from the public template's `CKA_PARAMETER_SET` (`crate::core::keygen`); what each
//! set is, the key-algorithm table's rows. The operations with these keys are their families'
//! files; generation is here, apart, because one table row per parameter set is all it needs.

use cryptoki_sys::{
    CKF_GENERATE_KEY_PAIR, CKM_ML_DSA_KEY_PAIR_GEN, CKM_ML_KEM_KEY_PAIR_GEN,
    CKM_SLH_DSA_KEY_PAIR_GEN, CK_MECHANISM_TYPE, CK_ULONG,
};

use super::{entry, MechanismEntry};
use crate::crypto::keys::Family;
use crate::key_algorithm::bits_range;

/// `ulMinKeySize` / `ulMaxKeySize`: PKCS#11 3.2 gives these mechanisms' key sizes as the length
/// of the public key in bytes, the rows' `bits` over eight.
const fn public_key_bytes(family: Family) -> (CK_ULONG, CK_ULONG) {
    let (min, max) = bits_range(family);
    (min / 8, max / 8)
}

fn generation(kind: CK_MECHANISM_TYPE, family: Family) -> MechanismEntry {
    let (min, max) = public_key_bytes(family);
    MechanismEntry {
        family: Some(family),
        ..entry(kind, min, max, CKF_GENERATE_KEY_PAIR)
    }
}

pub(super) fn entries() -> Vec<MechanismEntry> {
    vec![
        generation(CKM_ML_KEM_KEY_PAIR_GEN, Family::MlKem),
        generation(CKM_ML_DSA_KEY_PAIR_GEN, Family::MlDsa),
        generation(CKM_SLH_DSA_KEY_PAIR_GEN, Family::SlhDsa),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_public_key_bytes() {
        assert_eq!(public_key_bytes(Family::MlKem), (800, 1568));
        assert_eq!(public_key_bytes(Family::MlDsa), (1312, 2592));
        assert_eq!(public_key_bytes(Family::SlhDsa), (32, 64));
    }
}

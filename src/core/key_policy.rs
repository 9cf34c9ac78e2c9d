//! The `[policy]` section applied to keys: the smallest RSA modulus accepted (`rsa_min_bits`).
//! One floor, applied where keys enter (generation, `C_CreateObject`, `C_UnwrapKey`, copies,
//! the admin import: every path goes through `Module::store_key`), where they are used (every
//! `*Init`, wrap, unwrap and derive resolves its key through `Module::usable_key`), and in what
//! `C_GetMechanismInfo` reports, so that a client reading the mechanism's `ulMinKeySize` learns
//! the same limit that refuses it.

use cryptoki_sys::{CKA_KEY_TYPE, CKA_MODULUS, CKK_RSA, CK_MECHANISM_INFO, CK_ULONG};

use super::attributes::AttrMap;
use super::module::Module;
use crate::crypto::keys::{Family, KeyFacts};
use crate::error::{Result, Rv};
use crate::mechanism::MechanismEntry;

/// The size in bits of a big-endian unsigned number (leading zero bytes ignored).
fn bits_of(number: &[u8]) -> u32 {
    let digits: Vec<u8> = number.iter().copied().skip_while(|b| *b == 0).collect();
    match digits.first() {
        None => 0,
        Some(first) => {
            let len = u32::try_from(digits.len()).unwrap_or(u32::MAX / 8);
            (len - 1).saturating_mul(8) + (8 - first.leading_zeros())
        }
    }
}

impl Module {
    /// The smallest key size `[policy]` allows for `family`, if it sets one.
    fn floor_of(&self, family: Family) -> Option<u32> {
        match family {
            Family::Rsa => Some(self.config.policy.rsa_min_bits),
            Family::Ec
            | Family::Edwards
            | Family::Montgomery
            | Family::Secret
            | Family::MlKem
            | Family::MlDsa
            | Family::SlhDsa
            | Family::Hybrid => None,
        }
    }

    /// `C_GetMechanismInfo` under the policy: the floor raises `ulMinKeySize` of the mechanisms
    /// whose keys it limits.
    pub fn mechanism_info(&self, entry: &MechanismEntry) -> CK_MECHANISM_INFO {
        let mut info = entry.info;
        if let Some(floor) = entry.family.and_then(|f| self.floor_of(f)) {
            info.ulMinKeySize = info.ulMinKeySize.max(CK_ULONG::from(floor));
        }
        info
    }

    /// `CKR_KEY_SIZE_RANGE` for a key below its family's floor.
    pub fn check_key_size(&self, facts: KeyFacts) -> Result<()> {
        match self.floor_of(facts.family) {
            Some(floor) if facts.bits < floor => {
                tracing::debug!(bits = facts.bits, floor, "key below the [policy] floor");
                Err(Rv::KEY_SIZE_RANGE)?
            }
            _ => Ok(()),
        }
    }

    /// [`Module::check_key_size`] for a stored object, by its attributes (a REMOTE key's
    /// material is not here to ask, its public values are).
    pub fn check_object_key_size(&self, attrs: &AttrMap) -> Result<()> {
        if attrs.ulong(CKA_KEY_TYPE) != Some(CKK_RSA) {
            return Ok(());
        }
        let Some(modulus) = attrs.get(CKA_MODULUS) else {
            return Ok(()); // not an RSA key object sqlhsm made; the mechanism checks the key
        };
        self.check_key_size(KeyFacts {
            family: Family::Rsa,
            bits: bits_of(modulus),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::bits_of;

    #[test]
    fn modulus_bits_ignore_leading_zeros() {
        assert_eq!(bits_of(&[]), 0);
        assert_eq!(bits_of(&[0, 0]), 0);
        assert_eq!(bits_of(&[1]), 1);
        assert_eq!(bits_of(&[0x80, 0]), 16);
        assert_eq!(bits_of(&[0, 0x7f, 0xff]), 15);
        let mut modulus = vec![0xc1; 128];
        modulus.insert(0, 0);
        assert_eq!(bits_of(&modulus), 1024);
    }
}

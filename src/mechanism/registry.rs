//! The mechanism table: every family contributes its entries once, the table is sorted by
//! mechanism type, and lookups are a binary search.

use std::sync::OnceLock;

use cryptoki_sys::{
    CKF_GENERATE, CKM_GENERIC_SECRET_KEY_GEN, CK_FLAGS, CK_MECHANISM_INFO, CK_MECHANISM_TYPE,
    CK_ULONG,
};

use super::{aes, digest, ecdh, ecdsa, eddsa, keywrap, mac, rsa, MechanismEntry};

/// Generic secrets (HMAC keys, derivation bases), sizes in bytes.
const GENERIC_SECRET_MIN: CK_ULONG = 1;
const GENERIC_SECRET_MAX: CK_ULONG = 512;

static TABLE: OnceLock<Vec<MechanismEntry>> = OnceLock::new();

fn table() -> &'static [MechanismEntry] {
    TABLE.get_or_init(|| {
        let mut entries = vec![entry(
            CKM_GENERIC_SECRET_KEY_GEN,
            GENERIC_SECRET_MIN,
            GENERIC_SECRET_MAX,
            CKF_GENERATE,
        )];
        entries.extend(rsa::entries());
        entries.extend(ecdsa::entries());
        entries.extend(eddsa::entries());
        entries.extend(aes::entries());
        entries.extend(digest::entries());
        entries.extend(mac::entries());
        entries.extend(keywrap::entries());
        entries.extend(ecdh::entries());
        entries.sort_by_key(|e| e.kind);
        entries
    })
}

/// An entry with its `CK_MECHANISM_INFO` and no operations; families fill in the operations
/// with struct update syntax.
pub(super) fn entry(
    kind: CK_MECHANISM_TYPE,
    min: CK_ULONG,
    max: CK_ULONG,
    flags: CK_FLAGS,
) -> MechanismEntry {
    MechanismEntry {
        kind,
        info: CK_MECHANISM_INFO {
            ulMinKeySize: min,
            ulMaxKeySize: max,
            flags,
        },
        sign: None,
        verify: None,
        encrypt: None,
        decrypt: None,
        digest: None,
        wrap: None,
        unwrap: None,
        derive: None,
        key_types: &[],
    }
}

/// Secret-key mechanisms that take only AES keys.
pub(super) const AES_KEYS: &[cryptoki_sys::CK_KEY_TYPE] = &[cryptoki_sys::CKK_AES];
/// HMAC takes generic secret keys (PKCS#11 3.0 §2.24).
pub(super) const GENERIC_SECRET_KEYS: &[cryptoki_sys::CK_KEY_TYPE] =
    &[cryptoki_sys::CKK_GENERIC_SECRET];

pub fn lookup(kind: CK_MECHANISM_TYPE) -> Option<&'static MechanismEntry> {
    let table = table();
    table
        .binary_search_by_key(&kind, |e| e.kind)
        .ok()
        .map(|i| &table[i])
}

/// All entries, sorted by mechanism type.
pub fn all() -> &'static [MechanismEntry] {
    table()
}

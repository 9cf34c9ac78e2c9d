//! sqlhsm's vendor-defined constants (`CKA_VENDOR_DEFINED` range, prefix `0x5351_0000`, "SQ"),
//! published in `include/sqlhsm.h`.

/// The sqlhsm vendor prefix inside `CKA_VENDOR_DEFINED` (0x8000_0000 | "SQ" << 16).
pub const CKA_SQLHSM_BASE: u64 = 0x8000_0000 | 0x5351_0000;

/// `key_id` of the row holding the object (UTF-8, read-only). C type: `CK_UTF8CHAR[]`.
pub const CKA_SQLHSM_KEY_ID: u64 = 0x8000_0000 | 0x5351_0001;
/// `key_status` (1 Active, 2 Inactive, 3 Compromised, 4 Expired). C type: `CK_ULONG`.
pub const CKA_SQLHSM_KEY_STATUS: u64 = 0x8000_0000 | 0x5351_0002;
/// `key_mode` (1 LOCAL, 2 PROVIDER_ROOT_KEY, 3 REMOTE, 4 PUBLIC_KEY_ONLY). C type: `CK_ULONG`.
pub const CKA_SQLHSM_KEY_MODE: u64 = 0x8000_0000 | 0x5351_0003;
/// `key_algorithm` of an asymmetric key (see README). C type: `CK_ULONG`.
pub const CKA_SQLHSM_KEY_ALGORITHM: u64 = 0x8000_0000 | 0x5351_0004;

//! Constants the tests share: PINs, sqlhsm's vendor attribute types, and the DER of the curves'
//! `CKA_EC_PARAMS`.

pub const SO_PIN: &str = "so-pin-0000";
pub const USER_PIN: &str = "user-pin-1111";
/// `[security] max_pin_failures` in the test configuration (the default is 10).
pub const MAX_PIN_FAILURES: usize = 5;

/// sqlhsm's vendor attributes (`include/sqlhsm.h`, `src/vendor.rs`). Written out here rather
/// than taken from the `sqlhsm` rlib, so the tests link nothing of the module but the `.so`.
pub const CKA_SQLHSM_KEY_ID: u64 = 0x8000_0000 | 0x5351_0001;
pub const CKA_SQLHSM_KEY_STATUS: u64 = 0x8000_0000 | 0x5351_0002;
pub const CKA_SQLHSM_KEY_MODE: u64 = 0x8000_0000 | 0x5351_0003;
pub const CKA_SQLHSM_KEY_ALGORITHM: u64 = 0x8000_0000 | 0x5351_0004;

/// DER-encoded `CKA_EC_PARAMS` (namedCurve OIDs).
pub const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
pub const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
pub const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

//! sqlhsm's vendor-defined constants, in the `CKA_VENDOR_DEFINED` range with the prefix
//! `0xD351_0000` (`CKA_VENDOR_DEFINED` | "SQ" << 16), published in `include/sqlhsm.h`.

/// The sqlhsm vendor prefix: `CKA_VENDOR_DEFINED` (0x8000_0000) | "SQ" (0x5351) << 16.
pub const CKA_SQLHSM_BASE: u64 = 0xD351_0000;

/// `key_id` of the row holding the object (UTF-8, read-only). C type: `CK_UTF8CHAR[]`.
pub const CKA_SQLHSM_KEY_ID: u64 = 0xD351_0001;
/// `key_status` (1 Active, 2 Inactive, 3 Compromised, 4 Expired). C type: `CK_ULONG`.
pub const CKA_SQLHSM_KEY_STATUS: u64 = 0xD351_0002;
/// `key_mode` (1 LOCAL, 2 PROVIDER_ROOT_KEY, 3 REMOTE, 4 PUBLIC_KEY_ONLY). C type: `CK_ULONG`.
pub const CKA_SQLHSM_KEY_MODE: u64 = 0xD351_0003;
/// `key_algorithm` of an asymmetric key (see README). C type: `CK_ULONG`.
pub const CKA_SQLHSM_KEY_ALGORITHM: u64 = 0xD351_0004;
/// `expiration` as seconds since the Unix epoch, 0 for none; kept in step with `CKA_END_DATE`.
/// C type: `CK_ULONG`.
pub const CKA_SQLHSM_EXPIRATION: u64 = 0xD351_0005;
/// `key_id` of the key this one was rotated from (empty if none). C type: `CK_UTF8CHAR[]`.
pub const CKA_SQLHSM_ROTATED_FROM: u64 = 0xD351_0006;
/// `key_id` of the key this one was rotated to (empty if none). C type: `CK_UTF8CHAR[]`.
pub const CKA_SQLHSM_ROTATED_TO: u64 = 0xD351_0007;

#[cfg(test)]
mod tests {
    #[test]
    fn constants_sit_in_the_vendor_range_under_the_prefix() {
        for value in [
            super::CKA_SQLHSM_KEY_ID,
            super::CKA_SQLHSM_KEY_STATUS,
            super::CKA_SQLHSM_KEY_MODE,
            super::CKA_SQLHSM_KEY_ALGORITHM,
            super::CKA_SQLHSM_EXPIRATION,
            super::CKA_SQLHSM_ROTATED_FROM,
            super::CKA_SQLHSM_ROTATED_TO,
        ] {
            assert_eq!(
                value & cryptoki_sys::CKA_VENDOR_DEFINED,
                cryptoki_sys::CKA_VENDOR_DEFINED
            );
            assert_eq!(value & 0xFFFF_0000, super::CKA_SQLHSM_BASE);
        }
    }
}

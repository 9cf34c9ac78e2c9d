//! sqlhsm's vendor-defined constants, in the `CKA_VENDOR_DEFINED` range with the prefix
//! `0xD351_0000` (`CKA_VENDOR_DEFINED` | "SQ" << 16), published in `include/sqlhsm.h`. The same
//! prefix sits in the `CKK_VENDOR_DEFINED` and `CKM_VENDOR_DEFINED` ranges (both 0x8000_0000).

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

// OpenTDF's hybrid KEMs (README, "Hybrid KEMs"). The low byte is the algorithm's OpenTDF
// `key_algorithm` number; 0x1000 marks the KEM mechanism, 0x2000 its key-pair generation.
// The constructions are `crypto::hybrid_kem`, the keys `crypto::hybrid_keys` and the
// key-algorithm rows 6–8, the mechanisms `mechanism::hybrid`.

/// Key type of an X-Wing key pair (`key_algorithm` 6). C type: `CK_KEY_TYPE`.
pub const CKK_SQLHSM_XWING: u64 = 0xD351_0006;
/// Key type of an ML-KEM-768 + ECDH P-256 key pair (`key_algorithm` 7). C type: `CK_KEY_TYPE`.
pub const CKK_SQLHSM_P256_ML_KEM_768: u64 = 0xD351_0007;
/// Key type of an ML-KEM-1024 + ECDH P-384 key pair (`key_algorithm` 8). C type: `CK_KEY_TYPE`.
pub const CKK_SQLHSM_P384_ML_KEM_1024: u64 = 0xD351_0008;
/// X-Wing encapsulation (`C_EncapsulateKey` / `C_DecapsulateKey`), no parameter.
pub const CKM_SQLHSM_XWING: u64 = 0xD351_1006;
/// ML-KEM-768 + ECDH P-256 encapsulation, no parameter.
pub const CKM_SQLHSM_P256_ML_KEM_768: u64 = 0xD351_1007;
/// ML-KEM-1024 + ECDH P-384 encapsulation, no parameter.
pub const CKM_SQLHSM_P384_ML_KEM_1024: u64 = 0xD351_1008;
/// X-Wing key-pair generation.
pub const CKM_SQLHSM_XWING_KEY_PAIR_GEN: u64 = 0xD351_2006;
/// ML-KEM-768 + ECDH P-256 key-pair generation.
pub const CKM_SQLHSM_P256_ML_KEM_768_KEY_PAIR_GEN: u64 = 0xD351_2007;
/// ML-KEM-1024 + ECDH P-384 key-pair generation.
pub const CKM_SQLHSM_P384_ML_KEM_1024_KEY_PAIR_GEN: u64 = 0xD351_2008;

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

    #[test]
    fn hybrid_numbers_carry_opentdfs_key_algorithm_under_the_prefix() {
        use super::*;
        let rows = [
            (
                6,
                CKK_SQLHSM_XWING,
                CKM_SQLHSM_XWING,
                CKM_SQLHSM_XWING_KEY_PAIR_GEN,
            ),
            (
                7,
                CKK_SQLHSM_P256_ML_KEM_768,
                CKM_SQLHSM_P256_ML_KEM_768,
                CKM_SQLHSM_P256_ML_KEM_768_KEY_PAIR_GEN,
            ),
            (
                8,
                CKK_SQLHSM_P384_ML_KEM_1024,
                CKM_SQLHSM_P384_ML_KEM_1024,
                CKM_SQLHSM_P384_ML_KEM_1024_KEY_PAIR_GEN,
            ),
        ];
        for (code, key_type, kem, generation) in rows {
            assert_eq!(key_type & 0xFFFF_0000, CKA_SQLHSM_BASE);
            assert_eq!(
                key_type & cryptoki_sys::CKK_VENDOR_DEFINED,
                cryptoki_sys::CKK_VENDOR_DEFINED
            );
            assert_eq!(
                kem & cryptoki_sys::CKM_VENDOR_DEFINED,
                cryptoki_sys::CKM_VENDOR_DEFINED
            );
            assert_eq!(
                (key_type & 0xFF, kem & 0xFF, generation & 0xFF),
                (code, code, code)
            );
            assert_eq!((kem & 0xF000, generation & 0xF000), (0x1000, 0x2000));
        }
    }
}

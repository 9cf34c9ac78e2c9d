//! The mechanism table: every family contributes its entries once, the table is sorted by
//! mechanism type, and lookups are a binary search.

use std::sync::OnceLock;

use cryptoki_sys::{
    CKF_DECAPSULATE, CKF_ENCAPSULATE, CKF_GENERATE, CKF_MESSAGE_SIGN, CKF_MESSAGE_VERIFY,
    CKM_GENERIC_SECRET_KEY_GEN, CK_MECHANISM_TYPE, CK_ULONG,
};

use super::{
    aes, chacha, derive, des, digest, ecdh, ecdsa, eddsa, entry, hybrid, kdf, keywrap, mac, mlkem,
    pq_keygen, pq_sign, rsa, MechanismEntry,
};

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
        entries.extend(chacha::entries());
        entries.extend(des::entries());
        entries.extend(digest::entries());
        entries.extend(mac::entries());
        entries.extend(keywrap::entries());
        entries.extend(pq_keygen::entries());
        entries.extend(ecdh::entries());
        entries.extend(kdf::entries());
        entries.extend(derive::entries());
        entries.extend(mlkem::entries());
        entries.extend(hybrid::entries());
        entries.extend(pq_sign::entries());
        // Message-based signing and verifying (`C_MessageSignInit`, …) make a fresh sign or
        // verify operation per message, so every mechanism that signs or verifies allows them.
        for e in &mut entries {
            if e.sign.is_some() {
                e.info.flags |= CKF_MESSAGE_SIGN;
            }
            if e.verify.is_some() {
                e.info.flags |= CKF_MESSAGE_VERIFY;
            }
            // A KEM both encapsulates and decapsulates (PKCS#11 3.2 §5.18).
            if e.kem.is_some() {
                e.info.flags |= CKF_ENCAPSULATE | CKF_DECAPSULATE;
            }
        }
        entries.sort_by_key(|e| e.kind);
        entries
    })
}

pub fn lookup(kind: CK_MECHANISM_TYPE) -> Option<&'static MechanismEntry> {
    let table = table();
    table
        .binary_search_by_key(&kind, |e| e.kind)
        .ok()
        .map(|i| &table[i])
}

/// How the FFI reads the parameter of `kind`: as its entry declares; a mechanism the registry
/// does not know is read as bytes (and refused later with `CKR_MECHANISM_INVALID`).
pub fn param_shape(kind: CK_MECHANISM_TYPE) -> super::ParamShape {
    match lookup(kind) {
        Some(entry) => entry.param,
        None => NOT_OFFERED
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(super::ParamShape::Bytes, |(_, shape)| *shape),
    }
}

/// Mechanisms not offered yet whose parameter structure the FFI already reads, so that a
/// malformed one stays `CKR_MECHANISM_PARAM_INVALID` rather than `CKR_MECHANISM_INVALID`. A
/// mechanism leaves this list when its family offers it (and declares the shape there).
const NOT_OFFERED: &[(CK_MECHANISM_TYPE, super::ParamShape)] = &[];

/// All entries, sorted by mechanism type.
pub fn all() -> &'static [MechanismEntry] {
    table()
}

#[cfg(test)]
mod tests {
    use cryptoki_sys::*;

    use super::{all, lookup, param_shape, NOT_OFFERED};
    use crate::types::ParamShape;

    #[test]
    fn message_flags_follow_sign_and_verify() {
        for e in all() {
            let flag = |f: CK_FLAGS| e.info.flags & f != 0;
            assert_eq!(flag(CKF_MESSAGE_SIGN), e.sign.is_some(), "0x{:x}", e.kind);
            assert_eq!(
                flag(CKF_MESSAGE_VERIFY),
                e.verify.is_some(),
                "0x{:x}",
                e.kind
            );
            assert_eq!(flag(CKF_MESSAGE_SIGN), flag(CKF_SIGN), "0x{:x}", e.kind);
            assert_eq!(flag(CKF_MESSAGE_VERIFY), flag(CKF_VERIFY), "0x{:x}", e.kind);
        }
    }

    #[test]
    fn kem_flags_follow_the_kem_slot() {
        for e in all() {
            for f in [CKF_ENCAPSULATE, CKF_DECAPSULATE] {
                assert_eq!(e.info.flags & f != 0, e.kem.is_some(), "0x{:x}", e.kind);
            }
        }
        assert!(lookup(CKM_ML_KEM).is_some_and(|e| e.kem.is_some()));
    }

    /// Message-based encryption (`crate::api::message_crypt`) decodes its per-message
    /// parameters by these shapes: exactly the AEAD mechanisms claim it.
    #[test]
    fn message_crypt_flags_are_on_the_aead_mechanisms() {
        for e in all() {
            let aead = matches!(
                e.param,
                ParamShape::Gcm | ParamShape::Ccm | ParamShape::ChachaPoly
            );
            for f in [
                cryptoki_sys::CKF_MESSAGE_ENCRYPT,
                cryptoki_sys::CKF_MESSAGE_DECRYPT,
            ] {
                assert_eq!(e.info.flags & f != 0, aead, "0x{:x}", e.kind);
            }
        }
    }

    #[test]
    fn parameter_structures_are_declared() {
        let mut structures: Vec<_> = all()
            .iter()
            .filter(|e| !e.param.is_flat())
            .map(|e| (e.kind, e.param))
            .collect();
        let mut expected = vec![
            (CKM_RSA_PKCS_PSS, ParamShape::RsaPss),
            (CKM_SHA1_RSA_PKCS_PSS, ParamShape::RsaPss),
            (CKM_SHA224_RSA_PKCS_PSS, ParamShape::RsaPss),
            (CKM_SHA256_RSA_PKCS_PSS, ParamShape::RsaPss),
            (CKM_SHA384_RSA_PKCS_PSS, ParamShape::RsaPss),
            (CKM_SHA512_RSA_PKCS_PSS, ParamShape::RsaPss),
            (CKM_SHA3_224_RSA_PKCS_PSS, ParamShape::RsaPss),
            (CKM_SHA3_256_RSA_PKCS_PSS, ParamShape::RsaPss),
            (CKM_SHA3_384_RSA_PKCS_PSS, ParamShape::RsaPss),
            (CKM_SHA3_512_RSA_PKCS_PSS, ParamShape::RsaPss),
            (CKM_RSA_PKCS_OAEP, ParamShape::RsaOaep),
            (CKM_AES_GCM, ParamShape::Gcm),
            (CKM_EDDSA, ParamShape::Eddsa),
            (CKM_ECDH1_DERIVE, ParamShape::Ecdh1Derive),
            (CKM_ECDH1_COFACTOR_DERIVE, ParamShape::Ecdh1Derive),
            (CKM_HKDF_DERIVE, ParamShape::Hkdf),
            (CKM_HKDF_DATA, ParamShape::Hkdf),
            (CKM_SP800_108_COUNTER_KDF, ParamShape::Sp800_108),
            (CKM_SP800_108_FEEDBACK_KDF, ParamShape::Sp800_108Feedback),
            (CKM_CONCATENATE_BASE_AND_KEY, ParamShape::KeyHandle),
            (CKM_CONCATENATE_BASE_AND_DATA, ParamShape::DerivationString),
            (CKM_CONCATENATE_DATA_AND_BASE, ParamShape::DerivationString),
            (CKM_XOR_BASE_AND_DATA, ParamShape::DerivationString),
            (CKM_AES_ECB_ENCRYPT_DATA, ParamShape::DerivationString),
            (CKM_AES_CBC_ENCRYPT_DATA, ParamShape::AesCbcEncryptData),
            (CKM_AES_CCM, ParamShape::Ccm),
            (CKM_CHACHA20, ParamShape::Chacha20),
            (CKM_CHACHA20_POLY1305, ParamShape::ChachaPoly),
            (CKM_ML_DSA, ParamShape::SignContext),
            (CKM_SLH_DSA, ParamShape::SignContext),
            (CKM_HASH_ML_DSA, ParamShape::HashSignContext),
            (CKM_HASH_SLH_DSA, ParamShape::HashSignContext),
        ];
        // The hash-and-sign post-quantum mechanisms, CKM_HASH_ML_DSA_SHA224 … _SHAKE256 and
        // CKM_HASH_SLH_DSA_SHA224 … _SHAKE256, take the plain structure.
        for kind in (CKM_HASH_ML_DSA_SHA224..=CKM_HASH_ML_DSA_SHAKE256)
            .chain(CKM_HASH_SLH_DSA_SHA224..=CKM_HASH_SLH_DSA_SHAKE256)
        {
            expected.push((kind, ParamShape::SignContext));
        }
        structures.sort_unstable_by_key(|(k, _)| *k);
        expected.sort_unstable_by_key(|(k, _)| *k);
        assert_eq!(structures, expected);
        assert_eq!(param_shape(CKM_AES_CBC), ParamShape::Iv(16));
        assert_eq!(param_shape(CKM_SHA256_HMAC_GENERAL), ParamShape::Ulong);
        assert_eq!(param_shape(CKM_SHA256), ParamShape::None);
        assert_eq!(param_shape(CKM_VENDOR_DEFINED), ParamShape::Bytes);
        for (kind, shape) in NOT_OFFERED {
            assert!(lookup(*kind).is_none(), "0x{kind:x} is offered now");
            assert_eq!(param_shape(*kind), *shape);
        }
    }
}

//! MAC mechanisms: HMAC and AES-CMAC, full length and `_GENERAL`, known answers and the
//! Wycheproof HMAC vectors.

use super::*;

#[test]
fn hmac_known_answers_multipart_and_errors() {
    // RFC 4231 test case 2 ("Jefe").
    let key = secret(b"Jefe");
    let msg = b"what do ya want for nothing?";
    let expected = [
        (CKM_SHA224_HMAC, "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44"),
        (CKM_SHA256_HMAC, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (CKM_SHA384_HMAC, "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"),
        (CKM_SHA512_HMAC, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
        (CKM_SHA_1_HMAC, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        // HMAC-SHA3 of the same key and message (Python's hmac/hashlib as the reference).
        (CKM_SHA3_224_HMAC, "7fdb8dd88bd2f60d1b798634ad386811c2cfc85bfaf5d52bbace5e66"),
        (CKM_SHA3_256_HMAC, "c7d4072e788877ae3596bbb0da73b887c9171f93095b294ae857fbe2645e1ba5"),
        (CKM_SHA3_384_HMAC, "f1101f8cbf9766fd6764d2ed61903f21ca9b18f57cf3e1a23ca13508a93243ce48c045dc007f26a21b3f5e0e9df4c20a"),
        (CKM_SHA3_512_HMAC, "5a4bfeab6166427c7a3647b747292b8384537cdb89afb3bf5665e4c5e709350b287baec921fd7ca0ee7a0c31d022a95e1fc92ba9d77df883960275beb4e62024"),
    ];
    for (mech, tag) in expected {
        let sig = sign(mech, &key, &NONE, msg).unwrap();
        assert_eq!(hex::encode(&sig), tag, "0x{mech:x}");
        verify(mech, &key, &NONE, msg, &sig).unwrap();
        // Multi-part equals single-part, both ways.
        let mut op = (lookup(mech).unwrap().sign.unwrap())(&key, &NONE).unwrap();
        assert!(op.multipart());
        assert_eq!(op.signature_len(), sig.len());
        for piece in msg.chunks(5) {
            op.update(piece).unwrap();
        }
        assert_eq!(op.finish().unwrap(), sig);
        let mut v = (lookup(mech).unwrap().verify.unwrap())(&key, &NONE).unwrap();
        for piece in msg.chunks(3) {
            v.update(piece).unwrap();
        }
        v.finish(&sig).unwrap();
        // Tampering and length.
        let mut bad = sig.clone();
        bad[0] ^= 1;
        assert_eq!(
            rv(verify(mech, &key, &NONE, msg, &bad)),
            Rv::SIGNATURE_INVALID
        );
        assert_eq!(
            rv(verify(mech, &key, &NONE, b"other", &sig)),
            Rv::SIGNATURE_INVALID
        );
        assert_eq!(
            rv(verify(mech, &key, &NONE, msg, &sig[..sig.len() - 1])),
            Rv::SIGNATURE_LEN_RANGE
        );
        let mut long = sig.clone();
        long.push(0);
        assert_eq!(
            rv(verify(mech, &key, &NONE, msg, &long)),
            Rv::SIGNATURE_LEN_RANGE
        );
        assert_eq!(
            rv(sign(mech, &key, &ulong(4), msg)),
            Rv::MECHANISM_PARAM_INVALID
        );
        assert_eq!(rv(sign(mech, &secret(&[]), &NONE, msg)), Rv::KEY_SIZE_RANGE);
        assert_eq!(
            rv(sign(
                mech,
                &private(test_keys::ec(crate::crypto::test_keys::P256)),
                &NONE,
                msg
            )),
            Rv::KEY_TYPE_INCONSISTENT
        );
    }
    // Any secret length works, AES-sized included, and a 1-byte key.
    for len in [1, 16, 32, 200, 600] {
        let sig = sign(CKM_SHA256_HMAC, &secret(&vec![7u8; len]), &NONE, msg).unwrap();
        assert_eq!(sig.len(), 32);
    }
}

#[test]
fn general_macs_truncate() {
    let key = secret(&[0x2b; 16]);
    for (full, general, len) in [
        (CKM_SHA256_HMAC, CKM_SHA256_HMAC_GENERAL, 32),
        (CKM_SHA_1_HMAC, CKM_SHA_1_HMAC_GENERAL, 20),
        (CKM_SHA512_HMAC, CKM_SHA512_HMAC_GENERAL, 64),
        (CKM_SHA3_224_HMAC, CKM_SHA3_224_HMAC_GENERAL, 28),
        (CKM_SHA3_256_HMAC, CKM_SHA3_256_HMAC_GENERAL, 32),
        (CKM_SHA3_384_HMAC, CKM_SHA3_384_HMAC_GENERAL, 48),
        (CKM_SHA3_512_HMAC, CKM_SHA3_512_HMAC_GENERAL, 64),
        (CKM_AES_CMAC, CKM_AES_CMAC_GENERAL, 16),
    ] {
        let tag = sign(full, &key, &NONE, b"data").unwrap();
        for n in [1, 4, len] {
            let short = sign(general, &key, &ulong(n as CK_ULONG), b"data").unwrap();
            assert_eq!(short, tag[..n]);
            verify(general, &key, &ulong(n as CK_ULONG), b"data", &short).unwrap();
            if n < len {
                assert_eq!(
                    rv(verify(full, &key, &NONE, b"data", &short)),
                    Rv::SIGNATURE_LEN_RANGE
                );
            }
        }
        for bad in [
            ulong(0),
            ulong(len as CK_ULONG + 1),
            NONE,
            MechanismParam::Bytes(vec![1]),
        ] {
            assert_eq!(
                rv(sign(general, &key, &bad, b"d")),
                Rv::MECHANISM_PARAM_INVALID
            );
        }
    }
}

#[test]
fn cmac_known_answers() {
    // RFC 4493 §4 and NIST SP 800-38B D.2 / D.3 (AES-192 / AES-256, example 2).
    let cases = [
        (
            "2b7e151628aed2a6abf7158809cf4f3c",
            "",
            "bb1d6929e95937287fa37d129b756746",
        ),
        (
            "2b7e151628aed2a6abf7158809cf4f3c",
            "6bc1bee22e409f96e93d7e117393172a",
            "070a16b46b4d4144f79bdd9dd04a287c",
        ),
        (
            "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
            "6bc1bee22e409f96e93d7e117393172a",
            "9e99a7bf31e710900662f65e617c5184",
        ),
        (
            "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
            "6bc1bee22e409f96e93d7e117393172a",
            "28a7023f452e8f82bd4bf28d8c37c35c",
        ),
    ];
    for (k, m, t) in cases {
        let key = secret(&hex::decode(k).unwrap());
        let msg = hex::decode(m).unwrap();
        let tag = sign(CKM_AES_CMAC, &key, &NONE, &msg).unwrap();
        assert_eq!(hex::encode(&tag), t);
        verify(CKM_AES_CMAC, &key, &NONE, &msg, &tag).unwrap();
    }
    assert_eq!(
        rv(sign(CKM_AES_CMAC, &secret(&[1; 20]), &NONE, b"x")),
        Rv::KEY_SIZE_RANGE
    );
}

/// Wycheproof HMAC: full-length mechanisms accept only full-length tags (a truncated tag is
/// `CKR_SIGNATURE_LEN_RANGE`, never valid); the `_GENERAL` mechanisms check truncated ones.
fn wycheproof_hmac(
    file: &str,
    full: CK_MECHANISM_TYPE,
    general: CK_MECHANISM_TYPE,
    full_len: usize,
) -> usize {
    let doc = wycheproof(file);
    let mut passed = 0;
    for (group, test) in tests_of(&doc) {
        let id = test["tcId"].as_u64().unwrap();
        let tag_len = group["tagSize"].as_u64().unwrap() as usize / 8;
        let key = secret(&hex_field(test, "key"));
        let msg = hex_field(test, "msg");
        let tag = hex_field(test, "tag");
        let valid = test["result"] == "valid";
        if tag_len == full_len {
            if valid {
                assert_eq!(sign(full, &key, &NONE, &msg).unwrap(), tag, "tc {id}");
                verify(full, &key, &NONE, &msg, &tag).unwrap();
            } else {
                assert!(verify(full, &key, &NONE, &msg, &tag).is_err(), "tc {id}");
            }
        } else {
            assert_eq!(
                rv(verify(full, &key, &NONE, &msg, &tag)),
                Rv::SIGNATURE_LEN_RANGE,
                "tc {id}: a truncated tag never passes a full-length HMAC"
            );
        }
        let param = ulong(tag_len as CK_ULONG);
        let result = verify(general, &key, &param, &msg, &tag);
        assert_eq!(result.is_ok(), valid, "tc {id} (general)");
        passed += 1;
    }
    passed
}

#[test]
fn wycheproof_hmac_sha256() {
    let n = wycheproof_hmac(
        "hmac_sha256_test.json",
        CKM_SHA256_HMAC,
        CKM_SHA256_HMAC_GENERAL,
        32,
    );
    assert_eq!(n, 174);
}

#[test]
fn wycheproof_hmac_sha512() {
    let n = wycheproof_hmac(
        "hmac_sha512_test.json",
        CKM_SHA512_HMAC,
        CKM_SHA512_HMAC_GENERAL,
        64,
    );
    assert_eq!(n, 174);
}

#[test]
fn hmac_mechanisms_take_generic_secrets_and_their_own_hmac_key_type() {
    let hmacs = [
        (
            CKM_SHA_1_HMAC,
            CKM_SHA_1_HMAC_GENERAL,
            CKK_SHA_1_HMAC,
            CKM_SHA_1_KEY_GEN,
        ),
        (
            CKM_SHA224_HMAC,
            CKM_SHA224_HMAC_GENERAL,
            CKK_SHA224_HMAC,
            CKM_SHA224_KEY_GEN,
        ),
        (
            CKM_SHA256_HMAC,
            CKM_SHA256_HMAC_GENERAL,
            CKK_SHA256_HMAC,
            CKM_SHA256_KEY_GEN,
        ),
        (
            CKM_SHA384_HMAC,
            CKM_SHA384_HMAC_GENERAL,
            CKK_SHA384_HMAC,
            CKM_SHA384_KEY_GEN,
        ),
        (
            CKM_SHA512_HMAC,
            CKM_SHA512_HMAC_GENERAL,
            CKK_SHA512_HMAC,
            CKM_SHA512_KEY_GEN,
        ),
        (
            CKM_SHA3_224_HMAC,
            CKM_SHA3_224_HMAC_GENERAL,
            CKK_SHA3_224_HMAC,
            CKM_SHA3_224_KEY_GEN,
        ),
        (
            CKM_SHA3_256_HMAC,
            CKM_SHA3_256_HMAC_GENERAL,
            CKK_SHA3_256_HMAC,
            CKM_SHA3_256_KEY_GEN,
        ),
        (
            CKM_SHA3_384_HMAC,
            CKM_SHA3_384_HMAC_GENERAL,
            CKK_SHA3_384_HMAC,
            CKM_SHA3_384_KEY_GEN,
        ),
        (
            CKM_SHA3_512_HMAC,
            CKM_SHA3_512_HMAC_GENERAL,
            CKK_SHA3_512_HMAC,
            CKM_SHA3_512_KEY_GEN,
        ),
    ];
    for (full, general, key_type, key_gen) in hmacs {
        for m in [full, general] {
            assert_eq!(
                lookup(m).unwrap().key_types,
                &[CKK_GENERIC_SECRET, key_type],
                "0x{m:x}"
            );
        }
        let gen = lookup(key_gen).unwrap();
        assert_eq!(gen.info.flags, CKF_GENERATE, "0x{key_gen:x}");
        assert_eq!((gen.info.ulMinKeySize, gen.info.ulMaxKeySize), (1, 512));
        let made: Vec<_> = crate::key_algorithm::generated_by(key_gen).collect();
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].key_type, key_type);
    }
    assert_eq!(lookup(CKM_AES_CMAC).unwrap().key_types, &[CKK_AES]);
}

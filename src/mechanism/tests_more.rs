//! Tests of the MAC, key-wrap, CTR, raw RSA and ECDH mechanisms, including the Wycheproof
//! vectors, through the registry as the core uses it. OpenSSL cross-checks are in
//! `crate::crypto::interop_tests`.

use std::sync::Arc;

use cryptoki_sys::*;
use serde_json::Value;

use super::tests::{
    cipher_chunks, decrypt, encrypt, private, public, rv, secret, sign, verify, IV, NONE,
};
use super::{lookup, KeyMaterial};
use crate::crypto::keys::{PrivateKey, PublicValues};
use crate::crypto::test_keys;
use crate::error::{Result, Rv};
use crate::types::MechanismParam;

pub(crate) const MAC_MECHANISMS: [CK_MECHANISM_TYPE; 12] = [
    CKM_SHA_1_HMAC,
    CKM_SHA_1_HMAC_GENERAL,
    CKM_SHA224_HMAC,
    CKM_SHA224_HMAC_GENERAL,
    CKM_SHA256_HMAC,
    CKM_SHA256_HMAC_GENERAL,
    CKM_SHA384_HMAC,
    CKM_SHA384_HMAC_GENERAL,
    CKM_SHA512_HMAC,
    CKM_SHA512_HMAC_GENERAL,
    CKM_AES_CMAC,
    CKM_AES_CMAC_GENERAL,
];

fn ulong(v: CK_ULONG) -> MechanismParam {
    MechanismParam::Bytes(v.to_ne_bytes().to_vec())
}

fn wycheproof(name: &str) -> Value {
    let path = format!(
        "{}/tests/data/wycheproof/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("Wycheproof file {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn hex_field(test: &Value, field: &str) -> Vec<u8> {
    hex::decode(test[field].as_str().unwrap()).unwrap()
}

/// Every test of a Wycheproof file with its group.
fn tests_of(doc: &Value) -> Vec<(&Value, &Value)> {
    doc["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["tests"].as_array().unwrap().iter().map(move |t| (g, t)))
        .collect()
}

fn wrap(
    mech: CK_MECHANISM_TYPE,
    key: &KeyMaterial,
    p: &MechanismParam,
    d: &[u8],
) -> Result<Vec<u8>> {
    (lookup(mech).unwrap().wrap.unwrap())(key, p, d)
}

fn unwrap_key(
    mech: CK_MECHANISM_TYPE,
    key: &KeyMaterial,
    p: &MechanismParam,
    d: &[u8],
) -> Result<Vec<u8>> {
    Ok((lookup(mech).unwrap().unwrap.unwrap())(key, p, d)?.to_vec())
}

fn derive(key: &KeyMaterial, p: &MechanismParam, len: Option<usize>) -> Result<Vec<u8>> {
    Ok((lookup(CKM_ECDH1_DERIVE).unwrap().derive.unwrap())(key, p, len)?.to_vec())
}

// ---------------------------------------------------------------------------------------------
// Registry

#[test]
fn registry_info_of_new_mechanisms() {
    let info = |m| lookup(m).unwrap().info;
    for m in MAC_MECHANISMS {
        assert_eq!(info(m).flags, CKF_SIGN | CKF_VERIFY, "0x{m:x}");
    }
    assert_eq!(
        (
            info(CKM_SHA256_HMAC).ulMinKeySize,
            info(CKM_SHA256_HMAC).ulMaxKeySize
        ),
        (1, 512)
    );
    assert_eq!(
        (
            info(CKM_AES_CMAC).ulMinKeySize,
            info(CKM_AES_CMAC).ulMaxKeySize
        ),
        (16, 32)
    );
    let wrap_flags = CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP;
    for m in [
        CKM_AES_KEY_WRAP,
        CKM_AES_KEY_WRAP_KWP,
        CKM_AES_ECB,
        CKM_AES_CBC,
        CKM_AES_CBC_PAD,
    ] {
        assert_eq!(info(m).flags, wrap_flags, "0x{m:x}");
        assert_eq!((info(m).ulMinKeySize, info(m).ulMaxKeySize), (16, 32));
    }
    assert_eq!(info(CKM_AES_CTR).flags, CKF_ENCRYPT | CKF_DECRYPT);
    assert_eq!(
        info(CKM_RSA_X_509).flags,
        CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT
    );
    assert_eq!(
        (
            info(CKM_RSA_X_509).ulMinKeySize,
            info(CKM_RSA_X_509).ulMaxKeySize
        ),
        (1024, 16384)
    );
    for m in [CKM_ECDH1_DERIVE, CKM_ECDH1_COFACTOR_DERIVE] {
        assert_ne!(info(m).flags & CKF_DERIVE, 0);
        assert_ne!(info(m).flags & CKF_EC_UNCOMPRESS, 0);
        assert_eq!((info(m).ulMinKeySize, info(m).ulMaxKeySize), (256, 521));
    }
}

// ---------------------------------------------------------------------------------------------
// MACs

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

// ---------------------------------------------------------------------------------------------
// AES key wrap

/// Wycheproof key wrap through wrap/unwrap and encrypt/decrypt; returns the count checked.
fn wycheproof_keywrap(file: &str, mech: CK_MECHANISM_TYPE) -> usize {
    let doc = wycheproof(file);
    let mut passed = 0;
    for (_, test) in tests_of(&doc) {
        let id = test["tcId"].as_u64().unwrap();
        let key = secret(&hex_field(test, "key"));
        let msg = hex_field(test, "msg");
        let ct = hex_field(test, "ct");
        match test["result"].as_str().unwrap() {
            "valid" => {
                assert_eq!(wrap(mech, &key, &NONE, &msg).unwrap(), ct, "tc {id}");
                assert_eq!(unwrap_key(mech, &key, &NONE, &ct).unwrap(), msg, "tc {id}");
                assert_eq!(encrypt(mech, &key, &NONE, &msg).unwrap(), ct, "tc {id}");
                assert_eq!(decrypt(mech, &key, &NONE, &ct).unwrap(), msg, "tc {id}");
            }
            "invalid" => {
                let u = rv(unwrap_key(mech, &key, &NONE, &ct));
                assert!(
                    u == Rv::WRAPPED_KEY_INVALID || u == Rv::WRAPPED_KEY_LEN_RANGE,
                    "tc {id}: {u:?}"
                );
                let d = rv(decrypt(mech, &key, &NONE, &ct));
                assert!(
                    d == Rv::ENCRYPTED_DATA_INVALID || d == Rv::ENCRYPTED_DATA_LEN_RANGE,
                    "tc {id}: {d:?}"
                );
                // Where the flaw is the plaintext's size, wrapping it is refused too.
                if let Ok(out) = wrap(mech, &key, &NONE, &msg) {
                    assert_ne!(out, ct, "tc {id}");
                }
            }
            _ => {
                // Acceptable (short inputs): either way, but never a wrong answer.
                if let Ok(out) = unwrap_key(mech, &key, &NONE, &ct) {
                    assert_eq!(out, msg, "tc {id}");
                }
            }
        }
        passed += 1;
    }
    passed
}

#[test]
fn wycheproof_aes_wrap() {
    assert_eq!(
        wycheproof_keywrap("aes_wrap_test.json", CKM_AES_KEY_WRAP),
        165
    );
}

#[test]
fn wycheproof_aes_kwp() {
    assert_eq!(
        wycheproof_keywrap("aes_kwp_test.json", CKM_AES_KEY_WRAP_KWP),
        254
    );
}

#[test]
fn key_wrap_ivs_lengths_and_errors() {
    let kek = secret(&[0x11; 24]);
    let key16 = [0x42u8; 16];
    for (mech, iv_len, bad_len) in [(CKM_AES_KEY_WRAP, 8, 12), (CKM_AES_KEY_WRAP_KWP, 4, 0)] {
        let iv = MechanismParam::Bytes(vec![0x3c; iv_len]);
        let a = wrap(mech, &kek, &NONE, &key16).unwrap();
        let b = wrap(mech, &kek, &iv, &key16).unwrap();
        assert_ne!(a, b);
        assert_eq!(unwrap_key(mech, &kek, &iv, &b).unwrap(), key16);
        assert_eq!(
            rv(unwrap_key(mech, &kek, &NONE, &b)),
            Rv::WRAPPED_KEY_INVALID
        );
        assert_eq!(
            rv(decrypt(mech, &kek, &NONE, &b)),
            Rv::ENCRYPTED_DATA_INVALID
        );
        // The default IV spelled out equals no IV.
        let default = if iv_len == 8 {
            vec![0xa6; 8]
        } else {
            vec![0xa6, 0x59, 0x59, 0xa6]
        };
        assert_eq!(
            wrap(mech, &kek, &MechanismParam::Bytes(default), &key16).unwrap(),
            a
        );
        assert_eq!(
            rv(wrap(mech, &kek, &MechanismParam::Bytes(vec![0; 5]), &key16)),
            Rv::MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            rv(wrap(mech, &kek, &NONE, &vec![1u8; bad_len])),
            Rv::KEY_SIZE_RANGE
        );
        assert_eq!(
            rv(encrypt(mech, &kek, &NONE, &vec![1u8; bad_len])),
            Rv::DATA_LEN_RANGE
        );
        assert_eq!(
            rv(unwrap_key(mech, &kek, &NONE, &a[..a.len() - 3])),
            Rv::WRAPPED_KEY_LEN_RANGE
        );
        assert_eq!(
            rv(unwrap_key(mech, &kek, &NONE, &a[..8])),
            Rv::WRAPPED_KEY_LEN_RANGE
        );
        assert_eq!(
            rv(decrypt(mech, &kek, &NONE, &a[..a.len() - 3])),
            Rv::ENCRYPTED_DATA_LEN_RANGE
        );
        assert_eq!(
            rv(wrap(mech, &secret(&[1; 10]), &NONE, &key16)),
            Rv::KEY_SIZE_RANGE
        );
        assert_eq!(
            rv(wrap(
                mech,
                &private(test_keys::ec(crate::crypto::test_keys::P256)),
                &NONE,
                &key16
            )),
            Rv::KEY_TYPE_INCONSISTENT
        );
        // Single-part only, by buffering: updates produce nothing.
        let mut op = (lookup(mech).unwrap().encrypt.unwrap())(&kek, &NONE).unwrap();
        assert!(!op.multipart());
        assert!(op.update(&key16[..5]).unwrap().is_empty());
        assert!(op.update(&key16[5..]).unwrap().is_empty());
        assert_eq!(op.finish().unwrap().to_vec(), a);
    }
    // KWP carries any length, KW whole 8-byte blocks of at least 16 bytes.
    for len in [1usize, 5, 8, 9, 31, 32, 33, 512] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let ct = wrap(CKM_AES_KEY_WRAP_KWP, &kek, &NONE, &data).unwrap();
        assert_eq!(ct.len(), len.div_ceil(8) * 8 + 8);
        assert_eq!(
            unwrap_key(CKM_AES_KEY_WRAP_KWP, &kek, &NONE, &ct).unwrap(),
            data
        );
    }
}

#[test]
fn cipher_mechanisms_wrap_and_unwrap() {
    let rsa = test_keys::rsa_2048();
    let (pr, pu) = (private(rsa.clone()), public(&rsa));
    let oaep = MechanismParam::Oaep {
        hash: CKM_SHA256,
        mgf: CKG_MGF1_SHA256,
        source_data: vec![],
    };
    let key32 = [0x5au8; 32];
    for (mech, param) in [(CKM_RSA_PKCS, NONE), (CKM_RSA_PKCS_OAEP, oaep)] {
        let w = wrap(mech, &pu, &param, &key32).unwrap();
        assert_eq!(w.len(), 256);
        assert_eq!(unwrap_key(mech, &pr, &param, &w).unwrap(), key32);
        let mut bad = w.clone();
        bad[100] ^= 1;
        assert_eq!(
            rv(unwrap_key(mech, &pr, &param, &bad)),
            Rv::WRAPPED_KEY_INVALID
        );
        assert_eq!(
            rv(unwrap_key(mech, &pr, &param, &w[1..])),
            Rv::WRAPPED_KEY_LEN_RANGE
        );
        assert_eq!(rv(wrap(mech, &pu, &param, &[1u8; 250])), Rv::KEY_SIZE_RANGE);
        assert_eq!(
            rv(unwrap_key(mech, &pu, &param, &w)),
            Rv::KEY_TYPE_INCONSISTENT
        );
        // What was wrapped decrypts as ordinary ciphertext too.
        assert_eq!(decrypt(mech, &pr, &param, &w).unwrap(), key32);
    }
    let kek = secret(&[0x77; 16]);
    let cbc = MechanismParam::Bytes(IV.to_vec());
    for len in [16usize, 24, 32] {
        let key: Vec<u8> = (0..len as u8).collect();
        let mut padded = key.clone();
        padded.resize(len.div_ceil(16) * 16, 0);
        for (mech, param) in [(CKM_AES_ECB, NONE), (CKM_AES_CBC, cbc.clone())] {
            let w = wrap(mech, &kek, &param, &key).unwrap();
            assert_eq!(
                w,
                encrypt(mech, &kek, &param, &padded).unwrap(),
                "zero padding"
            );
            // Unwrapping leaves the zero padding; the core cuts to CKA_VALUE_LEN.
            assert_eq!(unwrap_key(mech, &kek, &param, &w).unwrap(), padded);
            assert_eq!(
                rv(unwrap_key(mech, &kek, &param, &w[1..])),
                Rv::WRAPPED_KEY_LEN_RANGE
            );
        }
        let w = wrap(CKM_AES_CBC_PAD, &kek, &cbc, &key).unwrap();
        assert_eq!(w, encrypt(CKM_AES_CBC_PAD, &kek, &cbc, &key).unwrap());
        assert_eq!(unwrap_key(CKM_AES_CBC_PAD, &kek, &cbc, &w).unwrap(), key);
    }
    // A bad pad byte is a bad wrapping.
    let w = encrypt(CKM_AES_CBC, &kek, &cbc, &[0u8; 32]).unwrap();
    assert_eq!(
        rv(unwrap_key(CKM_AES_CBC_PAD, &kek, &cbc, &w)),
        Rv::WRAPPED_KEY_INVALID
    );
    assert_eq!(rv(wrap(CKM_AES_ECB, &kek, &NONE, &[])), Rv::KEY_SIZE_RANGE);
}

// ---------------------------------------------------------------------------------------------
// AES-CTR

fn ctr(bits: CK_ULONG, block: [u8; 16]) -> MechanismParam {
    let mut p = bits.to_ne_bytes().to_vec();
    p.extend_from_slice(&block);
    MechanismParam::Bytes(p)
}

#[test]
fn aes_ctr_known_answer_multipart_and_counter_limits() {
    // NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt), first two blocks.
    let key = secret(&hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap());
    let block: [u8; 16] = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
        .unwrap()
        .try_into()
        .unwrap();
    let pt =
        hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51").unwrap();
    let ct = encrypt(CKM_AES_CTR, &key, &ctr(128, block), &pt).unwrap();
    assert_eq!(
        hex::encode(&ct),
        "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"
    );
    assert_eq!(
        decrypt(CKM_AES_CTR, &key, &ctr(128, block), &ct).unwrap(),
        pt
    );
    for key_len in [16, 24, 32] {
        let key = secret(&vec![9u8; key_len]);
        let p = ctr(64, [1u8; 16]);
        let data: Vec<u8> = (0..100u8).collect();
        let ct = encrypt(CKM_AES_CTR, &key, &p, &data).unwrap();
        assert_eq!(ct.len(), data.len());
        for chunk in [1, 7, 16, 33] {
            assert_eq!(
                cipher_chunks(CKM_AES_CTR, true, &key, &p, &data, chunk).unwrap(),
                ct
            );
            assert_eq!(
                cipher_chunks(CKM_AES_CTR, false, &key, &p, &ct, chunk).unwrap(),
                data
            );
        }
    }
    // 8 counter bits starting at 0xfe: two blocks (32 bytes) before wrapping, no more.
    let mut start = [0u8; 16];
    start[15] = 0xfe;
    encrypt(CKM_AES_CTR, &key, &ctr(8, start), &[0u8; 32]).unwrap();
    assert_eq!(
        rv(encrypt(CKM_AES_CTR, &key, &ctr(8, start), &[0u8; 33])),
        Rv::DATA_LEN_RANGE
    );
    assert_eq!(
        rv(cipher_chunks(
            CKM_AES_CTR,
            true,
            &key,
            &ctr(8, start),
            &[0u8; 40],
            10
        )),
        Rv::DATA_LEN_RANGE
    );
    // Counter bits above the low byte do not count: 0x01fe with 8 bits still has 2 blocks.
    start[14] = 0x01;
    assert_eq!(
        rv(encrypt(CKM_AES_CTR, &key, &ctr(8, start), &[0u8; 33])),
        Rv::DATA_LEN_RANGE
    );
    // With all 128 bits, a full counter still allows one block.
    encrypt(CKM_AES_CTR, &key, &ctr(128, [0xff; 16]), &[0u8; 16]).unwrap();
    assert_eq!(
        rv(encrypt(
            CKM_AES_CTR,
            &key,
            &ctr(128, [0xff; 16]),
            &[0u8; 17]
        )),
        Rv::DATA_LEN_RANGE
    );
    for bad in [
        ctr(0, start),
        ctr(129, start),
        NONE,
        MechanismParam::Bytes(vec![0; 16]),
    ] {
        assert_eq!(
            rv(encrypt(CKM_AES_CTR, &key, &bad, b"x")),
            Rv::MECHANISM_PARAM_INVALID
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Raw RSA

#[test]
fn rsa_x509_round_trips_padding_and_range() {
    let key = test_keys::rsa_2048();
    let (pr, pu) = (private(key.clone()), public(&key));
    let PublicValues::Modulus { modulus, .. } = key.public_values().unwrap() else {
        unreachable!()
    };
    for len in [1usize, 20, 255, 256] {
        let mut data = vec![0x3cu8; len];
        data[0] = 0x01;
        let ct = encrypt(CKM_RSA_X_509, &pu, &NONE, &data).unwrap();
        assert_eq!(ct.len(), 256);
        let pt = decrypt(CKM_RSA_X_509, &pr, &NONE, &ct).unwrap();
        assert_eq!(pt.len(), 256, "all k bytes come back");
        assert_eq!(&pt[256 - len..], &data[..]);
        assert!(pt[..256 - len].iter().all(|&b| b == 0));
        let sig = sign(CKM_RSA_X_509, &pr, &NONE, &data).unwrap();
        assert_eq!(sig.len(), 256);
        verify(CKM_RSA_X_509, &pu, &NONE, &data, &sig).unwrap();
        // Sign is decrypt of the padded block: raw RSA is its own inverse pair.
        assert_eq!(encrypt(CKM_RSA_X_509, &pu, &NONE, &sig).unwrap(), pt);
    }
    // The modulus itself and anything above: data invalid.
    assert_eq!(
        rv(encrypt(CKM_RSA_X_509, &pu, &NONE, &modulus)),
        Rv::DATA_INVALID
    );
    assert_eq!(
        rv(sign(CKM_RSA_X_509, &pr, &NONE, &[0xff; 256])),
        Rv::DATA_INVALID
    );
    assert_eq!(
        rv(decrypt(CKM_RSA_X_509, &pr, &NONE, &modulus)),
        Rv::ENCRYPTED_DATA_INVALID
    );
    assert_eq!(
        rv(verify(CKM_RSA_X_509, &pu, &NONE, b"x", &modulus)),
        Rv::SIGNATURE_INVALID
    );
    let mut below = modulus.clone();
    *below.last_mut().unwrap() -= 1;
    encrypt(CKM_RSA_X_509, &pu, &NONE, &below).unwrap();
    assert_eq!(
        rv(encrypt(CKM_RSA_X_509, &pu, &NONE, &[1u8; 257])),
        Rv::DATA_LEN_RANGE
    );
    assert_eq!(
        rv(decrypt(CKM_RSA_X_509, &pr, &NONE, &[1u8; 255])),
        Rv::ENCRYPTED_DATA_LEN_RANGE
    );
    assert_eq!(
        rv(sign(CKM_RSA_X_509, &pu, &NONE, b"x")),
        Rv::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        rv(encrypt(
            CKM_RSA_X_509,
            &pu,
            &MechanismParam::Bytes(vec![1]),
            b"x"
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
    // Leading zeros are just padding.
    let sig = sign(CKM_RSA_X_509, &pr, &NONE, b"abc").unwrap();
    verify(CKM_RSA_X_509, &pu, &NONE, &[0, 0, b'a', b'b', b'c'], &sig).unwrap();
}

// ---------------------------------------------------------------------------------------------
// ECDH

fn ecdh_param(kdf: CK_EC_KDF_TYPE, shared: &[u8], point: &[u8]) -> MechanismParam {
    MechanismParam::Ecdh {
        kdf,
        shared_data: shared.to_vec(),
        public_data: point.to_vec(),
    }
}

fn point_der(key: &PrivateKey) -> Vec<u8> {
    match key.public_values().unwrap() {
        PublicValues::Point { point_der, .. } => point_der,
        _ => unreachable!(),
    }
}

#[test]
fn ecdh_agrees_kdfs_and_truncation() {
    for curve in crate::crypto::test_keys::CURVES {
        let a = test_keys::ec(curve);
        let b = Arc::new(PrivateKey::generate_ec(curve).unwrap());
        let (pa, pb) = (point_der(&a), point_der(&b));
        let raw_b =
            pb[pb.len() - (2 * crate::crypto::test_keys::field_bytes(curve) + 1)..].to_vec();
        let z = derive(&private(a.clone()), &ecdh_param(CKD_NULL, &[], &pb), None).unwrap();
        assert_eq!(z.len(), crate::crypto::test_keys::field_bytes(curve));
        // Raw point, DER point, and the other side all agree.
        assert_eq!(
            derive(
                &private(a.clone()),
                &ecdh_param(CKD_NULL, &[], &raw_b),
                None
            )
            .unwrap(),
            z
        );
        assert_eq!(
            derive(&private(b.clone()), &ecdh_param(CKD_NULL, &[], &pa), None).unwrap(),
            z
        );
        let cof = lookup(CKM_ECDH1_COFACTOR_DERIVE).unwrap().derive.unwrap();
        assert_eq!(
            cof(&private(a.clone()), &ecdh_param(CKD_NULL, &[], &pb), None)
                .unwrap()
                .to_vec(),
            z
        );
        // CKD_NULL truncation removes bytes from the leading end.
        let short = derive(
            &private(a.clone()),
            &ecdh_param(CKD_NULL, &[], &pb),
            Some(16),
        )
        .unwrap();
        assert_eq!(short, z[z.len() - 16..]);
        assert_eq!(
            rv(derive(
                &private(a.clone()),
                &ecdh_param(CKD_NULL, &[], &pb),
                Some(z.len() + 1)
            )),
            Rv::KEY_SIZE_RANGE
        );
        // X9.63 KDFs: Hash(Z ‖ counter ‖ shared data).
        for (kdf, alg) in [
            (CKD_SHA1_KDF, crate::crypto::digest::HashAlg::Sha1),
            (CKD_SHA224_KDF, crate::crypto::digest::HashAlg::Sha224),
            (CKD_SHA256_KDF, crate::crypto::digest::HashAlg::Sha256),
            (CKD_SHA384_KDF, crate::crypto::digest::HashAlg::Sha384),
            (CKD_SHA512_KDF, crate::crypto::digest::HashAlg::Sha512),
        ] {
            let k = derive(
                &private(a.clone()),
                &ecdh_param(kdf, b"info", &pb),
                Some(100),
            )
            .unwrap();
            let mut first = z.clone();
            first.extend_from_slice(&1u32.to_be_bytes());
            first.extend_from_slice(b"info");
            let h1 = crate::crypto::digest::digest(alg, &first).unwrap();
            assert_eq!(k.len(), 100);
            assert_eq!(&k[..h1.len()], &h1[..]);
            let natural =
                derive(&private(b.clone()), &ecdh_param(kdf, b"info", &pa), None).unwrap();
            assert_eq!(natural, h1);
        }
    }
    let a = private(test_keys::ec(crate::crypto::test_keys::P256));
    let pb = point_der(&PrivateKey::generate_ec(crate::crypto::test_keys::P256).unwrap());
    assert_eq!(
        rv(derive(&a, &ecdh_param(CKD_NULL, b"x", &pb), None)),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(derive(&a, &ecdh_param(CKD_SHA1_KDF_ASN1, &[], &pb), None)),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(rv(derive(&a, &NONE, None)), Rv::MECHANISM_PARAM_INVALID);
    // A P-384 point against a P-256 key, an off-curve point, the point at infinity.
    let p384 = point_der(&test_keys::ec(crate::crypto::test_keys::P384));
    let mut off = pb.clone();
    *off.last_mut().unwrap() ^= 1;
    for bad in [&p384[..], &off[..], &[0u8][..], &[][..]] {
        assert_eq!(
            rv(derive(&a, &ecdh_param(CKD_NULL, &[], bad), None)),
            Rv::MECHANISM_PARAM_INVALID
        );
    }
    assert_eq!(
        rv(derive(
            &private(test_keys::rsa_2048()),
            &ecdh_param(CKD_NULL, &[], &pb),
            None
        )),
        Rv::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        rv(derive(
            &public(&test_keys::ec(crate::crypto::test_keys::P256)),
            &ecdh_param(CKD_NULL, &[], &pb),
            None
        )),
        Rv::KEY_TYPE_INCONSISTENT
    );
}

/// One DER TLV: (tag, content, rest). Definite lengths only.
fn der_tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&l0, rest) = rest.split_first()?;
    let (len, rest) = if l0 < 0x80 {
        (usize::from(l0), rest)
    } else {
        let n = usize::from(l0 & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, &b| a << 8 | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The curve parameters and the point of an SPKI, as a PKCS#11 caller would pull them apart.
fn spki_parts(spki: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (0x30, body, []) = der_tlv(spki)? else {
        return None;
    };
    let (0x30, alg, rest) = der_tlv(body)? else {
        return None;
    };
    let (0x03, bits, []) = der_tlv(rest)? else {
        return None;
    };
    let (0x06, _, params) = der_tlv(alg)? else {
        return None;
    };
    let (&0, point) = bits.split_first()? else {
        return None;
    };
    Some((params.to_vec(), point.to_vec()))
}

#[test]
fn wycheproof_ecdh_secp256r1() {
    let doc = wycheproof("ecdh_secp256r1_test.json");
    let p256_oid = crate::crypto::test_keys::P256;
    let (mut valid, mut invalid, mut acceptable, mut skipped) = (0, 0, 0, 0);
    for (_, test) in tests_of(&doc) {
        let id = test["tcId"].as_u64().unwrap();
        let flags: Vec<&str> = test["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        let public = hex_field(test, "public");
        let mut scalar = hex_field(test, "private");
        // Wycheproof scalars are DER INTEGER contents (a leading zero for a high bit).
        while scalar.len() > 32 && scalar[0] == 0 {
            scalar.remove(0);
        }
        let key = private(Arc::new(
            PrivateKey::from_ec_components(p256_oid, &scalar).unwrap(),
        ));
        let shared = hex_field(test, "shared");
        let result = test["result"].as_str().unwrap();
        let parts = spki_parts(&public);
        // PKCS#11 passes the bare point; the curve is the base key's. Explicit or foreign
        // curve parameters in the SPKI are the caller's business, so tests that hinge on them
        // (the point itself being a fine P-256 point) do not apply.
        let foreign_params = parts.as_ref().is_some_and(|(params, _)| params != p256_oid);
        let derived = parts.as_ref().ok_or(()).and_then(|(_, point)| {
            derive(&key, &ecdh_param(CKD_NULL, &[], point), None).map_err(|_| ())
        });
        match result {
            "valid" => {
                assert_eq!(derived.as_deref(), Ok(&shared[..]), "tc {id} {flags:?}");
                valid += 1;
            }
            "invalid" if foreign_params && flags.contains(&"UnnamedCurve") => skipped += 1,
            "invalid" => {
                assert!(derived.is_err(), "tc {id} {flags:?} must fail");
                invalid += 1;
            }
            _ => {
                if let Ok(z) = &derived {
                    assert_eq!(z, &shared, "tc {id} {flags:?}");
                }
                acceptable += 1;
            }
        }
    }
    eprintln!(
        "ECDH P-256: {valid} valid, {invalid} invalid, {acceptable} acceptable, {skipped} n/a"
    );
    assert_eq!(valid + invalid + acceptable + skipped, 612);
    assert!(skipped <= 10, "{skipped}");
}

/// Found by the `mechanisms` fuzz target: `CKM_RSA_PKCS` signs an empty input (PKCS#11 allows
/// any length up to k − 11) but could not verify its own signature, because OpenSSL's PKCS#1
/// verification without a digest refuses an empty recovered message. Every length, 0 to
/// k − 11, must round-trip, and a signature over other bytes must not verify.
#[test]
fn rsa_pkcs_raw_signatures_verify_at_every_length_including_empty() {
    let key = test_keys::rsa_2048();
    let k = 256;
    for len in [0, 1, 35, k - 11] {
        let data = vec![0x5a; len];
        let sig = sign(CKM_RSA_PKCS, &private(key.clone()), &NONE, &data).unwrap();
        assert_eq!(sig.len(), k);
        verify(CKM_RSA_PKCS, &public(&key), &NONE, &data, &sig)
            .unwrap_or_else(|e| panic!("{len}-byte input: {e:?}"));
        let other = vec![0xa5; len.max(1)];
        assert_eq!(
            rv(verify(CKM_RSA_PKCS, &public(&key), &NONE, &other, &sig)),
            Rv::SIGNATURE_INVALID,
            "{len}-byte input's signature verified other bytes"
        );
    }
}

//! AES key wrap (RFC 3394, RFC 5649) with the Wycheproof vectors, and wrapping / unwrapping
//! through the cipher mechanisms.

use super::*;

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
        assert!(op.update_vec(&key16[..5]).unwrap().is_empty());
        assert!(op.update_vec(&key16[5..]).unwrap().is_empty());
        assert_eq!(op.finish_vec().unwrap().to_vec(), a);
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

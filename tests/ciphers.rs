//! The ciphers of the conformance issue through the C ABI: key generation of `CKK_DES2`,
//! `CKK_DES3`, `CKK_AES_XTS` and `CKK_CHACHA20` (sizes, DES parity, token keys that come back
//! from the store), Triple DES ECB/CBC/CBC_PAD known answers, wrapping and CMAC, the AES
//! feedback modes, CCM, XTS and ChaCha20(-Poly1305) round trips, the value rules of created
//! keys, parameter errors (`CKR_MECHANISM_PARAM_INVALID`), wrong key types
//! (`CKR_KEY_TYPE_INCONSISTENT`), and single DES withheld by default (`tests/single_des.rs`
//! turns it on). Known answers are proven in the crate's unit tests and by Wycheproof
//! (`tests/wycheproof.rs`); here the C ABI is the point.

mod common;

use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;

use common::*;

fn session(label: &str) -> Session {
    let p = ctx();
    let slot = new_token(p, label);
    user_session(p, slot)
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// An extractable key with every usage, as generation templates give it.
fn gen_template(token: bool, extra: &[Attribute]) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Token(token),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Sign(true),
        Attribute::Verify(true),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
    ];
    t.extend_from_slice(extra);
    t
}

/// `CKA_KEY_TYPE`, read raw: cryptoki 0.12 cannot name `CKK_CHACHA20` or `CKK_AES_XTS`.
fn key_type_of(s: &Session, k: ObjectHandle) -> u64 {
    let mut value: CK_ULONG = 0;
    let mut a = CK_ATTRIBUTE {
        type_: CKA_KEY_TYPE,
        pValue: (&mut value as *mut CK_ULONG).cast(),
        ulValueLen: std::mem::size_of::<CK_ULONG>() as CK_ULONG,
    };
    // SAFETY: one attribute pointing at a live CK_ULONG.
    let rv = unsafe { raw().C_GetAttributeValue(s.handle(), k.handle(), &mut a, 1) };
    assert_eq!(rv, CKR_OK);
    value
}

/// `CKA_VALUE`, read raw (cryptoki 0.12 will not read attributes of those key types).
fn value_of(s: &Session, k: ObjectHandle) -> Vec<u8> {
    let mut a = CK_ATTRIBUTE {
        type_: CKA_VALUE,
        pValue: std::ptr::null_mut(),
        ulValueLen: 0,
    };
    // SAFETY: first the length (NULL value), then a buffer of that length.
    unsafe {
        assert_eq!(
            raw().C_GetAttributeValue(s.handle(), k.handle(), &mut a, 1),
            CKR_OK
        );
        let mut value = vec![0u8; a.ulValueLen as usize];
        a.pValue = value.as_mut_ptr().cast();
        assert_eq!(
            raw().C_GetAttributeValue(s.handle(), k.handle(), &mut a, 1),
            CKR_OK
        );
        value
    }
}

fn odd_parity(key: &[u8]) -> bool {
    key.iter().all(|b| b.count_ones() % 2 == 1)
}

#[test]
fn des_keys_are_generated_with_parity_and_without_a_length() {
    let s = session("ciphers-des-gen");
    for (mech, kt, len) in [
        (Mechanism::Des2KeyGen, CKK_DES2, 16),
        (Mechanism::Des3KeyGen, CKK_DES3, 24),
    ] {
        for token in [false, true] {
            // No CKA_VALUE_LEN: the mechanism makes one size.
            let k = s.generate_key(&mech, &gen_template(token, &[])).unwrap();
            let value = value_of(&s, k);
            assert_eq!(value.len(), len);
            assert!(odd_parity(&value), "{}", hex::encode(&value));
            let parts: Vec<&[u8]> = value.chunks(8).collect();
            assert!(parts.windows(2).all(|w| w[0] != w[1]), "repeated part");
            assert_eq!(key_type_of(&s, k), kt);
            // The key works: CBC_PAD round trip.
            let m = Mechanism::Des3CbcPad([7; 8]);
            let ct = s.encrypt(&m, k, b"triple DES, double and triple").unwrap();
            assert_eq!(
                s.decrypt(&m, k, &ct).unwrap(),
                b"triple DES, double and triple"
            );
        }
        // A CKA_VALUE_LEN, if given, must be the size.
        let bad = gen_template(false, &[Attribute::ValueLen(8.into())]);
        expect_rv(s.generate_key(&mech, &bad), RvError::KeySizeRange);
        let right = gen_template(false, &[Attribute::ValueLen((len as u64).into())]);
        s.generate_key(&mech, &right).unwrap();
    }
}

#[test]
fn xts_and_chacha20_keys_are_generated() {
    let s = session("ciphers-xts-chacha-gen");
    for len in [32u64, 64] {
        let t = gen_template(true, &[Attribute::ValueLen(len.into())]);
        let k = raw_generate(&s, CKM_AES_XTS_KEY_GEN, &t).unwrap();
        let value = value_of(&s, k);
        assert_eq!(value.len() as u64, len);
        assert_ne!(value[..value.len() / 2], value[value.len() / 2..]);
        assert_eq!(key_type_of(&s, k), CKK_AES_XTS);
        let mut tweak = [1u8; 16];
        let mut m = raw_mech(CKM_AES_XTS, Some(&mut tweak));
        let data = b"one sector of a disk, not a whole number of blocks";
        let ct = raw_crypt(&s, true, &mut m, k, data, None).unwrap();
        assert_eq!(raw_crypt(&s, false, &mut m, k, &ct, Some(9)).unwrap(), data);
    }
    for len in [16u64, 48] {
        let t = gen_template(false, &[Attribute::ValueLen(len.into())]);
        expect_rv(
            raw_generate(&s, CKM_AES_XTS_KEY_GEN, &t),
            RvError::KeySizeRange,
        );
    }
    expect_rv(
        raw_generate(&s, CKM_AES_XTS_KEY_GEN, &gen_template(false, &[])),
        RvError::TemplateIncomplete,
    );
    let k = raw_generate(&s, CKM_CHACHA20_KEY_GEN, &gen_template(true, &[])).unwrap();
    assert_eq!(value_of(&s, k).len(), 32);
    assert_eq!(key_type_of(&s, k), CKK_CHACHA20);
    let (mut nonce, mut aad) = ([9u8; 12], *b"header");
    let mut p = CK_SALSA20_CHACHA20_POLY1305_PARAMS {
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: 12,
        pAAD: aad.as_mut_ptr(),
        ulAADLen: 6,
    };
    let mut m = raw_mech(CKM_CHACHA20_POLY1305, Some(&mut p));
    let ct = raw_crypt(&s, true, &mut m, k, b"sealed", Some(4)).unwrap();
    assert_eq!(ct.len(), 6 + 16);
    assert_eq!(
        raw_crypt(&s, false, &mut m, k, &ct, None).unwrap(),
        b"sealed"
    );
    let mut bad = ct.clone();
    bad[0] ^= 1;
    expect_rv(
        raw_crypt(&s, false, &mut m, k, &bad, None),
        RvError::EncryptedDataInvalid,
    );
}

#[test]
fn triple_des_known_answers_wrapping_and_cmac() {
    let s = session("ciphers-tdes");
    // SP 800-67 Rev. 2 Appendix B.
    let k3 = session_secret(
        &s,
        KeyType::DES3,
        &h("0123456789abcdef23456789abcdef01456789abcdef0123"),
        &[
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
        ],
    );
    let pt = b"The qufck brown fox jump";
    let ecb = s.encrypt(&Mechanism::Des3Ecb, k3, pt).unwrap();
    assert_eq!(
        hex::encode(&ecb),
        "a826fd8ce53b855fcce21c8112256fe668d5c05dd9b6b900"
    );
    assert_eq!(s.decrypt(&Mechanism::Des3Ecb, k3, &ecb).unwrap(), pt);
    let iv: [u8; 8] = h("0001020304050607").try_into().unwrap();
    let cbc = s.encrypt(&Mechanism::Des3Cbc(iv), k3, pt).unwrap();
    assert_eq!(
        hex::encode(&cbc),
        "f368d06f3bbd614e60f2d0245cad3f818d5c69f2cb3fd5c7"
    );
    let pad = s
        .encrypt(&Mechanism::Des3CbcPad(iv), k3, b"The quick brown fox")
        .unwrap();
    assert_eq!(
        hex::encode(&pad),
        "29b01b011b9ebb6f10308a4293827906477ea2fd2c9a4d5c"
    );
    expect_rv(
        s.encrypt(&Mechanism::Des3Ecb, k3, &pt[..7]),
        RvError::DataLenRange,
    );
    // Wrapping an AES key under Triple DES, and unwrapping it back.
    let aes = session_secret(&s, KeyType::AES, &[0x5a; 16], &[]);
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::ValueLen(16.into()),
    ];
    for m in [
        Mechanism::Des3Ecb,
        Mechanism::Des3Cbc(iv),
        Mechanism::Des3CbcPad(iv),
    ] {
        let wrapped = s.wrap_key(&m, k3, aes).unwrap();
        let back = s.unwrap_key(&m, k3, &wrapped, &template).unwrap();
        assert_eq!(get_bytes(&s, back, AttributeType::Value), [0x5a; 16]);
    }
    // An unwrapped DES3 key must have parity: a value without it is refused.
    let des3_template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::DES3),
        Attribute::Token(false),
    ];
    let no_parity = session_secret(&s, KeyType::GENERIC_SECRET, &[0u8; 24], &[]);
    let wrapped = s.wrap_key(&Mechanism::Des3Ecb, k3, no_parity).unwrap();
    expect_rv(
        s.unwrap_key(&Mechanism::Des3Ecb, k3, &wrapped, &des3_template),
        RvError::WrappedKeyInvalid,
    );
    // Triple-DES CMAC, SP 800-38B D.4 example 10; a double-length key too.
    let mac_key = session_secret(
        &s,
        KeyType::DES3,
        &h("8aa83bf8cbda10620bc1bf19fbb6cd58bc313d4a371ca8b5"),
        &[Attribute::Sign(true), Attribute::Verify(true)],
    );
    let msg = h("6bc1bee22e409f96e93d7e117393172aae2d8a57");
    let tag = raw_sign(&s, CKM_DES3_CMAC, None, mac_key, &msg, None).unwrap();
    assert_eq!(hex::encode(&tag), "743ddbe0ce2dc2ed");
    raw_verify(&s, CKM_DES3_CMAC, None, mac_key, &msg, &tag, Some(7)).unwrap();
    expect_rv(
        raw_verify(&s, CKM_DES3_CMAC, None, mac_key, b"other", &tag, None),
        RvError::SignatureInvalid,
    );
    let mut four = (4 as CK_ULONG).to_ne_bytes();
    let short = raw_sign(
        &s,
        CKM_DES3_CMAC_GENERAL,
        Some(&mut four),
        mac_key,
        &msg,
        Some(5),
    );
    assert_eq!(short.unwrap(), tag[..4]);
    let k2 = s
        .generate_key(&Mechanism::Des2KeyGen, &gen_template(false, &[]))
        .unwrap();
    let k2_tag = raw_sign(&s, CKM_DES3_CMAC, None, k2, &msg, None).unwrap();
    assert_eq!(k2_tag.len(), 8);
}

#[test]
fn aes_modes_round_trip_through_the_c_abi() {
    let s = session("ciphers-aes-modes");
    let key = session_secret(
        &s,
        KeyType::AES,
        &h("2b7e151628aed2a6abf7158809cf4f3c"),
        &[Attribute::Encrypt(true), Attribute::Decrypt(true)],
    );
    let pt = h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
    // SP 800-38A F.4.1 (OFB) and F.3.13 (CFB128), single-part and multi-part.
    for (mech, ct) in [
        (
            CKM_AES_OFB,
            "3b3fd92eb72dad20333449f8e83cfb4a7789508d16918f03f53c52dac54ed825",
        ),
        (
            CKM_AES_CFB128,
            "3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b",
        ),
    ] {
        let mut iv: [u8; 16] = h("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let mut m = raw_mech(mech, Some(&mut iv));
        assert_eq!(
            hex::encode(raw_crypt(&s, true, &mut m, key, &pt, None).unwrap()),
            ct
        );
        assert_eq!(
            hex::encode(raw_crypt(&s, true, &mut m, key, &pt, Some(5)).unwrap()),
            ct
        );
        assert_eq!(
            raw_crypt(&s, false, &mut m, key, &h(ct), Some(3)).unwrap(),
            pt
        );
    }
    for mech in [CKM_AES_CFB1, CKM_AES_CFB8] {
        let mut iv = [3u8; 16];
        let mut m = raw_mech(mech, Some(&mut iv));
        let ct = raw_crypt(&s, true, &mut m, key, b"any length at all", Some(4)).unwrap();
        assert_eq!(
            raw_crypt(&s, false, &mut m, key, &ct, None).unwrap(),
            b"any length at all"
        );
    }
    // CCM: the declared length, then the MAC appended.
    let (mut nonce, mut aad) = ([1u8; 12], *b"aad");
    let data = b"counter with CBC-MAC";
    let mut p = CK_CCM_PARAMS {
        ulDataLen: data.len() as CK_ULONG,
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: 12,
        pAAD: aad.as_mut_ptr(),
        ulAADLen: 3,
        ulMACLen: 12,
    };
    let mut m = raw_mech(CKM_AES_CCM, Some(&mut p));
    let ct = raw_crypt(&s, true, &mut m, key, data, Some(6)).unwrap();
    assert_eq!(ct.len(), data.len() + 12);
    assert_eq!(raw_crypt(&s, false, &mut m, key, &ct, None).unwrap(), data);
    expect_rv(
        raw_crypt(&s, true, &mut m, key, &data[..5], None),
        RvError::DataLenRange,
    );
    let mut bad = ct.clone();
    bad[0] ^= 1;
    expect_rv(
        raw_crypt(&s, false, &mut m, key, &bad, Some(4)),
        RvError::EncryptedDataInvalid,
    );
}

#[test]
fn parameter_errors_and_wrong_key_types() {
    let s = session("ciphers-errors");
    let aes = session_secret(
        &s,
        KeyType::AES,
        &[0x11; 16],
        &[Attribute::Encrypt(true), Attribute::Decrypt(true)],
    );
    let des3 = s
        .generate_key(&Mechanism::Des3KeyGen, &gen_template(false, &[]))
        .unwrap();
    let xts = raw_secret(&s, CKK_AES_XTS, &(0..32u8).collect::<Vec<_>>()).unwrap();
    let chacha = raw_secret(&s, CKK_CHACHA20, &[0x22; 32]).unwrap();
    let param_invalid =
        |r: cryptoki::error::Result<Vec<u8>>| expect_rv(r, RvError::MechanismParamInvalid);
    // Wrong key types; a flat parameter (an IV) is judged after the key, so even a wrong one
    // gives CKR_KEY_TYPE_INCONSISTENT.
    let mut short_iv = [0u8; 4];
    for (mech, key) in [
        (CKM_AES_OFB, des3),
        (CKM_AES_XTS, aes),
        (CKM_DES3_ECB, aes),
        (CKM_DES3_CBC, chacha),
    ] {
        let mut m = raw_mech(mech, Some(&mut short_iv));
        expect_rv(
            raw_crypt(&s, true, &mut m, key, &[0; 16], None),
            RvError::KeyTypeInconsistent,
        );
    }
    let mut nonce = [0u8; 14];
    let mut ccm = CK_CCM_PARAMS {
        ulDataLen: 16,
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: 12,
        pAAD: std::ptr::null_mut(),
        ulAADLen: 0,
        ulMACLen: 16,
    };
    let mut m = raw_mech(CKM_AES_CCM, Some(&mut ccm));
    expect_rv(
        raw_crypt(&s, true, &mut m, xts, &[0; 16], None),
        RvError::KeyTypeInconsistent,
    );
    let mut poly = CK_SALSA20_CHACHA20_POLY1305_PARAMS {
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: 12,
        pAAD: std::ptr::null_mut(),
        ulAADLen: 0,
    };
    let mut m = raw_mech(CKM_CHACHA20_POLY1305, Some(&mut poly));
    expect_rv(
        raw_crypt(&s, true, &mut m, des3, &[0; 16], None),
        RvError::KeyTypeInconsistent,
    );
    let mut counter = [0u8; 8];
    let mut stream = CK_CHACHA20_PARAMS {
        pBlockCounter: counter.as_mut_ptr(),
        blockCounterBits: 32,
        pNonce: nonce.as_mut_ptr(),
        ulNonceBits: 96,
    };
    let mut m = raw_mech(CKM_CHACHA20, Some(&mut stream));
    expect_rv(
        raw_crypt(&s, true, &mut m, aes, &[0; 16], None),
        RvError::KeyTypeInconsistent,
    );
    // Parameters: a short IV or tweak, no parameter, a bad CCM nonce or MAC length, a 64-bit
    // ChaCha20-Poly1305 nonce (OpenSSL has the IETF construction only), a ChaCha20 counter
    // and nonce that are not 32+96 or 64+64 bits.
    for (mech, key) in [
        (CKM_AES_OFB, aes),
        (CKM_AES_CFB8, aes),
        (CKM_AES_XTS, xts),
        (CKM_DES3_CBC, des3),
    ] {
        let mut m = raw_mech(mech, Some(&mut short_iv));
        param_invalid(raw_crypt(&s, true, &mut m, key, &[0; 16], None));
        let mut m = raw_mech::<u8>(mech, None);
        param_invalid(raw_crypt(&s, true, &mut m, key, &[0; 16], None));
    }
    for (nonce_len, mac_len) in [(6, 8), (14, 8), (12, 3), (12, 18)] {
        let mut p = CK_CCM_PARAMS {
            ulDataLen: 16,
            pNonce: nonce.as_mut_ptr(),
            ulNonceLen: nonce_len,
            pAAD: std::ptr::null_mut(),
            ulAADLen: 0,
            ulMACLen: mac_len,
        };
        let mut m = raw_mech(CKM_AES_CCM, Some(&mut p));
        param_invalid(raw_crypt(&s, true, &mut m, aes, &[0; 16], None));
    }
    let mut p = CK_SALSA20_CHACHA20_POLY1305_PARAMS {
        pNonce: nonce.as_mut_ptr(),
        ulNonceLen: 8,
        pAAD: std::ptr::null_mut(),
        ulAADLen: 0,
    };
    let mut m = raw_mech(CKM_CHACHA20_POLY1305, Some(&mut p));
    param_invalid(raw_crypt(&s, true, &mut m, chacha, b"x", None));
    for (counter_bits, nonce_bits) in [(32, 64), (64, 96), (32, 95)] {
        let mut p = CK_CHACHA20_PARAMS {
            pBlockCounter: counter.as_mut_ptr(),
            blockCounterBits: counter_bits,
            pNonce: nonce.as_mut_ptr(),
            ulNonceBits: nonce_bits,
        };
        let mut m = raw_mech(CKM_CHACHA20, Some(&mut p));
        param_invalid(raw_crypt(&s, true, &mut m, chacha, b"x", None));
    }
    // The IETF layout works, and so does the original 64+64.
    for (counter_bits, nonce_bits) in [(32, 96), (64, 64)] {
        let mut p = CK_CHACHA20_PARAMS {
            pBlockCounter: counter.as_mut_ptr(),
            blockCounterBits: counter_bits,
            pNonce: nonce.as_mut_ptr(),
            ulNonceBits: nonce_bits,
        };
        let mut m = raw_mech(CKM_CHACHA20, Some(&mut p));
        let ct = raw_crypt(&s, true, &mut m, chacha, b"stream", Some(2)).unwrap();
        assert_eq!(
            raw_crypt(&s, false, &mut m, chacha, &ct, None).unwrap(),
            b"stream"
        );
    }
}

#[test]
fn created_keys_follow_their_value_rules() {
    let s = session("ciphers-create");
    // DES keys must have odd parity (PKCS#11 3.0 §2.36: creating one without is an error).
    let mut des3 = h("0123456789abcdef23456789abcdef01456789abcdef0123");
    raw_secret(&s, CKK_DES3, &des3).unwrap();
    des3[5] ^= 1;
    expect_rv(
        raw_secret(&s, CKK_DES3, &des3),
        RvError::AttributeValueInvalid,
    );
    expect_rv(
        raw_secret(&s, CKK_DES3, &des3[..16]),
        RvError::AttributeValueInvalid,
    );
    expect_rv(
        raw_secret(&s, CKK_DES2, &[1u8; 24]),
        RvError::AttributeValueInvalid,
    );
    raw_secret(&s, CKK_DES2, &h("0123456789abcdef23456789abcdef01")).unwrap();
    // XTS halves must differ; XTS keys are 32 or 64 bytes; ChaCha20 keys 32.
    expect_rv(
        raw_secret(&s, CKK_AES_XTS, &[7u8; 32]),
        RvError::AttributeValueInvalid,
    );
    expect_rv(
        raw_secret(&s, CKK_AES_XTS, &[7u8; 16]),
        RvError::AttributeValueInvalid,
    );
    expect_rv(
        raw_secret(&s, CKK_CHACHA20, &[7u8; 16]),
        RvError::AttributeValueInvalid,
    );
}

#[test]
fn single_des_is_withheld_by_default() {
    let p = ctx();
    let slot = new_token(p, "ciphers-no-des");
    let s = user_session(p, slot);
    let list = raw_mechanism_list(slot);
    let listed = |m: u64| list.contains(&m);
    for m in [CKM_DES_KEY_GEN, CKM_DES_ECB, CKM_DES_CBC, CKM_DES_CBC_PAD] {
        assert!(!listed(m), "0x{m:x} listed");
    }
    for m in [
        CKM_DES3_ECB,
        CKM_DES3_CBC,
        CKM_DES3_CBC_PAD,
        CKM_DES2_KEY_GEN,
        CKM_DES3_KEY_GEN,
        CKM_DES3_CMAC,
        CKM_DES3_CMAC_GENERAL,
        CKM_AES_CCM,
        CKM_AES_XTS,
        CKM_AES_XTS_KEY_GEN,
        CKM_AES_OFB,
        CKM_AES_CFB1,
        CKM_AES_CFB8,
        CKM_AES_CFB128,
        CKM_CHACHA20,
        CKM_CHACHA20_KEY_GEN,
        CKM_CHACHA20_POLY1305,
    ] {
        assert!(listed(m), "0x{m:x} not listed");
    }
    expect_rv(
        p.get_mechanism_info(slot, MechanismType::DES_ECB),
        RvError::MechanismInvalid,
    );
    expect_rv(
        s.generate_key(&Mechanism::DesKeyGen, &gen_template(false, &[])),
        RvError::MechanismInvalid,
    );
    let des = raw_secret(&s, CKK_DES, &h("0101010101010101")).unwrap();
    expect_rv(
        s.encrypt(&Mechanism::DesEcb, des, &[0; 8]),
        RvError::MechanismInvalid,
    );
    expect_rv(
        s.encrypt(&Mechanism::DesCbcPad([0; 8]), des, &[0; 8]),
        RvError::MechanismInvalid,
    );
}

#[test]
fn ecdh_derives_des3_keys_with_parity_and_their_implied_length() {
    use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
    let s = session("ciphers-derive");
    let pair = |label: &str| {
        let (mut public, mut private) = ec_templates(P256, label, label.as_bytes());
        public[0] = Attribute::Token(false);
        private[0] = Attribute::Token(false);
        private.push(Attribute::Derive(true));
        let (pub_h, priv_h) = s
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .unwrap();
        let point = unwrap_octet_string(&get_bytes(&s, pub_h, AttributeType::EcPoint));
        (priv_h, point)
    };
    let (a, a_point) = pair("derive-a");
    let (b, b_point) = pair("derive-b");
    // No CKA_VALUE_LEN: a DES3 key is 24 bytes; the derived bytes get odd parity.
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::DES3),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ];
    let ab = s
        .derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &b_point)),
            a,
            &template,
        )
        .unwrap();
    let ba = s
        .derive_key(
            &Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &a_point)),
            b,
            &template,
        )
        .unwrap();
    let value = get_bytes(&s, ab, AttributeType::Value);
    assert_eq!(value.len(), 24);
    assert!(odd_parity(&value), "{}", hex::encode(&value));
    assert_eq!(value, get_bytes(&s, ba, AttributeType::Value));
    let ct = s.encrypt(&Mechanism::Des3Ecb, ab, &[0x42; 16]).unwrap();
    assert_eq!(s.decrypt(&Mechanism::Des3Ecb, ba, &ct).unwrap(), [0x42; 16]);
}

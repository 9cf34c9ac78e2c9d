//! The AES feedback modes, CCM and XTS; ChaCha20 and ChaCha20-Poly1305; Triple DES and single
//! DES, and Triple-DES CMAC: known answers through the mechanisms, multi-part against
//! single-part, and parameter, length and key errors.

use super::*;

fn iv(bytes: &str) -> MechanismParam {
    MechanismParam::Bytes(hex::decode(bytes).unwrap())
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// Encrypts `pt` single-part and in every chunk size, checks `ct`, and decrypts back the same
/// ways.
fn known_answer(
    mech: CK_MECHANISM_TYPE,
    key: &KeyMaterial,
    p: &MechanismParam,
    pt: &[u8],
    ct: &[u8],
) {
    assert_eq!(
        hex::encode(encrypt(mech, key, p, pt).unwrap()),
        hex::encode(ct),
        "0x{mech:x}"
    );
    assert_eq!(decrypt(mech, key, p, ct).unwrap(), pt, "0x{mech:x}");
    for chunk in [1, 5, 8, 16, 17] {
        assert_eq!(
            cipher_chunks(mech, true, key, p, pt, chunk).unwrap(),
            ct,
            "0x{mech:x} by {chunk}"
        );
        assert_eq!(
            cipher_chunks(mech, false, key, p, ct, chunk).unwrap(),
            pt,
            "0x{mech:x} by {chunk}"
        );
    }
}

const SP800_38A_KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";
const SP800_38A_IV: &str = "000102030405060708090a0b0c0d0e0f";
const SP800_38A_PT: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51";

#[test]
fn aes_feedback_modes_sp800_38a() {
    let key = secret(&h(SP800_38A_KEY));
    let p = iv(SP800_38A_IV);
    let pt = h(SP800_38A_PT);
    // F.4.1, F.3.13, F.3.7 (first 18 bytes), F.3.1 (first 16 bits).
    known_answer(
        CKM_AES_OFB,
        &key,
        &p,
        &pt,
        &h("3b3fd92eb72dad20333449f8e83cfb4a7789508d16918f03f53c52dac54ed825"),
    );
    known_answer(
        CKM_AES_CFB128,
        &key,
        &p,
        &pt,
        &h("3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b"),
    );
    known_answer(
        CKM_AES_CFB8,
        &key,
        &p,
        &pt[..18],
        &h("3b79424c9c0dd436bace9e0ed4586a4f32b9"),
    );
    known_answer(CKM_AES_CFB1, &key, &p, &[0x6b, 0xc1], &[0x68, 0xb3]);
    for mech in [CKM_AES_OFB, CKM_AES_CFB1, CKM_AES_CFB8, CKM_AES_CFB128] {
        assert_eq!(
            rv(encrypt(mech, &key, &iv("0001"), &pt)),
            Rv::MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            rv(encrypt(mech, &key, &NONE, &pt)),
            Rv::MECHANISM_PARAM_INVALID
        );
        assert_eq!(
            rv(encrypt(mech, &secret(&[1; 20]), &p, &pt)),
            Rv::KEY_SIZE_RANGE
        );
        assert!(encrypt(mech, &key, &p, &[]).unwrap().is_empty());
    }
    assert!(lookup(CKM_AES_CFB64).is_none(), "OpenSSL has no AES-CFB64");
}

fn ccm(data_len: usize, nonce: &[u8], aad: &[u8], mac_len: CK_ULONG) -> MechanismParam {
    MechanismParam::Ccm {
        data_len: data_len as CK_ULONG,
        nonce: nonce.to_vec(),
        aad: aad.to_vec(),
        mac_len,
    }
}

#[test]
fn aes_ccm_sp800_38c_and_errors() {
    // SP 800-38C C.2 (example 2: 16 bytes of data, 6-byte MAC, 8-byte nonce, 16 bytes AAD).
    let key = secret(&h("404142434445464748494a4b4c4d4e4f"));
    let nonce = h("1011121314151617");
    let aad = h("000102030405060708090a0b0c0d0e0f");
    let pt = h("202122232425262728292a2b2c2d2e2f");
    let p = ccm(16, &nonce, &aad, 6);
    let ct = h("d2a1f0e051ea5f62081a7792073d593d1fc64fbfaccd");
    known_answer(CKM_AES_CCM, &key, &p, &pt, &ct);
    // The MAC is checked before any plaintext leaves.
    let mut bad = ct.clone();
    bad[20] ^= 1;
    assert_eq!(
        rv(decrypt(CKM_AES_CCM, &key, &p, &bad)),
        Rv::ENCRYPTED_DATA_INVALID
    );
    assert_eq!(
        rv(cipher_chunks(CKM_AES_CCM, false, &key, &p, &bad, 5)),
        Rv::ENCRYPTED_DATA_INVALID
    );
    // A total other than the declared length.
    assert_eq!(
        rv(encrypt(CKM_AES_CCM, &key, &p, &pt[..15])),
        Rv::DATA_LEN_RANGE
    );
    assert_eq!(
        rv(decrypt(CKM_AES_CCM, &key, &p, &ct[..21])),
        Rv::ENCRYPTED_DATA_LEN_RANGE
    );
    // Nonce 7..=13, MAC 4..=16 and even, the length within what the nonce leaves.
    for bad in [
        ccm(16, &[1; 6], &aad, 6),
        ccm(16, &[1; 14], &aad, 6),
        ccm(16, &nonce, &aad, 2),
        ccm(16, &nonce, &aad, 7),
        ccm(16, &nonce, &aad, 18),
        ccm(1 << 16, &[1; 13], &aad, 8),
        gcm(&nonce, &aad, 128),
        NONE,
    ] {
        assert_eq!(
            rv(encrypt(CKM_AES_CCM, &key, &bad, &pt)),
            Rv::MECHANISM_PARAM_INVALID,
            "{bad:?}"
        );
    }
    // 2^16 − 1 bytes fit a 13-byte nonce's two length bytes.
    let long = vec![5u8; 0xffff];
    let p = ccm(long.len(), &[1; 13], &[], 16);
    let sealed = encrypt(CKM_AES_CCM, &key, &p, &long).unwrap();
    assert_eq!(decrypt(CKM_AES_CCM, &key, &p, &sealed).unwrap(), long);
    assert_eq!(
        rv(encrypt(CKM_AES_CCM, &secret(&[1; 20]), &p, &long)),
        Rv::KEY_SIZE_RANGE
    );
}

#[test]
fn aes_xts_ieee1619_and_errors() {
    // IEEE 1619-2007 vector 2.
    let key = secret(&h(
        "1111111111111111111111111111111122222222222222222222222222222222",
    ));
    let tweak = iv("33333333330000000000000000000000");
    let pt = [0x44u8; 32];
    let ct = h("c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0");
    known_answer(CKM_AES_XTS, &key, &tweak, &pt, &ct);
    // Ciphertext stealing: 17..31 bytes round-trip, and 64-byte keys work.
    let key64 = secret(&(0..64u8).collect::<Vec<_>>());
    for len in [16, 17, 31, 33, 100] {
        let data: Vec<u8> = (0..len as u8).collect();
        for k in [&key, &key64] {
            let c = encrypt(CKM_AES_XTS, k, &tweak, &data).unwrap();
            assert_eq!(c.len(), len);
            assert_eq!(decrypt(CKM_AES_XTS, k, &tweak, &c).unwrap(), data);
        }
    }
    assert_eq!(
        rv(encrypt(CKM_AES_XTS, &key, &tweak, &pt[..15])),
        Rv::DATA_LEN_RANGE
    );
    assert_eq!(
        rv(decrypt(CKM_AES_XTS, &key, &tweak, &pt[..15])),
        Rv::ENCRYPTED_DATA_LEN_RANGE
    );
    assert_eq!(
        rv(encrypt(CKM_AES_XTS, &key, &iv("0011"), &pt)),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(encrypt(CKM_AES_XTS, &secret(&[1; 48]), &tweak, &pt)),
        Rv::KEY_SIZE_RANGE
    );
    assert_eq!(
        rv(encrypt(CKM_AES_XTS, &secret(&[1; 32]), &tweak, &pt)),
        Rv::KEY_TYPE_INCONSISTENT,
        "equal halves"
    );
    assert_eq!(lookup(CKM_AES_XTS).unwrap().key_types, &[CKK_AES_XTS]);
}

fn chacha(counter: &[u8], nonce: &[u8]) -> MechanismParam {
    MechanismParam::Chacha20 {
        counter: counter.to_vec(),
        counter_bits: counter.len() as CK_ULONG * 8,
        nonce: nonce.to_vec(),
        nonce_bits: nonce.len() as CK_ULONG * 8,
    }
}

const RFC8439_PT: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";

#[test]
fn chacha20_rfc8439_and_counter_limits() {
    // RFC 8439 §2.4.2: counter 1, nonce 000000000000004a00000000.
    let key = secret(&(0..32u8).collect::<Vec<_>>());
    let p = chacha(&[1, 0, 0, 0], &h("000000000000004a00000000"));
    let ct = h("6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab77937365af90bbf74a35be6b40b8eedf2785e42874d");
    known_answer(CKM_CHACHA20, &key, &p, RFC8439_PT, &ct);
    // The same keystream as a 64-bit counter and a 64-bit nonce: the block is the same words.
    let p64 = chacha(&[1, 0, 0, 0, 0, 0, 0, 0], &h("0000004a00000000"));
    assert_eq!(encrypt(CKM_CHACHA20, &key, &p64, RFC8439_PT).unwrap(), ct);
    // A 32-bit counter one block from its end: 64 bytes, not one more.
    let last = chacha(&[0xff, 0xff, 0xff, 0xff], &[0; 12]);
    encrypt(CKM_CHACHA20, &key, &last, &[0; 64]).unwrap();
    assert_eq!(
        rv(encrypt(CKM_CHACHA20, &key, &last, &[0; 65])),
        Rv::DATA_LEN_RANGE
    );
    for bad in [
        chacha(&[0; 4], &[0; 8]),
        chacha(&[0; 8], &[0; 12]),
        chacha(&[0; 2], &[0; 14]),
        MechanismParam::Chacha20 {
            counter: vec![0; 4],
            counter_bits: 32,
            nonce: vec![0; 11],
            nonce_bits: 96,
        },
        NONE,
    ] {
        assert_eq!(
            rv(encrypt(CKM_CHACHA20, &key, &bad, b"x")),
            Rv::MECHANISM_PARAM_INVALID,
            "{bad:?}"
        );
    }
    assert_eq!(
        rv(encrypt(CKM_CHACHA20, &secret(&[1; 16]), &p, b"x")),
        Rv::KEY_SIZE_RANGE
    );
}

fn aead(nonce: &[u8], aad: &[u8]) -> MechanismParam {
    MechanismParam::Aead {
        nonce: nonce.to_vec(),
        aad: aad.to_vec(),
    }
}

#[test]
fn chacha20_poly1305_rfc8439_and_errors() {
    // RFC 8439 §2.8.2.
    let key = secret(&h(
        "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
    ));
    let p = aead(
        &h("070000004041424344454647"),
        &h("50515253c0c1c2c3c4c5c6c7"),
    );
    let mut ct = h("d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116");
    ct.extend(h("1ae10b594f09e26a7e902ecbd0600691"));
    known_answer(CKM_CHACHA20_POLY1305, &key, &p, RFC8439_PT, &ct);
    let mut bad = ct.clone();
    bad[0] ^= 1;
    assert_eq!(
        rv(decrypt(CKM_CHACHA20_POLY1305, &key, &p, &bad)),
        Rv::ENCRYPTED_DATA_INVALID
    );
    assert_eq!(
        rv(decrypt(CKM_CHACHA20_POLY1305, &key, &p, &ct[..15])),
        Rv::ENCRYPTED_DATA_LEN_RANGE
    );
    // The 64-bit nonce is refused: OpenSSL has the IETF construction only.
    for bad in [
        aead(&[0; 8], &[]),
        aead(&[0; 13], &[]),
        NONE,
        gcm(&[0; 12], &[], 128),
    ] {
        assert_eq!(
            rv(encrypt(CKM_CHACHA20_POLY1305, &key, &bad, b"x")),
            Rv::MECHANISM_PARAM_INVALID
        );
    }
}

#[test]
fn triple_des_known_answers_and_errors() {
    // SP 800-67 Rev. 2 Appendix B (three keys, ECB); CBC and CBC_PAD of the same key checked
    // against the ECB relation C1 = E(P1 ⊕ IV) below.
    let k3 = secret(&h("0123456789abcdef23456789abcdef01456789abcdef0123"));
    let pt = b"The qufck brown fox jump";
    known_answer(
        CKM_DES3_ECB,
        &k3,
        &NONE,
        pt,
        &h("a826fd8ce53b855fcce21c8112256fe668d5c05dd9b6b900"),
    );
    let cbc_iv = iv("0001020304050607");
    let cbc = h("f368d06f3bbd614e60f2d0245cad3f818d5c69f2cb3fd5c7");
    known_answer(CKM_DES3_CBC, &k3, &cbc_iv, pt, &cbc);
    let mut first: Vec<u8> = pt[..8].to_vec();
    for (b, v) in first.iter_mut().zip(h("0001020304050607")) {
        *b ^= v;
    }
    assert_eq!(encrypt(CKM_DES3_ECB, &k3, &NONE, &first).unwrap(), cbc[..8]);
    known_answer(
        CKM_DES3_CBC_PAD,
        &k3,
        &cbc_iv,
        b"The quick brown fox",
        &h("29b01b011b9ebb6f10308a4293827906477ea2fd2c9a4d5c"),
    );
    // A double-length key is K1‖K2‖K1.
    let k2 = secret(&h("0123456789abcdef23456789abcdef01"));
    let k121 = secret(&h("0123456789abcdef23456789abcdef010123456789abcdef"));
    assert_eq!(
        encrypt(CKM_DES3_ECB, &k2, &NONE, pt).unwrap(),
        encrypt(CKM_DES3_ECB, &k121, &NONE, pt).unwrap()
    );
    // Lengths, IVs and keys.
    assert_eq!(
        rv(encrypt(CKM_DES3_ECB, &k3, &NONE, &pt[..7])),
        Rv::DATA_LEN_RANGE
    );
    assert_eq!(
        rv(decrypt(CKM_DES3_CBC, &k3, &cbc_iv, &cbc[..7])),
        Rv::ENCRYPTED_DATA_LEN_RANGE
    );
    assert_eq!(
        rv(encrypt(CKM_DES3_CBC, &k3, &iv(SP800_38A_IV), pt)),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(encrypt(CKM_DES3_ECB, &k3, &cbc_iv, pt)),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(encrypt(CKM_DES3_ECB, &secret(&[1; 8]), &NONE, pt)),
        Rv::KEY_SIZE_RANGE
    );
    let mut bad_pad = encrypt(CKM_DES3_CBC_PAD, &k3, &cbc_iv, b"abc").unwrap();
    bad_pad[7] ^= 0x55;
    assert_eq!(
        rv(decrypt(CKM_DES3_CBC_PAD, &k3, &cbc_iv, &bad_pad)),
        Rv::ENCRYPTED_DATA_INVALID
    );
    assert_eq!(
        lookup(CKM_DES3_CBC).unwrap().key_types,
        &[CKK_DES2, CKK_DES3]
    );
}

#[test]
fn single_des_sp800_20_and_gate() {
    // SP 800-20 Table A.1 (variable plaintext), the first two rows.
    let k = secret(&h("0101010101010101"));
    known_answer(
        CKM_DES_ECB,
        &k,
        &NONE,
        &h("80000000000000004000000000000000"),
        &h("95f8a5e5dd31d900dd7f121ca5015619"),
    );
    // Single DES is DES-EDE3 with three equal keys.
    let k3 = secret(&h("0101010101010101").repeat(3));
    let cbc_iv = iv("0001020304050607");
    let data = b"single DES, for legacy data only";
    assert_eq!(
        encrypt(CKM_DES_CBC, &k, &cbc_iv, data).unwrap(),
        encrypt(CKM_DES3_CBC, &k3, &cbc_iv, data).unwrap()
    );
    let sealed = encrypt(CKM_DES_CBC_PAD, &k, &cbc_iv, b"odd length").unwrap();
    assert_eq!(
        decrypt(CKM_DES_CBC_PAD, &k, &cbc_iv, &sealed).unwrap(),
        b"odd length"
    );
    assert_eq!(
        rv(encrypt(CKM_DES_ECB, &k3, &NONE, &[0; 8])),
        Rv::KEY_SIZE_RANGE
    );
    for m in [CKM_DES_KEY_GEN, CKM_DES_ECB, CKM_DES_CBC, CKM_DES_CBC_PAD] {
        assert_eq!(
            lookup(m).unwrap().gate,
            super::super::Gate::SingleDes,
            "0x{m:x}"
        );
    }
    for e in all() {
        let single = [CKM_DES_KEY_GEN, CKM_DES_ECB, CKM_DES_CBC, CKM_DES_CBC_PAD].contains(&e.kind);
        assert_eq!(
            e.gate == super::super::Gate::SingleDes,
            single,
            "0x{:x}",
            e.kind
        );
    }
}

#[test]
fn des_wrapping_round_trips() {
    let kek = secret(&h("0123456789abcdef23456789abcdef01456789abcdef0123"));
    let cbc_iv = iv("0001020304050607");
    let key = h("00112233445566778899aabbccddeeff0011223344556677");
    for (mech, p) in [
        (CKM_DES3_ECB, NONE),
        (CKM_DES3_CBC, cbc_iv.clone()),
        (CKM_DES3_CBC_PAD, cbc_iv.clone()),
    ] {
        let wrapped = wrap(mech, &kek, &p, &key).unwrap();
        assert_ne!(wrapped, key);
        assert_eq!(
            unwrap_key(mech, &kek, &p, &wrapped).unwrap(),
            key,
            "0x{mech:x}"
        );
    }
    // A key not a whole number of blocks: zero-padded by ECB/CBC, PKCS#7 by CBC_PAD.
    let short = [7u8; 20];
    let w = wrap(CKM_DES3_CBC, &kek, &cbc_iv, &short).unwrap();
    assert_eq!(w.len(), 24);
    assert_eq!(
        unwrap_key(CKM_DES3_CBC, &kek, &cbc_iv, &w).unwrap()[..20],
        short
    );
    let w = wrap(CKM_DES3_CBC_PAD, &kek, &cbc_iv, &short).unwrap();
    assert_eq!(
        unwrap_key(CKM_DES3_CBC_PAD, &kek, &cbc_iv, &w).unwrap(),
        short
    );
}

#[test]
fn triple_des_cmac_sp800_38b() {
    // SP 800-38B D.4 (three-key TDEA), examples 9–11.
    let key = secret(&h("8aa83bf8cbda10620bc1bf19fbb6cd58bc313d4a371ca8b5"));
    let msg = h("6bc1bee22e409f96e93d7e117393172aae2d8a57");
    let tag = sign(CKM_DES3_CMAC, &key, &NONE, &msg).unwrap();
    assert_eq!(hex::encode(&tag), "743ddbe0ce2dc2ed");
    verify(CKM_DES3_CMAC, &key, &NONE, &msg, &tag).unwrap();
    assert_eq!(
        hex::encode(sign(CKM_DES3_CMAC, &key, &NONE, &[]).unwrap()),
        "b7a688e122ffaf95"
    );
    let general = sign(CKM_DES3_CMAC_GENERAL, &key, &ulong(4), &msg).unwrap();
    assert_eq!(general, tag[..4]);
    verify(CKM_DES3_CMAC_GENERAL, &key, &ulong(4), &msg, &general).unwrap();
    assert_eq!(
        rv(sign(CKM_DES3_CMAC_GENERAL, &key, &ulong(9), &msg)),
        Rv::MECHANISM_PARAM_INVALID
    );
    let mut bad = tag.clone();
    bad[0] ^= 1;
    assert_eq!(
        rv(verify(CKM_DES3_CMAC, &key, &NONE, &msg, &bad)),
        Rv::SIGNATURE_INVALID
    );
    // Double-length keys work too.
    assert_eq!(
        sign(CKM_DES3_CMAC, &secret(&[0x31; 16]), &NONE, &msg)
            .unwrap()
            .len(),
        8
    );
    assert_eq!(
        rv(sign(CKM_DES3_CMAC, &secret(&[1; 8]), &NONE, &msg)),
        Rv::KEY_SIZE_RANGE
    );
}

#[test]
fn registry_info_of_cipher_mechanisms() {
    let info = |m| lookup(m).unwrap().info;
    let ed = CKF_ENCRYPT | CKF_DECRYPT;
    let sizes = |m| (info(m).ulMinKeySize, info(m).ulMaxKeySize);
    for m in [CKM_AES_OFB, CKM_AES_CFB1, CKM_AES_CFB8, CKM_AES_CFB128] {
        assert_eq!(info(m).flags, ed, "0x{m:x}");
        assert_eq!(sizes(m), (16, 32));
    }
    // The AEAD mechanisms also do message-based encryption and decryption.
    let message = CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT;
    assert_eq!(info(CKM_AES_CCM).flags, ed | message);
    assert_eq!(sizes(CKM_AES_CCM), (16, 32));
    assert_eq!(info(CKM_CHACHA20_POLY1305).flags, ed | message);
    assert_eq!(sizes(CKM_AES_XTS), (32, 64));
    assert_eq!(sizes(CKM_AES_XTS_KEY_GEN), (32, 64));
    for m in [CKM_CHACHA20, CKM_CHACHA20_POLY1305, CKM_CHACHA20_KEY_GEN] {
        assert_eq!(sizes(m), (32, 32));
    }
    let wrap_flags = ed | CKF_WRAP | CKF_UNWRAP;
    for m in [CKM_DES3_ECB, CKM_DES3_CBC, CKM_DES3_CBC_PAD] {
        assert_eq!(info(m).flags, wrap_flags);
        assert_eq!(sizes(m), (16, 24));
    }
    for m in [CKM_DES_ECB, CKM_DES_CBC, CKM_DES_CBC_PAD] {
        assert_eq!(info(m).flags, wrap_flags);
        assert_eq!(sizes(m), (8, 8));
    }
    assert_eq!(sizes(CKM_DES2_KEY_GEN), (16, 16));
    assert_eq!(sizes(CKM_DES3_KEY_GEN), (24, 24));
    assert_eq!(sizes(CKM_DES3_CMAC), (16, 24));
}

//! Cross-checks of the mechanisms against plain OpenSSL calls: what sqlhsm signs or encrypts,
//! OpenSSL verifies or decrypts, and the reverse. They live here because only `crypto` may
//! name `openssl`.

use cryptoki_sys::*;
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use openssl::symm::{self, Cipher};

use crate::crypto::test_keys;
use crate::error::Rv;
use crate::mechanism::tests::{decrypt, encrypt, gcm, private, public, secret, sign, verify, IV};
use crate::types::MechanismParam;

const NONE: MechanismParam = MechanismParam::None;
const MSG: &[u8] = b"interoperability is the point";

fn md(mech: CK_MECHANISM_TYPE) -> MessageDigest {
    match mech {
        CKM_SHA1_RSA_PKCS | CKM_SHA1_RSA_PKCS_PSS | CKM_ECDSA_SHA1 => MessageDigest::sha1(),
        CKM_SHA224_RSA_PKCS | CKM_SHA224_RSA_PKCS_PSS | CKM_ECDSA_SHA224 => MessageDigest::sha224(),
        CKM_SHA256_RSA_PKCS | CKM_SHA256_RSA_PKCS_PSS | CKM_ECDSA_SHA256 => MessageDigest::sha256(),
        CKM_SHA384_RSA_PKCS | CKM_SHA384_RSA_PKCS_PSS | CKM_ECDSA_SHA384 => MessageDigest::sha384(),
        _ => MessageDigest::sha512(),
    }
}

fn rsa_pkey() -> PKey<Private> {
    test_keys::rsa_2048().pkey().unwrap().clone()
}

#[test]
fn rsa_pkcs1_hashed_both_ways() {
    let key = test_keys::rsa_2048();
    for mech in [
        CKM_SHA1_RSA_PKCS,
        CKM_SHA224_RSA_PKCS,
        CKM_SHA256_RSA_PKCS,
        CKM_SHA384_RSA_PKCS,
        CKM_SHA512_RSA_PKCS,
    ] {
        let ours = sign(mech, &private(key.clone()), &NONE, MSG).unwrap();
        let pkey = rsa_pkey();
        let mut v = Verifier::new(md(mech), &pkey).unwrap();
        v.set_rsa_padding(Padding::PKCS1).unwrap();
        assert!(v.verify_oneshot(&ours, MSG).unwrap(), "0x{mech:x}");

        let mut s = Signer::new(md(mech), &pkey).unwrap();
        s.set_rsa_padding(Padding::PKCS1).unwrap();
        let theirs = s.sign_oneshot_to_vec(MSG).unwrap();
        assert_eq!(theirs, ours, "PKCS#1 v1.5 is deterministic");
        verify(mech, &public(&key), &NONE, MSG, &theirs).unwrap();
    }
}

#[test]
fn rsa_pkcs1_raw_over_digest_info() {
    let key = test_keys::rsa_2048();
    // DigestInfo for SHA-256 (RFC 8017 §9.2 note 1) followed by the hash.
    let mut digest_info = hex::decode("3031300d060960864801650304020105000420").unwrap();
    digest_info.extend_from_slice(&openssl::sha::sha256(MSG));
    let raw = sign(CKM_RSA_PKCS, &private(key.clone()), &NONE, &digest_info).unwrap();
    let hashed = sign(CKM_SHA256_RSA_PKCS, &private(key.clone()), &NONE, MSG).unwrap();
    assert_eq!(raw, hashed);

    // And OpenSSL's raw private encryption is the same operation.
    let rsa = rsa_pkey().rsa().unwrap();
    let mut theirs = vec![0u8; 256];
    let n = rsa
        .private_encrypt(b"any short payload", &mut theirs, Padding::PKCS1)
        .unwrap();
    verify(
        CKM_RSA_PKCS,
        &public(&key),
        &NONE,
        b"any short payload",
        &theirs[..n],
    )
    .unwrap();
}

#[test]
fn rsa_pss_both_ways() {
    let key = test_keys::rsa_2048();
    let cases = [
        (CKM_SHA1_RSA_PKCS_PSS, CKM_SHA_1, CKG_MGF1_SHA1, 20),
        (CKM_SHA224_RSA_PKCS_PSS, CKM_SHA224, CKG_MGF1_SHA224, 0),
        (CKM_SHA256_RSA_PKCS_PSS, CKM_SHA256, CKG_MGF1_SHA256, 32),
        (CKM_SHA384_RSA_PKCS_PSS, CKM_SHA384, CKG_MGF1_SHA1, 48),
        (CKM_SHA512_RSA_PKCS_PSS, CKM_SHA512, CKG_MGF1_SHA512, 64),
    ];
    let mgf_md = |mgf| match mgf {
        CKG_MGF1_SHA1 => MessageDigest::sha1(),
        CKG_MGF1_SHA224 => MessageDigest::sha224(),
        CKG_MGF1_SHA256 => MessageDigest::sha256(),
        _ => MessageDigest::sha512(),
    };
    let pkey = rsa_pkey();
    for (mech, hash, mgf, salt) in cases {
        let param = MechanismParam::Pss {
            hash,
            mgf,
            salt_len: salt,
        };
        let ours = sign(mech, &private(key.clone()), &param, MSG).unwrap();
        let mut v = Verifier::new(md(mech), &pkey).unwrap();
        v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        v.set_rsa_mgf1_md(mgf_md(mgf)).unwrap();
        v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt as i32))
            .unwrap();
        assert!(v.verify_oneshot(&ours, MSG).unwrap(), "0x{mech:x}");

        let mut s = Signer::new(md(mech), &pkey).unwrap();
        s.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        s.set_rsa_mgf1_md(mgf_md(mgf)).unwrap();
        s.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt as i32))
            .unwrap();
        let theirs = s.sign_oneshot_to_vec(MSG).unwrap();
        verify(mech, &public(&key), &param, MSG, &theirs).unwrap();
        // Raw CKM_RSA_PKCS_PSS over the digest is the same scheme.
        let digest = openssl::hash::hash(md(mech), MSG).unwrap();
        verify(CKM_RSA_PKCS_PSS, &public(&key), &param, &digest, &theirs).unwrap();
        let raw = sign(CKM_RSA_PKCS_PSS, &private(key.clone()), &param, &digest).unwrap();
        assert!(v_verify(&pkey, mech, mgf_md(mgf), salt, &raw));
    }

    fn v_verify(
        pkey: &PKey<Private>,
        mech: CK_MECHANISM_TYPE,
        mgf: MessageDigest,
        salt: CK_ULONG,
        sig: &[u8],
    ) -> bool {
        let mut v = Verifier::new(md(mech), pkey).unwrap();
        v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
        v.set_rsa_mgf1_md(mgf).unwrap();
        v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt as i32))
            .unwrap();
        v.verify_oneshot(sig, MSG).unwrap()
    }
}

#[test]
fn ecdsa_both_ways() {
    for curve in crate::crypto::test_keys::CURVES {
        let key = test_keys::ec(curve);
        let pkey = key.pkey().unwrap().clone();
        let n = crate::crypto::test_keys::field_bytes(curve);
        let to_der = |raw: &[u8]| {
            let r = BigNum::from_slice(&raw[..n]).unwrap();
            let s = BigNum::from_slice(&raw[n..]).unwrap();
            EcdsaSig::from_private_components(r, s)
                .unwrap()
                .to_der()
                .unwrap()
        };
        let from_der = |der: &[u8]| {
            let sig = EcdsaSig::from_der(der).unwrap();
            let mut raw = sig.r().to_vec_padded(n as i32).unwrap();
            raw.extend(sig.s().to_vec_padded(n as i32).unwrap());
            raw
        };
        for mech in [
            CKM_ECDSA_SHA1,
            CKM_ECDSA_SHA224,
            CKM_ECDSA_SHA256,
            CKM_ECDSA_SHA384,
            CKM_ECDSA_SHA512,
        ] {
            let ours = sign(mech, &private(key.clone()), &NONE, MSG).unwrap();
            assert_eq!(ours.len(), 2 * n);
            let mut v = Verifier::new(md(mech), &pkey).unwrap();
            assert!(
                v.verify_oneshot(&to_der(&ours), MSG).unwrap(),
                "{curve:?} 0x{mech:x}"
            );

            let theirs = Signer::new(md(mech), &pkey)
                .unwrap()
                .sign_oneshot_to_vec(MSG)
                .unwrap();
            verify(mech, &public(&key), &NONE, MSG, &from_der(&theirs)).unwrap();
            // Raw CKM_ECDSA over the digest is the same signature scheme.
            let digest = openssl::hash::hash(md(mech), MSG).unwrap();
            verify(CKM_ECDSA, &public(&key), &NONE, &digest, &from_der(&theirs)).unwrap();
            let raw = sign(CKM_ECDSA, &private(key.clone()), &NONE, &digest).unwrap();
            let mut v = Verifier::new(md(mech), &pkey).unwrap();
            assert!(v.verify_oneshot(&to_der(&raw), MSG).unwrap());
        }
    }
}

#[test]
fn ed25519_both_ways() {
    let key = test_keys::ed25519();
    let pkey = key.pkey().unwrap().clone();
    let ours = sign(CKM_EDDSA, &private(key.clone()), &NONE, MSG).unwrap();
    let mut v = Verifier::new_without_digest(&pkey).unwrap();
    assert!(v.verify_oneshot(&ours, MSG).unwrap());
    let theirs = Signer::new_without_digest(&pkey)
        .unwrap()
        .sign_oneshot_to_vec(MSG)
        .unwrap();
    assert_eq!(theirs, ours, "Ed25519 is deterministic");
    verify(CKM_EDDSA, &public(&key), &NONE, MSG, &theirs).unwrap();
}

#[test]
fn rsa_encryption_both_ways() {
    let key = test_keys::rsa_2048();
    let pkey = rsa_pkey();
    // PKCS#1 v1.5.
    let ct = encrypt(CKM_RSA_PKCS, &public(&key), &NONE, MSG).unwrap();
    let rsa = pkey.rsa().unwrap();
    let mut buf = vec![0u8; 256];
    let n = rsa.private_decrypt(&ct, &mut buf, Padding::PKCS1).unwrap();
    assert_eq!(&buf[..n], MSG);
    let n = rsa.public_encrypt(MSG, &mut buf, Padding::PKCS1).unwrap();
    assert_eq!(
        decrypt(CKM_RSA_PKCS, &private(key.clone()), &NONE, &buf[..n]).unwrap(),
        MSG
    );

    // OAEP, SHA-256 with a label and SHA-1 MGF.
    let param = MechanismParam::Oaep {
        hash: CKM_SHA256,
        mgf: CKG_MGF1_SHA1,
        source_data: b"lbl".to_vec(),
    };
    let oaep_ctx = |encrypt: bool| {
        let mut ctx = PkeyCtx::new(&pkey).unwrap();
        if encrypt {
            ctx.encrypt_init()
        } else {
            ctx.decrypt_init()
        }
        .unwrap();
        ctx.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
        ctx.set_rsa_oaep_md(openssl::md::Md::sha256()).unwrap();
        ctx.set_rsa_mgf1_md(openssl::md::Md::sha1()).unwrap();
        ctx.set_rsa_oaep_label(b"lbl").unwrap();
        ctx
    };
    let ct = encrypt(CKM_RSA_PKCS_OAEP, &public(&key), &param, MSG).unwrap();
    let mut out = Vec::new();
    oaep_ctx(false).decrypt_to_vec(&ct, &mut out).unwrap();
    assert_eq!(out, MSG);
    let mut theirs = Vec::new();
    oaep_ctx(true).encrypt_to_vec(MSG, &mut theirs).unwrap();
    assert_eq!(
        decrypt(CKM_RSA_PKCS_OAEP, &private(key), &param, &theirs).unwrap(),
        MSG
    );
}

#[test]
fn aes_matches_openssl() {
    let data: Vec<u8> = (0..77u8).collect();
    let aligned = &data[..64];
    for (key_len, ecb, cbc) in [
        (16, Cipher::aes_128_ecb(), Cipher::aes_128_cbc()),
        (24, Cipher::aes_192_ecb(), Cipher::aes_192_cbc()),
        (32, Cipher::aes_256_ecb(), Cipher::aes_256_cbc()),
    ] {
        let raw_key = vec![0x24u8; key_len];
        let key = secret(&raw_key);
        let iv = MechanismParam::Bytes(IV.to_vec());
        let unpadded = |cipher, iv: Option<&[u8]>, input: &[u8]| {
            let mut c = symm::Crypter::new(cipher, symm::Mode::Encrypt, &raw_key, iv).unwrap();
            c.pad(false);
            let mut out = vec![0u8; input.len() + 16];
            let n = c.update(input, &mut out).unwrap();
            out.truncate(n);
            out
        };
        assert_eq!(
            encrypt(CKM_AES_ECB, &key, &NONE, aligned).unwrap(),
            unpadded(ecb, None, aligned)
        );
        assert_eq!(
            encrypt(CKM_AES_CBC, &key, &iv, aligned).unwrap(),
            unpadded(cbc, Some(&IV), aligned)
        );
        let theirs = symm::encrypt(cbc, &raw_key, Some(&IV), &data).unwrap();
        assert_eq!(encrypt(CKM_AES_CBC_PAD, &key, &iv, &data).unwrap(), theirs);
        assert_eq!(decrypt(CKM_AES_CBC_PAD, &key, &iv, &theirs).unwrap(), data);

        let gcm_cipher = match key_len {
            16 => Cipher::aes_128_gcm(),
            24 => Cipher::aes_192_gcm(),
            _ => Cipher::aes_256_gcm(),
        };
        let mut tag = [0u8; 16];
        let ct = symm::encrypt_aead(
            gcm_cipher,
            &raw_key,
            Some(&IV[..12]),
            b"aad",
            &data,
            &mut tag,
        )
        .unwrap();
        let param = gcm(&IV[..12], b"aad", 128);
        let ours = encrypt(CKM_AES_GCM, &key, &param, &data).unwrap();
        assert_eq!(&ours[..data.len()], &ct[..]);
        assert_eq!(&ours[data.len()..], &tag);
        let mut both = ct.clone();
        both.extend_from_slice(&tag);
        assert_eq!(decrypt(CKM_AES_GCM, &key, &param, &both).unwrap(), data);
        let mut bad = both.clone();
        bad[3] ^= 1;
        assert_eq!(
            decrypt(CKM_AES_GCM, &key, &param, &bad).unwrap_err().rv(),
            Rv::ENCRYPTED_DATA_INVALID
        );
    }
}

#[test]
fn hmac_and_cmac_match_openssl() {
    let key = b"an hmac key of some length".to_vec();
    for (mech, md) in [
        (CKM_SHA_1_HMAC, MessageDigest::sha1()),
        (CKM_SHA224_HMAC, MessageDigest::sha224()),
        (CKM_SHA256_HMAC, MessageDigest::sha256()),
        (CKM_SHA384_HMAC, MessageDigest::sha384()),
        (CKM_SHA512_HMAC, MessageDigest::sha512()),
    ] {
        let pkey = PKey::hmac(&key).unwrap();
        let theirs = Signer::new(md, &pkey)
            .unwrap()
            .sign_oneshot_to_vec(MSG)
            .unwrap();
        let ours = sign(mech, &secret(&key), &NONE, MSG).unwrap();
        assert_eq!(ours, theirs, "0x{mech:x}");
        verify(mech, &secret(&key), &NONE, MSG, &theirs).unwrap();
    }
    for len in [16, 24, 32] {
        let key = vec![0x6bu8; len];
        let cipher = match len {
            16 => Cipher::aes_128_cbc(),
            24 => Cipher::aes_192_cbc(),
            _ => Cipher::aes_256_cbc(),
        };
        let pkey = PKey::cmac(&cipher, &key).unwrap();
        let theirs = Signer::new_without_digest(&pkey)
            .unwrap()
            .sign_oneshot_to_vec(MSG)
            .unwrap();
        assert_eq!(
            sign(CKM_AES_CMAC, &secret(&key), &NONE, MSG).unwrap(),
            theirs
        );
        verify(CKM_AES_CMAC, &secret(&key), &NONE, MSG, &theirs).unwrap();
    }
}

#[test]
fn aes_ctr_matches_openssl() {
    let block = [0xf0u8; 16];
    let mut param = (128 as CK_ULONG).to_ne_bytes().to_vec();
    param.extend_from_slice(&block);
    let param = MechanismParam::Bytes(param);
    let data = vec![0x17u8; 77];
    for (len, cipher) in [
        (16, Cipher::aes_128_ctr()),
        (24, Cipher::aes_192_ctr()),
        (32, Cipher::aes_256_ctr()),
    ] {
        let key = vec![0x21u8; len];
        let theirs = symm::encrypt(cipher, &key, Some(&block), &data).unwrap();
        assert_eq!(
            encrypt(CKM_AES_CTR, &secret(&key), &param, &data).unwrap(),
            theirs
        );
        assert_eq!(
            decrypt(CKM_AES_CTR, &secret(&key), &param, &theirs).unwrap(),
            data
        );
    }
}

#[test]
fn rsa_x509_matches_openssl() {
    let key = test_keys::rsa_2048();
    let rsa = rsa_pkey().rsa().unwrap();
    let mut block = vec![0u8; 256];
    block[200..].copy_from_slice(&[0x5au8; 56]);
    // Ours (left-padding the short input) equals OpenSSL's raw operation on the padded block.
    let mut theirs = vec![0u8; 256];
    rsa.public_encrypt(&block, &mut theirs, Padding::NONE)
        .unwrap();
    assert_eq!(
        encrypt(CKM_RSA_X_509, &public(&key), &NONE, &block[200..]).unwrap(),
        theirs
    );
    assert_eq!(
        decrypt(CKM_RSA_X_509, &private(key.clone()), &NONE, &theirs).unwrap(),
        block
    );
    let mut their_sig = vec![0u8; 256];
    rsa.private_encrypt(&block, &mut their_sig, Padding::NONE)
        .unwrap();
    assert_eq!(
        sign(CKM_RSA_X_509, &private(key.clone()), &NONE, &block[200..]).unwrap(),
        their_sig
    );
    verify(CKM_RSA_X_509, &public(&key), &NONE, &block, &their_sig).unwrap();
}

#[test]
fn aes_key_wrap_matches_openssl_aes_module() {
    use openssl::aes::{wrap_key, AesKey};
    let kek = [0x3eu8; 32];
    let data = [0x99u8; 32];
    let iv = [0x12u8; 8];
    let enc = AesKey::new_encrypt(&kek).unwrap();
    let mut theirs = vec![0u8; 40];
    wrap_key(&enc, Some(iv), &mut theirs, &data).unwrap();
    let wrap = crate::mechanism::lookup(CKM_AES_KEY_WRAP)
        .unwrap()
        .wrap
        .unwrap();
    let param = MechanismParam::Bytes(iv.to_vec());
    assert_eq!(wrap(&secret(&kek), &param, &data).unwrap(), theirs);
    let unwrap = crate::mechanism::lookup(CKM_AES_KEY_WRAP)
        .unwrap()
        .unwrap
        .unwrap();
    assert_eq!(*unwrap(&secret(&kek), &param, &theirs).unwrap(), data);
}

#[test]
fn ecdh_matches_openssl_deriver() {
    use openssl::derive::Deriver;
    for curve in crate::crypto::test_keys::CURVES {
        let ours = test_keys::ec(curve);
        let peer = crate::crypto::keys::PrivateKey::generate_ec(curve).unwrap();
        let crate::crypto::keys::PublicValues::Point { point_der, .. } =
            peer.public_values().unwrap()
        else {
            unreachable!()
        };
        let our_public = ours.public_key().unwrap();
        let mut d = Deriver::new(peer.pkey().unwrap()).unwrap();
        d.set_peer(our_public.pkey().unwrap()).unwrap();
        let theirs = d.derive_to_vec().unwrap();
        let param = MechanismParam::Ecdh {
            kdf: CKD_NULL,
            shared_data: vec![],
            public_data: point_der,
        };
        let ours = crate::mechanism::tests::derive_as(
            CKM_ECDH1_DERIVE,
            &private(ours),
            cryptoki_sys::CKK_EC,
            &param,
            None,
            &[],
            &[],
        );
        assert_eq!(ours.unwrap(), vec![theirs]);
    }
}

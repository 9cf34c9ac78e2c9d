//! Cryptographic functions through the C ABI: sign/verify single- and multi-part for every
//! signature mechanism (checked independently with OpenSSL), encrypt/decrypt, digest,
//! C_GenerateRandom, usage flags, and operation-state rules.

mod common;

use cryptoki::error::RvError;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{PKey, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};

use common::*;

const MSG: &[u8] = b"The quick brown fox jumps over the lazy dog, many times over. 0123456789";

fn pss(hash_alg: MechanismType, mgf: PkcsMgfType, s_len: u64) -> PkcsPssParams {
    PkcsPssParams {
        hash_alg,
        mgf,
        s_len: s_len.into(),
    }
}

/// Signs `MSG` single-part and multi-part (3 chunks), verifies both ways in the module, and
/// rejects a tampered message.
fn sign_both_ways(
    s: &Session,
    mech: &Mechanism,
    private: ObjectHandle,
    public: ObjectHandle,
    data: &[u8],
) -> Vec<u8> {
    let sig = s
        .sign(mech, private, data)
        .unwrap_or_else(|e| panic!("C_Sign {mech:?}: {e}"));
    s.verify(mech, public, data, &sig)
        .unwrap_or_else(|e| panic!("C_Verify {mech:?}: {e}"));

    s.sign_init(mech, private).unwrap();
    for chunk in data.chunks(data.len().div_ceil(3).max(1)) {
        s.sign_update(chunk)
            .unwrap_or_else(|e| panic!("C_SignUpdate {mech:?}: {e}"));
    }
    let sig2 = s.sign_final().unwrap();
    s.verify_init(mech, public).unwrap();
    for chunk in data.chunks(7) {
        s.verify_update(chunk).unwrap();
    }
    s.verify_final(&sig2)
        .unwrap_or_else(|e| panic!("C_VerifyFinal {mech:?}: {e}"));
    // Single-part verify of the multi-part signature, too.
    s.verify(mech, public, data, &sig2).unwrap();

    let mut bad = data.to_vec();
    bad[0] ^= 1;
    expect_rv(
        s.verify(mech, public, &bad, &sig),
        RvError::SignatureInvalid,
    );
    let mut badsig = sig.clone();
    let last = badsig.len() - 1;
    badsig[last] ^= 1;
    expect_rv(
        s.verify(mech, public, data, &badsig),
        RvError::SignatureInvalid,
    );
    sig
}

fn openssl_verify(
    pk: &PKey<Public>,
    md: Option<MessageDigest>,
    pad: Option<Padding>,
    data: &[u8],
    sig: &[u8],
) -> bool {
    let mut v = match md {
        Some(md) => Verifier::new(md, pk).unwrap(),
        None => Verifier::new_without_digest(pk).unwrap(),
    };
    if let Some(pad) = pad {
        v.set_rsa_padding(pad).unwrap();
        if pad == Padding::PKCS1_PSS {
            v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
            v.set_rsa_mgf1_md(md.unwrap()).unwrap();
        }
    }
    v.verify_oneshot(sig, data).unwrap()
}

/// DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1), for raw CKM_RSA_PKCS signing.
const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

#[test]
fn rsa_signatures() {
    let p = ctx();
    let slot = new_token(p, "rsa-sign");
    let s = user_session(p, slot);
    let (public, private) = gen_rsa(&s, 2048, "rsa", b"r");
    let pk = openssl_public(&s, public);

    for (mech, md) in [
        (Mechanism::Sha256RsaPkcs, MessageDigest::sha256()),
        (Mechanism::Sha384RsaPkcs, MessageDigest::sha384()),
        (Mechanism::Sha512RsaPkcs, MessageDigest::sha512()),
    ] {
        let sig = sign_both_ways(&s, &mech, private, public, MSG);
        assert_eq!(sig.len(), 256);
        assert!(
            openssl_verify(&pk, Some(md), Some(Padding::PKCS1), MSG, &sig),
            "{mech:?}"
        );
    }
    for (mech, md) in [
        (
            Mechanism::Sha256RsaPkcsPss(pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32)),
            MessageDigest::sha256(),
        ),
        (
            Mechanism::Sha384RsaPkcsPss(pss(MechanismType::SHA384, PkcsMgfType::MGF1_SHA384, 48)),
            MessageDigest::sha384(),
        ),
        (
            Mechanism::Sha512RsaPkcsPss(pss(MechanismType::SHA512, PkcsMgfType::MGF1_SHA512, 64)),
            MessageDigest::sha512(),
        ),
    ] {
        let sig = sign_both_ways(&s, &mech, private, public, MSG);
        assert!(
            openssl_verify(&pk, Some(md), Some(Padding::PKCS1_PSS), MSG, &sig),
            "{mech:?}"
        );
    }

    // CKM_RSA_PKCS over a caller-made DigestInfo (single-part only: no multi-part for raw RSA).
    let mut di = SHA256_DIGEST_INFO.to_vec();
    di.extend(hash(MessageDigest::sha256(), MSG).unwrap().iter());
    let sig = s.sign(&Mechanism::RsaPkcs, private, &di).unwrap();
    s.verify(&Mechanism::RsaPkcs, public, &di, &sig).unwrap();
    assert!(openssl_verify(
        &pk,
        Some(MessageDigest::sha256()),
        Some(Padding::PKCS1),
        MSG,
        &sig
    ));
    // CKM_RSA_PKCS input longer than k - 11 bytes.
    expect_rv(
        s.sign(&Mechanism::RsaPkcs, private, &[1u8; 250]),
        RvError::DataLenRange,
    );

    // CKM_RSA_PKCS_PSS over a caller-made hash.
    let digest = hash(MessageDigest::sha256(), MSG).unwrap();
    let mech = Mechanism::RsaPkcsPss(pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32));
    let sig = s.sign(&mech, private, &digest).unwrap();
    s.verify(&mech, public, &digest, &sig).unwrap();
    assert!(openssl_verify(
        &pk,
        Some(MessageDigest::sha256()),
        Some(Padding::PKCS1_PSS),
        MSG,
        &sig
    ));
    // The hash must have the length hashAlg says.
    expect_rv(s.sign(&mech, private, &digest[..20]), RvError::DataLenRange);
    // PSS parameters inconsistent with the mechanism's hash.
    expect_rv(
        s.sign_init(
            &Mechanism::Sha256RsaPkcsPss(pss(MechanismType::SHA512, PkcsMgfType::MGF1_SHA256, 32)),
            private,
        ),
        RvError::MechanismParamInvalid,
    );
    // Wrong key type for the mechanism.
    let (_, ec_private) = gen_ec(&s, P256, "not-rsa", b"n");
    expect_rv(
        s.sign_init(&Mechanism::Sha256RsaPkcs, ec_private),
        RvError::KeyTypeInconsistent,
    );
}

#[test]
fn rsa_3072_and_4096_sign() {
    let p = ctx();
    let slot = new_token(p, "rsa-big");
    let s = user_session(p, slot);
    for bits in [3072u64, 4096] {
        let (public, private) = gen_rsa(&s, bits, &format!("rsa{bits}"), b"b");
        let sig = sign_both_ways(&s, &Mechanism::Sha256RsaPkcs, private, public, MSG);
        assert_eq!(sig.len() as u64 * 8, bits);
        let pk = openssl_public(&s, public);
        assert!(openssl_verify(
            &pk,
            Some(MessageDigest::sha256()),
            Some(Padding::PKCS1),
            MSG,
            &sig
        ));
    }
}

#[test]
fn ecdsa_signatures() {
    let p = ctx();
    let slot = new_token(p, "ecdsa");
    let s = user_session(p, slot);
    for (params, n) in [(P256, 32usize), (P384, 48), (P521, 66)] {
        let (public, private) = gen_ec(&s, params, &format!("ec{n}"), b"e");
        let pk = openssl_public(&s, public);
        for (mech, md) in [
            (Mechanism::EcdsaSha256, MessageDigest::sha256()),
            (Mechanism::EcdsaSha384, MessageDigest::sha384()),
            (Mechanism::EcdsaSha512, MessageDigest::sha512()),
        ] {
            let sig = sign_both_ways(&s, &mech, private, public, MSG);
            assert_eq!(sig.len(), 2 * n, "raw r||s, each the size of the order");
            assert!(
                openssl_verify(&pk, Some(md), None, MSG, &ecdsa_raw_to_der(&sig)),
                "{mech:?}"
            );
        }
        // CKM_ECDSA over a caller-made hash (single-part).
        let digest = hash(MessageDigest::sha256(), MSG).unwrap();
        let sig = s.sign(&Mechanism::Ecdsa, private, &digest).unwrap();
        assert_eq!(sig.len(), 2 * n);
        s.verify(&Mechanism::Ecdsa, public, &digest, &sig).unwrap();
        assert!(openssl_verify(
            &pk,
            Some(MessageDigest::sha256()),
            None,
            MSG,
            &ecdsa_raw_to_der(&sig)
        ));
        // A signature of the wrong length.
        expect_rv_in(
            s.verify(&Mechanism::Ecdsa, public, &digest, &sig[1..]),
            &[RvError::SignatureLenRange, RvError::SignatureInvalid],
        );
    }
}

#[test]
fn eddsa_signatures() {
    let p = ctx();
    let slot = new_token(p, "eddsa");
    let s = user_session(p, slot);
    let (public, private) = gen_ec(&s, ED25519, "ed", b"e");
    let pk = openssl_public(&s, public);
    let mech = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
    let sig = sign_both_ways(&s, &mech, private, public, MSG);
    assert_eq!(sig.len(), 64);
    assert!(openssl_verify(&pk, None, None, MSG, &sig));
    // Ed25519 is deterministic.
    assert_eq!(s.sign(&mech, private, MSG).unwrap(), sig);
    // The empty message is a valid input.
    let sig = s.sign(&mech, private, b"").unwrap();
    assert!(openssl_verify(&pk, None, None, b"", &sig));
}

#[test]
fn aes_encrypt_decrypt() {
    let p = ctx();
    let slot = new_token(p, "aes");
    let s = user_session(p, slot);
    let key_bytes: Vec<u8> = (0u8..32).collect();
    let k = s
        .create_object(&[
            Attribute::Class(cryptoki::object::ObjectClass::SECRET_KEY),
            Attribute::KeyType(cryptoki::object::KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Label(b"aes-known".to_vec()),
            Attribute::Value(key_bytes.clone()),
        ])
        .unwrap();

    // AES-CBC-PAD, checked against OpenSSL, single- and multi-part.
    let iv = [0x42u8; 16];
    let ct = s.encrypt(&Mechanism::AesCbcPad(iv), k, MSG).unwrap();
    let want = openssl::symm::encrypt(
        openssl::symm::Cipher::aes_256_cbc(),
        &key_bytes,
        Some(&iv),
        MSG,
    )
    .unwrap();
    assert_eq!(ct, want, "CBC-PAD matches OpenSSL");
    assert_eq!(s.decrypt(&Mechanism::AesCbcPad(iv), k, &ct).unwrap(), MSG);
    s.encrypt_init(&Mechanism::AesCbcPad(iv), k).unwrap();
    let mut ct2 = Vec::new();
    for chunk in MSG.chunks(5) {
        ct2.extend(s.encrypt_update(chunk).unwrap());
    }
    ct2.extend(s.encrypt_final().unwrap());
    assert_eq!(ct2, ct);
    s.decrypt_init(&Mechanism::AesCbcPad(iv), k).unwrap();
    let mut pt = Vec::new();
    for chunk in ct.chunks(13) {
        pt.extend(s.decrypt_update(chunk).unwrap());
    }
    pt.extend(s.decrypt_final().unwrap());
    assert_eq!(pt, MSG);
    // Ciphertext not a multiple of the block size.
    expect_rv(
        s.decrypt(&Mechanism::AesCbcPad(iv), k, &ct[..ct.len() - 1]),
        RvError::EncryptedDataLenRange,
    );

    // AES-GCM with AAD, checked against OpenSSL.
    let mut gcm_iv = [7u8; 12];
    let aad = b"header";
    let ct = s
        .encrypt(
            &Mechanism::AesGcm(GcmParams::new(&mut gcm_iv, aad, 128.into()).unwrap()),
            k,
            MSG,
        )
        .unwrap();
    assert_eq!(ct.len(), MSG.len() + 16, "ciphertext ‖ 16-byte tag");
    let mut tag = [0u8; 16];
    let want = openssl::symm::encrypt_aead(
        openssl::symm::Cipher::aes_256_gcm(),
        &key_bytes,
        Some(&gcm_iv),
        aad,
        MSG,
        &mut tag,
    )
    .unwrap();
    assert_eq!(&ct[..MSG.len()], &want[..]);
    assert_eq!(&ct[MSG.len()..], &tag[..]);
    let pt = s
        .decrypt(
            &Mechanism::AesGcm(GcmParams::new(&mut gcm_iv, aad, 128.into()).unwrap()),
            k,
            &ct,
        )
        .unwrap();
    assert_eq!(pt, MSG);
    // Tampered ciphertext or AAD → CKR_ENCRYPTED_DATA_INVALID.
    let mut bad = ct.clone();
    bad[3] ^= 1;
    expect_rv(
        s.decrypt(
            &Mechanism::AesGcm(GcmParams::new(&mut gcm_iv, aad, 128.into()).unwrap()),
            k,
            &bad,
        ),
        RvError::EncryptedDataInvalid,
    );
    expect_rv(
        s.decrypt(
            &Mechanism::AesGcm(GcmParams::new(&mut gcm_iv, b"other", 128.into()).unwrap()),
            k,
            &ct,
        ),
        RvError::EncryptedDataInvalid,
    );

    // Generated 128/192-bit keys round-trip too.
    for len in [16u64, 24] {
        let g = gen_aes(&s, len, &format!("gen{len}"));
        let mut iv = [1u8; 12];
        let ct = s
            .encrypt(
                &Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into()).unwrap()),
                g,
                MSG,
            )
            .unwrap();
        let pt = s
            .decrypt(
                &Mechanism::AesGcm(GcmParams::new(&mut iv, b"", 128.into()).unwrap()),
                g,
                &ct,
            )
            .unwrap();
        assert_eq!(pt, MSG);
    }
}

#[test]
fn rsa_encrypt_decrypt() {
    let p = ctx();
    let slot = new_token(p, "rsa-crypt");
    let s = user_session(p, slot);
    let (public, private) = gen_rsa(&s, 2048, "rsa-crypt", b"c");
    let pk = openssl_public(&s, public);
    let rsa = pk.rsa().unwrap();

    for (hash_alg, mgf, md) in [
        (
            MechanismType::SHA1,
            PkcsMgfType::MGF1_SHA1,
            MessageDigest::sha1(),
        ),
        (
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
            MessageDigest::sha256(),
        ),
    ] {
        let oaep =
            Mechanism::RsaPkcsOaep(PkcsOaepParams::new(hash_alg, mgf, PkcsOaepSource::empty()));
        let ct = s.encrypt(&oaep, public, b"oaep secret").unwrap();
        assert_eq!(ct.len(), 256);
        assert_eq!(s.decrypt(&oaep, private, &ct).unwrap(), b"oaep secret");
        // Ciphertext made by OpenSSL decrypts in the module.
        let mut enc = openssl::encrypt::Encrypter::new(&pk).unwrap();
        enc.set_rsa_padding(Padding::PKCS1_OAEP).unwrap();
        enc.set_rsa_oaep_md(md).unwrap();
        enc.set_rsa_mgf1_md(md).unwrap();
        let mut ct = vec![0u8; enc.encrypt_len(b"from openssl").unwrap()];
        let n = enc.encrypt(b"from openssl", &mut ct).unwrap();
        ct.truncate(n);
        assert_eq!(
            s.decrypt(&oaep, private, &ct).unwrap(),
            b"from openssl",
            "{hash_alg}"
        );
    }
    // CKM_RSA_PKCS (v1.5) encryption both ways.
    let ct = s
        .encrypt(&Mechanism::RsaPkcs, public, b"pkcs1 secret")
        .unwrap();
    assert_eq!(
        s.decrypt(&Mechanism::RsaPkcs, private, &ct).unwrap(),
        b"pkcs1 secret"
    );
    let mut ct = vec![0u8; 256];
    let n = rsa
        .public_encrypt(b"v15 from openssl", &mut ct, Padding::PKCS1)
        .unwrap();
    assert_eq!(
        s.decrypt(&Mechanism::RsaPkcs, private, &ct[..n]).unwrap(),
        b"v15 from openssl"
    );
    // Garbage ciphertext.
    expect_rv_in(
        s.decrypt(
            &Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
                MechanismType::SHA256,
                PkcsMgfType::MGF1_SHA256,
                PkcsOaepSource::empty(),
            )),
            private,
            &[0x01; 256],
        ),
        &[RvError::EncryptedDataInvalid, RvError::FunctionFailed],
    );
}

#[test]
fn digests_and_random() {
    let p = ctx();
    let slot = new_token(p, "digest");
    // Digest and random need no login (public session).
    let s = p.open_ro_session(slot).unwrap();
    for (mech, md) in [
        (Mechanism::Sha1, MessageDigest::sha1()),
        (Mechanism::Sha256, MessageDigest::sha256()),
        (Mechanism::Sha384, MessageDigest::sha384()),
        (Mechanism::Sha512, MessageDigest::sha512()),
    ] {
        let want = hash(md, MSG).unwrap().to_vec();
        assert_eq!(s.digest(&mech, MSG).unwrap(), want, "{mech:?}");
        s.digest_init(&mech).unwrap();
        for c in MSG.chunks(11) {
            s.digest_update(c).unwrap();
        }
        assert_eq!(s.digest_final().unwrap(), want, "multi-part {mech:?}");
    }
    expect_rv(s.digest_update(b"x"), RvError::OperationNotInitialized);
    expect_rv(
        s.digest(&Mechanism::AesKeyGen, MSG),
        RvError::MechanismInvalid,
    );

    let a = s.generate_random_vec(64).unwrap();
    let b = s.generate_random_vec(64).unwrap();
    assert_eq!(a.len(), 64);
    assert_ne!(a, b);
    assert_ne!(a, vec![0u8; 64]);
    let mut big = vec![0u8; 4096];
    s.generate_random_slice(&mut big).unwrap();
    assert!(big.iter().filter(|&&x| x == 0).count() < 100);
}

#[test]
fn usage_flags_enforced() {
    let p = ctx();
    let slot = new_token(p, "usage");
    let s = user_session(p, slot);
    let (mut public_t, mut private_t) = ec_templates(P256, "nosign", b"ns");
    private_t.retain(|a| a.attribute_type() != cryptoki::object::AttributeType::Sign);
    private_t.push(Attribute::Sign(false));
    public_t.retain(|a| a.attribute_type() != cryptoki::object::AttributeType::Verify);
    public_t.push(Attribute::Verify(false));
    let (public, private) = s
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public_t, &private_t)
        .unwrap();
    expect_rv(
        s.sign_init(&Mechanism::Ecdsa, private),
        RvError::KeyFunctionNotPermitted,
    );
    expect_rv(
        s.verify_init(&Mechanism::Ecdsa, public),
        RvError::KeyFunctionNotPermitted,
    );

    let k = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(false),
            ],
        )
        .unwrap();
    s.encrypt_init(&Mechanism::AesCbcPad([0; 16]), k).unwrap();
    let _ = s.encrypt_final();
    expect_rv(
        s.decrypt_init(&Mechanism::AesCbcPad([0; 16]), k),
        RvError::KeyFunctionNotPermitted,
    );
    // A secret key can't sign with an asymmetric mechanism; a private key can't encrypt.
    expect_rv(
        s.sign_init(&Mechanism::Ecdsa, k),
        RvError::KeyTypeInconsistent,
    );
    let (_, rsa_private) = gen_rsa(&s, 2048, "rsa-usage", b"u");
    expect_rv_in(
        s.encrypt_init(&Mechanism::RsaPkcs, rsa_private),
        &[
            RvError::KeyTypeInconsistent,
            RvError::KeyFunctionNotPermitted,
        ],
    );
    // A mechanism the key can't do.
    expect_rv_in(
        s.sign_init(&Mechanism::AesCbcPad([0; 16]), k),
        &[RvError::MechanismInvalid, RvError::KeyTypeInconsistent],
    );
}

#[test]
fn operation_state_rules() {
    let p = ctx();
    let slot = new_token(p, "opstate");
    let s = user_session(p, slot);
    let (public, private) = gen_ec(&s, P256, "op", b"o");

    expect_rv(s.sign_update(b"x"), RvError::OperationNotInitialized);
    expect_rv(s.sign_final(), RvError::OperationNotInitialized);
    expect_rv(s.verify_update(b"x"), RvError::OperationNotInitialized);
    expect_rv(s.verify_final(&[0; 64]), RvError::OperationNotInitialized);
    expect_rv(s.encrypt_update(b"x"), RvError::OperationNotInitialized);
    expect_rv(s.decrypt_final(), RvError::OperationNotInitialized);

    s.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
    expect_rv(
        s.sign_init(&Mechanism::EcdsaSha256, private),
        RvError::OperationActive,
    );
    s.sign_update(b"abc").unwrap();
    let sig = s.sign_final().unwrap();
    // After C_SignFinal the operation is over.
    expect_rv(s.sign_final(), RvError::OperationNotInitialized);
    s.verify(&Mechanism::EcdsaSha256, public, b"abc", &sig)
        .unwrap();

    // A failed C_Sign (other than CKR_BUFFER_TOO_SMALL) ends the operation too. The cryptoki
    // crate's `sign` runs C_SignInit itself, so the failing C_Sign is its second call.
    expect_rv_in(
        s.sign(&Mechanism::Ecdsa, private, &[]),
        &[RvError::DataLenRange, RvError::DataInvalid],
    );
    s.sign_init(&Mechanism::Ecdsa, private)
        .expect("previous operation ended");
    let _ = s.sign_final();

    // Operation state is per session.
    let s2 = user_session(p, slot);
    s.sign_init(&Mechanism::EcdsaSha256, private).unwrap();
    s2.sign_init(&Mechanism::EcdsaSha256, private)
        .expect("another session is independent");
    s2.sign_update(b"abc").unwrap();
    let _ = s2.sign_final().unwrap();
    let _ = s.sign_final().unwrap();

    // Login needed: a public session can't use a private key.
    let pub_only = p.open_ro_session(slot).unwrap();
    s.logout().unwrap();
    expect_rv_in(
        pub_only.sign_init(&Mechanism::EcdsaSha256, private),
        &[
            RvError::UserNotLoggedIn,
            RvError::KeyHandleInvalid,
            RvError::ObjectHandleInvalid,
        ],
    );
    // Public key operations need no login.
    pub_only
        .verify(&Mechanism::EcdsaSha256, public, b"abc", &sig)
        .expect("verify without login");
}

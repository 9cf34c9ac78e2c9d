//! ML-DSA through OpenSSL checked against an independent implementation (RustCrypto
//! `ml-dsa`): deterministic signatures must be byte-identical, each side verifies the other's,
//! and the pre-hash variant (built here, not by OpenSSL) agrees with `ML-DSA.Sign_internal`
//! over an `M'` this test assembles from FIPS 204 Algorithm 4 itself.

use ml_dsa::{ExpandedSigningKey, MlDsa65, B32};
use openssl::pkey::{KeyType, PKey};

use super::*;

const XI: [u8; 32] = [7; 32];

fn openssl_key() -> PrivateKey {
    PrivateKey::from_openssl(
        PKey::private_key_from_seed(None, KeyType::ML_DSA_65, None, &XI).unwrap(),
    )
}

fn public(key: &PrivateKey) -> PublicKey {
    key.public_key().unwrap()
}

fn reference() -> ExpandedSigningKey<MlDsa65> {
    ExpandedSigningKey::from_seed(&B32::from(XI))
}

fn options(context: &[u8], deterministic: bool) -> SignOptions {
    SignOptions {
        context: context.to_vec(),
        deterministic,
    }
}

#[test]
fn deterministic_pure_signatures_match_the_reference() {
    let key = openssl_key();
    let reference = reference();
    for context in [&b""[..], b"a context", &[0xaa; 255]] {
        let message = b"post-quantum message";
        let ours = sign(&key, &options(context, true), message).unwrap();
        let theirs = reference.sign_deterministic(message, context);
        assert_eq!(ours, theirs.unwrap().encode().to_vec());
        assert_eq!(ours.len(), signature_len_of_private(&key).unwrap());
    }
}

#[test]
fn streaming_equals_one_shot_and_holds_no_message() {
    let key = openssl_key();
    let opts = options(b"ctx", true);
    let message: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let one_shot = sign(&key, &opts, &message).unwrap();
    let mut signer = MessageSigner::new(&key, &opts).unwrap();
    for part in message.chunks(777) {
        signer.update(part).unwrap();
    }
    assert_eq!(signer.finish().unwrap(), one_shot);

    let mut verifier = MessageVerifier::new(&public(&key), &opts).unwrap();
    for part in message.chunks(1000) {
        verifier.update(part).unwrap();
    }
    assert!(verifier.finish(&one_shot).unwrap());
    // The empty message, in parts and at once.
    let empty = sign(&key, &opts, b"").unwrap();
    assert_eq!(
        MessageSigner::new(&key, &opts).unwrap().finish().unwrap(),
        empty
    );
    let verifier = MessageVerifier::new(&public(&key), &opts).unwrap();
    assert!(verifier.finish(&empty).unwrap());
}

#[test]
fn each_side_verifies_the_other() {
    let key = openssl_key();
    let reference = reference();
    let message = b"interop";
    // Hedged: different every time, still valid for the reference.
    let a = sign(&key, &options(b"c", false), message).unwrap();
    let b = sign(&key, &options(b"c", false), message).unwrap();
    assert_ne!(a, b);
    let vk = reference.verifying_key();
    let sig = ml_dsa::Signature::<MlDsa65>::try_from(a.as_slice()).unwrap();
    assert!(vk.verify_with_context(message, b"c", &sig));
    assert!(!vk.verify_with_context(message, b"d", &sig));
    // The reference's signature verifies here, and fails with another context or message.
    let theirs = reference
        .sign_deterministic(message, b"c")
        .unwrap()
        .encode()
        .to_vec();
    let public = public(&key);
    assert!(verify(&public, &options(b"c", false), message, &theirs).unwrap());
    assert!(!verify(&public, &options(b"", false), message, &theirs).unwrap());
    assert!(!verify(&public, &options(b"c", false), b"other", &theirs).unwrap());
    let mut bad = theirs.clone();
    bad[10] ^= 1;
    assert!(!verify(&public, &options(b"c", false), message, &bad).unwrap());
    assert!(!verify(&public, &options(b"c", false), message, &theirs[1..]).unwrap());
    assert!(openssl::error::ErrorStack::get().errors().is_empty());
}

/// FIPS 204 Algorithm 4 step 23, written out independently of `prehash_message`.
fn fips_m_prime(context: &[u8], oid_last_arc: u8, digest: &[u8]) -> Vec<u8> {
    let mut m = vec![1, context.len() as u8];
    m.extend_from_slice(context);
    m.extend_from_slice(&[0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02]);
    m.push(oid_last_arc);
    m.extend_from_slice(digest);
    m
}

#[test]
fn hash_ml_dsa_matches_sign_internal_of_the_reference() {
    let key = openssl_key();
    let reference = reference();
    let message = b"pre-hashed message";
    let cases = [
        (PreHash::Fixed(HashAlg::Sha256), 1u8),
        (PreHash::Fixed(HashAlg::Sha512), 3),
        (PreHash::Fixed(HashAlg::Sha224), 4),
        (PreHash::Fixed(HashAlg::Sha3_384), 9),
        (PreHash::Shake128, 11),
        (PreHash::Shake256, 12),
    ];
    for (hash, arc) in cases {
        let mut hasher = PreHasher::new(hash).unwrap();
        hasher.update(&message[..5]).unwrap();
        hasher.update(&message[5..]).unwrap();
        let digest = hasher.finish().unwrap();
        assert_eq!(digest.len(), hash.output_len());
        let ours = sign_prehashed(&key, &options(b"ph", true), hash, &digest).unwrap();
        let m_prime = fips_m_prime(b"ph", arc, &digest);
        let theirs = reference.sign_internal(&[&m_prime], &B32::default());
        assert_eq!(ours, theirs.encode().to_vec(), "{hash:?}");
        let public = public(&key);
        assert!(verify_prehashed(&public, &options(b"ph", false), hash, &digest, &ours).unwrap());
        // HashML-DSA and ML-DSA signatures are not interchangeable.
        assert!(!verify(&public, &options(b"ph", false), &digest, &ours).unwrap());
        let hedged = sign_prehashed(&key, &options(b"ph", false), hash, &digest).unwrap();
        let sig = ml_dsa::Signature::<MlDsa65>::try_from(hedged.as_slice()).unwrap();
        assert!(reference.verifying_key().verify_internal(&m_prime, &sig));
    }
}

#[test]
fn shake_pre_hashes_have_fips_output_lengths() {
    for (hash, data, expected) in [
        (
            PreHash::Shake128,
            &b""[..],
            "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26",
        ),
        (
            PreHash::Shake256,
            b"",
            "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f\
             d75dc4ddd8c0f200cb05019d67b592f6fc821c49479ab48640292eacb3b7c4be",
        ),
    ] {
        let mut hasher = PreHasher::new(hash).unwrap();
        hasher.update(data).unwrap();
        assert_eq!(hex::encode(hasher.finish().unwrap()), expected);
    }
}

#[test]
fn out_of_range_inputs_are_refused() {
    let key = openssl_key();
    let long = options(&[0; 256], false);
    let rv = |r: Result<Vec<u8>>| r.unwrap_err().rv();
    assert_eq!(rv(sign(&key, &long, b"m")), Rv::MECHANISM_PARAM_INVALID);
    assert!(MessageSigner::new(&key, &long).is_err());
    let sha256 = PreHash::Fixed(HashAlg::Sha256);
    let short = options(b"", false);
    assert_eq!(
        rv(sign_prehashed(&key, &short, sha256, &[0; 31])),
        Rv::DATA_LEN_RANGE
    );
    assert_eq!(
        rv(sign_prehashed(&key, &long, sha256, &[0; 32])),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert!(PreHasher::new(PreHash::Fixed(HashAlg::Sha1)).is_err());
}

#[test]
fn slh_dsa_signs_deterministically_or_hedged_and_pre_hashed() {
    let key = PrivateKey::generate_pq("SLH-DSA-SHAKE-128f").unwrap();
    let public = public(&key);
    let message = b"hash-based";
    let det = options(b"c", true);
    let a = sign(&key, &det, message).unwrap();
    assert_eq!(a, sign(&key, &det, message).unwrap());
    assert_eq!(a.len(), 17088);
    assert_eq!(signature_len_of_public(&public).unwrap(), 17088);
    let hedged = sign(&key, &options(b"c", false), message).unwrap();
    assert_ne!(a, hedged);
    for sig in [&a, &hedged] {
        assert!(verify(&public, &options(b"c", false), message, sig).unwrap());
        assert!(!verify(&public, &options(b"", false), message, sig).unwrap());
    }
    let sha512 = PreHash::Fixed(HashAlg::Sha512);
    let digest = crate::crypto::digest::digest(HashAlg::Sha512, message).unwrap();
    let ph = sign_prehashed(&key, &det, sha512, &digest).unwrap();
    assert!(verify_prehashed(&public, &det, sha512, &digest, &ph).unwrap());
    assert!(!verify(&public, &det, message, &ph).unwrap());
    // Another pre-hash with a digest of the same length is another M'.
    let sha3 = PreHash::Fixed(HashAlg::Sha3_512);
    assert!(!verify_prehashed(&public, &det, sha3, &digest, &ph).unwrap());
}

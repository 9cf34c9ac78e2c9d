//! Post-quantum signatures through the C ABI: ML-DSA and SLH-DSA, pure, pre-hash over the
//! caller's digest and hash-and-sign, single- and multi-part, with their parameters
//! (`CK_SIGN_ADDITIONAL_CONTEXT`, `CK_HASH_SIGN_ADDITIONAL_CONTEXT`), checked against an
//! independent ML-DSA (RustCrypto `ml-dsa`) in both directions. Wycheproof's ML-DSA vectors run
//! in `tests/wycheproof.rs`.

mod common;

use cryptoki::error::RvError;
use cryptoki::session::Session;
use cryptoki_sys::*;
use ml_dsa::{ExpandedSigningKey, MlDsa65, B32};

use common::*;

fn session(label: &str) -> Session {
    user_session(ctx(), new_token(ctx(), label))
}

const XI: [u8; 32] = [0x5a; 32];

fn mldsa_65(
    s: &Session,
) -> (
    cryptoki::object::ObjectHandle,
    cryptoki::object::ObjectHandle,
) {
    let private = pq_private_from_seed(s, CKK_ML_DSA, CKP_ML_DSA_65, &XI).unwrap();
    let reference = ExpandedSigningKey::<MlDsa65>::from_seed(&B32::from(XI));
    let encoded = reference.verifying_key().encode();
    let public = pq_public(s, CKK_ML_DSA, CKP_ML_DSA_65, &encoded).unwrap();
    (public, private)
}

fn det(context: &[u8]) -> SignContext {
    SignContext::new(CKH_DETERMINISTIC_REQUIRED, context)
}

fn hedged(context: &[u8]) -> SignContext {
    SignContext::new(CKH_HEDGE_REQUIRED, context)
}

/// FIPS 204 Algorithm 4's `M'` for a NIST hash whose OID ends in `arc`.
fn m_prime(context: &[u8], arc: u8, digest: &[u8]) -> Vec<u8> {
    let mut m = vec![1, context.len() as u8];
    m.extend_from_slice(context);
    m.extend_from_slice(&[
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, arc,
    ]);
    m.extend_from_slice(digest);
    m
}

#[test]
fn ml_dsa_interoperates_with_an_independent_implementation() {
    let s = session("pq-interop");
    let (public, private) = mldsa_65(&s);
    let reference = ExpandedSigningKey::<MlDsa65>::from_seed(&B32::from(XI));
    let vk = reference.verifying_key();
    let message = b"signed by sqlhsm, checked by RustCrypto";
    for context in [&b""[..], b"ctx"] {
        // Hedged (the default without a parameter, and asked for).
        for param in [None, Some(hedged(context))] {
            let mut param = param;
            let sig = raw_sign(
                &s,
                CKM_ML_DSA,
                param.as_mut().map(SignContext::bytes),
                private,
                message,
                Some(7),
            )
            .unwrap();
            let sig = ml_dsa::Signature::<MlDsa65>::try_from(sig.as_slice()).unwrap();
            let ctx = if param.is_some() { context } else { b"" };
            assert!(vk.verify_with_context(message, ctx, &sig));
        }
        // Deterministic: the same bytes as the reference.
        let ours = raw_sign(
            &s,
            CKM_ML_DSA,
            Some(det(context).bytes()),
            private,
            message,
            None,
        )
        .unwrap();
        let theirs = reference.sign_deterministic(message, context).unwrap();
        assert_eq!(ours, theirs.encode().to_vec());
        // The reference's signature verifies here, in one part and in parts, and not with
        // another context.
        let theirs = theirs.encode().to_vec();
        for parts in [None, Some(5)] {
            raw_verify(
                &s,
                CKM_ML_DSA,
                Some(det(context).bytes()),
                public,
                message,
                &theirs,
                parts,
            )
            .unwrap();
        }
        let wrong = raw_verify(
            &s,
            CKM_ML_DSA,
            Some(det(b"x").bytes()),
            public,
            message,
            &theirs,
            None,
        );
        expect_rv(wrong, RvError::SignatureInvalid);
    }
}

#[test]
fn hash_ml_dsa_is_fips_204_algorithm_4() {
    let s = session("pq-hash-ml-dsa");
    let (public, private) = mldsa_65(&s);
    let reference = ExpandedSigningKey::<MlDsa65>::from_seed(&B32::from(XI));
    let message = b"hash first, then sign";
    let digest = openssl::sha::sha256(message);
    let expected = reference
        .sign_internal(&[&m_prime(b"ph", 1, &digest)], &B32::default())
        .encode()
        .to_vec();
    // Hash-and-sign, in one part and in parts.
    for parts in [None, Some(3)] {
        let sig = raw_sign(
            &s,
            CKM_HASH_ML_DSA_SHA256,
            Some(det(b"ph").bytes()),
            private,
            message,
            parts,
        )
        .unwrap();
        assert_eq!(sig, expected);
    }
    // Over the caller's digest, the hash named in the parameter.
    let mut p = det(b"ph").with_hash(CKM_SHA256);
    let sig = raw_sign(&s, CKM_HASH_ML_DSA, Some(p.bytes()), private, &digest, None).unwrap();
    assert_eq!(sig, expected);
    let mut p = det(b"ph").with_hash(CKM_SHA256);
    raw_verify(
        &s,
        CKM_HASH_ML_DSA,
        Some(p.bytes()),
        public,
        &digest,
        &expected,
        None,
    )
    .unwrap();
    // A digest of the wrong length; no parameter (no hash to name); SHA-1.
    let mut p = det(b"ph").with_hash(CKM_SHA256);
    let short = raw_sign(
        &s,
        CKM_HASH_ML_DSA,
        Some(p.bytes()),
        private,
        &digest[1..],
        None,
    );
    expect_rv(short, RvError::DataLenRange);
    expect_rv(
        raw_sign(&s, CKM_HASH_ML_DSA, None, private, &digest, None),
        RvError::MechanismParamInvalid,
    );
    let mut p = det(b"").with_hash(CKM_SHA_1);
    let sha1 = raw_sign(
        &s,
        CKM_HASH_ML_DSA,
        Some(p.bytes()),
        private,
        &digest[..20],
        None,
    );
    expect_rv(sha1, RvError::MechanismParamInvalid);
    // SHAKE256 (64-byte PH) against the reference, and a pure signature is not a HashML-DSA one.
    let mut shake = [0u8; 64];
    let mut h = openssl::hash::Hasher::new(openssl::hash::MessageDigest::shake_256()).unwrap();
    h.update(message).unwrap();
    h.finish_xof(&mut shake).unwrap();
    let sig = raw_sign(&s, CKM_HASH_ML_DSA_SHAKE256, None, private, message, None).unwrap();
    let sig_ref = ml_dsa::Signature::<MlDsa65>::try_from(sig.as_slice()).unwrap();
    assert!(reference
        .verifying_key()
        .verify_internal(&m_prime(b"", 12, &shake), &sig_ref));
    let pure = raw_verify(&s, CKM_ML_DSA, None, public, message, &sig, None);
    expect_rv(pure, RvError::SignatureInvalid);
}

#[test]
fn parameters_and_keys_are_checked() {
    let s = session("pq-params");
    let (public, private) = mldsa_65(&s);
    // A 256-byte context, an unknown hedge value.
    let long = raw_sign(
        &s,
        CKM_ML_DSA,
        Some(det(&[1; 256]).bytes()),
        private,
        b"m",
        None,
    );
    expect_rv(long, RvError::MechanismParamInvalid);
    let mut bad = SignContext::new(7, b"");
    expect_rv(
        raw_sign(&s, CKM_ML_DSA, Some(bad.bytes()), private, b"m", None),
        RvError::MechanismParamInvalid,
    );
    // 255 bytes is the limit, not over it.
    raw_sign(
        &s,
        CKM_ML_DSA,
        Some(det(&[1; 255]).bytes()),
        private,
        b"m",
        None,
    )
    .unwrap();
    // The wrong structure size.
    let mut short = [0u8; 8];
    expect_rv(
        raw_sign(&s, CKM_ML_DSA, Some(&mut short), private, b"m", None),
        RvError::MechanismParamInvalid,
    );
    // Key types: an EC key with ML-DSA, an ML-DSA key with SLH-DSA.
    let (ec_pub, ec_priv) = gen_ec(&s, P256, "pq-ec", b"pq-ec");
    expect_rv(
        raw_sign(&s, CKM_ML_DSA, None, ec_priv, b"m", None),
        RvError::KeyTypeInconsistent,
    );
    expect_rv(
        raw_verify(&s, CKM_ML_DSA, None, ec_pub, b"m", &[0; 3309], None),
        RvError::KeyTypeInconsistent,
    );
    expect_rv(
        raw_sign(&s, CKM_SLH_DSA, None, private, b"m", None),
        RvError::KeyTypeInconsistent,
    );
    expect_rv(
        raw_sign(&s, CKM_HASH_SLH_DSA_SHA256, None, private, b"m", None),
        RvError::KeyTypeInconsistent,
    );
    // A signature of the wrong length.
    let sig = raw_sign(&s, CKM_ML_DSA, None, private, b"m", None).unwrap();
    expect_rv(
        raw_verify(&s, CKM_ML_DSA, None, public, b"m", &sig[1..], None),
        RvError::SignatureLenRange,
    );
    expect_rv(
        raw_verify(&s, CKM_ML_DSA, None, public, b"m", &sig[1..], Some(1)),
        RvError::SignatureLenRange,
    );
}

/// Every SLH-DSA parameter set: pure signatures in one part and in parts, deterministic ones
/// repeat and hedged ones do not, the context counts, HashSLH-DSA round-trips.
#[test]
fn slh_dsa_every_parameter_set() {
    let s = session("pq-slh-dsa");
    let sets = [
        (CKP_SLH_DSA_SHA2_128S, 7856),
        (CKP_SLH_DSA_SHAKE_128S, 7856),
        (CKP_SLH_DSA_SHA2_128F, 17088),
        (CKP_SLH_DSA_SHAKE_128F, 17088),
        (CKP_SLH_DSA_SHA2_192S, 16224),
        (CKP_SLH_DSA_SHAKE_192S, 16224),
        (CKP_SLH_DSA_SHA2_192F, 35664),
        (CKP_SLH_DSA_SHAKE_192F, 35664),
        (CKP_SLH_DSA_SHA2_256S, 29792),
        (CKP_SLH_DSA_SHAKE_256S, 29792),
        (CKP_SLH_DSA_SHA2_256F, 49856),
        (CKP_SLH_DSA_SHAKE_256F, 49856),
    ];
    let message = b"stateless hash-based";
    for (set, len) in sets {
        let (public, private) = pq_generate(&s, CKM_SLH_DSA_KEY_PAIR_GEN, set).unwrap();
        let sig = raw_sign(
            &s,
            CKM_SLH_DSA,
            Some(hedged(b"c").bytes()),
            private,
            message,
            None,
        )
        .unwrap();
        assert_eq!(sig.len(), len, "set {set}");
        raw_verify(
            &s,
            CKM_SLH_DSA,
            Some(det(b"c").bytes()),
            public,
            message,
            &sig,
            Some(4),
        )
        .unwrap();
        let other = raw_verify(
            &s,
            CKM_SLH_DSA,
            Some(det(b"d").bytes()),
            public,
            message,
            &sig,
            None,
        );
        expect_rv(other, RvError::SignatureInvalid);
        // The fast sets also go through the multi-part and pre-hash paths.
        if len == 17088 {
            let a = raw_sign(
                &s,
                CKM_SLH_DSA,
                Some(det(b"").bytes()),
                private,
                message,
                Some(3),
            )
            .unwrap();
            let b = raw_sign(
                &s,
                CKM_SLH_DSA,
                Some(det(b"").bytes()),
                private,
                message,
                None,
            )
            .unwrap();
            assert_eq!(a, b);
            let c = raw_sign(&s, CKM_SLH_DSA, None, private, message, None).unwrap();
            assert_ne!(a, c, "hedged by default");
            let h = raw_sign(
                &s,
                CKM_HASH_SLH_DSA_SHA3_256,
                None,
                private,
                message,
                Some(2),
            )
            .unwrap();
            raw_verify(
                &s,
                CKM_HASH_SLH_DSA_SHA3_256,
                None,
                public,
                message,
                &h,
                None,
            )
            .unwrap();
            let digest =
                openssl::hash::hash(openssl::hash::MessageDigest::sha3_256(), message).unwrap();
            let mut p = SignContext::new(CKH_HEDGE_PREFERRED, b"").with_hash(CKM_SHA3_256);
            raw_verify(
                &s,
                CKM_HASH_SLH_DSA,
                Some(p.bytes()),
                public,
                &digest,
                &h,
                None,
            )
            .unwrap();
            let pure = raw_verify(&s, CKM_SLH_DSA, None, public, message, &h, None);
            expect_rv(pure, RvError::SignatureInvalid);
        }
    }
}

/// Multi-part SLH-DSA buffers at most 4 MiB (`CKR_DATA_LEN_RANGE` beyond); single-part has no
/// such limit, and the hash-and-sign mechanisms stream.
#[test]
fn slh_dsa_multipart_limit() {
    let s = session("pq-slh-limit");
    let (public, private) =
        pq_generate(&s, CKM_SLH_DSA_KEY_PAIR_GEN, CKP_SLH_DSA_SHAKE_128F).unwrap();
    let big = vec![0x11u8; (4 << 20) + 1];
    expect_rv(
        raw_sign(&s, CKM_SLH_DSA, None, private, &big, Some(1 << 20)),
        RvError::DataLenRange,
    );
    let sig = raw_sign(&s, CKM_SLH_DSA, None, private, &big, None).unwrap();
    raw_verify(&s, CKM_SLH_DSA, None, public, &big, &sig, None).unwrap();
    expect_rv(
        raw_verify(&s, CKM_SLH_DSA, None, public, &big, &sig, Some(1 << 20)),
        RvError::DataLenRange,
    );
    let sig = raw_sign(
        &s,
        CKM_HASH_SLH_DSA_SHA512,
        None,
        private,
        &big,
        Some(1 << 20),
    )
    .unwrap();
    raw_verify(
        &s,
        CKM_HASH_SLH_DSA_SHA512,
        None,
        public,
        &big,
        &sig,
        Some(1 << 19),
    )
    .unwrap();
    // Exactly the limit is allowed.
    raw_sign(&s, CKM_SLH_DSA, None, private, &big[1..], Some(1 << 20)).unwrap();
}

/// `C_SignMessage` once under `C_MessageSignInit`'s mechanism: the length query, then the
/// signature.
fn sign_message(s: &Session, data: &[u8]) -> Vec<u8> {
    let call = |out: *mut u8, len: &mut CK_ULONG| {
        // SAFETY: `data` holds its length; `out` is NULL or has `*len` writable bytes.
        unsafe {
            raw().C_SignMessage(
                s.handle(),
                std::ptr::null_mut(),
                0,
                data.as_ptr().cast_mut(),
                data.len() as CK_ULONG,
                out,
                len,
            )
        }
    };
    let mut len: CK_ULONG = 0;
    assert_eq!(call(std::ptr::null_mut(), &mut len), CKR_OK);
    let mut out = vec![0u8; len as usize];
    assert_eq!(call(out.as_mut_ptr(), &mut len), CKR_OK);
    out.truncate(len as usize);
    out
}

/// Message-based signing with ML-DSA: the `*Init` parameter (deterministic, a context) applies
/// to every message, each signed as `C_Sign` signs it.
#[test]
fn ml_dsa_message_based_signing() {
    let s = session("pq-message");
    let (_, private) = mldsa_65(&s);
    let mut p = det(b"per-process");
    let param = p.bytes();
    let mut m = CK_MECHANISM {
        mechanism: CKM_ML_DSA,
        pParameter: param.as_mut_ptr().cast(),
        ulParameterLen: param.len() as CK_ULONG,
    };
    // SAFETY: `m` and the parameter it points to outlive the call.
    let rv = unsafe { raw().C_MessageSignInit(s.handle(), &mut m, private.handle()) };
    assert_eq!(rv, CKR_OK);
    let first = sign_message(&s, b"first");
    let second = sign_message(&s, b"second");
    // SAFETY: a live session.
    assert_eq!(unsafe { raw().C_MessageSignFinal(s.handle()) }, CKR_OK);
    for (message, sig) in [(&b"first"[..], first), (b"second", second)] {
        let plain = raw_sign(
            &s,
            CKM_ML_DSA,
            Some(det(b"per-process").bytes()),
            private,
            message,
            None,
        );
        assert_eq!(plain.unwrap(), sig);
    }
}

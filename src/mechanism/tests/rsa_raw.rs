//! Raw RSA: `CKM_RSA_X_509` round trips and ranges, raw `CKM_RSA_PKCS` signatures at every
//! length.

use super::*;
use crate::crypto::keys::PublicValues;

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

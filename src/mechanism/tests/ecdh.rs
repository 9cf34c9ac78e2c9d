//! ECDH: agreement, the KDFs, truncation, and the Wycheproof secp256r1 vectors.

use super::*;
use crate::crypto::der::split_tlv;
use crate::crypto::keys::PublicValues;

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
        let cof = derive_as(
            CKM_ECDH1_COFACTOR_DERIVE,
            &private(a.clone()),
            CKK_EC,
            &ecdh_param(CKD_NULL, &[], &pb),
            None,
            &[],
            &[],
        );
        assert_eq!(cof.unwrap(), vec![z.clone()]);
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

/// The curve parameters and the point of an SPKI, as a PKCS#11 caller would pull them apart.
fn spki_parts(spki: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (0x30, body, []) = split_tlv(spki)? else {
        return None;
    };
    let (0x30, alg, rest) = split_tlv(body)? else {
        return None;
    };
    let (0x03, bits, []) = split_tlv(rest)? else {
        return None;
    };
    let (0x06, _, params) = split_tlv(alg)? else {
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

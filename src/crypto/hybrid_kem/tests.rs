//! Known-answer tests from the specifications and from OpenTDF's own tests, and the properties
//! the encodings promise. No expected value here was produced by sqlhsm.

use super::*;

/// The draft's test vectors (`tests/data/hybrid/xwing_draft10.txt`): `name value` lines, a
/// value continuing on indented lines, vectors separated by blank lines.
fn xwing_vectors() -> Vec<std::collections::HashMap<String, Vec<u8>>> {
    let text = include_str!("../../../tests/data/hybrid/xwing_draft10.txt");
    let mut vectors = Vec::new();
    for block in text.split("\n\n") {
        let mut fields = std::collections::HashMap::new();
        let mut name = String::new();
        let mut hex_value = String::new();
        for line in block.lines().filter(|l| !l.starts_with('#')) {
            if line.starts_with(' ') {
                hex_value.push_str(line.trim());
                continue;
            }
            if !name.is_empty() {
                fields.insert(std::mem::take(&mut name), hex::decode(&hex_value).unwrap());
            }
            let mut parts = line.split_whitespace();
            name = parts.next().unwrap_or_default().to_string();
            hex_value = parts.next().unwrap_or_default().to_string();
        }
        if !name.is_empty() {
            fields.insert(name, hex::decode(&hex_value).unwrap());
        }
        if fields.contains_key("ss") {
            vectors.push(fields);
        }
    }
    vectors
}

#[test]
fn xwing_matches_the_draft_vectors() {
    let vectors = xwing_vectors();
    assert_eq!(vectors.len(), 2);
    for v in vectors {
        let kem = HybridKem::XWing;
        let pair = kem.key_pair_from_private(&v["sk"]).unwrap();
        assert_eq!(pair.public, v["pk"], "public key derived from the seed");
        let enc = kem.encapsulate_derandomized(&v["pk"], &v["eseed"]).unwrap();
        assert_eq!(enc.ciphertext, v["ct"]);
        assert_eq!(*enc.secret, v["ss"]);
        assert_eq!(*kem.decapsulate(&v["sk"], &v["ct"]).unwrap(), v["ss"]);
    }
}

/// The composite combiner's known answers: the first two are the ones OpenTDF's
/// `lib/ocrypto/hybrid_conformance_test.go` pins, the last two the lamps-wg draft's own
/// examples (`src/kemCombiner_*_SHA3_256.md`).
#[test]
fn composite_combiner_matches_known_answers() {
    #[rustfmt::skip]
    let cases = [
        (HybridKem::P256MlKem768,
         "ca48920ded22e063f98a79a4091508678b7042cab63f78c571ff392e82612d43",
         "ef1c92443aaf987000e3470d34332b4c53ff0cdd4554b6bf377bf7bdb677d3d0",
         "041d155f6d3078d7e2cd4f9f758947029795dd9ab6d6e92d81d19171270cdefcd4abb682edbb22faf961ce75fc688109931bfa24468f646b97eca4d57d5f5e7610",
         "04ba2bfbf7b91182eb1fad54a2940c8b1dfd53de55fa3c02d199a3159ff73d38d29aa94f32e3e82bcc99b165320297149455997d7c3ea5ac97cd987d3e80396a3e",
         "d6c69aa6e986b620a2777d8cf1fb6be1b2255d6efae0566deb34c882b38846ee"),
        (HybridKem::P384MlKem1024,
         "c0f87f0c53fa8e2ba192a494694d37d1e3cf99c65e0dc5f69b2cc044b3fb205d",
         "4d52b7ef430382f479603207c0b8f7aa5bc35d8758835007e39a2642ad65e635d674db7a5513889657fb24e4e228a098",
         "0401a5b81dcb51290a0eb142b9032d5a37503164b7a20ac0e3b52dc54f9b0b7c9fdd2699a59563a0b9ad0e54478846faeab72b92275e1fbb8b963bcc6e80e30c089fbe4ed8d47ec76951db94aede46e679d5692eeb1d1b150d5b2e6660dc67c469",
         "0468cc4acc5dd85edbcbf25bae7ee7dcacec2968ea7ee57fc91311cb9c47d4a24c3854e5ce3e5d0b309fda493224520f2870496eb16571108b3deafd72c1df17edc302fbb8b60bae44d93177e6df5278e4667a090a2d59a2076f41d693975e8d19",
         "eb60f6c80a309ad4158d7b02f2cf8c947faead96ebbd85c3f62a94868ffddca4"),
        (HybridKem::P256MlKem768,
         "c9f935a9d9d439a532788f3cbf4eb2d995753bf8df5d4d33ce9ca4d740d382f0",
         "89a7f9557bde55ff147e6956c898e32624c2fb00b06c9492407ce29c67a8aea6",
         "046f59fa2cfde7eb4eaeebbee12b8491454cce47e17ecf178211d811d3a14a7f5f00d453cf2b0b74e7e282956e584fb83cbc2fe30f27f9e28f805405b94d380b71",
         "0435f7c0fd160488c9a356042ffee14c291fd6f7e12c0a52ffa2a59afc08cc09bbadbbcfceba7a16058484ff9495e10e0062beac8168e4ba3f841fd4a92451bf0a",
         "58a35588f5fe415b5006f92e6dbc3fda78a430aef2d0060dad320105ed578d97"),
        (HybridKem::P384MlKem1024,
         "53a864f7d27aa346047e0ea857fc005a9a15ccada937ba210cefd7e74882ad4c",
         "99dc51915ec4bd72c87c1fb4b6c37e79b54b17170ee4986813c03087050c21f2f642ba3c6f7e8069693712c53fe97bc3",
         "043a0b3d961cb373c3d8b39243b8744314cd7327c5feb7d75d7fb5c3ac37b579f0f8d67f80e9ec51e84f4857be3c4c5b8597599f5787461e46adbe65e28130167f87bf77a45aede7fc0710169ed286953a0a085ea42f4d396ac8608c6d7a5d88b6",
         "048788dbca1a6418e9445d86e6b28d4be4e756ea129e31fdd6579b737928c746d216136b2626cf62c5381c9a31288ee5830d9c3191809d9cb9bae348406e19e645310df52f0458d540acbcfd83a0941fdf8c62802e4f15c920e66c7b1c74c412b5",
         "face3edf032351a2451e182b22ffed7a33ca8eebcf31dcbf7579e6bbedc44203"),
    ];
    for (kem, ss_m, ss_t, ct_t, pk_t, expected) in cases {
        let h = |s: &str| hex::decode(s).unwrap();
        let got = kem.combine(&h(ss_m), &h(ss_t), &h(ct_t), &h(pk_t)).unwrap();
        assert_eq!(*got, h(expected), "{kem:?}");
    }
}

/// OpenTDF's sizes (`lib/ocrypto/hybrid_nist.go`, `xwing.go`).
#[test]
fn sizes_are_opentdfs() {
    assert_eq!(HybridKem::XWing.public_key_len(), 1216);
    assert_eq!(HybridKem::XWing.ciphertext_len(), 1120);
    assert_eq!(HybridKem::P256MlKem768.public_key_len(), 1249);
    assert_eq!(HybridKem::P256MlKem768.ciphertext_len(), 1153);
    assert_eq!(HybridKem::P384MlKem1024.public_key_len(), 1665);
    assert_eq!(HybridKem::P384MlKem1024.ciphertext_len(), 1665);
}

#[test]
fn generated_keys_round_trip_in_opentdfs_layout() {
    for kem in ALL {
        let pair = kem.generate().unwrap();
        assert_eq!(pair.public.len(), kem.public_key_len());
        kem.check_public_key(&pair.public).unwrap();
        assert_eq!(
            kem.key_pair_from_private(&pair.private).unwrap().public,
            pair.public
        );
        let enc = kem.encapsulate(&pair.public).unwrap();
        assert_eq!(enc.ciphertext.len(), kem.ciphertext_len());
        assert_eq!(enc.secret.len(), SHARED_SECRET_LEN);
        let ss = kem.decapsulate(&pair.private, &enc.ciphertext).unwrap();
        assert_eq!(ss, enc.secret, "{kem:?}");
        if let Some(curve) = kem.curve() {
            // ML-KEM seed, then an ECPrivateKey on the right curve; the public key and the
            // ciphertext end with uncompressed points.
            let ec = EcKey::private_key_from_der(&pair.private[MLKEM_SEED_LEN..]).unwrap();
            assert_eq!(ec.group().curve_name(), Some(curve.nid));
            let point = &pair.public[kem.ml_kem().public_len..];
            assert_eq!(point, uncompressed(curve, ec.public_key()).unwrap());
            assert_eq!(enc.ciphertext[kem.ml_kem().ciphertext_len], 0x04);
        } else {
            assert_eq!(pair.private.len(), 32);
        }
    }
}

#[test]
fn wrong_lengths_are_refused() {
    for kem in ALL {
        let pair = kem.generate().unwrap();
        let ct = kem.encapsulate(&pair.public).unwrap().ciphertext;
        for bad in [
            &ct[..ct.len() - 1],
            &[ct.as_slice(), &[0]].concat()[..],
            &[],
        ] {
            let err = kem.decapsulate(&pair.private, bad).unwrap_err();
            assert_eq!(err.rv(), Rv::WRAPPED_KEY_LEN_RANGE, "{kem:?}");
        }
        let short = &pair.public[..pair.public.len() - 1];
        assert_eq!(
            kem.encapsulate(short).unwrap_err().rv(),
            Rv::ATTRIBUTE_VALUE_INVALID
        );
        assert_eq!(
            kem.key_pair_from_private(&pair.private[..pair.private.len() - 1])
                .unwrap_err()
                .rv(),
            Rv::ATTRIBUTE_VALUE_INVALID
        );
    }
}

#[test]
fn another_keys_ciphertext_gives_an_unrelated_secret() {
    for kem in ALL {
        let (a, b) = (kem.generate().unwrap(), kem.generate().unwrap());
        let enc = kem.encapsulate(&a.public).unwrap();
        let wrong = kem.decapsulate(&b.private, &enc.ciphertext).unwrap();
        assert_ne!(wrong, enc.secret, "{kem:?}");
        // One flipped bit in the ML-KEM part: implicit rejection, a different secret.
        let mut tampered = enc.ciphertext.clone();
        tampered[0] ^= 1;
        let other = kem.decapsulate(&a.private, &tampered).unwrap();
        assert_ne!(other, enc.secret, "{kem:?}");
    }
}

#[test]
fn an_ephemeral_point_off_the_curve_is_refused() {
    for kem in [HybridKem::P256MlKem768, HybridKem::P384MlKem1024] {
        let pair = kem.generate().unwrap();
        let mut ct = kem.encapsulate(&pair.public).unwrap().ciphertext;
        let last = ct.len() - 1;
        ct[last] ^= 1;
        let err = kem.decapsulate(&pair.private, &ct).unwrap_err();
        assert_eq!(err.rv(), Rv::WRAPPED_KEY_INVALID, "{kem:?}");
    }
}

/// draft-connolly-cfrg-xwing-kem-10, Appendix D: the PKCS#8 and SPKI encodings of the key pair
/// whose private key is 00 01 … 1f (`tests/data/hybrid/xwing_draft10_x509.pem`).
#[test]
fn xwing_envelopes_match_the_draft_example() {
    let text = include_str!("../../../tests/data/hybrid/xwing_draft10_x509.pem");
    let blocks = pem_blocks(text);
    let (pkcs8, spki) = (blocks[0].clone(), blocks[1].clone());
    let seed: Vec<u8> = (0u8..32).collect();
    let (kem, private) = HybridKem::private_from_pkcs8_der(&pkcs8).unwrap();
    assert_eq!((kem, private.to_vec()), (HybridKem::XWing, seed.clone()));
    assert_eq!(*kem.private_to_pkcs8_der(&seed), pkcs8);
    let public = kem.key_pair_from_private(&seed).unwrap().public;
    assert_eq!(kem.public_to_spki_der(&public), spki);
    assert_eq!(
        HybridKem::public_from_spki_der(&spki).unwrap(),
        (HybridKem::XWing, public)
    );
}

#[test]
fn envelopes_round_trip_and_name_their_kem() {
    for kem in ALL {
        let pair = kem.generate().unwrap();
        let spki = kem.public_to_spki_der(&pair.public);
        assert_eq!(
            HybridKem::public_from_spki_der(&spki).unwrap(),
            (kem, pair.public.clone())
        );
        let pkcs8 = kem.private_to_pkcs8_der(&pair.private);
        let (back, private) = HybridKem::private_from_pkcs8_der(&pkcs8).unwrap();
        assert_eq!((back, &private), (kem, &pair.private));
        // An RSA or EC SubjectPublicKeyInfo is not a hybrid one.
        let ec = crate::crypto::test_keys::ec(crate::crypto::test_keys::P256);
        let other = ec.public_key().unwrap().to_spki_der().unwrap();
        assert!(HybridKem::public_from_spki_der(&other).is_none());
        assert!(HybridKem::private_from_pkcs8_der(&ec.to_pkcs8_der().unwrap()).is_none());
    }
}

/// The DER of every PEM block of `text`, in order.
fn pem_blocks(text: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let mut blocks = Vec::new();
    let mut body: Option<String> = None;
    for line in text.lines() {
        if line.starts_with("-----BEGIN ") {
            body = Some(String::new());
        } else if line.starts_with("-----END ") {
            let b64 = body.take().unwrap();
            blocks.push(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            );
        } else if let Some(b) = body.as_mut() {
            b.push_str(line.trim());
        }
    }
    blocks
}

/// Key pairs OpenTDF's `lib/ocrypto` wrote (`tests/data/hybrid/opentdf_keys.pem`): sqlhsm
/// reads the private keys, derives from them exactly the public keys OpenTDF published, writes
/// both envelopes back byte for byte, and encapsulates to OpenTDF's public keys so that their
/// private keys decapsulate.
#[test]
fn opentdfs_own_key_pairs_read_and_write_back_unchanged() {
    let blocks = pem_blocks(include_str!("../../../tests/data/hybrid/opentdf_keys.pem"));
    let expected = [HybridKem::P256MlKem768, HybridKem::P384MlKem1024];
    assert_eq!(blocks.len(), 4);
    for (pair, want) in blocks.chunks(2).zip(expected) {
        let (spki, pkcs8) = (&pair[0], &pair[1]);
        let (kem, public) = HybridKem::public_from_spki_der(spki).unwrap();
        let (kem2, private) = HybridKem::private_from_pkcs8_der(pkcs8).unwrap();
        assert_eq!((kem, kem2), (want, want));
        assert_eq!(kem.key_pair_from_private(&private).unwrap().public, public);
        assert_eq!(kem.public_to_spki_der(&public), *spki);
        assert_eq!(*kem.private_to_pkcs8_der(&private), *pkcs8);
        // The ECPrivateKey OpenSSL writes for generated keys is the one OpenTDF writes.
        let ec_der = &private[MLKEM_SEED_LEN..];
        let ec = EcKey::private_key_from_der(ec_der).unwrap();
        assert_eq!(ec.private_key_to_der().unwrap(), ec_der);
        let enc = kem.encapsulate(&public).unwrap();
        assert_eq!(
            kem.decapsulate(&private, &enc.ciphertext).unwrap(),
            enc.secret
        );
    }
}

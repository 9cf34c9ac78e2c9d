//! SHA-3 (digests, HMAC, RSA PKCS#1 v1.5 and PSS, ECDSA) and the PKCS#11 3.0 HMAC key types
//! (`CKK_SHA_1_HMAC` … `CKK_SHA3_512_HMAC`, made by `CKM_SHA*_KEY_GEN`) through the C ABI.
//! cryptoki 0.12 names neither the SHA-3 mechanisms nor three of the HMAC key types correctly
//! (it sends `CKK_SHA224/384/512_HMAC` as `CKK_SHA256_HMAC`), so these calls go through the raw
//! function list. The Wycheproof files for these mechanisms are in `tests/wycheproof.rs`.

mod common;

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::PKey;
use openssl::sign::Signer;

use common::*;

fn session(label: &str) -> Session {
    let p = ctx();
    let slot = new_token(p, label);
    user_session(p, slot)
}

fn rv_of<T: std::fmt::Debug>(r: cryptoki::error::Result<T>) -> RvError {
    match r {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

/// Each SHA-3 digest mechanism, its OpenSSL digest, and its `CKM_SHA3_*_HMAC`.
fn sha3() -> [(CK_MECHANISM_TYPE, MessageDigest, CK_MECHANISM_TYPE); 4] {
    [
        (CKM_SHA3_224, MessageDigest::sha3_224(), CKM_SHA3_224_HMAC),
        (CKM_SHA3_256, MessageDigest::sha3_256(), CKM_SHA3_256_HMAC),
        (CKM_SHA3_384, MessageDigest::sha3_384(), CKM_SHA3_384_HMAC),
        (CKM_SHA3_512, MessageDigest::sha3_512(), CKM_SHA3_512_HMAC),
    ]
}

#[test]
fn sha3_digests_single_multipart_and_digest_key() {
    let s = session("sha3-digest");
    // FIPS 202 examples: SHA3-*("abc").
    let abc = [
        "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf",
        "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532",
        "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25",
        "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
    ];
    let value = b"a secret key's value".to_vec();
    let key = session_secret(&s, KeyType::GENERIC_SECRET, &value, &[]);
    let data = b"The quick brown fox jumps over the lazy dog".to_vec();
    for ((mech, md, _), expected) in sha3().into_iter().zip(abc) {
        let single = raw_digest(&s, mech, b"abc", None, None).unwrap();
        assert_eq!(hex::encode(&single), expected, "0x{mech:x}");
        let multi = raw_digest(&s, mech, &data, Some(7), None).unwrap();
        assert_eq!(multi, hash(md, &data).unwrap().to_vec(), "0x{mech:x}");
        // C_DigestKey feeds the key's value after the data.
        let keyed = raw_digest(&s, mech, &data, Some(10), Some(key)).unwrap();
        let mut both = data.clone();
        both.extend_from_slice(&value);
        assert_eq!(keyed, hash(md, &both).unwrap().to_vec(), "0x{mech:x}");
    }
    let slot = s.get_session_info().unwrap().slot_id();
    let listed = mechanism_list(slot);
    for (mech, _, hmac) in sha3() {
        assert!(listed.contains(&mech), "0x{mech:x} listed");
        assert!(listed.contains(&hmac), "0x{hmac:x} listed");
    }
}

/// `C_GetMechanismList` through the raw function list (cryptoki drops numbers it cannot name).
fn mechanism_list(slot: cryptoki::slot::Slot) -> Vec<CK_MECHANISM_TYPE> {
    let mut n: CK_ULONG = 0;
    // SAFETY: NULL output asks for the count.
    let rv = unsafe { raw().C_GetMechanismList(slot.id(), std::ptr::null_mut(), &mut n) };
    assert_eq!(rv, CKR_OK);
    let mut list = vec![0; n as usize];
    // SAFETY: `list` has room for `n` entries.
    let rv = unsafe { raw().C_GetMechanismList(slot.id(), list.as_mut_ptr(), &mut n) };
    assert_eq!(rv, CKR_OK);
    list.truncate(n as usize);
    list
}

#[test]
fn sha3_hmac_known_answers_general_and_multipart() {
    let s = session("sha3-hmac");
    let key = session_secret(
        &s,
        KeyType::GENERIC_SECRET,
        b"Jefe",
        &[Attribute::Sign(true), Attribute::Verify(true)],
    );
    let msg = b"what do ya want for nothing?";
    for (_, md, mech) in sha3() {
        let pkey = PKey::hmac(b"Jefe").unwrap();
        let mut signer = Signer::new(md, &pkey).unwrap();
        let expected = signer.sign_oneshot_to_vec(msg).unwrap();
        let tag = raw_sign(&s, mech, None, key, msg, None).unwrap();
        assert_eq!(tag, expected, "0x{mech:x}");
        assert_eq!(raw_sign(&s, mech, None, key, msg, Some(5)).unwrap(), tag);
        raw_verify(&s, mech, None, key, msg, &tag, Some(3)).unwrap();
        let mut bad = tag.clone();
        bad[0] ^= 1;
        assert_eq!(
            rv_of(raw_verify(&s, mech, None, key, msg, &bad, None)),
            RvError::SignatureInvalid
        );
        // `_GENERAL` (the next number) truncates to CK_MAC_GENERAL_PARAMS.
        let mut len = 10u64.to_ne_bytes();
        let short = raw_sign(&s, mech + 1, Some(&mut len), key, msg, None).unwrap();
        assert_eq!(short, tag[..10]);
    }
}

#[test]
fn sha3_rsa_and_ecdsa_sign_and_verify() {
    let s = session("sha3-sign");
    let (rsa_public, rsa_private) = gen_rsa(&s, 2048, "sha3-rsa", b"r");
    let (ec_public, ec_private) = gen_ec(&s, P256, "sha3-ec", b"e");
    let data = b"signed with SHA-3".to_vec();
    let pss = |hash: CK_MECHANISM_TYPE, mgf: CK_ULONG, salt: CK_ULONG| {
        let mut bytes = Vec::new();
        for v in [hash, mgf, salt] {
            bytes.extend_from_slice(&v.to_ne_bytes());
        }
        bytes
    };
    let cases = [
        (
            CKM_SHA3_224_RSA_PKCS,
            CKM_SHA3_224_RSA_PKCS_PSS,
            CKM_SHA3_224,
            CKG_MGF1_SHA3_224,
            28,
        ),
        (
            CKM_SHA3_256_RSA_PKCS,
            CKM_SHA3_256_RSA_PKCS_PSS,
            CKM_SHA3_256,
            CKG_MGF1_SHA3_256,
            32,
        ),
        (
            CKM_SHA3_384_RSA_PKCS,
            CKM_SHA3_384_RSA_PKCS_PSS,
            CKM_SHA3_384,
            CKG_MGF1_SHA3_384,
            48,
        ),
        (
            CKM_SHA3_512_RSA_PKCS,
            CKM_SHA3_512_RSA_PKCS_PSS,
            CKM_SHA3_512,
            CKG_MGF1_SHA3_512,
            64,
        ),
    ];
    for (pkcs1, pss_mech, hash_mech, mgf, len) in cases {
        let sig = raw_sign(&s, pkcs1, None, rsa_private, &data, None).unwrap();
        assert_eq!(sig.len(), 256);
        raw_verify(&s, pkcs1, None, rsa_public, &data, &sig, Some(4)).unwrap();
        assert_eq!(
            raw_sign(&s, pkcs1, None, rsa_private, &data, Some(3)).unwrap(),
            sig
        );
        assert_eq!(
            rv_of(raw_verify(
                &s, pkcs1, None, rsa_public, b"other", &sig, None
            )),
            RvError::SignatureInvalid
        );
        let mut p = pss(hash_mech, mgf, len);
        let sig = raw_sign(&s, pss_mech, Some(&mut p), rsa_private, &data, Some(5)).unwrap();
        raw_verify(&s, pss_mech, Some(&mut p), rsa_public, &data, &sig, None).unwrap();
        // Plain CKM_RSA_PKCS_PSS over a SHA-3 digest, with SHA-3 named in the parameters.
        let md = match hash_mech {
            CKM_SHA3_224 => MessageDigest::sha3_224(),
            CKM_SHA3_256 => MessageDigest::sha3_256(),
            CKM_SHA3_384 => MessageDigest::sha3_384(),
            _ => MessageDigest::sha3_512(),
        };
        let digest = hash(md, &data).unwrap().to_vec();
        raw_verify(
            &s,
            CKM_RSA_PKCS_PSS,
            Some(&mut p),
            rsa_public,
            &digest,
            &sig,
            None,
        )
        .unwrap();
        // The parameters' hash must be the mechanism's.
        let mut wrong = pss(CKM_SHA256, CKG_MGF1_SHA256, 32);
        assert_eq!(
            rv_of(raw_sign(
                &s,
                pss_mech,
                Some(&mut wrong),
                rsa_private,
                &data,
                None
            )),
            RvError::MechanismParamInvalid
        );
    }
    for mech in [
        CKM_ECDSA_SHA3_224,
        CKM_ECDSA_SHA3_256,
        CKM_ECDSA_SHA3_384,
        CKM_ECDSA_SHA3_512,
    ] {
        let sig = raw_sign(&s, mech, None, ec_private, &data, Some(6)).unwrap();
        assert_eq!(sig.len(), 64, "raw r‖s");
        raw_verify(&s, mech, None, ec_public, &data, &sig, None).unwrap();
        // The signature is ECDSA over the SHA-3 digest: CKM_ECDSA verifies it over that digest.
        let md = match mech {
            CKM_ECDSA_SHA3_224 => MessageDigest::sha3_224(),
            CKM_ECDSA_SHA3_256 => MessageDigest::sha3_256(),
            CKM_ECDSA_SHA3_384 => MessageDigest::sha3_384(),
            _ => MessageDigest::sha3_512(),
        };
        let digest = hash(md, &data).unwrap().to_vec();
        s.verify(&Mechanism::Ecdsa, ec_public, &digest, &sig)
            .unwrap();
        assert_eq!(
            rv_of(raw_verify(&s, mech, None, ec_public, b"other", &sig, None)),
            RvError::SignatureInvalid
        );
    }
}

/// Each HMAC key type, its generation mechanism, and the HMAC mechanism it is for.
const HMAC_KEYS: [(CK_KEY_TYPE, CK_MECHANISM_TYPE, CK_MECHANISM_TYPE); 9] = [
    (CKK_SHA_1_HMAC, CKM_SHA_1_KEY_GEN, CKM_SHA_1_HMAC),
    (CKK_SHA224_HMAC, CKM_SHA224_KEY_GEN, CKM_SHA224_HMAC),
    (CKK_SHA256_HMAC, CKM_SHA256_KEY_GEN, CKM_SHA256_HMAC),
    (CKK_SHA384_HMAC, CKM_SHA384_KEY_GEN, CKM_SHA384_HMAC),
    (CKK_SHA512_HMAC, CKM_SHA512_KEY_GEN, CKM_SHA512_HMAC),
    (CKK_SHA3_224_HMAC, CKM_SHA3_224_KEY_GEN, CKM_SHA3_224_HMAC),
    (CKK_SHA3_256_HMAC, CKM_SHA3_256_KEY_GEN, CKM_SHA3_256_HMAC),
    (CKK_SHA3_384_HMAC, CKM_SHA3_384_KEY_GEN, CKM_SHA3_384_HMAC),
    (CKK_SHA3_512_HMAC, CKM_SHA3_512_KEY_GEN, CKM_SHA3_512_HMAC),
];

fn secret_template(key_type: Option<CK_KEY_TYPE>, token: bool) -> Vec<RawAttr> {
    let mut t = vec![
        raw_ulong(CKA_CLASS, CKO_SECRET_KEY),
        raw_bool(CKA_TOKEN, token),
        raw_bool(CKA_SIGN, true),
        raw_bool(CKA_VERIFY, true),
        raw_bool(CKA_SENSITIVE, false),
        raw_bool(CKA_EXTRACTABLE, true),
    ];
    if let Some(kt) = key_type {
        t.push(raw_ulong(CKA_KEY_TYPE, kt));
    }
    t
}

#[test]
fn hmac_key_types_generate_and_sign() {
    let s = session("hmac-keygen");
    let slot = s.get_session_info().unwrap().slot_id();
    let listed = mechanism_list(slot);
    let msg = b"an HMAC key type round trip";
    for (key_type, key_gen, hmac) in HMAC_KEYS {
        assert!(listed.contains(&key_gen), "0x{key_gen:x} listed");
        for token in [false, true] {
            let mut t = secret_template(None, token);
            t.push(raw_ulong(CKA_VALUE_LEN, 32));
            let key = raw_generate_key(&s, key_gen, t).unwrap();
            assert_eq!(raw_get_ulong(&s, key, CKA_KEY_TYPE).unwrap(), key_type);
            assert_eq!(raw_get_ulong(&s, key, CKA_VALUE_LEN).unwrap(), 32);
            assert_eq!(
                raw_get_ulong(&s, key, CKA_KEY_GEN_MECHANISM).unwrap(),
                key_gen
            );
            let tag = raw_sign(&s, hmac, None, key, msg, None).unwrap();
            raw_verify(&s, hmac, None, key, msg, &tag, Some(4)).unwrap();
            // The same value as a generic secret gives the same tag.
            let value = s
                .get_attributes(key, &[cryptoki::object::AttributeType::Value])
                .unwrap();
            let [Attribute::Value(value)] = value.as_slice() else {
                panic!("CKA_VALUE")
            };
            let generic =
                session_secret(&s, KeyType::GENERIC_SECRET, value, &[Attribute::Sign(true)]);
            assert_eq!(raw_sign(&s, hmac, None, generic, msg, None).unwrap(), tag);
            // `_GENERAL` takes the key type too.
            let mut len = 8u64.to_ne_bytes();
            let short = raw_sign(&s, hmac + 1, Some(&mut len), key, msg, None).unwrap();
            assert_eq!(short, tag[..8]);
        }
        // A CKA_KEY_TYPE in the template must agree with the mechanism.
        let mut t = secret_template(Some(CKK_GENERIC_SECRET), false);
        t.push(raw_ulong(CKA_VALUE_LEN, 16));
        assert_eq!(
            rv_of(raw_generate_key(&s, key_gen, t)),
            RvError::TemplateInconsistent
        );
        // CKA_VALUE_LEN is required, and 0 is out of range.
        assert_eq!(
            rv_of(raw_generate_key(&s, key_gen, secret_template(None, false))),
            RvError::TemplateIncomplete
        );
        let mut t = secret_template(None, false);
        t.push(raw_ulong(CKA_VALUE_LEN, 0));
        assert_eq!(
            rv_of(raw_generate_key(&s, key_gen, t)),
            RvError::KeySizeRange
        );
    }
}

#[test]
fn hmac_key_types_import_and_wrong_types_are_inconsistent() {
    let s = session("hmac-keytypes");
    let msg = b"imported HMAC keys";
    let value = b"0123456789abcdef0123456789abcdef".to_vec();
    let generic = session_secret(
        &s,
        KeyType::GENERIC_SECRET,
        &value,
        &[Attribute::Sign(true), Attribute::Verify(true)],
    );
    let aes = session_secret(&s, KeyType::AES, &value, &[Attribute::Sign(true)]);
    let mut imported: Vec<(CK_KEY_TYPE, ObjectHandle)> = Vec::new();
    for (key_type, _, hmac) in HMAC_KEYS {
        let mut t = secret_template(Some(key_type), false);
        t.push((CKA_VALUE, value.clone()));
        let key = raw_create_object(&s, t).unwrap();
        assert_eq!(raw_get_ulong(&s, key, CKA_KEY_TYPE).unwrap(), key_type);
        assert_eq!(raw_get_ulong(&s, key, CKA_VALUE_LEN).unwrap(), 32);
        let tag = raw_sign(&s, hmac, None, key, msg, None).unwrap();
        assert_eq!(raw_sign(&s, hmac, None, generic, msg, None).unwrap(), tag);
        // An AES key is the wrong type for HMAC.
        assert_eq!(
            rv_of(raw_sign(&s, hmac, None, aes, msg, None)),
            RvError::KeyTypeInconsistent
        );
        // An empty value is no key.
        let mut t = secret_template(Some(key_type), false);
        t.push((CKA_VALUE, Vec::new()));
        assert_eq!(
            rv_of(raw_create_object(&s, t)),
            RvError::AttributeValueInvalid
        );
        imported.push((key_type, key));
    }
    // A key of one HMAC key type is the wrong type for another hash's HMAC mechanisms (and for
    // AES-CMAC), full length and `_GENERAL`.
    for (key_type, key) in &imported {
        for (other_type, _, hmac) in HMAC_KEYS {
            if other_type == *key_type {
                continue;
            }
            assert_eq!(
                rv_of(raw_sign(&s, hmac, None, *key, msg, None)),
                RvError::KeyTypeInconsistent,
                "key type 0x{key_type:x} with 0x{hmac:x}"
            );
            let mut len = 8u64.to_ne_bytes();
            assert_eq!(
                rv_of(raw_sign(&s, hmac + 1, Some(&mut len), *key, msg, None)),
                RvError::KeyTypeInconsistent
            );
        }
        assert_eq!(
            rv_of(raw_sign(&s, CKM_AES_CMAC, None, *key, msg, None)),
            RvError::KeyTypeInconsistent
        );
    }
}

#[test]
fn hmac_key_types_wrap_and_unwrap_as_secret_keys() {
    let s = session("hmac-wrap");
    let kek = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
            ],
        )
        .unwrap();
    let msg = b"wrapped HMAC key";
    for (key_type, key_gen, hmac) in HMAC_KEYS {
        let mut t = secret_template(None, false);
        t.push(raw_ulong(CKA_VALUE_LEN, 48));
        let key = raw_generate_key(&s, key_gen, t).unwrap();
        let tag = raw_sign(&s, hmac, None, key, msg, None).unwrap();
        let (_, wrapped) = raw_wrap_key(&s, common::CKM_AES_KEY_WRAP_KWP, kek, key).unwrap();
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Token(false),
            Attribute::Sign(true),
        ];
        // The key type goes in as raw bytes: cryptoki would send CKK_SHA256_HMAC for three.
        let mut raw_t: Vec<CK_ATTRIBUTE> = raw_template(&template);
        let mut kt = key_type;
        raw_t.push(CK_ATTRIBUTE {
            type_: CKA_KEY_TYPE,
            pValue: (&mut kt as *mut CK_KEY_TYPE).cast(),
            ulValueLen: std::mem::size_of::<CK_KEY_TYPE>() as CK_ULONG,
        });
        let mut m = CK_MECHANISM {
            mechanism: common::CKM_AES_KEY_WRAP_KWP,
            pParameter: std::ptr::null_mut(),
            ulParameterLen: 0,
        };
        let mut h: CK_OBJECT_HANDLE = 0;
        let mut wrapped = wrapped;
        // SAFETY: every pointer refers to a live local of the stated length.
        let rv = unsafe {
            raw().C_UnwrapKey(
                s.handle(),
                &mut m,
                kek.handle(),
                wrapped.as_mut_ptr(),
                wrapped.len() as CK_ULONG,
                raw_t.as_mut_ptr(),
                raw_t.len() as CK_ULONG,
                &mut h,
            )
        };
        assert_eq!(rv, CKR_OK, "unwrap as 0x{key_type:x}");
        // SAFETY: a handle the module just returned.
        let unwrapped = unsafe { ObjectHandle::new_from_raw(h) };
        assert_eq!(
            raw_get_ulong(&s, unwrapped, CKA_KEY_TYPE).unwrap(),
            key_type
        );
        assert_eq!(raw_sign(&s, hmac, None, unwrapped, msg, None).unwrap(), tag);
    }
}

#[test]
fn ecdh_derives_hmac_key_types() {
    use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
    let s = session("hmac-derive");
    let pair = |label: &str| {
        let (mut public, mut private) = ec_templates(P256, label, label.as_bytes());
        public[0] = Attribute::Token(false);
        private[0] = Attribute::Token(false);
        private.push(Attribute::Derive(true));
        let (public, private) = s
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .unwrap();
        let point = get_bytes(&s, public, cryptoki::object::AttributeType::EcPoint);
        (private, unwrap_octet_string(&point))
    };
    let (a, a_point) = pair("derive-a");
    let (b, b_point) = pair("derive-b");
    let msg = b"an HMAC key agreed by ECDH";
    for (key_type, _, hmac) in HMAC_KEYS {
        let mut derived = Vec::new();
        for (base, peer) in [(a, &b_point), (b, &a_point)] {
            // The parameter (CK_ECDH1_DERIVE_PARAMS) built by cryptoki, the template by hand
            // (for the key type).
            let mechanism = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), peer));
            let mut raw_mech: CK_MECHANISM = (&mechanism).into();
            let mut template = [
                raw_ulong(CKA_CLASS, CKO_SECRET_KEY),
                raw_ulong(CKA_KEY_TYPE, key_type),
                raw_bool(CKA_TOKEN, false),
                raw_ulong(CKA_VALUE_LEN, 32),
                raw_bool(CKA_SIGN, true),
            ];
            let mut t: Vec<CK_ATTRIBUTE> = template
                .iter_mut()
                .map(|(t, v)| CK_ATTRIBUTE {
                    type_: *t,
                    pValue: v.as_mut_ptr().cast(),
                    ulValueLen: v.len() as CK_ULONG,
                })
                .collect();
            let mut h: CK_OBJECT_HANDLE = 0;
            // SAFETY: the mechanism's parameter lives in `mechanism`, the template in
            // `template`; both outlive the call.
            let rv = unsafe {
                raw().C_DeriveKey(
                    s.handle(),
                    &mut raw_mech,
                    base.handle(),
                    t.as_mut_ptr(),
                    t.len() as CK_ULONG,
                    &mut h,
                )
            };
            assert_eq!(rv, CKR_OK, "derive 0x{key_type:x}");
            // SAFETY: a handle the module just returned.
            let key = unsafe { ObjectHandle::new_from_raw(h) };
            assert_eq!(raw_get_ulong(&s, key, CKA_KEY_TYPE).unwrap(), key_type);
            derived.push(raw_sign(&s, hmac, None, key, msg, None).unwrap());
        }
        assert_eq!(derived[0], derived[1], "both sides agree on 0x{key_type:x}");
    }
}

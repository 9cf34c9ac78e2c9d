//! Tests of the registry and of every mechanism through its factories, as the core uses them:
//! here the registry, signatures, RSA and AES encryption and digests, with the helpers every
//! test file shares; one file per further family below. Cross-checks against plain OpenSSL live
//! in `crate::crypto::interop_tests`, the only place tests may name `openssl`.

mod aes_ctr;
mod ciphers;
mod derive;
mod ecdh;
mod kdf;
mod keywrap;
mod mac;
mod rsa_raw;

use std::sync::Arc;

use cryptoki_sys::*;
use serde_json::Value;
use zeroize::Zeroizing;

use super::{all, lookup, KeyMaterial};
use crate::crypto::keys::PrivateKey;
use crate::crypto::test_keys;
use crate::error::{Result, Rv};
use crate::types::MechanismParam;

pub(crate) fn private(key: Arc<PrivateKey>) -> KeyMaterial {
    KeyMaterial::Private(key)
}

pub(crate) fn public(key: &PrivateKey) -> KeyMaterial {
    KeyMaterial::Public(Arc::new(key.public_key().unwrap()))
}

pub(crate) fn secret(bytes: &[u8]) -> KeyMaterial {
    KeyMaterial::Secret(Arc::new(Zeroizing::new(bytes.to_vec())))
}

pub(crate) fn sign(
    mech: CK_MECHANISM_TYPE,
    key: &KeyMaterial,
    param: &MechanismParam,
    data: &[u8],
) -> Result<Vec<u8>> {
    let factory = lookup(mech).unwrap().sign.unwrap();
    let mut op = factory(key, param)?;
    let sig = op.sign(data)?;
    assert!(sig.len() <= op.signature_len());
    Ok(sig)
}

pub(crate) fn verify(
    mech: CK_MECHANISM_TYPE,
    key: &KeyMaterial,
    param: &MechanismParam,
    data: &[u8],
    signature: &[u8],
) -> Result<()> {
    let factory = lookup(mech).unwrap().verify.unwrap();
    factory(key, param)?.verify(data, signature)
}

pub(crate) fn encrypt(
    mech: CK_MECHANISM_TYPE,
    key: &KeyMaterial,
    param: &MechanismParam,
    data: &[u8],
) -> Result<Vec<u8>> {
    let factory = lookup(mech).unwrap().encrypt.unwrap();
    run_bounded(factory(key, param)?.as_mut(), data)
}

pub(crate) fn decrypt(
    mech: CK_MECHANISM_TYPE,
    key: &KeyMaterial,
    param: &MechanismParam,
    data: &[u8],
) -> Result<Vec<u8>> {
    let factory = lookup(mech).unwrap().decrypt.unwrap();
    run_bounded(factory(key, param)?.as_mut(), data)
}

/// A byte no output is expected to end on, to see where a call stopped writing.
const UNTOUCHED: u8 = 0xa5;

/// `op.run` into a slice of exactly the bound `output_len` gives, guard bytes after it: the
/// operation writes within the bound, and fills it when it calls the bound exact.
fn run_bounded(op: &mut dyn crate::mechanism::CipherOperation, data: &[u8]) -> Result<Vec<u8>> {
    let bound = op.output_len(data.len(), true);
    let mut out = vec![UNTOUCHED; bound + 16];
    let written = op.run(data, &mut out[..bound])?;
    assert!(written <= bound, "output_len {bound} < {written}");
    if op.exact_len() {
        assert_eq!(written, bound, "an exact bound is the length written");
    }
    assert!(out[bound..].iter().all(|&b| b == UNTOUCHED));
    out.truncate(written);
    Ok(out)
}

/// Multi-part encryption or decryption in `chunk`-sized pieces, each call given exactly the
/// bound `output_len` states for it.
pub(crate) fn cipher_chunks(
    mech: CK_MECHANISM_TYPE,
    encrypting: bool,
    key: &KeyMaterial,
    param: &MechanismParam,
    data: &[u8],
    chunk: usize,
) -> Result<Vec<u8>> {
    let entry = lookup(mech).unwrap();
    let factory = if encrypting {
        entry.encrypt
    } else {
        entry.decrypt
    }
    .unwrap();
    let mut op = factory(key, param)?;
    assert!(op.multipart());
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        let bound = op.output_len(piece.len(), false);
        let mut buffer = vec![UNTOUCHED; bound];
        let produced = op.update(piece, &mut buffer)?;
        assert!(produced <= bound, "update bound {bound} < {produced}");
        out.extend_from_slice(&buffer[..produced]);
    }
    let bound = op.output_len(0, true);
    let mut buffer = vec![UNTOUCHED; bound];
    let last = op.finish(&mut buffer)?;
    assert!(last <= bound, "finish bound {bound} < {last}");
    if op.exact_len() {
        assert_eq!(last, bound, "an exact bound is the length written");
    }
    out.extend_from_slice(&buffer[..last]);
    Ok(out)
}

pub(crate) fn rv<T>(result: Result<T>) -> Rv {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.rv(),
    }
}

fn pss(hash: CK_MECHANISM_TYPE, mgf: CK_ULONG, salt_len: CK_ULONG) -> MechanismParam {
    MechanismParam::Pss {
        hash,
        mgf,
        salt_len,
    }
}

pub(crate) const NONE: MechanismParam = MechanismParam::None;

pub(crate) const MAC_MECHANISMS: [CK_MECHANISM_TYPE; 22] = [
    CKM_SHA_1_HMAC,
    CKM_SHA_1_HMAC_GENERAL,
    CKM_SHA224_HMAC,
    CKM_SHA224_HMAC_GENERAL,
    CKM_SHA256_HMAC,
    CKM_SHA256_HMAC_GENERAL,
    CKM_SHA384_HMAC,
    CKM_SHA384_HMAC_GENERAL,
    CKM_SHA512_HMAC,
    CKM_SHA512_HMAC_GENERAL,
    CKM_SHA3_224_HMAC,
    CKM_SHA3_224_HMAC_GENERAL,
    CKM_SHA3_256_HMAC,
    CKM_SHA3_256_HMAC_GENERAL,
    CKM_SHA3_384_HMAC,
    CKM_SHA3_384_HMAC_GENERAL,
    CKM_SHA3_512_HMAC,
    CKM_SHA3_512_HMAC_GENERAL,
    CKM_AES_CMAC,
    CKM_AES_CMAC_GENERAL,
    CKM_DES3_CMAC,
    CKM_DES3_CMAC_GENERAL,
];

fn ulong(v: CK_ULONG) -> MechanismParam {
    MechanismParam::Bytes(v.to_ne_bytes().to_vec())
}

fn wycheproof(name: &str) -> Value {
    let path = format!(
        "{}/tests/data/wycheproof/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("Wycheproof file {path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn hex_field(test: &Value, field: &str) -> Vec<u8> {
    hex::decode(test[field].as_str().unwrap()).unwrap()
}

/// Every test of a Wycheproof file with its group.
fn tests_of(doc: &Value) -> Vec<(&Value, &Value)> {
    doc["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["tests"].as_array().unwrap().iter().map(move |t| (g, t)))
        .collect()
}

fn wrap(
    mech: CK_MECHANISM_TYPE,
    key: &KeyMaterial,
    p: &MechanismParam,
    d: &[u8],
) -> Result<Vec<u8>> {
    (lookup(mech).unwrap().wrap.unwrap())(key, p, d)
}

fn unwrap_key(
    mech: CK_MECHANISM_TYPE,
    key: &KeyMaterial,
    p: &MechanismParam,
    d: &[u8],
) -> Result<Vec<u8>> {
    Ok((lookup(mech).unwrap().unwrap.unwrap())(key, p, d)?.to_vec())
}

fn derive(key: &KeyMaterial, p: &MechanismParam, len: Option<usize>) -> Result<Vec<u8>> {
    Ok(derive_as(CKM_ECDH1_DERIVE, key, CKK_EC, p, len, &[], &[])?.remove(0))
}

/// Runs `mech`'s derivation as the core would: the base key and its type, the values of the
/// keys the parameter names, the additional keys' lengths; every derived value comes back.
pub(crate) fn derive_as(
    mech: CK_MECHANISM_TYPE,
    key: &KeyMaterial,
    base_type: CK_KEY_TYPE,
    param: &MechanismParam,
    len: Option<usize>,
    keys: &[&[u8]],
    additional: &[usize],
) -> Result<Vec<Vec<u8>>> {
    let keys: Vec<_> = keys.iter().map(|k| Zeroizing::new(k.to_vec())).collect();
    let input = super::DeriveInput {
        base: key,
        base_type,
        param,
        len,
        keys: &keys,
        additional,
    };
    let derived = (lookup(mech).unwrap().derive.unwrap())(&input)?;
    Ok(derived.iter().map(|v| v.to_vec()).collect())
}

// ---------------------------------------------------------------------------------------------
// Registry

/// Whether some row of the key-algorithm table is made by `mechanism`.
fn generates(mechanism: CK_MECHANISM_TYPE) -> bool {
    crate::key_algorithm::generated_by(mechanism)
        .next()
        .is_some()
}

#[test]
fn every_generation_mechanism_of_the_key_algorithm_table_is_registered() {
    for a in crate::key_algorithm::ALGORITHMS {
        if let Some(mechanism) = a.generation {
            let e = lookup(mechanism).unwrap();
            assert_ne!(
                e.info.flags & (CKF_GENERATE | CKF_GENERATE_KEY_PAIR),
                0,
                "{}",
                a.name
            );
        }
    }
}

#[test]
fn registry_sorted_unique_and_capable() {
    let entries = all();
    assert_eq!(entries.len(), 153, "one entry per mechanism");
    for pair in entries.windows(2) {
        assert!(
            pair[0].kind < pair[1].kind,
            "0x{:x} before 0x{:x}",
            pair[0].kind,
            pair[1].kind
        );
    }
    for e in entries {
        let has = |f: CK_FLAGS| e.info.flags & f != 0;
        assert!(
            e.sign.is_some()
                || e.verify.is_some()
                || e.encrypt.is_some()
                || e.decrypt.is_some()
                || e.digest.is_some()
                || generates(e.kind)
                || e.wrap.is_some()
                || e.unwrap.is_some()
                || e.derive.is_some()
                || e.kem.is_some(),
            "0x{:x} does nothing",
            e.kind
        );
        assert_eq!(has(CKF_SIGN), e.sign.is_some(), "0x{:x}", e.kind);
        assert_eq!(has(CKF_VERIFY), e.verify.is_some(), "0x{:x}", e.kind);
        assert_eq!(has(CKF_ENCRYPT), e.encrypt.is_some(), "0x{:x}", e.kind);
        assert_eq!(has(CKF_DECRYPT), e.decrypt.is_some(), "0x{:x}", e.kind);
        assert_eq!(has(CKF_DIGEST), e.digest.is_some(), "0x{:x}", e.kind);
        assert_eq!(has(CKF_WRAP), e.wrap.is_some(), "0x{:x}", e.kind);
        assert_eq!(has(CKF_UNWRAP), e.unwrap.is_some(), "0x{:x}", e.kind);
        assert_eq!(has(CKF_DERIVE), e.derive.is_some(), "0x{:x}", e.kind);
        assert_eq!(
            has(CKF_GENERATE) || has(CKF_GENERATE_KEY_PAIR),
            generates(e.kind)
        );
        assert!(e.info.ulMinKeySize <= e.info.ulMaxKeySize);
        assert!(std::ptr::eq(lookup(e.kind).unwrap(), e));
    }
    assert!(lookup(CKM_DSA).is_none());
    assert!(lookup(0xffff_ffff).is_none());
}

#[test]
fn registry_info_values() {
    let info = |m| lookup(m).unwrap().info;
    assert_eq!(
        (
            info(CKM_RSA_PKCS_KEY_PAIR_GEN).ulMinKeySize,
            info(CKM_RSA_PKCS_KEY_PAIR_GEN).ulMaxKeySize
        ),
        (1024, 16384)
    );
    assert_eq!(
        (
            info(CKM_SHA256_RSA_PKCS).ulMinKeySize,
            info(CKM_SHA256_RSA_PKCS).ulMaxKeySize
        ),
        (1024, 16384)
    );
    assert_eq!(
        (
            info(CKM_EC_KEY_PAIR_GEN).ulMinKeySize,
            info(CKM_EC_KEY_PAIR_GEN).ulMaxKeySize
        ),
        (192, 521)
    );
    for m in [CKM_ECDSA, CKM_ECDSA_SHA256] {
        assert_eq!((info(m).ulMinKeySize, info(m).ulMaxKeySize), (192, 521));
    }
    for m in [
        CKM_EC_EDWARDS_KEY_PAIR_GEN,
        CKM_EDDSA,
        CKM_EC_MONTGOMERY_KEY_PAIR_GEN,
    ] {
        assert_eq!((info(m).ulMinKeySize, info(m).ulMaxKeySize), (255, 448));
    }
    assert_ne!(
        info(CKM_EC_MONTGOMERY_KEY_PAIR_GEN).flags & CKF_GENERATE_KEY_PAIR,
        0
    );
    assert_eq!(
        (
            info(CKM_AES_KEY_GEN).ulMinKeySize,
            info(CKM_AES_KEY_GEN).ulMaxKeySize
        ),
        (16, 32)
    );
    assert_eq!(
        (
            info(CKM_AES_GCM).ulMinKeySize,
            info(CKM_AES_GCM).ulMaxKeySize
        ),
        (16, 32)
    );
    let ecdsa = info(CKM_ECDSA).flags;
    assert_eq!(
        ecdsa & (CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS),
        CKF_EC_F_P | CKF_EC_OID | CKF_EC_UNCOMPRESS
    );
    assert_ne!(info(CKM_RSA_PKCS_OAEP).flags & CKF_WRAP, 0);
    assert_ne!(info(CKM_AES_CBC_PAD).flags & CKF_UNWRAP, 0);
    assert_eq!(info(CKM_SHA256).flags, CKF_DIGEST);
}

#[test]
fn registry_info_of_new_mechanisms() {
    let info = |m| lookup(m).unwrap().info;
    for m in MAC_MECHANISMS {
        assert_eq!(
            info(m).flags,
            CKF_SIGN | CKF_VERIFY | CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY,
            "0x{m:x}"
        );
    }
    assert_eq!(
        (
            info(CKM_SHA256_HMAC).ulMinKeySize,
            info(CKM_SHA256_HMAC).ulMaxKeySize
        ),
        (1, 512)
    );
    assert_eq!(
        (
            info(CKM_AES_CMAC).ulMinKeySize,
            info(CKM_AES_CMAC).ulMaxKeySize
        ),
        (16, 32)
    );
    let wrap_flags = CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP;
    for m in [
        CKM_AES_KEY_WRAP,
        CKM_AES_KEY_WRAP_KWP,
        CKM_AES_ECB,
        CKM_AES_CBC,
        CKM_AES_CBC_PAD,
    ] {
        assert_eq!(info(m).flags, wrap_flags, "0x{m:x}");
        assert_eq!((info(m).ulMinKeySize, info(m).ulMaxKeySize), (16, 32));
    }
    assert_eq!(info(CKM_AES_CTR).flags, CKF_ENCRYPT | CKF_DECRYPT);
    assert_eq!(
        info(CKM_RSA_X_509).flags,
        CKF_SIGN
            | CKF_VERIFY
            | CKF_MESSAGE_SIGN
            | CKF_MESSAGE_VERIFY
            | CKF_SIGN_RECOVER
            | CKF_VERIFY_RECOVER
            | CKF_ENCRYPT
            | CKF_DECRYPT
    );
    assert_eq!(
        info(CKM_RSA_PKCS).flags & (CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER),
        CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER
    );
    // Only the two raw RSA mechanisms recover data, and each has both halves.
    for e in crate::mechanism::all() {
        let recovers = e.info.flags & (CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER) != 0;
        assert_eq!(recovers, [CKM_RSA_PKCS, CKM_RSA_X_509].contains(&e.kind));
        assert_eq!(e.sign_recover.is_some(), recovers, "0x{:x}", e.kind);
        assert_eq!(e.verify_recover.is_some(), recovers, "0x{:x}", e.kind);
    }
    assert_eq!(
        (
            info(CKM_RSA_X_509).ulMinKeySize,
            info(CKM_RSA_X_509).ulMaxKeySize
        ),
        (1024, 16384)
    );
    for m in [CKM_ECDH1_DERIVE, CKM_ECDH1_COFACTOR_DERIVE] {
        assert_ne!(info(m).flags & CKF_DERIVE, 0);
        assert_ne!(info(m).flags & CKF_EC_UNCOMPRESS, 0);
        assert_eq!((info(m).ulMinKeySize, info(m).ulMaxKeySize), (192, 521));
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures

/// Every sign mechanism with a key and parameter that suit it.
pub(crate) fn sign_cases() -> Vec<(CK_MECHANISM_TYPE, Arc<PrivateKey>, MechanismParam, Vec<u8>)> {
    let rsa = test_keys::rsa_2048();
    let msg = b"the quick brown fox jumps over the lazy dog".to_vec();
    let sha256_digest =
        crate::crypto::digest::digest(crate::crypto::digest::HashAlg::Sha256, &msg).unwrap();
    let mut cases = vec![
        (CKM_RSA_PKCS, rsa.clone(), NONE, sha256_digest.clone()),
        (CKM_RSA_X_509, rsa.clone(), NONE, msg.clone()),
        (
            CKM_RSA_PKCS_PSS,
            rsa.clone(),
            pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
            sha256_digest.clone(),
        ),
        (CKM_EDDSA, test_keys::ed25519(), NONE, msg.clone()),
    ];
    for (pkcs1, pss_mech, hash, mgf, len) in [
        (
            CKM_SHA1_RSA_PKCS,
            CKM_SHA1_RSA_PKCS_PSS,
            CKM_SHA_1,
            CKG_MGF1_SHA1,
            20,
        ),
        (
            CKM_SHA224_RSA_PKCS,
            CKM_SHA224_RSA_PKCS_PSS,
            CKM_SHA224,
            CKG_MGF1_SHA224,
            28,
        ),
        (
            CKM_SHA256_RSA_PKCS,
            CKM_SHA256_RSA_PKCS_PSS,
            CKM_SHA256,
            CKG_MGF1_SHA256,
            32,
        ),
        (
            CKM_SHA384_RSA_PKCS,
            CKM_SHA384_RSA_PKCS_PSS,
            CKM_SHA384,
            CKG_MGF1_SHA384,
            48,
        ),
        (
            CKM_SHA512_RSA_PKCS,
            CKM_SHA512_RSA_PKCS_PSS,
            CKM_SHA512,
            CKG_MGF1_SHA512,
            64,
        ),
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
    ] {
        cases.push((pkcs1, rsa.clone(), NONE, msg.clone()));
        cases.push((pss_mech, rsa.clone(), pss(hash, mgf, len), msg.clone()));
    }
    for curve in crate::crypto::test_keys::CURVES {
        let key = test_keys::ec(curve);
        cases.push((CKM_ECDSA, key.clone(), NONE, sha256_digest.clone()));
        for mech in [
            CKM_ECDSA_SHA1,
            CKM_ECDSA_SHA224,
            CKM_ECDSA_SHA256,
            CKM_ECDSA_SHA384,
            CKM_ECDSA_SHA512,
            CKM_ECDSA_SHA3_224,
            CKM_ECDSA_SHA3_256,
            CKM_ECDSA_SHA3_384,
            CKM_ECDSA_SHA3_512,
        ] {
            cases.push((mech, key.clone(), NONE, msg.clone()));
        }
    }
    // Post-quantum: the pure and hash-and-sign mechanisms over the message, the pre-hash ones
    // over its SHA-256 digest (named in the parameter).
    let digest_param = MechanismParam::SignContext {
        hedge: CKH_HEDGE_PREFERRED,
        context: Vec::new(),
        hash: Some(CKM_SHA256),
    };
    for (key, pure, prehash, hashed) in [
        (
            test_keys::ml_dsa_65(),
            CKM_ML_DSA,
            CKM_HASH_ML_DSA,
            CKM_HASH_ML_DSA_SHA224..=CKM_HASH_ML_DSA_SHAKE256,
        ),
        (
            test_keys::slh_dsa_shake_128f(),
            CKM_SLH_DSA,
            CKM_HASH_SLH_DSA,
            CKM_HASH_SLH_DSA_SHA224..=CKM_HASH_SLH_DSA_SHAKE256,
        ),
    ] {
        cases.push((pure, key.clone(), NONE, msg.clone()));
        cases.push((
            prehash,
            key.clone(),
            digest_param.clone(),
            sha256_digest.clone(),
        ));
        for mech in hashed {
            cases.push((mech, key.clone(), NONE, msg.clone()));
        }
    }
    cases
}

#[test]
fn every_sign_mechanism_round_trips_and_detects_tampering() {
    let cases = sign_cases();
    let mut covered: Vec<_> = cases.iter().map(|c| c.0).collect();
    covered.sort();
    covered.dedup();
    // MACs sign with secret keys and have their own tests.
    let registered: Vec<_> = all()
        .iter()
        .filter(|e| e.sign.is_some() && !MAC_MECHANISMS.contains(&e.kind))
        .map(|e| e.kind)
        .collect();
    assert_eq!(covered, registered, "every sign mechanism is tested");

    for (mech, key, param, data) in cases {
        let sig = sign(mech, &private(key.clone()), &param, &data).unwrap();
        let op = (lookup(mech).unwrap().sign.unwrap())(&private(key.clone()), &param).unwrap();
        assert_eq!(sig.len(), op.signature_len(), "0x{mech:x}");
        // Verify with the public key and with the private one.
        verify(mech, &public(&key), &param, &data, &sig).unwrap();
        verify(mech, &private(key.clone()), &param, &data, &sig).unwrap();

        let mut bad = sig.clone();
        bad[sig.len() / 2] ^= 0x01;
        assert_eq!(
            rv(verify(mech, &public(&key), &param, &data, &bad)),
            Rv::SIGNATURE_INVALID,
            "0x{mech:x}"
        );
        let mut other = data.clone();
        other[0] ^= 0x01;
        assert_eq!(
            rv(verify(mech, &public(&key), &param, &other, &sig)),
            Rv::SIGNATURE_INVALID,
            "0x{mech:x}"
        );
        assert_eq!(
            rv(verify(mech, &public(&key), &param, &data, &sig[1..])),
            Rv::SIGNATURE_LEN_RANGE,
            "0x{mech:x}"
        );

        // Secret material is the wrong kind for every asymmetric mechanism.
        assert_eq!(
            rv(sign(mech, &secret(&[0; 32]), &param, &data)),
            Rv::KEY_TYPE_INCONSISTENT
        );
        assert_eq!(
            rv(sign(mech, &public(&key), &param, &data)),
            Rv::KEY_TYPE_INCONSISTENT
        );
    }
}

#[test]
fn multipart_sign_equals_single_part() {
    for (mech, key, param, data) in sign_cases() {
        let factory = lookup(mech).unwrap().sign.unwrap();
        let mut op = factory(&private(key.clone()), &param).unwrap();
        // Pure EdDSA is multi-part by buffering; the raw mechanisms sign a caller's hash.
        let raw = matches!(
            mech,
            CKM_RSA_PKCS
                | CKM_RSA_PKCS_PSS
                | CKM_ECDSA
                | CKM_RSA_X_509
                | CKM_HASH_ML_DSA
                | CKM_HASH_SLH_DSA
        );
        assert_eq!(op.multipart(), !raw, "0x{mech:x}");
        if raw {
            continue;
        }
        for piece in data.chunks(7) {
            op.update(piece).unwrap();
        }
        let sig = op.finish().unwrap();
        verify(mech, &public(&key), &param, &data, &sig).unwrap();
        // Multi-part verification too.
        let mut v = (lookup(mech).unwrap().verify.unwrap())(&public(&key), &param).unwrap();
        for piece in data.chunks(5) {
            v.update(piece).unwrap();
        }
        v.finish(&sig).unwrap();
        if mech == CKM_SHA256_RSA_PKCS {
            // PKCS#1 v1.5 is deterministic.
            assert_eq!(sig, sign(mech, &private(key), &param, &data).unwrap());
        }
    }
}

#[test]
fn wrong_key_type_for_mechanism() {
    let ec = private(test_keys::ec(crate::crypto::test_keys::P256));
    let rsa = private(test_keys::rsa_2048());
    let ed = private(test_keys::ed25519());
    assert_eq!(
        rv(sign(CKM_SHA256_RSA_PKCS, &ec, &NONE, b"x")),
        Rv::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        rv(sign(CKM_ECDSA_SHA256, &rsa, &NONE, b"x")),
        Rv::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        rv(sign(CKM_EDDSA, &ec, &NONE, b"x")),
        Rv::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        rv(sign(CKM_ECDSA, &ed, &NONE, b"x")),
        Rv::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        rv(encrypt(CKM_RSA_PKCS, &ec, &NONE, b"x")),
        Rv::KEY_TYPE_INCONSISTENT
    );
    assert_eq!(
        rv(encrypt(CKM_AES_ECB, &rsa, &NONE, &[0; 16])),
        Rv::KEY_TYPE_INCONSISTENT
    );
}

#[test]
fn rsa_parameter_and_length_checks() {
    let key = private(test_keys::rsa_2048());
    let digest = [0u8; 32];
    // PSS: parameter required, hash must match the digest and the mechanism, salt must fit.
    assert_eq!(
        rv(sign(CKM_RSA_PKCS_PSS, &key, &NONE, &digest)),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(sign(
            CKM_RSA_PKCS_PSS,
            &key,
            &pss(CKM_SHA256, CKG_MGF1_SHA256, 32),
            &digest[..20]
        )),
        Rv::DATA_LEN_RANGE
    );
    assert_eq!(
        rv(sign(
            CKM_SHA256_RSA_PKCS_PSS,
            &key,
            &pss(CKM_SHA_1, CKG_MGF1_SHA1, 20),
            b"m"
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(sign(
            CKM_SHA256_RSA_PKCS_PSS,
            &key,
            &pss(CKM_SHA256, 0x77, 32),
            b"m"
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(sign(
            CKM_SHA256_RSA_PKCS_PSS,
            &key,
            &pss(CKM_MD5, CKG_MGF1_SHA256, 32),
            b"m"
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
    // emLen 256: salt up to 256 − 32 − 2 = 222.
    sign(
        CKM_SHA256_RSA_PKCS_PSS,
        &key,
        &pss(CKM_SHA256, CKG_MGF1_SHA256, 222),
        b"m",
    )
    .unwrap();
    sign(
        CKM_SHA256_RSA_PKCS_PSS,
        &key,
        &pss(CKM_SHA256, CKG_MGF1_SHA1, 0),
        b"m",
    )
    .unwrap();
    assert_eq!(
        rv(sign(
            CKM_SHA256_RSA_PKCS_PSS,
            &key,
            &pss(CKM_SHA256, CKG_MGF1_SHA256, 223),
            b"m"
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
    // PKCS#1 v1.5 raw: at most k − 11 bytes; no parameter allowed.
    sign(CKM_RSA_PKCS, &key, &NONE, &[1u8; 245]).unwrap();
    assert_eq!(
        rv(sign(CKM_RSA_PKCS, &key, &NONE, &[1u8; 246])),
        Rv::DATA_LEN_RANGE
    );
    assert_eq!(
        rv(sign(
            CKM_SHA256_RSA_PKCS,
            &key,
            &MechanismParam::Bytes(vec![1]),
            b"m"
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
}

#[test]
fn eddsa_parameters() {
    let eddsa = |prehash, context: &[u8]| MechanismParam::Eddsa {
        prehash,
        context: context.to_vec(),
    };
    let key = private(test_keys::ed25519());
    let pure = sign(CKM_EDDSA, &key, &NONE, b"m").unwrap();
    assert_eq!(pure.len(), 64);
    verify(CKM_EDDSA, &key, &NONE, b"m", &pure).unwrap();
    // An empty context given through the parameters asks for Ed25519ctx, not pure Ed25519; RFC
    // 8032 says its context should not be empty and OpenSSL refuses it.
    assert_eq!(
        rv(sign(CKM_EDDSA, &key, &eddsa(false, b""), b"m")),
        Rv::MECHANISM_PARAM_INVALID
    );
    // Ed25519ctx and Ed25519ph: signatures of their own, verified with the same parameter only.
    for p in [eddsa(false, b"ctx"), eddsa(true, b""), eddsa(true, b"ctx")] {
        let sig = sign(CKM_EDDSA, &key, &p, b"m").unwrap();
        assert_eq!(sig.len(), 64);
        assert_ne!(sig, pure);
        verify(CKM_EDDSA, &key, &p, b"m", &sig).unwrap();
        for other in [NONE, eddsa(false, b"cty"), eddsa(true, b"x")] {
            assert_eq!(
                rv(verify(CKM_EDDSA, &key, &other, b"m", &sig)),
                Rv::SIGNATURE_INVALID
            );
        }
    }
    // Ed448: no parameter is Ed448 with an empty context, the same as an empty one given.
    let ed448 = private(Arc::new(PrivateKey::generate_ed448().unwrap()));
    let plain = sign(CKM_EDDSA, &ed448, &NONE, b"m").unwrap();
    assert_eq!(plain.len(), 114);
    verify(CKM_EDDSA, &ed448, &eddsa(false, b""), b"m", &plain).unwrap();
    for p in [eddsa(false, b"ctx"), eddsa(true, b""), eddsa(true, b"ctx")] {
        let sig = sign(CKM_EDDSA, &ed448, &p, b"m").unwrap();
        assert_eq!(sig.len(), 114);
        verify(CKM_EDDSA, &ed448, &p, b"m", &sig).unwrap();
        assert_eq!(
            rv(verify(CKM_EDDSA, &ed448, &NONE, b"m", &sig)),
            Rv::SIGNATURE_INVALID
        );
    }
    assert_eq!(
        rv(verify(CKM_EDDSA, &ed448, &NONE, b"m", &pure)),
        Rv::SIGNATURE_LEN_RANGE
    );
    // The longest context is 255 bytes.
    sign(CKM_EDDSA, &key, &eddsa(false, &[7; 255]), b"m").unwrap();
    for k in [&key, &ed448] {
        for bad in [eddsa(false, &[7; 256]), MechanismParam::Bytes(vec![1, 2])] {
            assert_eq!(
                rv(sign(CKM_EDDSA, k, &bad, b"m")),
                Rv::MECHANISM_PARAM_INVALID
            );
        }
    }
}

#[test]
fn ecdsa_signature_is_raw_r_s() {
    for curve in crate::crypto::test_keys::CURVES {
        let key = private(test_keys::ec(curve));
        // Raw ECDSA accepts hashes of any length, longer or shorter than the order.
        for len in [1, 20, 32, 64, 100] {
            let sig = sign(CKM_ECDSA, &key, &NONE, &vec![0x5a; len]).unwrap();
            assert_eq!(sig.len(), 2 * crate::crypto::test_keys::field_bytes(curve));
            verify(CKM_ECDSA, &key, &NONE, &vec![0x5a; len], &sig).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ciphers

fn oaep(hash: CK_MECHANISM_TYPE, mgf: CK_ULONG, label: &[u8]) -> MechanismParam {
    MechanismParam::Oaep {
        hash,
        mgf,
        source_data: label.to_vec(),
    }
}

#[test]
fn rsa_encryption_round_trips() {
    let key = test_keys::rsa_2048();
    let (pr, pu) = (private(key.clone()), public(&key));
    let params = [
        (CKM_RSA_PKCS, NONE, 245),
        (
            CKM_RSA_PKCS_OAEP,
            oaep(CKM_SHA_1, CKG_MGF1_SHA1, b""),
            256 - 42,
        ),
        (
            CKM_RSA_PKCS_OAEP,
            oaep(CKM_SHA256, CKG_MGF1_SHA256, b"label"),
            256 - 66,
        ),
        (
            CKM_RSA_PKCS_OAEP,
            oaep(CKM_SHA512, CKG_MGF1_SHA1, b""),
            256 - 130,
        ),
        // The OAEP parameters may name SHA-3 (the hash codes are the PSS parameters' too).
        (
            CKM_RSA_PKCS_OAEP,
            oaep(CKM_SHA3_256, CKG_MGF1_SHA3_256, b"label"),
            256 - 66,
        ),
    ];
    for (mech, param, max) in params {
        for len in [0, 1, max] {
            let data = vec![0xa5u8; len];
            let ct = encrypt(mech, &pu, &param, &data).unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(decrypt(mech, &pr, &param, &ct).unwrap(), data);
            // Encrypting with the private key's public half works as well.
            let ct2 = encrypt(mech, &pr, &param, &data).unwrap();
            assert_eq!(decrypt(mech, &pr, &param, &ct2).unwrap(), data);
        }
        assert_eq!(
            rv(encrypt(mech, &pu, &param, &vec![0u8; max + 1])),
            Rv::DATA_LEN_RANGE
        );
        let ct = encrypt(mech, &pu, &param, b"hello").unwrap();
        assert_eq!(
            rv(decrypt(mech, &pr, &param, &ct[1..])),
            Rv::ENCRYPTED_DATA_LEN_RANGE
        );
        assert_eq!(
            rv(decrypt(mech, &pu, &param, &ct)),
            Rv::KEY_TYPE_INCONSISTENT
        );
    }
    // OAEP with the wrong label or garbage fails as invalid ciphertext.
    let ct = encrypt(
        CKM_RSA_PKCS_OAEP,
        &pu,
        &oaep(CKM_SHA256, CKG_MGF1_SHA256, b"a"),
        b"x",
    )
    .unwrap();
    assert_eq!(
        rv(decrypt(
            CKM_RSA_PKCS_OAEP,
            &pr,
            &oaep(CKM_SHA256, CKG_MGF1_SHA256, b"b"),
            &ct
        )),
        Rv::ENCRYPTED_DATA_INVALID
    );
    assert_eq!(
        rv(decrypt(
            CKM_RSA_PKCS_OAEP,
            &pr,
            &oaep(CKM_SHA256, CKG_MGF1_SHA256, b"a"),
            &[7u8; 256]
        )),
        Rv::ENCRYPTED_DATA_INVALID
    );
    assert_eq!(
        rv(encrypt(CKM_RSA_PKCS_OAEP, &pu, &NONE, b"x")),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(encrypt(
            CKM_RSA_PKCS_OAEP,
            &pu,
            &oaep(CKM_SHA256, 0x99, b""),
            b"x"
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
}

pub(crate) const IV: [u8; 16] = *b"0123456789abcdef";

pub(crate) fn gcm(iv: &[u8], aad: &[u8], tag_bits: CK_ULONG) -> MechanismParam {
    MechanismParam::Gcm {
        iv: iv.to_vec(),
        aad: aad.to_vec(),
        tag_bits,
    }
}

#[test]
fn aes_round_trips_and_multipart_matches_single_part() {
    for key_len in [16, 24, 32] {
        let key = secret(&vec![0x42u8; key_len]);
        let cases = [
            (CKM_AES_ECB, NONE, true),
            (CKM_AES_CBC, MechanismParam::Bytes(IV.to_vec()), true),
            (CKM_AES_CBC_PAD, MechanismParam::Bytes(IV.to_vec()), false),
            (CKM_AES_GCM, gcm(&IV[..12], b"aad", 128), false),
            (CKM_AES_GCM, gcm(&IV, b"", 96), false),
            (CKM_AES_GCM, gcm(&IV[..1], b"aad", 104), false),
        ];
        for (mech, param, aligned_only) in cases {
            for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 100, 160] {
                if aligned_only && len % 16 != 0 {
                    continue;
                }
                let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let ct = encrypt(mech, &key, &param, &data).unwrap();
                assert_eq!(
                    decrypt(mech, &key, &param, &ct).unwrap(),
                    data,
                    "0x{mech:x} {len}"
                );
                for chunk in [1, 5, 16, 17, 64] {
                    assert_eq!(
                        cipher_chunks(mech, true, &key, &param, &data, chunk).unwrap(),
                        ct
                    );
                    assert_eq!(
                        cipher_chunks(mech, false, &key, &param, &ct, chunk).unwrap(),
                        data
                    );
                }
            }
        }
    }
}

#[test]
fn aes_length_and_key_errors() {
    let key = secret(&[1u8; 16]);
    let iv = MechanismParam::Bytes(IV.to_vec());
    assert_eq!(
        rv(encrypt(CKM_AES_ECB, &key, &NONE, &[0; 15])),
        Rv::DATA_LEN_RANGE
    );
    assert_eq!(
        rv(encrypt(CKM_AES_CBC, &key, &iv, &[0; 17])),
        Rv::DATA_LEN_RANGE
    );
    assert_eq!(
        rv(decrypt(CKM_AES_CBC, &key, &iv, &[0; 17])),
        Rv::ENCRYPTED_DATA_LEN_RANGE
    );
    assert_eq!(
        rv(decrypt(CKM_AES_CBC_PAD, &key, &iv, &[0; 17])),
        Rv::ENCRYPTED_DATA_LEN_RANGE
    );
    assert_eq!(
        rv(decrypt(CKM_AES_CBC_PAD, &key, &iv, &[])),
        Rv::ENCRYPTED_DATA_LEN_RANGE
    );
    assert_eq!(
        rv(cipher_chunks(CKM_AES_ECB, true, &key, &NONE, &[0; 20], 7)),
        Rv::DATA_LEN_RANGE
    );
    assert_eq!(
        rv(cipher_chunks(
            CKM_AES_CBC_PAD,
            false,
            &key,
            &iv,
            &[0; 20],
            7
        )),
        Rv::ENCRYPTED_DATA_LEN_RANGE
    );
    assert_eq!(
        rv(encrypt(
            CKM_AES_CBC,
            &key,
            &MechanismParam::Bytes(vec![0; 8]),
            &[0; 16]
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(encrypt(CKM_AES_CBC, &key, &NONE, &[0; 16])),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(encrypt(CKM_AES_ECB, &secret(&[1u8; 20]), &NONE, &[0; 16])),
        Rv::KEY_SIZE_RANGE
    );
    for bad in [
        gcm(&[], b"", 128),
        gcm(&IV, b"", 64),
        gcm(&IV, b"", 100),
        gcm(&IV, b"", 136),
        NONE,
    ] {
        assert_eq!(
            rv(encrypt(CKM_AES_GCM, &key, &bad, b"x")),
            Rv::MECHANISM_PARAM_INVALID
        );
    }
}

#[test]
fn cbc_pad_bad_padding() {
    let key = secret(&[3u8; 32]);
    let iv = MechanismParam::Bytes(IV.to_vec());
    // A block whose plaintext ends in 0x00 or an inconsistent pad is refused.
    let no_pad = encrypt(CKM_AES_CBC, &key, &iv, &[0u8; 32]).unwrap();
    assert_eq!(
        rv(decrypt(CKM_AES_CBC_PAD, &key, &iv, &no_pad)),
        Rv::ENCRYPTED_DATA_INVALID
    );
    let mut block = [7u8; 16];
    block[10] = 6;
    let bad = encrypt(CKM_AES_CBC, &key, &iv, &block).unwrap();
    assert_eq!(
        rv(decrypt(CKM_AES_CBC_PAD, &key, &iv, &bad)),
        Rv::ENCRYPTED_DATA_INVALID
    );
    let mut big = [0u8; 16];
    big[15] = 17;
    let bad = encrypt(CKM_AES_CBC, &key, &iv, &big).unwrap();
    assert_eq!(
        rv(decrypt(CKM_AES_CBC_PAD, &key, &iv, &bad)),
        Rv::ENCRYPTED_DATA_INVALID
    );
    // A full block of padding is fine.
    let ok = encrypt(CKM_AES_CBC, &key, &iv, &[16u8; 16]).unwrap();
    assert_eq!(
        decrypt(CKM_AES_CBC_PAD, &key, &iv, &ok).unwrap(),
        Vec::<u8>::new()
    );
}

#[test]
fn gcm_bad_tag_releases_no_plaintext() {
    let key = secret(&[9u8; 32]);
    let param = gcm(&IV[..12], b"header", 128);
    let data = vec![0x11u8; 64];
    let ct = encrypt(CKM_AES_GCM, &key, &param, &data).unwrap();
    assert_eq!(ct.len(), 64 + 16);
    for i in [0, 40, ct.len() - 1] {
        let mut bad = ct.clone();
        bad[i] ^= 0x80;
        let mut op = (lookup(CKM_AES_GCM).unwrap().decrypt.unwrap())(&key, &param).unwrap();
        for piece in bad.chunks(10) {
            assert!(
                op.update_vec(piece).unwrap().is_empty(),
                "no plaintext before the tag"
            );
            assert_eq!(op.output_len(10, false), 0);
        }
        let mut out = vec![UNTOUCHED; op.output_len(0, true)];
        assert_eq!(rv(op.finish(&mut out)), Rv::ENCRYPTED_DATA_INVALID);
        assert!(
            out.iter().all(|&b| b == UNTOUCHED),
            "no plaintext in the buffer"
        );
    }
    assert_eq!(
        rv(decrypt(
            CKM_AES_GCM,
            &key,
            &gcm(&IV[..12], b"other", 128),
            &ct
        )),
        Rv::ENCRYPTED_DATA_INVALID
    );
    assert_eq!(
        rv(decrypt(CKM_AES_GCM, &key, &param, &ct[..15])),
        Rv::ENCRYPTED_DATA_LEN_RANGE
    );
    // Truncated tags are their own parameter.
    let short = encrypt(CKM_AES_GCM, &key, &gcm(&IV[..12], b"", 96), &data).unwrap();
    assert_eq!(short.len(), 64 + 12);
    assert_eq!(
        &short[..64],
        &ct[..64],
        "the tag length does not change the ciphertext"
    );
}

// ---------------------------------------------------------------------------------------------
// Digests

#[test]
fn digests_known_answers() {
    let cases = [
        (CKM_SHA_1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (CKM_SHA224, "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7"),
        (CKM_SHA256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            CKM_SHA384,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            CKM_SHA512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
        // FIPS 202 (NIST's SHA-3 examples, "abc").
        (CKM_SHA3_224, "e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf"),
        (CKM_SHA3_256, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"),
        (
            CKM_SHA3_384,
            "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25",
        ),
        (
            CKM_SHA3_512,
            "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
        ),
    ];
    for (mech, expected) in cases {
        let factory = lookup(mech).unwrap().digest.unwrap();
        let mut op = factory(&NONE).unwrap();
        op.update(b"a").unwrap();
        op.update(b"bc").unwrap();
        let d = op.finish().unwrap();
        assert_eq!(d.len(), op.digest_len());
        assert_eq!(hex::encode(d), expected);
        assert_eq!(
            rv(factory(&MechanismParam::Bytes(vec![1]))),
            Rv::MECHANISM_PARAM_INVALID
        );
    }
    // The empty message (FIPS 202 examples).
    let empty = [
        (CKM_SHA3_224, "6b4e03423667dbb73b6e15454f0eb1abd4597f9a1b078e3f5b5a6bc7"),
        (CKM_SHA3_256, "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"),
        (
            CKM_SHA3_384,
            "0c63a75b845e4f7d01107d852e4c2485c51a50aaaa94fc61995e71bbee983a2ac3713831264adb47fb6bd1e058d5f004",
        ),
        (
            CKM_SHA3_512,
            "a69f73cca23a9ac5c8b567dc185a756e97c982164fe25859e0d1dcc1475c80a615b2123af1f5f94c11e3e9402c3ac558f500199d95b6d3e301758586281dcd26",
        ),
    ];
    for (mech, expected) in empty {
        let mut op = (lookup(mech).unwrap().digest.unwrap())(&NONE).unwrap();
        assert_eq!(hex::encode(op.finish().unwrap()), expected);
    }
}

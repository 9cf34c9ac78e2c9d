//! `[policy] rsa_min_bits` through the C ABI: with the floor raised to 2048, RSA keys below it
//! are not generated, imported, copied or used (`CKR_KEY_SIZE_RANGE`), and
//! `C_GetMechanismInfo` says 2048. The 1024-bit key comes from another process of the same
//! store running the default policy.

mod common;

use std::sync::OnceLock;

use common::*;
use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass};

const POLICY: &str = "[policy]\nrsa_min_bits = 2048\n";

/// This process's module, under the raised floor.
fn module() -> &'static (Pkcs11, TestDb) {
    static SHARED: OnceLock<(Pkcs11, TestDb)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let db = TestDb::with_options(
            "rsa_policy",
            TestDbOptions {
                extra_toml: POLICY.into(),
                ..TestDbOptions::default()
            },
        );
        (init(&db), db)
    })
}

#[test]
fn a_raised_floor_refuses_smaller_keys() {
    if child_role().as_deref() == Some("small") {
        // The default policy: a 1024-bit key on a token of the same store.
        let p = child_init();
        let s = user_session(&p, new_token(&p, "policy-small"));
        gen_rsa(&s, 1024, "rsa-1024", b"small");
        println!("child small: ok");
        return;
    }
    if child_role().is_some() {
        return;
    }
    let (p, db) = module();
    let slot = new_token(p, "policy-here");
    for m in [
        MechanismType::RSA_PKCS_KEY_PAIR_GEN,
        MechanismType::RSA_PKCS,
        MechanismType::SHA256_RSA_PKCS_PSS,
        MechanismType::RSA_X_509,
    ] {
        let info = p.get_mechanism_info(slot, m).unwrap();
        assert_eq!(info.min_key_size(), 2048, "{m}");
    }
    // EC is not limited by it (its smallest curve is far below 2048 bits).
    let ec = p.get_mechanism_info(slot, MechanismType::ECDSA).unwrap();
    assert!(ec.min_key_size() <= 256, "{}", ec.min_key_size());
    let s = user_session(p, slot);
    let (public, private) = rsa_templates(1024, "too-small", b"ts");
    expect_rv(
        s.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private),
        RvError::KeySizeRange,
    );
    gen_rsa(&s, 2048, "big-enough", b"be");

    // A 1024-bit key made by a process with the default policy.
    let conf = std::fs::read_to_string(&db.conf)
        .unwrap()
        .replace(POLICY, "");
    let default_conf = db.dir.join("default-policy.toml");
    std::fs::write(&default_conf, conf).unwrap();
    let child = spawn_child(
        "a_raised_floor_refuses_smaller_keys",
        "small",
        db,
        &[("SQLHSM_CONF", default_conf.display().to_string())],
    );
    finish_child("small", child);
    let small = user_session(p, slot_by_label(p, "policy-small").unwrap());
    let private = find_by_label_class(&small, "rsa-1024", ObjectClass::PRIVATE_KEY)[0];
    let public = find_by_label_class(&small, "rsa-1024", ObjectClass::PUBLIC_KEY)[0];
    // Not used here...
    expect_rv(
        small.sign(&Mechanism::Sha256RsaPkcs, private, b"x"),
        RvError::KeySizeRange,
    );
    expect_rv(
        small.verify(&Mechanism::Sha256RsaPkcs, public, b"x", &[0; 128]),
        RvError::KeySizeRange,
    );
    // ...nor copied, nor imported (its public values, as C_CreateObject takes them).
    expect_rv(small.copy_object(public, &[]), RvError::KeySizeRange);
    let modulus = get_bytes(&small, public, AttributeType::Modulus);
    let exponent = get_bytes(&small, public, AttributeType::PublicExponent);
    expect_rv(
        s.create_object(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::KeyType(KeyType::RSA),
            Attribute::Token(false),
            Attribute::Modulus(modulus),
            Attribute::PublicExponent(exponent),
        ]),
        RvError::KeySizeRange,
    );
}

//! Single DES with `[policy] allow_single_des = true`: listed, generated (8 bytes, odd
//! parity), SP 800-20 known answers through ECB, and CBC / CBC_PAD round trips. Its own process
//! (and database), because the configuration is read once, at `C_Initialize`;
//! `tests/ciphers.rs` checks that it is withheld by default.

mod common;

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType};
use cryptoki_sys::{CKM_DES_ECB, CKM_DES_KEY_GEN};

use common::*;

#[test]
fn single_des_when_the_policy_allows_it() {
    let db = TestDb::with_options(
        "single_des",
        TestDbOptions {
            extra_toml: "[policy]\nallow_single_des = true\n".into(),
            ..TestDbOptions::default()
        },
    );
    let p = init(&db);
    let slot = new_token(&p, "single-des");
    let s = user_session(&p, slot);
    let list = raw_mechanism_list(slot);
    assert!(list.contains(&CKM_DES_ECB));
    assert!(list.contains(&CKM_DES_KEY_GEN));
    let info = p.get_mechanism_info(slot, MechanismType::DES_ECB).unwrap();
    assert_eq!((info.min_key_size(), info.max_key_size()), (8, 8));
    let t = [
        Attribute::Token(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ];
    let k = s.generate_key(&Mechanism::DesKeyGen, &t).unwrap();
    let value = get_bytes(&s, k, AttributeType::Value);
    assert_eq!(value.len(), 8);
    assert!(value.iter().all(|b| b.count_ones() % 2 == 1));
    for m in [Mechanism::DesCbc([1; 8]), Mechanism::DesCbcPad([2; 8])] {
        let ct = s.encrypt(&m, k, b"legacy data, 24 bytes ..").unwrap();
        assert_eq!(s.decrypt(&m, k, &ct).unwrap(), b"legacy data, 24 bytes ..");
    }
    // SP 800-20 Table A.1, first row.
    let kat = session_secret(
        &s,
        KeyType::DES,
        &[1; 8],
        &[Attribute::Encrypt(true), Attribute::Decrypt(true)],
    );
    let ct = s
        .encrypt(
            &Mechanism::DesEcb,
            kat,
            &hex::decode("8000000000000000").unwrap(),
        )
        .unwrap();
    assert_eq!(hex::encode(ct), "95f8a5e5dd31d900");
}

//! Key lifecycle through the C ABI (issue 5): each status × operation cell of the status table,
//! an expiration crossing while the process runs, rotation through PKCS#11 alone, and rotation
//! under concurrent signing (no signature with the retired key once the rotation committed).

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

const CKA_SQLHSM_EXPIRATION: u64 = 0xD351_0005;
const CKA_SQLHSM_ROTATED_FROM: u64 = 0xD351_0006;
const CKA_SQLHSM_ROTATED_TO: u64 = 0xD351_0007;

const IV: [u8; 16] = [7; 16];

fn ulong(value: u64) -> Vec<u8> {
    value.to_ne_bytes().to_vec()
}

fn set_vendor(
    s: &Session,
    key: ObjectHandle,
    kind: u64,
    value: u64,
) -> cryptoki::error::Result<()> {
    s.update_attributes(
        key,
        &[Attribute::VendorDefined((
            AttributeType::VendorDefined(kind),
            ulong(value),
        ))],
    )
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The keys one status is tried on: an EC pair (sign, verify, derive), an AES key (encrypt,
/// decrypt, wrap, unwrap) and an HMAC key (MAC generate, MAC verify).
struct Keys {
    ec_public: ObjectHandle,
    ec_private: ObjectHandle,
    aes: ObjectHandle,
    hmac: ObjectHandle,
    signature: Vec<u8>,
    ciphertext: Vec<u8>,
    mac: Vec<u8>,
    wrapped: Vec<u8>,
}

fn make_keys(s: &Session, tag: &str) -> Keys {
    let (public, mut private) = ec_templates(P256, tag, tag.as_bytes());
    private.push(Attribute::Derive(true));
    let (ec_public, ec_private) = s
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .unwrap();
    let aes = s
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Extractable(true),
                // Readable: it wraps itself, and a sensitive key wraps only under a key that
                // cannot decrypt (README, "Key-extraction attacks").
                Attribute::Sensitive(false),
                Attribute::Label(format!("{tag}-aes").into_bytes()),
            ],
        )
        .unwrap();
    let hmac = s
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Sign(true),
                Attribute::Verify(true),
                Attribute::Label(format!("{tag}-hmac").into_bytes()),
            ],
        )
        .unwrap();
    let signature = s
        .sign(&Mechanism::EcdsaSha256, ec_private, b"data")
        .unwrap();
    let ciphertext = s
        .encrypt(&Mechanism::AesCbcPad(IV), aes, b"plaintext")
        .unwrap();
    let mac = s.sign(&Mechanism::Sha256Hmac, hmac, b"data").unwrap();
    let wrapped = s.wrap_key(&Mechanism::AesKeyWrap, aes, aes).unwrap();
    Keys {
        ec_public,
        ec_private,
        aes,
        hmac,
        signature,
        ciphertext,
        mac,
        wrapped,
    }
}

/// The nine operations of the table, each run once: `Ok` when the module allowed it.
fn operations(s: &Session, k: &Keys) -> Vec<(&'static str, bool, Result<(), RvError>)> {
    let r = |result: cryptoki::error::Result<()>| result.map_err(|e| rv_of::<()>(Err(e)));
    let peer = get_bytes(s, k.ec_public, AttributeType::EcPoint);
    let derive = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &peer));
    let derived_template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::ValueLen(32.into()),
    ];
    let unwrap_template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
    ];
    vec![
        (
            "sign",
            true,
            r(s.sign(&Mechanism::EcdsaSha256, k.ec_private, b"data")
                .map(drop)),
        ),
        (
            "encrypt",
            true,
            r(s.encrypt(&Mechanism::AesCbcPad(IV), k.aes, b"data")
                .map(drop)),
        ),
        (
            "wrap",
            true,
            r(s.wrap_key(&Mechanism::AesKeyWrap, k.aes, k.aes).map(drop)),
        ),
        (
            "MAC generate",
            true,
            r(s.sign(&Mechanism::Sha256Hmac, k.hmac, b"data").map(drop)),
        ),
        (
            "verify",
            false,
            r(s.verify(&Mechanism::EcdsaSha256, k.ec_public, b"data", &k.signature)),
        ),
        (
            "decrypt",
            false,
            r(s.decrypt(&Mechanism::AesCbcPad(IV), k.aes, &k.ciphertext)
                .map(drop)),
        ),
        (
            "unwrap",
            false,
            r(
                s.unwrap_key(&Mechanism::AesKeyWrap, k.aes, &k.wrapped, &unwrap_template)
                    .map(drop),
            ),
        ),
        (
            "derive",
            false,
            r(s.derive_key(&derive, k.ec_private, &derived_template)
                .map(drop)),
        ),
        (
            "MAC verify",
            false,
            r(s.verify(&Mechanism::Sha256Hmac, k.hmac, b"data", &k.mac)),
        ),
    ]
}

#[test]
fn each_status_permits_what_the_table_says() {
    let p = ctx();
    let slot = new_token(p, "lifecycle-table");
    let s = user_session(p, slot);
    // (status name, how to reach it, protect allowed, use allowed)
    for (name, protect, read) in [
        ("active", true, true),
        ("inactive", false, true),
        ("compromised", false, false),
        ("expired", false, true),
    ] {
        let k = make_keys(&s, name);
        for key in [k.ec_private, k.aes, k.hmac] {
            match name {
                "active" => {}
                "inactive" => set_vendor(&s, key, CKA_SQLHSM_KEY_STATUS, 2).unwrap(),
                "compromised" => set_vendor(&s, key, CKA_SQLHSM_KEY_STATUS, 3).unwrap(),
                // Expired by its date alone: nobody sets the status.
                _ => set_vendor(&s, key, CKA_SQLHSM_EXPIRATION, now() - 60).unwrap(),
            }
        }
        for (operation, protects, outcome) in operations(&s, &k) {
            let allowed = if protects { protect } else { read };
            match (allowed, outcome) {
                (true, Ok(())) => {}
                (false, Err(RvError::KeyFunctionNotPermitted)) => {}
                (allowed, outcome) => {
                    panic!("{name} key, {operation}: allowed={allowed}, got {outcome:?}")
                }
            }
        }
        println!("lifecycle: {name}: protect {protect}, use {read} — as the table says");
    }
}

#[test]
fn expiration_crossing_while_the_process_runs() {
    let p = ctx();
    let slot = new_token(p, "lifecycle-expiry");
    let s = user_session(p, slot);
    let (public, private) = gen_ec(&s, P256, "expiring", b"exp");
    set_vendor(&s, private, CKA_SQLHSM_EXPIRATION, now() + 2).unwrap();
    let signature = s.sign(&Mechanism::EcdsaSha256, private, b"data").unwrap();
    std::thread::sleep(Duration::from_millis(3100));
    expect_rv(
        s.sign(&Mechanism::EcdsaSha256, private, b"data"),
        RvError::KeyFunctionNotPermitted,
    );
    s.verify(&Mechanism::EcdsaSha256, public, b"data", &signature)
        .unwrap();
    assert_eq!(
        get_ulong_vendor(&s, private, CKA_SQLHSM_KEY_STATUS),
        4,
        "reads Expired without an update"
    );
    match get_attr(&s, private, AttributeType::EndDate) {
        Attribute::EndDate(date) => {
            assert!(!date.is_empty(), "CKA_END_DATE follows the expiration")
        }
        other => panic!("CKA_END_DATE: {other:?}"),
    }
    // Compromised is terminal; Expired comes back only through the SO.
    expect_rv(
        set_vendor(&s, private, CKA_SQLHSM_KEY_STATUS, 1),
        RvError::AttributeValueInvalid,
    );
}

/// A token key's `CKA_END_DATE` is its expiration and follows the same rules as
/// `CKA_SQLHSM_EXPIRATION`: a user may not bring an expired key back by moving its end date.
#[test]
fn end_date_follows_the_expiration_rules() {
    let p = ctx();
    let slot = new_token(p, "lifecycle-end-date");
    let s = user_session(p, slot);
    let (_, private) = gen_ec(&s, P256, "end-date", b"end");
    let date = |y: &str| cryptoki::types::Date::new_from_str_slice(y, "06", "30").unwrap();
    // Into the past: the key expires, as with CKA_SQLHSM_EXPIRATION.
    s.update_attributes(private, &[Attribute::EndDate(date("2020"))])
        .unwrap();
    assert_eq!(get_ulong_vendor(&s, private, CKA_SQLHSM_KEY_STATUS), 4);
    assert_eq!(
        get_ulong_vendor(&s, private, CKA_SQLHSM_EXPIRATION),
        1_593_561_600,
        "the end of 2020-06-30, UTC"
    );
    expect_rv(
        s.sign(&Mechanism::EcdsaSha256, private, b"data"),
        RvError::KeyFunctionNotPermitted,
    );
    // Back into the future: only the SO may, so the user is refused and the key stays expired.
    expect_rv(
        s.update_attributes(private, &[Attribute::EndDate(date("2099"))]),
        RvError::AttributeValueInvalid,
    );
    assert_eq!(get_ulong_vendor(&s, private, CKA_SQLHSM_KEY_STATUS), 4);
    expect_rv(
        s.sign(&Mechanism::EcdsaSha256, private, b"data"),
        RvError::KeyFunctionNotPermitted,
    );
}

#[test]
fn rotation_through_pkcs11_alone() {
    let p = ctx();
    let slot = new_token(p, "lifecycle-rotate");
    let s = user_session(p, slot);
    let (_, old) = gen_ec(&s, P256, "rotating", b"rot");
    let old_id = get_bytes(&s, old, AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID));
    let (public, mut private) = ec_templates(P256, "rotating", b"rot");
    private.push(Attribute::VendorDefined((
        AttributeType::VendorDefined(CKA_SQLHSM_ROTATED_FROM),
        old_id.clone(),
    )));
    let (_, new) = s
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .unwrap();
    let new_id = get_bytes(&s, new, AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID));
    assert_ne!(new_id, old_id);
    assert_eq!(
        get_ulong_vendor(&s, old, CKA_SQLHSM_KEY_STATUS),
        2,
        "predecessor Inactive"
    );
    assert_eq!(get_ulong_vendor(&s, new, CKA_SQLHSM_KEY_STATUS), 1);
    assert_eq!(
        get_bytes(&s, old, AttributeType::VendorDefined(CKA_SQLHSM_ROTATED_TO)),
        new_id
    );
    assert_eq!(
        get_bytes(
            &s,
            new,
            AttributeType::VendorDefined(CKA_SQLHSM_ROTATED_FROM)
        ),
        old_id
    );
    // "The Active key labelled rotating": one, the successor.
    let active = s
        .find_objects(&[
            Attribute::Label(b"rotating".to_vec()),
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::VendorDefined((
                AttributeType::VendorDefined(CKA_SQLHSM_KEY_STATUS),
                ulong(1),
            )),
        ])
        .unwrap();
    assert_eq!(active, vec![new]);
}

#[test]
fn no_signature_with_the_retired_key_after_the_rotation_commits() {
    let p = ctx();
    let slot = new_token(p, "lifecycle-concurrent");
    let setup = user_session(p, slot);
    let (_, old) = gen_ec(&setup, P256, "busy", b"busy");
    let old_id = get_bytes(&setup, old, AttributeType::VendorDefined(CKA_SQLHSM_KEY_ID));
    let committed = AtomicBool::new(false);
    let (before, after_refused, violations) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let s = p.open_rw_session(slot).unwrap();
                let mut since_commit: Option<std::time::Instant> = None;
                // Sign until 300 ms after the commit, so both sides of it are exercised.
                while since_commit.is_none_or(|at| at.elapsed() < Duration::from_millis(300)) {
                    if since_commit.is_none() && committed.load(Ordering::SeqCst) {
                        since_commit = Some(std::time::Instant::now());
                    }
                    // Read the flag before the call: a call that starts after the commit must fail.
                    let after_commit = committed.load(Ordering::SeqCst);
                    match (after_commit, s.sign(&Mechanism::EcdsaSha256, old, b"data")) {
                        (false, Ok(_)) => _ = before.fetch_add(1, Ordering::Relaxed),
                        (true, Err(_)) => _ = after_refused.fetch_add(1, Ordering::Relaxed),
                        (true, Ok(_)) => _ = violations.fetch_add(1, Ordering::Relaxed),
                        (false, Err(_)) => {} // raced with the commit itself
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(100));
        let (public, mut private) = ec_templates(P256, "busy", b"busy");
        private.push(Attribute::VendorDefined((
            AttributeType::VendorDefined(CKA_SQLHSM_ROTATED_FROM),
            old_id.clone(),
        )));
        setup
            .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
            .unwrap();
        committed.store(true, Ordering::SeqCst);
    });
    let (before, after, violations) = (
        before.into_inner(),
        after_refused.into_inner(),
        violations.into_inner(),
    );
    println!("rotation under load: {before} signatures before the commit, {after} refused after, {violations} violations");
    assert_eq!(
        violations, 0,
        "a signature with the retired key after the rotation committed"
    );
    assert!(
        before > 0 && after > 0,
        "both sides of the commit were exercised"
    );
}

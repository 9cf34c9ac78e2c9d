//! Key derivation through the C ABI (PKCS#11 3.0 Current Mechanisms §2.42–2.43, §2.15):
//! HKDF (`CKM_HKDF_DERIVE`, `CKM_HKDF_DATA`, `CKM_HKDF_KEY_GEN`) against RFC 5869's test cases,
//! the SP 800-108 KDFs in counter and feedback mode against NIST CAVP known answers (with the
//! additional derived keys whose handles come back through the parameter), and the simple
//! derivations (concatenation, XOR, bit extraction, AES ECB/CBC encryption of data) with known
//! answers and the attribute rules derived keys follow.

mod common;

use std::num::NonZeroUsize;

use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::ekdf::AesCbcDeriveParams;
use cryptoki::mechanism::hkdf::{HkdfParams, HkdfSalt};
use cryptoki::mechanism::kbkdf::{
    DerivedKey, Endianness, KbkdfCounterFormat, KbkdfDkmLengthFormat, KbkdfDkmLengthMethod,
    KbkdfFeedbackParams, KbkdfParams, PrfDataParam, PrfDataParamType,
};
use cryptoki::mechanism::misc::{ExtractParams, KeyDerivationStringData};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use common::*;

fn session(label: &str) -> Session {
    let p = ctx();
    let slot = new_token(p, label);
    user_session(p, slot)
}

fn rv<T: std::fmt::Debug>(r: cryptoki::error::Result<T>) -> RvError {
    match r {
        Err(Error::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// A base key: a session secret with `CKA_DERIVE`.
fn base(s: &Session, kt: KeyType, value: &[u8]) -> ObjectHandle {
    session_secret(s, kt, value, &[Attribute::Derive(true)])
}

/// A template for a readable derived secret of `len` bytes (`None`: the mechanism says).
fn readable(kt: KeyType, len: Option<u64>) -> Vec<Attribute> {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(kt),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    if let Some(len) = len {
        t.push(Attribute::ValueLen(len.into()));
    }
    t
}

/// A handle no object has.
fn missing_handle() -> ObjectHandle {
    // SAFETY: only ever passed to the module, which must refuse it.
    unsafe { ObjectHandle::new_from_raw(0x7fff_fff0) }
}

/// `C_DeriveKey` with `CKM_AES_ECB_ENCRYPT_DATA` (`CK_KEY_DERIVATION_STRING_DATA`), which
/// cryptoki 0.12 has no variant for.
fn ecb_encrypt_data(
    s: &Session,
    data: &[u8],
    key: ObjectHandle,
    template: &[Attribute],
) -> cryptoki::error::Result<ObjectHandle> {
    let mut data = data.to_vec();
    let mut param = cryptoki_sys::CK_KEY_DERIVATION_STRING_DATA {
        pData: data.as_mut_ptr(),
        ulLen: data.len() as cryptoki_sys::CK_ULONG,
    };
    let mut m = cryptoki_sys::CK_MECHANISM {
        mechanism: cryptoki_sys::CKM_AES_ECB_ENCRYPT_DATA,
        pParameter: (&mut param as *mut cryptoki_sys::CK_KEY_DERIVATION_STRING_DATA).cast(),
        ulParameterLen: std::mem::size_of::<cryptoki_sys::CK_KEY_DERIVATION_STRING_DATA>()
            as cryptoki_sys::CK_ULONG,
    };
    let mut t = raw_template(template);
    let mut h: cryptoki_sys::CK_OBJECT_HANDLE = 0;
    // SAFETY: every pointer refers to a live local buffer of the stated length.
    let rv = unsafe {
        raw().C_DeriveKey(
            s.handle(),
            &mut m,
            key.handle(),
            t.as_mut_ptr(),
            t.len() as cryptoki_sys::CK_ULONG,
            &mut h,
        )
    };
    raw_result(rv, cryptoki::context::Function::DeriveKey)?;
    // SAFETY: a handle the module just returned.
    Ok(unsafe { ObjectHandle::new_from_raw(h) })
}

fn value(s: &Session, key: ObjectHandle) -> Vec<u8> {
    get_bytes(s, key, AttributeType::Value)
}

// ---------------------------------------------------------------------------------------------
// HKDF

const RFC5869_A1_OKM: &str =
    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
const RFC5869_A1_PRK: &str = "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5";

#[test]
fn hkdf_rfc5869_through_every_salt_and_step() {
    let s = session("derive-hkdf");
    let ikm = base(&s, KeyType::GENERIC_SECRET, &[0x0b; 22]);
    let salt = h("000102030405060708090a0b0c");
    let info = h("f0f1f2f3f4f5f6f7f8f9");
    let derive = |mechanism: &Mechanism, key, len| {
        s.derive_key(mechanism, key, &readable(KeyType::GENERIC_SECRET, len))
            .map(|k| value(&s, k))
    };
    // A.1: salt as data, and the same salt as a key (CKF_HKDF_SALT_KEY).
    let p = HkdfParams::new(
        MechanismType::SHA256,
        Some(HkdfSalt::Data(&salt)),
        Some(&info),
    );
    assert_eq!(
        hex::encode(derive(&Mechanism::HkdfDerive(p), ikm, Some(42)).unwrap()),
        RFC5869_A1_OKM
    );
    let salt_key = session_secret(&s, KeyType::GENERIC_SECRET, &salt, &[]);
    let p = HkdfParams::new(
        MechanismType::SHA256,
        Some(HkdfSalt::Key(salt_key)),
        Some(&info),
    );
    assert_eq!(
        hex::encode(derive(&Mechanism::HkdfDerive(p), ikm, Some(42)).unwrap()),
        RFC5869_A1_OKM
    );
    // Extract only gives the PRK; expand only from the PRK gives the OKM again.
    let p = HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Data(&salt)), None);
    let prk = derive(&Mechanism::HkdfDerive(p), ikm, None).unwrap();
    assert_eq!(hex::encode(&prk), RFC5869_A1_PRK);
    let prk_key = base(&s, KeyType::GENERIC_SECRET, &prk);
    let p = HkdfParams::new(MechanismType::SHA256, None, Some(&info));
    assert_eq!(
        hex::encode(derive(&Mechanism::HkdfDerive(p), prk_key, Some(42)).unwrap()),
        RFC5869_A1_OKM
    );
    // A.3: no salt (CKF_HKDF_SALT_NULL), no info.
    let p = HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Null), Some(&[]));
    assert_eq!(
        hex::encode(derive(&Mechanism::HkdfDerive(p), ikm, Some(42)).unwrap()),
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    );
    // A.4: SHA-1.
    let ikm4 = base(&s, KeyType::GENERIC_SECRET, &[0x0b; 11]);
    let p = HkdfParams::new(
        MechanismType::SHA1,
        Some(HkdfSalt::Data(&salt)),
        Some(&info),
    );
    assert_eq!(
        hex::encode(derive(&Mechanism::HkdfDerive(p), ikm4, Some(42)).unwrap()),
        "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896"
    );

    // CKM_HKDF_DATA makes a data object holding the OKM.
    let p = HkdfParams::new(
        MechanismType::SHA256,
        Some(HkdfSalt::Data(&salt)),
        Some(&info),
    );
    let data = s
        .derive_key(
            &Mechanism::HkdfData(p),
            ikm,
            &[
                Attribute::Class(ObjectClass::DATA),
                Attribute::ValueLen(42u64.into()),
                Attribute::Token(true),
                Attribute::Label(b"hkdf data".to_vec()),
            ],
        )
        .expect("CKM_HKDF_DATA");
    assert_eq!(
        get_attr(&s, data, AttributeType::Class),
        Attribute::Class(ObjectClass::DATA)
    );
    assert_eq!(hex::encode(value(&s, data)), RFC5869_A1_OKM);
    // …and nothing else: a key template is refused, as is a data template for HKDF_DERIVE.
    let p = HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Null), Some(&info));
    assert_eq!(
        rv(s.derive_key(
            &Mechanism::HkdfData(p),
            ikm,
            &readable(KeyType::GENERIC_SECRET, Some(16))
        )),
        RvError::TemplateInconsistent
    );
    let p = HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Null), Some(&info));
    assert_eq!(
        rv(s.derive_key(
            &Mechanism::HkdfDerive(p),
            ikm,
            &[
                Attribute::Class(ObjectClass::DATA),
                Attribute::ValueLen(16u64.into())
            ]
        )),
        RvError::TemplateInconsistent
    );

    // Refusals: no CKA_DERIVE, an AES base key, more than 255 blocks, an unknown hash.
    let no_derive = session_secret(
        &s,
        KeyType::GENERIC_SECRET,
        &[1; 32],
        &[Attribute::Derive(false)],
    );
    let aes = base(&s, KeyType::AES, &[1; 16]);
    let p = || HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Null), Some(&info));
    let t = readable(KeyType::GENERIC_SECRET, Some(16));
    assert_eq!(
        rv(s.derive_key(&Mechanism::HkdfDerive(p()), no_derive, &t)),
        RvError::KeyFunctionNotPermitted
    );
    assert_eq!(
        rv(s.derive_key(&Mechanism::HkdfDerive(p()), aes, &t)),
        RvError::KeyTypeInconsistent
    );
    let long = readable(KeyType::GENERIC_SECRET, Some(255 * 32 + 1));
    assert_eq!(
        rv(s.derive_key(&Mechanism::HkdfDerive(p()), ikm, &long)),
        RvError::KeySizeRange
    );
    let md5 = HkdfParams::new(
        MechanismType::SHA256_HMAC,
        Some(HkdfSalt::Null),
        Some(&info),
    );
    assert_eq!(
        rv(s.derive_key(&Mechanism::HkdfDerive(md5), ikm, &t)),
        RvError::MechanismParamInvalid
    );
    // A salt key the session cannot see.
    let p = HkdfParams::new(
        MechanismType::SHA256,
        Some(HkdfSalt::Key(missing_handle())),
        Some(&info),
    );
    assert_eq!(
        rv(s.derive_key(&Mechanism::HkdfDerive(p), ikm, &t)),
        RvError::KeyHandleInvalid
    );
}

#[test]
fn hkdf_key_gen_makes_hkdf_keys() {
    let s = session("derive-hkdf-gen");
    let key = s
        .generate_key(
            &Mechanism::HkdfKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32u64.into()),
                Attribute::Derive(true),
                Attribute::Sensitive(true),
            ],
        )
        .expect("CKM_HKDF_KEY_GEN");
    assert_eq!(
        get_attr(&s, key, AttributeType::KeyType),
        Attribute::KeyType(KeyType::HKDF)
    );
    assert!(get_bool(&s, key, AttributeType::Local));
    let info = b"context";
    let derive = |key| {
        let p = HkdfParams::new(MechanismType::SHA384, Some(HkdfSalt::Null), Some(info));
        s.derive_key(
            &Mechanism::HkdfDerive(p),
            key,
            &readable(KeyType::AES, Some(32)),
        )
        .unwrap()
    };
    let derived = derive(key);
    // Sensitive, generated base: the derived key was never extractable only if it is not now.
    assert!(get_bool(&s, key, AttributeType::AlwaysSensitive));
    assert!(
        !get_bool(&s, derived, AttributeType::AlwaysSensitive),
        "derived key is not sensitive"
    );
    assert!(!get_bool(&s, derived, AttributeType::NeverExtractable));
    // An HKDF key imported with a known value derives what a generic secret of that value does.
    let bytes = [0x42; 32];
    let hkdf_key = base(&s, KeyType::HKDF, &bytes);
    let generic = base(&s, KeyType::GENERIC_SECRET, &bytes);
    assert_eq!(value(&s, derive(hkdf_key)), value(&s, derive(generic)));
    // CKA_VALUE_LEN is required, and HKDF keys do not MAC.
    assert_eq!(
        rv(s.generate_key(&Mechanism::HkdfKeyGen, &[Attribute::Token(false)])),
        RvError::TemplateIncomplete
    );
    let sign = session_secret(&s, KeyType::HKDF, &bytes, &[Attribute::Sign(true)]);
    assert_eq!(
        rv(s.sign(&Mechanism::Sha256Hmac, sign, b"x")),
        RvError::KeyTypeInconsistent
    );
}

// ---------------------------------------------------------------------------------------------
// SP 800-108

#[test]
fn sp800_108_counter_cavp_with_additional_keys() {
    let s = session("derive-kbkdf-ctr");
    let be32 = KbkdfCounterFormat::new(Endianness::Big, NonZeroUsize::new(32).unwrap());
    // NIST CAVP KDFCTR, [PRF=HMAC_SHA256] [CTRLOCATION=BEFORE_FIXED] [RLEN=32_BITS], COUNT=30:
    // L = 320 bits, two PRF blocks.
    let ki = base(
        &s,
        KeyType::GENERIC_SECRET,
        &h("c4bedbddb66493e7c7259a3bbbc25f8c7e0ca7fe284d92d431d9cd99a0d214ac"),
    );
    let fixed = h("1c69c54766791e315c2cc5c47ecd3ffab87d0d273dd920e70955814c220eacace6a5946542da3dfe24ff626b4897898cafb7db83bdff3c14fa46fd4b");
    let ko = h("1da47638d6c9c4d04d74d4640bbd42ab814d9e8cc22f4326695239f96b0693f12d0dd1152cf44430");
    let data = [
        PrfDataParam::new(PrfDataParamType::IterationVariable(Some(&be32))),
        PrfDataParam::new(PrfDataParamType::ByteArray(&fixed)),
    ];
    let p = KbkdfParams::new(MechanismType::SHA256_HMAC, &data, None);
    let key = s
        .derive_key(
            &Mechanism::KbkdfCounter(p),
            ki,
            &readable(KeyType::GENERIC_SECRET, Some(40)),
        )
        .expect("CKM_SP800_108_COUNTER_KDF");
    assert_eq!(value(&s, key), ko);

    // The same stream cut into the base template's key and two additional keys, an AES-128 key
    // and a generic secret; their handles come back in the CK_DERIVED_KEY entries.
    // (DerivedKey points into its template, which must outlive it.)
    let (aes_template, generic_template) = (readable(KeyType::AES, Some(16)), {
        // A token object: stored in the database like any other key.
        let mut t = readable(KeyType::GENERIC_SECRET, Some(8));
        t.retain(|a| !matches!(a, Attribute::Token(_)));
        t.push(Attribute::Token(true));
        t
    });
    let mut extra = [
        DerivedKey::new(&aes_template),
        DerivedKey::new(&generic_template),
    ];
    let p = KbkdfParams::new(MechanismType::SHA256_HMAC, &data, Some(&mut extra));
    let first = s
        .derive_key(
            &Mechanism::KbkdfCounter(p),
            ki,
            &readable(KeyType::GENERIC_SECRET, Some(16)),
        )
        .unwrap();
    let (second, third) = (
        extra[0].handle().expect("first additional key"),
        extra[1].handle().expect("second"),
    );
    assert_eq!(value(&s, first), ko[..16]);
    assert!(get_bool(&s, third, AttributeType::Token));
    assert_eq!(value(&s, second), ko[16..32]);
    assert_eq!(value(&s, third), ko[32..]);
    assert_eq!(
        get_attr(&s, second, AttributeType::KeyType),
        Attribute::KeyType(KeyType::AES)
    );
    assert!(first != second && second != third);

    // AES-CMAC PRF: CAVP [PRF=CMAC_AES128], COUNT=10 (L = 256 bits).
    let aes = base(&s, KeyType::AES, &h("695f1b1a16c949cea51cdf2554ec9d42"));
    let fixed = h("4fce5942832a390aa1cbe8a0bf9d202cb799e986c9d6b51f45e4d597a6b57f06a4ebfec6467335d116b7f5f9c5b954062f661820f5db2a5bbb3e0625");
    let data = [
        PrfDataParam::new(PrfDataParamType::IterationVariable(Some(&be32))),
        PrfDataParam::new(PrfDataParamType::ByteArray(&fixed)),
    ];
    let p = KbkdfParams::new(MechanismType::AES_CMAC, &data, None);
    let key = s
        .derive_key(
            &Mechanism::KbkdfCounter(p),
            aes,
            &readable(KeyType::AES, Some(32)),
        )
        .unwrap();
    assert_eq!(
        hex::encode(value(&s, key)),
        "d34b601ec18c34dfa0f9e0b7523e218bdddb9befe8d08b6c0202d75ace0dba89"
    );

    // A DKM length is the keys' total in bits: 16 + 16 bytes → 256, as a 32-bit big-endian
    // number after the fixed data (the "L" of SP 800-108).
    let dkm = KbkdfDkmLengthFormat::new(
        KbkdfDkmLengthMethod::SumOfKeys,
        Endianness::Big,
        NonZeroUsize::new(32).unwrap(),
    );
    let with_dkm = [
        PrfDataParam::new(PrfDataParamType::IterationVariable(Some(&be32))),
        PrfDataParam::new(PrfDataParamType::ByteArray(b"label")),
        PrfDataParam::new(PrfDataParamType::DkmLength(&dkm)),
    ];
    let by_hand = [
        PrfDataParam::new(PrfDataParamType::IterationVariable(Some(&be32))),
        PrfDataParam::new(PrfDataParamType::ByteArray(b"label\x00\x00\x01\x00")),
    ];
    let extra_template = readable(KeyType::GENERIC_SECRET, Some(16));
    let mut extra = [DerivedKey::new(&extra_template)];
    let p = KbkdfParams::new(MechanismType::SHA256_HMAC, &with_dkm, Some(&mut extra));
    let a = s
        .derive_key(
            &Mechanism::KbkdfCounter(p),
            ki,
            &readable(KeyType::GENERIC_SECRET, Some(16)),
        )
        .unwrap();
    let mut a_value = value(&s, a);
    a_value.extend(value(&s, extra[0].handle().unwrap()));
    let p = KbkdfParams::new(MechanismType::SHA256_HMAC, &by_hand, None);
    let b = s
        .derive_key(
            &Mechanism::KbkdfCounter(p),
            ki,
            &readable(KeyType::GENERIC_SECRET, Some(32)),
        )
        .unwrap();
    assert_eq!(a_value, value(&s, b));

    // Refusals: no iteration variable, CMAC with a generic secret, an additional key without a
    // length (its handle stays CK_INVALID_HANDLE).
    let none = [PrfDataParam::new(PrfDataParamType::ByteArray(b"x"))];
    let p = KbkdfParams::new(MechanismType::SHA256_HMAC, &none, None);
    assert_eq!(
        rv(s.derive_key(
            &Mechanism::KbkdfCounter(p),
            ki,
            &readable(KeyType::GENERIC_SECRET, Some(16))
        )),
        RvError::MechanismParamInvalid
    );
    let p = KbkdfParams::new(MechanismType::AES_CMAC, &data, None);
    assert_eq!(
        rv(s.derive_key(
            &Mechanism::KbkdfCounter(p),
            ki,
            &readable(KeyType::GENERIC_SECRET, Some(16))
        )),
        RvError::KeyTypeInconsistent
    );
    let no_len = readable(KeyType::AES, None);
    let mut extra = [DerivedKey::new(&no_len)];
    let p = KbkdfParams::new(MechanismType::SHA256_HMAC, &by_hand, Some(&mut extra));
    assert_eq!(
        rv(s.derive_key(
            &Mechanism::KbkdfCounter(p),
            ki,
            &readable(KeyType::GENERIC_SECRET, Some(16))
        )),
        RvError::TemplateIncomplete
    );
    assert_eq!(extra[0].handle(), None);
}

#[test]
fn sp800_108_feedback_cavp() {
    let s = session("derive-kbkdf-fb");
    // NIST CAVP KDFFeedback (no zero-length IV), [PRF=HMAC_SHA256] [CTRLOCATION=AFTER_ITER]
    // [RLEN=32_BITS], COUNT=0: K(i) = PRF(KI, K(i-1) || [i]_32 || FixedInputData), L = 512.
    let ki = base(
        &s,
        KeyType::GENERIC_SECRET,
        &h("93f698e842eed75394d629d957e2e89c6e741f810b623c8b901e38376d068e7b"),
    );
    let iv = h("9f575d9059d3e0c0803f08112f8a806de3c3471912cdf42b095388b14b33508e");
    let fixed = h("53b89c18690e2057a1d167822e636de50be0018532c431f7f5e37f77139220d5e042599ebe266af5767ee18cd2c5c19a1f0f80");
    let be32 = KbkdfCounterFormat::new(Endianness::Big, NonZeroUsize::new(32).unwrap());
    let data = [
        PrfDataParam::new(PrfDataParamType::IterationVariable(None)),
        PrfDataParam::new(PrfDataParamType::Counter(&be32)),
        PrfDataParam::new(PrfDataParamType::ByteArray(&fixed)),
    ];
    let extra_template = readable(KeyType::GENERIC_SECRET, Some(32));
    let mut extra = [DerivedKey::new(&extra_template)];
    let p = KbkdfFeedbackParams::new(
        MechanismType::SHA256_HMAC,
        &data,
        Some(&iv),
        Some(&mut extra),
    );
    let key = s
        .derive_key(
            &Mechanism::KbkdfFeedback(p),
            ki,
            &readable(KeyType::GENERIC_SECRET, Some(32)),
        )
        .expect("CKM_SP800_108_FEEDBACK_KDF");
    let mut out = value(&s, key);
    out.extend(value(&s, extra[0].handle().unwrap()));
    assert_eq!(
        hex::encode(out),
        "bd1476f43a4e315747cf5918e0ea5bc0d98769457477c3ab18b742def0e079a933b756365afb5541f253fee43c6fd788a44041038509e9eeb68f7d65ffbb5f95"
    );
    // A counter-mode iteration variable (with a format) does not belong in feedback mode.
    let wrong = [PrfDataParam::new(PrfDataParamType::IterationVariable(
        Some(&be32),
    ))];
    let p = KbkdfFeedbackParams::new(MechanismType::SHA256_HMAC, &wrong, Some(&iv), None);
    assert_eq!(
        rv(s.derive_key(
            &Mechanism::KbkdfFeedback(p),
            ki,
            &readable(KeyType::GENERIC_SECRET, Some(32))
        )),
        RvError::MechanismParamInvalid
    );
}

// ---------------------------------------------------------------------------------------------
// The simple derivations and the attribute rules

#[test]
fn simple_derivations_known_answers() {
    let s = session("derive-simple");
    let abc = base(&s, KeyType::GENERIC_SECRET, b"abc");
    let de = session_secret(&s, KeyType::GENERIC_SECRET, b"de", &[]);
    let derive = |m: &Mechanism, key, len| {
        s.derive_key(m, key, &readable(KeyType::GENERIC_SECRET, len))
            .map(|k| value(&s, k))
    };
    assert_eq!(
        derive(&Mechanism::ConcatenateBaseAndKey(de), abc, None).unwrap(),
        b"abcde"
    );
    assert_eq!(
        derive(&Mechanism::ConcatenateBaseAndKey(de), abc, Some(4)).unwrap(),
        b"abcd"
    );
    let xy = KeyDerivationStringData::new(b"xy");
    assert_eq!(
        derive(&Mechanism::ConcatenateBaseAndData(xy), abc, None).unwrap(),
        b"abcxy"
    );
    let xy = KeyDerivationStringData::new(b"xy");
    assert_eq!(
        derive(&Mechanism::ConcatenateDataAndBase(xy), abc, None).unwrap(),
        b"xyabc"
    );
    let mask = KeyDerivationStringData::new(&[0x20, 0x20]);
    assert_eq!(
        derive(&Mechanism::XorBaseAndData(mask), abc, None).unwrap(),
        b"AB"
    );
    let mask = KeyDerivationStringData::new(&[0x20, 0x20]);
    assert_eq!(
        rv(derive(&Mechanism::XorBaseAndData(mask), abc, Some(3))),
        RvError::KeySizeRange
    );
    // Extraction: the spec's example, 5 bytes from 0x329F84A9 starting at bit 21.
    let word = base(&s, KeyType::GENERIC_SECRET, &[0x32, 0x9f, 0x84, 0xa9]);
    assert_eq!(
        derive(
            &Mechanism::ExtractKeyFromKey(ExtractParams::new(21)),
            word,
            Some(5)
        )
        .unwrap(),
        [0x95, 0x26, 0x53, 0xf0, 0x95]
    );
    assert_eq!(
        rv(derive(
            &Mechanism::ExtractKeyFromKey(ExtractParams::new(21)),
            word,
            None
        )),
        RvError::TemplateIncomplete
    );
    // The second key of a concatenation must be a secret key the session sees.
    assert_eq!(
        rv(derive(
            &Mechanism::ConcatenateBaseAndKey(missing_handle()),
            abc,
            None
        )),
        RvError::KeyHandleInvalid
    );

    // AES: FIPS 197 C.1 as an ECB encryption of data, SP 800-38A F.2.1 as CBC.
    let k1 = base(&s, KeyType::AES, &h("000102030405060708090a0b0c0d0e0f"));
    let block = h("00112233445566778899aabbccddeeff");
    let ecb = ecb_encrypt_data(&s, &block, k1, &readable(KeyType::AES, Some(16))).unwrap();
    assert_eq!(
        hex::encode(value(&s, ecb)),
        "69c4e0d86a7b0430d8cdb78070b4c55a"
    );
    let k2 = base(&s, KeyType::AES, &h("2b7e151628aed2a6abf7158809cf4f3c"));
    let iv: [u8; 16] = h("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
    let plain = h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
    let cbc = s
        .derive_key(
            &Mechanism::AesCbcEncryptData(AesCbcDeriveParams::new(iv, &plain)),
            k2,
            &readable(KeyType::AES, Some(32)),
        )
        .unwrap();
    assert_eq!(
        hex::encode(value(&s, cbc)),
        "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
    );
    // A generic secret is no AES key; data must be whole blocks.
    assert_eq!(
        rv(ecb_encrypt_data(
            &s,
            &block,
            abc,
            &readable(KeyType::AES, Some(16)),
        )),
        RvError::KeyTypeInconsistent
    );
    assert_eq!(
        rv(ecb_encrypt_data(
            &s,
            &block[..15],
            k1,
            &readable(KeyType::GENERIC_SECRET, None),
        )),
        RvError::MechanismParamInvalid
    );
}

#[test]
fn derived_keys_inherit_protection_from_their_bases() {
    let s = session("derive-rules");
    // A sensitive, non-extractable base from C_GenerateKey: always sensitive, never extractable.
    let secret = s
        .generate_key(
            &Mechanism::GenericSecretKeyGen,
            &[
                Attribute::Token(false),
                Attribute::ValueLen(32u64.into()),
                Attribute::Derive(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
            ],
        )
        .unwrap();
    assert!(get_bool(&s, secret, AttributeType::AlwaysSensitive));
    assert!(get_bool(&s, secret, AttributeType::NeverExtractable));
    let open = base(&s, KeyType::GENERIC_SECRET, b"an open key");

    // Concatenation copies base-key bits: the template cannot make the result readable.
    let key = s
        .derive_key(
            &Mechanism::ConcatenateBaseAndData(KeyDerivationStringData::new(b"tail")),
            secret,
            &readable(KeyType::GENERIC_SECRET, None),
        )
        .unwrap();
    assert!(get_bool(&s, key, AttributeType::Sensitive));
    assert!(!get_bool(&s, key, AttributeType::Extractable));
    assert!(get_bool(&s, key, AttributeType::AlwaysSensitive));
    assert!(get_bool(&s, key, AttributeType::NeverExtractable));
    let readable_value = s.get_attributes(key, &[AttributeType::Value]).unwrap();
    assert!(readable_value.is_empty(), "CKA_VALUE is sensitive");
    // Either key of CKM_CONCATENATE_BASE_AND_KEY passes its protection on; "always sensitive"
    // needs both.
    let key = s
        .derive_key(
            &Mechanism::ConcatenateBaseAndKey(secret),
            open,
            &readable(KeyType::GENERIC_SECRET, None),
        )
        .unwrap();
    assert!(get_bool(&s, key, AttributeType::Sensitive));
    assert!(!get_bool(&s, key, AttributeType::Extractable));
    assert!(
        !get_bool(&s, key, AttributeType::AlwaysSensitive),
        "the open base never was"
    );
    assert!(!get_bool(&s, key, AttributeType::NeverExtractable));
    // XOR and extraction likewise.
    for m in [
        Mechanism::XorBaseAndData(KeyDerivationStringData::new(&[0; 16])),
        Mechanism::ExtractKeyFromKey(ExtractParams::new(3)),
    ] {
        let key = s
            .derive_key(&m, secret, &readable(KeyType::GENERIC_SECRET, Some(16)))
            .unwrap();
        assert!(get_bool(&s, key, AttributeType::Sensitive), "{m:?}");
        assert!(!get_bool(&s, key, AttributeType::Extractable), "{m:?}");
    }
    // A KDF's output holds no base-key bits: the template decides, and the key is then neither
    // always sensitive nor never extractable.
    let p = HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Null), Some(b"x"));
    let key = s
        .derive_key(
            &Mechanism::HkdfDerive(p),
            secret,
            &readable(KeyType::GENERIC_SECRET, Some(16)),
        )
        .unwrap();
    assert!(!get_bool(&s, key, AttributeType::Sensitive));
    assert!(!get_bool(&s, key, AttributeType::AlwaysSensitive));
    assert!(!get_bool(&s, key, AttributeType::NeverExtractable));
    // Kept sensitive, it stays "always sensitive" like its base.
    let p = HkdfParams::new(MechanismType::SHA256, Some(HkdfSalt::Null), Some(b"x"));
    let mut t = readable(KeyType::GENERIC_SECRET, Some(16));
    t.retain(|a| !matches!(a, Attribute::Sensitive(_) | Attribute::Extractable(_)));
    t.extend([Attribute::Sensitive(true), Attribute::Extractable(false)]);
    let key = s.derive_key(&Mechanism::HkdfDerive(p), secret, &t).unwrap();
    assert!(get_bool(&s, key, AttributeType::AlwaysSensitive));
    assert!(get_bool(&s, key, AttributeType::NeverExtractable));
}

// ---------------------------------------------------------------------------------------------
// CKA_DERIVE_TEMPLATE, CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE (attribute arrays, raw calls:
// cryptoki 0.12 has no array attributes)

const ENTRY: usize = std::mem::size_of::<cryptoki_sys::CK_ATTRIBUTE>();

/// `C_CreateObject` with `template` plus attribute arrays `(type, attributes)`.
fn create_with_arrays(
    s: &Session,
    template: &[Attribute],
    arrays: &[(u64, &[Attribute])],
) -> cryptoki::error::Result<ObjectHandle> {
    let mut inner: Vec<Vec<cryptoki_sys::CK_ATTRIBUTE>> =
        arrays.iter().map(|(_, a)| raw_template(a)).collect();
    let mut t = raw_template(template);
    for ((kind, _), array) in arrays.iter().zip(inner.iter_mut()) {
        t.push(cryptoki_sys::CK_ATTRIBUTE {
            type_: *kind,
            pValue: array.as_mut_ptr().cast(),
            ulValueLen: (array.len() * ENTRY) as cryptoki_sys::CK_ULONG,
        });
    }
    let mut h: cryptoki_sys::CK_OBJECT_HANDLE = 0;
    // SAFETY: every pointer refers to a live local buffer of the stated length.
    let rv = unsafe {
        raw().C_CreateObject(
            s.handle(),
            t.as_mut_ptr(),
            t.len() as cryptoki_sys::CK_ULONG,
            &mut h,
        )
    };
    raw_result(rv, cryptoki::context::Function::CreateObject)?;
    // SAFETY: a handle the module just returned.
    Ok(unsafe { ObjectHandle::new_from_raw(h) })
}

/// `C_GetAttributeValue` of one attribute array entry whose `pValue` points to `entries`
/// (or is NULL): the return value and the outer `ulValueLen`.
fn get_array_raw(
    s: &Session,
    object: ObjectHandle,
    kind: u64,
    entries: Option<&mut [cryptoki_sys::CK_ATTRIBUTE]>,
) -> (cryptoki_sys::CK_RV, cryptoki_sys::CK_ULONG) {
    let (p, len) = match entries {
        Some(e) => (e.as_mut_ptr(), (e.len() * ENTRY) as cryptoki_sys::CK_ULONG),
        None => (std::ptr::null_mut(), 0),
    };
    let mut outer = [cryptoki_sys::CK_ATTRIBUTE {
        type_: kind,
        pValue: p.cast(),
        ulValueLen: len,
    }];
    // SAFETY: every pointer refers to a live local buffer of the stated length.
    let rv =
        unsafe { raw().C_GetAttributeValue(s.handle(), object.handle(), outer.as_mut_ptr(), 1) };
    (rv, outer[0].ulValueLen)
}

/// Reads an attribute array the way §5.7 describes: its size, then the entries' types and
/// lengths, then their values.
fn get_array(s: &Session, object: ObjectHandle, kind: u64) -> Vec<(u64, Vec<u8>)> {
    let (code, len) = get_array_raw(s, object, kind, None);
    assert_eq!(code, cryptoki_sys::CKR_OK);
    assert_eq!(len as usize % ENTRY, 0);
    let n = len as usize / ENTRY;
    let empty = cryptoki_sys::CK_ATTRIBUTE {
        type_: 0,
        pValue: std::ptr::null_mut(),
        ulValueLen: 0,
    };
    let mut entries = vec![empty; n];
    let (code, _) = get_array_raw(s, object, kind, Some(&mut entries));
    assert_eq!(code, cryptoki_sys::CKR_OK);
    let mut values: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| vec![0u8; e.ulValueLen as usize])
        .collect();
    for (e, v) in entries.iter_mut().zip(values.iter_mut()) {
        e.pValue = v.as_mut_ptr().cast();
    }
    let (code, _) = get_array_raw(s, object, kind, Some(&mut entries));
    assert_eq!(code, cryptoki_sys::CKR_OK);
    entries
        .iter()
        .zip(values)
        .map(|(e, mut v)| {
            v.truncate(e.ulValueLen as usize);
            (e.type_, v)
        })
        .collect()
}

fn secret_template(kt: KeyType, value: &[u8], token: bool) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(kt),
        Attribute::Token(token),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::Derive(true),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Value(value.to_vec()),
    ]
}

#[test]
fn derive_template_is_applied_and_read_back() {
    let s = session("derive-template");
    let derive_template = [
        Attribute::Sensitive(true),
        Attribute::Label(b"from the derive template".to_vec()),
    ];
    let base = create_with_arrays(
        &s,
        &secret_template(KeyType::GENERIC_SECRET, &[5; 32], true),
        &[(cryptoki_sys::CKA_DERIVE_TEMPLATE, &derive_template)],
    )
    .expect("C_CreateObject with CKA_DERIVE_TEMPLATE");

    // Read back by the array rules: the size, then types and lengths, then values.
    let read = get_array(&s, base, cryptoki_sys::CKA_DERIVE_TEMPLATE);
    assert_eq!(
        read,
        vec![
            (cryptoki_sys::CKA_SENSITIVE, vec![1]),
            (
                cryptoki_sys::CKA_LABEL,
                b"from the derive template".to_vec()
            ),
        ]
    );
    // Room for fewer entries: CKR_BUFFER_TOO_SMALL with the size needed.
    let empty = cryptoki_sys::CK_ATTRIBUTE {
        type_: 0,
        pValue: std::ptr::null_mut(),
        ulValueLen: 0,
    };
    let mut one = [empty];
    let (code, len) = get_array_raw(&s, base, cryptoki_sys::CKA_DERIVE_TEMPLATE, Some(&mut one));
    assert_eq!(
        (code, len as usize),
        (cryptoki_sys::CKR_BUFFER_TOO_SMALL, 2 * ENTRY)
    );
    // An inner buffer too small: that entry is CK_UNAVAILABLE_INFORMATION.
    let mut label = [0u8; 4];
    let mut byte = [0u8; 1];
    let mut two = [
        cryptoki_sys::CK_ATTRIBUTE {
            type_: 0,
            pValue: byte.as_mut_ptr().cast(),
            ulValueLen: 1,
        },
        cryptoki_sys::CK_ATTRIBUTE {
            type_: 0,
            pValue: label.as_mut_ptr().cast(),
            ulValueLen: 4,
        },
    ];
    let (code, _) = get_array_raw(&s, base, cryptoki_sys::CKA_DERIVE_TEMPLATE, Some(&mut two));
    assert_eq!(code, cryptoki_sys::CKR_BUFFER_TOO_SMALL);
    assert_eq!(
        (two[0].type_, two[0].ulValueLen, byte),
        (cryptoki_sys::CKA_SENSITIVE, 1, [1])
    );
    assert_eq!(two[1].ulValueLen, cryptoki_sys::CK_UNAVAILABLE_INFORMATION);
    // An absurd outer length is refused before anything is read through it, as a plain value's
    // is (the array itself has room: only the stated length is wrong); a length left
    // CK_UNAVAILABLE_INFORMATION by an earlier call means no room.
    let mut room = [empty, empty];
    for (stated, want) in [
        (1u64 << 40, cryptoki_sys::CKR_ARGUMENTS_BAD),
        (
            cryptoki_sys::CK_UNAVAILABLE_INFORMATION,
            cryptoki_sys::CKR_BUFFER_TOO_SMALL,
        ),
    ] {
        let mut outer = [cryptoki_sys::CK_ATTRIBUTE {
            type_: cryptoki_sys::CKA_DERIVE_TEMPLATE,
            pValue: room.as_mut_ptr().cast(),
            ulValueLen: stated,
        }];
        // SAFETY: `room` is a live array of two entries; only the stated length is false.
        let rv =
            unsafe { raw().C_GetAttributeValue(s.handle(), base.handle(), outer.as_mut_ptr(), 1) };
        assert_eq!(rv, want, "outer ulValueLen {stated:#x}");
    }
    // A key without the attribute: CKR_ATTRIBUTE_TYPE_INVALID.
    let plain = base_key_without_templates(&s);
    let (code, len) = get_array_raw(&s, plain, cryptoki_sys::CKA_DERIVE_TEMPLATE, None);
    assert_eq!(
        (code, len),
        (
            cryptoki_sys::CKR_ATTRIBUTE_TYPE_INVALID,
            cryptoki_sys::CK_UNAVAILABLE_INFORMATION
        )
    );

    // The derived key gets the template's attributes; a caller's template that disagrees is
    // CKR_TEMPLATE_INCONSISTENT.
    let hkdf = || {
        Mechanism::HkdfDerive(HkdfParams::new(
            MechanismType::SHA256,
            Some(HkdfSalt::Null),
            Some(b"i"),
        ))
    };
    let agreeing = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(16u64.into()),
        Attribute::Token(false),
    ];
    let key = s.derive_key(&hkdf(), base, &agreeing).unwrap();
    assert!(get_bool(&s, key, AttributeType::Sensitive));
    assert_eq!(
        get_bytes(&s, key, AttributeType::Label),
        b"from the derive template"
    );
    assert_eq!(
        rv(s.derive_key(&hkdf(), base, &readable(KeyType::AES, Some(16)))),
        RvError::TemplateInconsistent,
        "Sensitive(false) against the template's true"
    );
    // Also for the additional keys of an SP 800-108 derivation.
    let be32 = KbkdfCounterFormat::new(Endianness::Big, NonZeroUsize::new(32).unwrap());
    let data = [PrfDataParam::new(PrfDataParamType::IterationVariable(
        Some(&be32),
    ))];
    let mut extra = [DerivedKey::new(&agreeing)];
    let p = KbkdfParams::new(MechanismType::SHA256_HMAC, &data, Some(&mut extra));
    s.derive_key(&Mechanism::KbkdfCounter(p), base, &agreeing)
        .unwrap();
    let additional = extra[0].handle().unwrap();
    assert_eq!(
        get_bytes(&s, additional, AttributeType::Label),
        b"from the derive template"
    );
    let readable_extra = readable(KeyType::AES, Some(16));
    let mut extra = [DerivedKey::new(&readable_extra)];
    let p = KbkdfParams::new(MechanismType::SHA256_HMAC, &data, Some(&mut extra));
    assert_eq!(
        rv(s.derive_key(&Mechanism::KbkdfCounter(p), base, &agreeing)),
        RvError::TemplateInconsistent
    );
}

fn base_key_without_templates(s: &Session) -> ObjectHandle {
    s.create_object(&secret_template(KeyType::GENERIC_SECRET, &[9; 16], false))
        .unwrap()
}

#[test]
fn wrap_and_unwrap_templates() {
    let s = session("derive-wrap-template");
    // A wrapping key that wraps only AES keys, and unwraps keys labelled and unable to sign.
    let only_aes = [Attribute::KeyType(KeyType::AES)];
    let unwrapped_as = [
        Attribute::Label(b"unwrapped".to_vec()),
        Attribute::Sign(false),
    ];
    let kek = create_with_arrays(
        &s,
        &secret_template(KeyType::AES, &[7; 32], false),
        &[
            (cryptoki_sys::CKA_WRAP_TEMPLATE, &only_aes),
            (cryptoki_sys::CKA_UNWRAP_TEMPLATE, &unwrapped_as),
        ],
    )
    .unwrap();
    let aes = s
        .create_object(&secret_template(KeyType::AES, &[1; 16], false))
        .unwrap();
    let generic = s
        .create_object(&secret_template(KeyType::GENERIC_SECRET, &[2; 16], false))
        .unwrap();
    let wrapped = s
        .wrap_key(&Mechanism::AesKeyWrap, kek, aes)
        .expect("an AES key matches");
    assert_eq!(
        rv(s.wrap_key(&Mechanism::AesKeyWrap, kek, generic)),
        RvError::KeyNotWrappable
    );
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    let key = s
        .unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &template)
        .unwrap();
    assert_eq!(value(&s, key), [1; 16]);
    assert_eq!(get_bytes(&s, key, AttributeType::Label), b"unwrapped");
    assert!(!get_bool(&s, key, AttributeType::Sign));
    let mut signing = template.to_vec();
    signing.push(Attribute::Sign(true));
    assert_eq!(
        rv(s.unwrap_key(&Mechanism::AesKeyWrap, kek, &wrapped, &signing)),
        RvError::TemplateInconsistent
    );
    // Read back, both arrays.
    assert_eq!(
        get_array(&s, kek, cryptoki_sys::CKA_WRAP_TEMPLATE),
        vec![(
            cryptoki_sys::CKA_KEY_TYPE,
            cryptoki_sys::CKK_AES.to_ne_bytes().to_vec()
        )]
    );
    assert_eq!(
        get_array(&s, kek, cryptoki_sys::CKA_UNWRAP_TEMPLATE).len(),
        2
    );
}

#[test]
fn malformed_attribute_arrays_are_refused() {
    let s = session("derive-bad-arrays");
    let t = secret_template(KeyType::GENERIC_SECRET, &[3; 16], false);
    // Not a whole number of CK_ATTRIBUTEs.
    let mut inner = raw_template(&[Attribute::Sensitive(true)]);
    let mut raw_t = raw_template(&t);
    raw_t.push(cryptoki_sys::CK_ATTRIBUTE {
        type_: cryptoki_sys::CKA_DERIVE_TEMPLATE,
        pValue: inner.as_mut_ptr().cast(),
        ulValueLen: (ENTRY - 1) as cryptoki_sys::CK_ULONG,
    });
    let mut h = 0;
    // SAFETY: every pointer refers to a live local buffer of the stated length.
    let rv_short =
        unsafe { raw().C_CreateObject(s.handle(), raw_t.as_mut_ptr(), raw_t.len() as u64, &mut h) };
    assert_eq!(rv_short, cryptoki_sys::CKR_ATTRIBUTE_VALUE_INVALID);
    // An attribute sqlhsm does not know inside, or a malformed value.
    let unknown = [Attribute::VendorDefined((
        AttributeType::VendorDefined(0x8000_1234),
        vec![1],
    ))];
    assert_eq!(
        rv(create_with_arrays(
            &s,
            &t,
            &[(cryptoki_sys::CKA_DERIVE_TEMPLATE, &unknown)]
        )),
        RvError::AttributeValueInvalid
    );
    let bad_bool = [Attribute::VendorDefined((
        AttributeType::VendorDefined(cryptoki_sys::CKA_SENSITIVE),
        vec![1, 1],
    ))];
    assert_eq!(
        rv(create_with_arrays(
            &s,
            &t,
            &[(cryptoki_sys::CKA_UNWRAP_TEMPLATE, &bad_bool)]
        )),
        RvError::AttributeValueInvalid
    );
    // A public key has no CKA_DERIVE_TEMPLATE... (it is a secret- and private-key attribute),
    // a data object none of them.
    let data = [
        Attribute::Class(ObjectClass::DATA),
        Attribute::Token(false),
        Attribute::Value(b"x".to_vec()),
    ];
    let any = [Attribute::Sensitive(true)];
    assert!(create_with_arrays(&s, &data, &[(cryptoki_sys::CKA_DERIVE_TEMPLATE, &any)]).is_err());
}

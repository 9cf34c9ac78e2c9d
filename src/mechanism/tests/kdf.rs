//! HKDF (RFC 5869 test cases) and SP 800-108 (NIST CAVP counter- and feedback-mode known
//! answers), through the registry's derive functions.

use super::*;
use crate::types::{CounterFormat, HkdfSalt, PrfData};

fn hkdf_param(
    extract: bool,
    expand: bool,
    prf: CK_MECHANISM_TYPE,
    salt: HkdfSalt,
    info: &[u8],
) -> MechanismParam {
    MechanismParam::Hkdf {
        extract,
        expand,
        prf,
        salt,
        info: info.to_vec(),
    }
}

fn hkdf(param: &MechanismParam, ikm: &[u8], len: Option<usize>, keys: &[&[u8]]) -> Result<Vec<u8>> {
    Ok(derive_as(
        CKM_HKDF_DERIVE,
        &secret(ikm),
        CKK_GENERIC_SECRET,
        param,
        len,
        keys,
        &[],
    )?
    .remove(0))
}

#[test]
fn hkdf_rfc5869_cases() {
    // RFC 5869 A.1 (SHA-256), A.3 (no salt, no info), A.4 (SHA-1).
    let ikm = [0x0b; 22];
    let salt = hex::decode("000102030405060708090a0b0c").unwrap();
    let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
    let okm1 =
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
    let p = hkdf_param(true, true, CKM_SHA256, HkdfSalt::Data(salt.clone()), &info);
    assert_eq!(hex::encode(hkdf(&p, &ikm, Some(42), &[]).unwrap()), okm1);
    // The salt as a key gives the same.
    let p = hkdf_param(true, true, CKM_SHA256, HkdfSalt::Key(7), &info);
    assert_eq!(
        hex::encode(hkdf(&p, &ikm, Some(42), &[&salt]).unwrap()),
        okm1
    );
    // Extract only: the PRK.
    let p = hkdf_param(true, false, CKM_SHA256, HkdfSalt::Data(salt.clone()), &[]);
    let prk = hkdf(&p, &ikm, None, &[]).unwrap();
    assert_eq!(
        hex::encode(&prk),
        "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
    );
    assert_eq!(rv(hkdf(&p, &ikm, Some(16), &[])), Rv::TEMPLATE_INCONSISTENT);
    // Expand only, from the PRK.
    let p = hkdf_param(false, true, CKM_SHA256, HkdfSalt::Null, &info);
    assert_eq!(hex::encode(hkdf(&p, &prk, Some(42), &[]).unwrap()), okm1);
    let p = hkdf_param(true, true, CKM_SHA256, HkdfSalt::Null, &[]);
    assert_eq!(
        hex::encode(hkdf(&p, &ikm, Some(42), &[]).unwrap()),
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    );
    let ikm4 = [0x0b; 11];
    let p = hkdf_param(
        true,
        true,
        CKM_SHA_1,
        HkdfSalt::Data(salt[..13].to_vec()),
        &info,
    );
    assert_eq!(
        hex::encode(hkdf(&p, &ikm4, Some(42), &[]).unwrap()),
        "085a01ea1b10f36933068b56efa5ad81a4f14b822f5b091568a9cdd4f155fda2c22e422478d305f3f896"
    );
    // Refusals: no step, an unknown hash, no length to expand to, too long.
    let none = hkdf_param(false, false, CKM_SHA256, HkdfSalt::Null, &[]);
    assert_eq!(
        rv(hkdf(&none, &ikm, Some(16), &[])),
        Rv::MECHANISM_PARAM_INVALID
    );
    let md5 = hkdf_param(true, true, CKM_MD5, HkdfSalt::Null, &[]);
    assert_eq!(
        rv(hkdf(&md5, &ikm, Some(16), &[])),
        Rv::MECHANISM_PARAM_INVALID
    );
    let p = hkdf_param(true, true, CKM_SHA256, HkdfSalt::Null, &[]);
    assert_eq!(rv(hkdf(&p, &ikm, None, &[])), Rv::TEMPLATE_INCOMPLETE);
    assert_eq!(
        rv(hkdf(&p, &ikm, Some(255 * 32 + 1), &[])),
        Rv::KEY_SIZE_RANGE
    );
    assert_eq!(
        rv(derive_as(
            CKM_HKDF_DERIVE,
            &secret(b"k"),
            CKK_GENERIC_SECRET,
            &MechanismParam::None,
            Some(16),
            &[],
            &[]
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
}

const BE32: CounterFormat = CounterFormat {
    little_endian: false,
    width_bits: 32,
};

#[allow(clippy::too_many_arguments)]
fn kbkdf(
    mech: CK_MECHANISM_TYPE,
    prf: CK_MECHANISM_TYPE,
    key_type: CK_KEY_TYPE,
    key: &[u8],
    data: Vec<PrfData>,
    iv: Option<Vec<u8>>,
    len: usize,
    additional: &[usize],
) -> Result<Vec<Vec<u8>>> {
    let param = MechanismParam::Kbkdf {
        prf,
        data,
        iv,
        additional: Vec::new(),
    };
    derive_as(
        mech,
        &secret(key),
        key_type,
        &param,
        Some(len),
        &[],
        additional,
    )
}

/// NIST CAVP "KDF in Counter Mode" (CAVS 14.4), CTRLOCATION = BEFORE_FIXED, RLEN = 32 bits:
/// K(i) = PRF(KI, [i]_32 || FixedInputData).
#[test]
fn sp800_108_counter_cavp() {
    let cases: &[(CK_MECHANISM_TYPE, CK_KEY_TYPE, &str, &str, &str)] = &[
        (
            CKM_SHA256_HMAC,
            CKK_GENERIC_SECRET,
            "dd1d91b7d90b2bd3138533ce92b272fbf8a369316aefe242e659cc0ae238afe0",
            "01322b96b30acd197979444e468e1c5c6859bf1b1cf951b7e725303e237e46b864a145fab25e517b08f8683d0315bb2911d80a0e8aba17f3b413faac",
            "10621342bfb0fd40046c0e29f2cfdbf0",
        ),
        (
            CKM_SHA256_HMAC,
            CKK_GENERIC_SECRET,
            "e204d6d466aad507ffaf6d6dab0a5b26152c9e21e764370464e360c8fbc765c6",
            "7b03b98d9f94b899e591f3ef264b71b193fba7043c7e953cde23bc5384bc1a6293580115fae3495fd845dadbd02bd6455cf48d0f62b33e62364a3a80",
            "770dfab6a6a4a4bee0257ff335213f78d8287b4fd537d5c1fffa956910e7c779",
        ),
        (
            CKM_SHA256_HMAC,
            CKK_GENERIC_SECRET,
            "c4bedbddb66493e7c7259a3bbbc25f8c7e0ca7fe284d92d431d9cd99a0d214ac",
            "1c69c54766791e315c2cc5c47ecd3ffab87d0d273dd920e70955814c220eacace6a5946542da3dfe24ff626b4897898cafb7db83bdff3c14fa46fd4b",
            "1da47638d6c9c4d04d74d4640bbd42ab814d9e8cc22f4326695239f96b0693f12d0dd1152cf44430",
        ),
        (
            CKM_AES_CMAC,
            CKK_AES,
            "c10b152e8c97b77e18704e0f0bd38305",
            "98cd4cbbbebe15d17dc86e6dbad800a2dcbd64f7c7ad0e78e9cf94ffdba89d03e97eadf6c4f7b806caf52aa38f09d0eb71d71f497bcc6906b48d36c4",
            "26faf61908ad9ee881b8305c221db53f",
        ),
        (
            CKM_AES_CMAC,
            CKK_AES,
            "695f1b1a16c949cea51cdf2554ec9d42",
            "4fce5942832a390aa1cbe8a0bf9d202cb799e986c9d6b51f45e4d597a6b57f06a4ebfec6467335d116b7f5f9c5b954062f661820f5db2a5bbb3e0625",
            "d34b601ec18c34dfa0f9e0b7523e218bdddb9befe8d08b6c0202d75ace0dba89",
        ),
        (
            CKM_AES_CMAC,
            CKK_AES,
            "d0b1b3b70b2393c48ca05159e7e28cbeadea93f28a7cdae964e5136070c45d5c",
            "dd2f151a3f173492a6fbbb602189d51ddf8ef79fc8e96b8fcbe6dabe73a35b48104f9dff2d63d48786d2b3af177091d646a9efae005bdfacb61a1214",
            "8c449fb474d1c1d4d2a33827103b656a",
        ),
    ];
    for (prf, key_type, ki, fixed, ko) in cases {
        let data = vec![
            PrfData::Iteration(Some(BE32)),
            PrfData::Bytes(hex::decode(fixed).unwrap()),
        ];
        let ko = hex::decode(ko).unwrap();
        let out = kbkdf(
            CKM_SP800_108_COUNTER_KDF,
            *prf,
            *key_type,
            &hex::decode(ki).unwrap(),
            data.clone(),
            None,
            ko.len(),
            &[],
        )
        .unwrap();
        assert_eq!(out, vec![ko.clone()], "{ki}");
        // The same stream cut into a key and an additional key.
        let out = kbkdf(
            CKM_SP800_108_COUNTER_KDF,
            *prf,
            *key_type,
            &hex::decode(ki).unwrap(),
            data,
            None,
            8,
            &[ko.len() - 8],
        )
        .unwrap();
        assert_eq!(out, vec![ko[..8].to_vec(), ko[8..].to_vec()]);
    }
}

/// NIST CAVP "KDF in Feedback Mode" (no zero-length IV), CTRLOCATION = AFTER_ITER, RLEN = 32:
/// K(i) = PRF(KI, K(i-1) || [i]_32 || FixedInputData), K(0) = IV.
#[test]
fn sp800_108_feedback_cavp() {
    let ki =
        hex::decode("93f698e842eed75394d629d957e2e89c6e741f810b623c8b901e38376d068e7b").unwrap();
    let iv =
        hex::decode("9f575d9059d3e0c0803f08112f8a806de3c3471912cdf42b095388b14b33508e").unwrap();
    let fixed = hex::decode(
        "53b89c18690e2057a1d167822e636de50be0018532c431f7f5e37f77139220d5e042599ebe266af5767ee18cd2c5c19a1f0f80",
    )
    .unwrap();
    let ko = "bd1476f43a4e315747cf5918e0ea5bc0d98769457477c3ab18b742def0e079a933b756365afb5541f253fee43c6fd788a44041038509e9eeb68f7d65ffbb5f95";
    let data = vec![
        PrfData::Iteration(None),
        PrfData::Counter(BE32),
        PrfData::Bytes(fixed),
    ];
    let out = kbkdf(
        CKM_SP800_108_FEEDBACK_KDF,
        CKM_SHA256_HMAC,
        CKK_GENERIC_SECRET,
        &ki,
        data.clone(),
        Some(iv.clone()),
        64,
        &[],
    )
    .unwrap();
    assert_eq!(hex::encode(&out[0]), ko);
    // The feedback mode's iteration variable has no format; the counter mode's has one.
    let counter_style = vec![PrfData::Iteration(Some(BE32))];
    assert_eq!(
        rv(kbkdf(
            CKM_SP800_108_FEEDBACK_KDF,
            CKM_SHA256_HMAC,
            CKK_GENERIC_SECRET,
            &ki,
            counter_style.clone(),
            Some(iv),
            16,
            &[]
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(kbkdf(
            CKM_SP800_108_COUNTER_KDF,
            CKM_SHA256_HMAC,
            CKK_GENERIC_SECRET,
            &ki,
            data,
            None,
            16,
            &[]
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
}

#[test]
fn sp800_108_data_parameters() {
    let key = [7u8; 32];
    let run = |data: Vec<PrfData>, len: usize, additional: &[usize]| {
        kbkdf(
            CKM_SP800_108_COUNTER_KDF,
            CKM_SHA256_HMAC,
            CKK_GENERIC_SECRET,
            &key,
            data,
            None,
            len,
            additional,
        )
    };
    // The DKM length is the sum of the keys (in bits), or of the PRF blocks; here by hand.
    let dkm = |sum_of_keys| PrfData::DkmLength {
        sum_of_keys,
        format: CounterFormat {
            little_endian: true,
            width_bits: 16,
        },
    };
    let le8 = CounterFormat {
        little_endian: true,
        width_bits: 8,
    };
    let out = run(
        vec![
            PrfData::Iteration(Some(le8)),
            PrfData::Bytes(b"L".to_vec()),
            dkm(true),
        ],
        20,
        &[20],
    )
    .unwrap();
    let mut by_hand = Vec::new();
    for i in 1u8..=2 {
        let mut mac =
            crate::crypto::mac::Mac::hmac(crate::crypto::digest::HashAlg::Sha256, &key).unwrap();
        mac.update(&[i]).unwrap();
        mac.update(b"L").unwrap();
        mac.update(&320u16.to_le_bytes()).unwrap();
        by_hand.extend(mac.finish().unwrap());
    }
    assert_eq!(out, vec![by_hand[..20].to_vec(), by_hand[20..40].to_vec()]);
    let segments = run(
        vec![
            PrfData::Iteration(Some(le8)),
            PrfData::Bytes(b"L".to_vec()),
            dkm(false),
        ],
        20,
        &[20],
    )
    .unwrap();
    assert_ne!(segments, out, "512 bits of segments, not 320 of keys");
    // Errors: no iteration variable, two, a bad width, a key too long for the counter, a PRF
    // that is not one, a CMAC PRF with a generic secret.
    assert_eq!(
        rv(run(vec![PrfData::Bytes(vec![1])], 16, &[])),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(run(
            vec![
                PrfData::Iteration(Some(BE32)),
                PrfData::Iteration(Some(BE32))
            ],
            16,
            &[]
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
    let odd = CounterFormat {
        little_endian: false,
        width_bits: 12,
    };
    assert_eq!(
        rv(run(vec![PrfData::Iteration(Some(odd))], 16, &[])),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(run(vec![PrfData::Iteration(Some(le8))], 32 * 256, &[])),
        Rv::KEY_SIZE_RANGE
    );
    assert_eq!(
        run(vec![PrfData::Iteration(Some(le8))], 32 * 255, &[]).unwrap()[0].len(),
        8160
    );
    assert_eq!(
        rv(kbkdf(
            CKM_SP800_108_COUNTER_KDF,
            CKM_SHA256,
            CKK_GENERIC_SECRET,
            &key,
            vec![PrfData::Iteration(Some(BE32))],
            None,
            16,
            &[]
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
    assert_eq!(
        rv(kbkdf(
            CKM_SP800_108_COUNTER_KDF,
            CKM_AES_CMAC,
            CKK_GENERIC_SECRET,
            &[1; 16],
            vec![PrfData::Iteration(Some(BE32))],
            None,
            16,
            &[]
        )),
        Rv::KEY_TYPE_INCONSISTENT
    );
    // Key data: the value of a key the parameter names.
    let param = MechanismParam::Kbkdf {
        prf: CKM_SHA256_HMAC,
        data: vec![PrfData::Iteration(Some(BE32)), PrfData::Key(9)],
        iv: None,
        additional: Vec::new(),
    };
    let with_key = derive_as(
        CKM_SP800_108_COUNTER_KDF,
        &secret(&key),
        CKK_GENERIC_SECRET,
        &param,
        Some(16),
        &[b"fixed"],
        &[],
    )
    .unwrap();
    let with_bytes = run(
        vec![
            PrfData::Iteration(Some(BE32)),
            PrfData::Bytes(b"fixed".to_vec()),
        ],
        16,
        &[],
    )
    .unwrap();
    assert_eq!(with_key, with_bytes);
}

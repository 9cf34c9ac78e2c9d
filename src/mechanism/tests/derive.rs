//! The simple derivations: concatenation, XOR, bit extraction, AES encryption of data.

use super::*;

fn run(
    mech: CK_MECHANISM_TYPE,
    base: &[u8],
    param: &MechanismParam,
    len: Option<usize>,
    keys: &[&[u8]],
) -> Result<Vec<u8>> {
    Ok(derive_as(
        mech,
        &secret(base),
        CKK_GENERIC_SECRET,
        param,
        len,
        keys,
        &[],
    )?
    .remove(0))
}

fn data(bytes: &[u8]) -> MechanismParam {
    MechanismParam::Data(Zeroizing::new(bytes.to_vec()))
}

#[test]
fn concatenations_and_xor() {
    let key = MechanismParam::Key(5);
    assert_eq!(
        run(CKM_CONCATENATE_BASE_AND_KEY, b"abc", &key, None, &[b"de"]).unwrap(),
        b"abcde"
    );
    assert_eq!(
        run(
            CKM_CONCATENATE_BASE_AND_KEY,
            b"abc",
            &key,
            Some(4),
            &[b"de"]
        )
        .unwrap(),
        b"abcd"
    );
    assert_eq!(
        rv(run(
            CKM_CONCATENATE_BASE_AND_KEY,
            b"abc",
            &key,
            Some(6),
            &[b"de"]
        )),
        Rv::KEY_SIZE_RANGE
    );
    assert_eq!(
        run(
            CKM_CONCATENATE_BASE_AND_DATA,
            b"abc",
            &data(b"xy"),
            None,
            &[]
        )
        .unwrap(),
        b"abcxy"
    );
    assert_eq!(
        run(
            CKM_CONCATENATE_DATA_AND_BASE,
            b"abc",
            &data(b"xy"),
            None,
            &[]
        )
        .unwrap(),
        b"xyabc"
    );
    assert_eq!(
        run(
            CKM_CONCATENATE_DATA_AND_BASE,
            b"abc",
            &data(b"xy"),
            Some(3),
            &[]
        )
        .unwrap(),
        b"xya"
    );
    // XOR: as long as the shorter of the two.
    assert_eq!(
        run(
            CKM_XOR_BASE_AND_DATA,
            &[0xff, 0x0f, 0xaa],
            &data(&[0x0f, 0xff]),
            None,
            &[]
        )
        .unwrap(),
        [0xf0, 0xf0]
    );
    assert_eq!(
        rv(run(
            CKM_XOR_BASE_AND_DATA,
            &[0xff, 0x0f, 0xaa],
            &data(&[0x0f, 0xff]),
            Some(3),
            &[]
        )),
        Rv::KEY_SIZE_RANGE
    );
    assert_eq!(
        rv(run(
            CKM_CONCATENATE_BASE_AND_DATA,
            b"abc",
            &MechanismParam::None,
            None,
            &[]
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
}

#[test]
fn extract_key_from_key_spec_example() {
    // Current Mechanisms §2.42.6: 5 bytes from 0x329F84A9, starting at bit 21, wrapping.
    let bit = |b: CK_ULONG| MechanismParam::Bytes(b.to_ne_bytes().to_vec());
    let base = [0x32, 0x9f, 0x84, 0xa9];
    assert_eq!(
        run(CKM_EXTRACT_KEY_FROM_KEY, &base, &bit(21), Some(5), &[]).unwrap(),
        [0x95, 0x26, 0x53, 0xf0, 0x95]
    );
    // Bit 0 is the top bit of the first byte; an index past the end wraps.
    assert_eq!(
        run(CKM_EXTRACT_KEY_FROM_KEY, &base, &bit(0), Some(4), &[]).unwrap(),
        base
    );
    assert_eq!(
        run(CKM_EXTRACT_KEY_FROM_KEY, &base, &bit(32 + 8), Some(1), &[]).unwrap(),
        [0x9f]
    );
    assert_eq!(
        rv(run(CKM_EXTRACT_KEY_FROM_KEY, &base, &bit(0), None, &[])),
        Rv::TEMPLATE_INCOMPLETE
    );
    assert_eq!(
        rv(run(CKM_EXTRACT_KEY_FROM_KEY, &base, &bit(0), Some(0), &[])),
        Rv::KEY_SIZE_RANGE
    );
    assert_eq!(
        rv(run(
            CKM_EXTRACT_KEY_FROM_KEY,
            &base,
            &MechanismParam::Bytes(vec![1]),
            Some(1),
            &[]
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
}

#[test]
fn aes_encrypt_data_known_answers() {
    // FIPS 197 C.1 (ECB of one block) and SP 800-38A F.2.1 (CBC-AES128, first two blocks).
    let key = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
    let block = hex::decode("00112233445566778899aabbccddeeff").unwrap();
    let ecb = derive_as(
        CKM_AES_ECB_ENCRYPT_DATA,
        &secret(&key),
        CKK_AES,
        &data(&block),
        None,
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(hex::encode(&ecb[0]), "69c4e0d86a7b0430d8cdb78070b4c55a");
    let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
    let iv: [u8; 16] = hex::decode("000102030405060708090a0b0c0d0e0f")
        .unwrap()
        .try_into()
        .unwrap();
    let plain =
        hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51").unwrap();
    let param = MechanismParam::CbcData {
        iv,
        data: Zeroizing::new(plain),
    };
    let cbc = derive_as(
        CKM_AES_CBC_ENCRYPT_DATA,
        &secret(&key),
        CKK_AES,
        &param,
        Some(32),
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(
        hex::encode(&cbc[0]),
        "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
    );
    assert_eq!(
        rv(derive_as(
            CKM_AES_ECB_ENCRYPT_DATA,
            &secret(&key),
            CKK_AES,
            &data(&[0; 15]),
            None,
            &[],
            &[]
        )),
        Rv::MECHANISM_PARAM_INVALID
    );
}

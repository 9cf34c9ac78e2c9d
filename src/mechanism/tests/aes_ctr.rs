//! AES-CTR: a known answer, multi-part, and the counter-width limits.

use super::*;

fn ctr(bits: CK_ULONG, block: [u8; 16]) -> MechanismParam {
    let mut p = bits.to_ne_bytes().to_vec();
    p.extend_from_slice(&block);
    MechanismParam::Bytes(p)
}

#[test]
fn aes_ctr_known_answer_multipart_and_counter_limits() {
    // NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt), first two blocks.
    let key = secret(&hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap());
    let block: [u8; 16] = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
        .unwrap()
        .try_into()
        .unwrap();
    let pt =
        hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51").unwrap();
    let ct = encrypt(CKM_AES_CTR, &key, &ctr(128, block), &pt).unwrap();
    assert_eq!(
        hex::encode(&ct),
        "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"
    );
    assert_eq!(
        decrypt(CKM_AES_CTR, &key, &ctr(128, block), &ct).unwrap(),
        pt
    );
    for key_len in [16, 24, 32] {
        let key = secret(&vec![9u8; key_len]);
        let p = ctr(64, [1u8; 16]);
        let data: Vec<u8> = (0..100u8).collect();
        let ct = encrypt(CKM_AES_CTR, &key, &p, &data).unwrap();
        assert_eq!(ct.len(), data.len());
        for chunk in [1, 7, 16, 33] {
            assert_eq!(
                cipher_chunks(CKM_AES_CTR, true, &key, &p, &data, chunk).unwrap(),
                ct
            );
            assert_eq!(
                cipher_chunks(CKM_AES_CTR, false, &key, &p, &ct, chunk).unwrap(),
                data
            );
        }
    }
    // 8 counter bits starting at 0xfe: two blocks (32 bytes) before wrapping, no more.
    let mut start = [0u8; 16];
    start[15] = 0xfe;
    encrypt(CKM_AES_CTR, &key, &ctr(8, start), &[0u8; 32]).unwrap();
    assert_eq!(
        rv(encrypt(CKM_AES_CTR, &key, &ctr(8, start), &[0u8; 33])),
        Rv::DATA_LEN_RANGE
    );
    assert_eq!(
        rv(cipher_chunks(
            CKM_AES_CTR,
            true,
            &key,
            &ctr(8, start),
            &[0u8; 40],
            10
        )),
        Rv::DATA_LEN_RANGE
    );
    // Counter bits above the low byte do not count: 0x01fe with 8 bits still has 2 blocks.
    start[14] = 0x01;
    assert_eq!(
        rv(encrypt(CKM_AES_CTR, &key, &ctr(8, start), &[0u8; 33])),
        Rv::DATA_LEN_RANGE
    );
    // With all 128 bits, a full counter still allows one block.
    encrypt(CKM_AES_CTR, &key, &ctr(128, [0xff; 16]), &[0u8; 16]).unwrap();
    assert_eq!(
        rv(encrypt(
            CKM_AES_CTR,
            &key,
            &ctr(128, [0xff; 16]),
            &[0u8; 17]
        )),
        Rv::DATA_LEN_RANGE
    );
    for bad in [
        ctr(0, start),
        ctr(129, start),
        NONE,
        MechanismParam::Bytes(vec![0; 16]),
    ] {
        assert_eq!(
            rv(encrypt(CKM_AES_CTR, &key, &bad, b"x")),
            Rv::MECHANISM_PARAM_INVALID
        );
    }
}

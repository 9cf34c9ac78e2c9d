//! Symmetric ciphers beyond AES ECB/CBC/CTR/GCM: AES in OFB and CFB (1-, 8- and 128-bit
//! feedback, NIST SP 800-38A), XTS (SP 800-38E) and CCM (SP 800-38C); ChaCha20 and
//! ChaCha20-Poly1305 (RFC 8439); Triple DES (SP 800-67) in ECB and CBC, unpadded. All of them are
//! in OpenSSL's default provider: DES-EDE3 is, single DES is not (it lives in the legacy
//! provider, which sqlhsm does not load), so single DES is run as DES-EDE3 with three equal keys,
//! which is the same permutation (SP 800-67 §3.2, keying option 3).
//!
//! As in `cipher`: buffering, padding, length limits and PKCS#11 codes are the mechanisms' job;
//! an authenticated decryption whose tag does not verify answers `None` and lets no plaintext out.

use openssl::cipher::CipherRef;
use openssl::cipher_ctx::{CipherCtx, CipherCtxRef};
use zeroize::Zeroizing;

use crate::crypto::cipher::{Alg, Ctx, AES_BLOCK};
use crate::crypto::openssl_error;
use crate::error::{Result, Rv};

/// The DES block size in bytes.
pub const DES_BLOCK: usize = 8;
/// Triple DES key length in bytes (three DES keys; a double-length key repeats its first).
pub const TDES_KEY: usize = 24;
/// ChaCha20 key length in bytes.
pub const CHACHA20_KEY: usize = 32;
/// ChaCha20-Poly1305 nonce (IETF, RFC 8439) and tag lengths in bytes.
pub const CHACHA20_POLY1305_NONCE: usize = 12;
pub const POLY1305_TAG: usize = 16;
/// The most XTS encrypts under one tweak in OpenSSL: 2^20 blocks (IEEE 1619-2018's limit).
pub const XTS_MAX_DATA: usize = (1 << 20) * AES_BLOCK;

/// AES feedback modes (SP 800-38A §6.3, §6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AesFeedback {
    Ofb,
    Cfb1,
    Cfb8,
    Cfb128,
}

fn aes_feedback_alg(mode: AesFeedback, key_len: usize) -> Option<Alg> {
    use Alg::*;
    let algs = match mode {
        AesFeedback::Ofb => [Aes128Ofb, Aes192Ofb, Aes256Ofb],
        AesFeedback::Cfb1 => [Aes128Cfb1, Aes192Cfb1, Aes256Cfb1],
        AesFeedback::Cfb8 => [Aes128Cfb8, Aes192Cfb8, Aes256Cfb8],
        AesFeedback::Cfb128 => [Aes128Cfb128, Aes192Cfb128, Aes256Cfb128],
    };
    Alg::aes(key_len, algs)
}

/// A cipher fed as the data comes, its chaining state kept between calls. Stream and feedback
/// modes give out as many bytes as they are given; Triple DES ECB/CBC takes whole blocks only.
pub struct Streaming {
    ctx: Ctx,
    block: usize,
}

impl Streaming {
    /// AES in a feedback mode with a 16-byte IV; `CKR_KEY_SIZE_RANGE` for a key that is not
    /// 16, 24 or 32 bytes. CFB1 works bit by bit over each byte, most significant bit first.
    pub fn aes_feedback(
        key: &[u8],
        mode: AesFeedback,
        iv: &[u8; AES_BLOCK],
        encrypt: bool,
    ) -> Result<Streaming> {
        let alg = aes_feedback_alg(mode, key.len()).ok_or(Rv::KEY_SIZE_RANGE)?;
        Ok(Streaming {
            ctx: Ctx::new(alg, encrypt, key, Some(iv))?,
            block: 1,
        })
    }

    /// ChaCha20 (RFC 8439 §2.4) from its 16-byte initial counter-and-nonce block, little-endian
    /// words as the state holds them: a 32-bit counter and a 96-bit nonce, or a 64-bit counter
    /// and a 64-bit nonce (the counter's overflow runs into the next word, as DJB's original
    /// does). Encryption and decryption are the same keystream XOR.
    pub fn chacha20(key: &[u8], block: &[u8; 16]) -> Result<Streaming> {
        if key.len() != CHACHA20_KEY {
            Err(Rv::KEY_SIZE_RANGE)?
        }
        Ok(Streaming {
            ctx: Ctx::new(Alg::Chacha20, true, key, Some(block))?,
            block: 1,
        })
    }

    /// Triple DES (EDE) with a 24-byte key, in ECB (`iv` `None`) or CBC with an 8-byte IV,
    /// unpadded: fed whole 8-byte blocks only.
    pub fn tdes(key: &[u8], iv: Option<&[u8; DES_BLOCK]>, encrypt: bool) -> Result<Streaming> {
        if key.len() != TDES_KEY {
            Err(Rv::KEY_SIZE_RANGE)?
        }
        let (alg, iv) = match iv {
            None => (Alg::DesEde3Ecb, None),
            Some(iv) => (Alg::DesEde3Cbc, Some(&iv[..])),
        };
        Ok(Streaming {
            ctx: Ctx::new(alg, encrypt, key, iv)?,
            block: DES_BLOCK,
        })
    }

    /// 1 for stream and feedback modes, 8 for Triple DES.
    pub fn block_size(&self) -> usize {
        self.block
    }

    /// Processes `data` (for Triple DES a multiple of 8 bytes: `CKR_DATA_LEN_RANGE` otherwise)
    /// into the first `data.len()` bytes of `out`; returns that length.
    pub fn update_into(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize> {
        self.ctx.update(data, out)
    }

    /// [`Streaming::update_into`] into a fresh (zeroized) buffer.
    pub fn update(&mut self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(vec![0u8; data.len()]);
        let len = self.update_into(data, &mut out)?;
        out.truncate(len);
        Ok(out)
    }
}

/// AES-XTS (SP 800-38E) of one data unit under a 16-byte tweak, with ciphertext stealing, into
/// the first `data.len()` bytes of `out`: the key is 32 (AES-128) or 64 bytes (AES-256), its two
/// halves different; the data 16 bytes to [`XTS_MAX_DATA`]. `CKR_KEY_SIZE_RANGE`,
/// `CKR_KEY_TYPE_INCONSISTENT` (equal halves) and `CKR_DATA_LEN_RANGE` otherwise.
pub fn aes_xts_into(
    key: &[u8],
    tweak: &[u8; AES_BLOCK],
    data: &[u8],
    encrypt: bool,
    out: &mut [u8],
) -> Result<usize> {
    let alg = match key.len() {
        32 => Alg::Aes128Xts,
        64 => Alg::Aes256Xts,
        _ => Err(Rv::KEY_SIZE_RANGE)?,
    };
    let (k1, k2) = key.split_at(key.len() / 2);
    if openssl::memcmp::eq(k1, k2) {
        Err(Rv::KEY_TYPE_INCONSISTENT)?
    }
    if !(AES_BLOCK..=XTS_MAX_DATA).contains(&data.len()) {
        Err(Rv::DATA_LEN_RANGE)?
    }
    // XTS takes the whole unit in one call (its block size is 1 to OpenSSL).
    Ctx::new(alg, encrypt, key, Some(tweak))?.update(data, out)
}

/// [`aes_xts_into`] into a fresh (zeroized) buffer.
pub fn aes_xts(
    key: &[u8],
    tweak: &[u8; AES_BLOCK],
    data: &[u8],
    encrypt: bool,
) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(vec![0u8; data.len()]);
    let len = aes_xts_into(key, tweak, data, encrypt, &mut out)?;
    out.truncate(len);
    Ok(out)
}

fn aes_ccm_alg(key_len: usize) -> Option<Alg> {
    use Alg::*;
    Alg::aes(key_len, [Aes128Ccm, Aes192Ccm, Aes256Ccm])
}

/// CCM's limits (SP 800-38C §A.1): a nonce of 7..=13 bytes, an even tag of 4..=16 bytes.
fn ccm_check(nonce: &[u8], tag_len: usize) -> Result<()> {
    if !(7..=13).contains(&nonce.len())
        || !(4..=16).contains(&tag_len)
        || !tag_len.is_multiple_of(2)
    {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    Ok(())
}

/// A CCM context keyed for one message. The nonce and tag lengths are set before the key:
/// OpenSSL fixes CCM's M and L when the key is set, so a tag length given afterwards would
/// not take (which is why this does not use `Ctx::aead`).
fn ccm_context(
    cipher: &CipherRef,
    encrypt: bool,
    key: &[u8],
    nonce: &[u8],
    tag: std::result::Result<usize, &[u8]>,
    data_len: usize,
    aad: &[u8],
) -> std::result::Result<CipherCtx, openssl::error::ErrorStack> {
    let mut ctx = CipherCtx::new()?;
    let init = if encrypt {
        CipherCtxRef::encrypt_init
    } else {
        CipherCtxRef::decrypt_init
    };
    init(&mut ctx, Some(cipher), None, None)?;
    ctx.set_iv_length(nonce.len())?;
    match tag {
        Ok(len) => ctx.set_tag_length(len)?,
        Err(tag) => ctx.set_tag(tag)?,
    }
    init(&mut ctx, None, Some(key), Some(nonce))?;
    ctx.set_data_len(data_len)?;
    if !aad.is_empty() {
        ctx.cipher_update(aad, None)?;
    }
    Ok(ctx)
}

/// AES-CCM encryption of a whole message into `out`: ciphertext ‖ tag, `data.len() + tag_len`
/// bytes; returns that length.
pub fn aes_ccm_seal_into(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    data: &[u8],
    tag_len: usize,
    out: &mut [u8],
) -> Result<usize> {
    let cipher = aes_ccm_alg(key.len()).ok_or(Rv::KEY_SIZE_RANGE)?.cipher()?;
    ccm_check(nonce, tag_len)?;
    let out = out
        .get_mut(..data.len() + tag_len)
        .ok_or(Rv::GENERAL_ERROR)?;
    let mut ctx = ccm_context(cipher, true, key, nonce, Ok(tag_len), data.len(), aad)
        .map_err(openssl_error)?;
    let (body, tag) = out.split_at_mut(data.len());
    let len = ctx.cipher_update(data, Some(body)).map_err(openssl_error)?;
    if len != data.len() {
        Err(Rv::GENERAL_ERROR)?
    }
    ctx.tag(tag).map_err(openssl_error)?;
    Ok(data.len() + tag_len)
}

/// [`aes_ccm_seal_into`] into a fresh buffer.
pub fn aes_ccm_seal(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    data: &[u8],
    tag_len: usize,
) -> Result<Vec<u8>> {
    let mut out = vec![0u8; data.len() + tag_len];
    let len = aes_ccm_seal_into(key, nonce, aad, data, tag_len, &mut out)?;
    out.truncate(len);
    Ok(out)
}

/// AES-CCM decryption; `None` when the tag does not verify.
pub fn aes_ccm_open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let cipher = aes_ccm_alg(key.len()).ok_or(Rv::KEY_SIZE_RANGE)?.cipher()?;
    ccm_check(nonce, tag.len())?;
    let opened = (|| {
        let mut ctx =
            ccm_context(cipher, false, key, nonce, Err(tag), ciphertext.len(), aad).ok()?;
        let mut out = Zeroizing::new(vec![0u8; ciphertext.len()]);
        // CCM checks the tag within this one call.
        let len = ctx.cipher_update(ciphertext, Some(&mut out)).ok()?;
        out.truncate(len);
        Some(out)
    })();
    Ok(opened)
}

/// Streaming ChaCha20-Poly1305 encryption (RFC 8439 §2.8) with a 96-bit nonce into the
/// caller's buffer; the 16-byte tag comes out of [`ChachaPolySealer::finish`].
pub struct ChachaPolySealer {
    ctx: Ctx,
}

impl ChachaPolySealer {
    pub fn new(key: &[u8], nonce: &[u8], aad: &[u8]) -> Result<ChachaPolySealer> {
        if key.len() != CHACHA20_KEY {
            Err(Rv::KEY_SIZE_RANGE)?
        }
        if nonce.len() != CHACHA20_POLY1305_NONCE {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        Ok(ChachaPolySealer {
            ctx: Ctx::aead(Alg::Chacha20Poly1305, true, key, nonce, aad)?,
        })
    }

    /// Encrypts `data` into the first `data.len()` bytes of `out`.
    pub fn update(&mut self, data: &[u8], out: &mut [u8]) -> Result<usize> {
        self.ctx.update(data, out)
    }

    /// The tag, into the first 16 bytes of `out`.
    pub fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        let tag = out.get_mut(..POLY1305_TAG).ok_or(Rv::GENERAL_ERROR)?;
        self.ctx.finish_tag(tag)?;
        Ok(POLY1305_TAG)
    }
}

/// ChaCha20-Poly1305 decryption; `None` when the tag does not verify.
pub fn chacha20_poly1305_open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<Option<Zeroizing<Vec<u8>>>> {
    if key.len() != CHACHA20_KEY {
        Err(Rv::KEY_SIZE_RANGE)?
    }
    if nonce.len() != CHACHA20_POLY1305_NONCE || tag.len() != POLY1305_TAG {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    }
    let opened = (|| {
        let mut ctx = Ctx::aead(Alg::Chacha20Poly1305, false, key, nonce, aad).ok()?;
        let mut out = Zeroizing::new(vec![0u8; ciphertext.len()]);
        ctx.update(ciphertext, &mut out).ok()?;
        ctx.check_tag(tag).then_some(out)
    })();
    Ok(opened)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    const SP800_38A_KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";
    const SP800_38A_IV: &str = "000102030405060708090a0b0c0d0e0f";
    const SP800_38A_PLAIN: &str =
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51";

    fn feedback(mode: AesFeedback, data: &[u8], encrypt: bool) -> Vec<u8> {
        let iv: [u8; 16] = h(SP800_38A_IV).try_into().unwrap();
        let mut s = Streaming::aes_feedback(&h(SP800_38A_KEY), mode, &iv, encrypt).unwrap();
        // Fed in uneven pieces: the chaining state carries over.
        let (a, b) = data.split_at(data.len() / 3);
        let mut out = s.update(a).unwrap().to_vec();
        out.extend_from_slice(&s.update(b).unwrap());
        out
    }

    /// NIST SP 800-38A F.3.7 (CFB8, the first 18 bytes), F.3.13 (CFB128), F.4.1
    /// (OFB), F.3.1 (CFB1, the first 16 bits).
    #[test]
    fn sp800_38a_feedback_modes() {
        let plain = h(SP800_38A_PLAIN);
        let cases = [
            (
                AesFeedback::Cfb128,
                "3b3fd92eb72dad20333449f8e83cfb4ac8a64537a0b3a93fcde3cdad9f1ce58b",
            ),
            (
                AesFeedback::Ofb,
                "3b3fd92eb72dad20333449f8e83cfb4a7789508d16918f03f53c52dac54ed825",
            ),
        ];
        for (mode, ct) in cases {
            assert_eq!(hex::encode(feedback(mode, &plain, true)), ct, "{mode:?}");
            assert_eq!(feedback(mode, &h(ct), false), plain, "{mode:?}");
        }
        let cfb8_plain = h("6bc1bee22e409f96e93d7e117393172aae2d");
        let cfb8_ct = "3b79424c9c0dd436bace9e0ed4586a4f32b9";
        assert_eq!(
            hex::encode(feedback(AesFeedback::Cfb8, &cfb8_plain, true)),
            cfb8_ct
        );
        assert_eq!(feedback(AesFeedback::Cfb8, &h(cfb8_ct), false), cfb8_plain);
        // CFB1: plaintext bits 0110101111000001 → ciphertext bits 0110100010110011.
        assert_eq!(
            feedback(AesFeedback::Cfb1, &[0x6b, 0xc1], true),
            [0x68, 0xb3]
        );
        assert_eq!(
            feedback(AesFeedback::Cfb1, &[0x68, 0xb3], false),
            [0x6b, 0xc1]
        );
        let iv = [0u8; 16];
        let err = Streaming::aes_feedback(&[0; 20], AesFeedback::Ofb, &iv, true);
        assert_eq!(err.err().unwrap().rv(), Rv::KEY_SIZE_RANGE);
    }

    /// RFC 8439 §2.4.2: the sunscreen text, counter 1.
    #[test]
    fn rfc8439_chacha20() {
        let key = h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        let block: [u8; 16] = h("01000000000000000000004a00000000").try_into().unwrap();
        let plain = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let mut s = Streaming::chacha20(&key, &block).unwrap();
        let ct = s.update(plain).unwrap();
        assert_eq!(hex::encode(&ct[..16]), "6e2e359a2568f98041ba0728dd0d6981");
        assert_eq!(hex::encode(&ct[ct.len() - 4..]), "5e42874d");
        let mut back = Streaming::chacha20(&key, &block).unwrap();
        assert_eq!(back.update(&ct).unwrap().as_slice(), plain);
    }

    /// RFC 8439 §2.8.2.
    #[test]
    fn rfc8439_aead() {
        let key = h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
        let nonce = h("070000004041424344454647");
        let aad = h("50515253c0c1c2c3c4c5c6c7");
        let plain = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
        let mut seal = ChachaPolySealer::new(&key, &nonce, &aad).unwrap();
        let mut out = vec![0u8; plain.len() + 16];
        let a = seal.update(&plain[..50], &mut out).unwrap();
        let b = seal.update(&plain[50..], &mut out[a..]).unwrap();
        seal.finish(&mut out[a + b..]).unwrap();
        let (ct, tag) = out.split_at(plain.len());
        assert_eq!(hex::encode(tag), "1ae10b594f09e26a7e902ecbd0600691");
        let opened = chacha20_poly1305_open(&key, &nonce, &aad, ct, tag).unwrap();
        assert_eq!(opened.unwrap().as_slice(), plain);
        let mut bad = tag.to_vec();
        bad[0] ^= 1;
        assert!(chacha20_poly1305_open(&key, &nonce, &aad, ct, &bad)
            .unwrap()
            .is_none());
        assert!(ChachaPolySealer::new(&key, &nonce[..8], &aad).is_err());
    }

    /// SP 800-38C C.1 (example 1: 4-byte tag, 7-byte nonce, 8 bytes of AAD).
    #[test]
    fn sp800_38c_example_1() {
        let key = h("404142434445464748494a4b4c4d4e4f");
        let nonce = h("10111213141516");
        let aad = h("0001020304050607");
        let plain = h("20212223");
        let sealed = aes_ccm_seal(&key, &nonce, &aad, &plain, 4).unwrap();
        assert_eq!(hex::encode(&sealed), "7162015b4dac255d");
        let (ct, tag) = sealed.split_at(4);
        let opened = aes_ccm_open(&key, &nonce, &aad, ct, tag).unwrap().unwrap();
        assert_eq!(opened.as_slice(), plain);
        assert!(aes_ccm_open(&key, &nonce, b"x", ct, tag).unwrap().is_none());
        for (nonce_len, tag_len) in [(6, 4), (14, 4), (7, 3), (7, 5), (7, 18)] {
            let err = aes_ccm_seal(&key, &vec![0; nonce_len], &aad, &plain, tag_len);
            assert_eq!(err.unwrap_err().rv(), Rv::MECHANISM_PARAM_INVALID);
        }
    }

    /// IEEE 1619-2007 vector 2 (AES-128-XTS, 32 bytes, tweak 0x3333333333).
    #[test]
    fn ieee1619_vector_2() {
        let key = h("1111111111111111111111111111111122222222222222222222222222222222");
        let tweak: [u8; 16] = h("33333333330000000000000000000000").try_into().unwrap();
        let plain = [0x44u8; 32];
        let ct = aes_xts(&key, &tweak, &plain, true).unwrap();
        assert_eq!(
            hex::encode(&ct),
            "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0"
        );
        assert_eq!(aes_xts(&key, &tweak, &ct, false).unwrap().as_slice(), plain);
        let same = [7u8; 32];
        assert_eq!(
            aes_xts(&same, &tweak, &plain, true).unwrap_err().rv(),
            Rv::KEY_TYPE_INCONSISTENT
        );
        assert_eq!(
            aes_xts(&key, &tweak, &plain[..15], true).unwrap_err().rv(),
            Rv::DATA_LEN_RANGE
        );
        assert_eq!(
            aes_xts(&key[..24], &tweak, &plain, true).unwrap_err().rv(),
            Rv::KEY_SIZE_RANGE
        );
    }

    /// SP 800-67 Rev. 2 Appendix B: the TDEA ECB example (keys 0123456789ABCDEF,
    /// 23456789ABCDEF01, 456789ABCDEF0123; plaintext "The qufck brown fox jump").
    #[test]
    fn sp800_67_tdes_ecb() {
        let key = h("0123456789abcdef23456789abcdef01456789abcdef0123");
        let plain = b"The qufck brown fox jump";
        let mut e = Streaming::tdes(&key, None, true).unwrap();
        let ct = e.update(plain).unwrap();
        assert_eq!(
            hex::encode(&ct),
            "a826fd8ce53b855fcce21c8112256fe668d5c05dd9b6b900"
        );
        let mut d = Streaming::tdes(&key, None, false).unwrap();
        assert_eq!(d.update(&ct).unwrap().as_slice(), plain);
        assert_eq!(e.update(&[0; 7]).unwrap_err().rv(), Rv::DATA_LEN_RANGE);
        assert_eq!(
            Streaming::tdes(&key[..16], None, true).err().unwrap().rv(),
            Rv::KEY_SIZE_RANGE
        );
    }
}

//! The output-buffer rules of `C_Encrypt` / `C_Decrypt` and their multi-part forms (PKCS#11
//! 3.0 §5.2, §5.8, §5.9) through the C ABI, with a token AES key: a length query (NULL buffer)
//! and a buffer too small report the length and keep the operation; the real call then gives
//! exactly what raw OpenSSL gives; a padded decryption fits a buffer of the plaintext's exact
//! length although its bound is a block more; input and output may be the same buffer; a
//! failed AEAD decryption ends the operation and leaves nothing in the caller's buffer.

mod common;

use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki_sys::*;
use openssl::symm::{encrypt, encrypt_aead, Cipher};

use common::*;

const KEY: [u8; 32] = [0x42; 32];
const IV: [u8; 16] = [0x17; 16];
const GUARD: u8 = 0xa5;

fn setup(label: &str) -> (Session, ObjectHandle) {
    let p = ctx();
    let slot = new_token(p, label);
    let s = user_session(p, slot);
    let key = s
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Value(KEY.to_vec()),
        ])
        .unwrap();
    (s, key)
}

/// A mechanism with its parameter, kept alive beside the `CK_MECHANISM` pointing at it.
enum Param {
    None,
    Iv([u8; 16]),
    Ctr(CK_AES_CTR_PARAMS),
    /// The IV the parameter points at, kept alive beside it.
    Gcm(#[allow(dead_code)] Box<[u8; 12]>, CK_GCM_PARAMS),
}

struct Mech {
    kind: CK_MECHANISM_TYPE,
    param: Param,
}

impl Mech {
    fn new(kind: CK_MECHANISM_TYPE) -> Mech {
        let param = match kind {
            CKM_AES_ECB => Param::None,
            CKM_AES_CBC | CKM_AES_CBC_PAD => Param::Iv(IV),
            CKM_AES_CTR => Param::Ctr(CK_AES_CTR_PARAMS {
                ulCounterBits: 128,
                cb: IV,
            }),
            CKM_AES_GCM => {
                let mut iv = Box::new([7u8; 12]);
                let gcm = CK_GCM_PARAMS {
                    pIv: iv.as_mut_ptr(),
                    ulIvLen: 12,
                    ulIvBits: 96,
                    pAAD: std::ptr::null_mut(),
                    ulAADLen: 0,
                    ulTagBits: 128,
                };
                Param::Gcm(iv, gcm)
            }
            _ => unreachable!(),
        };
        Mech { kind, param }
    }

    fn raw(&mut self) -> CK_MECHANISM {
        let (p, len): (*mut u8, usize) = match &mut self.param {
            Param::None => (std::ptr::null_mut(), 0),
            Param::Iv(iv) => (iv.as_mut_ptr(), 16),
            Param::Ctr(c) => ((c as *mut CK_AES_CTR_PARAMS).cast(), size_of_val(c)),
            Param::Gcm(_, g) => ((g as *mut CK_GCM_PARAMS).cast(), size_of_val(g)),
        };
        CK_MECHANISM {
            mechanism: self.kind,
            pParameter: p.cast(),
            ulParameterLen: len as CK_ULONG,
        }
    }
}

/// What raw OpenSSL makes of `data` under the mechanism (GCM: ciphertext ‖ tag).
fn reference(kind: CK_MECHANISM_TYPE, data: &[u8]) -> Vec<u8> {
    match kind {
        CKM_AES_GCM => {
            let mut tag = [0u8; 16];
            let mut out = encrypt_aead(
                Cipher::aes_256_gcm(),
                &KEY,
                Some(&[7; 12]),
                b"",
                data,
                &mut tag,
            )
            .unwrap();
            out.extend_from_slice(&tag);
            out
        }
        CKM_AES_CBC_PAD => encrypt(Cipher::aes_256_cbc(), &KEY, Some(&IV), data).unwrap(),
        CKM_AES_CTR => encrypt(Cipher::aes_256_ctr(), &KEY, Some(&IV), data).unwrap(),
        CKM_AES_ECB | CKM_AES_CBC => {
            let (cipher, iv) = if kind == CKM_AES_ECB {
                (Cipher::aes_256_ecb(), None)
            } else {
                (Cipher::aes_256_cbc(), Some(&IV[..]))
            };
            let mut c = openssl::symm::Crypter::new(cipher, openssl::symm::Mode::Encrypt, &KEY, iv)
                .unwrap();
            c.pad(false);
            let mut out = vec![0u8; data.len() + 16];
            let n = c.update(data, &mut out).unwrap();
            out.truncate(n);
            out
        }
        _ => unreachable!(),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Dir {
    Encrypt,
    Decrypt,
}

fn init(s: &Session, dir: Dir, m: &mut Mech, key: ObjectHandle) {
    let mut raw_m = m.raw();
    // SAFETY: the mechanism points at `m`'s parameter, live for the call.
    let rv = unsafe {
        match dir {
            Dir::Encrypt => raw().C_EncryptInit(s.handle(), &mut raw_m, key.handle()),
            Dir::Decrypt => raw().C_DecryptInit(s.handle(), &mut raw_m, key.handle()),
        }
    };
    assert_eq!(rv, CKR_OK);
}

/// `C_Encrypt` / `C_Decrypt` with `len` bytes of input at `input` and the output at `out`
/// (NULL for a query), which may be the same memory.
fn single(
    s: &Session,
    dir: Dir,
    input: *mut u8,
    len: usize,
    out: *mut u8,
    out_len: &mut CK_ULONG,
) -> CK_RV {
    // SAFETY: the callers pass live buffers of the stated lengths.
    unsafe {
        match dir {
            Dir::Encrypt => raw().C_Encrypt(s.handle(), input, len as CK_ULONG, out, out_len),
            Dir::Decrypt => raw().C_Decrypt(s.handle(), input, len as CK_ULONG, out, out_len),
        }
    }
}

fn update(s: &Session, dir: Dir, input: &[u8], out: *mut u8, out_len: &mut CK_ULONG) -> CK_RV {
    let p = input.as_ptr().cast_mut();
    let len = input.len() as CK_ULONG;
    // SAFETY: the input is live for its length, the output as the callers pass it.
    unsafe {
        match dir {
            Dir::Encrypt => raw().C_EncryptUpdate(s.handle(), p, len, out, out_len),
            Dir::Decrypt => raw().C_DecryptUpdate(s.handle(), p, len, out, out_len),
        }
    }
}

fn last(s: &Session, dir: Dir, out: *mut u8, out_len: &mut CK_ULONG) -> CK_RV {
    // SAFETY: as the callers pass it.
    unsafe {
        match dir {
            Dir::Encrypt => raw().C_EncryptFinal(s.handle(), out, out_len),
            Dir::Decrypt => raw().C_DecryptFinal(s.handle(), out, out_len),
        }
    }
}

const MECHANISMS: [CK_MECHANISM_TYPE; 5] = [
    CKM_AES_GCM,
    CKM_AES_CBC_PAD,
    CKM_AES_CBC,
    CKM_AES_ECB,
    CKM_AES_CTR,
];

#[test]
fn length_query_and_too_small_buffer_keep_the_operation() {
    let (s, key) = setup("buffers-single");
    for kind in MECHANISMS {
        for len in [0usize, 16, 48, 1024] {
            if kind == CKM_AES_GCM && len == 0 {
                continue; // covered below with the decryption
            }
            let mut data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let expected = reference(kind, &data);
            let mut m = Mech::new(kind);
            init(&s, Dir::Encrypt, &mut m, key);
            let mut n: CK_ULONG = 0;
            let rv = single(
                &s,
                Dir::Encrypt,
                data.as_mut_ptr(),
                len,
                std::ptr::null_mut(),
                &mut n,
            );
            assert_eq!(rv, CKR_OK, "{kind:#x} {len}: query");
            assert_eq!(
                n as usize,
                expected.len(),
                "{kind:#x} {len}: the exact length"
            );
            if !expected.is_empty() {
                let mut small = vec![GUARD; expected.len() - 1];
                let mut n = small.len() as CK_ULONG;
                let rv = single(
                    &s,
                    Dir::Encrypt,
                    data.as_mut_ptr(),
                    len,
                    small.as_mut_ptr(),
                    &mut n,
                );
                assert_eq!(rv, CKR_BUFFER_TOO_SMALL, "{kind:#x} {len}");
                assert_eq!(n as usize, expected.len());
            }
            let mut out = vec![GUARD; expected.len() + 8];
            let mut n = out.len() as CK_ULONG;
            let rv = single(
                &s,
                Dir::Encrypt,
                data.as_mut_ptr(),
                len,
                out.as_mut_ptr(),
                &mut n,
            );
            assert_eq!(rv, CKR_OK, "{kind:#x} {len}");
            assert_eq!(
                &out[..n as usize],
                &expected[..],
                "{kind:#x} {len}: OpenSSL's output"
            );
            assert!(
                out[n as usize..].iter().all(|&b| b == GUARD),
                "nothing past the output"
            );
            // The operation ended with the output.
            let rv = single(
                &s,
                Dir::Encrypt,
                data.as_mut_ptr(),
                len,
                out.as_mut_ptr(),
                &mut n,
            );
            assert_eq!(rv, CKR_OPERATION_NOT_INITIALIZED);

            // And back, with the same rules.
            let mut sealed = expected.clone();
            init(&s, Dir::Decrypt, &mut m, key);
            let mut n: CK_ULONG = 0;
            let rv = single(
                &s,
                Dir::Decrypt,
                sealed.as_mut_ptr(),
                sealed.len(),
                std::ptr::null_mut(),
                &mut n,
            );
            assert_eq!(rv, CKR_OK);
            assert!(n as usize >= len, "the bound holds the plaintext");
            let mut plain = vec![GUARD; n as usize];
            let rv = single(
                &s,
                Dir::Decrypt,
                sealed.as_mut_ptr(),
                sealed.len(),
                plain.as_mut_ptr(),
                &mut n,
            );
            assert_eq!(rv, CKR_OK, "{kind:#x} {len}");
            assert_eq!(&plain[..n as usize], &data[..]);
        }
    }
}

#[test]
fn multipart_too_small_buffers_keep_the_operation() {
    let (s, key) = setup("buffers-multi");
    let data: Vec<u8> = (0..100u8).collect();
    for kind in [CKM_AES_GCM, CKM_AES_CBC_PAD, CKM_AES_CTR] {
        let expected = reference(kind, &data);
        let mut m = Mech::new(kind);
        init(&s, Dir::Encrypt, &mut m, key);
        let mut got = Vec::new();
        for part in data.chunks(30) {
            let mut n: CK_ULONG = 0;
            assert_eq!(
                update(&s, Dir::Encrypt, part, std::ptr::null_mut(), &mut n),
                CKR_OK
            );
            let bound = n as usize;
            if bound > 0 {
                let mut small = vec![GUARD; bound - 1];
                let mut n = small.len() as CK_ULONG;
                let rv = update(&s, Dir::Encrypt, part, small.as_mut_ptr(), &mut n);
                assert_eq!(rv, CKR_BUFFER_TOO_SMALL, "{kind:#x}");
                assert_eq!(n as usize, bound);
            }
            // The part was not consumed: the same part again gives the right output.
            let mut out = vec![GUARD; bound];
            let mut n = out.len() as CK_ULONG;
            assert_eq!(
                update(&s, Dir::Encrypt, part, out.as_mut_ptr(), &mut n),
                CKR_OK
            );
            got.extend_from_slice(&out[..n as usize]);
        }
        let mut n: CK_ULONG = 0;
        assert_eq!(last(&s, Dir::Encrypt, std::ptr::null_mut(), &mut n), CKR_OK);
        let bound = n as usize;
        if bound > 0 {
            let mut small = vec![GUARD; bound - 1];
            let mut n = small.len() as CK_ULONG;
            let rv = last(&s, Dir::Encrypt, small.as_mut_ptr(), &mut n);
            assert_eq!(rv, CKR_BUFFER_TOO_SMALL);
            assert_eq!(n as usize, bound);
        }
        let mut out = vec![GUARD; bound];
        let mut n = out.len() as CK_ULONG;
        assert_eq!(last(&s, Dir::Encrypt, out.as_mut_ptr(), &mut n), CKR_OK);
        got.extend_from_slice(&out[..n as usize]);
        assert_eq!(got, expected, "{kind:#x}");
        assert_eq!(
            last(&s, Dir::Encrypt, out.as_mut_ptr(), &mut n),
            CKR_OPERATION_NOT_INITIALIZED
        );
    }
}

/// CBC_PAD's decryption bound is the ciphertext's length; the plaintext is shorter, and a
/// buffer of exactly its length takes it (computed once: a buffer too small for the plaintext
/// keeps the result for the retry, reporting the exact length).
#[test]
fn padded_decryption_fits_the_exact_plaintext_length() {
    let (s, key) = setup("buffers-pad");
    let data = [0x33u8; 20];
    let mut sealed = reference(CKM_AES_CBC_PAD, &data);
    assert_eq!(sealed.len(), 32);
    let mut m = Mech::new(CKM_AES_CBC_PAD);
    init(&s, Dir::Decrypt, &mut m, key);
    let mut n: CK_ULONG = 0;
    let rv = single(
        &s,
        Dir::Decrypt,
        sealed.as_mut_ptr(),
        32,
        std::ptr::null_mut(),
        &mut n,
    );
    assert_eq!((rv, n), (CKR_OK, 32), "the query answers the bound");
    let mut small = [GUARD; 19];
    let mut n = small.len() as CK_ULONG;
    let rv = single(
        &s,
        Dir::Decrypt,
        sealed.as_mut_ptr(),
        32,
        small.as_mut_ptr(),
        &mut n,
    );
    assert_eq!((rv, n), (CKR_BUFFER_TOO_SMALL, 20), "now the exact length");
    assert!(
        small.iter().all(|&b| b == GUARD),
        "no plaintext in a buffer too small"
    );
    let mut exact = [GUARD; 20];
    let mut n = exact.len() as CK_ULONG;
    let rv = single(
        &s,
        Dir::Decrypt,
        sealed.as_mut_ptr(),
        32,
        exact.as_mut_ptr(),
        &mut n,
    );
    assert_eq!((rv, n), (CKR_OK, 20));
    assert_eq!(exact, data);
    // First call with the exact length, and the same for C_DecryptFinal.
    init(&s, Dir::Decrypt, &mut m, key);
    let mut exact = [GUARD; 20];
    let mut n = exact.len() as CK_ULONG;
    let rv = single(
        &s,
        Dir::Decrypt,
        sealed.as_mut_ptr(),
        32,
        exact.as_mut_ptr(),
        &mut n,
    );
    assert_eq!((rv, n, exact), (CKR_OK, 20, data));
    init(&s, Dir::Decrypt, &mut m, key);
    let mut first = [GUARD; 32];
    let mut n = first.len() as CK_ULONG;
    assert_eq!(
        update(&s, Dir::Decrypt, &sealed, first.as_mut_ptr(), &mut n),
        CKR_OK
    );
    assert_eq!(n, 16, "the last block waits for the padding check");
    let mut tail = [GUARD; 4];
    let mut n = tail.len() as CK_ULONG;
    assert_eq!(last(&s, Dir::Decrypt, tail.as_mut_ptr(), &mut n), CKR_OK);
    assert_eq!((n, &first[..16], &tail[..]), (4, &data[..16], &data[16..]));
}

/// PKCS#11 lets the output be the input's own buffer.
#[test]
fn input_and_output_may_be_the_same_buffer() {
    let (s, key) = setup("buffers-in-place");
    for kind in MECHANISMS {
        let data: Vec<u8> = (0..64u8).collect();
        let expected = reference(kind, &data);
        let mut m = Mech::new(kind);
        let mut buffer = data.clone();
        buffer.resize(expected.len().max(data.len()), GUARD);
        init(&s, Dir::Encrypt, &mut m, key);
        let mut n = buffer.len() as CK_ULONG;
        let p = buffer.as_mut_ptr();
        assert_eq!(
            single(&s, Dir::Encrypt, p, data.len(), p, &mut n),
            CKR_OK,
            "{kind:#x}"
        );
        assert_eq!(&buffer[..n as usize], &expected[..], "{kind:#x} in place");
        init(&s, Dir::Decrypt, &mut m, key);
        let mut n = buffer.len() as CK_ULONG;
        let p = buffer.as_mut_ptr();
        assert_eq!(
            single(&s, Dir::Decrypt, p, expected.len(), p, &mut n),
            CKR_OK,
            "{kind:#x}"
        );
        assert_eq!(&buffer[..n as usize], &data[..], "{kind:#x} back in place");
        // Multi-part, in place, where the output of each part is no longer than the part.
        if kind != CKM_AES_GCM && kind != CKM_AES_CBC_PAD {
            let mut buffer = data.clone();
            init(&s, Dir::Encrypt, &mut m, key);
            let (a, b) = buffer.split_at_mut(32);
            for part in [a, b] {
                let mut n = part.len() as CK_ULONG;
                let p = part.as_mut_ptr();
                // SAFETY: `part` is live for its length, in and out.
                let rv = unsafe { raw().C_EncryptUpdate(s.handle(), p, 32, p, &mut n) };
                assert_eq!((rv, n), (CKR_OK, 32));
            }
            let mut n: CK_ULONG = 0;
            assert_eq!(last(&s, Dir::Encrypt, std::ptr::null_mut(), &mut n), CKR_OK);
            let mut rest = [0u8; 16];
            let mut n = 16;
            assert_eq!(last(&s, Dir::Encrypt, rest.as_mut_ptr(), &mut n), CKR_OK);
            assert_eq!(n, 0);
            assert_eq!(buffer, expected, "{kind:#x} multi-part in place");
        }
    }
}

/// A GCM decryption whose tag does not verify ends the operation and writes nothing.
#[test]
fn failed_aead_decryption_ends_the_operation_and_releases_nothing() {
    let (s, key) = setup("buffers-gcm-tag");
    let data = [0x61u8; 48];
    let mut sealed = reference(CKM_AES_GCM, &data);
    sealed[50] ^= 1;
    let mut m = Mech::new(CKM_AES_GCM);
    init(&s, Dir::Decrypt, &mut m, key);
    let mut out = [GUARD; 64];
    let mut n = out.len() as CK_ULONG;
    let rv = single(
        &s,
        Dir::Decrypt,
        sealed.as_mut_ptr(),
        sealed.len(),
        out.as_mut_ptr(),
        &mut n,
    );
    assert_eq!(rv, CKR_ENCRYPTED_DATA_INVALID);
    assert!(out.iter().all(|&b| b == GUARD), "no plaintext released");
    let rv = single(
        &s,
        Dir::Decrypt,
        sealed.as_mut_ptr(),
        sealed.len(),
        out.as_mut_ptr(),
        &mut n,
    );
    assert_eq!(rv, CKR_OPERATION_NOT_INITIALIZED);
    // Multi-part: nothing before the tag, nothing after a bad one.
    init(&s, Dir::Decrypt, &mut m, key);
    let mut n = out.len() as CK_ULONG;
    assert_eq!(
        update(&s, Dir::Decrypt, &sealed, out.as_mut_ptr(), &mut n),
        CKR_OK
    );
    assert_eq!(n, 0);
    let mut n = out.len() as CK_ULONG;
    assert_eq!(
        last(&s, Dir::Decrypt, out.as_mut_ptr(), &mut n),
        CKR_ENCRYPTED_DATA_INVALID
    );
    assert!(out.iter().all(|&b| b == GUARD), "no plaintext released");
    // An empty message, sealed and opened.
    let mut empty = reference(CKM_AES_GCM, b"");
    init(&s, Dir::Decrypt, &mut m, key);
    let mut n = out.len() as CK_ULONG;
    let rv = single(
        &s,
        Dir::Decrypt,
        empty.as_mut_ptr(),
        16,
        out.as_mut_ptr(),
        &mut n,
    );
    assert_eq!((rv, n), (CKR_OK, 0));
}

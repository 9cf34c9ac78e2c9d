//! Message-based encryption and decryption (PKCS#11 3.0 `C_MessageEncryptInit` …
//! `C_MessageEncryptFinal`, `C_MessageDecryptInit` … `C_MessageDecryptFinal`) for
//! `CKM_AES_GCM`, `CKM_AES_CCM` and `CKM_CHACHA20_POLY1305` through the C ABI. cryptoki 0.12 has
//! no message-based encryption, so the calls go through the raw function list.

mod common;

use std::ptr::null_mut;

use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki_sys::*;

use common::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Gcm,
    Ccm,
    Chacha,
}

const ALL: [Kind; 3] = [Kind::Gcm, Kind::Ccm, Kind::Chacha];

impl Kind {
    fn mechanism(self) -> CK_MECHANISM_TYPE {
        match self {
            Kind::Gcm => CKM_AES_GCM,
            Kind::Ccm => CKM_AES_CCM,
            Kind::Chacha => CKM_CHACHA20_POLY1305,
        }
    }
    fn iv_len(self) -> usize {
        match self {
            Kind::Gcm | Kind::Chacha => 12,
            Kind::Ccm => 13,
        }
    }
    fn tag_len(self) -> usize {
        match self {
            Kind::Gcm | Kind::Chacha => 16,
            Kind::Ccm => 12,
        }
    }
}

fn session(label: &str) -> Session {
    let p = ctx();
    let slot = new_token(p, label);
    user_session(p, slot)
}

fn key(s: &Session, kind: Kind) -> ObjectHandle {
    match kind {
        Kind::Chacha => raw_secret(s, CKK_CHACHA20, &[0x42; 32]).unwrap(),
        _ => raw_secret(s, CKK_AES, &[0x24; 16]).unwrap(),
    }
}

/// One message's parameter: the IV and tag buffers the structure points into.
struct Msg {
    kind: Kind,
    iv: Vec<u8>,
    tag: Vec<u8>,
    generator: CK_GENERATOR_FUNCTION,
    fixed_bits: CK_ULONG,
    data_len: CK_ULONG,
    gcm: CK_GCM_MESSAGE_PARAMS,
    ccm: CK_CCM_MESSAGE_PARAMS,
    chacha: CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS,
}

impl Msg {
    fn new(kind: Kind, iv: &[u8], data_len: usize) -> Box<Msg> {
        // SAFETY: all-zero is a valid value of these C structures (NULL pointers, zero lengths).
        let zeroed = unsafe { std::mem::zeroed() };
        let _: &CK_GCM_MESSAGE_PARAMS = &zeroed;
        Box::new(Msg {
            kind,
            iv: iv.to_vec(),
            tag: vec![0; kind.tag_len()],
            generator: CKG_NO_GENERATE,
            fixed_bits: 0,
            data_len: data_len as CK_ULONG,
            gcm: zeroed,
            // SAFETY: as above.
            ccm: unsafe { std::mem::zeroed() },
            // SAFETY: as above.
            chacha: unsafe { std::mem::zeroed() },
        })
    }

    fn generated(kind: Kind, fixed: &[u8], fixed_bits: u64, generator: u64) -> Box<Msg> {
        let mut iv = fixed.to_vec();
        iv.resize(kind.iv_len(), 0xee);
        let mut m = Msg::new(kind, &iv, 0);
        m.fixed_bits = fixed_bits;
        m.generator = generator;
        m
    }

    /// The parameter pointer and length, pointing into `self` (which must stay put).
    fn param(&mut self) -> (CK_VOID_PTR, CK_ULONG) {
        let (iv, iv_len) = (self.iv.as_mut_ptr(), self.iv.len() as CK_ULONG);
        let (tag, tag_len) = (self.tag.as_mut_ptr(), self.tag.len() as CK_ULONG);
        match self.kind {
            Kind::Gcm => {
                self.gcm = CK_GCM_MESSAGE_PARAMS {
                    pIv: iv,
                    ulIvLen: iv_len,
                    ulIvFixedBits: self.fixed_bits,
                    ivGenerator: self.generator,
                    pTag: tag,
                    ulTagBits: tag_len * 8,
                };
                (
                    (&mut self.gcm as *mut CK_GCM_MESSAGE_PARAMS).cast(),
                    std::mem::size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG,
                )
            }
            Kind::Ccm => {
                self.ccm = CK_CCM_MESSAGE_PARAMS {
                    ulDataLen: self.data_len,
                    pNonce: iv,
                    ulNonceLen: iv_len,
                    ulNonceFixedBits: self.fixed_bits,
                    nonceGenerator: self.generator,
                    pMAC: tag,
                    ulMACLen: tag_len,
                };
                (
                    (&mut self.ccm as *mut CK_CCM_MESSAGE_PARAMS).cast(),
                    std::mem::size_of::<CK_CCM_MESSAGE_PARAMS>() as CK_ULONG,
                )
            }
            Kind::Chacha => {
                self.chacha = CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS {
                    pNonce: iv,
                    ulNonceLen: iv_len,
                    pTag: tag,
                };
                (
                    (&mut self.chacha as *mut CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS).cast(),
                    std::mem::size_of::<CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS>() as CK_ULONG,
                )
            }
        }
    }
}

fn init(s: &Session, encrypt: bool, mechanism: CK_MECHANISM_TYPE, key: ObjectHandle) -> CK_RV {
    let mut m = raw_mech::<u8>(mechanism, None);
    // SAFETY: a valid session and key of this test; `m` outlives the call.
    unsafe {
        match encrypt {
            true => raw().C_MessageEncryptInit(s.handle(), &mut m, key.handle()),
            false => raw().C_MessageDecryptInit(s.handle(), &mut m, key.handle()),
        }
    }
}

fn final_(s: &Session, encrypt: bool) -> CK_RV {
    // SAFETY: a plain session handle.
    unsafe {
        match encrypt {
            true => raw().C_MessageEncryptFinal(s.handle()),
            false => raw().C_MessageDecryptFinal(s.handle()),
        }
    }
}

/// `C_EncryptMessage` / `C_DecryptMessage`: the length query, then the call.
fn one_shot(
    s: &Session,
    encrypt: bool,
    msg: &mut Msg,
    aad: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CK_RV> {
    let call = |msg: &mut Msg, out: *mut u8, len: &mut CK_ULONG| {
        let (p, plen) = msg.param();
        // SAFETY: the parameter points into `msg`, the buffers hold their stated lengths.
        unsafe {
            let f = match encrypt {
                true => &raw().C_EncryptMessage,
                false => &raw().C_DecryptMessage,
            };
            f.as_ref().expect("exported")(
                s.handle(),
                p,
                plen,
                aad.as_ptr() as *mut u8,
                aad.len() as CK_ULONG,
                data.as_ptr() as *mut u8,
                data.len() as CK_ULONG,
                out,
                len,
            )
        }
    };
    let mut len: CK_ULONG = 0;
    let rv = call(msg, null_mut(), &mut len);
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut out = vec![0u8; len as usize];
    let rv = call(msg, out.as_mut_ptr(), &mut len);
    if rv != CKR_OK {
        return Err(rv);
    }
    out.truncate(len as usize);
    Ok(out)
}

fn begin(s: &Session, encrypt: bool, msg: &mut Msg, aad: &[u8]) -> CK_RV {
    let (p, plen) = msg.param();
    // SAFETY: the parameter points into `msg`; `aad` holds its length.
    unsafe {
        let f = match encrypt {
            true => &raw().C_EncryptMessageBegin,
            false => &raw().C_DecryptMessageBegin,
        };
        f.as_ref().expect("exported")(
            s.handle(),
            p,
            plen,
            aad.as_ptr() as *mut u8,
            aad.len() as CK_ULONG,
        )
    }
}

/// `C_EncryptMessageNext` / `C_DecryptMessageNext` with the length query first.
fn next(
    s: &Session,
    encrypt: bool,
    msg: Option<&mut Msg>,
    data: &[u8],
    last: bool,
) -> Result<Vec<u8>, CK_RV> {
    let (p, plen) = match msg {
        Some(m) => m.param(),
        None => (null_mut(), 0),
    };
    let flags = if last { CKF_END_OF_MESSAGE } else { 0 };
    let call = |out: *mut u8, len: &mut CK_ULONG| {
        // SAFETY: as in `one_shot`.
        unsafe {
            let f = match encrypt {
                true => &raw().C_EncryptMessageNext,
                false => &raw().C_DecryptMessageNext,
            };
            f.as_ref().expect("exported")(
                s.handle(),
                p,
                plen,
                data.as_ptr() as *mut u8,
                data.len() as CK_ULONG,
                out,
                len,
                flags,
            )
        }
    };
    let mut len: CK_ULONG = 0;
    let rv = call(null_mut(), &mut len);
    if rv != CKR_OK {
        return Err(rv);
    }
    let mut out = vec![0u8; len as usize];
    let rv = call(out.as_mut_ptr(), &mut len);
    if rv != CKR_OK {
        return Err(rv);
    }
    out.truncate(len as usize);
    Ok(out)
}

/// Plain `C_Encrypt` / `C_Decrypt` with the single-message parameter of the same IV and AAD.
#[allow(clippy::too_many_arguments)]
fn plain(
    s: &Session,
    encrypt: bool,
    kind: Kind,
    key: ObjectHandle,
    iv: &[u8],
    aad: &[u8],
    data: &[u8],
    pt_len: usize,
) -> cryptoki::error::Result<Vec<u8>> {
    let (mut iv, mut aad) = (iv.to_vec(), aad.to_vec());
    match kind {
        Kind::Gcm => {
            let mut p = CK_GCM_PARAMS {
                pIv: iv.as_mut_ptr(),
                ulIvLen: iv.len() as CK_ULONG,
                ulIvBits: (iv.len() * 8) as CK_ULONG,
                pAAD: aad.as_mut_ptr(),
                ulAADLen: aad.len() as CK_ULONG,
                ulTagBits: (kind.tag_len() * 8) as CK_ULONG,
            };
            let mut m = raw_mech(CKM_AES_GCM, Some(&mut p));
            raw_crypt(s, encrypt, &mut m, key, data, None)
        }
        Kind::Ccm => {
            let mut p = CK_CCM_PARAMS {
                ulDataLen: pt_len as CK_ULONG,
                pNonce: iv.as_mut_ptr(),
                ulNonceLen: iv.len() as CK_ULONG,
                pAAD: aad.as_mut_ptr(),
                ulAADLen: aad.len() as CK_ULONG,
                ulMACLen: kind.tag_len() as CK_ULONG,
            };
            let mut m = raw_mech(CKM_AES_CCM, Some(&mut p));
            raw_crypt(s, encrypt, &mut m, key, data, None)
        }
        Kind::Chacha => {
            let mut p = CK_SALSA20_CHACHA20_POLY1305_PARAMS {
                pNonce: iv.as_mut_ptr(),
                ulNonceLen: iv.len() as CK_ULONG,
                pAAD: aad.as_mut_ptr(),
                ulAADLen: aad.len() as CK_ULONG,
            };
            let mut m = raw_mech(CKM_CHACHA20_POLY1305, Some(&mut p));
            raw_crypt(s, encrypt, &mut m, key, data, None)
        }
    }
}

const AAD: &[u8] = b"header bytes";
const PT: &[u8] = b"a message of thirty-seven bytes total";

#[test]
fn messages_match_single_part_encryption_both_ways() {
    let s = session("msgenc-match");
    for kind in ALL {
        let k = key(&s, kind);
        let iv: Vec<u8> = (1..=kind.iv_len() as u8).collect();
        assert_eq!(init(&s, true, kind.mechanism(), k), CKR_OK, "{kind:?}");
        assert_eq!(init(&s, false, kind.mechanism(), k), CKR_OK, "{kind:?}");

        // C_EncryptMessage → plain C_Decrypt of ciphertext ‖ tag.
        let mut msg = Msg::new(kind, &iv, PT.len());
        let ct = one_shot(&s, true, &mut msg, AAD, PT).unwrap();
        assert_eq!(ct.len(), PT.len(), "{kind:?}");
        assert_ne!(msg.tag, vec![0; kind.tag_len()], "{kind:?}: tag written");
        assert_eq!(msg.iv, iv, "{kind:?}: caller's IV untouched");
        let mut sealed = ct.clone();
        sealed.extend_from_slice(&msg.tag);
        assert_eq!(
            plain(&s, false, kind, k, &iv, AAD, &sealed, PT.len()).unwrap(),
            PT,
            "{kind:?}"
        );

        // Plain C_Encrypt → C_DecryptMessage with the tag in the parameter.
        let other = b"the other direction";
        let sealed = plain(&s, true, kind, k, &iv, b"", other, other.len()).unwrap();
        let (ct, tag) = sealed.split_at(other.len());
        let mut msg = Msg::new(kind, &iv, other.len());
        msg.tag = tag.to_vec();
        assert_eq!(one_shot(&s, false, &mut msg, b"", ct).unwrap(), other);

        // Several messages in one process.
        for i in 0..3u8 {
            let mut iv = iv.clone();
            iv[0] = i;
            let data = vec![i; 5 + i as usize];
            let mut e = Msg::new(kind, &iv, data.len());
            let ct = one_shot(&s, true, &mut e, AAD, &data).unwrap();
            let mut d = Msg::new(kind, &iv, data.len());
            d.tag = e.tag.clone();
            assert_eq!(one_shot(&s, false, &mut d, AAD, &ct).unwrap(), data);
        }
        assert_eq!(final_(&s, true), CKR_OK);
        assert_eq!(final_(&s, false), CKR_OK);
    }
}

#[test]
fn tampering_is_encrypted_data_invalid() {
    let s = session("msgenc-tamper");
    for kind in ALL {
        let k = key(&s, kind);
        let iv = vec![7u8; kind.iv_len()];
        assert_eq!(init(&s, true, kind.mechanism(), k), CKR_OK);
        assert_eq!(init(&s, false, kind.mechanism(), k), CKR_OK);
        let mut e = Msg::new(kind, &iv, PT.len());
        let ct = one_shot(&s, true, &mut e, AAD, PT).unwrap();
        // Tag, ciphertext and AAD tampered, one-shot and in parts.
        let mut bad_tag = e.tag.clone();
        bad_tag[0] ^= 1;
        let mut bad_ct = ct.clone();
        bad_ct[3] ^= 0x80;
        for (tag, data, aad) in [
            (&bad_tag, &ct, AAD),
            (&e.tag, &bad_ct, AAD),
            (&e.tag, &ct, &b"other"[..]),
        ] {
            let mut d = Msg::new(kind, &iv, PT.len());
            d.tag = tag.clone();
            assert_eq!(
                one_shot(&s, false, &mut d, aad, data),
                Err(CKR_ENCRYPTED_DATA_INVALID),
                "{kind:?}"
            );
            if kind != Kind::Ccm || aad == AAD {
                let mut d = Msg::new(kind, &iv, PT.len());
                d.tag = tag.clone();
                assert_eq!(begin(&s, false, &mut d, aad), CKR_OK);
                assert_eq!(next(&s, false, None, &data[..10], false), Ok(vec![]));
                assert_eq!(
                    next(&s, false, None, &data[10..], true),
                    Err(CKR_ENCRYPTED_DATA_INVALID),
                    "{kind:?}"
                );
            }
        }
        // The process goes on: the genuine message still decrypts.
        let mut d = Msg::new(kind, &iv, PT.len());
        d.tag = e.tag.clone();
        assert_eq!(one_shot(&s, false, &mut d, AAD, &ct).unwrap(), PT);
        assert_eq!(final_(&s, true), CKR_OK);
        assert_eq!(final_(&s, false), CKR_OK);
    }
}

#[test]
fn begin_next_equals_one_shot() {
    let s = session("msgenc-parts");
    for kind in ALL {
        let k = key(&s, kind);
        let iv = vec![3u8; kind.iv_len()];
        assert_eq!(init(&s, true, kind.mechanism(), k), CKR_OK);
        assert_eq!(init(&s, false, kind.mechanism(), k), CKR_OK);
        let mut whole = Msg::new(kind, &iv, PT.len());
        let ct = one_shot(&s, true, &mut whole, AAD, PT).unwrap();

        let mut first = Msg::new(kind, &iv, PT.len());
        assert_eq!(begin(&s, true, &mut first, AAD), CKR_OK);
        let mut parts = Vec::new();
        for chunk in PT[..30].chunks(7) {
            parts.extend(next(&s, true, None, chunk, false).unwrap());
        }
        let mut last = Msg::new(kind, &iv, PT.len());
        parts.extend(next(&s, true, Some(&mut last), &PT[30..], true).unwrap());
        assert_eq!(parts, ct, "{kind:?}");
        assert_eq!(last.tag, whole.tag, "{kind:?}: tag written at the end");

        // Decrypting in parts releases nothing before the last part.
        let mut d = Msg::new(kind, &iv, PT.len());
        d.tag = whole.tag.clone();
        assert_eq!(begin(&s, false, &mut d, AAD), CKR_OK);
        for chunk in ct[..30].chunks(7) {
            assert_eq!(next(&s, false, None, chunk, false), Ok(vec![]));
        }
        assert_eq!(next(&s, false, None, &ct[30..], true).unwrap(), PT);
        // The tag may also come with the last part.
        let mut d = Msg::new(kind, &iv, PT.len());
        assert_eq!(begin(&s, false, &mut d, AAD), CKR_OK);
        let mut end = Msg::new(kind, &iv, PT.len());
        end.tag = whole.tag.clone();
        assert_eq!(next(&s, false, Some(&mut end), &ct, true).unwrap(), PT);
        assert_eq!(final_(&s, true), CKR_OK);
        assert_eq!(final_(&s, false), CKR_OK);
    }
}

/// The IV a message used, proved by plain decryption with it.
fn decrypts_with(s: &Session, kind: Kind, k: ObjectHandle, msg: &Msg, ct: &[u8]) {
    let mut sealed = ct.to_vec();
    sealed.extend_from_slice(&msg.tag);
    assert_eq!(
        plain(s, false, kind, k, &msg.iv, AAD, &sealed, PT.len()).unwrap(),
        PT
    );
}

#[test]
fn generated_ivs_are_written_back() {
    let s = session("msgenc-ivgen");
    for kind in [Kind::Gcm, Kind::Ccm] {
        let k = key(&s, kind);
        assert_eq!(init(&s, true, kind.mechanism(), k), CKR_OK);
        let fixed = [0xa1, 0xb2, 0xc3, 0xd4];
        let mut counters = Vec::new();
        for _ in 0..4 {
            let mut msg = Msg::generated(kind, &fixed, 32, CKG_GENERATE_COUNTER);
            msg.data_len = PT.len() as CK_ULONG;
            let ct = one_shot(&s, true, &mut msg, AAD, PT).unwrap();
            assert_eq!(&msg.iv[..4], fixed, "{kind:?}: fixed part kept");
            decrypts_with(&s, kind, k, &msg, &ct);
            counters.push(msg.iv[4..].to_vec());
        }
        for pair in counters.windows(2) {
            assert!(pair[0] < pair[1], "{kind:?}: increasing {counters:?}");
        }
        let mut randoms = Vec::new();
        for _ in 0..4 {
            let mut msg = Msg::generated(kind, &fixed, 32, CKG_GENERATE_RANDOM);
            msg.data_len = PT.len() as CK_ULONG;
            let ct = one_shot(&s, true, &mut msg, AAD, PT).unwrap();
            assert_eq!(&msg.iv[..4], fixed);
            decrypts_with(&s, kind, k, &msg, &ct);
            randoms.push(msg.iv.clone());
        }
        randoms.sort();
        randoms.dedup();
        assert_eq!(randoms.len(), 4, "{kind:?}: distinct random IVs");
        // Begin writes the generated IV back too, and the counter goes on.
        let mut first = Msg::generated(kind, &fixed, 32, CKG_GENERATE_COUNTER);
        first.data_len = PT.len() as CK_ULONG;
        assert_eq!(begin(&s, true, &mut first, AAD), CKR_OK);
        assert!(first.iv[4..].to_vec() > counters[3], "{kind:?}");
        let mut last = Msg::new(kind, &first.iv, PT.len());
        let ct = next(&s, true, Some(&mut last), PT, true).unwrap();
        last.iv = first.iv.clone();
        decrypts_with(&s, kind, k, &last, &ct);
        assert_eq!(final_(&s, true), CKR_OK);
    }
}

#[test]
fn a_counter_never_repeats() {
    let s = session("msgenc-exhaust");
    let k = key(&s, Kind::Gcm);
    assert_eq!(init(&s, true, CKM_AES_GCM, k), CKR_OK);
    // 94 of 96 bits fixed: four IVs, then refusal.
    let mut seen = Vec::new();
    for _ in 0..4 {
        let mut msg = Msg::generated(Kind::Gcm, &[0x55; 12], 94, CKG_GENERATE_COUNTER);
        one_shot(&s, true, &mut msg, AAD, PT).unwrap();
        assert_eq!(&msg.iv[..11], &[0x55; 11]);
        assert_eq!(msg.iv[11] & 0xfc, 0x54);
        seen.push(msg.iv.clone());
    }
    seen.dedup();
    assert_eq!(seen.len(), 4);
    let mut msg = Msg::generated(Kind::Gcm, &[0x55; 12], 94, CKG_GENERATE_COUNTER);
    assert_eq!(
        one_shot(&s, true, &mut msg, AAD, PT),
        Err(CKR_MECHANISM_PARAM_INVALID)
    );
    // CKG_GENERATE counts on the same counter.
    let mut msg = Msg::generated(Kind::Gcm, &[0x55; 12], 94, CKG_GENERATE);
    assert_eq!(
        one_shot(&s, true, &mut msg, AAD, PT),
        Err(CKR_MECHANISM_PARAM_INVALID)
    );
    // All bits fixed: nothing to generate.
    let mut msg = Msg::generated(Kind::Gcm, &[0x55; 12], 96, CKG_GENERATE_COUNTER);
    assert_eq!(
        one_shot(&s, true, &mut msg, AAD, PT),
        Err(CKR_MECHANISM_PARAM_INVALID)
    );
    // The process is still usable with the caller's IV.
    let mut msg = Msg::new(Kind::Gcm, &[1; 12], 0);
    assert!(one_shot(&s, true, &mut msg, AAD, PT).is_ok());
    assert_eq!(final_(&s, true), CKR_OK);
}

#[test]
fn error_codes() {
    let s = session("msgenc-errors");
    let k = key(&s, Kind::Gcm);
    let iv = [9u8; 12];
    for encrypt in [true, false] {
        let mut msg = Msg::new(Kind::Gcm, &iv, 0);
        assert_eq!(
            one_shot(&s, encrypt, &mut msg, AAD, PT),
            Err(CKR_OPERATION_NOT_INITIALIZED)
        );
        assert_eq!(
            begin(&s, encrypt, &mut msg, AAD),
            CKR_OPERATION_NOT_INITIALIZED
        );
        assert_eq!(final_(&s, encrypt), CKR_OPERATION_NOT_INITIALIZED);
        // Mechanisms without CKF_MESSAGE_ENCRYPT / DECRYPT.
        assert_eq!(init(&s, encrypt, CKM_AES_CBC, k), CKR_MECHANISM_INVALID);
        assert_eq!(init(&s, encrypt, CKM_AES_GCM, k), CKR_OK);
        assert_eq!(init(&s, encrypt, CKM_AES_GCM, k), CKR_OPERATION_ACTIVE);
        // Next without Begin.
        assert_eq!(
            next(&s, encrypt, None, PT, false),
            Err(CKR_OPERATION_NOT_INITIALIZED)
        );
        // A NULL per-message parameter.
        let call = |p: CK_VOID_PTR, len: CK_ULONG| {
            let mut out = [0u8; 64];
            let mut out_len: CK_ULONG = 64;
            // SAFETY: the buffers hold their stated lengths.
            unsafe {
                let f = match encrypt {
                    true => &raw().C_EncryptMessage,
                    false => &raw().C_DecryptMessage,
                };
                f.as_ref().expect("exported")(
                    s.handle(),
                    p,
                    len,
                    null_mut(),
                    0,
                    PT.as_ptr() as *mut u8,
                    PT.len() as CK_ULONG,
                    out.as_mut_ptr(),
                    &mut out_len,
                )
            }
        };
        assert_eq!(call(null_mut(), 0), CKR_MECHANISM_PARAM_INVALID);
        let (p, _) = msg.param();
        assert_eq!(call(p, 3), CKR_MECHANISM_PARAM_INVALID);
        // Begin twice, one-shot during a multi-part message.
        let mut msg = Msg::new(Kind::Gcm, &iv, 0);
        assert_eq!(begin(&s, encrypt, &mut msg, AAD), CKR_OK);
        assert_eq!(begin(&s, encrypt, &mut msg, AAD), CKR_OPERATION_ACTIVE);
        assert_eq!(
            one_shot(&s, encrypt, &mut msg, AAD, PT),
            Err(CKR_OPERATION_ACTIVE)
        );
        // Bad flags end the message, not the process.
        let mut len: CK_ULONG = 64;
        let mut out = [0u8; 64];
        // SAFETY: as above.
        let rv = unsafe {
            let f = match encrypt {
                true => &raw().C_EncryptMessageNext,
                false => &raw().C_DecryptMessageNext,
            };
            f.as_ref().expect("exported")(
                s.handle(),
                null_mut(),
                0,
                PT.as_ptr() as *mut u8,
                4,
                out.as_mut_ptr(),
                &mut len,
                0x10,
            )
        };
        assert_eq!(rv, CKR_ARGUMENTS_BAD);
        assert_eq!(
            next(&s, encrypt, None, PT, false),
            Err(CKR_OPERATION_NOT_INITIALIZED)
        );
        assert_eq!(final_(&s, encrypt), CKR_OK);
        assert_eq!(final_(&s, encrypt), CKR_OPERATION_NOT_INITIALIZED);
    }
    // A generator when decrypting; a parameter at Init.
    assert_eq!(init(&s, false, CKM_AES_GCM, k), CKR_OK);
    let mut msg = Msg::generated(Kind::Gcm, &[1; 4], 32, CKG_GENERATE_COUNTER);
    assert_eq!(
        one_shot(&s, false, &mut msg, AAD, PT),
        Err(CKR_MECHANISM_PARAM_INVALID)
    );
    assert_eq!(final_(&s, false), CKR_OK);
    let mut with_param = Msg::new(Kind::Gcm, &iv, 0);
    let (p, len) = with_param.param();
    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: p,
        ulParameterLen: len,
    };
    // SAFETY: `m` and its parameter outlive the call.
    let rv = unsafe { raw().C_MessageEncryptInit(s.handle(), &mut m, k.handle()) };
    assert_eq!(rv, CKR_MECHANISM_PARAM_INVALID);
    // A length query computes nothing and keeps the message going.
    assert_eq!(init(&s, true, CKM_AES_GCM, k), CKR_OK);
    let mut msg = Msg::generated(Kind::Gcm, &[1; 4], 32, CKG_GENERATE_COUNTER);
    let ct = one_shot(&s, true, &mut msg, AAD, PT).unwrap();
    assert_eq!(
        &msg.iv[4..],
        &[0; 8],
        "first counter value, not used by the query"
    );
    decrypts_with(&s, Kind::Gcm, k, &msg, &ct);
    // C_SessionCancel ends the process.
    // SAFETY: a plain session handle.
    let rv = unsafe { raw().C_SessionCancel(s.handle(), CKF_MESSAGE_ENCRYPT) };
    assert_eq!(rv, CKR_OK);
    assert_eq!(final_(&s, true), CKR_OPERATION_NOT_INITIALIZED);
}

#[test]
fn mechanism_info_has_the_message_flags() {
    let p = ctx();
    let slot = new_token(p, "msgenc-info");
    let _s = user_session(p, slot);
    for kind in ALL {
        // SAFETY: zeroed is a valid CK_MECHANISM_INFO.
        let mut info: CK_MECHANISM_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is writable.
        let rv = unsafe { raw().C_GetMechanismInfo(slot.id(), kind.mechanism(), &mut info) };
        assert_eq!(rv, CKR_OK);
        assert_ne!(info.flags & CKF_MESSAGE_ENCRYPT, 0, "{kind:?}");
        assert_ne!(info.flags & CKF_MESSAGE_DECRYPT, 0, "{kind:?}");
    }
}

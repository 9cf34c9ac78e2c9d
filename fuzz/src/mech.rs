//! Fuzzed `CK_MECHANISM`s: the type mostly from the module's own `C_GetMechanismList` (so the
//! input reaches the real parameter decoders), sometimes any value; the parameter NULL, raw bytes
//! of any length, a length that does not match its buffer, or — for the structures the module
//! decodes (`CK_GCM_PARAMS`, `CK_RSA_PKCS_OAEP_PARAMS`, `CK_RSA_PKCS_PSS_PARAMS`,
//! `CK_EDDSA_PARAMS`, `CK_ECDH1_DERIVE_PARAMS`) — a real structure whose inner pointers are
//! themselves fuzzed [`Field`]s. Raw bytes are never handed over with exactly the size of such a
//! structure: the module would then read pointers out of them, which a C caller would not pass.

use cryptoki_sys::*;

use crate::fixture::Fixture;
use crate::input::Reader;
use crate::mem::{field, Arena, Field, HUGE_LENS};

pub const DIGESTS: &[CK_MECHANISM_TYPE] = &[
    CKM_SHA_1,
    CKM_SHA224,
    CKM_SHA256,
    CKM_SHA384,
    CKM_SHA512,
    CKM_SHA3_256,
    CKM_MD5,
];
pub const MGFS: &[CK_RSA_PKCS_MGF_TYPE] = &[
    CKG_MGF1_SHA1,
    CKG_MGF1_SHA224,
    CKG_MGF1_SHA256,
    CKG_MGF1_SHA384,
    CKG_MGF1_SHA512,
    CKG_MGF1_SHA3_256,
    0,
];
pub const KDFS: &[CK_EC_KDF_TYPE] = &[
    CKD_NULL,
    CKD_SHA1_KDF,
    CKD_SHA224_KDF,
    CKD_SHA256_KDF,
    CKD_SHA384_KDF,
    CKD_SHA512_KDF,
    CKD_SHA3_256_KDF,
    CKD_SHA256_KDF_SP800,
];
pub const TAG_BITS: &[CK_ULONG] = &[128, 120, 112, 104, 96, 64, 32, 0, 8, 129, 256];

const PSS: &[CK_MECHANISM_TYPE] = &[
    CKM_RSA_PKCS_PSS,
    CKM_SHA1_RSA_PKCS_PSS,
    CKM_SHA224_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS_PSS,
    CKM_SHA3_224_RSA_PKCS_PSS,
    CKM_SHA3_256_RSA_PKCS_PSS,
    CKM_SHA3_384_RSA_PKCS_PSS,
    CKM_SHA3_512_RSA_PKCS_PSS,
];

/// The parameter structures with pointers or a fixed layout that the module decodes at its
/// boundary (src/ffi/ptr.rs), and their sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Pss,
    Oaep,
    Gcm,
    Ccm,
    ChachaPoly,
    Eddsa,
    Ecdh,
}

pub fn shape(kind: CK_MECHANISM_TYPE) -> Option<Shape> {
    match kind {
        k if PSS.contains(&k) => Some(Shape::Pss),
        CKM_RSA_PKCS_OAEP => Some(Shape::Oaep),
        CKM_AES_GCM => Some(Shape::Gcm),
        CKM_AES_CCM => Some(Shape::Ccm),
        CKM_CHACHA20_POLY1305 => Some(Shape::ChachaPoly),
        CKM_EDDSA => Some(Shape::Eddsa),
        CKM_ECDH1_DERIVE | CKM_ECDH1_COFACTOR_DERIVE => Some(Shape::Ecdh),
        _ => None,
    }
}

fn shape_size(s: Shape) -> usize {
    match s {
        Shape::Pss => std::mem::size_of::<CK_RSA_PKCS_PSS_PARAMS>(),
        Shape::Oaep => std::mem::size_of::<CK_RSA_PKCS_OAEP_PARAMS>(),
        Shape::Gcm => std::mem::size_of::<CK_GCM_PARAMS>(),
        Shape::Ccm => std::mem::size_of::<CK_CCM_PARAMS>(),
        Shape::ChachaPoly => std::mem::size_of::<CK_SALSA20_CHACHA20_POLY1305_PARAMS>(),
        Shape::Eddsa => std::mem::size_of::<CK_EDDSA_PARAMS>(),
        Shape::Ecdh => std::mem::size_of::<CK_ECDH1_DERIVE_PARAMS>(),
    }
}

/// The hash a `CKM_SHAx_RSA_PKCS_PSS` insists on (and a plausible one for the others).
fn pss_hash(kind: CK_MECHANISM_TYPE) -> (CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG) {
    match kind {
        CKM_SHA1_RSA_PKCS_PSS => (CKM_SHA_1, CKG_MGF1_SHA1, 20),
        CKM_SHA224_RSA_PKCS_PSS => (CKM_SHA224, CKG_MGF1_SHA224, 28),
        CKM_SHA384_RSA_PKCS_PSS => (CKM_SHA384, CKG_MGF1_SHA384, 48),
        CKM_SHA512_RSA_PKCS_PSS => (CKM_SHA512, CKG_MGF1_SHA512, 64),
        _ => (CKM_SHA256, CKG_MGF1_SHA256, 32),
    }
}

/// A parameter the module should accept for `kind` (so deeper code is reached), when the
/// mechanism takes one.
fn good_bytes(kind: CK_MECHANISM_TYPE) -> Option<Vec<u8>> {
    match kind {
        CKM_AES_CBC | CKM_AES_CBC_PAD => Some((0u8..16).collect()),
        CKM_AES_CTR => {
            let mut p = (128 as CK_ULONG).to_ne_bytes().to_vec();
            p.extend((0u8..16).map(|i| 0xf0 | i));
            Some(p)
        }
        CKM_AES_KEY_WRAP => Some(vec![0xa6; 8]),
        CKM_AES_KEY_WRAP_KWP => Some(vec![0xa6, 0x59, 0x59, 0xa6]),
        CKM_AES_CMAC_GENERAL
        | CKM_SHA_1_HMAC_GENERAL
        | CKM_SHA224_HMAC_GENERAL
        | CKM_SHA256_HMAC_GENERAL
        | CKM_SHA384_HMAC_GENERAL
        | CKM_SHA512_HMAC_GENERAL => Some((12 as CK_ULONG).to_ne_bytes().to_vec()),
        _ => None,
    }
}

/// Modes of the parameter in [`mechanism`].
pub const PARAM_NONE: u8 = 0;
pub const PARAM_NULL_WITH_LEN: u8 = 1;
pub const PARAM_RAW: u8 = 2;
pub const PARAM_STRUCT: u8 = 3;
pub const PARAM_SHORTER: u8 = 4;
pub const PARAM_HUGE: u8 = 5;
pub const PARAM_STRUCT_WRONG_LEN: u8 = 6;
pub const PARAM_GOOD: u8 = 7;
const PARAM_MODES: u8 = 8;

/// Modes of the mechanism type in [`mechanism`] (the first byte): below `TYPE_ANY_LISTED` an
/// index into the mechanisms suitable for the operation.
pub const TYPE_ANY_LISTED: u8 = 224;
pub const TYPE_ARBITRARY: u8 = 240;

/// Where the `CK_MECHANISM` itself goes.
pub const PLACE_ALIGNED: u8 = 0;
pub const PLACE_MISALIGNED: u8 = 1;

pub struct Mech {
    pub ptr: *mut CK_MECHANISM,
    pub kind: CK_MECHANISM_TYPE,
}

/// Reads one mechanism. `flags` are the `CKF_*` of the operation it is for (`CKF_ENCRYPT`, …).
pub fn mechanism(r: &mut Reader, arena: &mut Arena, fx: &Fixture, flags: CK_FLAGS) -> Mech {
    let sel = r.u8();
    let kind = if sel < TYPE_ANY_LISTED {
        let listed = fx.mechanisms_with(flags);
        listed[usize::from(r.u8()) % listed.len()]
    } else if sel < TYPE_ARBITRARY {
        let all = fx.mechanisms_with(!0);
        all[usize::from(r.u8()) % all.len()]
    } else {
        r.ulong()
    };
    let m = parameter(r, arena, fx, kind);
    let place = r.u8();
    let ptr = if place % 16 == PLACE_MISALIGNED {
        // A CK_MECHANISM one byte off its alignment, in memory that holds it: refused unread.
        let size = std::mem::size_of::<CK_MECHANISM>();
        let p = arena.zeroed(size + 1);
        // SAFETY: `p` has size + 1 bytes; the structure is copied byte-wise.
        unsafe {
            std::ptr::copy_nonoverlapping(std::ptr::from_ref(&m).cast::<u8>(), p.add(1), size);
            p.add(1).cast()
        }
    } else {
        arena.keep(m)
    };
    Mech { ptr, kind }
}

fn with_param(kind: CK_MECHANISM_TYPE, f: Field) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: kind,
        pParameter: f.ptr.cast(),
        ulParameterLen: f.len,
    }
}

/// The size of the C structure the module reads as `kind`'s parameter, when it is one: a shape
/// laid out here, or any structure sqlhsm's registry names (those with inner pointers above
/// all). Fuzzed bytes must never have that length: the module would follow pointers made of
/// them, which no caller may ask of it (the harness's side of the contract, not a module fault).
fn structure_size(kind: CK_MECHANISM_TYPE) -> Option<usize> {
    use sqlhsm::types::ParamShape as P;
    use std::mem::size_of;
    if let Some(s) = shape(kind) {
        return Some(shape_size(s));
    }
    Some(match sqlhsm::mechanism::lookup(kind)?.param {
        P::RsaPss => size_of::<CK_RSA_PKCS_PSS_PARAMS>(),
        P::RsaOaep => size_of::<CK_RSA_PKCS_OAEP_PARAMS>(),
        P::Gcm => size_of::<CK_GCM_PARAMS>(),
        P::Eddsa => size_of::<CK_EDDSA_PARAMS>(),
        P::Ecdh1Derive => size_of::<CK_ECDH1_DERIVE_PARAMS>(),
        P::Hkdf => size_of::<CK_HKDF_PARAMS>(),
        P::DerivationString => size_of::<CK_KEY_DERIVATION_STRING_DATA>(),
        P::KeyHandle => size_of::<CK_OBJECT_HANDLE>(),
        P::AesCbcEncryptData => size_of::<CK_AES_CBC_ENCRYPT_DATA_PARAMS>(),
        P::Sp800_108 => size_of::<CK_SP800_108_KDF_PARAMS>(),
        P::Sp800_108Feedback => size_of::<CK_SP800_108_FEEDBACK_KDF_PARAMS>(),
        P::Ccm => size_of::<CK_CCM_PARAMS>(),
        P::Chacha20 => size_of::<CK_CHACHA20_PARAMS>(),
        P::ChachaPoly => size_of::<CK_SALSA20_CHACHA20_POLY1305_PARAMS>(),
        P::SignContext => size_of::<CK_SIGN_ADDITIONAL_CONTEXT>(),
        P::HashSignContext => size_of::<CK_HASH_SIGN_ADDITIONAL_CONTEXT>(),
        P::None | P::Iv(_) | P::Ulong | P::Bytes => return None,
    })
}

/// Raw parameter bytes of a length the module does not read as a structure.
fn raw_field(arena: &mut Arena, mut data: Vec<u8>, kind: CK_MECHANISM_TYPE) -> Field {
    if structure_size(kind) == Some(data.len()) {
        data.push(0);
    }
    Field::of(arena, &data)
}

fn parameter(
    r: &mut Reader,
    arena: &mut Arena,
    fx: &Fixture,
    kind: CK_MECHANISM_TYPE,
) -> CK_MECHANISM {
    let mode = r.u8() % PARAM_MODES;
    let f = match mode {
        PARAM_NONE => Field::null(),
        PARAM_NULL_WITH_LEN => Field {
            ptr: std::ptr::null_mut(),
            len: r.ulong(),
        },
        PARAM_RAW => {
            let data = r.blob(80);
            raw_field(arena, data, kind)
        }
        PARAM_SHORTER => {
            // A buffer longer than the stated length; the stated length is never a structure's
            // size, since the buffer's bytes are not a structure.
            let data = r.blob(80);
            let mut len = r.len(data.len());
            if structure_size(kind) == Some(len) {
                len = len.saturating_sub(1);
            }
            Field {
                ptr: arena.buf(&data),
                len: len as CK_ULONG,
            }
        }
        PARAM_HUGE => {
            let data = r.blob(16);
            Field {
                ptr: arena.buf(&data),
                len: r.choose(HUGE_LENS),
            }
        }
        PARAM_STRUCT | PARAM_STRUCT_WRONG_LEN | PARAM_GOOD => {
            let good = mode == PARAM_GOOD;
            let wrong_len = mode == PARAM_STRUCT_WRONG_LEN;
            match shape(kind) {
                Some(s) => {
                    let bytes = structure(r, arena, fx, kind, s, good);
                    if wrong_len {
                        // The structure's bytes in a buffer of another length (more or less):
                        // refused on its size.
                        let n = r.len(bytes.len() + 16);
                        let n = if n == bytes.len() { n + 1 } else { n };
                        let mut b = bytes.clone();
                        b.resize(n, 0);
                        Field::of(arena, &b)
                    } else {
                        Field::of(arena, &bytes)
                    }
                }
                None => match good_bytes(kind) {
                    Some(b) if good || r.bool() => Field::of(arena, &b),
                    _ => Field::null(),
                },
            }
        }
        _ => Field::null(),
    };
    with_param(kind, f)
}

/// The bytes of a parameter structure (its pointers into `arena`).
fn structure(
    r: &mut Reader,
    arena: &mut Arena,
    fx: &Fixture,
    kind: CK_MECHANISM_TYPE,
    s: Shape,
    good: bool,
) -> Vec<u8> {
    fn bytes_of<T>(v: &T) -> Vec<u8> {
        // SAFETY: a plain-data C structure, read as its bytes.
        unsafe {
            std::slice::from_raw_parts(std::ptr::from_ref(v).cast::<u8>(), std::mem::size_of::<T>())
        }
        .to_vec()
    }
    // In `good` mode every field is the meaningful one; otherwise each is fuzzed.
    let f = |r: &mut Reader, arena: &mut Arena, max: usize, g: &[u8]| {
        if good {
            Field::of(arena, g)
        } else {
            field(r, arena, max, Some(g))
        }
    };
    match s {
        Shape::Pss => {
            let (hash, mgf, slen) = pss_hash(kind);
            let p = if good {
                CK_RSA_PKCS_PSS_PARAMS {
                    hashAlg: hash,
                    mgf,
                    sLen: slen,
                }
            } else {
                CK_RSA_PKCS_PSS_PARAMS {
                    hashAlg: if r.bool() { hash } else { r.choose(DIGESTS) },
                    mgf: if r.bool() { mgf } else { r.choose(MGFS) },
                    sLen: if r.bool() { slen } else { r.ulong() },
                }
            };
            bytes_of(&p)
        }
        Shape::Oaep => {
            let label = f(r, arena, 64, b"label");
            let p = CK_RSA_PKCS_OAEP_PARAMS {
                hashAlg: if good { CKM_SHA256 } else { r.choose(DIGESTS) },
                mgf: if good {
                    CKG_MGF1_SHA256
                } else {
                    r.choose(MGFS)
                },
                source: if good {
                    CKZ_DATA_SPECIFIED
                } else {
                    r.choose(&[CKZ_DATA_SPECIFIED, 0, 2, CK_ULONG::MAX])
                },
                pSourceData: label.ptr.cast(),
                ulSourceDataLen: label.len,
            };
            bytes_of(&p)
        }
        Shape::Gcm => {
            let iv = f(r, arena, 160, &[7u8; 12]);
            let aad = f(r, arena, 64, b"aad");
            let p = CK_GCM_PARAMS {
                pIv: iv.ptr,
                ulIvLen: iv.len,
                ulIvBits: if good { iv.len * 8 } else { r.ulong() },
                pAAD: aad.ptr,
                ulAADLen: aad.len,
                ulTagBits: if good { 128 } else { r.choose(TAG_BITS) },
            };
            bytes_of(&p)
        }
        Shape::Ccm => {
            let nonce = f(r, arena, 32, &[7u8; 12]);
            let aad = f(r, arena, 64, b"aad");
            let p = CK_CCM_PARAMS {
                // The seeds' round trips encrypt 32 bytes.
                ulDataLen: if good { 32 } else { r.ulong() },
                pNonce: nonce.ptr,
                ulNonceLen: nonce.len,
                pAAD: aad.ptr,
                ulAADLen: aad.len,
                ulMACLen: if good { 16 } else { r.ulong() },
            };
            bytes_of(&p)
        }
        Shape::ChachaPoly => {
            let nonce = f(r, arena, 32, &[7u8; 12]);
            let aad = f(r, arena, 64, b"aad");
            let p = CK_SALSA20_CHACHA20_POLY1305_PARAMS {
                pNonce: nonce.ptr,
                ulNonceLen: nonce.len,
                pAAD: aad.ptr,
                ulAADLen: aad.len,
            };
            bytes_of(&p)
        }
        Shape::Eddsa => {
            let ctx = f(r, arena, 300, b"");
            let p = CK_EDDSA_PARAMS {
                phFlag: if good { CK_FALSE } else { r.u8() },
                ulContextDataLen: ctx.len,
                pContextData: ctx.ptr,
            };
            bytes_of(&p)
        }
        Shape::Ecdh => {
            let peer = fx.ec_points[usize::from(r.u8()) % fx.ec_points.len()].clone();
            let shared = f(r, arena, 64, b"");
            let public = f(r, arena, 200, &peer);
            let p = CK_ECDH1_DERIVE_PARAMS {
                kdf: if good { CKD_NULL } else { r.choose(KDFS) },
                ulSharedDataLen: shared.len,
                pSharedData: shared.ptr,
                ulPublicDataLen: public.len,
                pPublicData: public.ptr,
            };
            bytes_of(&p)
        }
    }
}

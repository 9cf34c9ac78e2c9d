//! Fuzzed templates (`CK_ATTRIBUTE` arrays): attribute types mostly from the ones PKCS#11 3.0
//! and sqlhsm define, values mostly meaningful for the type (a class, a key type, a curve OID, a
//! date, a mechanism list), lengths and pointers fuzzed like every other [`Field`], and the array
//! itself NULL, misaligned, or with a count the module must refuse.

use cryptoki_sys::*;

use crate::fixture::{Fixture, EC_PARAMS};
use crate::input::Reader;
use crate::mem::{field, Arena, Field, MAX_LEN};

pub const KNOWN: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_CLASS,
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_LABEL,
    CKA_UNIQUE_ID,
    CKA_APPLICATION,
    CKA_VALUE,
    CKA_OBJECT_ID,
    CKA_CERTIFICATE_TYPE,
    CKA_ISSUER,
    CKA_SERIAL_NUMBER,
    CKA_TRUSTED,
    CKA_CERTIFICATE_CATEGORY,
    CKA_JAVA_MIDP_SECURITY_DOMAIN,
    CKA_URL,
    CKA_HASH_OF_SUBJECT_PUBLIC_KEY,
    CKA_HASH_OF_ISSUER_PUBLIC_KEY,
    CKA_NAME_HASH_ALGORITHM,
    CKA_CHECK_VALUE,
    CKA_KEY_TYPE,
    CKA_SUBJECT,
    CKA_ID,
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_DERIVE,
    CKA_START_DATE,
    CKA_END_DATE,
    CKA_MODULUS,
    CKA_MODULUS_BITS,
    CKA_PUBLIC_EXPONENT,
    CKA_PRIVATE_EXPONENT,
    CKA_PRIME_1,
    CKA_PRIME_2,
    CKA_EXPONENT_1,
    CKA_EXPONENT_2,
    CKA_COEFFICIENT,
    CKA_PUBLIC_KEY_INFO,
    CKA_PRIME,
    CKA_SUBPRIME,
    CKA_BASE,
    CKA_VALUE_BITS,
    CKA_VALUE_LEN,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_KEY_GEN_MECHANISM,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_EC_PARAMS,
    CKA_EC_POINT,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_WRAP_WITH_TRUSTED,
    CKA_WRAP_TEMPLATE,
    CKA_UNWRAP_TEMPLATE,
    CKA_DERIVE_TEMPLATE,
    CKA_ALLOWED_MECHANISMS,
    sqlhsm::vendor::CKA_SQLHSM_KEY_ID,
    sqlhsm::vendor::CKA_SQLHSM_KEY_STATUS,
    sqlhsm::vendor::CKA_SQLHSM_KEY_MODE,
    sqlhsm::vendor::CKA_SQLHSM_KEY_ALGORITHM,
    sqlhsm::vendor::CKA_SQLHSM_EXPIRATION,
    sqlhsm::vendor::CKA_SQLHSM_ROTATED_FROM,
    sqlhsm::vendor::CKA_SQLHSM_ROTATED_TO,
];

const BOOLS: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_TRUSTED,
    CKA_SENSITIVE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_SIGN,
    CKA_SIGN_RECOVER,
    CKA_VERIFY,
    CKA_VERIFY_RECOVER,
    CKA_DERIVE,
    CKA_EXTRACTABLE,
    CKA_LOCAL,
    CKA_NEVER_EXTRACTABLE,
    CKA_ALWAYS_SENSITIVE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_WRAP_WITH_TRUSTED,
];

pub const CLASSES: &[CK_OBJECT_CLASS] = &[
    CKO_SECRET_KEY,
    CKO_PUBLIC_KEY,
    CKO_PRIVATE_KEY,
    CKO_DATA,
    CKO_CERTIFICATE,
    CKO_DOMAIN_PARAMETERS,
    CKO_MECHANISM,
    CKO_PROFILE,
    CKO_VENDOR_DEFINED,
];

pub const KEY_TYPES: &[CK_KEY_TYPE] = &[
    CKK_AES,
    CKK_GENERIC_SECRET,
    CKK_RSA,
    CKK_EC,
    CKK_EC_EDWARDS,
    CKK_EC_MONTGOMERY,
    CKK_DES3,
    CKK_SHA256_HMAC,
    CKK_DSA,
];

const VALUE_LENS: &[CK_ULONG] = &[16, 24, 32, 0, 1, 15, 33, 64, 512, 513];
/// `CKA_MODULUS_BITS` to try; see [`small_rsa`] for what generation does with large ones.
const MODULUS_BITS: &[CK_ULONG] = &[2048, 1024, 2047, 2049, 3072, 4096, 16384, 16385, 0, 512];

fn ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// A value that means something for `kind`.
pub fn typed_value(r: &mut Reader, fx: &Fixture, kind: CK_ATTRIBUTE_TYPE) -> Vec<u8> {
    if BOOLS.contains(&kind) {
        return vec![r.choose(&[CK_TRUE, CK_FALSE, CK_TRUE, 2, 0xff])];
    }
    let any = r.one_in(8);
    match kind {
        CKA_CLASS if !any => ulong(r.choose(CLASSES)),
        CKA_KEY_TYPE if !any => ulong(r.choose(KEY_TYPES)),
        CKA_CERTIFICATE_TYPE if !any => {
            ulong(r.choose(&[CKC_X_509, CKC_X_509_ATTR_CERT, CKC_WTLS]))
        }
        CKA_VALUE_LEN if !any => ulong(r.choose(VALUE_LENS)),
        CKA_MODULUS_BITS if !any => ulong(r.choose(MODULUS_BITS)),
        CKA_CLASS
        | CKA_KEY_TYPE
        | CKA_CERTIFICATE_TYPE
        | CKA_VALUE_LEN
        | CKA_MODULUS_BITS
        | CKA_CERTIFICATE_CATEGORY
        | CKA_JAVA_MIDP_SECURITY_DOMAIN
        | CKA_NAME_HASH_ALGORITHM
        | CKA_KEY_GEN_MECHANISM
        | CKA_VALUE_BITS => ulong(r.ulong()),
        k if k == sqlhsm::vendor::CKA_SQLHSM_KEY_STATUS
            || k == sqlhsm::vendor::CKA_SQLHSM_KEY_MODE
            || k == sqlhsm::vendor::CKA_SQLHSM_KEY_ALGORITHM
            || k == sqlhsm::vendor::CKA_SQLHSM_EXPIRATION =>
        {
            ulong(r.ulong())
        }
        CKA_EC_PARAMS if !any => r.choose(EC_PARAMS).to_vec(),
        CKA_EC_POINT if !any => fx.ec_points[usize::from(r.u8()) % fx.ec_points.len()].clone(),
        CKA_PUBLIC_EXPONENT if !any => r
            .choose(&[
                &[1u8, 0, 1][..],
                &[3],
                &[1],
                &[2],
                &[],
                &[0, 1, 0, 1],
                &[0xff; 9],
            ])
            .to_vec(),
        CKA_ALLOWED_MECHANISMS => {
            let n = usize::from(r.u8() % 4);
            let mut v = Vec::new();
            for _ in 0..n {
                let m = fx.mechanisms[usize::from(r.u8()) % fx.mechanisms.len()].0;
                v.extend(ulong(m));
            }
            if any {
                v.push(r.u8());
            }
            v
        }
        CKA_START_DATE | CKA_END_DATE if !any => r
            .choose(&[
                &b"20240131"[..],
                b"",
                b"99991231",
                b"20241301",
                b"2024013",
                b"abcdefgh",
            ])
            .to_vec(),
        CKA_VALUE if !any => match r.u8() % 3 {
            0 => fx.cert_der.clone(),
            1 => {
                let n = r.choose(&[16, 24, 32]);
                r.bytes(n)
            }
            _ => r.blob(80),
        },
        CKA_LABEL | CKA_APPLICATION | CKA_URL | CKA_UNIQUE_ID if !any => r
            .choose(&[
                &b"fuzz"[..],
                b"",
                "\u{e9}t\u{e9}".as_bytes(),
                b"\xff\xfe",
                b"a\0b",
            ])
            .to_vec(),
        CKA_MODULUS | CKA_PRIVATE_EXPONENT | CKA_PRIME_1 | CKA_PRIME_2 | CKA_EXPONENT_1
        | CKA_EXPONENT_2 | CKA_COEFFICIENT => r.blob(300),
        _ => r.blob(64),
    }
}

/// One template entry: the type, where its value is, and the value's stated bytes when they are
/// known (so the harness can rewrite them).
#[derive(Clone)]
pub struct Entry {
    pub kind: CK_ATTRIBUTE_TYPE,
    pub field: Field,
    pub value: Option<Vec<u8>>,
}

impl Entry {
    pub fn exact(arena: &mut Arena, kind: CK_ATTRIBUTE_TYPE, value: Vec<u8>) -> Self {
        Entry {
            kind,
            field: Field::of(arena, &value),
            value: Some(value),
        }
    }
}

/// Up to `max` fuzzed entries.
pub fn entries(r: &mut Reader, arena: &mut Arena, fx: &Fixture, max: u8) -> Vec<Entry> {
    let n = r.u8() % (max + 1);
    (0..n).map(|_| entry(r, arena, fx)).collect()
}

pub fn entry(r: &mut Reader, arena: &mut Arena, fx: &Fixture) -> Entry {
    let kind = if r.u8() < 240 {
        r.choose(KNOWN)
    } else {
        r.ulong()
    };
    if sqlhsm::types::is_attribute_array(kind) {
        return array_entry(r, arena, fx, kind);
    }
    match r.u8() % 4 {
        0 | 1 => {
            let v = typed_value(r, fx, kind);
            Entry::exact(arena, kind, v)
        }
        2 => {
            let v = typed_value(r, fx, kind);
            let field = field(r, arena, 64, Some(&v));
            Entry {
                kind,
                field,
                value: None,
            }
        }
        _ => {
            let v = r.blob(1024);
            Entry::exact(arena, kind, v)
        }
    }
}

/// An attribute-array entry (`CKA_WRAP_TEMPLATE`, `CKA_UNWRAP_TEMPLATE`, `CKA_DERIVE_TEMPLATE`):
/// its value is a real `CK_ATTRIBUTE` array whose entries point into the arena, because the
/// module follows those pointers, as PKCS#11 3.0 §4.1.3 lets it, and random bytes there would be
/// the harness breaking the caller's contract, not a finding. The stated length is the whole
/// array or a part of it (not always whole entries), and NULL with length 0 for no entries.
/// Inner entries are never arrays themselves (the module refuses those before reading them).
fn array_entry(r: &mut Reader, arena: &mut Arena, fx: &Fixture, kind: CK_ATTRIBUTE_TYPE) -> Entry {
    let n = usize::from(r.u8() % 4);
    let inner: Vec<CK_ATTRIBUTE> = (0..n)
        .map(|_| {
            let kind = r.choose(KNOWN);
            let value = typed_value(r, fx, kind);
            let value = Field::of(arena, &value);
            CK_ATTRIBUTE {
                type_: kind,
                pValue: value.ptr.cast(),
                ulValueLen: value.len,
            }
        })
        .collect();
    let size = n * std::mem::size_of::<CK_ATTRIBUTE>();
    let field = match n {
        0 => Field::null(),
        _ => Field {
            ptr: arena.array(inner).cast(),
            len: match r.u8() % 4 {
                0 => r.len(size),
                _ => size,
            } as CK_ULONG,
        },
    };
    Entry {
        kind,
        field,
        value: None,
    }
}

/// Keeps the objects an iteration makes out of the token (session objects go when the
/// session closes): every `CKA_TOKEN` with a readable value becomes false, and `add_false` adds
/// one when there is none (for `C_CopyObject`, whose default is the original's).
pub fn session_only(entries: &mut Vec<Entry>, arena: &mut Arena, add_false: bool) {
    let mut seen = false;
    for e in entries.iter_mut().filter(|e| e.kind == CKA_TOKEN) {
        seen = true;
        if !e.field.ptr.is_null() && e.field.len <= MAX_LEN {
            *e = Entry::exact(arena, CKA_TOKEN, vec![CK_FALSE; e.field.len as usize]);
        }
    }
    if add_false && !seen {
        entries.push(Entry::exact(arena, CKA_TOKEN, vec![CK_FALSE]));
    }
}

/// Token objects an iteration makes must stay destroyable, or they would pile up in the store:
/// `CKA_DESTROYABLE` entries are dropped.
pub fn destroyable(entries: &mut Vec<Entry>) {
    entries.retain(|e| e.kind != CKA_DESTROYABLE);
}

/// RSA key generation is kept at 2048 bits (one key takes tens of milliseconds there, seconds
/// at 4096 and above): a valid `CKA_MODULUS_BITS` above 2048 is rewritten to 2048. Sizes the
/// module must refuse (below 1024, above 16384, wrong length) and the faster ones from 1024 to
/// 2047 are left as they are.
pub fn small_rsa(entries: &mut [Entry], arena: &mut Arena) {
    for e in entries.iter_mut().filter(|e| e.kind == CKA_MODULUS_BITS) {
        let bits = e
            .value
            .as_deref()
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map(CK_ULONG::from_ne_bytes);
        if bits.is_some_and(|b| (2049..=16384).contains(&b)) {
            *e = Entry::exact(arena, CKA_MODULUS_BITS, ulong(2048));
        }
    }
}

/// Array modes of [`lay_out`] (taken modulo 16; the others are a plain array).
pub const ARRAY_NULL: u8 = 12;
pub const ARRAY_MISALIGNED: u8 = 13;
pub const ARRAY_HUGE_COUNT: u8 = 14;
pub const ARRAY_SHORT_COUNT: u8 = 15;

/// The entries as the `(pTemplate, ulCount)` a caller passes.
pub fn lay_out(
    r: &mut Reader,
    arena: &mut Arena,
    entries: &[Entry],
) -> (*mut CK_ATTRIBUTE, CK_ULONG) {
    let attrs: Vec<CK_ATTRIBUTE> = entries
        .iter()
        .map(|e| CK_ATTRIBUTE {
            type_: e.kind,
            pValue: e.field.ptr.cast(),
            ulValueLen: e.field.len,
        })
        .collect();
    let n = attrs.len();
    let count = n as CK_ULONG;
    match r.u8() % 16 {
        ARRAY_NULL => (std::ptr::null_mut(), count),
        ARRAY_MISALIGNED if n > 0 => {
            let size = n * std::mem::size_of::<CK_ATTRIBUTE>();
            let p = arena.zeroed(size + 1);
            // SAFETY: `p` has size + 1 bytes; the array is copied byte-wise.
            unsafe {
                std::ptr::copy_nonoverlapping(attrs.as_ptr().cast::<u8>(), p.add(1), size);
                (p.add(1).cast(), count)
            }
        }
        ARRAY_HUGE_COUNT => {
            let huge = r.choose(&[
                MAX_LEN / std::mem::size_of::<CK_ATTRIBUTE>() as CK_ULONG + 1,
                1 << 40,
                CK_ULONG::MAX,
            ]);
            (arena.array(attrs), huge)
        }
        ARRAY_SHORT_COUNT => {
            let short = r.len(n) as CK_ULONG;
            (arena.array(attrs), short)
        }
        _ if n == 0 => (std::ptr::null_mut(), 0),
        _ => (arena.array(attrs), count),
    }
}

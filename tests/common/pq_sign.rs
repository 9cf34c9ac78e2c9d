//! ML-DSA / SLH-DSA keys and signature parameters through the raw C function list (cryptoki
//! 0.12 cannot send `CKA_SEED` or the 3.2 signature parameters as sqlhsm needs them).

use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki_sys::{
    CKA_CLASS, CKA_KEY_TYPE, CKA_PARAMETER_SET, CKA_SEED, CKA_SIGN, CKA_TOKEN, CKA_VALUE,
    CKA_VERIFY, CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CK_HASH_SIGN_ADDITIONAL_CONTEXT, CK_KEY_TYPE,
    CK_SIGN_ADDITIONAL_CONTEXT, CK_ULONG,
};

use super::{raw_bool, raw_create_object, raw_ulong};

/// A session private key of `key_type` (`CKK_ML_DSA`, `CKK_SLH_DSA`) from its `CKA_SEED`.
pub fn pq_private_from_seed(
    s: &Session,
    key_type: CK_KEY_TYPE,
    set: CK_ULONG,
    seed: &[u8],
) -> cryptoki::error::Result<ObjectHandle> {
    raw_create_object(
        s,
        vec![
            raw_ulong(CKA_CLASS, CKO_PRIVATE_KEY),
            raw_ulong(CKA_KEY_TYPE, key_type),
            raw_ulong(CKA_PARAMETER_SET, set),
            raw_bool(CKA_TOKEN, false),
            raw_bool(CKA_SIGN, true),
            (CKA_SEED, seed.to_vec()),
        ],
    )
}

/// A session public key of `key_type` from its encoding (`CKA_VALUE`).
pub fn pq_public(
    s: &Session,
    key_type: CK_KEY_TYPE,
    set: CK_ULONG,
    value: &[u8],
) -> cryptoki::error::Result<ObjectHandle> {
    raw_create_object(
        s,
        vec![
            raw_ulong(CKA_CLASS, CKO_PUBLIC_KEY),
            raw_ulong(CKA_KEY_TYPE, key_type),
            raw_ulong(CKA_PARAMETER_SET, set),
            raw_bool(CKA_TOKEN, false),
            raw_bool(CKA_VERIFY, true),
            (CKA_VALUE, value.to_vec()),
        ],
    )
}

/// A `CK_SIGN_ADDITIONAL_CONTEXT` (or, with a hash, `CK_HASH_SIGN_ADDITIONAL_CONTEXT`) and the
/// context it points to, kept together so the pointer stays valid.
pub struct SignContext {
    /// What `pContext` points to: owned here so it lives as long as the structures.
    context: Vec<u8>,
    plain: CK_SIGN_ADDITIONAL_CONTEXT,
    hashed: CK_HASH_SIGN_ADDITIONAL_CONTEXT,
    with_hash: bool,
}

impl SignContext {
    pub fn new(hedge: CK_ULONG, context: &[u8]) -> SignContext {
        let mut context = context.to_vec();
        // An empty context is sent as NULL, as a C caller would.
        let p = if context.is_empty() {
            std::ptr::null_mut()
        } else {
            context.as_mut_ptr()
        };
        let len = context.len() as CK_ULONG;
        SignContext {
            plain: CK_SIGN_ADDITIONAL_CONTEXT {
                hedgeVariant: hedge,
                pContext: p,
                ulContextLen: len,
            },
            hashed: CK_HASH_SIGN_ADDITIONAL_CONTEXT {
                hedgeVariant: hedge,
                pContext: p,
                ulContextLen: len,
                hash: 0,
            },
            context,
            with_hash: false,
        }
    }

    /// The `CK_HASH_SIGN_ADDITIONAL_CONTEXT` form, naming `hash` (`CKM_SHA256`, …).
    pub fn with_hash(mut self, hash: CK_ULONG) -> SignContext {
        self.hashed.hash = hash;
        self.with_hash = true;
        self
    }

    /// The structure as the bytes `raw_sign` / `raw_verify` take for `pParameter`.
    pub fn bytes(&mut self) -> &mut [u8] {
        if self.with_hash {
            let p = (&mut self.hashed as *mut CK_HASH_SIGN_ADDITIONAL_CONTEXT).cast::<u8>();
            // SAFETY: the structure is plain data of this size, borrowed mutably with `self`.
            unsafe {
                std::slice::from_raw_parts_mut(p, size_of::<CK_HASH_SIGN_ADDITIONAL_CONTEXT>())
            }
        } else {
            let p = (&mut self.plain as *mut CK_SIGN_ADDITIONAL_CONTEXT).cast::<u8>();
            // SAFETY: as above.
            unsafe { std::slice::from_raw_parts_mut(p, size_of::<CK_SIGN_ADDITIONAL_CONTEXT>()) }
        }
    }
}

/// `C_GenerateKeyPair` of a session key pair with `mech` (`CKM_ML_DSA_KEY_PAIR_GEN`,
/// `CKM_SLH_DSA_KEY_PAIR_GEN`), the parameter set in the public template as PKCS#11 3.2 puts
/// it: (public, private).
pub fn pq_generate(
    s: &Session,
    mech: u64,
    set: CK_ULONG,
) -> cryptoki::error::Result<(ObjectHandle, ObjectHandle)> {
    let mut m = super::raw_mech::<u8>(mech, None);
    let mut public = vec![
        raw_ulong(CKA_PARAMETER_SET, set),
        raw_bool(CKA_TOKEN, false),
        raw_bool(CKA_VERIFY, true),
    ];
    let mut private = vec![raw_bool(CKA_TOKEN, false), raw_bool(CKA_SIGN, true)];
    let attrs = |t: &mut Vec<super::RawAttr>| -> Vec<cryptoki_sys::CK_ATTRIBUTE> {
        t.iter_mut()
            .map(|(k, v)| cryptoki_sys::CK_ATTRIBUTE {
                type_: *k,
                pValue: v.as_mut_ptr().cast(),
                ulValueLen: v.len() as CK_ULONG,
            })
            .collect()
    };
    let (mut pt, mut kt) = (attrs(&mut public), attrs(&mut private));
    let (mut hp, mut hk) = (0, 0);
    // SAFETY: `m`, and `pt` / `kt` pointing into `public` / `private`, are alive for the call.
    let rv = unsafe {
        super::raw().C_GenerateKeyPair(
            s.handle(),
            &mut m,
            pt.as_mut_ptr(),
            pt.len() as CK_ULONG,
            kt.as_mut_ptr(),
            kt.len() as CK_ULONG,
            &mut hp,
            &mut hk,
        )
    };
    super::raw_result(rv, cryptoki::context::Function::GenerateKeyPair)?;
    // SAFETY: handles the module just returned.
    Ok(unsafe {
        (
            ObjectHandle::new_from_raw(hp),
            ObjectHandle::new_from_raw(hk),
        )
    })
}

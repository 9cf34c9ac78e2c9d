//! Plain values that cross from the FFI boundary into the safe layers: attributes, mechanisms and
//! their parameters, and the two-call output buffer (PKCS#11 3.0 §5.2). Nothing here holds a raw
//! pointer; the FFI layer builds these from the caller's memory and the rest of the crate only
//! ever sees them.

use cryptoki_sys::{
    CK_ATTRIBUTE_TYPE, CK_EC_KDF_TYPE, CK_MECHANISM_TYPE, CK_RSA_PKCS_MGF_TYPE, CK_ULONG,
};
use zeroize::Zeroizing;

use crate::error::{Result, Rv};

/// One attribute of a caller's template, its value copied out of the caller's memory.
/// Values are zeroized on drop because templates carry key material (`CKA_VALUE`, PINs never).
#[derive(Clone, PartialEq, Eq)]
pub struct Attribute {
    pub kind: CK_ATTRIBUTE_TYPE,
    pub value: Zeroizing<Vec<u8>>,
}

impl Attribute {
    pub fn new(kind: CK_ATTRIBUTE_TYPE, value: impl Into<Vec<u8>>) -> Self {
        Attribute {
            kind,
            value: Zeroizing::new(value.into()),
        }
    }

    pub fn from_bool(kind: CK_ATTRIBUTE_TYPE, value: bool) -> Self {
        Attribute::new(kind, vec![u8::from(value)])
    }

    pub fn from_ulong(kind: CK_ATTRIBUTE_TYPE, value: CK_ULONG) -> Self {
        Attribute::new(kind, value.to_ne_bytes().to_vec())
    }
}

impl std::fmt::Debug for Attribute {
    // Attribute values may be secret key bytes; only the type and length are ever printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Attribute(0x{:x}, {} bytes)",
            self.kind,
            self.value.len()
        )
    }
}

/// A caller's template.
pub type Template = Vec<Attribute>;

/// A mechanism and its decoded parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mechanism {
    pub kind: CK_MECHANISM_TYPE,
    pub param: MechanismParam,
}

impl Mechanism {
    pub fn new(kind: CK_MECHANISM_TYPE) -> Self {
        Mechanism {
            kind,
            param: MechanismParam::None,
        }
    }
}

/// The C layout of a mechanism's `pParameter`, declared once per mechanism in the mechanism
/// registry. The FFI layer reads the caller's memory by this declaration (one decoder per
/// shape) and never by mechanism number; what it builds is a [`MechanismParam`].
///
/// Flat shapes hold no pointers and are copied as bytes ([`MechanismParam::Bytes`]): the
/// mechanism judges them when the operation starts, after it has checked the key, so that a
/// wrong key type is reported before a wrong IV length. Structures with inner pointers have to be
/// followed at the boundary; a malformed one (wrong size, NULL inner pointer with a length) is
/// `CKR_MECHANISM_PARAM_INVALID` there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamShape {
    /// No parameter. A non-NULL one still arrives as bytes, for the mechanism to refuse.
    None,
    /// An initialization vector of this many bytes (flat); the mechanism says whether it is
    /// optional.
    Iv(usize),
    /// One native-endian `CK_ULONG` (flat): `CK_MAC_GENERAL_PARAMS`.
    Ulong,
    /// Another flat structure the mechanism parses itself (`CK_AES_CTR_PARAMS`), or a
    /// parameter of a mechanism the registry does not know.
    Bytes,
    /// `CK_RSA_PKCS_PSS_PARAMS` → [`MechanismParam::Pss`].
    RsaPss,
    /// `CK_RSA_PKCS_OAEP_PARAMS` → [`MechanismParam::Oaep`].
    RsaOaep,
    /// `CK_GCM_PARAMS` → [`MechanismParam::Gcm`].
    Gcm,
    /// `CK_EDDSA_PARAMS` → [`MechanismParam::Eddsa`].
    Eddsa,
    /// `CK_ECDH1_DERIVE_PARAMS` → [`MechanismParam::Ecdh`].
    Ecdh1Derive,
    /// `CK_CCM_PARAMS` → [`MechanismParam::Ccm`].
    Ccm,
    /// `CK_CHACHA20_PARAMS` → [`MechanismParam::Chacha20`].
    Chacha20,
    /// `CK_SALSA20_CHACHA20_POLY1305_PARAMS` → [`MechanismParam::Aead`].
    ChachaPoly,
}

impl ParamShape {
    /// Whether the parameter is copied as bytes (no inner pointers to follow).
    pub fn is_flat(self) -> bool {
        matches!(
            self,
            ParamShape::None | ParamShape::Iv(_) | ParamShape::Ulong | ParamShape::Bytes
        )
    }
}

/// A mechanism parameter decoded at the FFI boundary by its [`ParamShape`]. Structures holding
/// pointers (`CK_GCM_PARAMS`, `CK_RSA_PKCS_OAEP_PARAMS`, …) become owned values here; a flat
/// parameter arrives as its raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MechanismParam {
    /// `pParameter` was NULL.
    None,
    /// Raw parameter bytes (an IV for CBC, an unknown structure).
    Bytes(Vec<u8>),
    /// `CK_RSA_PKCS_PSS_PARAMS`.
    Pss {
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        salt_len: CK_ULONG,
    },
    /// `CK_RSA_PKCS_OAEP_PARAMS`; `source_data` is the label (`pSourceData`).
    Oaep {
        hash: CK_MECHANISM_TYPE,
        mgf: CK_RSA_PKCS_MGF_TYPE,
        source_data: Vec<u8>,
    },
    /// `CK_GCM_PARAMS`.
    Gcm {
        iv: Vec<u8>,
        aad: Vec<u8>,
        tag_bits: CK_ULONG,
    },
    /// `CK_EDDSA_PARAMS` (absent params mean pure EdDSA without context).
    Eddsa { prehash: bool, context: Vec<u8> },
    /// `CK_ECDH1_DERIVE_PARAMS`.
    Ecdh {
        kdf: CK_EC_KDF_TYPE,
        shared_data: Vec<u8>,
        public_data: Vec<u8>,
    },
    /// `CK_CCM_PARAMS`: the message length declared up front, nonce, AAD, MAC length in bytes.
    Ccm {
        data_len: CK_ULONG,
        nonce: Vec<u8>,
        aad: Vec<u8>,
        mac_len: CK_ULONG,
    },
    /// `CK_CHACHA20_PARAMS`: the initial block counter and the nonce, as given, with their
    /// stated sizes in bits.
    Chacha20 {
        counter: Vec<u8>,
        counter_bits: CK_ULONG,
        nonce: Vec<u8>,
        nonce_bits: CK_ULONG,
    },
    /// `CK_SALSA20_CHACHA20_POLY1305_PARAMS`: nonce and AAD.
    Aead { nonce: Vec<u8>, aad: Vec<u8> },
}

/// One entry of a `C_GetAttributeValue` template. After the call, the FFI layer writes
/// `CK_UNAVAILABLE_INFORMATION` into `ulValueLen` when `unavailable` is set, else `out.len()`.
#[derive(Debug)]
pub struct AttributeRequest<'a> {
    pub kind: cryptoki_sys::CK_ATTRIBUTE_TYPE,
    pub out: OutBuf<'a>,
    pub unavailable: bool,
}

/// The caller's output buffer under the two-call convention of PKCS#11 3.0 §5.2: a NULL buffer
/// asks for the length; a buffer too small gets `CKR_BUFFER_TOO_SMALL` and the length needed;
/// otherwise the bytes are copied. Every output path (signatures, ciphertext, digests, attribute
/// values, random bytes) goes through this one type.
#[derive(Debug)]
pub struct OutBuf<'a> {
    buffer: Option<&'a mut [u8]>,
    /// What the caller finds in its length argument afterwards.
    len: usize,
}

impl<'a> OutBuf<'a> {
    /// A length query (the caller passed a NULL buffer).
    pub fn query() -> OutBuf<'static> {
        OutBuf {
            buffer: None,
            len: 0,
        }
    }

    /// A real buffer of the caller's stated capacity.
    pub fn buffer(buffer: &'a mut [u8]) -> Self {
        let len = buffer.len();
        OutBuf {
            buffer: Some(buffer),
            len,
        }
    }

    /// True when the caller only asked for the length.
    pub fn is_query(&self) -> bool {
        self.buffer.is_none()
    }

    /// The caller's capacity (0 for a query).
    pub fn capacity(&self) -> usize {
        self.buffer.as_ref().map_or(0, |b| b.len())
    }

    /// The length to report back to the caller.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the reported length is zero.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Report `needed` without copying: answers a query with `Ok(false)`, a buffer too small with
    /// `CKR_BUFFER_TOO_SMALL`, and a large enough buffer with `Ok(true)` (go ahead and produce).
    pub fn reserve(&mut self, needed: usize) -> Result<bool> {
        match &self.buffer {
            None => {
                self.len = needed;
                Ok(false)
            }
            Some(buffer) if buffer.len() < needed => {
                self.len = needed;
                Err(Rv::BUFFER_TOO_SMALL)?
            }
            Some(_) => Ok(true),
        }
    }

    /// Deliver `data`: a query reports its length (`Ok(false)`), a buffer too small fails with
    /// `CKR_BUFFER_TOO_SMALL` and the length, a large enough buffer receives it (`Ok(true)`).
    pub fn fill(&mut self, data: &[u8]) -> Result<bool> {
        if !self.reserve(data.len())? {
            return Ok(false);
        }
        if let Some(buffer) = self.buffer.as_deref_mut() {
            buffer[..data.len()].copy_from_slice(data);
        }
        self.len = data.len();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_reports_length_and_copies_nothing() {
        let mut out = OutBuf::query();
        assert!(!out.fill(b"abcd").unwrap());
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn too_small_reports_needed_length() {
        let mut storage = [0u8; 2];
        let mut out = OutBuf::buffer(&mut storage);
        let err = out.fill(b"abcd").unwrap_err();
        assert_eq!(err.rv(), Rv::BUFFER_TOO_SMALL);
        assert_eq!(out.len(), 4);
        assert_eq!(storage, [0, 0], "nothing is written on BUFFER_TOO_SMALL");
    }

    #[test]
    fn large_enough_copies_and_reports_actual_length() {
        let mut storage = [0u8; 8];
        let mut out = OutBuf::buffer(&mut storage);
        assert!(out.fill(b"abcd").unwrap());
        assert_eq!(out.len(), 4);
        assert_eq!(&storage[..4], b"abcd");
    }

    #[test]
    fn reserve_upper_bound_then_fill_exact() {
        let mut storage = [0u8; 8];
        let mut out = OutBuf::buffer(&mut storage);
        assert!(out.reserve(8).unwrap());
        assert!(out.fill(b"xyz").unwrap());
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn attribute_debug_hides_value() {
        let attr = Attribute::new(0x11, b"secret".to_vec());
        assert!(!format!("{attr:?}").contains("secret"));
    }
}

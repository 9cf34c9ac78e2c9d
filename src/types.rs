//! Plain values that cross from the FFI boundary into the safe layers: attributes, mechanisms and
//! their parameters, and the two-call output buffer (PKCS#11 3.0 §5.2). Nothing here holds a raw
//! pointer; the FFI layer builds these from the caller's memory and the rest of the crate only
//! ever sees them.

use cryptoki_sys::{
    CK_ATTRIBUTE_TYPE, CK_EC_KDF_TYPE, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_RSA_PKCS_MGF_TYPE,
    CK_ULONG,
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

/// Whether `kind`'s value is an array of attributes (`CKA_WRAP_TEMPLATE`, `CKA_UNWRAP_TEMPLATE`,
/// `CKA_DERIVE_TEMPLATE`, and PKCS#11 3.2's `CKA_ENCAPSULATE_TEMPLATE`,
/// `CKA_DECAPSULATE_TEMPLATE`). Not every `CKF_ARRAY_ATTRIBUTE` type is one:
/// `CKA_ALLOWED_MECHANISMS` has the bit and holds mechanism types.
pub fn is_attribute_array(kind: CK_ATTRIBUTE_TYPE) -> bool {
    matches!(
        kind,
        cryptoki_sys::CKA_WRAP_TEMPLATE
            | cryptoki_sys::CKA_UNWRAP_TEMPLATE
            | cryptoki_sys::CKA_DERIVE_TEMPLATE
            | cryptoki_sys::CKA_ENCAPSULATE_TEMPLATE
            | cryptoki_sys::CKA_DECAPSULATE_TEMPLATE
    )
}

/// The value of an attribute-array attribute (`CKF_ARRAY_ATTRIBUTE`: `CKA_WRAP_TEMPLATE`,
/// `CKA_UNWRAP_TEMPLATE`, `CKA_DERIVE_TEMPLATE`) as sqlhsm holds it once the FFI has followed
/// its pointers: each attribute as its type and its length (8 bytes each, little-endian), then
/// its value.
pub fn encode_attribute_array(attributes: &[Attribute]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in attributes {
        // CK_ULONG is 32 bits on some platforms; the encoding is always 64.
        #[allow(clippy::unnecessary_cast)]
        out.extend_from_slice(&(a.kind as u64).to_le_bytes());
        out.extend_from_slice(&(a.value.len() as u64).to_le_bytes());
        out.extend_from_slice(&a.value);
    }
    out
}

/// The inverse of [`encode_attribute_array`]; `CKR_ATTRIBUTE_VALUE_INVALID` when the bytes are
/// not such an encoding.
pub fn decode_attribute_array(mut bytes: &[u8]) -> Result<Template> {
    let mut out = Vec::new();
    let word = |bytes: &mut &[u8]| -> Result<u64> {
        let (head, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or(Rv::ATTRIBUTE_VALUE_INVALID)?;
        *bytes = rest;
        Ok(u64::from_le_bytes(*head))
    };
    while !bytes.is_empty() {
        let kind = word(&mut bytes)?;
        let len = usize::try_from(word(&mut bytes)?).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?;
        if len > bytes.len() {
            Err(Rv::ATTRIBUTE_VALUE_INVALID)?
        }
        let (value, rest) = bytes.split_at(len);
        out.push(Attribute::new(
            CK_ATTRIBUTE_TYPE::try_from(kind).map_err(|_| Rv::ATTRIBUTE_VALUE_INVALID)?,
            value.to_vec(),
        ));
        bytes = rest;
    }
    Ok(out)
}

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
    /// `CK_HKDF_PARAMS` → [`MechanismParam::Hkdf`].
    Hkdf,
    /// `CK_KEY_DERIVATION_STRING_DATA` → [`MechanismParam::Data`].
    DerivationString,
    /// One `CK_OBJECT_HANDLE` (`CKM_CONCATENATE_BASE_AND_KEY`) → [`MechanismParam::Key`].
    KeyHandle,
    /// `CK_AES_CBC_ENCRYPT_DATA_PARAMS` → [`MechanismParam::CbcData`].
    AesCbcEncryptData,
    /// `CK_SP800_108_KDF_PARAMS` → [`MechanismParam::Kbkdf`] without an IV.
    Sp800_108,
    /// `CK_SP800_108_FEEDBACK_KDF_PARAMS` → [`MechanismParam::Kbkdf`] with its IV.
    Sp800_108Feedback,
    /// `CK_CCM_PARAMS` → [`MechanismParam::Ccm`].
    Ccm,
    /// `CK_CHACHA20_PARAMS` → [`MechanismParam::Chacha20`].
    Chacha20,
    /// `CK_SALSA20_CHACHA20_POLY1305_PARAMS` → [`MechanismParam::Aead`].
    ChachaPoly,
    /// `CK_SIGN_ADDITIONAL_CONTEXT` (ML-DSA, SLH-DSA) → [`MechanismParam::SignContext`] without
    /// a hash.
    SignContext,
    /// `CK_HASH_SIGN_ADDITIONAL_CONTEXT` (HashML-DSA, HashSLH-DSA over the caller's digest) →
    /// [`MechanismParam::SignContext`] with its hash.
    HashSignContext,
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

/// A per-message parameter of message-based encryption and decryption
/// (`CK_GCM_MESSAGE_PARAMS`, `CK_CCM_MESSAGE_PARAMS`, `CK_SALSA20_CHACHA20_POLY1305_MSG_PARAMS`)
/// decoded at the FFI boundary: the IV (or nonce) and the tag (or MAC) buffer as the caller
/// holds them now. The FFI writes a generated IV and an encryption's tag back after the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageParam {
    /// `pIv` / `pNonce`: the whole IV, or its fixed part followed by anything when generated.
    pub iv: Vec<u8>,
    /// `ulIvFixedBits` / `ulNonceFixedBits` (0 for ChaCha20-Poly1305).
    pub fixed_bits: CK_ULONG,
    /// `ivGenerator` / `nonceGenerator` (`CKG_NO_GENERATE` for ChaCha20-Poly1305).
    pub generator: CK_ULONG,
    /// `pTag` / `pMAC`, its length the tag length.
    pub tag: Vec<u8>,
    /// `ulDataLen` of `CK_CCM_MESSAGE_PARAMS`; 0 otherwise.
    pub data_len: CK_ULONG,
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
    /// `CK_SIGN_ADDITIONAL_CONTEXT`, or `CK_HASH_SIGN_ADDITIONAL_CONTEXT` when `hash` is given:
    /// the hedging asked for (`CKH_*`), the context string, the pre-hash (`CKM_SHA256`, …).
    SignContext {
        hedge: CK_ULONG,
        context: Vec<u8>,
        hash: Option<CK_MECHANISM_TYPE>,
    },
    /// `CK_HKDF_PARAMS`; `prf` is the hash mechanism (`CKM_SHA256`, …).
    Hkdf {
        extract: bool,
        expand: bool,
        prf: CK_MECHANISM_TYPE,
        salt: HkdfSalt,
        info: Vec<u8>,
    },
    /// `CK_KEY_DERIVATION_STRING_DATA`: the data a derivation mixes in. Zeroized: it may be key
    /// material (`CKM_AES_ECB_ENCRYPT_DATA` encrypts it into the new key).
    Data(Zeroizing<Vec<u8>>),
    /// A key handle as the whole parameter (`CKM_CONCATENATE_BASE_AND_KEY`).
    Key(CK_OBJECT_HANDLE),
    /// `CK_AES_CBC_ENCRYPT_DATA_PARAMS`.
    CbcData {
        iv: [u8; 16],
        data: Zeroizing<Vec<u8>>,
    },
    /// `CK_SP800_108_KDF_PARAMS` (`iv` is `None`) or `CK_SP800_108_FEEDBACK_KDF_PARAMS`.
    Kbkdf {
        prf: CK_MECHANISM_TYPE,
        data: Vec<PrfData>,
        iv: Option<Vec<u8>>,
        /// The templates of `pAdditionalDerivedKeys`, in order; their handles go back to the
        /// caller through the FFI.
        additional: Vec<Template>,
    },
}

/// `CK_HKDF_PARAMS.ulSaltType` with its salt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HkdfSalt {
    /// `CKF_HKDF_SALT_NULL`: a string of zeros as long as the hash (RFC 5869 §2.2).
    Null,
    /// `CKF_HKDF_SALT_DATA`.
    Data(Vec<u8>),
    /// `CKF_HKDF_SALT_KEY`: the value of this secret key.
    Key(CK_OBJECT_HANDLE),
}

/// One `CK_PRF_DATA_PARAM` of an SP 800-108 derivation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrfData {
    /// `CK_SP800_108_ITERATION_VARIABLE`: in counter mode the counter (its format given), in
    /// feedback mode the previous block (`None`).
    Iteration(Option<CounterFormat>),
    /// `CK_SP800_108_OPTIONAL_COUNTER` (feedback mode).
    Counter(CounterFormat),
    /// `CK_SP800_108_DKM_LENGTH`.
    DkmLength {
        /// `CK_SP800_108_DKM_LENGTH_SUM_OF_KEYS` (false: `…_SUM_OF_SEGMENTS`).
        sum_of_keys: bool,
        format: CounterFormat,
    },
    /// `CK_SP800_108_BYTE_ARRAY`.
    Bytes(Vec<u8>),
    /// `CK_SP800_108_KEY_HANDLE`: the value of this secret key.
    Key(CK_OBJECT_HANDLE),
}

/// `CK_SP800_108_COUNTER_FORMAT` (and the format part of `CK_SP800_108_DKM_LENGTH_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterFormat {
    pub little_endian: bool,
    pub width_bits: CK_ULONG,
}

impl MechanismParam {
    /// The key handles the parameter names besides the base key (a salt key, the second key of
    /// a concatenation, SP 800-108 key data), in order: the core resolves them for the
    /// mechanism, which finds their material in `DeriveInput::keys` in the same order.
    pub fn key_handles(&self) -> Vec<CK_OBJECT_HANDLE> {
        match self {
            MechanismParam::Key(handle) => vec![*handle],
            MechanismParam::Hkdf {
                salt: HkdfSalt::Key(handle),
                ..
            } => vec![*handle],
            MechanismParam::Kbkdf { data, .. } => data
                .iter()
                .filter_map(|d| match d {
                    PrfData::Key(handle) => Some(*handle),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The templates of the additional keys an SP 800-108 derivation makes.
    pub fn additional_templates(&self) -> &[Template] {
        match self {
            MechanismParam::Kbkdf { additional, .. } => additional,
            _ => &[],
        }
    }
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

    /// The first `needed` bytes of the caller's buffer, for a result written in place: a query
    /// reports `needed` and gets `Ok(None)`, a buffer too small `CKR_BUFFER_TOO_SMALL` with
    /// `needed`. Once produced, [`OutBuf::written`] says how much of it is the result.
    pub fn space(&mut self, needed: usize) -> Result<Option<&mut [u8]>> {
        match self.buffer.as_deref_mut() {
            None => {
                self.len = needed;
                Ok(None)
            }
            Some(buffer) if buffer.len() < needed => {
                self.len = needed;
                Err(Rv::BUFFER_TOO_SMALL)?
            }
            Some(buffer) => Ok(Some(&mut buffer[..needed])),
        }
    }

    /// The length of what was produced into [`OutBuf::space`] (at most what it gave).
    pub fn written(&mut self, len: usize) {
        debug_assert!(len <= self.capacity());
        self.len = len.min(self.capacity());
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
    fn attribute_arrays_round_trip() {
        let attrs = vec![
            Attribute::from_bool(0x1, true),
            Attribute::new(0x3, b"label".to_vec()),
            Attribute::new(0x4, Vec::new()),
        ];
        let bytes = encode_attribute_array(&attrs);
        assert_eq!(decode_attribute_array(&bytes).unwrap(), attrs);
        assert!(decode_attribute_array(&[]).unwrap().is_empty());
        for cut in [1, 8, 15, bytes.len() - 1] {
            assert!(decode_attribute_array(&bytes[..cut]).is_err(), "{cut}");
        }
    }

    #[test]
    fn attribute_debug_hides_value() {
        let attr = Attribute::new(0x11, b"secret".to_vec());
        assert!(!format!("{attr:?}").contains("secret"));
    }
}

//! MAC mechanisms: HMAC over SHA-1 / SHA-2 / SHA-3 (PKCS#11 3.0 Current Mechanisms §2.16–2.20
//! and the SHA-3 sections), AES-CMAC (§2.10.9) and Triple-DES CMAC (§2.37.7), each full length
//! and `_GENERAL`; and the generation mechanisms of the PKCS#11 3.0 HMAC key types
//! (`CKM_SHA256_KEY_GEN`, …). An HMAC mechanism takes a generic secret or its own hash's HMAC
//! key type (`CKK_SHA256_HMAC` for `CKM_SHA256_HMAC`); the core checks that before the material
//! is handed over. AES-CMAC takes AES keys of 16, 24 or 32 bytes; Triple-DES CMAC double- or
//! triple-length DES keys.

use cryptoki_sys::*;

use super::entry;
use super::support::{no_param, secret_key};
use super::{Forward, KeyMaterial, MechanismEntry, SignOperation, VerifyOperation};
use crate::crypto::digest::HashAlg;
use crate::crypto::mac::{mac_eq, Mac};
use crate::error::{Result, Rv};
use crate::types::{MechanismParam, ParamShape};

/// HMAC key sizes advertised, in bytes: the generic secret range. Longer keys still work
/// (RFC 2104 hashes them); an empty key is refused.
const HMAC_MIN: CK_ULONG = 1;
const HMAC_MAX: CK_ULONG = 512;
const AES_MIN: CK_ULONG = 16;
const AES_MAX: CK_ULONG = 32;

#[derive(Clone, Copy)]
enum Kind {
    Hmac(HashAlg),
    Cmac,
    /// Triple-DES CMAC (`CKM_DES3_CMAC`, Current Mechanisms §2.37.7), double- or
    /// triple-length keys.
    TdesCmac,
}

pub(super) fn entries() -> Vec<MechanismEntry> {
    let sv = CKF_SIGN | CKF_VERIFY;
    let mut out = Vec::new();
    // `$keys`: the key types the mechanisms take. `$forward`: whether a REMOTE key forwards the
    // full-length mechanism; the `_GENERAL` ones are never forwarded.
    macro_rules! mac {
        ($full:expr, $general:expr, $kind:expr, $keys:expr, $min:expr, $max:expr, $forward:expr) => {
            const KEYS: &[CK_KEY_TYPE] = $keys;
            out.push(MechanismEntry {
                sign: Some(|k, p| MacSign::boxed(k, p, $kind, false)),
                verify: Some(|k, p| MacVerify::boxed(k, p, $kind, false)),
                key_types: KEYS,
                forward: $forward,
                ..entry($full, $min, $max, sv)
            });
            out.push(MechanismEntry {
                sign: Some(|k, p| MacSign::boxed(k, p, $kind, true)),
                verify: Some(|k, p| MacVerify::boxed(k, p, $kind, true)),
                key_types: KEYS,
                param: ParamShape::Ulong,
                ..entry($general, $min, $max, sv)
            });
        };
    }
    // HMAC with `$hash`, taking generic secrets and `$key_type` keys, which `$key_gen` makes.
    macro_rules! hmac {
        ($full:expr, $general:expr, $hash:expr, $key_type:expr, $key_gen:expr, $forward:expr) => {{
            mac!(
                $full,
                $general,
                Kind::Hmac($hash),
                &[CKK_GENERIC_SECRET, $key_type],
                HMAC_MIN,
                HMAC_MAX,
                $forward
            );
            out.push(entry($key_gen, HMAC_MIN, HMAC_MAX, CKF_GENERATE));
        }};
    }
    hmac!(
        CKM_SHA_1_HMAC,
        CKM_SHA_1_HMAC_GENERAL,
        HashAlg::Sha1,
        CKK_SHA_1_HMAC,
        CKM_SHA_1_KEY_GEN,
        Forward::AsIs
    );
    hmac!(
        CKM_SHA224_HMAC,
        CKM_SHA224_HMAC_GENERAL,
        HashAlg::Sha224,
        CKK_SHA224_HMAC,
        CKM_SHA224_KEY_GEN,
        Forward::AsIs
    );
    hmac!(
        CKM_SHA256_HMAC,
        CKM_SHA256_HMAC_GENERAL,
        HashAlg::Sha256,
        CKK_SHA256_HMAC,
        CKM_SHA256_KEY_GEN,
        Forward::AsIs
    );
    hmac!(
        CKM_SHA384_HMAC,
        CKM_SHA384_HMAC_GENERAL,
        HashAlg::Sha384,
        CKK_SHA384_HMAC,
        CKM_SHA384_KEY_GEN,
        Forward::AsIs
    );
    hmac!(
        CKM_SHA512_HMAC,
        CKM_SHA512_HMAC_GENERAL,
        HashAlg::Sha512,
        CKK_SHA512_HMAC,
        CKM_SHA512_KEY_GEN,
        Forward::AsIs
    );
    // `cryptoki` 0.12 cannot name the SHA-3 HMAC mechanisms: a REMOTE key refuses them.
    hmac!(
        CKM_SHA3_224_HMAC,
        CKM_SHA3_224_HMAC_GENERAL,
        HashAlg::Sha3_224,
        CKK_SHA3_224_HMAC,
        CKM_SHA3_224_KEY_GEN,
        Forward::Never
    );
    hmac!(
        CKM_SHA3_256_HMAC,
        CKM_SHA3_256_HMAC_GENERAL,
        HashAlg::Sha3_256,
        CKK_SHA3_256_HMAC,
        CKM_SHA3_256_KEY_GEN,
        Forward::Never
    );
    hmac!(
        CKM_SHA3_384_HMAC,
        CKM_SHA3_384_HMAC_GENERAL,
        HashAlg::Sha3_384,
        CKK_SHA3_384_HMAC,
        CKM_SHA3_384_KEY_GEN,
        Forward::Never
    );
    hmac!(
        CKM_SHA3_512_HMAC,
        CKM_SHA3_512_HMAC_GENERAL,
        HashAlg::Sha3_512,
        CKK_SHA3_512_HMAC,
        CKM_SHA3_512_KEY_GEN,
        Forward::Never
    );
    {
        mac!(
            CKM_AES_CMAC,
            CKM_AES_CMAC_GENERAL,
            Kind::Cmac,
            super::AES_KEYS,
            AES_MIN,
            AES_MAX,
            Forward::AsIs
        );
    }
    {
        mac!(
            CKM_DES3_CMAC,
            CKM_DES3_CMAC_GENERAL,
            Kind::TdesCmac,
            super::des::TDES_KEYS,
            super::des::TDES_MIN,
            super::des::TDES_MAX,
            Forward::Never
        );
    }
    out
}

/// `CK_MAC_GENERAL_PARAMS`: one native-endian `CK_ULONG`, the MAC length in bytes.
fn general_len(param: &MechanismParam, full: usize) -> Result<usize> {
    let MechanismParam::Bytes(bytes) = param else {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    };
    let raw: [u8; size_of::<CK_ULONG>()] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| Rv::MECHANISM_PARAM_INVALID)?;
    let len = CK_ULONG::from_ne_bytes(raw);
    match usize::try_from(len) {
        Ok(len) if (1..=full).contains(&len) => Ok(len),
        _ => Err(Rv::MECHANISM_PARAM_INVALID)?,
    }
}

/// A keyed MAC and the tag length it outputs.
fn start(
    key: &KeyMaterial,
    param: &MechanismParam,
    kind: Kind,
    general: bool,
) -> Result<(Mac, usize)> {
    let mac = match kind {
        Kind::Hmac(alg) => Mac::hmac(alg, &secret_key(key)?)?,
        Kind::Cmac => Mac::aes_cmac(&secret_key(key)?)?,
        Kind::TdesCmac => Mac::tdes_cmac(&super::des::ede_key(key, false)?)?,
    };
    let len = if general {
        general_len(param, mac.mac_len())?
    } else {
        no_param(param)?;
        mac.mac_len()
    };
    Ok((mac, len))
}

struct MacSign {
    mac: Mac,
    len: usize,
}

impl MacSign {
    fn boxed(
        key: &KeyMaterial,
        param: &MechanismParam,
        kind: Kind,
        general: bool,
    ) -> Result<Box<dyn SignOperation>> {
        let (mac, len) = start(key, param, kind, general)?;
        Ok(Box::new(MacSign { mac, len }))
    }
}

impl SignOperation for MacSign {
    fn signature_len(&self) -> usize {
        self.len
    }
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.mac.update(data)
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        let mut tag = self.mac.finish()?;
        tag.truncate(self.len);
        Ok(tag)
    }
}

struct MacVerify {
    mac: Mac,
    len: usize,
}

impl MacVerify {
    fn boxed(
        key: &KeyMaterial,
        param: &MechanismParam,
        kind: Kind,
        general: bool,
    ) -> Result<Box<dyn VerifyOperation>> {
        let (mac, len) = start(key, param, kind, general)?;
        Ok(Box::new(MacVerify { mac, len }))
    }
}

impl VerifyOperation for MacVerify {
    fn signature_len(&self) -> Option<usize> {
        Some(self.len)
    }
    fn multipart(&self) -> bool {
        true
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.mac.update(data)
    }
    /// A tag of any other length than the mechanism's (full, or the `_GENERAL` parameter's)
    /// is `CKR_SIGNATURE_LEN_RANGE`: a truncated tag never verifies under a full-length
    /// mechanism. The comparison is constant-time.
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let tag = self.mac.finish()?;
        if Some(signature.len()) != self.signature_len() {
            Err(Rv::SIGNATURE_LEN_RANGE)?
        }
        if !mac_eq(&tag[..self.len], signature) {
            Err(Rv::SIGNATURE_INVALID)?
        }
        Ok(())
    }
}

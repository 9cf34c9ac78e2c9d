//! RSA mechanisms (PKCS#11 3.0 Current Mechanisms §2.1): PKCS#1 v1.5 and PSS signatures, raw
//! and hash-and-sign; PKCS#1 v1.5 and OAEP encryption (single-part) and key wrapping; raw
//! RSA (`CKM_RSA_X_509`, §2.1.11) sign / verify / encrypt / decrypt.

use std::sync::Arc;

use cryptoki_sys::{
    CKF_DECRYPT, CKF_ENCRYPT, CKF_GENERATE_KEY_PAIR, CKF_SIGN, CKF_SIGN_RECOVER, CKF_UNWRAP,
    CKF_VERIFY, CKF_VERIFY_RECOVER, CKF_WRAP, CKM_RSA_PKCS, CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_RSA_PKCS_OAEP, CKM_RSA_PKCS_PSS, CKM_RSA_X_509, CKM_SHA1_RSA_PKCS, CKM_SHA1_RSA_PKCS_PSS,
    CKM_SHA224_RSA_PKCS, CKM_SHA224_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS, CKM_SHA256_RSA_PKCS_PSS,
    CKM_SHA384_RSA_PKCS, CKM_SHA384_RSA_PKCS_PSS, CKM_SHA3_224_RSA_PKCS, CKM_SHA3_224_RSA_PKCS_PSS,
    CKM_SHA3_256_RSA_PKCS, CKM_SHA3_256_RSA_PKCS_PSS, CKM_SHA3_384_RSA_PKCS,
    CKM_SHA3_384_RSA_PKCS_PSS, CKM_SHA3_512_RSA_PKCS, CKM_SHA3_512_RSA_PKCS_PSS,
    CKM_SHA512_RSA_PKCS, CKM_SHA512_RSA_PKCS_PSS, CK_ULONG,
};
use zeroize::Zeroizing;

use super::entry;
use super::keywrap::{unwrap_by_decrypting, wrap_by_encrypting};
use super::support::{hash_from_ckm, hash_from_mgf, no_param, private_key, public_key, Input};
use super::{
    CipherOperation, KeyMaterial, MechanismEntry, RecoverOperation, SignOperation, VerifyOperation,
};
use crate::crypto::cipher::{
    rsa_decrypt, rsa_encrypt, rsa_raw_private, rsa_raw_public, RsaEncPadding,
};
use crate::crypto::digest::HashAlg;
use crate::crypto::keys::PublicValues;
use crate::crypto::keys::{Family, KeyFacts, PrivateKey, PublicKey, RSA_MAX_BITS, RSA_MIN_BITS};
use crate::crypto::sign::{pkcs1_raw_recover, rsa_sign, rsa_verify, PssParams, RsaPadding};
use crate::error::{Result, Rv};
use crate::types::{MechanismParam, ParamShape};

/// PKCS#1 v1.5 padding overhead (RFC 8017 §8.2.1, §7.2.1).
const PKCS1_OVERHEAD: usize = 11;

pub(super) fn entries() -> Vec<MechanismEntry> {
    let min = CK_ULONG::from(RSA_MIN_BITS);
    let max = CK_ULONG::from(RSA_MAX_BITS);
    let sv = CKF_SIGN | CKF_VERIFY;
    let mut out = vec![
        entry(CKM_RSA_PKCS_KEY_PAIR_GEN, min, max, CKF_GENERATE_KEY_PAIR),
        MechanismEntry {
            sign: Some(|k, p| RsaSign::boxed(k, p, Scheme::Pkcs1(None))),
            verify: Some(|k, p| RsaVerify::boxed(k, p, Scheme::Pkcs1(None))),
            // Signing with recovery is the same PKCS#1 v1.5 block over the caller's data.
            sign_recover: Some(|k, p| RsaSign::boxed(k, p, Scheme::Pkcs1(None))),
            verify_recover: Some(Pkcs1Recover::boxed),
            encrypt: Some(|k, p| RsaEncrypt::boxed(k, p, false)),
            decrypt: Some(|k, p| RsaDecrypt::boxed(k, p, false)),
            wrap: Some(|k, p, d| {
                wrap_by_encrypting(|k, p| RsaEncrypt::boxed(k, p, false), k, p, d)
            }),
            unwrap: Some(|k, p, d| {
                unwrap_by_decrypting(|k, p| RsaDecrypt::boxed(k, p, false), k, p, d)
            }),
            forward: super::Forward::AsIs,
            ..entry(
                CKM_RSA_PKCS,
                min,
                max,
                sv | CKF_SIGN_RECOVER
                    | CKF_VERIFY_RECOVER
                    | CKF_ENCRYPT
                    | CKF_DECRYPT
                    | CKF_WRAP
                    | CKF_UNWRAP,
            )
        },
        MechanismEntry {
            encrypt: Some(|k, p| RsaEncrypt::boxed(k, p, true)),
            decrypt: Some(|k, p| RsaDecrypt::boxed(k, p, true)),
            wrap: Some(|k, p, d| wrap_by_encrypting(|k, p| RsaEncrypt::boxed(k, p, true), k, p, d)),
            unwrap: Some(|k, p, d| {
                unwrap_by_decrypting(|k, p| RsaDecrypt::boxed(k, p, true), k, p, d)
            }),
            param: ParamShape::RsaOaep,
            forward: super::Forward::AsIs,
            ..entry(
                CKM_RSA_PKCS_OAEP,
                min,
                max,
                CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP,
            )
        },
        MechanismEntry {
            sign: Some(|k, p| RsaSign::boxed(k, p, Scheme::Pss(None))),
            verify: Some(|k, p| RsaVerify::boxed(k, p, Scheme::Pss(None))),
            param: ParamShape::RsaPss,
            forward: super::Forward::AsIs,
            ..entry(CKM_RSA_PKCS_PSS, min, max, sv)
        },
        MechanismEntry {
            sign: Some(RawRsa::sign_op),
            verify: Some(RawRsa::verify_op),
            sign_recover: Some(RawRsa::sign_op),
            verify_recover: Some(RawRsa::recover_op),
            encrypt: Some(|k, p| RawRsa::cipher(k, p, true)),
            decrypt: Some(|k, p| RawRsa::cipher(k, p, false)),
            forward: super::Forward::AsIs,
            ..entry(
                CKM_RSA_X_509,
                min,
                max,
                sv | CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER | CKF_ENCRYPT | CKF_DECRYPT,
            )
        },
    ];
    // Non-capturing closures only coerce to `fn` pointers, so each hash gets its own pair.
    // `$pss_forward`: a REMOTE key signs the PSS form's hash with `CKM_RSA_PKCS_PSS` remotely,
    // unless the parameters' hash is one `cryptoki` cannot name (SHA-3).
    macro_rules! hashed {
        ($pkcs1:expr, $pss:expr, $alg:expr) => {
            hashed!(
                $pkcs1,
                $pss,
                $alg,
                super::Forward::HashFirst {
                    hash: $alg,
                    then: CKM_RSA_PKCS_PSS,
                }
            )
        };
        ($pkcs1:expr, $pss:expr, $alg:expr, $pss_forward:expr) => {
            out.push(MechanismEntry {
                sign: Some(|k, p| RsaSign::boxed(k, p, Scheme::Pkcs1(Some($alg)))),
                verify: Some(|k, p| RsaVerify::boxed(k, p, Scheme::Pkcs1(Some($alg)))),
                forward: super::Forward::HashFirst {
                    hash: $alg,
                    then: CKM_RSA_PKCS,
                },
                ..entry($pkcs1, min, max, sv)
            });
            out.push(MechanismEntry {
                sign: Some(|k, p| RsaSign::boxed(k, p, Scheme::Pss(Some($alg)))),
                verify: Some(|k, p| RsaVerify::boxed(k, p, Scheme::Pss(Some($alg)))),
                param: ParamShape::RsaPss,
                forward: $pss_forward,
                ..entry($pss, min, max, sv)
            });
        };
    }
    hashed!(CKM_SHA1_RSA_PKCS, CKM_SHA1_RSA_PKCS_PSS, HashAlg::Sha1);
    hashed!(
        CKM_SHA224_RSA_PKCS,
        CKM_SHA224_RSA_PKCS_PSS,
        HashAlg::Sha224
    );
    hashed!(
        CKM_SHA256_RSA_PKCS,
        CKM_SHA256_RSA_PKCS_PSS,
        HashAlg::Sha256
    );
    hashed!(
        CKM_SHA384_RSA_PKCS,
        CKM_SHA384_RSA_PKCS_PSS,
        HashAlg::Sha384
    );
    hashed!(
        CKM_SHA512_RSA_PKCS,
        CKM_SHA512_RSA_PKCS_PSS,
        HashAlg::Sha512
    );
    hashed!(
        CKM_SHA3_224_RSA_PKCS,
        CKM_SHA3_224_RSA_PKCS_PSS,
        HashAlg::Sha3_224,
        super::Forward::Never
    );
    hashed!(
        CKM_SHA3_256_RSA_PKCS,
        CKM_SHA3_256_RSA_PKCS_PSS,
        HashAlg::Sha3_256,
        super::Forward::Never
    );
    hashed!(
        CKM_SHA3_384_RSA_PKCS,
        CKM_SHA3_384_RSA_PKCS_PSS,
        HashAlg::Sha3_384,
        super::Forward::Never
    );
    hashed!(
        CKM_SHA3_512_RSA_PKCS,
        CKM_SHA3_512_RSA_PKCS_PSS,
        HashAlg::Sha3_512,
        super::Forward::Never
    );
    // The `[policy]` floor (`rsa_min_bits`) applies to every RSA mechanism.
    for entry in &mut out {
        entry.family = Some(Family::Rsa);
    }
    out
}

/// The signature scheme of a mechanism; `None` hash means the caller supplies the input to be
/// padded (a DigestInfo for PKCS#1, a digest for PSS).
#[derive(Clone, Copy)]
enum Scheme {
    Pkcs1(Option<HashAlg>),
    Pss(Option<HashAlg>),
}

/// Modulus length in bytes, after checking the key is RSA of a usable size.
fn modulus_bytes(kind: KeyFacts) -> Result<usize> {
    match kind.family {
        Family::Rsa if (RSA_MIN_BITS..=RSA_MAX_BITS).contains(&kind.bits) => Ok(kind.bytes()),
        Family::Rsa => Err(Rv::KEY_SIZE_RANGE)?,
        _ => Err(Rv::KEY_TYPE_INCONSISTENT)?,
    }
}

/// What a sign or verify operation does at the end, decided once at init.
struct Plan {
    padding: RsaPadding,
    input: Input,
    /// Modulus length in bytes.
    k: usize,
    /// The exact input length the padding needs (PSS digest) or its maximum (PKCS#1 raw).
    raw_len: RawLen,
}

enum RawLen {
    Any,
    Exactly(usize),
    AtMost(usize),
}

fn plan(kind: KeyFacts, param: &MechanismParam, scheme: Scheme) -> Result<Plan> {
    let k = modulus_bytes(kind)?;
    let bits = kind.bits;
    match scheme {
        Scheme::Pkcs1(hash) => {
            no_param(param)?;
            let raw_len = match hash {
                Some(_) => RawLen::Any,
                None => RawLen::AtMost(k - PKCS1_OVERHEAD),
            };
            Ok(Plan {
                padding: RsaPadding::Pkcs1(hash),
                input: Input::new(hash)?,
                k,
                raw_len,
            })
        }
        Scheme::Pss(mech_hash) => {
            let MechanismParam::Pss {
                hash,
                mgf,
                salt_len,
            } = param
            else {
                Err(Rv::MECHANISM_PARAM_INVALID)?
            };
            let hash = hash_from_ckm(*hash)?;
            if mech_hash.is_some_and(|h| h != hash) {
                Err(Rv::MECHANISM_PARAM_INVALID)?
            }
            let mgf1 = hash_from_mgf(*mgf)?;
            // RFC 8017 §9.1.1: emLen ≥ hLen + sLen + 2, emLen = ⌈(modBits − 1) / 8⌉.
            let em_len = (bits as usize - 1).div_ceil(8);
            let salt_len = usize::try_from(*salt_len).map_err(|_| Rv::MECHANISM_PARAM_INVALID)?;
            if salt_len
                .checked_add(hash.output_len() + 2)
                .is_none_or(|need| need > em_len)
            {
                Err(Rv::MECHANISM_PARAM_INVALID)?
            }
            let raw_len = match mech_hash {
                Some(_) => RawLen::Any,
                None => RawLen::Exactly(hash.output_len()),
            };
            Ok(Plan {
                padding: RsaPadding::Pss(PssParams {
                    hash,
                    mgf1,
                    salt_len,
                }),
                input: Input::new(mech_hash)?,
                k,
                raw_len,
            })
        }
    }
}

impl Plan {
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.input.update(data)?;
        if let (Input::Raw(buf), RawLen::AtMost(n) | RawLen::Exactly(n)) =
            (&self.input, &self.raw_len)
        {
            if buf.len() > *n {
                Err(Rv::DATA_LEN_RANGE)?
            }
        }
        Ok(())
    }

    /// The input for the padding: a digest, or the caller's bytes checked against `raw_len`.
    fn finish_input(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let input = self.input.finish()?;
        let ok = match self.raw_len {
            RawLen::Any => true,
            RawLen::Exactly(n) => input.len() == n,
            RawLen::AtMost(n) => input.len() <= n,
        };
        if !ok {
            Err(Rv::DATA_LEN_RANGE)?
        }
        Ok(input)
    }
}

struct RsaSign {
    key: Arc<PrivateKey>,
    plan: Plan,
}

impl RsaSign {
    fn boxed(
        key: &KeyMaterial,
        param: &MechanismParam,
        scheme: Scheme,
    ) -> Result<Box<dyn SignOperation>> {
        let (key, kind) = private_key(key)?;
        Ok(Box::new(RsaSign {
            key,
            plan: plan(kind, param, scheme)?,
        }))
    }
}

impl SignOperation for RsaSign {
    fn signature_len(&self) -> usize {
        self.plan.k
    }
    fn multipart(&self) -> bool {
        self.plan.input.multipart()
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.plan.update(data)
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        let input = self.plan.finish_input()?;
        rsa_sign(&self.key, self.plan.padding, &input)
    }
}

struct RsaVerify {
    key: Arc<PublicKey>,
    plan: Plan,
}

impl RsaVerify {
    fn boxed(
        key: &KeyMaterial,
        param: &MechanismParam,
        scheme: Scheme,
    ) -> Result<Box<dyn VerifyOperation>> {
        let (key, kind) = public_key(key)?;
        Ok(Box::new(RsaVerify {
            key,
            plan: plan(kind, param, scheme)?,
        }))
    }
}

impl VerifyOperation for RsaVerify {
    fn signature_len(&self) -> Option<usize> {
        Some(self.plan.k)
    }
    fn multipart(&self) -> bool {
        self.plan.input.multipart()
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.plan.update(data)
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let input = self.plan.finish_input()?;
        if Some(signature.len()) != self.signature_len() {
            Err(Rv::SIGNATURE_LEN_RANGE)?
        }
        if !rsa_verify(&self.key, self.plan.padding, &input, signature)? {
            Err(Rv::SIGNATURE_INVALID)?
        }
        Ok(())
    }
}

/// `C_VerifyRecover` with `CKM_RSA_PKCS`: the data (at most k − 11 bytes) out of a PKCS#1
/// v1.5 block type 1 (PKCS#11 3.0 Current Mechanisms §2.1.6).
struct Pkcs1Recover {
    key: Arc<PublicKey>,
    k: usize,
}

impl Pkcs1Recover {
    fn boxed(key: &KeyMaterial, param: &MechanismParam) -> Result<Box<dyn RecoverOperation>> {
        no_param(param)?;
        let (key, kind) = public_key(key)?;
        let k = modulus_bytes(kind)?;
        Ok(Box::new(Pkcs1Recover { key, k }))
    }
}

impl RecoverOperation for Pkcs1Recover {
    fn recovered_len(&self) -> usize {
        self.k - PKCS1_OVERHEAD
    }
    fn recover(&mut self, signature: &[u8]) -> Result<Vec<u8>> {
        if signature.len() != self.k {
            Err(Rv::SIGNATURE_LEN_RANGE)?
        }
        Ok(pkcs1_raw_recover(&self.key, signature).ok_or(Rv::SIGNATURE_INVALID)?)
    }
}

/// PKCS#1 v1.5 (no parameter) or OAEP (`CK_RSA_PKCS_OAEP_PARAMS`) padding, and the largest
/// message it can carry in a `k`-byte modulus.
fn enc_padding(param: &MechanismParam, oaep: bool, k: usize) -> Result<(RsaEncPadding, usize)> {
    if !oaep {
        no_param(param)?;
        return Ok((RsaEncPadding::Pkcs1, k - PKCS1_OVERHEAD));
    }
    let MechanismParam::Oaep {
        hash,
        mgf,
        source_data,
    } = param
    else {
        Err(Rv::MECHANISM_PARAM_INVALID)?
    };
    let hash = hash_from_ckm(*hash)?;
    let mgf1 = hash_from_mgf(*mgf)?;
    // RFC 8017 §7.1.1: mLen ≤ k − 2hLen − 2.
    let max = k.saturating_sub(2 * hash.output_len() + 2);
    Ok((
        RsaEncPadding::Oaep {
            hash,
            mgf1,
            label: source_data.clone(),
        },
        max,
    ))
}

struct RsaEncrypt {
    key: Arc<PublicKey>,
    padding: RsaEncPadding,
    k: usize,
    max: usize,
    data: Zeroizing<Vec<u8>>,
}

impl RsaEncrypt {
    fn boxed(
        key: &KeyMaterial,
        param: &MechanismParam,
        oaep: bool,
    ) -> Result<Box<dyn CipherOperation>> {
        let (key, kind) = public_key(key)?;
        let k = modulus_bytes(kind)?;
        let (padding, max) = enc_padding(param, oaep, k)?;
        Ok(Box::new(RsaEncrypt {
            key,
            padding,
            k,
            max,
            data: Zeroizing::new(Vec::new()),
        }))
    }
}

impl CipherOperation for RsaEncrypt {
    fn output_len(&self, _input_len: usize, last: bool) -> usize {
        if last {
            self.k
        } else {
            0
        }
    }
    fn multipart(&self) -> bool {
        false
    }
    fn update(&mut self, data: &[u8], _out: &mut [u8]) -> Result<usize> {
        self.data.extend_from_slice(data);
        if self.data.len() > self.max {
            Err(Rv::DATA_LEN_RANGE)?
        }
        Ok(0)
    }
    fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        let data = std::mem::take(&mut self.data);
        super::put(out, &rsa_encrypt(&self.key, &self.padding, &data)?)
    }
}

struct RsaDecrypt {
    key: Arc<PrivateKey>,
    padding: RsaEncPadding,
    k: usize,
    data: Vec<u8>,
}

impl RsaDecrypt {
    fn boxed(
        key: &KeyMaterial,
        param: &MechanismParam,
        oaep: bool,
    ) -> Result<Box<dyn CipherOperation>> {
        let (key, kind) = private_key(key)?;
        let k = modulus_bytes(kind)?;
        let (padding, _) = enc_padding(param, oaep, k)?;
        Ok(Box::new(RsaDecrypt {
            key,
            padding,
            k,
            data: Vec::new(),
        }))
    }
}

impl CipherOperation for RsaDecrypt {
    fn output_len(&self, _input_len: usize, last: bool) -> usize {
        if last {
            self.k
        } else {
            0
        }
    }
    fn multipart(&self) -> bool {
        false
    }
    fn update(&mut self, data: &[u8], _out: &mut [u8]) -> Result<usize> {
        self.data.extend_from_slice(data);
        if self.data.len() > self.k {
            Err(Rv::ENCRYPTED_DATA_LEN_RANGE)?
        }
        Ok(0)
    }
    fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        let data = std::mem::take(&mut self.data);
        if data.len() != self.k {
            Err(Rv::ENCRYPTED_DATA_LEN_RANGE)?
        }
        let plain =
            rsa_decrypt(&self.key, &self.padding, &data)?.ok_or(Rv::ENCRYPTED_DATA_INVALID)?;
        super::put(out, &plain)
    }
}

/// Raw RSA (`CKM_RSA_X_509`), single-part in all four directions. Input shorter than the
/// modulus is left-padded with zeros (encrypt, sign, the data of verify); input numerically not
/// below the modulus is `CKR_DATA_INVALID` (`CKR_ENCRYPTED_DATA_INVALID` to decrypt,
/// `CKR_SIGNATURE_INVALID` as a signature). Decryption returns all `k` bytes, leading zeros
/// included, as the spec says. Wrapping is not offered: the unwrapped length would be ambiguous.
struct RawRsa {
    private: Option<Arc<PrivateKey>>,
    public: Option<Arc<PublicKey>>,
    /// The modulus, big-endian, `k` bytes.
    modulus: Vec<u8>,
    /// Encrypting (or verifying) with the public key, rather than using the private one.
    encrypt: bool,
    data: Zeroizing<Vec<u8>>,
}

impl RawRsa {
    fn new(key: &KeyMaterial, param: &MechanismParam, public_op: bool) -> Result<RawRsa> {
        no_param(param)?;
        let (private, public, kind, info) = if public_op {
            let (public, kind) = public_key(key)?;
            let info = public.public_values()?;
            (None, Some(public), kind, info)
        } else {
            let (private, kind) = private_key(key)?;
            let info = private.public_values()?;
            (Some(private), None, kind, info)
        };
        let k = modulus_bytes(kind)?;
        let PublicValues::Modulus { modulus: n, .. } = info else {
            Err(Rv::KEY_TYPE_INCONSISTENT)?
        };
        Ok(RawRsa {
            private,
            public,
            modulus: left_pad(&n, k).ok_or(Rv::KEY_TYPE_INCONSISTENT)?,
            encrypt: public_op,
            data: Zeroizing::new(Vec::new()),
        })
    }

    fn sign_op(key: &KeyMaterial, param: &MechanismParam) -> Result<Box<dyn SignOperation>> {
        Ok(Box::new(RawRsa::new(key, param, false)?))
    }

    fn verify_op(key: &KeyMaterial, param: &MechanismParam) -> Result<Box<dyn VerifyOperation>> {
        Ok(Box::new(RawRsa::new(key, param, true)?))
    }

    fn recover_op(key: &KeyMaterial, param: &MechanismParam) -> Result<Box<dyn RecoverOperation>> {
        Ok(Box::new(RawRsa::new(key, param, true)?))
    }

    fn cipher(
        key: &KeyMaterial,
        param: &MechanismParam,
        encrypt: bool,
    ) -> Result<Box<dyn CipherOperation>> {
        Ok(Box::new(RawRsa::new(key, param, encrypt)?))
    }

    fn k(&self) -> usize {
        self.modulus.len()
    }

    fn collect(&mut self, data: &[u8], too_long: Rv) -> Result<()> {
        self.data.extend_from_slice(data);
        if self.data.len() > self.k() {
            Err(too_long)?
        }
        Ok(())
    }

    /// The buffered input as a `k`-byte block below the modulus, or `invalid`.
    fn block(&mut self, invalid: Rv) -> Result<Zeroizing<Vec<u8>>> {
        let data = std::mem::take(&mut self.data);
        let block = Zeroizing::new(left_pad(&data, self.k()).ok_or(invalid)?);
        // Equal-length big-endian byte strings compare as numbers.
        if block.as_slice() >= self.modulus.as_slice() {
            Err(invalid)?
        }
        Ok(block)
    }

    fn private_op(&self, block: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let key = self.private.as_ref().ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
        let out = rsa_raw_private(key, block)?;
        Ok(Zeroizing::new(
            left_pad(&out, self.k()).ok_or(Rv::GENERAL_ERROR)?,
        ))
    }

    fn public_op(&self, block: &[u8]) -> Result<Vec<u8>> {
        let key = self.public.as_ref().ok_or(Rv::KEY_TYPE_INCONSISTENT)?;
        let out = rsa_raw_public(key, block)?;
        left_pad(&out, self.k()).ok_or(Rv::GENERAL_ERROR.into())
    }
}

/// `data` left-padded with zeros to `k` bytes; `None` when it is longer.
fn left_pad(data: &[u8], k: usize) -> Option<Vec<u8>> {
    let pad = k.checked_sub(data.len())?;
    let mut out = vec![0u8; pad];
    out.extend_from_slice(data);
    Some(out)
}

impl SignOperation for RawRsa {
    fn signature_len(&self) -> usize {
        self.k()
    }
    fn multipart(&self) -> bool {
        false
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.collect(data, Rv::DATA_LEN_RANGE)
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        let block = self.block(Rv::DATA_INVALID)?;
        Ok(self.private_op(&block)?.to_vec())
    }
}

impl VerifyOperation for RawRsa {
    fn signature_len(&self) -> Option<usize> {
        Some(self.k())
    }
    fn multipart(&self) -> bool {
        false
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.collect(data, Rv::DATA_LEN_RANGE)
    }
    fn finish(&mut self, signature: &[u8]) -> Result<()> {
        let expected = std::mem::take(&mut self.data);
        let expected = left_pad(&expected, self.k()).ok_or(Rv::DATA_LEN_RANGE)?;
        if Some(signature.len()) != VerifyOperation::signature_len(self) {
            Err(Rv::SIGNATURE_LEN_RANGE)?
        }
        if signature >= self.modulus.as_slice() {
            Err(Rv::SIGNATURE_INVALID)?
        }
        if self.public_op(signature)? != expected {
            Err(Rv::SIGNATURE_INVALID)?
        }
        Ok(())
    }
}

/// `C_VerifyRecover` with `CKM_RSA_X_509`: the public operation's whole `k`-byte block, leading
/// zeros included (raw RSA cannot tell them from data).
impl RecoverOperation for RawRsa {
    fn recovered_len(&self) -> usize {
        self.k()
    }
    fn recover(&mut self, signature: &[u8]) -> Result<Vec<u8>> {
        if signature.len() != self.k() {
            Err(Rv::SIGNATURE_LEN_RANGE)?
        }
        if signature >= self.modulus.as_slice() {
            Err(Rv::SIGNATURE_INVALID)?
        }
        self.public_op(signature)
    }
}

impl CipherOperation for RawRsa {
    fn output_len(&self, _input_len: usize, last: bool) -> usize {
        if last {
            self.k()
        } else {
            0
        }
    }
    fn multipart(&self) -> bool {
        false
    }
    fn update(&mut self, data: &[u8], _out: &mut [u8]) -> Result<usize> {
        let too_long = if self.encrypt {
            Rv::DATA_LEN_RANGE
        } else {
            Rv::ENCRYPTED_DATA_LEN_RANGE
        };
        self.collect(data, too_long)?;
        Ok(0)
    }
    fn finish(&mut self, out: &mut [u8]) -> Result<usize> {
        if self.encrypt {
            let block = self.block(Rv::DATA_INVALID)?;
            super::put(out, &self.public_op(&block)?)
        } else {
            if self.data.len() != self.k() {
                self.data.clear();
                Err(Rv::ENCRYPTED_DATA_LEN_RANGE)?
            }
            let block = self.block(Rv::ENCRYPTED_DATA_INVALID)?;
            super::put(out, &self.private_op(&block)?)
        }
    }
}

//! Digest mechanisms (PKCS#11 3.0 Current Mechanisms §2.16–2.20 and the SHA-3 sections): SHA-1,
//! SHA-2 and SHA-3.

use cryptoki_sys::{
    CKF_DIGEST, CKM_SHA224, CKM_SHA256, CKM_SHA384, CKM_SHA3_224, CKM_SHA3_256, CKM_SHA3_384,
    CKM_SHA3_512, CKM_SHA512, CKM_SHA_1,
};

use super::entry;
use super::{DigestOperation, MechanismEntry};
use crate::crypto::digest::{HashAlg, Hasher};
use crate::error::{Result, Rv};
use crate::types::MechanismParam;

pub(super) fn entries() -> Vec<MechanismEntry> {
    macro_rules! digest {
        ($mech:expr, $alg:expr) => {
            MechanismEntry {
                digest: Some(|p| Digest::boxed(p, $alg)),
                ..entry($mech, 0, 0, CKF_DIGEST)
            }
        };
    }
    vec![
        digest!(CKM_SHA_1, HashAlg::Sha1),
        digest!(CKM_SHA224, HashAlg::Sha224),
        digest!(CKM_SHA256, HashAlg::Sha256),
        digest!(CKM_SHA384, HashAlg::Sha384),
        digest!(CKM_SHA512, HashAlg::Sha512),
        digest!(CKM_SHA3_224, HashAlg::Sha3_224),
        digest!(CKM_SHA3_256, HashAlg::Sha3_256),
        digest!(CKM_SHA3_384, HashAlg::Sha3_384),
        digest!(CKM_SHA3_512, HashAlg::Sha3_512),
    ]
}

struct Digest(Hasher);

impl Digest {
    fn boxed(param: &MechanismParam, alg: HashAlg) -> Result<Box<dyn DigestOperation>> {
        if *param != MechanismParam::None {
            Err(Rv::MECHANISM_PARAM_INVALID)?
        }
        Ok(Box::new(Digest(Hasher::new(alg)?)))
    }
}

impl DigestOperation for Digest {
    fn digest_len(&self) -> usize {
        self.0.alg().output_len()
    }
    fn update(&mut self, data: &[u8]) -> Result<()> {
        self.0.update(data)
    }
    fn finish(&mut self) -> Result<Vec<u8>> {
        self.0.finish()
    }
}

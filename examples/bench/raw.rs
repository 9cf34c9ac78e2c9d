//! The same operations in raw OpenSSL, in this process: the `openssl` crate over the OpenSSL
//! that sqlhsm itself carries (the vendored copy, statically linked into both), with a new
//! operation context per call and the output written into the worker's buffer, as a module
//! does. ML-KEM goes through `sqlhsm::crypto::kem`, the thin layer the module itself calls.

use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{KeyType, PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::{Signer, Verifier};
use openssl::symm::{Cipher as SymmCipher, Crypter, Mode};

use crate::measure::Op;
use crate::scenarios::{Cipher, Operation, Signature};
use crate::{Result, MESSAGE};

/// The baseline's keys, made once.
pub struct Raw {
    rsa: PKey<Private>,
    ec: EcKey<Private>,
    group: EcGroup,
    ed25519: PKey<Private>,
    ml_dsa: PKey<Private>,
    ml_dsa_signature: Vec<u8>,
    kem_public: sqlhsm::crypto::keys::PublicKey,
    kem_private: sqlhsm::crypto::keys::PrivateKey,
    kem_ciphertext: Vec<u8>,
}

pub const SECRET: [u8; 32] = [0x42; 32];

impl Raw {
    pub fn new() -> Result<Raw> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        let ml_dsa = PKey::private_key_from_seed(None, KeyType::ML_DSA_65, None, &[9; 32])?;
        let ml_dsa_signature = Signer::new_without_digest(&ml_dsa)?.sign_oneshot_to_vec(MESSAGE)?;
        let kem = PKey::private_key_from_seed(None, KeyType::ML_KEM_768, None, &[9u8; 64])?;
        let kem_private =
            sqlhsm::crypto::keys::PrivateKey::from_pkcs8_der(&kem.private_key_to_pkcs8()?)?;
        let kem_public = kem_private.public_key()?;
        let kem_ciphertext = sqlhsm::crypto::kem::ml_kem_encapsulate(&kem_public)?.ciphertext;
        Ok(Raw {
            rsa: PKey::from_rsa(Rsa::generate(2048)?)?,
            ec: EcKey::generate(&group)?,
            group,
            ed25519: PKey::generate_ed25519()?,
            ml_dsa,
            ml_dsa_signature,
            kem_public,
            kem_private,
            kem_ciphertext,
        })
    }

    /// The baseline of `operation`, or `None` where raw OpenSSL has no counterpart (storing a
    /// token key, finding one by label).
    pub fn op(&self, operation: Operation) -> Option<Op<'_>> {
        Some(match operation {
            Operation::Sign(Signature::Rsa2048) => Box::new(|w| {
                let mut signer = Signer::new(MessageDigest::sha256(), &self.rsa)?;
                signer.update(MESSAGE)?;
                signer.sign(w.out(256))?;
                Ok(())
            }),
            Operation::Sign(Signature::EcdsaP256) => Box::new(|_| {
                EcdsaSig::sign(MESSAGE, &self.ec)?;
                Ok(())
            }),
            Operation::Sign(Signature::Ed25519) => Box::new(|w| {
                Signer::new_without_digest(&self.ed25519)?.sign_oneshot(w.out(64), MESSAGE)?;
                Ok(())
            }),
            Operation::Sign(Signature::MlDsa65) => Box::new(|w| {
                Signer::new_without_digest(&self.ml_dsa)?.sign_oneshot(w.out(3309), MESSAGE)?;
                Ok(())
            }),
            Operation::MlDsaVerify => Box::new(|_| {
                let valid = Verifier::new_without_digest(&self.ml_dsa)?
                    .verify_oneshot(&self.ml_dsa_signature, MESSAGE)?;
                if !valid {
                    Err("ML-DSA signature refused")?
                }
                Ok(())
            }),
            Operation::Encrypt {
                cipher,
                bytes,
                parts,
            } => {
                let data = vec![0x5a; bytes];
                Box::new(move |w| {
                    let (symm, iv): (SymmCipher, &[u8]) = match cipher {
                        Cipher::AesGcm => (SymmCipher::aes_256_gcm(), &[7; 12]),
                        Cipher::AesCbcPad => (SymmCipher::aes_256_cbc(), &[7; 16]),
                        Cipher::ChaChaPoly => (SymmCipher::chacha20_poly1305(), &[7; 12]),
                    };
                    let mut crypter = Crypter::new(symm, Mode::Encrypt, &SECRET, Some(iv))?;
                    let out = w.out(bytes + 48);
                    let mut done = 0;
                    for part in data.chunks(bytes.div_ceil(parts).max(1)) {
                        done += crypter.update(part, &mut out[done..])?;
                    }
                    done += crypter.finalize(&mut out[done..])?;
                    if cipher.is_aead() {
                        crypter.get_tag(&mut out[done..done + 16])?;
                    }
                    Ok(())
                })
            }
            Operation::EcKeygen => Box::new(|_| {
                EcKey::generate(&self.group)?;
                Ok(())
            }),
            Operation::AesKeygen | Operation::Lookup => return None,
            Operation::Encapsulate => Box::new(|_| {
                sqlhsm::crypto::kem::ml_kem_encapsulate(&self.kem_public)?;
                Ok(())
            }),
            Operation::Decapsulate => Box::new(|_| {
                sqlhsm::crypto::kem::ml_kem_decapsulate(&self.kem_private, &self.kem_ciphertext)?;
                Ok(())
            }),
        })
    }
}

//! What is measured: each scenario is one PKCS#11 operation with a fixed input, and its raw
//! OpenSSL counterpart (`raw.rs`). Signers run at each thread count (the thread curve); the rest
//! from one thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki_sys::{CKM_ECDSA, CKM_EDDSA, CKM_SHA256_RSA_PKCS};

use crate::calls::Mech;
use crate::measure::Op;
use crate::modules::{KeyAlg, KeyKind, Module, P256};
use crate::{Result, MESSAGE};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Signature {
    Rsa2048,
    EcdsaP256,
    Ed25519,
    MlDsa65,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Cipher {
    AesGcm,
    AesCbcPad,
    ChaChaPoly,
}

impl Cipher {
    pub fn is_aead(self) -> bool {
        self != Cipher::AesCbcPad
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Operation {
    Sign(Signature),
    MlDsaVerify,
    Encrypt {
        cipher: Cipher,
        bytes: usize,
        parts: usize,
    },
    AesKeygen,
    EcKeygen,
    Lookup,
    Encapsulate,
    Decapsulate,
}

pub struct Scenario {
    /// A short stable name, the JSON's `scenario`.
    pub id: &'static str,
    /// What is measured, the table's first column.
    pub title: &'static str,
    pub operation: Operation,
}

impl Scenario {
    /// Whether it runs at every thread count (the signers and ML-DSA verification).
    pub fn threaded(&self) -> bool {
        matches!(self.operation, Operation::Sign(_) | Operation::MlDsaVerify)
    }

    /// The key kinds it runs with: key generation and lookup make and find token keys only.
    pub fn kinds(&self) -> &'static [KeyKind] {
        match self.operation {
            Operation::AesKeygen | Operation::EcKeygen | Operation::Lookup => &[KeyKind::Token],
            _ => &[KeyKind::Token, KeyKind::Session],
        }
    }
}

const fn encrypt(cipher: Cipher, bytes: usize, parts: usize) -> Operation {
    Operation::Encrypt {
        cipher,
        bytes,
        parts,
    }
}

/// Every scenario, in the order they run and print.
pub const ALL: &[Scenario] = &[
    Scenario {
        id: "rsa2048-sign",
        title: "RSA-2048 sign, CKM_SHA256_RSA_PKCS, 32-byte message",
        operation: Operation::Sign(Signature::Rsa2048),
    },
    Scenario {
        id: "ecdsa-p256-sign",
        title: "ECDSA P-256 sign, CKM_ECDSA, 32-byte hash",
        operation: Operation::Sign(Signature::EcdsaP256),
    },
    Scenario {
        id: "ed25519-sign",
        title: "Ed25519 sign, CKM_EDDSA, 32-byte message",
        operation: Operation::Sign(Signature::Ed25519),
    },
    Scenario {
        id: "mldsa65-sign",
        title: "ML-DSA-65 sign, CKM_ML_DSA hedged, 32-byte message",
        operation: Operation::Sign(Signature::MlDsa65),
    },
    Scenario {
        id: "mldsa65-verify",
        title: "ML-DSA-65 verify, CKM_ML_DSA, 32-byte message",
        operation: Operation::MlDsaVerify,
    },
    Scenario {
        id: "aes256-gcm-1k",
        title: "AES-256-GCM encrypt 1 KiB, single-part",
        operation: encrypt(Cipher::AesGcm, 1 << 10, 1),
    },
    Scenario {
        id: "aes256-gcm-1k-parts",
        title: "AES-256-GCM encrypt 1 KiB, multi-part (4 updates)",
        operation: encrypt(Cipher::AesGcm, 1 << 10, 4),
    },
    Scenario {
        id: "aes256-gcm-1m",
        title: "AES-256-GCM encrypt 1 MiB, single-part",
        operation: encrypt(Cipher::AesGcm, 1 << 20, 1),
    },
    Scenario {
        id: "aes256-gcm-1m-parts",
        title: "AES-256-GCM encrypt 1 MiB, multi-part (16 updates)",
        operation: encrypt(Cipher::AesGcm, 1 << 20, 16),
    },
    Scenario {
        id: "aes256-cbc-pad-1k",
        title: "AES-256-CBC-PAD encrypt 1 KiB, single-part",
        operation: encrypt(Cipher::AesCbcPad, 1 << 10, 1),
    },
    Scenario {
        id: "chacha20-poly1305-1k",
        title: "ChaCha20-Poly1305 encrypt 1 KiB, single-part",
        operation: encrypt(Cipher::ChaChaPoly, 1 << 10, 1),
    },
    Scenario {
        id: "mlkem768-encaps",
        title: "ML-KEM-768 encapsulate (AES-256 session key made, destroyed)",
        operation: Operation::Encapsulate,
    },
    Scenario {
        id: "mlkem768-decaps",
        title: "ML-KEM-768 decapsulate (AES-256 session key made, destroyed)",
        operation: Operation::Decapsulate,
    },
    Scenario {
        id: "label-lookup",
        title: "find one token key by CKA_LABEL (Init + FindObjects + Final)",
        operation: Operation::Lookup,
    },
    Scenario {
        id: "aes-keygen",
        title: "token AES-256 key generation (C_GenerateKey)",
        operation: Operation::AesKeygen,
    },
    Scenario {
        id: "ec-keygen",
        title: "token EC P-256 key pair generation (C_GenerateKeyPair)",
        operation: Operation::EcKeygen,
    },
];

/// Keys made by a key generation scenario, destroyed after each figure (untimed) so that every
/// round, and the lookup scenario, sees a store of the same size.
#[derive(Default)]
pub struct Made(Mutex<Vec<ObjectHandle>>);

impl Made {
    fn push(&self, handles: impl IntoIterator<Item = ObjectHandle>) -> Result<()> {
        self.0.lock().map_err(|_| "poisoned")?.extend(handles);
        Ok(())
    }

    pub fn destroy(&self, module: &Module) -> Result<()> {
        let handles = std::mem::take(&mut *self.0.lock().map_err(|_| "poisoned")?);
        let login = module.login()?;
        for handle in handles {
            login.destroy_object(handle)?;
        }
        Ok(())
    }
}

/// `scenario` on `module` with keys of `kind`; an error when the module lacks the mechanism or
/// the key type (reported as "—").
pub fn module_op<'a>(
    module: &'a Module,
    scenario: &Scenario,
    kind: KeyKind,
    lookup_keys: usize,
    made: &'a Made,
) -> Result<Op<'a>> {
    let calls = &module.calls;
    Ok(match scenario.operation {
        Operation::Sign(signature) => {
            let (alg, mech, room) = match signature {
                Signature::Rsa2048 => (KeyAlg::Rsa2048, Mech::Plain(CKM_SHA256_RSA_PKCS), 256),
                Signature::EcdsaP256 => (KeyAlg::P256, Mech::Plain(CKM_ECDSA), 64),
                Signature::Ed25519 => (KeyAlg::Ed25519, Mech::Plain(CKM_EDDSA), 64),
                Signature::MlDsa65 => (KeyAlg::MlDsa65, Mech::MlDsa, 3309),
            };
            let keys = module.keys(alg, kind)?;
            let keys: Vec<_> = keys.private.clone();
            Box::new(move |w| {
                let key = keys[w.index % keys.len()];
                calls.sign(module.session(w.index), mech, key, MESSAGE, w.out(room))?;
                Ok(())
            })
        }
        Operation::MlDsaVerify => {
            let keys = module.keys(KeyAlg::MlDsa65, kind)?;
            let pairs: Vec<_> = (0..keys.private.len())
                .map(|i| (keys.public(i), keys.sample(i).to_vec()))
                .collect();
            Box::new(move |w| {
                let (key, signature) = &pairs[w.index % pairs.len()];
                calls.verify(
                    module.session(w.index),
                    Mech::MlDsa,
                    *key,
                    MESSAGE,
                    signature,
                )
            })
        }
        Operation::Encrypt {
            cipher,
            bytes,
            parts,
        } => {
            let (alg, mech) = match cipher {
                Cipher::AesGcm => (KeyAlg::Aes256, Mech::Gcm([7; 12])),
                Cipher::AesCbcPad => (KeyAlg::Aes256, Mech::CbcPad([7; 16])),
                Cipher::ChaChaPoly => (KeyAlg::ChaCha20, Mech::ChaChaPoly([7; 12])),
            };
            let keys = module.keys(alg, kind)?.private.clone();
            let data = vec![0x5a; bytes];
            Box::new(move |w| {
                let key = keys[w.index % keys.len()];
                let session = module.session(w.index);
                calls.encrypt(session, mech, key, &data, parts, w.out(bytes + 48))?;
                Ok(())
            })
        }
        Operation::Encapsulate => {
            if !calls.has_kem() {
                Err("no C_EncapsulateKey")?
            }
            let keys = module.keys(KeyAlg::MlKem768, kind)?;
            let public: Vec<_> = keys.public.clone();
            Box::new(move |w| {
                let session = module.session(w.index);
                let (_, key) =
                    calls.encapsulate(session, public[w.index % public.len()], w.out(1088))?;
                calls.destroy(session, key)
            })
        }
        Operation::Decapsulate => {
            if !calls.has_kem() {
                Err("no C_DecapsulateKey")?
            }
            let keys = module.keys(KeyAlg::MlKem768, kind)?;
            let pairs: Vec<_> = (0..keys.private.len())
                .map(|i| (keys.private(i), keys.sample(i).to_vec()))
                .collect();
            Box::new(move |w| {
                let session = module.session(w.index);
                let (key, ciphertext) = &pairs[w.index % pairs.len()];
                let secret = calls.decapsulate(session, *key, ciphertext)?;
                calls.destroy(session, secret)
            })
        }
        Operation::Lookup => {
            let labels = module.lookup_labels(lookup_keys)?.to_vec();
            let next = AtomicU64::new(0);
            Box::new(move |w| {
                // A different key each time, in a stride that defeats any "last found" cache.
                let i = next.fetch_add(7919, Ordering::Relaxed) as usize % labels.len();
                match calls.find_by_label(module.session(w.index), &labels[i])? {
                    1 => Ok(()),
                    n => Err(format!("{n} keys found by one label").into()),
                }
            })
        }
        Operation::AesKeygen => Box::new(move |_| {
            let key = module.login()?.generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Encrypt(true),
                    Attribute::ValueLen(32.into()),
                ],
            )?;
            made.push([key])
        }),
        Operation::EcKeygen => Box::new(move |_| {
            let (public, private) = module.login()?.generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::Token(true),
                    Attribute::Verify(true),
                    Attribute::EcParams(P256.to_vec()),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sign(true),
                ],
            )?;
            made.push([public, private])
        }),
    })
}

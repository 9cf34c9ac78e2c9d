//! The modules under test: each loaded and initialised once for the whole run, with a fresh
//! token on a store of its own, logged in, one open session per measuring thread, and keys made
//! on first use (a token key shared by every thread, or a session key per thread).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, MlDsaParameterSetType, MlKemParameterSetType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use cryptoki_sys::{CKK_AES, CKK_CHACHA20, CK_OBJECT_HANDLE, CK_SESSION_HANDLE};

use crate::calls::{Calls, Mech};
use crate::raw::SECRET;
use crate::{Result, MESSAGE};

pub const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const USER_PIN: &str = "bench-user-pin";
const SO_PIN: &str = "bench-so-pin";

/// Whether a key is a token object (one, shared by every thread) or a session object (one per
/// thread).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum KeyKind {
    Token,
    Session,
}

impl KeyKind {
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Token => "token",
            KeyKind::Session => "session",
        }
    }
}

/// The kinds of key the scenarios use.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum KeyAlg {
    Rsa2048,
    P256,
    Ed25519,
    MlDsa65,
    Aes256,
    ChaCha20,
    MlKem768,
}

/// The keys of one algorithm and kind: index `i` is thread `i`'s (a token key set has one,
/// which every thread uses). `public` is empty for secret keys.
pub struct KeySet {
    pub private: Vec<CK_OBJECT_HANDLE>,
    pub public: Vec<CK_OBJECT_HANDLE>,
    /// Per key: a signature over [`MESSAGE`] (ML-DSA, for the verify scenario), an ML-KEM
    /// ciphertext (for decapsulation), or nothing.
    pub samples: Vec<Vec<u8>>,
}

impl KeySet {
    pub fn private(&self, thread: usize) -> CK_OBJECT_HANDLE {
        self.private[thread % self.private.len()]
    }

    pub fn public(&self, thread: usize) -> CK_OBJECT_HANDLE {
        self.public[thread % self.public.len()]
    }

    pub fn sample(&self, thread: usize) -> &[u8] {
        &self.samples[thread % self.samples.len()]
    }
}

/// Keys made for a scenario, or why the module could not make them.
type Made = std::result::Result<Arc<KeySet>, String>;

/// One module, initialised, with a logged-in token.
pub struct Module {
    /// Its column in the table: "sqlhsm (SQLite)", "SoftHSMv2", "Kryoptic", …
    pub name: String,
    /// The library's own description and version (`C_GetInfo`).
    pub description: String,
    pub calls: Calls,
    pub pkcs11: Pkcs11,
    /// The session that logged in (it stays open: closing a module's last session logs the
    /// application out, and SoftHSMv2 then forgets the handles of private objects); set-up and
    /// key generation use it, behind a mutex only so that the operations are `Sync`.
    pub login: Mutex<Session>,
    /// One session per measuring thread, opened up front.
    pub sessions: Vec<CK_SESSION_HANDLE>,
    _sessions: Mutex<Vec<Session>>,
    keys: Mutex<HashMap<(KeyAlg, KeyKind), Made>>,
    /// The labels of the token keys the lookup scenario finds, once made.
    pub lookup: Mutex<Option<Arc<Vec<Vec<u8>>>>>,
}

/// A module to load: its column name, its file, and the environment it reads its store from
/// (set just before its `C_Initialize`).
pub struct Spec {
    pub name: String,
    pub path: PathBuf,
    pub env: Vec<(&'static str, String)>,
}

impl Module {
    /// Loads and initialises `spec`, makes a fresh token in its first uninitialised slot and
    /// opens `threads` sessions on it.
    pub fn open(spec: &Spec, threads: usize) -> Result<Module> {
        for (name, value) in &spec.env {
            std::env::set_var(name, value);
        }
        let pkcs11 = Pkcs11::new(&spec.path)?;
        pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
        let info = pkcs11.get_library_info()?;
        let description = format!(
            "{} {}, {}",
            info.library_description(),
            info.library_version(),
            info.manufacturer_id()
        );
        let calls = Calls::load(&spec.path)?;
        let slot = fresh_token(&pkcs11, "bench")?;
        let login = pkcs11.open_rw_session(slot)?;
        login.login(UserType::User, Some(&AuthPin::from(USER_PIN)))?;
        let sessions: Vec<Session> = (0..threads)
            .map(|_| pkcs11.open_rw_session(slot))
            .collect::<std::result::Result<_, _>>()?;
        Ok(Module {
            name: spec.name.clone(),
            description,
            calls,
            pkcs11,
            login: Mutex::new(login),
            sessions: sessions.iter().map(Session::handle).collect(),
            _sessions: Mutex::new(sessions),
            keys: Mutex::default(),
            lookup: Mutex::default(),
        })
    }

    pub fn session(&self, thread: usize) -> CK_SESSION_HANDLE {
        self.sessions[thread % self.sessions.len()]
    }

    pub fn login(&self) -> Result<std::sync::MutexGuard<'_, Session>> {
        Ok(self.login.lock().map_err(|_| "poisoned")?)
    }

    /// The keys of `alg` and `kind`, made on first use; an algorithm the module lacks is an
    /// error, remembered.
    pub fn keys(&self, alg: KeyAlg, kind: KeyKind) -> Result<Arc<KeySet>> {
        if let Some(known) = self.keys.lock().map_err(|_| "poisoned")?.get(&(alg, kind)) {
            return Ok(known.clone()?);
        }
        let made = self
            .make_keys(alg, kind)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        self.keys
            .lock()
            .map_err(|_| "poisoned")?
            .insert((alg, kind), made.clone());
        Ok(made?)
    }

    fn make_keys(&self, alg: KeyAlg, kind: KeyKind) -> Result<KeySet> {
        let count = match kind {
            KeyKind::Token => 1,
            KeyKind::Session => self.sessions.len(),
        };
        let token = kind == KeyKind::Token;
        let mut set = KeySet {
            private: Vec::new(),
            public: Vec::new(),
            samples: Vec::new(),
        };
        for i in 0..count {
            let label = format!("bench-{alg:?}-{}-{i}", kind.name()).into_bytes();
            match alg {
                KeyAlg::Aes256 | KeyAlg::ChaCha20 => {
                    let key_type = if alg == KeyAlg::Aes256 {
                        CKK_AES
                    } else {
                        CKK_CHACHA20
                    };
                    let handle = self.login()?.handle();
                    set.private.push(
                        self.calls
                            .create_secret(handle, key_type, token, &label, &SECRET)?,
                    );
                }
                _ => {
                    let (public, private) = self.generate_pair(alg, token, label)?;
                    set.public.push(public.handle());
                    set.private.push(private.handle());
                }
            }
            let session = self.login()?.handle();
            let sample = match alg {
                KeyAlg::MlDsa65 => {
                    let mut signature = vec![0; 3309];
                    let len = self.calls.sign(
                        session,
                        Mech::MlDsa,
                        set.private(i),
                        MESSAGE,
                        &mut signature,
                    )?;
                    signature.truncate(len);
                    signature
                }
                KeyAlg::MlKem768 => {
                    let mut ciphertext = vec![0; 1088];
                    let (len, key) =
                        self.calls
                            .encapsulate(session, set.public(i), &mut ciphertext)?;
                    self.calls.destroy(session, key)?;
                    ciphertext.truncate(len);
                    ciphertext
                }
                _ => Vec::new(),
            };
            set.samples.push(sample);
        }
        Ok(set)
    }

    fn generate_pair(
        &self,
        alg: KeyAlg,
        token: bool,
        label: Vec<u8>,
    ) -> Result<(ObjectHandle, ObjectHandle)> {
        let mut public = vec![Attribute::Token(token), Attribute::Label(label.clone())];
        let mut private = vec![
            Attribute::Token(token),
            Attribute::Private(true),
            Attribute::Label(label),
        ];
        let mechanism = match alg {
            KeyAlg::Rsa2048 => {
                public.extend([
                    Attribute::Verify(true),
                    Attribute::ModulusBits(2048.into()),
                    Attribute::PublicExponent(vec![1, 0, 1]),
                ]);
                private.push(Attribute::Sign(true));
                Mechanism::RsaPkcsKeyPairGen
            }
            KeyAlg::P256 => {
                public.extend([Attribute::Verify(true), Attribute::EcParams(P256.to_vec())]);
                private.push(Attribute::Sign(true));
                Mechanism::EccKeyPairGen
            }
            KeyAlg::Ed25519 => {
                public.extend([
                    Attribute::Verify(true),
                    Attribute::EcParams(ED25519.to_vec()),
                ]);
                private.push(Attribute::Sign(true));
                Mechanism::EccEdwardsKeyPairGen
            }
            KeyAlg::MlDsa65 => {
                public.extend([
                    Attribute::Verify(true),
                    Attribute::ParameterSet(MlDsaParameterSetType::ML_DSA_65.into()),
                ]);
                private.push(Attribute::Sign(true));
                Mechanism::MlDsaKeyPairGen
            }
            KeyAlg::MlKem768 => {
                public.extend([
                    Attribute::Encapsulate(true),
                    Attribute::ParameterSet(MlKemParameterSetType::ML_KEM_768.into()),
                ]);
                private.push(Attribute::Decapsulate(true));
                Mechanism::MlKemKeyPairGen
            }
            KeyAlg::Aes256 | KeyAlg::ChaCha20 => Err("not a key pair")?,
        };
        Ok(self
            .login()?
            .generate_key_pair(&mechanism, &public, &private)?)
    }

    /// The labels of `count` token AES-256 keys, made on first use, for the lookup scenario.
    pub fn lookup_labels(&self, count: usize) -> Result<Arc<Vec<Vec<u8>>>> {
        if let Some(labels) = self.lookup.lock().map_err(|_| "poisoned")?.as_ref() {
            return Ok(labels.clone());
        }
        let session = self.login()?.handle();
        let labels: Vec<Vec<u8>> = (0..count)
            .map(|i| format!("lookup-{i:07}").into_bytes())
            .collect();
        for label in &labels {
            self.calls
                .create_secret(session, CKK_AES, true, label, &SECRET)?;
        }
        let labels = Arc::new(labels);
        *self.lookup.lock().map_err(|_| "poisoned")? = Some(labels.clone());
        Ok(labels)
    }

    /// Closes the sessions and finalizes the module (the library stays loaded).
    pub fn close(self) -> Result<()> {
        drop(self._sessions);
        drop(self.login);
        self.pkcs11.finalize()?;
        Ok(())
    }
}

pub const P256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub const ED25519: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];

/// Initialises the first uninitialised token as `label` with the SO PIN and sets [`USER_PIN`].
pub fn fresh_token(p: &Pkcs11, label: &str) -> Result<Slot> {
    let slot = p
        .get_slots_with_token()?
        .into_iter()
        .find(|s| {
            p.get_token_info(*s)
                .map(|t| !t.token_initialized())
                .unwrap_or(false)
        })
        .ok_or("no slot with an uninitialised token")?;
    let so_pin = AuthPin::from(SO_PIN);
    p.init_token(slot, &so_pin, label)?;
    let s = p.open_rw_session(slot)?;
    s.login(UserType::So, Some(&so_pin))?;
    s.init_pin(&AuthPin::from(USER_PIN))?;
    s.logout()?;
    Ok(slot)
}

/// The `libsqlhsm.so` built beside this example, or the one `SQLHSM_BENCH_LIB` names (to
/// measure another build of sqlhsm — an older commit's, say — with this same benchmark).
pub fn sqlhsm_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("SQLHSM_BENCH_LIB") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe()?;
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("unexpected executable location")?;
    [
        profile.join("deps/libsqlhsm.so"),
        profile.join("libsqlhsm.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .ok_or_else(|| "libsqlhsm.so not built".into())
}

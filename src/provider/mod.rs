//! Remote providers: tokens whose keys (key mode REMOTE) or whose token key (key mode
//! PROVIDER_ROOT_KEY) are held by another PKCS#11 module, reached through the `cryptoki` crate.
//! sqlhsm stays the catalogue (status, expiration, rotation, history, search) and the policy
//! point; the remote module holds the secrets.
//!
//! Sits beside `mechanism`, `crypto` and `storage`: the core calls it, it calls nothing of the
//! core.

pub mod client;
pub mod config;
pub mod forward;
pub mod keys;
pub mod mechanisms;
pub mod root;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use uuid::Uuid;

pub use client::{LoadedModules, Remote, RemoteMechanisms};
pub use config::{OnDestroy, PinSource, Pkcs11Provider, ProviderSpec, RemoteUse, RootKey};
pub use keys::{RemoteKey, RemoteRef};

use crate::error::Result;

/// The remote connections of this process, one per sqlhsm token that has a `pkcs11` provider.
/// Dropped (and the remote modules finalized) with the module instance at `C_Finalize`.
#[derive(Default)]
pub struct Providers {
    modules: Arc<LoadedModules>,
    remotes: RwLock<HashMap<Uuid, Arc<Remote>>>,
}

impl Providers {
    /// The remote of `token` (labelled `label`, which its log lines name) as `spec` describes
    /// it; a changed spec replaces the connection.
    pub fn remote(&self, token: Uuid, label: &str, spec: &Pkcs11Provider) -> Result<Arc<Remote>> {
        if let Some(remote) = self.remotes.read()?.get(&token) {
            if remote.spec == *spec {
                return Ok(Arc::clone(remote));
            }
        }
        let mut remotes = self.remotes.write()?;
        match remotes.get(&token) {
            Some(remote) if remote.spec == *spec => Ok(Arc::clone(remote)),
            _ => {
                let remote = Arc::new(Remote::new(label, spec.clone(), Arc::clone(&self.modules)));
                remotes.insert(token, Arc::clone(&remote));
                Ok(remote)
            }
        }
    }

    /// The application forbade threads: remote modules are initialised with
    /// `CKF_LIBRARY_CANT_CREATE_OS_THREADS` too.
    pub fn forbid_os_threads(&self) {
        self.modules.forbid_os_threads();
    }

    /// The cached remote of `token`, if one was made (cheap: no database read).
    pub fn cached(&self, token: Uuid) -> Option<Arc<Remote>> {
        self.remotes.read().ok()?.get(&token).cloned()
    }
}

impl Drop for Providers {
    fn drop(&mut self) {
        if let Ok(mut remotes) = self.remotes.write() {
            remotes.clear();
        }
        self.modules.shutdown();
    }
}

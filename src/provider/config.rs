//! What a token's `provider_config.config` says about where its keys live: `{"kind": "local"}`
//! (the default: material sealed in the database) or `{"kind": "pkcs11", …}` naming another
//! PKCS#11 module, the token in it, where its PIN comes from, and what the token uses it for.
//! The remote PIN itself is never stored: only the name of the variable or file holding it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The provider of a token, tagged by `kind`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderSpec {
    #[default]
    Local,
    Pkcs11(Box<Pkcs11Provider>),
}

impl ProviderSpec {
    pub fn pkcs11(&self) -> Option<&Pkcs11Provider> {
        match self {
            ProviderSpec::Local => None,
            ProviderSpec::Pkcs11(p) => Some(p),
        }
    }

    /// The token keeps its private and secret keys in the remote module (key mode REMOTE).
    pub fn holds_keys(&self) -> bool {
        self.pkcs11().is_some_and(|p| p.use_for == RemoteUse::Keys)
    }

    /// The token key is protected by a key in the remote module (key mode PROVIDER_ROOT_KEY).
    pub fn root_key(&self) -> Option<&RootKey> {
        self.pkcs11().and_then(|p| p.root_key.as_ref())
    }
}

/// Another PKCS#11 module and the token in it that this token uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pkcs11Provider {
    /// Path of the remote PKCS#11 module (`.so`).
    pub module: PathBuf,
    /// The remote token, by label and/or serial number (at least one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_serial: Option<String>,
    /// Where the remote user PIN is read from, each time a login to the remote is needed.
    pub pin: PinSource,
    /// What this token uses the remote for.
    #[serde(rename = "use")]
    pub use_for: RemoteUse,
    /// What destroying (or deleting by rotation clean-up) a REMOTE key does to the remote object.
    #[serde(default)]
    pub on_destroy: OnDestroy,
    /// For PROVIDER_ROOT_KEY tokens: the remote key and the secret sealed under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_key: Option<RootKey>,
}

/// The two ways a token uses its remote module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RemoteUse {
    /// Key mode REMOTE: private and secret keys are made and used in the remote module.
    Keys,
    /// Key mode PROVIDER_ROOT_KEY: keys are sealed locally, and the token key can only be opened
    /// with a secret that the remote module's root key decrypts.
    RootKey,
}

/// What happens to the remote object when its REMOTE key is destroyed here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnDestroy {
    /// `C_DestroyObject` in the remote module too.
    #[default]
    Destroy,
    /// Keep the remote object, relabelled `destroyed:<label>` so an operator can find it.
    Keep,
}

/// Where a remote PIN comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PinSource {
    /// An environment variable of the process that loads sqlhsm.
    Env(String),
    /// A file (its first line; readable only by the service account, one hopes).
    File(PathBuf),
}

impl PinSource {
    /// Reads the PIN now (it may have changed since the last attempt).
    pub fn read(&self) -> Result<Zeroizing<String>> {
        let pin = match self {
            PinSource::Env(name) => Zeroizing::new(std::env::var(name).map_err(|_| {
                Error::Provider(format!("the remote PIN variable {name} is not set"))
            })?),
            PinSource::File(path) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    Error::Provider(format!(
                        "cannot read the remote PIN file {}: {e}",
                        path.display()
                    ))
                })?);
                Zeroizing::new(text.lines().next().unwrap_or_default().to_string())
            }
        };
        if pin.is_empty() {
            Err(Error::Provider("the remote PIN is empty".into()))?
        }
        Ok(pin)
    }

    pub fn describe(&self) -> String {
        match self {
            PinSource::Env(name) => format!("environment variable {name}"),
            PinSource::File(path) => format!("file {}", path.display()),
        }
    }
}

/// A PROVIDER_ROOT_KEY token's root: an AES-256 key in the remote module (found by `CKA_ID`)
/// and a random 32-byte secret sealed under it with AES-GCM. The secret is mixed into the key
/// that every PIN derives, so the PINs alone open nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootKey {
    /// Hex of the remote key's `CKA_ID`.
    pub id: String,
    pub label: String,
    /// Base64 of the GCM IV used by the remote encryption.
    pub iv: String,
    /// Base64 of the remote AES-GCM ciphertext (with tag) of the secret.
    pub sealed_secret: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn local_is_the_default_and_round_trips() {
        let spec: ProviderSpec =
            serde_json::from_value(serde_json::json!({"kind": "local"})).unwrap();
        assert_eq!(spec, ProviderSpec::Local);
        let remote = ProviderSpec::Pkcs11(Box::new(Pkcs11Provider {
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            token_label: Some("hsm".into()),
            token_serial: None,
            pin: PinSource::Env("HSM_PIN".into()),
            use_for: RemoteUse::Keys,
            on_destroy: OnDestroy::Keep,
            root_key: None,
        }));
        let json = serde_json::to_value(&remote).unwrap();
        assert_eq!(json["kind"], "pkcs11");
        assert_eq!(json["pin"]["env"], "HSM_PIN");
        assert_eq!(json["use"], "keys");
        assert_eq!(
            serde_json::from_value::<ProviderSpec>(json).unwrap(),
            remote
        );
        assert!(remote.holds_keys());
        assert!(remote.root_key().is_none());
    }

    #[test]
    fn pin_file_first_line_is_the_pin() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "1234\nignored\n").unwrap();
        assert_eq!(
            PinSource::File(path.clone()).read().unwrap().as_str(),
            "1234"
        );
        std::fs::write(&path, "").unwrap();
        assert!(PinSource::File(path).read().is_err());
        assert!(PinSource::Env("SQLHSM_NO_SUCH_VARIABLE_X".into())
            .read()
            .is_err());
    }
}

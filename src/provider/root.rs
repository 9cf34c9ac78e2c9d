//! Key mode PROVIDER_ROOT_KEY: the token key stays sealed under the PINs as usual, but the
//! key each PIN derives is mixed with a 32-byte secret that exists in clear only after the
//! remote module's AES-256 root key decrypts it. The database plus every PIN open nothing
//! without the HSM; once the token key is open, all crypto runs locally at full speed.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use cryptoki::object::ObjectClass;
use cryptoki_sys::CKK_AES;
use zeroize::Zeroizing;

use super::client::Remote;
use super::config::RootKey;
use super::keys::{self, RemoteRef};
use super::mechanisms;
use crate::crypto::random;
use crate::error::{Error, Result, StorageError};
use crate::types::{Mechanism, MechanismParam};

/// The secret the root key protects.
pub type RootSecret = Zeroizing<[u8; 32]>;

/// Binds the sealed secret to its purpose.
const AAD: &[u8] = b"sqlhsm/provider-root-key/v1";

fn gcm(iv: Vec<u8>) -> Mechanism {
    Mechanism {
        kind: cryptoki_sys::CKM_AES_GCM,
        param: MechanismParam::Gcm {
            iv,
            aad: AAD.to_vec(),
            tag_bits: 128,
        },
    }
}

/// Makes a root key in the remote module and a fresh secret sealed under it.
pub fn create(remote: &Remote, token_label: &str) -> Result<(RootKey, RootSecret)> {
    let label = format!("sqlhsm-root:{token_label}");
    let reference = keys::generate_secret(remote, CKK_AES, 32, &label)?;
    let id = reference.id_bytes()?;
    let mut secret: RootSecret = Zeroizing::new([0u8; 32]);
    random::fill(secret.as_mut())?;
    let mut iv = vec![0u8; 12];
    random::fill(&mut iv)?;
    let mechanism = gcm(iv.clone());
    let sealed = remote.run("sealing the root secret", |session, lookup| {
        let handle = lookup.object(ObjectClass::SECRET_KEY, &id)?;
        mechanisms::with_remote(&mechanism, |m| session.encrypt(m, handle, secret.as_ref()))
    })?;
    tracing::info!(remote_id = %reference.id, "provider root key created");
    Ok((
        RootKey {
            id: reference.id,
            label,
            iv: B64.encode(iv),
            sealed_secret: B64.encode(sealed),
        },
        secret,
    ))
}

/// Asks the remote module to open the root secret; fails (`CKR_DEVICE_ERROR`) without it.
pub fn open(remote: &Remote, root: &RootKey) -> Result<RootSecret> {
    let corrupt = |what: &str| Error::from(StorageError::Corrupt(format!("root key: bad {what}")));
    let reference = RemoteRef {
        id: root.id.clone(),
        label: root.label.clone(),
    };
    let id = reference.id_bytes()?;
    let iv = B64.decode(&root.iv).map_err(|_| corrupt("iv"))?;
    let sealed = B64
        .decode(&root.sealed_secret)
        .map_err(|_| corrupt("sealed secret"))?;
    let mechanism = gcm(iv);
    let plain = Zeroizing::new(
        remote
            .run("opening the root secret", |session, lookup| {
                let handle = lookup.object(ObjectClass::SECRET_KEY, &id)?;
                mechanisms::with_remote(&mechanism, |m| session.decrypt(m, handle, &sealed))
            })
            .map_err(|e| match e {
                Error::Provider(_) => e,
                other => Error::Provider(format!(
                    "the remote root key did not open the root secret: {other}"
                )),
            })?,
    );
    let secret: [u8; 32] = plain
        .as_slice()
        .try_into()
        .map_err(|_| Error::Provider("the root secret has the wrong length".into()))?;
    Ok(Zeroizing::new(secret))
}

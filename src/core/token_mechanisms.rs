//! What `C_GetMechanismList` and `C_GetMechanismInfo` answer for a token (PKCS#11 3.0 §5.5).
//!
//! A token whose keys live in sqlhsm offers the whole registry (sizes under `[policy]`). A
//! REMOTE token (its private and secret token keys held by another PKCS#11 module) offers what
//! both sides can do with its keys:
//! - a mechanism the remote runs as it is ([`Forward::AsIs`]) when the remote lists it;
//! - a hash-and-sign mechanism ([`Forward::HashFirst`]) when the remote lists the raw
//!   signature it ends in;
//! - a generation mechanism when the remote lists it (token keys are generated there);
//! - a digest, which needs no key, always;
//! - nothing else: a mechanism computed only here cannot use a key the remote holds.
//!
//! The operation flags are those both sides set, and the key sizes the overlap of both ranges
//! (ours alone when the remote's range is empty or does not overlap, as the units of some
//! mechanisms' sizes differ between modules).

use cryptoki_sys::*;
use uuid::Uuid;

use super::module::Module;
use crate::error::Result;
use crate::mechanism::{self, Forward, MechanismEntry};
use crate::provider::RemoteMechanisms;

/// The `CKF_*` flags that name operations (the others describe a mechanism's variants).
const OPERATIONS: CK_FLAGS = CKF_ENCRYPT
    | CKF_DECRYPT
    | CKF_DIGEST
    | CKF_SIGN
    | CKF_SIGN_RECOVER
    | CKF_VERIFY
    | CKF_VERIFY_RECOVER
    | CKF_GENERATE
    | CKF_GENERATE_KEY_PAIR
    | CKF_WRAP
    | CKF_UNWRAP
    | CKF_DERIVE;

/// `ours` restricted to what `theirs` allows; `None` when no operation is left.
fn overlap(ours: CK_MECHANISM_INFO, theirs: CK_MECHANISM_INFO) -> Option<CK_MECHANISM_INFO> {
    let mut flags = (ours.flags & !OPERATIONS) | (ours.flags & theirs.flags & OPERATIONS);
    // Message-based signing runs on the plain sign/verify operation: it goes with it.
    for (message, plain) in [
        (CKF_MESSAGE_SIGN, CKF_SIGN),
        (CKF_MESSAGE_VERIFY, CKF_VERIFY),
    ] {
        if flags & plain == 0 {
            flags &= !message;
        }
    }
    if flags & OPERATIONS == 0 {
        return None;
    }
    let (min, max) = (
        ours.ulMinKeySize.max(theirs.ulMinKeySize),
        ours.ulMaxKeySize.min(theirs.ulMaxKeySize),
    );
    let sized = theirs.ulMaxKeySize != 0 && min <= max;
    Some(CK_MECHANISM_INFO {
        ulMinKeySize: if sized { min } else { ours.ulMinKeySize },
        ulMaxKeySize: if sized { max } else { ours.ulMaxKeySize },
        flags,
    })
}

/// What a REMOTE token offers of `entry`, whose info under the policy is `ours`.
fn remote_form(
    entry: &MechanismEntry,
    ours: CK_MECHANISM_INFO,
    remote: &RemoteMechanisms,
) -> Option<CK_MECHANISM_INFO> {
    let theirs = |kind: CK_MECHANISM_TYPE| remote.iter().find(|(k, _)| *k == kind).map(|(_, i)| *i);
    let generation = ours.flags & (CKF_GENERATE | CKF_GENERATE_KEY_PAIR) != 0;
    match entry.forward {
        Forward::AsIs => overlap(ours, theirs(entry.kind)?),
        Forward::HashFirst { then, .. } => overlap(ours, theirs(then)?),
        Forward::Never if generation => overlap(ours, theirs(entry.kind)?),
        Forward::Never if ours.flags & OPERATIONS == CKF_DIGEST => Some(ours),
        Forward::Never => None,
    }
}

impl Module {
    /// The mechanisms `token` offers (`None`: the uninitialized token, which offers the
    /// registry), each with its info, in the registry's order.
    pub fn token_mechanisms(
        &self,
        token: Option<Uuid>,
    ) -> Result<Vec<(CK_MECHANISM_TYPE, CK_MECHANISM_INFO)>> {
        let remote = match token {
            Some(token) => self.key_holder(token)?,
            None => None,
        };
        let remote = match remote {
            Some(remote) => Some(remote.mechanisms()?),
            None => None,
        };
        Ok(mechanism::all()
            .iter()
            .filter(|entry| self.offers(entry))
            .filter_map(|entry| {
                let ours = self.mechanism_info(entry);
                let info = match &remote {
                    Some(remote) => remote_form(entry, ours, remote)?,
                    None => ours,
                };
                Some((entry.kind, info))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(min: CK_ULONG, max: CK_ULONG, flags: CK_FLAGS) -> CK_MECHANISM_INFO {
        CK_MECHANISM_INFO {
            ulMinKeySize: min,
            ulMaxKeySize: max,
            flags,
        }
    }

    fn same(a: Option<CK_MECHANISM_INFO>, b: Option<CK_MECHANISM_INFO>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                (a.ulMinKeySize, a.ulMaxKeySize, a.flags)
                    == (b.ulMinKeySize, b.ulMaxKeySize, b.flags)
            }
            _ => false,
        }
    }

    #[test]
    fn both_sides_must_allow_an_operation() {
        let ours = info(1024, 16384, CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT);
        let theirs = info(512, 8192, CKF_SIGN | CKF_DECRYPT);
        assert!(same(
            overlap(ours, theirs),
            Some(info(1024, 8192, CKF_SIGN))
        ));
        assert!(same(overlap(ours, info(0, 0, CKF_DERIVE)), None));
        // No overlap of the sizes (other units): ours stand.
        assert!(same(
            overlap(ours, info(16, 32, CKF_SIGN)),
            Some(info(1024, 16384, CKF_SIGN))
        ));
    }

    #[test]
    fn a_remote_token_offers_what_both_can_do() {
        let remote: RemoteMechanisms = vec![
            (CKM_RSA_PKCS, info(512, 16384, CKF_SIGN | CKF_VERIFY)),
            (CKM_EC_KEY_PAIR_GEN, info(256, 521, CKF_GENERATE_KEY_PAIR)),
        ];
        let offered = |kind| {
            let entry = mechanism::lookup(kind).unwrap();
            remote_form(entry, entry.info, &remote)
        };
        assert!(
            offered(CKM_RSA_PKCS).is_some_and(|i| i.flags & OPERATIONS == CKF_SIGN | CKF_VERIFY)
        );
        assert!(offered(CKM_SHA256_RSA_PKCS).is_some());
        assert!(offered(CKM_EC_KEY_PAIR_GEN).is_some());
        assert!(offered(CKM_SHA256).is_some(), "a digest needs no key");
        assert!(offered(CKM_ECDSA).is_none(), "not listed by the remote");
        assert!(
            offered(CKM_ECDSA_SHA256).is_none(),
            "its raw signature is not listed"
        );
        assert!(offered(CKM_RSA_PKCS_KEY_PAIR_GEN).is_none());
        assert!(offered(CKM_AES_CTR).is_none(), "computed only here");
    }
}

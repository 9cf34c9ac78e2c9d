//! The key-extraction rules: what `C_WrapKey`, `C_UnwrapKey` and `C_DeriveKey` refuse so that
//! a sensitive key's value never reaches the caller, whatever sequence of calls it tries (the
//! attacks of Clulow, "On the security of PKCS#11", 2003, and Bortolozzo, Centenaro, Focardi
//! and Steel, "Attacking and fixing PKCS#11 security tokens", 2010). The README's "Security
//! notes" say which attack each rule answers; the attribute side (the usage attributes of a
//! secret key fixed at creation, `CKA_TRUSTED` changed only by the SO) is in
//! [`super::policy`].
//!
//! - A sensitive key is wrapped only under a key that keeps what it wraps ([`may_wrap_sensitive`]):
//!   otherwise `CKR_KEY_NOT_WRAPPABLE` (the spec's code for a key the token wraps only with
//!   certain wrapping keys).
//! - A key unwrapped under such a key is sensitive ([`check_unwrap_template`]): otherwise
//!   `CKR_TEMPLATE_INCONSISTENT`.
//! - A key derived from a sensitive (unextractable) secret key by a mechanism whose output
//!   carries the base's bits is sensitive (unextractable) too ([`inherit_secrecy`]), as the
//!   spec says of the concatenation and XOR mechanisms.

use cryptoki_sys::*;

use super::attributes::AttrMap;
use super::template::template_bool;
use crate::error::{Result, Rv};
use crate::types::Attribute;

/// Whether the key's value has never been anywhere but in this token: generated here, always
/// sensitive and never extractable (attributes the token sets and no caller can change).
fn kept(key: &AttrMap) -> bool {
    key.flag(CKA_LOCAL) && key.flag(CKA_ALWAYS_SENSITIVE) && key.flag(CKA_NEVER_EXTRACTABLE)
}

/// Whether `wrapper` may wrap a sensitive key. It must be trusted (`CKA_TRUSTED`, which only
/// the SO sets) or, for a secret key, one whose value never left the token ([`kept`]): a key
/// the caller imported, unwrapped or derived may be one whose value the caller knows. And a
/// secret wrapping key may not also decrypt (it would decrypt its own wrappings) or derive (a
/// derivation can copy its value into a key with other usages); both are fixed at creation.
/// A public wrapping key qualifies only as trusted: the SO vouches for where its private half
/// lives.
pub fn may_wrap_sensitive(wrapper: &AttrMap) -> bool {
    let secret = wrapper.ulong(CKA_CLASS) == Some(CKO_SECRET_KEY);
    let vouched = wrapper.flag(CKA_TRUSTED) || (secret && kept(wrapper));
    let single_role = !secret || !(wrapper.flag(CKA_DECRYPT) || wrapper.flag(CKA_DERIVE));
    vouched && single_role
}

/// The checks of `C_WrapKey` on the key to wrap (`target`) and the wrapping key: a secret or
/// private key (`CKR_KEY_NOT_WRAPPABLE`), extractable (`CKR_KEY_UNEXTRACTABLE`), under a
/// trusted key if it says `CKA_WRAP_WITH_TRUSTED`, and under a key that
/// [may wrap it](may_wrap_sensitive) if it is sensitive (`CKR_KEY_NOT_WRAPPABLE`).
pub fn check_wrap(wrapper: &AttrMap, target: &AttrMap) -> Result<()> {
    if !matches!(
        target.ulong(CKA_CLASS),
        Some(CKO_SECRET_KEY | CKO_PRIVATE_KEY)
    ) {
        Err(Rv::KEY_NOT_WRAPPABLE)?
    }
    if !target.flag(CKA_EXTRACTABLE) {
        Err(Rv::KEY_UNEXTRACTABLE)?
    }
    if target.flag(CKA_WRAP_WITH_TRUSTED) && !wrapper.flag(CKA_TRUSTED) {
        Err(Rv::KEY_NOT_WRAPPABLE)?
    }
    if target.flag(CKA_SENSITIVE) && !may_wrap_sensitive(wrapper) {
        tracing::info!(
            "a sensitive key is wrapped only under a trusted key, or a secret key generated \
             here, sensitive and unextractable, without CKA_DECRYPT or CKA_DERIVE"
        );
        Err(Rv::KEY_NOT_WRAPPABLE)?
    }
    Ok(())
}

/// The check of `C_UnwrapKey` on its template: a key unwrapped under a key that may have
/// wrapped sensitive keys (a trusted or [kept](kept) secret key, or any private key — its
/// public half may be trusted) is sensitive, else the same blob unwrapped as a readable key
/// would hand out what was wrapped (`CKR_TEMPLATE_INCONSISTENT`). A key that could not have
/// wrapped a sensitive key (one the caller imported, say) unwraps readable keys as asked.
pub fn check_unwrap_template(unwrapper: &AttrMap, template: &[Attribute]) -> Result<()> {
    let secret = unwrapper.ulong(CKA_CLASS) == Some(CKO_SECRET_KEY);
    let may_hold_sensitive = !secret || unwrapper.flag(CKA_TRUSTED) || kept(unwrapper);
    if may_hold_sensitive && template_bool(template, CKA_SENSITIVE)? == Some(false) {
        tracing::info!("a key unwrapped under a key that wraps sensitive keys is sensitive");
        Err(Rv::TEMPLATE_INCONSISTENT)?
    }
    Ok(())
}

/// Derivations whose output reveals nothing of the base key (one-way functions of it): a key
/// they derive from a sensitive base may be readable, as the caller's template says.
const ONE_WAY: &[CK_MECHANISM_TYPE] = &[
    CKM_HKDF_DERIVE,
    CKM_SP800_108_COUNTER_KDF,
    CKM_SP800_108_FEEDBACK_KDF,
    CKM_SP800_108_DOUBLE_PIPELINE_KDF,
];

/// Sets a derived key's `CKA_SENSITIVE` and `CKA_EXTRACTABLE` from its base (as the PKCS#11
/// 3.0 mechanisms specification says of its "miscellaneous simple key derivation mechanisms",
/// concatenation and XOR): a sensitive base gives a sensitive key, an
/// unextractable base an unextractable one, whatever the template says — else XOR with zeros
/// or a concatenation would read the base out. Key agreement (a private base: ECDH) and the
/// [one-way](ONE_WAY) KDFs are exempt; any other mechanism, including those added later,
/// inherits.
pub fn inherit_secrecy(mechanism: CK_MECHANISM_TYPE, base: &AttrMap, derived: &mut AttrMap) {
    if base.ulong(CKA_CLASS) != Some(CKO_SECRET_KEY) || ONE_WAY.contains(&mechanism) {
        return;
    }
    if base.flag(CKA_SENSITIVE) {
        derived.set_bool(CKA_SENSITIVE, true);
    }
    if !base.flag(CKA_EXTRACTABLE) {
        derived.set_bool(CKA_EXTRACTABLE, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(flags: &[(CK_ATTRIBUTE_TYPE, bool)]) -> AttrMap {
        let mut a = AttrMap::new();
        a.set_ulong(CKA_CLASS, CKO_SECRET_KEY);
        for &(kind, value) in flags {
            a.set_bool(kind, value);
        }
        a
    }

    const KEPT: [(CK_ATTRIBUTE_TYPE, bool); 3] = [
        (CKA_LOCAL, true),
        (CKA_ALWAYS_SENSITIVE, true),
        (CKA_NEVER_EXTRACTABLE, true),
    ];

    #[test]
    fn only_kept_single_role_or_trusted_keys_wrap_sensitive_keys() {
        assert!(may_wrap_sensitive(&secret(&KEPT)));
        // Any one of the origin flags missing: the value may be known.
        for i in 0..KEPT.len() {
            let mut flags = KEPT;
            flags[i].1 = false;
            assert!(!may_wrap_sensitive(&secret(&flags)), "{:?}", flags[i]);
        }
        // A second role that reads the value back out.
        for role in [CKA_DECRYPT, CKA_DERIVE] {
            let mut k = secret(&KEPT);
            k.set_bool(role, true);
            assert!(!may_wrap_sensitive(&k), "{role}");
            k.set_bool(CKA_TRUSTED, true);
            assert!(!may_wrap_sensitive(&k), "trusted, but {role}");
        }
        assert!(may_wrap_sensitive(&secret(&[(CKA_TRUSTED, true)])));
        let mut public = AttrMap::new();
        public.set_ulong(CKA_CLASS, CKO_PUBLIC_KEY);
        public.set_bool(CKA_LOCAL, true);
        assert!(!may_wrap_sensitive(&public));
        public.set_bool(CKA_TRUSTED, true);
        assert!(may_wrap_sensitive(&public));
    }

    #[test]
    fn wrap_checks_in_order() {
        let kek = secret(&KEPT);
        let mut target = secret(&[(CKA_EXTRACTABLE, true), (CKA_SENSITIVE, false)]);
        assert!(check_wrap(&secret(&[]), &target).is_ok(), "a readable key");
        target.set_bool(CKA_SENSITIVE, true);
        assert_eq!(
            check_wrap(&secret(&[]), &target).unwrap_err().rv(),
            Rv::KEY_NOT_WRAPPABLE
        );
        assert!(check_wrap(&kek, &target).is_ok());
        target.set_bool(CKA_WRAP_WITH_TRUSTED, true);
        assert_eq!(
            check_wrap(&kek, &target).unwrap_err().rv(),
            Rv::KEY_NOT_WRAPPABLE
        );
        target.set_bool(CKA_EXTRACTABLE, false);
        assert_eq!(
            check_wrap(&kek, &target).unwrap_err().rv(),
            Rv::KEY_UNEXTRACTABLE
        );
        let mut public = AttrMap::new();
        public.set_ulong(CKA_CLASS, CKO_PUBLIC_KEY);
        assert_eq!(
            check_wrap(&kek, &public).unwrap_err().rv(),
            Rv::KEY_NOT_WRAPPABLE
        );
    }

    #[test]
    fn unwrap_under_a_kek_makes_sensitive_keys() {
        let readable = [Attribute::new(CKA_SENSITIVE, vec![0])];
        let unwrapper = secret(&KEPT);
        assert_eq!(
            check_unwrap_template(&unwrapper, &readable)
                .unwrap_err()
                .rv(),
            Rv::TEMPLATE_INCONSISTENT
        );
        assert!(check_unwrap_template(&unwrapper, &[]).is_ok());
        assert!(check_unwrap_template(&secret(&[]), &readable).is_ok());
        let trusted = secret(&[(CKA_TRUSTED, true)]);
        assert!(check_unwrap_template(&trusted, &readable).is_err());
        let mut private = AttrMap::new();
        private.set_ulong(CKA_CLASS, CKO_PRIVATE_KEY);
        assert!(check_unwrap_template(&private, &readable).is_err());
    }

    #[test]
    fn derived_keys_inherit_the_base_secrecy() {
        let base = secret(&[(CKA_SENSITIVE, true), (CKA_EXTRACTABLE, false)]);
        let mut derived = secret(&[(CKA_SENSITIVE, false), (CKA_EXTRACTABLE, true)]);
        inherit_secrecy(CKM_XOR_BASE_AND_DATA, &base, &mut derived);
        assert!(derived.flag(CKA_SENSITIVE) && !derived.flag(CKA_EXTRACTABLE));

        let mut derived = secret(&[(CKA_SENSITIVE, false), (CKA_EXTRACTABLE, true)]);
        inherit_secrecy(CKM_HKDF_DERIVE, &base, &mut derived);
        assert!(!derived.flag(CKA_SENSITIVE) && derived.flag(CKA_EXTRACTABLE));

        let mut private = base.clone();
        private.set_ulong(CKA_CLASS, CKO_PRIVATE_KEY);
        let mut derived = secret(&[(CKA_SENSITIVE, false), (CKA_EXTRACTABLE, true)]);
        inherit_secrecy(CKM_ECDH1_DERIVE, &private, &mut derived);
        assert!(
            !derived.flag(CKA_SENSITIVE),
            "key agreement: the peer's half"
        );

        let readable = secret(&[(CKA_SENSITIVE, false), (CKA_EXTRACTABLE, true)]);
        let mut derived = secret(&[(CKA_SENSITIVE, false), (CKA_EXTRACTABLE, true)]);
        inherit_secrecy(CKM_XOR_BASE_AND_DATA, &readable, &mut derived);
        assert!(!derived.flag(CKA_SENSITIVE) && derived.flag(CKA_EXTRACTABLE));
    }
}

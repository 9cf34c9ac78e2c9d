//! The class tables, tested as tables.
use super::*;

fn all_rows() -> impl Iterator<Item = (&'static ClassPolicy, &'static Row)> {
    CLASSES
        .iter()
        .flat_map(|p| p.rows.iter().map(move |r| (p, r)))
}

#[test]
fn every_attribute_appears_once_per_class_and_is_known() {
    for policy in CLASSES {
        for (i, row) in policy.rows.iter().enumerate() {
            assert!(
                attributes::spec(row.kind).is_some(),
                "class {:#x}: attribute {:#x} has no encoding",
                policy.class,
                row.kind
            );
            // Twice only for disjoint key types (CKA_VALUE: an EC scalar, a post-quantum key),
            // so one row answers for each.
            let overlaps = |r: &Row| {
                r.only.is_empty()
                    || row.only.is_empty()
                    || r.only.iter().any(|t| row.only.contains(t))
            };
            assert!(
                policy.rows[i + 1..]
                    .iter()
                    .all(|r| r.kind != row.kind || !overlaps(r)),
                "class {:#x}: attribute {:#x} appears twice",
                policy.class,
                row.kind
            );
        }
    }
    let mut classes: Vec<_> = CLASSES.iter().map(|p| p.class).collect();
    classes.dedup();
    assert_eq!(classes.len(), CLASSES.len());
}

#[test]
fn defaults_are_consistent_with_the_rules() {
    for (policy, row) in all_rows() {
        let what = format!("class {:#x}, attribute {:#x}", policy.class, row.kind);
        let encoding = attributes::spec(row.kind).unwrap().encoding;
        match row.default {
            Bool(_) => assert_eq!(encoding, attributes::Encoding::Bool, "{what}"),
            Ulong(_) => assert_eq!(encoding, attributes::Encoding::Ulong, "{what}"),
            Empty => assert_ne!(encoding, attributes::Encoding::Bool, "{what}"),
            Absent | Initial::Origin | Computed => {}
        }
        let r = row.rules;
        // What the token sets from the origin no caller sets or changes.
        if row.default == Initial::Origin {
            assert!(r.is_empty(), "{what}");
        }
        // Key material has no default, is never given as a plain attribute and never
        // changes; an import reads it.
        if r.contains(Rules::SENSITIVE) {
            assert_eq!(row.default, Absent, "{what}");
            let kept = attributes::spec(row.kind).unwrap().kept;
            assert_eq!(kept, attributes::Kept::Apart, "{what}: never in metadata");
            assert!(!r.intersects(CREATE | MODIFY | COPY), "{what}");
        }
        // A required attribute has no default to fall back on (except class and key type,
        // which the token sets from the call).
        if r.contains(Rules::REQUIRED) && !matches!(row.kind, CKA_CLASS | CKA_KEY_TYPE) {
            assert!(matches!(row.default, Absent | Computed), "{what}");
            assert!(!r.contains(MODIFY) || row.kind == CKA_SUBJECT, "{what}");
        }
        // What a caller may not give at creation, it may not change later either.
        if !r.contains(CREATE) {
            assert!(!r.intersects(MODIFY | COPY), "{what}");
        }
        // One-way and SO-only rules are about booleans that can change.
        if r.intersects(TO_TRUE_ONLY | TO_FALSE_ONLY | SO_ONLY) {
            assert_eq!(encoding, attributes::Encoding::Bool, "{what}");
            assert!(r.intersects(MODIFY | COPY), "{what}");
            assert!(!r.contains(TO_TRUE_ONLY | TO_FALSE_ONLY), "{what}");
        }
        // A one-way default is the end it moves away from: a sensitive default stays so.
        if let Bool(value) = row.default {
            if r.contains(TO_TRUE_ONLY) && row.kind == CKA_SENSITIVE {
                assert!(value, "{what}: secure default");
            }
            if r.contains(TO_FALSE_ONLY) && row.kind == CKA_EXTRACTABLE {
                assert!(!value, "{what}: secure default");
            }
        }
    }
}

#[test]
fn spec_facts_are_pinned() {
    let rules_in = |class, kind| for_class(class).unwrap().row(CKK_AES, kind).unwrap().rules;
    for class in [CKO_PRIVATE_KEY, CKO_SECRET_KEY] {
        assert!(rules_in(class, CKA_SENSITIVE).contains(TO_TRUE_ONLY));
        assert!(rules_in(class, CKA_WRAP_WITH_TRUSTED).contains(TO_TRUE_ONLY));
        assert!(rules_in(class, CKA_EXTRACTABLE).contains(TO_FALSE_ONLY));
        assert!(!rules_in(class, CKA_ALWAYS_SENSITIVE).intersects(CREATE | MODIFY));
        assert!(!rules_in(class, CKA_NEVER_EXTRACTABLE).intersects(CREATE | MODIFY));
    }
    for policy in CLASSES {
        let class = policy.row(CKC_X_509, CKA_CLASS).unwrap().rules;
        assert!(!class.intersects(MODIFY | COPY), "CKA_CLASS never changes");
        assert!(class.contains(REQUIRED));
        let unique = policy.row(CKC_X_509, CKA_UNIQUE_ID).unwrap().rules;
        assert!(unique.is_empty(), "CKA_UNIQUE_ID is the token's");
        assert!(policy
            .row(0, CKA_COPYABLE)
            .unwrap()
            .rules
            .contains(TO_FALSE_ONLY));
        assert!(policy.row(0, CKA_MODIFIABLE).unwrap().rules.contains(COPY));
        assert!(!policy
            .row(0, CKA_MODIFIABLE)
            .unwrap()
            .rules
            .contains(MODIFY));
        assert!(!policy.row(0, CKA_PRIVATE).unwrap().rules.contains(MODIFY));
    }
    // The usages that move a secret key's value are fixed at creation (core::extraction).
    for usage in [CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP, CKA_DERIVE] {
        let r = rules(CKO_SECRET_KEY, CKK_AES, usage).unwrap();
        assert!(
            r.contains(CREATE) && !r.intersects(MODIFY | COPY),
            "{usage}"
        );
    }
    assert!(rules(CKO_SECRET_KEY, CKK_AES, CKA_SIGN)
        .unwrap()
        .contains(MODIFY));
    assert!(rules(CKO_PRIVATE_KEY, CKK_EC, CKA_DERIVE)
        .unwrap()
        .contains(MODIFY));
    assert!(rules(CKO_PUBLIC_KEY, CKK_EC, CKA_TRUSTED)
        .unwrap()
        .contains(SO_ONLY));
    assert!(rules(CKO_CERTIFICATE, CKC_X_509, CKA_TRUSTED)
        .unwrap()
        .contains(SO_ONLY));
    assert!(rules(CKO_SECRET_KEY, CKK_AES, CKA_VALUE)
        .unwrap()
        .contains(SENSITIVE));
    assert!(rules(CKO_PRIVATE_KEY, CKK_RSA, CKA_PRIME_1)
        .unwrap()
        .contains(SENSITIVE));
    // A data object's value is content an application may change; a certificate's is not.
    assert!(rules(CKO_DATA, 0, CKA_VALUE).unwrap().contains(MODIFY));
    assert!(!rules(CKO_CERTIFICATE, CKC_X_509, CKA_VALUE)
        .unwrap()
        .contains(MODIFY));
    // Key-type and certificate-type refinements.
    assert!(!applies(CKO_PUBLIC_KEY, CKK_EC, CKA_MODULUS));
    assert!(applies(CKO_PUBLIC_KEY, CKK_RSA, CKA_MODULUS));
    assert!(!applies(CKO_PUBLIC_KEY, CKK_EC, CKA_SIGN));
    assert!(!applies(CKO_CERTIFICATE, CKC_X_509_ATTR_CERT, CKA_SUBJECT));
    assert!(!applies(CKO_DATA, 0, CKA_KEY_TYPE));
}

#[test]
fn defaults_are_secure_and_softhsm_like() {
    let attrs = build_key_attrs(
        CKO_PRIVATE_KEY,
        CKK_EC,
        &[],
        &[],
        Origin::Generated(CKM_EC_KEY_PAIR_GEN),
    )
    .unwrap();
    assert!(attrs.flag(CKA_SENSITIVE));
    assert!(!attrs.flag(CKA_EXTRACTABLE));
    assert!(attrs.flag(CKA_ALWAYS_SENSITIVE));
    assert!(attrs.flag(CKA_NEVER_EXTRACTABLE));
    assert!(attrs.flag(CKA_PRIVATE));
    assert!(attrs.flag(CKA_SIGN));
    assert!(attrs.flag(CKA_LOCAL));
    assert_eq!(
        attrs.ulong(CKA_KEY_GEN_MECHANISM),
        Some(CKM_EC_KEY_PAIR_GEN)
    );

    let public = build_key_attrs(CKO_PUBLIC_KEY, CKK_EC, &[], &[], Origin::Imported).unwrap();
    assert!(!public.flag(CKA_PRIVATE));
    assert!(public.flag(CKA_VERIFY));
    assert!(!public.flag(CKA_LOCAL));
}

#[test]
fn imported_keys_are_not_always_sensitive() {
    let attrs = build_key_attrs(CKO_SECRET_KEY, CKK_AES, &[], &[], Origin::Imported).unwrap();
    assert!(!attrs.flag(CKA_ALWAYS_SENSITIVE));
    assert!(!attrs.flag(CKA_NEVER_EXTRACTABLE));
}

#[test]
fn template_rules() {
    let wrong_class = [Attribute::from_ulong(CKA_CLASS, CKO_PUBLIC_KEY)];
    let err =
        build_key_attrs(CKO_PRIVATE_KEY, CKK_EC, &wrong_class, &[], Origin::Imported).unwrap_err();
    assert_eq!(err.rv(), Rv::TEMPLATE_INCONSISTENT);

    let sign_on_public = [Attribute::from_bool(CKA_SIGN, true)];
    let err = build_key_attrs(
        CKO_PUBLIC_KEY,
        CKK_EC,
        &sign_on_public,
        &[],
        Origin::Imported,
    )
    .unwrap_err();
    assert_eq!(err.rv(), Rv::TEMPLATE_INCONSISTENT);

    let local = [Attribute::from_bool(CKA_LOCAL, true)];
    let err = build_key_attrs(CKO_PRIVATE_KEY, CKK_EC, &local, &[], Origin::Imported).unwrap_err();
    assert_eq!(err.rv(), Rv::ATTRIBUTE_READ_ONLY);

    let unknown = [Attribute::new(0x7fff_fff0, vec![1])];
    let err =
        build_key_attrs(CKO_PRIVATE_KEY, CKK_EC, &unknown, &[], Origin::Imported).unwrap_err();
    assert_eq!(err.rv(), Rv::ATTRIBUTE_TYPE_INVALID);

    let conflicting = [
        Attribute::from_bool(CKA_SIGN, true),
        Attribute::from_bool(CKA_SIGN, false),
    ];
    let err =
        build_key_attrs(CKO_PRIVATE_KEY, CKK_EC, &conflicting, &[], Origin::Imported).unwrap_err();
    assert_eq!(err.rv(), Rv::TEMPLATE_INCONSISTENT);

    let bad_bool = [Attribute::new(CKA_SIGN, vec![1, 1])];
    let err =
        build_key_attrs(CKO_PRIVATE_KEY, CKK_EC, &bad_bool, &[], Origin::Imported).unwrap_err();
    assert_eq!(err.rv(), Rv::ATTRIBUTE_VALUE_INVALID);
}

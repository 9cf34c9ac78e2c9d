//! The checked-in seed corpus (`fuzz/corpus/<target>/`), encoded in the layout the targets read:
//! a few small, meaningful inputs per target (a valid AES-GCM round trip, an ECDSA signature, an
//! AES key template, a two-call attribute read, …) from which libFuzzer starts. Regenerate with
//! `SQLHSM_FUZZ_WRITE_SEEDS=fuzz/corpus cargo fuzz run <target>` (README "Fuzzing"); the indexes
//! into the module's mechanism list are taken from the running module, so seeds follow it.

use std::path::Path;

use cryptoki_sys::*;

use crate::fixture::{fixture, Fixture};
use crate::input::Writer;
use crate::mem::FIELD_EXACT;
use crate::{attributes as at, mech, mechanisms as me, out, session as se, templates as te, tmpl};

fn mech_index(fx: &Fixture, flags: CK_FLAGS, kind: CK_MECHANISM_TYPE) -> usize {
    fx.mechanisms_with(flags)
        .iter()
        .position(|&m| m == kind)
        .unwrap_or_else(|| panic!("mechanism {kind:#x} is not listed with flags {flags:#x}"))
}

fn object_index(fx: &Fixture, name: &str) -> usize {
    fx.objects
        .iter()
        .position(|o| o.name == name)
        .unwrap_or_else(|| panic!("no fixed object {name}"))
}

fn known_index(kind: CK_ATTRIBUTE_TYPE) -> usize {
    tmpl::KNOWN
        .iter()
        .position(|&k| k == kind)
        .unwrap_or_else(|| panic!("attribute {kind:#x} is not in tmpl::KNOWN"))
}

/// A listed mechanism with the parameter mode `param` (no further parameter bytes read for
/// `PARAM_NONE` and, except ECDH's peer index, for `PARAM_GOOD`), aligned.
fn mechanism(w: &mut Writer, fx: &Fixture, flags: CK_FLAGS, kind: CK_MECHANISM_TYPE, param: u8) {
    w.u8(0).index(mech_index(fx, flags, kind)).u8(param);
    if param == mech::PARAM_GOOD && mech::shape(kind) == Some(mech::Shape::Ecdh) {
        w.u8(0); // the first EC point: P-256, DER
    }
    w.u8(mech::PLACE_ALIGNED);
}

fn object(w: &mut Writer, fx: &Fixture, name: &str) {
    w.index(object_index(fx, name));
}

/// Template entries as exact raw values (entry mode 3), then a plain array.
fn template(w: &mut Writer, entries: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)]) {
    w.index(entries.len());
    for (kind, value) in entries {
        w.u8(0).index(known_index(*kind)).u8(3).blob(value);
    }
    w.u8(0);
}

fn ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn seeds_mechanisms(fx: &Fixture) -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    let round_trip = |kind, key: &str, encrypt: bool, param| {
        let mut w = Writer::default();
        let flags = if encrypt { CKF_ENCRYPT } else { CKF_SIGN };
        let step = if encrypt {
            me::STEP_ENCRYPT_DECRYPT
        } else {
            me::STEP_SIGN_VERIFY
        };
        w.u8(0).u8(step);
        mechanism(&mut w, fx, flags, kind, param);
        object(&mut w, fx, key);
        w.blob(b"attack at dawn, bring 32 bytes!!").u8(out::OUT_BIG);
        if encrypt {
            w.u8(out::OUT_BIG);
        }
        w.out
    };
    seeds.push((
        "aes-gcm-round-trip",
        round_trip(CKM_AES_GCM, "aes256", true, mech::PARAM_GOOD),
    ));
    seeds.push((
        "aes-cbc-pad-round-trip",
        round_trip(CKM_AES_CBC_PAD, "aes128-token", true, mech::PARAM_GOOD),
    ));
    seeds.push((
        "aes-ctr-round-trip",
        round_trip(CKM_AES_CTR, "aes256-imported", true, mech::PARAM_GOOD),
    ));
    seeds.push((
        "rsa-oaep-round-trip",
        round_trip(
            CKM_RSA_PKCS_OAEP,
            "rsa2048-public-token",
            true,
            mech::PARAM_GOOD,
        ),
    ));
    seeds.push((
        "ecdsa-sha256-sign-verify",
        round_trip(CKM_ECDSA_SHA256, "p256-private", false, mech::PARAM_NONE),
    ));
    seeds.push((
        "rsa-pss-sign-verify",
        round_trip(
            CKM_SHA256_RSA_PKCS_PSS,
            "rsa2048-private-token",
            false,
            mech::PARAM_GOOD,
        ),
    ));
    seeds.push((
        "hmac-sha256-sign-verify",
        round_trip(CKM_SHA256_HMAC, "hmac32-token", false, mech::PARAM_NONE),
    ));
    seeds.push((
        "eddsa-sign-verify",
        round_trip(CKM_EDDSA, "ed25519-private", false, mech::PARAM_NONE),
    ));

    // A multi-part SHA-256 digest: two updates, then a length query and the final call.
    let mut w = Writer::default();
    w.u8(0).u8(me::STEP_ONE).index(4);
    mechanism(&mut w, fx, CKF_DIGEST, CKM_SHA256, mech::PARAM_NONE);
    object(&mut w, fx, "aes128-token");
    w.u8(1).u8(me::AFTER_MULTI).u8(2);
    for part in [&b"hello "[..], b"world"] {
        w.u8(1).blob(part).u8(1);
    }
    w.u8(out::OUT_TWO_CALL).ulong(0);
    seeds.push(("sha256-multi-part", w.out));

    // A context-specific login for the always-authenticate key, then a single-part signature.
    let mut w = Writer::default();
    w.u8(0).u8(me::STEP_ONE).index(2);
    mechanism(&mut w, fx, CKF_SIGN, CKM_ECDSA_SHA256, mech::PARAM_NONE);
    object(&mut w, fx, "p256-private-always-authenticate");
    w.u8(1).u8(me::AFTER_CONTEXT_LOGIN).u8(1);
    w.u8(1)
        .blob(b"message")
        .u8(1)
        .blob(b"")
        .u8(out::OUT_TWO_CALL)
        .ulong(0);
    seeds.push(("context-specific-login-sign", w.out));
    seeds
}

fn seeds_templates(fx: &Fixture) -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    let session_only = 1u8;
    let yes = vec![CK_TRUE];

    let mut w = Writer::default();
    w.u8(0).u8(te::STEP_CREATE).u8(session_only);
    template(
        &mut w,
        &[
            (CKA_CLASS, ulong(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, ulong(CKK_AES)),
            (CKA_VALUE, (0u8..16).collect()),
            (CKA_ENCRYPT, yes.clone()),
            (CKA_LABEL, b"seed".to_vec()),
        ],
    );
    w.u8(1);
    seeds.push(("create-aes-key", w.out));

    let mut w = Writer::default();
    w.u8(0).u8(te::STEP_CREATE).u8(session_only);
    template(
        &mut w,
        &[
            (CKA_CLASS, ulong(CKO_DATA)),
            (CKA_APPLICATION, b"seed".to_vec()),
            (CKA_VALUE, b"data".to_vec()),
        ],
    );
    w.u8(1);
    seeds.push(("create-data-object", w.out));

    let mut w = Writer::default();
    w.u8(0).u8(te::STEP_CREATE).u8(session_only);
    template(
        &mut w,
        &[
            (CKA_CLASS, ulong(CKO_CERTIFICATE)),
            (CKA_CERTIFICATE_TYPE, ulong(CKC_X_509)),
            (CKA_SUBJECT, vec![0x30, 0x00]),
            (CKA_VALUE, fx.cert_der.clone()),
        ],
    );
    w.u8(1);
    seeds.push(("create-certificate", w.out));

    let mut w = Writer::default();
    w.u8(0).u8(te::STEP_GENERATE);
    mechanism(&mut w, fx, CKF_GENERATE, CKM_AES_KEY_GEN, mech::PARAM_NONE);
    w.u8(0); // a token object, destroyed again at the end
    template(
        &mut w,
        &[(CKA_VALUE_LEN, ulong(32)), (CKA_ENCRYPT, yes.clone())],
    );
    w.u8(1);
    seeds.push(("generate-aes-256-token", w.out));

    let mut w = Writer::default();
    w.u8(0).u8(te::STEP_GENERATE_PAIR);
    mechanism(
        &mut w,
        fx,
        CKF_GENERATE_KEY_PAIR,
        CKM_EC_KEY_PAIR_GEN,
        mech::PARAM_NONE,
    );
    w.u8(session_only);
    template(
        &mut w,
        &[
            (CKA_EC_PARAMS, crate::fixture::EC_PARAMS[0].to_vec()),
            (CKA_VERIFY, yes.clone()),
        ],
    );
    template(&mut w, &[(CKA_SIGN, yes.clone())]);
    w.u8(1).u8(1);
    seeds.push(("generate-ec-p256-pair", w.out));

    let mut w = Writer::default();
    w.u8(0).u8(te::STEP_GENERATE_PAIR);
    mechanism(
        &mut w,
        fx,
        CKF_GENERATE_KEY_PAIR,
        CKM_RSA_PKCS_KEY_PAIR_GEN,
        mech::PARAM_NONE,
    );
    w.u8(session_only);
    template(
        &mut w,
        &[
            (CKA_MODULUS_BITS, ulong(2048)),
            (CKA_PUBLIC_EXPONENT, vec![1, 0, 1]),
        ],
    );
    template(&mut w, &[(CKA_DECRYPT, yes.clone())]);
    w.u8(1).u8(1);
    seeds.push(("generate-rsa-2048-pair", w.out));

    let mut w = Writer::default();
    w.u8(0).u8(te::STEP_COPY);
    object(&mut w, fx, "aes128-token");
    w.u8(session_only);
    template(&mut w, &[(CKA_LABEL, b"copy".to_vec())]);
    w.u8(1);
    seeds.push(("copy-token-key", w.out));

    let mut w = Writer::default();
    w.u8(0).u8(te::STEP_WRAP_UNWRAP).u8(0);
    mechanism(&mut w, fx, CKF_WRAP, CKM_AES_KEY_WRAP_KWP, mech::PARAM_NONE);
    object(&mut w, fx, "aes128-token");
    object(&mut w, fx, "aes256-imported");
    w.u8(out::OUT_BIG).u8(session_only);
    template(
        &mut w,
        &[
            (CKA_CLASS, ulong(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, ulong(CKK_AES)),
            (CKA_DECRYPT, yes.clone()),
        ],
    );
    w.u8(1);
    seeds.push(("wrap-unwrap-aes-kwp", w.out));

    let mut w = Writer::default();
    w.u8(0).u8(te::STEP_WRAP_UNWRAP).u8(0);
    mechanism(&mut w, fx, CKF_WRAP, CKM_RSA_PKCS_OAEP, mech::PARAM_GOOD);
    object(&mut w, fx, "rsa2048-public-token");
    object(&mut w, fx, "aes128-token");
    w.u8(out::OUT_BIG).u8(session_only);
    template(
        &mut w,
        &[
            (CKA_CLASS, ulong(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, ulong(CKK_AES)),
        ],
    );
    w.u8(1);
    seeds.push(("wrap-unwrap-rsa-oaep", w.out));

    let mut w = Writer::default();
    w.u8(0).u8(te::STEP_DERIVE);
    mechanism(&mut w, fx, CKF_DERIVE, CKM_ECDH1_DERIVE, mech::PARAM_GOOD);
    object(&mut w, fx, "p256-private");
    w.u8(session_only);
    template(
        &mut w,
        &[
            (CKA_CLASS, ulong(CKO_SECRET_KEY)),
            (CKA_KEY_TYPE, ulong(CKK_AES)),
            (CKA_VALUE_LEN, ulong(16)),
        ],
    );
    w.u8(1);
    seeds.push(("derive-ecdh-p256", w.out));
    seeds
}

fn seeds_attributes(fx: &Fixture) -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    let get = |w: &mut Writer, requests: &[(CK_ATTRIBUTE_TYPE, u8)]| {
        w.index(requests.len());
        for &(kind, mode) in requests {
            w.u8(0).index(known_index(kind)).u8(mode);
            match mode {
                at::REQ_QUERY => {
                    w.ulong(0);
                }
                at::REQ_EXACT => {
                    w.len(8);
                }
                at::REQ_SHORTER => {
                    w.len(64).len(10);
                }
                _ => {}
            }
        }
        w.u8(0);
    };

    let mut w = Writer::default();
    w.u8(0).u8(at::STEP_GET);
    object(&mut w, fx, "aes128-token");
    get(
        &mut w,
        &[
            (CKA_CLASS, at::REQ_EXACT),
            (CKA_VALUE, at::REQ_QUERY),
            (CKA_LABEL, at::REQ_BIG),
            (CKA_CHECK_VALUE, at::REQ_QUERY),
        ],
    );
    seeds.push(("get-secret-key", w.out));

    let mut w = Writer::default();
    w.u8(0).u8(at::STEP_GET);
    object(&mut w, fx, "rsa2048-private-token");
    get(
        &mut w,
        &[
            (CKA_MODULUS, at::REQ_QUERY),
            (CKA_PRIVATE_EXPONENT, at::REQ_QUERY),
            (CKA_PUBLIC_KEY_INFO, at::REQ_QUERY),
            (CKA_KEY_TYPE, at::REQ_EXACT),
        ],
    );
    seeds.push(("get-rsa-private-key", w.out));

    let mut w = Writer::default();
    w.u8(0).u8(at::STEP_GET);
    object(&mut w, fx, "certificate-token");
    get(
        &mut w,
        &[
            (CKA_VALUE, at::REQ_QUERY),
            (CKA_SUBJECT, at::REQ_SHORTER),
            (CKA_CERTIFICATE_TYPE, at::REQ_UNAVAILABLE),
        ],
    );
    seeds.push(("get-certificate", w.out));

    let mut w = Writer::default();
    w.u8(1).u8(at::STEP_SET_ON_COPY);
    object(&mut w, fx, "data");
    template(
        &mut w,
        &[(CKA_LABEL, b"renamed".to_vec()), (CKA_VALUE, b"x".to_vec())],
    );
    w.u8(at::STEP_GET_ON_COPY);
    get(
        &mut w,
        &[(CKA_LABEL, at::REQ_QUERY), (CKA_VALUE, at::REQ_QUERY)],
    );
    seeds.push(("set-on-copy-of-data", w.out));

    let mut w = Writer::default();
    w.u8(0).u8(at::STEP_FIND);
    template(&mut w, &[(CKA_CLASS, ulong(CKO_PRIVATE_KEY))]);
    w.u8(4);
    seeds.push(("find-private-keys", w.out));
    seeds
}

fn seeds_session(_fx: &Fixture) -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mine = |w: &mut Writer, i: usize| {
        w.index(i);
    };

    // Log out and in again, read the session's state, list every object.
    let mut w = Writer::default();
    w.u8(3).u8(se::STEP_LOGOUT);
    mine(&mut w, 0);
    w.u8(se::STEP_LOGIN);
    mine(&mut w, 0);
    w.index(0).u8(1).u8(se::STEP_INFO);
    mine(&mut w, 0);
    w.u8(1).u8(se::STEP_FIND);
    mine(&mut w, 0);
    w.u8(0).u8(0).u8(1).u8(1);
    seeds.push(("logout-login-find", w.out));

    // A read-only session, then an SO login (refused: the user is logged in), then closing it.
    let mut w = Writer::default();
    w.u8(2)
        .u8(se::STEP_OPEN)
        .index(1)
        .u8(2)
        .u8(1)
        .u8(se::STEP_LOGIN);
    mine(&mut w, 1);
    w.index(1).u8(1).u8(se::STEP_CLOSE);
    mine(&mut w, 1);
    seeds.push(("read-only-session-so-login", w.out));

    // A signature left active, then every session of the slot closed.
    let mut w = Writer::default();
    w.u8(1).u8(se::STEP_SIGN);
    mine(&mut w, 0);
    w.u8(1)
        .blob(b"abc")
        .u8(out::OUT_BIG)
        .u8(se::STEP_CLOSE_ALL)
        .u8(2);
    seeds.push(("sign-active-then-close-all", w.out));

    // 32 random bytes.
    let mut w = Writer::default();
    w.u8(0).u8(se::STEP_RANDOM);
    mine(&mut w, 0);
    w.u8(FIELD_EXACT).blob(&[0; 32]).u8(0);
    seeds.push(("generate-random", w.out));
    seeds
}

/// Writes the seeds of `target` under `dir/<target>/`.
pub fn write(target: &str, dir: &Path) {
    let fx = fixture();
    let seeds = match target {
        "mechanisms" => seeds_mechanisms(fx),
        "templates" => seeds_templates(fx),
        "attributes" => seeds_attributes(fx),
        "session" => seeds_session(fx),
        other => panic!("no seeds for target {other}"),
    };
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir).expect("seed directory");
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).expect("seed file");
    }
}

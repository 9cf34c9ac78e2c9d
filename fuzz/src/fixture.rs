//! The module under test, set up once per fuzzing process: a temporary SQLite store, one token
//! with its SO and user PINs, one "anchor" session that stays open and logged in as the user
//! (login state belongs to the token, so every session an iteration opens is logged in too), the
//! module's own mechanism list, and fixed objects of every class the iterations work on.

use std::path::PathBuf;
use std::sync::OnceLock;

use cryptoki_sys::*;
use sqlhsm::ffi;

use crate::check;

pub const SO_PIN: &[u8] = b"fuzz-so-pin";
pub const USER_PIN: &[u8] = b"fuzz-user-pin";

/// One fixed object.
#[derive(Clone, Debug)]
pub struct Object {
    pub name: &'static str,
    pub handle: CK_OBJECT_HANDLE,
    pub class: CK_OBJECT_CLASS,
    pub token: bool,
}

pub struct Fixture {
    pub slot: CK_SLOT_ID,
    pub anchor: CK_SESSION_HANDLE,
    /// `C_GetMechanismList` with each mechanism's `CK_MECHANISM_INFO.flags`.
    pub mechanisms: Vec<(CK_MECHANISM_TYPE, CK_FLAGS)>,
    pub objects: Vec<Object>,
    /// `CKA_EC_POINT` of the fixed EC public keys (DER OCTET STRINGs) and the same points raw:
    /// valid peers for ECDH.
    pub ec_points: Vec<Vec<u8>>,
    /// A DER X.509 certificate, for `CKA_VALUE` of certificate templates.
    pub cert_der: Vec<u8>,
    pub dir: PathBuf,
}

impl Fixture {
    /// Mechanisms whose info has any of `flags` (all of them when none has).
    pub fn mechanisms_with(&self, flags: CK_FLAGS) -> Vec<CK_MECHANISM_TYPE> {
        let with: Vec<_> = self
            .mechanisms
            .iter()
            .filter(|(_, f)| f & flags != 0)
            .map(|(m, _)| *m)
            .collect();
        if with.is_empty() {
            self.mechanisms.iter().map(|(m, _)| *m).collect()
        } else {
            with
        }
    }

    pub fn object(&self, name: &str) -> CK_OBJECT_HANDLE {
        self.objects
            .iter()
            .find(|o| o.name == name)
            .map_or(CK_INVALID_HANDLE, |o| o.handle)
    }

    /// Opens an R/W session on the token (already logged in through the anchor).
    pub fn open_session(&self) -> CK_SESSION_HANDLE {
        let mut session: CK_SESSION_HANDLE = CK_INVALID_HANDLE;
        // SAFETY: `session` is a live output location.
        let rv = unsafe {
            ffi::C_OpenSession(
                self.slot,
                CKF_SERIAL_SESSION | CKF_RW_SESSION,
                std::ptr::null_mut(),
                None,
                &mut session,
            )
        };
        assert_eq!(check("C_OpenSession", rv), CKR_OK, "C_OpenSession");
        session
    }

    pub fn close_session(&self, session: CK_SESSION_HANDLE) {
        // SAFETY: no pointers.
        let rv = unsafe { ffi::C_CloseSession(session) };
        assert_eq!(check("C_CloseSession", rv), CKR_OK, "C_CloseSession");
    }
}

static FIXTURE: OnceLock<Fixture> = OnceLock::new();

/// The process's fixture, set up on first use.
pub fn fixture() -> &'static Fixture {
    FIXTURE.get_or_init(set_up)
}

fn ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn yes() -> Vec<u8> {
    vec![CK_TRUE]
}

fn no() -> Vec<u8> {
    vec![CK_FALSE]
}

/// A fixed template as the module reads it; the values live as long as the returned pair.
pub struct FixedTemplate {
    _values: Vec<Vec<u8>>,
    pub attrs: Vec<CK_ATTRIBUTE>,
}

pub fn template(entries: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>) -> FixedTemplate {
    let mut values: Vec<Vec<u8>> = entries.iter().map(|(_, v)| v.clone()).collect();
    let attrs = entries
        .iter()
        .zip(values.iter_mut())
        .map(|((kind, _), v)| CK_ATTRIBUTE {
            type_: *kind,
            pValue: v.as_mut_ptr().cast(),
            ulValueLen: v.len() as CK_ULONG,
        })
        .collect();
    FixedTemplate {
        _values: values,
        attrs,
    }
}

fn mechanism(kind: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM {
        mechanism: kind,
        pParameter: std::ptr::null_mut(),
        ulParameterLen: 0,
    }
}

const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
const ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// The `CKA_EC_PARAMS` values the templates try (the module's curves, Ed25519 by OID and by
/// name, X25519 which it does not support, and a truncated OID).
pub const EC_PARAMS: &[&[u8]] = &[
    P256,
    P384,
    P521,
    ED25519,
    &[
        0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9',
    ],
    &[0x06, 0x03, 0x2b, 0x65, 0x6e],
    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01],
];

fn set_up() -> Fixture {
    let dir = std::env::temp_dir().join(format!("sqlhsm-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("fuzz temp dir");
    let conf = dir.join("sqlhsm.toml");
    let db = format!("sqlite:{}", dir.join("fuzz.db").display());
    std::fs::write(
        &conf,
        format!(
            "[database]\nurl = \"{db}\"\n\n[security]\npin_kdf_log_n = 10\nmax_pin_failures = 1000000\n\n[log]\nlevel = \"error\"\n"
        ),
    )
    .expect("fuzz config");
    // Set before C_Initialize, the only time the module reads them; nothing else runs yet.
    std::env::set_var("SQLHSM_CONF", &conf);
    std::env::set_var("SQLHSM_DB", &db);
    remove_dir_at_exit(&dir);

    // SAFETY: NULL init args are allowed.
    let rv = unsafe { ffi::C_Initialize(std::ptr::null_mut()) };
    assert_eq!(rv, CKR_OK, "C_Initialize");

    let slot = uninitialized_slot();
    let mut label = [b' '; 32];
    label[..4].copy_from_slice(b"fuzz");
    // SAFETY: the PIN and the 32-byte label are live.
    let rv = unsafe {
        ffi::C_InitToken(
            slot,
            SO_PIN.as_ptr().cast_mut(),
            SO_PIN.len() as CK_ULONG,
            label.as_mut_ptr(),
        )
    };
    assert_eq!(rv, CKR_OK, "C_InitToken");

    let mut fx = Fixture {
        slot,
        anchor: CK_INVALID_HANDLE,
        mechanisms: Vec::new(),
        objects: Vec::new(),
        ec_points: Vec::new(),
        cert_der: Vec::new(),
        dir,
    };
    fx.anchor = fx.open_session();
    login(fx.anchor, CKU_SO, SO_PIN);
    // SAFETY: the PIN is live.
    let rv = unsafe {
        ffi::C_InitPIN(
            fx.anchor,
            USER_PIN.as_ptr().cast_mut(),
            USER_PIN.len() as CK_ULONG,
        )
    };
    assert_eq!(rv, CKR_OK, "C_InitPIN");
    // SAFETY: no pointers.
    assert_eq!(unsafe { ffi::C_Logout(fx.anchor) }, CKR_OK, "C_Logout");
    login(fx.anchor, CKU_USER, USER_PIN);

    fx.mechanisms = mechanism_list(slot);
    fx.cert_der = certificate_der();
    make_objects(&mut fx);
    fx
}

/// Deletes the fuzzing process's temporary store when it exits (libFuzzer ends with `exit`).
fn remove_dir_at_exit(dir: &std::path::Path) {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if DIR.set(dir.to_path_buf()).is_err() {
        return;
    }
    extern "C" fn remove() {
        if let Some(dir) = DIR.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    extern "C" {
        fn atexit(f: extern "C" fn()) -> i32;
    }
    // SAFETY: registers a plain function; `atexit` is in every C library.
    unsafe { atexit(remove) };
}

pub fn login(session: CK_SESSION_HANDLE, user: CK_USER_TYPE, pin: &[u8]) {
    // SAFETY: the PIN is live.
    let rv = unsafe {
        ffi::C_Login(
            session,
            user,
            pin.as_ptr().cast_mut(),
            pin.len() as CK_ULONG,
        )
    };
    assert_eq!(rv, CKR_OK, "C_Login");
}

fn uninitialized_slot() -> CK_SLOT_ID {
    let mut count: CK_ULONG = 0;
    // SAFETY: count query.
    let rv = unsafe { ffi::C_GetSlotList(CK_FALSE, std::ptr::null_mut(), &mut count) };
    assert_eq!(rv, CKR_OK, "C_GetSlotList");
    let mut slots = vec![0 as CK_SLOT_ID; count as usize];
    // SAFETY: `slots` holds `count` entries.
    let rv = unsafe { ffi::C_GetSlotList(CK_FALSE, slots.as_mut_ptr(), &mut count) };
    assert_eq!(rv, CKR_OK, "C_GetSlotList");
    slots.truncate(count as usize);
    for slot in slots {
        // SAFETY: all-zero is a valid CK_TOKEN_INFO (integers and byte arrays).
        let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a live output location.
        let rv = unsafe { ffi::C_GetTokenInfo(slot, &mut info) };
        if rv == CKR_OK && info.flags & CKF_TOKEN_INITIALIZED == 0 {
            return slot;
        }
    }
    panic!("no slot with an uninitialized token");
}

fn mechanism_list(slot: CK_SLOT_ID) -> Vec<(CK_MECHANISM_TYPE, CK_FLAGS)> {
    let mut count: CK_ULONG = 0;
    // SAFETY: count query.
    let rv = unsafe { ffi::C_GetMechanismList(slot, std::ptr::null_mut(), &mut count) };
    assert_eq!(rv, CKR_OK, "C_GetMechanismList");
    let mut list = vec![0 as CK_MECHANISM_TYPE; count as usize];
    // SAFETY: `list` holds `count` entries.
    let rv = unsafe { ffi::C_GetMechanismList(slot, list.as_mut_ptr(), &mut count) };
    assert_eq!(rv, CKR_OK, "C_GetMechanismList");
    list.truncate(count as usize);
    list.into_iter()
        .map(|m| {
            let mut info = CK_MECHANISM_INFO {
                ulMinKeySize: 0,
                ulMaxKeySize: 0,
                flags: 0,
            };
            // SAFETY: `info` is a live output location.
            let rv = unsafe { ffi::C_GetMechanismInfo(slot, m, &mut info) };
            assert_eq!(rv, CKR_OK, "C_GetMechanismInfo");
            (m, info.flags)
        })
        .collect()
}

fn certificate_der() -> Vec<u8> {
    use openssl::{asn1, bn, ec, hash, nid, pkey, x509};
    let group = ec::EcGroup::from_curve_name(nid::Nid::X9_62_PRIME256V1).expect("P-256");
    let key = pkey::PKey::from_ec_key(ec::EcKey::generate(&group).expect("EC key")).expect("key");
    let mut name = x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(nid::Nid::COMMONNAME, "sqlhsm fuzz")
        .expect("CN");
    let name = name.build();
    let mut b = x509::X509Builder::new().expect("builder");
    b.set_version(2).expect("version");
    let serial = asn1::Asn1Integer::from_bn(&bn::BigNum::from_u32(7).expect("bn")).expect("sn");
    b.set_serial_number(&serial).expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&asn1::Asn1Time::days_from_now(0).expect("t"))
        .expect("not before");
    b.set_not_after(&asn1::Asn1Time::days_from_now(30).expect("t"))
        .expect("not after");
    b.sign(&key, hash::MessageDigest::sha256()).expect("sign");
    b.build().to_der().expect("DER")
}

fn generate_key(
    fx: &Fixture,
    kind: CK_MECHANISM_TYPE,
    t: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>,
) -> CK_OBJECT_HANDLE {
    let mut t = template(t);
    let mut m = mechanism(kind);
    let mut handle = CK_INVALID_HANDLE;
    // SAFETY: mechanism, template and handle are live.
    let rv = unsafe {
        ffi::C_GenerateKey(
            fx.anchor,
            &mut m,
            t.attrs.as_mut_ptr(),
            t.attrs.len() as CK_ULONG,
            &mut handle,
        )
    };
    assert_eq!(rv, CKR_OK, "C_GenerateKey {kind:#x}");
    handle
}

fn generate_pair(
    fx: &Fixture,
    kind: CK_MECHANISM_TYPE,
    public: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>,
    private: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>,
) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    let mut public = template(public);
    let mut private = template(private);
    let mut m = mechanism(kind);
    let (mut hpub, mut hpriv) = (CK_INVALID_HANDLE, CK_INVALID_HANDLE);
    // SAFETY: mechanism, templates and handles are live.
    let rv = unsafe {
        ffi::C_GenerateKeyPair(
            fx.anchor,
            &mut m,
            public.attrs.as_mut_ptr(),
            public.attrs.len() as CK_ULONG,
            private.attrs.as_mut_ptr(),
            private.attrs.len() as CK_ULONG,
            &mut hpub,
            &mut hpriv,
        )
    };
    assert_eq!(rv, CKR_OK, "C_GenerateKeyPair {kind:#x}");
    (hpub, hpriv)
}

fn create(fx: &Fixture, t: Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)>) -> CK_OBJECT_HANDLE {
    let mut t = template(t);
    let mut handle = CK_INVALID_HANDLE;
    // SAFETY: template and handle are live.
    let rv = unsafe {
        ffi::C_CreateObject(
            fx.anchor,
            t.attrs.as_mut_ptr(),
            t.attrs.len() as CK_ULONG,
            &mut handle,
        )
    };
    assert_eq!(rv, CKR_OK, "C_CreateObject");
    handle
}

/// The bytes of one attribute (two calls), or `None` when the module does not give it.
pub fn read_attribute(
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    kind: CK_ATTRIBUTE_TYPE,
) -> Option<Vec<u8>> {
    let mut a = CK_ATTRIBUTE {
        type_: kind,
        pValue: std::ptr::null_mut(),
        ulValueLen: 0,
    };
    // SAFETY: one live attribute, NULL value: a length query.
    let rv = unsafe { ffi::C_GetAttributeValue(session, object, &mut a, 1) };
    if rv != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION {
        return None;
    }
    let mut value = vec![0u8; a.ulValueLen as usize];
    a.pValue = value.as_mut_ptr().cast();
    // SAFETY: `value` holds ulValueLen bytes.
    let rv = unsafe { ffi::C_GetAttributeValue(session, object, &mut a, 1) };
    if rv != CKR_OK {
        return None;
    }
    value.truncate(a.ulValueLen as usize);
    Some(value)
}

fn make_objects(fx: &mut Fixture) {
    let secret = |token: bool, sensitive: bool, extractable: bool| {
        vec![
            (CKA_TOKEN, vec![u8::from(token)]),
            (CKA_ENCRYPT, yes()),
            (CKA_DECRYPT, yes()),
            (CKA_SIGN, yes()),
            (CKA_VERIFY, yes()),
            (CKA_WRAP, yes()),
            (CKA_UNWRAP, yes()),
            (CKA_DERIVE, yes()),
            (CKA_SENSITIVE, vec![u8::from(sensitive)]),
            (CKA_EXTRACTABLE, vec![u8::from(extractable)]),
            (CKA_LABEL, b"fuzz".to_vec()),
            (CKA_ID, vec![1, 2, 3]),
        ]
    };
    let mut objects = Vec::new();
    let mut add = |name, handle, class, token| {
        objects.push(Object {
            name,
            handle,
            class,
            token,
        })
    };

    let mut t = secret(true, false, true);
    t.push((CKA_VALUE_LEN, ulong(16)));
    add(
        "aes128-token",
        generate_key(fx, CKM_AES_KEY_GEN, t),
        CKO_SECRET_KEY,
        true,
    );
    let mut t = secret(false, true, true);
    t.push((CKA_VALUE_LEN, ulong(32)));
    add(
        "aes256",
        generate_key(fx, CKM_AES_KEY_GEN, t),
        CKO_SECRET_KEY,
        false,
    );
    let t = vec![
        (CKA_TOKEN, no()),
        (CKA_ENCRYPT, yes()),
        (CKA_DECRYPT, no()),
        (CKA_EXTRACTABLE, no()),
        (CKA_VALUE_LEN, ulong(24)),
        (CKA_ALLOWED_MECHANISMS, ulong(CKM_AES_CBC_PAD)),
    ];
    add(
        "aes192-restricted",
        generate_key(fx, CKM_AES_KEY_GEN, t),
        CKO_SECRET_KEY,
        false,
    );
    let mut t = secret(true, true, false);
    t.push((CKA_VALUE_LEN, ulong(32)));
    add(
        "hmac32-token",
        generate_key(fx, CKM_GENERIC_SECRET_KEY_GEN, t),
        CKO_SECRET_KEY,
        true,
    );
    let t = vec![
        (CKA_CLASS, ulong(CKO_SECRET_KEY)),
        (CKA_KEY_TYPE, ulong(CKK_AES)),
        (CKA_TOKEN, no()),
        (CKA_VALUE, (0u8..32).collect()),
        (CKA_ENCRYPT, yes()),
        (CKA_DECRYPT, yes()),
        (CKA_WRAP, yes()),
        (CKA_UNWRAP, yes()),
        (CKA_EXTRACTABLE, yes()),
    ];
    add("aes256-imported", create(fx, t), CKO_SECRET_KEY, false);

    let public = |token: bool| {
        vec![
            (CKA_TOKEN, vec![u8::from(token)]),
            (CKA_ENCRYPT, yes()),
            (CKA_VERIFY, yes()),
            (CKA_WRAP, yes()),
            (CKA_LABEL, b"fuzz".to_vec()),
        ]
    };
    let private = |token: bool| {
        vec![
            (CKA_TOKEN, vec![u8::from(token)]),
            (CKA_DECRYPT, yes()),
            (CKA_SIGN, yes()),
            (CKA_UNWRAP, yes()),
            (CKA_DERIVE, yes()),
            (CKA_EXTRACTABLE, yes()),
            (CKA_LABEL, b"fuzz".to_vec()),
        ]
    };
    let mut p = public(true);
    p.push((CKA_MODULUS_BITS, ulong(2048)));
    let (hpub, hpriv) = generate_pair(fx, CKM_RSA_PKCS_KEY_PAIR_GEN, p, private(true));
    add("rsa2048-public-token", hpub, CKO_PUBLIC_KEY, true);
    add("rsa2048-private-token", hpriv, CKO_PRIVATE_KEY, true);

    let mut ec_publics = Vec::new();
    for (name_pub, name_priv, params, token) in [
        ("p256-public", "p256-private", P256, false),
        ("p384-public-token", "p384-private-token", P384, true),
        ("p521-public", "p521-private", P521, false),
    ] {
        let mut p = public(token);
        p.push((CKA_EC_PARAMS, params.to_vec()));
        let (hpub, hpriv) = generate_pair(fx, CKM_EC_KEY_PAIR_GEN, p, private(token));
        add(name_pub, hpub, CKO_PUBLIC_KEY, token);
        add(name_priv, hpriv, CKO_PRIVATE_KEY, token);
        ec_publics.push(hpub);
    }
    let mut p = public(false);
    p.push((CKA_EC_PARAMS, ED25519.to_vec()));
    let (hpub, hpriv) = generate_pair(fx, CKM_EC_EDWARDS_KEY_PAIR_GEN, p, private(false));
    add("ed25519-public", hpub, CKO_PUBLIC_KEY, false);
    add("ed25519-private", hpriv, CKO_PRIVATE_KEY, false);
    let mut p = public(false);
    p.push((CKA_EC_PARAMS, P256.to_vec()));
    let mut q = private(false);
    q.push((CKA_ALWAYS_AUTHENTICATE, yes()));
    let (_, hpriv) = generate_pair(fx, CKM_EC_KEY_PAIR_GEN, p, q);
    add(
        "p256-private-always-authenticate",
        hpriv,
        CKO_PRIVATE_KEY,
        false,
    );

    for (name, token, private) in [("data", false, false), ("data-private-token", true, true)] {
        let t = vec![
            (CKA_CLASS, ulong(CKO_DATA)),
            (CKA_TOKEN, vec![u8::from(token)]),
            (CKA_PRIVATE, vec![u8::from(private)]),
            (CKA_LABEL, b"fuzz data".to_vec()),
            (CKA_APPLICATION, b"sqlhsm-fuzz".to_vec()),
            (CKA_OBJECT_ID, vec![0x06, 0x03, 0x2a, 0x03, 0x04]),
            (CKA_VALUE, b"some data".to_vec()),
        ];
        add(name, create(fx, t), CKO_DATA, token);
    }
    for (name, token) in [("certificate", false), ("certificate-token", true)] {
        let t = vec![
            (CKA_CLASS, ulong(CKO_CERTIFICATE)),
            (CKA_CERTIFICATE_TYPE, ulong(CKC_X_509)),
            (CKA_TOKEN, vec![u8::from(token)]),
            (CKA_LABEL, b"fuzz certificate".to_vec()),
            (CKA_SUBJECT, vec![0x30, 0x00]),
            (CKA_VALUE, fx.cert_der.clone()),
        ];
        add(name, create(fx, t), CKO_CERTIFICATE, token);
    }
    fx.objects = objects;

    for hpub in ec_publics {
        if let Some(point) = read_attribute(fx.anchor, hpub, CKA_EC_POINT) {
            // DER OCTET STRING (04 len point, lengths < 128 for these curves except P-521,
            // whose 133-byte point has the long form 04 81 85).
            let raw = match point.get(1) {
                Some(0x81) => point.get(3..).map(<[u8]>::to_vec),
                Some(_) => point.get(2..).map(<[u8]>::to_vec),
                None => None,
            };
            fx.ec_points.push(point);
            fx.ec_points.extend(raw);
        }
    }
    assert!(!fx.ec_points.is_empty(), "no EC points read back");
}

//! `sqlhsm key …`: list, show, generate, import, export-public, rotate, set-status,
//! set-expiration, destroy, history. Keys are made, changed and destroyed through the module's
//! own operations (a user session on the token, as an application would), or, for status and
//! expiration, through `Module::set_key_state_by_id` after the PIN is verified; listings read
//! the rows through the storage trait.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use cryptoki_sys::*;
use serde_json::{json, Value};
use uuid::Uuid;

use super::output::{self, or_dash, Listing, Table};
use super::progress::Progress;
use super::{confirm, Admin, AdminResult, Failure, SessionGuard};
use crate::api::object::AttributeRequest;
use crate::core::attributes::AttrMap;
use crate::core::keystore::add_public_values;
use crate::core::lifecycle::effective_status;
use crate::core::new_keys::NewKey;
use crate::core::policy::{build_key_attrs, Origin};
use crate::core::token::PinOwner;
use crate::crypto::keys::{PrivateKey, PublicKey, PublicValues};
use crate::key_algorithm::{self, Family, KeyAlgorithm, PublicShape};
use crate::storage::{AsymKeyRow, KeyEvent, KeyFilter, KeyRow, KeyTable, SymKeyRow, TokenRow};
use crate::types::{Attribute, Mechanism, OutBuf};
use crate::vendor;

pub const ACTIVE: i32 = 1;
pub const INACTIVE: i32 = 2;
pub const COMPROMISED: i32 = 3;
pub const EXPIRED: i32 = 4;

pub fn status_name(status: i32) -> String {
    match crate::key_state::KeyStatus::from_code(status) {
        Some(known) => crate::core::lifecycle::status_name(known).into(),
        None => format!("unknown({status})"),
    }
}

/// An object class's name in the admin's output: the key halves as `key show` lists them
/// (`public`, `private`, `secret`), and `certificate`, `data`.
pub fn class_name(class: u64) -> String {
    match class {
        CKO_DATA => "data".into(),
        CKO_CERTIFICATE => "certificate".into(),
        CKO_PUBLIC_KEY => "public".into(),
        CKO_PRIVATE_KEY => "private".into(),
        CKO_SECRET_KEY => "secret".into(),
        other => format!("unknown({other})"),
    }
}

/// `active|inactive|compromised|expired` → the status code.
pub fn parse_status(text: &str) -> AdminResult<i32> {
    match text.to_ascii_lowercase().as_str() {
        "active" => Ok(ACTIVE),
        "inactive" => Ok(INACTIVE),
        "compromised" => Ok(COMPROMISED),
        "expired" => Ok(EXPIRED),
        _ => Err(Failure::usage(format!(
            "unknown status {text:?}: use active, inactive, compromised or expired"
        ))),
    }
}

pub fn mode_name(mode: i32) -> String {
    match mode {
        1 => "local".into(),
        2 => "provider-root-key".into(),
        3 => "remote".into(),
        4 => "public-key-only".into(),
        other => format!("unknown({other})"),
    }
}

/// The algorithms `key generate --algorithm` makes: the rows of the key-algorithm table with a
/// generation mechanism and one size.
pub fn generatable() -> impl Iterator<Item = &'static KeyAlgorithm> {
    key_algorithm::ALGORITHMS
        .iter()
        .copied()
        .filter(|a| a.generation.is_some() && a.bits.is_some())
}

/// `--algorithm` of `key generate`: a row's name.
pub fn parse_gen_algorithm(text: &str) -> Result<&'static KeyAlgorithm, String> {
    key_algorithm::by_name(text)
        .filter(|a| generatable().any(|g| std::ptr::eq(g, *a)))
        .ok_or_else(|| {
            let names: Vec<&str> = generatable().map(|a| a.name).collect();
            format!("unknown algorithm {text:?}; one of {}", names.join(", "))
        })
}

/// `30d`, `12h`, `45m`, `90s`, `2w`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?}: give a unit (s, m, h, d, w), e.g. 30d"))?;
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 30d or 12h"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (s, m, h, d, w)")),
    };
    n.checked_mul(seconds)
        .map(Duration::seconds)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// `never` → `None`; RFC 3339 → that instant; `YYYY-MM-DD` → the end of that day, UTC (the
/// start of the next), as `CKA_END_DATE` means it.
pub fn parse_expiration(text: &str) -> Result<Option<DateTime<Utc>>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("never") || text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return day
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|at| Some(at.and_utc()))
            .ok_or_else(|| format!("{text:?} is out of range"));
    }
    Err(format!(
        "{text:?} is not a date: use RFC 3339 (2030-12-31T23:59:59Z), YYYY-MM-DD or never"
    ))
}

/// One key row as the admin sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyInfo {
    pub key_id: String,
    pub label: String,
    pub ck_id: String,
    pub token: String,
    pub token_id: Uuid,
    /// `asym` or `sym`.
    pub table: &'static str,
    /// The effective status (Expired when the expiration passed).
    pub status: i32,
    pub stored_status: i32,
    pub mode: i32,
    pub algorithm: String,
    pub expiration: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub rotated_from: Option<String>,
    pub rotated_to: Option<String>,
    /// `public`, `private`, `secret`: the objects the row shows.
    pub objects: Vec<String>,
}

fn text_of(metadata: &Value, name: &str) -> Option<String> {
    metadata
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn sym_algorithm(metadata: &Value) -> String {
    let secret = metadata.get("secret");
    let key_type = secret
        .and_then(|s| s.get("key_type"))
        .and_then(Value::as_u64)
        .unwrap_or(CKK_GENERIC_SECRET);
    let len = secret
        .and_then(|s| s.get("value_len"))
        .and_then(Value::as_u64);
    crate::core::keystore::algorithm_slug(key_algorithm::of_secret(key_type, len)).into()
}

impl KeyInfo {
    fn from_asym(row: &AsymKeyRow, token: &str, now: DateTime<Utc>) -> KeyInfo {
        KeyInfo {
            key_id: row.key_id.clone(),
            label: text_of(&row.metadata, "label").unwrap_or_default(),
            ck_id: text_of(&row.metadata, "id").unwrap_or_default(),
            token: token.to_string(),
            token_id: row.provider_config_id,
            table: "asym",
            status: effective_status(row.key_status, row.expiration, now).code(),
            stored_status: row.key_status.code(),
            mode: row.key_mode,
            algorithm: key_algorithm::by_code(row.key_algorithm).map_or_else(
                || format!("unknown({})", row.key_algorithm),
                |a| a.name.to_string(),
            ),
            expiration: row.expiration,
            created_at: row.created_at,
            updated_at: row.updated_at,
            rotated_from: text_of(&row.metadata, "rotated_from"),
            rotated_to: text_of(&row.metadata, "rotated_to"),
            objects: ["public", "private"]
                .into_iter()
                .filter(|h| row.metadata.get(*h).is_some())
                .map(str::to_string)
                .collect(),
        }
    }

    fn from_sym(row: &SymKeyRow, token: &str, now: DateTime<Utc>) -> KeyInfo {
        KeyInfo {
            key_id: row.key_id.clone(),
            label: text_of(&row.metadata, "label").unwrap_or_default(),
            ck_id: text_of(&row.metadata, "id").unwrap_or_default(),
            token: token.to_string(),
            token_id: row.provider_config_id,
            table: "sym",
            status: effective_status(row.key_status, row.expiration, now).code(),
            stored_status: row.key_status.code(),
            mode: row.key_mode,
            algorithm: sym_algorithm(&row.metadata),
            expiration: row.expiration,
            created_at: row.created_at,
            updated_at: row.updated_at,
            rotated_from: text_of(&row.metadata, "rotated_from"),
            rotated_to: text_of(&row.metadata, "rotated_to"),
            objects: vec!["secret".into()],
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "key_id": self.key_id,
            "label": self.label,
            "id": self.ck_id,
            "token": self.token,
            "status": status_name(self.status),
            "stored_status": status_name(self.stored_status),
            "mode": mode_name(self.mode),
            "algorithm": self.algorithm,
            "expiration": self.expiration.map(|at| at.to_rfc3339()),
            "created_at": self.created_at.to_rfc3339(),
            "updated_at": self.updated_at.to_rfc3339(),
            "rotated_from": self.rotated_from,
            "rotated_to": self.rotated_to,
            "objects": self.objects,
        })
    }
}

/// `key list` filters.
#[derive(Clone, Debug, Default)]
pub struct KeyQuery {
    pub token: Option<String>,
    pub status: Option<i32>,
    pub algorithm: Option<String>,
    pub expiring_within: Option<Duration>,
}

impl KeyQuery {
    fn matches(&self, key: &KeyInfo, now: DateTime<Utc>) -> bool {
        if self.status.is_some_and(|s| s != key.status) {
            return false;
        }
        if let Some(algorithm) = &self.algorithm {
            if !key.algorithm.eq_ignore_ascii_case(algorithm) {
                return false;
            }
        }
        if let Some(within) = self.expiring_within {
            match key.expiration {
                Some(at) if at > now && at <= now + within => {}
                _ => return false,
            }
        }
        true
    }
}

/// A key's objects in a session: the handles that carry its `key_id`.
fn key_id_template(key_id: &str) -> Vec<Attribute> {
    vec![Attribute::new(
        vendor::CKA_SQLHSM_KEY_ID,
        key_id.as_bytes().to_vec(),
    )]
}

impl Admin {
    fn tokens_in_scope(&self, label: Option<&str>) -> AdminResult<Vec<TokenRow>> {
        match label {
            Some(label) => Ok(vec![self.token(label)?]),
            None => Ok(self.storage.list_tokens()?),
        }
    }

    /// Every key of the tokens in scope, sorted by token then `key_id`.
    pub fn keys(&self, token: Option<&str>) -> AdminResult<Vec<KeyInfo>> {
        let now = Utc::now();
        let mut out = Vec::new();
        for token in self.tokens_in_scope(token)? {
            let filter = KeyFilter {
                provider_config_id: token.id,
                ..KeyFilter::default()
            };
            for row in self.storage.find_asym_keys(&filter)? {
                out.push(KeyInfo::from_asym(&row, &token.provider_name, now));
            }
            for row in self.storage.find_sym_keys(&filter)? {
                out.push(KeyInfo::from_sym(&row, &token.provider_name, now));
            }
        }
        out.sort_by(|a, b| (&a.token, &a.key_id).cmp(&(&b.token, &b.key_id)));
        Ok(out)
    }

    /// The key with this `key_id` (unique across the store) and its token.
    pub fn key(&self, key_id: &str) -> AdminResult<(KeyInfo, TokenRow)> {
        let now = Utc::now();
        for token in self.storage.list_tokens()? {
            let filter = KeyFilter {
                provider_config_id: token.id,
                key_id: Some(key_id.to_string()),
                ..KeyFilter::default()
            };
            if let Some(row) = self.storage.find_asym_keys(&filter)?.into_iter().next() {
                return Ok((KeyInfo::from_asym(&row, &token.provider_name, now), token));
            }
            if let Some(row) = self.storage.find_sym_keys(&filter)?.into_iter().next() {
                return Ok((KeyInfo::from_sym(&row, &token.provider_name, now), token));
            }
        }
        Err(Failure::refused(format!("no key with key_id {key_id:?}")))
    }

    /// [`Admin::key_list_to`] into a string.
    pub fn key_list(&self, query: &KeyQuery) -> AdminResult<String> {
        let mut out = Vec::new();
        self.key_list_to(query, &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// `key list`, written as the rows are read: a store of a million keys is never held in
    /// memory at once. Tokens by name; in each, key pairs then secret keys, oldest first.
    pub fn key_list_to(&self, query: &KeyQuery, out: &mut dyn std::io::Write) -> AdminResult<()> {
        let now = Utc::now();
        let mut listing = Listing::new(
            out,
            self.options.json,
            &[
                "KEY_ID",
                "LABEL",
                "TOKEN",
                "ALGORITHM",
                "STATUS",
                "MODE",
                "EXPIRATION",
            ],
        );
        let mut tokens = self.tokens_in_scope(query.token.as_deref())?;
        tokens.sort_by(|a, b| a.provider_name.cmp(&b.provider_name));
        let mut failure: Option<std::io::Error> = None;
        for token in tokens {
            let filter = KeyFilter {
                provider_config_id: token.id,
                ..KeyFilter::default()
            };
            for table in [KeyTable::Asym, KeyTable::Sym] {
                self.storage.visit_keys(table, &filter, &mut |row| {
                    if failure.is_some() {
                        return;
                    }
                    let k = match &row {
                        KeyRow::Asym(row) => KeyInfo::from_asym(row, &token.provider_name, now),
                        KeyRow::Sym(row) => KeyInfo::from_sym(row, &token.provider_name, now),
                    };
                    if !query.matches(&k, now) {
                        return;
                    }
                    let cells = vec![
                        k.key_id.clone(),
                        or_dash(Some(k.label.clone())),
                        k.token.clone(),
                        k.algorithm.clone(),
                        status_name(k.status),
                        mode_name(k.mode),
                        or_dash(k.expiration.map(|at| at.to_rfc3339())),
                    ];
                    if let Err(e) = listing.push(cells, &k.to_json()) {
                        failure = Some(e);
                    }
                })?;
            }
        }
        let written = match failure {
            Some(e) => Err(e),
            None => listing.finish(),
        };
        written.map_err(|e| Failure::refused(format!("writing the key list: {e}")))
    }

    pub fn key_show(&self, key_id: &str) -> AdminResult<String> {
        let (k, _) = self.key(key_id)?;
        if self.options.json {
            return Ok(output::json(&k.to_json()));
        }
        Ok(output::fields(&[
            ("key_id", k.key_id.clone()),
            ("label", or_dash(Some(k.label.clone()))),
            ("CKA_ID", or_dash(Some(k.ck_id.clone()))),
            ("token", k.token.clone()),
            ("algorithm", k.algorithm.clone()),
            ("status", status_name(k.status)),
            ("stored status", status_name(k.stored_status)),
            ("mode", mode_name(k.mode)),
            (
                "expiration",
                or_dash(k.expiration.map(|at| at.to_rfc3339())),
            ),
            ("objects", k.objects.join(", ")),
            ("rotated from", or_dash(k.rotated_from.clone())),
            ("rotated to", or_dash(k.rotated_to.clone())),
            ("created", k.created_at.to_rfc3339()),
            ("updated", k.updated_at.to_rfc3339()),
        ]))
    }

    /// Reads one attribute of an object (two-call convention: length, then value).
    fn attribute(
        &self,
        session: CK_SESSION_HANDLE,
        handle: CK_OBJECT_HANDLE,
        kind: CK_ATTRIBUTE_TYPE,
    ) -> AdminResult<Vec<u8>> {
        let mut query = [AttributeRequest {
            kind,
            out: OutBuf::query(),
            unavailable: false,
        }];
        self.module
            .get_attribute_value(session, handle, &mut query)?;
        let mut buffer = vec![0u8; query[0].out.len()];
        let mut request = [AttributeRequest {
            kind,
            out: OutBuf::buffer(&mut buffer),
            unavailable: false,
        }];
        self.module
            .get_attribute_value(session, handle, &mut request)?;
        let len = request[0].out.len();
        buffer.truncate(len);
        Ok(buffer)
    }

    fn key_id_of(
        &self,
        session: CK_SESSION_HANDLE,
        handle: CK_OBJECT_HANDLE,
    ) -> AdminResult<String> {
        let bytes = self.attribute(session, handle, vendor::CKA_SQLHSM_KEY_ID)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn created(&self, token: &TokenRow, key_id: &str, verb: &str) -> AdminResult<String> {
        if self.options.json {
            let (k, _) = self.key(key_id)?;
            return Ok(output::json(&k.to_json()));
        }
        Ok(format!(
            "{verb} key {key_id} on token {:?}\n",
            token.provider_name
        ))
    }

    /// Generates a key. Without `id` it gets a fresh random `CKA_ID` ([`default_ck_id`]), so
    /// `pkcs11-tool --id <key_id>` and `pkcs11:id=` URIs select it.
    pub fn key_generate(
        &self,
        token: &str,
        algorithm: &'static KeyAlgorithm,
        label: Option<&str>,
        id: Option<&[u8]>,
    ) -> AdminResult<String> {
        let token = self.token(token)?;
        let session = self.user_session(&token)?;
        let identity = identity(label, id);
        let generation = algorithm
            .generation
            .ok_or_else(|| Failure::usage(format!("{} cannot be generated", algorithm.name)))?;
        let bits = algorithm.bits.unwrap_or_default();
        // RSA generation takes seconds (RSA-4096 tens of them on a slow machine).
        let _spinner = match algorithm.family {
            Family::Rsa => Progress::spinner(&format!(
                "generating an RSA-{bits} key on token {:?}",
                token.provider_name
            )),
            _ => Progress::none(),
        };
        let mut private = identity.clone();
        private.push(Attribute::from_bool(CKA_PRIVATE, true));
        private.push(Attribute::from_bool(CKA_SENSITIVE, true));
        let handle = match algorithm.public {
            PublicShape::None => {
                let mut template = private;
                template.push(Attribute::from_ulong(
                    CKA_VALUE_LEN,
                    CK_ULONG::from(bits / 8),
                ));
                self.module
                    .generate_key(session.handle, &Mechanism::new(generation), &template)?
            }
            shape @ (PublicShape::Modulus
            | PublicShape::EcPoint
            | PublicShape::EdwardsPoint
            | PublicShape::Value) => {
                let mut public = identity;
                match (shape, algorithm.parameter_set) {
                    (PublicShape::Modulus, _) => public.push(Attribute::from_ulong(
                        CKA_MODULUS_BITS,
                        CK_ULONG::from(bits),
                    )),
                    // A post-quantum pair by its parameter set (PKCS#11 3.2: in the public
                    // template).
                    (PublicShape::Value, Some(set)) => {
                        public.push(Attribute::from_ulong(CKA_PARAMETER_SET, set))
                    }
                    // A hybrid KEM pair by its mechanism alone (one per construction).
                    (PublicShape::Value, None) => {}
                    // Every curve by its OID (an Edwards template without one means Ed25519).
                    _ => public.push(Attribute::new(CKA_EC_PARAMS, algorithm.params_der.to_vec())),
                }
                let (_, private) = self.module.generate_key_pair(
                    session.handle,
                    &Mechanism::new(generation),
                    &public,
                    &private,
                )?;
                private
            }
        };
        let key_id = self.key_id_of(session.handle, handle)?;
        drop(session);
        self.created(&token, &key_id, "generated")
    }

    /// Imports key files (see [`Admin::import_one`]) in one user session, with a progress bar
    /// on a terminal. `label` and `id` name one key, so they need exactly one file. Stops at
    /// the first file that fails, saying which ones were imported before it.
    pub fn key_import(
        &self,
        token: &str,
        files: &[std::path::PathBuf],
        aes: bool,
        label: Option<&str>,
        id: Option<&[u8]>,
    ) -> AdminResult<String> {
        if files.len() != 1 && (label.is_some() || id.is_some()) {
            return Err(Failure::usage(
                "--label and --id name one key: give them with one file only",
            ));
        }
        let token = self.token(token)?;
        let session = self.user_session(&token)?;
        let progress = Progress::bar(files.len() as u64, "importing");
        let mut key_ids = Vec::new();
        for file in files {
            progress.message(&file.display().to_string());
            let key_id = self
                .import_one(&session, file, aes, label, id)
                .map_err(|f| {
                    let f = f.about(file.display());
                    match key_ids.len() {
                        0 => f,
                        n => Failure {
                            message: format!("{} ({n} file(s) before it were imported)", f.message),
                            ..f
                        },
                    }
                })?;
            key_ids.push((file, key_id));
            progress.inc();
        }
        drop(progress);
        drop(session);
        if self.options.json {
            let mut shown = Vec::new();
            for (_, key_id) in &key_ids {
                shown.push(self.key(key_id)?.0.to_json());
            }
            return Ok(output::json(&match shown.len() {
                1 => shown.remove(0),
                _ => Value::Array(shown),
            }));
        }
        let mut text = String::new();
        for (file, key_id) in &key_ids {
            text.push_str(&format!(
                "imported key {key_id} on token {:?}",
                token.provider_name
            ));
            if files.len() > 1 {
                text.push_str(&format!(" from {}", file.display()));
            }
            text.push('\n');
        }
        Ok(text)
    }

    /// Imports one key file: PEM or DER, PKCS#8 private keys (and the traditional PKCS#1 / SEC1
    /// PEM forms), SubjectPublicKeyInfo public keys, or raw AES bytes with `aes`. A private
    /// key becomes a key pair (both objects, one row), as if generated here but not `CKA_LOCAL`.
    /// Without `id` the key gets a random `CKA_ID`, as generated keys do.
    fn import_one(
        &self,
        session: &SessionGuard<'_>,
        file: &std::path::Path,
        aes: bool,
        label: Option<&str>,
        id: Option<&[u8]>,
    ) -> AdminResult<String> {
        let bytes = zeroize::Zeroizing::new(
            std::fs::read(file)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?,
        );
        let parsed = if aes {
            if !matches!(bytes.len(), 16 | 24 | 32) {
                return Err(Failure::usage(format!(
                    "an AES key file holds 16, 24 or 32 raw bytes; {} has {}",
                    file.display(),
                    bytes.len()
                )));
            }
            Parsed::Aes(zeroize::Zeroizing::new(bytes.to_vec()))
        } else {
            super::import::parse_key_file(&bytes)?
        };
        let identity = identity(label, id);
        let handle = match parsed {
            Parsed::Aes(value) => {
                let mut template = identity;
                template.extend([
                    Attribute::from_ulong(CKA_CLASS, CKO_SECRET_KEY),
                    Attribute::from_ulong(CKA_KEY_TYPE, CKK_AES),
                    Attribute::from_bool(CKA_PRIVATE, true),
                    Attribute::from_bool(CKA_SENSITIVE, true),
                    Attribute::new(CKA_VALUE, value.to_vec()),
                ]);
                self.module.create_object(session.handle, &template)?
            }
            Parsed::Public(public) => {
                let (key_type, mut template) = public_template(&public)?;
                template.extend(identity);
                template.push(Attribute::from_ulong(CKA_CLASS, CKO_PUBLIC_KEY));
                template.push(Attribute::from_ulong(CKA_KEY_TYPE, key_type));
                self.module.create_object(session.handle, &template)?
            }
            Parsed::Private(private) => {
                let key_type = key_algorithm::of_private(&private)?.key_type;
                let public_key = private.public_key()?;
                let mut private_template = identity.clone();
                private_template.push(Attribute::from_bool(CKA_PRIVATE, true));
                private_template.push(Attribute::from_bool(CKA_SENSITIVE, true));
                let mut public_attrs: AttrMap =
                    build_key_attrs(CKO_PUBLIC_KEY, key_type, &identity, &[], Origin::Imported)?;
                let mut private_attrs: AttrMap = build_key_attrs(
                    CKO_PRIVATE_KEY,
                    key_type,
                    &private_template,
                    &[],
                    Origin::Imported,
                )?;
                add_public_values(&mut public_attrs, &public_key, CKO_PUBLIC_KEY)?;
                add_public_values(&mut private_attrs, &public_key, CKO_PRIVATE_KEY)?;
                let access = self.module.access(session.handle)?;
                let handles = self.module.store_new_key(
                    session.handle,
                    &access,
                    NewKey::Pair {
                        public: Some(public_attrs),
                        private: Some(private_attrs),
                        public_key: Arc::new(public_key),
                        private_key: Some(Arc::new(private)),
                    },
                )?;
                *handles
                    .last()
                    .ok_or_else(|| Failure::refused("the import made no object"))?
            }
        };
        self.key_id_of(session.handle, handle)
    }

    /// `key export-public`: the PEM, or with `--json` the key's identity and the PEM as a field.
    pub fn key_export_public_output(&self, key_id: &str) -> AdminResult<String> {
        let pem = self.key_export_public(key_id)?;
        if !self.options.json {
            return Ok(pem);
        }
        let (key, _) = self.key(key_id)?;
        Ok(output::json(&json!({
            "key_id": key.key_id,
            "label": key.label,
            "id": key.ck_id,
            "token": key.token,
            "algorithm": key.algorithm,
            "format": "SubjectPublicKeyInfo",
            "pem": pem,
        })))
    }

    /// The public key as SubjectPublicKeyInfo PEM, from the row's `public_key_ctx`.
    pub fn key_export_public(&self, key_id: &str) -> AdminResult<String> {
        let (info, token) = self.key(key_id)?;
        if info.table != "asym" {
            return Err(Failure::refused(format!(
                "{key_id} is a secret key: it has no public half"
            )));
        }
        let filter = KeyFilter {
            provider_config_id: token.id,
            key_id: Some(key_id.to_string()),
            ..KeyFilter::default()
        };
        let row = self
            .storage
            .find_asym_keys(&filter)?
            .into_iter()
            .next()
            .ok_or_else(|| Failure::refused(format!("no key with key_id {key_id:?}")))?;
        let pem = row
            .public_key_ctx
            .as_ref()
            .and_then(|ctx| ctx.get("pem"))
            .and_then(Value::as_str)
            .ok_or_else(|| Failure::refused(format!("{key_id} has no stored public key")))?;
        Ok(PublicKey::from_spki_pem(pem)?.to_spki_pem()?)
    }

    /// Handles of a key's objects in a user session, private or secret half last.
    fn key_handles(
        &self,
        session: CK_SESSION_HANDLE,
        key_id: &str,
    ) -> AdminResult<Vec<CK_OBJECT_HANDLE>> {
        let access = self.module.access(session)?;
        let handles = self.module.find(&access, &key_id_template(key_id))?;
        if handles.is_empty() {
            return Err(Failure::refused(format!("no key with key_id {key_id:?}")));
        }
        let mut with_class = Vec::new();
        for handle in handles {
            let class = self.attribute(session, handle, CKA_CLASS)?;
            let public = class == CKO_PUBLIC_KEY.to_ne_bytes();
            with_class.push((!public, handle));
        }
        with_class.sort();
        Ok(with_class.into_iter().map(|(_, h)| h).collect())
    }

    /// Rotates a key; `label` / `id` name the successor (default: the key's own, which the key
    /// then gives up for `<name>@<key_id>`).
    pub fn key_rotate(
        &self,
        key_id: &str,
        label: Option<String>,
        id: Option<Vec<u8>>,
    ) -> AdminResult<String> {
        let (before, token) = self.key(key_id)?;
        if let Some(successor) = before.rotated_to.as_deref().filter(|s| !s.is_empty()) {
            return Err(Failure::refused(format!(
                "{key_id} was already rotated to {successor}: a key is replaced once; rotate {successor} instead"
            )));
        }
        let session = self.user_session(&token)?;
        let handles = self.key_handles(session.handle, key_id)?;
        let handle = *handles
            .last()
            .ok_or_else(|| Failure::refused(format!("no key with key_id {key_id:?}")))?;
        let options = crate::core::rotation::RotateOptions {
            label: label.map(String::into_bytes),
            id,
        };
        let successor = self.module.rotate_key(session.handle, handle, &options)?;
        let last = *successor
            .last()
            .ok_or_else(|| Failure::refused("the rotation made no key"))?;
        let new_key_id = self.key_id_of(session.handle, last)?;
        drop(session);
        let (old, _) = self.key(key_id)?;
        if self.options.json {
            let (new, _) = self.key(&new_key_id)?;
            return Ok(output::json(&json!({
                "old": old.to_json(),
                "new": new.to_json(),
            })));
        }
        let mut renamed = String::new();
        if old.label != before.label {
            renamed.push_str(&format!(", labelled {:?}", old.label));
        }
        if old.ck_id != before.ck_id {
            renamed.push_str(&format!(", CKA_ID {}", old.ck_id));
        }
        Ok(format!(
            "rotated {key_id} -> {new_key_id} ({key_id} is now {}{renamed})\n",
            status_name(old.status)
        ))
    }

    /// Verifies the PIN and changes status and/or expiration; the history records the admin.
    fn change_state(
        &self,
        key_id: &str,
        status: Option<i32>,
        expiration: Option<Option<DateTime<Utc>>>,
        as_so: bool,
    ) -> AdminResult<KeyInfo> {
        let (before, token) = self.key(key_id)?;
        let owner = if as_so { PinOwner::So } else { PinOwner::User };
        let pin = self.options.pins.pin(owner, &token.provider_name)?;
        self.module
            .verify_pin(token.id, owner, pin.as_bytes())
            .map_err(|e| self.pin_failure(owner, &token.provider_name, e))?;
        self.module
            .set_key_state_by_id(token.id, key_id, status, expiration, as_so, &self.actor)
            .map_err(|e| match e.rv() {
                crate::error::Rv::ATTRIBUTE_VALUE_INVALID => {
                    Failure::refused(refusal(key_id, before.status, status, as_so))
                }
                _ => Failure::from(e).about(key_id),
            })?;
        Ok(self.key(key_id)?.0)
    }

    /// `expired` is the lifecycle's own transition (Active or Inactive → Expired), the one
    /// `C_SetAttributeValue(CKA_SQLHSM_KEY_STATUS)` makes: the key expires now, whatever its
    /// expiration says; only the SO brings it back (`set-expiration … --so`).
    pub fn key_set_status(&self, key_id: &str, status: i32) -> AdminResult<String> {
        let key = self.change_state(key_id, Some(status), None, false)?;
        if self.options.json {
            return Ok(output::json(&key.to_json()));
        }
        let mut text = format!("{key_id} is {}\n", status_name(key.status));
        if key.status == EXPIRED {
            text.push_str(&format!(
                "only the SO brings it back: sqlhsm key set-expiration {key_id} <DATE|never> --so\n"
            ));
        }
        Ok(text)
    }

    pub fn key_set_expiration(
        &self,
        key_id: &str,
        expiration: Option<DateTime<Utc>>,
        as_so: bool,
    ) -> AdminResult<String> {
        let key = self.change_state(key_id, None, Some(expiration), as_so)?;
        if self.options.json {
            return Ok(output::json(&key.to_json()));
        }
        Ok(format!(
            "{key_id} expires {} (status {})\n",
            expiration.map_or_else(|| "never".to_string(), |at| at.to_rfc3339()),
            status_name(key.status)
        ))
    }

    /// Asks first (`yes` skips the question; without a terminal it must be given).
    pub fn key_destroy(&self, key_id: &str, yes: bool) -> AdminResult<String> {
        let (key, token) = self.key(key_id)?;
        confirm(
            &format!(
                "Destroy key {key_id} ({}{}) on token {:?}? Its material is gone for good.",
                key.algorithm,
                match key.label.is_empty() {
                    true => String::new(),
                    false => format!(", label {:?}", key.label),
                },
                token.provider_name
            ),
            yes,
        )?;
        let session = self.user_session(&token)?;
        for handle in self.key_handles(session.handle, key_id)? {
            self.module.destroy_object(session.handle, handle)?;
        }
        drop(session);
        Ok(format!(
            "destroyed {key_id} on token {:?}\n",
            token.provider_name
        ))
    }

    pub fn key_history(&self, key_id: &str) -> AdminResult<String> {
        let events = self.storage.key_events(key_id)?;
        if events.is_empty() {
            // No history and no key: a typo, most likely.
            self.key(key_id)?;
        }
        if self.options.json {
            return Ok(output::json(&Value::Array(
                events.iter().map(event_json).collect(),
            )));
        }
        let mut table = Table::new(&["AT", "EVENT", "ACTOR", "OLD", "NEW"]);
        for e in &events {
            table.row(vec![
                e.at.to_rfc3339(),
                e.event.clone(),
                e.actor.clone(),
                or_dash(e.old_value.as_ref().map(|v| named(v).to_string())),
                or_dash(e.new_value.as_ref().map(|v| named(v).to_string())),
            ]);
        }
        Ok(table.render())
    }
}

pub fn event_json(e: &KeyEvent) -> Value {
    json!({
        "at": e.at.to_rfc3339(),
        "key_id": e.key_id,
        "event": e.event,
        "actor": e.actor,
        "old": e.old_value.as_ref().map(named),
        "new": e.new_value.as_ref().map(named),
    })
}

/// A history value with its codes named: `"status": 1` → `"status": "active"`, `"class": 3`
/// → `"class": "private"` (the stored event keeps the numbers).
fn named(value: &Value) -> Value {
    let mut value = value.clone();
    if let Some(map) = value.as_object_mut() {
        if let Some(code) = map.get("status").and_then(Value::as_i64) {
            let name = i32::try_from(code).map_or_else(|_| format!("unknown({code})"), status_name);
            map.insert("status".into(), Value::String(name));
        }
        if let Some(code) = map.get("class").and_then(Value::as_u64) {
            map.insert("class".into(), Value::String(class_name(code)));
        }
    }
    value
}

/// What an operator is told when the lifecycle refuses a change of `key_id`, whose status is
/// `status` now.
fn refusal(key_id: &str, status: i32, requested: Option<i32>, as_so: bool) -> String {
    match status {
        COMPROMISED => format!("{key_id} is compromised, which is final: it cannot change status"),
        EXPIRED if !as_so => format!(
            "{key_id} is expired: only the security officer brings it back, with an expiration in the future or none: sqlhsm key set-expiration {key_id} <DATE|never> --so (SO PIN)"
        ),
        EXPIRED => format!(
            "{key_id} is expired: it comes back with an expiration in the future or none (set-expiration … --so), not through set-status"
        ),
        _ => format!(
            "{key_id}: {} is not allowed from {} by the key's lifecycle",
            requested.map_or_else(|| "this change".to_string(), status_name),
            status_name(status)
        ),
    }
}

/// `CKA_TOKEN`, `CKA_LABEL` and `CKA_ID` of a key the admin makes; `CKA_ID` is
/// [`default_ck_id`] when none is given.
fn identity(label: Option<&str>, id: Option<&[u8]>) -> Vec<Attribute> {
    let mut identity = vec![Attribute::from_bool(CKA_TOKEN, true)];
    if let Some(label) = label {
        identity.push(Attribute::new(CKA_LABEL, label.as_bytes().to_vec()));
    }
    let id = id.map_or_else(default_ck_id, <[u8]>::to_vec);
    identity.push(Attribute::new(CKA_ID, id));
    identity
}

/// A fresh `CKA_ID` for a key made without `--id`: 8 random bytes, so that `pkcs11-tool --id`
/// and `pkcs11:id=` URIs can select every key the admin command makes. The module takes the
/// hex of a `CKA_ID` as the `key_id` when it is free, so the `key_id` the command prints is the
/// `--id` to pass; bytes that are all printable would be taken as text instead, so they are
/// drawn again.
pub fn default_ck_id() -> Vec<u8> {
    loop {
        // A v4 UUID's bytes 6 and 8 carry its version and variant; the others are random.
        let uuid = Uuid::new_v4();
        let bytes = uuid.as_bytes();
        let id = [&bytes[..6], &bytes[10..12]].concat();
        if !id.iter().all(|b| b.is_ascii_graphic()) {
            return id;
        }
    }
}

/// A parsed key file.
pub enum Parsed {
    Private(PrivateKey),
    Public(PublicKey),
    Aes(zeroize::Zeroizing<Vec<u8>>),
}

/// The `C_CreateObject` values of a public key.
fn public_template(public: &PublicKey) -> AdminResult<(CK_KEY_TYPE, Vec<Attribute>)> {
    let key_type = key_algorithm::of_public(public)?.key_type;
    Ok(match public.public_values()? {
        PublicValues::Modulus {
            modulus,
            public_exponent,
            ..
        } => (
            key_type,
            vec![
                Attribute::new(CKA_MODULUS, modulus),
                Attribute::new(CKA_PUBLIC_EXPONENT, public_exponent),
            ],
        ),
        PublicValues::Point {
            params_der,
            point_der,
        } => (
            key_type,
            vec![
                Attribute::new(CKA_EC_PARAMS, params_der),
                Attribute::new(CKA_EC_POINT, point_der),
            ],
        ),
        // A post-quantum key by its parameter set; a hybrid KEM key's type names it.
        PublicValues::Encoded { value } => {
            let algorithm = key_algorithm::of_public(public)?;
            let mut values: Vec<Attribute> = algorithm
                .parameter_set
                .map(|set| Attribute::from_ulong(CKA_PARAMETER_SET, set))
                .into_iter()
                .collect();
            values.push(Attribute::new(CKA_VALUE, value));
            (key_type, values)
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d").unwrap(), Duration::days(30));
        assert_eq!(parse_duration("12h").unwrap(), Duration::hours(12));
        assert_eq!(parse_duration("2w").unwrap(), Duration::days(14));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("3y").is_err());
    }

    #[test]
    fn expirations() {
        assert_eq!(parse_expiration("never").unwrap(), None);
        let day = parse_expiration("2030-12-31").unwrap().unwrap();
        assert_eq!(day.to_rfc3339(), "2031-01-01T00:00:00+00:00");
        let at = parse_expiration("2030-06-01T12:00:00+02:00")
            .unwrap()
            .unwrap();
        assert_eq!(at.to_rfc3339(), "2030-06-01T10:00:00+00:00");
        assert!(parse_expiration("tomorrow").is_err());
    }

    #[test]
    fn names() {
        let names: Vec<&str> = generatable().map(|a| a.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "aes-128",
                "aes-128-xts",
                "aes-192",
                "aes-256",
                "aes-256-xts",
                "chacha20",
                "des",
                "des2",
                "des3",
                "ec-brainpoolp256r1",
                "ec-brainpoolp384r1",
                "ec-brainpoolp512r1",
                "ec-p192",
                "ec-p224",
                "ec-p256",
                "ec-p384",
                "ec-p521",
                "ec-secp256k1",
                "ed25519",
                "ed448",
                "ml-dsa-44",
                "ml-dsa-65",
                "ml-dsa-87",
                "ml-kem-1024",
                "ml-kem-512",
                "ml-kem-768",
                "p256-ml-kem-768",
                "p384-ml-kem-1024",
                "rsa-2048",
                "rsa-3072",
                "rsa-4096",
                "slh-dsa-sha2-128f",
                "slh-dsa-sha2-128s",
                "slh-dsa-sha2-192f",
                "slh-dsa-sha2-192s",
                "slh-dsa-sha2-256f",
                "slh-dsa-sha2-256s",
                "slh-dsa-shake-128f",
                "slh-dsa-shake-128s",
                "slh-dsa-shake-192f",
                "slh-dsa-shake-192s",
                "slh-dsa-shake-256f",
                "slh-dsa-shake-256s",
                "x25519",
                "x448",
                "xwing"
            ]
        );
        for name in names {
            assert!(parse_gen_algorithm(name).is_ok(), "{name}");
        }
        assert!(parse_gen_algorithm("dsa").is_err());
        assert!(parse_gen_algorithm("rsa-other").is_err());
        assert!(parse_gen_algorithm("generic-secret").is_err());
        for status in ["active", "inactive", "compromised", "expired"] {
            assert_eq!(status_name(parse_status(status).unwrap()), status);
        }
        assert_eq!(
            parse_status("gone").unwrap_err().code,
            super::super::EXIT_USAGE
        );
        for a in key_algorithm::ALGORITHMS {
            assert!(!a.name.is_empty());
        }
    }

    #[test]
    fn expiring_within_ignores_passed_and_far_expirations() {
        let now = Utc::now();
        let key = |expiration| KeyInfo {
            key_id: "k".into(),
            label: String::new(),
            ck_id: String::new(),
            token: "t".into(),
            token_id: Uuid::nil(),
            table: "sym",
            status: ACTIVE,
            stored_status: ACTIVE,
            mode: 1,
            algorithm: "aes-256".into(),
            expiration,
            created_at: now,
            updated_at: now,
            rotated_from: None,
            rotated_to: None,
            objects: vec![],
        };
        let query = KeyQuery {
            expiring_within: Some(Duration::days(30)),
            ..KeyQuery::default()
        };
        assert!(query.matches(&key(Some(now + Duration::days(10))), now));
        assert!(!query.matches(&key(Some(now + Duration::days(40))), now));
        assert!(!query.matches(&key(Some(now - Duration::days(1))), now));
        assert!(!query.matches(&key(None), now));
    }
}

//! `sqlhsm db migrate|status|check`. Opening the store applies pending migrations (in one
//! transaction, refusing a schema newer than this build), so `migrate` is an open that reports —
//! and creates the store when it does not exist yet, which no other `db` command does.
//! `check` proves the store usable: the database role holds every privilege the module needs
//! (each missing one is named), each sealed key opens under its token's key, each private key
//! matches its stored public key, and each row belongs to a usable token. Sealed material can
//! only be opened with the user PIN: without one, `check` says per token what it could not
//! verify and fails, unless `--structure-only` says that the structural checks are enough.

use chrono::Utc;
use serde_json::{json, Value};

use super::keys::{status_name, ACTIVE, COMPROMISED, EXPIRED, INACTIVE};
use super::output::{self, Table};
use super::progress::Progress;
use super::{Admin, AdminResult};
use crate::core::keystore;
use crate::core::object::{Half, ObjectId};
use crate::core::token::{PinOwner, TokenKey, TokenRecord};
use crate::crypto::keys::PublicKey;
use crate::mechanism::KeyMaterial;
use crate::storage::migrations::{latest_version, Dialect};
use crate::storage::{AsymKeyRow, KeyFilter, SymKeyRow, TokenRow};

/// `sqlite` or `postgres`, from the URL.
pub fn backend_of(url: &str) -> (&'static str, Dialect) {
    if url.starts_with("sqlite:") {
        ("sqlite", Dialect::Sqlite)
    } else {
        ("postgres", Dialect::Postgres)
    }
}

/// What `db check` found about one token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenCheck {
    pub token: String,
    pub keys: usize,
    /// Keys whose sealed material was opened and matched.
    pub verified: usize,
    /// Keys whose sealed material was not opened (no PIN, or `--structure-only`).
    pub unverified: usize,
    /// Why the sealed material was not opened, if so.
    pub skipped: Option<String>,
    pub problems: Vec<String>,
}

impl TokenCheck {
    fn to_json(&self) -> Value {
        json!({
            "token": self.token,
            "keys": self.keys,
            "verified": self.verified,
            "unverified": self.unverified,
            "skipped": self.skipped,
            "problems": self.problems,
        })
    }
}

impl Admin {
    /// The schema version: the store opened, so pending migrations ran and a newer schema
    /// would have been refused; it is this build's latest.
    pub fn schema_version(&self) -> i64 {
        latest_version(backend_of(&self.module.config.database.url).1)
    }

    /// Creates the store when it does not exist yet (a SQLite file) and reports the version.
    /// Keys rotated by versions that left the predecessor its successor's label or `CKA_ID` get
    /// the names rotation now gives (`<label>@<key_id>`), with their certificates; each is
    /// reported, and a second run finds nothing left to rename.
    pub fn db_migrate(&self) -> AdminResult<String> {
        self.storage.create()?;
        let version = self.schema_version();
        let renamed = self.module.rename_rotated_predecessors()?;
        if self.options.json {
            let renamed: Vec<Value> = renamed
                .iter()
                .map(|r| {
                    let (mut old, mut new) = (json!({}), json!({}));
                    r.renamed.record(&mut old, &mut new);
                    json!({
                        "key_id": r.key_id,
                        "successor": r.successor,
                        "old": old,
                        "new": new,
                        "certificates": r.certificates,
                    })
                })
                .collect();
            return Ok(output::json(
                &json!({ "schema_version": version, "renamed": renamed }),
            ));
        }
        let mut out = format!("schema is at version {version}\n");
        for r in &renamed {
            let (mut old, mut new) = (json!({}), json!({}));
            r.renamed.record(&mut old, &mut new);
            out.push_str(&format!(
                "renamed {} (rotated to {}): {old} -> {new}, {} certificate(s)\n",
                r.key_id, r.successor, r.certificates
            ));
        }
        Ok(out)
    }

    pub fn db_status(&self) -> AdminResult<String> {
        let database = &self.module.config.database;
        let (backend, _) = backend_of(&database.url);
        let tokens = self.storage.list_tokens()?;
        let keys = self.keys(None)?;
        let count = |status: i32| keys.iter().filter(|k| k.status == status).count();
        let events: usize = keys
            .iter()
            .map(|k| self.storage.key_events(&k.key_id).map(|e| e.len()))
            .sum::<Result<usize, _>>()?;
        if self.options.json {
            return Ok(output::json(&json!({
                "backend": backend,
                "url": database.redacted_url(),
                "schema_version": self.schema_version(),
                "tokens": tokens.len(),
                "keys": keys.len(),
                "asym_keys": keys.iter().filter(|k| k.table == "asym").count(),
                "sym_keys": keys.iter().filter(|k| k.table == "sym").count(),
                "by_status": {
                    "active": count(ACTIVE),
                    "inactive": count(INACTIVE),
                    "compromised": count(COMPROMISED),
                    "expired": count(EXPIRED),
                },
                "events_of_existing_keys": events,
            })));
        }
        let by_status = [ACTIVE, INACTIVE, COMPROMISED, EXPIRED]
            .iter()
            .map(|s| format!("{} {}", count(*s), status_name(*s)))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(output::fields(&[
            ("backend", backend.to_string()),
            ("url", database.redacted_url()),
            ("schema version", self.schema_version().to_string()),
            ("tokens", tokens.len().to_string()),
            (
                "keys",
                format!(
                    "{} ({} asymmetric, {} secret)",
                    keys.len(),
                    keys.iter().filter(|k| k.table == "asym").count(),
                    keys.iter().filter(|k| k.table == "sym").count()
                ),
            ),
            ("by status", by_status),
            ("history events", events.to_string()),
        ]))
    }

    /// The token key, when a user PIN is configured; `Err(reason)` when it is not usable.
    fn check_token_key(
        &self,
        row: &TokenRow,
        structure_only: bool,
        check: &mut TokenCheck,
    ) -> AdminResult<Option<TokenKey>> {
        if structure_only {
            check.skipped = Some("--structure-only: sealed key material not opened".into());
            return Ok(None);
        }
        let Some(pin) = self.options.pins.configured(PinOwner::User)? else {
            check.skipped = Some(
                "no user PIN given (SQLHSM_PIN or --pin-file): sealed key material not opened"
                    .into(),
            );
            return Ok(None);
        };
        match self
            .module
            .verify_pin(row.id, PinOwner::User, pin.as_bytes())
        {
            Ok(key) => Ok(Some(key)),
            Err(e) => {
                check.problems.push(format!(
                    "token unusable with the given user PIN: {}",
                    self.pin_failure(PinOwner::User, &row.provider_name, e)
                ));
                Ok(None)
            }
        }
    }

    fn check_asym(
        &self,
        row: &AsymKeyRow,
        record: &TokenRecord,
        token_key: Option<&TokenKey>,
        check: &mut TokenCheck,
    ) {
        let key_id = &row.key_id;
        let public = row
            .public_key_ctx
            .as_ref()
            .and_then(|ctx| ctx.get("pem"))
            .and_then(Value::as_str)
            .map(PublicKey::from_spki_pem);
        let public_der = match public {
            Some(Ok(public)) => match public.to_spki_der() {
                Ok(der) => Some(der),
                Err(e) => {
                    check.problems.push(format!("{key_id}: public key: {e}"));
                    None
                }
            },
            Some(Err(e)) => {
                check
                    .problems
                    .push(format!("{key_id}: public_key_ctx does not parse: {e}"));
                None
            }
            None => {
                check
                    .problems
                    .push(format!("{key_id}: no public key in public_key_ctx"));
                None
            }
        };
        if crate::key_algorithm::by_code(row.key_algorithm).is_none() {
            check.problems.push(format!(
                "{key_id}: unknown key_algorithm {}",
                row.key_algorithm
            ));
        }
        let Some(ctx) = &row.private_key_ctx else {
            return; // a lone public key
        };
        match keystore::remote_ref(ctx) {
            Ok(Some(reference)) => {
                let class = cryptoki::object::ObjectClass::PRIVATE_KEY;
                return self.check_remote(
                    row.provider_config_id,
                    record,
                    key_id,
                    &reference,
                    class,
                    check,
                );
            }
            Ok(None) => {}
            Err(e) => {
                check.problems.push(format!("{key_id}: {e}"));
                return;
            }
        }
        let sealed_under = ctx.get("keyId").and_then(Value::as_str);
        if sealed_under != Some(record.token_key_id.as_str()) {
            check.problems.push(format!(
                "{key_id}: private key sealed under token key {sealed_under:?}, not the token's {:?}",
                record.token_key_id
            ));
            return;
        }
        let Some(token_key) = token_key else {
            check.unverified += 1;
            return;
        };
        let objects = match keystore::objects_from_asym_row(row) {
            Ok(objects) => objects,
            Err(e) => {
                check
                    .problems
                    .push(format!("{key_id}: unreadable row: {e}"));
                return;
            }
        };
        let Some(private) = objects
            .iter()
            .find(|o| {
                matches!(
                    o.id,
                    ObjectId::Token {
                        half: Half::Private,
                        ..
                    }
                )
            })
            .or_else(|| objects.iter().find(|o| o.sealed.is_some()))
        else {
            check
                .problems
                .push(format!("{key_id}: private_key_ctx but no private object"));
            return;
        };
        let private = match private.sealed.is_some() {
            true => keystore::unseal(private, token_key),
            false => Err(crate::error::Rv::KEY_HANDLE_INVALID.into()),
        };
        match private {
            Ok(KeyMaterial::Private(private)) => {
                let derived = private.public_key().and_then(|p| p.to_spki_der());
                match (derived, public_der) {
                    (Ok(derived), Some(stored)) if derived == stored => check.verified += 1,
                    (Ok(_), Some(_)) => check.problems.push(format!(
                        "{key_id}: the private key does not match the stored public key"
                    )),
                    (Err(e), _) => check
                        .problems
                        .push(format!("{key_id}: cannot derive the public key: {e}")),
                    (Ok(_), None) => {}
                }
            }
            Ok(_) => check
                .problems
                .push(format!("{key_id}: private_key_ctx holds no private key")),
            Err(e) => check.problems.push(format!(
                "{key_id}: the private key does not unwrap under the token key: {e}"
            )),
        }
    }

    /// A REMOTE key: its object is in the remote module, sensitive and not extractable.
    fn check_remote(
        &self,
        token: uuid::Uuid,
        record: &TokenRecord,
        key_id: &str,
        reference: &crate::provider::RemoteRef,
        class: cryptoki::object::ObjectClass,
        check: &mut TokenCheck,
    ) {
        let Some(spec) = record.provider.pkcs11() else {
            check.problems.push(format!(
                "{key_id}: a REMOTE key on a token without a pkcs11 provider"
            ));
            return;
        };
        let verdict = self
            .module
            .providers
            .remote(token, &check.token, spec)
            .and_then(|remote| crate::provider::keys::verify_protected(&remote, reference, class));
        match verdict {
            Ok(true) => check.verified += 1,
            Ok(false) => check.problems.push(format!(
                "{key_id}: the remote object {} is extractable or not sensitive",
                reference.id
            )),
            Err(e) => check.problems.push(format!(
                "{key_id}: the remote object {} cannot be checked: {e}",
                reference.id
            )),
        }
    }

    fn check_sym(
        &self,
        row: &SymKeyRow,
        record: &TokenRecord,
        token_key: Option<&TokenKey>,
        check: &mut TokenCheck,
    ) {
        let key_id = &row.key_id;
        if row.key_value.is_none() {
            if let Ok(Some(reference)) = keystore::remote_ref(&row.metadata) {
                let class = cryptoki::object::ObjectClass::SECRET_KEY;
                return self.check_remote(
                    row.provider_config_id,
                    record,
                    key_id,
                    &reference,
                    class,
                    check,
                );
            }
            check.problems.push(format!("{key_id}: no key_value"));
            return;
        }
        let Some(token_key) = token_key else {
            check.unverified += 1;
            return;
        };
        match keystore::object_from_sym_row(row) {
            Ok(Some(object)) => match keystore::unseal(&object, token_key) {
                Ok(KeyMaterial::Secret(_)) => check.verified += 1,
                Ok(_) => check
                    .problems
                    .push(format!("{key_id}: key_value holds no secret key")),
                Err(e) => check.problems.push(format!(
                    "{key_id}: the secret key does not unwrap under the token key: {e}"
                )),
            },
            Ok(None) => check
                .problems
                .push(format!("{key_id}: the row shows no secret key object")),
            Err(e) => check
                .problems
                .push(format!("{key_id}: unreadable row: {e}")),
        }
    }

    /// Checks every token's keys (with a progress bar on a terminal); the report per token.
    pub fn db_check_tokens(&self, structure_only: bool) -> AdminResult<Vec<TokenCheck>> {
        let mut checks = Vec::new();
        let tokens = self.storage.list_tokens()?;
        let mut keys = Vec::new();
        for row in &tokens {
            let filter = KeyFilter {
                provider_config_id: row.id,
                ..KeyFilter::default()
            };
            keys.push((
                self.storage.find_asym_keys(&filter)?,
                self.storage.find_sym_keys(&filter)?,
            ));
        }
        let total: usize = keys.iter().map(|(a, s)| a.len() + s.len()).sum();
        let progress = Progress::bar(total as u64, "checking keys");
        for (row, (asym, sym)) in tokens.into_iter().zip(keys) {
            progress.message(&row.provider_name);
            let mut check = TokenCheck {
                token: row.provider_name.clone(),
                ..TokenCheck::default()
            };
            check.keys = asym.len() + sym.len();
            let record = match TokenRecord::from_json(&row.config) {
                Ok(record) => record,
                Err(e) => {
                    // Its keys belong to no usable token: orphans in all but name.
                    check.problems.push(format!(
                        "not a usable token record ({e}); its {} key row(s) are orphaned",
                        check.keys
                    ));
                    checks.push(check);
                    continue;
                }
            };
            let token_key = self.check_token_key(&row, structure_only, &mut check)?;
            for key in &asym {
                self.check_asym(key, &record, token_key.as_ref(), &mut check);
                progress.inc();
            }
            for key in &sym {
                self.check_sym(key, &record, token_key.as_ref(), &mut check);
                progress.inc();
            }
            for key in asym
                .iter()
                .map(|k| (&k.key_id, &k.metadata))
                .chain(sym.iter().map(|k| (&k.key_id, &k.metadata)))
            {
                self.check_links(key.0, key.1, &mut check)?;
            }
            checks.push(check);
        }
        Ok(checks)
    }

    /// A rotation link names a key that exists, or one whose destruction is in the history.
    fn check_links(
        &self,
        key_id: &str,
        metadata: &Value,
        check: &mut TokenCheck,
    ) -> AdminResult<()> {
        for link in ["rotated_from", "rotated_to"] {
            let Some(other) = metadata.get(link).and_then(Value::as_str) else {
                continue;
            };
            if other.is_empty() || self.storage.key_id_exists(other)? {
                continue;
            }
            let destroyed = self
                .storage
                .key_events(other)?
                .iter()
                .any(|e| e.event == "destroyed");
            if !destroyed {
                check.problems.push(format!(
                    "{key_id}: {link} names {other}, which does not exist and was never destroyed"
                ));
            }
        }
        Ok(())
    }

    /// `db check`: the report, and whether everything is fine (the command exits 1 if not).
    /// First the store itself: each privilege the module needs that the database role lacks is
    /// a problem, named (`INSERT on key_event`); then every token's keys. Keys whose sealed
    /// material could not be opened (no user PIN given) make the check incomplete, which fails
    /// it unless `structure_only` (`--structure-only`) says that the structure is what was
    /// asked for.
    pub fn db_check(&self, structure_only: bool) -> AdminResult<(String, bool)> {
        let mut store_problems: Vec<String> = self
            .storage
            .missing_privileges()?
            .into_iter()
            .map(|privilege| format!("the database role lacks {privilege}"))
            .collect();
        let checks = match self.db_check_tokens(structure_only) {
            Ok(checks) => checks,
            // Without a privilege the token checks may fail too; the privileges say why.
            Err(failure) if !store_problems.is_empty() => {
                store_problems.push(format!("tokens not checked: {failure}"));
                Vec::new()
            }
            Err(failure) => return Err(failure),
        };
        let problems: usize =
            store_problems.len() + checks.iter().map(|c| c.problems.len()).sum::<usize>();
        let unverified: usize = checks.iter().map(|c| c.unverified).sum();
        // Without a PIN nothing secret was proven; only --structure-only accepts that.
        let complete = unverified == 0 || structure_only;
        let fine = problems == 0 && complete;
        let text = if self.options.json {
            output::json(&json!({
                "ok": fine,
                "complete": unverified == 0,
                "structure_only": structure_only,
                "unverified": unverified,
                "checked_at": Utc::now().to_rfc3339(),
                "store_problems": store_problems,
                "tokens": checks.iter().map(TokenCheck::to_json).collect::<Vec<_>>(),
            }))
        } else {
            let mut table = Table::new(&["TOKEN", "KEYS", "VERIFIED", "NOT VERIFIED", "RESULT"]);
            for c in &checks {
                let result = if !c.problems.is_empty() {
                    format!("{} problem(s)", c.problems.len())
                } else if c.unverified > 0 && structure_only {
                    "structure ok".into()
                } else if c.unverified > 0 {
                    "incomplete".into()
                } else {
                    "ok".into()
                };
                table.row(vec![
                    c.token.clone(),
                    c.keys.to_string(),
                    c.verified.to_string(),
                    c.unverified.to_string(),
                    result,
                ]);
            }
            let mut text = table.render();
            for p in &store_problems {
                text.push_str(&format!("problem: store: {p}\n"));
            }
            for c in &checks {
                for p in &c.problems {
                    text.push_str(&format!("problem: {}: {p}\n", c.token));
                }
            }
            for c in checks.iter().filter(|c| c.unverified > 0) {
                let why = c
                    .skipped
                    .as_deref()
                    .unwrap_or("sealed key material not opened");
                text.push_str(&format!(
                    "not verified: {}: {} key(s): {why}\n",
                    c.token, c.unverified
                ));
            }
            text.push_str(&format!(
                "{} token(s), {} problem(s), {} key(s) not verified\n",
                checks.len(),
                problems,
                unverified
            ));
            if !complete {
                text.push_str(
                    "incomplete: give the user PIN (SQLHSM_PIN or --pin-file) to open the sealed keys, or pass --structure-only if the structural checks are enough\n",
                );
            }
            text
        };
        Ok((text, fine))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::admin::pins::PinSource;
    use crate::admin::Options;
    use crate::config::{Config, DatabaseConfig};
    use crate::crypto::keys::PrivateKey;
    use crate::key_algorithm::EC_P256;
    use crate::storage::NewKeyRow;

    /// An admin on a fresh in-memory store with one token `t` holding one P-256 key; the user
    /// PIN comes from a file (no environment, so tests stay independent).
    fn admin_with_key() -> (Admin, tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user");
        let so = dir.path().join("so");
        std::fs::write(&user, "user-1234").unwrap();
        std::fs::write(&so, "so-123456").unwrap();
        let mut config = Config::default();
        config.security.pin_kdf_log_n = 10;
        config.database = DatabaseConfig::with_url("sqlite::memory:");
        let storage = crate::storage::open(&config.database).unwrap();
        let options = Options {
            db: None,
            json: true,
            pins: PinSource {
                user_file: Some(user),
                so_file: Some(so),
                new_file: None,
            },
        };
        let admin = Admin::with_storage(config, storage, options).unwrap();
        admin.token_init("t", None).unwrap();
        let made: Value =
            serde_json::from_str(&admin.key_generate("t", &EC_P256, Some("k"), None).unwrap())
                .unwrap();
        let key_id = made["key_id"].as_str().unwrap().to_string();
        (admin, dir, key_id)
    }

    #[test]
    fn check_passes_on_a_sound_store() {
        let (admin, _dir, _) = admin_with_key();
        let (report, ok) = admin.db_check(false).unwrap();
        assert!(ok, "{report}");
        let report: Value = serde_json::from_str(&report).unwrap();
        assert_eq!(report["tokens"][0]["verified"], 1);
    }

    #[test]
    fn check_finds_mismatched_halves_and_foreign_sealing() {
        let (admin, _dir, key_id) = admin_with_key();
        let token = admin.token("t").unwrap();
        let record = TokenRecord::from_json(&token.config).unwrap();
        let token_key = admin
            .module
            .verify_pin(token.id, PinOwner::User, b"user-1234")
            .unwrap();
        let filter = KeyFilter {
            provider_config_id: token.id,
            key_id: Some(key_id),
            ..KeyFilter::default()
        };
        let good = admin.storage.find_asym_keys(&filter).unwrap().remove(0);
        let imported =
            |key_id: &str| crate::core::lifecycle::event(key_id, token.id, "imported", None, None);

        // A row whose sealed private key is not the key of its public_key_ctx.
        let mut mismatched = good.clone();
        mismatched.id = uuid::Uuid::new_v4();
        mismatched.key_id = "mismatched".into();
        let other = PrivateKey::generate_ec(EC_P256.params_der).unwrap();
        mismatched.private_key_ctx = Some(
            keystore::seal_private(
                &token_key,
                &record.token_key_id,
                mismatched.id,
                &other.to_pkcs8_der().unwrap(),
            )
            .unwrap(),
        );
        admin
            .storage
            .insert_key(NewKeyRow::Asym(&mismatched), &imported(&mismatched.key_id))
            .unwrap();

        // A row whose sealed key was copied from another row: it fails authentication.
        let mut copied = good.clone();
        copied.id = uuid::Uuid::new_v4();
        copied.key_id = "copied".into();
        admin
            .storage
            .insert_key(NewKeyRow::Asym(&copied), &imported(&copied.key_id))
            .unwrap();

        let (report, ok) = admin.db_check(false).unwrap();
        assert!(!ok, "{report}");
        let report: Value = serde_json::from_str(&report).unwrap();
        let problems: Vec<String> = report["tokens"][0]["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap().to_string())
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems
            .iter()
            .any(|p| p.starts_with("mismatched:") && p.contains("does not match")));
        assert!(problems
            .iter()
            .any(|p| p.starts_with("copied:") && p.contains("does not unwrap")));
        assert_eq!(report["tokens"][0]["verified"], 1);
    }

    #[test]
    fn backends() {
        assert_eq!(backend_of("sqlite:/x.db").0, "sqlite");
        assert_eq!(backend_of("postgres://u@h/db").0, "postgres");
        assert!(matches!(backend_of("sqlite::memory:").1, Dialect::Sqlite));
    }
}

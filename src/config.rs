//! Configuration: a TOML file, then the environment.
//!
//! Where the file comes from, first match wins:
//! 1. the path in `SQLHSM_CONF` (it must exist);
//! 2. `<config dir>/sqlhsm/sqlhsm.toml` (`~/.config/sqlhsm/sqlhsm.toml` on Linux), if present;
//! 3. no file: built-in defaults.
//!
//! Then `SQLHSM_DB` replaces `database.url` and `SQLHSM_LOG` replaces `log.level` (empty values
//! are ignored). Unknown keys are errors, so a misspelt setting is not silently ignored.
//!
//! ```toml
//! [database]
//! url = "sqlite:/path/to/sqlhsm.db"   # or "postgres://user@host:5432/db?sslmode=require"
//! busy_timeout_ms = 5000
//! # PostgreSQL only:
//! pool_size = 8
//! connect_timeout_ms = 5000
//! statement_timeout_ms = 10000
//! password_env = "SQLHSM_DB_PASSWORD"
//!
//! [security]
//! max_pin_failures = 10
//! pin_kdf_log_n = 15
//! min_pin_len = 4
//! max_pin_len = 255
//!
//! [log]
//! level = "warn"
//!
//! [policy]
//! rsa_min_bits = 1024
//! allow_single_des = false   # CKK_DES / CKM_DES_*: insecure, off unless asked for
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// Environment variable naming the configuration file.
pub const ENV_CONF: &str = "SQLHSM_CONF";
/// Environment variable overriding `database.url`.
pub const ENV_DB: &str = "SQLHSM_DB";
/// Environment variable overriding `log.level`.
pub const ENV_LOG: &str = "SQLHSM_LOG";

/// The allowed `pin_kdf_log_n` range: below 2^10 scrypt is too cheap to slow guessing, above
/// 2^20 one login takes seconds and a gigabyte.
pub const PIN_KDF_LOG_N_RANGE: std::ops::RangeInclusive<u8> = 10..=20;
/// The longest busy timeout accepted (ten minutes); longer looks like a unit mistake.
pub const MAX_BUSY_TIMEOUT_MS: u64 = 600_000;
/// The longest connect or statement timeout accepted (ten minutes), for the same reason.
pub const MAX_PG_TIMEOUT_MS: u64 = 600_000;
/// The allowed `pool_size` range: PostgreSQL's default `max_connections` is 100, shared by
/// every process using the database.
pub const POOL_SIZE_RANGE: std::ops::RangeInclusive<u32> = 1..=64;
/// The log levels `log.level` accepts.
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// The whole configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[database]`: where tokens and keys are stored.
    pub database: DatabaseConfig,
    /// `[security]`: PIN policy.
    pub security: SecurityConfig,
    /// `[log]`: diagnostics on stderr.
    pub log: LogConfig,
    /// `[cache]`: how fresh this process's cached objects stay.
    pub cache: CacheConfig,
    /// `[policy]`: which algorithms and key sizes this module accepts.
    pub policy: PolicyConfig,
}

/// The allowed `rsa_min_bits` range: sqlhsm's own limits for RSA moduli.
pub const RSA_MIN_BITS_RANGE: std::ops::RangeInclusive<u32> = 1024..=16384;

/// `[policy]`. Each setting is independent of the others (a new one is one more field).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// The smallest RSA modulus, in bits, that is generated, imported (`C_CreateObject`,
    /// `C_UnwrapKey`, `sqlhsm key import`) or used; smaller ones answer `CKR_KEY_SIZE_RANGE`
    /// and `C_GetMechanismInfo` reports it as the RSA mechanisms' `ulMinKeySize`
    /// (1024..=16384). Default 1024.
    pub rsa_min_bits: u32,
    /// Offer single DES (`CKM_DES_KEY_GEN`, `CKM_DES_ECB`, `CKM_DES_CBC`, `CKM_DES_CBC_PAD`).
    /// Single DES has a 56-bit key and is broken by exhaustive search; it is for reading legacy
    /// data only. Default `false`: the mechanisms are not listed and answer
    /// `CKR_MECHANISM_INVALID`.
    pub allow_single_des: bool,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            rsa_min_bits: 1024,
            allow_single_des: false,
        }
    }
}

/// The allowed `coherence_ms` range.
pub const COHERENCE_MS_RANGE: std::ops::RangeInclusive<u64> = 10..=60_000;

/// The allowed `max_objects` range.
pub const MAX_OBJECTS_RANGE: std::ops::RangeInclusive<usize> = 1..=16_777_216;

/// `[cache]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// The longest time, in milliseconds, before a change made by another process or host (a
    /// key destroyed, its attributes changed) is seen by this process's cached objects
    /// (10..=60000). Default 1000. Checks cost no database round trip on PostgreSQL (its
    /// `LISTEN` thread hears the changes) and one `PRAGMA data_version` on SQLite, at most
    /// twice per interval.
    pub coherence_ms: u64,
    /// How many token objects this process keeps in full (attributes, sealed and unsealed
    /// material; a few KiB each), least recently used evicted first (1..=16777216). Default
    /// 4096. An evicted object keeps its handle and is read again from the store (one query by
    /// primary key) on its next use; every handle handed out costs ~27 bytes besides. Session
    /// objects are not counted and never evicted.
    pub max_objects: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            coherence_ms: 1000,
            max_objects: 4096,
        }
    }
}

/// `[database]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// The store's URL: `sqlite:/path/to/sqlhsm.db`, or
    /// `postgres://user[:password]@host[:port]/db[?sslmode=disable|prefer|require]`
    /// (`postgresql://` too). Default `sqlite:<data dir>/sqlhsm/sqlhsm.db`
    /// (`~/.local/share/sqlhsm/sqlhsm.db` on Linux). Overridden by `SQLHSM_DB`.
    pub url: String,
    /// How long a call waits for another writer's lock before failing with
    /// `CKR_DEVICE_ERROR`, in milliseconds (0..=600000). Default 5000. On PostgreSQL this is the
    /// session's `lock_timeout` and how long a call waits for a free pooled connection.
    pub busy_timeout_ms: u64,
    /// PostgreSQL: connections kept by this process at most (1..=64). Default 8.
    pub pool_size: u32,
    /// PostgreSQL: how long opening one connection may take, in milliseconds (1..=600000).
    /// Default 5000.
    pub connect_timeout_ms: u64,
    /// PostgreSQL: the session's `statement_timeout` in milliseconds (0..=600000; 0 means no
    /// limit). Default 10000.
    pub statement_timeout_ms: u64,
    /// PostgreSQL: the name of an environment variable holding the password, used when the URL
    /// has none. When it is set here the variable must exist. Without it (and without a password
    /// in the URL) the password is looked up in `PGPASSFILE` or `~/.pgpass`. Default none.
    pub password_env: Option<String>,
}

/// `[security]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Consecutive wrong PINs before the PIN locks (`CKF_USER_PIN_LOCKED`, or the SO's lock).
    /// At least 1. Default 10.
    pub max_pin_failures: u32,
    /// scrypt cost for PINs set from now on: N = 2^`pin_kdf_log_n`, allowed 10..=20. Existing
    /// PINs keep the cost they were stored with. Default 15.
    pub pin_kdf_log_n: u8,
    /// Shortest PIN accepted (`ulMinPinLen`), at least 1. Default 4.
    pub min_pin_len: u32,
    /// Longest PIN accepted (`ulMaxPinLen`), at most 255 and not below `min_pin_len`.
    /// Default 255.
    pub max_pin_len: u32,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// One of `error`, `warn`, `info`, `debug`, `trace` (any case). Overridden by `SQLHSM_LOG`.
    /// Default `warn`.
    pub level: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: default_database_url(),
            busy_timeout_ms: 5000,
            pool_size: 8,
            connect_timeout_ms: 5000,
            statement_timeout_ms: 10_000,
            password_env: None,
        }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            max_pin_failures: 10,
            pin_kdf_log_n: 15,
            min_pin_len: 4,
            max_pin_len: 255,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "warn".into(),
        }
    }
}

/// Keeps a PostgreSQL password out of logs.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("busy_timeout_ms", &self.busy_timeout_ms)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("password_env", &self.password_env)
            .finish()
    }
}

impl DatabaseConfig {
    /// The defaults with another URL (tests and tools that only know a URL).
    pub fn with_url(url: impl Into<String>) -> DatabaseConfig {
        DatabaseConfig {
            url: url.into(),
            ..DatabaseConfig::default()
        }
    }

    /// The URL with any password replaced by `***`, for log lines.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// `scheme://user:secret@host/db` → `scheme://user:***@host/db`; anything else unchanged.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// `sqlite:<data dir>/sqlhsm/sqlhsm.db`, falling back to `$HOME/.local/share`, then the current
/// directory.
pub fn default_database_url() -> String {
    let base = dirs::data_dir()
        .or_else(|| dirs::home_dir().map(|home| home.join(".local").join("share")))
        .unwrap_or_else(|| PathBuf::from("."));
    format!("sqlite:{}", base.join("sqlhsm").join("sqlhsm.db").display())
}

/// `<config dir>/sqlhsm/sqlhsm.toml`, where the file is looked for when `SQLHSM_CONF` is unset.
pub fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|dir| dir.join("sqlhsm").join("sqlhsm.toml"))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// Where the values being checked came from, so an error names what the operator wrote: the
/// variable (`SQLHSM_DB`), the command-line option (`--db`) or the file and its key.
#[derive(Clone, Copy, Debug, Default)]
struct Origins<'a> {
    /// The configuration file's path (or `configuration` for text without a file).
    file: Option<&'a str>,
    /// The name `database.url` goes by when it did not come from the file (`SQLHSM_DB`).
    url: Option<&'a str>,
    /// The name `log.level` goes by when it did not come from the file (`SQLHSM_LOG`).
    level: Option<&'a str>,
}

impl Origins<'_> {
    /// `setting` as the operator wrote it: `SQLHSM_DB`, or `/etc/sqlhsm.toml: database.url`,
    /// or just `database.url` for a built-in default.
    fn name(&self, setting: &str) -> String {
        let by_other_name = match setting {
            "database.url" => self.url,
            "log.level" => self.level,
            _ => None,
        };
        match (by_other_name, self.file) {
            (Some(name), _) => name.to_string(),
            (None, Some(file)) => format!("{file}: {setting}"),
            (None, None) => setting.to_string(),
        }
    }
}

impl Config {
    /// Reads the file and environment described in the module documentation.
    ///
    /// Every error is one line naming where the bad value is (the variable, or the file, the
    /// line and the key) and what is wrong with it; the module prints it at `C_Initialize`
    /// and the admin command prints the same words.
    pub fn load() -> Result<Config> {
        let file = match non_empty(std::env::var(ENV_CONF).ok()) {
            Some(path) => Some(read_file(Path::new(&path), Some(ENV_CONF))?),
            None => match default_config_path() {
                Some(path) if path.is_file() => Some(read_file(&path, None)?),
                _ => None,
            },
        };
        Config::resolve_named(
            file.as_ref()
                .map(|(path, text)| (path.as_str(), text.as_str())),
            std::env::var(ENV_DB).ok(),
            std::env::var(ENV_LOG).ok(),
        )
    }

    /// Parses a configuration file's text (no environment applied) and validates it.
    pub fn from_toml_str(text: &str) -> Result<Config> {
        let mut config = parse("configuration", text)?;
        config.validate(&Origins {
            file: Some("configuration"),
            ..Origins::default()
        })?;
        Ok(config)
    }

    /// The pure part of [`Config::load`]: `file` is the TOML text (if any), the other two are the
    /// values of `SQLHSM_DB` and `SQLHSM_LOG` (empty means unset).
    pub fn resolve(
        file: Option<&str>,
        env_db: Option<String>,
        env_log: Option<String>,
    ) -> Result<Config> {
        Config::resolve_named(file.map(|text| ("configuration", text)), env_db, env_log)
    }

    /// Replaces `database.url` with `url`, which came from `origin` (`--db`), and checks it as
    /// the file's and `SQLHSM_DB`'s are checked; errors name `origin`.
    pub fn override_url(&mut self, url: &str, origin: &str) -> Result<()> {
        let mut candidate = self.clone();
        candidate.database.url = url.trim().to_string();
        candidate.validate(&Origins {
            url: Some(origin),
            ..Origins::default()
        })?;
        *self = candidate;
        Ok(())
    }

    /// [`Config::resolve`] with the file's name (`(name, text)`) for error messages.
    fn resolve_named(
        file: Option<(&str, &str)>,
        env_db: Option<String>,
        env_log: Option<String>,
    ) -> Result<Config> {
        let mut config = match file {
            Some((name, text)) => parse(name, text)?,
            None => Config::default(),
        };
        let mut origins = Origins {
            file: file.map(|(name, _)| name),
            ..Origins::default()
        };
        if let Some(url) = non_empty(env_db) {
            config.database.url = url;
            origins.url = Some(ENV_DB);
        }
        if let Some(level) = non_empty(env_log) {
            config.log.level = level;
            origins.level = Some(ENV_LOG);
        }
        config.validate(&origins)?;
        Ok(config)
    }

    /// Checks ranges and normalises `log.level` to lower case. Messages name each setting as
    /// `origins` says it was given.
    fn validate(&mut self, origins: &Origins<'_>) -> Result<()> {
        let bad = |setting: &str, problem: String| {
            Err(Error::Config(format!(
                "{} {problem}",
                origins.name(setting)
            )))
        };
        if !COHERENCE_MS_RANGE.contains(&self.cache.coherence_ms) {
            return bad(
                "cache.coherence_ms",
                format!(
                    "= {} is outside {}..={}",
                    self.cache.coherence_ms,
                    COHERENCE_MS_RANGE.start(),
                    COHERENCE_MS_RANGE.end()
                ),
            );
        }
        if !MAX_OBJECTS_RANGE.contains(&self.cache.max_objects) {
            return bad(
                "cache.max_objects",
                format!(
                    "= {} is outside {}..={}",
                    self.cache.max_objects,
                    MAX_OBJECTS_RANGE.start(),
                    MAX_OBJECTS_RANGE.end()
                ),
            );
        }
        let url = self.database.url.trim();
        if url.is_empty() {
            return bad("database.url", "is empty".into());
        }
        let known_scheme = ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| url.starts_with(scheme));
        if !known_scheme {
            return bad(
                "database.url",
                format!(
                    "{:?} has an unsupported scheme; use sqlite:/path/to/sqlhsm.db or postgres://user@host/db",
                    redact_url(url)
                ),
            );
        }
        let sqlite_path = url
            .strip_prefix("sqlite:")
            .map(|p| p.strip_prefix("//").unwrap_or(p));
        if sqlite_path.is_some_and(str::is_empty) {
            return bad(
                "database.url",
                format!("{:?} names no file; use sqlite:/path/to/sqlhsm.db", url),
            );
        }
        if self.database.busy_timeout_ms > MAX_BUSY_TIMEOUT_MS {
            return bad(
                "database.busy_timeout_ms",
                format!(
                    "= {} is above the maximum {MAX_BUSY_TIMEOUT_MS}",
                    self.database.busy_timeout_ms
                ),
            );
        }
        let database = &self.database;
        if !POOL_SIZE_RANGE.contains(&database.pool_size) {
            return bad(
                "database.pool_size",
                format!(
                    "= {} is outside {}..={}",
                    database.pool_size,
                    POOL_SIZE_RANGE.start(),
                    POOL_SIZE_RANGE.end()
                ),
            );
        }
        if database.connect_timeout_ms == 0 || database.connect_timeout_ms > MAX_PG_TIMEOUT_MS {
            return bad(
                "database.connect_timeout_ms",
                format!(
                    "= {} is outside 1..={MAX_PG_TIMEOUT_MS}",
                    database.connect_timeout_ms
                ),
            );
        }
        if database.statement_timeout_ms > MAX_PG_TIMEOUT_MS {
            return bad(
                "database.statement_timeout_ms",
                format!(
                    "= {} is above the maximum {MAX_PG_TIMEOUT_MS}",
                    database.statement_timeout_ms
                ),
            );
        }
        if let Some(name) = &database.password_env {
            if !is_env_var_name(name) {
                return bad(
                    "database.password_env",
                    format!(
                        "{name:?} is not an environment variable name \
                         (letters, digits and _, not starting with a digit)"
                    ),
                );
            }
        }
        let security = &self.security;
        if security.max_pin_failures == 0 {
            return bad("security.max_pin_failures", "must be at least 1".into());
        }
        if !PIN_KDF_LOG_N_RANGE.contains(&security.pin_kdf_log_n) {
            return bad(
                "security.pin_kdf_log_n",
                format!(
                    "= {} is outside {}..={}",
                    security.pin_kdf_log_n,
                    PIN_KDF_LOG_N_RANGE.start(),
                    PIN_KDF_LOG_N_RANGE.end()
                ),
            );
        }
        if security.min_pin_len == 0 {
            return bad("security.min_pin_len", "must be at least 1".into());
        }
        if security.max_pin_len > 255 {
            return bad(
                "security.max_pin_len",
                format!("= {} is above 255", security.max_pin_len),
            );
        }
        if security.min_pin_len > security.max_pin_len {
            return bad(
                "security.min_pin_len",
                format!(
                    "= {} is above security.max_pin_len = {}",
                    security.min_pin_len, security.max_pin_len
                ),
            );
        }
        if !RSA_MIN_BITS_RANGE.contains(&self.policy.rsa_min_bits) {
            return bad(
                "policy.rsa_min_bits",
                format!(
                    "= {} is outside {}..={}",
                    self.policy.rsa_min_bits,
                    RSA_MIN_BITS_RANGE.start(),
                    RSA_MIN_BITS_RANGE.end()
                ),
            );
        }
        let level = self.log.level.trim().to_ascii_lowercase();
        if !LOG_LEVELS.contains(&level.as_str()) {
            return bad(
                "log.level",
                format!(
                    "{:?} is not one of {}",
                    self.log.level,
                    LOG_LEVELS.join(", ")
                ),
            );
        }
        self.log.level = level;
        Ok(())
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what a shell can export.
fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The file's path and text. `named_by` is the variable that named the file, if one did, so
/// a missing file is reported as the variable's mistake.
fn read_file(path: &Path, named_by: Option<&str>) -> Result<(String, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Config(match named_by {
            Some(variable) => format!(
                "{variable} names {}, which cannot be read: {e}",
                path.display()
            ),
            None => format!("cannot read configuration file {}: {e}", path.display()),
        })
    })?;
    Ok((path.display().to_string(), text))
}

/// Parses TOML; an error is one line: `<file>: line N: `<the line>`: <what is wrong>`.
fn parse(name: &str, text: &str) -> Result<Config> {
    toml::from_str(text).map_err(|e| {
        let mut message = format!("{name}: ");
        if let Some(span) = e.span() {
            let start = span.start.min(text.len());
            let line_start = text[..start].rfind('\n').map_or(0, |at| at + 1);
            let line_end = text[start..].find('\n').map_or(text.len(), |at| start + at);
            let number = text[..start].matches('\n').count() + 1;
            // A URL on the line may carry a password.
            let line = redact_url(text[line_start..line_end].trim());
            message.push_str(&format!("line {number}: `{line}`: "));
        }
        message.push_str(&e.message().replace('\n', " "));
        Error::Config(message.trim_end().to_string())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = Config::resolve(None, None, None).unwrap();
        assert_eq!(config, Config::default());
        assert!(config.database.url.starts_with("sqlite:"));
        assert!(
            config.database.url.ends_with("sqlhsm/sqlhsm.db"),
            "{}",
            config.database.url
        );
        assert_eq!(config.database.busy_timeout_ms, 5000);
        assert_eq!(config.database.pool_size, 8);
        assert_eq!(config.database.connect_timeout_ms, 5000);
        assert_eq!(config.database.statement_timeout_ms, 10_000);
        assert_eq!(config.database.password_env, None);
        assert_eq!(config.security.max_pin_failures, 10);
        assert_eq!(config.security.pin_kdf_log_n, 15);
        assert_eq!(config.security.min_pin_len, 4);
        assert_eq!(config.security.max_pin_len, 255);
        assert_eq!(config.log.level, "warn");
        assert!(!config.policy.allow_single_des);
        assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
        let des = Config::from_toml_str("[policy]\nallow_single_des = true\n").unwrap();
        assert!(des.policy.allow_single_des);
        assert!(Config::from_toml_str("[policy]\nallow_des = true\n").is_err());
    }

    #[test]
    fn parses_every_field() {
        let config = Config::from_toml_str(
            r#"
            [database]
            url = "sqlite:/var/lib/sqlhsm/keys.db"
            busy_timeout_ms = 250
            pool_size = 3
            connect_timeout_ms = 700
            statement_timeout_ms = 0
            password_env = "SQLHSM_DB_PASSWORD"

            [security]
            max_pin_failures = 3
            pin_kdf_log_n = 10
            min_pin_len = 6
            max_pin_len = 64

            [log]
            level = "DEBUG"
            "#,
        )
        .unwrap();
        assert_eq!(config.database.url, "sqlite:/var/lib/sqlhsm/keys.db");
        assert_eq!(config.database.busy_timeout_ms, 250);
        assert_eq!(config.database.pool_size, 3);
        assert_eq!(config.database.connect_timeout_ms, 700);
        assert_eq!(config.database.statement_timeout_ms, 0);
        assert_eq!(
            config.database.password_env.as_deref(),
            Some("SQLHSM_DB_PASSWORD")
        );
        assert_eq!(
            config.security,
            SecurityConfig {
                max_pin_failures: 3,
                pin_kdf_log_n: 10,
                min_pin_len: 6,
                max_pin_len: 64,
            }
        );
        assert_eq!(config.log.level, "debug");
    }

    #[test]
    fn policy_raises_the_rsa_floor() {
        assert_eq!(Config::default().policy.rsa_min_bits, 1024);
        let config = Config::from_toml_str("[policy]\nrsa_min_bits = 2048\n").unwrap();
        assert_eq!(config.policy.rsa_min_bits, 2048);
        assert!(config_error("[policy]\nrsa_min_bits = 512\n")
            .contains("policy.rsa_min_bits = 512 is outside 1024..=16384"));
        assert!(config_error("[policy]\nrsa_min_bitz = 2048\n").contains("unknown field"));
    }

    #[test]
    fn partial_sections_keep_defaults() {
        let config = Config::from_toml_str("[security]\nmax_pin_failures = 5\n").unwrap();
        assert_eq!(config.security.max_pin_failures, 5);
        assert_eq!(config.security.pin_kdf_log_n, 15);
        assert_eq!(config.database, DatabaseConfig::default());
    }

    fn config_error(text: &str) -> String {
        match Config::from_toml_str(text) {
            Err(Error::Config(message)) => message,
            other => panic!("expected a configuration error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let message = config_error("[database]\nurll = \"sqlite:/x\"\n");
        assert!(message.contains("urll"), "{message}");
        let message = config_error("[securty]\nmax_pin_failures = 1\n");
        assert!(message.contains("securty"), "{message}");
        let message = config_error("[log]\nlevel = \"info\"\nfile = \"/tmp/x\"\n");
        assert!(message.contains("file"), "{message}");
    }

    #[test]
    fn wrong_types_are_rejected() {
        let message = config_error("[database]\nbusy_timeout_ms = \"soon\"\n");
        assert!(message.contains("busy_timeout_ms"), "{message}");
        config_error("[security]\nmax_pin_failures = -1\n");
    }

    #[test]
    fn ranges_are_validated() {
        for (text, needle) in [
            ("[security]\npin_kdf_log_n = 9", "pin_kdf_log_n"),
            ("[security]\npin_kdf_log_n = 21", "pin_kdf_log_n"),
            ("[security]\nmax_pin_failures = 0", "max_pin_failures"),
            ("[security]\nmin_pin_len = 0", "min_pin_len"),
            ("[security]\nmax_pin_len = 256", "max_pin_len"),
            (
                "[security]\nmin_pin_len = 9\nmax_pin_len = 8",
                "min_pin_len",
            ),
            ("[database]\nbusy_timeout_ms = 600001", "busy_timeout_ms"),
            ("[database]\npool_size = 0", "pool_size"),
            ("[database]\npool_size = 65", "pool_size"),
            ("[database]\nconnect_timeout_ms = 0", "connect_timeout_ms"),
            (
                "[database]\nconnect_timeout_ms = 600001",
                "connect_timeout_ms",
            ),
            (
                "[database]\nstatement_timeout_ms = 600001",
                "statement_timeout_ms",
            ),
            ("[database]\npassword_env = \"\"", "password_env"),
            ("[database]\npassword_env = \"1PW\"", "password_env"),
            ("[database]\npassword_env = \"MY-PW\"", "password_env"),
            ("[database]\nurl = \"\"", "database.url"),
            ("[database]\nurl = \"mysql://h/db\"", "scheme"),
            ("[log]\nlevel = \"loud\"", "log.level"),
            ("[cache]\nmax_objects = 0", "cache.max_objects"),
            ("[cache]\nmax_objects = 16777217", "cache.max_objects"),
        ] {
            let message = config_error(text);
            assert!(message.contains(needle), "{text}: {message}");
        }
        for log_n in [10, 20] {
            Config::from_toml_str(&format!("[security]\npin_kdf_log_n = {log_n}")).unwrap();
        }
        Config::from_toml_str("[database]\nurl = \"postgres://u@h/db\"").unwrap();
        Config::from_toml_str("[database]\npassword_env = \"_PW_2\"").unwrap();
        for max_objects in [1, 16_777_216] {
            let text = format!("[cache]\nmax_objects = {max_objects}");
            assert_eq!(
                Config::from_toml_str(&text).unwrap().cache.max_objects,
                max_objects
            );
        }
    }

    #[test]
    fn environment_overrides_the_file() {
        let file = "[database]\nurl = \"sqlite:/from/file.db\"\n[log]\nlevel = \"error\"\n";
        let config = Config::resolve(Some(file), None, None).unwrap();
        assert_eq!(config.database.url, "sqlite:/from/file.db");
        assert_eq!(config.log.level, "error");

        let config = Config::resolve(
            Some(file),
            Some("sqlite:/from/env.db".into()),
            Some("Trace".into()),
        )
        .unwrap();
        assert_eq!(config.database.url, "sqlite:/from/env.db");
        assert_eq!(config.log.level, "trace");

        let config = Config::resolve(Some(file), Some(String::new()), Some(" ".into())).unwrap();
        assert_eq!(
            config.database.url, "sqlite:/from/file.db",
            "empty means unset"
        );
        assert_eq!(config.log.level, "error");

        let config = Config::resolve(None, Some("sqlite::memory:".into()), None).unwrap();
        assert_eq!(config.database.url, "sqlite::memory:");
    }

    #[test]
    fn bad_environment_values_are_errors() {
        assert!(matches!(
            Config::resolve(None, None, Some("verbose".into())),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Config::resolve(None, Some("/no/scheme.db".into()), None),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn errors_name_the_file() {
        match Config::resolve_named(Some(("/etc/sqlhsm.toml", "[[[")), None, None) {
            Err(Error::Config(message)) => {
                assert!(message.starts_with("/etc/sqlhsm.toml"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let missing = read_file(Path::new("/nonexistent/sqlhsm.toml"), None).unwrap_err();
        assert!(missing.to_string().contains("/nonexistent/sqlhsm.toml"));
        let named = read_file(Path::new("/nonexistent/sqlhsm.toml"), Some(ENV_CONF)).unwrap_err();
        assert_eq!(
            named.to_string(),
            "configuration: SQLHSM_CONF names /nonexistent/sqlhsm.toml, which cannot be read: \
             No such file or directory (os error 2)"
        );
    }

    /// Every error is one line that says where the value came from.
    #[test]
    fn errors_are_one_line_naming_the_origin() {
        let message = |result: Result<Config>| match result {
            Err(Error::Config(message)) => message,
            other => panic!("expected a configuration error, got {other:?}"),
        };
        assert_eq!(
            message(Config::resolve(
                None,
                Some("/var/lib/sqlhsm/keys.db".into()),
                None
            )),
            "SQLHSM_DB \"/var/lib/sqlhsm/keys.db\" has an unsupported scheme; \
             use sqlite:/path/to/sqlhsm.db or postgres://user@host/db"
        );
        assert_eq!(
            message(Config::resolve(None, None, Some("verbose".into()))),
            "SQLHSM_LOG \"verbose\" is not one of error, warn, info, debug, trace"
        );
        let text = "[database]\nurll = \"postgres://u:s3cret@h/db\"\n";
        let unknown = message(Config::resolve_named(
            Some(("/etc/s.toml", text)),
            None,
            None,
        ));
        assert!(
            unknown.starts_with(
                "/etc/s.toml: line 2: `urll = \"postgres://u:***@h/db\"`: unknown field `urll`"
            ),
            "{unknown}"
        );
        assert!(!unknown.contains('\n'), "{unknown}");
        assert!(!unknown.contains("s3cret"), "{unknown}");
        let range = message(Config::resolve_named(
            Some(("/etc/s.toml", "[database]\npool_size = 0\n")),
            None,
            None,
        ));
        assert_eq!(
            range,
            "/etc/s.toml: database.pool_size = 0 is outside 1..=64"
        );
        // The file's URL is named by the file; SQLHSM_DB's by the variable, even with a file.
        let file = "[database]\nurl = \"mysql://h/db\"\n";
        let from_file = message(Config::resolve_named(
            Some(("/etc/s.toml", file)),
            None,
            None,
        ));
        assert!(
            from_file.starts_with("/etc/s.toml: database.url \"mysql://h/db\""),
            "{from_file}"
        );
        let from_env = message(Config::resolve_named(
            Some(("/etc/s.toml", "")),
            Some("mysql://e/db".into()),
            None,
        ));
        assert!(
            from_env.starts_with("SQLHSM_DB \"mysql://e/db\""),
            "{from_env}"
        );
        assert!(
            message(Config::resolve(None, Some("sqlite:".into()), None)).contains("names no file")
        );
        let typed = message(Config::from_toml_str(
            "[database]\nbusy_timeout_ms = \"soon\"\n",
        ));
        assert!(
            typed.starts_with("configuration: line 2: `busy_timeout_ms = \"soon\"`: invalid type"),
            "{typed}"
        );
    }

    #[test]
    fn override_url_names_its_origin_and_keeps_the_rest() {
        let mut config = Config::from_toml_str("[database]\nbusy_timeout_ms = 7\n").unwrap();
        let error = config.override_url("mysql://x/y", "--db").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("configuration: --db \"mysql://x/y\""),
            "{error}"
        );
        config.override_url(" sqlite:/x.db ", "--db").unwrap();
        assert_eq!(config.database.url, "sqlite:/x.db");
        assert_eq!(config.database.busy_timeout_ms, 7);
    }

    #[test]
    fn passwords_stay_out_of_debug() {
        let config = Config::resolve(
            None,
            Some("postgres://hsm:s3cret@db:5432/keys".into()),
            None,
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("postgres://hsm:***@db:5432/keys"), "{shown}");
        assert!(shown.contains("pool_size: 8"), "{shown}");
        assert_eq!(
            config.database.redacted_url(),
            "postgres://hsm:***@db:5432/keys"
        );
        assert_eq!(redact_url("sqlite:/a/b.db"), "sqlite:/a/b.db");
        assert_eq!(
            redact_url("postgres://hsm@db/keys"),
            "postgres://hsm@db/keys"
        );
    }
}

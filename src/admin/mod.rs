//! The `sqlhsm` administration command's logic: tokens, keys and the store, driven through the
//! crate's own core (an in-process [`Module`]), never through raw SQL. `src/bin/sqlhsm.rs` is a
//! thin argument parser over this module, so everything here is testable in-process.
//!
//! Exit codes (also in `sqlhsm --help`): 0 success; 1 the operation was refused or something
//! was not found (or `db check` found a problem); 2 a usage error (bad arguments, missing PIN,
//! invalid configuration); 3 the key store is missing, unreachable, or refuses access (file
//! permissions, a read-only file, a privilege the database role lacks).
//!
//! Only `token init` and `db migrate` create a store that does not exist yet; every other
//! command on a missing SQLite file says so (exit 3) and leaves no file behind.

pub mod db;
mod import;
pub mod keys;
pub mod objects;
pub mod output;
pub mod pins;
pub mod progress;
pub mod tokens;

use std::sync::Arc;

use cryptoki_sys::*;
use uuid::Uuid;

use crate::config::Config;
use crate::core::token::PinOwner;
use crate::core::Module;
use crate::error::{Error, Rv, StorageError};
use crate::storage::{Storage, TokenRow};
use pins::PinSource;

/// Success.
pub const EXIT_OK: u8 = 0;
/// The operation was refused, or what it names does not exist, or a check found a problem.
pub const EXIT_REFUSED: u8 = 1;
/// Bad arguments, a missing PIN, an invalid configuration.
pub const EXIT_USAGE: u8 = 2;
/// The key store is missing, cannot be reached, or refuses access.
pub const EXIT_UNREACHABLE: u8 = 3;

/// What an operator is told about a store that does not exist yet.
pub const CREATED_BY: &str = "it is created by `sqlhsm token init` or `sqlhsm db migrate`";

/// Why a command failed: the message for stderr and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_REFUSED,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    pub fn unreachable(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_UNREACHABLE,
            message: message.into(),
        }
    }

    /// The same failure (and exit code) said about `subject`: `subject: message`. A store that
    /// is unreachable or refuses access stays exit 3 when a key or token operation meets it.
    pub fn about(self, subject: impl std::fmt::Display) -> Failure {
        Failure {
            code: self.code,
            message: format!("{subject}: {}", self.message),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a PKCS#11 code means to an administrator.
fn explain(rv: Rv) -> &'static str {
    match rv {
        Rv::PIN_INCORRECT => "wrong PIN",
        Rv::PIN_LOCKED => "the PIN is locked",
        Rv::PIN_LEN_RANGE => {
            "the PIN's length is outside the configured bounds ([security] min_pin_len, max_pin_len)"
        }
        Rv::USER_PIN_NOT_INITIALIZED => "the token's user PIN is not set",
        Rv::ATTRIBUTE_VALUE_INVALID => "not allowed by the key's lifecycle",
        Rv::KEY_FUNCTION_NOT_PERMITTED => "not permitted by the key's status",
        Rv::ARGUMENTS_BAD => "invalid arguments (is the label taken?)",
        Rv::TOKEN_NOT_PRESENT => "no such token",
        Rv::OBJECT_HANDLE_INVALID | Rv::KEY_HANDLE_INVALID => "no such key",
        Rv::ACTION_PROHIBITED => "the key does not allow it",
        Rv::DATA_INVALID => "the data could not be parsed",
        Rv::KEY_SIZE_RANGE => "unsupported key size",
        Rv::CURVE_NOT_SUPPORTED => "unsupported curve",
        Rv::SESSION_EXISTS => "the token has open sessions",
        _ => "refused",
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        match &error {
            Error::Pkcs11(rv) => Failure::refused(format!("{} ({})", explain(*rv), rv.name())),
            Error::Storage(StorageError::Backend(_) | StorageError::Busy(_)) => {
                Failure::unreachable(format!("key store unreachable: {error}"))
            }
            Error::Storage(StorageError::SchemaTooNew { .. } | StorageError::Migration { .. }) => {
                Failure::unreachable(error.to_string())
            }
            Error::Storage(missing @ StorageError::Missing(_)) => {
                Failure::unreachable(format!("{missing} ({CREATED_BY})"))
            }
            // The store answered and refused: its own words name the path (or table) and why.
            Error::Storage(refusal @ (StorageError::ReadOnly(_) | StorageError::Access(_))) => {
                Failure::unreachable(refusal.to_string())
            }
            Error::Config(_) => Failure::usage(error.to_string()),
            _ => Failure::refused(error.to_string()),
        }
    }
}

impl From<StorageError> for Failure {
    fn from(error: StorageError) -> Failure {
        Failure::from(Error::from(error))
    }
}

impl From<Rv> for Failure {
    fn from(rv: Rv) -> Failure {
        Failure::from(Error::from(rv))
    }
}

pub type AdminResult<T> = std::result::Result<T, Failure>;

/// `user` or `SO`, as messages name a PIN's owner.
pub fn who(owner: PinOwner) -> &'static str {
    match owner {
        PinOwner::User => "user",
        PinOwner::So => "SO",
    }
}

/// Asks `question` on the terminal unless `yes` (`--yes`) said so already. Without a terminal
/// and without `--yes` it refuses (a usage error naming `--yes`): a script never destroys
/// anything by accident, and never hangs waiting for an answer.
pub fn confirm(question: &str, yes: bool) -> AdminResult<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!(
            "{question} Not confirmed: standard input is not a terminal to ask on; add --yes to confirm"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::usage(format!("cannot read the answer: {e}")))?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => Err(Failure::refused("not confirmed; nothing was changed")),
    }
}

/// Who acts, for the key history: `admin:<$USER>@<hostname>`.
pub fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("admin:{user}@{}", hostname())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Global options every command shares.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--db URL`: overrides `SQLHSM_DB` and the configuration file.
    pub db: Option<String>,
    /// `--json`: machine-readable output.
    pub json: bool,
    pub pins: PinSource,
}

/// An opened store and an in-process module over it.
pub struct Admin {
    pub module: Module,
    pub storage: Arc<dyn Storage>,
    pub options: Options,
    pub actor: String,
}

impl Admin {
    /// Reads the configuration as the module does (`Config::load`), applies `--db`, opens the
    /// store (running its migrations) and makes a module over it. A store that does not exist
    /// yet is an error ([`CREATED_BY`]): only [`Admin::open_creating`] may bring one about.
    pub fn open(options: Options) -> AdminResult<Admin> {
        let admin = Admin::open_creating(options)?;
        admin.storage.require_existing()?;
        Ok(admin)
    }

    /// [`Admin::open`] for the commands that create the store when it is missing (`token
    /// init`, `db migrate`): the file appears at their first write.
    pub fn open_creating(options: Options) -> AdminResult<Admin> {
        let mut config = Config::load().map_err(|e| Failure::usage(e.to_string()))?;
        if let Some(url) = options.db.as_ref().filter(|u| !u.trim().is_empty()) {
            // Validated the way SQLHSM_DB is; the file's other [database] settings stay.
            config
                .override_url(url, "--db")
                .map_err(|e| Failure::usage(e.to_string()))?;
        }
        let storage = crate::storage::open(&config.database).map_err(|e| match e {
            StorageError::SchemaTooNew { .. }
            | StorageError::Missing(_)
            | StorageError::ReadOnly(_)
            | StorageError::Access(_) => Failure::from(e),
            other => Failure::unreachable(format!(
                "cannot open the key store {}: {other}",
                config.database.redacted_url()
            )),
        })?;
        Admin::with_storage(config, storage, options)
    }

    /// An admin over an opened store (tests, and tools that already hold one).
    pub fn with_storage(
        config: Config,
        storage: Arc<dyn Storage>,
        options: Options,
    ) -> AdminResult<Admin> {
        let module = Module::new(config, storage.clone())?;
        let actor = actor();
        // Every history event the core records through this admin names the admin's user.
        module.set_actor(actor.clone());
        Ok(Admin {
            module,
            storage,
            options,
            actor,
        })
    }

    /// A token by label.
    pub fn token(&self, label: &str) -> AdminResult<TokenRow> {
        self.storage
            .list_tokens()?
            .into_iter()
            .find(|t| t.provider_name == label)
            .ok_or_else(|| Failure::refused(format!("no token labelled {label:?}")))
    }

    /// The slot a token is shown in.
    pub fn slot_of(&self, token: Uuid) -> AdminResult<CK_SLOT_ID> {
        self.module.refresh_slots()?;
        Ok(self.module.token_state(token)?.slot)
    }

    /// A read/write session on the token with the user logged in (the PIN from the configured
    /// source). Closed (and logged out) when the returned guard drops.
    pub fn user_session(&self, token: &TokenRow) -> AdminResult<SessionGuard<'_>> {
        let pin = self
            .options
            .pins
            .pin(PinOwner::User, &token.provider_name)?;
        self.session_as(token, CKU_USER, pin.as_bytes())
    }

    /// A read/write session on the token with the SO logged in (the SO PIN from its source).
    pub fn so_session(&self, token: &TokenRow) -> AdminResult<SessionGuard<'_>> {
        let pin = self.options.pins.pin(PinOwner::So, &token.provider_name)?;
        self.session_as(token, CKU_SO, pin.as_bytes())
    }

    /// A read/write session on the token with nobody logged in.
    pub fn public_session(&self, token: &TokenRow) -> AdminResult<SessionGuard<'_>> {
        let slot = self.slot_of(token.id)?;
        let handle = self
            .module
            .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)?;
        Ok(SessionGuard {
            module: &self.module,
            handle,
        })
    }

    /// A PIN operation's failure, said about the token and naming whose PIN it was: "wrong SO
    /// PIN for token "t"", and for a lock, who can lift it.
    pub fn pin_failure(&self, owner: PinOwner, label: &str, error: Error) -> Failure {
        let whose = who(owner);
        match error.rv() {
            Rv::PIN_INCORRECT => Failure::refused(format!(
                "wrong {whose} PIN for token {label:?} (CKR_PIN_INCORRECT)"
            )),
            Rv::PIN_LOCKED => Failure::refused(match owner {
                PinOwner::User => format!(
                    "the user PIN of token {label:?} is locked (CKR_PIN_LOCKED): the SO can unlock it with `sqlhsm token unlock {label}` or set a new one with `sqlhsm token set-pin {label} user --so`"
                ),
                PinOwner::So => format!(
                    "the SO PIN of token {label:?} is locked (CKR_PIN_LOCKED); nothing unlocks an SO PIN"
                ),
            }),
            Rv::PIN_LEN_RANGE => Failure::usage(self.pin_len_message(owner)),
            _ => Failure::from(error).about(format!("{label:?}")),
        }
    }

    fn pin_len_message(&self, owner: PinOwner) -> String {
        let security = &self.module.config.security;
        format!(
            "the {} PIN must be {} to {} bytes long ([security] min_pin_len, max_pin_len)",
            who(owner),
            security.min_pin_len,
            security.max_pin_len
        )
    }

    /// Refuses a new PIN whose length the store's settings do not allow, saying the range
    /// (the module would answer `CKR_PIN_LEN_RANGE` without it).
    pub fn check_new_pin(&self, owner: PinOwner, pin: &str) -> AdminResult<()> {
        let security = &self.module.config.security;
        let len = pin.len();
        if len < security.min_pin_len as usize || len > security.max_pin_len as usize {
            return Err(Failure::usage(format!(
                "{}; this one is {len}",
                self.pin_len_message(owner)
            )));
        }
        Ok(())
    }

    pub fn session_as(
        &self,
        token: &TokenRow,
        user_type: CK_USER_TYPE,
        pin: &[u8],
    ) -> AdminResult<SessionGuard<'_>> {
        let slot = self.slot_of(token.id)?;
        let handle = self
            .module
            .open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION)?;
        let guard = SessionGuard {
            module: &self.module,
            handle,
        };
        let owner = match user_type {
            CKU_SO => PinOwner::So,
            _ => PinOwner::User,
        };
        self.module
            .login(handle, user_type, Some(pin))
            .map_err(|e| match e.rv() {
                Rv::PIN_INCORRECT | Rv::PIN_LOCKED => {
                    self.pin_failure(owner, &token.provider_name, e)
                }
                _ => Failure::from(e).about(format!("cannot log in to {:?}", token.provider_name)),
            })?;
        Ok(guard)
    }
}

/// An open session, closed on drop.
pub struct SessionGuard<'a> {
    module: &'a Module,
    pub handle: CK_SESSION_HANDLE,
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.module.close_session(self.handle) {
            tracing::warn!(error = %e, "cannot close an admin session");
        }
    }
}

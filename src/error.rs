//! One error type for the whole crate and its one mapping to `CK_RV` (PKCS#11 3.0 §5.1).
//!
//! Every layer returns [`Result`]; only the FFI guard turns an [`Error`] into a `CK_RV`, through
//! [`Error::rv`]. The cause of storage and crypto failures is kept for the log line, never
//! flattened into `CKR_GENERAL_ERROR` without a trace.

use cryptoki_sys::CK_RV;

/// A PKCS#11 return value as an open newtype: vendor values stay representable.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rv(pub CK_RV);

macro_rules! rv_constants {
    ($($name:ident),* $(,)?) => {
        paste_free_consts! { $($name),* }
        impl Rv {
            /// The spec's symbolic name (`CKR_…`), for log lines and test failures.
            pub fn name(self) -> &'static str {
                match self.0 {
                    $(x if x == Rv::$name.0 => concat!("CKR_", stringify!($name)),)*
                    _ => "CKR_<vendor or unknown>",
                }
            }
        }
    };
}

macro_rules! paste_free_consts {
    ($($name:ident),*) => {
        #[allow(missing_docs)]
        impl Rv {
            $(pub const $name: Rv = Rv(rv_code::$name);)*
        }
    };
}

/// `CKR_*` codes from `cryptoki-sys`, renamed without the prefix so `Rv::ARGUMENTS_BAD` reads plainly.
mod rv_code {
    pub use cryptoki_sys::{
        CKR_ACTION_PROHIBITED as ACTION_PROHIBITED, CKR_ARGUMENTS_BAD as ARGUMENTS_BAD,
        CKR_ATTRIBUTE_READ_ONLY as ATTRIBUTE_READ_ONLY,
        CKR_ATTRIBUTE_SENSITIVE as ATTRIBUTE_SENSITIVE,
        CKR_ATTRIBUTE_TYPE_INVALID as ATTRIBUTE_TYPE_INVALID,
        CKR_ATTRIBUTE_VALUE_INVALID as ATTRIBUTE_VALUE_INVALID,
        CKR_BUFFER_TOO_SMALL as BUFFER_TOO_SMALL, CKR_CANT_LOCK as CANT_LOCK,
        CKR_CRYPTOKI_ALREADY_INITIALIZED as CRYPTOKI_ALREADY_INITIALIZED,
        CKR_CRYPTOKI_NOT_INITIALIZED as CRYPTOKI_NOT_INITIALIZED,
        CKR_CURVE_NOT_SUPPORTED as CURVE_NOT_SUPPORTED, CKR_DATA_INVALID as DATA_INVALID,
        CKR_DATA_LEN_RANGE as DATA_LEN_RANGE, CKR_DEVICE_ERROR as DEVICE_ERROR,
        CKR_DEVICE_MEMORY as DEVICE_MEMORY, CKR_DOMAIN_PARAMS_INVALID as DOMAIN_PARAMS_INVALID,
        CKR_ENCRYPTED_DATA_INVALID as ENCRYPTED_DATA_INVALID,
        CKR_ENCRYPTED_DATA_LEN_RANGE as ENCRYPTED_DATA_LEN_RANGE,
        CKR_FUNCTION_FAILED as FUNCTION_FAILED, CKR_FUNCTION_NOT_PARALLEL as FUNCTION_NOT_PARALLEL,
        CKR_FUNCTION_NOT_SUPPORTED as FUNCTION_NOT_SUPPORTED, CKR_GENERAL_ERROR as GENERAL_ERROR,
        CKR_HOST_MEMORY as HOST_MEMORY,
        CKR_KEY_FUNCTION_NOT_PERMITTED as KEY_FUNCTION_NOT_PERMITTED,
        CKR_KEY_HANDLE_INVALID as KEY_HANDLE_INVALID, CKR_KEY_INDIGESTIBLE as KEY_INDIGESTIBLE,
        CKR_KEY_NEEDED as KEY_NEEDED, CKR_KEY_NOT_NEEDED as KEY_NOT_NEEDED,
        CKR_KEY_NOT_WRAPPABLE as KEY_NOT_WRAPPABLE, CKR_KEY_SIZE_RANGE as KEY_SIZE_RANGE,
        CKR_KEY_TYPE_INCONSISTENT as KEY_TYPE_INCONSISTENT,
        CKR_KEY_UNEXTRACTABLE as KEY_UNEXTRACTABLE, CKR_MECHANISM_INVALID as MECHANISM_INVALID,
        CKR_MECHANISM_PARAM_INVALID as MECHANISM_PARAM_INVALID,
        CKR_NEED_TO_CREATE_THREADS as NEED_TO_CREATE_THREADS, CKR_NO_EVENT as NO_EVENT,
        CKR_OBJECT_HANDLE_INVALID as OBJECT_HANDLE_INVALID, CKR_OK as OK,
        CKR_OPERATION_ACTIVE as OPERATION_ACTIVE,
        CKR_OPERATION_NOT_INITIALIZED as OPERATION_NOT_INITIALIZED,
        CKR_PARAMETER_SET_NOT_SUPPORTED as PARAMETER_SET_NOT_SUPPORTED,
        CKR_PIN_INCORRECT as PIN_INCORRECT, CKR_PIN_INVALID as PIN_INVALID,
        CKR_PIN_LEN_RANGE as PIN_LEN_RANGE, CKR_PIN_LOCKED as PIN_LOCKED,
        CKR_PUBLIC_KEY_INVALID as PUBLIC_KEY_INVALID,
        CKR_RANDOM_SEED_NOT_SUPPORTED as RANDOM_SEED_NOT_SUPPORTED,
        CKR_SAVED_STATE_INVALID as SAVED_STATE_INVALID, CKR_SESSION_CLOSED as SESSION_CLOSED,
        CKR_SESSION_COUNT as SESSION_COUNT, CKR_SESSION_EXISTS as SESSION_EXISTS,
        CKR_SESSION_HANDLE_INVALID as SESSION_HANDLE_INVALID,
        CKR_SESSION_PARALLEL_NOT_SUPPORTED as SESSION_PARALLEL_NOT_SUPPORTED,
        CKR_SESSION_READ_ONLY as SESSION_READ_ONLY,
        CKR_SESSION_READ_ONLY_EXISTS as SESSION_READ_ONLY_EXISTS,
        CKR_SESSION_READ_WRITE_SO_EXISTS as SESSION_READ_WRITE_SO_EXISTS,
        CKR_SIGNATURE_INVALID as SIGNATURE_INVALID, CKR_SIGNATURE_LEN_RANGE as SIGNATURE_LEN_RANGE,
        CKR_SLOT_ID_INVALID as SLOT_ID_INVALID, CKR_STATE_UNSAVEABLE as STATE_UNSAVEABLE,
        CKR_TEMPLATE_INCOMPLETE as TEMPLATE_INCOMPLETE,
        CKR_TEMPLATE_INCONSISTENT as TEMPLATE_INCONSISTENT,
        CKR_TOKEN_NOT_PRESENT as TOKEN_NOT_PRESENT,
        CKR_TOKEN_NOT_RECOGNIZED as TOKEN_NOT_RECOGNIZED,
        CKR_TOKEN_WRITE_PROTECTED as TOKEN_WRITE_PROTECTED,
        CKR_UNWRAPPING_KEY_HANDLE_INVALID as UNWRAPPING_KEY_HANDLE_INVALID,
        CKR_UNWRAPPING_KEY_SIZE_RANGE as UNWRAPPING_KEY_SIZE_RANGE,
        CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT as UNWRAPPING_KEY_TYPE_INCONSISTENT,
        CKR_USER_ALREADY_LOGGED_IN as USER_ALREADY_LOGGED_IN,
        CKR_USER_ANOTHER_ALREADY_LOGGED_IN as USER_ANOTHER_ALREADY_LOGGED_IN,
        CKR_USER_NOT_LOGGED_IN as USER_NOT_LOGGED_IN,
        CKR_USER_PIN_NOT_INITIALIZED as USER_PIN_NOT_INITIALIZED,
        CKR_USER_TOO_MANY_TYPES as USER_TOO_MANY_TYPES, CKR_USER_TYPE_INVALID as USER_TYPE_INVALID,
        CKR_WRAPPED_KEY_INVALID as WRAPPED_KEY_INVALID,
        CKR_WRAPPED_KEY_LEN_RANGE as WRAPPED_KEY_LEN_RANGE,
        CKR_WRAPPING_KEY_HANDLE_INVALID as WRAPPING_KEY_HANDLE_INVALID,
        CKR_WRAPPING_KEY_SIZE_RANGE as WRAPPING_KEY_SIZE_RANGE,
        CKR_WRAPPING_KEY_TYPE_INCONSISTENT as WRAPPING_KEY_TYPE_INCONSISTENT,
    };
}

rv_constants!(
    ACTION_PROHIBITED,
    ARGUMENTS_BAD,
    ATTRIBUTE_READ_ONLY,
    ATTRIBUTE_SENSITIVE,
    ATTRIBUTE_TYPE_INVALID,
    ATTRIBUTE_VALUE_INVALID,
    BUFFER_TOO_SMALL,
    CANT_LOCK,
    CRYPTOKI_ALREADY_INITIALIZED,
    CRYPTOKI_NOT_INITIALIZED,
    CURVE_NOT_SUPPORTED,
    DATA_INVALID,
    DATA_LEN_RANGE,
    DEVICE_ERROR,
    DEVICE_MEMORY,
    DOMAIN_PARAMS_INVALID,
    ENCRYPTED_DATA_INVALID,
    ENCRYPTED_DATA_LEN_RANGE,
    FUNCTION_FAILED,
    FUNCTION_NOT_PARALLEL,
    FUNCTION_NOT_SUPPORTED,
    GENERAL_ERROR,
    HOST_MEMORY,
    KEY_FUNCTION_NOT_PERMITTED,
    KEY_HANDLE_INVALID,
    KEY_SIZE_RANGE,
    KEY_TYPE_INCONSISTENT,
    KEY_UNEXTRACTABLE,
    MECHANISM_INVALID,
    MECHANISM_PARAM_INVALID,
    NEED_TO_CREATE_THREADS,
    NO_EVENT,
    OBJECT_HANDLE_INVALID,
    OK,
    OPERATION_ACTIVE,
    OPERATION_NOT_INITIALIZED,
    PARAMETER_SET_NOT_SUPPORTED,
    PIN_INCORRECT,
    PIN_INVALID,
    PIN_LEN_RANGE,
    PIN_LOCKED,
    PUBLIC_KEY_INVALID,
    RANDOM_SEED_NOT_SUPPORTED,
    SESSION_CLOSED,
    SESSION_COUNT,
    SESSION_EXISTS,
    SESSION_HANDLE_INVALID,
    SESSION_PARALLEL_NOT_SUPPORTED,
    SESSION_READ_ONLY,
    SESSION_READ_ONLY_EXISTS,
    SESSION_READ_WRITE_SO_EXISTS,
    SIGNATURE_INVALID,
    SIGNATURE_LEN_RANGE,
    SLOT_ID_INVALID,
    TEMPLATE_INCOMPLETE,
    TEMPLATE_INCONSISTENT,
    TOKEN_NOT_PRESENT,
    TOKEN_NOT_RECOGNIZED,
    TOKEN_WRITE_PROTECTED,
    USER_ALREADY_LOGGED_IN,
    USER_ANOTHER_ALREADY_LOGGED_IN,
    USER_NOT_LOGGED_IN,
    USER_PIN_NOT_INITIALIZED,
    USER_TOO_MANY_TYPES,
    USER_TYPE_INVALID,
    WRAPPED_KEY_INVALID,
    KEY_INDIGESTIBLE,
    KEY_NEEDED,
    KEY_NOT_NEEDED,
    KEY_NOT_WRAPPABLE,
    UNWRAPPING_KEY_HANDLE_INVALID,
    UNWRAPPING_KEY_SIZE_RANGE,
    UNWRAPPING_KEY_TYPE_INCONSISTENT,
    WRAPPED_KEY_LEN_RANGE,
    WRAPPING_KEY_HANDLE_INVALID,
    WRAPPING_KEY_SIZE_RANGE,
    WRAPPING_KEY_TYPE_INCONSISTENT,
    SAVED_STATE_INVALID,
    STATE_UNSAVEABLE,
);

impl std::fmt::Debug for Rv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}(0x{:x})", self.name(), self.0)
    }
}

impl std::fmt::Display for Rv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Why a storage call failed. Backends map their driver errors into these kinds so the core can
/// answer with the right `CK_RV` (a uniqueness conflict is not a device failure).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A unique constraint (token label, `key_id`) was violated.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database stayed locked past the configured busy timeout.
    #[error("database busy: {0}")]
    Busy(String),
    /// The database schema is newer than this build understands.
    #[error("database schema version {found} is newer than this sqlhsm build supports ({supported}); upgrade sqlhsm")]
    SchemaTooNew { found: i64, supported: i64 },
    /// A migration failed; nothing of it was applied.
    #[error("migration {version} failed: {reason}")]
    Migration { version: i64, reason: String },
    /// A stored row could not be decoded (corrupt or foreign data).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The store has not been created yet (a SQLite file that does not exist). Reads of such a
    /// store find nothing; the first write that needs it creates it. The text names the path:
    /// `no key store at /var/lib/sqlhsm/keys.db`.
    #[error("{0}")]
    Missing(String),
    /// The store can be read but not written (a read-only file or file system, a read-only
    /// PostgreSQL transaction or standby). The text names the store and the cause.
    #[error("{0}")]
    ReadOnly(String),
    /// The store refuses access: file permissions, a path through something that is not a
    /// directory, a PostgreSQL privilege the role lacks. The text names the store (or table)
    /// and the cause. Never reported as "unreachable": the store answered, and said no.
    #[error("{0}")]
    Access(String),
    /// The row a change was made for is no longer what it was read as: the key being rotated
    /// was destroyed, or rotated by another session or process, in between.
    #[error("{0}")]
    Superseded(String),
    /// Any other driver or I/O failure.
    #[error("backend: {0}")]
    Backend(String),
}

/// A crypto failure: what went wrong and, when the crypto library reported why (OpenSSL's error
/// stack), that report kept whole as the [`source`](std::error::Error::source), so a caller can
/// still reach the library's own error values. The message is the report's text, so the log line
/// (which prints the message) names OpenSSL's reasons as before. Defined here rather than in
/// `crypto` so that this module, which every layer uses, depends on none of them; `crypto` fills
/// it in (`crypto::openssl_error`) and is the only module that names the library.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CryptoError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl CryptoError {
    /// A failure the crypto library reported: its text is the message, and it is the source.
    pub fn from_source(source: impl std::error::Error + Send + Sync + 'static) -> CryptoError {
        CryptoError {
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }
}

impl From<String> for CryptoError {
    fn from(message: String) -> Self {
        CryptoError {
            message,
            source: None,
        }
    }
}

impl From<&str> for CryptoError {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

/// The crate's error: a PKCS#11 code chosen on purpose, or a failure whose cause is kept.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A deliberate PKCS#11 answer (`Err(Rv::ARGUMENTS_BAD)?`).
    #[error("{0}")]
    Pkcs11(Rv),
    /// The key store failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// OpenSSL failed in a way that is not the caller's fault.
    #[error("crypto: {0}")]
    Crypto(#[source] CryptoError),
    /// The configuration file or environment is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A lock was poisoned by a panic on another thread.
    #[error("a lock was poisoned by an earlier panic")]
    Poisoned,
    /// The token's remote provider (another PKCS#11 module) is missing, refuses its PIN or is
    /// unreachable: the keys it holds are unusable until it is back.
    #[error("provider: {0}")]
    Provider(String),
}

impl From<Rv> for Error {
    fn from(rv: Rv) -> Self {
        Error::Pkcs11(rv)
    }
}

impl<T> From<std::sync::PoisonError<T>> for Error {
    fn from(_: std::sync::PoisonError<T>) -> Self {
        Error::Poisoned
    }
}

impl Error {
    /// The one mapping from an error to what the caller sees.
    pub fn rv(&self) -> Rv {
        match self {
            Error::Pkcs11(rv) => *rv,
            Error::Storage(StorageError::Busy(_)) => Rv::DEVICE_ERROR,
            Error::Storage(StorageError::Conflict(_)) => Rv::TEMPLATE_INCONSISTENT,
            Error::Storage(StorageError::SchemaTooNew { .. }) => Rv::DEVICE_ERROR,
            Error::Storage(StorageError::Migration { .. }) => Rv::DEVICE_ERROR,
            Error::Storage(StorageError::Corrupt(_)) => Rv::DEVICE_ERROR,
            Error::Storage(StorageError::Missing(_)) => Rv::DEVICE_ERROR,
            // The spec's answer for a write to a write-protected token (C_InitToken,
            // C_GenerateKey*, C_CreateObject, C_DestroyObject, C_SetAttributeValue, C_SetPIN, …);
            // reads keep working.
            Error::Storage(StorageError::ReadOnly(_)) => Rv::TOKEN_WRITE_PROTECTED,
            Error::Storage(StorageError::Access(_)) => Rv::DEVICE_ERROR,
            Error::Storage(StorageError::Superseded(_)) => Rv::ATTRIBUTE_VALUE_INVALID,
            Error::Storage(StorageError::Backend(_)) => Rv::DEVICE_ERROR,
            Error::Crypto(_) => Rv::FUNCTION_FAILED,
            Error::Config(_) => Rv::GENERAL_ERROR,
            Error::Poisoned => Rv::GENERAL_ERROR,
            Error::Provider(_) => Rv::DEVICE_ERROR,
        }
    }
}

/// The crate-wide result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_is_pinned() {
        let cases: Vec<(Error, Rv)> = vec![
            (Rv::ARGUMENTS_BAD.into(), Rv::ARGUMENTS_BAD),
            (StorageError::Busy("x".into()).into(), Rv::DEVICE_ERROR),
            (
                StorageError::Conflict("x".into()).into(),
                Rv::TEMPLATE_INCONSISTENT,
            ),
            (
                StorageError::SchemaTooNew {
                    found: 9,
                    supported: 1,
                }
                .into(),
                Rv::DEVICE_ERROR,
            ),
            (
                StorageError::Migration {
                    version: 1,
                    reason: "x".into(),
                }
                .into(),
                Rv::DEVICE_ERROR,
            ),
            (StorageError::Corrupt("x".into()).into(), Rv::DEVICE_ERROR),
            (StorageError::Missing("x".into()).into(), Rv::DEVICE_ERROR),
            (
                StorageError::ReadOnly("x".into()).into(),
                Rv::TOKEN_WRITE_PROTECTED,
            ),
            (StorageError::Access("x".into()).into(), Rv::DEVICE_ERROR),
            (
                StorageError::Superseded("x".into()).into(),
                Rv::ATTRIBUTE_VALUE_INVALID,
            ),
            (StorageError::Backend("x".into()).into(), Rv::DEVICE_ERROR),
            (Error::Crypto("x".into()), Rv::FUNCTION_FAILED),
            (Error::Config("x".into()), Rv::GENERAL_ERROR),
            (Error::Poisoned, Rv::GENERAL_ERROR),
            (Error::Provider("x".into()), Rv::DEVICE_ERROR),
        ];
        for (error, rv) in cases {
            assert_eq!(error.rv(), rv, "{error}");
        }
    }

    #[test]
    fn rv_names_follow_the_spec() {
        assert_eq!(Rv::BUFFER_TOO_SMALL.name(), "CKR_BUFFER_TOO_SMALL");
        assert_eq!(Rv::BUFFER_TOO_SMALL.0, 0x150);
        assert_eq!(Rv(0x8000_0001).name(), "CKR_<vendor or unknown>");
    }

    #[test]
    fn question_mark_reads_plainly() {
        fn refuse() -> Result<()> {
            Err(Rv::ARGUMENTS_BAD)?
        }
        assert_eq!(refuse().unwrap_err().rv(), Rv::ARGUMENTS_BAD);
    }
}

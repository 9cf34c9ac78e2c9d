//! Which storage backend a test process runs on (`SQLHSM_TEST_BACKEND`), and where
//! PostgreSQL test databases come from (`SQLHSM_TEST_PG`).

/// Environment variable choosing the backend of every integration test: `sqlite` (default) or
/// `postgres`.
pub const ENV_TEST_BACKEND: &str = "SQLHSM_TEST_BACKEND";
/// Environment variable with the URL of a PostgreSQL database the tests connect to in order to
/// create their own databases (the same variable the crate's storage tests read).
pub const ENV_TEST_PG: &str = "SQLHSM_TEST_PG";
/// Used when `SQLHSM_TEST_PG` is unset: the local server with trust authentication.
pub const DEFAULT_TEST_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The storage backend a test process runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// From `SQLHSM_TEST_BACKEND`; unset or empty means SQLite. Anything unknown is an error,
    /// so a typo never quietly tests the wrong backend.
    pub fn from_env() -> Backend {
        match std::env::var(ENV_TEST_BACKEND)
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "sqlite" => Backend::Sqlite,
            "postgres" | "postgresql" | "pg" => Backend::Postgres,
            other => panic!("{ENV_TEST_BACKEND}={other:?}: expected `sqlite` or `postgres`"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The base URL PostgreSQL test databases are created from.
pub fn test_pg_url() -> String {
    std::env::var(ENV_TEST_PG)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_PG.to_string())
}

/// Writes a line to the real stderr: `eprintln!` inside a `#[test]` is captured and only shown
/// when the test fails, but which backend ran and why a test was skipped must always be visible.
pub fn announce(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

//! Which storage backend a test process runs on (`SQLHSM_TEST_BACKEND`). Where PostgreSQL test
//! databases come from (`SQLHSM_TEST_PG`) is `tests/support/pg_test_url.rs`, shared with the
//! crate's unit tests.

/// Environment variable choosing the backend of every integration test: `sqlite` (default) or
/// `postgres`.
pub const ENV_TEST_BACKEND: &str = "SQLHSM_TEST_BACKEND";

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

/// Writes a line to the real stderr: `eprintln!` inside a `#[test]` is captured and only shown
/// when the test fails, but which backend ran and why a test was skipped must always be visible.
pub fn announce(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

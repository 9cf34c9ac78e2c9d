//! Where PostgreSQL test databases come from: one definition for the crate's unit tests
//! (`storage::postgres::testing`) and the integration tests (`tests/common`), which include this
//! file. Plain `std`: it links nothing of either side.

/// Environment variable with the URL of a PostgreSQL database the tests connect to in order to
/// create their own databases.
pub const ENV_TEST_PG: &str = "SQLHSM_TEST_PG";
/// Used when `SQLHSM_TEST_PG` is unset: the local server with trust authentication.
pub const DEFAULT_TEST_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The base URL PostgreSQL test databases are created from.
pub fn test_pg_url() -> String {
    std::env::var(ENV_TEST_PG)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_PG.to_string())
}

/// `url` with its database name replaced (the query string kept).
pub fn pg_url_with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |at| &tail[at..]);
    format!("{scheme}://{authority}/{name}{query}")
}

//! A fresh PostgreSQL database per test store, on the server `SQLHSM_TEST_PG` names; compiled
//! for the unit tests only.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex};

use super::*;

#[path = "../../../tests/support/pg_test_url.rs"]
mod url;
pub use url::{pg_url_with_database as with_database, test_pg_url as test_database_url};

/// Test databases alive at once in this process: with many test threads, each holding a
/// pool, the server's `max_connections` (100 by default) would otherwise run out.
const MAX_LIVE_DATABASES: usize = 6;

static LIVE: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// One of the [`MAX_LIVE_DATABASES`] places; given back on drop.
struct Permit;

impl Permit {
    fn acquire() -> Permit {
        let mut live = LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while *live >= MAX_LIVE_DATABASES {
            live = FREED
                .wait(live)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        *live += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *live = live.saturating_sub(1);
        FREED.notify_one();
    }
}

/// A database created for one test; dropped (connections forced out) when this is dropped.
pub struct TestDatabase {
    /// The URL of the new database.
    pub url: String,
    name: String,
    base: ::postgres::Config,
    _permit: Permit,
}

impl TestDatabase {
    /// Store settings for this database: the defaults with a smaller pool.
    pub fn settings(&self) -> DatabaseConfig {
        DatabaseConfig {
            pool_size: 4,
            ..DatabaseConfig::with_url(self.url.clone())
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort: a database left behind is harmless, only untidy.
        if let Ok(mut client) = self.base.connect(::postgres::NoTls) {
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            if let Err(e) = client.batch_execute(&sql) {
                eprintln!("could not drop test database {}: {e}", self.name);
            }
        }
    }
}

/// Creates a fresh, empty database, or `None` (with a `skipped:` line on stderr) when the
/// server cannot be reached. When `CI` is set an unreachable server is a test failure.
///
/// # Panics
/// When the server is unreachable and `CI` is set, or creating the database fails.
pub fn test_database() -> Option<TestDatabase> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let permit = Permit::acquire();
    let base_url = test_database_url();
    let shown = crate::config::DatabaseConfig::with_url(base_url.clone()).redacted_url();
    let connected = base_url
        .parse::<::postgres::Config>()
        .map(|mut config| {
            config.connect_timeout(Duration::from_secs(5));
            config
        })
        .and_then(|config| {
            config
                .connect(::postgres::NoTls)
                .map(|client| (config, client))
        });
    let (base, mut client) = match connected {
        Ok(pair) => pair,
        Err(error) => {
            let reason = error_text(&error);
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL unreachable at {shown}: {reason} (CI is set, so this is a failure, not a skip)");
            }
            eprintln!("skipped: PostgreSQL unreachable at {shown}: {reason}");
            return None;
        }
    };
    let name = format!(
        "sqlhsm_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        &Uuid::new_v4().simple().to_string()[..8]
    );
    if let Err(error) = client.batch_execute(&format!("CREATE DATABASE \"{name}\"")) {
        panic!(
            "cannot create test database {name} on {shown}: {}",
            error_text(&error)
        );
    }
    Some(TestDatabase {
        url: with_database(&base_url, &name),
        name,
        base,
        _permit: permit,
    })
}

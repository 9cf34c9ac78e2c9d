//! PostgreSQL test databases: made per test (or per test process), dropped afterwards, and
//! those left behind by dead test processes reaped.

use std::path::Path;

use super::{announce, pg_url_with_database, test_pg_url};

/// Connects to a PostgreSQL URL (tests only ever use `sslmode=disable`-style local servers).
pub fn pg_connect(url: &str) -> Result<postgres::Client, String> {
    let mut config: postgres::Config = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    config.connect_timeout(std::time::Duration::from_secs(5));
    config
        .connect(postgres::NoTls)
        .map_err(|e| match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        })
}

/// A PostgreSQL database made for one test (or one test process); dropped, with any remaining
/// connections forced out, when this value is dropped. The database behind the process-wide
/// [`ctx`] lives in a static and is never dropped, so creating a database also drops those left
/// behind by test processes of this machine that have exited (their pid is in the name).
pub struct PgDatabase {
    pub name: String,
    pub url: String,
    base_url: String,
}

impl PgDatabase {
    /// Creates `sqlhsm_it_<pid>_<n>_<random>` on the server of `base_url`.
    pub fn create(base_url: &str) -> Result<PgDatabase, String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let mut client = pg_connect(base_url)?;
        reap_dead_databases(&mut client);
        let rand: u32 = {
            let mut b = [0u8; 4];
            openssl::rand::rand_bytes(&mut b).expect("random bytes");
            u32::from_ne_bytes(b)
        };
        let name = format!(
            "sqlhsm_it_{}_{}_{rand:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        Ok(PgDatabase {
            url: pg_url_with_database(base_url, &name),
            name,
            base_url: base_url.to_string(),
        })
    }

    /// A new connection to this database (for checks made behind the module's back).
    pub fn client(&self) -> postgres::Client {
        pg_connect(&self.url).unwrap_or_else(|e| panic!("connect to {}: {e}", self.name))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Best effort: a database left behind is only untidy, and the next run reaps it.
        if let Ok(mut client) = pg_connect(&self.base_url) {
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            if let Err(e) = client.batch_execute(&sql) {
                announce(&format!("could not drop test database {}: {e}", self.name));
            }
        }
    }
}

/// Drops `sqlhsm_it_<pid>_…` databases whose process no longer runs. Only for a server on this
/// machine: a pid means nothing on another host.
fn reap_dead_databases(client: &mut postgres::Client) {
    let base = test_pg_url();
    if !(base.contains("@127.0.0.1") || base.contains("@localhost") || base.contains("@[::1]")) {
        return;
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(rows) = client.query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'sqlhsm\\_it\\_%'",
            &[],
        ) else {
            return;
        };
        for row in rows {
            let name: String = row.get(0);
            let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = client.batch_execute(&sql);
                }
            }
        }
    });
}

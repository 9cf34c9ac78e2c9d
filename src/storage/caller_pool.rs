//! PostgreSQL's connection pool: every connection is opened on the calling thread and kept in a
//! small pool of our own, a locked idle list bounded by `database.pool_size`, with nothing running
//! between calls (no reaper, no background connects), so that it also serves an application that
//! forbids threads (`CKF_LIBRARY_CANT_CREATE_OS_THREADS`, PKCS#11 3.0 §5.4). A connection returned
//! less than [`VALIDATE_IDLE`] ago is handed out as it is: a lookup costs its one round trip,
//! not a check before it; and the connection `open` migrated with is the pool's first
//! ([`CallerPool::adopt`]).
//!
//! The `postgres` client itself runs no thread: each connection drives its socket with a
//! current-thread tokio runtime inside the call. The one exception is tokio's name lookup, which
//! hands any host that is not an IP literal to a blocking-pool *thread*; so [`Targets`] resolves
//! host names here, with the standard library's resolver on the calling thread, and gives the
//! driver the addresses (`hostaddr`), which it uses without a lookup.

use std::net::{IpAddr, ToSocketAddrs};
use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ::postgres::Client;
use postgres_openssl::MakeTlsConnector;
use tokio_postgres::config::Host;

use super::{StorageError, StorageResult};

/// PostgreSQL's default port, also what the password file is matched against when the URL has
/// no port.
pub(super) const DEFAULT_PORT: u16 = 5432;

/// An idle connection older than this is checked with an empty query before it is handed out,
/// so that one the server dropped meanwhile (a restart, an idle timeout) is replaced instead of
/// failing the call. A connection used moments ago is handed out as it is.
pub(super) const VALIDATE_IDLE: Duration = Duration::from_secs(1);

/// Where connections go: the configuration, and the addresses its host names last resolved to.
pub struct Targets {
    base: tokio_postgres::Config,
    /// The configurations to try in order (see [`resolve`]), as last resolved; what the change
    /// feed reconnects to without a lookup of its own.
    last: Mutex<Vec<tokio_postgres::Config>>,
}

impl Targets {
    /// Resolves `base`'s host names once, so that a name that does not resolve is reported at
    /// open.
    pub fn new(base: tokio_postgres::Config) -> StorageResult<Targets> {
        let last = resolve(&base)?;
        Ok(Targets {
            base,
            last: Mutex::new(last),
        })
    }

    /// Resolves the host names again (on this thread) and remembers the answer.
    pub fn resolve(&self) -> StorageResult<Vec<tokio_postgres::Config>> {
        let configs = resolve(&self.base)?;
        if let Ok(mut last) = self.last.lock() {
            last.clone_from(&configs);
        }
        Ok(configs)
    }

    /// What the host names resolved to the last time: no lookup.
    pub fn last(&self) -> Vec<tokio_postgres::Config> {
        match self.last.lock() {
            Ok(last) => last.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The configurations to try, in order, each with an address for every host (`hostaddr`), so
/// that the driver never looks a name up itself. A host with several addresses (IPv6 and IPv4,
/// say) gets one configuration per address: the k-th tries every host's k-th address (or its
/// last, when it has fewer). A host that does not resolve stands in with the first resolvable
/// host's addresses, as if it were down; only when none resolves is that an error. A URL whose
/// hosts are all IP literals or Unix sockets, or that gives `hostaddr` itself, is used as it is.
pub fn resolve(base: &tokio_postgres::Config) -> StorageResult<Vec<tokio_postgres::Config>> {
    let hosts = base.get_hosts();
    let named = |host: &Host| matches!(host, Host::Tcp(name) if name.parse::<IpAddr>().is_err());
    if !base.get_hostaddrs().is_empty() || !hosts.iter().any(named) {
        return Ok(vec![base.clone()]);
    }
    let mut per_host: Vec<Vec<IpAddr>> = Vec::with_capacity(hosts.len());
    let mut failures = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let Host::Tcp(name) = host else {
            // A `hostaddr` would turn this socket into TCP, and a named host needs one.
            return Err(StorageError::Backend(
                "a database URL that mixes Unix-socket and named hosts cannot be used when the \
                 application forbids threads (CKF_LIBRARY_CANT_CREATE_OS_THREADS); name the \
                 TCP hosts by address"
                    .into(),
            ));
        };
        let port = base
            .get_ports()
            .get(i)
            .or_else(|| base.get_ports().first())
            .copied()
            .unwrap_or(DEFAULT_PORT);
        let mut addresses: Vec<IpAddr> = Vec::new();
        match name.parse::<IpAddr>() {
            Ok(ip) => addresses.push(ip),
            Err(_) => match (name.as_str(), port).to_socket_addrs() {
                Ok(found) => {
                    for address in found {
                        if !addresses.contains(&address.ip()) {
                            addresses.push(address.ip());
                        }
                    }
                }
                Err(e) => failures.push(format!("{name}: {e}")),
            },
        }
        per_host.push(addresses);
    }
    let Some(stand_in) = per_host.iter().find(|a| !a.is_empty()).cloned() else {
        return Err(StorageError::Backend(format!(
            "cannot resolve the database host: {}",
            failures.join("; ")
        )));
    };
    for addresses in &mut per_host {
        if addresses.is_empty() {
            addresses.clone_from(&stand_in);
        }
    }
    let attempts = per_host.iter().map(Vec::len).max().unwrap_or(1);
    Ok((0..attempts)
        .map(|k| {
            let mut config = base.clone();
            for addresses in &per_host {
                config.hostaddr(addresses[k.min(addresses.len() - 1)]);
            }
            config
        })
        .collect())
}

/// Opens a connection on this thread, trying `configs` in order.
pub fn connect(
    configs: &[tokio_postgres::Config],
    tls: &MakeTlsConnector,
) -> Result<Client, ::postgres::Error> {
    let mut failure = None;
    for config in configs {
        match ::postgres::Config::from(config.clone()).connect(tls.clone()) {
            Ok(client) => return Ok(client),
            Err(e) => failure = Some(e),
        }
    }
    match failure {
        Some(e) => Err(e),
        // `resolve` never answers an empty list; connecting to no host is still an answer.
        None => ::postgres::Config::new().connect(tls.clone()),
    }
}

/// Why [`CallerPool::get`] has no connection to give.
pub enum CheckoutError {
    /// Every connection stayed in use for the whole wait.
    Busy,
    /// Opening a new one failed.
    Connect(::postgres::Error),
    /// The host names could not be resolved, or the pool's lock was poisoned.
    Other(StorageError),
}

struct Idle {
    client: Client,
    since: Instant,
}

#[derive(Default)]
struct State {
    /// Most recently returned last: the warm ones are reused first.
    idle: Vec<Idle>,
    /// Connections that exist: idle plus lent out.
    open: usize,
}

/// The pool: at most `max` connections, opened by the caller that needs one.
pub struct CallerPool {
    targets: std::sync::Arc<Targets>,
    tls: MakeTlsConnector,
    max: usize,
    /// How long a caller waits for a connection another caller holds.
    wait: Duration,
    /// The limit of an idle connection's check.
    validate_timeout: Duration,
    state: Mutex<State>,
    freed: Condvar,
}

impl CallerPool {
    pub fn new(
        targets: std::sync::Arc<Targets>,
        tls: MakeTlsConnector,
        max: usize,
        wait: Duration,
        validate_timeout: Duration,
    ) -> CallerPool {
        CallerPool {
            targets,
            tls,
            max: max.max(1),
            wait,
            validate_timeout,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    pub fn max_size(&self) -> usize {
        self.max
    }

    /// How long a caller waits for a connection another caller holds.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Adds a connection opened elsewhere (the one `open` migrated with) to the idle list, if
    /// there is room.
    pub fn adopt(&self, client: Client) {
        let Ok(mut state) = self.lock() else {
            return;
        };
        if state.open < self.max {
            state.open += 1;
            state.idle.push(Idle {
                client,
                since: Instant::now(),
            });
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, CheckoutError> {
        self.state.lock().map_err(|_| poisoned())
    }

    /// A connection: an idle one (checked first if it sat idle a while), else a new one opened
    /// here when fewer than `max` exist, else the first one another caller returns within the
    /// wait.
    pub fn get(&self) -> Result<Lease<'_>, CheckoutError> {
        let deadline = Instant::now() + self.wait;
        let mut state = self.lock()?;
        loop {
            if let Some(mut idle) = state.idle.pop() {
                drop(state);
                let usable = !idle.client.is_closed()
                    && (idle.since.elapsed() < VALIDATE_IDLE
                        || idle.client.is_valid(self.validate_timeout).is_ok());
                if usable {
                    return Ok(Lease {
                        pool: self,
                        client: Some(idle.client),
                    });
                }
                tracing::debug!("a pooled PostgreSQL connection was broken; dropped");
                drop(idle);
                state = self.lock()?;
                state.open = state.open.saturating_sub(1);
                continue;
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                let opened = self
                    .targets
                    .resolve()
                    .map_err(CheckoutError::Other)
                    .and_then(|configs| {
                        connect(&configs, &self.tls).map_err(CheckoutError::Connect)
                    });
                return match opened {
                    Ok(client) => Ok(Lease {
                        pool: self,
                        client: Some(client),
                    }),
                    Err(e) => {
                        self.forget_one();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(CheckoutError::Busy);
            }
            state = match self.freed.wait_timeout(state, deadline - now) {
                Ok((state, _)) => state,
                Err(_) => return Err(poisoned()),
            };
        }
    }

    /// One connection fewer exists (it broke, or could not be opened): a waiter may open one.
    fn forget_one(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.open = state.open.saturating_sub(1);
        }
        self.freed.notify_one();
    }

    fn give_back(&self, client: Client) {
        if client.is_closed() {
            drop(client);
            self.forget_one();
            return;
        }
        match self.state.lock() {
            Ok(mut state) => state.idle.push(Idle {
                client,
                since: Instant::now(),
            }),
            Err(_) => return, // the client is dropped; nobody can use the pool anyway
        }
        self.freed.notify_one();
    }
}

fn poisoned() -> CheckoutError {
    CheckoutError::Other(StorageError::Backend(
        "the connection pool was poisoned".into(),
    ))
}

/// A connection lent by a [`CallerPool`]; back to the idle list when dropped, unless it broke.
pub struct Lease<'a> {
    pool: &'a CallerPool,
    client: Option<Client>,
}

impl Deref for Lease<'_> {
    type Target = Client;

    #[allow(clippy::expect_used)] // `client` is taken only in `drop`
    fn deref(&self) -> &Client {
        self.client
            .as_ref()
            .expect("a lease holds its client until dropped")
    }
}

impl DerefMut for Lease<'_> {
    #[allow(clippy::expect_used)] // `client` is taken only in `drop`
    fn deref_mut(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .expect("a lease holds its client until dropped")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            self.pool.give_back(client);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(url: &str) -> tokio_postgres::Config {
        url.parse().unwrap()
    }

    #[test]
    fn ip_literals_and_sockets_are_used_as_they_are() {
        for url in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@[::1]:5432/db",
            "host=/run/postgresql user=u",
            "host=localhost hostaddr=127.0.0.1 user=u",
        ] {
            let base = config(url);
            let configs = resolve(&base).unwrap();
            assert_eq!(configs.len(), 1, "{url}");
            assert_eq!(configs[0].get_hostaddrs(), base.get_hostaddrs(), "{url}");
        }
    }

    #[test]
    fn host_names_are_resolved_here() {
        let configs = resolve(&config("postgres://u@localhost:5432/db")).unwrap();
        assert!(!configs.is_empty());
        for c in &configs {
            assert_eq!(c.get_hosts(), &[Host::Tcp("localhost".into())]);
            assert_eq!(c.get_hostaddrs().len(), 1);
            assert!(
                c.get_hostaddrs()[0].is_loopback(),
                "{:?}",
                c.get_hostaddrs()
            );
        }
        // Two hosts, one of them an address: every configuration has an address for each.
        let configs = resolve(&config("host=localhost,10.0.0.7 user=u")).unwrap();
        for c in &configs {
            assert_eq!(c.get_hostaddrs().len(), 2);
            assert_eq!(c.get_hostaddrs()[1], "10.0.0.7".parse::<IpAddr>().unwrap());
        }
    }

    #[test]
    fn unresolvable_names_are_reported_or_stood_in_for() {
        match resolve(&config("postgres://u@no-such-host.invalid/db")) {
            Err(StorageError::Backend(message)) => {
                assert!(message.contains("no-such-host.invalid"), "{message}")
            }
            other => panic!("expected Backend, got {:?}", other.map(|c| c.len())),
        }
        let configs = resolve(&config("host=no-such-host.invalid,127.0.0.1 user=u")).unwrap();
        assert_eq!(
            configs[0].get_hostaddrs(),
            &["127.0.0.1".parse::<IpAddr>().unwrap(); 2]
        );
        assert!(matches!(
            resolve(&config("host=/run/postgresql,localhost user=u")),
            Err(StorageError::Backend(_))
        ));
    }
}

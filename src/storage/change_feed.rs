//! PostgreSQL's change feed: a thread that `LISTEN`s on `sqlhsm_changes` (fed by the triggers of
//! migration 0003) and bumps a counter for every notification, so [`Storage::change_marker`]
//! costs no round trip. While the connection is down nothing can be heard, so the counter is
//! also bumped on every reconnect: whatever happened meanwhile is treated as a change.
//!
//! [`Storage::change_marker`]: super::Storage::change_marker

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use ::postgres::fallible_iterator::FallibleIterator;
use postgres_openssl::MakeTlsConnector;

/// How often the thread looks at its stop flag while waiting for notifications.
const POLL: Duration = Duration::from_millis(200);
/// Pause between reconnection attempts while the server is unreachable.
const RETRY: Duration = Duration::from_millis(500);

pub struct ChangeFeed {
    counter: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ChangeFeed {
    /// Starts listening with its own connection (not one of the pool's).
    pub fn start(config: ::postgres::Config, tls: MakeTlsConnector) -> std::io::Result<ChangeFeed> {
        let counter = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (counter, stop) = (counter.clone(), stop.clone());
            std::thread::Builder::new()
                .name("sqlhsm-listen".into())
                .spawn(move || listen(&config, &tls, &counter, &stop))?
        };
        Ok(ChangeFeed {
            counter,
            stop,
            thread: Some(thread),
        })
    }

    pub fn marker(&self) -> u64 {
        self.counter.load(Ordering::Acquire)
    }
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            // The thread wakes within POLL (or a connect timeout) and exits.
            let _ = thread.join();
        }
    }
}

fn listen(
    config: &::postgres::Config,
    tls: &MakeTlsConnector,
    counter: &AtomicU64,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Acquire) {
        let mut client = match config.connect(tls.clone()) {
            Ok(client) => client,
            Err(e) => {
                tracing::debug!(error = %e, "change feed: cannot connect; retrying");
                std::thread::sleep(RETRY);
                continue;
            }
        };
        if let Err(e) = client.batch_execute("LISTEN sqlhsm_changes") {
            tracing::warn!(error = %e, "change feed: LISTEN failed; retrying");
            std::thread::sleep(RETRY);
            continue;
        }
        // Changes made while nobody listened are unknown: count them as one.
        counter.fetch_add(1, Ordering::AcqRel);
        while !stop.load(Ordering::Acquire) {
            let heard = client.notifications().timeout_iter(POLL).next();
            match heard {
                Ok(Some(_)) => {
                    counter.fetch_add(1, Ordering::AcqRel);
                }
                Ok(None) if client.is_closed() => {
                    counter.fetch_add(1, Ordering::AcqRel);
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "change feed: connection lost; reconnecting");
                    counter.fetch_add(1, Ordering::AcqRel);
                    break;
                }
            }
        }
    }
}

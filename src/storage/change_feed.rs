//! PostgreSQL's change feed: a connection that `LISTEN`s on `sqlhsm_changes` (fed by the
//! triggers of migration 0003) and a counter bumped for every notification, so
//! [`Storage::change_marker`] costs no round trip. While the connection is down nothing can be
//! heard, so the counter is also bumped when it is lost and on every reconnect: whatever
//! happened meanwhile is treated as a change.
//!
//! Two ways to read the connection:
//! * [`ChangeFeed`], a thread of its own that waits for notifications (the default);
//! * [`PolledFeed`], for an application that forbids threads: the caller reads what has arrived
//!   when it asks for the marker (at most once per coherence check), without waiting. The server
//!   sends notifications as it commits, so they are already in the socket when the check comes;
//!   the look costs a few system calls and no round trip, like SQLite's `PRAGMA data_version`.
//!   Reconnecting is done the same way, one step per look, so a check never waits for the
//!   network.
//!
//! [`Storage::change_marker`]: super::Storage::change_marker

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ::postgres::fallible_iterator::FallibleIterator;
use postgres_openssl::MakeTlsConnector;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Socket};

use super::caller_pool::Targets;
use super::pg_error::error_text;
use super::{StorageError, StorageResult};

/// The channel the triggers notify.
const CHANNEL_LISTEN: &str = "LISTEN sqlhsm_changes";

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
        if let Err(e) = client.batch_execute(CHANNEL_LISTEN) {
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

type TlsStream = <MakeTlsConnector as MakeTlsConnect<Socket>>::Stream;

/// A listening connection: the client must live for the connection to stay open.
struct Listening {
    client: tokio_postgres::Client,
    connection: tokio_postgres::Connection<Socket, TlsStream>,
}

type Connecting = Pin<Box<dyn Future<Output = Result<Listening, String>> + Send>>;

enum Link {
    Up(Box<Listening>),
    /// A reconnection in progress, advanced by each look.
    Connecting {
        since: Instant,
        future: Connecting,
    },
    /// Not connected; the next attempt starts at the first look from `retry_at` on.
    Down {
        retry_at: Instant,
    },
}

/// The runtime the connection's socket and timers are registered with (current-thread: it runs
/// only inside [`PolledFeed::marker`], on the caller's thread), and the link.
struct Listener {
    runtime: tokio::runtime::Runtime,
    link: Link,
}

/// The change feed without a thread: see the module documentation.
pub struct PolledFeed {
    counter: AtomicU64,
    listener: Mutex<Listener>,
    targets: Arc<Targets>,
    tls: MakeTlsConnector,
    connect_timeout: Duration,
}

impl PolledFeed {
    /// Connects and listens, on this thread, before returning: changes are heard from here on.
    pub fn start(
        targets: Arc<Targets>,
        tls: MakeTlsConnector,
        connect_timeout: Duration,
    ) -> StorageResult<PolledFeed> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StorageError::Backend(format!("change feed: {e}")))?;
        let listening = runtime
            .block_on(connect_and_listen(targets.last(), tls.clone()))
            .map_err(|e| StorageError::Backend(format!("change feed: {e}")))?;
        Ok(PolledFeed {
            counter: AtomicU64::new(1),
            listener: Mutex::new(Listener {
                runtime,
                link: Link::Up(Box::new(listening)),
            }),
            targets,
            tls,
            connect_timeout,
        })
    }

    /// Reads the notifications that have arrived (never waiting for more), then answers the
    /// counter. A caller that finds another one reading answers at once: that reader's count
    /// is seen at the next check.
    pub fn marker(&self) -> u64 {
        let mut listener = match self.listener.try_lock() {
            Ok(listener) => listener,
            Err(TryLockError::WouldBlock) => return self.counter.load(Ordering::Acquire),
            // A panic while reading: the link may be half-read; start it again.
            Err(TryLockError::Poisoned(poisoned)) => {
                let mut listener = poisoned.into_inner();
                listener.link = Link::Down {
                    retry_at: Instant::now(),
                };
                self.counter.fetch_add(1, Ordering::AcqRel);
                listener
            }
        };
        let Listener { runtime, link } = &mut *listener;
        runtime.block_on(async {
            // One turn of the runtime's I/O driver that does not wait: readiness that arrived
            // since the last look is registered, so the connection can read it.
            tokio::task::yield_now().await;
            std::future::poll_fn(|cx| {
                self.step(link, cx);
                Poll::Ready(())
            })
            .await
        });
        self.counter.load(Ordering::Acquire)
    }

    /// Advances the link as far as it goes without waiting.
    fn step(&self, link: &mut Link, cx: &mut Context<'_>) {
        loop {
            match link {
                Link::Up(listening) => {
                    let mut heard = 0;
                    let lost = loop {
                        match listening.connection.poll_message(cx) {
                            Poll::Ready(Some(Ok(AsyncMessage::Notification(_)))) => heard += 1,
                            Poll::Ready(Some(Ok(_))) => {}
                            Poll::Ready(Some(Err(e))) => break Some(e.to_string()),
                            Poll::Ready(None) => break Some("closed by the server".into()),
                            Poll::Pending => break None,
                        }
                    };
                    if heard > 0 {
                        self.counter.fetch_add(heard, Ordering::AcqRel);
                    }
                    if let Some(why) = lost {
                        tracing::warn!(error = %why, "change feed: connection lost; reconnecting");
                        self.counter.fetch_add(1, Ordering::AcqRel);
                        *link = Link::Down {
                            retry_at: Instant::now(),
                        };
                        continue; // start reconnecting now
                    }
                    return;
                }
                Link::Down { retry_at } => {
                    if Instant::now() < *retry_at {
                        return;
                    }
                    *link = Link::Connecting {
                        since: Instant::now(),
                        future: Box::pin(connect_and_listen(self.targets.last(), self.tls.clone())),
                    };
                }
                Link::Connecting { since, future } => match future.as_mut().poll(cx) {
                    Poll::Ready(Ok(listening)) => {
                        // Changes made while nobody listened are unknown: count them as one.
                        self.counter.fetch_add(1, Ordering::AcqRel);
                        *link = Link::Up(Box::new(listening));
                    }
                    Poll::Ready(Err(e)) => {
                        tracing::debug!(error = %e, "change feed: cannot reconnect; retrying");
                        *link = Link::Down {
                            retry_at: Instant::now() + RETRY,
                        };
                        return;
                    }
                    Poll::Pending if since.elapsed() > self.connect_timeout => {
                        tracing::debug!("change feed: reconnecting timed out; retrying");
                        *link = Link::Down {
                            retry_at: Instant::now() + RETRY,
                        };
                        return;
                    }
                    Poll::Pending => return,
                },
            }
        }
    }
}

impl Drop for PolledFeed {
    /// Says goodbye to the server (briefly: a server that does not answer is not waited for).
    fn drop(&mut self) {
        let listener = match self.listener.get_mut() {
            Ok(listener) => listener,
            Err(poisoned) => poisoned.into_inner(),
        };
        let link = std::mem::replace(
            &mut listener.link,
            Link::Down {
                retry_at: Instant::now(),
            },
        );
        if let Link::Up(listening) = link {
            let Listening { client, connection } = *listening;
            // Without its client the connection sends Terminate and ends.
            drop(client);
            let _ = listener
                .runtime
                .block_on(async { tokio::time::timeout(GOODBYE, connection).await });
        }
    }
}

/// How long closing the feed's connection may take.
const GOODBYE: Duration = Duration::from_millis(500);

/// Connects (trying `configs` in order) and runs `LISTEN`.
async fn connect_and_listen(
    configs: Vec<tokio_postgres::Config>,
    tls: MakeTlsConnector,
) -> Result<Listening, String> {
    let mut failure = String::from("no host to connect to");
    for config in &configs {
        let (client, mut connection) = match config.connect(tls.clone()).await {
            Ok(pair) => pair,
            Err(e) => {
                failure = error_text(&e);
                continue;
            }
        };
        let listened = {
            let mut query = std::pin::pin!(client.batch_execute(CHANNEL_LISTEN));
            std::future::poll_fn(|cx| {
                // The query's answer arrives through the connection, which must be driven.
                loop {
                    match connection.poll_message(cx) {
                        Poll::Ready(Some(Ok(_))) => {}
                        Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(error_text(&e))),
                        Poll::Ready(None) => {
                            return Poll::Ready(Err("closed by the server".into()))
                        }
                        Poll::Pending => break,
                    }
                }
                query.as_mut().poll(cx).map_err(|e| error_text(&e))
            })
            .await
        };
        match listened {
            Ok(()) => return Ok(Listening { client, connection }),
            Err(e) => failure = e,
        }
    }
    Err(failure)
}

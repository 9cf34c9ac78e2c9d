//! A TCP proxy that counts network round trips: it sits between the module and a PostgreSQL
//! server and, on every connection, counts each burst of bytes the client sends that the server
//! then answers. A notification the server pushes on its own is no round trip; several messages
//! the client writes before the server answers are one (that is what pipelining saves). Plain
//! `std`: one thread per direction of each connection.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Who spoke last on a connection, and whether the client is waiting for an answer.
#[derive(Default)]
struct Turn {
    client_waiting: bool,
}

/// A running proxy; it lives (and forwards) until the test process ends.
pub struct RoundTripProxy {
    pub address: SocketAddr,
    round_trips: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
}

impl RoundTripProxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `server`.
    pub fn start(server: SocketAddr) -> RoundTripProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let address = listener.local_addr().expect("the proxy's address");
        let round_trips = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (trips, opened) = (round_trips.clone(), connections.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(server) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                opened.fetch_add(1, Ordering::AcqRel);
                forward(client, server, trips.clone());
            }
        });
        RoundTripProxy {
            address,
            round_trips,
            connections,
        }
    }

    /// Round trips counted so far, over all connections.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Acquire)
    }

    /// Connections opened through the proxy so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Acquire)
    }
}

/// Pumps both directions of one connection, counting the client's bursts that get an answer.
fn forward(client: TcpStream, server: TcpStream, round_trips: Arc<AtomicU64>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let turn = Arc::new(Mutex::new(Turn::default()));
    let pump = |from: TcpStream, to: TcpStream, from_client: bool| {
        let turn = turn.clone();
        let round_trips = round_trips.clone();
        std::thread::spawn(move || {
            let (mut from, mut to) = (from, to);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                {
                    // Counted before the bytes go on, so that the answer's receiver sees it.
                    let mut turn = turn.lock().expect("turn lock");
                    if from_client {
                        turn.client_waiting = true;
                    } else if turn.client_waiting {
                        turn.client_waiting = false;
                        round_trips.fetch_add(1, Ordering::AcqRel);
                    }
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    };
    let (client2, server2) = (
        client.try_clone().expect("clone the client socket"),
        server.try_clone().expect("clone the server socket"),
    );
    pump(client, server, true);
    pump(server2, client2, false);
}

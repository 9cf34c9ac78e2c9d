//! Network round trips per PKCS#11 call on PostgreSQL, counted by a TCP proxy between the
//! module and the server (`tests/support/round_trip_proxy.rs`): a label search
//! (`C_FindObjectsInit` + `C_FindObjects` + `C_FindObjectsFinal`) is one round trip, and
//! `C_GetAttributeValue` of an object the cache no longer holds at most one. `C_Initialize`
//! (on a fresh database and on a current schema) and `C_Login` are counted and printed, with the
//! time `C_Initialize` takes on a current schema (median of 20, straight to the server).
//!
//! On SQLite there is no network: the test says that it skips. This file runs one test: it
//! finalizes the module and initializes it again.

mod common;

#[path = "support/round_trip_proxy.rs"]
mod round_trip_proxy;

use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::object::{Attribute, AttributeType};
use cryptoki::session::UserType;

use common::*;
use round_trip_proxy::RoundTripProxy;

/// The cache budget: the keys made first are evicted by the ones made after them.
const MAX_OBJECTS: usize = 4;
const SECRETS: usize = 8;

/// Round trips `work` made, with its answer.
fn counted<T>(proxy: &RoundTripProxy, work: impl FnOnce() -> T) -> (u64, T) {
    let before = proxy.round_trips();
    let answer = work();
    (proxy.round_trips() - before, answer)
}

fn initialize() -> Pkcs11 {
    let p = load();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .expect("C_Initialize");
    p
}

/// The server's address and `url` with the proxy's address in its place.
fn through(url: &str, proxy: &RoundTripProxy) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (user, rest) = rest.split_once('@').expect("a user in the test URL");
    let host_end = rest.find(['/', '?']).unwrap_or(rest.len());
    format!("{scheme}://{user}@{}{}", proxy.address, &rest[host_end..])
}

fn server_address(url: &str) -> std::net::SocketAddr {
    let rest = url.split_once("://").expect("a URL").1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:5432")
    };
    host.to_socket_addrs()
        .expect("resolve the test server")
        .next()
        .expect("an address of the test server")
}

/// Lets the change feed connect and hear the notifications of this process's own writes, so
/// that neither lands in a count.
fn settle() {
    std::thread::sleep(Duration::from_millis(500));
}

#[test]
fn lookups_cost_one_round_trip() {
    let db = TestDb::with_options(
        "round_trips",
        TestDbOptions {
            extra_toml: format!("[cache]\nmax_objects = {MAX_OBJECTS}\n"),
            ..TestDbOptions::default()
        },
    );
    let Some(pg) = &db.pg else {
        announce(
            "skipped: round trips are counted on PostgreSQL only (SQLHSM_TEST_BACKEND=sqlite)",
        );
        println!(
            "skipped: round trips are counted on PostgreSQL only (SQLHSM_TEST_BACKEND=sqlite)"
        );
        return;
    };
    let proxy = RoundTripProxy::start(server_address(&pg.url));
    db.set_env();
    std::env::set_var("SQLHSM_DB", through(&pg.url, &proxy));

    let (fresh_init, p) = counted(&proxy, initialize);
    let slot = new_token(&p, "trips");
    let s = p.open_rw_session(slot).expect("C_OpenSession");
    let (login, ()) = counted(&proxy, || {
        s.login(UserType::User, Some(&pin(USER_PIN)))
            .expect("C_Login")
    });
    let secrets: Vec<_> = (0..SECRETS)
        .map(|i| gen_aes(&s, 32, &format!("secret-{i}")))
        .collect();
    drop(s);
    p.finalize().expect("C_Finalize");

    let (current_init, p) = counted(&proxy, initialize);
    let s = p.open_rw_session(slot).expect("C_OpenSession");
    s.login(UserType::User, Some(&pin(USER_PIN)))
        .expect("C_Login");
    settle();

    let wanted = format!("secret-{}", SECRETS - 1);
    let (search, found) = counted(&proxy, || {
        s.find_objects(&[Attribute::Label(wanted.clone().into_bytes())])
            .expect("C_FindObjects*")
    });
    assert_eq!(found.len(), 1, "one key is labelled {wanted}");

    // The handles of this module's first life are gone; the first keys' new handles are found,
    // and each is cached only until the keys found after it push it out.
    let mut first = Vec::new();
    for i in 0..SECRETS {
        let label = format!("secret-{i}").into_bytes();
        first.extend(
            s.find_objects(&[Attribute::Label(label)])
                .expect("C_FindObjects*"),
        );
    }
    assert_eq!(first.len(), secrets.len());
    settle();
    let (attribute, label) = counted(&proxy, || {
        s.get_attributes(first[0], &[AttributeType::Label])
            .expect("C_GetAttributeValue")
    });
    assert_eq!(label, vec![Attribute::Label(b"secret-0".to_vec())]);
    // Read again: now it is cached, and costs nothing.
    let (again, _) = counted(&proxy, || {
        s.get_attributes(first[0], &[AttributeType::Label])
            .expect("C_GetAttributeValue")
    });
    drop(s);
    p.finalize().expect("C_Finalize");

    println!(
        "round trips: C_Initialize {fresh_init} (fresh database), {current_init} (schema \
         current); C_Login {login}; label search {search}; C_GetAttributeValue {attribute} \
         (uncached), {again} (cached); {} connections",
        proxy.connections()
    );

    // C_Initialize on a current schema, straight to the server: printed, never asserted.
    std::env::set_var("SQLHSM_DB", &pg.url);
    let mut times: Vec<Duration> = (0..20)
        .map(|_| {
            let started = Instant::now();
            let p = initialize();
            let took = started.elapsed();
            p.finalize().expect("C_Finalize");
            took
        })
        .collect();
    times.sort();
    println!(
        "C_Initialize on a current schema: median {:?} (min {:?}, max {:?}) of {}",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );

    assert_eq!(search, 1, "a label search costs one round trip");
    assert!(
        attribute <= 1,
        "C_GetAttributeValue of an uncached object costs {attribute} round trips"
    );
    assert_eq!(
        attribute, 1,
        "the object was still cached: the test measured nothing"
    );
}

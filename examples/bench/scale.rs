//! `--scale N [POSTGRES_URL]`: how sqlhsm behaves as a token grows to N keys.
//!
//! ```sh
//! cargo run --release --example bench -- --scale 1000000 [postgres://user@host/db]
//! ```
//!
//! On SQLite (a temporary file) and, when a URL is given or `SQLHSM_TEST_PG` is set, on
//! PostgreSQL (a fresh database made next to the URL's and dropped at the end), it fills one
//! token with AES-256 token keys (`C_GenerateKey` in one session, labels `scale-<i>`) and, at
//! 1k, 10k, 100k, 1M (and N), prints:
//! - the insert rate of the step that reached that size;
//! - from a fresh process (the measuring child, so its memory is its own): `C_Initialize` and
//!   `C_Login`, a label lookup (`C_FindObjectsInit` + `C_FindObjects` + `C_FindObjectsFinal`)
//!   that hits and one that misses (medians), then a find-all (every handle), then 100,000
//!   lookups of random labels each reading `CKA_LABEL` through the handle found (so every object
//!   goes through the object cache), and the child's RSS: before `C_Initialize`, and the peak
//!   (`VmHWM`, reset after `C_Login` so the KDF's working memory is not in it) and the current
//!   `VmRSS` after the lookups.
//!
//! The module runs with `[security] pin_kdf_log_n = 10` (1 MiB of scrypt) and the default
//! `[cache]`. It never fails on a figure.

use std::process::Command;
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

use super::modules::{fresh_token, USER_PIN};
use super::Result;

const TOKEN: &str = "scale";
/// Lookups after the find-all, as the issue's memory goal says.
const LOOKUPS: usize = 100_000;
/// Lookups timed for the hit and miss medians.
const TIMED: usize = 2_000;

/// The sizes measured on the way to `n`.
fn checkpoints(n: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> = [1_000, 10_000, 100_000, 1_000_000]
        .into_iter()
        .filter(|s| *s < n)
        .collect();
    sizes.push(n);
    sizes
}

/// `--scale N [URL]` (the parent) or `--scale-child N` (a measuring child).
pub fn main(args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) == Some("--scale-child") {
        let n: usize = args.get(1).ok_or("--scale-child N")?.parse()?;
        return child(n);
    }
    let n: usize = args.get(1).ok_or("--scale N [POSTGRES_URL]")?.parse()?;
    let pg = args
        .get(2)
        .cloned()
        .or_else(|| std::env::var("SQLHSM_TEST_PG").ok());
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("sqlhsm.toml"),
        "[security]\npin_kdf_log_n = 10\n",
    )?;
    std::env::set_var("SQLHSM_CONF", dir.path().join("sqlhsm.toml"));
    println!(
        "{:<10} {:>9} {:>11} {:>10} {:>10} {:>9} {:>9} {:>10} {:>10} {:>10} {:>10}",
        "backend",
        "keys",
        "insert/s",
        "hit µs",
        "miss µs",
        "init ms",
        "login ms",
        "find-all s",
        "base MiB",
        "peak MiB",
        "RSS MiB"
    );
    let sqlite = format!("sqlite:{}", dir.path().join("scale.db").display());
    series("sqlite", &sqlite, n)?;
    if let Some(base) = pg {
        let (url, drop_it) = fresh_pg_database(&base)?;
        let outcome = series("postgres", &url, n);
        drop_it();
        outcome?;
    }
    Ok(())
}

/// Fills a token on `url` to each checkpoint and measures there.
fn series(backend: &str, url: &str, n: usize) -> Result<()> {
    std::env::set_var("SQLHSM_DB", url);
    let p = Pkcs11::new(super::sqlhsm_path()?)?;
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let pin = AuthPin::from(USER_PIN);
    let session = new_token(&p, &pin)?;
    let mut made = 0;
    for size in checkpoints(n) {
        let started = Instant::now();
        while made < size {
            generate(&session, made)?;
            made += 1;
        }
        let rate = (size - previous(n, size)) as f64 / started.elapsed().as_secs_f64();
        let measured = Command::new(std::env::current_exe()?)
            .args(["--scale-child", &size.to_string()])
            .output()?;
        let report = String::from_utf8_lossy(&measured.stdout);
        if !measured.status.success() {
            println!(
                "{backend:<10} {size:>9} {rate:>11.0}  (the measuring child failed: {})",
                String::from_utf8_lossy(&measured.stderr).trim()
            );
            continue;
        }
        println!("{backend:<10} {size:>9} {rate:>11.0} {}", report.trim());
    }
    drop(session);
    p.finalize()?;
    Ok(())
}

/// The checkpoint before `size` (0 for the first).
fn previous(n: usize, size: usize) -> usize {
    checkpoints(n)
        .into_iter()
        .take_while(|s| *s < size)
        .last()
        .unwrap_or(0)
}

/// A fresh token with the user PIN, and a logged-in session on it.
fn new_token(p: &Pkcs11, pin: &AuthPin) -> Result<Session> {
    let s = p.open_rw_session(fresh_token(p, TOKEN)?)?;
    s.login(UserType::User, Some(pin))?;
    Ok(s)
}

fn generate(s: &Session, i: usize) -> Result<()> {
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::ValueLen(32.into()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Label(label(i).into_bytes()),
        ],
    )?;
    Ok(())
}

fn label(i: usize) -> String {
    format!("scale-{i}")
}

/// A cheap deterministic sequence of indices (xorshift), so no crate is needed for it.
struct Indices(u64);

impl Indices {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }
}

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn memory() -> Result<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| -> Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or("no such field in /proc/self/status")?;
        let kib: f64 = line
            .trim_start_matches(name)
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kib / 1024.0)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Handles whose label is `label`, and the time the search took.
fn lookup(s: &Session, label: &str) -> Result<(Vec<cryptoki::object::ObjectHandle>, Duration)> {
    let started = Instant::now();
    let found = s.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])?;
    Ok((found, started.elapsed()))
}

fn median_us(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times
        .get(times.len() / 2)
        .map_or(0.0, |t| t.as_secs_f64() * 1e6)
}

/// The measuring child: one line of figures for a token of `n` keys.
fn child(n: usize) -> Result<()> {
    let (base, _) = memory()?;
    let p = Pkcs11::new(super::sqlhsm_path()?)?;
    let started = Instant::now();
    p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let init = started.elapsed();
    let slot = p
        .get_slots_with_token()?
        .into_iter()
        .find(|s| {
            p.get_token_info(*s)
                .map(|t| t.label() == TOKEN)
                .unwrap_or(false)
        })
        .ok_or("the scale token is not there")?;
    let s = p.open_ro_session(slot)?;
    let started = Instant::now();
    s.login(UserType::User, Some(&AuthPin::from(USER_PIN)))?;
    let login = started.elapsed();
    // The peak from here on: what holding the keys costs, not the KDF's working memory.
    std::fs::write("/proc/self/clear_refs", "5")?;

    let mut indices = Indices(0x2545_f491_4f6c_dd1d);
    let mut hits = Vec::with_capacity(TIMED);
    let mut misses = Vec::with_capacity(TIMED);
    for i in 0..TIMED {
        let (found, took) = lookup(&s, &label(indices.next(n)))?;
        if found.len() != 1 {
            Err(format!("a label lookup found {} keys", found.len()))?
        }
        hits.push(took);
        let (found, took) = lookup(&s, &format!("absent-{i}"))?;
        if !found.is_empty() {
            Err("a lookup of an absent label found keys")?
        }
        misses.push(took);
    }

    let started = Instant::now();
    let all = s.find_objects(&[Attribute::Class(ObjectClass::SECRET_KEY)])?;
    let find_all = started.elapsed();
    if all.len() != n {
        Err(format!("the find-all found {} of {n} keys", all.len()))?
    }
    for _ in 0..LOOKUPS {
        let i = indices.next(n);
        let (found, _) = lookup(&s, &label(i))?;
        let handle = *found.first().ok_or("a label lookup found nothing")?;
        let read = s.get_attributes(handle, &[AttributeType::Label])?;
        if !matches!(read.first(), Some(Attribute::Label(l)) if *l == label(i).into_bytes()) {
            Err("a key read back another label")?
        }
    }
    let (rss, peak) = memory()?;
    println!(
        "{:>10.1} {:>10.1} {:>9.2} {:>9.2} {:>10.2} {base:>10.1} {peak:>10.1} {rss:>10.1}",
        median_us(hits),
        median_us(misses),
        init.as_secs_f64() * 1e3,
        login.as_secs_f64() * 1e3,
        find_all.as_secs_f64(),
    );
    drop(all);
    drop(s);
    p.finalize()?;
    Ok(())
}

/// A new database beside the one `base` names, and what drops it again.
fn fresh_pg_database(base: &str) -> Result<(String, impl FnOnce())> {
    let name = format!("sqlhsm_scale_{}", std::process::id());
    let mut admin = postgres::Client::connect(base, postgres::NoTls)?;
    admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
    let (prefix, _) = base
        .rsplit_once('/')
        .ok_or("a PostgreSQL URL ends in /DATABASE")?;
    let url = format!("{prefix}/{name}");
    let base = base.to_string();
    let drop_it = move || {
        let dropped = postgres::Client::connect(&base, postgres::NoTls).and_then(|mut c| {
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        });
        if let Err(e) = dropped {
            eprintln!("could not drop the scale database {name}: {e}");
        }
    };
    Ok((url, drop_it))
}

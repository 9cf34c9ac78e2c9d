//! PostgreSQL outages (PostgreSQL only; on SQLite it prints `skipped: PostgreSQL only`).
//!
//! A private PostgreSQL cluster is made for this test (`initdb` into a temporary directory, a
//! free port), so stopping it disturbs no other test. The module is configured with
//! `connect_timeout_ms = 1000`, `statement_timeout_ms = 2000`, `busy_timeout_ms = 1000`. With
//! keys generated and used (so cached), the server is stopped; then:
//! - signing and encrypting with the cached keys keep working, also after `coherence_ms`;
//! - `C_FindObjectsInit`, `C_GenerateKeyPair`, `C_GenerateKey` and `C_CreateObject` fail with
//!   `CKR_DEVICE_ERROR` within 5 s each (nothing hangs, nothing crashes).
//!
//! The server is started again; within 10 s the same calls succeed on the same sessions,
//! without `C_Finalize` / `C_Initialize`; every key made before the outage is found, nothing
//! of the failed calls was written (objects and rows counted). The cluster is stopped and
//! deleted at the end, whatever happens (a drop guard).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};

use common::*;

/// The longest a call may take to report that the server is gone.
const FAIL_FAST: Duration = Duration::from_secs(5);
/// The longest the module may take to use the server again once it is back.
const RECOVERY: Duration = Duration::from_secs(10);

/// A PostgreSQL cluster of this test alone; stopped and deleted on drop.
struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// `initdb` and start, or why not.
    fn create() -> Result<Cluster, String> {
        let bin = postgres_bin()?;
        let as_postgres = is_root();
        if as_postgres && !Path::new("/usr/sbin/runuser").exists() && which("runuser").is_none() {
            return Err("running as root but `runuser` is missing".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("sqlhsm-faults-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?
            .keep();
        let cluster = Cluster {
            dir,
            bin,
            port: free_port()?,
            as_postgres,
        };
        if as_postgres {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(&cluster.dir))?;
        }
        let data = cluster.data();
        cluster.run_pg(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        cluster.start()?;
        Ok(cluster)
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// Runs a PostgreSQL program, as user postgres when we are root (the server refuses root).
    fn run_pg(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).current_dir(&self.dir);
        run(&mut cmd)
    }

    fn start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        self.run_pg(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    }

    fn stop(&self, mode: &str) -> Result<(), String> {
        self.run_pg(
            "pg_ctl",
            &["-D", &self.data(), "-m", mode, "-w", "-t", "60", "stop"],
        )
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The directory with `initdb` and `pg_ctl`: `$SQLHSM_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout), else `pg_config --bindir`.
fn postgres_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("SQLHSM_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|d| d.join("initdb").is_file());
    from_pg_config.ok_or_else(|| {
        "no initdb: not in /usr/lib/postgresql/<version>/bin, nor pg_config --bindir \
         (install the Debian package `postgresql`)"
            .into()
    })
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// Runs `f`, returning its result and how long it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed())
}

#[test]
fn postgres_outage_fails_fast_and_recovers() {
    let backend = Backend::from_env();
    if backend != Backend::Postgres {
        announce(&format!(
            "skipped: PostgreSQL only (this run's backend is {})",
            backend.name()
        ));
        return;
    }
    let cluster = match Cluster::create() {
        Ok(c) => c,
        Err(why) => {
            if std::env::var_os("CI").is_some() {
                panic!("cannot run a private PostgreSQL cluster: {why} (CI is set)");
            }
            announce(&format!(
                "skipped: cannot run a private PostgreSQL cluster: {why}"
            ));
            return;
        }
    };
    // Declared after `cluster`, so dropped (the database removed) before the cluster stops.
    let db = TestDb::try_with_options(
        "faults",
        TestDbOptions {
            pg_base_url: cluster.url(),
            busy_timeout_ms: 1000,
            database_toml: "connect_timeout_ms = 1000\nstatement_timeout_ms = 2000\n".into(),
            extra_toml: "[cache]\ncoherence_ms = 1000\n".into(),
            ..TestDbOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("a database on the private cluster: {e}"));
    let p = init(&db);
    let slot = new_token(&p, "faults");
    let s = user_session(&p, slot);

    let mut pairs = Vec::new();
    for i in 0..3 {
        let (public, private) = gen_ec(&s, P256, &format!("before-ec{i}"), b"b");
        s.sign(&Mechanism::EcdsaSha256, private, b"cache me")
            .expect("C_Sign before the outage");
        pairs.push((public, private));
    }
    let mut secrets = Vec::new();
    for i in 0..2 {
        let k = gen_aes(&s, 32, &format!("before-aes{i}"));
        s.encrypt(&Mechanism::AesCbcPad([1; 16]), k, b"cache me")
            .expect("C_Encrypt before the outage");
        secrets.push(k);
    }
    let count_rows = |table: &str| -> usize {
        db.query_texts(&format!("SELECT COUNT(*)::text FROM {table}"))[0]
            .parse()
            .expect("a count")
    };
    assert_eq!((count_rows("asym_key"), count_rows("sym_key")), (3, 2));

    cluster.stop("fast").expect("stop the private cluster");
    let use_cached = |when: &str| {
        for (i, (public, private)) in pairs.iter().enumerate() {
            let sig = s
                .sign(&Mechanism::EcdsaSha256, *private, b"server down")
                .unwrap_or_else(|e| panic!("{when}: C_Sign with cached key {i}: {e}"));
            s.verify(&Mechanism::EcdsaSha256, *public, b"server down", &sig)
                .unwrap_or_else(|e| panic!("{when}: C_Verify with cached key {i}: {e}"));
        }
        for (i, k) in secrets.iter().enumerate() {
            let ct = s
                .encrypt(&Mechanism::AesCbcPad([2; 16]), *k, b"server down")
                .unwrap_or_else(|e| panic!("{when}: C_Encrypt with cached key {i}: {e}"));
            let pt = s
                .decrypt(&Mechanism::AesCbcPad([2; 16]), *k, &ct)
                .unwrap_or_else(|e| panic!("{when}: C_Decrypt with cached key {i}: {e}"));
            assert_eq!(pt, b"server down");
        }
    };
    use_cached("server just stopped");

    let mut timings = Vec::new();
    let mut expect_device_error =
        |what: &str, r: Result<(), cryptoki::error::Error>, took: Duration| {
            expect_rv(r, RvError::DeviceError);
            assert!(
                took < FAIL_FAST,
                "{what} took {took:?} to fail (bound {FAIL_FAST:?})"
            );
            timings.push(format!("{what} {} ms", took.as_millis()));
        };
    let (r, took) = timed(|| s.find_objects(&[Attribute::Label(b"before-ec0".to_vec())]));
    expect_device_error("C_FindObjects", r.map(drop), took);
    let (r, took) = timed(|| {
        let (public, private) = ec_templates(P256, "during-ec", b"d");
        s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
    });
    expect_device_error("C_GenerateKeyPair", r.map(drop), took);
    let (r, took) = timed(|| {
        s.generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::ValueLen(32.into()),
                Attribute::Label(b"during-aes".to_vec()),
            ],
        )
    });
    expect_device_error("C_GenerateKey", r.map(drop), took);
    let (r, took) = timed(|| {
        s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(true),
            Attribute::Value(vec![7; 32]),
            Attribute::Label(b"during-import".to_vec()),
        ])
    });
    expect_device_error("C_CreateObject", r.map(drop), took);

    // Past the coherence interval the cached keys still work: an unreachable change feed does
    // not throw them away.
    std::thread::sleep(Duration::from_millis(1500));
    use_cached("server down for 1.5 s");

    cluster.start().expect("start the private cluster again");
    let back = Instant::now();
    let recovered = loop {
        match s.find_objects(&[Attribute::Label(b"before-ec0".to_vec())]) {
            Ok(found) => {
                assert_eq!(found.len(), 2, "before-ec0 pair after the outage");
                break back.elapsed();
            }
            Err(e) => {
                assert!(
                    back.elapsed() < RECOVERY,
                    "not recovered {RECOVERY:?} after the server came back: {e}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    // The calls that failed now succeed, on the same sessions, without re-initialisation.
    let (public, private) = gen_ec(&s, P256, "after-ec", b"a");
    let sig = s
        .sign(&Mechanism::EcdsaSha256, private, b"after")
        .expect("C_Sign with a key made after the outage");
    s.verify(&Mechanism::EcdsaSha256, public, b"after", &sig)
        .expect("C_Verify");
    gen_aes(&s, 32, "after-aes");
    use_cached("server back");

    // Everything from before is there; nothing from the failed calls was written.
    for i in 0..3 {
        assert_eq!(find_by_label(&s, &format!("before-ec{i}")).len(), 2);
    }
    for i in 0..2 {
        assert_eq!(find_by_label(&s, &format!("before-aes{i}")).len(), 1);
    }
    for label in ["during-ec", "during-aes", "during-import"] {
        assert!(
            find_by_label(&s, label).is_empty(),
            "{label}: a failed call left an object"
        );
    }
    let class = |c: ObjectClass| {
        s.find_objects(&[Attribute::Class(c)])
            .expect("C_FindObjects")
    };
    assert_eq!(class(ObjectClass::PRIVATE_KEY).len(), 4);
    assert_eq!(class(ObjectClass::PUBLIC_KEY).len(), 4);
    assert_eq!(class(ObjectClass::SECRET_KEY).len(), 3);
    assert_eq!((count_rows("asym_key"), count_rows("sym_key")), (4, 3));
    assert_eq!(count_rows("provider_config"), 1);

    let line = format!(
        "faults: postgres down: cached keys kept working; {}; recovered {} ms after the \
         server was back",
        timings.join(", "),
        recovered.as_millis()
    );
    println!("{line}");
    announce(&line);
    drop(s);
    p.finalize().expect("C_Finalize");
}

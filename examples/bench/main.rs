//! The project's benchmark: every scenario through sqlhsm (on SQLite and, given a server, on
//! PostgreSQL), next to the same operation in raw OpenSSL, SoftHSMv2 (when installed) and
//! Kryoptic (when `SQLHSM_BENCH_KRYOPTIC` names its library), all in one process and one run,
//! so that ratios compare like with like:
//!
//! ```sh
//! cargo run --release --example bench -- [--seconds S] [--rounds R] [--threads 1,2,4]
//!     [--postgres URL] [--json FILE] [--only ID,…] [--lookup-keys N] [--ops N] [MODULE …]
//! ```
//!
//! Each module gets a fresh token on a temporary store of its own (`SQLHSM_DB`,
//! `SOFTHSM2_CONF`, `KRYOPTIC_CONF`; on PostgreSQL a new database, dropped at the end), is
//! logged in once, and opens one session per measuring thread. The scenarios are listed in
//! `scenarios.rs` (`--only` takes their ids); signers run at each thread count, with one token
//! key shared by every thread and with a session key per thread; the symmetric and KEM
//! scenarios with a token key and with a session key, from one thread. Each figure is measured
//! for `--seconds` (or exactly `--ops` operations, for callgrind), after an untimed warm-up
//! call, in each of `--rounds` rounds; a round measures every scenario on every module in turn,
//! so a module's figure and OpenSSL's are taken minutes apart at most. The table shows the
//! median of the rounds and its ratio to OpenSSL's median; `--json` writes one record per
//! scenario, module, thread count and key kind. An operation a module lacks is shown as "—"
//! and listed with its error; it never fails the run.
//!
//! `MODULE …` adds other PKCS#11 libraries as columns (a bare number first is the old
//! `-- SECONDS` form). `SQLHSM_BENCH_LIB` measures another build of sqlhsm in its place (an
//! older commit's, for a before/after table).
//!
//! Instructions per operation, which stay the same however busy the machine is, come from
//! callgrind with a fixed `--ops` count, taken at two counts so that set-up cancels out:
//!
//! ```sh
//! cargo build --profile profiling --lib --example bench
//! for n in 1000 2000; do valgrind --tool=callgrind --callgrind-out-file=cg.$n \
//!     target/profiling/examples/bench --ops $n --rounds 1 --threads 1 --no-softhsm \
//!     --only ecdsa-p256-sign; done
//! callgrind_annotate --inclusive=yes cg.2000 | grep -E ' C_Sign(Init)? '
//! ```

mod calls;
mod measure;
mod modules;
mod raw;
mod report;
/// `--scale N`: the scale series (its own argument parsing).
mod scale;
mod scenarios;

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use measure::{throughput, Budget};
use modules::{sqlhsm_path, Module, Spec, SOFTHSM};
use report::{Header, Report, OPENSSL};
use scenarios::{module_op, Made, ALL};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The message signed and verified by every signature scenario (for `CKM_ECDSA`, the hash).
const MESSAGE: &[u8; 32] = b"sqlhsm benchmark message 32 byte";

#[derive(Parser)]
#[command(about = "sqlhsm next to raw OpenSSL, SoftHSMv2 and Kryoptic")]
struct Options {
    /// Seconds per figure.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Exactly this many operations per figure instead of a duration (repeatable instruction
    /// counts under callgrind).
    #[arg(long)]
    ops: Option<u64>,
    /// Rounds; each figure is the median of the rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The thread counts of the signers.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4])]
    threads: Vec<usize>,
    /// Also measure sqlhsm on this PostgreSQL server (a database is created and dropped);
    /// default `SQLHSM_TEST_PG`.
    #[arg(long)]
    postgres: Option<String>,
    /// Write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Only the scenarios whose id contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// How many labelled token keys the lookup scenario searches among.
    #[arg(long, default_value_t = 1000)]
    lookup_keys: usize,
    /// Leave SoftHSMv2 out even when installed.
    #[arg(long)]
    no_softhsm: bool,
    /// [SECONDS] [MODULE …]: other PKCS#11 modules to measure.
    extra: Vec<String>,
}

fn main() -> Result<()> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    if all.first().is_some_and(|a| a.starts_with("--scale")) {
        return scale::main(&all);
    }
    let mut options = Options::parse();
    if let Some(seconds) = options.extra.first().and_then(|s| s.parse().ok()) {
        options.seconds = seconds;
        options.extra.remove(0);
    }
    let budget = Budget {
        time: Duration::from_secs_f64(options.seconds),
        ops: options.ops,
    };
    let max_threads = options.threads.iter().copied().max().unwrap_or(1).max(1);
    let scenarios: Vec<_> = ALL
        .iter()
        .filter(|s| options.only.is_empty() || options.only.iter().any(|o| s.id.contains(o)))
        .collect();
    let dir = tempfile::tempdir()?;
    let postgres = options
        .postgres
        .clone()
        .or_else(|| std::env::var("SQLHSM_TEST_PG").ok())
        .map(|url| pg::Database::create(&url))
        .transpose()?;
    let specs = specs(&options, dir.path(), postgres.as_ref())?;
    let load_before = load();

    let mut modules = Vec::new();
    let mut descriptions = Vec::new();
    for spec in &specs {
        match Module::open(spec, max_threads) {
            Ok(module) => {
                descriptions.push((module.name.clone(), module.description.clone()));
                modules.push(module);
            }
            Err(e) => eprintln!("{}: not measured: {e}", spec.name),
        }
    }
    let raw = raw::Raw::new()?;
    let mut report = Report::new(modules.iter().map(|m| m.name.clone()));
    for round in 1..=options.rounds {
        for (index, scenario) in scenarios.iter().enumerate() {
            let threads: &[usize] = if scenario.threaded() {
                &options.threads
            } else {
                &[1]
            };
            for &n in threads {
                let figure = |f: &Result<f64>| {
                    f.as_ref()
                        .map_or_else(|e| format!("— ({e})"), |f| report::number(*f))
                };
                if let Some(op) = raw.op(scenario.operation) {
                    let f = throughput(n, budget, &op);
                    eprintln!(
                        "round {round} {} ×{n} {OPENSSL}: {}",
                        scenario.id,
                        figure(&f)
                    );
                    report.add(index, n, None, OPENSSL, f);
                }
                for module in &modules {
                    for &kind in scenario.kinds() {
                        if report.failed(index, Some(kind), &module.name) {
                            continue;
                        }
                        let made = Made::default();
                        let f = module_op(module, scenario, kind, options.lookup_keys, &made)
                            .and_then(|op| throughput(n, budget, &op));
                        let cleaned = made.destroy(module);
                        eprintln!(
                            "round {round} {} ×{n} {} {}: {}",
                            scenario.id,
                            module.name,
                            kind.name(),
                            figure(&f)
                        );
                        report.add(
                            index,
                            n,
                            Some(kind),
                            &module.name,
                            f.and_then(|f| {
                                cleaned?;
                                Ok(f)
                            }),
                        );
                    }
                }
            }
        }
    }
    let header = Header {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        machine: machine(),
        load_before,
        load_after: load(),
        seconds_per_figure: options.seconds,
        ops_per_figure: options.ops,
        rounds: options.rounds,
        lookup_keys: options.lookup_keys,
        modules: descriptions,
    };
    println!(
        "{}; {}; load {} before, {} after",
        header.date, header.machine, header.load_before, header.load_after
    );
    match options.ops {
        Some(ops) => println!("{ops} operations per figure"),
        None => println!("{} s per figure", options.seconds),
    }
    println!(
        "median of {} rounds; lookups among {} labelled token keys",
        options.rounds, options.lookup_keys
    );
    for (name, description) in &header.modules {
        println!("{name}: {description}");
    }
    println!();
    print!("{}", report.table(&scenarios));
    let failures = report.failures(&scenarios);
    if !failures.is_empty() {
        println!("\nnot measured:");
        for line in failures {
            println!("- {line}");
        }
    }
    if let Some(path) = &options.json {
        report.write_json(path, &header, &scenarios)?;
    }
    for module in modules {
        let name = module.name.clone();
        if let Err(e) = module.close() {
            eprintln!("{name}: C_Finalize: {e}");
        }
    }
    if let Some(database) = postgres {
        database.drop_database()?;
    }
    Ok(())
}

/// The modules of this run, each with the environment that points it at its own store.
fn specs(
    options: &Options,
    dir: &std::path::Path,
    postgres: Option<&pg::Database>,
) -> Result<Vec<Spec>> {
    let conf = dir.join("sqlhsm.toml");
    // A cheap PIN KDF: the benchmark logs in once per module, and measures no login.
    std::fs::write(&conf, "[security]\npin_kdf_log_n = 12\n")?;
    let conf = conf.display().to_string();
    let sqlhsm = sqlhsm_path()?;
    let mut specs = vec![Spec {
        name: "sqlhsm (SQLite)".to_owned(),
        path: sqlhsm.clone(),
        env: vec![
            ("SQLHSM_CONF", conf.clone()),
            (
                "SQLHSM_DB",
                format!("sqlite:{}", dir.join("bench.db").display()),
            ),
        ],
    }];
    if let Some(database) = postgres {
        // A second copy of the library, so that both stores are measured in one process and
        // one run: a file of another name and inode is loaded as a module of its own.
        let copy = dir.join("libsqlhsm-postgres.so");
        std::fs::copy(&sqlhsm, &copy)?;
        specs.push(Spec {
            name: "sqlhsm (PostgreSQL)".to_owned(),
            path: copy,
            env: vec![("SQLHSM_CONF", conf), ("SQLHSM_DB", database.url.clone())],
        });
    }
    if !options.no_softhsm && std::path::Path::new(SOFTHSM).exists() {
        let tokens = dir.join("softhsm");
        std::fs::create_dir_all(&tokens)?;
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}\n", tokens.display()),
        )?;
        specs.push(Spec {
            name: "SoftHSMv2".to_owned(),
            path: SOFTHSM.into(),
            env: vec![("SOFTHSM2_CONF", conf.display().to_string())],
        });
    }
    if let Some(path) = std::env::var_os("SQLHSM_BENCH_KRYOPTIC") {
        let conf = dir.join("kryoptic.toml");
        std::fs::write(
            &conf,
            format!(
                "[[slots]]\nslot = 1\ndbtype = \"sqlite\"\ndbargs = \"{}\"\n",
                dir.join("kryoptic.sql").display()
            ),
        )?;
        specs.push(Spec {
            name: "Kryoptic".to_owned(),
            path: path.into(),
            env: vec![("KRYOPTIC_CONF", conf.display().to_string())],
        });
    }
    for path in &options.extra {
        let path = PathBuf::from(path);
        specs.push(Spec {
            name: path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            path,
            env: Vec::new(),
        });
    }
    Ok(specs)
}

/// "CPU model, N cores, Linux release".
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |r| r.trim().to_owned());
    format!("{cpu}, {cores} cores, Linux {kernel}")
}

/// The 1-minute load average.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

/// A database of the benchmark's own on a PostgreSQL server.
mod pg {
    use crate::Result;

    pub struct Database {
        /// The server's URL with this database in its path.
        pub url: String,
        server: String,
        name: String,
    }

    impl Database {
        pub fn create(server: &str) -> Result<Database> {
            let name = format!("sqlhsm_bench_{}", std::process::id());
            let mut client = postgres::Client::connect(server, postgres::NoTls)?;
            client.batch_execute(&format!("CREATE DATABASE {name}"))?;
            Ok(Database {
                url: with_database(server, &name)?,
                server: server.to_owned(),
                name,
            })
        }

        pub fn drop_database(self) -> Result<()> {
            let mut client = postgres::Client::connect(&self.server, postgres::NoTls)?;
            client.batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))?;
            Ok(())
        }
    }

    /// `url` with its database (the path) replaced by `name`, its query kept.
    fn with_database(url: &str, name: &str) -> Result<String> {
        let (base, query) = url
            .split_once('?')
            .map_or((url, None), |(b, q)| (b, Some(q)));
        let authority = base.find("://").ok_or("not a postgres:// URL")? + 3;
        let path = base[authority..]
            .find('/')
            .map_or(base.len(), |i| i + authority);
        let mut out = format!("{}/{name}", &base[..path]);
        if let Some(query) = query {
            out.push('?');
            out.push_str(query);
        }
        Ok(out)
    }
}

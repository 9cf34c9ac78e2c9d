//! Writes the manual pages of the `sqlhsm` admin command, generated from its clap definitions
//! (the `Cli` parser of `src/bin/sqlhsm.rs`, compiled here as a module, so the pages always
//! describe the command as built): `sqlhsm.1`, and one page per subcommand
//! (`sqlhsm-token.1`, `sqlhsm-token-init.1`, `sqlhsm-key-generate.1`, …).
//!
//! ```sh
//! cargo run --release --example man -- target/release/man   # what `make` runs
//! man -l target/release/man/sqlhsm.1
//! ```
//!
//! Nothing is written anywhere else: `build.rs` writes only into `OUT_DIR`, so the pages are
//! made here rather than at every build.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;

// Only the parser is used here; the command's own `main` and `run` are not.
#[allow(dead_code)]
#[path = "../src/bin/sqlhsm.rs"]
mod cli;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: cargo run --example man -- DIRECTORY");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    match write_pages(&dir) {
        Ok(pages) => {
            println!("{} manual pages in {}", pages, dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("man: cannot write the pages into {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

/// The page of `command` and of each of its subcommands, recursively; returns how many.
fn write_pages(dir: &std::path::Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    // As clap_mangen::generate_to: no `help` subcommand page, and subcommands built so that
    // each carries its full name (`sqlhsm-key-generate`) and the global options.
    let mut command = cli::Cli::command().disable_help_subcommand(true);
    command.build();
    let mut count = 0;
    let mut pending = vec![command];
    while let Some(command) = pending.pop() {
        pending.extend(
            command
                .get_subcommands()
                .filter(|c| !c.is_hide_set())
                .cloned(),
        );
        clap_mangen::Man::new(command)
            .manual("sqlhsm manual")
            .generate_to(dir)?;
        count += 1;
    }
    Ok(count)
}

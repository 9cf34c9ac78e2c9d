//! Diagnostics on stderr through `tracing`.
//!
//! The module lives inside someone else's process, so installing the subscriber is polite: at
//! most once per process, and never an error or a panic when the host already installed its own
//! (then our events go to the host's subscriber).
//!
//! Some failures happen before there is a log level to honour — an invalid configuration makes
//! `C_Initialize` fail before the subscriber exists. Those are printed on stderr as one
//! `sqlhsm: …` line by [`report_once`], whatever the log settings, and once per distinct
//! message per process: an application retrying `C_Initialize` in a loop prints it once. The
//! admin command prints its errors through [`print_error`], so both say the same words.
//!
//! Colour (ANSI escapes) only when stderr is a terminal: inside another program, a CI log or a
//! pipe the lines are plain text.
//!
//! The admin command holds the module's log lines back ([`init_held`]) unless `SQLHSM_LOG`
//! asks for them: when the command fails, its own one-line message says what went wrong and the
//! lines that led to it are dropped ([`drop_held`]), so an operator reads one clear message,
//! not the same cause three times; when it succeeds, whatever was logged is printed after all
//! ([`release_held`]).

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::EnvFilter;

static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Installs a stderr `fmt` subscriber at `level` (`error|warn|info|debug|trace`; anything else
/// means `warn`). Only the first call in a process does anything. Returns whether this module's
/// subscriber is the global one.
pub fn init(level: &str) -> bool {
    *INSTALLED.get_or_init(|| install(level, false))
}

/// [`init`] for the admin command when `SQLHSM_LOG` is not set: the lines are kept in memory
/// until [`release_held`] prints them or [`drop_held`] forgets them.
pub fn init_held(level: &str) -> bool {
    *INSTALLED.get_or_init(|| install(level, true))
}

fn install(level: &str, held: bool) -> bool {
    let filter = EnvFilter::try_new(level.trim().to_ascii_lowercase())
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true);
    match held {
        true => {
            *lock_held() = Some(Vec::new());
            builder.with_writer(|| HeldWriter).try_init().is_ok()
        }
        false => builder.with_writer(std::io::stderr).try_init().is_ok(),
    }
}

/// Log output held back by [`init_held`]; `None` when nothing is held.
static HELD: Mutex<Option<Vec<u8>>> = Mutex::new(None);

fn lock_held() -> std::sync::MutexGuard<'static, Option<Vec<u8>>> {
    // A poisoned buffer only means a thread panicked while appending: it is still bytes.
    HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct HeldWriter;

impl Write for HeldWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match lock_held().as_mut() {
            Some(held) => held.extend_from_slice(bytes),
            // Released already: later lines go straight out.
            None => std::io::stderr().write_all(bytes)?,
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Prints the held lines on stderr; later lines are printed as they come.
pub fn release_held() {
    if let Some(held) = lock_held().take() {
        let _ = std::io::stderr().write_all(&held);
    }
}

/// Forgets the held lines (the command's own message says what failed); later lines are
/// printed as they come.
pub fn drop_held() {
    lock_held().take();
}

/// Distinct lines [`report_once`] has printed in this process.
static REPORTED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// `sqlhsm: <message>`: the one form an error takes on stderr.
pub fn error_line(message: &dyn std::fmt::Display) -> String {
    format!("sqlhsm: {}", message.to_string().trim_end())
}

/// Prints [`error_line`] on stderr.
pub fn print_error(message: &dyn std::fmt::Display) {
    eprintln!("{}", error_line(message));
}

/// Prints [`error_line`] on stderr unless this process printed the same line before. Returns
/// whether it printed.
pub fn report_once(message: &dyn std::fmt::Display) -> bool {
    let line = error_line(message);
    // A poisoned set only means another thread panicked while inserting: the set is still a set.
    let mut reported = REPORTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !reported
        .get_or_insert_with(HashSet::new)
        .insert(line.clone())
    {
        return false;
    }
    drop(reported);
    eprintln!("{line}");
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn init_is_idempotent_and_never_panics() {
        let first = init("not a level !!");
        assert_eq!(init("debug"), first, "later calls change nothing");
        assert_eq!(init(""), first);
        tracing::warn!("logging test event");
    }

    #[test]
    fn report_once_prints_each_distinct_line_once() {
        let first = crate::error::Error::Config("logging test: x is wrong".into());
        assert_eq!(
            error_line(&first),
            "sqlhsm: configuration: logging test: x is wrong"
        );
        assert!(report_once(&first));
        assert!(!report_once(&first), "the same line again is not printed");
        assert!(report_once(&"logging test: something else"));
    }
}

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

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::EnvFilter;

static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Installs a stderr `fmt` subscriber at `level` (`error|warn|info|debug|trace`; anything else
/// means `warn`). Only the first call in a process does anything. Returns whether this module's
/// subscriber is the global one.
pub fn init(level: &str) -> bool {
    *INSTALLED.get_or_init(|| {
        let filter = EnvFilter::try_new(level.trim().to_ascii_lowercase())
            .unwrap_or_else(|_| EnvFilter::new("warn"));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(true)
            .try_init()
            .is_ok()
    })
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

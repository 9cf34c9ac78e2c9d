//! Diagnostics on stderr through `tracing`.
//!
//! The module lives inside someone else's process, so installing the subscriber is polite: at
//! most once per process, and never an error or a panic when the host already installed its own
//! (then our events go to the host's subscriber).

use std::sync::OnceLock;

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
}

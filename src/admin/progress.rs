//! Progress of long operations (RSA-4096 generation, `db check` over many keys, importing many
//! files), drawn on stderr with `indicatif` — only when stderr is a terminal. Piped, redirected
//! or in CI nothing is drawn at all, so the output a program reads stays exactly the report.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar or spinner, or nothing when stderr is not a terminal. Cleared when dropped.
pub struct Progress(Option<ProgressBar>);

/// Whether progress is drawn: stderr is a terminal.
pub fn shown() -> bool {
    std::io::stderr().is_terminal()
}

impl Progress {
    /// No progress to show.
    pub fn none() -> Progress {
        Progress(None)
    }

    /// A bar over `total` steps, e.g. the keys `db check` opens.
    pub fn bar(total: u64, what: &str) -> Progress {
        if !shown() || total == 0 {
            return Progress(None);
        }
        let bar = ProgressBar::new(total);
        if let Ok(style) =
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(what.to_string());
        Progress(Some(bar))
    }

    /// A spinner for one step of unknown length, e.g. an RSA-4096 key generation.
    pub fn spinner(what: &str) -> Progress {
        if !shown() {
            return Progress(None);
        }
        let spinner = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            spinner.set_style(style);
        }
        spinner.set_message(what.to_string());
        spinner.enable_steady_tick(Duration::from_millis(120));
        Progress(Some(spinner))
    }

    /// One step done.
    pub fn inc(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    /// What is being worked on now (a token's label, a file name).
    pub fn message(&self, text: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(text.to_string());
        }
    }

    pub fn is_drawn(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_drawn_without_a_terminal() {
        // Test runners capture stderr (a pipe or file); under a terminal this proves nothing.
        if shown() {
            return;
        }
        assert!(!Progress::bar(10, "x").is_drawn());
        assert!(!Progress::spinner("x").is_drawn());
        assert!(!Progress::bar(0, "x").is_drawn());
    }
}

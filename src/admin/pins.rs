//! Where PINs come from: `--pin-file` / `--so-pin-file`, the environment (`SQLHSM_PIN`,
//! `SQLHSM_SO_PIN`), or a hidden prompt on the terminal; a replacement PIN (`token set-pin`)
//! from `--new-pin-file`, `SQLHSM_NEW_PIN` or a prompt asked twice. Never the command line: a PIN in argv
//! is visible to every user of the machine (`ps`) and lands in shell history.

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::{who, AdminResult, Failure};
use crate::core::token::PinOwner;

pub const ENV_USER_PIN: &str = "SQLHSM_PIN";
pub const ENV_SO_PIN: &str = "SQLHSM_SO_PIN";
/// The new PIN of `token set-pin`.
pub const ENV_NEW_PIN: &str = "SQLHSM_NEW_PIN";

/// The configured PIN sources.
#[derive(Clone, Debug, Default)]
pub struct PinSource {
    /// `--pin-file`: the user PIN (first line).
    pub user_file: Option<PathBuf>,
    /// `--so-pin-file`: the SO PIN (first line).
    pub so_file: Option<PathBuf>,
    /// `--new-pin-file` of `token set-pin`: the new PIN (first line).
    pub new_file: Option<PathBuf>,
}

fn env_name(owner: PinOwner) -> &'static str {
    match owner {
        PinOwner::User => ENV_USER_PIN,
        PinOwner::So => ENV_SO_PIN,
    }
}

/// The first line of a PIN file, without its line ending.
pub fn read_pin_file(path: &std::path::Path) -> AdminResult<Zeroizing<String>> {
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Failure::usage(format!("cannot read PIN file {}: {e}", path.display()))
        })?);
    let line = text.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(Failure::usage(format!(
            "PIN file {} is empty",
            path.display()
        )));
    }
    Ok(Zeroizing::new(line.to_string()))
}

impl PinSource {
    fn file(&self, owner: PinOwner) -> Option<&PathBuf> {
        match owner {
            PinOwner::User => self.user_file.as_ref(),
            PinOwner::So => self.so_file.as_ref(),
        }
    }

    /// The PIN from a file or the environment, if one is configured (no prompt).
    pub fn configured(&self, owner: PinOwner) -> AdminResult<Option<Zeroizing<String>>> {
        if let Some(path) = self.file(owner) {
            return read_pin_file(path).map(Some);
        }
        Ok(std::env::var(env_name(owner))
            .ok()
            .filter(|p| !p.is_empty())
            .map(Zeroizing::new))
    }

    /// The PIN for `owner` on the token `label`: configured, or else asked for on the terminal.
    pub fn pin(&self, owner: PinOwner, label: &str) -> AdminResult<Zeroizing<String>> {
        if let Some(pin) = self.configured(owner)? {
            return Ok(pin);
        }
        prompt(&format!("{} PIN for token {label:?}: ", who(owner)))
    }

    /// A new PIN (token initialisation): configured, or asked for twice on the terminal.
    pub fn new_pin(&self, owner: PinOwner, label: &str) -> AdminResult<Zeroizing<String>> {
        if let Some(pin) = self.configured(owner)? {
            return Ok(pin);
        }
        let first = prompt(&format!("new {} PIN for token {label:?}: ", who(owner)))?;
        let again = prompt(&format!("repeat the new {} PIN: ", who(owner)))?;
        if *first != *again {
            return Err(Failure::usage("the PINs differ"));
        }
        Ok(first)
    }
}

impl PinSource {
    /// The PIN that replaces `owner`'s (`token set-pin`): `--new-pin-file`, `SQLHSM_NEW_PIN`,
    /// or asked twice on the terminal. Never `SQLHSM_PIN` / `SQLHSM_SO_PIN`, which hold the
    /// PIN that proves who acts.
    pub fn replacement(&self, owner: PinOwner, label: &str) -> AdminResult<Zeroizing<String>> {
        if let Some(path) = &self.new_file {
            return read_pin_file(path);
        }
        if let Some(pin) = std::env::var(ENV_NEW_PIN).ok().filter(|p| !p.is_empty()) {
            return Ok(Zeroizing::new(pin));
        }
        let first = prompt(&format!("new {} PIN for token {label:?}: ", who(owner)))?;
        let again = prompt(&format!("repeat the new {} PIN: ", who(owner)))?;
        if *first != *again {
            return Err(Failure::usage("the PINs differ"));
        }
        Ok(first)
    }
}

/// A hidden prompt on the controlling terminal; a usage error when there is none.
fn prompt(text: &str) -> AdminResult<Zeroizing<String>> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!(
            "a PIN is needed and there is no terminal to ask on: set {ENV_USER_PIN} / {ENV_SO_PIN} (a new PIN: {ENV_NEW_PIN}) or use --pin-file / --so-pin-file (--new-pin-file)"
        )));
    }
    let pin = rpassword::prompt_password(text)
        .map_err(|e| Failure::usage(format!("cannot read the PIN: {e}")))?;
    if pin.is_empty() {
        return Err(Failure::usage("empty PIN"));
    }
    Ok(Zeroizing::new(pin))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pin_file_first_line_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "1234\nignored\n").unwrap();
        assert_eq!(read_pin_file(&path).unwrap().as_str(), "1234");
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(
            read_pin_file(&path).unwrap_err().code,
            super::super::EXIT_USAGE
        );
        let source = PinSource {
            user_file: Some(dir.path().join("missing")),
            ..PinSource::default()
        };
        assert_eq!(
            source.configured(PinOwner::User).unwrap_err().code,
            super::super::EXIT_USAGE
        );
    }
}

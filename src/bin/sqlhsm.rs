//! `sqlhsm`: administration of sqlhsm tokens and keys. A thin clap front end over
//! `sqlhsm::admin`, which drives the module's own core in-process.
#![deny(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sqlhsm::admin::keys::KeyQuery;
use sqlhsm::admin::keys::{parse_duration, parse_expiration, parse_gen_algorithm, parse_status};
use sqlhsm::admin::objects::ObjectKind;
use sqlhsm::admin::pins::PinSource;
use sqlhsm::admin::tokens::PinChange;
use sqlhsm::admin::{Admin, AdminResult, Failure, Options, EXIT_REFUSED, EXIT_USAGE};
use sqlhsm::key_algorithm::KeyAlgorithm;
use sqlhsm::provider::{OnDestroy, PinSource as RemotePin, Pkcs11Provider, RemoteUse};

const AFTER_HELP: &str = "\
PINs are never taken from the command line: they come from --pin-file / --so-pin-file, the
environment (SQLHSM_PIN for the user PIN, SQLHSM_SO_PIN for the SO PIN), or a hidden prompt.
A new PIN (`token set-pin`) comes from --new-pin-file, SQLHSM_NEW_PIN or a prompt.

`token delete` and `key destroy` ask for confirmation on a terminal; without one they refuse
unless --yes is given. Long operations (RSA generation, `db check`, importing many files) show
progress on stderr when it is a terminal, and nothing otherwise.

Errors are one line on stderr (`sqlhsm: …`); set SQLHSM_LOG=info (or debug) to see the module's
log lines as they happen.

The store is the module's: SQLHSM_DB, else the file named by SQLHSM_CONF (or
~/.config/sqlhsm/sqlhsm.toml), else the default SQLite file; --db overrides them.

Only `token init` and `db migrate` create a store that does not exist yet; every other command
on a missing SQLite file says so and creates nothing.

Exit codes:
  0  success
  1  the operation was refused, what it names does not exist, or `db check` found a problem
     or could not verify sealed keys (no PIN and no --structure-only)
  2  usage error (bad arguments, no PIN available, no confirmation without a terminal,
     invalid configuration)
  3  the key store is missing, unreachable, or refuses access (file permissions, a read-only
     file, a privilege the database role lacks)";

#[derive(Parser)]
#[command(name = "sqlhsm", version, about = "Administer sqlhsm tokens and keys", after_help = AFTER_HELP)]
pub(crate) struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Database URL (sqlite:/path or postgres://…); overrides SQLHSM_DB and the config file.
    #[arg(long, global = true, value_name = "URL")]
    db: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    /// File whose first line is the user PIN (instead of SQLHSM_PIN or a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// File whose first line is the SO PIN (instead of SQLHSM_SO_PIN or a prompt).
    #[arg(long, global = true, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Tokens: init, list, show, delete, set-pin, unlock.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Keys: list, show, generate, import, export-public, rotate, set-status, set-expiration,
    /// destroy, history.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Certificates (X.509 objects): list, show.
    #[command(subcommand)]
    Cert(ObjectCommand),
    /// Data objects (CKO_DATA): list, show.
    #[command(subcommand)]
    Data(ObjectCommand),
    /// The store: migrate, status, check.
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token with an SO PIN and a user PIN; `--provider pkcs11` puts it in front of
    /// another PKCS#11 module (an HSM).
    Init {
        /// The new token's label (1 to 32 bytes, unique in the store).
        label: String,
        #[command(flatten)]
        provider: ProviderArgs,
    },
    /// List the tokens.
    List,
    /// Show one token.
    Show {
        /// The token's label.
        label: String,
    },
    /// Delete a token and all its keys (needs the SO PIN; asks for confirmation).
    Delete {
        /// The token's label.
        label: String,
        /// Do not ask for confirmation (needed when standard input is not a terminal).
        #[arg(long, short)]
        yes: bool,
    },
    /// Change a PIN: the user's own (proving the current user PIN, as C_SetPIN), the user PIN
    /// set by the SO (`user --so`, as C_InitPIN: for a forgotten or locked PIN), or the SO PIN.
    SetPin {
        /// The token's label.
        label: String,
        /// Whose PIN changes: `user` or `so`.
        #[arg(value_parser = ["user", "so"], default_value = "user")]
        which: String,
        /// Act as the security officer (SO PIN) to set a new user PIN without the old one.
        #[arg(long)]
        so: bool,
        /// File whose first line is the new PIN (instead of SQLHSM_NEW_PIN or a prompt).
        #[arg(long, value_name = "FILE")]
        new_pin_file: Option<PathBuf>,
    },
    /// Unlock the user PIN after too many wrong guesses, keeping the PIN (needs the SO PIN).
    /// A locked SO PIN cannot be unlocked.
    Unlock {
        /// The token's label.
        label: String,
    },
}

/// `cert …` and `data …`.
#[derive(Subcommand)]
enum ObjectCommand {
    /// List the objects (certificates: subject and expiry; data objects: application, size).
    List {
        /// Only the objects of this token.
        #[arg(long, value_name = "LABEL")]
        token: Option<String>,
    },
    /// Show one object (a certificate's subject, issuer, serial number and validity).
    Show {
        /// The OBJECT_ID `list` shows (the object's CKA_UNIQUE_ID), or a label only one object
        /// has.
        object: String,
    },
}

/// Where a new token keeps its keys.
#[derive(Args)]
struct ProviderArgs {
    /// `local` (keys sealed in the database) or `pkcs11` (another PKCS#11 module).
    #[arg(long, default_value = "local", value_parser = ["local", "pkcs11"])]
    provider: String,
    /// Path of the remote PKCS#11 module (with --provider pkcs11).
    #[arg(long)]
    module: Option<std::path::PathBuf>,
    /// Label of the token in the remote module.
    #[arg(long)]
    remote_token: Option<String>,
    /// Serial number of the token in the remote module.
    #[arg(long)]
    remote_serial: Option<String>,
    /// Environment variable holding the remote user PIN when sqlhsm runs.
    #[arg(long, conflicts_with = "remote_pin_file")]
    remote_pin_env: Option<String>,
    /// File holding the remote user PIN (first line).
    #[arg(long)]
    remote_pin_file: Option<std::path::PathBuf>,
    /// `remote`: keys are made and used in the remote module (key mode REMOTE);
    /// `provider-root-key`: keys are sealed locally under a token key that only the remote
    /// module's root key can open (key mode PROVIDER_ROOT_KEY).
    #[arg(long, default_value = "remote", value_parser = ["remote", "provider-root-key"])]
    key_mode: String,
    /// What destroying a REMOTE key does to the remote object: `destroy` or `keep` (relabelled).
    #[arg(long, default_value = "destroy", value_parser = ["destroy", "keep"])]
    on_destroy: String,
}

impl ProviderArgs {
    fn into_provider(self) -> Result<Option<Pkcs11Provider>, Failure> {
        if self.provider == "local" {
            return Ok(None);
        }
        let module = self
            .module
            .ok_or_else(|| Failure::usage("--provider pkcs11 needs --module"))?;
        if self.remote_token.is_none() && self.remote_serial.is_none() {
            return Err(Failure::usage(
                "--provider pkcs11 needs --remote-token or --remote-serial",
            ));
        }
        let pin = match (self.remote_pin_env, self.remote_pin_file) {
            (Some(name), None) => RemotePin::Env(name),
            (None, Some(path)) => RemotePin::File(path),
            _ => {
                return Err(Failure::usage(
                    "--provider pkcs11 needs --remote-pin-env or --remote-pin-file (the PIN is never stored)",
                ))
            }
        };
        Ok(Some(Pkcs11Provider {
            module,
            token_label: self.remote_token,
            token_serial: self.remote_serial,
            pin,
            use_for: match self.key_mode.as_str() {
                "provider-root-key" => RemoteUse::RootKey,
                _ => RemoteUse::Keys,
            },
            on_destroy: match self.on_destroy.as_str() {
                "keep" => OnDestroy::Keep,
                _ => OnDestroy::Destroy,
            },
            root_key: None,
        }))
    }
}

/// The names of `algorithms` (rows of the key-algorithm table), for `--algorithm`'s help.
fn algorithm_names(algorithms: impl Iterator<Item = &'static KeyAlgorithm>) -> String {
    let names: Vec<&str> = algorithms.map(|a| a.name).collect();
    format!("{}.", names.join(", "))
}

#[derive(Subcommand)]
enum KeyCommand {
    /// List keys (the status shown is the effective one: expired once the expiration passed).
    List {
        /// Only the keys of this token.
        #[arg(long, value_name = "LABEL")]
        token: Option<String>,
        /// active, inactive, compromised or expired.
        #[arg(long, value_parser = parse_status_arg)]
        status: Option<i32>,
        #[arg(long, help = algorithm_names(sqlhsm::key_algorithm::ALGORITHMS.iter().copied()))]
        algorithm: Option<String>,
        /// Only keys whose expiration falls within this duration from now (30d, 12h, 2w).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expiring_within: Option<chrono::Duration>,
    },
    /// Show one key.
    Show {
        /// The key's key_id (as `key list` shows it).
        key_id: String,
    },
    /// Generate a key on a token (a random CKA_ID unless --id gives one).
    Generate {
        /// The token to generate on.
        #[arg(long, value_name = "LABEL")]
        token: String,
        #[arg(
            long,
            value_parser = parse_gen_algorithm,
            help = algorithm_names(sqlhsm::admin::keys::generatable())
        )]
        algorithm: &'static KeyAlgorithm,
        /// CKA_LABEL.
        #[arg(long)]
        label: Option<String>,
        /// CKA_ID in hex (also the key_id when free), for `pkcs11-tool --id`; without it the
        /// key gets 8 random bytes, whose hex is then its key_id.
        #[arg(long, value_name = "HEX", value_parser = parse_hex)]
        id: Option<HexId>,
    },
    /// Import keys: PEM or DER private keys (PKCS#8, PKCS#1, SEC1), public keys (SPKI,
    /// PKCS#1), or raw AES key bytes with --aes; one key per file.
    Import {
        /// The token to import into.
        #[arg(long, value_name = "LABEL")]
        token: String,
        /// The key files (several: a progress bar on a terminal; stops at the first failure).
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// The files hold raw AES key bytes (16, 24 or 32).
        #[arg(long)]
        aes: bool,
        /// CKA_LABEL (one file only).
        #[arg(long)]
        label: Option<String>,
        /// CKA_ID in hex (one file only); without it the key gets a random one.
        #[arg(long, value_name = "HEX", value_parser = parse_hex)]
        id: Option<HexId>,
    },
    /// Print a key's public key as PEM (SubjectPublicKeyInfo); with --json, an object with the
    /// key's identity and the PEM as "pem".
    ExportPublic {
        /// The key's key_id.
        key_id: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Generate a successor; the key becomes inactive and the two are linked. The successor
    /// takes the key's label and CKA_ID unless given new ones; the key gives up the names the
    /// successor takes, becoming LABEL@KEY_ID (and CKA_ID followed by the bytes of "@KEY_ID"),
    /// and so do its certificates, so a search by the name finds the successor alone. A key is
    /// rotated once: rotate its successor next.
    Rotate {
        /// The key to rotate.
        key_id: String,
        /// CKA_LABEL of the successor (default: the key's; the key then becomes LABEL@KEY_ID).
        #[arg(long)]
        label: Option<String>,
        /// CKA_ID of the successor, in hex (default: the key's; the key's CKA_ID then gets the
        /// bytes of "@KEY_ID" appended).
        #[arg(long, value_name = "HEX", value_parser = parse_hex)]
        id: Option<HexId>,
    },
    /// Change a key's status: active, inactive, compromised (final) or expired (now; only the
    /// SO brings it back, with `set-expiration … --so`).
    SetStatus {
        /// The key's key_id.
        key_id: String,
        /// active, inactive, compromised or expired.
        #[arg(value_parser = parse_status_arg)]
        status: i32,
    },
    /// Set a key's expiration: RFC 3339, YYYY-MM-DD (valid through that day, UTC) or never.
    SetExpiration {
        /// The key's key_id.
        key_id: String,
        /// The new expiration.
        #[arg(value_name = "DATE|never", value_parser = parse_expiration)]
        expiration: ExpirationArg,
        /// Act as the security officer (SO PIN): needed to bring an expired key back.
        #[arg(long)]
        so: bool,
    },
    /// Destroy a key (its history is kept; asks for confirmation).
    Destroy {
        /// The key's key_id.
        key_id: String,
        /// Do not ask for confirmation (needed when standard input is not a terminal).
        #[arg(long, short)]
        yes: bool,
    },
    /// A key's history (kept after the key is destroyed).
    History {
        /// The key's key_id (also of a destroyed key).
        key_id: String,
    },
}

type ExpirationArg = Option<chrono::DateTime<chrono::Utc>>;

#[derive(Subcommand)]
enum DbCommand {
    /// Apply pending migrations and print the schema version.
    Migrate,
    /// Backend, URL (password redacted), schema version and counts.
    Status,
    /// Verify the store: the database role's privileges, every key's row, and that every
    /// sealed key unwraps under its token key and matches its public key (user PIN from
    /// SQLHSM_PIN or --pin-file). Exit 1 on a problem, or when sealed keys could not be opened
    /// for want of a PIN (unless --structure-only).
    Check {
        /// Check only what needs no PIN (privileges, rows, public keys, rotation links): sealed
        /// key material is not opened, and that is not a failure.
        #[arg(long)]
        structure_only: bool,
    },
}

fn parse_status_arg(text: &str) -> Result<i32, String> {
    parse_status(text).map_err(|f| f.message)
}

/// `--id HEX` (a newtype: clap would read a bare `Vec<u8>` as a list of numbers).
#[derive(Clone, Debug)]
struct HexId(Vec<u8>);

fn parse_hex(text: &str) -> Result<HexId, String> {
    let bytes = hex::decode(text.trim()).map_err(|e| format!("not hex: {e}"))?;
    if bytes.is_empty() {
        return Err("an empty CKA_ID".into());
    }
    Ok(HexId(bytes))
}

fn run(cli: Cli) -> AdminResult<(String, bool)> {
    let options = Options {
        db: cli.global.db,
        json: cli.global.json,
        pins: PinSource {
            user_file: cli.global.pin_file,
            so_file: cli.global.so_pin_file,
            new_file: match &cli.command {
                Command::Token(TokenCommand::SetPin { new_pin_file, .. }) => new_pin_file.clone(),
                _ => None,
            },
        },
    };
    // Only these two may bring a store into being; the rest need one that exists.
    let creates = matches!(
        cli.command,
        Command::Token(TokenCommand::Init { .. }) | Command::Db(DbCommand::Migrate)
    );
    let admin = match creates {
        true => Admin::open_creating(options)?,
        false => Admin::open(options)?,
    };
    let ok = |text: String| Ok((text, true));
    match cli.command {
        Command::Token(command) => match command {
            TokenCommand::Init { label, provider } => {
                ok(admin.token_init(&label, provider.into_provider()?)?)
            }
            TokenCommand::List => ok(admin.token_list()?),
            TokenCommand::Show { label } => ok(admin.token_show(&label)?),
            TokenCommand::Delete { label, yes } => ok(admin.token_delete(&label, yes)?),
            TokenCommand::SetPin {
                label, which, so, ..
            } => {
                let change = match (which.as_str(), so) {
                    ("so", _) => PinChange::So,
                    (_, true) => PinChange::UserBySo,
                    _ => PinChange::UserOwn,
                };
                ok(admin.token_set_pin(&label, change)?)
            }
            TokenCommand::Unlock { label } => ok(admin.token_unlock(&label)?),
        },
        Command::Key(command) => match command {
            KeyCommand::List {
                token,
                status,
                algorithm,
                expiring_within,
            } => {
                let query = KeyQuery {
                    token,
                    status,
                    algorithm,
                    expiring_within,
                };
                // Straight to stdout as the rows are read, not gathered into one string.
                admin.key_list_to(&query, &mut std::io::stdout().lock())?;
                ok(String::new())
            }
            KeyCommand::Show { key_id } => ok(admin.key_show(&key_id)?),
            KeyCommand::Generate {
                token,
                algorithm,
                label,
                id,
            } => ok(admin.key_generate(
                &token,
                algorithm,
                label.as_deref(),
                id.as_ref().map(|h| h.0.as_slice()),
            )?),
            KeyCommand::Import {
                token,
                files,
                aes,
                label,
                id,
            } => ok(admin.key_import(
                &token,
                &files,
                aes,
                label.as_deref(),
                id.as_ref().map(|h| h.0.as_slice()),
            )?),
            KeyCommand::ExportPublic { key_id, out } => {
                let pem = admin.key_export_public_output(&key_id)?;
                match out {
                    Some(path) => {
                        std::fs::write(&path, pem).map_err(|e| {
                            Failure::usage(format!("cannot write {}: {e}", path.display()))
                        })?;
                        ok(String::new())
                    }
                    None => ok(pem),
                }
            }
            KeyCommand::Rotate { key_id, label, id } => {
                ok(admin.key_rotate(&key_id, label, id.map(|id| id.0))?)
            }
            KeyCommand::SetStatus { key_id, status } => ok(admin.key_set_status(&key_id, status)?),
            KeyCommand::SetExpiration {
                key_id,
                expiration,
                so,
            } => ok(admin.key_set_expiration(&key_id, expiration, so)?),
            KeyCommand::Destroy { key_id, yes } => ok(admin.key_destroy(&key_id, yes)?),
            KeyCommand::History { key_id } => ok(admin.key_history(&key_id)?),
        },
        Command::Cert(command) => ok(objects(&admin, ObjectKind::Certificate, command)?),
        Command::Data(command) => ok(objects(&admin, ObjectKind::Data, command)?),
        Command::Db(command) => match command {
            DbCommand::Migrate => ok(admin.db_migrate()?),
            DbCommand::Status => ok(admin.db_status()?),
            DbCommand::Check { structure_only } => admin.db_check(structure_only),
        },
    }
}

fn objects(admin: &Admin, kind: ObjectKind, command: ObjectCommand) -> AdminResult<String> {
    match command {
        ObjectCommand::List { token } => admin.object_list(kind, token.as_deref()),
        ObjectCommand::Show { object } => admin.object_show(kind, &object),
    }
}

fn main() -> ExitCode {
    // First of all: sqlhsm's private OpenSSL must never read the host's OPENSSL_CONF.
    if !sqlhsm::ffi::process::isolate_crypto() {
        eprintln!("sqlhsm: OpenSSL could not be initialised");
        return ExitCode::FAILURE;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Asked for, the module's log lines come as they happen; otherwise the errors are held
    // back, and printed only when the command's own message does not already say what failed.
    match std::env::var("SQLHSM_LOG")
        .ok()
        .filter(|l| !l.trim().is_empty())
    {
        Some(level) => sqlhsm::logging::init(&level),
        None => sqlhsm::logging::init_held("error"),
    };
    match run(cli) {
        Ok((text, fine)) => {
            sqlhsm::logging::release_held();
            print!("{text}");
            if fine {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_REFUSED)
            }
        }
        Err(failure) => {
            sqlhsm::logging::drop_held();
            // The module prints its configuration errors through the same function.
            sqlhsm::logging::print_error(&failure.message);
            ExitCode::from(failure.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every subcommand and every argument (positional, option, flag; global ones included)
    /// says what it is: `--help` and the man page are made from these texts.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} <{id}>"));
                }
            }
            for sub in command.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_name() != "help" && sub.get_about().is_none() {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
        }
        let command = Cli::command();
        command.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&command, "sqlhsm", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:#?}");
    }
}

//! `sqlhsm`: administration of sqlhsm tokens and keys. A thin clap front end over
//! `sqlhsm::admin`, which drives the module's own core in-process.
#![deny(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sqlhsm::admin::keys::{parse_duration, parse_expiration, parse_gen_algorithm, parse_status};
use sqlhsm::admin::keys::{GenAlgorithm, KeyQuery};
use sqlhsm::admin::pins::PinSource;
use sqlhsm::admin::{Admin, AdminResult, Failure, Options, EXIT_REFUSED, EXIT_USAGE};
use sqlhsm::provider::{OnDestroy, PinSource as RemotePin, Pkcs11Provider, RemoteUse};

const AFTER_HELP: &str = "\
PINs are never taken from the command line: they come from --pin-file / --so-pin-file, the
environment (SQLHSM_PIN for the user PIN, SQLHSM_SO_PIN for the SO PIN), or a hidden prompt.

The store is the module's: SQLHSM_DB, else the file named by SQLHSM_CONF (or
~/.config/sqlhsm/sqlhsm.toml), else the default SQLite file; --db overrides them.

Only `token init` and `db migrate` create a store that does not exist yet; every other command
on a missing SQLite file says so and creates nothing.

Exit codes:
  0  success
  1  the operation was refused, what it names does not exist, or `db check` found a problem
  2  usage error (bad arguments, no PIN available, invalid configuration)
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
    /// Tokens: init, list, show, delete.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Keys: list, show, generate, import, export-public, rotate, set-status, set-expiration,
    /// destroy, history.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The store: migrate, status, check.
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token with an SO PIN and a user PIN; `--provider pkcs11` puts it in front of
    /// another PKCS#11 module (an HSM).
    Init {
        label: String,
        #[command(flatten)]
        provider: ProviderArgs,
    },
    /// List the tokens.
    List,
    /// Show one token.
    Show { label: String },
    /// Delete a token and all its keys (needs the SO PIN).
    Delete { label: String },
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

#[derive(Subcommand)]
enum KeyCommand {
    /// List keys (the status shown is the effective one: expired once the expiration passed).
    List {
        #[arg(long, value_name = "LABEL")]
        token: Option<String>,
        /// active, inactive, compromised or expired.
        #[arg(long, value_parser = parse_status_arg)]
        status: Option<i32>,
        /// rsa-2048, rsa-3072, rsa-4096, rsa-other, ec-p256, ec-p384, ec-p521, ed25519,
        /// aes-128, aes-192, aes-256, generic-secret.
        #[arg(long)]
        algorithm: Option<String>,
        /// Only keys whose expiration falls within this duration from now (30d, 12h, 2w).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expiring_within: Option<chrono::Duration>,
    },
    /// Show one key.
    Show { key_id: String },
    /// Generate a key on a token.
    Generate {
        #[arg(long, value_name = "LABEL")]
        token: String,
        /// ec-p256, ec-p384, ec-p521, rsa-2048, rsa-3072, rsa-4096, ed25519, aes-128, aes-192,
        /// aes-256.
        #[arg(long, value_parser = parse_gen_algorithm)]
        algorithm: GenAlgorithm,
        /// CKA_LABEL.
        #[arg(long)]
        label: Option<String>,
        /// CKA_ID in hex (also the key_id when free).
        #[arg(long, value_name = "HEX", value_parser = parse_hex)]
        id: Option<HexId>,
    },
    /// Import a key: PEM or DER private key (PKCS#8, PKCS#1, SEC1), public key (SPKI, PKCS#1),
    /// or raw AES key bytes with --aes.
    Import {
        #[arg(long, value_name = "LABEL")]
        token: String,
        file: PathBuf,
        /// The file holds raw AES key bytes (16, 24 or 32).
        #[arg(long)]
        aes: bool,
        #[arg(long)]
        label: Option<String>,
        #[arg(long, value_name = "HEX", value_parser = parse_hex)]
        id: Option<HexId>,
    },
    /// Print a key's public key as PEM (SubjectPublicKeyInfo).
    ExportPublic {
        key_id: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Generate a successor; the key becomes inactive and the two are linked.
    Rotate { key_id: String },
    /// Change a key's status: active, inactive or compromised (compromised is final).
    SetStatus {
        key_id: String,
        #[arg(value_parser = parse_status_arg)]
        status: i32,
    },
    /// Set a key's expiration: RFC 3339, YYYY-MM-DD (valid through that day, UTC) or never.
    SetExpiration {
        key_id: String,
        #[arg(value_name = "DATE|never", value_parser = parse_expiration)]
        expiration: ExpirationArg,
        /// Act as the security officer (SO PIN): needed to bring an expired key back.
        #[arg(long)]
        so: bool,
    },
    /// Destroy a key (its history is kept).
    Destroy { key_id: String },
    /// A key's history (kept after the key is destroyed).
    History { key_id: String },
}

type ExpirationArg = Option<chrono::DateTime<chrono::Utc>>;

#[derive(Subcommand)]
enum DbCommand {
    /// Apply pending migrations and print the schema version.
    Migrate,
    /// Backend, URL (password redacted), schema version and counts.
    Status,
    /// Verify every key unwraps under its token key (user PIN from SQLHSM_PIN or --pin-file;
    /// tokens are skipped without one) and matches its public key; exit 1 on a problem.
    Check,
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
            TokenCommand::Delete { label } => ok(admin.token_delete(&label)?),
        },
        Command::Key(command) => match command {
            KeyCommand::List {
                token,
                status,
                algorithm,
                expiring_within,
            } => ok(admin.key_list(&KeyQuery {
                token,
                status,
                algorithm,
                expiring_within,
            })?),
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
                file,
                aes,
                label,
                id,
            } => ok(admin.key_import(
                &token,
                &file,
                aes,
                label.as_deref(),
                id.as_ref().map(|h| h.0.as_slice()),
            )?),
            KeyCommand::ExportPublic { key_id, out } => {
                let pem = admin.key_export_public(&key_id)?;
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
            KeyCommand::Rotate { key_id } => ok(admin.key_rotate(&key_id)?),
            KeyCommand::SetStatus { key_id, status } => ok(admin.key_set_status(&key_id, status)?),
            KeyCommand::SetExpiration {
                key_id,
                expiration,
                so,
            } => ok(admin.key_set_expiration(&key_id, expiration, so)?),
            KeyCommand::Destroy { key_id } => ok(admin.key_destroy(&key_id)?),
            KeyCommand::History { key_id } => ok(admin.key_history(&key_id)?),
        },
        Command::Db(command) => match command {
            DbCommand::Migrate => ok(admin.db_migrate()?),
            DbCommand::Status => ok(admin.db_status()?),
            DbCommand::Check => admin.db_check(),
        },
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
    sqlhsm::logging::init(
        &std::env::var("SQLHSM_LOG")
            .ok()
            .filter(|l| !l.trim().is_empty())
            .unwrap_or_else(|| "error".into()),
    );
    match run(cli) {
        Ok((text, fine)) => {
            print!("{text}");
            if fine {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_REFUSED)
            }
        }
        Err(failure) => {
            // The module prints its configuration errors through the same function.
            sqlhsm::logging::print_error(&failure.message);
            ExitCode::from(failure.code)
        }
    }
}

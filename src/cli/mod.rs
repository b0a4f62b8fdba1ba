//! The command line (clap): one file per command group. Every command reads the same settings;
//! errors are one clear line on stderr and a non-zero exit status (2 for configuration/usage).

mod audit;
mod client;
mod keys;
mod role;
mod serve;
mod user;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{ConfigError, Settings};
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "castellan",
    version,
    about = "Castellan: a standalone OpenID Connect identity provider"
)]
pub struct Cli {
    /// Configuration file (TOML); also CASTELLAN_CONFIG.
    #[arg(long, global = true, env = "CASTELLAN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of human output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run migrations, make a signing key if none exists, and serve HTTP (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage OAuth clients (relying parties).
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Manage users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Manage roles (built-in admin and user, and custom ones).
    #[command(subcommand)]
    Role(role::RoleCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

/// A failed command: how it is reported and with which exit status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Usage(String),
    #[error("{0:#}")]
    Failed(#[from] anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Config(_) | CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }
}

impl Cli {
    /// Loads the settings this invocation uses: defaults, file, then the process environment.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        Settings::load(self.config.as_deref(), std::env::vars())
    }

    /// Whether the command is `serve` (explicit or by default).
    pub fn is_serve(&self) -> bool {
        matches!(self.command, None | Some(Command::Serve))
    }
}

/// Runs a parsed command line with loaded settings.
pub async fn run(cli: Cli, settings: Settings) -> Result<(), CliError> {
    let json = cli.json;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::run(settings).await,
        Command::Migrate => {
            let store = open(&settings).await?;
            // Provisioning makes the first signing key too, so the first `serve` starts at once.
            crate::services::keys::ensure_active_key(&store, &settings, now())
                .await
                .map_err(|e| anyhow::anyhow!("preparing the signing key: {e}"))?;
            let applied = store
                .applied_migrations()
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            if json {
                println!("{}", serde_json::json!({"applied": applied}));
            } else {
                println!(
                    "database is up to date ({} migrations applied)",
                    applied.len()
                );
            }
            Ok(())
        }
        Command::Client(c) => client::run(c, &open(&settings).await?, &settings, json).await,
        Command::User(c) => user::run(c, &open(&settings).await?, &settings, json).await,
        Command::Keys(c) => keys::run(c, &open(&settings).await?, &settings, json).await,
        Command::Role(c) => role::run(c, &open(&settings).await?, json).await,
        Command::Audit(c) => audit::run(c, &open(&settings).await?, json).await,
    }
}

/// Opens the database and applies pending migrations, so that every command works on a fresh one.
async fn open(settings: &Settings) -> Result<Store, CliError> {
    let store = Store::connect(settings)
        .await
        .map_err(anyhow::Error::from)?;
    store.migrate().await.map_err(|e| {
        anyhow::anyhow!(
            "applying database migrations: {}",
            crate::config::redact_in_text(&e.to_string())
        )
    })?;
    Ok(store)
}

pub(crate) fn now() -> i64 {
    use crate::clock::Clock;
    crate::clock::SystemClock.now()
}

pub(crate) fn print_json(value: &serde_json::Value) {
    // One compact line: easy for scripts that read a line.
    println!("{}", serde_json::to_string(value).unwrap_or_default());
}

pub(crate) fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

/// Records what a CLI command changed (actor `cli`); a failed write is reported, not fatal.
pub(crate) async fn audit(
    store: &Store,
    kind: &'static str,
    user_id: Option<&str>,
    client_id: Option<&str>,
    detail: String,
) {
    let entry = crate::store::accounts::AuditEntry {
        kind,
        actor: Some("cli".to_owned()),
        user_id: user_id.map(str::to_owned),
        client_id: client_id.map(str::to_owned),
        ip: None,
        detail,
    };
    if let Err(e) = store.audit(entry, now()).await {
        eprintln!("warning: the change was made but its audit row was not written: {e}");
    }
}

//! The command line (clap): one file per command group. Every command reads the same settings;
//! errors are one clear line on stderr and a non-zero exit status (2 for configuration/usage).
//!
//! The commands call the same administration use cases as the admin API and pages
//! (`services::admin::Admin`, as the actor `cli`): one rule, written once, audited the same way.
//! Only `serve` and `migrate` handle the database themselves.

mod audit;
mod client;
mod keys;
mod role;
mod serve;
mod upstream;
mod user;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{ConfigError, Settings};
use crate::services::admin::{Actor, Admin, AdminError, Caller};

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
    /// Manage upstream identity providers (sign-in with another OpenID provider, GitHub, Google).
    #[command(subcommand)]
    Upstream(upstream::UpstreamCommand),
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
            let applied = crate::startup::provision(&settings).await?;
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
        Command::Client(c) => client::run(c, &admin(settings).await?, json).await,
        Command::User(c) => user::run(c, &admin(settings).await?, json).await,
        Command::Keys(c) => {
            let configured = crate::startup::key_encryption_key(&settings)?;
            let admin = admin_with(settings, configured.clone()).await?;
            keys::run(c, &admin, configured, json).await
        }
        Command::Role(c) => role::run(c, &admin(settings).await?, json).await,
        Command::Audit(c) => audit::run(c, &admin(settings).await?, json).await,
        Command::Upstream(c) => upstream::run(c, &admin(settings).await?, json).await,
    }
}

/// The administration use cases over the migrated database, and the command line's actor.
pub(crate) struct AdminCli {
    pub admin: Admin,
    pub actor: Actor,
}

async fn admin(settings: Settings) -> Result<AdminCli, CliError> {
    let kek = crate::startup::key_encryption_key(&settings)?;
    admin_with(settings, kek).await
}

/// The administration use cases with the configured key-encryption key, resolved by the caller.
async fn admin_with(
    settings: Settings,
    kek: Option<std::sync::Arc<crate::crypto::seal::Kek>>,
) -> Result<AdminCli, CliError> {
    let admin = crate::startup::admin_for_cli(settings, kek).await?;
    let actor = admin
        .authorize(Caller::Cli)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(AdminCli { admin, actor })
}

/// An administration use case's refusal as the command line reports it: a refused value or a
/// rule is a usage error (exit 2, each message named by `flag_of` its field), the rest exit 1.
/// `what` names what was asked for, for "no such ..." answers.
pub(crate) fn admin_error(e: AdminError, what: &str, flag_of: impl Fn(&str) -> String) -> CliError {
    match e {
        AdminError::Invalid(problems) => usage(
            problems
                .iter()
                .map(|p| format!("--{}: {}", flag_of(p.field), p.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        AdminError::Refused(m) => usage(m),
        AdminError::NotFound(kind) => CliError::Failed(anyhow::anyhow!("no {kind} {what}")),
        AdminError::Conflict(m) => CliError::Failed(anyhow::anyhow!(m)),
        e @ (AdminError::Store(_) | AdminError::Unexpected(_)) => CliError::Failed(e.into()),
    }
}

pub(crate) fn now() -> crate::domain::UnixTime {
    use crate::clock::Clock;
    crate::clock::SystemClock.time()
}

pub(crate) fn print_json(value: &serde_json::Value) {
    // One compact line: easy for scripts that read a line.
    println!("{}", serde_json::to_string(value).unwrap_or_default());
}

pub(crate) fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

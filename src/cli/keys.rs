//! `castellan keys list|rotate|rewrap`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Subcommand;
use serde_json::json;

use super::{AdminCli, CliError, admin_error, print_json, usage};
use crate::crypto::seal::Kek;
use crate::domain::KeyRecord;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys (newest first) with their state (next, active, retiring, retired).
    List,
    /// Make a new signing key. It is published in the JWK Set at once and signs from
    /// keys.publish_ahead_secs later; the keys it replaces stay published until their tokens
    /// expire.
    Rotate {
        /// Sign with the new key at once (after a key was exposed). Relying parties that
        /// cached the JWK Set refuse its tokens until they fetch the set again.
        #[arg(long)]
        now: bool,
    },
    /// Re-encrypt every signing key under a new key-encryption key (keys stored in plaintext
    /// are encrypted too). Configure the new key before the next start.
    Rewrap {
        /// File holding the key-encryption key the keys are encrypted under now; also
        /// CASTELLAN_KEY_ENCRYPTION_KEY_OLD (base64) or CASTELLAN_KEY_ENCRYPTION_KEY_FILE_OLD.
        /// Default: the configured one.
        #[arg(long, value_name = "FILE")]
        old_key_file: Option<PathBuf>,
        /// File holding the new key-encryption key (base64 of 32 bytes); also
        /// CASTELLAN_KEY_ENCRYPTION_KEY_NEW (base64) or CASTELLAN_KEY_ENCRYPTION_KEY_FILE_NEW.
        #[arg(long, value_name = "FILE")]
        new_key_file: Option<PathBuf>,
    },
}

fn key_json(k: &KeyRecord) -> serde_json::Value {
    json!({
        "kid": k.kid,
        "alg": k.alg,
        "state": k.state,
        "created_at": k.created_at.secs(),
        "activate_at": k.activate_at.secs(),
        "retire_at": k.retire_at.map(|t| t.secs()),
    })
}

/// A key-encryption key from `--…-key-file`, or else from the environment variable `NAME`
/// (base64) or `FILE_NAME` (a file).
fn kek_from(
    flag: Option<&Path>,
    flag_name: &str,
    env: &str,
    env_file: &str,
) -> Result<Option<Kek>, CliError> {
    let read_file = |path: &Path, what: &str| -> Result<Kek, CliError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("{what}: cannot read {}: {e}", path.display())))?;
        Kek::from_base64(&text).map_err(|e| usage(format!("{what}: {}: {e}", path.display())))
    };
    if let Some(path) = flag {
        return read_file(path, flag_name).map(Some);
    }
    if let Ok(text) = std::env::var(env) {
        return Kek::from_base64(&text)
            .map(Some)
            .map_err(|e| usage(format!("{env}: {e}")));
    }
    if let Ok(path) = std::env::var(env_file) {
        return read_file(Path::new(&path), env_file).map(Some);
    }
    Ok(None)
}

pub async fn run(
    cmd: KeysCommand,
    cli: &AdminCli,
    configured: Option<Arc<Kek>>,
    json_out: bool,
) -> Result<(), CliError> {
    let failed = |e| admin_error(e, "", str::to_owned);
    match cmd {
        KeysCommand::List => {
            let keys = cli.admin.list_keys(&cli.actor).await.map_err(failed)?;
            if json_out {
                print_json(&json!(keys.iter().map(key_json).collect::<Vec<_>>()));
            } else if keys.is_empty() {
                println!("no signing keys yet (`castellan serve` makes the first one)");
            } else {
                for k in &keys {
                    println!(
                        "{}  {}  {:<8}  created {}  signs from {}",
                        k.kid, k.alg, k.state, k.created_at, k.activate_at
                    );
                }
            }
        }
        KeysCommand::Rotate { now } => {
            let k = cli
                .admin
                .rotate_key(&cli.actor, now)
                .await
                .map_err(failed)?;
            if json_out {
                print_json(&key_json(&k));
            } else if now {
                println!(
                    "new signing key {} signs now (previous keys stay published until their tokens expire)",
                    k.kid
                );
            } else {
                println!(
                    "new signing key {} is published now and signs from {} (keys.publish_ahead_secs)",
                    k.kid, k.activate_at
                );
            }
        }
        KeysCommand::Rewrap {
            old_key_file,
            new_key_file,
        } => {
            let new = kek_from(
                new_key_file.as_deref(),
                "--new-key-file",
                "CASTELLAN_KEY_ENCRYPTION_KEY_NEW",
                "CASTELLAN_KEY_ENCRYPTION_KEY_FILE_NEW",
            )?
            .ok_or_else(|| {
                usage(
                    "keys rewrap needs the new key-encryption key: --new-key-file FILE, \
                     CASTELLAN_KEY_ENCRYPTION_KEY_NEW or CASTELLAN_KEY_ENCRYPTION_KEY_FILE_NEW",
                )
            })?;
            let old = kek_from(
                old_key_file.as_deref(),
                "--old-key-file",
                "CASTELLAN_KEY_ENCRYPTION_KEY_OLD",
                "CASTELLAN_KEY_ENCRYPTION_KEY_FILE_OLD",
            )?
            .map(Arc::new)
            .or(configured);
            let n = cli
                .admin
                .rewrap_keys(&cli.actor, old.as_deref(), &new)
                .await
                .map_err(failed)?;
            if json_out {
                print_json(&json!({"rewrapped": n, "key_encryption_key_id": new.id_hex()}));
            } else {
                println!(
                    "{n} signing keys are now encrypted under key-encryption key {}; configure it \
                     (CASTELLAN_KEY_ENCRYPTION_KEY or CASTELLAN_KEY_ENCRYPTION_KEY_FILE) before the next start",
                    new.id_hex()
                );
            }
        }
    }
    Ok(())
}

//! `castellan keys list|rotate`.

use clap::Subcommand;
use serde_json::json;

use super::{AdminCli, CliError, admin_error, print_json};
use crate::store::keys::KeyRecord;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys (newest first) with their state.
    List,
    /// Generate a new active key; the previous one stays published until its tokens expire.
    Rotate,
}

fn key_json(k: &KeyRecord) -> serde_json::Value {
    json!({"kid": k.kid, "alg": k.alg, "state": k.state, "created_at": k.created_at.secs(), "retire_at": k.retire_at.map(|t| t.secs())})
}

pub async fn run(cmd: KeysCommand, cli: &AdminCli, json_out: bool) -> Result<(), CliError> {
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
                        "{}  {}  {:<8}  created {}",
                        k.kid, k.alg, k.state, k.created_at
                    );
                }
            }
        }
        KeysCommand::Rotate => {
            let k = cli.admin.rotate_key(&cli.actor).await.map_err(failed)?;
            if json_out {
                print_json(&key_json(&k));
            } else {
                println!(
                    "new active signing key {} (previous keys stay published until their tokens expire)",
                    k.kid
                );
            }
        }
    }
    Ok(())
}

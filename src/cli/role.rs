//! `castellan role list|create|delete`: the role catalogue (built-in `admin` and `user`, plus
//! custom roles that can then be given with `user set-role`).

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::{CliError, audit, now, print_json, usage};
use crate::domain::{Role, RoleInfo};
use crate::store::{Store, StoreError};

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// List roles.
    List,
    /// Create a custom role.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Delete a custom role that no user holds.
    Delete { name: String },
}

fn role_json(r: &RoleInfo) -> serde_json::Value {
    json!({"name": r.name, "description": r.description, "builtin": r.builtin})
}

pub async fn run(cmd: RoleCommand, store: &Store, json_out: bool) -> Result<(), CliError> {
    match cmd {
        RoleCommand::List => {
            let roles = store.list_roles().await.context("listing roles")?;
            if json_out {
                print_json(&json!(roles.iter().map(role_json).collect::<Vec<_>>()));
            } else {
                for r in &roles {
                    let kind = if r.builtin { "built-in" } else { "custom" };
                    println!("{:<24} {kind:<9} {}", r.name, r.description);
                }
            }
        }
        RoleCommand::Create { name, description } => {
            let role = Role::parse(&name).map_err(usage)?;
            let r = match store
                .create_role(role.as_str(), description.trim(), now())
                .await
            {
                Ok(r) => r,
                Err(StoreError::Conflict) => {
                    return Err(CliError::Failed(anyhow::anyhow!(
                        "a role named {:?} exists",
                        role.as_str()
                    )));
                }
                Err(e) => return Err(anyhow::Error::from(e).context("creating the role").into()),
            };
            audit(
                store,
                "role_created",
                None,
                None,
                format!("role={}", r.name),
            )
            .await;
            if json_out {
                print_json(&role_json(&r));
            } else {
                println!("created role {}", r.name);
            }
        }
        RoleCommand::Delete { name } => {
            let Some(r) = store.role(&name).await.context("reading the role")? else {
                return Err(CliError::Failed(anyhow::anyhow!("no role named {name:?}")));
            };
            if r.builtin {
                return Err(usage(format!("{name:?} is built in and cannot be deleted")));
            }
            let holders = store.role_holders(&name).await.context("reading users")?;
            if holders > 0 {
                return Err(CliError::Failed(anyhow::anyhow!(
                    "{holders} user(s) hold {name:?}: take it from them first (user set-role)"
                )));
            }
            store
                .delete_role(&name)
                .await
                .context("deleting the role")?;
            audit(store, "role_deleted", None, None, format!("role={name}")).await;
            if json_out {
                print_json(&json!({"deleted": name}));
            } else {
                println!("deleted role {name}");
            }
        }
    }
    Ok(())
}

//! `castellan role list|create|delete`: the role catalogue (built-in `admin` and `user`, plus
//! custom roles that can then be given with `user set-role`).

use clap::Subcommand;
use serde_json::json;

use super::{AdminCli, CliError, admin_error, print_json};
use crate::domain::RoleInfo;

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

pub async fn run(cmd: RoleCommand, cli: &AdminCli, json_out: bool) -> Result<(), CliError> {
    let (admin, actor) = (&cli.admin, &cli.actor);
    let failed = |name: &str| {
        let what = format!("named {name:?}");
        move |e| admin_error(e, &what, str::to_owned)
    };
    match cmd {
        RoleCommand::List => {
            let roles = admin.list_roles(actor).await.map_err(failed(""))?;
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
            let r = admin
                .create_role(actor, &name, description.trim())
                .await
                .map_err(failed(&name))?;
            if json_out {
                print_json(&role_json(&r));
            } else {
                println!("created role {}", r.name);
            }
        }
        RoleCommand::Delete { name } => {
            admin
                .delete_role(actor, &name)
                .await
                .map_err(failed(&name))?;
            if json_out {
                print_json(&json!({"deleted": name}));
            } else {
                println!("deleted role {name}");
            }
        }
    }
    Ok(())
}

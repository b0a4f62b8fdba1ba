//! `castellan user create|list|set-role|disable|update|end-sessions|reset-mfa|delete`.

use std::io::Read;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{AdminCli, CliError, admin_error, print_json, usage};
use crate::domain::User;
use crate::services::admin::{NewUserSpec, UserPatch};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (the email counts as verified); the password is read from stdin.
    Create(CreateArgs),
    /// List users.
    List {
        /// Only users whose email contains this text.
        #[arg(long)]
        search: Option<String>,
    },
    /// Set a user's roles (replacing the current ones).
    SetRole {
        /// User id or email.
        user: String,
        /// Roles, e.g. `admin user`.
        #[arg(required = true)]
        roles: Vec<String>,
    },
    /// Disable a user (or enable again with --enable).
    Disable {
        /// User id or email.
        user: String,
        #[arg(long)]
        enable: bool,
    },
    /// Delete a user with their sessions, tokens and consents.
    Delete {
        /// User id or email.
        user: String,
    },
    /// Change a user's name or email (the new email counts as verified).
    Update {
        /// User id or email.
        user: String,
        /// New display name ("" clears it).
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// End every session and refresh token of a user (signs them out everywhere).
    EndSessions {
        /// User id or email.
        user: String,
    },
    /// Remove a user's second factors (TOTP, recovery codes) for a user who lost them: they
    /// sign in with the password alone next, or enrol again where policy requires. Audited;
    /// the user is mailed.
    ResetMfa {
        /// User id or email.
        user: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    email: String,
    #[arg(long)]
    name: Option<String>,
    /// Extra role (repeatable); every user also has `user`.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Read the password from standard input (all of it, minus one trailing newline).
    #[arg(long)]
    password_stdin: bool,
}

pub fn user_json(u: &User) -> serde_json::Value {
    json!({
        "id": u.id.as_str(),
        "email": u.email,
        "email_verified": u.email_verified,
        "name": u.name,
        "roles": u.roles,
        "disabled": u.disabled,
        "created_at": u.created_at.secs(),
    })
}

/// `--password-stdin`: all of standard input, without one trailing newline.
fn read_password() -> Result<String, CliError> {
    read_secret("the password")
}

/// A secret from standard input (`--password-stdin`, `--client-secret-stdin`): all of it,
/// without one trailing newline.
pub(super) fn read_secret(what: &str) -> Result<String, CliError> {
    let mut buf = String::new();
    std::io::stdin()
        .read_to_string(&mut buf)
        .map_err(|e| usage(format!("cannot read {what} from standard input: {e}")))?;
    if let Some(s) = buf.strip_suffix("\r\n").or_else(|| buf.strip_suffix('\n')) {
        buf.truncate(s.len());
    }
    Ok(buf)
}

/// Role names, repeated or comma-separated.
fn role_names(raw: &[String]) -> Vec<String> {
    raw.iter()
        .flat_map(|r| r.split(',').filter(|s| !s.is_empty()))
        .map(str::to_owned)
        .collect()
}

/// The flag that sets a user field.
fn flag_of(field: &str) -> String {
    match field {
        "roles" => "role",
        "password" => "password-stdin",
        other => other,
    }
    .to_owned()
}

pub async fn run(cmd: UserCommand, cli: &AdminCli, json_out: bool) -> Result<(), CliError> {
    let (admin, actor) = (&cli.admin, &cli.actor);
    let failed = |key: &str| {
        let what = format!("with id or email {key:?}");
        move |e| admin_error(e, &what, flag_of)
    };
    match cmd {
        UserCommand::Create(a) => {
            let password = if a.password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            let spec = NewUserSpec {
                email: a.email.clone(),
                name: a.name,
                password,
                roles: role_names(&a.roles),
            };
            let u = admin
                .create_user(actor, spec)
                .await
                .map_err(failed(&a.email))?;
            if json_out {
                print_json(&user_json(&u));
            } else {
                println!("created user {} <{}>", u.id, u.email);
                if !a.password_stdin {
                    println!(
                        "(no password set: the user can set one through the forgot-password page)"
                    );
                }
            }
        }
        UserCommand::List { search } => {
            let (users, total) = admin
                .list_users(actor, search.as_deref(), 0, 10_000)
                .await
                .map_err(failed(""))?;
            if json_out {
                print_json(&json!(users.iter().map(user_json).collect::<Vec<_>>()));
            } else if users.is_empty() {
                println!("no users");
            } else {
                for u in &users {
                    let flags = if u.disabled { " (disabled)" } else { "" };
                    println!("{}  {}  [{}]{flags}", u.id, u.email, u.roles.join(" "));
                }
                if total as usize > users.len() {
                    println!("... and {} more", total as usize - users.len());
                }
            }
        }
        UserCommand::SetRole { user, roles } => {
            let u = admin.find_user(actor, &user).await.map_err(failed(&user))?;
            let patch = UserPatch {
                roles: Some(role_names(&roles)),
                ..Default::default()
            };
            let u = admin
                .update_user(actor, u.id.as_str(), patch)
                .await
                .map_err(failed(&user))?;
            if json_out {
                print_json(&user_json(&u));
            } else {
                println!("{} now has roles: {}", u.email, u.roles.join(" "));
            }
        }
        UserCommand::Disable { user, enable } => {
            let u = admin.find_user(actor, &user).await.map_err(failed(&user))?;
            let patch = UserPatch {
                disabled: Some(!enable),
                ..Default::default()
            };
            let u = admin
                .update_user(actor, u.id.as_str(), patch)
                .await
                .map_err(failed(&user))?;
            if json_out {
                print_json(&user_json(&u));
            } else {
                println!(
                    "{} is {}",
                    u.email,
                    if u.disabled { "disabled" } else { "enabled" }
                );
            }
        }
        UserCommand::Update { user, name, email } => {
            let u = admin.find_user(actor, &user).await.map_err(failed(&user))?;
            let patch = UserPatch {
                // "" clears the name.
                name: name.map(|n| Some(n).filter(|n| !n.trim().is_empty())),
                email,
                ..Default::default()
            };
            let u = admin
                .update_user(actor, u.id.as_str(), patch)
                .await
                .map_err(failed(&user))?;
            if json_out {
                print_json(&user_json(&u));
            } else {
                println!("updated user {} <{}>", u.id, u.email);
            }
        }
        UserCommand::EndSessions { user } => {
            let u = admin.find_user(actor, &user).await.map_err(failed(&user))?;
            let ended = admin
                .end_sessions(actor, u.id.as_str())
                .await
                .map_err(failed(&user))?;
            if json_out {
                print_json(&json!({"user_id": u.id.as_str(), "ended": ended}));
            } else {
                println!("ended {ended} session(s) of {}", u.email);
            }
        }
        UserCommand::ResetMfa { user } => {
            let u = admin.find_user(actor, &user).await.map_err(failed(&user))?;
            let reset = admin
                .reset_mfa(actor, u.id.as_str())
                .await
                .map_err(failed(&user))?;
            if json_out {
                print_json(&json!({
                    "user_id": u.id.as_str(),
                    "factors_removed": reset.factors,
                    "recovery_codes_removed": reset.recovery_codes,
                    "pending_sign_ins_ended": reset.pending_sign_ins,
                }));
            } else if reset.factors == 0 {
                println!("{} had no second factor; nothing to reset", u.email);
            } else {
                println!(
                    "reset the second factors of {} ({} factor(s), {} recovery code(s) removed); \
                     a mail tells them",
                    u.email, reset.factors, reset.recovery_codes
                );
            }
        }
        UserCommand::Delete { user } => {
            let u = admin.find_user(actor, &user).await.map_err(failed(&user))?;
            admin
                .delete_user(actor, u.id.as_str())
                .await
                .map_err(failed(&user))?;
            if json_out {
                print_json(&json!({"deleted": u.id.as_str()}));
            } else {
                println!("deleted user {} <{}>", u.id, u.email);
            }
        }
    }
    Ok(())
}

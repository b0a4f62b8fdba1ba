//! `castellan user create|list|set-role|disable|delete`.

use std::io::Read;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{CliError, now, print_json, usage};
use crate::config::Settings;
use crate::crypto::password::Hasher;
use crate::domain::{Email, NewUser, Role, User};
use crate::services::admin::AdminError;
use crate::store::{Store, StoreError};

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
        "created_at": u.created_at,
    })
}

/// `--password-stdin`: all of standard input, without one trailing newline.
fn read_password() -> Result<String, CliError> {
    let mut buf = String::new();
    std::io::stdin()
        .read_to_string(&mut buf)
        .map_err(|e| usage(format!("cannot read the password from standard input: {e}")))?;
    if let Some(s) = buf.strip_suffix("\r\n").or_else(|| buf.strip_suffix('\n')) {
        buf.truncate(s.len());
    }
    Ok(buf)
}

async fn find(store: &Store, key: &str) -> Result<User, CliError> {
    store
        .user_by_id_or_email(key)
        .await
        .context("reading the user")?
        .ok_or_else(|| CliError::Failed(anyhow::anyhow!("no user with id or email {key:?}")))
}

/// Role names (repeated or comma-separated) checked against the catalogue; `user` is always
/// among them.
async fn checked_roles(store: &Store, raw: &[String]) -> Result<Vec<Role>, CliError> {
    let names: Vec<String> = raw
        .iter()
        .flat_map(|r| r.split(',').filter(|s| !s.is_empty()))
        .map(str::to_owned)
        .collect();
    match crate::services::admin::checked_roles(store, &names).await {
        Ok(roles) => roles
            .iter()
            .map(|r| Role::parse(r).map_err(usage))
            .collect(),
        Err(AdminError::Invalid(problems)) => Err(usage(
            problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
                + " (castellan role list / role create)",
        )),
        Err(e) => Err(anyhow::Error::from(e).context("reading roles").into()),
    }
}

pub async fn run(
    cmd: UserCommand,
    store: &Store,
    settings: &Settings,
    json_out: bool,
) -> Result<(), CliError> {
    match cmd {
        UserCommand::Create(a) => {
            let email = Email::parse(&a.email).map_err(usage)?;
            let roles = checked_roles(store, &a.roles).await?;
            let password_hash = if a.password_stdin {
                let password = read_password()?;
                let p = &settings.password;
                let len = password.chars().count();
                if len < p.min_length || len > p.max_length {
                    return Err(usage(format!(
                        "the password must be {} to {} characters long",
                        p.min_length, p.max_length
                    )));
                }
                let hasher = Hasher::new(
                    p.argon2_memory_kib,
                    p.argon2_iterations,
                    p.argon2_parallelism,
                )
                .context("preparing the password hasher")?;
                Some(
                    hasher
                        .hash(&crate::domain::password::normalize(&password))
                        .context("hashing the password")?,
                )
            } else {
                None
            };
            let name = a
                .name
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty());
            let new = NewUser {
                email,
                email_verified: true,
                name,
                roles,
                password_hash,
            };
            let u = match store.create_user(new, now()).await {
                Ok(u) => u,
                Err(StoreError::Conflict) => {
                    return Err(CliError::Failed(anyhow::anyhow!(
                        "a user with email {:?} already exists",
                        a.email.trim()
                    )));
                }
                Err(e) => {
                    return Err(CliError::Failed(
                        anyhow::Error::from(e).context("creating the user"),
                    ));
                }
            };
            super::audit(
                store,
                "user_created",
                Some(u.id.as_str()),
                None,
                format!("roles={}", u.roles.join(" ")),
            )
            .await;
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
            let (users, total) = store
                .list_users(search.as_deref(), 0, 10_000)
                .await
                .context("listing users")?;
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
            let u = find(store, &user).await?;
            let roles: Vec<String> = checked_roles(store, &roles)
                .await?
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect();
            let before = u.roles.join(" ");
            let u = store
                .set_user_roles(&u.id, &roles, now())
                .await
                .context("updating roles")?;
            super::audit(
                store,
                "role_changed",
                Some(u.id.as_str()),
                None,
                format!("from={before:?} to={:?}", u.roles.join(" ")),
            )
            .await;
            if json_out {
                print_json(&user_json(&u));
            } else {
                println!("{} now has roles: {}", u.email, u.roles.join(" "));
            }
        }
        UserCommand::Disable { user, enable } => {
            let u = find(store, &user).await?;
            let u = store
                .set_user_disabled(&u.id, !enable, now())
                .await
                .context("updating the user")?;
            if u.disabled {
                // A disabled account keeps no way in: its sessions and refresh tokens end now.
                store
                    .end_user_access(u.id.as_str(), None, now())
                    .await
                    .context("ending the user's sessions and refresh tokens")?;
            }
            let kind = if u.disabled {
                "user_disabled"
            } else {
                "user_enabled"
            };
            super::audit(store, kind, Some(u.id.as_str()), None, String::new()).await;
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
            let mut u = find(store, &user).await?;
            let email = email.map(|e| Email::parse(&e).map_err(usage)).transpose()?;
            if let Some(name) = name {
                let name = Some(name.trim().to_owned()).filter(|n| !n.is_empty());
                if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
                    return Err(usage("--name must be at most 200 characters"));
                }
                u = store
                    .set_user_name(&u.id, name, now())
                    .await
                    .context("updating the name")?;
            }
            if let Some(email) = email {
                u = match store.set_verified_email(&u.id, &email, now()).await {
                    Ok((_, u)) => u,
                    Err(StoreError::Conflict) => {
                        return Err(CliError::Failed(anyhow::anyhow!(
                            "another user has the email {:?}",
                            email.as_str()
                        )));
                    }
                    Err(e) => {
                        return Err(anyhow::Error::from(e).context("updating the email").into());
                    }
                };
                super::audit(
                    store,
                    "email_changed",
                    Some(u.id.as_str()),
                    None,
                    String::new(),
                )
                .await;
            }
            if json_out {
                print_json(&user_json(&u));
            } else {
                println!("updated user {} <{}>", u.id, u.email);
            }
        }
        UserCommand::EndSessions { user } => {
            let u = find(store, &user).await?;
            let ended = store
                .end_user_access(u.id.as_str(), None, now())
                .await
                .context("ending the user's sessions and refresh tokens")?;
            super::audit(
                store,
                "sessions_ended",
                Some(u.id.as_str()),
                None,
                format!("sessions={ended}"),
            )
            .await;
            if json_out {
                print_json(&json!({"user_id": u.id.as_str(), "ended": ended}));
            } else {
                println!("ended {ended} session(s) of {}", u.email);
            }
        }
        UserCommand::Delete { user } => {
            let u = find(store, &user).await?;
            store
                .delete_user(&u.id)
                .await
                .context("deleting the user")?;
            super::audit(
                store,
                "user_deleted",
                Some(u.id.as_str()),
                None,
                String::new(),
            )
            .await;
            if json_out {
                print_json(&json!({"deleted": u.id.as_str()}));
            } else {
                println!("deleted user {} <{}>", u.id, u.email);
            }
        }
    }
    Ok(())
}

//! `castellan upstream create|list|show|delete` (CONTRACT.md "Upstream identity providers"):
//! the providers people may sign in with. The client secret is read from standard input and
//! never printed.

use clap::{Args, Subcommand};
use serde_json::json;

use super::{AdminCli, CliError, admin_error, print_json};
use crate::domain::upstream::{Upstream, UpstreamSpec};

#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Register an upstream provider; its client secret is read from stdin.
    Create(CreateArgs),
    /// List upstream providers.
    List,
    /// Show one upstream provider.
    Show { id: String },
    /// Delete an upstream provider.
    Delete { id: String },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Its id: a-z, 0-9 and '-' (part of the callback path /login/upstream/ID/callback).
    #[arg(long)]
    id: String,
    /// oidc (any OpenID provider, by discovery) | github | google.
    #[arg(long)]
    kind: String,
    /// The name on the sign-in button.
    #[arg(long)]
    name: String,
    /// The issuer (oidc; https, or http on loopback for development). Google's is implied.
    #[arg(long)]
    issuer: Option<String>,
    /// The client id Castellan has at the provider.
    #[arg(long)]
    client_id: String,
    /// Read the client secret from standard input (required).
    #[arg(long)]
    client_secret_stdin: bool,
    /// The scope to ask for (default: "openid email profile"; github: "read:user user:email").
    #[arg(long)]
    scope: Option<String>,
    /// Do not create a local account on a first sign-in (only existing accounts may link).
    #[arg(long)]
    no_jit: bool,
    /// Link to a local account with the same verified email when the provider says the email
    /// is verified, without asking for the local password.
    #[arg(long)]
    trust_email: bool,
}

/// The flag that sets an [`UpstreamSpec`] field.
fn flag_of(field: &str) -> String {
    match field {
        "client_id" => "client-id",
        "client_secret" => "client-secret-stdin",
        other => other,
    }
    .to_owned()
}

fn upstream_json(u: &Upstream, redirect_uri: &str) -> serde_json::Value {
    json!({
        "id": u.id,
        "kind": u.kind.as_str(),
        "name": u.name,
        "issuer": u.issuer,
        "client_id": u.client_id,
        "scope": u.scope,
        "jit": u.jit,
        "trust_email": u.trust_email,
        "client_secret_encrypted": u.secret_sealed,
        "redirect_uri": redirect_uri,
        "created_at": u.created_at.secs(),
    })
}

pub async fn run(cmd: UpstreamCommand, cli: &AdminCli, json_out: bool) -> Result<(), CliError> {
    let (admin, actor) = (&cli.admin, &cli.actor);
    let failed = |id: &str| {
        let what = format!("with the id {id:?}");
        move |e| admin_error(e, &what, flag_of)
    };
    let json_of = |u: &Upstream| upstream_json(u, &admin.upstream_redirect_uri(u));
    let show = |u: &Upstream| {
        if json_out {
            print_json(&json_of(u));
        } else {
            println!(
                "{} ({}) {:?}\n  issuer: {}\n  client id: {}\n  scope: {}\n  just-in-time accounts: {}\n  trusted email: {}\n  redirect URI to register: {}",
                u.id,
                u.kind,
                u.name,
                u.issuer.as_deref().unwrap_or("-"),
                u.client_id,
                u.scope,
                u.jit,
                u.trust_email,
                admin.upstream_redirect_uri(u),
            );
        }
    };
    match cmd {
        UpstreamCommand::Create(a) => {
            if !a.client_secret_stdin {
                return Err(super::usage(
                    "--client-secret-stdin is required: the secret is read from standard input, never from the command line",
                ));
            }
            let secret = super::user::read_secret("the client secret")?;
            let spec = UpstreamSpec {
                id: a.id.clone(),
                kind: a.kind,
                name: a.name,
                issuer: a.issuer,
                client_id: a.client_id,
                client_secret: secret,
                scope: a.scope,
                jit: !a.no_jit,
                trust_email: a.trust_email,
            };
            let u = admin
                .create_upstream(actor, spec)
                .await
                .map_err(failed(&a.id))?;
            show(&u);
        }
        UpstreamCommand::List => {
            let all = admin.list_upstreams(actor).await.map_err(failed(""))?;
            if json_out {
                print_json(&json!(all.iter().map(json_of).collect::<Vec<_>>()));
            } else {
                for u in &all {
                    println!("{:<32} {:<7} {}", u.id, u.kind, u.name);
                }
            }
        }
        UpstreamCommand::Show { id } => {
            let u = admin.upstream(actor, &id).await.map_err(failed(&id))?;
            show(&u);
        }
        UpstreamCommand::Delete { id } => {
            admin
                .delete_upstream(actor, &id)
                .await
                .map_err(failed(&id))?;
            if json_out {
                print_json(&json!({"deleted": id}));
            } else {
                println!("deleted upstream {id}");
            }
        }
    }
    Ok(())
}

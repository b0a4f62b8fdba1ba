//! `castellan client create|list|show|update|rotate-secret|delete`.

use clap::{Args, Subcommand};
use serde_json::json;

use super::{AdminCli, CliError, admin_error, print_json};
use crate::domain::{Client, ClientSpec};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; its secret is shown once.
    Create(CreateArgs),
    /// List clients.
    List,
    /// Show one client.
    Show { id: String },
    /// Delete a client with its grants and consents.
    Delete { id: String },
    /// Give a confidential client a new secret (shown once); the old one stops working.
    RotateSecret { id: String },
    /// Replace a client's settings (the same flags as `create`; what is left out gets its
    /// default). Its id and secret stay.
    Update {
        id: String,
        #[command(flatten)]
        args: CreateArgs,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Display name shown on the consent page.
    #[arg(long)]
    name: String,
    /// Redirect URI (repeatable); compared by exact string match.
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to (repeatable).
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    post_logout_redirect_uris: Vec<String>,
    /// A public client (no secret; PKCE required), e.g. a SPA or a native app.
    #[arg(long)]
    public: bool,
    /// authorization_code | refresh_token | client_credentials (repeatable; default: the first two).
    #[arg(long = "grant-type", value_name = "GRANT")]
    grant_types: Vec<String>,
    /// Scopes the client may request.
    #[arg(long, default_value = "openid profile email offline_access")]
    scope: String,
    /// First-party client: users are not asked for consent.
    #[arg(long)]
    skip_consent: bool,
    /// client_secret_basic | client_secret_post | none.
    #[arg(long, value_name = "METHOD")]
    token_endpoint_auth_method: Option<String>,
    /// May introspect every token (a resource server), not only its own.
    #[arg(long)]
    introspect_any: bool,
    /// Sign-ins to this client must use a second factor (acr urn:castellan:acr:mfa): a user
    /// signed in with the password alone is asked for it, or taken to enrolment.
    #[arg(long)]
    require_mfa: bool,
}

pub fn client_json(c: &Client) -> serde_json::Value {
    json!({
        "client_id": c.id.as_str(),
        "name": c.name,
        "public": c.public,
        "redirect_uris": c.redirect_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "post_logout_redirect_uris": c.post_logout_redirect_uris.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "scope": c.scopes.to_string(),
        "token_endpoint_auth_method": c.auth_method.metadata_name(),
        "token_endpoint_auth_methods": c.auth_method.as_str().split(' ').collect::<Vec<_>>(),
        "skip_consent": c.skip_consent,
        "introspect_any": c.introspect_any,
        "require_mfa": c.require_mfa,
        "application_type": c.application_type.as_str(),
        "dynamically_registered": c.dynamically_registered,
        "created_at": c.created_at.secs(),
    })
}

fn spec_of(a: CreateArgs) -> ClientSpec {
    ClientSpec {
        name: a.name,
        redirect_uris: a.redirect_uris,
        post_logout_redirect_uris: a.post_logout_redirect_uris,
        grant_types: a.grant_types,
        scope: a.scope,
        public: a.public,
        token_endpoint_auth_method: a.token_endpoint_auth_method,
        skip_consent: a.skip_consent,
        introspect_any: a.introspect_any,
        require_mfa: a.require_mfa,
    }
}

/// The flag that sets a [`ClientSpec`] field.
fn flag_of(field: &str) -> String {
    match field {
        "redirect_uris" | "redirect_uri" => "redirect-uri",
        "post_logout_redirect_uris" => "post-logout-redirect-uri",
        "grant_types" | "grant_type" => "grant-type",
        "token_endpoint_auth_method" => "token-endpoint-auth-method",
        other => other,
    }
    .to_owned()
}

pub async fn run(cmd: ClientCommand, cli: &AdminCli, json_out: bool) -> Result<(), CliError> {
    let (admin, actor) = (&cli.admin, &cli.actor);
    let failed = |id: &str| {
        let what = format!("with id {id:?}");
        move |e| admin_error(e, &what, flag_of)
    };
    match cmd {
        ClientCommand::Create(args) => {
            let (c, secret) = admin
                .create_client(actor, &spec_of(args))
                .await
                .map_err(failed(""))?;
            if json_out {
                let mut v = client_json(&c);
                if let Some(s) = &secret {
                    v["client_secret"] = json!(s);
                }
                print_json(&v);
            } else {
                println!("client_id:     {}", c.id);
                if let Some(s) = &secret {
                    println!("client_secret: {s}");
                    println!("(the secret is shown only this once: store it now)");
                }
            }
        }
        ClientCommand::List => {
            let clients = admin.list_clients(actor).await.map_err(failed(""))?;
            if json_out {
                print_json(&json!(clients.iter().map(client_json).collect::<Vec<_>>()));
            } else if clients.is_empty() {
                println!("no clients");
            } else {
                for c in &clients {
                    let kind = if c.public { "public" } else { "confidential" };
                    println!("{}  {:<12}  {}", c.id, kind, c.name);
                }
            }
        }
        ClientCommand::Show { id } => {
            let c = admin.client(actor, &id).await.map_err(failed(&id))?;
            if json_out {
                print_json(&client_json(&c));
            } else {
                let v = client_json(&c);
                if let Some(obj) = v.as_object() {
                    for (k, val) in obj {
                        println!("{k:<28} {val}");
                    }
                }
            }
        }
        ClientCommand::Update { id, args } => {
            let c = admin
                .update_client(actor, &id, &spec_of(args))
                .await
                .map_err(failed(&id))?;
            if json_out {
                print_json(&client_json(&c));
            } else {
                println!("updated client {}", c.id);
            }
        }
        ClientCommand::RotateSecret { id } => {
            let secret = admin
                .rotate_client_secret(actor, &id)
                .await
                .map_err(failed(&id))?;
            if json_out {
                print_json(&json!({"client_id": id, "client_secret": secret}));
            } else {
                println!("client_secret: {secret}");
                println!("(the secret is shown only this once; the old one no longer works)");
            }
        }
        ClientCommand::Delete { id } => {
            admin.delete_client(actor, &id).await.map_err(failed(&id))?;
            if json_out {
                print_json(&json!({"deleted": id}));
            } else {
                println!("deleted client {id}");
            }
        }
    }
    Ok(())
}

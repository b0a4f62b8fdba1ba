//! `castellan client create|list|show|delete`.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{CliError, now, print_json};
use crate::config::Settings;
use crate::crypto::token;
use crate::domain::{
    ApplicationType, AuthMethod, Client, ClientId, ClientInfo, GrantType, NewClient, RedirectUri,
    ScopeSet,
};
use crate::store::{Store, StoreError};

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
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
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
        "application_type": c.application_type.as_str(),
        "dynamically_registered": c.dynamically_registered,
        "created_at": c.created_at,
    })
}

fn parse_create(a: CreateArgs) -> Result<NewClient, CliError> {
    let grant_types = if a.grant_types.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        let mut v = Vec::new();
        for g in &a.grant_types {
            let g = GrantType::parse(g).map_err(usage)?;
            if !v.contains(&g) {
                v.push(g);
            }
        }
        v
    };
    let auth_method = match a.token_endpoint_auth_method.as_deref() {
        None if a.public => AuthMethod::None,
        None => AuthMethod::SecretBasicOrPost,
        Some(m @ ("client_secret_basic" | "client_secret_post" | "none")) => {
            AuthMethod::parse(m).map_err(usage)?
        }
        Some(other) => {
            return Err(usage(format!(
                "--token-endpoint-auth-method {other:?}: expected client_secret_basic, client_secret_post or none"
            )));
        }
    };
    let public = a.public || auth_method == AuthMethod::None;
    if a.public && auth_method != AuthMethod::None {
        return Err(usage(
            "--public clients have no secret: use --token-endpoint-auth-method none or leave it out",
        ));
    }
    if public && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(usage(
            "the client_credentials grant needs a confidential client (RFC 6749 §4.4)",
        ));
    }
    let redirect_uris = a
        .redirect_uris
        .iter()
        .map(|u| RedirectUri::parse(u).map_err(usage))
        .collect::<Result<Vec<_>, _>>()?;
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(usage(
            "the authorization_code grant needs at least one --redirect-uri",
        ));
    }
    let post_logout_redirect_uris = a
        .post_logout_redirect_uris
        .iter()
        .map(|u| RedirectUri::parse(u).map_err(usage))
        .collect::<Result<Vec<_>, _>>()?;
    let name = a.name.trim().to_owned();
    if name.is_empty() || name.len() > 200 {
        return Err(usage("--name must be 1 to 200 characters"));
    }
    Ok(NewClient {
        id: ClientId::generate(),
        name,
        secret_hash: None,
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        scopes: ScopeSet::parse(&a.scope).map_err(usage)?,
        auth_method,
        public,
        skip_consent: a.skip_consent,
        introspect_any: a.introspect_any,
        application_type: ApplicationType::Web,
        info: ClientInfo::default(),
        registration_token_hash: None,
    })
}

async fn find(store: &Store, id: &str) -> Result<Client, CliError> {
    store
        .client(id)
        .await
        .context("reading the client")?
        .ok_or_else(|| CliError::Failed(anyhow::anyhow!("no client with id {id:?}")))
}

pub async fn run(
    cmd: ClientCommand,
    store: &Store,
    _settings: &Settings,
    json_out: bool,
) -> Result<(), CliError> {
    match cmd {
        ClientCommand::Create(args) => {
            let mut new = parse_create(args)?;
            let secret = (!new.public).then(|| token::generate(token::prefix::CLIENT_SECRET));
            new.secret_hash = secret.as_deref().map(token::hash);
            let c = store
                .create_client(new, now())
                .await
                .context("registering the client")?;
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
            let clients = store.list_clients().await.context("listing clients")?;
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
            let c = find(store, &id).await?;
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
        ClientCommand::Delete { id } => {
            match store.delete_client(&id).await {
                Ok(()) => {}
                Err(StoreError::NotFound) => {
                    return Err(CliError::Failed(anyhow::anyhow!(
                        "no client with id {id:?}"
                    )));
                }
                Err(e) => {
                    return Err(CliError::Failed(
                        anyhow::Error::from(e).context("deleting the client"),
                    ));
                }
            }
            if json_out {
                print_json(&json!({"deleted": id}));
            } else {
                println!("deleted client {id}");
            }
        }
    }
    Ok(())
}

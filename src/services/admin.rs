//! Administration use cases shared by the admin API, the admin pages and the CLI: users,
//! clients, roles, signing keys and the audit log. Every change is audited with its actor.
//!
//! Who may call these is decided by the caller (`http::api::admin`, `http::pages::admin`);
//! this module only checks what is asked for.

use crate::crypto::token;
use crate::domain::{Client, ClientId, ClientSpec, Email, Invalid, NewUser, Role, RoleInfo, User};
use crate::services::{accounts, keys};
use crate::state::AppState;
use crate::store::accounts::{AuditEntry, AuditEvent, AuditQuery};
use crate::store::keys::KeyRecord;
use crate::store::{Store, StoreError};

/// Who is acting, as the audit log names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The `castellan` command line on the server.
    Cli,
    /// A user with the `admin` role (pages, or a token granted the `admin` scope).
    User(String),
    /// A client's own token (client credentials with the `admin` scope).
    Client(String),
}

impl Actor {
    pub fn audit_name(&self) -> String {
        match self {
            Actor::Cli => "cli".to_owned(),
            Actor::User(id) => format!("user:{id}"),
            Actor::Client(id) => format!("client:{id}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// One or more fields are wrong (RFC 9457 problem with per-field errors).
    #[error("invalid request")]
    Invalid(Vec<Invalid>),
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The change conflicts with what exists (a taken email, a role in use).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unexpected(String),
}

fn invalid(field: &'static str, message: impl Into<String>) -> AdminError {
    AdminError::Invalid(vec![Invalid::new(field, message)])
}

fn not_found(what: &'static str) -> impl Fn(StoreError) -> AdminError {
    move |e| match e {
        StoreError::NotFound => AdminError::NotFound(what),
        other => AdminError::Store(other),
    }
}

async fn record(state: &AppState, actor: &Actor, e: AuditEntry, now: i64) {
    let e = AuditEntry {
        actor: Some(actor.audit_name()),
        ..e
    };
    state.store.record(e, now).await;
}

// --- users ---------------------------------------------------------------------------------

/// A page of users, optionally those whose email contains `search`.
pub async fn list_users(
    state: &AppState,
    search: Option<&str>,
    offset: u64,
    limit: u64,
) -> Result<(Vec<User>, u64), AdminError> {
    Ok(state
        .store
        .list_users(search, offset, limit.clamp(1, 200))
        .await?)
}

pub async fn user(state: &AppState, id: &str) -> Result<User, AdminError> {
    state
        .store
        .user_by_id(id)
        .await?
        .ok_or(AdminError::NotFound("user"))
}

/// Checks role names against the catalogue; every user keeps `user`.
/// (Also the CLI's check, which has a store but no running server.)
pub async fn checked_roles(store: &Store, raw: &[String]) -> Result<Vec<String>, AdminError> {
    let known = store.list_roles().await?;
    let mut errors = Vec::new();
    let mut roles = vec![Role::USER.to_owned()];
    for r in raw {
        match Role::parse(r) {
            Ok(role) if known.iter().any(|k| k.name == role.as_str()) => {
                roles.push(role.as_str().to_owned())
            }
            Ok(role) => errors.push(Invalid::new(
                "roles",
                format!("{:?} is not a role: create it first", role.as_str()),
            )),
            Err(e) => errors.push(Invalid::new("roles", e.message)),
        }
    }
    if !errors.is_empty() {
        return Err(AdminError::Invalid(errors));
    }
    roles.sort();
    roles.dedup();
    Ok(roles)
}

fn checked_name(raw: Option<&str>) -> Result<Option<String>, AdminError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(n) if n.chars().count() > 200 => {
            Err(invalid("name", "must be at most 200 characters"))
        }
        Some(n) => Ok(Some(n.to_owned())),
    }
}

/// What an administrator gives to create a user.
#[derive(Debug, Default)]
pub struct NewUserSpec {
    pub email: String,
    pub name: Option<String>,
    /// Unset: the user has no password until they use a reset link.
    pub password: Option<String>,
    pub roles: Vec<String>,
}

pub async fn create_user(
    state: &AppState,
    actor: &Actor,
    spec: NewUserSpec,
    now: i64,
) -> Result<User, AdminError> {
    let mut errors = Vec::new();
    let email =
        Email::parse(&spec.email).map_err(|e| errors.push(Invalid::new("email", e.message)));
    let name = checked_name(spec.name.as_deref()).map_err(|e| {
        if let AdminError::Invalid(v) = e {
            errors.extend(v)
        }
    });
    let roles = match checked_roles(&state.store, &spec.roles).await {
        Ok(r) => r,
        Err(AdminError::Invalid(v)) => {
            errors.extend(v);
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let password = match spec.password {
        Some(p) => {
            let p = crate::domain::normalize(&p);
            if let Err(problems) = accounts::policy(state).check(&p, Some(spec.email.trim())) {
                errors.push(Invalid::new(
                    "password",
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" "),
                ));
            }
            Some(p)
        }
        None => None,
    };
    let (Ok(email), Ok(name), true) = (email, name, errors.is_empty()) else {
        return Err(AdminError::Invalid(errors));
    };
    let password_hash = match password {
        Some(p) => Some(
            accounts::hash_password(state, p)
                .await
                .map_err(|e| AdminError::Unexpected(e.to_string()))?,
        ),
        None => None,
    };
    let roles = roles.iter().filter_map(|r| Role::parse(r).ok()).collect();
    let user = state
        .store
        .create_user(
            NewUser {
                email,
                // Created by an administrator: the address counts as verified (CONTRACT.md).
                email_verified: true,
                name,
                roles,
                password_hash,
            },
            now,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict => AdminError::Conflict("a user with this email exists".into()),
            other => other.into(),
        })?;
    record(
        state,
        actor,
        AuditEntry {
            kind: "user_created",
            user_id: Some(user.id.as_str().to_owned()),
            detail: format!("roles={}", user.roles.join(" ")),
            ..Default::default()
        },
        now,
    )
    .await;
    Ok(user)
}

/// A partial update of a user; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserPatch {
    /// `Some(None)` clears the name.
    pub name: Option<Option<String>>,
    pub email: Option<String>,
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

pub async fn update_user(
    state: &AppState,
    actor: &Actor,
    id: &str,
    patch: UserPatch,
    now: i64,
) -> Result<User, AdminError> {
    let mut user = user(state, id).await?;
    let uid = user.id.clone();
    // Validate everything before changing anything.
    let name = match &patch.name {
        Some(n) => Some(checked_name(n.as_deref())?),
        None => None,
    };
    let email = match &patch.email {
        Some(e) => Some(Email::parse(e).map_err(|e| invalid("email", e.message))?),
        None => None,
    };
    let roles = match &patch.roles {
        Some(r) => Some(checked_roles(&state.store, r).await?),
        None => None,
    };
    if let Some(name) = name {
        user = state.store.set_user_name(&uid, name, now).await?;
    }
    if let Some(email) = email
        && email.key() != user.email.to_lowercase()
    {
        user = state
            .store
            .set_verified_email(&uid, &email, now)
            .await
            .map(|(_, u)| u)
            .map_err(|e| match e {
                StoreError::Conflict => AdminError::Conflict("another user has this email".into()),
                other => other.into(),
            })?;
        record(
            state,
            actor,
            AuditEntry {
                kind: "email_changed",
                user_id: Some(uid.as_str().to_owned()),
                ..Default::default()
            },
            now,
        )
        .await;
    }
    if let Some(roles) = roles
        && roles != user.roles
    {
        let before = user.roles.join(" ");
        user = state.store.set_user_roles(&uid, &roles, now).await?;
        record(
            state,
            actor,
            AuditEntry {
                kind: "role_changed",
                user_id: Some(uid.as_str().to_owned()),
                detail: format!("from={before:?} to={:?}", user.roles.join(" ")),
                ..Default::default()
            },
            now,
        )
        .await;
    }
    if let Some(disabled) = patch.disabled
        && disabled != user.disabled
    {
        user = state.store.set_user_disabled(&uid, disabled, now).await?;
        if disabled {
            // A disabled account keeps no way in: sessions and refresh tokens end now.
            state.store.end_user_access(uid.as_str(), None, now).await?;
        }
        record(
            state,
            actor,
            AuditEntry {
                kind: if disabled {
                    "user_disabled"
                } else {
                    "user_enabled"
                },
                user_id: Some(uid.as_str().to_owned()),
                ..Default::default()
            },
            now,
        )
        .await;
    }
    Ok(user)
}

/// Deletes a user: sessions, refresh tokens, consents and email tokens go with the row.
pub async fn delete_user(
    state: &AppState,
    actor: &Actor,
    id: &str,
    now: i64,
) -> Result<(), AdminError> {
    let user = user(state, id).await?;
    state
        .store
        .end_user_access(user.id.as_str(), None, now)
        .await?;
    state
        .store
        .delete_user(&user.id)
        .await
        .map_err(not_found("user"))?;
    record(
        state,
        actor,
        AuditEntry {
            kind: "user_deleted",
            user_id: Some(user.id.as_str().to_owned()),
            ..Default::default()
        },
        now,
    )
    .await;
    Ok(())
}

/// Mails the user a password-reset link.
pub async fn send_password_reset(
    state: &AppState,
    actor: &Actor,
    id: &str,
    now: i64,
) -> Result<(), AdminError> {
    let user = user(state, id).await?;
    if user.disabled {
        return Err(AdminError::Conflict(
            "the user is disabled: enable the account first".into(),
        ));
    }
    accounts::send_reset_link(state, &user, None, Some(actor.audit_name()), now)
        .await
        .map_err(|e| AdminError::Unexpected(e.to_string()))
}

/// Ends every session and refresh token of the user; returns how many sessions ended.
pub async fn end_sessions(
    state: &AppState,
    actor: &Actor,
    id: &str,
    now: i64,
) -> Result<u64, AdminError> {
    let user = user(state, id).await?;
    let ended = state
        .store
        .end_user_access(user.id.as_str(), None, now)
        .await?;
    record(
        state,
        actor,
        AuditEntry {
            kind: "sessions_ended",
            user_id: Some(user.id.as_str().to_owned()),
            detail: format!("sessions={ended}"),
            ..Default::default()
        },
        now,
    )
    .await;
    Ok(ended)
}

// --- clients -------------------------------------------------------------------------------

pub async fn list_clients(state: &AppState) -> Result<Vec<Client>, AdminError> {
    Ok(state.store.list_clients().await?)
}

pub async fn client(state: &AppState, id: &str) -> Result<Client, AdminError> {
    state
        .store
        .client(id)
        .await?
        .ok_or(AdminError::NotFound("client"))
}

/// Registers a client; returns it with its secret (confidential clients), shown only now.
pub async fn create_client(
    state: &AppState,
    actor: &Actor,
    spec: &ClientSpec,
    now: i64,
) -> Result<(Client, Option<String>), AdminError> {
    let mut new = spec
        .validate(ClientId::generate())
        .map_err(AdminError::Invalid)?;
    let secret = (!new.public).then(|| token::generate(token::prefix::CLIENT_SECRET));
    new.secret_hash = secret.as_deref().map(token::hash);
    let client = state.store.create_client(new, now).await?;
    record(
        state,
        actor,
        AuditEntry {
            kind: "client_created",
            client_id: Some(client.id.as_str().to_owned()),
            detail: format!("scope={:?}", client.scopes.to_string()),
            ..Default::default()
        },
        now,
    )
    .await;
    Ok((client, secret))
}

/// Replaces a client's metadata. A client stays public or confidential: switching would leave a
/// confidential client without a secret, or a public one with one.
pub async fn update_client(
    state: &AppState,
    actor: &Actor,
    id: &str,
    spec: &ClientSpec,
    now: i64,
) -> Result<Client, AdminError> {
    let current = client(state, id).await?;
    let new = spec
        .validate_update(&current)
        .map_err(AdminError::Invalid)?;
    let client = state
        .store
        .update_client(new, now)
        .await
        .map_err(not_found("client"))?;
    record(
        state,
        actor,
        AuditEntry {
            kind: "client_updated",
            client_id: Some(client.id.as_str().to_owned()),
            detail: format!("scope={:?}", client.scopes.to_string()),
            ..Default::default()
        },
        now,
    )
    .await;
    Ok(client)
}

pub async fn delete_client(
    state: &AppState,
    actor: &Actor,
    id: &str,
    now: i64,
) -> Result<(), AdminError> {
    state
        .store
        .delete_client(id)
        .await
        .map_err(not_found("client"))?;
    record(
        state,
        actor,
        AuditEntry {
            kind: "client_deleted",
            client_id: Some(id.to_owned()),
            ..Default::default()
        },
        now,
    )
    .await;
    Ok(())
}

/// Gives a confidential client a new secret (shown once); the old one stops working at once.
pub async fn rotate_client_secret(
    state: &AppState,
    actor: &Actor,
    id: &str,
    now: i64,
) -> Result<String, AdminError> {
    let c = client(state, id).await?;
    if c.public {
        return Err(AdminError::Conflict("a public client has no secret".into()));
    }
    let secret = token::generate(token::prefix::CLIENT_SECRET);
    state
        .store
        .set_client_secret_hash(c.id.as_str(), token::hash(&secret), now)
        .await
        .map_err(not_found("client"))?;
    record(
        state,
        actor,
        AuditEntry {
            kind: "client_secret_rotated",
            client_id: Some(c.id.as_str().to_owned()),
            ..Default::default()
        },
        now,
    )
    .await;
    Ok(secret)
}

// --- roles ---------------------------------------------------------------------------------

pub async fn list_roles(state: &AppState) -> Result<Vec<RoleInfo>, AdminError> {
    Ok(state.store.list_roles().await?)
}

pub async fn create_role(
    state: &AppState,
    actor: &Actor,
    name: &str,
    description: &str,
    now: i64,
) -> Result<RoleInfo, AdminError> {
    let role = Role::parse(name).map_err(|e| invalid("name", e.message))?;
    let description = description.trim();
    if description.chars().count() > 500 {
        return Err(invalid("description", "must be at most 500 characters"));
    }
    let info = state
        .store
        .create_role(role.as_str(), description, now)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => AdminError::Conflict("a role with this name exists".into()),
            other => other.into(),
        })?;
    record(
        state,
        actor,
        AuditEntry {
            kind: "role_created",
            detail: format!("role={}", info.name),
            ..Default::default()
        },
        now,
    )
    .await;
    Ok(info)
}

/// Deletes a custom role that nobody holds.
pub async fn delete_role(
    state: &AppState,
    actor: &Actor,
    name: &str,
    now: i64,
) -> Result<(), AdminError> {
    let Some(role) = state.store.role(name).await? else {
        return Err(AdminError::NotFound("role"));
    };
    if role.builtin {
        return Err(AdminError::Conflict(format!(
            "{:?} is built in and cannot be deleted",
            role.name
        )));
    }
    let holders = state.store.role_holders(&role.name).await?;
    if holders > 0 {
        return Err(AdminError::Conflict(format!(
            "{holders} user(s) hold {:?}: take it from them first",
            role.name
        )));
    }
    state
        .store
        .delete_role(&role.name)
        .await
        .map_err(not_found("role"))?;
    record(
        state,
        actor,
        AuditEntry {
            kind: "role_deleted",
            detail: format!("role={}", role.name),
            ..Default::default()
        },
        now,
    )
    .await;
    Ok(())
}

// --- keys ----------------------------------------------------------------------------------

pub async fn list_keys(state: &AppState) -> Result<Vec<KeyRecord>, AdminError> {
    Ok(state.store.list_keys().await?)
}

/// Makes a new signing key active; the old one stays published until its tokens expire.
pub async fn rotate_key(
    state: &AppState,
    actor: &Actor,
    now: i64,
) -> Result<KeyRecord, AdminError> {
    let key = keys::rotate(&state.store, &state.settings, now)
        .await
        .map_err(|e| AdminError::Unexpected(e.to_string()))?;
    record(
        state,
        actor,
        AuditEntry {
            kind: "key_rotated",
            detail: format!("kid={}", key.kid),
            ..Default::default()
        },
        now,
    )
    .await;
    Ok(key)
}

// --- audit ---------------------------------------------------------------------------------

pub async fn audit_events(
    state: &AppState,
    mut q: AuditQuery,
) -> Result<Vec<AuditEvent>, AdminError> {
    q.limit = q.limit.clamp(1, 500);
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from >= to
    {
        return Err(invalid("from", "must be before `to`"));
    }
    Ok(state.store.audit_events(&q).await?)
}

//! Administration use cases shared by the admin API, the admin pages and the CLI: users (and
//! a reset of their second factors), clients, roles, signing keys and the audit log. Every
//! change is audited with its actor.
//!
//! Who may call them is decided here too: every action takes an [`Actor`], and the only way to
//! get one is [`Admin::authorize`], which checks the caller (the command line on the server; a
//! signed-in user who holds the `admin` role now, in a session that used a second factor when
//! their roles require one; a bearer token granted the `admin` scope by a client that may still
//! hold it, for a user who holds the role now or for that client itself).

mod upstreams;

use crate::crypto::token;
use crate::domain::{Acr, AuditEntry, AuditKind, PasswordProblem, UnixTime};
use crate::domain::{Client, ClientId, ClientSpec, Email, Invalid, NewUser, Role, RoleInfo, User};
use crate::services::keys;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::domain::KeyRecord;
use crate::mail::Mail;
use crate::services::accounts::Accounts;
use crate::services::authn::Authenticated;
use crate::services::factors::{FactorError, Factors};
use crate::services::tokens::{ADMIN_SCOPE, AccessClaims};
use crate::store::accounts::{AuditEvent, AuditQuery};
use crate::store::factors::FactorsReset;
use crate::store::{Store, StoreError};

/// An administrator who passed [`Admin::authorize`]: only that function makes one, so every
/// action that takes it was checked. The audit log names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(ActorKind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum ActorKind {
    /// The `castellan` command line on the server.
    Cli,
    /// A user with the `admin` role (pages, or a token granted the `admin` scope).
    User(String),
    /// A client's own token (client credentials with the `admin` scope).
    Client(String),
}

impl Actor {
    pub fn audit_name(&self) -> String {
        match &self.0 {
            ActorKind::Cli => "cli".to_owned(),
            ActorKind::User(id) => format!("user:{id}"),
            ActorKind::Client(id) => format!("client:{id}"),
        }
    }

    /// The administrator's user id, when a user is acting.
    pub fn user_id(&self) -> Option<&str> {
        match &self.0 {
            ActorKind::User(id) => Some(id),
            _ => None,
        }
    }
}

/// Who asks to administer.
pub enum Caller<'a> {
    /// The `castellan` command line on the server (it holds the database already).
    Cli,
    /// A signed-in browser.
    Session(&'a Authenticated),
    /// An access token (RFC 6750 §2.1) that `Tokens::verify_access_token_with_user` found
    /// standing: its claims, and its user unless it is a client's own token.
    Token {
        claims: &'a AccessClaims,
        user: Option<&'a User>,
    },
}

/// Why [`Admin::authorize`] refused.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    /// A valid caller without the right (RFC 6750 §3.1 `insufficient_scope`; 403).
    #[error("not an administrator")]
    NotAdmin,
    /// An administrator whose roles require a second factor (`mfa.required_for_roles`), in a
    /// session that has not used one: a step-up first, or enrolment when `enrolled` is false
    /// (never a refusal, as at the authorization endpoint).
    #[error("a second factor is required")]
    SecondFactorRequired { enrolled: bool },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The administration use cases, with what they need.
#[derive(Debug, Clone)]
pub struct Admin {
    store: Store,
    accounts: Accounts,
    /// Second factors: whether a user has one, and the mail a reset sends.
    factors: Factors,
    settings: Arc<Settings>,
    clock: SharedClock,
    /// The key-encryption key new signing keys are sealed under.
    kek: Option<Arc<crate::crypto::seal::Kek>>,
}

impl Admin {
    pub fn new(
        store: Store,
        accounts: Accounts,
        factors: Factors,
        settings: Arc<Settings>,
        clock: SharedClock,
        kek: Option<Arc<crate::crypto::seal::Kek>>,
    ) -> Self {
        Self {
            store,
            accounts,
            factors,
            settings,
            clock,
            kek,
        }
    }

    /// The clock reading an action works with.
    pub fn now(&self) -> UnixTime {
        self.clock.time()
    }

    /// Checks who is calling; the [`Actor`] it gives is what every action requires.
    pub async fn authorize(&self, caller: Caller<'_>) -> Result<Actor, Denied> {
        match caller {
            Caller::Cli => Ok(Actor(ActorKind::Cli)),
            // A disabled account is signed out already (`Authn::current`); checked again here
            // so this does not depend on it.
            Caller::Session(me) if !me.user.disabled && me.user.has_role(Role::ADMIN) => {
                // The policy holds here as at the authorization endpoint: a session of a user
                // whose roles require a second factor must have used one.
                if self.settings.mfa.policy().required_for(&me.user)
                    && Acr::of(&me.session.amr) < Acr::Mfa
                {
                    let enrolled = match self.factors.has_any(&me.user.id).await {
                        Ok(has) => has,
                        Err(FactorError::Store(e)) => return Err(Denied::Store(e)),
                        Err(e) => return Err(Denied::Store(StoreError::Corrupt(e.to_string()))),
                    };
                    return Err(Denied::SecondFactorRequired { enrolled });
                }
                Ok(Actor(ActorKind::User(me.user.id.as_str().to_owned())))
            }
            Caller::Session(_) => Err(Denied::NotAdmin),
            Caller::Token { claims, user } => self.authorize_token(claims, user).await,
        }
    }

    /// A token with the `admin` scope, from a client that may still hold it, for a user who
    /// holds the `admin` role now or for that client itself. Both are checked on every call, so
    /// taking either away takes effect at once.
    async fn authorize_token(
        &self,
        claims: &AccessClaims,
        user: Option<&User>,
    ) -> Result<Actor, Denied> {
        if !claims.has_scope(ADMIN_SCOPE) {
            return Err(Denied::NotAdmin);
        }
        let client_may = self
            .store
            .client(&claims.client_id)
            .await?
            .is_some_and(|c| c.scopes.contains(ADMIN_SCOPE));
        if !client_may {
            return Err(Denied::NotAdmin);
        }
        // A user's token comes with its user, who exists and is enabled (or it has ended).
        match user {
            Some(u) if u.has_role(Role::ADMIN) => {
                Ok(Actor(ActorKind::User(u.id.as_str().to_owned())))
            }
            Some(_) => Err(Denied::NotAdmin),
            None => Ok(Actor(ActorKind::Client(claims.client_id.clone()))),
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
    /// A rule forbids the change itself, whatever exists (a built-in role, a public client's
    /// secret).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unexpected(String),
}

fn factor_error(e: FactorError) -> AdminError {
    match e {
        FactorError::Store(e) => AdminError::Store(e),
        other => AdminError::Unexpected(other.to_string()),
    }
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

// --- users ---------------------------------------------------------------------------------

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

/// A partial update of a user; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserPatch {
    /// `Some(None)` clears the name.
    pub name: Option<Option<String>>,
    pub email: Option<String>,
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

// --- clients -------------------------------------------------------------------------------

// --- roles ---------------------------------------------------------------------------------

// --- keys ----------------------------------------------------------------------------------

// --- audit ---------------------------------------------------------------------------------

impl Admin {
    async fn record(&self, actor: &Actor, e: AuditEntry, now: UnixTime) {
        let e = AuditEntry {
            actor: Some(actor.audit_name()),
            ..e
        };
        self.store.record(e, now).await;
    }

    /// A page of users, optionally those whose email contains `search`.
    pub async fn list_users(
        &self,
        _actor: &Actor,
        search: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<User>, u64), AdminError> {
        Ok(self
            .store
            .list_users(search, offset, limit.clamp(1, 200))
            .await?)
    }

    /// A user by id or (case-insensitively) by email: what the command line accepts.
    pub async fn find_user(&self, _actor: &Actor, key: &str) -> Result<User, AdminError> {
        self.store
            .user_by_id_or_email(key)
            .await?
            .ok_or(AdminError::NotFound("user"))
    }

    pub async fn user(&self, _actor: &Actor, id: &str) -> Result<User, AdminError> {
        self.store
            .user_by_id(id)
            .await?
            .ok_or(AdminError::NotFound("user"))
    }

    pub async fn create_user(&self, actor: &Actor, spec: NewUserSpec) -> Result<User, AdminError> {
        let now = self.clock.time();
        let mut errors = Vec::new();
        let email =
            Email::parse(&spec.email).map_err(|e| errors.push(Invalid::new("email", e.message)));
        let name = checked_name(spec.name.as_deref()).map_err(|e| {
            if let AdminError::Invalid(v) = e {
                errors.extend(v)
            }
        });
        let roles = match checked_roles(&self.store, &spec.roles).await {
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
                let mut problems = match self.accounts.policy().check(&p, Some(spec.email.trim())) {
                    Ok(()) => Vec::new(),
                    Err(problems) => problems,
                };
                // The operator at the server's command line is trusted with the password's
                // content (a service or test account): only its length bounds apply, as they
                // always have for `castellan user create`. Users and the admin API get the
                // whole policy.
                if actor.0 == ActorKind::Cli {
                    problems.retain(|p| {
                        matches!(
                            p,
                            PasswordProblem::TooShort { .. } | PasswordProblem::TooLong { .. }
                        )
                    });
                }
                if !problems.is_empty() {
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
                self.accounts
                    .hash_password(p)
                    .await
                    .map_err(|e| AdminError::Unexpected(e.to_string()))?,
            ),
            None => None,
        };
        let roles = roles.iter().filter_map(|r| Role::parse(r).ok()).collect();
        let user = self
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
                StoreError::Conflict => {
                    AdminError::Conflict("a user with this email exists".into())
                }
                other => other.into(),
            })?;
        self.record(
            actor,
            AuditEntry {
                user_id: Some(user.id.as_str().to_owned()),
                detail: format!("roles={}", user.roles.join(" ")),
                ..AuditEntry::new(AuditKind::UserCreated)
            },
            now,
        )
        .await;
        Ok(user)
    }

    pub async fn update_user(
        &self,
        actor: &Actor,
        id: &str,
        patch: UserPatch,
    ) -> Result<User, AdminError> {
        let now = self.clock.time();
        let mut user = self.user(actor, id).await?;
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
            Some(r) => Some(checked_roles(&self.store, r).await?),
            None => None,
        };
        // An administrator cannot lock themselves out; another administrator can.
        if actor.user_id() == Some(uid.as_str()) {
            if roles
                .as_ref()
                .is_some_and(|r| !r.iter().any(|r| r == Role::ADMIN))
            {
                return Err(AdminError::Refused(
                    "You cannot take the admin role from yourself: ask another administrator."
                        .into(),
                ));
            }
            if patch.disabled == Some(true) {
                return Err(AdminError::Refused(
                    "You cannot disable your own account: ask another administrator.".into(),
                ));
            }
        }
        if let Some(name) = name {
            user = self.store.set_user_name(&uid, name, now).await?;
        }
        if let Some(email) = email
            && email.key() != user.email.to_lowercase()
        {
            user = self
                .store
                .set_verified_email(&uid, &email, now)
                .await
                .map(|(_, u)| u)
                .map_err(|e| match e {
                    StoreError::Conflict => {
                        AdminError::Conflict("another user has this email".into())
                    }
                    other => other.into(),
                })?;
            self.record(
                actor,
                AuditEntry {
                    user_id: Some(uid.as_str().to_owned()),
                    ..AuditEntry::new(AuditKind::EmailChanged)
                },
                now,
            )
            .await;
        }
        if let Some(roles) = roles
            && roles != user.roles
        {
            let before = user.roles.join(" ");
            user = self.store.set_user_roles(&uid, &roles, now).await?;
            self.record(
                actor,
                AuditEntry {
                    user_id: Some(uid.as_str().to_owned()),
                    detail: format!("from={before:?} to={:?}", user.roles.join(" ")),
                    ..AuditEntry::new(AuditKind::RoleChanged)
                },
                now,
            )
            .await;
        }
        if let Some(disabled) = patch.disabled
            && disabled != user.disabled
        {
            user = self.store.set_user_disabled(&uid, disabled, now).await?;
            if disabled {
                // A disabled account keeps no way in: sessions and refresh tokens end now.
                self.store.end_user_access(&uid, None, now).await?;
            }
            self.record(
                actor,
                AuditEntry {
                    user_id: Some(uid.as_str().to_owned()),
                    ..AuditEntry::new(if disabled {
                        AuditKind::UserDisabled
                    } else {
                        AuditKind::UserEnabled
                    })
                },
                now,
            )
            .await;
        }
        Ok(user)
    }

    /// Deletes a user: sessions, refresh tokens, consents and email tokens go with the row.
    pub async fn delete_user(&self, actor: &Actor, id: &str) -> Result<(), AdminError> {
        let now = self.clock.time();
        let user = self.user(actor, id).await?;
        if actor.user_id() == Some(user.id.as_str()) {
            return Err(AdminError::Refused(
                "You cannot delete your own account: ask another administrator.".into(),
            ));
        }
        self.store.end_user_access(&user.id, None, now).await?;
        self.store
            .delete_user(&user.id)
            .await
            .map_err(not_found("user"))?;
        self.record(
            actor,
            AuditEntry {
                user_id: Some(user.id.as_str().to_owned()),
                ..AuditEntry::new(AuditKind::UserDeleted)
            },
            now,
        )
        .await;
        Ok(())
    }

    /// Mails the user a password-reset link.
    pub async fn send_password_reset(&self, actor: &Actor, id: &str) -> Result<(), AdminError> {
        let now = self.clock.time();
        let user = self.user(actor, id).await?;
        if user.disabled {
            return Err(AdminError::Conflict(
                "the user is disabled: enable the account first".into(),
            ));
        }
        self.accounts
            .send_reset_link(&user, None, Some(actor.audit_name()), now)
            .await
            .map_err(|e| AdminError::Unexpected(e.to_string()))
    }

    /// Ends every session and refresh token of the user; returns how many sessions ended.
    pub async fn end_sessions(&self, actor: &Actor, id: &str) -> Result<u64, AdminError> {
        let now = self.clock.time();
        let user = self.user(actor, id).await?;
        let ended = self.store.end_user_access(&user.id, None, now).await?;
        self.record(
            actor,
            AuditEntry {
                user_id: Some(user.id.as_str().to_owned()),
                detail: format!("sessions={ended}"),
                ..AuditEntry::new(AuditKind::SessionsEnded)
            },
            now,
        )
        .await;
        Ok(ended)
    }

    /// Whether the user has a second factor (the admin user page shows it).
    pub async fn has_second_factor(&self, actor: &Actor, id: &str) -> Result<bool, AdminError> {
        let user = self.user(actor, id).await?;
        self.factors.has_any(&user.id).await.map_err(factor_error)
    }

    /// Removes every second factor of the user (TOTP and recovery codes) and every sign-in
    /// waiting for one, in one transaction (`Store::reset_second_factors`), for a user who
    /// lost them: they sign in with the password alone next, or, when their roles require a
    /// second factor, are taken to enrolment. Nothing else ends (sessions, tokens and the
    /// password stay). Audited with the actor; the user is mailed when a factor was removed.
    pub async fn reset_mfa(&self, actor: &Actor, id: &str) -> Result<FactorsReset, AdminError> {
        let now = self.clock.time();
        let user = self.user(actor, id).await?;
        let reset = self.store.reset_second_factors(&user.id).await?;
        self.record(
            actor,
            AuditEntry {
                user_id: Some(user.id.as_str().to_owned()),
                detail: format!(
                    "factors={} recovery_codes={} pending_sign_ins={}",
                    reset.factors, reset.recovery_codes, reset.pending_sign_ins
                ),
                ..AuditEntry::new(AuditKind::MfaReset)
            },
            now,
        )
        .await;
        if reset.factors > 0 {
            self.factors
                .send_mail(&user.email, Mail::SecondFactorsReset, now)
                .await;
        }
        Ok(reset)
    }

    pub async fn list_clients(&self, _actor: &Actor) -> Result<Vec<Client>, AdminError> {
        Ok(self.store.list_clients().await?)
    }

    pub async fn client(&self, _actor: &Actor, id: &str) -> Result<Client, AdminError> {
        self.store
            .client(id)
            .await?
            .ok_or(AdminError::NotFound("client"))
    }

    /// Registers a client; returns it with its secret (confidential clients), shown only now.
    pub async fn create_client(
        &self,
        actor: &Actor,
        spec: &ClientSpec,
    ) -> Result<(Client, Option<String>), AdminError> {
        let now = self.clock.time();
        let mut new = spec
            .validate(ClientId::generate())
            .map_err(AdminError::Invalid)?;
        let secret = (!new.public).then(|| token::generate(token::prefix::CLIENT_SECRET));
        new.secret_hash = secret.as_deref().map(token::hash);
        let client = self.store.create_client(new, now).await?;
        self.record(
            actor,
            AuditEntry {
                client_id: Some(client.id.as_str().to_owned()),
                detail: format!("scope={:?}", client.scopes.to_string()),
                ..AuditEntry::new(AuditKind::ClientCreated)
            },
            now,
        )
        .await;
        Ok((client, secret))
    }

    /// Replaces a client's metadata. A client stays public or confidential: switching would leave a
    /// confidential client without a secret, or a public one with one.
    pub async fn update_client(
        &self,
        actor: &Actor,
        id: &str,
        spec: &ClientSpec,
    ) -> Result<Client, AdminError> {
        let now = self.clock.time();
        let current = self.client(actor, id).await?;
        let new = spec
            .validate_update(&current)
            .map_err(AdminError::Invalid)?;
        let client = self
            .store
            .update_client(new, now)
            .await
            .map_err(not_found("client"))?;
        self.record(
            actor,
            AuditEntry {
                client_id: Some(client.id.as_str().to_owned()),
                detail: format!("scope={:?}", client.scopes.to_string()),
                ..AuditEntry::new(AuditKind::ClientUpdated)
            },
            now,
        )
        .await;
        Ok(client)
    }

    pub async fn delete_client(&self, actor: &Actor, id: &str) -> Result<(), AdminError> {
        let now = self.clock.time();
        self.store
            .delete_client(id)
            .await
            .map_err(not_found("client"))?;
        self.record(
            actor,
            AuditEntry {
                client_id: Some(id.to_owned()),
                ..AuditEntry::new(AuditKind::ClientDeleted)
            },
            now,
        )
        .await;
        Ok(())
    }

    /// Gives a confidential client a new secret (shown once); the old one stops working at once.
    pub async fn rotate_client_secret(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<String, AdminError> {
        let now = self.clock.time();
        let c = self.client(actor, id).await?;
        if c.public {
            return Err(AdminError::Refused(format!(
                "{:?} is a public client: it has no secret",
                c.id.as_str()
            )));
        }
        let secret = token::generate(token::prefix::CLIENT_SECRET);
        self.store
            .set_client_secret_hash(c.id.as_str(), token::hash(&secret), now)
            .await
            .map_err(not_found("client"))?;
        self.record(
            actor,
            AuditEntry {
                client_id: Some(c.id.as_str().to_owned()),
                ..AuditEntry::new(AuditKind::ClientSecretRotated)
            },
            now,
        )
        .await;
        Ok(secret)
    }

    pub async fn list_roles(&self, _actor: &Actor) -> Result<Vec<RoleInfo>, AdminError> {
        Ok(self.store.list_roles().await?)
    }

    pub async fn create_role(
        &self,
        actor: &Actor,
        name: &str,
        description: &str,
    ) -> Result<RoleInfo, AdminError> {
        let now = self.clock.time();
        let role = Role::parse(name).map_err(|e| invalid("name", e.message))?;
        let description = description.trim();
        if description.chars().count() > 500 {
            return Err(invalid("description", "must be at most 500 characters"));
        }
        let info = self
            .store
            .create_role(role.as_str(), description, now)
            .await
            .map_err(|e| match e {
                StoreError::Conflict => AdminError::Conflict("a role with this name exists".into()),
                other => other.into(),
            })?;
        self.record(
            actor,
            AuditEntry {
                detail: format!("role={}", info.name),
                ..AuditEntry::new(AuditKind::RoleCreated)
            },
            now,
        )
        .await;
        Ok(info)
    }

    /// Deletes a custom role that nobody holds.
    pub async fn delete_role(&self, actor: &Actor, name: &str) -> Result<(), AdminError> {
        let now = self.clock.time();
        let Some(role) = self.store.role(name).await? else {
            return Err(AdminError::NotFound("role"));
        };
        if role.builtin {
            return Err(AdminError::Refused(format!(
                "{:?} is built in and cannot be deleted",
                role.name
            )));
        }
        let holders = self.store.role_holders(&role.name).await?;
        if holders > 0 {
            return Err(AdminError::Conflict(format!(
                "{holders} user(s) hold {:?}: take it from them first",
                role.name
            )));
        }
        self.store
            .delete_role(&role.name)
            .await
            .map_err(not_found("role"))?;
        self.record(
            actor,
            AuditEntry {
                detail: format!("role={}", role.name),
                ..AuditEntry::new(AuditKind::RoleDeleted)
            },
            now,
        )
        .await;
        Ok(())
    }

    pub async fn list_keys(&self, _actor: &Actor) -> Result<Vec<KeyRecord>, AdminError> {
        Ok(self.store.list_keys().await?)
    }

    /// Makes a new signing key. By default it is published now and signs
    /// `keys.publish_ahead_secs` later; `immediately` makes it sign at once (after a key was
    /// exposed). The keys it replaces stay published until their tokens expire.
    pub async fn rotate_key(
        &self,
        actor: &Actor,
        immediately: bool,
    ) -> Result<KeyRecord, AdminError> {
        let now = self.clock.time();
        let key = keys::rotate(
            &self.store,
            &self.settings,
            self.kek.as_deref(),
            now,
            immediately,
        )
        .await
        .map_err(|e| AdminError::Unexpected(e.to_string()))?;
        let when = if immediately {
            "signing now".to_owned()
        } else {
            format!("signing from {}", key.activate_at.secs())
        };
        self.record(
            actor,
            AuditEntry {
                detail: format!("kid={} {when}", key.kid),
                ..AuditEntry::new(AuditKind::KeyRotated)
            },
            now,
        )
        .await;
        Ok(key)
    }

    /// Seals every signing key under `new` (opening those sealed under `old`); one
    /// transaction. Returns how many keys were written.
    pub async fn rewrap_keys(
        &self,
        actor: &Actor,
        old: Option<&crate::crypto::seal::Kek>,
        new: &crate::crypto::seal::Kek,
    ) -> Result<usize, AdminError> {
        let now = self.clock.time();
        let n = keys::rewrap(&self.store, old, new, now)
            .await
            .map_err(|e| AdminError::Unexpected(e.to_string()))?;
        self.record(
            actor,
            AuditEntry {
                detail: format!(
                    "keys rewrapped under key-encryption key {} ({n})",
                    new.id_hex()
                ),
                ..AuditEntry::new(AuditKind::KeysRewrapped)
            },
            now,
        )
        .await;
        Ok(n)
    }

    pub async fn audit_events(
        &self,
        _actor: &Actor,
        mut q: AuditQuery,
    ) -> Result<Vec<AuditEvent>, AdminError> {
        q.limit = q.limit.clamp(1, 500);
        if let (Some(from), Some(to)) = (q.from, q.to)
            && from >= to
        {
            return Err(invalid("from", "must be before `to`"));
        }
        Ok(self.store.audit_events(&q).await?)
    }
}

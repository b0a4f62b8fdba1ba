//! Dynamic client registration: RFC 7591 (register) and RFC 7592 (read, update, delete through
//! the client configuration endpoint), switched by `dynamic_registration.mode`.
//!
//! - `off`: the endpoints do not exist ([`RegistrationError::Disabled`], a 404).
//! - `open`: anyone may register; registrations are limited per address (the
//!   `rate_limit.register_per_minute` rate, in a bucket of its own).
//! - `token`: registration needs `Authorization: Bearer <initial access token>` (RFC 7591 §3),
//!   compared in constant time.
//!
//! Metadata is parsed by [`crate::domain::registration`]. A client registered here is never
//! first-party: it always asks for consent and may introspect only its own tokens. Its secret
//! (confidential clients) and its registration access token are shown once and stored only as
//! SHA-256 hashes. The configuration endpoint answers a wrong, missing or foreign registration
//! access token with 401 and never says whether the client exists (RFC 7592 §2).

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use crate::config::RegistrationMode;
use crate::crypto::token;
use crate::domain::registration::{ClientMetadata, MetadataError};
use crate::domain::{AuditEntry, AuditKind};
use crate::domain::{Client, ClientId, NewClient, UnixTime};
use crate::paths;
use crate::services::ratelimit::Action;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::services::ratelimit::RateLimiter;
use crate::store::{Store, StoreError};

/// Who audit rows name as the actor of a registration change.
const ACTOR: &str = "dynamic_registration";

/// Why a registration request was refused; each variant maps to one wire answer.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// `dynamic_registration.mode` is `off`: the endpoints answer 404.
    #[error("dynamic registration is off")]
    Disabled,
    /// RFC 6750 §3.1 `invalid_token` (401): the initial or registration access token is
    /// missing, wrong, or belongs to another client.
    #[error("invalid_token")]
    InvalidToken {
        /// No bearer token was presented at all (RFC 6750 §3.1: no error attributes then).
        missing: bool,
    },
    /// RFC 6749 §5.2 `invalid_request` (400): not a JSON request.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// RFC 7591 §3.2.2 `invalid_redirect_uri` / `invalid_client_metadata` (400).
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// Too many open registrations from this address; retry after this many seconds.
    #[error("rate limited")]
    RateLimited(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistrationError {
    /// The error code on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Disabled => "not_found",
            Self::InvalidToken { .. } => "invalid_token",
            Self::InvalidRequest(_) => "invalid_request",
            Self::Metadata(MetadataError::RedirectUri(_)) => "invalid_redirect_uri",
            Self::Metadata(MetadataError::Metadata(_)) => "invalid_client_metadata",
            // RFC 6749 §4.1.2.1: the nearest registered code for "not now".
            Self::RateLimited(_) => "temporarily_unavailable",
            // RFC 6749 §4.1.2.1's code, as at the other endpoints (`oauth::OAuthError`).
            Self::Store(e) if e.is_unavailable() => "temporarily_unavailable",
            Self::Store(_) => "server_error",
        }
    }

    /// A description safe to send: never a token, a secret or an internal detail.
    pub fn description(&self) -> String {
        match self {
            Self::Disabled => "dynamic client registration is not enabled".into(),
            Self::InvalidToken { missing: true } => "a bearer token is required".into(),
            Self::InvalidToken { missing: false } => {
                "the access token is invalid, or not valid for this client".into()
            }
            Self::InvalidRequest(d) => d.clone(),
            Self::Metadata(MetadataError::RedirectUri(d) | MetadataError::Metadata(d)) => d.clone(),
            Self::RateLimited(_) => "too many registrations from this address; retry later".into(),
            Self::Store(e) if e.is_unavailable() => "the server is temporarily unavailable".into(),
            Self::Store(_) => "an unexpected error occurred".into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::Disabled => 404,
            Self::InvalidToken { .. } => 401,
            Self::InvalidRequest(_) | Self::Metadata(_) => 400,
            Self::RateLimited(_) => 429,
            Self::Store(e) if e.is_unavailable() => 503,
            Self::Store(_) => 500,
        }
    }
}

/// What the HTTP layer extracted from the request.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The `Authorization: Bearer` token, if any.
    pub bearer: Option<&'a str>,
    /// The client's address (for the rate limit and the audit row).
    pub ip: Option<IpAddr>,
}

/// A successful answer: the client information response (RFC 7591 §3.2.1, RFC 7592 §3).
#[derive(Debug)]
pub struct ClientInformation {
    pub body: Value,
}

/// A request body, and whether it was sent as `application/json`.
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    pub is_json: bool,
    pub bytes: &'a [u8],
}

/// The request body as a JSON object (RFC 7591 §3.1: the metadata is a JSON document sent as
/// `application/json`). Checked after the caller is authorised, so an unauthorised caller
/// learns nothing from the error.
fn json_object(body: Body<'_>) -> Result<Map<String, Value>, RegistrationError> {
    if !body.is_json {
        return Err(RegistrationError::InvalidRequest(
            "the body must be application/json".into(),
        ));
    }
    let value: Value = serde_json::from_slice(body.bytes)
        .map_err(|_| RegistrationError::InvalidRequest("the body is not valid JSON".into()))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(MetadataError::Metadata("the body must be a JSON object".into()).into()),
    }
}

fn uri_strings(v: &[crate::domain::RedirectUri]) -> Vec<&str> {
    v.iter().map(|u| u.as_str()).collect()
}

/// The row to store for validated metadata.
fn new_client(
    id: ClientId,
    m: ClientMetadata,
    secret_hash: Option<String>,
    registration_token_hash: Option<String>,
) -> NewClient {
    let public = m.is_public();
    NewClient {
        // Without a client_name the consent page shows the client id.
        name: m.name.unwrap_or_else(|| id.as_str().to_owned()),
        id,
        secret_hash,
        redirect_uris: m.redirect_uris,
        post_logout_redirect_uris: m.post_logout_redirect_uris,
        grant_types: m.grant_types,
        scopes: m.scopes,
        auth_method: m.auth_method,
        public,
        // Never first-party, never a resource server: only an administrator grants those.
        skip_consent: false,
        introspect_any: false,
        // Only an administrator sets it (and a client's own update keeps it: see `update`).
        require_mfa: false,
        application_type: m.application_type,
        info: m.info,
        registration_token_hash,
    }
}

/// Dynamic client registration, with what it needs.
#[derive(Debug, Clone)]
pub struct ClientRegistration {
    store: Store,
    settings: Arc<Settings>,
    limiter: Arc<RateLimiter>,
    clock: SharedClock,
}

impl ClientRegistration {
    pub fn new(
        store: Store,
        settings: Arc<Settings>,
        limiter: Arc<RateLimiter>,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            settings,
            limiter,
            clock,
        }
    }

    /// The clock reading a request works with.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn enabled(&self) -> Result<RegistrationMode, RegistrationError> {
        match self.settings.dynamic_registration.registration_mode() {
            RegistrationMode::Off => Err(RegistrationError::Disabled),
            mode => Ok(mode),
        }
    }

    /// `registration_client_uri` (RFC 7592 §3): the registration endpoint, `/`, the client id.
    fn configuration_uri(&self, id: &ClientId) -> String {
        format!(
            "{}{}/{}",
            self.settings.base_url(),
            paths::REGISTER_CLIENT,
            id.as_str()
        )
    }

    /// The client information response body (RFC 7591 §3.2.1, RFC 7592 §3): the registered
    /// metadata as stored, the registration access token the client holds, and the secret only
    /// when one was just issued.
    fn information(
        &self,
        c: &Client,
        registration_token: &str,
        new_secret: Option<&str>,
    ) -> ClientInformation {
        let mut body = json!({
            "client_id": c.id.as_str(),
            "client_id_issued_at": c.created_at.secs(),
            "registration_access_token": registration_token,
            "registration_client_uri": self.configuration_uri(&c.id),
            "client_name": c.name,
            "application_type": c.application_type.as_str(),
            "redirect_uris": uri_strings(&c.redirect_uris),
            "post_logout_redirect_uris": uri_strings(&c.post_logout_redirect_uris),
            "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
            // RFC 7591 §2.1: the code response type goes with the authorization_code grant.
            "response_types": ["code"],
            "token_endpoint_auth_method": c.auth_method.metadata_name(),
            "scope": c.scopes.to_string(),
            // What Castellan does for every client (OIDC Dynamic Client Registration 1.0 §2).
            "subject_type": "public",
            "id_token_signed_response_alg": "RS256",
        });
        if !c.public {
            // RFC 7591 §3.2.1: REQUIRED with a secret; 0 = it does not expire.
            body["client_secret_expires_at"] = json!(0);
        }
        if let Some(secret) = new_secret {
            body["client_secret"] = json!(secret);
        }
        for (key, value) in c.info.strings() {
            if let Some(v) = value {
                body[key] = json!(v);
            }
        }
        if !c.info.contacts.is_empty() {
            body["contacts"] = json!(c.info.contacts);
        }
        ClientInformation { body }
    }

    /// Writes the audit row (and its structured log line); a failure is logged and never fails the request (the client exists
    /// by then, and its credentials must reach it).
    async fn audit(
        &self,
        kind: AuditKind,
        client_id: &ClientId,
        ip: Option<IpAddr>,
        now: UnixTime,
    ) {
        let entry = AuditEntry {
            actor: Some(ACTOR.to_owned()),
            client_id: Some(client_id.as_str().to_owned()),
            ip: ip.map(|a| a.to_string()),
            ..AuditEntry::new(kind)
        };
        self.store.record(entry, now).await;
    }

    /// RFC 7591 §3: registers a client. `now_ms` is the request's clock reading.
    pub async fn register(
        &self,
        caller: Caller<'_>,
        body: Body<'_>,
        now_ms: i64,
    ) -> Result<ClientInformation, RegistrationError> {
        let now = UnixTime::from_secs(now_ms.div_euclid(1000));
        match self.enabled()? {
            RegistrationMode::Token => {
                // RFC 7591 §3: the initial access token, compared as equal-length hashes in
                // constant time.
                let presented = caller
                    .bearer
                    .ok_or(RegistrationError::InvalidToken { missing: true })?;
                let expected = self
                    .settings
                    .dynamic_registration
                    .initial_access_token
                    .as_ref()
                    .map(|t| token::hash(t.expose()))
                    .ok_or(RegistrationError::InvalidToken { missing: false })?;
                if !token::verify(presented, &expected) {
                    return Err(RegistrationError::InvalidToken { missing: false });
                }
            }
            RegistrationMode::Open => {
                if let Some(ip) = caller.ip {
                    self.limiter
                        .take(Action::RegisterClient, ip, now_ms)
                        .await
                        .map_err(RegistrationError::RateLimited)?;
                }
            }
            RegistrationMode::Off => return Err(RegistrationError::Disabled),
        }
        let metadata = ClientMetadata::parse(&json_object(body)?)?;
        let secret = (!metadata.is_public()).then(|| token::generate(token::prefix::CLIENT_SECRET));
        let registration_token = token::generate(token::prefix::REGISTRATION_ACCESS_TOKEN);
        let new = new_client(
            ClientId::generate(),
            metadata,
            secret.as_deref().map(token::hash),
            Some(token::hash(&registration_token)),
        );
        let client = self.store.create_client(new, now).await?;
        self.audit(AuditKind::ClientCreated, &client.id, caller.ip, now)
            .await;
        Ok(self.information(&client, &registration_token, secret.as_deref()))
    }

    /// RFC 7592 §2: the client the registration access token belongs to, if it is the one named
    /// in the path; otherwise `invalid_token`, whether or not that client exists.
    async fn authorized_client(
        &self,
        client_id: &str,
        bearer: Option<&str>,
    ) -> Result<Client, RegistrationError> {
        self.enabled()?;
        let presented = bearer.ok_or(RegistrationError::InvalidToken { missing: true })?;
        match self
            .store
            .client_by_registration_token(&token::hash(presented))
            .await?
        {
            Some(c) if c.id.as_str() == client_id => Ok(c),
            _ => Err(RegistrationError::InvalidToken { missing: false }),
        }
    }

    /// RFC 7592 §2.1: reads the client's current registration (without its secret).
    pub async fn read(
        &self,
        caller: Caller<'_>,
        client_id: &str,
    ) -> Result<ClientInformation, RegistrationError> {
        let client = self.authorized_client(client_id, caller.bearer).await?;
        let presented = caller.bearer.unwrap_or_default();
        Ok(self.information(&client, presented, None))
    }

    /// RFC 7592 §2.2: replaces the client's metadata with the request's, validated as at
    /// registration. The body's `client_id` must be the client's; a `client_secret` in it must be
    /// the current one. A client that becomes confidential gets a secret (shown in this response);
    /// one that becomes public loses it.
    pub async fn update(
        &self,
        caller: Caller<'_>,
        client_id: &str,
        body: Body<'_>,
    ) -> Result<ClientInformation, RegistrationError> {
        let now = self.clock.time();
        let client = self.authorized_client(client_id, caller.bearer).await?;
        let body = json_object(body)?;
        if body.get("client_id").and_then(Value::as_str) != Some(client.id.as_str()) {
            return Err(MetadataError::Metadata(
                "client_id must be present and be this client's identifier".into(),
            )
            .into());
        }
        match body.get("client_secret") {
            None | Some(Value::Null) => {}
            Some(Value::String(s))
                if client
                    .secret_hash
                    .as_deref()
                    .is_some_and(|h| token::verify(s, h)) => {}
            // RFC 7592 §2.2: it MUST match the current secret; a client cannot choose its own.
            Some(_) => {
                return Err(MetadataError::Metadata(
                    "client_secret does not match the client's current secret".into(),
                )
                .into());
            }
        }
        let metadata = ClientMetadata::parse(&body)?;
        let (secret_hash, new_secret) = match (metadata.is_public(), &client.secret_hash) {
            (true, _) => (None, None),
            (false, Some(h)) => (Some(h.clone()), None),
            (false, None) => {
                let s = token::generate(token::prefix::CLIENT_SECRET);
                (Some(token::hash(&s)), Some(s))
            }
        };
        let mut new = new_client(client.id.clone(), metadata, secret_hash, None);
        // A requirement an administrator set is not the client's to drop.
        new.require_mfa = client.require_mfa;
        let updated = match self.store.update_client(new, now).await {
            Ok(c) => c,
            // Deleted by a concurrent request: the token no longer names a client.
            Err(StoreError::NotFound) => {
                return Err(RegistrationError::InvalidToken { missing: false });
            }
            Err(e) => return Err(e.into()),
        };
        self.audit(AuditKind::ClientUpdated, &updated.id, caller.ip, now)
            .await;
        let presented = caller.bearer.unwrap_or_default();
        Ok(self.information(&updated, presented, new_secret.as_deref()))
    }

    /// RFC 7592 §2.3: deletes the client with its codes, refresh tokens and consents (as `castellan
    /// client delete` does); the registration access token goes with it.
    pub async fn delete(
        &self,
        caller: Caller<'_>,
        client_id: &str,
    ) -> Result<(), RegistrationError> {
        let now = self.clock.time();
        let client = self.authorized_client(client_id, caller.bearer).await?;
        match self.store.delete_client(client.id.as_str()).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => {
                return Err(RegistrationError::InvalidToken { missing: false });
            }
            Err(e) => return Err(e.into()),
        }
        self.audit(AuditKind::ClientDeleted, &client.id, caller.ip, now)
            .await;
        Ok(())
    }
}

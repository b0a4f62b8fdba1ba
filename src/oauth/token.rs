//! The token endpoint (RFC 6749 §3.2, §4.1.3, §4.4, §6), revocation (RFC 7009) and
//! introspection (RFC 7662), all behind client authentication (RFC 6749 §2.3.1).

use oxide_auth_async::primitives::Registrar;

use super::OAuthError;
use super::params::Params;
use super::primitives::ClientRegistrar;
use crate::crypto::token;
use crate::domain::{AuditEntry, AuditKind};
use crate::domain::{Client, GrantType, ScopeSet, UnixTime};
use crate::services::metrics::TokenGrant;
use crate::services::tokens::{self, GrantContext, REFRESH_PREFIX, TokenResponse};
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::services::metrics::Metrics;
use crate::services::ratelimit::{Action, RateLimiter};
use crate::services::tokens::Tokens;
use crate::store::Store;
use crate::store::grants::{ParentClaim, ParentLink, RefreshRecord};

/// A request from a client at the token, revocation or introspection endpoint, as presented.
pub struct ClientRequest {
    pub params: Params,
    /// The credentials (RFC 6749 §2.3.1), or why they could not be read (malformed Basic
    /// credentials, two methods at once).
    pub credentials: Result<Option<ClientCredentials>, OAuthError>,
    /// The client's address, for the limit on failed authentications.
    pub ip: Option<std::net::IpAddr>,
}

/// Why a client request was refused.
#[derive(Debug)]
pub enum Refusal {
    /// Too many failed client authentications from this address; retry after this long.
    RateLimited(u64),
    /// RFC 6749 §5.2.
    OAuth(OAuthError),
}

/// How the client presented its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthUsed {
    Basic,
    Post,
    None,
}

/// Client credentials as presented (parsed from the `Authorization` header or the body).
#[derive(Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<String>,
    pub used: AuthUsed,
}

/// RFC 6749 §2.3.1: HTTP Basic (the `Authorization` header's value, as received) with the
/// form-urlencoded client id and secret, or both in the body; a public client sends only
/// `client_id`. Using two methods at once is refused (§2.3). Credentials that are not UTF-8
/// once decoded make the request malformed: `invalid_request` (§5.2), like any parameter.
pub fn client_credentials(
    authorization: Option<&[u8]>,
    params: &Params,
) -> Result<Option<ClientCredentials>, OAuthError> {
    use base64::Engine;
    let body_id = params.one("client_id")?.map(str::to_owned);
    let body_secret = params.one("client_secret")?.map(str::to_owned);
    if let Some(h) = authorization {
        let not_utf8 =
            || OAuthError::InvalidRequest("the client credentials are not valid UTF-8".into());
        let h = std::str::from_utf8(h).map_err(|_| not_utf8())?;
        let Some(encoded) = h
            .strip_prefix("Basic ")
            .or_else(|| h.strip_prefix("basic "))
        else {
            return Err(OAuthError::InvalidClient(
                "unsupported authorization scheme".into(),
            ));
        };
        let bad = || OAuthError::InvalidClient("malformed Basic credentials".into());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| not_utf8())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
        // §2.3.1: each is form-urlencoded (Appendix B) before the Basic encoding.
        let unescape =
            |s: &str| super::params::decode_component(s.as_bytes()).map_err(|_| not_utf8());
        let (id, secret) = (unescape(id)?, unescape(secret)?);
        if body_secret.is_some() {
            return Err(OAuthError::InvalidRequest(
                "use only one client authentication method".into(),
            ));
        }
        if body_id.as_deref().is_some_and(|b| b != id) {
            return Err(OAuthError::InvalidClient(
                "client_id does not match the credentials".into(),
            ));
        }
        return Ok(Some(ClientCredentials {
            client_id: id,
            secret: Some(secret),
            used: AuthUsed::Basic,
        }));
    }
    Ok(body_id.map(|client_id| ClientCredentials {
        used: if body_secret.is_some() {
            AuthUsed::Post
        } else {
            AuthUsed::None
        },
        client_id,
        secret: body_secret,
    }))
}

fn require_credentials(creds: Option<ClientCredentials>) -> Result<ClientCredentials, OAuthError> {
    creds.ok_or_else(|| OAuthError::InvalidClient("client authentication is required".into()))
}

/// [`authenticate`] against the client the caller looked up (`None`: no such client).
async fn check_client(
    creds: ClientCredentials,
    client: Option<Client>,
) -> Result<Client, OAuthError> {
    let registrar = ClientRegistrar::of(client);
    let failed = || OAuthError::InvalidClient("client authentication failed".into());
    let client = registrar.client().cloned().ok_or_else(failed)?;
    let method_ok = match creds.used {
        AuthUsed::Basic => client.auth_method.allows_basic(),
        AuthUsed::Post => client.auth_method.allows_post(),
        AuthUsed::None => client.public,
    };
    if !method_ok {
        return Err(failed());
    }
    registrar
        .check(&creds.client_id, creds.secret.as_deref().map(str::as_bytes))
        .await
        .map_err(|_| failed())?;
    Ok(client)
}

fn require_grant(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
    if client.allows_grant(grant) {
        Ok(())
    } else {
        Err(OAuthError::UnauthorizedClient(format!(
            "this client may not use the {} grant",
            grant.as_str()
        )))
    }
}

/// One answer for every refresh token that cannot be used, so that none tells why.
fn invalid_refresh_token() -> OAuthError {
    OAuthError::InvalidGrant("the refresh token is invalid, expired or revoked".into())
}

/// The token endpoint (RFC 6749 §3.2), revocation (RFC 7009) and introspection (RFC 7662),
/// with what they need.
#[derive(Debug, Clone)]
pub struct TokenEndpoint {
    store: Store,
    tokens: Tokens,
    metrics: Arc<Metrics>,
    settings: Arc<Settings>,
    limiter: Arc<RateLimiter>,
    clock: SharedClock,
}

impl TokenEndpoint {
    pub fn new(
        store: Store,
        tokens: Tokens,
        metrics: Arc<Metrics>,
        settings: Arc<Settings>,
        limiter: Arc<RateLimiter>,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            tokens,
            metrics,
            settings,
            limiter,
            clock,
        }
    }

    /// RFC 6749 §3.2: a token request, whole: the per-address limit on failed client
    /// authentications, client authentication (§2.3.1), the grant, and the token metric.
    pub async fn exchange(&self, r: ClientRequest) -> Result<TokenResponse, Refusal> {
        self.with_client(r, async |client, params| {
            self.token(client, params, self.clock.time()).await
        })
        .await
    }

    /// RFC 7009 §2: revocation, behind client authentication.
    pub async fn revoke_request(&self, r: ClientRequest) -> Result<(), Refusal> {
        self.with_client(r, async |client, params| {
            self.revoke(client, params, self.clock.time()).await
        })
        .await
    }

    /// RFC 7662 §2: introspection; it authenticates the client together with the token's
    /// state (one query), so the credentials go to [`TokenEndpoint::introspect`].
    pub async fn introspect_request(&self, r: ClientRequest) -> Result<serde_json::Value, Refusal> {
        let ClientRequest {
            params,
            credentials,
            ip,
        } = r;
        self.guarded(ip, async || {
            self.introspect(credentials?, &params, self.clock.time())
                .await
        })
        .await
    }

    async fn with_client<T>(
        &self,
        r: ClientRequest,
        handle: impl AsyncFnOnce(&Client, &Params) -> Result<T, OAuthError>,
    ) -> Result<T, Refusal> {
        let ClientRequest {
            params,
            credentials,
            ip,
        } = r;
        self.guarded(ip, async || {
            let client = self.authenticate(credentials?).await?;
            handle(&client, &params).await
        })
        .await
    }

    /// Failed client authentications are limited per address; successful requests never are
    /// (one busy relying party sends thousands a second from one address). A refusal is logged
    /// (its code, never a credential), and a failed authentication counted.
    async fn guarded<T>(
        &self,
        ip: Option<std::net::IpAddr>,
        handle: impl AsyncFnOnce() -> Result<T, OAuthError>,
    ) -> Result<T, Refusal> {
        let now_ms = self.clock.now_ms();
        if let Some(ip) = ip
            && let Err(wait) = self
                .limiter
                .would_allow(Action::ClientAuthFailure, ip, now_ms)
                .await
        {
            return Err(Refusal::RateLimited(wait));
        }
        match handle().await {
            Ok(v) => Ok(v),
            Err(e) => {
                tracing::info!(error = e.code(), "client request refused");
                if let (OAuthError::InvalidClient(_), Some(ip)) = (&e, ip) {
                    let _ = self
                        .limiter
                        .take(Action::ClientAuthFailure, ip, now_ms)
                        .await;
                }
                Err(Refusal::OAuth(e))
            }
        }
    }

    /// RFC 6749 §2.3.1 / §3.2.1: authenticates the client with the method it is registered for.
    async fn authenticate(&self, creds: Option<ClientCredentials>) -> Result<Client, OAuthError> {
        let creds = require_credentials(creds)?;
        let client = self.store.client(&creds.client_id).await?;
        check_client(creds, client).await
    }

    /// Handles a token request from an authenticated client.
    async fn token(
        &self,
        client: &Client,
        params: &Params,
        now: UnixTime,
    ) -> Result<TokenResponse, OAuthError> {
        let (grant, issued) = match params.one("grant_type")? {
            Some("authorization_code") => (
                TokenGrant::AuthorizationCode,
                self.authorization_code(client, params, now).await,
            ),
            Some("refresh_token") => (
                TokenGrant::RefreshToken,
                self.refresh(client, params, now).await,
            ),
            Some("client_credentials") => (
                TokenGrant::ClientCredentials,
                self.client_credentials(client, params, now).await,
            ),
            Some(other) => {
                return Err(OAuthError::UnsupportedGrantType(format!(
                    "grant_type {other} is not supported"
                )));
            }
            None => return Err(OAuthError::InvalidRequest("grant_type is missing".into())),
        };
        if issued.is_ok() {
            self.metrics.count_token(grant);
        }
        issued
    }

    /// RFC 6749 §4.1.3 with RFC 7636 §4.5–4.6.
    async fn authorization_code(
        &self,
        client: &Client,
        params: &Params,
        now: UnixTime,
    ) -> Result<TokenResponse, OAuthError> {
        require_grant(client, GrantType::AuthorizationCode)?;
        let code = params.required("code")?;
        let redirect_uri = params.one("redirect_uri")?;
        let verifier = params.one("code_verifier")?;
        for name in ["scope", "client_id"] {
            params.one(name)?;
        }
        let grant_id = token::random_id();
        // Remember the redemption, so that a replay can revoke what this one issues.
        let remembered_until = now.plus(self.settings.tokens.refresh_ttl_secs as i64);
        let taken = super::codes::redeem(&self.store, code, &grant_id, remembered_until).await?;
        let Some(record) = taken else {
            // RFC 6749 §4.1.2: a code used twice — deny, and revoke what the first use issued.
            if let Some(grant_id) = super::codes::redeemed_grant(&self.store, code).await? {
                let until = self.family_revoked_until(now);
                self.store.revoke_family(&grant_id, until).await?;
                tracing::warn!(
                    client_id = client.id.as_str(),
                    "authorization code reused: its tokens were revoked"
                );
            }
            return Err(OAuthError::InvalidGrant(
                "the authorization code is invalid, expired or already used".into(),
            ));
        };

        let invalid = |why: &str| OAuthError::InvalidGrant(why.to_owned());
        if record.expires_at < now {
            return Err(invalid("the authorization code has expired"));
        }
        // §4.1.3: the code was issued to this client, for this redirect URI.
        if record.client_id != client.id {
            return Err(invalid(
                "the authorization code was issued to another client",
            ));
        }
        // The authorization request always carries redirect_uri, so the token request must too.
        match redirect_uri {
            Some(r) if r == record.redirect_uri => {}
            _ => {
                return Err(invalid(
                    "redirect_uri does not match the authorization request",
                ));
            }
        }
        match (&record.code_challenge, verifier) {
            (Some(challenge), Some(v)) => {
                // RFC 7636 §4.1 and §4.6.
                if !super::pkce::well_formed(v) || !super::pkce::verifier_matches(v, challenge) {
                    return Err(invalid(
                        "the code_verifier does not match the code_challenge",
                    ));
                }
            }
            (Some(_), None) => return Err(invalid("code_verifier is missing")),
            // RFC 9700 §2.1.1: a verifier for a code issued without a challenge is a downgrade attempt.
            (None, Some(_)) => return Err(invalid("no code_challenge was sent for this code")),
            (None, None) => {}
        }
        let user = self
            .store
            .user_by_id(record.user_id.as_str())
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(|| invalid("the user is no longer active"))?;
        // What the client may still ask for, and the user still hold (a scope or role taken away
        // between the authorization and the exchange).
        let scope = tokens::scope_for_user(&record.scope.intersect(&client.scopes), &user);
        let ctx = GrantContext {
            client_id: &client.id,
            user: Some(&user),
            scope: &scope,
            auth_time: record.auth_time,
            amr: &record.amr,
            sid: record.sid.as_deref(),
            nonce: record.nonce.as_deref(),
            grant_id: &grant_id,
            id_token: scope.contains("openid"),
            refresh: client.allows_grant(GrantType::RefreshToken).then_some(None),
            audit: None,
        };
        Ok(self.tokens.mint(ctx, now).await?)
    }

    /// Until when a revoked grant stays on the revocation list: past the last access token
    /// issued under it, and past the refresh-token lifetime, because a refresh token stored by a
    /// request that raced the revocation is refused by this entry, not by its own flag.
    fn family_revoked_until(&self, now: UnixTime) -> UnixTime {
        let t = &self.settings.tokens;
        now.plus(t.access_ttl_secs.max(t.refresh_ttl_secs) as i64)
    }

    /// Records a refresh-token event; a failed write is logged, not fatal to the request.
    async fn audit(&self, kind: AuditKind, user_id: &str, client: &Client, now: UnixTime) {
        let entry = AuditEntry {
            user_id: Some(user_id.to_owned()),
            client_id: Some(client.id.as_str().to_owned()),
            ..AuditEntry::new(kind)
        };
        self.store.record(entry, now).await;
    }

    /// RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2).
    async fn refresh(
        &self,
        client: &Client,
        params: &Params,
        now: UnixTime,
    ) -> Result<TokenResponse, OAuthError> {
        require_grant(client, GrantType::RefreshToken)?;
        let presented = params.required("refresh_token")?;
        let invalid = invalid_refresh_token;
        if !presented.starts_with(REFRESH_PREFIX) {
            return Err(invalid());
        }
        let hash = token::hash(presented);
        let (record, user) = self
            .store
            .refresh_token_and_user(&hash)
            .await?
            .ok_or_else(invalid)?;
        // `revoked` covers a token whose whole grant was revoked (`Store::refresh_token_and_user`).
        if record.client_id != client.id || record.revoked || record.expires_at <= now {
            return Err(invalid());
        }
        // §6: the scope may be narrowed, never widened.
        let scope =
            super::scope::narrowed(params.one("scope")?, &record.scope, "the original grant")?;
        let grace = self.settings.tokens.refresh_reuse_grace_secs as i64;
        // An already rotated token: within the grace window the same client gets another
        // successor; outside it, the whole family is revoked.
        if let Some(rotated_at) = record.rotated_at
            && !(grace > 0 && now.since(rotated_at) <= grace)
        {
            return Err(self.reused(client, &record, now).await);
        }
        // A user deleted or disabled since the grant gets nothing more from it.
        let user = user.filter(|u| !u.disabled).ok_or_else(invalid)?;
        // A scope taken from the client since the grant goes from its refresh tokens, and a role
        // taken from the user takes the `admin` scope with it: the grant is what was consented
        // to, narrowed to what the client and the user may hold now (RFC 6749 §6: never wider).
        let scope = tokens::scope_for_user(&scope.intersect(&client.scopes), &user);
        let ctx = GrantContext {
            client_id: &client.id,
            user: Some(&user),
            scope: &scope,
            auth_time: record.auth_time,
            amr: &record.amr,
            sid: record.sid.as_deref(),
            // OpenID Connect Core 1.0 §12.2: no nonce in a refreshed ID token.
            nonce: None,
            grant_id: &record.family_id,
            id_token: scope.contains("openid"),
            // The rotation is claimed in the transaction that stores the successor. Losing it to
            // a request that rotated the token a moment ago is the grace window's case again.
            refresh: Some(Some(ParentLink {
                claim: record.rotated_at.is_none().then_some(ParentClaim {
                    successor_if_taken: grace > 0,
                }),
                hash,
            })),
            audit: Some(AuditEntry {
                user_id: Some(record.user_id.as_str().to_owned()),
                client_id: Some(client.id.as_str().to_owned()),
                ..AuditEntry::new(AuditKind::TokenRefreshed)
            }),
        };
        match self.tokens.mint(ctx, now).await {
            Ok(issued) => Ok(issued),
            Err(tokens::TokenError::RotationTaken) => Err(self.reused(client, &record, now).await),
            Err(e) => Err(e.into()),
        }
    }

    /// RFC 9700 §4.14.2: a rotated refresh token presented again revokes its whole family (and,
    /// through the revocation list, the family's access tokens); the answer is `invalid_grant`.
    async fn reused(&self, client: &Client, record: &RefreshRecord, now: UnixTime) -> OAuthError {
        let until = self.family_revoked_until(now);
        if let Err(e) = self.store.revoke_family(&record.family_id, until).await {
            return e.into();
        }
        tracing::warn!(
            client_id = client.id.as_str(),
            "refresh token reused: the token family was revoked"
        );
        self.audit(
            AuditKind::RefreshReuseDetected,
            record.user_id.as_str(),
            client,
            now,
        )
        .await;
        invalid_refresh_token()
    }

    /// RFC 6749 §4.4: a confidential client asks for a token for itself.
    async fn client_credentials(
        &self,
        client: &Client,
        params: &Params,
        now: UnixTime,
    ) -> Result<TokenResponse, OAuthError> {
        if client.public {
            return Err(OAuthError::UnauthorizedClient(
                "a public client cannot use client_credentials".into(),
            ));
        }
        require_grant(client, GrantType::ClientCredentials)?;
        // User-facing scopes mean nothing without a user.
        let user_scopes =
            ScopeSet::parse("openid profile email offline_access roles").unwrap_or_default();
        let allowed: ScopeSet = ScopeSet::parse(
            &client
                .scopes
                .iter()
                .filter(|s| !user_scopes.contains(s))
                .collect::<Vec<_>>()
                .join(" "),
        )
        .unwrap_or_default();
        // §4.4.2: the scope may be narrowed to what the client is allowed.
        let scope = super::scope::narrowed(
            params.one("scope")?,
            &allowed,
            "what this client is allowed",
        )?;
        let grant_id = token::random_id();
        let ctx = GrantContext {
            client_id: &client.id,
            user: None,
            scope: &scope,
            auth_time: now,
            amr: &[],
            sid: None,
            nonce: None,
            grant_id: &grant_id,
            id_token: false,
            refresh: None,
            audit: None,
        };
        Ok(self.tokens.mint(ctx, now).await?)
    }

    /// RFC 7009 §2.1: revokes a refresh token (and its family's access tokens) or an access token
    /// issued to this client. Unknown or foreign tokens are answered the same way (200).
    async fn revoke(
        &self,
        client: &Client,
        params: &Params,
        now: UnixTime,
    ) -> Result<(), OAuthError> {
        let presented = params.required("token")?;
        params.one("token_type_hint")?;
        if presented.starts_with(REFRESH_PREFIX) {
            if let Some(r) = self.store.refresh_token(&token::hash(presented)).await?
                && r.client_id == client.id
            {
                let until = self.family_revoked_until(now);
                self.store.revoke_family(&r.family_id, until).await?;
            }
            return Ok(());
        }
        if let Ok(claims) = self.tokens.verify_access_token(presented, now).await
            && claims.client_id == client.id.as_str()
        {
            self.store
                .revoke_token_id(&claims.jti, UnixTime::from_secs(claims.exp))
                .await?;
        }
        Ok(())
    }

    /// RFC 7662 §2.1: authenticates the client and answers with the token's state (§2.2), or
    /// `{"active": false}` for anything not active or not visible to this client (a client sees its
    /// own tokens unless it may introspect any).
    ///
    /// An access token's signature is checked before the client is looked up, so that the client
    /// and the token's revocation state come from one query; the answer still waits for client
    /// authentication, and a request failing both gets `invalid_client` as before.
    async fn introspect(
        &self,
        creds: Option<ClientCredentials>,
        params: &Params,
        now: UnixTime,
    ) -> Result<serde_json::Value, OAuthError> {
        let creds = require_credentials(creds)?;
        // `None`: not an access token whose signature checks out (a refresh token, no token, or
        // a bad one); what to answer is decided after client authentication.
        let pending = match params.one("token") {
            Ok(Some(t)) if !t.starts_with(REFRESH_PREFIX) => {
                self.tokens.verify_access_signature(t, now).await.ok()
            }
            _ => None,
        };
        let (client, access) = match pending {
            Some(pending) => {
                let found = self
                    .store
                    .client_and_token_ended(&creds.client_id, pending.standing())
                    .await?;
                match found {
                    Some((client, ended)) => (Some(client), pending.settle(ended).ok()),
                    None => (None, None),
                }
            }
            None => (self.store.client(&creds.client_id).await?, None),
        };
        let client = check_client(creds, client).await?;
        let presented = params.required("token")?;
        params.one("token_type_hint")?;
        let inactive = serde_json::json!({"active": false});
        let visible = |owner: &str| client.introspect_any || owner == client.id.as_str();
        if presented.starts_with(REFRESH_PREFIX) {
            let Some(r) = self.store.refresh_token(&token::hash(presented)).await? else {
                return Ok(inactive);
            };
            if r.revoked
                || r.rotated_at.is_some()
                || r.expires_at <= now
                || !visible(r.client_id.as_str())
            {
                return Ok(inactive);
            }
            return Ok(serde_json::json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": r.scope.to_string(),
                "client_id": r.client_id.as_str(),
                "sub": r.user_id.as_str(),
                "iss": self.settings.server.issuer,
                "iat": r.created_at.secs(),
                "exp": r.expires_at.secs(),
            }));
        }
        let Some(c) = access else {
            return Ok(inactive);
        };
        if !visible(&c.client_id) {
            return Ok(inactive);
        }
        let mut out = serde_json::json!({
            "active": true,
            "token_type": "Bearer",
            "scope": c.scope,
            "client_id": c.client_id,
            "sub": c.sub,
            "aud": c.aud,
            "iss": c.iss,
            "iat": c.iat,
            "exp": c.exp,
            "jti": c.jti,
        });
        if let (Some(t), Some(obj)) = (c.auth_time, out.as_object_mut()) {
            obj.insert("auth_time".into(), t.into());
        }
        Ok(out)
    }
}

/// Property tests (proptest) of reading client credentials (RFC 6749 §2.3.1): any header and
/// body give credentials, none, `invalid_client` or `invalid_request`, and Basic credentials
/// read back as they were written.
#[cfg(test)]
mod properties {
    use super::*;
    use base64::Engine;
    use proptest::prelude::*;

    fn basic(id: &str, secret: &str) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc(id),
                enc(secret)
            ))
        )
    }

    fn header() -> impl Strategy<Value = Option<Vec<u8>>> {
        prop::option::of(prop_oneof![
            (".{0,12}", ".{0,12}").prop_map(|(i, s)| basic(&i, &s).into_bytes()),
            prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(b)
            )
            .into_bytes()),
            "(Basic|basic|Bearer|) ?[A-Za-z0-9+/=%:!]{0,30}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..40),
        ])
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                Just(b"client_id=c".to_vec()),
                Just(b"client_secret=s".to_vec()),
                Just(b"client_id=%FF".to_vec()),
                "[a-z_]{0,10}=[a-z%0-9]{0,6}".prop_map(String::into_bytes),
            ],
            0..4,
        )
        .prop_map(|parts| parts.join(&b'&'))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_credentials_are_read_or_refused_with_an_rfc_error(h in header(), b in body()) {
            let Ok(params) = Params::parse_at_most(&b, super::super::params::MAX_PARAMS) else {
                // The extractor refuses such a body before credentials are read.
                return Ok(());
            };
            match client_credentials(h.as_deref(), &params) {
                Ok(Some(c)) => {
                    prop_assert!(c.used != AuthUsed::Basic || h.is_some());
                    prop_assert_eq!(c.secret.is_some(), c.used != AuthUsed::None);
                }
                Ok(None) => prop_assert!(h.is_none()),
                Err(OAuthError::InvalidClient(_) | OAuthError::InvalidRequest(_)) => {}
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }

        #[test]
        fn basic_credentials_read_back_as_written(id in ".{0,16}", secret in ".{0,16}") {
            let h = basic(&id, &secret);
            let c = client_credentials(Some(h.as_bytes()), &Params::default())
                .expect("well-formed Basic credentials")
                .expect("credentials");
            prop_assert_eq!(c.client_id, id);
            prop_assert_eq!(c.secret, Some(secret));
            prop_assert_eq!(c.used, AuthUsed::Basic);
        }
    }
}

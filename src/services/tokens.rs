//! Minting and checking tokens: RS256 access tokens (RFC 9068), ID tokens (OpenID Connect Core
//! 1.0 §2, §3.1.3.6), and opaque refresh tokens stored as hashes.
//!
//! Every token belongs to a *grant* (one authorization: a redeemed code, or a client-credentials
//! request). Access tokens carry `jti = "<grant id>.<random>"`, so revoking the grant id (code
//! reuse, refresh-token reuse, revocation of a refresh token) kills every access token of that
//! grant without having to list them.
//!
//! [`Tokens`] owns what minting and checking need: the store, the key ring, the signing
//! workers, the token settings. Which claims an ID token carries is `oidc::id_token`'s rule.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::jwt::{self, TYP_AT_JWT, TYP_JWT};
use crate::crypto::token;
use crate::domain::AuditEntry;
use crate::domain::{ClientId, ScopeSet, UnixTime, User};
use crate::oidc::id_token::{self, IdTokenHint};
use crate::services::keys::{KeyRing, KeySet};
use crate::services::workers::WorkerPool;
use crate::store::grants::{NewRefresh, ParentLink};
use crate::store::standing::TokenStanding;
use crate::store::{Store, StoreError};

/// Prefix of refresh tokens (recognisable when leaked).
pub const REFRESH_PREFIX: &str = token::prefix::REFRESH_TOKEN;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing failed: {0}")]
    Sign(#[from] jwt::JwtError),
    #[error(transparent)]
    Workers(#[from] crate::services::workers::WorkersGone),
    /// The parent refresh token was rotated by another request first (and its claim allowed
    /// no successor then): nothing was stored, and the tokens signed are dropped.
    #[error("the refresh token was already rotated")]
    RotationTaken,
}

/// Claims of our access tokens (RFC 9068 §2.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl AccessClaims {
    /// The grant this token belongs to (the part of `jti` before the dot).
    pub fn grant_id(&self) -> &str {
        self.jti.split('.').next().unwrap_or(&self.jti)
    }
    /// The ids whose revocation ends this token: its own `jti` and its grant's id.
    pub fn revocation_ids(&self) -> [&str; 2] {
        [self.jti.as_str(), self.grant_id()]
    }
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
    pub fn has_scope(&self, s: &str) -> bool {
        self.scopes().any(|x| x == s)
    }
    /// Whether the token was issued to a user (not to a client for itself).
    pub fn is_user_token(&self) -> bool {
        self.auth_time.is_some()
    }
}

/// What a grant needs to mint tokens.
pub struct GrantContext<'a> {
    pub client_id: &'a ClientId,
    /// The user for an authorization-code or refresh grant; `None` for client credentials.
    pub user: Option<&'a User>,
    pub scope: &'a ScopeSet,
    pub auth_time: UnixTime,
    pub amr: &'a [String],
    pub sid: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub grant_id: &'a str,
    /// Issue an ID token (the `openid` scope was granted on a user grant).
    pub id_token: bool,
    /// Issue a refresh token in the grant's family: `Some(None)` the first, `Some(Some(parent))`
    /// the successor of a rotated one.
    pub refresh: Option<Option<ParentLink>>,
    /// An audit event of this grant, written with the refresh token when one is issued.
    pub audit: Option<AuditEntry>,
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// The scope that asks for the user's roles in the tokens.
pub const ROLES_SCOPE: &str = "roles";
/// The scope of the admin API; only users with the `admin` role are ever granted it.
pub const ADMIN_SCOPE: &str = "admin";

/// What of `scope` this user may be granted: `admin` only to holders of the `admin` role
/// (RFC 6749 §3.3 lets the server grant less than asked; the response then names the scope).
/// Applied when a code is issued and again on every refresh, so a role change takes effect on
/// the next token.
pub fn scope_for_user(scope: &ScopeSet, user: &User) -> ScopeSet {
    if scope.contains(ADMIN_SCOPE) && !user.has_role(crate::domain::Role::ADMIN) {
        scope.without(ADMIN_SCOPE)
    } else {
        scope.clone()
    }
}

/// Minting and checking tokens, with what that needs.
#[derive(Debug, Clone)]
pub struct Tokens {
    store: Store,
    keys: Arc<KeyRing>,
    /// Where tokens are signed (off the request threads, one job per core at a time).
    signing: Arc<WorkerPool<()>>,
    settings: Arc<Settings>,
    clock: SharedClock,
}

impl Tokens {
    pub fn new(
        store: Store,
        keys: Arc<KeyRing>,
        signing: Arc<WorkerPool<()>>,
        settings: Arc<Settings>,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            keys,
            signing,
            settings,
            clock,
        }
    }

    /// The keys in force now (the JWK Set served at `/oauth2/jwks` included).
    pub async fn signing_keys(&self) -> Arc<KeySet> {
        self.keys.current(&self.store, self.clock.now_ms()).await
    }

    /// Mints the access token (and ID and refresh tokens as the context asks).
    pub async fn mint(
        &self,
        mut ctx: GrantContext<'_>,
        now: UnixTime,
    ) -> Result<TokenResponse, TokenError> {
        let settings = &self.settings;
        let issuer = settings.server.issuer.as_str();
        let keys = self.signing_keys().await;
        let scope = ctx.scope.to_string();
        let client_id = ctx.client_id.as_str();
        let access_ttl = settings.tokens.access_ttl_secs;
        let user_grant = ctx.user.is_some();
        let claims = AccessClaims {
            iss: issuer.to_owned(),
            sub: ctx
                .user
                .map_or_else(|| client_id.to_owned(), |u| u.id.as_str().to_owned()),
            aud: client_id.to_owned(),
            client_id: client_id.to_owned(),
            scope: scope.clone(),
            jti: format!("{}.{}", ctx.grant_id, token::random_id()),
            iat: now.secs(),
            exp: now.plus(access_ttl as i64).secs(),
            auth_time: user_grant.then_some(ctx.auth_time.secs()),
            sid: ctx.sid.filter(|_| user_grant).map(str::to_owned),
        };
        let roles_claim = match ctx.user {
            Some(user) if ctx.scope.contains(ROLES_SCOPE) => Some((
                settings.oauth.roles_claim.as_str(),
                serde_json::Value::from(user.roles.clone()),
            )),
            _ => None,
        };
        let mut access_claims = serde_json::to_value(&claims).map_err(jwt::JwtError::from)?;
        if let (Some((name, roles)), Some(obj)) = (&roles_claim, access_claims.as_object_mut()) {
            // With the `roles` scope the roles ride along, so a resource server can authorise
            // offline from the JWT alone; the claim name is configurable (`oauth.roles_claim`).
            obj.insert((*name).to_owned(), roles.clone());
        }
        let id_claims = match (ctx.id_token, ctx.user) {
            (true, Some(user)) => Some(id_token::claims(
                &id_token::IdTokenFacts {
                    issuer,
                    client_id,
                    user,
                    scope: ctx.scope,
                    auth_time: ctx.auth_time,
                    amr: ctx.amr,
                    sid: ctx.sid,
                    nonce: ctx.nonce,
                    roles: roles_claim.as_ref(),
                    ttl_secs: settings.tokens.id_token_ttl_secs,
                },
                now,
            )),
            _ => None,
        };
        // Both signatures in one job on the signing workers (`services::workers`).
        let (access_token, id_token) = self
            .signing
            .run(move |()| sign_pair(&keys, now, &access_claims, id_claims))
            .await??;

        let mut audit = ctx.audit.take();
        let refresh_token = match (ctx.refresh, ctx.user) {
            (Some(parent), Some(user)) => {
                let value = token::generate(REFRESH_PREFIX);
                let stored = self
                    .store
                    .insert_refresh(
                        NewRefresh {
                            token_hash: token::hash(&value),
                            family_id: ctx.grant_id.to_owned(),
                            parent,
                            client_id: ctx.client_id.clone(),
                            user_id: user.id.clone(),
                            scope: ctx.scope.clone(),
                            auth_time: ctx.auth_time,
                            amr: ctx.amr.to_vec(),
                            sid: ctx.sid.map(str::to_owned),
                            expires_at: now.plus(settings.tokens.refresh_ttl_secs as i64),
                        },
                        audit.take(),
                        now,
                    )
                    .await?;
                if !stored {
                    return Err(TokenError::RotationTaken);
                }
                Some(value)
            }
            _ => None,
        };

        if let Some(e) = audit {
            self.store.audit(e, now).await?;
        }
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: access_ttl,
            scope,
            refresh_token,
            id_token,
        })
    }
}

/// Signs the access token, then the ID token with the access token's `at_hash`.
fn sign_pair(
    keys: &KeySet,
    now: UnixTime,
    access_claims: &serde_json::Value,
    id_claims: Option<serde_json::Value>,
) -> Result<(String, Option<String>), jwt::JwtError> {
    let signer = keys.signer_at(now);
    let access_token = jwt::sign(signer, TYP_AT_JWT, access_claims)?;
    let id_token = match id_claims {
        Some(claims) => Some(jwt::sign(
            signer,
            TYP_JWT,
            &id_token::with_at_hash(claims, &access_token),
        )?),
        None => None,
    };
    Ok((access_token, id_token))
}

/// Why a presented access token is refused (the wire answer is always `invalid_token`).
#[derive(Debug, thiserror::Error)]
pub enum AccessTokenError {
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token revoked")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An access token whose signature, `typ`, `iss` and `exp` check out, and whose standing
/// (revocation, client, user: [`TokenStanding`]) the caller looks up, possibly together with
/// something else (introspection: with the client, in one query). The claims come out only
/// through [`PendingStanding::settle`].
#[derive(Debug)]
pub struct PendingStanding(AccessClaims);

impl PendingStanding {
    /// What the store looks up to say whether the token still stands: its ids on the
    /// revocation list, its client, its user.
    pub fn standing(&self) -> TokenStanding<'_> {
        let c = &self.0;
        TokenStanding {
            ids: c.revocation_ids(),
            client_id: &c.client_id,
            user_id: c.is_user_token().then_some(c.sub.as_str()),
            issued_at: UnixTime::from_secs(c.iat),
        }
    }

    /// The claims, unless the lookup found that the token has ended (revoked, its client or
    /// user gone, its user disabled).
    pub fn settle(self, ended: bool) -> Result<AccessClaims, AccessTokenError> {
        if ended {
            Err(AccessTokenError::Revoked)
        } else {
            Ok(self.0)
        }
    }
}

impl Tokens {
    /// An access token's claims once its signature (algorithm pinned), `typ`, `iss` and `exp`
    /// check out, with its standing still to be looked up; no database.
    pub async fn verify_access_signature(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<PendingStanding, AccessTokenError> {
        self.signing_keys()
            .await
            .verifier
            .verify(
                token,
                TYP_AT_JWT,
                &self.settings.server.issuer,
                now.secs(),
                0,
            )
            .map(PendingStanding)
            .map_err(|e| AccessTokenError::Invalid(e.to_string()))
    }

    /// Checks an access token: signature with the algorithm pinned, `typ`, `iss`, `exp`
    /// against the request's clock, and that it still stands ([`TokenStanding`]: not revoked,
    /// its client and user still there, its user enabled and not signed out everywhere since).
    pub async fn verify_access_token(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<AccessClaims, AccessTokenError> {
        let pending = self.verify_access_signature(token, now).await?;
        let ended = self.store.token_ended(pending.standing()).await?;
        pending.settle(ended)
    }

    /// [`Tokens::verify_access_token`] for a caller that also needs the token's user
    /// (userinfo, the admin API): whether the token still stands and the user come from one
    /// query. The user is `None` for a client's own token (client credentials); the token of
    /// a user who no longer exists or is disabled has ended (`Revoked`: RFC 6750 §3.1).
    pub async fn verify_access_token_with_user(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<(AccessClaims, Option<User>), AccessTokenError> {
        let pending = self.verify_access_signature(token, now).await?;
        if !pending.0.is_user_token() {
            let ended = self.store.token_ended(pending.standing()).await?;
            return Ok((pending.settle(ended)?, None));
        }
        let found = self.store.token_user(pending.standing()).await?;
        match found {
            Some((user, ended)) => Ok((pending.settle(ended)?, Some(user))),
            None => Err(AccessTokenError::Revoked),
        }
    }

    /// Verifies an `id_token_hint`: our signature and issuer; an expired one is still accepted
    /// (RP-Initiated Logout 1.0 §2: the OP should accept it even when expired).
    pub async fn verify_id_token_hint(&self, token: &str, now: UnixTime) -> Option<IdTokenHint> {
        let keys = self.signing_keys().await;
        keys.verifier
            .verify(
                token,
                TYP_JWT,
                &self.settings.server.issuer,
                now.secs(),
                id_token::HINT_MAX_AGE_SECS,
            )
            .ok()
    }
}

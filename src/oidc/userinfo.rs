//! UserInfo (OpenID Connect Core 1.0 §5.3): the claims an access token releases.
//!
//! The token must still stand (`services::tokens`: signature, expiry, not revoked, its client
//! and user still there); it must be a user's token (a client's own token has no user) granted
//! `openid` (§5.3: the UserInfo endpoint is an OAuth-protected resource for OpenID Connect
//! requests); then `sub` and the claims its scope releases (§5.4, `oidc::id_token`).

use crate::clock::SharedClock;
use crate::domain::ScopeSet;
use crate::oidc::id_token;
use crate::services::tokens::{AccessTokenError, Tokens};
use crate::store::StoreError;

/// Why UserInfo refused; each maps to one RFC 6750 §3.1 answer.
#[derive(Debug, thiserror::Error)]
pub enum UserInfoError {
    /// `invalid_token` (401).
    #[error("{0}")]
    InvalidToken(&'static str),
    /// `insufficient_scope` (403): the token was not granted `openid`.
    #[error("the openid scope is required")]
    InsufficientScope,
    /// The token's standing could not be looked up (503).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The UserInfo use case.
#[derive(Debug, Clone)]
pub struct UserInfo {
    tokens: Tokens,
    clock: SharedClock,
}

impl UserInfo {
    pub fn new(tokens: Tokens, clock: SharedClock) -> Self {
        Self { tokens, clock }
    }

    /// The claims `token` releases: `sub`, then what its scope allows (§5.4).
    pub async fn claims(
        &self,
        token: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, UserInfoError> {
        let (claims, user) = match self
            .tokens
            .verify_access_token_with_user(token, self.clock.time())
            .await
        {
            Ok(found) => found,
            Err(AccessTokenError::Store(e)) => return Err(UserInfoError::Store(e)),
            Err(_) => {
                return Err(UserInfoError::InvalidToken(
                    "the access token is invalid or expired",
                ));
            }
        };
        // A user's token comes with its user, who exists and is enabled (or it has ended).
        let Some(user) = user else {
            return Err(UserInfoError::InvalidToken(
                "the access token is not a user's",
            ));
        };
        if !claims.has_scope("openid") {
            return Err(UserInfoError::InsufficientScope);
        }
        let scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
        let mut out = serde_json::Map::new();
        out.insert("sub".into(), user.id.as_str().into());
        for (k, v) in id_token::profile_claims(&user, &scope) {
            out.insert(k.into(), v);
        }
        Ok(out)
    }
}

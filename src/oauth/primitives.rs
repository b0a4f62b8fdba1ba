//! oxide-auth's async primitives over our store.
//!
//! * [`ClientRegistrar`] — `Registrar`: binds a client to a redirect URI by **exact string
//!   match** with a registered one (RFC 9700 §4.1.3; oxide-auth's `ExactUrl` keeps the raw
//!   string), negotiates the scope (the requested scopes the client is allowed; RFC 6749 §3.3
//!   lets us narrow), and authenticates clients by comparing the SHA-256 of the presented secret
//!   in constant time.
//! * [`CodeAuthorizer`] — `Authorizer`: stores a grant under a fresh 256-bit code (only the
//!   hash is kept) and redeems it at most once.
//!
//! oxide-auth reports failures as `Err(())`/`RegistrarError`: the reason is logged here.

use std::borrow::Cow;

use async_trait::async_trait;
use oxide_auth::primitives::grant::{Extensions, Grant, Value};
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, ExactUrl, PreGrant, RegisteredUrl, RegistrarError,
};
use oxide_auth::primitives::scope::Scope;
use oxide_auth_async::primitives::{Authorizer, Registrar};

use crate::crypto::token;
use crate::domain::{Client, ScopeSet};
use crate::store::Store;
use crate::store::grants::CodeRecord;

/// Prefix of authorization codes.
pub const CODE_PREFIX: &str = token::prefix::AUTHORIZATION_CODE;

/// A registrar for one request: the client is looked up once and reused by every call.
pub struct ClientRegistrar {
    client: Option<Client>,
}

impl ClientRegistrar {
    pub async fn load(store: &Store, client_id: &str) -> Result<Self, crate::store::StoreError> {
        Ok(Self {
            client: store.client(client_id).await?,
        })
    }

    /// A registrar over a client the caller already loaded (with something else, in one query).
    pub fn of(client: Option<Client>) -> Self {
        Self { client }
    }

    pub fn client(&self) -> Option<&Client> {
        self.client.as_ref()
    }

    fn client_for(&self, id: &str) -> Result<&Client, RegistrarError> {
        match &self.client {
            Some(c) if c.id.as_str() == id => Ok(c),
            _ => {
                tracing::debug!("unknown client");
                Err(RegistrarError::Unspecified)
            }
        }
    }
}

/// oxide-auth's scope type from ours (scope tokens were validated by `ScopeSet::parse`).
pub fn to_oxide_scope(s: &ScopeSet) -> Option<Scope> {
    s.to_string().parse().ok()
}

#[async_trait]
impl Registrar for ClientRegistrar {
    /// RFC 6749 §3.1.2.3 and OpenID Connect Core §3.1.2.1: the redirect URI must be one the client
    /// registered, compared as a string, and it is required.
    async fn bound_redirect<'a>(
        &self,
        bound: ClientUrl<'a>,
    ) -> Result<BoundClient<'a>, RegistrarError> {
        let client = self.client_for(&bound.client_id)?;
        let chosen: ExactUrl = match bound.redirect_uri {
            Some(presented) => {
                if !client.redirect_uri_registered(presented.as_str()) {
                    tracing::debug!(
                        client_id = client.id.as_str(),
                        "redirect_uri not registered"
                    );
                    return Err(RegistrarError::Unspecified);
                }
                presented.into_owned()
            }
            // OpenID Connect Core 1.0 §3.1.2.1 makes it REQUIRED; we require it of every request,
            // so that the token request can be held to the same value (RFC 6749 §4.1.3).
            None => {
                tracing::debug!(client_id = client.id.as_str(), "redirect_uri missing");
                return Err(RegistrarError::Unspecified);
            }
        };
        Ok(BoundClient {
            client_id: bound.client_id,
            redirect_uri: Cow::Owned(RegisteredUrl::Exact(chosen)),
        })
    }

    async fn negotiate<'a>(
        &self,
        bound: BoundClient<'a>,
        scope: Option<Scope>,
    ) -> Result<PreGrant, RegistrarError> {
        let client = self.client_for(&bound.client_id)?;
        let requested = match &scope {
            Some(s) => ScopeSet::parse(&s.to_string()).map_err(|_| RegistrarError::Unspecified)?,
            None => ScopeSet::default(),
        };
        let granted = requested.intersect(&client.scopes);
        if granted.is_empty() {
            // oxide-auth's Scope cannot be empty: nothing requested is allowed.
            tracing::debug!(
                client_id = client.id.as_str(),
                "no requested scope is allowed"
            );
            return Err(RegistrarError::Unspecified);
        }
        let scope = to_oxide_scope(&granted).ok_or(RegistrarError::Unspecified)?;
        Ok(PreGrant {
            client_id: bound.client_id.into_owned(),
            redirect_uri: bound.redirect_uri.into_owned(),
            scope,
        })
    }

    /// RFC 6749 §2.3.1: a confidential client proves its secret; a public client presents none.
    /// The stored value is the SHA-256 of a 256-bit random secret, compared in constant time.
    async fn check(
        &self,
        client_id: &str,
        passphrase: Option<&[u8]>,
    ) -> Result<(), RegistrarError> {
        let client = self.client_for(client_id)?;
        match (&client.secret_hash, passphrase) {
            (None, None) if client.public => Ok(()),
            (Some(hash), Some(secret)) => {
                let presented =
                    std::str::from_utf8(secret).map_err(|_| RegistrarError::Unspecified)?;
                if token::verify(presented, hash) {
                    Ok(())
                } else {
                    tracing::debug!(client_id, "client secret does not match");
                    Err(RegistrarError::Unspecified)
                }
            }
            _ => {
                tracing::debug!(
                    client_id,
                    "client authentication method does not fit the client"
                );
                Err(RegistrarError::Unspecified)
            }
        }
    }
}

// Names of the grant extensions that carry what OpenID Connect adds to a code.
const EXT_REDIRECT: &str = "castellan.redirect_uri";
const EXT_NONCE: &str = "castellan.nonce";
const EXT_CHALLENGE: &str = "castellan.code_challenge";
const EXT_CHALLENGE_METHOD: &str = "castellan.code_challenge_method";
const EXT_AUTH_TIME: &str = "castellan.auth_time";
const EXT_AMR: &str = "castellan.amr";
const EXT_SID: &str = "castellan.sid";

/// Builds the oxide-auth grant for a code from our record.
pub fn grant_of(record: &CodeRecord) -> Option<Grant> {
    let mut ext = Extensions::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            ext.set_raw(k.to_owned(), Value::private(Some(v)));
        }
    };
    put(EXT_REDIRECT, Some(record.redirect_uri.clone()));
    put(EXT_NONCE, record.nonce.clone());
    put(EXT_CHALLENGE, record.code_challenge.clone());
    put(EXT_CHALLENGE_METHOD, record.code_challenge_method.clone());
    put(EXT_AUTH_TIME, Some(record.auth_time.to_string()));
    put(EXT_AMR, Some(record.amr.join(" ")));
    put(EXT_SID, record.sid.clone());
    Some(Grant {
        owner_id: record.user_id.clone(),
        client_id: record.client_id.clone(),
        scope: if record.scope.is_empty() {
            "openid".parse().ok()?
        } else {
            record.scope.parse().ok()?
        },
        redirect_uri: record.redirect_uri.parse().ok()?,
        until: chrono::DateTime::from_timestamp(record.expires_at, 0)?,
        extensions: ext,
    })
}

/// Our record back from an oxide-auth grant.
pub fn record_of(grant: &Grant, scope: String) -> CodeRecord {
    let mut get = std::collections::HashMap::new();
    for (k, v) in grant.extensions.private() {
        get.insert(k.to_owned(), v.map(str::to_owned));
    }
    let mut take = |k: &str| get.remove(k).flatten();
    CodeRecord {
        client_id: grant.client_id.clone(),
        user_id: grant.owner_id.clone(),
        redirect_uri: take(EXT_REDIRECT).unwrap_or_else(|| grant.redirect_uri.to_string()),
        scope,
        nonce: take(EXT_NONCE),
        code_challenge: take(EXT_CHALLENGE),
        code_challenge_method: take(EXT_CHALLENGE_METHOD),
        auth_time: take(EXT_AUTH_TIME)
            .and_then(|t| t.parse().ok())
            .unwrap_or_default(),
        amr: take(EXT_AMR)
            .map(|a| {
                a.split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        sid: take(EXT_SID),
        expires_at: grant.until.timestamp(),
    }
}

/// Codes in the database. `authorize` returns the code (shown once, to the redirect);
/// `extract` redeems it at most once — a code that was already redeemed comes back as `None`.
pub struct CodeAuthorizer<'s> {
    pub store: &'s Store,
    pub now: i64,
    /// The exact scope string granted (oxide-auth's `Scope` cannot hold an empty scope).
    pub scope: String,
    /// For a code being redeemed: the grant it starts, and until when the redemption is
    /// remembered (recorded in the transaction that takes the code).
    pub redeem_as: Option<(String, i64)>,
}

#[async_trait]
impl Authorizer for CodeAuthorizer<'_> {
    async fn authorize(&mut self, grant: Grant) -> Result<String, ()> {
        let code = token::generate(CODE_PREFIX);
        let record = record_of(&grant, self.scope.clone());
        self.store
            .insert_code(token::hash(&code), record, self.now)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot store an authorization code");
            })?;
        Ok(code)
    }

    async fn extract(&mut self, code: &str) -> Result<Option<Grant>, ()> {
        let Some((grant_id, until)) = &self.redeem_as else {
            tracing::error!("a code was extracted without a grant to redeem it as");
            return Err(());
        };
        let taken = self
            .store
            .take_code(&token::hash(code), grant_id, *until)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot redeem an authorization code");
            })?;
        Ok(match taken {
            Some(record) => {
                self.scope = record.scope.clone();
                grant_of(&record)
            }
            None => None,
        })
    }
}

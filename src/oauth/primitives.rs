//! oxide-auth's `Registrar` over one client of ours: [`ClientRegistrar`] binds a client to a
//! redirect URI by **exact string match** with a registered one (RFC 9700 §4.1.3; oxide-auth's
//! `ExactUrl` keeps the raw string), negotiates the scope (the requested scopes the client is
//! allowed; RFC 6749 §3.3 lets us narrow), and authenticates clients by comparing the SHA-256 of
//! the presented secret in constant time. Codes are ours (`oauth::codes`).
//!
//! oxide-auth reports failures as `Err(())`/`RegistrarError`: the reason is logged here.

use std::borrow::Cow;

use async_trait::async_trait;
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, ExactUrl, PreGrant, RegisteredUrl, RegistrarError,
};
use oxide_auth::primitives::scope::Scope;
use oxide_auth_async::primitives::Registrar;

use crate::crypto::token;
use crate::domain::{Client, ScopeSet};
use crate::store::Store;

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

//! RP-Initiated Logout 1.0 (`end_session_endpoint`): what a sign-out request comes to.
//!
//! - §2: a repeated parameter is refused; an `id_token_hint` must be a valid ID token of ours
//!   (an expired one is accepted); `client_id`, when given with a hint, must be its audience.
//! - §3: `post_logout_redirect_uri` must be registered for the client named by the hint or by
//!   `client_id`; a URI that is not is never redirected to, and `state` goes back with it.
//! - §2 (no question): a valid hint for the signed-in user, or for nobody signed in, ends the
//!   session at once; otherwise the user confirms. A client that registered itself (RFC 7591)
//!   always has the user confirm before its post-logout URI is used (RFC 9700 §4.11.2): its own
//!   ID token as the hint would otherwise make us an open redirector.

use crate::domain::{AuditEntry, AuditKind};
use crate::oauth::params::Params;
use crate::services::authn::{Authenticated, Authn};
use crate::services::tokens::Tokens;
use crate::store::Store;

/// A sign-out request as the browser sent it.
pub struct LogoutRequest<'a> {
    pub params: &'a Params,
    /// The browser's session cookie, if any.
    pub session_cookie: Option<&'a str>,
    /// Whether the browser confirmed (`decision=logout`) with a valid CSRF field: `None` when
    /// it did not confirm, `Some(false)` when its confirmation form had expired.
    pub confirmation: Option<bool>,
}

/// What the sign-out endpoint answers.
#[derive(Debug)]
pub enum LogoutOutcome {
    /// The request is malformed (an HTML page with this message; never a redirect).
    Refused(&'static str),
    /// The confirmation form had expired (403).
    Expired,
    /// Ask the user first; what the confirmation form carries.
    Confirm {
        email: Option<String>,
        post_logout_redirect_uri: Option<String>,
        client_id: Option<String>,
        state: Option<String>,
    },
    /// Signed out: to the registered URI (with `state`), or the "signed out" page.
    SignedOut { redirect: Option<String> },
    /// The database failed (logged).
    Unavailable,
}

/// The sign-out use case.
#[derive(Debug, Clone)]
pub struct Logout {
    store: Store,
    tokens: Tokens,
    authn: Authn,
}

impl Logout {
    pub fn new(store: Store, tokens: Tokens, authn: Authn) -> Self {
        Self {
            store,
            tokens,
            authn,
        }
    }

    pub async fn end(&self, req: LogoutRequest<'_>) -> LogoutOutcome {
        let params = req.params;
        let one = |n: &str| params.one(n).ok().flatten().map(str::to_owned);
        // One pass with a set: the check must not grow faster than the request.
        if params.first_repeated().is_some() {
            return LogoutOutcome::Refused("A parameter of the sign-out request is repeated.");
        }
        let now = self.authn.now();
        let hint = match one("id_token_hint") {
            Some(h) => match self.tokens.verify_id_token_hint(&h, now).await {
                Some(c) => Some(c),
                None => {
                    return LogoutOutcome::Refused(
                        "The id_token_hint is not a valid ID token from this server.",
                    );
                }
            },
            None => None,
        };
        // §2: client_id, when given with a hint, must be the hint's audience.
        let client_id = match (
            hint.as_ref().and_then(|h| h.client_id().map(str::to_owned)),
            one("client_id"),
        ) {
            (Some(a), Some(b)) if a != b => {
                return LogoutOutcome::Refused("client_id does not match the id_token_hint.");
            }
            (a, b) => a.or(b),
        };
        // Whether the client behind the redirect registered itself (then the user confirms).
        let mut self_registered = false;
        let redirect = match one("post_logout_redirect_uri") {
            None => None,
            Some(uri) => {
                let registered = match &client_id {
                    Some(id) => match self.store.client(id).await {
                        Ok(Some(c)) => {
                            self_registered = c.dynamically_registered;
                            c.post_logout_uri_registered(&uri)
                        }
                        Ok(None) => false,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot load a client");
                            return LogoutOutcome::Unavailable;
                        }
                    },
                    None => false,
                };
                if !registered {
                    return LogoutOutcome::Refused(
                        "The post_logout_redirect_uri is not registered for this application.",
                    );
                }
                Some(uri)
            }
        };
        let rp_state = one("state");
        let current: Option<Authenticated> = match req.session_cookie {
            Some(cookie) => match self.authn.current(cookie).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the session");
                    return LogoutOutcome::Unavailable;
                }
            },
            None => None,
        };
        let confirmed = match req.confirmation {
            Some(false) => return LogoutOutcome::Expired,
            Some(true) => true,
            None => false,
        };
        // A valid hint for the signed-in user (or for nobody signed in) needs no question.
        let hint_matches = hint
            .as_ref()
            .is_some_and(|h| current.as_ref().is_none_or(|c| c.user.id.as_str() == h.sub));
        if !confirmed && (!hint_matches || self_registered) {
            return LogoutOutcome::Confirm {
                email: current.map(|c| c.user.email),
                post_logout_redirect_uri: redirect,
                client_id,
                state: rp_state,
            };
        }
        if let Some(cookie) = req.session_cookie
            && let Err(e) = self.authn.end_session(cookie).await
        {
            tracing::error!(error = %e, "cannot end a session");
            return LogoutOutcome::Unavailable;
        }
        if let Some(c) = &current {
            let entry = AuditEntry {
                user_id: Some(c.user.id.as_str().to_owned()),
                client_id: client_id.clone(),
                detail: format!("sid {}", c.session.sid),
                ..AuditEntry::new(AuditKind::Logout)
            };
            self.store.record(entry, now).await;
        }
        let redirect = redirect.map(|uri| {
            let mut target = uri;
            if let Some(s) = &rp_state {
                let q = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("state", s)
                    .finish();
                target.push(if target.contains('?') { '&' } else { '?' });
                target.push_str(&q);
            }
            target
        });
        LogoutOutcome::SignedOut { redirect }
    }
}

//! The authorization endpoint (RFC 6749 §4.1.1, OpenID Connect Core 1.0 §3.1.2): validate the
//! request, then decide between the login page, the consent page and a code.
//!
//! Error handling follows RFC 6749 §4.1.2.1: when the client or the redirect URI cannot be
//! trusted the user sees an error page and is never redirected; every other error goes back to
//! the client's redirect URI with `error`, `error_description`, `state` and `iss` (RFC 9207).
//! A client that registered itself (RFC 7591 open registration) is not trusted with an error
//! that would redirect before the user did anything (RFC 9700 §4.11.2): anyone can register
//! any redirect URI, so such a redirect would be an open redirector. Its errors are pages.
//!
//! `prompt=select_account` is accepted but not advertised in discovery: there is no account
//! chooser, so it is met as `prompt=login` is (the user signs in again, as any account).
//!
//! A demand for a fresh login (`prompt=login` or `select_account`, or a `max_age` the session
//! is older than; OpenID Connect Core 1.0 §3.1.2.1) travels with the request: the login page's
//! `return_to` keeps the demand and adds a [`LOGIN_TICKET`], a random value that only the
//! session created by that login holds. Replaying the `return_to` with an older session meets
//! the demand again and asks for a login again; the ticket serves one code.

use oxide_auth::primitives::registrar::{ClientUrl, ExactUrl};
use oxide_auth_async::primitives::Registrar;
use std::borrow::Cow;

use super::OAuthError;
use super::params::{MAX_PARAMS, Params, TooManyParams};
use super::primitives::ClientRegistrar;
use crate::domain::{Acr, Client, GrantType, MfaPolicy, ScopeSet, UnixTime};
use crate::domain::{AuditEntry, AuditKind};
use crate::paths;
use crate::services::authn::Authenticated;
use crate::services::factors::{FactorError, Factors};
use crate::services::tokens;
use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::services::tokens::Tokens;
use crate::store::Store;
use crate::store::grants::CodeRecord;

/// The parameter of a `return_to` that carries the ticket of a demanded fresh login.
pub const LOGIN_TICKET: &str = "login_ticket";

/// Where the user agent goes next.
#[derive(Debug)]
pub enum Outcome {
    /// The client or redirect URI is not trustworthy: an error page, no redirect.
    Fatal(String),
    /// The client could not be looked up (the database is unavailable): a page saying to try
    /// again (503), no redirect, since the redirect URI is not known to be the client's.
    Unavailable,
    /// Back to the client (a code or an error).
    Respond(ClientResponse),
    /// The login page; afterwards the browser returns to `return_to`.
    Login {
        return_to: String,
        login_hint: Option<String>,
    },
    /// The consent page for this request.
    Consent { return_to: String },
    /// The session is below the level `acr_values` asks for and its user has a second
    /// factor: the second-step page (step-up), then back to `return_to`.
    SecondFactor { return_to: String },
    /// The session is below the level asked for and its user has no second factor: TOTP
    /// enrolment ("taken to enrolment, not refused"), then back to `return_to`.
    EnrolSecondFactor { return_to: String },
    /// The request asks for `phr` and the user has no passkey: passkey registration, then back
    /// to `return_to`.
    EnrolPasskey { return_to: String },
}

/// A response delivered to the client's redirect URI.
#[derive(Debug)]
pub struct ClientResponse {
    pub redirect_uri: String,
    /// OAuth 2.0 Form Post Response Mode: an auto-submitting form instead of a redirect.
    pub form_post: bool,
    pub params: Vec<(&'static str, String)>,
}

impl ClientResponse {
    /// The redirect URL with the parameters in the query (RFC 6749 §4.1.2), keeping any
    /// query the registered URI already has (§3.1.2).
    pub fn location(&self) -> String {
        let mut out = self.redirect_uri.clone();
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            ser.append_pair(k, v);
        }
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(&ser.finish());
        out
    }
}

/// A validated authorization request.
#[derive(Debug)]
pub struct Request {
    pub params: Params,
    pub client: Client,
    pub redirect_uri: String,
    pub form_post: bool,
    pub state: Option<String>,
    pub scope: ScopeSet,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    /// The lowest level `acr_values` accepts (OpenID Connect Core 1.0 §3.1.2.1; a minimum,
    /// as CONTRACT.md says), when it names one of ours.
    pub min_acr: Option<Acr>,
}

/// OpenID Connect Core 1.0 §3.1.2.1 `prompt`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

impl Request {
    fn error(&self, issuer: &str, e: &OAuthError) -> ClientResponse {
        error_response(
            &self.redirect_uri,
            self.form_post,
            self.state.as_deref(),
            issuer,
            e,
        )
    }

    /// An error before the user did anything on our pages: back to the client, unless the
    /// client registered itself (RFC 9700 §4.11.2), whose redirect URI nobody vouched for.
    fn unprompted_error(&self, issuer: &str, e: &OAuthError) -> Outcome {
        if self.client.dynamically_registered {
            Outcome::Fatal(untrusted_error_page(e))
        } else {
            Outcome::Respond(self.error(issuer, e))
        }
    }

    /// Narrows the scope to what this user may be granted (`admin` needs the `admin` role).
    pub fn restrict_to(&mut self, user: &crate::domain::User) {
        self.scope = tokens::scope_for_user(&self.scope, user);
    }

    /// The scopes as the consent page shows them.
    pub fn scope(&self) -> &ScopeSet {
        &self.scope
    }
}

/// The page shown instead of redirecting an error to a self-registered client.
fn untrusted_error_page(e: &OAuthError) -> String {
    format!(
        "The application's sign-in request cannot be completed ({}: {}).",
        e.code(),
        e.description()
    )
}

fn error_response(
    redirect_uri: &str,
    form_post: bool,
    state: Option<&str>,
    issuer: &str,
    e: &OAuthError,
) -> ClientResponse {
    let mut params = vec![
        ("error", e.code().to_owned()),
        ("error_description", e.description()),
    ];
    if let Some(s) = state {
        params.push(("state", s.to_owned()));
    }
    // RFC 9207 §2: the issuer identifier in every authorization response.
    params.push(("iss", issuer.to_owned()));
    ClientResponse {
        redirect_uri: redirect_uri.to_owned(),
        form_post,
        params,
    }
}

/// Whether the request demands a login made for it (OpenID Connect Core 1.0 §3.1.2.1):
/// `prompt=login` or `select_account` always, `max_age` when the session is older.
fn demands_fresh_login(req: &Request) -> bool {
    req.prompt.login || req.prompt.select_account || req.max_age.is_some()
}

/// The request again, for the page we send the user to: after consenting, `prompt=consent`
/// is met and goes; every other demand stays. For the login page, a request that demands a
/// fresh login gets a new [`LOGIN_TICKET`] (replacing any it had), which the login stores in
/// the session it creates.
fn return_to(req: &Request, drop_consent: bool, new_ticket: bool) -> String {
    let mut params = req.params.clone();
    let prompts: Vec<&str> = req
        .params
        .one("prompt")
        .ok()
        .flatten()
        .unwrap_or_default()
        .split(' ')
        .filter(|p| !p.is_empty())
        .filter(|p| !(drop_consent && *p == "consent"))
        .collect();
    params.set("prompt", (!prompts.is_empty()).then(|| prompts.join(" ")));
    if new_ticket {
        let ticket = demands_fresh_login(req).then(crate::crypto::token::random_id);
        params.set(LOGIN_TICKET, ticket);
    }
    format!(
        "{}?{}",
        paths::AUTHORIZE,
        params.encode_without(|_, _| false)
    )
}

/// The ticket in a login page's `return_to`, to store in the session the login creates.
pub fn login_ticket_in(return_to: &str) -> Option<String> {
    authorize_params_of(return_to)?
        .one(LOGIN_TICKET)
        .ok()
        .flatten()
        .map(str::to_owned)
}

/// Validates a `return_to` taken from a form or a query: only our authorization endpoint
/// (never an absolute or protocol-relative URL: no open redirect).
pub fn authorize_params_of(return_to: &str) -> Option<Params> {
    let rest = return_to.strip_prefix(paths::AUTHORIZE)?;
    match rest.strip_prefix('?') {
        Some(query) => Params::parse(query).ok(),
        None if rest.is_empty() => Some(Params::default()),
        None => None,
    }
}

/// The client the request names, before anything is looked up: the client and the redirect
/// URI decide where errors may go, so a repeated, missing or undecodable one cannot be trusted
/// (RFC 6749 §4.1.2.1): an error page.
fn requested_client_id(params: &Params) -> Result<&str, Outcome> {
    if params.is_repeated("client_id") || params.is_repeated("redirect_uri") {
        return Err(Outcome::Fatal(
            "The client_id or redirect_uri parameter is repeated.".into(),
        ));
    }
    if params.undecodable_named("client_id") || params.undecodable_named("redirect_uri") {
        return Err(Outcome::Fatal(
            "The client_id or redirect_uri parameter is not valid UTF-8.".into(),
        ));
    }
    match params.one("client_id") {
        Ok(Some(client_id)) => Ok(client_id),
        _ => Err(Outcome::Fatal("The request has no client_id.".into())),
    }
}

/// The parameters of an authorization request (its query, or its form body for POST). A pair
/// that is not UTF-8 once decoded is set aside instead of refusing the request at once: the
/// request is malformed either way (`invalid_request`, RFC 6749 §4.1.2.1), but only
/// [`check_request`] knows whether the client and the redirect URI are established, and so
/// whether the error may go back to the client.
pub fn request_params(encoded: &[u8]) -> Result<Params, TooManyParams> {
    Params::parse_keeping_undecodable(encoded, MAX_PARAMS)
}

/// Validates an authorization request against the client it names (looked up by the caller):
/// no I/O from here on. `Err` is the outcome to deliver at once.
async fn check_request(
    params: Params,
    registrar: &ClientRegistrar,
    issuer: &str,
    require_pkce: bool,
) -> Result<Request, Outcome> {
    let client_id = requested_client_id(&params)?;
    // The registrar decides whether the redirect URI (required) is registered.
    let presented = match params.one("redirect_uri") {
        Ok(Some(raw)) => match raw.parse::<ExactUrl>() {
            Ok(u) => Some(Cow::Owned(u)),
            Err(_) => {
                return Err(Outcome::Fatal(
                    "The redirect_uri is not a valid URL.".into(),
                ));
            }
        },
        _ => None,
    };
    let bound = registrar
        .bound_redirect(ClientUrl {
            client_id: Cow::Borrowed(client_id),
            redirect_uri: presented,
        })
        .await
        .map_err(|_| {
            Outcome::Fatal(
                "The application that sent you here is unknown, or its redirect_uri is missing or not registered."
                    .into(),
            )
        })?;
    let redirect_uri = bound.redirect_uri.as_str().to_owned();
    let Some(client) = registrar.client().cloned() else {
        return Err(Outcome::Fatal("Unknown client.".into()));
    };

    // From here on, errors go back to the client (to a page for a self-registered one: RFC
    // 9700 §4.11.2, none of these comes after anything the user did).
    let state_param = params.one("state").ok().flatten().map(str::to_owned);
    let form_post = matches!(params.one("response_mode"), Ok(Some("form_post")));
    let trusted = !client.dynamically_registered;
    let fail = |e: OAuthError| {
        if !trusted {
            return Outcome::Fatal(untrusted_error_page(&e));
        }
        Outcome::Respond(error_response(
            &redirect_uri,
            form_post,
            state_param.as_deref(),
            issuer,
            &e,
        ))
    };

    // RFC 6749 §4.1.2.1: a parameter that is not UTF-8 once decoded makes the request
    // malformed; the client and the redirect URI decoded, so the error goes back to the client.
    if let Some(bad) = params.first_undecodable() {
        return Err(fail(OAuthError::InvalidRequest(bad.to_string())));
    }
    match params.one("response_mode").map_err(&fail)? {
        None | Some("query") | Some("form_post") => {}
        Some(other) => {
            return Err(fail(OAuthError::InvalidRequest(format!(
                "response_mode {other} is not supported"
            ))));
        }
    }
    if params.is_repeated("state") {
        return Err(fail(OAuthError::InvalidRequest(
            "parameter state is repeated".into(),
        )));
    }
    // OpenID Connect Core 1.0 §6: request objects are not supported.
    if params.one("request").map_err(&fail)?.is_some() {
        return Err(fail(OAuthError::RequestNotSupported));
    }
    if params.one("request_uri").map_err(&fail)?.is_some() {
        return Err(fail(OAuthError::RequestUriNotSupported));
    }
    if params.one("registration").map_err(&fail)?.is_some() {
        return Err(fail(OAuthError::RegistrationNotSupported));
    }
    // RFC 6749 §3.1.1: only `code` is supported (and advertised).
    match params.one("response_type").map_err(&fail)? {
        Some("code") => {}
        None => {
            return Err(fail(OAuthError::InvalidRequest(
                "response_type is missing".into(),
            )));
        }
        Some(other) => {
            return Err(fail(OAuthError::UnsupportedResponseType(format!(
                "response_type {other} is not supported"
            ))));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(OAuthError::UnauthorizedClient(
            "this client may not use the authorization code grant".into(),
        )));
    }
    // RFC 6749 §3.3: we grant the requested scopes the client is allowed (the registrar's
    // negotiation); an empty result for a non-empty request is `invalid_scope`, and so is a
    // malformed or oversized scope (§4.1.2.1; the bounds are `ScopeSet::parse_requested`'s).
    let requested =
        ScopeSet::parse_requested(params.one("scope").map_err(&fail)?.unwrap_or_default())
            .map_err(|e| fail(OAuthError::InvalidScope(e.message)))?;
    let scope = match super::primitives::to_oxide_scope(&requested)
        .filter(|_| !requested.is_empty())
    {
        None => ScopeSet::default(),
        Some(oxide_scope) => {
            let pre = registrar
                .negotiate(bound, Some(oxide_scope))
                .await
                .map_err(|_| {
                    fail(OAuthError::InvalidScope(
                        "the requested scope is not allowed".into(),
                    ))
                })?;
            ScopeSet::parse(&pre.scope.to_string()).map_err(|_| fail(OAuthError::ServerError))?
        }
    };
    if !requested.is_empty() && scope.is_empty() {
        return Err(fail(OAuthError::InvalidScope(
            "none of the requested scopes is allowed for this client".into(),
        )));
    }

    // RFC 7636 §4.3 and RFC 9700 §2.1.1: PKCE with S256; required for public clients and, while
    // `oauth.require_pkce` is on (the default), for every client.
    let code_challenge = params
        .one("code_challenge")
        .map_err(&fail)?
        .map(str::to_owned);
    let method = params.one("code_challenge_method").map_err(&fail)?;
    match (&code_challenge, method) {
        (Some(c), None | Some("S256")) => {
            // RFC 7636 §4.2.
            if !super::pkce::well_formed(c) {
                return Err(fail(OAuthError::InvalidRequest(
                    "code_challenge is malformed".into(),
                )));
            }
            if method.is_none() {
                // RFC 7636 §4.3: the default method is `plain`, which we do not accept.
                return Err(fail(OAuthError::InvalidRequest(
                    "code_challenge_method must be S256".into(),
                )));
            }
        }
        (Some(_), Some(_)) => {
            return Err(fail(OAuthError::InvalidRequest(
                "code_challenge_method must be S256".into(),
            )));
        }
        (None, Some(_)) => {
            return Err(fail(OAuthError::InvalidRequest(
                "code_challenge is missing".into(),
            )));
        }
        (None, None) => {
            if client.public || require_pkce {
                return Err(fail(OAuthError::InvalidRequest(
                    "PKCE is required: send code_challenge with code_challenge_method=S256".into(),
                )));
            }
        }
    }

    let mut prompt = Prompt::default();
    for p in params
        .one("prompt")
        .map_err(&fail)?
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
    {
        match p {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => prompt.select_account = true,
            other => {
                return Err(fail(OAuthError::InvalidRequest(format!(
                    "prompt value {other} is not supported"
                ))));
            }
        }
    }
    // OpenID Connect Core 1.0 §3.1.2.1: `none` with any other value is an error.
    if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
        return Err(fail(OAuthError::InvalidRequest(
            "prompt=none cannot be combined with other values".into(),
        )));
    }
    let max_age = match params.one("max_age").map_err(&fail)? {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            fail(OAuthError::InvalidRequest(
                "max_age must be a non-negative number".into(),
            ))
        })?),
    };
    let nonce = params.one("nonce").map_err(&fail)?.map(str::to_owned);
    let login_hint = params.one("login_hint").map_err(&fail)?.map(str::to_owned);
    let id_token_hint = params
        .one("id_token_hint")
        .map_err(&fail)?
        .map(str::to_owned);
    for name in ["ui_locales", "claims_locales", "display"] {
        params.one(name).map_err(&fail)?;
    }
    let min_acr = params
        .one("acr_values")
        .map_err(&fail)?
        .and_then(Acr::minimum_of);

    Ok(Request {
        params,
        client,
        redirect_uri,
        form_post,
        state: state_param,
        scope,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint,
        id_token_hint,
        min_acr,
    })
}

/// The authorization endpoint's decisions, with what they need.
#[derive(Debug, Clone)]
pub struct Authorization {
    store: Store,
    tokens: Tokens,
    factors: Factors,
    settings: Arc<Settings>,
    clock: SharedClock,
}

impl Authorization {
    pub fn new(
        store: Store,
        tokens: Tokens,
        factors: Factors,
        settings: Arc<Settings>,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            tokens,
            factors,
            settings,
            clock,
        }
    }

    /// The whole authorization request (RFC 6749 §4.1.1): validation, then the decision for
    /// the browser's session.
    pub async fn authorize(&self, params: Params, session: Option<Authenticated>) -> Outcome {
        match self.validate(params).await {
            Ok(request) => self.decide(request, session, self.clock.time()).await,
            Err(outcome) => outcome,
        }
    }

    /// Validates an authorization request; `Err` is the outcome to deliver at once.
    pub async fn validate(&self, params: Params) -> Result<Request, Outcome> {
        let registrar = ClientRegistrar::load(&self.store, requested_client_id(&params)?)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot look up the client of an authorization request");
                Outcome::Unavailable
            })?;
        check_request(
            params,
            &registrar,
            self.settings.server.issuer.as_str(),
            self.settings.oauth.require_pkce,
        )
        .await
    }

    /// Decides what happens to a valid request, given the browser's session.
    pub async fn decide(
        &self,
        req: Request,
        session: Option<Authenticated>,
        now: UnixTime,
    ) -> Outcome {
        let issuer = self.settings.server.issuer.as_str();
        let mut fresh_login_needed = req.prompt.login || req.prompt.select_account;
        if let (Some(s), Some(max_age)) = (&session, req.max_age) {
            // OpenID Connect Core 1.0 §3.1.2.1: re-authenticate when the last one is too old.
            if now.since(s.session.auth_time) > max_age {
                fresh_login_needed = true;
            }
        }
        // A login made for this request (its ticket is in the session) meets the demand, once.
        let ticket = match (&session, req.params.one(LOGIN_TICKET)) {
            (Some(s), Ok(Some(t))) if s.session.login_ticket.as_deref() == Some(t) => {
                Some(t.to_owned())
            }
            _ => None,
        };
        let ticket = ticket.filter(|_| fresh_login_needed);
        if ticket.is_some() {
            fresh_login_needed = false;
        }
        if let (Some(s), Some(hint)) = (&session, &req.id_token_hint) {
            // §3.1.2.1: the hint names the expected user; another signed-in user must log in again.
            match self.tokens.verify_id_token_hint(hint, now).await {
                Some(h) if h.sub == s.user.id.as_str() => {}
                _ => fresh_login_needed = true,
            }
        }
        let mut req = req;
        let session = match session {
            Some(s) if !fresh_login_needed => {
                req.restrict_to(&s.user);
                s
            }
            _ => {
                if req.prompt.none {
                    return req.unprompted_error(
                        issuer,
                        &OAuthError::LoginRequired("the user is not signed in".into()),
                    );
                }
                return Outcome::Login {
                    return_to: return_to(&req, false, true),
                    login_hint: req.login_hint.clone(),
                };
            }
        };

        // The level the session must reach: `acr_values` is a minimum (CONTRACT.md), raised to
        // `urn:castellan:acr:mfa` when the client requires a second factor or the user's roles
        // do (`mfa.required_for_roles`). A session below it steps up with a second factor, or,
        // for a user who has none, enrols one; it is never refused and does not log in again.
        let policy = self
            .settings
            .mfa
            .policy()
            .minimum(&session.user, req.client.require_mfa);
        if let Some(min) = MfaPolicy::combine(req.min_acr, policy)
            && Acr::of(&session.session.amr) < min
        {
            if req.prompt.none {
                // OpenID Connect Core 1.0 §3.1.2.6: `login_required` ("the Authorization Server
                // requires End-User authentication"), not the general `interaction_required`:
                // what is missing is authentication at a higher level, which the user gives on
                // our pages (a second factor, or enrolling one and proving it). The RP learns
                // the same whether or not the user has a factor yet.
                return req.unprompted_error(
                    issuer,
                    &OAuthError::LoginRequired(
                        "the session is below the required authentication level".into(),
                    ),
                );
            }
            let return_to = return_to(&req, false, false);
            let factors = async {
                let any = self.factors.has_any(&session.user.id).await?;
                let passkeys = self.factors.has_passkey(&session.user.id).await?;
                Ok::<_, FactorError>((any, passkeys))
            };
            return match factors.await {
                // `phr` is reached with a passkey only (OpenID EAP ACR Values: phishing-resistant).
                Ok((_, true)) => Outcome::SecondFactor { return_to },
                Ok((_, false)) if min == Acr::Phr => Outcome::EnrolPasskey { return_to },
                Ok((true, false)) => Outcome::SecondFactor { return_to },
                Ok((false, false)) => Outcome::EnrolSecondFactor { return_to },
                Err(FactorError::Store(e)) => req.unprompted_error(issuer, &OAuthError::from(e)),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the second factors");
                    req.unprompted_error(issuer, &OAuthError::ServerError)
                }
            };
        }

        // Consent (OpenID Connect Core 1.0 §3.1.2.4): first-party clients skip it unless asked for.
        let needs_consent = if req.prompt.consent {
            true
        } else if req.client.skip_consent {
            false
        } else {
            match self.store.consent(&session.user.id, &req.client.id).await {
                Ok(Some(granted)) => !req.scope.is_subset(&granted),
                Ok(None) => true,
                // RFC 6749 §4.1.2.1: `temporarily_unavailable` when the database is.
                Err(e) => return req.unprompted_error(issuer, &OAuthError::from(e)),
            }
        };
        if needs_consent {
            if req.prompt.none {
                return req.unprompted_error(
                    issuer,
                    &OAuthError::ConsentRequired("the user has not consented".into()),
                );
            }
            return Outcome::Consent {
                return_to: return_to(&req, true, false),
            };
        }
        if let Some(t) = &ticket {
            // The ticket serves one code: a second use of the same return_to logs in again.
            match self.store.take_login_ticket(&session.session.sid, t).await {
                Ok(true) => {}
                Ok(false) => {
                    return Outcome::Login {
                        return_to: return_to(&req, false, true),
                        login_hint: req.login_hint.clone(),
                    };
                }
                Err(e) => return req.unprompted_error(issuer, &OAuthError::from(e)),
            }
        }
        self.issue_code(&req, &session, now).await
    }

    async fn issue_code(&self, req: &Request, session: &Authenticated, now: UnixTime) -> Outcome {
        let issuer = self.settings.server.issuer.as_str();
        let record = CodeRecord {
            client_id: req.client.id.clone(),
            user_id: session.user.id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            scope: req.scope.clone(),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            code_challenge_method: req.code_challenge.as_ref().map(|_| "S256".to_owned()),
            auth_time: session.session.auth_time,
            amr: session.session.amr.clone(),
            sid: Some(session.session.sid.clone()),
            expires_at: now.plus(self.settings.tokens.code_ttl_secs as i64),
        };
        let code = match super::codes::issue(&self.store, record, now).await {
            Ok(code) => code,
            Err(e) => return Outcome::Respond(req.error(issuer, &OAuthError::from(e))),
        };
        let mut params = vec![("code", code)];
        if let Some(s) = &req.state {
            params.push(("state", s.clone()));
        }
        params.push(("iss", issuer.to_owned()));
        Outcome::Respond(ClientResponse {
            redirect_uri: req.redirect_uri.clone(),
            form_post: req.form_post,
            params,
        })
    }

    /// The answer of the consent page (OpenID Connect Core 1.0 §3.1.2.4), for the request it
    /// was shown for: on allow the grant is remembered (and audited) and the browser returns to
    /// the authorization request; on deny the client gets `access_denied` (RFC 6749 §4.1.2.1).
    /// A request that no longer validates is answered as the endpoint would answer it.
    pub async fn consent(
        &self,
        params: Params,
        user: &crate::domain::User,
        allow: bool,
    ) -> Result<String, Outcome> {
        let now = self.clock.time();
        let mut req = self.validate(params).await?;
        req.restrict_to(user);
        let issuer = self.settings.server.issuer.as_str();
        if !allow {
            return Err(Outcome::Respond(req.error(
                issuer,
                &OAuthError::AccessDenied("the user denied the request".into()),
            )));
        }
        let previous = match self.store.consent(&user.id, &req.client.id).await {
            Ok(previous) => previous.unwrap_or_default(),
            Err(e) => return Err(Outcome::Respond(req.error(issuer, &OAuthError::from(e)))),
        };
        let granted = previous.union(&req.scope);
        if let Err(e) = self
            .store
            .save_consent(&user.id, &req.client.id, &granted, now)
            .await
        {
            return Err(Outcome::Respond(req.error(issuer, &OAuthError::from(e))));
        }
        let entry = AuditEntry {
            user_id: Some(user.id.as_str().to_owned()),
            client_id: Some(req.client.id.as_str().to_owned()),
            ..AuditEntry::new(AuditKind::ConsentGranted)
        };
        self.store.record(entry, now).await;
        Ok(return_to(&req, true, false))
    }
}

/// Property tests (proptest) of the authorization request's validation, after the client
/// lookup: any query gives a valid request or an error, an error goes back to the client only
/// when the client and the exact registered redirect URI were presented (RFC 6749 §4.1.2.1),
/// and it carries one of §4.1.2.1's codes (or OpenID Connect Core 1.0 §3.1.2.6's).
#[cfg(test)]
mod properties {
    use super::*;
    use crate::domain::{ApplicationType, AuthMethod, ClientId, ClientInfo, RedirectUri};
    use proptest::prelude::*;

    const CLIENT: &str = "c";
    const REDIRECT: &str = "https://rp.example/cb";
    const ISSUER: &str = "https://issuer.example";

    fn client() -> Client {
        Client {
            id: ClientId::from_stored(CLIENT.into()),
            name: "c".into(),
            secret_hash: Some("h".into()),
            redirect_uris: vec![RedirectUri::from_stored(REDIRECT.into())],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: ScopeSet::parse("openid profile email").unwrap_or_default(),
            auth_method: AuthMethod::SecretBasic,
            public: false,
            skip_consent: false,
            introspect_any: false,
            require_mfa: false,
            created_at: UnixTime::from_secs(0),
            application_type: ApplicationType::Web,
            info: ClientInfo::default(),
            dynamically_registered: false,
        }
    }

    fn check(encoded: &[u8]) -> Option<Result<Request, Outcome>> {
        let params = request_params(encoded).ok()?;
        let runtime = tokio::runtime::Builder::new_current_thread().build().ok()?;
        let registrar = ClientRegistrar::of(Some(client()));
        Some(runtime.block_on(check_request(params, &registrar, ISSUER, true)))
    }

    /// A value for a parameter: one the endpoint knows, or anything.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "code",
                "token",
                "code id_token",
                CLIENT,
                REDIRECT,
                "S256",
                "plain",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "short",
                "openid",
                "openid profile",
                "openid admin",
                "admin",
                "none",
                "login",
                "consent",
                "select_account",
                "none login",
                "query",
                "form_post",
                "fragment",
                "0",
                "-1",
                "99999999999999999999",
                "",
                " ",
            ])
            .prop_map(str::to_owned),
            ".{0,24}",
        ]
    }

    /// A query: usually the client and its redirect URI (sometimes another, or none, or
    /// twice), often the rest of a valid request, then known and unknown parameters, then
    /// sometimes octets that do not decode.
    fn query() -> impl Strategy<Value = Vec<u8>> {
        let redirect = prop_oneof![
            14 => Just(vec![REDIRECT.to_owned()]),
            1 => Just(vec![format!("{REDIRECT}/")]),
            1 => Just(vec!["https://evil.example/cb".to_owned()]),
            1 => Just(vec![]),
            1 => Just(vec![REDIRECT.to_owned(), REDIRECT.to_owned()]),
            1 => ".{0,20}".prop_map(|v| vec![v]),
        ];
        let name = prop_oneof![
            prop::sample::select(vec![
                "response_type",
                "scope",
                "state",
                "nonce",
                "code_challenge",
                "code_challenge_method",
                "prompt",
                "max_age",
                "response_mode",
                "login_hint",
                "id_token_hint",
                "request",
                "request_uri",
                "registration",
                "ui_locales",
                "acr_values",
                "display",
            ])
            .prop_map(str::to_owned),
            "[a-z_]{1,10}",
        ];
        let raw_tail = prop::option::of(prop::sample::select(vec![
            "&state=%FF",
            "&nonce=a%C3",
            "&%FE=1",
            "&client_id=%FF",
            "&redirect_uri=%80",
            "&scope=%ED%A0%80",
        ]));
        (
            prop::bool::weighted(0.95),
            redirect,
            prop::bool::weighted(0.6),
            prop::collection::vec((name, value()), 0..6),
            raw_tail,
        )
            .prop_map(|(with_client, redirects, valid_rest, pairs, tail)| {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                if with_client {
                    ser.append_pair("client_id", CLIENT);
                }
                for r in &redirects {
                    ser.append_pair("redirect_uri", r);
                }
                if valid_rest {
                    // The rest of a valid request, which the other pairs may then break.
                    ser.extend_pairs([
                        ("response_type", "code"),
                        (
                            "code_challenge",
                            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                        ),
                        ("code_challenge_method", "S256"),
                    ]);
                }
                ser.extend_pairs(&pairs);
                let mut out = ser.finish().into_bytes();
                out.extend_from_slice(tail.unwrap_or_default().as_bytes());
                out
            })
    }

    /// RFC 6749 §4.1.2.1 and OpenID Connect Core 1.0 §3.1.2.6: what validation may answer.
    const CODES: &[&str] = &[
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_authorization_request_is_valid_or_refused_where_it_may_be(q in query()) {
            let Some(outcome) = check(&q) else {
                return Ok(());
            };
            // What the request presented, read as the endpoint reads it.
            let p = Params::parse_at_most(&q, MAX_PARAMS);
            let exact = p.as_ref().is_ok_and(|p| {
                p.one("client_id") == Ok(Some(CLIENT)) && p.one("redirect_uri") == Ok(Some(REDIRECT))
            });
            let lenient = request_params(&q).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let vouched = lenient.one("client_id") == Ok(Some(CLIENT))
                && lenient.one("redirect_uri") == Ok(Some(REDIRECT))
                && !lenient.undecodable_named("client_id")
                && !lenient.undecodable_named("redirect_uri");
            match outcome {
                Ok(req) => {
                    prop_assert!(exact, "a request that does not decode was accepted");
                    prop_assert_eq!(req.redirect_uri.as_str(), REDIRECT);
                    prop_assert!(req.code_challenge.is_some(), "PKCE is required");
                    prop_assert!(req.scope.is_subset(&client().scopes));
                }
                Err(Outcome::Fatal(_)) => {}
                Err(Outcome::Respond(r)) => {
                    // Never to a redirect URI that was not presented exactly as registered.
                    prop_assert!(vouched, "redirected an error for an unverified request");
                    prop_assert_eq!(r.redirect_uri.as_str(), REDIRECT);
                    let error = r.params.iter().find(|(k, _)| *k == "error").map(|(_, v)| v.as_str());
                    prop_assert!(error.is_some_and(|e| CODES.contains(&e)), "{:?}", r.params);
                    prop_assert!(r.params.iter().any(|(k, v)| *k == "iss" && v == ISSUER));
                    prop_assert!(!r.params.iter().any(|(k, _)| *k == "code"));
                }
                Err(other) => prop_assert!(false, "validation decided {other:?}"),
            }
        }
    }
}

//! OAuth 2.0 endpoints: authorization (GET and POST), token, revocation, introspection.
//! Thin handlers: parse, call `oauth`, respond.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_SECURITY_POLICY, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::http::extractors::{OAuthForm, PageForm, client_credentials};
use crate::http::support::{
    bad_request_page, current_user, no_store_json, oauth_error, page, see_other,
};
use crate::oauth::authorize::{self, ClientResponse, Outcome};
use crate::oauth::params::Params;
use crate::oauth::{OAuthError, token};
use crate::paths;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPost<'a> {
    action: &'a str,
    fields: &'a [(&'static str, String)],
}

/// Delivers a response to the client: a redirect, or the Form Post Response Mode page.
pub fn respond(r: &ClientResponse) -> HttpResponse {
    if !r.form_post {
        return see_other(&r.location());
    }
    let mut resp = page(
        StatusCode::OK,
        &FormPost {
            action: &r.redirect_uri,
            fields: &r.params,
        },
        None,
    );
    // The page's one inline script submits the form; nothing else may run or be framed.
    let script = "document.forms[0].submit();";
    let hash = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script.as_bytes()))
    };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "default-src 'none'; script-src 'sha256-{hash}'; frame-ancestors 'none'; base-uri 'none'"
    )) {
        resp.headers_mut().insert(CONTENT_SECURITY_POLICY, v);
    }
    resp
}

/// Turns an authorization outcome into HTTP.
pub fn outcome_response(outcome: Outcome) -> HttpResponse {
    match outcome {
        Outcome::Fatal(message) => bad_request_page(&message),
        Outcome::Respond(r) => respond(&r),
        Outcome::Login {
            return_to,
            login_hint,
        } => {
            let mut ser = url::form_urlencoded::Serializer::new(String::new());
            ser.append_pair("return_to", &return_to);
            if let Some(h) = login_hint {
                ser.append_pair("login_hint", &h);
            }
            see_other(&format!("{}?{}", paths::LOGIN, ser.finish()))
        }
        Outcome::Consent { return_to } => {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &return_to)
                .finish();
            see_other(&format!("{}?{}", paths::CONSENT, q))
        }
    }
}

async fn authorize_with(req: &HttpRequest, state: &AppState, params: Params) -> HttpResponse {
    let now = state.clock.now();
    let request = match authorize::validate(state, params).await {
        Ok(r) => r,
        Err(outcome) => return outcome_response(outcome),
    };
    let session = match current_user(req, state, now).await {
        Ok(s) => s,
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    outcome_response(authorize::decide(state, request, session, now).await)
}

/// RFC 6749 §4.1.1 / OpenID Connect Core 1.0 §3.1.2.1: GET with the query.
pub async fn authorize_get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match Params::parse(req.query_string()) {
        Ok(params) => authorize_with(&req, &state, params).await,
        Err(e) => bad_request_page(&format!("The authorization request is not valid: {e}.")),
    }
}

/// OpenID Connect Core 1.0 §3.1.2.1: POST with a form body.
pub async fn authorize_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    PageForm(params): PageForm,
) -> HttpResponse {
    authorize_with(&req, &state, params).await
}

/// Failed client authentications are limited per address; successful requests never are (one
/// busy relying party sends thousands a second from one address).
fn client_auth_blocked(req: &HttpRequest, state: &AppState) -> Option<HttpResponse> {
    use crate::services::ratelimit::Action;
    let ip = crate::http::support::client_addr(req, state)?;
    let wait = state
        .limiter
        .would_allow(Action::ClientAuthFailure, ip, state.clock.now_ms())
        .err()?;
    Some(
        HttpResponse::TooManyRequests()
            .insert_header((actix_web::http::header::RETRY_AFTER, wait.to_string()))
            .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({
                "error": "invalid_client",
                "error_description": "too many failed client authentications from this address; retry later"
            })),
    )
}

fn note_failure(req: &HttpRequest, state: &AppState, e: &OAuthError) {
    if matches!(e, OAuthError::InvalidClient(_))
        && let Some(ip) = crate::http::support::client_addr(req, state)
    {
        let _ = state.limiter.take(
            crate::services::ratelimit::Action::ClientAuthFailure,
            ip,
            state.clock.now_ms(),
        );
    }
}

/// The front shared by the client-authenticated endpoints (token, revocation, introspection):
/// the per-address block on failed client authentication, the form body, client
/// authentication, counting a failure, and the RFC 6749 §5.2 error format.
async fn with_client<T: serde::Serialize>(
    req: &HttpRequest,
    state: &AppState,
    params: Params,
    handle: impl AsyncFnOnce(&crate::domain::Client, &Params) -> Result<T, OAuthError>,
) -> HttpResponse {
    client_request(req, state, params, async |params| {
        let client = token::authenticate(state, client_credentials(req, params)?).await?;
        handle(&client, params).await
    })
    .await
}

/// [`with_client`] for an endpoint that authenticates the client itself (introspection, which
/// loads the client together with the token's state).
async fn client_request<T: serde::Serialize>(
    req: &HttpRequest,
    state: &AppState,
    params: Params,
    handle: impl AsyncFnOnce(&Params) -> Result<T, OAuthError>,
) -> HttpResponse {
    if let Some(blocked) = client_auth_blocked(req, state) {
        return blocked;
    }
    let result = handle(&params).await;
    match result {
        Ok(v) => no_store_json(&v),
        Err(e) => {
            tracing::info!(
                error = e.code(),
                path = req.path(),
                "client request refused"
            );
            note_failure(req, state, &e);
            oauth_error(&e)
        }
    }
}

/// RFC 6749 §3.2: the token endpoint.
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    OAuthForm(params): OAuthForm,
) -> HttpResponse {
    let now = state.clock.now();
    with_client(&req, &state, params, async |client, params| {
        token::token(&state, client, params, now).await
    })
    .await
}

/// RFC 7009 §2: revocation; 200 for any well-formed request from an authenticated client.
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    OAuthForm(params): OAuthForm,
) -> HttpResponse {
    let now = state.clock.now();
    with_client(&req, &state, params, async |client, params| {
        token::revoke(&state, client, params, now)
            .await
            .map(|()| serde_json::json!({}))
    })
    .await
}

/// RFC 7662 §2: introspection.
pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    OAuthForm(params): OAuthForm,
) -> HttpResponse {
    let now = state.clock.now();
    client_request(&req, &state, params, async |params| {
        token::introspect(&state, client_credentials(&req, params)?, params, now).await
    })
    .await
}

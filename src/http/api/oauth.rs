//! OAuth 2.0 endpoints: authorization (GET and POST), token, revocation, introspection.
//! Thin handlers: extract, make one call into `oauth`, respond.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_SECURITY_POLICY, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::http::extractors::{AuthorizationForm, ClientAuth, CurrentSession};
use crate::http::support::{bad_request_page, no_store_json, oauth_error, page, see_other};
use crate::oauth::authorize::{ClientResponse, Outcome};
use crate::oauth::token::Refusal;
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
        Outcome::Unavailable => {
            actix_web::ResponseError::error_response(&crate::error::AppError::Unavailable)
        }
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
        Outcome::SecondFactor { return_to } => {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &return_to)
                .finish();
            see_other(&format!("{}?{}", paths::LOGIN_SECOND_FACTOR, q))
        }
        Outcome::EnrolSecondFactor { return_to } => {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &return_to)
                .finish();
            see_other(&format!("{}?{}", paths::ACCOUNT_TOTP, q))
        }
        Outcome::EnrolPasskey { return_to } => {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &return_to)
                .finish();
            see_other(&format!("{}?{}", paths::ACCOUNT_PASSKEYS, q))
        }
    }
}

/// RFC 6749 §4.1.1 / OpenID Connect Core 1.0 §3.1.2.1: GET with the query.
pub async fn authorize_get(
    req: HttpRequest,
    CurrentSession(session): CurrentSession,
    state: web::Data<AppState>,
) -> HttpResponse {
    match crate::oauth::authorize::request_params(req.query_string().as_bytes()) {
        Ok(params) => outcome_response(state.core.authorization.authorize(params, session).await),
        Err(e) => bad_request_page(&format!("The authorization request is not valid: {e}.")),
    }
}

/// OpenID Connect Core 1.0 §3.1.2.1: POST with a form body.
pub async fn authorize_post(
    CurrentSession(session): CurrentSession,
    state: web::Data<AppState>,
    AuthorizationForm(params): AuthorizationForm,
) -> HttpResponse {
    outcome_response(state.core.authorization.authorize(params, session).await)
}

/// A client request's answer: the JSON (never cached), or the refusal in RFC 6749 §5.2 terms
/// (429 with `Retry-After` for an address with too many failed client authentications).
fn client_answer<T: serde::Serialize>(r: Result<T, Refusal>) -> HttpResponse {
    match r {
        Ok(v) => no_store_json(&v),
        Err(Refusal::OAuth(e)) => oauth_error(&e),
        Err(Refusal::RateLimited(wait)) => HttpResponse::TooManyRequests()
            .insert_header((actix_web::http::header::RETRY_AFTER, wait.to_string()))
            .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({
                "error": "invalid_client",
                "error_description": "too many failed client authentications from this address; retry later"
            })),
    }
}

/// RFC 6749 §3.2: the token endpoint.
pub async fn token(state: web::Data<AppState>, ClientAuth(r): ClientAuth) -> HttpResponse {
    client_answer(state.core.token_endpoint.exchange(r).await)
}

/// RFC 7009 §2: revocation; 200 for any well-formed request from an authenticated client.
pub async fn revoke(state: web::Data<AppState>, ClientAuth(r): ClientAuth) -> HttpResponse {
    client_answer(
        state
            .core
            .token_endpoint
            .revoke_request(r)
            .await
            .map(|()| serde_json::json!({})),
    )
}

/// RFC 7662 §2: introspection.
pub async fn introspect(state: web::Data<AppState>, ClientAuth(r): ClientAuth) -> HttpResponse {
    client_answer(state.core.token_endpoint.introspect_request(r).await)
}

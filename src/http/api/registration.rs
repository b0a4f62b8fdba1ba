//! Dynamic client registration endpoints (RFC 7591 §3 at `/oauth2/register`, RFC 7592 §2 at
//! `/oauth2/register/{client_id}`). Thin: the bearer token, the JSON content type and the
//! client address are read here; `services::registration` does the rest.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::http::support::client_addr;
use crate::services::registration::{Body, Caller, ClientInformation, RegistrationError};
use crate::state::AppState;

/// The most a registration or update body may hold.
pub const MAX_BODY: usize = 64 * 1024;

/// RFC 6750 §2.1: `Authorization: Bearer <token>`. Another scheme, or an empty token, counts
/// as no token.
fn bearer(req: &HttpRequest) -> Option<&str> {
    crate::http::support::bearer_header(req).filter(|t| !t.is_empty())
}

fn caller<'a>(req: &'a HttpRequest, state: &AppState) -> Caller<'a> {
    Caller {
        bearer: bearer(req),
        ip: client_addr(req, state),
    }
}

/// RFC 7591 §3.1: whether the body is sent as `application/json` (parameters allowed).
fn body<'a>(req: &HttpRequest, bytes: &'a [u8]) -> Body<'a> {
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = ct.split(';').next().unwrap_or_default().trim();
    Body {
        is_json: media.eq_ignore_ascii_case("application/json"),
        bytes,
    }
}

fn no_store(status: StatusCode) -> actix_web::HttpResponseBuilder {
    let mut b = HttpResponse::build(status);
    b.insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((PRAGMA, "no-cache"));
    b
}

fn respond(status: StatusCode, r: Result<ClientInformation, RegistrationError>) -> HttpResponse {
    match r {
        Ok(info) => no_store(status).json(info.body),
        Err(e) => error(&e),
    }
}

/// RFC 7591 §3.2.2 errors (JSON, no-store); RFC 6750 §3 for a bad bearer token.
fn error(e: &RegistrationError) -> HttpResponse {
    match e {
        // Off: as if there were no such path.
        RegistrationError::Disabled => {
            return actix_web::ResponseError::error_response(&crate::error::AppError::NotFound);
        }
        RegistrationError::Store(err) if err.is_unavailable() => {
            tracing::warn!(error = %err, "dynamic registration: the database is unavailable");
        }
        RegistrationError::Store(err) => {
            tracing::error!(error = %err, "dynamic registration failed");
        }
        _ => tracing::info!(error = e.code(), "registration request refused"),
    }
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut b = no_store(status);
    match e {
        // RFC 6750 §3.1: without credentials, no error attributes in the challenge.
        RegistrationError::InvalidToken { missing: true } => {
            b.insert_header((WWW_AUTHENTICATE, "Bearer realm=\"castellan\""));
        }
        RegistrationError::InvalidToken { missing: false } => {
            b.insert_header((
                WWW_AUTHENTICATE,
                "Bearer realm=\"castellan\", error=\"invalid_token\"",
            ));
        }
        RegistrationError::RateLimited(wait) => {
            b.insert_header((RETRY_AFTER, wait.to_string()));
        }
        // RFC 9110 §10.2.3.
        RegistrationError::Store(err) if err.is_unavailable() => {
            b.insert_header((RETRY_AFTER, crate::error::UNAVAILABLE_RETRY_AFTER_SECS));
        }
        _ => {}
    }
    b.json(serde_json::json!({"error": e.code(), "error_description": e.description()}))
}

/// RFC 7591 §3.1: `POST /oauth2/register`; 201 with the client information (§3.2.1).
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> HttpResponse {
    let registration = &state.core.registration;
    let r = registration
        .register(
            caller(&req, &state),
            body(&req, &bytes),
            registration.now_ms(),
        )
        .await;
    respond(StatusCode::CREATED, r)
}

/// RFC 7592 §2.1: `GET` the client configuration endpoint.
pub async fn read(
    req: HttpRequest,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
) -> HttpResponse {
    let r = state
        .core
        .registration
        .read(caller(&req, &state), &client_id)
        .await;
    respond(StatusCode::OK, r)
}

/// RFC 7592 §2.2: `PUT` the client configuration endpoint.
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
    bytes: web::Bytes,
) -> HttpResponse {
    let r = state
        .core
        .registration
        .update(caller(&req, &state), &client_id, body(&req, &bytes))
        .await;
    respond(StatusCode::OK, r)
}

/// RFC 7592 §2.3: `DELETE` the client configuration endpoint; 204 No Content.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    client_id: web::Path<String>,
) -> HttpResponse {
    match state
        .core
        .registration
        .delete(caller(&req, &state), &client_id)
        .await
    {
        Ok(()) => no_store(StatusCode::NO_CONTENT).finish(),
        Err(e) => error(&e),
    }
}

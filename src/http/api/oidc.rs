//! Discovery and the JWK Set: pre-serialised bytes with `ETag` and `Cache-Control`.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::oidc::userinfo::UserInfoError;
use crate::state::AppState;

fn cached_json(req: &HttpRequest, body: &bytes::Bytes, etag: &str, max_age: u64) -> HttpResponse {
    let cache = format!("public, max-age={max_age}");
    // RFC 9110 §13.1.2: a weak comparison of the listed tags.
    let matches = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*")
        });
    if matches {
        return HttpResponse::NotModified()
            .insert_header((ETAG, etag))
            .insert_header((CACHE_CONTROL, cache))
            .finish();
    }
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((ETAG, etag))
        .insert_header((CACHE_CONTROL, cache))
        .body(body.clone())
}

/// OpenID Connect Discovery 1.0 §4 and RFC 8414 §3.
pub async fn discovery(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    cached_json(&req, &state.discovery.json, &state.discovery.etag, 3600)
}

/// RFC 7517 §5: the JWK Set, with every key whose signatures may still be presented.
pub async fn jwks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let keys = state.core.tokens.signing_keys().await;
    let mut resp = cached_json(
        &req,
        &keys.jwks_json,
        &keys.jwks_etag,
        state.settings.keys.jwks_max_age_secs,
    );
    if resp.status().is_success() {
        resp.headers_mut().insert(
            CONTENT_TYPE,
            actix_web::http::header::HeaderValue::from_static("application/jwk-set+json"),
        );
    }
    resp
}

/// The bearer token of a request (RFC 6750 §2.1 header, §2.2 form body); two methods at once
/// is `invalid_request` (§2).
fn bearer(req: &HttpRequest, body: &[u8]) -> Result<Option<String>, &'static str> {
    let header = crate::http::support::bearer_header(req).map(str::to_owned);
    let form = if req.method() == actix_web::http::Method::POST
        && !body.is_empty()
        && crate::http::extractors::is_form(req)
    {
        let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8")?;
        let params = crate::oauth::params::Params::parse(text).map_err(|e| match e {
            crate::oauth::params::ParamsError::TooMany(_) => "the request has too many parameters",
            crate::oauth::params::ParamsError::NotUtf8(_) => "a parameter is not valid UTF-8",
        })?;
        params
            .one("access_token")
            .map_err(|_| "access_token is repeated")?
            .map(str::to_owned)
    } else {
        None
    };
    match (header, form) {
        (Some(_), Some(_)) => Err("use only one way of sending the access token"),
        (h, f) => Ok(h.or(f)),
    }
}

/// RFC 6750 §3: a 401 (or 400/403) with `WWW-Authenticate: Bearer ...`.
fn bearer_error(
    status: actix_web::http::StatusCode,
    error: Option<&str>,
    description: &str,
) -> HttpResponse {
    let value = match error {
        Some(e) => format!(
            "Bearer realm=\"castellan\", error=\"{e}\", error_description=\"{description}\""
        ),
        None => "Bearer realm=\"castellan\"".to_owned(),
    };
    let mut b = HttpResponse::build(status);
    b.insert_header((actix_web::http::header::WWW_AUTHENTICATE, value))
        .insert_header((CACHE_CONTROL, "no-store"));
    match error {
        Some(e) => b.json(serde_json::json!({"error": e, "error_description": description})),
        None => b.finish(),
    }
}

/// OpenID Connect Core 1.0 §5.3: UserInfo, GET and POST.
pub async fn userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    use crate::http::extractors::{FORM_BYTES, read_body};
    use actix_web::http::StatusCode;
    let body = match read_body(&req, payload.into_inner(), FORM_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            return bearer_error(
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                &e.to_string(),
            );
        }
    };
    let token = match bearer(&req, &body) {
        Ok(Some(t)) => t,
        Ok(None) => return bearer_error(StatusCode::UNAUTHORIZED, None, ""),
        Err(why) => return bearer_error(StatusCode::BAD_REQUEST, Some("invalid_request"), why),
    };
    match state.core.userinfo.claims(&token).await {
        Ok(claims) => crate::http::support::no_store_json(&claims),
        Err(UserInfoError::InvalidToken(why)) => {
            bearer_error(StatusCode::UNAUTHORIZED, Some("invalid_token"), why)
        }
        Err(UserInfoError::InsufficientScope) => bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "the openid scope is required",
        ),
        // Not the token's fault: no challenge (RFC 6750 §3 is for token errors), the OAuth
        // error object, and for an unavailable database 503 with `Retry-After`.
        Err(UserInfoError::Store(e)) => crate::http::support::oauth_error(&e.into()),
    }
}

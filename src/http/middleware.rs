//! Request logging (request id, method, path without query, status, latency), request
//! metrics, the bounds on a request's query and header fields, CORS for the protocol endpoints
//! browser apps call, and the security headers every response carries.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

use crate::services::metrics::Metrics;

/// Logs one line per request. The query string is never logged: it may hold codes or tokens.
pub async fn log_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let request_id = crate::crypto::token::random_id();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let mut res = next.call(req).await?;
    let status = res.status().as_u16();
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), v);
    }
    tracing::info!(request_id, %method, path, status, latency_ms = format!("{latency_ms:.2}"), "request");
    Ok(res)
}

/// Counts every request in the server's metrics by matched route pattern (never the raw path:
/// `unmatched` when no route matched), method and status, with its latency. Wrapped only when
/// `metrics.enabled`.
pub async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
    metrics: Arc<Metrics>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let res = next.call(req).await?;
    // After routing the request knows which resource matched (a lookup by index, not a match).
    let r = res.request();
    metrics.observe_request(
        r.match_pattern().as_deref(),
        r.method().as_str(),
        res.status().as_u16(),
        start.elapsed(),
    );
    Ok(res)
}

/// Refuses a query string with more parameters than any route reads
/// ([`crate::oauth::params::MAX_PARAMS`]) before routing: one count of `&` bytes, so no
/// handler and no query extractor ever sees a flood. The answer is in the route's own terms:
/// RFC 6749 §5.2 JSON on the OAuth endpoints, RFC 9457 problem details on the admin API, an
/// HTML page elsewhere.
pub async fn bound_query(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let separators = req.query_string().bytes().filter(|b| *b == b'&').count();
    if separators < crate::oauth::params::MAX_PARAMS {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let too_many = crate::oauth::params::TooManyParams(crate::oauth::params::MAX_PARAMS);
    let res = refusal(
        req.path(),
        actix_web::http::StatusCode::BAD_REQUEST,
        &too_many.into(),
        "This address has too many parameters.",
    );
    Ok(req.into_response(res).map_into_right_body())
}

/// The most bytes of header fields one request may carry (RFC 6585 §5: 431 past it).
/// actix-http's own HTTP/1 parser is not configurable: it refuses a request head only past
/// 128 KiB or 96 fields, so this bound is ours, and the tighter one.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The size of a request's header fields as [`MAX_HEADER_BYTES`] counts them: each field line
/// as it is written on the wire, `name: value` and its CRLF (the request line is not a header
/// field; the query is bounded by [`bound_query`]).
pub fn header_bytes(headers: &actix_web::http::header::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum()
}

/// Refuses a request whose header fields exceed [`MAX_HEADER_BYTES`] with **431 Request
/// Header Fields Too Large** (RFC 6585 §5), before routing, in the route's own terms (see
/// [`refusal`]).
pub async fn bound_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if header_bytes(req.headers()) <= MAX_HEADER_BYTES {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let res = refusal(
        req.path(),
        actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        &crate::oauth::OAuthError::InvalidRequest(format!(
            "the request's header fields are larger than {MAX_HEADER_BYTES} bytes"
        )),
        "This request's headers are too large.",
    );
    Ok(req.into_response(res).map_into_right_body())
}

/// A request refused before routing, in the route's terms: RFC 9457 problem details on the
/// admin API, RFC 6749 §5.2 JSON on the OAuth endpoints that clients call (not the two that
/// browsers visit), an HTML page elsewhere.
fn refusal(
    path: &str,
    status: actix_web::http::StatusCode,
    error: &crate::oauth::OAuthError,
    page_message: &str,
) -> actix_web::HttpResponse {
    if path.starts_with(crate::paths::ADMIN_API) {
        crate::http::api::admin::problem(status, error.description(), vec![])
    } else if path.starts_with("/oauth2/")
        && path != crate::paths::AUTHORIZE
        && path != crate::paths::LOGOUT
    {
        let mut res = crate::http::support::oauth_error(error);
        *res.status_mut() = status;
        res
    } else {
        crate::error::AppError::html(status, "Something is wrong with this request", page_message)
    }
}

/// The protocol endpoints a browser app may call from another origin (no cookies involved).
pub const CORS_PATHS: &[&str] = &[
    crate::paths::DISCOVERY,
    crate::paths::OAUTH_METADATA,
    crate::paths::JWKS,
    crate::paths::TOKEN,
    crate::paths::USERINFO,
    crate::paths::REVOKE,
    crate::paths::INTROSPECT,
];

/// The methods each of [`CORS_PATHS`] serves (what its preflight allows).
fn cors_methods(path: &str) -> &'static str {
    match path {
        crate::paths::TOKEN | crate::paths::REVOKE | crate::paths::INTROSPECT => "POST, OPTIONS",
        crate::paths::USERINFO => "GET, POST, OPTIONS",
        _ => "GET, OPTIONS",
    }
}

/// Response headers a cross-origin app's script may read beyond the CORS-safelisted ones: a
/// bearer error's challenge (RFC 6750 §3) and when to retry (RFC 9110 §10.2.3).
const CORS_EXPOSE: &str = "WWW-Authenticate, Retry-After";

/// CORS preflight for [`CORS_PATHS`] (Fetch standard, "CORS protocol"): the methods the
/// path serves, the two request headers clients send.
pub async fn preflight(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    actix_web::HttpResponse::NoContent()
        .insert_header(("access-control-allow-methods", cors_methods(req.path())))
        .insert_header((
            "access-control-allow-headers",
            "Authorization, Content-Type",
        ))
        .insert_header(("access-control-max-age", "86400"))
        .finish()
}

/// Headers on every response: no sniffing, no referrer, no framing; a strict CSP for pages;
/// HSTS when served over https.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
    https: bool,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let cors = CORS_PATHS.contains(&req.path());
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    if cors {
        // Browser apps (SPAs) call these endpoints cross-origin without cookies: any origin may
        // read the answers, which are bearer-protected or public.
        h.insert(
            HeaderName::from_static("access-control-allow-origin"),
            HeaderValue::from_static("*"),
        );
        h.insert(
            HeaderName::from_static("access-control-expose-headers"),
            HeaderValue::from_static(CORS_EXPOSE),
        );
    }
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    if !h.contains_key("content-security-policy") {
        h.insert(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
        );
    }
    if https {
        h.insert(
            HeaderName::from_static("strict-transport-security"),
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    Ok(res)
}

//! Request logging (request id, method, path without query, status, latency), request
//! metrics, and the security headers every response carries.

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
    let path = req.path();
    let res = if path.starts_with(crate::paths::ADMIN_API) {
        crate::http::api::admin::problem(
            actix_web::http::StatusCode::BAD_REQUEST,
            too_many.to_string(),
            vec![],
        )
    } else if path.starts_with("/oauth2/")
        && path != crate::paths::AUTHORIZE
        && path != crate::paths::LOGOUT
    {
        crate::http::support::oauth_error(&too_many.into())
    } else {
        crate::error::AppError::html(
            actix_web::http::StatusCode::BAD_REQUEST,
            "Something is wrong with this request",
            "This address has too many parameters.",
        )
    };
    Ok(req.into_response(res).map_into_right_body())
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

/// CORS preflight for [`CORS_PATHS`].
pub async fn preflight() -> actix_web::HttpResponse {
    actix_web::HttpResponse::NoContent()
        .insert_header(("access-control-allow-methods", "GET, POST, OPTIONS"))
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

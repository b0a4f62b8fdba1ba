//! Shared HTTP plumbing: cookies (session, CSRF), the signed-in user, HTML and redirect
//! responses, and the wire format of OAuth errors.

use actix_web::cookie::{Cookie, SameSite, time::Duration};
use actix_web::http::StatusCode;
use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE,
};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::crypto::token;
use crate::error::AppError;
use crate::oauth::OAuthError;
use crate::state::AppState;

const CSRF_COOKIE: &str = "castellan_csrf";

/// Cookie names get the `__Host-` prefix on https (RFC 6265bis §4.1.3.2): Secure, no Domain,
/// Path=/ — so a sibling subdomain cannot plant or overwrite them.
fn cookie_name(state: &AppState, base: &str) -> String {
    if state.settings.is_https() {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

fn build_cookie(
    state: &AppState,
    base: &str,
    value: String,
    max_age: Option<i64>,
) -> Cookie<'static> {
    let mut c = Cookie::build(cookie_name(state, base), value)
        .path("/")
        .http_only(true)
        .secure(state.settings.is_https())
        .same_site(SameSite::Lax)
        .finish();
    if let Some(secs) = max_age {
        c.set_max_age(Duration::seconds(secs));
    }
    c
}

pub fn session_cookie(state: &AppState, value: String) -> Cookie<'static> {
    let ttl = state.settings.session.ttl_secs as i64;
    build_cookie(state, &state.settings.session.cookie_name, value, Some(ttl))
}

pub fn clear_session_cookie(state: &AppState) -> Cookie<'static> {
    build_cookie(
        state,
        &state.settings.session.cookie_name,
        String::new(),
        Some(0),
    )
}

/// The cookie that binds a pending sign-in (a right password waiting for its second factor)
/// to this browser.
const PENDING_COOKIE: &str = "castellan_pending";

pub fn pending_cookie(state: &AppState, value: String) -> Cookie<'static> {
    let ttl = crate::services::authn::PENDING_TTL_SECS;
    build_cookie(state, PENDING_COOKIE, value, Some(ttl))
}

pub fn clear_pending_cookie(state: &AppState) -> Cookie<'static> {
    build_cookie(state, PENDING_COOKIE, String::new(), Some(0))
}

const UPSTREAM_COOKIE: &str = "castellan_upstream";
const LINK_COOKIE: &str = "castellan_upstream_link";

/// The cookie that binds a sign-in through an upstream provider to this browser. SameSite=Lax:
/// the provider's redirect back to the callback is a top-level GET, which Lax lets through.
pub fn upstream_cookie(state: &AppState, value: String) -> Cookie<'static> {
    let ttl = crate::services::federation::FLOW_TTL_SECS;
    build_cookie(state, UPSTREAM_COOKIE, value, Some(ttl))
}

pub fn clear_upstream_cookie(state: &AppState) -> Cookie<'static> {
    build_cookie(state, UPSTREAM_COOKIE, String::new(), Some(0))
}

pub fn upstream_cookie_value(req: &HttpRequest, state: &AppState) -> Option<String> {
    req.cookie(&cookie_name(state, UPSTREAM_COOKIE))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// The cookie that finds an upstream identity waiting for its account to be proven.
pub fn link_cookie(state: &AppState, value: String) -> Cookie<'static> {
    let ttl = crate::services::federation::LINK_TTL_SECS;
    build_cookie(state, LINK_COOKIE, value, Some(ttl))
}

pub fn clear_link_cookie(state: &AppState) -> Cookie<'static> {
    build_cookie(state, LINK_COOKIE, String::new(), Some(0))
}

pub fn link_cookie_value(req: &HttpRequest, state: &AppState) -> Option<String> {
    req.cookie(&cookie_name(state, LINK_COOKIE))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

const CEREMONY_COOKIE: &str = "castellan_webauthn";

/// The cookie that binds a passkey ceremony to this browser, for as long as the ceremony lives.
pub fn ceremony_cookie(state: &AppState, value: String) -> Cookie<'static> {
    let ttl = crate::services::passkeys::CEREMONY_TTL_SECS;
    build_cookie(state, CEREMONY_COOKIE, value, Some(ttl))
}

pub fn clear_ceremony_cookie(state: &AppState) -> Cookie<'static> {
    build_cookie(state, CEREMONY_COOKIE, String::new(), Some(0))
}

pub fn ceremony_cookie_value(req: &HttpRequest, state: &AppState) -> Option<String> {
    req.cookie(&cookie_name(state, CEREMONY_COOKIE))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

pub fn pending_cookie_value(req: &HttpRequest, state: &AppState) -> Option<String> {
    req.cookie(&cookie_name(state, PENDING_COOKIE))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

pub fn session_cookie_value(req: &HttpRequest, state: &AppState) -> Option<String> {
    req.cookie(&cookie_name(state, &state.settings.session.cookie_name))
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// Double-submit CSRF protection: a random value in an HttpOnly, SameSite=Lax cookie and the
/// same value in a hidden form field. A cross-site form cannot read the cookie, so it cannot
/// send the matching field.
pub struct Csrf {
    pub token: String,
    /// Set when the browser had no token yet.
    pub new_cookie: Option<Cookie<'static>>,
}

pub fn csrf(req: &HttpRequest, state: &AppState) -> Csrf {
    match req.cookie(&cookie_name(state, CSRF_COOKIE)) {
        Some(c) if c.value().len() >= 32 => Csrf {
            token: c.value().to_owned(),
            new_cookie: None,
        },
        _ => {
            let token = token::generate(token::prefix::CSRF);
            Csrf {
                new_cookie: Some(build_cookie(state, CSRF_COOKIE, token.clone(), None)),
                token,
            }
        }
    }
}

/// Whether the submitted field matches the browser's CSRF cookie (constant time), for the
/// [`crate::http::extractors::CsrfForm`] extractor and the one handler that checks a form it
/// also renders without one (sign-out's confirmation).
pub fn csrf_matches(req: &HttpRequest, submitted: Option<&str>) -> bool {
    req.app_data::<actix_web::web::Data<AppState>>()
        .is_some_and(|state| csrf_ok(req, state, submitted))
}

/// Whether the submitted field matches the browser's CSRF cookie (constant time).
pub fn csrf_ok(req: &HttpRequest, state: &AppState, submitted: Option<&str>) -> bool {
    match (req.cookie(&cookie_name(state, CSRF_COOKIE)), submitted) {
        (Some(c), Some(s)) if c.value().len() >= 32 => {
            token::constant_time_eq(c.value().as_bytes(), s.as_bytes())
        }
        _ => false,
    }
}

/// Renders a page; pages are never cached (they carry CSRF tokens and personal data).
pub fn page(status: StatusCode, template: &impl Template, csrf: Option<&Csrf>) -> HttpResponse {
    match template.render() {
        Ok(body) => {
            let mut b = HttpResponse::build(status);
            b.insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
                .insert_header((CACHE_CONTROL, "no-store"));
            if let Some(c) = csrf.and_then(|c| c.new_cookie.clone()) {
                b.cookie(c);
            }
            b.body(body)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot render a page");
            AppError::html(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again.",
            )
        }
    }
}

/// 303 See Other to a local path or a client's redirect URI. A location that cannot be a
/// header value (a control character) is a bad request, never a 500: callers pass checked
/// values, so this is a second line.
pub fn see_other(location: &str) -> HttpResponse {
    match actix_web::http::header::HeaderValue::from_str(location) {
        Ok(v) => HttpResponse::SeeOther()
            .insert_header((LOCATION, v))
            .insert_header((CACHE_CONTROL, "no-store"))
            .finish(),
        Err(_) => bad_request_page("The address to continue to is not valid."),
    }
}

pub fn bad_request_page(message: &str) -> HttpResponse {
    AppError::html(
        StatusCode::BAD_REQUEST,
        "Something is wrong with this request",
        message,
    )
}

/// RFC 6749 §5.2: a JSON error body, `Cache-Control: no-store`, for `invalid_client` a 401
/// with `WWW-Authenticate`, and for `temporarily_unavailable` a 503 with `Retry-After`
/// (RFC 9110 §10.2.3).
pub fn oauth_error(e: &OAuthError) -> HttpResponse {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let mut b = HttpResponse::build(status);
    b.insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((PRAGMA, "no-cache"));
    if matches!(e, OAuthError::InvalidClient(_)) {
        b.insert_header((
            WWW_AUTHENTICATE,
            "Basic realm=\"castellan\", charset=\"UTF-8\"",
        ));
    }
    if matches!(e, OAuthError::TemporarilyUnavailable) {
        b.insert_header((RETRY_AFTER, crate::error::UNAVAILABLE_RETRY_AFTER_SECS));
    }
    b.json(serde_json::json!({"error": e.code(), "error_description": e.description()}))
}

/// A JSON success that must not be cached (tokens, introspection, userinfo).
pub fn no_store_json(value: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((PRAGMA, "no-cache"))
        .json(value)
}

/// The client address. `X-Forwarded-For` is believed only when the peer is one of the
/// configured `rate_limit.trusted_proxies`; then the right-most address that is not itself a
/// trusted proxy is the client.
pub fn client_addr(req: &HttpRequest, state: &AppState) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = |ip: &std::net::IpAddr| {
        state
            .settings
            .rate_limit
            .trusted_proxies
            .iter()
            .any(|p| p.parse().ok() == Some(*ip))
    };
    if !trusted(&peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    forwarded
        .rsplit(',')
        .filter_map(|p| p.trim().parse::<std::net::IpAddr>().ok())
        .find(|ip| !trusted(ip))
        .or(Some(peer))
}

/// [`client_addr`] for an extractor, which has the request only.
pub fn client_addr_of(req: &HttpRequest) -> Option<std::net::IpAddr> {
    req.app_data::<actix_web::web::Data<AppState>>()
        .and_then(|state| client_addr(req, state))
}

/// 429 with `Retry-After` (RFC 6585 §4).
pub fn too_many(wait_secs: u64) -> HttpResponse {
    let mut r = AppError::html(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "There were too many attempts from your network. Please wait a moment and try again.",
    );
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&wait_secs.to_string()) {
        r.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, v);
    }
    r
}

pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The token of an `Authorization: Bearer <token>` header (RFC 6750 §2.1; the scheme is
/// case-insensitive, RFC 9110 §11.1), trimmed and possibly empty. `None` when there is no such
/// header or it uses another scheme.
pub fn bearer_header(req: &HttpRequest) -> Option<&str> {
    let h = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The page for an account use case that failed: 503 "busy" with `Retry-After` when the
/// password workers' queue is full, otherwise the logged 503 "unavailable" page.
pub fn accounts_failure(e: crate::services::accounts::AccountsError, what: &str) -> HttpResponse {
    use actix_web::ResponseError;
    match e {
        crate::services::accounts::AccountsError::Busy => AppError::Busy.error_response(),
        crate::services::accounts::AccountsError::RateLimited(wait) => too_many(wait),
        e => {
            tracing::error!(error = %e, "{what}");
            AppError::Unavailable.error_response()
        }
    }
}

/// `?return_to=…` for a page link that carries where the user was going, or nothing.
pub fn return_to_query(return_to: &str) -> String {
    if return_to.is_empty() {
        String::new()
    } else {
        format!(
            "?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", return_to)
                .finish()
        )
    }
}

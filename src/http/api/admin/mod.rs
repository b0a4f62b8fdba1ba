//! The admin REST API (`/admin/api/v1`): users, clients, roles, signing keys, the audit log
//! and upstream identity providers, over the use cases of [`crate::services::admin`], one file per resource. Its OpenAPI
//! 3.1 document is generated from the annotations ([`ApiDoc`]) and served at
//! `/admin/api/openapi.json`.
//!
//! Authentication (RFC 6750 §2.1) is the [`AdminBearer`] extractor: an access token from this
//! server, granted the `admin` scope by a client that may still hold it, for a user who holds
//! the `admin` role *now* or for that client itself (the core decides:
//! `services::admin::Admin::authorize`). No token, or one that does not verify: 401. A valid
//! token without that right: 403 (`insufficient_scope`, RFC 6750 §3.1).
//!
//! Errors are RFC 9457 problem details (`application/problem+json`, [`ApiProblem`]); a 400
//! lists each field's problem under `errors`.

pub mod audit;
pub mod clients;
pub mod keys;
pub mod roles;
pub mod upstreams;
pub mod users;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::domain::Invalid;
pub use crate::http::extractors::AdminBearer;
use crate::services::admin::AdminError;

// --- problem details (RFC 9457) -----------------------------------------------------------

/// One field's problem in a 400 answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// RFC 9457 §3: a problem details object.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status and title say what happened (RFC 9457 §4.2.1).
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
}

/// A problem details response.
pub fn problem(
    status: StatusCode,
    detail: impl Into<String>,
    errors: Vec<FieldProblem>,
) -> HttpResponse {
    let body = Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: detail.into(),
        errors,
    };
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(serde_json::to_string(&body).unwrap_or_default())
}

/// The admin API's one error type: every refusal as problem details (and, for 401/403, the
/// RFC 6750 §3 challenge). An unexpected failure is logged once, with its whole chain, and
/// answered without detail.
#[derive(Debug)]
pub struct ApiProblem {
    status: StatusCode,
    detail: String,
    errors: Vec<FieldProblem>,
    challenge: Option<&'static str>,
}

impl std::fmt::Display for ApiProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.detail)
    }
}

impl ApiProblem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            errors: Vec::new(),
            challenge: None,
        }
    }

    /// RFC 6750 §3: 401 with a `Bearer` challenge (`invalid_token` when one was presented).
    pub fn unauthorized(presented: bool) -> Self {
        let (challenge, detail) = if presented {
            (
                "Bearer realm=\"castellan-admin\", error=\"invalid_token\"",
                "the access token is invalid, expired or revoked",
            )
        } else {
            (
                "Bearer realm=\"castellan-admin\"",
                "an access token with the admin scope is required",
            )
        };
        Self {
            challenge: Some(challenge),
            ..Self::new(StatusCode::UNAUTHORIZED, detail)
        }
    }

    /// RFC 6750 §3.1: the token is valid but does not carry the right.
    pub fn forbidden() -> Self {
        Self {
            challenge: Some(
                "Bearer realm=\"castellan-admin\", error=\"insufficient_scope\", scope=\"admin\"",
            ),
            ..Self::new(
                StatusCode::FORBIDDEN,
                "this token does not grant administration",
            )
        }
    }

    /// 503: the request could not be checked (the database is unavailable); every 503 carries
    /// `Retry-After`.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the request could not be checked",
        )
    }
}

impl From<AdminError> for ApiProblem {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(v) => Self {
                errors: field_problems(v),
                ..Self::new(StatusCode::BAD_REQUEST, "the request has invalid fields")
            },
            AdminError::NotFound(what) => {
                Self::new(StatusCode::NOT_FOUND, format!("no such {what}"))
            }
            AdminError::Conflict(msg) | AdminError::Refused(msg) => {
                Self::new(StatusCode::CONFLICT, msg)
            }
            AdminError::Store(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, "admin API: the database is unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable; retry later",
                )
            }
            e @ (AdminError::Store(_) | AdminError::Unexpected(_)) => {
                tracing::error!(
                    error = format!("{:#}", anyhow::Error::from(e)),
                    "admin API: the request failed"
                );
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the request could not be completed",
                )
            }
        }
    }
}

impl ResponseError for ApiProblem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let errors = self
            .errors
            .iter()
            .map(|e| FieldProblem {
                field: e.field.clone(),
                message: e.message.clone(),
            })
            .collect();
        let mut res = problem(self.status, self.detail.clone(), errors);
        if let Some(c) = self.challenge {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // RFC 9110 §10.2.3.
            crate::error::with_retry_after(&mut res, crate::error::UNAVAILABLE_RETRY_AFTER_SECS);
        }
        res
    }
}

fn field_problems(v: Vec<Invalid>) -> Vec<FieldProblem> {
    v.into_iter()
        .map(|i| FieldProblem {
            field: i.field.to_owned(),
            message: i.message,
        })
        .collect()
}

/// Parses a JSON body; anything else is a 400 (or 415) problem naming what is wrong.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
) -> Result<T, ApiProblem> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v.split(';').next().unwrap_or_default().trim();
            mime.eq_ignore_ascii_case("application/json")
        })
        .unwrap_or(false);
    if !is_json {
        return Err(ApiProblem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as application/json",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiProblem::new(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid: {e}"),
        )
    })
}

/// A JSON answer that is never cached.
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(value)
}

/// Query-string problems (a non-number `offset`, say) as problem details, not actix's text.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    let res = problem(
        StatusCode::BAD_REQUEST,
        format!("the query string is not valid: {err}"),
        vec![],
    );
    actix_web::error::InternalError::from_response(err, res).into()
}

// --- the OpenAPI document ------------------------------------------------------------------

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from this server with the `admin` scope (RFC 6750)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI 3.1 description of this API, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "Castellan admin API", version = "1",
        description = "Users, clients, roles, signing keys, the audit log and upstream identity providers. Errors are RFC 9457 problem details."),
    paths(users::list_users, users::create_user, users::get_user, users::update_user,
        users::delete_user, users::send_password_reset, users::end_sessions, users::reset_mfa,
        clients::list_clients, clients::create_client, clients::get_client, clients::update_client,
        clients::delete_client, clients::rotate_client_secret,
        roles::list_roles, roles::create_role, roles::delete_role,
        keys::list_keys, keys::rotate_key, audit::audit,
        upstreams::list_upstreams, upstreams::create_upstream, upstreams::get_upstream,
        upstreams::delete_upstream),
    components(schemas(Problem, FieldProblem)),
    modifiers(&BearerAuth),
    tags((name = "users"), (name = "clients"), (name = "roles"), (name = "keys"), (name = "audit"),
        (name = "upstreams"))
)]
pub struct ApiDoc;

pub async fn openapi() -> HttpResponse {
    match ApiDoc::openapi().to_json() {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/json")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise the OpenAPI document");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the document could not be built",
                vec![],
            )
        }
    }
}

/// The admin API's routes (mounted by the route table).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(crate::paths::OPENAPI, web::get().to(openapi))
        .service(
            web::scope(crate::paths::ADMIN_API)
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .configure(users::routes)
                .configure(clients::routes)
                .configure(roles::routes)
                .configure(keys::routes)
                .configure(audit::routes)
                .configure(upstreams::routes)
                .default_service(web::to(|| async {
                    problem(StatusCode::NOT_FOUND, "no such resource or method", vec![])
                })),
        );
}

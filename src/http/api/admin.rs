//! The admin REST API (`/admin/api/v1`): users, clients, roles, signing keys and the audit
//! log, over the use cases of [`crate::services::admin`]. Its OpenAPI 3.1 document is generated
//! from the annotations here ([`ApiDoc`]) and served at `/admin/api/openapi.json`.
//!
//! Authentication (RFC 6750 §2.1): an access token from this server in the `Authorization`
//! header, granted the `admin` scope — to a user who holds the `admin` role *now*, or to a
//! client (client credentials) that is still allowed `admin`. No token, or one that does not
//! verify: 401. A valid token without that right: 403 (`insufficient_scope`, RFC 6750 §3.1).
//!
//! Errors are RFC 9457 problem details (`application/problem+json`); a 400 lists each field's
//! problem under `errors`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::domain::{Client, ClientSpec, Invalid, RoleInfo, User};
use crate::services::admin::{self, Actor, AdminError, NewUserSpec, UserPatch};
use crate::services::tokens::{self, ADMIN_SCOPE};
use crate::state::AppState;
use crate::store::accounts::{AuditEvent, AuditQuery};
use crate::store::keys::KeyRecord;

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

fn field_problems(v: Vec<Invalid>) -> Vec<FieldProblem> {
    v.into_iter()
        .map(|i| FieldProblem {
            field: i.field.to_owned(),
            message: i.message,
        })
        .collect()
}

fn admin_error(e: AdminError) -> HttpResponse {
    match e {
        AdminError::Invalid(v) => problem(
            StatusCode::BAD_REQUEST,
            "the request has invalid fields",
            field_problems(v),
        ),
        AdminError::NotFound(what) => {
            problem(StatusCode::NOT_FOUND, format!("no such {what}"), vec![])
        }
        AdminError::Conflict(msg) => problem(StatusCode::CONFLICT, msg, vec![]),
        AdminError::Store(e) => {
            tracing::error!(error = %e, "admin API: store error");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request could not be completed",
                vec![],
            )
        }
        AdminError::Unexpected(e) => {
            tracing::error!(error = %e, "admin API: unexpected error");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request could not be completed",
                vec![],
            )
        }
    }
}

fn with_challenge(mut res: HttpResponse, challenge: &str) -> HttpResponse {
    if let Ok(v) = HeaderValue::from_str(challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

/// RFC 6750 §3: 401 with a `Bearer` challenge (`invalid_token` when one was presented).
fn unauthorized(presented: bool) -> HttpResponse {
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
    with_challenge(problem(StatusCode::UNAUTHORIZED, detail, vec![]), challenge)
}

/// RFC 6750 §3.1: the token is valid but does not carry the right.
fn forbidden() -> HttpResponse {
    with_challenge(
        problem(
            StatusCode::FORBIDDEN,
            "this token does not grant administration",
            vec![],
        ),
        "Bearer realm=\"castellan-admin\", error=\"insufficient_scope\", scope=\"admin\"",
    )
}

/// Who is calling, from the bearer token; the error is the response to send.
async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Actor, HttpResponse> {
    if !req.headers().contains_key(header::AUTHORIZATION) {
        return Err(unauthorized(false));
    }
    // Another scheme, or an empty token, is a credential that does not verify.
    let token = crate::http::support::bearer_header(req)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized(true))?;
    let now = state.clock.now();
    let (claims, user) = match tokens::verify_access_token_with_user(state, token, now).await {
        Ok(found) => found,
        Err(tokens::AccessTokenError::Store(e)) => {
            tracing::error!(error = %e, "admin API: cannot check the token");
            return Err(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the request could not be checked",
                vec![],
            ));
        }
        Err(_) => return Err(unauthorized(true)),
    };
    if !claims.has_scope(ADMIN_SCOPE) {
        return Err(forbidden());
    }
    let store_error = |e: crate::store::StoreError| {
        tracing::error!(error = %e, "admin API: cannot load the caller");
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the request could not be checked",
            vec![],
        )
    };
    // The client the token was issued to must still be allowed `admin`, whoever holds the
    // token: taking the scope from a client takes effect at once for the tokens it holds.
    let client_may = state
        .store
        .client(&claims.client_id)
        .await
        .map_err(store_error)?
        .is_some_and(|c| c.scopes.contains(ADMIN_SCOPE));
    if !client_may {
        return Err(forbidden());
    }
    // A user's token comes with its user, who exists and is enabled (or the token has ended).
    match user {
        // The role is checked on every call: taking `admin` away takes effect at once.
        Some(u) if u.has_role(crate::domain::Role::ADMIN) => {
            Ok(Actor::User(u.id.as_str().to_owned()))
        }
        Some(_) => Err(forbidden()),
        None => Ok(Actor::Client(claims.client_id.clone())),
    }
}

/// Parses a JSON body; anything else is a 400 problem naming what is wrong.
fn json_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    body: &[u8],
) -> Result<T, Box<HttpResponse>> {
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
        return Err(Box::new(problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as application/json",
            vec![],
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        Box::new(problem(
            StatusCode::BAD_REQUEST,
            format!("the body is not valid: {e}"),
            vec![],
        ))
    })
}

fn json(status: StatusCode, value: &impl Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(value)
}

/// Runs `f` for an authenticated administrator.
macro_rules! admin_only {
    ($req:expr, $state:expr) => {
        match authenticate(&$req, &$state).await {
            Ok(actor) => actor,
            Err(res) => return res,
        }
    };
}

macro_rules! try_admin {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return admin_error(e),
        }
    };
}

macro_rules! try_body {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(res) => return *res,
        }
    };
}

// --- users ---------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    pub id: String,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&User> for UserOut {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.as_str().to_owned(),
            email: u.email.clone(),
            email_verified: u.email_verified,
            name: u.name.clone(),
            roles: u.roles.clone(),
            disabled: u.disabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserOut>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// Part of the email address, case-insensitive.
    pub search: Option<String>,
    #[param(minimum = 0)]
    pub offset: Option<u64>,
    /// 1 to 200; default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserIn {
    pub email: String,
    pub name: Option<String>,
    /// Unset: the user sets one through a password-reset link.
    pub password: Option<String>,
    /// Role names from the catalogue; every user also has `user`.
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatchIn {
    /// An empty string clears the name.
    pub name: Option<String>,
    /// The new address counts as verified (an administrator set it).
    pub email: Option<String>,
    /// Replaces the roles; `user` is always kept.
    pub roles: Option<Vec<String>>,
    /// Disabling ends the user's sessions and refresh tokens.
    pub disabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsEnded {
    pub ended: u64,
}

#[utoipa::path(get, path = "/admin/api/v1/users", tag = "users", params(UserListQuery),
    responses((status = 200, body = UserPage), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_users(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<UserListQuery>,
) -> HttpResponse {
    let _actor = admin_only!(req, state);
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let (users, total) =
        try_admin!(admin::list_users(&state, q.search.as_deref(), offset, limit).await);
    json(
        StatusCode::OK,
        &UserPage {
            items: users.iter().map(UserOut::from).collect(),
            total,
            offset,
            limit,
        },
    )
}

#[utoipa::path(post, path = "/admin/api/v1/users", tag = "users", request_body = NewUserIn,
    responses((status = 201, body = UserOut), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let actor = admin_only!(req, state);
    let input: NewUserIn = try_body!(json_body(&req, &body));
    let spec = NewUserSpec {
        email: input.email,
        name: input.name,
        password: input.password,
        roles: input.roles,
    };
    let user = try_admin!(admin::create_user(&state, &actor, spec, state.clock.now()).await);
    json(StatusCode::CREATED, &UserOut::from(&user))
}

#[utoipa::path(get, path = "/admin/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserOut), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let _actor = admin_only!(req, state);
    let user = try_admin!(admin::user(&state, &id).await);
    json(StatusCode::OK, &UserOut::from(&user))
}

#[utoipa::path(patch, path = "/admin/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    request_body = UserPatchIn,
    responses((status = 200, body = UserOut), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let actor = admin_only!(req, state);
    let input: UserPatchIn = try_body!(json_body(&req, &body));
    let patch = UserPatch {
        name: input.name.map(|n| Some(n).filter(|n| !n.trim().is_empty())),
        email: input.email,
        roles: input.roles,
        disabled: input.disabled,
    };
    let user = try_admin!(admin::update_user(&state, &actor, &id, patch, state.clock.now()).await);
    json(StatusCode::OK, &UserOut::from(&user))
}

#[utoipa::path(delete, path = "/admin/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let actor = admin_only!(req, state);
    try_admin!(admin::delete_user(&state, &actor, &id, state.clock.now()).await);
    HttpResponse::NoContent().finish()
}

#[utoipa::path(post, path = "/admin/api/v1/users/{id}/password-reset", tag = "users",
    params(("id" = String, Path)),
    responses((status = 202, description = "the reset mail is on its way"), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn send_password_reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let actor = admin_only!(req, state);
    try_admin!(admin::send_password_reset(&state, &actor, &id, state.clock.now()).await);
    HttpResponse::Accepted().finish()
}

#[utoipa::path(delete, path = "/admin/api/v1/users/{id}/sessions", tag = "users",
    params(("id" = String, Path)),
    responses((status = 200, body = SessionsEnded), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn end_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let actor = admin_only!(req, state);
    let ended = try_admin!(admin::end_sessions(&state, &actor, &id, state.clock.now()).await);
    json(StatusCode::OK, &SessionsEnded { ended })
}

// --- clients -------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientOut {
    pub client_id: String,
    pub name: String,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scope: String,
    /// RFC 7591 §2 name; a confidential client without a fixed method accepts basic and post.
    pub token_endpoint_auth_method: String,
    pub skip_consent: bool,
    pub introspect_any: bool,
    pub created_at: i64,
    /// Only in the answer that created the client or rotated its secret: shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl ClientOut {
    fn new(c: &Client, secret: Option<String>) -> Self {
        Self {
            client_id: c.id.as_str().to_owned(),
            name: c.name.clone(),
            public: c.public,
            redirect_uris: c
                .redirect_uris
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            post_logout_redirect_uris: c
                .post_logout_redirect_uris
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            scope: c.scopes.to_string(),
            token_endpoint_auth_method: c.auth_method.metadata_name().to_owned(),
            skip_consent: c.skip_consent,
            introspect_any: c.introspect_any,
            created_at: c.created_at,
            client_secret: secret,
        }
    }
}

/// A client's metadata, as for `castellan client create`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientIn {
    pub name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Default: authorization_code and refresh_token.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Default: "openid profile email offline_access". Only here (never through dynamic
    /// registration) can a client be allowed `admin`.
    pub scope: Option<String>,
    #[serde(default)]
    pub public: bool,
    /// client_secret_basic, client_secret_post or none.
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub skip_consent: bool,
    #[serde(default)]
    pub introspect_any: bool,
}

impl From<ClientIn> for ClientSpec {
    fn from(c: ClientIn) -> Self {
        ClientSpec {
            name: c.name,
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            grant_types: c.grant_types,
            scope: c
                .scope
                .unwrap_or_else(|| "openid profile email offline_access".to_owned()),
            public: c.public,
            token_endpoint_auth_method: c.token_endpoint_auth_method,
            skip_consent: c.skip_consent,
            introspect_any: c.introspect_any,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientSecret {
    pub client_id: String,
    /// Shown once: store it now.
    pub client_secret: String,
}

#[utoipa::path(get, path = "/admin/api/v1/clients", tag = "clients",
    responses((status = 200, body = Vec<ClientOut>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_clients(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let _actor = admin_only!(req, state);
    let clients = try_admin!(admin::list_clients(&state).await);
    let out: Vec<ClientOut> = clients.iter().map(|c| ClientOut::new(c, None)).collect();
    json(StatusCode::OK, &out)
}

#[utoipa::path(post, path = "/admin/api/v1/clients", tag = "clients", request_body = ClientIn,
    responses((status = 201, body = ClientOut), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let actor = admin_only!(req, state);
    let input: ClientIn = try_body!(json_body(&req, &body));
    let spec = ClientSpec::from(input);
    let (client, secret) =
        try_admin!(admin::create_client(&state, &actor, &spec, state.clock.now()).await);
    json(StatusCode::CREATED, &ClientOut::new(&client, secret))
}

#[utoipa::path(get, path = "/admin/api/v1/clients/{id}", tag = "clients", params(("id" = String, Path)),
    responses((status = 200, body = ClientOut), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let _actor = admin_only!(req, state);
    let client = try_admin!(admin::client(&state, &id).await);
    json(StatusCode::OK, &ClientOut::new(&client, None))
}

#[utoipa::path(put, path = "/admin/api/v1/clients/{id}", tag = "clients", params(("id" = String, Path)),
    request_body = ClientIn,
    responses((status = 200, body = ClientOut), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let actor = admin_only!(req, state);
    let input: ClientIn = try_body!(json_body(&req, &body));
    let spec = ClientSpec::from(input);
    let client =
        try_admin!(admin::update_client(&state, &actor, &id, &spec, state.clock.now()).await);
    json(StatusCode::OK, &ClientOut::new(&client, None))
}

#[utoipa::path(delete, path = "/admin/api/v1/clients/{id}", tag = "clients", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let actor = admin_only!(req, state);
    try_admin!(admin::delete_client(&state, &actor, &id, state.clock.now()).await);
    HttpResponse::NoContent().finish()
}

#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/secret", tag = "clients",
    params(("id" = String, Path)),
    responses((status = 200, body = ClientSecret), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn rotate_client_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let actor = admin_only!(req, state);
    let secret =
        try_admin!(admin::rotate_client_secret(&state, &actor, &id, state.clock.now()).await);
    json(
        StatusCode::OK,
        &ClientSecret {
            client_id: id.into_inner(),
            client_secret: secret,
        },
    )
}

// --- roles ---------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleOut {
    pub name: String,
    pub description: String,
    pub builtin: bool,
    pub created_at: i64,
}

impl From<&RoleInfo> for RoleOut {
    fn from(r: &RoleInfo) -> Self {
        Self {
            name: r.name.clone(),
            description: r.description.clone(),
            builtin: r.builtin,
            created_at: r.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleIn {
    /// Lower-case letters, digits, `-` and `_`.
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[utoipa::path(get, path = "/admin/api/v1/roles", tag = "roles",
    responses((status = 200, body = Vec<RoleOut>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_roles(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let _actor = admin_only!(req, state);
    let roles = try_admin!(admin::list_roles(&state).await);
    let out: Vec<RoleOut> = roles.iter().map(RoleOut::from).collect();
    json(StatusCode::OK, &out)
}

#[utoipa::path(post, path = "/admin/api/v1/roles", tag = "roles", request_body = RoleIn,
    responses((status = 201, body = RoleOut), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let actor = admin_only!(req, state);
    let input: RoleIn = try_body!(json_body(&req, &body));
    let role = try_admin!(
        admin::create_role(
            &state,
            &actor,
            &input.name,
            &input.description,
            state.clock.now()
        )
        .await
    );
    json(StatusCode::CREATED, &RoleOut::from(&role))
}

#[utoipa::path(delete, path = "/admin/api/v1/roles/{name}", tag = "roles", params(("name" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "built in, or held by users")),
    security(("bearer" = [])))]
pub async fn delete_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> HttpResponse {
    let actor = admin_only!(req, state);
    try_admin!(admin::delete_role(&state, &actor, &name, state.clock.now()).await);
    HttpResponse::NoContent().finish()
}

// --- keys ----------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyOut {
    pub kid: String,
    pub alg: String,
    /// `active` signs; `retired` keys stay published until `retire_at`.
    pub state: String,
    pub created_at: i64,
    pub retire_at: Option<i64>,
}

impl From<&KeyRecord> for KeyOut {
    fn from(k: &KeyRecord) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            state: k.state.clone(),
            created_at: k.created_at,
            retire_at: k.retire_at,
        }
    }
}

#[utoipa::path(get, path = "/admin/api/v1/keys", tag = "keys",
    responses((status = 200, body = Vec<KeyOut>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_keys(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let _actor = admin_only!(req, state);
    let keys = try_admin!(admin::list_keys(&state).await);
    let out: Vec<KeyOut> = keys.iter().map(KeyOut::from).collect();
    json(StatusCode::OK, &out)
}

#[utoipa::path(post, path = "/admin/api/v1/keys/rotate", tag = "keys",
    responses((status = 201, body = KeyOut), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn rotate_key(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let actor = admin_only!(req, state);
    let key = try_admin!(admin::rotate_key(&state, &actor, state.clock.now()).await);
    json(StatusCode::CREATED, &KeyOut::from(&key))
}

// --- audit ---------------------------------------------------------------------------------

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventOut {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub kind: String,
    /// `cli`, `user:<id>` or `client:<id>` for administrative changes.
    pub actor: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

impl From<AuditEvent> for AuditEventOut {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            at: e.at,
            kind: e.kind,
            actor: e.actor,
            user_id: e.user_id,
            client_id: e.client_id,
            ip: e.ip,
            detail: e.detail,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub items: Vec<AuditEventOut>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditListQuery {
    /// Unix seconds, inclusive.
    pub from: Option<i64>,
    /// Unix seconds, exclusive.
    pub to: Option<i64>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub kind: Option<String>,
    /// Only events older than this event id (from `next_before`).
    pub before: Option<i64>,
    /// 1 to 500; default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
}

#[utoipa::path(get, path = "/admin/api/v1/audit", tag = "audit", params(AuditListQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<AuditListQuery>,
) -> HttpResponse {
    let _actor = admin_only!(req, state);
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let events = try_admin!(
        admin::audit_events(
            &state,
            AuditQuery {
                from: q.from,
                to: q.to,
                user_id: q.user_id,
                client_id: q.client_id,
                kind: q.kind,
                before: q.before,
                limit,
            },
        )
        .await
    );
    let next_before = (events.len() as u64 == limit)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    json(
        StatusCode::OK,
        &AuditPage {
            items: events.into_iter().map(AuditEventOut::from).collect(),
            next_before,
        },
    )
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

/// The OpenAPI 3.1 description of this API, generated from the handlers above.
#[derive(OpenApi)]
#[openapi(
    info(title = "Castellan admin API", version = "1",
        description = "Users, clients, roles, signing keys and the audit log. Errors are RFC 9457 problem details."),
    paths(list_users, create_user, get_user, update_user, delete_user, send_password_reset, end_sessions,
        list_clients, create_client, get_client, update_client, delete_client, rotate_client_secret,
        list_roles, create_role, delete_role, list_keys, rotate_key, audit),
    components(schemas(Problem, FieldProblem)),
    modifiers(&BearerAuth),
    tags((name = "users"), (name = "clients"), (name = "roles"), (name = "keys"), (name = "audit"))
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
                .route("/users", web::get().to(list_users))
                .route("/users", web::post().to(create_user))
                .route("/users/{id}", web::get().to(get_user))
                .route("/users/{id}", web::patch().to(update_user))
                .route("/users/{id}", web::delete().to(delete_user))
                .route(
                    "/users/{id}/password-reset",
                    web::post().to(send_password_reset),
                )
                .route("/users/{id}/sessions", web::delete().to(end_sessions))
                .route("/clients", web::get().to(list_clients))
                .route("/clients", web::post().to(create_client))
                .route("/clients/{id}", web::get().to(get_client))
                .route("/clients/{id}", web::put().to(update_client))
                .route("/clients/{id}", web::delete().to(delete_client))
                .route("/clients/{id}/secret", web::post().to(rotate_client_secret))
                .route("/roles", web::get().to(list_roles))
                .route("/roles", web::post().to(create_role))
                .route("/roles/{name}", web::delete().to(delete_role))
                .route("/keys", web::get().to(list_keys))
                .route("/keys/rotate", web::post().to(rotate_key))
                .route("/audit", web::get().to(audit))
                .default_service(web::to(|| async {
                    problem(StatusCode::NOT_FOUND, "no such resource or method", vec![])
                })),
        );
}

//! `/admin/api/v1/users`: list, create, read, update, delete; a reset mail; ending sessions; a
//! reset of the user's second factors.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{AdminBearer, ApiProblem, Problem, json, json_body};
use crate::domain::User;
use crate::http::extractors::Then;
use crate::services::admin::{NewUserSpec, UserPatch};
use crate::state::AppState;

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
            created_at: u.created_at.secs(),
            updated_at: u.updated_at.secs(),
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

/// What a reset of a user's second factors removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaResetOut {
    pub user_id: String,
    /// Confirmed second factors removed (0: the user had none; nothing was mailed).
    pub factors_removed: u64,
    pub recovery_codes_removed: u64,
    /// Sign-ins that were waiting for a second factor, ended.
    pub pending_sign_ins_ended: u64,
}

#[utoipa::path(get, path = "/admin/api/v1/users", tag = "users", params(UserListQuery),
    responses((status = 200, body = UserPage), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_users(
    Then(AdminBearer(actor), q): Then<AdminBearer, web::Query<UserListQuery>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiProblem> {
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let (users, total) = state
        .core
        .admin
        .list_users(&actor, q.search.as_deref(), offset, limit)
        .await?;
    Ok(json(
        StatusCode::OK,
        &UserPage {
            items: users.iter().map(UserOut::from).collect(),
            total,
            offset,
            limit,
        },
    ))
}

#[utoipa::path(post, path = "/admin/api/v1/users", tag = "users", request_body = NewUserIn,
    responses((status = 201, body = UserOut), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_user(
    req: HttpRequest,
    Then(AdminBearer(actor), body): Then<AdminBearer, web::Bytes>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiProblem> {
    let input: NewUserIn = json_body(&req, &body)?;
    let spec = NewUserSpec {
        email: input.email,
        name: input.name,
        password: input.password,
        roles: input.roles,
    };
    let user = state.core.admin.create_user(&actor, spec).await?;
    Ok(json(StatusCode::CREATED, &UserOut::from(&user)))
}

#[utoipa::path(get, path = "/admin/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = UserOut), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_user(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiProblem> {
    let user = state.core.admin.user(&actor, &id).await?;
    Ok(json(StatusCode::OK, &UserOut::from(&user)))
}

#[utoipa::path(patch, path = "/admin/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    request_body = UserPatchIn,
    responses((status = 200, body = UserOut), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn update_user(
    req: HttpRequest,
    Then(AdminBearer(actor), body): Then<AdminBearer, web::Bytes>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiProblem> {
    let input: UserPatchIn = json_body(&req, &body)?;
    let patch = UserPatch {
        name: input.name.map(|n| Some(n).filter(|n| !n.trim().is_empty())),
        email: input.email,
        roles: input.roles,
        disabled: input.disabled,
    };
    let user = state.core.admin.update_user(&actor, &id, patch).await?;
    Ok(json(StatusCode::OK, &UserOut::from(&user)))
}

#[utoipa::path(delete, path = "/admin/api/v1/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete_user(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiProblem> {
    state.core.admin.delete_user(&actor, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/admin/api/v1/users/{id}/password-reset", tag = "users",
    params(("id" = String, Path)),
    responses((status = 202, description = "the reset mail is on its way"), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn send_password_reset(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiProblem> {
    state.core.admin.send_password_reset(&actor, &id).await?;
    Ok(HttpResponse::Accepted().finish())
}

#[utoipa::path(delete, path = "/admin/api/v1/users/{id}/sessions", tag = "users",
    params(("id" = String, Path)),
    responses((status = 200, body = SessionsEnded), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn end_sessions(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiProblem> {
    let ended = state.core.admin.end_sessions(&actor, &id).await?;
    Ok(json(StatusCode::OK, &SessionsEnded { ended }))
}

/// Resets the user's second factors.
///
/// Removes the user's second factors (TOTP and recovery codes) and any sign-in waiting for
/// one, in one transaction; sessions, tokens and the password stay. Audited (`mfa_reset`, with
/// the actor); the user is mailed when a factor was removed.
#[utoipa::path(post, path = "/admin/api/v1/users/{id}/mfa-reset", tag = "users",
    params(("id" = String, Path)),
    responses((status = 200, body = MfaResetOut), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn reset_mfa(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiProblem> {
    let reset = state.core.admin.reset_mfa(&actor, &id).await?;
    Ok(json(
        StatusCode::OK,
        &MfaResetOut {
            user_id: id.into_inner(),
            factors_removed: reset.factors,
            recovery_codes_removed: reset.recovery_codes,
            pending_sign_ins_ended: reset.pending_sign_ins,
        },
    ))
}

/// This resource's routes, under `/admin/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(list_users))
        .route("/users", web::post().to(create_user))
        .route("/users/{id}", web::get().to(get_user))
        .route("/users/{id}", web::patch().to(update_user))
        .route("/users/{id}", web::delete().to(delete_user))
        .route(
            "/users/{id}/password-reset",
            web::post().to(send_password_reset),
        )
        .route("/users/{id}/sessions", web::delete().to(end_sessions))
        .route("/users/{id}/mfa-reset", web::post().to(reset_mfa));
}

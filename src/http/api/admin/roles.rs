//! `/admin/api/v1/roles`: the role catalogue.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AdminBearer, ApiProblem, Problem, json, json_body};
use crate::domain::RoleInfo;
use crate::http::extractors::Then;
use crate::state::AppState;

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
            created_at: r.created_at.secs(),
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
pub async fn list_roles(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiProblem> {
    let roles = state.core.admin.list_roles(&actor).await?;
    let out: Vec<RoleOut> = roles.iter().map(RoleOut::from).collect();
    Ok(json(StatusCode::OK, &out))
}

#[utoipa::path(post, path = "/admin/api/v1/roles", tag = "roles", request_body = RoleIn,
    responses((status = 201, body = RoleOut), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn create_role(
    req: HttpRequest,
    Then(AdminBearer(actor), body): Then<AdminBearer, web::Bytes>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiProblem> {
    let input: RoleIn = json_body(&req, &body)?;
    let role = state
        .core
        .admin
        .create_role(&actor, &input.name, &input.description)
        .await?;
    Ok(json(StatusCode::CREATED, &RoleOut::from(&role)))
}

#[utoipa::path(delete, path = "/admin/api/v1/roles/{name}", tag = "roles", params(("name" = String, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "built in, or held by users")),
    security(("bearer" = [])))]
pub async fn delete_role(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiProblem> {
    state.core.admin.delete_role(&actor, &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// This resource's routes, under `/admin/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/roles", web::get().to(list_roles))
        .route("/roles", web::post().to(create_role))
        .route("/roles/{name}", web::delete().to(delete_role));
}

//! `/admin/api/v1/keys`: the signing keys; rotating to a new one.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::{AdminBearer, ApiProblem, Problem, json};
use crate::domain::KeyRecord;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyOut {
    pub kid: String,
    pub alg: String,
    /// `next` is published and signs from `activate_at`; `active` signs; `retiring` stays
    /// published until `retire_at`; `retired` is no longer published.
    pub state: String,
    pub created_at: i64,
    /// When it signs (or signed) from.
    pub activate_at: i64,
    pub retire_at: Option<i64>,
}

impl From<&KeyRecord> for KeyOut {
    fn from(k: &KeyRecord) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            state: k.state.clone(),
            created_at: k.created_at.secs(),
            activate_at: k.activate_at.secs(),
            retire_at: k.retire_at.map(|t| t.secs()),
        }
    }
}

#[utoipa::path(get, path = "/admin/api/v1/keys", tag = "keys",
    responses((status = 200, body = Vec<KeyOut>), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_keys(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiProblem> {
    let keys = state.core.admin.list_keys(&actor).await?;
    let out: Vec<KeyOut> = keys.iter().map(KeyOut::from).collect();
    Ok(json(StatusCode::OK, &out))
}

/// Makes a new key: published at once, signing from `keys.publish_ahead_secs` later (the
/// answer's `activate_at`); the key it replaces stays published until its tokens expire.
#[utoipa::path(post, path = "/admin/api/v1/keys/rotate", tag = "keys",
    responses((status = 201, body = KeyOut), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn rotate_key(
    AdminBearer(actor): AdminBearer,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiProblem> {
    let key = state.core.admin.rotate_key(&actor, false).await?;
    Ok(json(StatusCode::CREATED, &KeyOut::from(&key)))
}

/// This resource's routes, under `/admin/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/keys", web::get().to(list_keys))
        .route("/keys/rotate", web::post().to(rotate_key));
}

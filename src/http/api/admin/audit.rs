//! `/admin/api/v1/audit`: the audit log, newest first, filtered and paged.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{AdminBearer, ApiProblem, Problem, json};
use crate::domain::UnixTime;
use crate::domain::{AuditEvent, AuditQuery};
use crate::http::extractors::Then;
use crate::state::AppState;

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
            at: e.at.secs(),
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
    Then(AdminBearer(actor), q): Then<AdminBearer, web::Query<AuditListQuery>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiProblem> {
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let events = state
        .core
        .admin
        .audit_events(
            &actor,
            AuditQuery {
                from: q.from.map(UnixTime::from_secs),
                to: q.to.map(UnixTime::from_secs),
                user_id: q.user_id,
                client_id: q.client_id,
                kind: q.kind,
                before: q.before,
                limit,
            },
        )
        .await?;
    let next_before = (events.len() as u64 == limit)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(json(
        StatusCode::OK,
        &AuditPage {
            items: events.into_iter().map(AuditEventOut::from).collect(),
            next_before,
        },
    ))
}

/// This resource's routes, under `/admin/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(audit));
}

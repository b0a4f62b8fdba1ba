//! `/admin/keys`: the signing keys; rotating to a new one.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::*;
use crate::paths;
use crate::state::AppState;

struct KeyRow {
    kid: String,
    alg: String,
    state: String,
    created: String,
    activate_at: String,
    retire_at: String,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    frame: Frame,
    rows: Vec<KeyRow>,
    rotate: &'static str,
}

pub async fn keys(
    a: Admin,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> HttpResponse {
    let keys = match state.core.admin.list_keys(&a.actor).await {
        Ok(k) => k,
        Err(e) => return failure(e),
    };
    let view = KeysPage {
        frame: a.frame("keys", notice(q.notice.as_deref())),
        rows: keys
            .into_iter()
            .map(|k| KeyRow {
                created: datetime(k.created_at),
                activate_at: datetime(k.activate_at),
                retire_at: k.retire_at.map(datetime).unwrap_or_default(),
                kid: k.kid,
                alg: k.alg,
                state: k.state,
            })
            .collect(),
        rotate: paths::ADMIN_KEYS_ROTATE,
    };
    page(StatusCode::OK, &view, Some(&a.csrf))
}

pub async fn key_rotate(Then(a, _): AdminPost, state: web::Data<AppState>) -> HttpResponse {
    match state.core.admin.rotate_key(&a.actor, false).await {
        Ok(_) => with_notice(paths::ADMIN_KEYS, "key-rotated"),
        Err(e) => failure(e),
    }
}

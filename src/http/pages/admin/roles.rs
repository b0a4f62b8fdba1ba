//! `/admin/roles`: the role catalogue.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::*;
use crate::paths;
use crate::state::AppState;

struct RoleRow {
    name: String,
    description: String,
    builtin: bool,
    delete: String,
}

#[derive(Template)]
#[template(path = "admin/roles.html")]
struct RolesPage {
    frame: Frame,
    rows: Vec<RoleRow>,
    name: String,
    description: String,
    errors: Errors,
}

async fn render_roles(
    state: &AppState,
    a: &Admin,
    status: StatusCode,
    frame: Frame,
    (name, description): (String, String),
    errors: Errors,
) -> HttpResponse {
    let roles = match state.core.admin.list_roles(&a.actor).await {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let view = RolesPage {
        frame,
        rows: roles
            .into_iter()
            .map(|r| RoleRow {
                delete: fill(paths::ADMIN_ROLE_DELETE, &r.name),
                name: r.name,
                description: r.description,
                builtin: r.builtin,
            })
            .collect(),
        name,
        description,
        errors,
    };
    page(status, &view, Some(&a.csrf))
}

pub async fn roles(
    a: Admin,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> HttpResponse {
    let frame = a.frame("roles", notice(q.notice.as_deref()));
    let blank = (String::new(), String::new());
    render_roles(&state, &a, StatusCode::OK, frame, blank, Errors::default()).await
}

pub async fn role_create(Then(a, form): AdminPost, state: web::Data<AppState>) -> HttpResponse {
    let form = Fields(form.into_inner());
    let (name, description) = (form.text("name"), form.text("description"));
    match state
        .core
        .admin
        .create_role(&a.actor, &name, &description)
        .await
    {
        Ok(_) => with_notice(paths::ADMIN_ROLES, "role-created"),
        Err(AdminError::Invalid(v)) => {
            let frame = a.frame("roles", None);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_roles(&state, &a, status, frame, (name, description), v.into()).await
        }
        Err(AdminError::Conflict(m) | AdminError::Refused(m)) => {
            let mut frame = a.frame("roles", None);
            frame.error = Some(m);
            let status = StatusCode::CONFLICT;
            render_roles(
                &state,
                &a,
                status,
                frame,
                (name, description),
                Errors::default(),
            )
            .await
        }
        Err(e) => failure(e),
    }
}

pub async fn role_delete(
    Then(a, _): AdminPost,
    state: web::Data<AppState>,
    name: web::Path<String>,
) -> HttpResponse {
    match state.core.admin.delete_role(&a.actor, &name).await {
        Ok(()) => with_notice(paths::ADMIN_ROLES, "role-deleted"),
        // "held by 2 users", "built in": the roles page with the message.
        Err(AdminError::Conflict(m) | AdminError::Refused(m)) => {
            let mut frame = a.frame("roles", None);
            frame.error = Some(m);
            let blank = (String::new(), String::new());
            render_roles(
                &state,
                &a,
                StatusCode::CONFLICT,
                frame,
                blank,
                Errors::default(),
            )
            .await
        }
        Err(e) => failure(e),
    }
}

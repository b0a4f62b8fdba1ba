//! `/admin/users`: the user list and search, a user's page (roles, status, sessions, a reset
//! mail), resetting a user's second factors and deleting a user, each after a confirmation
//! page.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::*;
use crate::domain::Role;
use crate::paths;
use crate::state::AppState;

/// Users per page of the user list.
const USERS_PER_PAGE: u64 = 50;

struct UserRow {
    href: String,
    email: String,
    name: String,
    roles: String,
    verified: bool,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    frame: Frame,
    q: String,
    rows: Vec<UserRow>,
    total: u64,
    page: u64,
    pages: u64,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    page: Option<String>,
}

fn users_link(q: &str, page: u64) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        s.append_pair("q", q);
    }
    s.append_pair("page", &page.to_string());
    format!("{}?{}", paths::ADMIN_USERS, s.finish())
}

pub async fn users(
    a: Admin,
    state: web::Data<AppState>,
    query: web::Query<UsersQuery>,
) -> HttpResponse {
    let q = query.q.as_deref().unwrap_or_default().trim().to_owned();
    let page_no = query
        .page
        .as_deref()
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, u64::MAX / USERS_PER_PAGE);
    let offset = (page_no - 1) * USERS_PER_PAGE;
    let (found, total) = match state
        .core
        .admin
        .list_users(&a.actor, Some(&q), offset, USERS_PER_PAGE)
        .await
    {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let pages = total.div_ceil(USERS_PER_PAGE).max(1);
    let view = UsersPage {
        frame: a.frame("users", None),
        rows: found
            .into_iter()
            .map(|u| UserRow {
                href: fill(paths::ADMIN_USER, u.id.as_str()),
                name: u.name.unwrap_or_default(),
                roles: u.roles.join(" "),
                verified: u.email_verified,
                disabled: u.disabled,
                email: u.email,
            })
            .collect(),
        total,
        page: page_no,
        pages,
        prev: (page_no > 1).then(|| users_link(&q, (page_no - 1).min(pages))),
        next: (page_no < pages).then(|| users_link(&q, page_no + 1)),
        q,
    };
    page(StatusCode::OK, &view, Some(&a.csrf))
}

struct RoleCheck {
    name: String,
    description: String,
    checked: bool,
    /// `user`: every user has it.
    fixed: bool,
}

/// Where the forms of the user page post to.
struct UserActions {
    roles: String,
    status: String,
    sessions: String,
    reset: String,
    mfa_reset: String,
    delete: String,
    audit: String,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    frame: Frame,
    id: String,
    email: String,
    name: String,
    verified: bool,
    disabled: bool,
    created: String,
    /// The user has a second factor.
    second_factor: bool,
    /// The administrator looking at their own account.
    is_self: bool,
    roles: Vec<RoleCheck>,
    errors: Errors,
    actions: UserActions,
}

/// The user page; `checked` keeps the roles of a refused submission.
async fn render_user(
    state: &AppState,
    a: &Admin,
    id: &str,
    status: StatusCode,
    frame: Frame,
    errors: Errors,
    checked: Option<Vec<String>>,
) -> HttpResponse {
    let (user, catalogue, second_factor) = match (
        state.core.admin.user(&a.actor, id).await,
        state.core.admin.list_roles(&a.actor).await,
        state.core.admin.has_second_factor(&a.actor, id).await,
    ) {
        (Ok(u), Ok(c), Ok(f)) => (u, c, f),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return failure(e),
    };
    let checked = checked.unwrap_or_else(|| user.roles.clone());
    let uid = user.id.as_str();
    let view = UserPage {
        frame,
        roles: catalogue
            .into_iter()
            .map(|r| RoleCheck {
                fixed: r.name == Role::USER,
                checked: r.name == Role::USER || checked.contains(&r.name),
                name: r.name,
                description: r.description,
            })
            .collect(),
        errors,
        actions: UserActions {
            roles: fill(paths::ADMIN_USER_ROLES, uid),
            status: fill(paths::ADMIN_USER_STATUS, uid),
            sessions: fill(paths::ADMIN_USER_SESSIONS_END, uid),
            reset: fill(paths::ADMIN_USER_PASSWORD_RESET, uid),
            mfa_reset: fill(paths::ADMIN_USER_MFA_RESET, uid),
            delete: fill(paths::ADMIN_USER_DELETE, uid),
            audit: format!(
                "{}?{}",
                paths::ADMIN_AUDIT,
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("user_id", uid)
                    .finish()
            ),
        },
        is_self: a.is(uid),
        id: uid.to_owned(),
        name: user.name.clone().unwrap_or_default(),
        verified: user.email_verified,
        disabled: user.disabled,
        created: datetime(user.created_at),
        second_factor,
        email: user.email,
    };
    page(status, &view, Some(&a.csrf))
}

pub async fn user(
    a: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<NoticeQuery>,
) -> HttpResponse {
    let frame = a.frame("users", notice(q.notice.as_deref()));
    render_user(
        &state,
        &a,
        &id,
        StatusCode::OK,
        frame,
        Errors::default(),
        None,
    )
    .await
}

/// A conflict on the user page: the page again with the message.
async fn user_conflict(state: &AppState, a: &Admin, id: &str, message: String) -> HttpResponse {
    let mut frame = a.frame("users", None);
    frame.error = Some(message);
    render_user(
        state,
        a,
        id,
        StatusCode::CONFLICT,
        frame,
        Errors::default(),
        None,
    )
    .await
}

pub async fn user_roles(
    Then(a, form): AdminPost,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let form = Fields(form.into_inner());
    let roles = form.all("roles");
    let patch = crate::services::admin::UserPatch {
        roles: Some(roles.clone()),
        ..Default::default()
    };
    match state.core.admin.update_user(&a.actor, &id, patch).await {
        Ok(_) => with_notice(&fill(paths::ADMIN_USER, &id), "roles-saved"),
        Err(AdminError::Invalid(v)) => {
            let frame = a.frame("users", None);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_user(&state, &a, &id, status, frame, v.into(), Some(roles)).await
        }
        Err(AdminError::Conflict(m) | AdminError::Refused(m)) => {
            user_conflict(&state, &a, &id, m).await
        }
        Err(e) => failure(e),
    }
}

pub async fn user_status(
    Then(a, form): AdminPost,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let form = Fields(form.into_inner());
    let disabled = match form.one("disabled") {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return failure(AdminError::Invalid(vec![Invalid::new(
                "disabled",
                "choose disable or enable",
            )]));
        }
    };
    let patch = crate::services::admin::UserPatch {
        disabled: Some(disabled),
        ..Default::default()
    };
    match state.core.admin.update_user(&a.actor, &id, patch).await {
        Ok(_) => with_notice(
            &fill(paths::ADMIN_USER, &id),
            if disabled { "disabled" } else { "enabled" },
        ),
        Err(AdminError::Conflict(m) | AdminError::Refused(m)) => {
            user_conflict(&state, &a, &id, m).await
        }
        Err(e) => failure(e),
    }
}

pub async fn user_end_sessions(
    Then(a, _): AdminPost,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    match state.core.admin.end_sessions(&a.actor, &id).await {
        // Ending one's own sessions signs this browser out too: the login page follows.
        Ok(_) => with_notice(&fill(paths::ADMIN_USER, &id), "sessions-ended"),
        Err(e) => failure(e),
    }
}

pub async fn user_password_reset(
    Then(a, _): AdminPost,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    match state.core.admin.send_password_reset(&a.actor, &id).await {
        Ok(()) => with_notice(&fill(paths::ADMIN_USER, &id), "reset-sent"),
        Err(AdminError::Conflict(m) | AdminError::Refused(m)) => {
            user_conflict(&state, &a, &id, m).await
        }
        Err(e) => failure(e),
    }
}

pub async fn user_mfa_reset_confirm(
    a: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    confirm_on_user(
        &a,
        &state,
        &id,
        "Reset this user's second factors?",
        "Their authenticator app, passkeys and recovery codes stop working for this account; \
         they sign in with their password alone next, or set up a second factor \
         again where their role requires one. Their sessions and password stay. \
         They are told by mail.",
        paths::ADMIN_USER_MFA_RESET,
        "Reset second factors",
    )
    .await
}

/// The confirmation page of an action on one user (posting to `action`, a path with `{id}`).
async fn confirm_on_user(
    a: &Admin,
    state: &AppState,
    id: &str,
    title: &str,
    consequence: &str,
    action: &str,
    button: &str,
) -> HttpResponse {
    let user = match state.core.admin.user(&a.actor, id).await {
        Ok(u) => u,
        Err(e) => return failure(e),
    };
    let view = ConfirmPage {
        frame: a.frame("users", None),
        title,
        subject: &user.email,
        consequence,
        action: fill(action, user.id.as_str()),
        button,
        cancel: fill(paths::ADMIN_USER, user.id.as_str()),
    };
    page(StatusCode::OK, &view, Some(&a.csrf))
}

pub async fn user_mfa_reset(
    Then(a, _): AdminPost,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    match state.core.admin.reset_mfa(&a.actor, &id).await {
        Ok(reset) => with_notice(
            &fill(paths::ADMIN_USER, &id),
            if reset.factors > 0 {
                "mfa-reset"
            } else {
                "mfa-none"
            },
        ),
        Err(AdminError::Conflict(m) | AdminError::Refused(m)) => {
            user_conflict(&state, &a, &id, m).await
        }
        Err(e) => failure(e),
    }
}

pub async fn user_delete_confirm(
    a: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    confirm_on_user(
        &a,
        &state,
        &id,
        "Delete this user?",
        "Their sessions, refresh tokens, consents and pending email links go with \
         the account. This cannot be undone.",
        paths::ADMIN_USER_DELETE,
        "Delete the user",
    )
    .await
}

pub async fn user_delete(
    Then(a, _): AdminPost,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    match state.core.admin.delete_user(&a.actor, &id).await {
        Ok(()) => with_notice(paths::ADMIN_USERS, "user-deleted"),
        Err(AdminError::Conflict(m) | AdminError::Refused(m)) => {
            user_conflict(&state, &a, &id, m).await
        }
        Err(e) => failure(e),
    }
}

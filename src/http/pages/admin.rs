//! The admin pages (`/admin`): users, clients, roles, the audit log and signing keys, for a
//! signed-in user with the `admin` role. Server-rendered, no JavaScript.
//!
//! - Not signed in: 303 to the login page, which comes back here (`return_to`).
//! - Signed in without the `admin` role: a 403 page.
//! - Every form is a POST with the CSRF field of the other pages, refused without it (403).
//!   Actions answer 303 to the page they came from (post/redirect/get) with a fixed `notice`
//!   code; a new client secret is the exception: it is rendered at once, `Cache-Control:
//!   no-store`, and never put in a URL or stored in the clear.
//! - Validation errors re-render the form with the messages next to their fields and the values
//!   kept (422); conflicts show the page with the message (409); a missing thing is the 404 page.
//!
//! The use cases live in [`crate::services::admin`]; each change is audited there with
//! `Actor::User(<admin's id>)`. Templates get view structs, never entities.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use serde::Deserialize;

use crate::domain::{AuthMethod, Client, ClientSpec, GrantType, Invalid, Role, User};
use crate::error::AppError;
use crate::http::support::{Csrf, csrf, csrf_ok, current_user, page, see_other};
use crate::paths;
use crate::services::admin::{self, Actor, AdminError};
use crate::state::AppState;
use crate::store::accounts::AuditQuery;

/// Users per page of the user list.
const USERS_PER_PAGE: u64 = 50;
/// Audit events per page of the audit log.
const EVENTS_PER_PAGE: u64 = 50;

// --- the guard -----------------------------------------------------------------------------

/// A signed-in administrator and what every admin page needs.
struct Admin {
    user: User,
    actor: Actor,
    csrf: Csrf,
    now: i64,
}

impl Admin {
    fn frame(&self, section: &'static str, notice: Option<&'static str>) -> Frame {
        Frame {
            csrf: self.csrf.token.clone(),
            email: self.user.email.clone(),
            section,
            notice,
            error: None,
        }
    }

    fn is(&self, user_id: &str) -> bool {
        self.user.id.as_str() == user_id
    }
}

/// The administrator behind the session cookie, or the answer to send instead: the login page
/// (coming back here afterwards) or 403.
async fn admin(req: &HttpRequest, state: &AppState) -> Result<Admin, HttpResponse> {
    let now = state.clock.now();
    let me = match current_user(req, state, now).await {
        Ok(Some(me)) => me,
        Ok(None) => return Err(to_login(req)),
        Err(e) => return Err(e.error_response()),
    };
    // `current_user` already treats a disabled account as signed out; checked again here so
    // this guard does not depend on it.
    if me.user.disabled || !me.user.has_role(Role::ADMIN) {
        return Err(AppError::html(
            StatusCode::FORBIDDEN,
            "Administrators only",
            "Your account does not have the admin role. Ask an administrator if you need it.",
        ));
    }
    Ok(Admin {
        actor: Actor::User(me.user.id.as_str().to_owned()),
        csrf: csrf(req, state),
        user: me.user,
        now,
    })
}

/// The guard of every admin form: an administrator, and the form's CSRF field matching the
/// browser's cookie.
async fn admin_form(
    req: &HttpRequest,
    state: &AppState,
    form: &Fields,
) -> Result<Admin, HttpResponse> {
    let a = admin(req, state).await?;
    if !csrf_ok(req, state, form.one("csrf_token")) {
        return Err(AppError::html(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Please reload the page and try again.",
        ));
    }
    Ok(a)
}

/// 303 to the login page; a GET comes back to the same address, a POST to the overview.
fn to_login(req: &HttpRequest) -> HttpResponse {
    let back = match (req.method(), req.uri().path_and_query()) {
        (&actix_web::http::Method::GET, Some(pq)) => pq.as_str(),
        _ => paths::ADMIN,
    };
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", back)
        .finish();
    see_other(&format!("{}?{query}", paths::LOGIN))
}

// --- shared pieces -------------------------------------------------------------------------

/// A form body as ordered pairs: repeated names (role and grant-type checkboxes) are kept.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn text(&self, name: &str) -> String {
        self.one(name).unwrap_or_default().to_owned()
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// A checked checkbox.
    fn flag(&self, name: &str) -> bool {
        self.one(name).is_some_and(|v| !v.is_empty())
    }
}

type Form = crate::http::extractors::AdminForm;

/// What the admin layout shows around every page.
struct Frame {
    csrf: String,
    /// Who is signed in.
    email: String,
    /// The navigation entry of this page (`aria-current`).
    section: &'static str,
    notice: Option<&'static str>,
    /// A conflict the last action ran into.
    error: Option<String>,
}

/// Per-field messages of a refused form.
#[derive(Default)]
struct Errors(Vec<Invalid>);

impl Errors {
    /// The messages for one field, or `None`.
    fn get(&self, field: &str) -> Option<String> {
        let v: Vec<&str> = self
            .0
            .iter()
            .filter(|e| e.field == field)
            .map(|e| e.message.as_str())
            .collect();
        (!v.is_empty()).then(|| v.join(" "))
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn messages(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.message.as_str()).collect()
    }
}

impl From<Vec<Invalid>> for Errors {
    /// Field names as the forms spell them (the domain names single values).
    fn from(v: Vec<Invalid>) -> Self {
        Errors(
            v.into_iter()
                .map(|mut e| {
                    e.field = match e.field {
                        "grant_type" => "grant_types",
                        "redirect_uri" => "redirect_uris",
                        "role" => "roles",
                        f => f,
                    };
                    e
                })
                .collect(),
        )
    }
}

/// The messages a `notice` code in a redirect stands for (fixed text, never user data).
fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "roles-saved" => "The roles are saved.",
        "disabled" => "The account is disabled; its sessions and refresh tokens have ended.",
        "enabled" => "The account is enabled.",
        "sessions-ended" => "Every session and refresh token of this user has ended.",
        "reset-sent" => "A password-reset link is on its way to the user.",
        "user-deleted" => "The user is deleted.",
        "client-saved" => "The client is saved.",
        "client-deleted" => "The client is deleted.",
        "role-created" => "The role is created.",
        "role-deleted" => "The role is deleted.",
        "key-rotated" => "A new signing key is active.",
        _ => return None,
    })
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// A route pattern with its one parameter (`{id}`, `{name}`) filled in, percent-encoded.
fn fill(pattern: &str, value: &str) -> String {
    let (Some(open), Some(close)) = (pattern.find('{'), pattern.find('}')) else {
        return pattern.to_owned();
    };
    let mut encoded = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{}{encoded}{}", &pattern[..open], &pattern[close + 1..])
}

fn with_notice(location: &str, code: &str) -> HttpResponse {
    see_other(&format!("{location}?notice={code}"))
}

/// Seconds since the epoch as `2026-01-31 14:05:09 UTC`.
fn datetime(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// An admin error as a page: 404 for a missing thing, the message for a conflict or a refused
/// value, and a logged 503/500 for the rest (never its details).
fn failure(e: AdminError) -> HttpResponse {
    match e {
        AdminError::NotFound(_) => AppError::NotFound.error_response(),
        AdminError::Conflict(m) => AppError::html(StatusCode::CONFLICT, "This cannot be done", &m),
        AdminError::Invalid(v) => AppError::html(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Something is wrong with this request",
            &Errors::from(v).messages().join(" "),
        ),
        AdminError::Store(e) => {
            tracing::error!(error = %e, "an admin page cannot reach the database");
            AppError::Unavailable.error_response()
        }
        AdminError::Unexpected(m) => AppError::Unexpected(anyhow::anyhow!(m)).error_response(),
    }
}

// --- overview ------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/index.html")]
struct IndexPage {
    frame: Frame,
}

pub async fn index(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let a = match admin(&req, &state).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let view = IndexPage {
        frame: a.frame("overview", None),
    };
    page(StatusCode::OK, &view, Some(&a.csrf))
}

// --- users ---------------------------------------------------------------------------------

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
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<UsersQuery>,
) -> HttpResponse {
    let a = match admin(&req, &state).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let q = query.q.as_deref().unwrap_or_default().trim().to_owned();
    let page_no = query
        .page
        .as_deref()
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, u64::MAX / USERS_PER_PAGE);
    let offset = (page_no - 1) * USERS_PER_PAGE;
    let (found, total) = match admin::list_users(&state, Some(&q), offset, USERS_PER_PAGE).await {
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
    let (user, catalogue) = match (admin::user(state, id).await, admin::list_roles(state).await) {
        (Ok(u), Ok(c)) => (u, c),
        (Err(e), _) | (_, Err(e)) => return failure(e),
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
        email: user.email,
    };
    page(status, &view, Some(&a.csrf))
}

pub async fn user(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<NoticeQuery>,
) -> HttpResponse {
    let a = match admin(&req, &state).await {
        Ok(a) => a,
        Err(r) => return r,
    };
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
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let form = Fields(form.into_inner());
    let a = match admin_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let roles = form.all("roles");
    if a.is(&id) && !roles.iter().any(|r| r == Role::ADMIN) {
        let m = "You cannot take the admin role from yourself: ask another administrator.";
        return user_conflict(&state, &a, &id, m.into()).await;
    }
    let patch = admin::UserPatch {
        roles: Some(roles.clone()),
        ..Default::default()
    };
    match admin::update_user(&state, &a.actor, &id, patch, a.now).await {
        Ok(_) => with_notice(&fill(paths::ADMIN_USER, &id), "roles-saved"),
        Err(AdminError::Invalid(v)) => {
            let frame = a.frame("users", None);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_user(&state, &a, &id, status, frame, v.into(), Some(roles)).await
        }
        Err(AdminError::Conflict(m)) => user_conflict(&state, &a, &id, m).await,
        Err(e) => failure(e),
    }
}

pub async fn user_status(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let form = Fields(form.into_inner());
    let a = match admin_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(r) => return r,
    };
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
    if disabled && a.is(&id) {
        let m = "You cannot disable your own account: ask another administrator.";
        return user_conflict(&state, &a, &id, m.into()).await;
    }
    let patch = admin::UserPatch {
        disabled: Some(disabled),
        ..Default::default()
    };
    match admin::update_user(&state, &a.actor, &id, patch, a.now).await {
        Ok(_) => with_notice(
            &fill(paths::ADMIN_USER, &id),
            if disabled { "disabled" } else { "enabled" },
        ),
        Err(AdminError::Conflict(m)) => user_conflict(&state, &a, &id, m).await,
        Err(e) => failure(e),
    }
}

pub async fn user_end_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let form = Fields(form.into_inner());
    let a = match admin_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match admin::end_sessions(&state, &a.actor, &id, a.now).await {
        // Ending one's own sessions signs this browser out too: the login page follows.
        Ok(_) => with_notice(&fill(paths::ADMIN_USER, &id), "sessions-ended"),
        Err(e) => failure(e),
    }
}

pub async fn user_password_reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let form = Fields(form.into_inner());
    let a = match admin_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match admin::send_password_reset(&state, &a.actor, &id, a.now).await {
        Ok(()) => with_notice(&fill(paths::ADMIN_USER, &id), "reset-sent"),
        Err(AdminError::Conflict(m)) => user_conflict(&state, &a, &id, m).await,
        Err(e) => failure(e),
    }
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmPage<'a> {
    frame: Frame,
    title: &'a str,
    /// What goes away, named (an email, a client name).
    subject: &'a str,
    consequence: &'a str,
    action: String,
    button: &'a str,
    cancel: String,
}

pub async fn user_delete_confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let a = match admin(&req, &state).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let user = match admin::user(&state, &id).await {
        Ok(u) => u,
        Err(e) => return failure(e),
    };
    let view = ConfirmPage {
        frame: a.frame("users", None),
        title: "Delete this user?",
        subject: &user.email,
        consequence: "Their sessions, refresh tokens, consents and pending email links go with \
                      the account. This cannot be undone.",
        action: fill(paths::ADMIN_USER_DELETE, user.id.as_str()),
        button: "Delete the user",
        cancel: fill(paths::ADMIN_USER, user.id.as_str()),
    };
    page(StatusCode::OK, &view, Some(&a.csrf))
}

pub async fn user_delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let form = Fields(form.into_inner());
    let a = match admin_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if a.is(&id) {
        let m = "You cannot delete your own account here: ask another administrator.";
        return user_conflict(&state, &a, &id, m.into()).await;
    }
    match admin::delete_user(&state, &a.actor, &id, a.now).await {
        Ok(()) => with_notice(paths::ADMIN_USERS, "user-deleted"),
        Err(e) => failure(e),
    }
}

// --- clients -------------------------------------------------------------------------------

struct ClientRow {
    href: String,
    id: String,
    name: String,
    public: bool,
    grants: String,
    scope: String,
}

struct Check {
    value: &'static str,
    checked: bool,
}

struct Choice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// The client form, blank, prefilled from a client, or as submitted.
struct ClientForm {
    action: String,
    submit: &'static str,
    /// Editing: a client cannot switch between public and confidential.
    editing: bool,
    name: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    public: bool,
    grant_types: Vec<Check>,
    scope: String,
    auth_methods: Vec<Choice>,
    skip_consent: bool,
    introspect_any: bool,
}

const AUTH_METHODS: [(&str, &str); 4] = [
    (
        "",
        "Default: client_secret_basic or client_secret_post (none for a public client)",
    ),
    ("client_secret_basic", "client_secret_basic only"),
    ("client_secret_post", "client_secret_post only"),
    ("none", "none (a public client, with PKCE)"),
];

impl ClientForm {
    fn build(action: String, editing: bool, spec: &ClientSpec) -> Self {
        let method = spec.token_endpoint_auth_method.as_deref().unwrap_or("");
        ClientForm {
            action,
            submit: if editing { "Save" } else { "Create the client" },
            editing,
            name: spec.name.clone(),
            redirect_uris: spec.redirect_uris.join("\n"),
            post_logout_redirect_uris: spec.post_logout_redirect_uris.join("\n"),
            public: spec.public,
            grant_types: GrantType::ALL
                .into_iter()
                .map(|g| Check {
                    value: g.as_str(),
                    checked: spec.grant_types.iter().any(|s| s == g.as_str()),
                })
                .collect(),
            scope: spec.scope.clone(),
            auth_methods: AUTH_METHODS
                .into_iter()
                .map(|(value, label)| Choice {
                    value,
                    label,
                    selected: value == method,
                })
                .collect(),
            skip_consent: spec.skip_consent,
            introspect_any: spec.introspect_any,
        }
    }

    /// A new client: the defaults of `castellan client create`.
    fn blank() -> Self {
        let spec = ClientSpec {
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            scope: "openid profile email".into(),
            ..Default::default()
        };
        Self::build(paths::ADMIN_CLIENTS.to_owned(), false, &spec)
    }
}

/// A registered client as the form describes it.
fn spec_of(c: &Client) -> ClientSpec {
    let method = match c.auth_method {
        AuthMethod::SecretBasicOrPost => None,
        AuthMethod::None if c.public => None,
        m => Some(m.metadata_name().to_owned()),
    };
    ClientSpec {
        name: c.name.clone(),
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
        public: c.public,
        token_endpoint_auth_method: method,
        skip_consent: c.skip_consent,
        introspect_any: c.introspect_any,
    }
}

/// The submitted client form; URIs one per line, scope tokens separated by any white space.
fn spec_from(f: &Fields) -> ClientSpec {
    let lines = |name: &str| -> Vec<String> {
        f.text(name)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    ClientSpec {
        name: f.text("name"),
        redirect_uris: lines("redirect_uris"),
        post_logout_redirect_uris: lines("post_logout_redirect_uris"),
        grant_types: f.all("grant_types"),
        scope: f
            .text("scope")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        public: f.flag("public"),
        token_endpoint_auth_method: f
            .one("token_endpoint_auth_method")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        skip_consent: f.flag("skip_consent"),
        introspect_any: f.flag("introspect_any"),
    }
}

#[derive(Template)]
#[template(path = "admin/clients.html")]
struct ClientsPage {
    frame: Frame,
    rows: Vec<ClientRow>,
    form: ClientForm,
    errors: Errors,
}

async fn render_clients(
    state: &AppState,
    a: &Admin,
    status: StatusCode,
    frame: Frame,
    form: ClientForm,
    errors: Errors,
) -> HttpResponse {
    let clients = match admin::list_clients(state).await {
        Ok(c) => c,
        Err(e) => return failure(e),
    };
    let view = ClientsPage {
        frame,
        rows: clients
            .into_iter()
            .map(|c| ClientRow {
                href: fill(paths::ADMIN_CLIENT, c.id.as_str()),
                id: c.id.as_str().to_owned(),
                grants: c
                    .grant_types
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                scope: c.scopes.to_string(),
                public: c.public,
                name: c.name,
            })
            .collect(),
        form,
        errors,
    };
    page(status, &view, Some(&a.csrf))
}

pub async fn clients(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> HttpResponse {
    let a = match admin(&req, &state).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let frame = a.frame("clients", notice(q.notice.as_deref()));
    render_clients(
        &state,
        &a,
        StatusCode::OK,
        frame,
        ClientForm::blank(),
        Errors::default(),
    )
    .await
}

#[derive(Template)]
#[template(path = "admin/secret.html")]
struct SecretPage<'a> {
    frame: Frame,
    title: &'a str,
    client_id: &'a str,
    client_name: &'a str,
    secret: Option<&'a str>,
    href: String,
}

/// The one time a client secret is shown: rendered into this response (no redirect, so never in
/// a URL), `Cache-Control: no-store` like every page.
fn secret_page(a: &Admin, title: &str, client: &Client, secret: Option<&str>) -> HttpResponse {
    let view = SecretPage {
        frame: a.frame("clients", None),
        title,
        client_id: client.id.as_str(),
        client_name: &client.name,
        secret,
        href: fill(paths::ADMIN_CLIENT, client.id.as_str()),
    };
    page(StatusCode::OK, &view, Some(&a.csrf))
}

pub async fn client_create(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form,
) -> HttpResponse {
    let form = Fields(form.into_inner());
    let a = match admin_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let spec = spec_from(&form);
    match admin::create_client(&state, &a.actor, &spec, a.now).await {
        Ok((client, secret)) => secret_page(&a, "Client created", &client, secret.as_deref()),
        Err(AdminError::Invalid(v)) => {
            let form = ClientForm::build(paths::ADMIN_CLIENTS.to_owned(), false, &spec);
            let frame = a.frame("clients", None);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_clients(&state, &a, status, frame, form, v.into()).await
        }
        Err(AdminError::Conflict(m)) => {
            let form = ClientForm::build(paths::ADMIN_CLIENTS.to_owned(), false, &spec);
            let mut frame = a.frame("clients", None);
            frame.error = Some(m);
            render_clients(
                &state,
                &a,
                StatusCode::CONFLICT,
                frame,
                form,
                Errors::default(),
            )
            .await
        }
        Err(e) => failure(e),
    }
}

#[derive(Template)]
#[template(path = "admin/client.html")]
struct ClientPage {
    frame: Frame,
    id: String,
    name: String,
    public: bool,
    created: String,
    form: ClientForm,
    errors: Errors,
    rotate: String,
    delete: String,
    audit: String,
}

/// The client page; `submitted` keeps the values of a refused form.
async fn render_client(
    state: &AppState,
    a: &Admin,
    id: &str,
    status: StatusCode,
    frame: Frame,
    submitted: Option<(ClientSpec, Errors)>,
) -> HttpResponse {
    let client = match admin::client(state, id).await {
        Ok(c) => c,
        Err(e) => return failure(e),
    };
    let cid = client.id.as_str();
    let (spec, errors) = submitted.unwrap_or_else(|| (spec_of(&client), Errors::default()));
    let view = ClientPage {
        frame,
        form: ClientForm::build(
            fill(paths::ADMIN_CLIENT, cid),
            true,
            &ClientSpec {
                // Fixed for the life of a client.
                public: client.public,
                ..spec
            },
        ),
        errors,
        rotate: fill(paths::ADMIN_CLIENT_SECRET, cid),
        delete: fill(paths::ADMIN_CLIENT_DELETE, cid),
        audit: format!(
            "{}?{}",
            paths::ADMIN_AUDIT,
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("client_id", cid)
                .finish()
        ),
        id: cid.to_owned(),
        public: client.public,
        created: datetime(client.created_at),
        name: client.name,
    };
    page(status, &view, Some(&a.csrf))
}

pub async fn client(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<NoticeQuery>,
) -> HttpResponse {
    let a = match admin(&req, &state).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let frame = a.frame("clients", notice(q.notice.as_deref()));
    render_client(&state, &a, &id, StatusCode::OK, frame, None).await
}

pub async fn client_update(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let form = Fields(form.into_inner());
    let a = match admin_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let spec = spec_from(&form);
    match admin::update_client(&state, &a.actor, &id, &spec, a.now).await {
        Ok(_) => with_notice(&fill(paths::ADMIN_CLIENT, &id), "client-saved"),
        Err(AdminError::Invalid(v)) => {
            let frame = a.frame("clients", None);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_client(&state, &a, &id, status, frame, Some((spec, v.into()))).await
        }
        Err(AdminError::Conflict(m)) => {
            let mut frame = a.frame("clients", None);
            frame.error = Some(m);
            let submitted = Some((spec, Errors::default()));
            render_client(&state, &a, &id, StatusCode::CONFLICT, frame, submitted).await
        }
        Err(e) => failure(e),
    }
}

pub async fn client_rotate_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let form = Fields(form.into_inner());
    let a = match admin_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let secret = match admin::rotate_client_secret(&state, &a.actor, &id, a.now).await {
        Ok(s) => s,
        Err(AdminError::Conflict(m)) => {
            let mut frame = a.frame("clients", None);
            frame.error = Some(m);
            return render_client(&state, &a, &id, StatusCode::CONFLICT, frame, None).await;
        }
        Err(e) => return failure(e),
    };
    match admin::client(&state, &id).await {
        Ok(client) => secret_page(&a, "New client secret", &client, Some(&secret)),
        Err(e) => failure(e),
    }
}

pub async fn client_delete_confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let a = match admin(&req, &state).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let client = match admin::client(&state, &id).await {
        Ok(c) => c,
        Err(e) => return failure(e),
    };
    let subject = format!("{} ({})", client.name, client.id);
    let view = ConfirmPage {
        frame: a.frame("clients", None),
        title: "Delete this client?",
        subject: &subject,
        consequence: "Its tokens stop working and its users' consents go with it. This cannot \
                      be undone.",
        action: fill(paths::ADMIN_CLIENT_DELETE, client.id.as_str()),
        button: "Delete the client",
        cancel: fill(paths::ADMIN_CLIENT, client.id.as_str()),
    };
    page(StatusCode::OK, &view, Some(&a.csrf))
}

pub async fn client_delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let form = Fields(form.into_inner());
    let a = match admin_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match admin::delete_client(&state, &a.actor, &id, a.now).await {
        Ok(()) => with_notice(paths::ADMIN_CLIENTS, "client-deleted"),
        Err(e) => failure(e),
    }
}

// --- roles ---------------------------------------------------------------------------------

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
    let roles = match admin::list_roles(state).await {
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
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> HttpResponse {
    let a = match admin(&req, &state).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let frame = a.frame("roles", notice(q.notice.as_deref()));
    let blank = (String::new(), String::new());
    render_roles(&state, &a, StatusCode::OK, frame, blank, Errors::default()).await
}

pub async fn role_create(req: HttpRequest, state: web::Data<AppState>, form: Form) -> HttpResponse {
    let form = Fields(form.into_inner());
    let a = match admin_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let (name, description) = (form.text("name"), form.text("description"));
    match admin::create_role(&state, &a.actor, &name, &description, a.now).await {
        Ok(_) => with_notice(paths::ADMIN_ROLES, "role-created"),
        Err(AdminError::Invalid(v)) => {
            let frame = a.frame("roles", None);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            render_roles(&state, &a, status, frame, (name, description), v.into()).await
        }
        Err(AdminError::Conflict(m)) => {
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
    req: HttpRequest,
    state: web::Data<AppState>,
    name: web::Path<String>,
    form: Form,
) -> HttpResponse {
    let form = Fields(form.into_inner());
    let a = match admin_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match admin::delete_role(&state, &a.actor, &name, a.now).await {
        Ok(()) => with_notice(paths::ADMIN_ROLES, "role-deleted"),
        // "held by 2 users", "built in": the roles page with the message.
        Err(AdminError::Conflict(m)) => {
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

// --- audit log -----------------------------------------------------------------------------

struct EventRow {
    at: String,
    kind: String,
    actor: String,
    user_id: String,
    user_href: Option<String>,
    client_id: String,
    client_href: Option<String>,
    ip: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    frame: Frame,
    filter: AuditFilter,
    rows: Vec<EventRow>,
    errors: Errors,
    /// The next page, older events.
    older: Option<String>,
    /// Back to the newest events (when looking at an older page).
    newest: Option<String>,
}

/// The filters as typed (dates as `YYYY-MM-DD`, UTC).
#[derive(Deserialize, Default)]
pub struct AuditFilter {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    before: Option<String>,
}

impl AuditFilter {
    /// The filters as a query string (without `before`).
    fn query(&self) -> url::form_urlencoded::Serializer<'static, String> {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("kind", &self.kind),
            ("user_id", &self.user_id),
            ("client_id", &self.client_id),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.trim().is_empty() {
                s.append_pair(k, v.trim());
            }
        }
        s
    }

    /// The store query; `to` includes its whole day.
    fn parse(&self) -> Result<AuditQuery, Vec<Invalid>> {
        let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let mut errors = Vec::new();
        let mut day = |field: &'static str, raw: &str, days: i64| -> Option<i64> {
            let raw = raw.trim();
            if raw.is_empty() {
                return None;
            }
            match chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
                Ok(d) => {
                    Some(d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp() + days * 86_400)
                }
                Err(_) => {
                    errors.push(Invalid::new(field, "enter a date as YYYY-MM-DD"));
                    None
                }
            }
        };
        let from = day("from", &self.from, 0);
        let to = day("to", &self.to, 1);
        let before = match self.before.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(b) => match b.parse::<i64>() {
                Ok(b) => Some(b),
                Err(_) => {
                    errors.push(Invalid::new("before", "not an event number"));
                    None
                }
            },
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(AuditQuery {
            from,
            to,
            user_id: text(&self.user_id),
            client_id: text(&self.client_id),
            kind: text(&self.kind),
            before,
            // One more than shown: whether an older page exists.
            limit: EVENTS_PER_PAGE + 1,
        })
    }
}

pub async fn audit(
    req: HttpRequest,
    state: web::Data<AppState>,
    filter: web::Query<AuditFilter>,
) -> HttpResponse {
    let a = match admin(&req, &state).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let filter = filter.into_inner();
    let result = match filter.parse() {
        Ok(q) => admin::audit_events(&state, q).await,
        Err(v) => Err(AdminError::Invalid(v)),
    };
    let (mut events, errors) = match result {
        Ok(events) => (events, Errors::default()),
        Err(AdminError::Invalid(v)) => (Vec::new(), v.into()),
        Err(e) => return failure(e),
    };
    let more = events.len() as u64 > EVENTS_PER_PAGE;
    events.truncate(EVENTS_PER_PAGE as usize);
    let older = match events.last() {
        Some(last) if more => {
            let mut q = filter.query();
            q.append_pair("before", &last.id.to_string());
            Some(format!("{}?{}", paths::ADMIN_AUDIT, q.finish()))
        }
        _ => None,
    };
    let newest = filter.before.as_deref().filter(|b| !b.is_empty()).map(|_| {
        let q = filter.query().finish();
        if q.is_empty() {
            paths::ADMIN_AUDIT.to_owned()
        } else {
            format!("{}?{q}", paths::ADMIN_AUDIT)
        }
    });
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let view = AuditPage {
        frame: a.frame("audit", None),
        rows: events
            .into_iter()
            .map(|e| EventRow {
                at: datetime(e.at),
                kind: e.kind,
                actor: e.actor.unwrap_or_default(),
                user_href: e.user_id.as_deref().map(|u| fill(paths::ADMIN_USER, u)),
                user_id: e.user_id.unwrap_or_default(),
                client_href: e.client_id.as_deref().map(|c| fill(paths::ADMIN_CLIENT, c)),
                client_id: e.client_id.unwrap_or_default(),
                ip: e.ip.unwrap_or_default(),
                detail: e.detail,
            })
            .collect(),
        filter,
        errors,
        older,
        newest,
    };
    page(status, &view, Some(&a.csrf))
}

// --- signing keys --------------------------------------------------------------------------

struct KeyRow {
    kid: String,
    alg: String,
    state: String,
    created: String,
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
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<NoticeQuery>,
) -> HttpResponse {
    let a = match admin(&req, &state).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let keys = match admin::list_keys(&state).await {
        Ok(k) => k,
        Err(e) => return failure(e),
    };
    let view = KeysPage {
        frame: a.frame("keys", notice(q.notice.as_deref())),
        rows: keys
            .into_iter()
            .map(|k| KeyRow {
                created: datetime(k.created_at),
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

pub async fn key_rotate(req: HttpRequest, state: web::Data<AppState>, form: Form) -> HttpResponse {
    let form = Fields(form.into_inner());
    let a = match admin_form(&req, &state, &form).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match admin::rotate_key(&state, &a.actor, a.now).await {
        Ok(_) => with_notice(paths::ADMIN_KEYS, "key-rotated"),
        Err(e) => failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_parameters_are_filled_in_percent_encoded() {
        assert_eq!(fill(paths::ADMIN_USER, "a-1_b.c~"), "/admin/users/a-1_b.c~");
        assert_eq!(
            fill(paths::ADMIN_ROLE_DELETE, "a/b?c d"),
            "/admin/roles/a%2Fb%3Fc%20d/delete"
        );
    }

    #[test]
    fn the_to_date_of_the_audit_filter_includes_its_whole_day() {
        let f = AuditFilter {
            from: "2026-01-01".into(),
            to: "2026-01-01".into(),
            ..Default::default()
        };
        let q = f.parse().unwrap();
        assert_eq!(q.from, Some(1_767_225_600));
        assert_eq!(q.to, Some(1_767_225_600 + 86_400));
        let bad = AuditFilter {
            from: "01/02/2026".into(),
            before: Some("x".into()),
            ..Default::default()
        };
        let fields: Vec<_> = bad.parse().unwrap_err().iter().map(|e| e.field).collect();
        assert_eq!(fields, ["from", "before"]);
    }

    #[test]
    fn only_known_notice_codes_show_a_message() {
        assert!(notice(Some("roles-saved")).is_some());
        assert_eq!(notice(Some("<script>")), None);
        assert_eq!(notice(None), None);
    }
}

//! The account page (`/account`): profile, email change, password change, sessions and
//! connected apps. Every form is CSRF-protected; every action needs a live session.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::http::extractors::Form;
use serde::Deserialize;

use crate::error::AppError;
use crate::http::support::{Csrf, csrf, csrf_ok, current_user, page, see_other, user_agent};
use crate::services::accounts::{self, FieldErrors};
use crate::services::authn::Authenticated;
use crate::state::AppState;
use crate::store::accounts::AuditEntry;

struct SessionView {
    sid: String,
    device: String,
    ip: String,
    last_seen: String,
    current: bool,
}

struct AppView {
    client_id: String,
    name: String,
    scopes: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    csrf: &'a str,
    notice: Option<&'a str>,
    name: &'a str,
    email: &'a str,
    email_verified: bool,
    has_password: bool,
    name_error: Option<&'a str>,
    email_error: Option<&'a str>,
    password_error: Option<&'a str>,
    sessions: Vec<SessionView>,
    apps: Vec<AppView>,
}

/// A short, human description of a user agent string.
fn device(ua: Option<&str>) -> String {
    let Some(ua) = ua else {
        return "Unknown device".into();
    };
    let browser = ["Firefox", "Edg", "Chrome", "Safari"]
        .into_iter()
        .find(|b| ua.contains(b))
        .map(|b| if b == "Edg" { "Edge" } else { b });
    let os = ["Windows", "Android", "iPhone", "Mac OS", "Linux"]
        .into_iter()
        .find(|o| ua.contains(o));
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        _ => ua.chars().take(60).collect(),
    }
}

fn when(now: i64, t: i64) -> String {
    let d = (now - t).max(0);
    match d {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} minutes ago", d / 60),
        3600..=86_399 => format!("{} hours ago", d / 3600),
        _ => format!("{} days ago", d / 86_400),
    }
}

async fn signed_in(req: &HttpRequest, state: &AppState) -> Result<Authenticated, HttpResponse> {
    match current_user(req, state, state.clock.now()).await {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(see_other("/login?return_to=%2Faccount")),
        Err(e) => Err(e.error_response()),
    }
}

async fn render(
    state: &AppState,
    token: &Csrf,
    me: &Authenticated,
    notice: Option<&str>,
    errors: &FieldErrors,
) -> HttpResponse {
    let now = state.clock.now();
    let (sessions, apps) = match (
        state.store.user_sessions(me.user.id.as_str(), now).await,
        state.store.user_consents(me.user.id.as_str()).await,
    ) {
        (Ok(s), Ok(a)) => (s, a),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot load the account page");
            return AppError::Unavailable.error_response();
        }
    };
    let view = AccountPage {
        csrf: &token.token,
        notice,
        name: me.user.name.as_deref().unwrap_or_default(),
        email: &me.user.email,
        email_verified: me.user.email_verified,
        has_password: me.user.has_password,
        name_error: errors.name.as_deref(),
        email_error: errors.email.as_deref(),
        password_error: errors.password.as_deref(),
        sessions: sessions
            .into_iter()
            .map(|s| SessionView {
                current: s.sid == me.session.sid,
                device: device(s.user_agent.as_deref()),
                ip: s.ip.unwrap_or_default(),
                last_seen: when(now, s.last_seen),
                sid: s.sid,
            })
            .collect(),
        apps: apps
            .into_iter()
            .map(|a| AppView {
                client_id: a.client_id,
                name: a.name,
                scopes: a.scopes,
            })
            .collect(),
    };
    page(StatusCode::OK, &view, Some(token))
}

pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let me = match signed_in(&req, &state).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let _ = user_agent(&req);
    render(
        &state,
        &csrf(&req, &state),
        &me,
        None,
        &FieldErrors::default(),
    )
    .await
}

/// Common guard of every account form: a session and a matching CSRF token.
async fn guard(
    req: &HttpRequest,
    state: &AppState,
    submitted: Option<&str>,
) -> Result<Authenticated, HttpResponse> {
    let me = signed_in(req, state).await?;
    if !csrf_ok(req, state, submitted) {
        return Err(AppError::html(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Please reload the account page and try again.",
        ));
    }
    Ok(me)
}

fn after(result: Result<HttpResponse, accounts::AccountsError>) -> HttpResponse {
    result.unwrap_or_else(|e| match e {
        accounts::AccountsError::Busy => AppError::Busy.error_response(),
        e => {
            tracing::error!(error = %e, "account action failed");
            AppError::Unavailable.error_response()
        }
    })
}

#[derive(Deserialize)]
pub struct ProfileForm {
    csrf_token: Option<String>,
    name: Option<String>,
}

pub async fn profile(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<ProfileForm>,
) -> HttpResponse {
    let mut me = match guard(&req, &state, form.csrf_token.as_deref()).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let now = state.clock.now();
    after(
        async {
            Ok(
                match accounts::update_name(
                    &state,
                    &me.user,
                    form.name.as_deref().unwrap_or_default(),
                    now,
                )
                .await?
                {
                    Ok(user) => {
                        me.user = user;
                        render(
                            &state,
                            &csrf(&req, &state),
                            &me,
                            Some("Your profile is saved."),
                            &FieldErrors::default(),
                        )
                        .await
                    }
                    Err(errors) => render(&state, &csrf(&req, &state), &me, None, &errors).await,
                },
            )
        }
        .await,
    )
}

#[derive(Deserialize)]
pub struct EmailForm {
    csrf_token: Option<String>,
    email: Option<String>,
    current_password: Option<String>,
}

pub async fn email(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<EmailForm>,
) -> HttpResponse {
    let me = match guard(&req, &state, form.csrf_token.as_deref()).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let now = state.clock.now();
    after(async {
        let new = form.email.as_deref().unwrap_or_default();
        let password = form.current_password.as_deref().unwrap_or_default();
        Ok(match accounts::request_email_change(&state, &me, new, password, now).await? {
            Ok(()) => {
                let notice = "We sent a link to the new address. Your email changes once you follow it.";
                render(&state, &csrf(&req, &state), &me, Some(notice), &FieldErrors::default()).await
            }
            Err(errors) => render(&state, &csrf(&req, &state), &me, None, &errors).await,
        })
    }
    .await)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    csrf_token: Option<String>,
    current_password: Option<String>,
    password: Option<String>,
}

pub async fn password(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<PasswordForm>,
) -> HttpResponse {
    let me = match guard(&req, &state, form.csrf_token.as_deref()).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let now = state.clock.now();
    let current = form.current_password.clone().unwrap_or_default();
    let new = form.password.clone().unwrap_or_default();
    after(
        async {
            Ok(
                match accounts::change_password(
                    &state,
                    &me.user,
                    &me.session.sid,
                    &current,
                    &new,
                    now,
                )
                .await?
                {
                    Ok(()) => {
                        let notice =
                            "Your password is changed. Your other sessions were signed out.";
                        render(
                            &state,
                            &csrf(&req, &state),
                            &me,
                            Some(notice),
                            &FieldErrors::default(),
                        )
                        .await
                    }
                    Err(errors) => render(&state, &csrf(&req, &state), &me, None, &errors).await,
                },
            )
        }
        .await,
    )
}

#[derive(Deserialize)]
pub struct EndSessionForm {
    csrf_token: Option<String>,
    sid: Option<String>,
}

pub async fn end_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<EndSessionForm>,
) -> HttpResponse {
    let me = match guard(&req, &state, form.csrf_token.as_deref()).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let sid = form.sid.clone().unwrap_or_default();
    let now = state.clock.now();
    after(
        async {
            if state
                .store
                .delete_user_session(me.user.id.as_str(), &sid)
                .await?
            {
                let entry = AuditEntry {
                    kind: "session_ended",
                    user_id: Some(me.user.id.as_str().to_owned()),
                    ..Default::default()
                };
                state.store.audit(entry, now).await?;
            }
            Ok(see_other("/account"))
        }
        .await,
    )
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf_token: Option<String>,
}

pub async fn end_all(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<CsrfOnly>,
) -> HttpResponse {
    let me = match guard(&req, &state, form.csrf_token.as_deref()).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let now = state.clock.now();
    after(
        async {
            state
                .store
                .end_user_access(me.user.id.as_str(), None, now)
                .await?;
            let entry = AuditEntry {
                kind: "logout_everywhere",
                user_id: Some(me.user.id.as_str().to_owned()),
                ..Default::default()
            };
            state.store.audit(entry, now).await?;
            let mut resp = see_other("/login");
            let _ = resp.add_cookie(&crate::http::support::clear_session_cookie(&state));
            Ok(resp)
        }
        .await,
    )
}

#[derive(Deserialize)]
pub struct RevokeAppForm {
    csrf_token: Option<String>,
    client_id: Option<String>,
}

pub async fn revoke_app(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<RevokeAppForm>,
) -> HttpResponse {
    let me = match guard(&req, &state, form.csrf_token.as_deref()).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    let client_id = form.client_id.clone().unwrap_or_default();
    let now = state.clock.now();
    after(
        async {
            if state
                .store
                .revoke_consent(me.user.id.as_str(), &client_id)
                .await?
            {
                let entry = AuditEntry {
                    kind: "consent_revoked",
                    user_id: Some(me.user.id.as_str().to_owned()),
                    client_id: Some(client_id.clone()),
                    ..Default::default()
                };
                state.store.audit(entry, now).await?;
            }
            Ok(see_other("/account"))
        }
        .await,
    )
}

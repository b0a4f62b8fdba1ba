//! The account page (`/account`): profile, email change, password change, sessions and
//! connected apps. Every form is CSRF-protected ([`CsrfForm`]); every action needs a live
//! session ([`SignedIn`], checked first: [`Then`]) and is one call to
//! `services::accounts::Accounts`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::domain::{ClientId, ScopeSet, UnixTime};
use crate::http::extractors::{CsrfForm, SignedIn, Then};
use crate::http::support::{Csrf, accounts_failure, csrf, page, see_other};
use crate::services::accounts::{AccountsError, FieldErrors};
use crate::services::authn::Authenticated;
use crate::state::AppState;

struct SessionView {
    sid: String,
    device: String,
    ip: String,
    last_seen: String,
    current: bool,
}

struct AppView {
    client_id: ClientId,
    name: String,
    scopes: ScopeSet,
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
    totp: bool,
    recovery_codes_left: u64,
    second_factor_required: bool,
    /// Why the last action was refused (shown at the top, `role="alert"`).
    problem: Option<&'a str>,
    identities: Vec<IdentityView>,
    linkable: Vec<crate::services::federation::Provider>,
}

struct IdentityView {
    upstream_id: String,
    provider: String,
    email: String,
    linked: String,
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

fn when(now: UnixTime, t: UnixTime) -> String {
    let d = now.since(t).max(0);
    match d {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} minutes ago", d / 60),
        3600..=86_399 => format!("{} hours ago", d / 3600),
        _ => format!("{} days ago", d / 86_400),
    }
}

/// An account form post: the session first, then the form with its CSRF field.
type AccountPost<T> = Then<SignedIn, CsrfForm<T>>;

async fn render(
    state: &AppState,
    token: &Csrf,
    me: &Authenticated,
    notice: Option<&str>,
    errors: &FieldErrors,
) -> HttpResponse {
    render_with(state, token, me, notice, errors, None, StatusCode::OK).await
}

/// The account page with a refusal of the last action at the top (the second-factor
/// actions, `http::pages::mfa`, use it).
pub(super) async fn refused(
    state: &AppState,
    token: &Csrf,
    me: &Authenticated,
    status: StatusCode,
    problem: &str,
) -> HttpResponse {
    let errors = FieldErrors::default();
    render_with(state, token, me, None, &errors, Some(problem), status).await
}

async fn render_with(
    state: &AppState,
    token: &Csrf,
    me: &Authenticated,
    notice: Option<&str>,
    errors: &FieldErrors,
    problem: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let now = state.clock.time();
    let overview = match state.core.accounts.overview(&me.user).await {
        Ok(o) => o,
        Err(e) => return accounts_failure(e, "cannot load the account page"),
    };
    let identities = match state.core.federation.identities(&me.user.id).await {
        Ok(i) => i,
        Err(_) => {
            use actix_web::ResponseError;
            return crate::error::AppError::Unavailable.error_response();
        }
    };
    let view = AccountPage {
        identities: identities
            .linked
            .into_iter()
            .map(|(i, provider)| IdentityView {
                provider,
                email: i.email.unwrap_or_default(),
                linked: when(now, i.created_at),
                upstream_id: i.upstream_id,
            })
            .collect(),
        linkable: identities.linkable,
        csrf: &token.token,
        notice,
        name: me.user.name.as_deref().unwrap_or_default(),
        email: &me.user.email,
        email_verified: me.user.email_verified,
        has_password: me.user.has_password,
        name_error: errors.name.as_deref(),
        email_error: errors.email.as_deref(),
        password_error: errors.password.as_deref(),
        totp: overview.totp,
        recovery_codes_left: overview.recovery_codes_left,
        second_factor_required: overview.second_factor_required,
        problem,
        sessions: overview
            .sessions
            .into_iter()
            .map(|s| SessionView {
                current: s.sid == me.session.sid,
                device: device(s.user_agent.as_deref()),
                ip: s.ip.unwrap_or_default(),
                last_seen: when(now, s.last_seen),
                sid: s.sid,
            })
            .collect(),
        apps: overview
            .apps
            .into_iter()
            .map(|a| AppView {
                client_id: a.client_id,
                name: a.name,
                scopes: a.scopes,
            })
            .collect(),
    };
    page(status, &view, Some(token))
}

/// The page again after an action: its notice, or the form's errors.
async fn answer(
    req: &HttpRequest,
    state: &AppState,
    me: &Authenticated,
    result: Result<Result<(), FieldErrors>, AccountsError>,
    notice: &str,
) -> HttpResponse {
    match result {
        Ok(Ok(())) => {
            render(
                state,
                &csrf(req, state),
                me,
                Some(notice),
                &FieldErrors::default(),
            )
            .await
        }
        Ok(Err(errors)) => render(state, &csrf(req, state), me, None, &errors).await,
        Err(e) => accounts_failure(e, "account action failed"),
    }
}

pub async fn show(
    req: HttpRequest,
    SignedIn(me): SignedIn,
    state: web::Data<AppState>,
) -> HttpResponse {
    render(
        &state,
        &csrf(&req, &state),
        &me,
        None,
        &FieldErrors::default(),
    )
    .await
}

#[derive(Deserialize)]
pub struct ProfileForm {
    name: Option<String>,
}

pub async fn profile(
    req: HttpRequest,
    Then(SignedIn(mut me), form): AccountPost<ProfileForm>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let name = form.name.as_deref().unwrap_or_default();
    let result = match state.core.accounts.update_name(&me.user, name).await {
        Ok(Ok(user)) => {
            me.user = user;
            Ok(Ok(()))
        }
        Ok(Err(errors)) => Ok(Err(errors)),
        Err(e) => Err(e),
    };
    answer(&req, &state, &me, result, "Your profile is saved.").await
}

#[derive(Deserialize)]
pub struct EmailForm {
    email: Option<String>,
    current_password: Option<String>,
}

pub async fn email(
    req: HttpRequest,
    Then(SignedIn(me), form): AccountPost<EmailForm>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let new = form.email.as_deref().unwrap_or_default();
    let password = form.current_password.as_deref().unwrap_or_default();
    let result = state
        .core
        .accounts
        .request_email_change(&me, new, password)
        .await;
    let notice = "We sent a link to the new address. Your email changes once you follow it.";
    answer(&req, &state, &me, result, notice).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: Option<String>,
    password: Option<String>,
}

pub async fn password(
    req: HttpRequest,
    Then(SignedIn(me), form): AccountPost<PasswordForm>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let current = form.current_password.as_deref().unwrap_or_default();
    let new = form.password.as_deref().unwrap_or_default();
    let result = state
        .core
        .accounts
        .change_password(&me.user, &me.session.sid, current, new)
        .await;
    let notice = "Your password is changed. Your other sessions were signed out.";
    answer(&req, &state, &me, result, notice).await
}

#[derive(Deserialize)]
pub struct EndSessionForm {
    sid: Option<String>,
}

pub async fn end_session(
    Then(SignedIn(me), form): AccountPost<EndSessionForm>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let sid = form.sid.as_deref().unwrap_or_default();
    match state.core.accounts.end_session(&me.user, sid).await {
        Ok(()) => see_other(crate::paths::ACCOUNT),
        Err(e) => accounts_failure(e, "account action failed"),
    }
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn end_all(
    Then(SignedIn(me), _): AccountPost<NoFields>,
    state: web::Data<AppState>,
) -> HttpResponse {
    match state.core.accounts.sign_out_everywhere(&me.user).await {
        Ok(()) => {
            let mut resp = see_other(crate::paths::LOGIN);
            let _ = resp.add_cookie(&crate::http::support::clear_session_cookie(&state));
            resp
        }
        Err(e) => accounts_failure(e, "account action failed"),
    }
}

#[derive(Deserialize)]
pub struct RevokeAppForm {
    client_id: Option<String>,
}

pub async fn revoke_app(
    Then(SignedIn(me), form): AccountPost<RevokeAppForm>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let client_id = form.client_id.as_deref().unwrap_or_default();
    match state.core.accounts.revoke_app(&me.user, client_id).await {
        Ok(()) => see_other(crate::paths::ACCOUNT),
        Err(e) => accounts_failure(e, "account action failed"),
    }
}

//! The login page (`/login`): `email`, `password`, a CSRF token, and one generic message for
//! any failure.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::http::extractors::Form;
use serde::Deserialize;

use super::safe_return_to;
use crate::http::support::{
    Csrf, client_ip, csrf, csrf_ok, page, rate_limit, see_other, session_cookie, user_agent,
};
use crate::services::authn::{self, LoginFailure, LoginResult};
use crate::services::metrics::LoginOutcome;
use crate::services::ratelimit::Action;
use crate::state::AppState;
use crate::store::accounts::AuditEntry;

/// The one message for any failed login: it must not reveal whether the email exists.
pub const GENERIC_FAILURE: &str = "Invalid email or password.";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    return_to: &'a str,
    return_query: String,
    email: &'a str,
    error: Option<&'a str>,
}

fn render(
    status: StatusCode,
    csrf: Csrf,
    return_to: &str,
    email: &str,
    error: Option<&str>,
) -> HttpResponse {
    let return_query = if return_to.is_empty() {
        String::new()
    } else {
        format!(
            "?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", return_to)
                .finish()
        )
    };
    let view = LoginPage {
        csrf: &csrf.token,
        return_to,
        return_query,
        email,
        error,
    };
    page(status, &view, Some(&csrf))
}

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    login_hint: Option<String>,
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<LoginQuery>,
) -> HttpResponse {
    let return_to = safe_return_to(q.return_to.as_deref()).unwrap_or_default();
    let hint = q.login_hint.as_deref().unwrap_or_default();
    render(StatusCode::OK, csrf(&req, &state), &return_to, hint, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: Option<String>,
    password: Option<String>,
    csrf_token: Option<String>,
    return_to: Option<String>,
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<LoginForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let return_to = safe_return_to(form.return_to.as_deref()).unwrap_or_default();
    let email = form.email.unwrap_or_default();
    if !csrf_ok(&req, &state, form.csrf_token.as_deref()) {
        return render(
            StatusCode::FORBIDDEN,
            csrf(&req, &state),
            &return_to,
            &email,
            Some("This form has expired. Please sign in again."),
        );
    }
    if let Some(resp) = rate_limit(&req, &state, Action::Login) {
        state.metrics.count_login(LoginOutcome::RateLimited);
        return resp;
    }
    let password = form.password.unwrap_or_default();
    let now = state.clock.now();
    let user = match authn::check_password(&state, &email, password, now).await {
        Ok(u) => u,
        Err(authn::AuthnError::Busy) => {
            state.metrics.count_login(LoginOutcome::Error);
            let mut res = render(
                StatusCode::SERVICE_UNAVAILABLE,
                csrf(&req, &state),
                &return_to,
                &email,
                Some("Many people are signing in at this moment. Please try again in a second."),
            );
            crate::error::with_retry_after(&mut res, crate::error::BUSY_RETRY_AFTER_SECS);
            return res;
        }
        Err(e) => {
            tracing::error!(error = %e, "login failed unexpectedly");
            state.metrics.count_login(LoginOutcome::Error);
            return render(
                StatusCode::SERVICE_UNAVAILABLE,
                csrf(&req, &state),
                &return_to,
                &email,
                Some("Please try again in a moment."),
            );
        }
    };
    let user = match user {
        LoginResult::Ok(u) => u,
        LoginResult::Failed(why, user_id) => {
            state.metrics.count_login(match why {
                LoginFailure::UnknownEmail | LoginFailure::BadCredentials => {
                    LoginOutcome::BadCredentials
                }
                LoginFailure::Locked => LoginOutcome::Locked,
                LoginFailure::Disabled => LoginOutcome::Disabled,
            });
            let entry = AuditEntry {
                kind: "login_failed",
                user_id: user_id.map(|u| u.as_str().to_owned()),
                ip: client_ip(&req, &state),
                detail: format!("reason={}", why.as_str()),
                ..Default::default()
            };
            crate::http::support::audit(&state, entry).await;
            return render(
                StatusCode::OK,
                csrf(&req, &state),
                &return_to,
                &email,
                Some(GENERIC_FAILURE),
            );
        }
        LoginResult::Unverified(_) => {
            state.metrics.count_login(LoginOutcome::Unverified);
            // Only someone who knows the password sees this page.
            let token = csrf(&req, &state);
            let view = super::register::ResendPage {
                csrf: &token.token,
                email: &email,
                return_to: &return_to,
                notice: Some(
                    "Your email address is not verified yet. Follow the link we sent you, or ask for a new one below.",
                ),
            };
            return page(StatusCode::OK, &view, Some(&token));
        }
    };
    // A new session for every login (no session fixation); the previous one ends.
    if let Some(old) = crate::http::support::session_cookie_value(&req, &state)
        && let Err(e) = authn::end_session(&state, &old).await
    {
        tracing::warn!(error = %e, "cannot end the previous session");
    }
    let (value, session) = match authn::start_session(
        &state,
        &user,
        &["pwd"],
        client_ip(&req, &state),
        user_agent(&req),
        crate::oauth::authorize::login_ticket_in(&return_to),
        now,
    )
    .await
    {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a session");
            state.metrics.count_login(LoginOutcome::Error);
            return render(
                StatusCode::SERVICE_UNAVAILABLE,
                csrf(&req, &state),
                &return_to,
                &email,
                Some("Please try again in a moment."),
            );
        }
    };
    let entry = AuditEntry {
        kind: "login_succeeded",
        user_id: Some(user.id.as_str().to_owned()),
        ip: client_ip(&req, &state),
        detail: format!("sid {}", session.sid),
        ..Default::default()
    };
    crate::http::support::audit(&state, entry).await;
    state.metrics.count_login(LoginOutcome::Success);
    let mut resp = see_other(if return_to.is_empty() {
        "/"
    } else {
        &return_to
    });
    if let Err(e) = resp.add_cookie(&session_cookie(&state, value)) {
        tracing::error!(error = %e, "cannot set the session cookie");
    }
    resp
}

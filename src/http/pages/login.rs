//! The login page (`/login`): `email`, `password`, a CSRF token, and one generic message for
//! any failure. The sign-in itself is one call: `services::authn::Authn::sign_in`; its outcome
//! sends the browser on: where the login was going, the second step, or (a user whose roles
//! require a second factor and who has none) TOTP enrolment, then where it was going.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use serde::Deserialize;

use super::safe_return_to;
use crate::http::extractors::CsrfChecked;
use crate::http::support::{
    Csrf, client_addr, csrf, page, pending_cookie, return_to_query, see_other, session_cookie,
    session_cookie_value, too_many, user_agent,
};
use crate::paths;
use crate::services::authn::{SignIn, SignInOutcome};
use crate::services::federation::Provider;
use crate::state::AppState;

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
    /// Whether to offer "Sign in with a passkey" (the issuer's host is a domain name).
    passkeys: bool,
    /// A button for each upstream provider.
    upstreams: Vec<Provider>,
}

/// The message for a passkey that was not accepted.
pub const PASSKEY_FAILURE: &str =
    "That passkey could not be used. Try again, or sign in with your password.";

pub(super) async fn render(
    state: &AppState,
    status: StatusCode,
    csrf: Csrf,
    return_to: &str,
    email: &str,
    error: Option<&str>,
) -> HttpResponse {
    let upstreams = state.core.federation.providers().await;
    render_with(state, status, csrf, (return_to, email, error), upstreams)
}

/// The page with the given providers' buttons (none, when the database has just failed: it is
/// not asked again for them).
fn render_with(
    state: &AppState,
    status: StatusCode,
    csrf: Csrf,
    (return_to, email, error): (&str, &str, Option<&str>),
    upstreams: Vec<Provider>,
) -> HttpResponse {
    let view = LoginPage {
        csrf: &csrf.token,
        return_to,
        return_query: return_to_query(return_to),
        email,
        error,
        passkeys: state.core.mfa.passkeys_available(),
        upstreams,
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
    render(
        &state,
        StatusCode::OK,
        csrf(&req, &state),
        &return_to,
        hint,
        None,
    )
    .await
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: Option<String>,
    password: Option<String>,
    return_to: Option<String>,
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfChecked { form, valid }: CsrfChecked<LoginForm>,
) -> HttpResponse {
    let return_to = safe_return_to(form.return_to.as_deref()).unwrap_or_default();
    let email = form.email.unwrap_or_default();
    if !valid {
        return render(
            &state,
            StatusCode::FORBIDDEN,
            csrf(&req, &state),
            &return_to,
            &email,
            Some("This form has expired. Please sign in again."),
        )
        .await;
    }
    let attempt = SignIn {
        email: email.clone(),
        password: form.password.unwrap_or_default(),
        ip: client_addr(&req, &state),
        user_agent: user_agent(&req),
        previous_session: session_cookie_value(&req, &state),
        login_ticket: crate::oauth::authorize::login_ticket_in(&return_to),
    };
    let outcome = state.core.authn.sign_in(attempt).await;
    respond(&req, &state, &return_to, &email, GENERIC_FAILURE, outcome).await
}

/// The answer to a sign-in's outcome, with a password or a passkey: on to `return_to` with
/// the session cookie, to the second step, or the login page again with `failure`.
pub(super) async fn respond(
    req: &HttpRequest,
    state: &AppState,
    return_to: &str,
    email: &str,
    failure: &str,
    outcome: SignInOutcome,
) -> HttpResponse {
    match outcome {
        SignInOutcome::SignedIn { cookie } => {
            let mut resp = see_other(if return_to.is_empty() { "/" } else { return_to });
            if let Err(e) = resp.add_cookie(&session_cookie(state, cookie)) {
                tracing::error!(error = %e, "cannot set the session cookie");
            }
            resp
        }
        SignInOutcome::EnrolSecondFactor { cookie } => {
            // Signed in with one factor; enrolment comes next, then where the login was going.
            let target = format!("{}{}", paths::ACCOUNT_TOTP, return_to_query(return_to));
            let mut resp = see_other(&target);
            if let Err(e) = resp.add_cookie(&session_cookie(state, cookie)) {
                tracing::error!(error = %e, "cannot set the session cookie");
            }
            resp
        }
        SignInOutcome::SecondFactorNeeded { pending } => {
            let target = format!(
                "{}{}",
                paths::LOGIN_SECOND_FACTOR,
                return_to_query(return_to)
            );
            let mut resp = see_other(&target);
            if let Err(e) = resp.add_cookie(&pending_cookie(state, pending)) {
                tracing::error!(error = %e, "cannot set the pending sign-in cookie");
            }
            resp
        }
        SignInOutcome::Refused => {
            render(
                state,
                StatusCode::OK,
                csrf(req, state),
                return_to,
                email,
                Some(failure),
            )
            .await
        }
        SignInOutcome::Unverified => {
            // Only someone who knows the password sees this page.
            let token = csrf(req, state);
            let view = super::register::ResendPage {
                csrf: &token.token,
                email,
                return_to,
                notice: Some(
                    "Your email address is not verified yet. Follow the link we sent you, or ask for a new one below.",
                ),
            };
            page(StatusCode::OK, &view, Some(&token))
        }
        SignInOutcome::RateLimited(wait) => too_many(wait),
        SignInOutcome::Busy => {
            let mut res = render_with(
                state,
                StatusCode::SERVICE_UNAVAILABLE,
                csrf(req, state),
                (
                    return_to,
                    email,
                    Some(
                        "Many people are signing in at this moment. Please try again in a second.",
                    ),
                ),
                Vec::new(),
            );
            crate::error::with_retry_after(&mut res, crate::error::BUSY_RETRY_AFTER_SECS);
            res
        }
        SignInOutcome::Unavailable => {
            let mut res = render_with(
                state,
                StatusCode::SERVICE_UNAVAILABLE,
                csrf(req, state),
                (return_to, email, Some("Please try again in a moment.")),
                Vec::new(),
            );
            crate::error::with_retry_after(&mut res, crate::error::UNAVAILABLE_RETRY_AFTER_SECS);
            res
        }
    }
}

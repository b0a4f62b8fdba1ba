//! Forgot password (`/password/forgot`) and reset (`/password/reset`, from the emailed link).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::http::extractors::Form;
use serde::Deserialize;

use super::register::MessagePage;
use crate::error::AppError;
use crate::http::support::{client_ip, csrf, csrf_ok, page, rate_limit};
use crate::services::accounts::{self, ResetOutcome};
use crate::services::ratelimit::Action;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage<'a> {
    csrf: &'a str,
    email: &'a str,
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage<'a> {
    csrf: &'a str,
    token: &'a str,
    min_length: usize,
    error: Option<&'a str>,
}

const SAME_ANSWER: &str = "If an account exists for that address, we sent it a link to choose a new password. The link is valid for one hour.";

fn expired() -> HttpResponse {
    page(
        StatusCode::BAD_REQUEST,
        &MessagePage {
            title: "This link has expired or was already used",
            message: "Password reset links work once and for one hour. You can ask for a new one.",
            link: Some(("/password/forgot", "Ask for a new link")),
        },
        None,
    )
}

pub async fn forgot_form(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let token = csrf(&req, &state);
    page(
        StatusCode::OK,
        &ForgotPage {
            csrf: &token.token,
            email: "",
        },
        Some(&token),
    )
}

#[derive(Deserialize)]
pub struct ForgotForm {
    email: Option<String>,
    csrf_token: Option<String>,
}

pub async fn forgot(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<ForgotForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if !csrf_ok(&req, &state, form.csrf_token.as_deref()) {
        return AppError::html(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Please go back and try again.",
        );
    }
    if let Some(resp) = rate_limit(&req, &state, Action::ForgotPassword) {
        return resp;
    }
    let now = state.clock.now();
    if let Err(e) = accounts::forgot_password(
        &state,
        &form.email.unwrap_or_default(),
        client_ip(&req, &state),
        now,
    )
    .await
    {
        tracing::error!(error = %e, "forgot password failed");
        return AppError::Unavailable.error_response();
    }
    page(
        StatusCode::OK,
        &MessagePage {
            title: "Check your mailbox",
            message: SAME_ANSWER,
            link: Some(("/login", "Back to sign in")),
        },
        None,
    )
}

#[derive(Deserialize)]
pub struct ResetQuery {
    token: Option<String>,
}

pub async fn reset_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<ResetQuery>,
) -> HttpResponse {
    let value = q.token.clone().unwrap_or_default();
    match accounts::reset_link_valid(&state, &value, state.clock.now()).await {
        Ok(true) => {
            let token = csrf(&req, &state);
            page(
                StatusCode::OK,
                &ResetPage {
                    csrf: &token.token,
                    token: &value,
                    min_length: state.settings.password.min_length,
                    error: None,
                },
                Some(&token),
            )
        }
        Ok(false) => expired(),
        Err(e) => crate::http::support::accounts_failure(e, "reading a reset link failed"),
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: Option<String>,
    password: Option<String>,
    csrf_token: Option<String>,
}

pub async fn reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Form<ResetForm>,
) -> HttpResponse {
    let form = form.into_inner();
    if !csrf_ok(&req, &state, form.csrf_token.as_deref()) {
        return AppError::html(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Please open the link from the mail again.",
        );
    }
    let value = form.token.unwrap_or_default();
    let now = state.clock.now();
    match accounts::reset_password(
        &state,
        &value,
        &form.password.unwrap_or_default(),
        client_ip(&req, &state),
        now,
    )
    .await
    {
        Ok(ResetOutcome::Done(_)) => page(
            StatusCode::OK,
            &MessagePage {
                title: "Your password is changed",
                message: "You have been signed out everywhere. Sign in with your new password.",
                link: Some(("/login", "Sign in")),
            },
            None,
        ),
        Ok(ResetOutcome::InvalidLink) => expired(),
        Ok(ResetOutcome::Rejected(message)) => {
            let token = csrf(&req, &state);
            page(
                StatusCode::OK,
                &ResetPage {
                    csrf: &token.token,
                    token: &value,
                    min_length: state.settings.password.min_length,
                    error: Some(&message),
                },
                Some(&token),
            )
        }
        Err(e) => crate::http::support::accounts_failure(e, "password reset failed"),
    }
}

//! Forgot password (`/password/forgot`) and reset (`/password/reset`, from the emailed link).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::register::MessagePage;
use crate::http::extractors::CsrfForm;
use crate::http::support::{client_addr, csrf, page};
use crate::services::accounts::ResetOutcome;
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
}

pub async fn forgot(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: CsrfForm<ForgotForm>,
) -> HttpResponse {
    if let Err(e) = state
        .core
        .accounts
        .forgot_password(
            form.email.as_deref().unwrap_or_default(),
            client_addr(&req, &state),
        )
        .await
    {
        return crate::http::support::accounts_failure(e, "forgot password failed");
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
    match state.core.accounts.reset_link_valid(&value).await {
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
}

pub async fn reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: CsrfForm<ResetForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let value = form.token.unwrap_or_default();
    match state
        .core
        .accounts
        .reset_password(
            &value,
            &form.password.unwrap_or_default(),
            client_addr(&req, &state),
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

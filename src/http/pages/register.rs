//! Registration (`/register`), email verification links (`/register/verify`) and new links
//! (`/register/resend`). The answers never reveal whether an email is registered.

use crate::http::support::return_to_query;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use serde::Deserialize;

use super::safe_return_to;
use crate::error::AppError;
use crate::http::extractors::{CsrfChecked, CsrfForm};
use crate::http::support::{Csrf, client_addr, csrf, page};
use crate::services::accounts::FieldErrors;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage<'a> {
    csrf: &'a str,
    return_to: &'a str,
    return_query: String,
    email: &'a str,
    name: &'a str,
    min_length: usize,
    email_error: Option<&'a str>,
    password_error: Option<&'a str>,
    name_error: Option<&'a str>,
    upstreams: Vec<crate::services::federation::Provider>,
}

#[derive(Template)]
#[template(path = "resend.html")]
pub struct ResendPage<'a> {
    pub csrf: &'a str,
    pub email: &'a str,
    pub return_to: &'a str,
    pub notice: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub link: Option<(&'a str, &'a str)>,
}

fn closed() -> HttpResponse {
    AppError::html(
        StatusCode::NOT_FOUND,
        "Registration is closed",
        "New accounts cannot be created here. Ask your administrator for an account.",
    )
}

#[allow(clippy::too_many_arguments)]
async fn render(
    status: StatusCode,
    token: &Csrf,
    state: &AppState,
    return_to: &str,
    email: &str,
    name: &str,
    errors: &FieldErrors,
) -> HttpResponse {
    let view = RegisterPage {
        csrf: &token.token,
        return_to,
        return_query: return_to_query(return_to),
        email,
        name,
        min_length: state.settings.password.min_length,
        email_error: errors.email.as_deref(),
        password_error: errors.password.as_deref(),
        name_error: errors.name.as_deref(),
        upstreams: state.core.federation.providers().await,
    };
    page(status, &view, Some(token))
}

#[derive(Deserialize)]
pub struct ReturnQuery {
    return_to: Option<String>,
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<ReturnQuery>,
) -> HttpResponse {
    if !state.core.accounts.registration_open() {
        return closed();
    }
    let return_to = safe_return_to(q.return_to.as_deref()).unwrap_or_default();
    render(
        StatusCode::OK,
        &csrf(&req, &state),
        &state,
        &return_to,
        "",
        "",
        &FieldErrors::default(),
    )
    .await
}

#[derive(Deserialize)]
pub struct RegisterForm {
    email: Option<String>,
    password: Option<String>,
    name: Option<String>,
    return_to: Option<String>,
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfChecked { form, valid }: CsrfChecked<RegisterForm>,
) -> HttpResponse {
    if !state.core.accounts.registration_open() {
        return closed();
    }
    let return_to = safe_return_to(form.return_to.as_deref()).unwrap_or_default();
    let (email, name) = (
        form.email.unwrap_or_default(),
        form.name.unwrap_or_default(),
    );
    let token = csrf(&req, &state);
    if !valid {
        let errors = FieldErrors {
            email: Some("This form has expired. Please try again.".into()),
            ..Default::default()
        };
        return render(
            StatusCode::FORBIDDEN,
            &token,
            &state,
            &return_to,
            &email,
            &name,
            &errors,
        )
        .await;
    }
    let rt = (!return_to.is_empty()).then_some(return_to.as_str());
    match state
        .core
        .accounts
        .register(
            &email,
            &form.password.unwrap_or_default(),
            &name,
            rt,
            client_addr(&req, &state),
        )
        .await
    {
        Ok(Ok(())) => page(
            StatusCode::OK,
            &MessagePage {
                title: "Check your mailbox",
                message: "We sent a link to your email address. Follow it to verify your address and finish creating your account. The link is valid for 24 hours.",
                link: Some(("/register/resend", "Didn't get the mail? Send a new link")),
            },
            None,
        ),
        Ok(Err(errors)) => {
            render(
                StatusCode::OK,
                &token,
                &state,
                &return_to,
                &email,
                &name,
                &errors,
            )
            .await
        }
        Err(e) => crate::http::support::accounts_failure(e, "registration failed"),
    }
}

#[derive(Deserialize)]
pub struct VerifyQuery {
    token: Option<String>,
    return_to: Option<String>,
}

/// The emailed link: a single-use token makes the address verified.
pub async fn verify(state: web::Data<AppState>, q: web::Query<VerifyQuery>) -> HttpResponse {
    let token = q.token.clone().unwrap_or_default();
    match state.core.accounts.verify_email(&token).await {
        Ok(Some(_)) => {
            let next = match safe_return_to(q.return_to.as_deref()) {
                Some(r) => format!("/login{}", return_to_query(&r)),
                None => "/login".to_owned(),
            };
            page(
                StatusCode::OK,
                &MessagePage {
                    title: "Your email address is verified",
                    message: "Thank you. You can sign in now.",
                    link: Some((&next, "Continue to sign in")),
                },
                None,
            )
        }
        Ok(None) => page(
            StatusCode::BAD_REQUEST,
            &MessagePage {
                title: "This link has expired or was already used",
                message: "Verification links work once and for 24 hours. You can ask for a new one.",
                link: Some(("/register/resend", "Send a new link")),
            },
            None,
        ),
        Err(e) => crate::http::support::accounts_failure(e, "email verification failed"),
    }
}

pub async fn resend_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<ReturnQuery>,
) -> HttpResponse {
    let return_to = safe_return_to(q.return_to.as_deref()).unwrap_or_default();
    let token = csrf(&req, &state);
    page(
        StatusCode::OK,
        &ResendPage {
            csrf: &token.token,
            email: "",
            return_to: &return_to,
            notice: None,
        },
        Some(&token),
    )
}

#[derive(Deserialize)]
pub struct ResendForm {
    email: Option<String>,
    return_to: Option<String>,
}

pub async fn resend(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: CsrfForm<ResendForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let return_to = safe_return_to(form.return_to.as_deref());
    if let Err(e) = state
        .core
        .accounts
        .resend_verification(
            &form.email.unwrap_or_default(),
            return_to.as_deref(),
            client_addr(&req, &state),
        )
        .await
    {
        return crate::http::support::accounts_failure(e, "resending a verification link failed");
    }
    page(
        StatusCode::OK,
        &MessagePage {
            title: "Check your mailbox",
            message: "If that address belongs to an account that is not verified yet, we sent it a new link.",
            link: Some(("/login", "Back to sign in")),
        },
        None,
    )
}

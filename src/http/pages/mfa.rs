//! Second factors on the account page: TOTP enrolment (`/account/mfa/totp`, CONTRACT.md: the
//! seed in an element with `data-totp-secret`, a QR code rendered here as inline SVG, a form
//! with input `code`, then each recovery code in an element with class `recovery-code`),
//! a new set of recovery codes, and removal. Each action is one call to `services::mfa::Mfa`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::safe_return_to;
use crate::error::AppError;
use crate::http::extractors::{CsrfForm, SignedIn, Then};
use crate::http::support::{Csrf, csrf, page, see_other};
use crate::paths;
use crate::services::mfa::{Confirmation, Enrolment, MfaError, Removal, TotpSetup};
use crate::state::AppState;

struct SetupView {
    secret: String,
    qr_svg: String,
}

#[derive(Template)]
#[template(path = "mfa_totp.html")]
struct TotpPage<'a> {
    csrf: &'a str,
    return_to: &'a str,
    continue_to: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    setup: Option<SetupView>,
    recovery_codes: Vec<String>,
}

/// The `otpauth://` URI as a QR code in SVG, drawn here: no third party sees the seed, and no
/// script runs.
fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build();
            // Inline in the page: without the XML declaration.
            match svg.find("<svg") {
                Some(i) => svg[i..].to_owned(),
                None => svg,
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot draw the QR code");
            String::new()
        }
    }
}

struct View<'a> {
    return_to: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    setup: Option<TotpSetup>,
    recovery_codes: Vec<String>,
}

fn render(status: StatusCode, token: &Csrf, v: View<'_>) -> HttpResponse {
    let continue_to = if v.return_to.is_empty() {
        paths::ACCOUNT
    } else {
        v.return_to
    };
    let view = TotpPage {
        csrf: &token.token,
        return_to: v.return_to,
        continue_to,
        notice: v.notice,
        error: v.error,
        setup: v.setup.map(|s| SetupView {
            qr_svg: qr_svg(&s.uri),
            secret: s.secret_base32,
        }),
        recovery_codes: v.recovery_codes,
    };
    page(status, &view, Some(token))
}

fn failure(e: MfaError) -> HttpResponse {
    use actix_web::ResponseError;
    tracing::error!(error = %e, "second-factor action failed");
    AppError::Unavailable.error_response()
}

#[derive(Deserialize)]
pub struct TotpQuery {
    return_to: Option<String>,
}

pub async fn show(
    req: HttpRequest,
    SignedIn(me): SignedIn,
    state: web::Data<AppState>,
    q: web::Query<TotpQuery>,
) -> HttpResponse {
    let return_to = safe_return_to(q.return_to.as_deref()).unwrap_or_default();
    let token = csrf(&req, &state);
    match state.core.mfa.start_totp(&me.user).await {
        Ok(Enrolment::Setup(setup)) => render(
            StatusCode::OK,
            &token,
            View {
                return_to: &return_to,
                notice: None,
                error: None,
                setup: Some(setup),
                recovery_codes: Vec::new(),
            },
        ),
        Ok(Enrolment::AlreadyOn) => render(
            StatusCode::OK,
            &token,
            View {
                return_to: &return_to,
                notice: None,
                error: None,
                setup: None,
                recovery_codes: Vec::new(),
            },
        ),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    code: Option<String>,
    return_to: Option<String>,
}

pub async fn confirm(
    req: HttpRequest,
    Then(SignedIn(me), form): Then<SignedIn, CsrfForm<ConfirmForm>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = form.into_inner();
    let return_to = safe_return_to(form.return_to.as_deref()).unwrap_or_default();
    let code = form.code.unwrap_or_default();
    let token = csrf(&req, &state);
    let view = |error, setup, recovery_codes| View {
        return_to: &return_to,
        notice: None,
        error,
        setup,
        recovery_codes,
    };
    match state.core.mfa.confirm_totp(&me, &code).await {
        Ok(Confirmation::Confirmed { recovery_codes }) => {
            render(StatusCode::OK, &token, view(None, None, recovery_codes))
        }
        Ok(Confirmation::Wrong(setup)) => render(
            StatusCode::OK,
            &token,
            view(
                Some(
                    "That code is not right. Check your phone's clock, and type the current code.",
                ),
                Some(setup),
                Vec::new(),
            ),
        ),
        Ok(Confirmation::Locked) => render(
            StatusCode::OK,
            &token,
            view(
                Some("Too many wrong codes or passwords. Please wait a few minutes and try again."),
                None,
                Vec::new(),
            ),
        ),
        Ok(Confirmation::NotStarted) => see_other(paths::ACCOUNT_TOTP),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn regenerate(
    req: HttpRequest,
    Then(SignedIn(me), _): Then<SignedIn, CsrfForm<NoFields>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    match state.core.mfa.regenerate_recovery_codes(&me.user).await {
        Ok(Some(recovery_codes)) => render(
            StatusCode::OK,
            &csrf(&req, &state),
            View {
                return_to: "",
                notice: Some("Your new recovery codes are below. The old ones no longer work."),
                error: None,
                setup: None,
                recovery_codes,
            },
        ),
        Ok(None) => see_other(paths::ACCOUNT),
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    current_password: Option<String>,
}

/// What the account page says when the last factor is kept by the policy.
pub const REMOVAL_REQUIRED: &str = "Two-step verification stays on: your role requires a second \
     factor, and this is your last one. Ask an administrator if you have lost it.";

pub async fn remove(
    req: HttpRequest,
    Then(SignedIn(me), form): Then<SignedIn, CsrfForm<RemoveForm>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let password = form.into_inner().current_password.unwrap_or_default();
    match state.core.mfa.remove_totp(&me, &password).await {
        Ok(Removal::Removed | Removal::NotOn) => see_other(paths::ACCOUNT),
        Ok(Removal::Required) => {
            let token = csrf(&req, &state);
            super::account::refused(&state, &token, &me, StatusCode::CONFLICT, REMOVAL_REQUIRED)
                .await
        }
        Ok(Removal::WrongPassword) => {
            bad_request("Your current password is not right; two-step verification is still on.")
        }
        Ok(Removal::Locked) => {
            bad_request("Too many wrong passwords. Please wait a few minutes and try again.")
        }
        Ok(Removal::SignInAgain) => bad_request(
            "For your security, enter your current password, or sign in again and remove it within five minutes.",
        ),
        Err(e) => failure(e),
    }
}

fn bad_request(message: &str) -> HttpResponse {
    use actix_web::ResponseError;
    AppError::BadRequest(message.to_owned()).error_response()
}

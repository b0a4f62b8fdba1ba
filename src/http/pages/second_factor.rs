//! The second step of a sign-in (`/login/second-factor`): a form with input `code`, a TOTP code
//! or a recovery code. It finishes the browser's pending sign-in, or steps a signed-in session
//! up to two factors. One call: `services::authn::Authn::second_step`.

use crate::http::support::return_to_query;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::safe_return_to;
use crate::http::extractors::CsrfChecked;
use crate::http::support::{
    clear_pending_cookie, client_addr, csrf, page, pending_cookie_value, see_other, session_cookie,
    session_cookie_value, too_many, user_agent,
};
use crate::paths;
use crate::services::authn::{SecondStep, SecondStepOutcome};
use crate::state::AppState;

/// The one message for a code that was not accepted (wrong, replayed, used, or a locked
/// account).
pub const WRONG_CODE: &str = "That code is not valid. Try the current code, or a recovery code.";

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondFactorPage<'a> {
    csrf: &'a str,
    return_to: &'a str,
    return_query: String,
    error: Option<&'a str>,
    /// Whether to offer "Use a passkey" (the user has one).
    passkey: bool,
}

pub(super) async fn render(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    return_to: &str,
    error: Option<&str>,
) -> HttpResponse {
    let passkey = state
        .core
        .authn
        .second_step_has_passkey(
            pending_cookie_value(req, state).as_deref(),
            session_cookie_value(req, state).as_deref(),
        )
        .await;
    let csrf = csrf(req, state);
    let view = SecondFactorPage {
        csrf: &csrf.token,
        return_to,
        return_query: return_to_query(return_to),
        error,
        passkey,
    };
    page(status, &view, Some(&csrf))
}

#[derive(Deserialize)]
pub struct SecondFactorQuery {
    return_to: Option<String>,
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<SecondFactorQuery>,
) -> HttpResponse {
    let return_to = safe_return_to(q.return_to.as_deref()).unwrap_or_default();
    render(&req, &state, StatusCode::OK, &return_to, None).await
}

#[derive(Deserialize)]
pub struct SecondFactorForm {
    code: Option<String>,
    return_to: Option<String>,
}

pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfChecked { form, valid }: CsrfChecked<SecondFactorForm>,
) -> HttpResponse {
    let return_to = safe_return_to(form.return_to.as_deref()).unwrap_or_default();
    if !valid {
        return render(
            &req,
            &state,
            StatusCode::FORBIDDEN,
            &return_to,
            Some("This form has expired. Please try again."),
        )
        .await;
    }
    let step = SecondStep {
        pending: pending_cookie_value(&req, &state),
        session: session_cookie_value(&req, &state),
        code: form.code.unwrap_or_default(),
        ip: client_addr(&req, &state),
        user_agent: user_agent(&req),
    };
    let outcome = state.core.authn.second_step(step).await;
    respond(&req, &state, &return_to, WRONG_CODE, outcome).await
}

/// The answer to a second step's outcome, with a code or a passkey.
pub(super) async fn respond(
    req: &HttpRequest,
    state: &AppState,
    return_to: &str,
    wrong: &str,
    outcome: SecondStepOutcome,
) -> HttpResponse {
    match outcome {
        SecondStepOutcome::SignedIn { cookie } => {
            let mut resp = see_other(if return_to.is_empty() { "/" } else { return_to });
            if let Err(e) = resp
                .add_cookie(&session_cookie(state, cookie))
                .and_then(|()| resp.add_cookie(&clear_pending_cookie(state)))
            {
                tracing::error!(error = %e, "cannot set the session cookie");
            }
            resp
        }
        SecondStepOutcome::Wrong => {
            render(req, state, StatusCode::OK, return_to, Some(wrong)).await
        }
        SecondStepOutcome::Expired => {
            let mut resp = see_other(&format!("{}{}", paths::LOGIN, return_to_query(return_to)));
            let _ = resp.add_cookie(&clear_pending_cookie(state));
            resp
        }
        SecondStepOutcome::RateLimited(wait) => too_many(wait),
        SecondStepOutcome::Unavailable => {
            render(
                req,
                state,
                StatusCode::SERVICE_UNAVAILABLE,
                return_to,
                Some("Please try again in a moment."),
            )
            .await
        }
    }
}

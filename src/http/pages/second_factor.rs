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
    Csrf, clear_pending_cookie, client_addr, csrf, page, pending_cookie_value, see_other,
    session_cookie, session_cookie_value, too_many, user_agent,
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
}

fn render(status: StatusCode, csrf: Csrf, return_to: &str, error: Option<&str>) -> HttpResponse {
    let view = SecondFactorPage {
        csrf: &csrf.token,
        return_to,
        return_query: return_to_query(return_to),
        error,
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
    render(StatusCode::OK, csrf(&req, &state), &return_to, None)
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
    let again = |status, message| render(status, csrf(&req, &state), &return_to, message);
    if !valid {
        return again(
            StatusCode::FORBIDDEN,
            Some("This form has expired. Please try again."),
        );
    }
    let step = SecondStep {
        pending: pending_cookie_value(&req, &state),
        session: session_cookie_value(&req, &state),
        code: form.code.unwrap_or_default(),
        ip: client_addr(&req, &state),
        user_agent: user_agent(&req),
    };
    match state.core.authn.second_step(step).await {
        SecondStepOutcome::SignedIn { cookie } => {
            let mut resp = see_other(if return_to.is_empty() {
                "/"
            } else {
                &return_to
            });
            if let Err(e) = resp
                .add_cookie(&session_cookie(&state, cookie))
                .and_then(|()| resp.add_cookie(&clear_pending_cookie(&state)))
            {
                tracing::error!(error = %e, "cannot set the session cookie");
            }
            resp
        }
        SecondStepOutcome::Wrong => again(StatusCode::OK, Some(WRONG_CODE)),
        SecondStepOutcome::Expired => {
            let mut resp = see_other(&format!("{}{}", paths::LOGIN, return_to_query(&return_to)));
            let _ = resp.add_cookie(&clear_pending_cookie(&state));
            resp
        }
        SecondStepOutcome::RateLimited(wait) => too_many(wait),
        SecondStepOutcome::Unavailable => again(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("Please try again in a moment."),
        ),
    }
}

//! Passkeys on the pages (CONTRACT.md): the account's list at `/account/passkeys` (register,
//! rename, remove; and removing the password of an account that has a passkey), "Sign in with
//! a passkey" on `/login` (with browser autofill), and a passkey as the second step.
//!
//! The ceremony runs in the browser (`static/js/passkeys.js`): it fetches the options from an
//! `…/options` path (POST, CSRF-checked; JSON, plus the ceremony cookie), asks the
//! authenticator, and sends the answer back in an ordinary form's `credential` field. Each
//! handler makes one call to `services::authn` or `services::mfa`.

use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::safe_return_to;
use crate::error::AppError;
use crate::http::extractors::{CsrfChecked, CsrfForm, SignedIn, Then};
use crate::http::support::{
    Csrf, ceremony_cookie, ceremony_cookie_value, clear_ceremony_cookie, client_addr, csrf, page,
    pending_cookie_value, see_other, session_cookie_value, too_many, user_agent,
};
use crate::paths;
use crate::services::authn::{PasskeyOptions, PasskeySignIn, PasskeyStep};
use crate::services::mfa::{MfaError, WayInRemoval};
use crate::services::passkeys::{Begun, Registered};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct NoFields {}

/// The options as JSON, with the ceremony cookie.
fn options(begun: Begun, state: &AppState) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .cookie(ceremony_cookie(state, begun.ceremony))
        .json(begun.options)
}

fn json_error(status: StatusCode, error: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "error": error }))
}

fn answer_options(outcome: PasskeyOptions, state: &AppState) -> HttpResponse {
    match outcome {
        PasskeyOptions::Begun(b) => options(b, state),
        PasskeyOptions::NotOffered => json_error(StatusCode::NOT_FOUND, "passkeys_not_offered"),
        PasskeyOptions::RateLimited(wait) => too_many(wait),
        PasskeyOptions::Unavailable => {
            json_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
        }
    }
}

/// `POST /login/passkey/options`: a sign-in with a passkey alone begins.
pub async fn sign_in_options(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfChecked { valid, .. }: CsrfChecked<NoFields>,
) -> HttpResponse {
    if !valid {
        return json_error(StatusCode::FORBIDDEN, "csrf");
    }
    let outcome = state
        .core
        .authn
        .begin_passkey_sign_in(client_addr(&req, &state))
        .await;
    answer_options(outcome, &state)
}

#[derive(Deserialize)]
pub struct AnswerForm {
    credential: Option<String>,
    return_to: Option<String>,
}

/// `POST /login/passkey`: the browser's answer; signed in, or the login page again.
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfChecked { form, valid }: CsrfChecked<AnswerForm>,
) -> HttpResponse {
    let return_to = safe_return_to(form.return_to.as_deref()).unwrap_or_default();
    if !valid {
        return super::login::render(
            &state,
            StatusCode::FORBIDDEN,
            csrf(&req, &state),
            &return_to,
            "",
            Some("This form has expired. Please sign in again."),
        )
        .await;
    }
    let attempt = PasskeySignIn {
        ceremony: ceremony_cookie_value(&req, &state),
        credential: form.credential.unwrap_or_default(),
        ip: client_addr(&req, &state),
        user_agent: user_agent(&req),
        previous_session: session_cookie_value(&req, &state),
        login_ticket: crate::oauth::authorize::login_ticket_in(&return_to),
    };
    let outcome = state.core.authn.passkey_sign_in(attempt).await;
    let mut resp = super::login::respond(
        &req,
        &state,
        &return_to,
        "",
        super::login::PASSKEY_FAILURE,
        outcome,
    )
    .await;
    let _ = resp.add_cookie(&clear_ceremony_cookie(&state));
    resp
}

/// `POST /login/second-factor/passkey/options`: a passkey as the second step begins.
pub async fn second_factor_options(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfChecked { valid, .. }: CsrfChecked<NoFields>,
) -> HttpResponse {
    if !valid {
        return json_error(StatusCode::FORBIDDEN, "csrf");
    }
    let outcome = state
        .core
        .authn
        .begin_passkey_step(
            pending_cookie_value(&req, &state).as_deref(),
            session_cookie_value(&req, &state).as_deref(),
            client_addr(&req, &state),
        )
        .await;
    answer_options(outcome, &state)
}

/// `POST /login/second-factor/passkey`: the browser's answer to the second step.
pub async fn second_factor(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfChecked { form, valid }: CsrfChecked<AnswerForm>,
) -> HttpResponse {
    let return_to = safe_return_to(form.return_to.as_deref()).unwrap_or_default();
    if !valid {
        return super::second_factor::render(
            &req,
            &state,
            StatusCode::FORBIDDEN,
            &return_to,
            Some("This form has expired. Please try again."),
        )
        .await;
    }
    let step = PasskeyStep {
        ceremony: ceremony_cookie_value(&req, &state),
        credential: form.credential.unwrap_or_default(),
        pending: pending_cookie_value(&req, &state),
        session: session_cookie_value(&req, &state),
        ip: client_addr(&req, &state),
        user_agent: user_agent(&req),
    };
    let outcome = state.core.authn.passkey_second_step(step).await;
    let mut resp = super::second_factor::respond(
        &req,
        &state,
        &return_to,
        "That passkey could not be used. Try again, or enter a code.",
        outcome,
    )
    .await;
    let _ = resp.add_cookie(&clear_ceremony_cookie(&state));
    resp
}

// --- the account's passkeys --------------------------------------------------------------

struct PasskeyRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "passkeys.html")]
struct PasskeysPage<'a> {
    csrf: &'a str,
    return_to: &'a str,
    available: bool,
    has_password: bool,
    passkeys: Vec<PasskeyRow>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

fn date(t: crate::domain::UnixTime) -> String {
    chrono::DateTime::from_timestamp(t.secs(), 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn failure(e: MfaError) -> HttpResponse {
    use actix_web::ResponseError;
    tracing::error!(error = %e, "passkey action failed");
    AppError::Unavailable.error_response()
}

async fn render(
    state: &AppState,
    me: &crate::services::authn::Authenticated,
    token: &Csrf,
    status: StatusCode,
    return_to: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> HttpResponse {
    let list = match state.core.mfa.passkeys(me).await {
        Ok(l) => l,
        Err(e) => return failure(e),
    };
    let view = PasskeysPage {
        csrf: &token.token,
        return_to,
        available: state.core.mfa.passkeys_available(),
        has_password: me.user.has_password,
        passkeys: list
            .into_iter()
            .map(|p| PasskeyRow {
                id: p.id,
                name: p.name,
                created: date(p.created_at),
                last_used: p.last_used_at.map(date).unwrap_or_else(|| "never".into()),
            })
            .collect(),
        notice,
        error,
    };
    page(status, &view, Some(token))
}

#[derive(Deserialize)]
pub struct PasskeysQuery {
    return_to: Option<String>,
}

/// `GET /account/passkeys`.
pub async fn show(
    req: HttpRequest,
    SignedIn(me): SignedIn,
    state: web::Data<AppState>,
    q: web::Query<PasskeysQuery>,
) -> HttpResponse {
    let return_to = safe_return_to(q.return_to.as_deref()).unwrap_or_default();
    let token = csrf(&req, &state);
    render(&state, &me, &token, StatusCode::OK, &return_to, None, None).await
}

/// `POST /account/passkeys/options`: a registration begins in this session.
pub async fn register_options(
    state: web::Data<AppState>,
    me: Option<SignedIn>,
    CsrfChecked { valid, .. }: CsrfChecked<NoFields>,
) -> HttpResponse {
    let Some(SignedIn(me)) = me else {
        return json_error(StatusCode::UNAUTHORIZED, "sign_in_required");
    };
    if !valid {
        return json_error(StatusCode::FORBIDDEN, "csrf");
    }
    match state.core.mfa.begin_passkey(&me).await {
        Ok(Some(b)) => options(b, &state),
        Ok(None) => json_error(StatusCode::NOT_FOUND, "passkeys_not_offered"),
        Err(e) => {
            tracing::error!(error = %e, "cannot begin a passkey registration");
            json_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
        }
    }
}

#[derive(Deserialize)]
pub struct RegisterForm {
    name: Option<String>,
    credential: Option<String>,
    return_to: Option<String>,
}

/// `POST /account/passkeys`: the browser's answer to a registration.
pub async fn register(
    req: HttpRequest,
    Then(SignedIn(me), form): Then<SignedIn, CsrfForm<RegisterForm>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = form.into_inner();
    let return_to = safe_return_to(form.return_to.as_deref()).unwrap_or_default();
    let token = csrf(&req, &state);
    let outcome = state
        .core
        .mfa
        .finish_passkey(
            &me,
            ceremony_cookie_value(&req, &state).as_deref(),
            form.name.as_deref().unwrap_or_default(),
            form.credential.as_deref().unwrap_or_default(),
        )
        .await;
    let (status, notice, error) = match outcome {
        Ok(Registered::Added { .. }) => {
            if !return_to.is_empty() {
                let mut resp = see_other(&return_to);
                let _ = resp.add_cookie(&clear_ceremony_cookie(&state));
                return resp;
            }
            (StatusCode::OK, Some("Your passkey is added."), None)
        }
        Ok(Registered::Refused(_)) => (
            StatusCode::BAD_REQUEST,
            None,
            Some("The passkey could not be added. Please try again."),
        ),
        Ok(Registered::Duplicate) => (
            StatusCode::BAD_REQUEST,
            None,
            Some("That passkey is registered already."),
        ),
        Ok(Registered::TooMany) => (
            StatusCode::BAD_REQUEST,
            None,
            Some("Your account has as many passkeys as it can have. Remove one first."),
        ),
        Err(e) => return failure(e),
    };
    let mut resp = render(&state, &me, &token, status, &return_to, notice, error).await;
    let _ = resp.add_cookie(&clear_ceremony_cookie(&state));
    resp
}

#[derive(Deserialize)]
pub struct RenameForm {
    name: Option<String>,
}

/// `POST /account/passkeys/{id}/rename`.
pub async fn rename(
    req: HttpRequest,
    Then(SignedIn(me), form): Then<SignedIn, CsrfForm<RenameForm>>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let name = form.into_inner().name.unwrap_or_default();
    match state.core.mfa.rename_passkey(&me, &id, &name).await {
        Ok(true) => see_other(paths::ACCOUNT_PASSKEYS),
        Ok(false) => {
            let token = csrf(&req, &state);
            render(
                &state,
                &me,
                &token,
                StatusCode::NOT_FOUND,
                "",
                None,
                Some("There is no such passkey."),
            )
            .await
        }
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    current_password: Option<String>,
}

fn removal_message(r: WayInRemoval, what: &str) -> Option<String> {
    match r {
        WayInRemoval::Removed => None,
        WayInRemoval::WrongPassword => Some(format!(
            "Your current password is not right; the {what} is kept."
        )),
        WayInRemoval::Locked => {
            Some("Too many wrong passwords. Please wait a few minutes and try again.".into())
        }
        WayInRemoval::SignInAgain => Some(format!(
            "For your security, enter your current password, or sign in again and remove the {what} within five minutes."
        )),
        WayInRemoval::LastWayIn => Some(format!(
            "The {what} is the last way to sign in to your account, so it is kept."
        )),
        WayInRemoval::Required => Some(format!(
            "Your account must have a second factor, and the {what} is the last one, so it is kept."
        )),
        WayInRemoval::NotFound => Some(format!("There is no such {what}.")),
    }
}

/// The passkeys page again, saying why a removal was refused (400).
async fn refused(
    state: &AppState,
    me: &crate::services::authn::Authenticated,
    token: &Csrf,
    r: WayInRemoval,
    what: &str,
) -> HttpResponse {
    let message = removal_message(r, what).unwrap_or_default();
    render(
        state,
        me,
        token,
        StatusCode::BAD_REQUEST,
        "",
        None,
        Some(&message),
    )
    .await
}

/// `POST /account/passkeys/{id}/remove`.
pub async fn remove(
    req: HttpRequest,
    Then(SignedIn(me), form): Then<SignedIn, CsrfForm<RemoveForm>>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let password = form.into_inner().current_password.unwrap_or_default();
    match state.core.mfa.remove_passkey(&me, &id, &password).await {
        Ok(WayInRemoval::Removed) => see_other(paths::ACCOUNT_PASSKEYS),
        Ok(r) => refused(&state, &me, &csrf(&req, &state), r, "passkey").await,
        Err(e) => failure(e),
    }
}

/// `POST /account/password/remove`: the account signs in with its passkeys only from now.
pub async fn remove_password(
    req: HttpRequest,
    Then(SignedIn(me), form): Then<SignedIn, CsrfForm<RemoveForm>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let password = form.into_inner().current_password.unwrap_or_default();
    let token = csrf(&req, &state);
    match state.core.mfa.remove_password(&me, &password).await {
        Ok(WayInRemoval::Removed) => {
            let mut me = me;
            me.user.has_password = false;
            render(
                &state,
                &me,
                &token,
                StatusCode::OK,
                "",
                Some("Your password is removed: you sign in with a passkey."),
                None,
            )
            .await
        }
        Ok(r) => refused(&state, &me, &token, r, "password").await,
        Err(e) => failure(e),
    }
}

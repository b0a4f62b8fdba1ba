//! Sign-in through upstream providers on the pages (CONTRACT.md "Upstream identity
//! providers"): `/login/upstream/{id}` sends the browser to the provider, its callback
//! `/login/upstream/{id}/callback` comes back, `/login/link-account` proves an existing account
//! (inputs `email`, `password`) before an identity is linked to it, and the account page links
//! (`/account/identities/link`) and unlinks (`/account/identities/unlink`, the submit named
//! `unlink`). Each handler makes one call to `services::federation::Federation`; a failure ends
//! on a page that says what happened and offers the other ways to sign in.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::safe_return_to;
use crate::http::extractors::{CsrfChecked, CsrfForm, SignedIn, Then};
use crate::http::support::{
    clear_link_cookie, clear_upstream_cookie, client_addr, csrf, link_cookie, link_cookie_value,
    page, return_to_query, see_other, session_cookie_value, upstream_cookie, upstream_cookie_value,
    user_agent,
};
use crate::paths;
use crate::services::authn::SignInOutcome;
use crate::services::federation::{
    Begin, Begun, Callback, CallbackOutcome, Failure, ProveAccount, Provider, Unlinked,
};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "upstream_failed.html")]
struct FailedPage<'a> {
    message: &'a str,
    reason: &'a str,
    return_query: String,
    upstreams: Vec<Provider>,
}

#[derive(Template)]
#[template(path = "link_account.html")]
struct LinkPage<'a> {
    csrf: &'a str,
    provider: &'a str,
    email: &'a str,
    return_query: String,
    error: Option<&'a str>,
}

fn status_of(f: &Failure) -> StatusCode {
    match f {
        Failure::UnknownProvider => StatusCode::NOT_FOUND,
        Failure::State(_) => StatusCode::BAD_REQUEST,
        Failure::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        Failure::Denied
        | Failure::Stale
        | Failure::NoEmail
        | Failure::NoAccount
        | Failure::SessionChanged
        | Failure::Disabled => StatusCode::FORBIDDEN,
        Failure::IdentityTaken | Failure::ProviderTaken => StatusCode::CONFLICT,
        Failure::ProviderError(_)
        | Failure::Mixup(_)
        | Failure::BadAnswer(_)
        | Failure::UnknownKey => StatusCode::BAD_GATEWAY,
        Failure::Unreachable(_) => StatusCode::GATEWAY_TIMEOUT,
        Failure::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The page for a sign-in that did not work: what happened, and the other ways in.
async fn failed(state: &AppState, f: &Failure, return_to: &str) -> HttpResponse {
    let view = FailedPage {
        message: f.message(),
        reason: f.reason(),
        return_query: return_to_query(return_to),
        // The database has just failed: not asked again for the buttons.
        upstreams: if *f == Failure::Unavailable {
            Vec::new()
        } else {
            state.core.federation.providers().await
        },
    };
    let mut resp = page(status_of(f), &view, None);
    if let Failure::RateLimited(wait) = f
        && let Ok(v) = actix_web::http::header::HeaderValue::from_str(&wait.to_string())
    {
        resp.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, v);
    }
    let _ = resp.add_cookie(&clear_upstream_cookie(state));
    resp
}

#[derive(Deserialize)]
pub struct BeginQuery {
    return_to: Option<String>,
}

/// `GET /login/upstream/{id}`: on to the provider.
pub async fn begin(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<BeginQuery>,
) -> HttpResponse {
    let return_to = safe_return_to(q.return_to.as_deref()).unwrap_or_default();
    let b = Begin {
        upstream_id: id.into_inner(),
        return_to: return_to.clone(),
        link_for: None,
        ip: client_addr(&req, &state),
    };
    redirect(&state, state.core.federation.begin(b).await, &return_to).await
}

async fn redirect(state: &AppState, begun: Begun, return_to: &str) -> HttpResponse {
    match begun {
        Begun::Redirect { location, binding } => {
            let mut resp = see_other(&location);
            if let Err(e) = resp.add_cookie(&upstream_cookie(state, binding)) {
                tracing::error!(error = %e, "cannot set the upstream cookie");
            }
            resp
        }
        Begun::Failed(f) => failed(state, &f, return_to).await,
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// `GET /login/upstream/{id}/callback`: the provider's answer.
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<CallbackQuery>,
) -> HttpResponse {
    let q = q.into_inner();
    let c = Callback {
        upstream_id: id.into_inner(),
        code: q.code,
        state: q.state,
        iss: q.iss,
        error: q.error,
        binding: upstream_cookie_value(&req, &state),
        session: session_cookie_value(&req, &state),
        ip: client_addr(&req, &state),
        user_agent: user_agent(&req),
    };
    let mut resp = match state.core.federation.callback(c).await {
        CallbackOutcome::SignIn { outcome, return_to } => {
            signed_in(&req, &state, &return_to, outcome).await
        }
        CallbackOutcome::Linked => see_other(paths::ACCOUNT),
        CallbackOutcome::ProveAccount { cookie } => {
            let mut resp = see_other(paths::LOGIN_LINK_ACCOUNT);
            if let Err(e) = resp.add_cookie(&link_cookie(&state, cookie)) {
                tracing::error!(error = %e, "cannot set the link cookie");
            }
            resp
        }
        CallbackOutcome::Failed(f) => failed(&state, &f, "").await,
    };
    let _ = resp.add_cookie(&clear_upstream_cookie(&state));
    resp
}

/// The message when the account behind an upstream identity cannot sign in (disabled).
const ACCOUNT_REFUSED: &str = "This account cannot sign in.";

async fn signed_in(
    req: &HttpRequest,
    state: &AppState,
    return_to: &str,
    outcome: SignInOutcome,
) -> HttpResponse {
    super::login::respond(req, state, return_to, "", ACCOUNT_REFUSED, outcome).await
}

/// `GET /login/link-account`: the proof page for this browser's waiting identity.
pub async fn link_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    show_link_page(&req, &state, StatusCode::OK, None).await
}

async fn show_link_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let cookie = link_cookie_value(req, state);
    match state.core.federation.link_prompt(cookie.as_deref()).await {
        Ok(Some(p)) => {
            let token = csrf(req, state);
            let view = LinkPage {
                csrf: &token.token,
                provider: &p.provider,
                email: &p.email,
                return_query: return_to_query(&p.return_to),
                error,
            };
            page(status, &view, Some(&token))
        }
        Ok(None) => failed(state, &Failure::State("no link request".into()), "").await,
        Err(f) => failed(state, &f, "").await,
    }
}

#[derive(Deserialize)]
pub struct LinkForm {
    email: Option<String>,
    password: Option<String>,
}

/// `POST /login/link-account`: the existing account's password (then its second factor).
pub async fn prove(
    req: HttpRequest,
    state: web::Data<AppState>,
    CsrfChecked { form, valid }: CsrfChecked<LinkForm>,
) -> HttpResponse {
    if !valid {
        return show_link_page(
            &req,
            &state,
            StatusCode::FORBIDDEN,
            Some("This form has expired. Please try again."),
        )
        .await;
    }
    let p = ProveAccount {
        cookie: link_cookie_value(&req, &state),
        email: form.email.unwrap_or_default(),
        password: form.password.unwrap_or_default(),
        ip: client_addr(&req, &state),
        user_agent: user_agent(&req),
        previous_session: session_cookie_value(&req, &state),
    };
    match state.core.federation.prove_account(p).await {
        Ok((SignInOutcome::Refused, _)) => {
            show_link_page(
                &req,
                &state,
                StatusCode::OK,
                Some(super::login::GENERIC_FAILURE),
            )
            .await
        }
        Ok((outcome, return_to)) => {
            let done = matches!(
                outcome,
                SignInOutcome::SignedIn { .. }
                    | SignInOutcome::SecondFactorNeeded { .. }
                    | SignInOutcome::EnrolSecondFactor { .. }
            );
            let mut resp = signed_in(&req, &state, &return_to, outcome).await;
            if done {
                let _ = resp.add_cookie(&clear_link_cookie(&state));
            }
            resp
        }
        Err(f) => failed(&state, &f, "").await,
    }
}

#[derive(Deserialize)]
pub struct LinkFromAccount {
    upstream: Option<String>,
}

/// `POST /account/identities/link`: on to the provider, to link it to this account.
pub async fn link(
    req: HttpRequest,
    Then(SignedIn(me), form): Then<SignedIn, CsrfForm<LinkFromAccount>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let b = Begin {
        upstream_id: form.into_inner().upstream.unwrap_or_default(),
        return_to: paths::ACCOUNT.to_owned(),
        link_for: Some((me.user.id, me.session.auth_time)),
        ip: client_addr(&req, &state),
    };
    redirect(&state, state.core.federation.begin(b).await, paths::ACCOUNT).await
}

#[derive(Deserialize)]
pub struct UnlinkForm {
    unlink: Option<String>,
}

/// `POST /account/identities/unlink`: the submit named `unlink` names the provider.
pub async fn unlink(
    req: HttpRequest,
    Then(SignedIn(me), form): Then<SignedIn, CsrfForm<UnlinkForm>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let upstream = form.into_inner().unlink.unwrap_or_default();
    let ip = client_addr(&req, &state);
    match state.core.federation.unlink(&me.user.id, &upstream, ip).await {
        Unlinked::Done => see_other(paths::ACCOUNT),
        Unlinked::LastWayIn => {
            super::account::refused(
                &state,
                &csrf(&req, &state),
                &me,
                StatusCode::CONFLICT,
                "This is the last way to sign in to your account: set a password or add a passkey before you unlink it.",
            )
            .await
        }
        Unlinked::NotFound => {
            super::account::refused(
                &state,
                &csrf(&req, &state),
                &me,
                StatusCode::NOT_FOUND,
                "That provider is not linked to your account.",
            )
            .await
        }
        Unlinked::Unavailable => {
            use actix_web::ResponseError;
            crate::error::AppError::Unavailable.error_response()
        }
    }
}

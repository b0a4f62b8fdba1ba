//! RP-Initiated Logout 1.0 at `/oauth2/logout` (`end_session_endpoint`).
//!
//! With a valid `id_token_hint` the session ends without a question (§2); otherwise a
//! confirmation page with `decision=logout` (CSRF-protected) is shown. `post_logout_redirect_uri`
//! must be registered for the client named by the hint or by `client_id` (§3); a URI that is not
//! is never redirected to. A client that registered itself (RFC 7591 open registration) is not
//! trusted to send a browser back through us without the user's confirmation (RFC 9700
//! §4.11.2): its own ID token as the hint would otherwise make this an open redirector.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::http::extractors::PageForm;
use crate::http::support::{
    bad_request_page, clear_session_cookie, csrf, csrf_ok, current_user, page, see_other,
    session_cookie_value,
};
use crate::oauth::params::Params;
use crate::services::{authn, tokens};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "logout.html")]
struct Confirm<'a> {
    csrf: &'a str,
    email: Option<&'a str>,
    post_logout_redirect_uri: Option<&'a str>,
    client_id: Option<&'a str>,
    state: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message<'a> {
    title: &'a str,
    message: &'a str,
    link: Option<(&'a str, &'a str)>,
}

pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match Params::parse(req.query_string()) {
        Ok(p) => handle(&req, &state, p).await,
        Err(e) => bad_request_page(&format!("The sign-out request is not valid: {e}.")),
    }
}

pub async fn post(
    req: HttpRequest,
    state: web::Data<AppState>,
    PageForm(params): PageForm,
) -> HttpResponse {
    handle(&req, &state, params).await
}

async fn handle(req: &HttpRequest, state: &AppState, params: Params) -> HttpResponse {
    let now = state.clock.now();
    let one = |n: &str| params.one(n).ok().flatten().map(str::to_owned);
    // One pass with a set: the check must not grow faster than the request (it once compared
    // every parameter with every other).
    if params.first_repeated().is_some() {
        return bad_request_page("A parameter of the sign-out request is repeated.");
    }
    let hint = match one("id_token_hint") {
        Some(h) => match tokens::verify_id_token_hint(state, &h, now).await {
            Some(c) => Some(c),
            None => {
                return bad_request_page(
                    "The id_token_hint is not a valid ID token from this server.",
                );
            }
        },
        None => None,
    };
    // §2: client_id, when given with a hint, must be the hint's audience.
    let client_id = match (
        hint.as_ref().and_then(|h| h.client_id().map(str::to_owned)),
        one("client_id"),
    ) {
        (Some(a), Some(b)) if a != b => {
            return bad_request_page("client_id does not match the id_token_hint.");
        }
        (a, b) => a.or(b),
    };
    // Whether the client behind the redirect registered itself (then the user confirms first).
    let mut self_registered = false;
    let redirect = match one("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = match &client_id {
                Some(id) => match state.store.client(id).await {
                    Ok(Some(c)) => {
                        self_registered = c.dynamically_registered;
                        c.post_logout_uri_registered(&uri)
                    }
                    Ok(None) => false,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot load a client");
                        return crate::error::AppError::Unavailable.error_response();
                    }
                },
                None => false,
            };
            if !registered {
                return bad_request_page(
                    "The post_logout_redirect_uri is not registered for this application.",
                );
            }
            Some(uri)
        }
    };
    let rp_state = one("state");
    let current = match current_user(req, state, now).await {
        Ok(u) => u,
        Err(e) => return e.error_response(),
    };
    let confirmed = match one("decision").as_deref() {
        Some("logout") => {
            if !csrf_ok(req, state, one("csrf_token").as_deref()) {
                return crate::error::AppError::html(
                    StatusCode::FORBIDDEN,
                    "This form has expired",
                    "Please try again.",
                );
            }
            true
        }
        _ => false,
    };
    // A valid hint for the signed-in user (or for nobody signed in) needs no question.
    let hint_matches = hint
        .as_ref()
        .is_some_and(|h| current.as_ref().is_none_or(|c| c.user.id.as_str() == h.sub));
    if !confirmed && (!hint_matches || self_registered) {
        let token = csrf(req, state);
        let view = Confirm {
            csrf: &token.token,
            email: current.as_ref().map(|c| c.user.email.as_str()),
            post_logout_redirect_uri: redirect.as_deref(),
            client_id: client_id.as_deref(),
            state: rp_state.as_deref(),
        };
        return page(StatusCode::OK, &view, Some(&token));
    }
    if let Some(cookie) = session_cookie_value(req, state)
        && let Err(e) = authn::end_session(state, &cookie).await
    {
        tracing::error!(error = %e, "cannot end a session");
        return crate::error::AppError::Unavailable.error_response();
    }
    if let Some(c) = &current {
        let entry = crate::store::accounts::AuditEntry {
            kind: "logout",
            user_id: Some(c.user.id.as_str().to_owned()),
            client_id: client_id.clone(),
            detail: format!("sid {}", c.session.sid),
            ..Default::default()
        };
        crate::http::support::audit(state, entry).await;
    }
    let mut resp = match redirect {
        Some(uri) => {
            let mut target = uri.clone();
            if let Some(s) = &rp_state {
                let q = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("state", s)
                    .finish();
                target.push(if target.contains('?') { '&' } else { '?' });
                target.push_str(&q);
            }
            see_other(&target)
        }
        None => page(
            StatusCode::OK,
            &Message {
                title: "You are signed out",
                message: "You have been signed out of Castellan.",
                link: None,
            },
            None,
        ),
    };
    let _ = resp.add_cookie(&clear_session_cookie(state));
    resp
}

//! RP-Initiated Logout 1.0 at `/oauth2/logout` (`end_session_endpoint`): the request's
//! parameters and the confirmation's CSRF field are read here; the rules are `oidc::logout`'s.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::error::AppError;
use crate::oidc::logout::{LogoutOutcome, LogoutRequest};
use askama::Template;

use crate::http::extractors::PageForm;
use crate::http::support::{
    bad_request_page, clear_session_cookie, csrf, csrf_ok, page, see_other, session_cookie_value,
};
use crate::oauth::params::Params;
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
    // The confirmation form's CSRF field, checked like every form's (the request itself may
    // come as a GET from a relying party, so it is read from the parameters here).
    let confirmation = match params.one("decision") {
        Ok(Some("logout")) => {
            let submitted = params.one("csrf_token").ok().flatten();
            Some(csrf_ok(req, state, submitted))
        }
        _ => None,
    };
    let cookie = session_cookie_value(req, state);
    let outcome = state
        .core
        .logout
        .end(LogoutRequest {
            params: &params,
            session_cookie: cookie.as_deref(),
            confirmation,
        })
        .await;
    match outcome {
        LogoutOutcome::Refused(message) => bad_request_page(message),
        LogoutOutcome::Expired => AppError::html(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "Please try again.",
        ),
        LogoutOutcome::Unavailable => AppError::Unavailable.error_response(),
        LogoutOutcome::Confirm {
            email,
            post_logout_redirect_uri,
            client_id,
            state: rp_state,
        } => {
            let token = csrf(req, state);
            let view = Confirm {
                csrf: &token.token,
                email: email.as_deref(),
                post_logout_redirect_uri: post_logout_redirect_uri.as_deref(),
                client_id: client_id.as_deref(),
                state: rp_state.as_deref(),
            };
            page(StatusCode::OK, &view, Some(&token))
        }
        LogoutOutcome::SignedOut { redirect } => {
            let mut resp = match redirect {
                Some(target) => see_other(&target),
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
    }
}

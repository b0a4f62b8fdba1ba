//! The consent page (`/consent`): the client's name and the requested scopes in plain words,
//! with `decision=allow` / `decision=deny`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::http::api::oauth::outcome_response;
use crate::http::extractors::{CsrfForm, CurrentSession, Then};
use crate::http::support::{bad_request_page, csrf, page, see_other};
use crate::oauth::authorize::authorize_params_of;
use crate::paths;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    csrf: &'a str,
    return_to: &'a str,
    client_name: &'a str,
    user_email: &'a str,
    scopes: Vec<String>,
}

/// Plain words for a scope (OpenID Connect Core 1.0 §5.4).
fn describe(scope: &str) -> String {
    match scope {
        "openid" => "Sign you in with your account".into(),
        "profile" => "See your name and profile".into(),
        "email" => "See your email address".into(),
        "offline_access" => "Stay connected when you are not using it".into(),
        "roles" => "See the roles your account has".into(),
        "admin" => "Administer this sign-in service on your behalf".into(),
        other => format!("Use the \u{201c}{other}\u{201d} permission"),
    }
}

#[derive(Deserialize)]
pub struct ConsentQuery {
    return_to: Option<String>,
}

fn login_redirect(return_to: &str) -> HttpResponse {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    see_other(&format!("{}?{q}", paths::LOGIN))
}

pub async fn show(
    req: HttpRequest,
    CurrentSession(session): CurrentSession,
    state: web::Data<AppState>,
    q: web::Query<ConsentQuery>,
) -> HttpResponse {
    let Some(return_to) = q.return_to.clone() else {
        return bad_request_page("This page is reached from an application's sign-in request.");
    };
    let Some(params) = authorize_params_of(&return_to) else {
        return bad_request_page("This page is reached from an application's sign-in request.");
    };
    let Some(user) = session else {
        return login_redirect(&return_to);
    };
    let mut request = match state.core.authorization.validate(params).await {
        Ok(r) => r,
        Err(outcome) => return outcome_response(outcome),
    };
    request.restrict_to(&user.user);
    let token = csrf(&req, &state);
    let view = ConsentPage {
        csrf: &token.token,
        return_to: &return_to,
        client_name: &request.client.name,
        user_email: &user.user.email,
        scopes: request.scope().iter().map(describe).collect(),
    };
    page(StatusCode::OK, &view, Some(&token))
}

#[derive(Deserialize)]
pub struct ConsentForm {
    return_to: Option<String>,
    decision: Option<String>,
}

pub async fn submit(
    Then(CurrentSession(session), form): Then<CurrentSession, CsrfForm<ConsentForm>>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form = form.into_inner();
    let return_to = form.return_to.unwrap_or_default();
    let Some(params) = authorize_params_of(&return_to) else {
        return bad_request_page("This page is reached from an application's sign-in request.");
    };
    let Some(user) = session else {
        return login_redirect(&return_to);
    };
    let allow = match form.decision.as_deref() {
        Some("allow") => true,
        Some("deny") => false,
        _ => return bad_request_page("Choose Allow or Deny."),
    };
    match state
        .core
        .authorization
        .consent(params, &user.user, allow)
        .await
    {
        Ok(back) => see_other(&back),
        Err(outcome) => outcome_response(outcome),
    }
}

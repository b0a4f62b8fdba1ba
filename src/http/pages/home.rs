//! `/`: who is signed in, with a sign-out button (and a link to the admin pages for admins).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::http::extractors::CurrentSession;
use crate::http::support::{csrf, page};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "home.html")]
struct Home<'a> {
    email: Option<&'a str>,
    /// Shows the link to the admin pages.
    admin: bool,
    csrf: &'a str,
}

pub async fn show(
    req: HttpRequest,
    CurrentSession(user): CurrentSession,
    state: web::Data<AppState>,
) -> HttpResponse {
    let token = csrf(&req, &state);
    let view = Home {
        email: user.as_ref().map(|u| u.user.email.as_str()),
        admin: user
            .as_ref()
            .is_some_and(|u| u.user.has_role(crate::domain::Role::ADMIN)),
        csrf: &token.token,
    };
    page(StatusCode::OK, &view, Some(&token))
}

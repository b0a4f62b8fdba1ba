//! The admin pages (`/admin`): users, clients, roles, the audit log, signing keys and upstream
//! identity providers, for a
//! signed-in user with the `admin` role, one file per resource. Server-rendered, no JavaScript.
//!
//! - Not signed in: 303 to the login page, which comes back here (`return_to`).
//! - Signed in without the `admin` role: a 403 page ([`AdminSession`] asks the core:
//!   `services::admin::Admin::authorize`).
//! - Every form is a POST with the CSRF field of the other pages, refused without it (403,
//!   [`CsrfForm`]). Actions answer 303 to the page they came from (post/redirect/get) with a
//!   fixed `notice` code; a new client secret is the exception: it is rendered at once,
//!   `Cache-Control: no-store`, and never put in a URL or stored in the clear.
//! - Validation errors re-render the form with the messages next to their fields and the values
//!   kept (422); conflicts show the page with the message (409); a missing thing is the 404 page.
//!
//! The use cases live in [`crate::services::admin`]; each change is audited there with the
//! administrator as its actor. Templates get view structs, never entities.

pub mod audit;
pub mod clients;
pub mod keys;
pub mod roles;
pub mod upstreams;
pub mod users;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use serde::Deserialize;

use crate::domain::{Invalid, UnixTime, User};
use crate::error::AppError;
use crate::http::extractors::{AdminBounds, AdminSession, CsrfForm, Pending, SessionRefusal, Then};
use crate::http::support::{Csrf, csrf, page, see_other};
use crate::services::admin::{Actor, AdminError};
use crate::state::AppState;

/// An administrator's form post: the session is checked first, then the form and its CSRF field.
pub type AdminPost = Then<Admin, CsrfForm<Vec<(String, String)>, AdminBounds>>;

/// A signed-in administrator and what every admin page needs.
pub struct Admin {
    user: User,
    actor: Actor,
    csrf: Csrf,
}

/// Taken by every admin page handler: the administrator check ([`AdminSession`]), then the
/// page's CSRF token.
impl FromRequest for Admin {
    type Error = SessionRefusal;
    type Future = Pending<Self, Self::Error>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let session = AdminSession::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let session = session.await?;
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("no application state")))?;
            Ok(Admin {
                csrf: csrf(&req, state),
                actor: session.actor,
                user: session.me.user,
            })
        })
    }
}

impl Admin {
    fn frame(&self, section: &'static str, notice: Option<&'static str>) -> Frame {
        Frame {
            csrf: self.csrf.token.clone(),
            email: self.user.email.clone(),
            section,
            notice,
            error: None,
        }
    }

    fn is(&self, user_id: &str) -> bool {
        self.user.id.as_str() == user_id
    }
}

/// A form body as ordered pairs: repeated names (role and grant-type checkboxes) are kept.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn text(&self, name: &str) -> String {
        self.one(name).unwrap_or_default().to_owned()
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// A checked checkbox.
    fn flag(&self, name: &str) -> bool {
        self.one(name).is_some_and(|v| !v.is_empty())
    }
}

/// What the admin layout shows around every page.
struct Frame {
    csrf: String,
    /// Who is signed in.
    email: String,
    /// The navigation entry of this page (`aria-current`).
    section: &'static str,
    notice: Option<&'static str>,
    /// A conflict the last action ran into.
    error: Option<String>,
}

/// Per-field messages of a refused form.
#[derive(Default)]
struct Errors(Vec<Invalid>);

impl Errors {
    /// The messages for one field, or `None`.
    fn get(&self, field: &str) -> Option<String> {
        let v: Vec<&str> = self
            .0
            .iter()
            .filter(|e| e.field == field)
            .map(|e| e.message.as_str())
            .collect();
        (!v.is_empty()).then(|| v.join(" "))
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn messages(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.message.as_str()).collect()
    }
}

impl From<Vec<Invalid>> for Errors {
    /// Field names as the forms spell them (the domain names single values).
    fn from(v: Vec<Invalid>) -> Self {
        Errors(
            v.into_iter()
                .map(|mut e| {
                    e.field = match e.field {
                        "grant_type" => "grant_types",
                        "redirect_uri" => "redirect_uris",
                        "role" => "roles",
                        f => f,
                    };
                    e
                })
                .collect(),
        )
    }
}

/// The messages a `notice` code in a redirect stands for (fixed text, never user data).
fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "roles-saved" => "The roles are saved.",
        "disabled" => "The account is disabled; its sessions and refresh tokens have ended.",
        "enabled" => "The account is enabled.",
        "sessions-ended" => "Every session and refresh token of this user has ended.",
        "reset-sent" => "A password-reset link is on its way to the user.",
        "mfa-reset" => "The user's second factors are removed; a mail tells them.",
        "mfa-none" => "The user had no second factor: nothing was removed.",
        "user-deleted" => "The user is deleted.",
        "client-saved" => "The client is saved.",
        "client-deleted" => "The client is deleted.",
        "role-created" => "The role is created.",
        "role-deleted" => "The role is deleted.",
        "key-rotated" => "A new signing key is published; it signs from the time shown.",
        "upstream-created" => {
            "The upstream provider is registered. Register its redirect URI at the provider."
        }
        "upstream-deleted" => "The upstream provider is deleted.",
        _ => return None,
    })
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// A route pattern with its one parameter (`{id}`, `{name}`) filled in, percent-encoded.
fn fill(pattern: &str, value: &str) -> String {
    let (Some(open), Some(close)) = (pattern.find('{'), pattern.find('}')) else {
        return pattern.to_owned();
    };
    let mut encoded = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{}{encoded}{}", &pattern[..open], &pattern[close + 1..])
}

fn with_notice(location: &str, code: &str) -> HttpResponse {
    see_other(&format!("{location}?notice={code}"))
}

/// Seconds since the epoch as `2026-01-31 14:05:09 UTC`.
fn datetime(t: UnixTime) -> String {
    chrono::DateTime::from_timestamp(t.secs(), 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// An admin error as a page: 404 for a missing thing, the message for a conflict or a refused
/// value, and a logged 503/500 for the rest (never its details).
fn failure(e: AdminError) -> HttpResponse {
    match e {
        AdminError::NotFound(_) => AppError::NotFound.error_response(),
        AdminError::Conflict(m) | AdminError::Refused(m) => {
            AppError::html(StatusCode::CONFLICT, "This cannot be done", &m)
        }
        AdminError::Invalid(v) => AppError::html(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Something is wrong with this request",
            &Errors::from(v).messages().join(" "),
        ),
        AdminError::Store(e) => {
            tracing::error!(error = %e, "an admin page cannot reach the database");
            AppError::Unavailable.error_response()
        }
        AdminError::Unexpected(m) => AppError::Unexpected(anyhow::anyhow!(m)).error_response(),
    }
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
pub(super) struct ConfirmPage<'a> {
    frame: Frame,
    title: &'a str,
    /// What goes away, named (an email, a client name).
    subject: &'a str,
    consequence: &'a str,
    action: String,
    button: &'a str,
    cancel: String,
}

// --- overview ------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/index.html")]
struct IndexPage {
    frame: Frame,
}

pub async fn index(a: Admin) -> HttpResponse {
    let view = IndexPage {
        frame: a.frame("overview", None),
    };
    page(StatusCode::OK, &view, Some(&a.csrf))
}

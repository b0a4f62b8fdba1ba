//! `AppError`: the one place where failures of page and API routes become HTTP responses.
//!
//! Browser routes render `error.html` with a safe message; JSON routes answer
//! `{"error": ..., "error_description": ...}`. Unexpected errors are logged once, with their
//! whole chain, and never shown. OAuth protocol errors have their own type (`oauth::OAuthError`)
//! because the RFCs fix their wire format.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A page or resource that does not exist.
    #[error("not found")]
    NotFound,
    /// A request a browser user made that we cannot act on; the message is shown to them.
    #[error("{0}")]
    BadRequest(String),
    /// A dependency (the database) is not answering.
    #[error("service unavailable")]
    Unavailable,
    /// A bounded queue (the password workers) is full: retry in a moment.
    #[error("service busy")]
    Busy,
    /// Not for this user (title, message): 403.
    #[error("{0}")]
    Forbidden(&'static str, &'static str),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

impl AppError {
    fn title_and_message(&self) -> (&'static str, String) {
        match self {
            AppError::NotFound => ("Not found", "There is nothing at this address.".to_owned()),
            AppError::BadRequest(m) => ("Something is wrong with this request", m.clone()),
            AppError::Unavailable => (
                "Temporarily unavailable",
                "Please try again in a moment.".to_owned(),
            ),
            AppError::Forbidden(title, message) => (*title, (*message).to_owned()),
            AppError::Busy => (
                "Busy right now",
                "Many people are signing in at this moment. Please try again in a second."
                    .to_owned(),
            ),
            AppError::Unexpected(_) => (
                "Something went wrong",
                "An unexpected error happened on our side. Please try again.".to_owned(),
            ),
        }
    }

    /// Renders an HTML error page (for browser routes) with the given status.
    pub fn html(status: StatusCode, title: &str, message: &str) -> HttpResponse {
        let body = ErrorPage { title, message }
            .render()
            .unwrap_or_else(|_| format!("<!doctype html><title>{status}</title><p>{status}</p>"));
        HttpResponse::build(status)
            .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((CACHE_CONTROL, "no-store"))
            .body(body)
    }
}

/// How long a client is asked to wait when a bounded queue is full (RFC 9110 §10.2.3).
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// How long a client is asked to wait when the database is unavailable (RFC 9110 §10.2.3, with
/// 503: §15.6.4). Short: the server notices the database's return with the next request.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// Adds `Retry-After: secs` (RFC 9110 §10.2.3) to a response.
pub fn with_retry_after(res: &mut HttpResponse, secs: u64) {
    res.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from(secs),
    );
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::Forbidden(..) => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unavailable | AppError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let AppError::Unexpected(e) = self {
            tracing::error!(error = format!("{e:#}"), "unexpected error");
        }
        let (title, message) = self.title_and_message();
        let mut res = AppError::html(self.status_code(), title, &message);
        match self {
            AppError::Busy => with_retry_after(&mut res, BUSY_RETRY_AFTER_SECS),
            AppError::Unavailable => with_retry_after(&mut res, UNAVAILABLE_RETRY_AFTER_SECS),
            _ => {}
        }
        res
    }
}

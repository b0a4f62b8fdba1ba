//! The browser's session: [`CurrentSession`] (maybe none) and [`SignedIn`] (none sends the
//! browser to the login page, which comes back afterwards).

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};

use super::forms::Pending;
use crate::error::AppError;
use crate::services::authn::Authenticated;
use crate::state::AppState;

/// The signed-in browser, if any. A database failure is a 503 page, not "signed out".
pub struct CurrentSession(pub Option<Authenticated>);

/// Why a page that needs a session was not shown.
#[derive(Debug, thiserror::Error)]
pub enum SessionRefusal {
    /// No live session: to the login page, coming back to `return_to` afterwards.
    #[error("not signed in")]
    SignIn { return_to: String },
    /// Somewhere else first (a step-up or enrolment), which comes back afterwards.
    #[error("another step first")]
    Redirect(String),
    #[error(transparent)]
    Page(#[from] AppError),
}

impl ResponseError for SessionRefusal {
    fn error_response(&self) -> HttpResponse {
        match self {
            SessionRefusal::SignIn { return_to } => {
                let q = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("return_to", return_to)
                    .finish();
                crate::http::support::see_other(&format!("{}?{q}", crate::paths::LOGIN))
            }
            SessionRefusal::Redirect(to) => crate::http::support::see_other(to),
            SessionRefusal::Page(e) => e.error_response(),
        }
    }
}

pub(super) async fn session_of(req: &HttpRequest) -> Result<Option<Authenticated>, AppError> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Err(AppError::Unexpected(anyhow::anyhow!(
            "no application state"
        )));
    };
    let Some(cookie) = crate::http::support::session_cookie_value(req, state) else {
        return Ok(None);
    };
    state.core.authn.current(&cookie).await.map_err(|e| {
        tracing::error!(error = %e, "cannot read the session");
        AppError::Unavailable
    })
}

impl FromRequest for CurrentSession {
    type Error = AppError;
    type Future = Pending<Self, Self::Error>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { session_of(&req).await.map(CurrentSession) })
    }
}

/// A signed-in browser. Without one, a GET is sent to the login page and back to the same
/// address; a POST back to the page its form is on (`/account`, `/admin`).
pub struct SignedIn(pub Authenticated);

/// Where the login page sends a browser that had no session.
pub(super) fn come_back_to(req: &HttpRequest) -> String {
    if req.method() == Method::GET
        && let Some(pq) = req.uri().path_and_query()
        && let Some(safe) = crate::http::pages::safe_return_to(Some(pq.as_str()))
    {
        return safe;
    }
    if req.path().starts_with(crate::paths::ADMIN) {
        crate::paths::ADMIN.to_owned()
    } else {
        crate::paths::ACCOUNT.to_owned()
    }
}

impl FromRequest for SignedIn {
    type Error = SessionRefusal;
    type Future = Pending<Self, Self::Error>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match session_of(&req).await? {
                Some(me) => Ok(SignedIn(me)),
                None => Err(SessionRefusal::SignIn {
                    return_to: come_back_to(&req),
                }),
            }
        })
    }
}

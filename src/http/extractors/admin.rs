//! Administrators: [`AdminSession`] for the admin pages (a signed-in user with the `admin`
//! role) and [`AdminBearer`] for the admin API (an access token granted `admin`). Both ask the
//! core ([`crate::services::admin::Admin::authorize`]), which gives the [`Actor`] every admin
//! action requires; here is only how a refusal looks on each surface.

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, web};

use super::forms::Pending;
use super::session::{SessionRefusal, SignedIn, come_back_to};
use crate::error::AppError;
use crate::http::api::admin::ApiProblem;
use crate::services::admin::{Actor, Caller, Denied};
use crate::services::authn::Authenticated;
use crate::services::tokens::AccessTokenError;
use crate::state::AppState;

fn state_of(req: &HttpRequest) -> Result<web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("no application state")))
}

/// A signed-in administrator: the [`Actor`] for the audit log and the session (for the page).
pub struct AdminSession {
    pub actor: Actor,
    pub me: Authenticated,
}

impl FromRequest for AdminSession {
    type Error = SessionRefusal;
    type Future = Pending<Self, Self::Error>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let signed_in = SignedIn::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let SignedIn(me) = signed_in.await?;
            let state = state_of(&req)?;
            match state.core.admin.authorize(Caller::Session(&me)).await {
                Ok(actor) => Ok(AdminSession { actor, me }),
                Err(Denied::Store(e)) => {
                    tracing::error!(error = %e, "cannot check an administrator");
                    Err(AppError::Unavailable.into())
                }
                // The second factor first (step-up, or enrolment), then back here.
                Err(Denied::SecondFactorRequired { enrolled }) => {
                    let step = if enrolled {
                        crate::paths::LOGIN_SECOND_FACTOR
                    } else {
                        crate::paths::ACCOUNT_TOTP
                    };
                    let back = crate::http::support::return_to_query(&come_back_to(&req));
                    Err(SessionRefusal::Redirect(format!("{step}{back}")))
                }
                Err(Denied::NotAdmin) => Err(SessionRefusal::Page(AppError::Forbidden(
                    "Administrators only",
                    "Your account does not have the admin role. Ask an administrator if you need it.",
                ))),
            }
        })
    }
}

/// An administrator's bearer token (RFC 6750 §2.1) at the admin API.
pub struct AdminBearer(pub Actor);

impl FromRequest for AdminBearer {
    type Error = ApiProblem;
    type Future = Pending<Self, Self::Error>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state_of(&req).map_err(|_| ApiProblem::unavailable())?;
            if !req.headers().contains_key(AUTHORIZATION) {
                return Err(ApiProblem::unauthorized(false));
            }
            // Another scheme, or an empty token, is a credential that does not verify.
            let token = crate::http::support::bearer_header(&req)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ApiProblem::unauthorized(true))?;
            let core = &state.core;
            let (claims, user) = match core
                .tokens
                .verify_access_token_with_user(token, state.clock.time())
                .await
            {
                Ok(found) => found,
                Err(AccessTokenError::Store(e)) => {
                    tracing::error!(error = %e, "admin API: cannot check the token");
                    return Err(ApiProblem::unavailable());
                }
                Err(_) => return Err(ApiProblem::unauthorized(true)),
            };
            let caller = Caller::Token {
                claims: &claims,
                user: user.as_ref(),
            };
            match core.admin.authorize(caller).await {
                Ok(actor) => Ok(AdminBearer(actor)),
                // (A token's level was settled where it was issued: the authorization
                // endpoint applies the same policy.)
                Err(Denied::NotAdmin | Denied::SecondFactorRequired { .. }) => {
                    Err(ApiProblem::forbidden())
                }
                Err(Denied::Store(e)) => {
                    tracing::error!(error = %e, "admin API: cannot check the token");
                    Err(ApiProblem::unavailable())
                }
            }
        })
    }
}

//! A client's request at the token, revocation and introspection endpoints: its form body and
//! the credentials it presented (RFC 6749 §2.3.1). The core authenticates them
//! (`oauth::token::TokenEndpoint`).

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest};

use super::forms::{FORM_BOUNDS, OAuthRefusal, Pending, pending_form};
use crate::oauth::OAuthError;
use crate::oauth::token::{ClientRequest, client_credentials};

/// The form body, the credentials in it or in the `Authorization` header, and the address:
/// what `oauth::token::TokenEndpoint` authenticates.
pub struct ClientAuth(pub ClientRequest);

impl FromRequest for ClientAuth {
    type Error = OAuthRefusal;
    type Future = Pending<Self, Self::Error>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = req.clone();
        pending_form(req, payload, FORM_BOUNDS, move |read| {
            let params =
                read.map_err(|e| OAuthRefusal(OAuthError::InvalidRequest(e.to_string())))?;
            Ok(ClientAuth(ClientRequest {
                credentials: client_credentials(
                    request.headers().get(AUTHORIZATION).map(|v| v.as_bytes()),
                    &params,
                ),
                ip: crate::http::support::client_addr_of(&request),
                params,
            }))
        })
    }
}

//! A client's request at the token, revocation and introspection endpoints: its form body and
//! the credentials it presented (RFC 6749 §2.3.1). The core authenticates them
//! (`oauth::token::TokenEndpoint`).

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest};
use base64::Engine;

use super::forms::{FORM_BOUNDS, OAuthRefusal, Pending, pending_form};
use crate::oauth::OAuthError;
use crate::oauth::params::Params;
use crate::oauth::token::{AuthUsed, ClientCredentials, ClientRequest};

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
                credentials: client_credentials(&request, &params),
                ip: crate::http::support::client_addr_of(&request),
                params,
            }))
        })
    }
}

/// RFC 6749 §2.3.1: HTTP Basic with the form-urlencoded client id and secret, or both in the
/// body; a public client sends only `client_id`. Using two methods at once is refused (§2.3).
pub fn client_credentials(
    req: &HttpRequest,
    params: &Params,
) -> Result<Option<ClientCredentials>, OAuthError> {
    let body_id = params.one("client_id")?.map(str::to_owned);
    let body_secret = params.one("client_secret")?.map(str::to_owned);
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(h) = header {
        let Some(encoded) = h
            .strip_prefix("Basic ")
            .or_else(|| h.strip_prefix("basic "))
        else {
            return Err(OAuthError::InvalidClient(
                "unsupported authorization scheme".into(),
            ));
        };
        let bad = || OAuthError::InvalidClient("malformed Basic credentials".into());
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
        let unescape = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (id, secret) = (unescape(id), unescape(secret));
        if body_secret.is_some() {
            return Err(OAuthError::InvalidRequest(
                "use only one client authentication method".into(),
            ));
        }
        if body_id.as_deref().is_some_and(|b| b != id) {
            return Err(OAuthError::InvalidClient(
                "client_id does not match the credentials".into(),
            ));
        }
        return Ok(Some(ClientCredentials {
            client_id: id,
            secret: Some(secret),
            used: AuthUsed::Basic,
        }));
    }
    Ok(body_id.map(|client_id| ClientCredentials {
        used: if body_secret.is_some() {
            AuthUsed::Post
        } else {
            AuthUsed::None
        },
        client_id,
        secret: body_secret,
    }))
}

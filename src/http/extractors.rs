//! Request parsing shared by the OAuth endpoints: the form body as ordered [`Params`], and the
//! client's credentials (RFC 6749 §2.3.1).

use actix_web::HttpRequest;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE};
use base64::Engine;

use crate::oauth::OAuthError;
use crate::oauth::params::Params;
use crate::oauth::token::{AuthUsed, ClientCredentials};

/// The body of a POST, which must be `application/x-www-form-urlencoded` (RFC 6749 §3.2).
pub fn form_params(req: &HttpRequest, body: &[u8]) -> Result<Params, OAuthError> {
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| OAuthError::InvalidRequest("the body is not UTF-8".into()))?;
    Ok(Params::parse(text))
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

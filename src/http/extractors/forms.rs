//! Form bodies with bounds, as ordered [`Params`] or typed forms; [`CsrfForm`] also checks the
//! form's CSRF field.
//!
//! Every body is read up to a byte limit chosen per endpoint and refused past it before it is
//! parsed; every parse stops past [`MAX_PARAMS`] parameters (a larger bound for the admin
//! pages' forms, which list roles). What a refusal looks like depends on the surface: an OAuth
//! endpoint answers with RFC 6749 §5.2 JSON ([`OAuthForm`]), a page with an HTML page
//! ([`Form`], [`PageForm`], [`AdminForm`]). Query strings are bounded for every route at once by
//! [`crate::http::middleware::bound_query`].

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::AppError;
use crate::oauth::OAuthError;
use crate::oauth::params::{MAX_PARAMS, NotUtf8, Params, ParamsError, TooManyParams};

/// The largest form body a page or an OAuth endpoint accepts. A login, a token request with a
/// signed client assertion, or a sign-out with an ID token hint fits many times over.
pub const FORM_BYTES: usize = 16 * 1024;
/// The admin pages' forms: a client's redirect URIs, a user's roles.
pub const ADMIN_FORM_BYTES: usize = 64 * 1024;
/// The admin pages' forms may list every role as a checkbox.
pub const ADMIN_FORM_PARAMS: usize = 1000;
/// JSON bodies (dynamic client registration, the admin API).
pub const JSON_BYTES: usize = 64 * 1024;

/// How many bytes and parameters one endpoint accepts.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub bytes: usize,
    pub params: usize,
}

pub const FORM_BOUNDS: Bounds = Bounds {
    bytes: FORM_BYTES,
    params: MAX_PARAMS,
};
pub const ADMIN_FORM_BOUNDS: Bounds = Bounds {
    bytes: ADMIN_FORM_BYTES,
    params: ADMIN_FORM_PARAMS,
};

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body must be application/x-www-form-urlencoded")]
    NotAForm,
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// A name or value that is not UTF-8 once percent-decoded (RFC 6749 Appendix B).
    #[error(transparent)]
    NotUtf8(#[from] NotUtf8),
    #[error(transparent)]
    TooManyParams(#[from] TooManyParams),
    #[error("the form is malformed")]
    Malformed,
    #[error("the body could not be read")]
    Read,
}

impl From<ParamsError> for BodyError {
    fn from(e: ParamsError) -> Self {
        match e {
            ParamsError::TooMany(e) => BodyError::TooManyParams(e),
            ParamsError::NotUtf8(e) => BodyError::NotUtf8(e),
        }
    }
}

impl BodyError {
    fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Whether the request says its body is `application/x-www-form-urlencoded`.
pub fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Reads the whole body, refusing it as soon as it is known to exceed `limit` bytes (by its
/// `Content-Length`, or while it arrives).
pub async fn read_body(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<bytes::Bytes, BodyError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Read)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A form body (RFC 6749 §3.2: `application/x-www-form-urlencoded`) as bounded [`Params`].
async fn read_form(
    req: &HttpRequest,
    payload: Payload,
    bounds: Bounds,
) -> Result<Params, BodyError> {
    if !is_form(req) {
        return Err(BodyError::NotAForm);
    }
    let body = read_body(req, payload, bounds.bytes).await?;
    // Raw octets and percent-encoded ones are held to one rule: each name and value must be
    // UTF-8 once decoded.
    Ok(Params::parse_at_most(&body, bounds.params)?)
}

/// The authorization endpoint's form body (OpenID Connect Core 1.0 §3.1.2.1, POST): a pair that
/// does not decode is left for the core to refuse, which first decides whether the error may
/// go back to the client ([`crate::oauth::authorize::request_params`]).
async fn read_authorization_form(
    req: &HttpRequest,
    payload: Payload,
    bounds: Bounds,
) -> Result<Params, BodyError> {
    if !is_form(req) {
        return Err(BodyError::NotAForm);
    }
    let body = read_body(req, payload, bounds.bytes).await?;
    Ok(crate::oauth::authorize::request_params(&body)?)
}

pub type Pending<T, E> = Pin<Box<dyn Future<Output = Result<T, E>>>>;

/// The form body of an OAuth endpoint (token, revocation, introspection): refused with an
/// RFC 6749 §5.2 `invalid_request`.
pub struct OAuthForm(pub Params);

/// An OAuth endpoint's refusal of its request, as RFC 6749 §5.2 JSON.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OAuthRefusal(pub OAuthError);

impl ResponseError for OAuthRefusal {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::BAD_REQUEST)
    }

    fn error_response(&self) -> HttpResponse {
        crate::http::support::oauth_error(&self.0)
    }
}

impl FromRequest for OAuthForm {
    type Error = OAuthRefusal;
    type Future = Pending<Self, Self::Error>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        pending_form(req, payload, FORM_BOUNDS, |read| {
            read.map(OAuthForm)
                .map_err(|e| OAuthRefusal(OAuthError::InvalidRequest(e.to_string())))
        })
    }
}

/// The future of a form extractor: the bounded body, then `finish`.
pub(super) fn pending_form<T: 'static, E: 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    bounds: Bounds,
    finish: impl FnOnce(Result<Params, BodyError>) -> Result<T, E> + 'static,
) -> Pending<T, E> {
    let (req, payload) = (req.clone(), payload.take());
    Box::pin(async move { finish(read_form(&req, payload, bounds).await) })
}

/// A browser's refusal of its form, as an HTML page.
#[derive(Debug, thiserror::Error)]
pub enum PageRefusal {
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The CSRF field is missing or does not match the browser's cookie (403).
    #[error("the form's CSRF field does not match")]
    Csrf,
}

impl ResponseError for PageRefusal {
    fn status_code(&self) -> StatusCode {
        match self {
            PageRefusal::Body(e) => e.status(),
            PageRefusal::Csrf => StatusCode::FORBIDDEN,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, message) = match self {
            PageRefusal::Csrf => (
                "This form has expired",
                "Please reload the page and try again.",
            ),
            PageRefusal::Body(BodyError::NotAForm) => (
                "Something is wrong with this request",
                "This page expects a form submission.",
            ),
            PageRefusal::Body(BodyError::TooLarge(_)) => (
                "Something is wrong with this request",
                "This form submission is too large.",
            ),
            PageRefusal::Body(BodyError::TooManyParams(_)) => (
                "Something is wrong with this request",
                "This form submission has too many fields.",
            ),
            PageRefusal::Body(_) => (
                "Something is wrong with this request",
                "This form submission could not be read.",
            ),
        };
        AppError::html(self.status_code(), title, message)
    }
}

/// The form body of a page (sign-out) as [`Params`].
pub struct PageForm(pub Params);

/// The authorization endpoint's form body as [`Params`], keeping note of the pairs that did
/// not decode (see [`read_authorization_form`]); refused as a page otherwise.
pub struct AuthorizationForm(pub Params);

impl FromRequest for AuthorizationForm {
    type Error = PageRefusal;
    type Future = Pending<Self, Self::Error>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (req, payload) = (req.clone(), payload.take());
        Box::pin(async move {
            read_authorization_form(&req, payload, FORM_BOUNDS)
                .await
                .map(AuthorizationForm)
                .map_err(PageRefusal::Body)
        })
    }
}

impl FromRequest for PageForm {
    type Error = PageRefusal;
    type Future = Pending<Self, Self::Error>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        pending_form(req, payload, FORM_BOUNDS, |read| {
            read.map(PageForm).map_err(PageRefusal::Body)
        })
    }
}

/// A page's form body decoded into `T` (fields named once; a repeated known field is
/// refused by the decoder).
pub struct Form<T>(pub T);

impl<T> Form<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Form<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Form<T> {
    type Error = PageRefusal;
    type Future = Pending<Self, Self::Error>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        pending_form(req, payload, FORM_BOUNDS, |read| {
            read.and_then(|p| decode(p.into_pairs()))
                .map(Form)
                .map_err(PageRefusal::Body)
        })
    }
}

/// How much a form may carry, as a type (so the bound shows in the handler's signature).
pub trait FormBounds: 'static {
    const BOUNDS: Bounds;
}

/// A page's form: [`FORM_BOUNDS`].
pub struct PageBounds;
impl FormBounds for PageBounds {
    const BOUNDS: Bounds = FORM_BOUNDS;
}

/// An admin page's form: [`ADMIN_FORM_BOUNDS`].
pub struct AdminBounds;
impl FormBounds for AdminBounds {
    const BOUNDS: Bounds = ADMIN_FORM_BOUNDS;
}

/// The name of every form's hidden CSRF field.
pub const CSRF_FIELD: &str = "csrf_token";

/// A page's form body decoded into `T`, once its [`CSRF_FIELD`] matched the browser's CSRF
/// cookie (double submit: a cross-site form cannot read the cookie, so it cannot send the
/// matching field). The field is taken out before `T` is decoded. A handler that shows its own
/// page on a mismatch takes `Result<CsrfForm<T>, PageRefusal>`.
pub struct CsrfForm<T, B: FormBounds = PageBounds>(pub T, std::marker::PhantomData<B>);

impl<T, B: FormBounds> CsrfForm<T, B> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T, B: FormBounds> std::ops::Deref for CsrfForm<T, B> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static, B: FormBounds> FromRequest for CsrfForm<T, B> {
    type Error = PageRefusal;
    type Future = Pending<Self, Self::Error>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = req.clone();
        pending_form(req, payload, B::BOUNDS, move |read| {
            let (submitted, pairs) = take_csrf_field(read?.into_pairs());
            if !crate::http::support::csrf_matches(&request, submitted.as_deref()) {
                return Err(PageRefusal::Csrf);
            }
            decode(pairs)
                .map(|t| CsrfForm(t, std::marker::PhantomData))
                .map_err(PageRefusal::Body)
        })
    }
}

/// A page's form decoded into `T`, with whether its [`CSRF_FIELD`] matched: for the pages that
/// show their own form again, with what was typed, when it did not (login, registration).
pub struct CsrfChecked<T> {
    pub form: T,
    pub valid: bool,
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfChecked<T> {
    type Error = PageRefusal;
    type Future = Pending<Self, Self::Error>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let request = req.clone();
        pending_form(req, payload, FORM_BOUNDS, move |read| {
            let (submitted, pairs) = take_csrf_field(read?.into_pairs());
            let valid = crate::http::support::csrf_matches(&request, submitted.as_deref());
            Ok(CsrfChecked {
                form: decode(pairs)?,
                valid,
            })
        })
    }
}

/// The first [`CSRF_FIELD`] and the other pairs.
fn take_csrf_field(mut pairs: Vec<(String, String)>) -> (Option<String>, Vec<(String, String)>) {
    let mut submitted = None;
    pairs.retain(|(k, v)| {
        if k == CSRF_FIELD {
            submitted.get_or_insert_with(|| v.clone());
            false
        } else {
            true
        }
    });
    (submitted, pairs)
}

/// Decodes pairs into a form struct (the pairs are re-encoded for `serde_urlencoded`, which
/// knows how a form's absent, empty and single values map to `Option<String>` fields).
fn decode<T: DeserializeOwned>(pairs: Vec<(String, String)>) -> Result<T, BodyError> {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    serde_urlencoded::from_str(&encoded).map_err(|_| BodyError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Login {
        email: Option<String>,
        password: Option<String>,
    }

    #[test]
    fn a_form_decodes_absent_empty_and_unknown_fields_and_refuses_a_repeated_one() {
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            decode::<Login>(pairs(&[("email", "a@b.c"), ("other", "x")])).unwrap(),
            Login {
                email: Some("a@b.c".into()),
                password: None
            }
        );
        assert_eq!(
            decode::<Login>(pairs(&[("password", "")])).unwrap(),
            Login {
                email: None,
                password: Some(String::new())
            }
        );
        assert_eq!(
            decode::<Login>(pairs(&[("email", "a"), ("email", "b")])).unwrap_err(),
            BodyError::Malformed
        );
    }
}

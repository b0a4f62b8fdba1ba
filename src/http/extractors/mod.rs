//! Extractors: what a handler takes instead of parsing the request itself.
//!
//! - bounded bodies and forms ([`forms`]): [`OAuthForm`], [`PageForm`], [`AuthorizationForm`],
//!   [`Form`], [`CsrfForm`] (a form whose CSRF field matched), [`CsrfChecked`];
//! - who is calling ([`session`], [`admin`]): [`CurrentSession`], [`SignedIn`],
//!   [`AdminSession`] (a signed-in administrator), [`AdminBearer`] (an administrator's token);
//! - a client's credentials at the token endpoints ([`client`]): [`ClientAuth`];
//! - [`Then`]: one after the other (who is calling, then the body).
//!
//! Each refuses in its surface's terms: an HTML page, RFC 6749 §5.2 JSON, or RFC 9457 problem
//! details.

pub mod admin;
pub mod client;
pub mod forms;
pub mod session;
pub mod then;

pub use admin::{AdminBearer, AdminSession};
pub use client::ClientAuth;
pub use forms::{
    AdminBounds, AuthorizationForm, CsrfChecked, CsrfForm, FORM_BYTES, Form, JSON_BYTES, OAuthForm,
    OAuthRefusal, PageForm, PageRefusal, Pending, is_form, read_body,
};
pub use session::{CurrentSession, SessionRefusal, SignedIn};
pub use then::Then;

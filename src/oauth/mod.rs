//! OAuth 2.0 rules: the authorization endpoint ([`authorize`]), the token, revocation and
//! introspection endpoints ([`token`]), codes ([`codes`]), PKCE ([`pkce`]), scopes ([`scope`]),
//! request parameters ([`params`]) and the RFC error codes ([`error`]). The only module that
//! imports `oxide_auth`: its `Registrar` ([`primitives`]) binds the client and its redirect URI
//! and negotiates the scope. What oxide-auth does for us and what we wrote ourselves, and why:
//! `docs/decisions/2026-12-03-oxide-auth-registrar-only.md`.

pub mod authorize;
pub mod codes;
pub mod error;
pub mod params;
pub mod pkce;
pub mod primitives;
pub mod scope;
pub mod token;

pub use error::OAuthError;

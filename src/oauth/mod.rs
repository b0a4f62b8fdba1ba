//! The OAuth 2.0 engine: the only module that imports `oxide_auth`.
//!
//! oxide-auth's async primitives are implemented over our store ([`primitives`]): the
//! `Registrar` binds the client and its redirect URI (exact string match), negotiates the scope
//! and authenticates clients; the `Authorizer` issues and redeems single-use authorization codes.
//! The flows around them — request validation with RFC-precise errors, PKCE, the OpenID Connect
//! layer, refresh rotation with reuse detection — are ours; see
//! `docs/decisions/2026-11-23-oauth-engine.md` for what oxide-auth could not express.

pub mod authorize;
pub mod error;
pub mod params;
pub mod primitives;
pub mod token;

pub use error::OAuthError;

//! JSON and protocol endpoints.

pub mod assets;
pub mod health;
pub mod oauth;
pub mod oidc;
pub mod registration;

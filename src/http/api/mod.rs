//! JSON and protocol endpoints.

pub mod admin;
pub mod assets;
pub mod health;
pub mod oauth;
pub mod oidc;

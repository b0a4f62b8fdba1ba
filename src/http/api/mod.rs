//! JSON and protocol endpoints.

pub mod assets;
pub mod health;
pub mod oidc;

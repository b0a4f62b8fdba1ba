//! JSON and protocol endpoints.

pub mod assets;
pub mod health;
pub mod metrics;
pub mod oauth;
pub mod oidc;

//! JSON and protocol endpoints.

pub mod admin;
pub mod assets;
pub mod health;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod registration;

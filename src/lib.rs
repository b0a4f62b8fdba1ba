//! Castellan: a standalone OpenID Connect identity provider.
//!
//! Layering (see `ARCHITECTURE.md`): `http` → `oauth` · `oidc` → `services` → `store` →
//! `crypto` → `domain`. `startup` wires everything; `main` uses this library's public API only.

pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod http;
pub mod mail;
pub mod oauth;
pub mod oidc;
pub mod paths;
pub mod services;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;

pub use config::Settings;
pub use startup::Application;

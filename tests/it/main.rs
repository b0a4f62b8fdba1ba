//! The one integration-test binary (see ARCHITECTURE.md): module lines only.

// Test code may panic on what it sets up itself; the lint guards the server, not the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod accounts;
mod admin_api;
mod admin_pages;
mod audit;
mod bad_input;
mod browser;
mod cli;
mod config_errors;
mod cors;
mod discovery;
mod federation;
mod health;
mod hostile_input;
mod housekeeping;
mod instances;
mod keys;
mod limits;
mod mail;
mod metrics;
mod mfa;
mod mfa_policy;
mod migrations;
mod oauth_errors;
mod oidc_flow;
mod outage;
mod passkeys;
mod registration;
mod upstreams;
mod upstreams_admin;

//! Use cases, free of HTTP types: what the CLI and the HTTP handlers call.

pub mod accounts;
pub mod admin;
pub mod authn;
pub mod background;
pub mod factors;
pub mod federation;
pub mod housekeeping;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod mfa;
pub mod passkeys;
pub mod passwords;
pub mod ratelimit;
pub mod registration;
pub mod status;
pub mod tokens;
pub mod workers;

//! sea-orm entities, one per table. They never leave `store/`: stores convert them to domain types.

pub mod audit_event;
pub mod authorization_code;
pub mod client;
pub mod consent;
pub mod email_token;
pub mod job;
pub mod lease;
pub mod passkey;
pub mod pending_sign_in;
pub mod recovery_code;
pub mod redeemed_code;
pub mod refresh_token;
pub mod revoked_token;
pub mod role;
pub mod session;
pub mod signing_key;
pub mod totp_factor;
pub mod upstream_flow;
pub mod upstream_identity;
pub mod upstream_link_request;
pub mod upstream_provider;
pub mod user;
pub mod webauthn_ceremony;

//! What the HTTP layer is given: the core's use cases ([`Core`], also what the CLI builds)
//! plus what only HTTP needs (settings for cookies and pages, the clock for CSRF and rate
//! windows, the discovery document, the request counters). As `web::Data<AppState>`. No
//! globals: two servers can run in one process, as the tests do.
//!
//! Nothing below HTTP names this type: the core is built of services that own what they need
//! (`startup::build_core`).

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::oauth::authorize::Authorization;
use crate::oauth::token::TokenEndpoint;
use crate::oidc::discovery::Discovery;
use crate::oidc::logout::Logout;
use crate::oidc::userinfo::UserInfo;
use crate::services::accounts::Accounts;
use crate::services::admin::Admin;
use crate::services::authn::Authn;
use crate::services::metrics::Metrics;
use crate::services::mfa::Mfa;
use crate::services::registration::ClientRegistration;
use crate::services::status::Status;
use crate::services::tokens::Tokens;

/// The use cases: one struct per area, each owning its dependencies.
#[derive(Debug, Clone)]
pub struct Core {
    /// Sign-in and sessions.
    pub authn: Authn,
    /// Registration, verification, reset, and the account page's actions.
    pub accounts: Accounts,
    /// Second factors on the account page: TOTP enrolment, recovery codes, removal.
    pub mfa: Mfa,
    /// Users, clients, roles, keys and the audit log, for administrators.
    pub admin: Admin,
    /// Minting and checking tokens; the JWK Set.
    pub tokens: Tokens,
    /// The authorization endpoint (RFC 6749 §4.1, OpenID Connect Core §3.1.2).
    pub authorization: Authorization,
    /// Token, revocation and introspection endpoints.
    pub token_endpoint: TokenEndpoint,
    /// OpenID Connect UserInfo.
    pub userinfo: UserInfo,
    /// Sign-in through upstream identity providers; linked identities.
    pub federation: crate::services::federation::Federation,
    /// RP-Initiated Logout.
    pub logout: Logout,
    /// Dynamic client registration (RFC 7591, RFC 7592).
    pub registration: ClientRegistration,
    /// Readiness and metrics.
    pub status: Status,
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub core: Core,
    pub settings: Arc<Settings>,
    pub clock: SharedClock,
    pub discovery: Arc<Discovery>,
    /// This server's request counters (`/metrics`), fed by the HTTP middleware.
    pub metrics: Arc<Metrics>,
}

//! Pure protocol and account types: no I/O, no framework. Each value has one constructor that
//! checks it, so a value of the type is known to be well formed ("parse, don't validate").

pub mod acr;
pub mod audit;
mod client;
pub mod lockout;
pub mod mfa_policy;
pub mod password;
pub mod registration;
mod scope;
mod signing_key;
mod time;
pub mod upstream;
mod user;

pub use acr::Acr;
pub use audit::{AuditEntry, AuditEvent, AuditKind, AuditQuery};
pub use client::{
    ApplicationType, AuthMethod, Client, ClientId, ClientInfo, ClientSpec, GrantType, NewClient,
    RedirectUri,
};
pub use lockout::LockoutPolicy;
pub use mfa_policy::MfaPolicy;
pub use password::{PasswordPolicy, PasswordProblem, normalize};
pub use scope::{MAX_REQUESTED_SCOPE_BYTES, MAX_REQUESTED_SCOPE_TOKENS, ScopeSet};
pub use signing_key::KeyRecord;
pub use time::UnixTime;
pub use user::{Email, NewUser, Role, RoleInfo, User, UserId};

/// A domain value that failed to parse: which field, and what was wrong, in plain words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

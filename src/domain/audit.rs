//! The audit log's vocabulary: what kinds of events are recorded ([`AuditKind`]), one event to
//! record ([`AuditEntry`]), a recorded one ([`AuditEvent`]), and a query ([`AuditQuery`]).

use std::fmt;

use super::UnixTime;

/// Every kind of event the audit log records. The stored text ([`AuditKind::as_str`]) is what
/// operators filter by (`castellan audit list --kind`, the admin API and pages): keep it stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    // Sign-in and sessions.
    LoginSucceeded,
    LoginFailed,
    LoginLocked,
    Logout,
    LogoutEverywhere,
    SessionEnded,
    SessionsEnded,
    // Accounts.
    Registered,
    EmailVerified,
    EmailChangeRequested,
    EmailChanged,
    PasswordChanged,
    PasswordResetRequested,
    PasswordResetCompleted,
    // Grants.
    ConsentGranted,
    ConsentRevoked,
    TokenRefreshed,
    RefreshReuseDetected,
    // Administration.
    UserCreated,
    UserDeleted,
    UserDisabled,
    UserEnabled,
    RoleChanged,
    RoleCreated,
    RoleDeleted,
    ClientCreated,
    ClientUpdated,
    ClientDeleted,
    ClientSecretRotated,
    KeyRotated,
    KeysRewrapped,
    // Background work.
    MailGivenUp,
    // Second factors.
    FactorAdded,
    FactorRemoved,
    FactorUsed,
    FactorFailed,
    RecoveryCodeUsed,
    RecoveryCodesRegenerated,
    /// An administrator removed every second factor of a user (the actor is recorded).
    MfaReset,
    /// A passkey renamed.
    FactorUpdated,
    /// The password of an account with a passkey removed (a passkey-only account).
    PasswordRemoved,
    // Upstream identity providers.
    UpstreamCreated,
    UpstreamDeleted,
    UpstreamLinked,
    UpstreamUnlinked,
    UpstreamLoginFailed,
}

impl AuditKind {
    pub const ALL: [AuditKind; 46] = [
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::LoginLocked,
        Self::Logout,
        Self::LogoutEverywhere,
        Self::SessionEnded,
        Self::SessionsEnded,
        Self::Registered,
        Self::EmailVerified,
        Self::EmailChangeRequested,
        Self::EmailChanged,
        Self::PasswordChanged,
        Self::PasswordResetRequested,
        Self::PasswordResetCompleted,
        Self::ConsentGranted,
        Self::ConsentRevoked,
        Self::TokenRefreshed,
        Self::RefreshReuseDetected,
        Self::UserCreated,
        Self::UserDeleted,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::RoleChanged,
        Self::RoleCreated,
        Self::RoleDeleted,
        Self::ClientCreated,
        Self::ClientUpdated,
        Self::ClientDeleted,
        Self::ClientSecretRotated,
        Self::KeyRotated,
        Self::KeysRewrapped,
        Self::MailGivenUp,
        Self::FactorAdded,
        Self::FactorRemoved,
        Self::FactorUsed,
        Self::FactorFailed,
        Self::RecoveryCodeUsed,
        Self::RecoveryCodesRegenerated,
        Self::MfaReset,
        Self::FactorUpdated,
        Self::PasswordRemoved,
        Self::UpstreamCreated,
        Self::UpstreamDeleted,
        Self::UpstreamLinked,
        Self::UpstreamUnlinked,
        Self::UpstreamLoginFailed,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::LoginLocked => "login_locked",
            Self::Logout => "logout",
            Self::LogoutEverywhere => "logout_everywhere",
            Self::SessionEnded => "session_ended",
            Self::SessionsEnded => "sessions_ended",
            Self::Registered => "registered",
            Self::EmailVerified => "email_verified",
            Self::EmailChangeRequested => "email_change_requested",
            Self::EmailChanged => "email_changed",
            Self::PasswordChanged => "password_changed",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordResetCompleted => "password_reset_completed",
            Self::ConsentGranted => "consent_granted",
            Self::ConsentRevoked => "consent_revoked",
            Self::TokenRefreshed => "token_refreshed",
            Self::RefreshReuseDetected => "refresh_reuse_detected",
            Self::UserCreated => "user_created",
            Self::UserDeleted => "user_deleted",
            Self::UserDisabled => "user_disabled",
            Self::UserEnabled => "user_enabled",
            Self::RoleChanged => "role_changed",
            Self::RoleCreated => "role_created",
            Self::RoleDeleted => "role_deleted",
            Self::ClientCreated => "client_created",
            Self::ClientUpdated => "client_updated",
            Self::ClientDeleted => "client_deleted",
            Self::ClientSecretRotated => "client_secret_rotated",
            Self::KeyRotated => "key_rotated",
            Self::KeysRewrapped => "keys_rewrapped",
            Self::MailGivenUp => "mail_given_up",
            Self::FactorAdded => "factor_added",
            Self::FactorRemoved => "factor_removed",
            Self::FactorUsed => "factor_used",
            Self::FactorFailed => "factor_failed",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::MfaReset => "mfa_reset",
            Self::FactorUpdated => "factor_updated",
            Self::PasswordRemoved => "password_removed",
            Self::UpstreamCreated => "upstream_created",
            Self::UpstreamDeleted => "upstream_deleted",
            Self::UpstreamLinked => "upstream_linked",
            Self::UpstreamUnlinked => "upstream_unlinked",
            Self::UpstreamLoginFailed => "upstream_login_failed",
        }
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audit event to record.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub kind: AuditKind,
    pub actor: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    /// Free-form, never a password, token or secret.
    pub detail: String,
}

impl AuditEntry {
    /// An event of `kind` with nothing else filled in.
    pub fn new(kind: AuditKind) -> Self {
        Self {
            kind,
            actor: None,
            user_id: None,
            client_id: None,
            ip: None,
            detail: String::new(),
        }
    }
}

/// A recorded audit event (its kind as stored).
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: i64,
    pub at: UnixTime,
    pub kind: String,
    pub actor: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

/// Which audit events to read: newest first, `before` an event id for the next page.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub from: Option<UnixTime>,
    pub to: Option<UnixTime>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub kind: Option<String>,
    pub before: Option<i64>,
    pub limit: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_stored_text() {
        let mut texts: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), AuditKind::ALL.len());
    }
}

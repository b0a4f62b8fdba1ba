//! OAuth 2.0 / OpenID Connect error codes. The RFCs fix the wire format, so this type is
//! separate from `AppError`: one variant per wire code, each citing where it is defined.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// RFC 6749 §4.1.2.1, §5.2: missing, repeated or malformed parameter.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// RFC 6749 §5.2: client authentication failed (401 with `WWW-Authenticate`).
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    /// RFC 6749 §5.2: the code or refresh token is invalid, expired, revoked or not this client's.
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    /// RFC 6749 §4.1.2.1, §5.2: this client may not use this grant or response type.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    /// RFC 6749 §5.2.
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    /// RFC 6749 §4.1.2.1.
    #[error("unsupported_response_type: {0}")]
    UnsupportedResponseType(String),
    /// RFC 6749 §4.1.2.1, §5.2.
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// RFC 6749 §4.1.2.1: the resource owner denied the request.
    #[error("access_denied: {0}")]
    AccessDenied(String),
    /// OpenID Connect Core 1.0 §3.1.2.6: `prompt=none` and no usable session.
    #[error("login_required: {0}")]
    LoginRequired(String),
    /// OpenID Connect Core 1.0 §3.1.2.6: `prompt=none` and consent is needed.
    #[error("consent_required: {0}")]
    ConsentRequired(String),
    /// OpenID Connect Core 1.0 §3.1.2.6: the `request` parameter is not supported.
    #[error("request_not_supported")]
    RequestNotSupported,
    /// OpenID Connect Core 1.0 §3.1.2.6: the `request_uri` parameter is not supported.
    #[error("request_uri_not_supported")]
    RequestUriNotSupported,
    /// OpenID Connect Core 1.0 §3.1.2.6: the `registration` parameter is not supported.
    #[error("registration_not_supported")]
    RegistrationNotSupported,
    /// RFC 7009 §2.2.1.
    #[error("unsupported_token_type")]
    UnsupportedTokenType,
    /// RFC 6749 §4.1.2.1: an unexpected condition; details are logged, never sent.
    #[error("server_error")]
    ServerError,
    /// RFC 6749 §4.1.2.1: overloaded or in maintenance (here: the database is unavailable).
    /// §5.2 lists no code for this at the token endpoint; the same registered code is sent there
    /// (and at revocation, introspection, UserInfo and registration) with 503 and `Retry-After`
    /// (RFC 7009 §2.2.1 names 503 for revocation; RFC 9110 §15.6.4).
    #[error("temporarily_unavailable")]
    TemporarilyUnavailable,
}

impl OAuthError {
    /// The RFC's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::UnsupportedResponseType(_) => "unsupported_response_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::AccessDenied(_) => "access_denied",
            Self::LoginRequired(_) => "login_required",
            Self::ConsentRequired(_) => "consent_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::RegistrationNotSupported => "registration_not_supported",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// A human-readable description safe to send (never a secret or an internal detail).
    pub fn description(&self) -> String {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidClient(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::UnsupportedResponseType(d)
            | Self::InvalidScope(d)
            | Self::AccessDenied(d)
            | Self::LoginRequired(d)
            | Self::ConsentRequired(d) => d.clone(),
            Self::RequestNotSupported => "the request parameter is not supported".into(),
            Self::RequestUriNotSupported => "the request_uri parameter is not supported".into(),
            Self::RegistrationNotSupported => "the registration parameter is not supported".into(),
            Self::UnsupportedTokenType => "this token type cannot be revoked".into(),
            Self::ServerError => "an unexpected error occurred".into(),
            Self::TemporarilyUnavailable => "the server is temporarily unavailable".into(),
        }
    }

    /// HTTP status at the token, revocation and introspection endpoints (RFC 6749 §5.2).
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidClient(_) => 401,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// A store failure on the wire: `temporarily_unavailable` when the database is unavailable,
/// otherwise `server_error`; the cause is logged once here.
impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "the database is unavailable during an OAuth request");
            return Self::TemporarilyUnavailable;
        }
        tracing::error!(error = %e, "store error during an OAuth request");
        Self::ServerError
    }
}

impl From<crate::services::tokens::TokenError> for OAuthError {
    fn from(e: crate::services::tokens::TokenError) -> Self {
        if let crate::services::tokens::TokenError::Store(e) = e {
            return e.into();
        }
        tracing::error!(error = %e, "cannot mint tokens");
        Self::ServerError
    }
}

//! Registered OAuth clients (RFC 6749 §2) and their metadata.

use std::fmt;

use super::{Invalid, ScopeSet};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> Self {
        // 128 random bits, URL-safe: not a secret, but not guessable either.
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A registered redirect URI, kept as its raw string: compared by exact string match
/// (RFC 9700 §4.1.3; OpenID Connect Core §3.1.2.1), never normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// RFC 6749 §3.1.2: an absolute URI without a fragment.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match url::Url::parse(raw) {
            Ok(u) if u.fragment().is_none() && !raw.contains('#') && !u.cannot_be_a_base() => {
                Ok(Self(raw.to_owned()))
            }
            _ => Err(Invalid::new(
                "redirect_uri",
                format!("{raw:?} must be an absolute URI without a fragment"),
            )),
        }
    }
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn matches(&self, presented: &str) -> bool {
        self.0 == presented
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == raw)
            .ok_or_else(|| {
                Invalid::new(
                    "grant_type",
                    format!(
                        "{raw:?}: expected authorization_code, refresh_token or client_credentials"
                    ),
                )
            })
    }
}

/// Client authentication at the token endpoint (RFC 6749 §2.3; OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Confidential client without a fixed method: basic or post.
    SecretBasicOrPost,
    SecretBasic,
    SecretPost,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SecretBasicOrPost => "client_secret_basic client_secret_post",
            Self::SecretBasic => "client_secret_basic",
            Self::SecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
    /// The value to show as `token_endpoint_auth_method` (RFC 7591 §2).
    pub fn metadata_name(self) -> &'static str {
        match self {
            Self::SecretBasicOrPost | Self::SecretBasic => "client_secret_basic",
            Self::SecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "client_secret_basic client_secret_post" => Ok(Self::SecretBasicOrPost),
            "client_secret_basic" => Ok(Self::SecretBasic),
            "client_secret_post" => Ok(Self::SecretPost),
            "none" => Ok(Self::None),
            _ => Err(Invalid::new(
                "token_endpoint_auth_method",
                format!("{raw:?}: expected client_secret_basic, client_secret_post or none"),
            )),
        }
    }
    pub fn allows_basic(self) -> bool {
        matches!(self, Self::SecretBasicOrPost | Self::SecretBasic)
    }
    pub fn allows_post(self) -> bool {
        matches!(self, Self::SecretBasicOrPost | Self::SecretPost)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub scopes: ScopeSet,
    pub auth_method: AuthMethod,
    pub public: bool,
    pub skip_consent: bool,
    pub introspect_any: bool,
    pub created_at: i64,
}

impl Client {
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
    pub fn redirect_uri_registered(&self, presented: &str) -> bool {
        self.redirect_uris.iter().any(|r| r.matches(presented))
    }
    pub fn post_logout_uri_registered(&self, presented: &str) -> bool {
        self.post_logout_redirect_uris
            .iter()
            .any(|r| r.matches(presented))
    }
}

/// What it takes to register a client; the secret is already hashed.
pub struct NewClient {
    pub id: ClientId,
    pub name: String,
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub scopes: ScopeSet,
    pub auth_method: AuthMethod,
    pub public: bool,
    pub skip_consent: bool,
    pub introspect_any: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_compare_exactly() {
        let r = RedirectUri::parse("https://app.example.com/cb").unwrap();
        assert!(r.matches("https://app.example.com/cb"));
        assert!(!r.matches("https://app.example.com/cb/"));
        assert!(!r.matches("https://APP.example.com/cb"));
        assert!(RedirectUri::parse("https://app.example.com/cb#x").is_err());
        assert!(RedirectUri::parse("/relative").is_err());
        assert!(RedirectUri::parse("com.example.app:/cb").is_ok());
    }
}

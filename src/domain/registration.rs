//! Client metadata as a client presents it for dynamic registration (RFC 7591 §2, OpenID
//! Connect Dynamic Client Registration 1.0 §2, RFC 8252 for native apps), parsed into what
//! Castellan stores — or the RFC 7591 §3.2.2 error that says why not.
//!
//! What is accepted on purpose, and what is refused:
//! - grant types `authorization_code` (always) and `refresh_token`; response type `code` only;
//! - token endpoint authentication `client_secret_basic` (default), `client_secret_post` or
//!   `none` (a public client; PKCE is then required, as it is by default for every client);
//! - only the standard OpenID scopes of [`REGISTRABLE_SCOPES`]: a client registering itself can
//!   never obtain `admin` or any other scope an administrator grants;
//! - `client_credentials` is refused: every registrable scope is a user scope, which a client
//!   cannot hold for itself, and machine clients are an administrator's decision (the CLI);
//! - values that would silently weaken what the client expects (pairwise subjects, another
//!   ID token algorithm, signed or encrypted responses) are refused rather than ignored;
//! - unknown fields are ignored (RFC 7591 §2).

use serde_json::{Map, Value};

use super::{ApplicationType, AuthMethod, ClientInfo, GrantType, RedirectUri, ScopeSet};

/// The scopes a dynamically registered client may ask for: the standard OpenID Connect scopes
/// Castellan serves (OpenID Connect Core 1.0 §5.4, §11), as in the discovery document.
pub const REGISTRABLE_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// At most this many redirect URIs (and post-logout redirect URIs, and contacts).
const MAX_URIS: usize = 20;
/// The longest URI accepted.
const MAX_URI_LEN: usize = 2000;
/// The longest name or other short string accepted.
const MAX_TEXT_LEN: usize = 200;

/// Why metadata was refused, with the RFC 7591 §3.2.2 code and a description safe to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// `invalid_redirect_uri`: the value of one or more redirection URIs is invalid.
    #[error("invalid_redirect_uri: {0}")]
    RedirectUri(String),
    /// `invalid_client_metadata`: any other field is invalid or unsupported.
    #[error("invalid_client_metadata: {0}")]
    Metadata(String),
}

fn bad(message: impl Into<String>) -> MetadataError {
    MetadataError::Metadata(message.into())
}

/// Registered metadata, checked and with the defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    /// `client_name`; `None` when the client gave none.
    pub name: Option<String>,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<GrantType>,
    pub auth_method: AuthMethod,
    pub application_type: ApplicationType,
    pub scopes: ScopeSet,
    pub info: ClientInfo,
}

impl ClientMetadata {
    /// A public client: `token_endpoint_auth_method` `none` (RFC 7591 §2).
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }

    /// Parses a registration (or RFC 7592 update) request body.
    pub fn parse(body: &Map<String, Value>) -> Result<Self, MetadataError> {
        let application_type = match opt_str(body, "application_type")? {
            // OIDC Dynamic Client Registration 1.0 §2: the default is web.
            None => ApplicationType::Web,
            Some(raw) => ApplicationType::parse(raw).map_err(|e| bad(e.to_string()))?,
        };
        let grant_types = grant_types(body)?;
        response_types(body)?;
        let auth_method = match opt_str(body, "token_endpoint_auth_method")? {
            // RFC 7591 §2: the default is client_secret_basic.
            None | Some("client_secret_basic") => AuthMethod::SecretBasic,
            Some("client_secret_post") => AuthMethod::SecretPost,
            Some("none") => AuthMethod::None,
            Some(other) => {
                return Err(bad(format!(
                    "token_endpoint_auth_method {other:?} is not supported: use client_secret_basic, client_secret_post or none"
                )));
            }
        };
        let redirect_uris = uri_list(body, "redirect_uris")?
            .iter()
            .map(|u| redirect_uri(u, application_type).map_err(MetadataError::RedirectUri))
            .collect::<Result<Vec<_>, _>>()?;
        // RFC 7591 §2 and OIDC Dynamic Client Registration 1.0 §2: redirect-based flows need
        // redirect URIs; every client registered here uses the authorization code.
        if redirect_uris.is_empty() {
            return Err(MetadataError::RedirectUri(
                "redirect_uris needs at least one redirect URI for the authorization_code grant"
                    .into(),
            ));
        }
        // OpenID Connect RP-Initiated Logout 1.0 §3.1: the same rules as redirect URIs.
        let post_logout_redirect_uris = uri_list(body, "post_logout_redirect_uris")?
            .iter()
            .map(|u| {
                redirect_uri(u, application_type)
                    .map_err(|m| bad(format!("post_logout_redirect_uris: {m}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let scopes = scopes(body, &grant_types)?;
        let name = match opt_str(body, "client_name")? {
            None => None,
            Some(raw) => Some(text("client_name", raw.trim())?.to_owned()),
        }
        .filter(|n| !n.is_empty());
        refuse_unsupported(body)?;
        Ok(Self {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            auth_method,
            application_type,
            scopes,
            info: info(body)?,
        })
    }
}

/// A string field: absent, `null` and `""` are all "not given" (RFC 7592 §2.2 treats null and
/// empty values as deleting the field); anything but a string is refused.
fn opt_str<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, MetadataError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("{key} must be a string"))),
    }
}

/// An array-of-strings field: absent and `null` give an empty list.
fn str_list<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Vec<&'a str>, MetadataError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            if items.len() > MAX_URIS {
                return Err(bad(format!("{key} has more than {MAX_URIS} values")));
            }
            items
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| bad(format!("{key} must be an array of strings")))
                })
                .collect()
        }
        Some(_) => Err(bad(format!("{key} must be an array of strings"))),
    }
}

fn uri_list<'a>(body: &'a Map<String, Value>, key: &str) -> Result<Vec<&'a str>, MetadataError> {
    let list = str_list(body, key)?;
    if list.iter().any(|u| u.len() > MAX_URI_LEN) {
        return Err(bad(format!("{key}: a URI is longer than {MAX_URI_LEN}")));
    }
    Ok(list)
}

/// A short human-readable string: no control characters, bounded length.
fn text<'a>(key: &str, s: &'a str) -> Result<&'a str, MetadataError> {
    if s.chars().count() > MAX_TEXT_LEN {
        return Err(bad(format!(
            "{key} is longer than {MAX_TEXT_LEN} characters"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(bad(format!("{key} contains control characters")));
    }
    Ok(s)
}

/// RFC 7591 §2 `grant_types` (default `authorization_code`), deduplicated, in the given order.
fn grant_types(body: &Map<String, Value>) -> Result<Vec<GrantType>, MetadataError> {
    let raw = str_list(body, "grant_types")?;
    let mut grants = Vec::new();
    for g in &raw {
        let grant = match *g {
            "authorization_code" => GrantType::AuthorizationCode,
            "refresh_token" => GrantType::RefreshToken,
            "client_credentials" => {
                return Err(bad(
                    "client_credentials is not available through dynamic registration: ask an administrator",
                ));
            }
            other => {
                return Err(bad(format!(
                    "grant_type {other:?} is not supported: use authorization_code and refresh_token"
                )));
            }
        };
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    if grants.is_empty() {
        grants.push(GrantType::AuthorizationCode);
    }
    // RFC 7591 §2.1: a refresh token is only ever obtained through an authorization code here.
    if !grants.contains(&GrantType::AuthorizationCode) {
        return Err(bad(
            "grant_types must include authorization_code (refresh_token alone cannot be used)",
        ));
    }
    Ok(grants)
}

/// RFC 7591 §2 `response_types` (default `code`) and §2.1: `code` goes with the
/// `authorization_code` grant, the only response type Castellan serves.
fn response_types(body: &Map<String, Value>) -> Result<(), MetadataError> {
    for r in str_list(body, "response_types")? {
        if r != "code" {
            return Err(bad(format!(
                "response_type {r:?} is not supported: only code (with the authorization_code grant)"
            )));
        }
    }
    Ok(())
}

/// RFC 7591 §2 `scope`: only [`REGISTRABLE_SCOPES`]. Without one, the client gets `openid
/// profile email`, plus `offline_access` when it registers the `refresh_token` grant.
fn scopes(body: &Map<String, Value>, grants: &[GrantType]) -> Result<ScopeSet, MetadataError> {
    let raw = match opt_str(body, "scope")? {
        Some(raw) => raw.to_owned(),
        None if grants.contains(&GrantType::RefreshToken) => {
            "openid profile email offline_access".to_owned()
        }
        None => "openid profile email".to_owned(),
    };
    let scopes = ScopeSet::parse(&raw).map_err(|e| bad(e.to_string()))?;
    if let Some(s) = scopes.iter().find(|s| !REGISTRABLE_SCOPES.contains(s)) {
        return Err(bad(if s == super::Role::ADMIN {
            "the admin scope cannot be registered: only an administrator can grant it".to_owned()
        } else {
            format!(
                "scope {s:?} cannot be registered: use {}",
                REGISTRABLE_SCOPES.join(" ")
            )
        }));
    }
    if scopes.is_empty() {
        return Err(bad("scope names no scope"));
    }
    Ok(scopes)
}

/// Checks one redirect URI against the client's application type (OIDC Dynamic Client
/// Registration 1.0 §2 `application_type`, RFC 8252 §7); the error is the description.
fn redirect_uri(raw: &str, app: ApplicationType) -> Result<RedirectUri, String> {
    // RFC 6749 §3.1.2: absolute, no fragment.
    let uri = RedirectUri::parse(raw).map_err(|e| e.message)?;
    let url = url::Url::parse(raw).map_err(|_| format!("{raw:?} is not a URI"))?;
    let scheme = url.scheme();
    let https = scheme == "https" && url.host().is_some();
    match app {
        ApplicationType::Web if https => Ok(uri),
        ApplicationType::Web => Err(format!(
            "{raw:?}: a web client's redirect URIs must use https (register application_type native for loopback or app schemes)"
        )),
        // RFC 8252 §7.2: claimed https URIs.
        ApplicationType::Native if https => Ok(uri),
        // RFC 8252 §7.3, §8.3: loopback interface redirection over plain http.
        ApplicationType::Native if scheme == "http" => {
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
                Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if loopback {
                Ok(uri)
            } else {
                Err(format!(
                    "{raw:?}: plain http is allowed only on the loopback interface (127.0.0.1, [::1] or localhost)"
                ))
            }
        }
        // RFC 8252 §7.1 and §8.4: a private-use scheme in reverse domain name form.
        ApplicationType::Native => {
            let reverse_domain = scheme.contains('.')
                && scheme
                    .split('.')
                    .all(|label| !label.is_empty() && !label.starts_with('-'));
            if reverse_domain {
                Ok(uri)
            } else {
                Err(format!(
                    "{raw:?}: a native client's redirect URI must be https, http on loopback, or a private-use scheme in reverse domain name form such as com.example.app:/callback"
                ))
            }
        }
    }
}

/// Metadata whose requested behaviour Castellan does not have: refusing it tells the client,
/// where ignoring it would let it believe it got what it asked for (OIDC Dynamic Client
/// Registration 1.0 §3.3 allows either).
fn refuse_unsupported(body: &Map<String, Value>) -> Result<(), MetadataError> {
    // OIDC Core 1.0 §8: only public subject identifiers.
    match opt_str(body, "subject_type")? {
        None | Some("public") => {}
        Some(other) => return Err(bad(format!("subject_type {other:?} is not supported"))),
    }
    // OIDC Dynamic Client Registration 1.0 §2: ID tokens are signed with RS256.
    match opt_str(body, "id_token_signed_response_alg")? {
        None | Some("RS256") => {}
        Some(other) => {
            return Err(bad(format!(
                "id_token_signed_response_alg {other:?} is not supported: only RS256"
            )));
        }
    }
    for key in [
        "userinfo_signed_response_alg",
        "id_token_encrypted_response_alg",
        "id_token_encrypted_response_enc",
        "userinfo_encrypted_response_alg",
        "userinfo_encrypted_response_enc",
    ] {
        if opt_str(body, key)?.is_some() {
            return Err(bad(format!(
                "{key} is not supported: responses are neither signed nor encrypted that way"
            )));
        }
    }
    Ok(())
}

/// RFC 7591 §2 informational metadata: URLs must be absolute http(s), strings short.
fn info(body: &Map<String, Value>) -> Result<ClientInfo, MetadataError> {
    let url_field = |key: &str| -> Result<Option<String>, MetadataError> {
        let Some(raw) = opt_str(body, key)? else {
            return Ok(None);
        };
        let ok = raw.len() <= MAX_URI_LEN
            && url::Url::parse(raw)
                .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
        if ok {
            Ok(Some(raw.to_owned()))
        } else {
            Err(bad(format!("{key} must be an absolute http or https URL")))
        }
    };
    let text_field = |key: &str| -> Result<Option<String>, MetadataError> {
        opt_str(body, key)?
            .map(|s| text(key, s).map(str::to_owned))
            .transpose()
    };
    let contacts = str_list(body, "contacts")?
        .into_iter()
        .map(|c| text("contacts", c).map(str::to_owned))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClientInfo {
        client_uri: url_field("client_uri")?,
        logo_uri: url_field("logo_uri")?,
        policy_uri: url_field("policy_uri")?,
        tos_uri: url_field("tos_uri")?,
        contacts,
        software_id: text_field("software_id")?,
        software_version: text_field("software_version")?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<ClientMetadata, MetadataError> {
        ClientMetadata::parse(v.as_object().unwrap())
    }

    #[test]
    fn a_minimal_registration_gets_the_rfc_defaults() {
        let m = parse(json!({"redirect_uris": ["https://app.example.com/cb"]})).unwrap();
        assert_eq!(m.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(m.auth_method, AuthMethod::SecretBasic);
        assert_eq!(m.application_type, ApplicationType::Web);
        assert_eq!(m.scopes.to_string(), "email openid profile");
        assert_eq!(m.name, None);
        assert!(!m.is_public());
        let m = parse(json!({
            "redirect_uris": ["https://app.example.com/cb"],
            "grant_types": ["authorization_code", "refresh_token", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "client_name": "  My app ",
            "unknown_field": {"ignored": true},
        }))
        .unwrap();
        assert_eq!(
            m.grant_types,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert_eq!(m.scopes.to_string(), "email offline_access openid profile");
        assert_eq!(m.name.as_deref(), Some("My app"));
        assert!(m.is_public());
    }

    #[test]
    fn native_clients_may_use_loopback_and_private_use_schemes() {
        for uri in [
            "http://127.0.0.1/cb",
            "http://127.0.0.1:8080/cb",
            "http://[::1]:5000/",
            "http://localhost/cb",
            "com.example.app:/oauth2redirect",
            "https://app.example.com/cb",
        ] {
            let r = parse(json!({"application_type": "native", "redirect_uris": [uri]}));
            assert!(r.is_ok(), "{uri}: {r:?}");
        }
        for uri in [
            "http://app.example.com/cb",
            "http://127.0.0.2/cb",
            "myapp:/cb",
            "javascript:/alert(1)",
            "com..example:/cb",
            "com.example.app:/cb#frag",
        ] {
            let r = parse(json!({"application_type": "native", "redirect_uris": [uri]}));
            assert!(
                matches!(r, Err(MetadataError::RedirectUri(_))),
                "{uri}: {r:?}"
            );
        }
        for uri in [
            "http://127.0.0.1/cb",
            "com.example.app:/cb",
            "https://a.example/cb#x",
        ] {
            let r = parse(json!({"redirect_uris": [uri]}));
            assert!(
                matches!(r, Err(MetadataError::RedirectUri(_))),
                "web {uri}: {r:?}"
            );
        }
    }

    #[test]
    fn only_the_standard_scopes_may_be_registered() {
        let with = |scope: Value| {
            parse(json!({"redirect_uris": ["https://a.example/cb"], "scope": scope}))
        };
        assert!(with(json!("openid profile email offline_access")).is_ok());
        let admin = with(json!("openid admin")).unwrap_err();
        assert!(admin.to_string().contains("admin"), "{admin}");
        assert!(with(json!("openid reports")).is_err());
        assert!(with(json!("openid phone")).is_err());
        assert!(with(json!(["openid"])).is_err());
    }

    #[test]
    fn unsupported_or_malformed_values_are_refused() {
        for body in [
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}),
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["refresh_token"]}),
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": "authorization_code"}),
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["token"]}),
            json!({"redirect_uris": ["https://a.example/cb"], "response_types": ["code id_token"]}),
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            json!({"redirect_uris": ["https://a.example/cb"], "application_type": "desktop"}),
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": 5}),
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": "a\u{7}b"}),
            json!({"redirect_uris": ["https://a.example/cb"], "subject_type": "pairwise"}),
            json!({"redirect_uris": ["https://a.example/cb"], "id_token_signed_response_alg": "none"}),
            json!({"redirect_uris": ["https://a.example/cb"], "userinfo_signed_response_alg": "RS256"}),
            json!({"redirect_uris": ["https://a.example/cb"], "logo_uri": "javascript:alert(1)"}),
            json!({"redirect_uris": ["https://a.example/cb"], "contacts": [1]}),
            json!({"redirect_uris": ["https://a.example/cb"], "post_logout_redirect_uris": ["http://a.example/"]}),
            json!({"redirect_uris": "https://a.example/cb"}),
        ] {
            let r = parse(body.clone());
            assert!(
                matches!(r, Err(MetadataError::Metadata(_))),
                "{body}: {r:?}"
            );
        }
        assert!(matches!(
            parse(json!({})),
            Err(MetadataError::RedirectUri(_))
        ));
    }
}

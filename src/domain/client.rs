//! Registered OAuth clients (RFC 6749 §2) and their metadata.

use std::fmt;

use super::{Invalid, ScopeSet, UnixTime};

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

fn texts(uris: &[RedirectUri]) -> Vec<String> {
    uris.iter().map(|u| u.as_str().to_owned()).collect()
}

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

/// OpenID Connect Dynamic Client Registration 1.0 §2 `application_type`: what kind of
/// redirect URIs the client may register. Clients an administrator creates are `web`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ApplicationType {
    #[default]
    Web,
    Native,
}

impl ApplicationType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Native => "native",
        }
    }
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "web" => Ok(Self::Web),
            "native" => Ok(Self::Native),
            _ => Err(Invalid::new(
                "application_type",
                format!("{raw:?}: expected web or native"),
            )),
        }
    }
}

/// Informational client metadata (RFC 7591 §2), kept to show back to the client; Castellan
/// does not fetch or display these URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub contacts: Vec<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
}

impl ClientInfo {
    /// The optional URL and string fields, by their RFC 7591 names.
    pub fn strings(&self) -> [(&'static str, Option<&str>); 6] {
        [
            ("client_uri", self.client_uri.as_deref()),
            ("logo_uri", self.logo_uri.as_deref()),
            ("policy_uri", self.policy_uri.as_deref()),
            ("tos_uri", self.tos_uri.as_deref()),
            ("software_id", self.software_id.as_deref()),
            ("software_version", self.software_version.as_deref()),
        ]
    }
}

/// RFC 8252 §7.3: a loopback IP redirect URI (`http` on `127.0.0.1` or `[::1]`) without its
/// port, or `None` for any other URI. `localhost` is not a loopback IP literal (§8.3).
fn loopback_without_port(raw: &str) -> Option<String> {
    let host_end = ["http://127.0.0.1", "http://[::1]"]
        .into_iter()
        .find(|p| raw.starts_with(p))?
        .len();
    let (head, rest) = raw.split_at(host_end);
    let rest = match rest.strip_prefix(':') {
        Some(after) => {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            // A port a listener can have (RFC 6335 §6: 1 to 65535); no leading zero, so one port
            // has one spelling.
            let port = after[..digits].parse::<u16>().ok().filter(|p| *p != 0);
            if port.is_none() || after.starts_with('0') {
                return None;
            }
            &after[digits..]
        }
        None => rest,
    };
    if !(rest.is_empty() || rest.starts_with(['/', '?'])) {
        return None;
    }
    Some(format!("{head}{rest}"))
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
    /// Sign-ins to this client must reach `urn:castellan:acr:mfa` (CONTRACT.md:
    /// `client create --require-mfa`): a session below it steps up or enrols a second factor.
    pub require_mfa: bool,
    pub created_at: UnixTime,
    pub application_type: ApplicationType,
    pub info: ClientInfo,
    /// Registered through RFC 7591 (it has a registration access token).
    pub dynamically_registered: bool,
}

impl Client {
    /// The registered redirect URIs as text, in order (for JSON and forms).
    pub fn redirect_uri_texts(&self) -> Vec<String> {
        texts(&self.redirect_uris)
    }
    /// The registered post-logout redirect URIs as text, in order.
    pub fn post_logout_redirect_uri_texts(&self) -> Vec<String> {
        texts(&self.post_logout_redirect_uris)
    }
    /// The allowed grant types by their RFC names, in order.
    pub fn grant_type_names(&self) -> Vec<String> {
        self.grant_types
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect()
    }
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
    /// Exact string match (RFC 9700 §4.1.3), except that a native client's loopback IP redirect
    /// URI matches with any port (RFC 8252 §7.3: the port is picked when the app starts).
    pub fn redirect_uri_registered(&self, presented: &str) -> bool {
        if self.redirect_uris.iter().any(|r| r.matches(presented)) {
            return true;
        }
        if self.application_type != ApplicationType::Native {
            return false;
        }
        let Some(presented) = loopback_without_port(presented) else {
            return false;
        };
        self.redirect_uris
            .iter()
            .any(|r| loopback_without_port(r.as_str()).is_some_and(|r| r == presented))
    }
    pub fn post_logout_uri_registered(&self, presented: &str) -> bool {
        self.post_logout_redirect_uris
            .iter()
            .any(|r| r.matches(presented))
    }
}

/// What it takes to register a client; the secret is already hashed.
#[derive(Debug)]
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
    pub require_mfa: bool,
    pub application_type: ApplicationType,
    pub info: ClientInfo,
    /// Hex SHA-256 of the registration access token (RFC 7592), for dynamically registered
    /// clients.
    pub registration_token_hash: Option<String>,
}

/// A client as an administrator describes it (CLI flags, admin API, admin pages): raw values,
/// checked together by [`ClientSpec::validate`] so every problem is reported at once.
#[derive(Debug, Clone, Default)]
pub struct ClientSpec {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Empty: `authorization_code` and `refresh_token` (CONTRACT.md).
    pub grant_types: Vec<String>,
    pub scope: String,
    pub public: bool,
    /// `client_secret_basic`, `client_secret_post` or `none`; unset: basic or post for a
    /// confidential client, `none` for a public one.
    pub token_endpoint_auth_method: Option<String>,
    pub skip_consent: bool,
    pub introspect_any: bool,
    /// Sign-ins to the client must use a second factor.
    pub require_mfa: bool,
}

impl ClientSpec {
    /// Checks the description; `id` is the new client's id (or the one being updated).
    pub fn validate(&self, id: ClientId) -> Result<NewClient, Vec<Invalid>> {
        let mut errors = Vec::new();
        let mut grant_types = Vec::new();
        if self.grant_types.is_empty() {
            grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
        }
        for g in &self.grant_types {
            match GrantType::parse(g) {
                Ok(g) if !grant_types.contains(&g) => grant_types.push(g),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        let auth_method = match self.token_endpoint_auth_method.as_deref() {
            None if self.public => AuthMethod::None,
            None => AuthMethod::SecretBasicOrPost,
            Some(m @ ("client_secret_basic" | "client_secret_post" | "none")) => {
                AuthMethod::parse(m).unwrap_or(AuthMethod::SecretBasicOrPost)
            }
            Some(other) => {
                errors.push(Invalid::new(
                    "token_endpoint_auth_method",
                    format!("{other:?}: expected client_secret_basic, client_secret_post or none"),
                ));
                AuthMethod::SecretBasicOrPost
            }
        };
        let public = self.public || auth_method == AuthMethod::None;
        if self.public && auth_method != AuthMethod::None {
            errors.push(Invalid::new(
                "token_endpoint_auth_method",
                "a public client has no secret: use none or leave it out",
            ));
        }
        if public && grant_types.contains(&GrantType::ClientCredentials) {
            errors.push(Invalid::new(
                "grant_types",
                "the client_credentials grant needs a confidential client (RFC 6749 §4.4)",
            ));
        }
        let mut uris = |raw: &[String], field: &'static str| -> Vec<RedirectUri> {
            raw.iter()
                .filter_map(|u| match RedirectUri::parse(u) {
                    Ok(u) => Some(u),
                    Err(e) => {
                        errors.push(Invalid::new(field, e.message));
                        None
                    }
                })
                .collect()
        };
        let redirect_uris = uris(&self.redirect_uris, "redirect_uris");
        let post_logout_redirect_uris =
            uris(&self.post_logout_redirect_uris, "post_logout_redirect_uris");
        if grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            errors.push(Invalid::new(
                "redirect_uris",
                "the authorization_code grant needs at least one redirect URI",
            ));
        }
        let name = self.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            errors.push(Invalid::new("name", "must be 1 to 200 characters"));
        }
        let scopes = ScopeSet::parse(&self.scope).unwrap_or_else(|e| {
            errors.push(e);
            ScopeSet::default()
        });
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(NewClient {
            id,
            name,
            secret_hash: None,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            scopes,
            auth_method,
            public,
            skip_consent: self.skip_consent,
            introspect_any: self.introspect_any,
            require_mfa: self.require_mfa,
            application_type: ApplicationType::Web,
            info: ClientInfo::default(),
            registration_token_hash: None,
        })
    }

    /// The spec applied to an existing client: its id, secret and registration metadata
    /// stay, and it cannot switch between public and confidential (that would leave a
    /// confidential client without a secret, or a public one with one).
    pub fn validate_update(&self, current: &Client) -> Result<NewClient, Vec<Invalid>> {
        let mut new = self.validate(current.id.clone())?;
        if new.public != current.public {
            return Err(vec![Invalid::new(
                "public",
                "a client cannot switch between public and confidential: register a new one",
            )]);
        }
        new.secret_hash = current.secret_hash.clone();
        new.application_type = current.application_type;
        new.info = current.info.clone();
        Ok(new)
    }
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

    #[test]
    fn a_client_spec_reports_every_problem_at_once() {
        let spec = ClientSpec {
            name: " ".into(),
            redirect_uris: vec!["/relative".into()],
            grant_types: vec!["client_credentials".into(), "password".into()],
            public: true,
            ..Default::default()
        };
        let errors = spec.validate(ClientId::generate()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["grant_type", "grant_types", "redirect_uris", "name"]
        );
        let ok = ClientSpec {
            name: "App".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            scope: "openid admin".into(),
            ..Default::default()
        }
        .validate(ClientId::generate())
        .unwrap();
        assert_eq!(ok.auth_method, AuthMethod::SecretBasicOrPost);
        assert_eq!(ok.grant_types.len(), 2);
    }

    #[test]
    fn an_update_keeps_the_id_secret_and_registration_metadata_and_refuses_a_public_switch() {
        let mut current = client(ApplicationType::Native, &["http://127.0.0.1/cb"]);
        current.public = false;
        current.secret_hash = Some("hash".into());
        let spec = ClientSpec {
            name: "Renamed".into(),
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            ..Default::default()
        };
        let new = spec.validate_update(&current).unwrap();
        assert_eq!(new.id, current.id);
        assert_eq!(new.secret_hash.as_deref(), Some("hash"));
        assert_eq!(new.application_type, ApplicationType::Native);
        assert_eq!(new.name, "Renamed");
        let public = ClientSpec {
            public: true,
            ..spec
        };
        let errors = public.validate_update(&current).unwrap_err();
        assert_eq!(errors[0].field, "public");
    }

    fn client(app: ApplicationType, uris: &[&str]) -> Client {
        Client {
            id: ClientId::from_stored("c".into()),
            name: "c".into(),
            secret_hash: None,
            redirect_uris: uris
                .iter()
                .map(|u| RedirectUri::from_stored((*u).to_owned()))
                .collect(),
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: ScopeSet::default(),
            auth_method: AuthMethod::None,
            public: true,
            skip_consent: false,
            introspect_any: false,
            require_mfa: false,
            created_at: UnixTime::from_secs(0),
            application_type: app,
            info: ClientInfo::default(),
            dynamically_registered: true,
        }
    }

    #[test]
    fn a_native_loopback_redirect_uri_matches_with_any_port() {
        let c = client(
            ApplicationType::Native,
            &[
                "http://127.0.0.1/cb",
                "http://[::1]:8000/",
                "http://localhost/cb",
            ],
        );
        assert!(c.redirect_uri_registered("http://127.0.0.1/cb"));
        assert!(c.redirect_uri_registered("http://127.0.0.1:51004/cb"));
        assert!(c.redirect_uri_registered("http://[::1]:1/"));
        assert!(c.redirect_uri_registered("http://[::1]/"));
        // The rest of the URI still compares exactly.
        assert!(!c.redirect_uri_registered("http://127.0.0.1:51004/cb/"));
        assert!(!c.redirect_uri_registered("http://127.0.0.1:51004/other"));
        assert!(!c.redirect_uri_registered("http://127.0.0.1.evil.example/cb"));
        assert!(!c.redirect_uri_registered("http://127.0.0.1:5x/cb"));
        assert!(!c.redirect_uri_registered("http://127.0.0.1:123456/cb"));
        assert!(!c.redirect_uri_registered("http://127.0.0.1:65536/cb"));
        assert!(!c.redirect_uri_registered("http://127.0.0.1:0/cb"));
        assert!(!c.redirect_uri_registered("http://127.0.0.1:080/cb"));
        assert!(c.redirect_uri_registered("http://127.0.0.1:65535/cb"));
        assert!(!c.redirect_uri_registered("https://127.0.0.1:5/cb"));
        // RFC 8252 §8.3: localhost is not a loopback IP literal; exact match only.
        assert!(c.redirect_uri_registered("http://localhost/cb"));
        assert!(!c.redirect_uri_registered("http://localhost:5/cb"));
        // Web clients: exact match only.
        let web = client(ApplicationType::Web, &["http://127.0.0.1/cb"]);
        assert!(!web.redirect_uri_registered("http://127.0.0.1:5/cb"));
    }
}

/// Property tests (proptest) of redirect URI matching: exact string match (RFC 9700 §4.1.3),
/// with only the port free for a native client's loopback URI (RFC 8252 §7.3).
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    const REGISTERED: [&str; 3] = [
        "https://rp.example/cb",
        "http://127.0.0.1/cb",
        "http://[::1]:8000/x?y=1",
    ];

    fn registered(app: ApplicationType) -> Client {
        Client {
            id: ClientId::from_stored("c".into()),
            name: "c".into(),
            secret_hash: None,
            redirect_uris: REGISTERED
                .iter()
                .map(|u| RedirectUri::from_stored((*u).to_owned()))
                .collect(),
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            scopes: ScopeSet::default(),
            auth_method: AuthMethod::None,
            public: true,
            skip_consent: false,
            introspect_any: false,
            require_mfa: false,
            created_at: UnixTime::from_secs(0),
            application_type: app,
            info: ClientInfo::default(),
            dynamically_registered: false,
        }
    }

    /// Presented URIs: registered ones, changed a little (a port, a suffix, a case, a
    /// character), and anything at all.
    fn presented() -> impl Strategy<Value = String> {
        let base = prop::sample::select(REGISTERED.to_vec()).prop_map(str::to_owned);
        prop_oneof![
            base.clone(),
            (base.clone(), ".{0,6}").prop_map(|(b, s)| format!("{b}{s}")),
            (base.clone(), any::<u32>()).prop_map(|(b, port)| b
                .replacen("127.0.0.1", &format!("127.0.0.1:{port}"), 1)
                .replacen(":8000", &format!(":{port}"), 1)),
            (base.clone(), any::<prop::sample::Index>(), any::<char>()).prop_map(|(b, i, c)| {
                let mut chars: Vec<char> = b.chars().collect();
                let at = i.index(chars.len());
                chars[at] = c;
                chars.into_iter().collect()
            }),
            base.prop_map(|b| b.to_uppercase()),
            ".{0,40}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_web_client_matches_only_a_registered_uri_exactly(p in presented()) {
            let c = registered(ApplicationType::Web);
            prop_assert_eq!(c.redirect_uri_registered(&p), REGISTERED.contains(&p.as_str()));
        }

        #[test]
        fn a_native_client_lets_only_a_loopback_port_vary(p in presented()) {
            let c = registered(ApplicationType::Native);
            if !c.redirect_uri_registered(&p) {
                prop_assert!(!REGISTERED.contains(&p.as_str()));
                return Ok(());
            }
            if REGISTERED.contains(&p.as_str()) {
                return Ok(());
            }
            // Not exact: a loopback URI that differs from a registered one only in its port,
            // which is a real one.
            prop_assert!(p.starts_with("http://127.0.0.1:") || p.starts_with("http://[::1]"));
            let without = loopback_without_port(&p);
            prop_assert!(without.is_some());
            prop_assert!(REGISTERED.iter().any(|r| loopback_without_port(r) == without));
            let port: String = p
                .split_once("]:")
                .map(|(_, r)| r)
                .or_else(|| p.strip_prefix("http://127.0.0.1:"))
                .unwrap_or_default()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            prop_assert!(port.is_empty() || port.parse::<u16>().is_ok_and(|n| n > 0));
        }

        #[test]
        fn a_parsed_redirect_uri_matches_its_own_text(raw in presented()) {
            if let Ok(u) = RedirectUri::parse(&raw) {
                prop_assert!(u.matches(&raw));
                prop_assert!(!raw.contains('#'));
                prop_assert_eq!(u.as_str(), raw.as_str());
            }
        }
    }
}

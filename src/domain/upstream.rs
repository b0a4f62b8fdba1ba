//! Upstream identity providers (issue 18): the providers people may sign in with, and the rules
//! for their settings. `castellan upstream create` (CONTRACT.md) goes through
//! [`UpstreamSpec::validate`]; the stored provider is an [`Upstream`] (its client secret is
//! never part of it: the store keeps it sealed, and only the sign-in opens it).

use std::fmt;

/// What kind of provider, and so how Castellan talks to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamKind {
    /// Any OpenID Provider, configured from its issuer's discovery document.
    Oidc,
    /// GitHub (OAuth 2.0; the verified primary email from its emails API).
    Github,
    /// Google: an `oidc` provider whose issuer is `https://accounts.google.com`.
    Google,
}

/// Google's issuer (its discovery document is at the issuer plus
/// `/.well-known/openid-configuration`).
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

impl UpstreamKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "oidc" => Some(Self::Oidc),
            "github" => Some(Self::Github),
            "google" => Some(Self::Google),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Github => "github",
            Self::Google => "google",
        }
    }

    /// The scope asked for when none is given.
    pub fn default_scope(self) -> &'static str {
        match self {
            Self::Oidc | Self::Google => "openid email profile",
            Self::Github => "read:user user:email",
        }
    }
}

impl fmt::Display for UpstreamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider as stored, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub id: String,
    pub kind: UpstreamKind,
    pub name: String,
    /// The issuer (`oidc`, `google`); `None` for GitHub.
    pub issuer: Option<String>,
    pub client_id: String,
    pub scope: String,
    /// A first sign-in creates a local account (just in time).
    pub jit: bool,
    /// An email this provider says is verified may link to the local account with that
    /// verified email without proving the local account first.
    pub trust_email: bool,
    /// Whether the client secret is stored sealed under the key-encryption key.
    pub secret_sealed: bool,
    pub created_at: super::UnixTime,
}

/// Whether `id` can be a provider's id: 1 to 32 of a-z, 0-9 and '-' (not first or last). Every
/// lookup by an id from a request checks it first: anything else names no provider (and a NUL
/// byte, say, never reaches the database, which PostgreSQL would refuse as an error).
pub fn is_upstream_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-')
}

/// The redirect URI to register at a provider: this server's callback for it.
pub fn callback_uri(issuer: &str, id: &str) -> String {
    // Ids are a-z, 0-9 and '-' ([`UpstreamSpec::validate`]): they go into the path as they are.
    format!(
        "{}/login/upstream/{id}/callback",
        issuer.trim_end_matches('/')
    )
}

/// The associated data a provider's sealed client secret is bound to (its id), so a sealed
/// secret copied onto another provider's row does not open.
pub fn secret_aad(id: &str) -> Vec<u8> {
    let mut a = id.as_bytes().to_vec();
    a.extend_from_slice(b"\0upstream client secret");
    a
}

/// What an upstream asserted about the person who signed in there, after every check (the
/// ID token's signature, issuer, audience and nonce; or GitHub's API answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamProfile {
    /// The provider's stable identifier of the person (`sub`; GitHub's numeric user id).
    pub subject: String,
    pub email: Option<String>,
    /// Whether the provider says it verified `email` (`email_verified`; GitHub's `verified`).
    pub email_verified: bool,
    pub name: Option<String>,
}

/// An upstream identity: which provider, and who at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityLink {
    pub upstream_id: String,
    pub subject: String,
    /// The email the provider gave when it was linked (shown on the account page).
    pub email: Option<String>,
}

/// An upstream identity linked to a local account, as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedIdentity {
    pub upstream_id: String,
    pub subject: String,
    pub email: Option<String>,
    pub created_at: super::UnixTime,
    pub last_used_at: Option<super::UnixTime>,
}

/// The longest subject, email and name taken from an upstream (longer: refused, not cut).
pub const MAX_SUBJECT: usize = 255;
pub const MAX_PROFILE_EMAIL: usize = 254;
pub const MAX_PROFILE_NAME: usize = 128;

/// What an administrator asks for (`castellan upstream create`, the admin API and page).
#[derive(Clone)]
pub struct UpstreamSpec {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
    pub jit: bool,
    pub trust_email: bool,
}

impl fmt::Debug for UpstreamSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamSpec")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("client_secret", &"(hidden)")
            .finish_non_exhaustive()
    }
}

/// A validated spec: what the store keeps (the secret still in the clear here; the use case
/// seals it).
#[derive(Clone)]
pub struct ValidUpstream {
    pub id: String,
    pub kind: UpstreamKind,
    pub name: String,
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub scope: String,
    pub jit: bool,
    pub trust_email: bool,
}

/// One wrong field: its name (the [`UpstreamSpec`] field, as the admin API's JSON spells it;
/// the CLI names its flag) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    pub field: &'static str,
    pub message: String,
}

fn problem(field: &'static str, message: impl Into<String>) -> SpecProblem {
    SpecProblem {
        field,
        message: message.into(),
    }
}

/// The longest id, name, client id, secret and scope accepted.
const MAX_ID: usize = 32;
const MAX_NAME: usize = 64;
const MAX_CLIENT_ID: usize = 256;
const MAX_SECRET: usize = 512;
const MAX_SCOPE: usize = 1024;
const MAX_ISSUER: usize = 512;

/// Whether an issuer URL is acceptable: `https` (OpenID Connect Discovery 1.0 §4.3 and RFC
/// 8414 §2: the issuer uses the https scheme, with no query or fragment), or `http` on a
/// loopback host for development.
pub fn issuer_problem(issuer: &str) -> Option<String> {
    if issuer.len() > MAX_ISSUER {
        return Some(format!("must be at most {MAX_ISSUER} characters"));
    }
    let Ok(url) = url::Url::parse(issuer) else {
        return Some("must be an absolute URL".into());
    };
    if url.query().is_some() || url.fragment().is_some() {
        return Some("must have no query or fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("must not carry credentials".into());
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => return Some("must name a host".into()),
    };
    match url.scheme() {
        "https" => None,
        "http" if loopback => None,
        _ => Some("must be https (http only on a loopback host, for development)".into()),
    }
}

fn clean(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty() && !t.chars().any(char::is_control)).then(|| t.to_owned())
}

impl UpstreamSpec {
    /// Checks every field; all problems at once.
    pub fn validate(self) -> Result<ValidUpstream, Vec<SpecProblem>> {
        let mut problems = Vec::new();
        let id = self.id.trim().to_owned();
        if !is_upstream_id(&id) {
            problems.push(problem(
                "id",
                format!(
                    "must be 1 to {MAX_ID} of a-z, 0-9 and '-' (not first or last): it is part of the callback path"
                ),
            ));
        }
        let kind = UpstreamKind::parse(self.kind.trim());
        if kind.is_none() {
            problems.push(problem("kind", "must be oidc, github or google"));
        }
        let name = clean(&self.name).filter(|n| n.chars().count() <= MAX_NAME);
        if name.is_none() {
            problems.push(problem(
                "name",
                format!("must be 1 to {MAX_NAME} characters, no control characters"),
            ));
        }
        let issuer = self
            .issuer
            .as_deref()
            .map(str::trim)
            .filter(|i| !i.is_empty());
        let issuer = match (kind, issuer) {
            (Some(UpstreamKind::Oidc), None) => {
                problems.push(problem("issuer", "is required for an oidc provider"));
                None
            }
            (Some(UpstreamKind::Oidc), Some(i)) => match issuer_problem(i) {
                Some(p) => {
                    problems.push(problem("issuer", p));
                    None
                }
                None => Some(i.to_owned()),
            },
            (Some(UpstreamKind::Google), None) => Some(GOOGLE_ISSUER.to_owned()),
            (Some(UpstreamKind::Google), Some(i)) if i == GOOGLE_ISSUER => Some(i.to_owned()),
            (Some(UpstreamKind::Google), Some(_)) => {
                problems.push(problem(
                    "issuer",
                    format!("is {GOOGLE_ISSUER} for google (leave it out)"),
                ));
                None
            }
            (Some(UpstreamKind::Github), Some(_)) => {
                problems.push(problem("issuer", "does not apply to github"));
                None
            }
            (Some(UpstreamKind::Github), None) | (None, _) => None,
        };
        let client_id = clean(&self.client_id).filter(|c| c.len() <= MAX_CLIENT_ID);
        if client_id.is_none() {
            problems.push(problem(
                "client_id",
                format!("must be 1 to {MAX_CLIENT_ID} characters, no control characters"),
            ));
        }
        let secret = self.client_secret.trim_end_matches(['\r', '\n']).to_owned();
        if secret.is_empty() || secret.len() > MAX_SECRET || secret.chars().any(char::is_control) {
            problems.push(problem(
                "client_secret",
                format!("must be 1 to {MAX_SECRET} bytes, one line, no control characters"),
            ));
        }
        let scope = match &self.scope {
            Some(s) => {
                let tokens: Vec<&str> = s.split_whitespace().collect();
                let ok = !tokens.is_empty()
                    && s.len() <= MAX_SCOPE
                    && tokens.iter().all(|t| {
                        t.bytes()
                            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
                    });
                if !ok {
                    // RFC 6749 §3.3: scope tokens are %x21 / %x23-5B / %x5D-7E, space-separated.
                    problems.push(problem(
                        "scope",
                        format!("must be space-separated scope tokens (RFC 6749 §3.3), at most {MAX_SCOPE} characters"),
                    ));
                }
                tokens.join(" ")
            }
            None => kind
                .map(|k| k.default_scope().to_owned())
                .unwrap_or_default(),
        };
        if kind.is_some_and(|k| k != UpstreamKind::Github)
            && !scope.split(' ').any(|t| t == "openid")
            && self.scope.is_some()
        {
            problems.push(problem(
                "scope",
                "must include openid for an OpenID provider",
            ));
        }
        match (kind, name, client_id, problems.is_empty()) {
            (Some(kind), Some(name), Some(client_id), true) => Ok(ValidUpstream {
                id,
                kind,
                name,
                issuer,
                client_id,
                client_secret: secret,
                scope,
                jit: self.jit,
                trust_email: self.trust_email,
            }),
            _ => Err(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: &str, issuer: Option<&str>) -> UpstreamSpec {
        UpstreamSpec {
            id: "corp".into(),
            kind: kind.into(),
            name: "Corp SSO".into(),
            issuer: issuer.map(str::to_owned),
            client_id: "castellan".into(),
            client_secret: "s3cret\n".into(),
            scope: None,
            jit: true,
            trust_email: false,
        }
    }

    fn fields(r: Result<ValidUpstream, Vec<SpecProblem>>) -> Vec<&'static str> {
        r.err()
            .map(|ps| ps.iter().map(|p| p.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_good_spec_gets_the_kind_defaults() {
        let v = spec("oidc", Some("https://id.example.com"))
            .validate()
            .expect("valid");
        assert_eq!(v.scope, "openid email profile");
        assert_eq!(v.client_secret, "s3cret");
        let g = spec("google", None).validate().expect("valid");
        assert_eq!(g.issuer.as_deref(), Some(GOOGLE_ISSUER));
        let h = spec("github", None).validate().expect("valid");
        assert_eq!(h.issuer, None);
        assert_eq!(h.scope, "read:user user:email");
        assert!(
            spec("oidc", Some("http://127.0.0.1:9000"))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn bad_fields_are_each_named() {
        assert_eq!(fields(spec("oidc", None).validate()), ["issuer"]);
        assert_eq!(
            fields(spec("oidc", Some("http://id.example.com")).validate()),
            ["issuer"]
        );
        assert_eq!(
            fields(spec("oidc", Some("https://id.example.com/?x=1")).validate()),
            ["issuer"]
        );
        assert_eq!(
            fields(spec("github", Some("https://github.com")).validate()),
            ["issuer"]
        );
        assert_eq!(
            fields(spec("google", Some("https://evil.example")).validate()),
            ["issuer"]
        );
        assert_eq!(fields(spec("saml", None).validate()), ["kind"]);
        let mut s = spec("github", None);
        s.id = "Bad Id".into();
        s.client_secret = "\n".into();
        s.name = " ".into();
        assert_eq!(fields(s.validate()), ["id", "name", "client_secret"]);
        let mut s = spec("oidc", Some("https://id.example.com"));
        s.scope = Some("email profile".into());
        assert_eq!(fields(s.validate()), ["scope"]);
    }

    #[test]
    fn the_secret_is_never_in_debug_output() {
        let s = spec("github", None);
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}

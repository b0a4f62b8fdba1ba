//! Settings: compiled defaults → TOML file → environment, validated once at start-up.
//!
//! Layers (later wins), as fixed in `CONTRACT.md`:
//! 1. [`Settings::default`] — the compiled defaults (also documented in `config/castellan.toml`);
//! 2. the TOML file named by `--config` or `CASTELLAN_CONFIG`;
//! 3. the fixed environment variables (`CASTELLAN_ISSUER`, `CASTELLAN_LISTEN`, ...) and the
//!    generic `CASTELLAN_SECTION__KEY` form for every other key.
//!
//! Every section is `deny_unknown_fields`, so a typo fails at start-up instead of being ignored.
//! [`Settings::validate`] checks what serde cannot say; every failure is a [`ConfigError`]
//! naming the key, the value and what was expected, which `main` turns into exit status 2.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

/// A configuration problem: which key, which value, what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key}: {value:?} is not valid: expected {expected}")]
    Invalid {
        key: String,
        value: String,
        expected: String,
    },
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("config file {path}: {reason}")]
    Parse { path: String, reason: String },
    #[error("environment: {reason}")]
    Env { reason: String },
}

fn invalid(key: &str, value: impl fmt::Display, expected: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_string(),
        expected: expected.to_owned(),
    }
}

/// A configuration value that must never be printed (tokens, passwords inside URLs).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub tokens: TokenSettings,
    pub keys: KeySettings,
    pub password: PasswordSettings,
    pub session: SessionSettings,
    pub login: LoginSettings,
    pub mfa: MfaSettings,
    pub upstream: UpstreamSettings,
    pub registration: RegistrationSettings,
    pub dynamic_registration: DynamicRegistrationSettings,
    pub mail: MailSettings,
    pub rate_limit: RateLimitSettings,
    pub housekeeping: HousekeepingSettings,
    pub jobs: JobSettings,
    pub oauth: OAuthSettings,
    pub metrics: MetricsSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Issuer URL, exactly as it appears in `iss`.
    pub issuer: String,
    /// Address and port to bind.
    pub listen: String,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            issuer: "http://localhost:8080".into(),
            listen: "127.0.0.1:8080".into(),
            workers: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH?mode=rwc` or `postgres://...`; may carry a password, so it is a secret.
    pub url: Secret,
    /// Pool size; unset means [`DatabaseSettings::pool_size`]'s default for the backend.
    pub max_connections: Option<u32>,
    /// How long start-up and the CLI wait for the database, to answer at all and for each call
    /// (SQLite: also how long a request waits for a pooled connection).
    pub connect_timeout_secs: u64,
    /// PostgreSQL: the longest one database call of a request may take, waiting for a pooled
    /// connection (or opening one) included; past it the database counts as unavailable and the
    /// request is answered 503 with `Retry-After` (`store::Store::for_requests`).
    pub statement_timeout_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("sqlite://data/castellan.db?mode=rwc"),
            max_connections: None,
            connect_timeout_secs: 5,
            statement_timeout_ms: 500,
        }
    }
}

/// Default pool size on SQLite. One process writes at a time there and every connection keeps
/// its own page cache and thread: 8 held throughput and took 3.5 MiB off the peak RSS that 16
/// had (BENCHMARKS.md, 2026-11-29); 4 left cores idle in introspection.
const SQLITE_POOL_SIZE: u32 = 8;
/// Default pool size on PostgreSQL.
const POSTGRES_POOL_SIZE: u32 = 16;

impl DatabaseSettings {
    /// Whether the URL names SQLite (validation allows only SQLite and PostgreSQL URLs).
    pub fn is_sqlite(&self) -> bool {
        self.url.expose().starts_with("sqlite:")
    }

    /// `max_connections` if set, else the backend's default (8 on SQLite, 16 on PostgreSQL).
    pub fn pool_size(&self) -> u32 {
        self.max_connections.unwrap_or(if self.is_sqlite() {
            SQLITE_POOL_SIZE
        } else {
            POSTGRES_POOL_SIZE
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter: `info`, `castellan=debug`, ...
    pub filter: String,
    /// `pretty` or `json`.
    pub format: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: "pretty".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenSettings {
    pub access_ttl_secs: u64,
    pub id_token_ttl_secs: u64,
    pub code_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// Window in which a just-rotated refresh token may be presented again (0 = strict).
    pub refresh_reuse_grace_secs: u64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_ttl_secs: 900,
            id_token_ttl_secs: 900,
            code_ttl_secs: 60,
            refresh_ttl_secs: 2_592_000,
            refresh_reuse_grace_secs: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeySettings {
    /// RSA modulus size for new signing keys: 2048, 3072 or 4096.
    pub rsa_bits: usize,
    /// How often a running server looks for keys rotated by another process (ms).
    pub reload_interval_ms: u64,
    /// `Cache-Control: max-age` of the JWK Set.
    pub jwks_max_age_secs: u64,
    /// How long a key signs before the next one takes over (0 = only `castellan keys rotate`).
    pub rotate_every_secs: u64,
    /// How long a new key is published in the JWK Set before it signs anything.
    pub publish_ahead_secs: u64,
    /// The key-encryption key (base64 of 32 bytes) that private keys are stored under
    /// (`CASTELLAN_KEY_ENCRYPTION_KEY`).
    pub encryption_key: Option<Secret>,
    /// A file holding the key-encryption key (`CASTELLAN_KEY_ENCRYPTION_KEY_FILE`).
    pub encryption_key_file: Option<String>,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            rsa_bits: 2048,
            reload_interval_ms: 1000,
            jwks_max_age_secs: 60,
            rotate_every_secs: 7_776_000,
            publish_ahead_secs: 3600,
            encryption_key: None,
            encryption_key_file: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordSettings {
    /// argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_memory_kib: u32,
    /// argon2id iterations.
    pub argon2_iterations: u32,
    /// argon2id parallelism.
    pub argon2_parallelism: u32,
    /// Password hashes computed at once; 0 means one per core.
    pub max_concurrent_hashes: usize,
    /// Password checks waiting for a worker at most; one more is answered 503 (`Retry-After`).
    pub max_queued_hashes: usize,
    pub min_length: usize,
    pub max_length: usize,
    /// Require upper, lower, digit and symbol (off by default, after NIST SP 800-63B).
    pub require_composition: bool,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            max_concurrent_hashes: 0,
            max_queued_hashes: 64,
            min_length: 8,
            max_length: 256,
            require_composition: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSettings {
    /// Lifetime of a browser session after login.
    pub ttl_secs: u64,
    /// Cookie name (on https it is prefixed with `__Host-`).
    pub cookie_name: String,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            ttl_secs: 1_209_600,
            cookie_name: "castellan_session".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginSettings {
    pub max_failures: u32,
    pub failure_window_secs: u64,
    /// First lockout length; it doubles with every further failure.
    pub lockout_base_secs: u64,
    pub lockout_max_secs: u64,
}

impl LoginSettings {
    /// The per-account lockout rule these settings describe.
    pub fn lockout(&self) -> crate::domain::LockoutPolicy {
        crate::domain::LockoutPolicy {
            max_failures: self.max_failures,
            window_secs: self.failure_window_secs,
            base_secs: self.lockout_base_secs,
            max_secs: self.lockout_max_secs,
        }
    }
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            max_failures: 5,
            failure_window_secs: 900,
            lockout_base_secs: 60,
            lockout_max_secs: 3600,
        }
    }
}

/// Sign-in through upstream identity providers (the providers themselves are in the
/// database: `castellan upstream create`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSettings {
    /// Seconds each back-channel call to an upstream (discovery, keys, token, UserInfo,
    /// GitHub's API) may take, connecting included.
    pub timeout_secs: u64,
    /// Seconds a provider's discovery document and keys are kept before they are fetched
    /// again (a signature by a key not in the kept set fetches them at once).
    pub metadata_ttl_secs: u64,
    /// GitHub's web origin (authorization and token endpoints). Changed only to test against
    /// a stand-in.
    pub github_url: String,
    /// GitHub's REST API origin. Changed only to test against a stand-in.
    pub github_api_url: String,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            timeout_secs: 10,
            metadata_ttl_secs: 300,
            github_url: "https://github.com".into(),
            github_api_url: "https://api.github.com".into(),
        }
    }
}

/// The second-factor policy (CONTRACT.md: `mfa.required_for_roles`); a client's own
/// requirement is its `require_mfa` flag.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MfaSettings {
    /// Roles whose holders must use a second factor: signed in with the password alone, they
    /// are taken to enrolment (or asked for their factor by the authorization endpoint), and
    /// they cannot remove their last factor.
    pub required_for_roles: Vec<String>,
}

impl MfaSettings {
    /// The policy these settings describe.
    pub fn policy(&self) -> crate::domain::MfaPolicy {
        crate::domain::MfaPolicy::new(self.required_for_roles.clone())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationSettings {
    pub enabled: bool,
    pub require_verified_email: bool,
}

impl Default for RegistrationSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            require_verified_email: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DynamicRegistrationSettings {
    /// `off`, `open` or `token`.
    pub mode: String,
    pub initial_access_token: Option<Secret>,
}

/// `dynamic_registration.mode`, as [`Settings::validate`] accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationMode {
    /// No registration endpoint (404) and none in the discovery document.
    Off,
    /// Anyone may register a client (rate-limited per address).
    Open,
    /// `Authorization: Bearer <initial_access_token>` is required (RFC 7591 §3).
    Token,
}

impl DynamicRegistrationSettings {
    /// The validated mode; anything unrecognised counts as off.
    pub fn registration_mode(&self) -> RegistrationMode {
        match self.mode.as_str() {
            "open" => RegistrationMode::Open,
            "token" => RegistrationMode::Token,
            _ => RegistrationMode::Off,
        }
    }
}

impl Default for DynamicRegistrationSettings {
    fn default() -> Self {
        Self {
            mode: "off".into(),
            initial_access_token: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// `smtp://host:port`, `smtp+starttls://user:pass@host:port`, `smtps://...`; unset: log only.
    pub smtp_url: Option<Secret>,
    pub from: String,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "castellan@localhost".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Optional Redis for rate-limit counters shared across instances.
    pub redis_url: Option<Secret>,
    /// How long a rate-limit decision waits for Redis before the instance decides alone (ms).
    pub redis_timeout_ms: u64,
    /// Proxies whose `X-Forwarded-For` is believed (IP addresses).
    pub trusted_proxies: Vec<String>,
    /// Failed login attempts per client address per minute (0 = no limit).
    pub login_per_minute: u32,
    /// Registration submissions per client address per minute.
    pub register_per_minute: u32,
    /// Forgot-password submissions per client address per minute.
    pub forgot_password_per_minute: u32,
    /// Failed client authentications at the token endpoint per address per minute.
    pub client_auth_failures_per_minute: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_timeout_ms: 250,
            trusted_proxies: Vec::new(),
            login_per_minute: 60,
            register_per_minute: 10,
            forgot_password_per_minute: 10,
            client_auth_failures_per_minute: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HousekeepingSettings {
    /// Seconds between purges of expired rows (codes, tokens, sessions, email tokens, audit).
    pub interval_secs: u64,
    /// Rows deleted per statement (bounded, so no purge holds a long lock).
    pub batch_size: u64,
    /// Audit events older than this many days are deleted.
    pub audit_retention_days: u64,
}

impl Default for HousekeepingSettings {
    fn default() -> Self {
        Self {
            interval_secs: 300,
            batch_size: 1000,
            audit_retention_days: 90,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobSettings {
    /// Whether this instance runs queued background jobs (preparing and sending account mail).
    pub run: bool,
    /// Milliseconds between looks for jobs queued by other instances or due for a retry.
    pub poll_interval_ms: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            run: true,
            poll_interval_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthSettings {
    /// Require PKCE (S256) from every client, confidential ones included (RFC 9700 §2.1.1).
    pub require_pkce: bool,
    /// Name of the claim that carries the user's roles (with the `roles` scope) in ID tokens
    /// and access tokens.
    pub roles_claim: String,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        Self {
            require_pkce: true,
            roles_claim: "roles".to_owned(),
        }
    }
}

/// Claims we set ourselves: the roles claim may not take one of their names.
const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "sid",
    "scope",
    "client_id",
    "name",
    "preferred_username",
    "updated_at",
    "email",
    "email_verified",
];

/// The Prometheus endpoint `/metrics` (see `services::metrics`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Whether `/metrics` is served (and requests are counted) at all.
    pub enabled: bool,
    /// Unset: `/metrics` is served on `server.listen`. Set to an address:port: served only
    /// there, by a second small server, and the main listener answers 404 for `/metrics`.
    pub listen: Option<String>,
    /// When set, a scrape needs `Authorization: Bearer <token>` (RFC 6750 §2.1).
    pub bearer_token: Option<Secret>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
            bearer_token: None,
        }
    }
}

/// The fixed environment variable names of `CONTRACT.md`, and the key each one sets.
pub const FIXED_ENV: &[(&str, &str)] = &[
    ("CASTELLAN_ISSUER", "server.issuer"),
    ("CASTELLAN_LISTEN", "server.listen"),
    ("CASTELLAN_DATABASE_URL", "database.url"),
    ("CASTELLAN_SMTP_URL", "mail.smtp_url"),
    ("CASTELLAN_MAIL_FROM", "mail.from"),
    ("CASTELLAN_REDIS_URL", "rate_limit.redis_url"),
    ("CASTELLAN_KEY_ENCRYPTION_KEY", "keys.encryption_key"),
    (
        "CASTELLAN_KEY_ENCRYPTION_KEY_FILE",
        "keys.encryption_key_file",
    ),
    ("CASTELLAN_LOG", "log.filter"),
    ("CASTELLAN_LOG_FORMAT", "log.format"),
];

/// Keys whose values are secrets: never echoed back in an error message.
const SECRET_KEYS: &[&str] = &[
    "database.url",
    "mail.smtp_url",
    "rate_limit.redis_url",
    "keys.encryption_key",
    "dynamic_registration.initial_access_token",
    "metrics.bearer_token",
];

impl Settings {
    /// Loads the layers from a file (if any) and the given environment, then validates.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let defaults =
            toml::Value::try_from(Settings::default()).map_err(|e| ConfigError::Env {
                reason: format!("internal: cannot serialise defaults: {e}"),
            })?;
        let mut merged = defaults.clone();
        if let Some(path) = file {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            // Parse into Settings first: toml's own errors name the line and the key.
            // toml quotes the offending line: hide any URL credentials it may hold.
            toml::from_str::<Settings>(&text).map_err(|e| ConfigError::Parse {
                path: shown.clone(),
                reason: redact_in_text(&e.to_string().trim().replace('\n', " ")),
            })?;
            let value: toml::Value = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: shown,
                reason: redact_in_text(&e.to_string()),
            })?;
            merge(&mut merged, value);
        }
        let vars: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("CASTELLAN_"))
            .collect();
        for (name, raw) in &vars {
            let key = match FIXED_ENV.iter().find(|(n, _)| n == name) {
                Some((_, key)) => (*key).to_owned(),
                None => match name.strip_prefix("CASTELLAN_") {
                    Some(rest) if rest.contains("__") => {
                        rest.to_ascii_lowercase().replace("__", ".")
                    }
                    // CASTELLAN_CONFIG and variables of other tools: not settings.
                    _ => continue,
                },
            };
            let value = typed_env_value(&defaults, &key, name, raw)?;
            set_path(&mut merged, &key, value, name)?;
        }
        let settings: Settings =
            merged
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Env {
                    reason: e.to_string().trim().replace('\n', " "),
                })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Settings for the integration tests: an in-memory-free temp database chosen by the
    /// harness, fast password hashing, and no dependence on the working directory.
    pub fn for_test(issuer: &str, database_url: &str) -> Self {
        let mut s = Settings::default();
        s.server.issuer = issuer.to_owned();
        s.server.listen = "127.0.0.1:0".into();
        s.server.workers = 2;
        s.database.url = Secret::new(database_url);
        s.database.max_connections = Some(5);
        s.password.argon2_memory_kib = 1024;
        s.password.argon2_iterations = 1;
        s.log.filter = "warn".into();
        s
    }

    /// Checks what serde cannot: URL shapes, ranges, enumerations.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_issuer(&self.server.issuer)?;
        self.listen_addr()?;
        if !(1..=120).contains(&self.upstream.timeout_secs) {
            return Err(invalid(
                "upstream.timeout_secs",
                self.upstream.timeout_secs.to_string(),
                "1 to 120 seconds",
            ));
        }
        for (key, value) in [
            ("upstream.github_url", &self.upstream.github_url),
            ("upstream.github_api_url", &self.upstream.github_api_url),
        ] {
            if crate::domain::upstream::issuer_problem(value).is_some() {
                return Err(invalid(
                    key,
                    value,
                    "an absolute https URL (http only on a loopback host)",
                ));
            }
        }
        let db = self.database.url.expose();
        if !(self.database.is_sqlite()
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(invalid(
                "database.url",
                redact_url(db),
                "a sqlite://PATH?mode=rwc or postgres://USER@HOST/DB URL",
            ));
        }
        if self.database.max_connections == Some(0) {
            return Err(invalid("database.max_connections", 0, "at least 1"));
        }
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            return Err(invalid(
                "log.format",
                &self.log.format,
                "`pretty` or `json`",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.filter).is_err() {
            return Err(invalid(
                "log.filter",
                &self.log.filter,
                "a tracing filter such as `info` or `castellan=debug`",
            ));
        }
        let t = &self.tokens;
        for (key, v, min, max) in [
            ("tokens.access_ttl_secs", t.access_ttl_secs, 1, 86_400),
            ("tokens.id_token_ttl_secs", t.id_token_ttl_secs, 1, 86_400),
            ("tokens.code_ttl_secs", t.code_ttl_secs, 1, 600),
            ("tokens.refresh_ttl_secs", t.refresh_ttl_secs, 1, 31_536_000),
            (
                "tokens.refresh_reuse_grace_secs",
                t.refresh_reuse_grace_secs,
                0,
                300,
            ),
            ("session.ttl_secs", self.session.ttl_secs, 60, 31_536_000),
            (
                "login.failure_window_secs",
                self.login.failure_window_secs,
                1,
                86_400,
            ),
            (
                "login.lockout_base_secs",
                self.login.lockout_base_secs,
                1,
                86_400,
            ),
            (
                "login.lockout_max_secs",
                self.login.lockout_max_secs,
                1,
                604_800,
            ),
            (
                "rate_limit.redis_timeout_ms",
                self.rate_limit.redis_timeout_ms,
                10,
                10_000,
            ),
            (
                "keys.reload_interval_ms",
                self.keys.reload_interval_ms,
                10,
                3_600_000,
            ),
            (
                "keys.rotate_every_secs",
                self.keys.rotate_every_secs,
                0,
                315_360_000,
            ),
            (
                "keys.publish_ahead_secs",
                self.keys.publish_ahead_secs,
                0,
                31_536_000,
            ),
            (
                "keys.jwks_max_age_secs",
                self.keys.jwks_max_age_secs,
                0,
                86_400,
            ),
            (
                "housekeeping.interval_secs",
                self.housekeeping.interval_secs,
                1,
                86_400,
            ),
            (
                "housekeeping.batch_size",
                self.housekeeping.batch_size,
                1,
                100_000,
            ),
            (
                "housekeeping.audit_retention_days",
                self.housekeeping.audit_retention_days,
                1,
                36_500,
            ),
            (
                "database.connect_timeout_secs",
                self.database.connect_timeout_secs,
                1,
                300,
            ),
            (
                "database.statement_timeout_ms",
                self.database.statement_timeout_ms,
                50,
                600_000,
            ),
            (
                "password.max_queued_hashes",
                self.password.max_queued_hashes as u64,
                1,
                100_000,
            ),
            (
                "jobs.poll_interval_ms",
                self.jobs.poll_interval_ms,
                10,
                60_000,
            ),
        ] {
            if v < min || v > max {
                return Err(invalid(
                    key,
                    v,
                    &format!("a whole number from {min} to {max}"),
                ));
            }
        }
        if self.login.lockout_max_secs < self.login.lockout_base_secs {
            return Err(invalid(
                "login.lockout_max_secs",
                self.login.lockout_max_secs,
                "at least login.lockout_base_secs",
            ));
        }
        if self.login.max_failures == 0 {
            return Err(invalid("login.max_failures", 0, "at least 1"));
        }
        // Role names as the catalogue spells them; whether each exists is the database's to
        // say (a role created later takes effect when it is given to someone).
        for role in &self.mfa.required_for_roles {
            if !crate::domain::Role::parse(role).is_ok_and(|r| r.as_str() == role) {
                return Err(invalid(
                    "mfa.required_for_roles",
                    role,
                    "role names: lower-case letters, digits, `-` and `_`",
                ));
            }
        }
        if let Some(kek) = &self.keys.encryption_key {
            if crate::crypto::seal::Kek::from_base64(kek.expose()).is_err() {
                return Err(invalid(
                    "keys.encryption_key",
                    "(hidden)",
                    "base64 of 32 random bytes (e.g. `openssl rand -base64 32`)",
                ));
            }
            if self.keys.encryption_key_file.is_some() {
                return Err(invalid(
                    "keys.encryption_key_file",
                    self.keys.encryption_key_file.as_deref().unwrap_or_default(),
                    "unset when keys.encryption_key (CASTELLAN_KEY_ENCRYPTION_KEY) is set: one \
                     key-encryption key",
                ));
            }
        }
        if !matches!(self.keys.rsa_bits, 2048 | 3072 | 4096) {
            return Err(invalid(
                "keys.rsa_bits",
                self.keys.rsa_bits,
                "2048, 3072 or 4096",
            ));
        }
        let p = &self.password;
        if argon2::Params::new(
            p.argon2_memory_kib,
            p.argon2_iterations,
            p.argon2_parallelism,
            None,
        )
        .is_err()
        {
            return Err(invalid(
                "password.argon2_memory_kib",
                format!(
                    "m={} t={} p={}",
                    p.argon2_memory_kib, p.argon2_iterations, p.argon2_parallelism
                ),
                "argon2 parameters with memory >= 8 x parallelism KiB, iterations >= 1, parallelism 1..=16777215",
            ));
        }
        if p.min_length < 1 {
            return Err(invalid("password.min_length", p.min_length, "at least 1"));
        }
        // NIST SP 800-63B §5.1.1.2: allow at least 64 characters.
        if p.max_length < 64 || p.max_length < p.min_length {
            return Err(invalid(
                "password.max_length",
                p.max_length,
                "at least 64 and at least password.min_length",
            ));
        }
        if self.session.cookie_name.is_empty()
            || !self
                .session
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid(
                "session.cookie_name",
                &self.session.cookie_name,
                "letters, digits, `_` and `-`",
            ));
        }
        match self.dynamic_registration.mode.as_str() {
            "off" | "open" => {}
            "token" => {
                if self
                    .dynamic_registration
                    .initial_access_token
                    .as_ref()
                    .is_none_or(|t| t.expose().len() < 16)
                {
                    return Err(invalid(
                        "dynamic_registration.initial_access_token",
                        "(unset or short)",
                        "a token of at least 16 characters when dynamic_registration.mode is `token`",
                    ));
                }
            }
            other => {
                return Err(invalid(
                    "dynamic_registration.mode",
                    other,
                    "`off`, `open` or `token`",
                ));
            }
        }
        if let Some(smtp) = &self.mail.smtp_url {
            let ok = Url::parse(smtp.expose())
                .map(|u| {
                    matches!(u.scheme(), "smtp" | "smtp+starttls" | "smtps")
                        && u.host_str().is_some()
                })
                .unwrap_or(false);
            if !ok {
                return Err(invalid(
                    "mail.smtp_url",
                    redact_url(smtp.expose()),
                    "smtp://host:port, smtp+starttls://user:pass@host:port or smtps://user:pass@host:port",
                ));
            }
        }
        if !self.mail.from.contains('@') {
            return Err(invalid("mail.from", &self.mail.from, "an email address"));
        }
        if let Some(redis) = &self.rate_limit.redis_url {
            let ok = Url::parse(redis.expose())
                .map(|u| matches!(u.scheme(), "redis" | "rediss"))
                .unwrap_or(false);
            if !ok {
                return Err(invalid(
                    "rate_limit.redis_url",
                    redact_url(redis.expose()),
                    "a redis:// or rediss:// URL",
                ));
            }
        }
        let claim = &self.oauth.roles_claim;
        if claim.is_empty()
            || claim.len() > 64
            || !claim
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/'))
            || RESERVED_CLAIMS.contains(&claim.as_str())
        {
            return Err(invalid(
                "oauth.roles_claim",
                claim,
                "a claim name (letters, digits, `_-.:/`) that is not a registered JWT or OpenID claim",
            ));
        }
        for proxy in &self.rate_limit.trusted_proxies {
            if proxy.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid("rate_limit.trusted_proxies", proxy, "IP addresses"));
            }
        }
        if let Some(addr) = self.metrics_listen_addr()?
            && addr.port() != 0
            && self.listen_addr().is_ok_and(|main| main == addr)
        {
            return Err(invalid(
                "metrics.listen",
                addr,
                "an address:port other than server.listen (leave it unset to serve /metrics there)",
            ));
        }
        if self
            .metrics
            .bearer_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 16)
        {
            return Err(invalid(
                "metrics.bearer_token",
                "(short)",
                "a token of at least 16 characters, or unset",
            ));
        }
        Ok(())
    }

    /// The separate metrics address, when `metrics.listen` is set (validated by
    /// [`Settings::validate`]).
    pub fn metrics_listen_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        self.metrics
            .listen
            .as_deref()
            .map(|raw| {
                raw.parse().map_err(|_| {
                    invalid(
                        "metrics.listen",
                        raw,
                        "an address:port such as 127.0.0.1:9090, or unset",
                    )
                })
            })
            .transpose()
    }

    /// The parsed listen address (validated by [`Settings::validate`]).
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.parse().map_err(|_| {
            invalid(
                "server.listen",
                &self.server.listen,
                "an address:port such as 127.0.0.1:8080",
            )
        })
    }

    /// The issuer without a trailing slash, to which endpoint paths are appended.
    pub fn base_url(&self) -> &str {
        self.server.issuer.trim_end_matches('/')
    }

    /// Whether the issuer is served over https (secure cookies, HSTS, `__Host-` prefix).
    pub fn is_https(&self) -> bool {
        self.server.issuer.starts_with("https://")
    }

    /// Where a SQLite database file lives, if the database is a SQLite file.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let url = self.database.url.expose();
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            None
        } else {
            Some(PathBuf::from(path))
        }
    }
}

/// The issuer must be an absolute URL without query or fragment; plain http only on loopback
/// (OpenID Connect Discovery 1.0 §3 and RFC 8414 §2).
fn validate_issuer(issuer: &str) -> Result<(), ConfigError> {
    const WHAT: &str =
        "an absolute https URL without query or fragment (http only for localhost/loopback)";
    let url = Url::parse(issuer).map_err(|_| invalid("server.issuer", issuer, WHAT))?;
    if url.query().is_some()
        || url.fragment().is_some()
        || issuer.contains('?')
        || issuer.contains('#')
    {
        return Err(invalid("server.issuer", issuer, WHAT));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("server.issuer", issuer, WHAT));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(invalid("server.issuer", issuer, WHAT))
            }
        }
        _ => Err(invalid("server.issuer", issuer, WHAT)),
    }
}

/// A URL with any password replaced, for messages.
pub fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) if raw.contains('@') => {
            "(unparseable URL, hidden because it may hold a password)".into()
        }
        Err(_) => raw.to_owned(),
    }
}

/// Hides any `scheme://user:password@` credentials inside a free-text message (driver errors).
pub fn redact_in_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '"')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn lookup<'a>(value: &'a toml::Value, key: &str) -> Option<&'a toml::Value> {
    key.split('.').try_fold(value, |v, part| v.get(part))
}

/// Keys holding an optional whole number (unset by default): an environment value for them is
/// read as a number, not as a string.
const OPTIONAL_INTEGER_KEYS: &[&str] = &["database.max_connections"];

/// Converts an environment string into the type the key's default has.
fn typed_env_value(
    defaults: &toml::Value,
    key: &str,
    var: &str,
    raw: &str,
) -> Result<toml::Value, ConfigError> {
    let shown = if SECRET_KEYS.contains(&key) {
        "(hidden)".to_owned()
    } else {
        raw.to_owned()
    };
    let (section, _) = key.split_once('.').ok_or_else(|| ConfigError::Env {
        reason: format!("{var}: expected CASTELLAN_SECTION__KEY"),
    })?;
    if defaults.get(section).is_none() {
        return Err(ConfigError::Env {
            reason: format!("{var}: there is no configuration section `{section}`"),
        });
    }
    let default = lookup(defaults, key).or_else(|| {
        // An optional whole number is unset by default, so its type is not in the defaults.
        OPTIONAL_INTEGER_KEYS
            .contains(&key)
            .then_some(&toml::Value::Integer(0))
    });
    Ok(match default {
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| invalid(&format!("{key} ({var})"), shown, "a whole number"))?,
        ),
        Some(toml::Value::Boolean(_)) => {
            toml::Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(invalid(&format!("{key} ({var})"), shown, "true or false")),
            })
        }
        Some(toml::Value::Array(_)) => toml::Value::Array(
            raw.split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        ),
        // Strings, and optional values that default to unset.
        _ => toml::Value::String(raw.to_owned()),
    })
}

fn set_path(
    root: &mut toml::Value,
    key: &str,
    value: toml::Value,
    var: &str,
) -> Result<(), ConfigError> {
    let mut parts = key.split('.').peekable();
    let mut cur = root;
    while let Some(part) = parts.next() {
        let table = cur.as_table_mut().ok_or_else(|| ConfigError::Env {
            reason: format!("{var}: `{key}` is not a configuration key"),
        })?;
        if parts.peek().is_none() {
            table.insert(part.to_owned(), value);
            return Ok(());
        }
        cur = table
            .entry(part.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::map::Map::new()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.server.issuer, "http://localhost:8080");
        assert_eq!(s.tokens.access_ttl_secs, 900);
    }

    #[test]
    fn fixed_and_generic_environment_variables_apply() {
        let s = Settings::load(
            None,
            env(&[
                ("CASTELLAN_ISSUER", "https://id.example.com"),
                ("CASTELLAN_TOKENS__ACCESS_TTL_SECS", "5"),
                ("CASTELLAN_REGISTRATION__ENABLED", "false"),
                ("CASTELLAN_SERVE", "ignored: not a key"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.issuer, "https://id.example.com");
        assert_eq!(s.tokens.access_ttl_secs, 5);
        assert!(!s.registration.enabled);
    }

    #[test]
    fn the_pool_size_follows_the_backend_unless_set() {
        let sqlite = Settings::load(None, env(&[])).unwrap();
        assert_eq!(sqlite.database.pool_size(), 8);
        let pg = Settings::load(
            None,
            env(&[(
                "CASTELLAN_DATABASE_URL",
                "postgres://castellan@127.0.0.1/castellan",
            )]),
        )
        .unwrap();
        assert_eq!(pg.database.pool_size(), 16);
        let set =
            Settings::load(None, env(&[("CASTELLAN_DATABASE__MAX_CONNECTIONS", "3")])).unwrap();
        assert_eq!(set.database.pool_size(), 3);
        for bad in ["0", "many"] {
            let e = Settings::load(None, env(&[("CASTELLAN_DATABASE__MAX_CONNECTIONS", bad)]))
                .unwrap_err();
            assert!(e.to_string().contains("database.max_connections"), "{e}");
        }
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Settings::load(None, env(&[("CASTELLAN_TOKENS__ACCESS_TTL_SECS", "soon")]))
            .unwrap_err();
        assert!(
            e.to_string().contains("CASTELLAN_TOKENS__ACCESS_TTL_SECS"),
            "{e}"
        );
        let e = Settings::load(None, env(&[("CASTELLAN_TOKENS__NOPE", "1")])).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let e = Settings::load(None, env(&[("CASTELLAN_NOPE__X", "1")])).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn issuer_rules() {
        for bad in [
            "localhost:8080",
            "http://example.com",
            "https://example.com/?a=b",
            "https://example.com/#x",
            "ftp://example.com",
            "https://user:pw@example.com",
        ] {
            assert!(validate_issuer(bad).is_err(), "{bad} accepted");
        }
        for good in [
            "https://id.example.com",
            "https://example.com/tenant",
            "http://127.0.0.1:9",
            "http://[::1]:8080",
            "http://localhost",
        ] {
            assert!(validate_issuer(good).is_ok(), "{good} refused");
        }
    }

    #[test]
    fn secrets_are_not_printed() {
        let e = Settings::load(
            None,
            env(&[("CASTELLAN_DATABASE_URL", "mysql://u:hunter2@h/db")]),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let s = Settings::default();
        assert!(!format!("{s:?}").contains("castellan.db"));
    }

    #[test]
    fn metrics_settings_are_validated_and_name_their_key() {
        let e = Settings::load(None, env(&[("CASTELLAN_METRICS__LISTEN", "localhost")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("metrics.listen") && e.contains("localhost"),
            "{e}"
        );
        let e = Settings::load(
            None,
            env(&[
                ("CASTELLAN_LISTEN", "127.0.0.1:8080"),
                ("CASTELLAN_METRICS__LISTEN", "127.0.0.1:8080"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("metrics.listen"), "{e}");
        let e = Settings::load(None, env(&[("CASTELLAN_METRICS__BEARER_TOKEN", "hunter2")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("metrics.bearer_token") && !e.contains("hunter2"),
            "{e}"
        );
        let s = Settings::load(
            None,
            env(&[
                ("CASTELLAN_METRICS__LISTEN", "0.0.0.0:9090"),
                (
                    "CASTELLAN_METRICS__BEARER_TOKEN",
                    "a-long-enough-scrape-token",
                ),
                ("CASTELLAN_METRICS__ENABLED", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(s.metrics.listen.as_deref(), Some("0.0.0.0:9090"));
        assert!(!s.metrics.enabled);
        assert!(!format!("{s:?}").contains("a-long-enough-scrape-token"));
    }

    #[test]
    fn mfa_roles_come_from_the_environment_and_are_checked() {
        assert!(Settings::default().mfa.required_for_roles.is_empty());
        let s = Settings::load(
            None,
            env(&[("CASTELLAN_MFA__REQUIRED_FOR_ROLES", "admin,finance")]),
        )
        .unwrap();
        assert_eq!(s.mfa.required_for_roles, ["admin", "finance"]);
        let e = Settings::load(
            None,
            env(&[("CASTELLAN_MFA__REQUIRED_FOR_ROLES", "admin,Finance!")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("mfa.required_for_roles") && e.contains("Finance!"),
            "{e}"
        );
    }

    #[test]
    fn credentials_are_hidden_in_driver_messages() {
        let t = redact_in_text("error connecting to postgres://bob:hunter2@db:5432/x: refused");
        assert!(!t.contains("hunter2") && t.contains("@db:5432"), "{t}");
    }

    #[test]
    fn file_layer_reports_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[tokens]\naccess_ttl = 5\n").unwrap();
        let e = Settings::load(Some(&path), env(&[])).unwrap_err();
        assert!(e.to_string().contains("access_ttl"), "{e}");
        std::fs::write(&path, "[tokens]\naccess_ttl_secs = 7\n").unwrap();
        let s =
            Settings::load(Some(&path), env(&[("CASTELLAN_LISTEN", "127.0.0.1:9999")])).unwrap();
        assert_eq!(s.tokens.access_ttl_secs, 7);
        assert_eq!(s.server.listen, "127.0.0.1:9999");
    }
}

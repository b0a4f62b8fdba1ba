//! Prometheus metrics: a small registry of atomic counters, one per running server (built in
//! `startup` and handed to whoever counts, never global, so two servers in one process count
//! apart), and the text
//! exposition format 0.0.4 that `/metrics` serves.
//!
//! What is counted where:
//! - HTTP requests and their latency, by route PATTERN (`/oauth2/token`, never a raw path;
//!   [`UNMATCHED`] when no route matched), method and status: the request middleware calls
//!   [`Metrics::observe_request`]. Routes come from the route table, methods are folded into a
//!   fixed list, and each route/method keeps at most [`STATUS_SLOTS`] distinct statuses, so the
//!   label sets stay bounded whatever clients send.
//! - Logins by [`LoginOutcome`]: the login page. Tokens issued by [`TokenGrant`]: the token
//!   endpoint, on success.
//! - Live sessions and database pool use are read at scrape time ([`scrape`]): sessions are
//!   counted in the database, so the figure is right with several instances on one database.
//!
//! The request path is cheap: a read lock on the route map (never a write once a route/method
//! has been seen), a few relaxed atomic additions, no allocation. Rendering allocates; it runs
//! once per scrape.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::Duration;

use crate::config::Secret;
use crate::store::PoolStats;

/// The exposition format's media type (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `route` label of a request that matched no route (404s of unknown paths).
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds of the latency buckets, in seconds (as printed in `le`) and in nanoseconds.
const BUCKETS: [(&str, u64); 13] = [
    ("0.001", 1_000_000),
    ("0.0025", 2_500_000),
    ("0.005", 5_000_000),
    ("0.01", 10_000_000),
    ("0.025", 25_000_000),
    ("0.05", 50_000_000),
    ("0.1", 100_000_000),
    ("0.25", 250_000_000),
    ("0.5", 500_000_000),
    ("1", 1_000_000_000),
    ("2.5", 2_500_000_000),
    ("5", 5_000_000_000),
    ("10", 10_000_000_000),
];

/// The `method` label: RFC 9110 §9 methods and PATCH; anything else is `other`.
const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other",
];

/// Distinct statuses kept per route and method; further ones are counted as `status="other"`.
pub const STATUS_SLOTS: usize = 16;

/// How a login attempt on the login page ended. The page shows one generic message for every
/// failure; the metric tells them apart for operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    Success,
    /// Unknown email, wrong password, or an account without a password.
    BadCredentials,
    /// The account is locked after too many failures.
    Locked,
    /// The password was right, the account is disabled.
    Disabled,
    /// The password was right, the email is not verified yet.
    Unverified,
    /// Refused before any check: the address used up its failed attempts.
    RateLimited,
    /// Could not be decided (database or worker failure).
    Error,
    /// The password was right; the account has a second factor, asked for next.
    SecondFactorNeeded,
    /// A wrong, replayed or used-up second-factor code.
    SecondFactorFailed,
    /// The password was right; the account has no second factor and its roles require one:
    /// signed in with one factor and taken to enrolment.
    SecondFactorEnrolment,
}

impl LoginOutcome {
    pub const ALL: [LoginOutcome; 10] = [
        LoginOutcome::Success,
        LoginOutcome::BadCredentials,
        LoginOutcome::Locked,
        LoginOutcome::Disabled,
        LoginOutcome::Unverified,
        LoginOutcome::RateLimited,
        LoginOutcome::Error,
        LoginOutcome::SecondFactorNeeded,
        LoginOutcome::SecondFactorFailed,
        LoginOutcome::SecondFactorEnrolment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Success => "success",
            LoginOutcome::BadCredentials => "bad_credentials",
            LoginOutcome::Locked => "locked",
            LoginOutcome::Disabled => "disabled",
            LoginOutcome::Unverified => "unverified",
            LoginOutcome::RateLimited => "rate_limited",
            LoginOutcome::Error => "error",
            LoginOutcome::SecondFactorNeeded => "second_factor_needed",
            LoginOutcome::SecondFactorFailed => "second_factor_failed",
            LoginOutcome::SecondFactorEnrolment => "second_factor_enrolment",
        }
    }
}

/// The grant a token response was issued for (RFC 6749 §4.1.3, §6, §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenGrant {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl TokenGrant {
    pub const ALL: [TokenGrant; 3] = [
        TokenGrant::AuthorizationCode,
        TokenGrant::RefreshToken,
        TokenGrant::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenGrant::AuthorizationCode => "authorization_code",
            TokenGrant::RefreshToken => "refresh_token",
            TokenGrant::ClientCredentials => "client_credentials",
        }
    }
}

/// The registry of one server.
#[derive(Debug)]
pub struct Metrics {
    /// Route pattern → its series, one per method, made on first use.
    routes: RwLock<HashMap<Box<str>, RouteSeries>>,
    logins: [AtomicU64; LoginOutcome::ALL.len()],
    tokens: [AtomicU64; TokenGrant::ALL.len()],
    /// Rate-limit decisions made locally because Redis could not answer.
    ratelimit_fallbacks: AtomicU64,
    /// Mails given up on after their last attempt.
    mails_given_up: AtomicU64,
    /// 1 when signing keys are stored encrypted, 0 when not (set at start-up).
    keys_encrypted: AtomicU16,
    /// Unix time the server started (`process_start_time_seconds`).
    started_at: i64,
}

#[derive(Debug, Default)]
struct RouteSeries {
    methods: [OnceLock<Box<Series>>; METHODS.len()],
}

/// One route and method: request counts by status, and the latency histogram.
#[derive(Debug, Default)]
struct Series {
    statuses: [StatusSlot; STATUS_SLOTS],
    other_status: AtomicU64,
    /// Per-bucket (not cumulative) counts; the last one is above the largest bound (+Inf).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

#[derive(Debug, Default)]
struct StatusSlot {
    /// 0 while the slot is free.
    status: AtomicU16,
    count: AtomicU64,
}

impl Series {
    fn observe(&self, status: u16, elapsed: Duration) {
        self.count_status(status);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let i = BUCKETS
            .iter()
            .position(|(_, bound)| nanos <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Finds the slot of `status`, claiming a free one (lock-free) the first time.
    fn count_status(&self, status: u16) {
        if status != 0 {
            for slot in &self.statuses {
                let seen = match slot.status.load(Ordering::Acquire) {
                    0 => match slot.status.compare_exchange(
                        0,
                        status,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => status,
                        Err(other) => other,
                    },
                    s => s,
                };
                if seen == status {
                    slot.count.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        self.other_status.fetch_add(1, Ordering::Relaxed);
    }
}

fn method_index(method: &str) -> usize {
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

impl Metrics {
    /// An empty registry for a server started at `started_at` (Unix seconds).
    pub fn new(started_at: i64) -> Self {
        Self {
            routes: RwLock::new(HashMap::new()),
            logins: Default::default(),
            tokens: Default::default(),
            ratelimit_fallbacks: AtomicU64::new(0),
            mails_given_up: AtomicU64::new(0),
            keys_encrypted: AtomicU16::new(0),
            started_at,
        }
    }

    /// Counts one answered request. `route` is the matched route pattern (`None`: no route
    /// matched, labelled [`UNMATCHED`]); never pass a raw path.
    pub fn observe_request(
        &self,
        route: Option<&str>,
        method: &str,
        status: u16,
        elapsed: Duration,
    ) {
        let route = route.unwrap_or(UNMATCHED);
        let m = method_index(method);
        // Nothing panics while the lock is held, so a poisoned lock still holds good data.
        {
            let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(r) = routes.get(route) {
                r.methods[m]
                    .get_or_init(Box::default)
                    .observe(status, elapsed);
                return;
            }
        }
        // First request on this route: the only write, once per route pattern.
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        routes.entry(route.into()).or_default().methods[m]
            .get_or_init(Box::default)
            .observe(status, elapsed);
    }

    pub fn count_login(&self, outcome: LoginOutcome) {
        let i = LoginOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(0);
        self.logins[i].fetch_add(1, Ordering::Relaxed);
    }

    /// A rate-limit decision made locally because Redis could not answer.
    pub fn count_ratelimit_fallback(&self) {
        self.ratelimit_fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// A mail given up on after its last attempt.
    pub fn count_mail_given_up(&self) {
        self.mails_given_up.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the signing keys are stored encrypted (set once at start-up).
    pub fn set_keys_encrypted(&self, encrypted: bool) {
        self.keys_encrypted
            .store(u16::from(encrypted), Ordering::Relaxed);
    }

    pub fn count_token(&self, grant: TokenGrant) {
        let i = TokenGrant::ALL
            .iter()
            .position(|g| *g == grant)
            .unwrap_or(0);
        self.tokens[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text, with the scrape-time figures read from the database.
    pub fn render(&self, live: &Live) -> String {
        let mut out = String::with_capacity(8 * 1024);
        self.render_http(&mut out);

        header(
            &mut out,
            "castellan_logins_total",
            "counter",
            "Login attempts on the login page, by outcome.",
        );
        for (o, n) in LoginOutcome::ALL.iter().zip(&self.logins) {
            let _ = writeln!(
                out,
                "castellan_logins_total{{outcome=\"{}\"}} {}",
                o.as_str(),
                n.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "castellan_tokens_issued_total",
            "counter",
            "Successful token endpoint responses, by grant type.",
        );
        for (g, n) in TokenGrant::ALL.iter().zip(&self.tokens) {
            let _ = writeln!(
                out,
                "castellan_tokens_issued_total{{grant_type=\"{}\"}} {}",
                g.as_str(),
                n.load(Ordering::Relaxed)
            );
        }
        for (name, kind, help, value) in [
            (
                "castellan_ratelimit_redis_fallbacks_total",
                "counter",
                "Rate-limit decisions this instance made alone because Redis could not answer.",
                self.ratelimit_fallbacks.load(Ordering::Relaxed),
            ),
            (
                "castellan_mail_given_up_total",
                "counter",
                "Mails this instance gave up on after their last delivery attempt.",
                self.mails_given_up.load(Ordering::Relaxed),
            ),
            (
                "castellan_signing_keys_encrypted",
                "gauge",
                "1 when signing keys are stored encrypted under a key-encryption key, 0 when not.",
                u64::from(self.keys_encrypted.load(Ordering::Relaxed)),
            ),
        ] {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        if let Some(n) = live.sessions {
            header(
                &mut out,
                "castellan_active_sessions",
                "gauge",
                "Unexpired browser sessions in the database (all instances).",
            );
            let _ = writeln!(out, "castellan_active_sessions {n}");
        }
        let pool = live.pool;
        header(
            &mut out,
            "castellan_db_pool_connections",
            "gauge",
            "Open database connections of this instance's pool, by state.",
        );
        let _ = writeln!(
            out,
            "castellan_db_pool_connections{{state=\"idle\"}} {}",
            pool.idle
        );
        let _ = writeln!(
            out,
            "castellan_db_pool_connections{{state=\"in_use\"}} {}",
            pool.in_use()
        );
        header(
            &mut out,
            "castellan_db_pool_max_connections",
            "gauge",
            "The most connections this instance's pool opens (database.max_connections).",
        );
        let _ = writeln!(out, "castellan_db_pool_max_connections {}", pool.max);
        header(
            &mut out,
            "castellan_build_info",
            "gauge",
            "Always 1; the version of the running castellan as a label.",
        );
        let _ = writeln!(
            out,
            "castellan_build_info{{version=\"{}\"}} 1",
            escape(env!("CARGO_PKG_VERSION"))
        );
        header(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
        );
        let _ = writeln!(out, "process_start_time_seconds {}", self.started_at);
        out
    }

    fn render_http(&self, out: &mut String) {
        let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<&str> = routes.keys().map(|k| &**k).collect();
        names.sort_unstable();
        let series = || {
            names.iter().flat_map(|name| {
                let r = &routes[*name];
                METHODS
                    .iter()
                    .zip(&r.methods)
                    .filter_map(move |(m, s)| s.get().map(|s| (escape(name), *m, &**s)))
            })
        };
        header(
            out,
            "castellan_http_requests_total",
            "counter",
            "HTTP requests answered, by route pattern (`unmatched` when none), method and status.",
        );
        for (route, method, s) in series() {
            for slot in &s.statuses {
                let status = slot.status.load(Ordering::Acquire);
                if status != 0 {
                    let _ = writeln!(
                        out,
                        "castellan_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {}",
                        slot.count.load(Ordering::Relaxed)
                    );
                }
            }
            let other = s.other_status.load(Ordering::Relaxed);
            if other > 0 {
                let _ = writeln!(
                    out,
                    "castellan_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"other\"}} {other}"
                );
            }
        }
        header(
            out,
            "castellan_http_request_duration_seconds",
            "histogram",
            "Time from receiving a request to its response head, by route pattern and method.",
        );
        for (route, method, s) in series() {
            let labels = format!("route=\"{route}\",method=\"{method}\"");
            let mut cumulative = 0u64;
            for ((le, _), n) in BUCKETS.iter().zip(&s.buckets) {
                cumulative += n.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "castellan_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            cumulative += s.buckets[BUCKETS.len()].load(Ordering::Relaxed);
            let sum = s.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "castellan_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cumulative}\n\
                 castellan_http_request_duration_seconds_sum{{{labels}}} {sum}\n\
                 castellan_http_request_duration_seconds_count{{{labels}}} {cumulative}"
            );
        }
    }
}

/// What is read from the database and the pool when scraped.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    /// `None` when the database could not be asked (the gauge is then left out).
    pub sessions: Option<u64>,
    pub pool: PoolStats,
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format wants it: `\`, `"` and line feeds escaped.
fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Whether a presented bearer token is the configured one. Both are hashed first, so the
/// constant-time comparison covers equal-length values and reveals nothing, not even length.
pub fn token_matches(expected: &Secret, presented: &str) -> bool {
    use sha2::Digest;
    let a = sha2::Sha256::digest(expected.expose().as_bytes());
    let b = sha2::Sha256::digest(presented.as_bytes());
    crate::crypto::token::constant_time_eq(&a, &b)
}

/// Renders the registry with the live figures: sessions counted in the database at `now`,
/// pool use of this instance. A database failure leaves the sessions gauge out (and is logged)
/// rather than failing the scrape.
pub async fn scrape(
    store: &crate::store::Store,
    metrics: &Metrics,
    now: crate::domain::UnixTime,
) -> String {
    // Pool figures first, so the scrape's own query is not seen as a connection in use.
    let pool = store.pool_stats();
    let sessions = match store.count_live_sessions(now).await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot count sessions");
            None
        }
    };
    let live = Live { sessions, pool };
    metrics.render(&live)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Live {
        Live {
            sessions: Some(3),
            pool: PoolStats {
                open: 4,
                idle: 1,
                max: 16,
            },
        }
    }

    #[test]
    fn requests_are_counted_by_route_method_and_status_with_a_cumulative_histogram() {
        let m = Metrics::new(1_700_000_000);
        m.observe_request(Some("/login"), "GET", 200, Duration::from_micros(500));
        m.observe_request(Some("/login"), "GET", 200, Duration::from_millis(3));
        m.observe_request(Some("/login"), "GET", 403, Duration::from_secs(20));
        m.observe_request(None, "BREW", 404, Duration::from_millis(1));
        let text = m.render(&live());
        for line in [
            "castellan_http_requests_total{route=\"/login\",method=\"GET\",status=\"200\"} 2",
            "castellan_http_requests_total{route=\"/login\",method=\"GET\",status=\"403\"} 1",
            "castellan_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"} 1",
            "castellan_http_request_duration_seconds_bucket{route=\"/login\",method=\"GET\",le=\"0.001\"} 1",
            "castellan_http_request_duration_seconds_bucket{route=\"/login\",method=\"GET\",le=\"0.005\"} 2",
            "castellan_http_request_duration_seconds_bucket{route=\"/login\",method=\"GET\",le=\"10\"} 2",
            "castellan_http_request_duration_seconds_bucket{route=\"/login\",method=\"GET\",le=\"+Inf\"} 3",
            "castellan_http_request_duration_seconds_count{route=\"/login\",method=\"GET\"} 3",
            "castellan_http_request_duration_seconds_bucket{route=\"unmatched\",method=\"other\",le=\"0.001\"} 1",
            "castellan_active_sessions 3",
            "castellan_db_pool_connections{state=\"idle\"} 1",
            "castellan_db_pool_connections{state=\"in_use\"} 3",
            "castellan_db_pool_max_connections 16",
            "process_start_time_seconds 1700000000",
            "castellan_logins_total{outcome=\"rate_limited\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        let sum = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(
                    "castellan_http_request_duration_seconds_sum{route=\"/login\",method=\"GET\"} ",
                )
            })
            .and_then(|v| v.parse::<f64>().ok());
        assert!(sum.is_some_and(|s| (s - 20.0035).abs() < 1e-9), "{sum:?}");
    }

    #[test]
    fn statuses_beyond_the_slots_are_counted_as_other() {
        let m = Metrics::new(0);
        for status in 200..(200 + STATUS_SLOTS as u16 + 2) {
            m.observe_request(Some("/x"), "POST", status, Duration::ZERO);
        }
        let text = m.render(&live());
        let series = text
            .lines()
            .filter(|l| l.starts_with("castellan_http_requests_total{"))
            .count();
        assert_eq!(series, STATUS_SLOTS + 1, "{text}");
        assert!(text.contains("status=\"other\"} 2"), "{text}");
    }

    #[test]
    fn logins_and_tokens_are_counted_by_their_bounded_labels() {
        let m = Metrics::new(0);
        m.count_login(LoginOutcome::Locked);
        m.count_login(LoginOutcome::Locked);
        m.count_token(TokenGrant::RefreshToken);
        let text = m.render(&Live {
            sessions: None,
            ..live()
        });
        assert!(text.contains("castellan_logins_total{outcome=\"locked\"} 2\n"));
        assert!(text.contains("castellan_logins_total{outcome=\"success\"} 0\n"));
        assert!(text.contains("castellan_tokens_issued_total{grant_type=\"refresh_token\"} 1\n"));
        assert!(!text.contains("castellan_active_sessions"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn the_bearer_token_comparison_needs_the_exact_token() {
        let t = Secret::new("a-long-enough-scrape-token");
        assert!(token_matches(&t, "a-long-enough-scrape-token"));
        assert!(!token_matches(&t, "a-long-enough-scrape-toke"));
        assert!(!token_matches(&t, ""));
    }
}

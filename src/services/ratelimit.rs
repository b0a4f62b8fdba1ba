//! Per-address limits for the abuse-prone submissions: failed logins, registration, forgot
//! password, open dynamic client registration, and failed client authentication at the token
//! endpoint.
//!
//! Each limit is a token bucket of `per_minute` tokens refilled evenly over a minute. Where the
//! counters live:
//! - **In this process** ([`LocalBuckets`]) by default: with several instances each enforces
//!   its own limit.
//! - **In Redis** (`CASTELLAN_REDIS_URL`) when configured ([`SharedCounters`]): every instance
//!   counts in the same bucket, decided by one script run atomically by Redis (GCRA, the
//!   "generic cell rate algorithm", equivalent to the bucket above), so parallel requests on
//!   any number of instances are each counted. If Redis does not answer within
//!   `rate_limit.redis_timeout_ms`, or cannot be reached, the instance counts in its own buckets
//!   instead, logs a warning (at most every 30 s) and counts
//!   `castellan_ratelimit_redis_fallbacks_total`; a request never fails because of Redis. While
//!   Redis is known to be down, it is tried again at most once a second, so a sign-in does not
//!   wait for it every time.
//!
//! Limits are generous (an office behind one NAT shares an address); the login limit counts
//! failed attempts only, and per-account throttling of logins lives in the database and
//! engages first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::services::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Login,
    Register,
    ForgotPassword,
    ClientAuthFailure,
    /// Open dynamic client registration (RFC 7591); as many per minute as `Register`, in a
    /// bucket of its own so that neither starves the other.
    RegisterClient,
    /// Sign-ins begun at an upstream provider (each stores a flow): as many per minute as
    /// `Login`, in a bucket of its own.
    UpstreamStart,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated_ms: i64,
}

/// Token buckets keyed by action and client address, in this process.
#[derive(Debug)]
pub struct LocalBuckets {
    per_minute: HashMap<Action, u32>,
    buckets: Mutex<HashMap<(Action, IpAddr), Bucket>>,
}

/// Above this many tracked addresses, full buckets are dropped (they carry no information);
/// if more than half of the bound are still tracked after that, every bucket is dropped (see
/// [`RateLimiter::take`]).
const MAX_TRACKED: usize = 100_000;

/// The key an address is counted under: an IPv4 address as it is, an IPv6 address by its /64
/// (RFC 6177: one subscriber gets a /64 or more, so counting single IPv6 addresses would give
/// anyone 2^64 fresh buckets). An IPv4-mapped IPv6 address counts as its IPv4 address.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The limit of each action, per client address and minute (0 = no limit).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub login_failures: u32,
    pub register: u32,
    pub forgot_password: u32,
    pub client_auth_failures: u32,
}

impl Limits {
    fn per_minute(&self, action: Action) -> u32 {
        match action {
            Action::Login | Action::UpstreamStart => self.login_failures,
            Action::Register | Action::RegisterClient => self.register,
            Action::ForgotPassword => self.forgot_password,
            Action::ClientAuthFailure => self.client_auth_failures,
        }
    }
}

impl Action {
    /// The name in shared counters' keys.
    fn as_str(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::Register => "register",
            Action::RegisterClient => "register_client",
            Action::ForgotPassword => "forgot_password",
            Action::ClientAuthFailure => "client_auth_failure",
            Action::UpstreamStart => "upstream_start",
        }
    }
}

impl LocalBuckets {
    pub fn new(login: u32, register: u32, forgot: u32, client_auth_failures: u32) -> Self {
        let per_minute = HashMap::from([
            (Action::Login, login),
            (Action::UpstreamStart, login),
            (Action::Register, register),
            (Action::RegisterClient, register),
            (Action::ForgotPassword, forgot),
            (Action::ClientAuthFailure, client_auth_failures),
        ]);
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn refill(b: &mut Bucket, capacity: f64, now_ms: i64) {
        let elapsed = (now_ms - b.updated_ms).max(0) as f64 / 1000.0;
        b.tokens = (b.tokens + elapsed * capacity / 60.0).min(capacity);
        b.updated_ms = now_ms;
    }

    /// Takes one token; `Err(seconds)` says when the next one is available (for `Retry-After`).
    ///
    /// When more than [`MAX_TRACKED`] addresses are tracked, the full buckets are dropped; if
    /// that leaves more than half of the bound (a flood from many addresses), every bucket is
    /// dropped. So a sweep, which visits every bucket under the lock, happens at most once per
    /// [`MAX_TRACKED`]` / 2` new addresses: constant work per request on average, where a sweep
    /// on every request of a flood would make each request cost as much as the whole table.
    /// The price: a flood from over 50,000 addresses can reset the counts of others.
    pub fn take(&self, action: Action, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        let capacity = f64::from(*self.per_minute.get(&action).unwrap_or(&60));
        if capacity <= 0.0 {
            return Ok(()); // 0 disables the limit
        }
        let ip = limit_key(ip);
        let mut map = match self.buckets.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() > MAX_TRACKED {
            let per_minute = &self.per_minute;
            map.retain(|(a, _), b| {
                let cap = f64::from(*per_minute.get(a).unwrap_or(&60));
                let mut b2 = *b;
                Self::refill(&mut b2, cap, now_ms);
                b2.tokens < cap
            });
            if map.len() > MAX_TRACKED / 2 {
                tracing::warn!(
                    tracked = map.len(),
                    "rate limits: too many addresses to track; counts restart"
                );
                map.clear();
            }
        }
        let b = map.entry((action, ip)).or_insert(Bucket {
            tokens: capacity,
            updated_ms: now_ms,
        });
        Self::refill(b, capacity, now_ms);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - b.tokens) * 60.0 / capacity;
            Err(wait.ceil().max(1.0) as u64)
        }
    }

    /// Whether a token is available, without taking one.
    pub fn would_allow(&self, action: Action, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        let capacity = f64::from(*self.per_minute.get(&action).unwrap_or(&60));
        if capacity <= 0.0 {
            return Ok(());
        }
        let map = match self.buckets.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        match map.get(&(action, limit_key(ip))) {
            None => Ok(()),
            Some(b) => {
                let mut b = *b;
                Self::refill(&mut b, capacity, now_ms);
                if b.tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(((1.0 - b.tokens) * 60.0 / capacity).ceil().max(1.0) as u64)
                }
            }
        }
    }
}

/// The limits as the use cases see them: shared through Redis when configured, local otherwise
/// (and whenever Redis cannot answer).
#[derive(Debug)]
pub struct RateLimiter {
    limits: Limits,
    local: LocalBuckets,
    shared: Option<SharedCounters>,
    metrics: Arc<Metrics>,
}

impl RateLimiter {
    /// Limits counted in this process only.
    pub fn local(limits: Limits, metrics: Arc<Metrics>) -> Self {
        Self {
            local: LocalBuckets::new(
                limits.login_failures,
                limits.register,
                limits.forgot_password,
                limits.client_auth_failures,
            ),
            limits,
            shared: None,
            metrics,
        }
    }

    /// Limits counted in Redis at `url`, shared by every instance that uses it. Connects
    /// lazily: an unreachable Redis at start-up only means local counting until it answers.
    pub fn shared(
        limits: Limits,
        metrics: Arc<Metrics>,
        url: &str,
        issuer: &str,
        timeout: Duration,
    ) -> Result<Self, redis::RedisError> {
        let mut this = Self::local(limits, metrics);
        this.shared = Some(SharedCounters::new(url, issuer, timeout)?);
        Ok(this)
    }

    /// Whether the counters are shared through Redis (not whether Redis answers now).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Takes one token; `Err(seconds)` says when the next one is available (for `Retry-After`).
    pub async fn take(&self, action: Action, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        self.decide(action, ip, now_ms, true).await
    }

    /// Whether a token is available, without taking one.
    pub async fn would_allow(&self, action: Action, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        self.decide(action, ip, now_ms, false).await
    }

    async fn decide(&self, action: Action, ip: IpAddr, now_ms: i64, take: bool) -> Result<(), u64> {
        let per_minute = self.limits.per_minute(action);
        if per_minute == 0 {
            return Ok(());
        }
        if let Some(shared) = &self.shared {
            match shared.decide(action, ip, per_minute, now_ms, take).await {
                Ok(v) => return v,
                Err(why) => {
                    self.metrics.count_ratelimit_fallback();
                    shared.warn(why, now_ms);
                }
            }
        }
        if take {
            self.local.take(action, ip, now_ms)
        } else {
            self.local.would_allow(action, ip, now_ms)
        }
    }
}

/// Why a shared decision could not be made (never shown to a client).
#[derive(Debug)]
enum SharedFailure {
    /// Redis failed a moment ago; not tried again yet.
    RecentlyDown,
    TimedOut,
    Redis(redis::RedisError),
}

/// GCRA over one key, atomically in Redis. `KEYS[1]` holds the "theoretical arrival time" (ms)
/// of the next request; `ARGV`: now (ms), capacity per minute, 1 to take a token or 0 to look.
/// Returns 0 when allowed, otherwise the milliseconds until a token is available.
const GCRA: &str = r"
local now = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local take = tonumber(ARGV[3])
local period = 60000
local interval = period / cap
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - now > period then
  return math.max(1, math.ceil(next_tat - period - now))
end
if take == 1 then
  redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now))
end
return 0
";

/// Counters in Redis.
struct SharedCounters {
    conn: redis::aio::ConnectionManager,
    script: redis::Script,
    prefix: String,
    timeout: Duration,
    /// When Redis last failed (ms); 0 = not recently.
    failed_at_ms: AtomicI64,
    /// When the last warning was logged (ms).
    warned_at_ms: AtomicI64,
}

impl std::fmt::Debug for SharedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never printed.
        f.write_str("SharedCounters(redis)")
    }
}

/// After a failure, Redis is tried again after this long (ms); until then, local counters.
const RETRY_AFTER_FAILURE_MS: i64 = 1000;
/// At most one warning about Redis in this many ms.
const WARN_EVERY_MS: i64 = 30_000;
/// Keys of the shared counters: `castellan:rl:<issuer>:<action>:<address or /64>`, where
/// `<issuer>` is a short hash of the issuer, so that the instances of one deployment share
/// their counts and two deployments on one Redis do not.
fn key_prefix(issuer: &str) -> String {
    let hash = crate::crypto::token::hash(issuer);
    format!("castellan:rl:{}:", &hash[..hash.len().min(12)])
}

impl SharedCounters {
    fn new(url: &str, issuer: &str, timeout: Duration) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = redis::aio::ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            script: redis::Script::new(GCRA),
            prefix: key_prefix(issuer),
            timeout,
            failed_at_ms: AtomicI64::new(0),
            warned_at_ms: AtomicI64::new(i64::MIN / 2),
        })
    }

    async fn decide(
        &self,
        action: Action,
        ip: IpAddr,
        per_minute: u32,
        now_ms: i64,
        take: bool,
    ) -> Result<Result<(), u64>, SharedFailure> {
        let failed = self.failed_at_ms.load(Ordering::Relaxed);
        if failed != 0 && now_ms - failed < RETRY_AFTER_FAILURE_MS && now_ms >= failed {
            return Err(SharedFailure::RecentlyDown);
        }
        let key = format!("{}{}:{}", self.prefix, action.as_str(), limit_key(ip));
        let mut conn = self.conn.clone();
        let mut call = self.script.key(key);
        call.arg(now_ms).arg(per_minute).arg(u8::from(take));
        let answer = tokio::time::timeout(self.timeout, call.invoke_async::<i64>(&mut conn)).await;
        let wait_ms = match answer {
            Ok(Ok(ms)) => ms,
            Ok(Err(e)) => {
                self.failed_at_ms.store(now_ms.max(1), Ordering::Relaxed);
                return Err(SharedFailure::Redis(e));
            }
            Err(_) => {
                self.failed_at_ms.store(now_ms.max(1), Ordering::Relaxed);
                return Err(SharedFailure::TimedOut);
            }
        };
        self.failed_at_ms.store(0, Ordering::Relaxed);
        if wait_ms <= 0 {
            Ok(Ok(()))
        } else {
            Ok(Err(u64::try_from(wait_ms)
                .unwrap_or(1)
                .div_ceil(1000)
                .max(1)))
        }
    }

    fn warn(&self, why: SharedFailure, now_ms: i64) {
        if matches!(why, SharedFailure::RecentlyDown) {
            return;
        }
        let last = self.warned_at_ms.load(Ordering::Relaxed);
        if now_ms - last < WARN_EVERY_MS
            || self
                .warned_at_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let cause = match why {
            SharedFailure::TimedOut => format!("no answer within {} ms", self.timeout.as_millis()),
            SharedFailure::Redis(e) => crate::config::redact_in_text(&e.to_string()),
            SharedFailure::RecentlyDown => String::new(),
        };
        tracing::warn!(
            cause,
            "rate limits: Redis cannot be used; this instance counts on its own until it answers"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_and_refills_with_time() {
        let rl = LocalBuckets::new(3, 1, 1, 1);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(rl.take(Action::Login, ip, 0).is_ok());
        }
        let wait = rl.take(Action::Login, ip, 0).unwrap_err();
        assert_eq!(wait, 20);
        assert!(
            rl.take(Action::Login, other, 0).is_ok(),
            "another address is not affected"
        );
        assert!(
            rl.take(Action::Register, ip, 0).is_ok(),
            "another action is not affected"
        );
        assert!(
            rl.take(Action::Login, ip, 20_000).is_ok(),
            "one token back after 20 s"
        );
        assert!(rl.take(Action::Login, ip, 20_000).is_err());
    }

    #[test]
    fn an_ipv6_subscriber_is_counted_by_its_64() {
        let rl = LocalBuckets::new(2, 1, 1, 1);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(rl.take(Action::Login, a, 0).is_ok());
        assert!(rl.take(Action::Login, b, 0).is_ok());
        assert!(
            rl.take(Action::Login, a, 0).is_err(),
            "the /64 shares one bucket"
        );
        assert!(rl.would_allow(Action::Login, b, 0).is_err());
        assert!(rl.take(Action::Login, elsewhere, 0).is_ok(), "another /64");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(limit_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_flood_of_addresses_is_swept_at_most_once_per_half_the_bound() {
        let rl = LocalBuckets::new(2, 1, 1, 1);
        // Each address takes one of two tokens: its bucket is not full, so a sweep of full
        // buckets alone would keep every one and sweep again on every request.
        for i in 0..(MAX_TRACKED as u32 + 1) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = rl.take(Action::Login, ip, 0);
        }
        let tracked = |rl: &LocalBuckets| rl.buckets.lock().map(|m| m.len()).unwrap_or(0);
        assert_eq!(tracked(&rl), MAX_TRACKED + 1);
        let _ = rl.take(Action::Login, "192.0.2.1".parse().unwrap(), 0);
        assert_eq!(tracked(&rl), 1, "the flood's buckets are dropped at once");
    }
}

//! Per-address token buckets for the abuse-prone submissions: login, registration, forgot
//! password, open dynamic client registration, and failed client authentication at the token
//! endpoint.
//!
//! The buckets live in this process: with several instances each enforces its own limit
//! (documented; `CASTELLAN_REDIS_URL` for shared counters is not built yet). Limits are
//! generous (an office behind one NAT shares an address); per-account throttling of logins
//! lives in the database and engages first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Login,
    Register,
    ForgotPassword,
    ClientAuthFailure,
    /// Open dynamic client registration (RFC 7591); as many per minute as `Register`, in a
    /// bucket of its own so that neither starves the other.
    RegisterClient,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated_ms: i64,
}

/// Token buckets keyed by action and client address.
#[derive(Debug)]
pub struct RateLimiter {
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

impl RateLimiter {
    pub fn new(login: u32, register: u32, forgot: u32, client_auth_failures: u32) -> Self {
        let per_minute = HashMap::from([
            (Action::Login, login),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_and_refills_with_time() {
        let rl = RateLimiter::new(3, 1, 1, 1);
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
        let rl = RateLimiter::new(2, 1, 1, 1);
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
        let rl = RateLimiter::new(2, 1, 1, 1);
        // Each address takes one of two tokens: its bucket is not full, so a sweep of full
        // buckets alone would keep every one and sweep again on every request.
        for i in 0..(MAX_TRACKED as u32 + 1) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = rl.take(Action::Login, ip, 0);
        }
        let tracked = |rl: &RateLimiter| rl.buckets.lock().map(|m| m.len()).unwrap_or(0);
        assert_eq!(tracked(&rl), MAX_TRACKED + 1);
        let _ = rl.take(Action::Login, "192.0.2.1".parse().unwrap(), 0);
        assert_eq!(tracked(&rl), 1, "the flood's buckets are dropped at once");
    }
}

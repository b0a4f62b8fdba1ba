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

/// Above this many tracked addresses, full buckets are dropped (they carry no information).
const MAX_TRACKED: usize = 100_000;

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
    pub fn take(&self, action: Action, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        let capacity = f64::from(*self.per_minute.get(&action).unwrap_or(&60));
        if capacity <= 0.0 {
            return Ok(()); // 0 disables the limit
        }
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
        match map.get(&(action, ip)) {
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
}

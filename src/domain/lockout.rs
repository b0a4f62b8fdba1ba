//! Per-account lockout after failed password checks: how many failures within which window
//! lock an account, and for how long.
//!
//! After `max_failures` failures within `window_secs` (counted from the first of them) the
//! account is locked for `base_secs`; each further failure that comes after a lock has ended
//! doubles the next one, up to `max_secs`. A failure while the account is locked is counted
//! but does not lengthen the lock in force. The counting and the decision are one statement
//! in the store (`Store::count_password_failure`), so parallel guesses are each counted.

/// The lockout rule, from `[login]` in the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub window_secs: u64,
    pub base_secs: u64,
    pub max_secs: u64,
}

/// At most this many doublings are spelled out; `max_secs` is reached long before.
const MAX_DOUBLINGS: u32 = 20;

impl LockoutPolicy {
    /// How long the failure numbered `count` (1 = the first in the window) locks the account;
    /// `None` below the threshold.
    pub fn lock_secs(&self, count: u32) -> Option<u64> {
        let over = count.checked_sub(self.max_failures.max(1))?;
        let doublings = over.min(MAX_DOUBLINGS);
        Some(
            self.base_secs
                .saturating_mul(1u64 << doublings)
                .min(self.max_secs),
        )
    }

    /// The lock lengths by failure count from the threshold on, until they reach `max_secs`:
    /// `(count, secs)` pairs; every count past the last pair locks for `max_secs`.
    pub fn schedule(&self) -> Vec<(u32, u64)> {
        let first = self.max_failures.max(1);
        let mut out = Vec::new();
        for count in first..=first + MAX_DOUBLINGS {
            let secs = self.lock_secs(count).unwrap_or(self.max_secs);
            out.push((count, secs));
            if secs >= self.max_secs {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        max_failures: 5,
        window_secs: 900,
        base_secs: 60,
        max_secs: 3600,
    };

    #[test]
    fn the_lock_starts_at_the_threshold_and_doubles_up_to_the_maximum() {
        assert_eq!(POLICY.lock_secs(4), None);
        assert_eq!(POLICY.lock_secs(5), Some(60));
        assert_eq!(POLICY.lock_secs(6), Some(120));
        assert_eq!(POLICY.lock_secs(10), Some(1920));
        assert_eq!(POLICY.lock_secs(11), Some(3600));
        assert_eq!(POLICY.lock_secs(u32::MAX), Some(3600));
        assert_eq!(
            POLICY.schedule(),
            [
                (5, 60),
                (6, 120),
                (7, 240),
                (8, 480),
                (9, 960),
                (10, 1920),
                (11, 3600)
            ]
        );
    }
}

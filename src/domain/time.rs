//! A moment in time: whole seconds since the Unix epoch, as the database columns and the JWT
//! claims count it. A type of its own so that a timestamp cannot be confused with a duration,
//! a TTL or a count (adding two moments does not compile; a moment plus seconds does), and so
//! that every moment comes from one place, the clock a request reads once (tests move a
//! settable clock instead of sleeping).

use std::fmt;

/// Seconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixTime(i64);

impl UnixTime {
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs)
    }

    /// The seconds since the epoch (for a claim, JSON, a template or a database column).
    pub const fn secs(self) -> i64 {
        self.0
    }

    /// `secs` seconds later (earlier if negative); saturates instead of overflowing.
    #[must_use]
    pub const fn plus(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// `secs` seconds earlier; saturates instead of overflowing.
    #[must_use]
    pub const fn minus(self, secs: i64) -> Self {
        Self(self.0.saturating_sub(secs))
    }

    /// Seconds from `earlier` to `self` (negative if `earlier` is later); saturates.
    pub const fn since(self, earlier: UnixTime) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_in_seconds_and_saturates() {
        let t = UnixTime::from_secs(1_000);
        assert_eq!(t.plus(60).secs(), 1_060);
        assert_eq!(t.minus(60).secs(), 940);
        assert_eq!(t.plus(60).since(t), 60);
        assert_eq!(t.since(t.plus(60)), -60);
        assert_eq!(UnixTime::from_secs(i64::MAX).plus(1).secs(), i64::MAX);
        assert_eq!(UnixTime::from_secs(i64::MIN).minus(1).secs(), i64::MIN);
    }

    #[test]
    fn orders_by_time_and_displays_the_integer() {
        let t = UnixTime::from_secs(1_700_000_000);
        assert!(t < t.plus(1));
        assert_eq!(t.to_string(), "1700000000");
    }
}

//! Time as a parameter: handlers read the clock once per request (`clock.time()`, a
//! [`UnixTime`] for what is stored or compared with stored times; `now_ms()` where milliseconds
//! matter) and pass it down, so tests can move time instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::domain::UnixTime;

pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
    /// [`Clock::now`] as a moment, for what is stored or compared with stored times.
    fn time(&self) -> UnixTime {
        UnixTime::from_secs(self.now())
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// The system clock plus an offset that tests can move forward.
#[derive(Debug, Default, Clone)]
pub struct TestClock {
    offset_ms: Arc<AtomicI64>,
}

impl TestClock {
    pub fn advance_secs(&self, secs: i64) {
        self.offset_ms.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }
}

pub type SharedClock = Arc<dyn Clock>;

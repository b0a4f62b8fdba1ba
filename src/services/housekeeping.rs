//! The background purge of expired rows (see `store::housekeeping`). Every instance runs it;
//! deletes are idempotent, so instances need no coordination.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::store::Store;

/// The purge, with what it needs.
#[derive(Debug, Clone)]
pub struct Housekeeping {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub clock: SharedClock,
}

/// Runs one pass now.
pub async fn run_once(h: &Housekeeping) -> Result<u64, crate::store::StoreError> {
    let s = &h.settings.housekeeping;
    let now = h.clock.time();
    let audit_before = now.minus((s.audit_retention_days as i64) * 86_400);
    h.store
        .purge_expired(now, audit_before, s.batch_size, Duration::from_millis(10))
        .await
}

/// Spawns the periodic purge on the current runtime.
pub fn spawn(state: Housekeeping) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let every = Duration::from_secs(state.settings.housekeeping.interval_secs);
        loop {
            tokio::time::sleep(every).await;
            match run_once(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "housekeeping: expired rows purged"),
                Err(e) => tracing::warn!(error = %e, "housekeeping pass failed; will retry"),
            }
        }
    })
}

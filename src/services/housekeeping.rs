//! The background purge of expired rows (see `store::housekeeping`). Every instance runs it;
//! deletes are idempotent, so instances need no coordination.

use std::time::Duration;

use crate::state::AppState;

/// Runs one pass now.
pub async fn run_once(state: &AppState) -> Result<u64, crate::store::StoreError> {
    let h = &state.settings.housekeeping;
    let now = state.clock.now();
    let audit_before = now - (h.audit_retention_days as i64) * 86_400;
    state
        .store
        .purge_expired(now, audit_before, h.batch_size, Duration::from_millis(10))
        .await
}

/// Spawns the periodic purge on the current runtime.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
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

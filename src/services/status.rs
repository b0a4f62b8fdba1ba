//! What operators ask of a running instance: is it ready (`/readyz`: the database answers), and
//! its metrics (`/metrics`: `services::metrics` with the live figures read at scrape time).

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::services::metrics::{self, Metrics};
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct Status {
    store: Store,
    metrics: Arc<Metrics>,
    clock: SharedClock,
}

impl Status {
    pub fn new(store: Store, metrics: Arc<Metrics>, clock: SharedClock) -> Self {
        Self {
            store,
            metrics,
            clock,
        }
    }

    /// Readiness: one round trip to the database. The error is logged here (its text may name
    /// the database; it is redacted) and answered as "not ready".
    pub async fn ready(&self) -> bool {
        match self.store.ping().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %crate::config::redact_in_text(&e.to_string()), "readiness check failed");
                false
            }
        }
    }

    /// The Prometheus text of this instance's counters and the live figures.
    pub async fn metrics_text(&self) -> String {
        metrics::scrape(&self.store, &self.metrics, self.clock.time()).await
    }
}

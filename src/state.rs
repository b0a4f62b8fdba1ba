//! Application state shared by every request handler (as `web::Data<AppState>`). No globals:
//! two servers can run in one process, as the tests do.

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::password::Hasher;
use crate::mail::Mailer;
use crate::oidc::discovery::Discovery;
use crate::services::keys::KeyRing;
use crate::services::metrics::Metrics;
use crate::services::passwords::PasswordPool;
use crate::services::ratelimit::RateLimiter;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub keys: Arc<KeyRing>,
    pub clock: SharedClock,
    pub settings: Arc<Settings>,
    pub discovery: Arc<Discovery>,
    /// Password hashing (argon2id with the configured parameters).
    pub hasher: Arc<Hasher>,
    /// The argon2 workers (a fixed number, each with one reusable buffer).
    pub passwords: Arc<PasswordPool>,
    /// Outgoing mail (SMTP, or the log in development).
    pub mailer: Arc<Mailer>,
    /// Per-address rate limits.
    pub limiter: Arc<RateLimiter>,
    /// This server's Prometheus counters (`/metrics`).
    pub metrics: Arc<Metrics>,
    /// Where tokens are signed (off the request threads, one job per core at a time).
    pub signing: Arc<crate::services::workers::WorkerPool<()>>,
    /// Wakes this instance's background-job worker when a job is queued here.
    pub jobs_wake: Arc<tokio::sync::Notify>,
}

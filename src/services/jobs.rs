//! Background jobs: work that must not run on the request path, queued in the database
//! (`store::jobs`) so that any instance may run it and a restart loses none.
//!
//! Today the jobs are the account work that would tell, by its timing, whether an address has
//! an account: registration (after the password is hashed), "forgot password" and "send the
//! verification link again" answer after one insert, the same for every address, and a worker
//! looks the address up, makes the account or the link and mails it.
//!
//! This module says what a job is and queues it; `services::background` runs them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::UnixTime;
use crate::store::{Store, StoreError};

/// A job and what it needs. The payload is stored as JSON, beside the kind. `Debug` prints
/// the kind only (a registration carries a password hash, every job an address).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Mail a password-reset link to `email` if it belongs to an enabled account.
    #[serde(rename = "password_reset")]
    ResetLink { email: String, ip: Option<String> },
    /// Mail a new verification link to `email` if it belongs to an unverified account.
    #[serde(rename = "resend_verification")]
    VerificationLink {
        email: String,
        return_to: Option<String>,
    },
    /// Make the account a registration asked for (the password already hashed), or tell the
    /// owner of `email` that it has one.
    #[serde(rename = "register")]
    Register {
        email: String,
        name: Option<String>,
        password_hash: String,
        return_to: Option<String>,
        ip: Option<String>,
    },
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({})", self.kind())
    }
}

impl Job {
    /// The stored kind (`jobs.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Job::ResetLink { .. } => "password_reset",
            Job::VerificationLink { .. } => "resend_verification",
            Job::Register { .. } => "register",
        }
    }
}

/// The job queue: the store, and the signal that wakes this instance's worker.
#[derive(Debug, Clone)]
pub struct Jobs {
    store: Store,
    wake: Arc<tokio::sync::Notify>,
}

impl Jobs {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            wake: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Queues a job to run at once, and wakes this instance's worker.
    pub async fn enqueue(&self, job: &Job, now: UnixTime) -> Result<(), StoreError> {
        let payload = serde_json::to_string(job)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode a job: {e}")))?;
        self.store
            .enqueue_job(job.kind(), &payload, now, now)
            .await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Resolves when this instance queued a job since the last call.
    pub async fn queued(&self) {
        self.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_stored_as_its_kind_and_read_back() {
        let job = Job::ResetLink {
            email: "a@example.com".into(),
            ip: Some("192.0.2.1".into()),
        };
        let json = serde_json::to_string(&job).unwrap();
        assert!(json.contains("\"kind\":\"password_reset\""), "{json}");
        assert_eq!(serde_json::from_str::<Job>(&json).unwrap(), job);
        let job = Job::VerificationLink {
            email: "a@example.com".into(),
            return_to: None,
        };
        assert_eq!(job.kind(), "resend_verification");
        assert_eq!(
            serde_json::from_str::<Job>(&serde_json::to_string(&job).unwrap()).unwrap(),
            job
        );
    }
}

//! Background jobs: work that must not run on the request path, queued in the database
//! (`store::jobs`) so that any instance may run it and a restart loses none.
//!
//! Today the jobs are the account work that would tell, by its timing, whether an address has
//! an account: registration (after the password is hashed), "forgot password" and "send the
//! verification link again" answer after one insert, the same for every address, and a worker
//! looks the address up, makes the account or the link and mails it.
//!
//! Every instance with `jobs.run` runs a worker. It wakes when this instance queues a job and
//! every `jobs.poll_interval_ms` otherwise (for jobs queued by other instances, and retries).
//! A job is taken with a lease ([`LEASE_SECS`]) by one worker at a time; a failed job is
//! tried again after a growing delay, [`MAX_ATTEMPTS`] times in all, then dropped with an
//! error in the log.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::state::AppState;
use crate::store::StoreError;
use crate::store::jobs::JobRecord;

/// How long a worker holds a job before another may take it (a worker that died).
pub const LEASE_SECS: i64 = 300;
/// How many times a job is tried.
pub const MAX_ATTEMPTS: u32 = 5;

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

/// Queues a job to run at once, and wakes this instance's worker.
pub async fn enqueue(state: &AppState, job: &Job, now: i64) -> Result<(), StoreError> {
    let payload = serde_json::to_string(job)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a job: {e}")))?;
    state
        .store
        .enqueue_job(job.kind(), &payload, now, now)
        .await?;
    state.jobs_wake.notify_one();
    Ok(())
}

/// Runs the due jobs until none is left; returns how many were taken.
pub async fn run_due(state: &AppState) -> Result<usize, StoreError> {
    let mut taken = 0;
    while let Some(record) = state.store.claim_job(state.clock.now(), LEASE_SECS).await? {
        taken += 1;
        run_one(state, record).await?;
    }
    Ok(taken)
}

async fn run_one(state: &AppState, record: JobRecord) -> Result<(), StoreError> {
    let now = state.clock.now();
    let job: Job = match serde_json::from_str(&record.payload) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(id = record.id, kind = record.kind, error = %e, "dropping a job that cannot be read");
            return state.store.finish_job(record.id).await;
        }
    };
    let result = match &job {
        Job::ResetLink { email, ip } => {
            crate::services::accounts::mail_reset_link(state, email, ip.clone(), now).await
        }
        Job::VerificationLink { email, return_to } => {
            crate::services::accounts::mail_verification_link(
                state,
                email,
                return_to.as_deref(),
                now,
            )
            .await
        }
        Job::Register {
            email,
            name,
            password_hash,
            return_to,
            ip,
        } => {
            crate::services::accounts::create_registered_account(
                state,
                email,
                name.clone(),
                password_hash.clone(),
                return_to.as_deref(),
                ip.clone(),
                now,
            )
            .await
        }
    };
    match result {
        Ok(()) => state.store.finish_job(record.id).await,
        Err(e) if record.attempts >= MAX_ATTEMPTS => {
            tracing::error!(id = record.id, kind = job.kind(), attempts = record.attempts, error = %e, "a job failed for the last time; dropped");
            state.store.finish_job(record.id).await
        }
        Err(e) => {
            let delay = 5i64 << record.attempts.min(10);
            tracing::warn!(id = record.id, kind = job.kind(), attempts = record.attempts, retry_in_secs = delay, error = %e, "a job failed; it will be tried again");
            state.store.retry_job(record.id, now + delay).await
        }
    }
}

/// Spawns this instance's worker on the current runtime (when `jobs.run`).
pub fn spawn(state: AppState) -> Option<tokio::task::JoinHandle<()>> {
    if !state.settings.jobs.run {
        return None;
    }
    Some(tokio::spawn(async move {
        let every = Duration::from_millis(state.settings.jobs.poll_interval_ms);
        loop {
            if let Err(e) = run_due(&state).await {
                tracing::warn!(error = %e, "jobs: cannot take or finish a job; will look again");
            }
            tokio::select! {
                () = state.jobs_wake.notified() => {}
                () = tokio::time::sleep(every) => {}
            }
        }
    }))
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

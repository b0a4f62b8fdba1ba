//! The background worker: runs the jobs queued in the database (`services::jobs`,
//! `store::jobs`), the outbox's mails among them.
//!
//! Every instance with `jobs.run` runs one. It wakes when this instance queues a job and every
//! `jobs.poll_interval_ms` otherwise (for jobs queued by other instances, and retries). A job
//! is taken with a lease ([`LEASE_SECS`]) by one worker at a time, on any instance; a failed job
//! is tried again after a growing delay (10 s, 20 s, 40 s, 80 s), [`MAX_ATTEMPTS`] times in all,
//! then dropped with an error in the log; a mail given up on is also audited (`mail_given_up`)
//! and counted (`castellan_mail_given_up_total`).

use std::sync::Arc;
use std::time::Duration;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::domain::{AuditEntry, AuditKind};
use crate::mail::Mailer;
use crate::services::accounts::Accounts;
use crate::services::jobs::{Job, Jobs};
use crate::services::metrics::Metrics;
use crate::store::jobs::JobRecord;
use crate::store::{Store, StoreError};

/// How long a worker holds a job before another may take it (a worker that died).
pub const LEASE_SECS: i64 = 300;
/// How many times a job is tried.
pub const MAX_ATTEMPTS: u32 = 5;

/// What the worker needs to run every kind of job.
#[derive(Debug, Clone)]
pub struct Background {
    pub store: Store,
    pub clock: SharedClock,
    pub settings: Arc<Settings>,
    pub jobs: Jobs,
    pub accounts: Accounts,
    pub mailer: Arc<Mailer>,
    pub metrics: Arc<Metrics>,
}

/// Runs the due jobs until none is left; returns how many were taken.
pub async fn run_due(state: &Background) -> Result<usize, StoreError> {
    let mut taken = 0;
    while let Some(record) = state
        .store
        .claim_job(state.clock.time(), LEASE_SECS)
        .await?
    {
        taken += 1;
        run_one(state, record).await?;
    }
    Ok(taken)
}

async fn run_one(state: &Background, record: JobRecord) -> Result<(), StoreError> {
    let now = state.clock.time();
    let job: Job = match state.jobs.decode(&record.payload) {
        Ok(j) => j,
        Err(e) => {
            tracing::error!(id = record.id, kind = record.kind, error = %e, "dropping a job that cannot be read");
            return state.store.finish_job(record.id).await;
        }
    };
    let result = match &job {
        Job::ResetLink { email, ip } => {
            state.accounts.mail_reset_link(email, ip.clone(), now).await
        }
        Job::VerificationLink { email, return_to } => {
            state
                .accounts
                .mail_verification_link(email, return_to.as_deref(), now)
                .await
        }
        Job::Register {
            email,
            name,
            password_hash,
            return_to,
            ip,
        } => {
            state
                .accounts
                .create_registered_account(
                    email,
                    name.clone(),
                    password_hash.clone(),
                    return_to.as_deref(),
                    ip.clone(),
                    now,
                )
                .await
        }
        Job::Mail { to, mail } => match state.mailer.send_now(to, mail.clone()).await {
            Ok(()) => {
                tracing::info!(
                    event = "mail_sent",
                    kind = mail.kind(),
                    to,
                    attempt = record.attempts,
                    "email sent"
                );
                Ok(())
            }
            Err(e) => {
                if record.attempts >= MAX_ATTEMPTS {
                    state.metrics.count_mail_given_up();
                    let entry = AuditEntry {
                        actor: Some("system".into()),
                        detail: format!(
                            "kind={} to={to} attempts={}",
                            mail.kind(),
                            record.attempts
                        ),
                        ..AuditEntry::new(AuditKind::MailGivenUp)
                    };
                    state.store.record(entry, now).await;
                }
                Err(crate::services::accounts::AccountsError::Mail(format!(
                    "{e:#}"
                )))
            }
        },
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
            state.store.retry_job(record.id, now.plus(delay)).await
        }
    }
}

/// Spawns this instance's worker on the current runtime (when `jobs.run`).
pub fn spawn(state: Background) -> Option<tokio::task::JoinHandle<()>> {
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
                () = state.jobs.queued() => {}
                () = tokio::time::sleep(every) => {}
            }
        }
    }))
}

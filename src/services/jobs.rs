//! Background jobs: work that must not run on the request path, queued in the database
//! (`store::jobs`) so that any instance may run it and a restart loses none.
//!
//! The jobs are:
//! - the account work that would tell, by its timing, whether an address has an account:
//!   registration (after the password is hashed), "forgot password" and "send the verification
//!   link again" answer after one insert, the same for every address, and a worker looks the
//!   address up, makes the account or the link and mails it;
//! - the outbox: every mail is a job, delivered by a worker on any instance, retried with a
//!   growing delay and across restarts, taken by one worker at a time (so sent once), and
//!   audited when given up on.
//!
//! Payloads carry secrets (a mail's single-use link, a registration's password hash): with a
//! key-encryption key they are stored sealed (`crypto::seal`, AES-256-GCM).
//!
//! This module says what a job is and queues it; `services::background` runs them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::crypto::seal::{self, Kek};
use crate::domain::UnixTime;
use crate::mail::Mail;
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
    /// Deliver `mail` to `to` (the outbox).
    #[serde(rename = "mail")]
    Mail { to: String, mail: Mail },
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
            Job::Mail { .. } => "mail",
        }
    }
}

/// The job queue: the store, and the signal that wakes this instance's worker.
#[derive(Debug, Clone)]
pub struct Jobs {
    store: Store,
    wake: Arc<tokio::sync::Notify>,
    kek: Option<Arc<Kek>>,
}

/// The prefix of a sealed payload (base64 of the sealed JSON follows).
const SEALED: &str = "sealed:";
/// The associated data payloads are sealed with.
const AAD: &[u8] = b"castellan job payload";

impl Jobs {
    pub fn new(store: Store, kek: Option<Arc<Kek>>) -> Self {
        Self {
            store,
            wake: Arc::new(tokio::sync::Notify::new()),
            kek,
        }
    }

    /// The stored form of a job: its JSON, sealed when there is a key-encryption key.
    pub fn encode(&self, job: &Job) -> Result<String, StoreError> {
        encode(self.kek.as_deref(), job)
    }

    /// A stored job read back (opened with the key-encryption key when sealed).
    pub fn decode(&self, payload: &str) -> Result<Job, String> {
        decode(self.kek.as_deref(), payload)
    }
    /// Queues a job to run at once, and wakes this instance's worker.
    pub async fn enqueue(&self, job: &Job, now: UnixTime) -> Result<(), StoreError> {
        let payload = self.encode(job)?;
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

/// The stored form of a job: its JSON, sealed when there is a key-encryption key.
pub fn encode(kek: Option<&Kek>, job: &Job) -> Result<String, StoreError> {
    use base64::Engine;
    let json = serde_json::to_string(job)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode a job: {e}")))?;
    let Some(kek) = kek else {
        return Ok(json);
    };

    let sealed = kek
        .seal(json.as_bytes(), AAD)
        .map_err(|e| StoreError::Corrupt(format!("cannot seal a job: {e}")))?;
    Ok(format!(
        "{SEALED}{}",
        base64::engine::general_purpose::STANDARD.encode(sealed)
    ))
}

/// A stored job read back (opened with the key-encryption key when sealed).
pub fn decode(kek: Option<&Kek>, payload: &str) -> Result<Job, String> {
    use base64::Engine;
    let Some(b64) = payload.strip_prefix(SEALED) else {
        return serde_json::from_str(payload).map_err(|e| e.to_string());
    };
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| e.to_string())?;
    let kek = kek.ok_or_else(|| {
        format!(
            "the job is sealed under key-encryption key {}, and none is configured",
            seal::sealed_by_hex(&sealed).unwrap_or_default()
        )
    })?;
    let json = kek.open(&sealed, AAD).map_err(|e| e.to_string())?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
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

    #[test]
    fn a_sealed_payload_hides_the_link_and_opens_with_its_key_only() {
        let (kek, _) = Kek::generate().unwrap();
        let kek = Some(kek);
        let job = Job::Mail {
            to: "a@example.com".into(),
            mail: Mail::PasswordReset {
                link: "https://id.example/password/reset?token=SECRET".into(),
            },
        };
        let stored = encode(kek.as_ref(), &job).unwrap();
        assert!(stored.starts_with(SEALED), "{stored}");
        assert!(!stored.contains("SECRET") && !stored.contains("a@example.com"));
        assert_eq!(decode(kek.as_ref(), &stored).unwrap(), job);
        let (other, _) = Kek::generate().unwrap();
        assert!(decode(Some(&other), &stored).is_err());
        assert!(decode(None, &stored).is_err());
        // Written before a key-encryption key was configured: plain JSON still reads.
        let plain = encode(None, &job).unwrap();
        assert_eq!(decode(kek.as_ref(), &plain).unwrap(), job);
    }
}

//! Second factors below the use cases: checking a TOTP or recovery code (and using it up),
//! sealing seeds, and the audit and mail a used recovery code causes. `services::authn` (the
//! second step of a sign-in, step-up) and `services::mfa` (the account page's enrolment,
//! removal, new codes) are built on it.
//!
//! Seeds are stored sealed under the key-encryption key when one is configured
//! (`crypto::seal`, associated data: the user id and a label, so a sealed seed copied onto
//! another user's row does not open); without one, as base32 text.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::crypto::seal::{Kek, SealError};
use crate::crypto::totp;
use crate::domain::{AuditEntry, AuditKind, UnixTime, User, UserId};
use crate::mail::Mail;
use crate::services::jobs::{Job, Jobs};
use crate::services::passkeys::Passkeys;
use crate::store::{Store, StoreError};

/// The prefix of a sealed seed (base64 of the sealed bytes follows).
const SEALED: &str = "sealed:";
/// The prefix of a seed stored as it is (base32 follows): no key-encryption key configured.
const PLAIN: &str = "plain:";

#[derive(Debug, thiserror::Error)]
pub enum FactorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("TOTP seed: {0}")]
    Seal(#[from] SealError),
    #[error("a stored TOTP seed is malformed")]
    Malformed,
}

/// What a submitted second-factor code came to. A right code is used up by the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorCheck {
    /// A right TOTP code for a time step not used before.
    Totp,
    /// A right recovery code, now used up; this many are left.
    RecoveryCode { remaining: u64 },
    /// A right TOTP code whose time step was already used (a replay), or a recovery code
    /// already used: refused.
    Replayed,
    /// Neither a right TOTP code nor an unused recovery code.
    Wrong,
    /// The user has no confirmed factor.
    NoFactor,
}

impl FactorCheck {
    /// The audit detail of the kind of code.
    pub fn method(self) -> &'static str {
        match self {
            FactorCheck::Totp => "totp",
            FactorCheck::RecoveryCode { .. } => "recovery_code",
            FactorCheck::Replayed => "replayed",
            FactorCheck::Wrong => "wrong_code",
            FactorCheck::NoFactor => "no_factor",
        }
    }
}

/// Checks and stores second factors.
#[derive(Debug, Clone)]
pub struct Factors {
    store: Store,
    kek: Option<Arc<Kek>>,
    jobs: Jobs,
    passkeys: Passkeys,
}

fn aad(user: &UserId) -> Vec<u8> {
    let mut a = user.as_str().as_bytes().to_vec();
    a.extend_from_slice(b"\0totp seed");
    a
}

impl Factors {
    pub fn new(store: Store, kek: Option<Arc<Kek>>, jobs: Jobs, passkeys: Passkeys) -> Self {
        Self {
            store,
            kek,
            jobs,
            passkeys,
        }
    }

    /// The passkey ceremonies.
    pub fn passkeys(&self) -> &Passkeys {
        &self.passkeys
    }

    /// The stored form of a seed.
    pub fn seal_secret(&self, user: &UserId, secret: &[u8]) -> Result<String, FactorError> {
        Ok(match &self.kek {
            Some(kek) => format!("{SEALED}{}", STANDARD.encode(kek.seal(secret, &aad(user))?)),
            None => format!("{PLAIN}{}", totp::base32_encode(secret)),
        })
    }

    /// The seed of a stored form.
    pub fn open_secret(&self, user: &UserId, stored: &str) -> Result<Vec<u8>, FactorError> {
        if let Some(b64) = stored.strip_prefix(SEALED) {
            let kek = self.kek.as_ref().ok_or(SealError::NotSealed)?;
            let sealed = STANDARD.decode(b64).map_err(|_| FactorError::Malformed)?;
            return Ok(kek.open(&sealed, &aad(user))?);
        }
        stored
            .strip_prefix(PLAIN)
            .and_then(totp::base32_decode)
            .ok_or(FactorError::Malformed)
    }

    /// Whether the user has a second factor that counts (a confirmed TOTP factor, a passkey). The
    /// one question every decision asks — a sign-in's second step, step-up or enrolment at the
    /// authorization endpoint, the policy — so a new kind of factor is added in one place
    /// (`Store::count_second_factors`).
    pub async fn has_any(&self, user: &UserId) -> Result<bool, FactorError> {
        Ok(self.count(user).await? > 0)
    }

    /// Whether the user has a passkey (what `phr` needs).
    pub async fn has_passkey(&self, user: &UserId) -> Result<bool, FactorError> {
        Ok(self.store.count_passkeys(user).await? > 0)
    }

    /// How many second factors the user has that count (the rule that the last one stays
    /// while the policy requires one).
    pub async fn count(&self, user: &UserId) -> Result<u64, FactorError> {
        Ok(self.store.count_second_factors(user).await?)
    }

    /// Checks a code against the user's confirmed TOTP factor (a six-digit code: RFC 6238,
    /// the current step ±1) or recovery codes (anything else), and uses it up when right: the
    /// time step in one conditional UPDATE, the recovery code in one DELETE. A used recovery
    /// code is audited and mailed to the user.
    pub async fn check(
        &self,
        user: &User,
        code: &str,
        ip: Option<String>,
        now: UnixTime,
    ) -> Result<FactorCheck, FactorError> {
        let Some(factor) = self.store.totp_factor(&user.id).await? else {
            return Ok(FactorCheck::NoFactor);
        };
        if !factor.confirmed {
            return Ok(FactorCheck::NoFactor);
        }
        let code = code.trim();
        if code.len() == totp::DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit()) {
            let secret = self.open_secret(&user.id, &factor.secret)?;
            return Ok(match totp::matching_step(&secret, code, now.secs()) {
                None => FactorCheck::Wrong,
                Some(step) if self.store.take_totp_step(&user.id, step).await? => FactorCheck::Totp,
                Some(_) => FactorCheck::Replayed,
            });
        }
        if code.is_empty() || code.len() > 64 {
            return Ok(FactorCheck::Wrong);
        }
        let hash = totp::recovery_code_hash(code);
        if !self.store.take_recovery_code(&user.id, &hash).await? {
            return Ok(FactorCheck::Wrong);
        }
        let remaining = self.store.count_recovery_codes(&user.id).await?;
        self.store
            .audit(
                AuditEntry {
                    user_id: Some(user.id.as_str().to_owned()),
                    ip,
                    detail: format!("{remaining} left"),
                    ..AuditEntry::new(AuditKind::RecoveryCodeUsed)
                },
                now,
            )
            .await?;
        self.send_mail(&user.email, Mail::RecoveryCodeUsed { remaining }, now)
            .await;
        Ok(FactorCheck::RecoveryCode { remaining })
    }

    /// Puts a mail in the outbox; a mail that cannot be queued is logged, never the caller's
    /// failure.
    pub async fn send_mail(&self, to: &str, mail: Mail, now: UnixTime) {
        let job = Job::Mail {
            to: to.to_owned(),
            mail,
        };
        if let Err(e) = self.jobs.enqueue(&job, now).await {
            tracing::error!(event = "mail_failed", error = %e, "cannot queue an email");
        }
    }
}

//! Background work that must run once across instances, however many there are: the purge
//! of expired rows (`store::housekeeping`) and the signing-key lifecycle
//! (`services::keys::maintain`). Every instance runs both loops; before each pass a loop takes
//! its lease (`store::leases`: one conditional statement), and only the holder works. The
//! holder renews the lease on every pass; if it dies, another instance takes over when the
//! lease runs out.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::crypto::seal::Kek;
use crate::domain::{AuditEntry, AuditKind};
use crate::services::keys;
use crate::store::Store;

/// The background work, with what it needs.
#[derive(Debug, Clone)]
pub struct Housekeeping {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub clock: SharedClock,
    /// New signing keys are sealed under it.
    pub kek: Option<Arc<Kek>>,
    /// This instance's name in the leases (random, per start).
    pub holder: String,
}

/// The lease names.
const PURGE: &str = "housekeeping";
const KEYS: &str = "keys";

/// Runs one purge pass now (whatever the lease).
pub async fn run_once(h: &Housekeeping) -> Result<u64, crate::store::StoreError> {
    let s = &h.settings.housekeeping;
    let now = h.clock.time();
    let audit_before = now.minus((s.audit_retention_days as i64) * 86_400);
    h.store
        .purge_expired(now, audit_before, s.batch_size, Duration::from_millis(10))
        .await
}

/// Takes (or renews) the lease `name` for `secs`; false when another instance holds it (or the
/// database cannot say).
async fn lease(h: &Housekeeping, name: &str, secs: u64) -> bool {
    let now = h.clock.time();
    match h
        .store
        .take_lease(name, &h.holder, now, now.plus(secs as i64))
        .await
    {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(error = %e, lease = name, "cannot take a lease; will try again");
            false
        }
    }
}

/// How often the key lifecycle is looked at: a quarter of the shortest of its two periods,
/// between 1 s and 60 s (a key is never late by more than that to be made, and its signing
/// starts on time anyway: the key ring switches by itself).
pub fn keys_tick(settings: &Settings) -> Duration {
    let k = &settings.keys;
    let shortest = [k.publish_ahead_secs, k.rotate_every_secs]
        .into_iter()
        .filter(|s| *s > 0)
        .min()
        .unwrap_or(240);
    Duration::from_secs((shortest / 4).clamp(1, 60))
}

/// One pass of the key lifecycle if this instance holds the `keys` lease; audits a key made.
pub async fn maintain_keys(
    h: &Housekeeping,
) -> Result<Option<keys::Maintained>, keys::KeyRingError> {
    let ttl = (keys_tick(&h.settings).as_secs() * 3).max(10);
    if !lease(h, KEYS, ttl).await {
        return Ok(None);
    }
    let now = h.clock.time();
    let done = keys::maintain(&h.store, &h.settings, h.kek.as_deref(), now).await?;
    if let Some(k) = &done.generated {
        tracing::info!(
            kid = k.kid,
            signs_from = k.activate_at.secs(),
            "made the next signing key"
        );
        let entry = AuditEntry {
            actor: Some("system".into()),
            detail: format!(
                "kid={} signing from {} (keys.rotate_every_secs)",
                k.kid,
                k.activate_at.secs()
            ),
            ..AuditEntry::new(AuditKind::KeyRotated)
        };
        h.store.record(entry, now).await;
    }
    if let Some(kid) = &done.promoted {
        tracing::info!(kid, "a new signing key signs from now on");
    }
    Ok(Some(done))
}

/// Spawns both loops on the current runtime.
pub fn spawn(state: Housekeeping) -> tokio::task::JoinHandle<()> {
    let keys_state = state.clone();
    tokio::spawn(async move {
        let every = keys_tick(&keys_state.settings);
        loop {
            if let Err(e) = maintain_keys(&keys_state).await {
                tracing::warn!(error = %e, "signing-key maintenance failed; will retry");
            }
            tokio::time::sleep(every).await;
        }
    });
    tokio::spawn(async move {
        let interval = state.settings.housekeeping.interval_secs;
        let every = Duration::from_secs(interval);
        loop {
            tokio::time::sleep(every).await;
            if !lease(&state, PURGE, (interval * 2).max(30)).await {
                continue;
            }
            match run_once(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "housekeeping: expired rows purged"),
                Err(e) => tracing::warn!(error = %e, "housekeeping pass failed; will retry"),
            }
        }
    })
}

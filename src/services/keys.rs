//! The key ring: the active signer and the published JWK Set, kept in memory and refreshed
//! from the database when another process (the CLI, another instance) rotates keys.
//!
//! The hot paths (`signer()`, `jwks()`) read an `Arc` behind a short read lock. A refresh runs
//! at most once per `keys.reload_interval_ms`, comparing a cheap fingerprint query, and also when
//! a retiring key's time in the JWK Set is up. It runs in a task of its own, which the request
//! that started it waits for up to half of `database.statement_timeout_ms` (so that the request
//! still answers within its time when the database does not), and not at all while the database
//! is failing: the JWK Set and signing keep answering from memory during an outage.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use crate::config::Settings;
use crate::crypto::jwt::Verifier;
use crate::crypto::keys::{self, PublicJwk, Signer};
use crate::domain::UnixTime;
use crate::store::keys::{ACTIVE, KeyRecord, NewKey};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error("no active signing key in the database")]
    NoActiveKey,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("stored JWK of key {0} is malformed")]
    BadJwk(String),
    #[error("key generation task failed")]
    Join,
}

/// One consistent view of the keys.
pub struct KeySet {
    pub signer: Arc<Signer>,
    pub verifier: Verifier,
    pub jwks_json: bytes::Bytes,
    pub jwks_etag: String,
    pub jwks: Vec<PublicJwk>,
    fingerprint: String,
    /// The earliest time a published retiring key must leave the JWK Set.
    next_change: Option<UnixTime>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeySet(active={}, published={})",
            self.signer.kid(),
            self.jwks.len()
        )
    }
}

#[derive(Debug)]
pub struct KeyRing {
    current: RwLock<Arc<KeySet>>,
    checked_at_ms: AtomicI64,
    reload_interval_ms: i64,
    refresh: Arc<tokio::sync::Mutex<()>>,
    /// How long the request that starts a refresh waits for it before going on with the keys it
    /// has (the refresh goes on and installs its result): a refresh takes milliseconds.
    refresh_wait: std::time::Duration,
    /// The last refresh failed (the database is unavailable, say): the next one is not waited
    /// for at all, so requests that sign or verify do not wait on it.
    failing: AtomicBool,
}

/// How long after rotation a retiring key stays published: every token it signed has expired.
pub fn retire_delay(settings: &Settings) -> i64 {
    let t = &settings.tokens;
    (t.access_ttl_secs.max(t.id_token_ttl_secs) + 60) as i64
}

/// Makes sure an active key exists (generating one if not); returns whether one was made.
pub async fn ensure_active_key(
    store: &Store,
    settings: &Settings,
    now: UnixTime,
) -> Result<bool, KeyRingError> {
    store.retire_expired_keys(now).await?;
    if store
        .published_keys()
        .await?
        .iter()
        .any(|k| k.state == ACTIVE)
    {
        return Ok(false);
    }
    let generated = generate(settings.keys.rsa_bits).await?;
    store.insert_active_key(generated, now).await?;
    Ok(true)
}

/// Generates a new key and makes it active; the old active key keeps being published.
pub async fn rotate(
    store: &Store,
    settings: &Settings,
    now: UnixTime,
) -> Result<KeyRecord, KeyRingError> {
    let generated = generate(settings.keys.rsa_bits).await?;
    store.retire_expired_keys(now).await?;
    Ok(store
        .rotate_keys(generated, now, now.plus(retire_delay(settings)))
        .await?)
}

async fn generate(bits: usize) -> Result<NewKey, KeyRingError> {
    let k = tokio::task::spawn_blocking(move || keys::generate_rsa(bits))
        .await
        .map_err(|_| KeyRingError::Join)??;
    Ok(NewKey {
        public_jwk: serde_json::to_string(&k.jwk)
            .map_err(|_| KeyRingError::BadJwk(k.kid.clone()))?,
        kid: k.kid,
        private_der: k.pkcs8_der,
    })
}

fn build(
    records: Vec<KeyRecord>,
    fingerprint: String,
    now: UnixTime,
) -> Result<KeySet, KeyRingError> {
    let published: Vec<&KeyRecord> = records
        .iter()
        .filter(|k| k.state == ACTIVE || k.retire_at.is_some_and(|t| t > now))
        .collect();
    // Newest active key signs (records are newest first); others stay published.
    let active = published
        .iter()
        .find(|k| k.state == ACTIVE)
        .ok_or(KeyRingError::NoActiveKey)?;
    let signer = Arc::new(Signer::from_pkcs8(&active.kid, &active.private_der)?);
    let jwks: Vec<PublicJwk> = published
        .iter()
        .map(|k| {
            serde_json::from_str(&k.public_jwk).map_err(|_| KeyRingError::BadJwk(k.kid.clone()))
        })
        .collect::<Result<_, _>>()?;
    let verifier = Verifier::new(jwks.iter())?;
    let json = serde_json::to_vec(&serde_json::json!({ "keys": jwks }))
        .map_err(|_| KeyRingError::BadJwk(active.kid.clone()))?;
    let etag = format!(
        "\"{}\"",
        &crate::crypto::token::hash(&String::from_utf8_lossy(&json))[..32]
    );
    let next_change = published.iter().filter_map(|k| k.retire_at).min();
    Ok(KeySet {
        signer,
        verifier,
        jwks_json: json.into(),
        jwks_etag: etag,
        jwks,
        fingerprint,
        next_change,
    })
}

impl KeyRing {
    /// Loads the published keys; the database must hold an active key (see [`ensure_active_key`]).
    pub async fn load(
        store: &Store,
        settings: &Settings,
        now: UnixTime,
    ) -> Result<Self, KeyRingError> {
        let fingerprint = store.keys_fingerprint().await?;
        let set = build(store.published_keys().await?, fingerprint, now)?;
        Ok(Self {
            current: RwLock::new(Arc::new(set)),
            checked_at_ms: AtomicI64::new(now.secs() * 1000),
            reload_interval_ms: settings.keys.reload_interval_ms as i64,
            refresh: Arc::default(),
            refresh_wait: std::time::Duration::from_millis(
                settings.database.statement_timeout_ms / 2,
            ),
            failing: AtomicBool::new(false),
        })
    }

    fn snapshot(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current key set, refreshed first if it may be stale. `now_ms` is the request's clock.
    pub async fn current(self: &Arc<Self>, store: &Store, now_ms: i64) -> Arc<KeySet> {
        let set = self.snapshot();
        let now = UnixTime::from_secs(now_ms / 1000);
        let due = now_ms - self.checked_at_ms.load(Ordering::Relaxed) >= self.reload_interval_ms
            || set.next_change.is_some_and(|t| now >= t);
        if !due {
            return set;
        }
        let Ok(guard) = self.refresh.clone().try_lock_owned() else {
            // Another request is refreshing; this one uses what is there.
            return set;
        };
        self.checked_at_ms.store(now_ms, Ordering::Relaxed);
        let wait = !(self.failing.load(Ordering::Relaxed) || store.unavailable_lately());
        let ring = Arc::clone(self);
        let store = store.clone();
        let refresh = tokio::spawn(async move {
            let _guard = guard;
            ring.reload_and_install(&store, set, now).await
        });
        if !wait {
            return self.snapshot();
        }
        match tokio::time::timeout(self.refresh_wait, refresh).await {
            Ok(Ok(set)) => set,
            // Still running (it installs its result when done), or it panicked.
            _ => self.snapshot(),
        }
    }

    /// Reloads the keys if they changed, installs and returns the new set; on failure, logs
    /// and returns `set`.
    async fn reload_and_install(
        &self,
        store: &Store,
        set: Arc<KeySet>,
        now: UnixTime,
    ) -> Arc<KeySet> {
        let reloaded = self.reload(store, &set, now).await;
        self.failing.store(reloaded.is_err(), Ordering::Relaxed);
        match reloaded {
            Ok(Some(new)) => {
                let new = Arc::new(new);
                match self.current.write() {
                    Ok(mut g) => *g = new.clone(),
                    Err(poisoned) => *poisoned.into_inner() = new.clone(),
                }
                tracing::info!(
                    kid = new.signer.kid(),
                    published = new.jwks.len(),
                    "signing keys reloaded"
                );
                new
            }
            Ok(None) => set,
            Err(e) => {
                tracing::error!(error = %e, "cannot refresh signing keys; keeping the current ones");
                set
            }
        }
    }

    async fn reload(
        &self,
        store: &Store,
        old: &KeySet,
        now: UnixTime,
    ) -> Result<Option<KeySet>, KeyRingError> {
        let fingerprint = store.keys_fingerprint().await?;
        let expired = old.next_change.is_some_and(|t| now >= t);
        if fingerprint == old.fingerprint && !expired {
            return Ok(None);
        }
        if expired {
            store.retire_expired_keys(now).await?;
        }
        let fingerprint = store.keys_fingerprint().await?;
        Ok(Some(build(
            store.published_keys().await?,
            fingerprint,
            now,
        )?))
    }
}

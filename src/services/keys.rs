//! Signing keys: their lifecycle, their protection at rest, and the key ring (the active
//! signer and the published JWK Set, kept in memory and refreshed from the database when
//! another process, the CLI or another instance, changes them).
//!
//! The lifecycle (`keys.rotate_every_secs`, `keys.publish_ahead_secs`):
//! 1. a new key is stored as `next`: published in the JWK Set at once, signing from
//!    `activate_at`, at least `publish_ahead_secs` later, so relying parties that cache the JWK
//!    Set (OpenID Connect Core §10.1.1: signers publish keys before use) have it by then;
//! 2. from `activate_at` it signs; the key ring switches by itself at that moment on every
//!    instance (no database write is needed for that), and [`maintain`] records it;
//! 3. the key it replaced is `retiring`: still published until every token it signed has
//!    expired ([`retire_delay`]), then `retired`.
//!
//! [`maintain`] runs on one instance at a time (the `keys` lease, `services::housekeeping`). With a
//! key-encryption key, private keys are stored sealed (`crypto::seal`, the kid as associated
//! data) and opened only to build the signer.
//!
//! The hot paths (`signer()`, `jwks()`) read an `Arc` behind a short read lock. A refresh runs
//! at most once per `keys.reload_interval_ms`, comparing a cheap fingerprint query, and also when
//! a key's time to sign or to leave the JWK Set has come. It runs in a task of its own, which
//! the request that started it waits for up to half of `database.statement_timeout_ms` (so that
//! the request still answers within its time when the database does not), and not at all while
//! the database is failing: the JWK Set and signing keep answering from memory during an outage.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use crate::config::Settings;
use crate::crypto::jwt::Verifier;
use crate::crypto::keys::{self, PublicJwk, Signer};
use crate::crypto::seal::{self, Kek, SealError};
use crate::domain::UnixTime;
use crate::store::keys::{ACTIVE, KeyRecord, NEXT, NewKey, RETIRING};
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
    #[error(
        "the signing keys in the database are encrypted, but no key-encryption key is configured \
         (set CASTELLAN_KEY_ENCRYPTION_KEY or CASTELLAN_KEY_ENCRYPTION_KEY_FILE)"
    )]
    NoKek,
    #[error(
        "signing key {kid} is encrypted under key-encryption key {sealed_by}, but the configured \
         one is {configured} (configure the right one, or move the keys with `castellan keys rewrap`)"
    )]
    WrongKek {
        kid: String,
        sealed_by: String,
        configured: String,
    },
    #[error("signing key {kid} cannot be decrypted: {reason}")]
    Sealed { kid: String, reason: SealError },
}

/// One consistent view of the keys.
pub struct KeySet {
    /// The key that signed when the set was built.
    pub signer: Arc<Signer>,
    /// The next key and when it starts signing.
    upcoming: Option<(UnixTime, Arc<Signer>)>,
    pub verifier: Verifier,
    pub jwks_json: bytes::Bytes,
    pub jwks_etag: String,
    pub jwks: Vec<PublicJwk>,
    fingerprint: String,
    /// The earliest time a published retiring key must leave the JWK Set.
    next_change: Option<UnixTime>,
}

impl KeySet {
    /// The key that signs at `now`: the next key once its `activate_at` has come, even before
    /// the set is rebuilt (so a rotation happens on time during a database outage too).
    pub fn signer_at(&self, now: UnixTime) -> &Arc<Signer> {
        match &self.upcoming {
            Some((at, next)) if now >= *at => next,
            _ => &self.signer,
        }
    }
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
    kek: Option<Arc<Kek>>,
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

/// Makes sure a key that signs now exists (generating one if not); returns whether one was
/// made. The first key signs at once: nobody can have cached a JWK Set without it.
pub async fn ensure_active_key(
    store: &Store,
    settings: &Settings,
    kek: Option<&Kek>,
    now: UnixTime,
) -> Result<bool, KeyRingError> {
    store.retire_expired_keys(now).await?;
    if store
        .published_keys()
        .await?
        .iter()
        .any(|k| k.state == ACTIVE || (k.state == NEXT && k.activate_at <= now))
    {
        return Ok(false);
    }
    let generated = generate(settings.keys.rsa_bits, kek).await?;
    store.insert_key(generated, now, now).await?;
    Ok(true)
}

/// Makes a new key. By default it is published now and signs `keys.publish_ahead_secs` later
/// (the active key keeps signing until then); `immediately` makes it sign at once and the
/// active key retiring (after a key is exposed).
pub async fn rotate(
    store: &Store,
    settings: &Settings,
    kek: Option<&Kek>,
    now: UnixTime,
    immediately: bool,
) -> Result<KeyRecord, KeyRingError> {
    let generated = generate(settings.keys.rsa_bits, kek).await?;
    store.retire_expired_keys(now).await?;
    if immediately {
        return Ok(store
            .rotate_keys(generated, now, now.plus(retire_delay(settings)))
            .await?);
    }
    Ok(store
        .insert_key(generated, now.plus(publish_ahead(settings)), now)
        .await?)
}

/// How far ahead of `now` a new key's `activate_at` is set: `keys.publish_ahead_secs`, plus
/// one second because times are whole seconds (a key made at 10.9 s with `activate_at` 13 would
/// be published 2.1 s ahead, not 3), plus the time other instances may take to notice it
/// (`keys.reload_interval_ms`, rounded up): every instance publishes it at least
/// `publish_ahead_secs` before any signs with it.
pub fn publish_ahead(settings: &Settings) -> i64 {
    let k = &settings.keys;
    (k.publish_ahead_secs + 1 + k.reload_interval_ms.div_ceil(1000)) as i64
}

/// What one [`maintain`] pass did.
#[derive(Debug, Default)]
pub struct Maintained {
    /// The key that signs now, when it took over in this pass.
    pub promoted: Option<String>,
    /// A key made in this pass (published now, signing later).
    pub generated: Option<KeyRecord>,
    /// Keys that left the JWK Set in this pass.
    pub retired: u64,
}

/// One pass of the lifecycle: records the key that signs now (the one it replaced starts
/// retiring), retires keys whose tokens have all expired, and makes the next key when the
/// active one is due for rotation within `keys.publish_ahead_secs` and no next key exists.
/// Run by one instance at a time (see the module documentation).
pub async fn maintain(
    store: &Store,
    settings: &Settings,
    kek: Option<&Kek>,
    now: UnixTime,
) -> Result<Maintained, KeyRingError> {
    let mut done = Maintained::default();
    let before = store
        .published_keys()
        .await?
        .into_iter()
        .find(|k| k.state == ACTIVE)
        .map(|k| k.kid);
    let active = store.promote_keys(now, retire_delay(settings)).await?;
    if active.is_some() && active != before {
        done.promoted = active;
    }
    done.retired = store.retire_expired_keys(now).await?;
    let every = settings.keys.rotate_every_secs as i64;
    if every == 0 {
        return Ok(done);
    }
    let published = store.published_keys().await?;
    let Some(signer) = signing_key_of(&published, now) else {
        return Ok(done);
    };
    let has_next = published
        .iter()
        .any(|k| k.state == NEXT && k.activate_at > now);
    let ahead = publish_ahead(settings);
    let due = signer.activate_at.plus(every);
    if !has_next && due.minus(ahead) <= now {
        let activate_at = due.max(now.plus(ahead));
        let generated = generate(settings.keys.rsa_bits, kek).await?;
        done.generated = Some(store.insert_key(generated, activate_at, now).await?);
    }
    Ok(done)
}

/// The key that signs at `now`: of the active keys and the next keys whose time has come, the
/// latest to activate. An active key counts even if its `activate_at` is a moment ahead of this
/// instance's clock (another instance, whose clock is a little ahead, made or promoted it).
fn signing_key_of(keys: &[KeyRecord], now: UnixTime) -> Option<&KeyRecord> {
    keys.iter()
        .filter(|k| k.state == ACTIVE || (k.state == NEXT && k.activate_at <= now))
        .max_by(|a, b| (a.activate_at, &a.kid).cmp(&(b.activate_at, &b.kid)))
}

async fn generate(bits: usize, kek: Option<&Kek>) -> Result<NewKey, KeyRingError> {
    let k = tokio::task::spawn_blocking(move || keys::generate_rsa(bits))
        .await
        .map_err(|_| KeyRingError::Join)??;
    let private_der = match kek {
        Some(kek) => {
            kek.seal(&k.pkcs8_der, k.kid.as_bytes())
                .map_err(|reason| KeyRingError::Sealed {
                    kid: k.kid.clone(),
                    reason,
                })?
        }
        None => k.pkcs8_der,
    };
    Ok(NewKey {
        public_jwk: serde_json::to_string(&k.jwk)
            .map_err(|_| KeyRingError::BadJwk(k.kid.clone()))?,
        kid: k.kid,
        private_der,
    })
}

/// The PKCS#8 DER of a stored key: opened with the key-encryption key when sealed.
fn private_der_of(k: &KeyRecord, kek: Option<&Kek>) -> Result<Vec<u8>, KeyRingError> {
    if !seal::is_sealed(&k.private_der) {
        return Ok(k.private_der.clone());
    }
    let kek = kek.ok_or(KeyRingError::NoKek)?;
    kek.open(&k.private_der, k.kid.as_bytes())
        .map_err(|reason| match reason {
            SealError::OtherKek(sealed_by) => KeyRingError::WrongKek {
                kid: k.kid.clone(),
                sealed_by,
                configured: kek.id_hex(),
            },
            reason => KeyRingError::Sealed {
                kid: k.kid.clone(),
                reason,
            },
        })
}

/// How the signing keys are stored, after [`secure_at_rest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtRest {
    /// Every key is sealed under the configured key-encryption key; `sealed_now` of them were
    /// plaintext until this call.
    Encrypted { sealed_now: usize },
    /// No key-encryption key: keys are stored as plain PKCS#8.
    Plain,
}

/// At start-up: checks that every sealed key opens with the configured key-encryption key
/// (a missing or wrong one is an error that stops start-up), and seals the keys stored in
/// plaintext before one was configured, in one transaction.
pub async fn secure_at_rest(
    store: &Store,
    kek: Option<&Kek>,
    now: UnixTime,
) -> Result<AtRest, KeyRingError> {
    let keys = store.list_keys().await?;
    let mut to_seal = Vec::new();
    for k in &keys {
        let der = private_der_of(k, kek)?;
        if let Some(kek) = kek
            && !seal::is_sealed(&k.private_der)
        {
            let sealed =
                kek.seal(&der, k.kid.as_bytes())
                    .map_err(|reason| KeyRingError::Sealed {
                        kid: k.kid.clone(),
                        reason,
                    })?;
            to_seal.push((k.kid.clone(), sealed));
        }
    }
    let Some(_) = kek else {
        return Ok(AtRest::Plain);
    };
    let sealed_now = to_seal.len();
    if sealed_now > 0 {
        store.replace_private_keys(to_seal, now).await?;
    }
    Ok(AtRest::Encrypted { sealed_now })
}

/// `castellan keys rewrap`: every key sealed under `old` (or stored in plaintext) is sealed
/// under `new`, in one transaction. Returns how many keys were written. A key sealed under a
/// third key-encryption key stops the whole move, changing nothing.
pub async fn rewrap(
    store: &Store,
    old: Option<&Kek>,
    new: &Kek,
    now: UnixTime,
) -> Result<usize, KeyRingError> {
    let keys = store.list_keys().await?;
    let mut moved = Vec::with_capacity(keys.len());
    for k in &keys {
        if new.sealed_this(&k.private_der) {
            continue;
        }
        let der = private_der_of(k, old)?;
        let sealed = new
            .seal(&der, k.kid.as_bytes())
            .map_err(|reason| KeyRingError::Sealed {
                kid: k.kid.clone(),
                reason,
            })?;
        moved.push((k.kid.clone(), sealed));
    }
    let n = moved.len();
    if n > 0 {
        store.replace_private_keys(moved, now).await?;
    }
    Ok(n)
}

fn build(
    records: Vec<KeyRecord>,
    fingerprint: String,
    now: UnixTime,
    kek: Option<&Kek>,
) -> Result<KeySet, KeyRingError> {
    let published: Vec<&KeyRecord> = records
        .iter()
        .filter(|k| k.state != RETIRING || k.retire_at.is_some_and(|t| t > now))
        .collect();
    // The latest key whose time has come signs; the others stay published.
    let active = signing_key_of(&records, now).ok_or(KeyRingError::NoActiveKey)?;
    let der = private_der_of(active, kek)?;
    let signer = Arc::new(Signer::from_pkcs8(&active.kid, &der)?);
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
    // The next moment the set changes by itself: a retiring key leaves, a next key signs.
    // The next key to sign, ready in memory: at its `activate_at` every instance signs with it
    // even if the database cannot be read at that moment.
    let upcoming = match records
        .iter()
        .filter(|k| k.state == NEXT && k.activate_at > now)
        .min_by(|a, b| (a.activate_at, &a.kid).cmp(&(b.activate_at, &b.kid)))
    {
        Some(k) => {
            let der = private_der_of(k, kek)?;
            Some((k.activate_at, Arc::new(Signer::from_pkcs8(&k.kid, &der)?)))
        }
        None => None,
    };
    let next_change = published
        .iter()
        .filter_map(|k| match k.retire_at {
            Some(t) if k.state == RETIRING => Some(t),
            _ if k.activate_at > now => Some(k.activate_at),
            _ => None,
        })
        .min();
    Ok(KeySet {
        signer,
        upcoming,
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
        kek: Option<Arc<Kek>>,
        now: UnixTime,
    ) -> Result<Self, KeyRingError> {
        let fingerprint = store.keys_fingerprint().await?;
        let set = build(
            store.published_keys().await?,
            fingerprint,
            now,
            kek.as_deref(),
        )?;
        Ok(Self {
            kek,
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
        // A key's time to sign or to leave has come: the set changes with no write (the
        // instance running `maintain` records it in the database).
        let timed = old.next_change.is_some_and(|t| now >= t);
        if fingerprint == old.fingerprint && !timed {
            return Ok(None);
        }
        Ok(Some(build(
            store.published_keys().await?,
            fingerprint,
            now,
            self.kek.as_deref(),
        )?))
    }
}

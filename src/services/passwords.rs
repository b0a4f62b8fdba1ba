//! Password hashing on a fixed pool of threads (`services::workers`).
//!
//! argon2id needs `argon2_memory_kib` (19 MiB by default) per hash. Each worker thread owns one
//! reusable buffer, so memory in use is bounded by `workers × m` and does not grow under a login
//! storm: requests queue for a worker instead. (Spawning each hash on the async runtime's
//! blocking pool let every new thread's malloc arena keep its own 19 MiB buffers: resident memory
//! reached a gigabyte in a benchmark.) Unknown users are verified against the dummy hash, on
//! the same workers, so timing does not reveal which accounts exist.

use std::sync::Arc;

use crate::crypto::password::{Hasher, Scratch};
use crate::services::workers::{NotRun, WorkerPool};

/// Why a password was not checked or hashed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// `password.max_queued_hashes` jobs are already waiting: answer 503 with `Retry-After`
    /// instead of queueing without bound (every waiting request holds a connection, and the
    /// queue delays every other user's sign-in).
    #[error("the password workers are busy")]
    Busy,
    #[error("the password workers are gone")]
    Gone,
}

impl From<NotRun> for PoolError {
    fn from(e: NotRun) -> Self {
        match e {
            NotRun::Busy(_) => PoolError::Busy,
            NotRun::Gone(_) => PoolError::Gone,
        }
    }
}

#[derive(Debug)]
pub struct PasswordPool {
    hasher: Arc<Hasher>,
    /// Each worker's state is its reusable argon2 buffer.
    pool: WorkerPool<Scratch>,
}

impl PasswordPool {
    /// Starts `workers` threads (at least one) with at most `queue` jobs waiting.
    pub fn start(hasher: Arc<Hasher>, workers: usize, queue: usize) -> std::io::Result<Self> {
        Ok(Self {
            hasher,
            pool: WorkerPool::start_with_queue("argon2", workers, Some(queue), Scratch::default)?,
        })
    }

    /// Verifies `password` against `phc`; `None` does the same work against the dummy hash and
    /// answers false.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, PoolError> {
        let hasher = self.hasher.clone();
        Ok(self
            .pool
            .try_run(move |scratch| match phc {
                Some(h) => hasher.verify_with(&password, &h, scratch),
                None => {
                    let _ = hasher.verify_with(&password, hasher.dummy_hash(), scratch);
                    false
                }
            })
            .await?)
    }

    /// Hashes a (normalised) password with the configured parameters.
    pub async fn hash(&self, password: String) -> Result<String, PoolError> {
        let hasher = self.hasher.clone();
        self.pool
            .try_run(move |scratch| hasher.hash_with(&password, scratch).ok())
            .await?
            .ok_or(PoolError::Gone)
    }
}

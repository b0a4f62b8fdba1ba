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
use crate::services::workers::WorkerPool;

#[derive(Debug, thiserror::Error)]
#[error("the password workers are gone")]
pub struct PoolGone;

#[derive(Debug)]
pub struct PasswordPool {
    hasher: Arc<Hasher>,
    /// Each worker's state is its reusable argon2 buffer.
    pool: WorkerPool<Scratch>,
}

impl PasswordPool {
    /// Starts `workers` threads (at least one).
    pub fn start(hasher: Arc<Hasher>, workers: usize) -> std::io::Result<Self> {
        Ok(Self {
            hasher,
            pool: WorkerPool::start("argon2", workers, Scratch::default)?,
        })
    }

    /// Verifies `password` against `phc`; `None` does the same work against the dummy hash and
    /// answers false.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, PoolGone> {
        let hasher = self.hasher.clone();
        self.pool
            .run(move |scratch| match phc {
                Some(h) => hasher.verify_with(&password, &h, scratch),
                None => {
                    let _ = hasher.verify_with(&password, hasher.dummy_hash(), scratch);
                    false
                }
            })
            .await
            .map_err(|_| PoolGone)
    }

    /// Hashes a (normalised) password with the configured parameters.
    pub async fn hash(&self, password: String) -> Result<String, PoolGone> {
        let hasher = self.hasher.clone();
        self.pool
            .run(move |scratch| hasher.hash_with(&password, scratch).ok())
            .await
            .map_err(|_| PoolGone)?
            .ok_or(PoolGone)
    }
}

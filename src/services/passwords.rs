//! A fixed pool of password-hashing threads.
//!
//! argon2id needs `argon2_memory_kib` (19 MiB by default) per hash. Each worker thread owns one
//! reusable buffer, so memory in use is bounded by `workers × m` and does not grow under a login
//! storm: requests queue for a worker instead. (Spawning each hash on the async runtime's
//! blocking pool let every new thread's malloc arena keep its own 19 MiB buffers: resident memory
//! reached a gigabyte in a benchmark.) Unknown users are verified against the dummy hash, on
//! the same workers, so timing does not reveal which accounts exist.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::crypto::password::{Hasher, Scratch};

enum Job {
    /// Verify against a stored hash, or against the dummy hash when `None`.
    Verify {
        password: String,
        phc: Option<String>,
        reply: oneshot::Sender<bool>,
    },
    Hash {
        password: String,
        reply: oneshot::Sender<Option<String>>,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("the password workers are gone")]
pub struct PoolGone;

pub struct PasswordPool {
    tx: Mutex<mpsc::Sender<Job>>,
    workers: usize,
}

impl std::fmt::Debug for PasswordPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PasswordPool(workers={})", self.workers)
    }
}

impl PasswordPool {
    /// Starts `workers` threads (at least one).
    pub fn start(hasher: Arc<Hasher>, workers: usize) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            let hasher = hasher.clone();
            std::thread::Builder::new()
                .name(format!("castellan-argon2-{i}"))
                .spawn(move || {
                    let mut scratch = Scratch::default();
                    loop {
                        let job = {
                            let Ok(guard) = rx.lock() else { return };
                            match guard.recv() {
                                Ok(j) => j,
                                Err(_) => return, // the pool was dropped
                            }
                        };
                        match job {
                            Job::Verify {
                                password,
                                phc,
                                reply,
                            } => {
                                let ok = match phc {
                                    Some(h) => hasher.verify_with(&password, &h, &mut scratch),
                                    None => {
                                        let dummy = hasher.dummy_hash().to_owned();
                                        let _ = hasher.verify_with(&password, &dummy, &mut scratch);
                                        false
                                    }
                                };
                                let _ = reply.send(ok);
                            }
                            Job::Hash { password, reply } => {
                                let _ = reply.send(hasher.hash_with(&password, &mut scratch).ok());
                            }
                        }
                    }
                })?;
        }
        Ok(Self {
            tx: Mutex::new(tx),
            workers,
        })
    }

    fn submit(&self, job: Job) -> Result<(), PoolGone> {
        let tx = self.tx.lock().map_err(|_| PoolGone)?;
        tx.send(job).map_err(|_| PoolGone)
    }

    /// Verifies `password` against `phc`; `None` does the same work against the dummy hash and
    /// answers false.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, PoolGone> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Verify {
            password,
            phc,
            reply,
        })?;
        rx.await.map_err(|_| PoolGone)
    }

    /// Hashes a (normalised) password with the configured parameters.
    pub async fn hash(&self, password: String) -> Result<String, PoolGone> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Hash { password, reply })?;
        rx.await.map_err(|_| PoolGone)?.ok_or(PoolGone)
    }
}

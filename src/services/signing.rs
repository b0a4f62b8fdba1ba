//! RS256 signing off the request threads.
//!
//! An RSA-2048 signature costs most of a millisecond of CPU, and a token response needs up to
//! two. Signed inline, they stall the actix worker thread: every other request on that thread
//! waits, including one that holds SQLite's write lock between two statements of a
//! transaction, while the other writers sleep in SQLite's busy handler. So tokens are signed on
//! a fixed set of threads (one per core) that take jobs from one queue: the request threads
//! keep serving reads, I/O and short writes, signing queues instead of piling up threads, and a
//! worker that finishes one job takes the next at once (a semaphore around tokio's blocking
//! pool left a core idle between jobs until the request thread came back for the result, and
//! cost a fifth of the client-credentials rate). Measured in
//! `docs/decisions/2026-11-29-sqlite-write-slots-and-signing-workers.md`.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Debug, thiserror::Error)]
#[error("the signing workers are gone")]
pub struct SigningGone;

pub struct SigningPool {
    tx: mpsc::Sender<Job>,
    workers: usize,
}

impl std::fmt::Debug for SigningPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningPool(workers={})", self.workers)
    }
}

impl SigningPool {
    /// Starts `workers` threads (at least one).
    pub fn start(workers: usize) -> std::io::Result<Self> {
        let workers = workers.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("castellan-sign-{i}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let Ok(guard) = rx.lock() else { return };
                            match guard.recv() {
                                Ok(j) => j,
                                Err(_) => return, // the pool was dropped
                            }
                        };
                        job();
                    }
                })?;
        }
        Ok(Self { tx, workers })
    }

    /// Runs `job` on a signing worker and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, SigningGone> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move || {
                let _ = reply.send(job());
            }))
            .map_err(|_| SigningGone)?;
        rx.await.map_err(|_| SigningGone)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_workers_run_at_once() {
        let pool = Arc::new(SigningPool::start(2).unwrap());
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i * 10
                })
                .await
                .unwrap()
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        assert_eq!(got, (0..8).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 2, "two workers, eight jobs");
    }
}

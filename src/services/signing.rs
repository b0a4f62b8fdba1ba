//! RS256 signing off the request threads.
//!
//! An RSA-2048 signature costs most of a millisecond of CPU, and a token response needs up to
//! two. Signed inline, they stall the actix worker thread: every other request on that thread
//! waits, including one that holds SQLite's write lock between two statements of a
//! transaction, while the other writers sleep in SQLite's busy handler. So tokens are signed on
//! tokio's blocking threads, at most `workers` (one per core by default) at a time: the request
//! threads keep serving reads, I/O and short writes, and signing queues instead of piling
//! up threads. Measured in BENCHMARKS.md ("signing off the request threads").

use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
#[error("the signing workers are gone")]
pub struct SigningGone;

#[derive(Debug)]
pub struct SigningPool {
    permits: Semaphore,
}

impl SigningPool {
    /// At most `workers` (at least one) signing jobs run at a time.
    pub fn new(workers: usize) -> Self {
        Self {
            permits: Semaphore::new(workers.max(1)),
        }
    }

    /// Runs `job` on a blocking thread once a worker is free.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, SigningGone> {
        let _permit = self.permits.acquire().await.map_err(|_| SigningGone)?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|_| SigningGone)
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
        let pool = Arc::new(SigningPool::new(2));
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

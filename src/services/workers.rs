//! A fixed set of threads taking jobs from one queue, each thread with state of its own.
//!
//! CPU-heavy work runs here, not on the request threads:
//! - **argon2id** (`services::passwords`): each worker owns one reusable 19 MiB buffer, so
//!   memory is bounded by `workers × m` and a login storm queues instead of growing memory
//!   (spawning each hash on tokio's blocking pool let every new thread's malloc arena keep
//!   its own buffers: resident memory reached a gigabyte in a benchmark).
//! - **RS256 signing** (`services::tokens::mint`): a signature costs most of a millisecond and
//!   a token response needs up to two. Signed inline they stalled the actix worker thread,
//!   including a request that held SQLite's write lock between two statements while the other
//!   writers slept in SQLite's busy handler.
//!
//! A worker that finishes one job takes the next at once: a semaphore around tokio's blocking
//! pool left a core idle between jobs until the request thread came back for the result, and
//! cost a fifth of the client-credentials rate
//! (`docs/decisions/2026-11-29-sqlite-write-slots-and-signing-workers.md`).

use std::sync::Arc;

use tokio::sync::oneshot;

type Job<S> = Box<dyn FnOnce(&mut S) + Send + 'static>;

#[derive(Debug, thiserror::Error)]
#[error("the {0} workers are gone")]
pub struct WorkersGone(pub &'static str);

/// Why a job was not run.
#[derive(Debug, thiserror::Error)]
pub enum NotRun {
    /// The queue of a bounded pool is full: the caller answers "busy, retry" instead of waiting.
    #[error("the {0} queue is full")]
    Busy(&'static str),
    #[error(transparent)]
    Gone(#[from] WorkersGone),
}

pub struct WorkerPool<S> {
    tx: flume::Sender<Job<S>>,
    name: &'static str,
    workers: usize,
}

impl<S> std::fmt::Debug for WorkerPool<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerPool({}, workers={})", self.name, self.workers)
    }
}

impl<S: 'static> WorkerPool<S> {
    /// Starts `workers` threads (at least one) named `castellan-<name>-<i>`; each makes its
    /// state with `init` once.
    pub fn start(
        name: &'static str,
        workers: usize,
        init: impl Fn() -> S + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        Self::start_with_queue(name, workers, None, init)
    }

    /// [`WorkerPool::start`] with at most `queue` jobs waiting (besides those running);
    /// [`WorkerPool::try_run`] refuses a job beyond that. `None`: no bound.
    pub fn start_with_queue(
        name: &'static str,
        workers: usize,
        queue: Option<usize>,
        init: impl Fn() -> S + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let workers = workers.max(1);
        // A channel every worker receives from: a job wakes one idle worker. (std's receiver
        // behind a mutex woke two per job when the queue ran empty: the worker that got it,
        // then, as it let the mutex go, the one waiting for the mutex.)
        let (tx, rx) = match queue {
            Some(n) => flume::bounded::<Job<S>>(n.max(1)),
            None => flume::unbounded::<Job<S>>(),
        };
        let init = Arc::new(init);
        for i in 0..workers {
            let (rx, init) = (rx.clone(), init.clone());
            std::thread::Builder::new()
                .name(format!("castellan-{name}-{i}"))
                .spawn(move || {
                    let mut state = init();
                    // Err: every sender is gone, the pool was dropped.
                    while let Ok(job) = rx.recv() {
                        job(&mut state);
                    }
                })?;
        }
        Ok(Self { tx, name, workers })
    }

    /// Runs `job` on a worker, with that worker's state, and waits for its result.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut S) -> T + Send + 'static,
    ) -> Result<T, WorkersGone> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move |state: &mut S| {
                let _ = reply.send(job(state));
            }))
            .map_err(|_| WorkersGone(self.name))?;
        rx.await.map_err(|_| WorkersGone(self.name))
    }

    /// Runs `job` on a worker unless the queue is full ([`NotRun::Busy`], at once).
    pub async fn try_run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut S) -> T + Send + 'static,
    ) -> Result<T, NotRun> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .try_send(Box::new(move |state: &mut S| {
                let _ = reply.send(job(state));
            }))
            .map_err(|e| match e {
                flume::TrySendError::Full(_) => NotRun::Busy(self.name),
                flume::TrySendError::Disconnected(_) => NotRun::Gone(WorkersGone(self.name)),
            })?;
        Ok(rx.await.map_err(|_| WorkersGone(self.name))?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_bounded_pool_refuses_a_job_when_its_queue_is_full() {
        let pool = Arc::new(WorkerPool::start_with_queue("test", 1, Some(2), || ()).unwrap());
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(std::sync::Mutex::new(hold));
        // One job runs (and waits to be released), two wait: the fourth is refused at once.
        let mut running = Vec::new();
        for _ in 0..3 {
            let (pool, hold) = (pool.clone(), hold.clone());
            running.push(tokio::spawn(async move {
                pool.try_run(move |_| {
                    let _ = hold.lock().unwrap().recv();
                })
                .await
            }));
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(matches!(
            pool.try_run(|_| ()).await,
            Err(NotRun::Busy("test"))
        ));
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for r in running {
            assert!(r.await.unwrap().is_ok());
        }
        assert!(pool.try_run(|_| 7).await.is_ok_and(|v| v == 7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_workers_run_at_once_and_each_keeps_its_state() {
        let pool = Arc::new(WorkerPool::start("test", 2, || 0usize).unwrap());
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move |jobs_here: &mut usize| {
                    *jobs_here += 1;
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    (i * 10, *jobs_here)
                })
                .await
                .unwrap()
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        let results: Vec<usize> = got.iter().map(|(r, _)| *r).collect();
        assert_eq!(results, (0..8).map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 2, "two workers, eight jobs");
        // Each worker counts its own jobs in its state: the counts seen are 1..=a from one
        // worker and 1..=8-a from the other (with a fresh state per job they would all be 1).
        let mut seen: Vec<usize> = got.iter().map(|(_, n)| *n).collect();
        seen.sort_unstable();
        let a = seen[7];
        let mut expected: Vec<usize> = (1..=a).chain(1..=8 - a).collect();
        expected.sort_unstable();
        assert_eq!(seen, expected);
        assert!(a >= 4, "{seen:?}");
    }
}

//! A time limit on every database call, so that a database that stopped answering is noticed
//! in time to answer the request (503 with `Retry-After`) instead of hanging it.
//!
//! When PostgreSQL refuses connections, an open connection fails at once, but sqlx retries a
//! refused connect until its acquire timeout. When packets are dropped, a connect hangs, and so
//! does a statement on an established connection, until the kernel gives up on the socket
//! (minutes). sqlx has no statement timeout of its own and no socket options, so each call the
//! store makes for a request (a statement, `BEGIN`, `COMMIT`; waiting for a connection
//! included) runs under [`Deadline::run`]. The limit is not also sent as the server's
//! `statement_timeout`: that would bind start-up, migrations and the command line too, which
//! may wait longer ([`Timed::with_limit`]); a statement given up on runs to its end there.
//!
//! An abandoned call leaves its connection with an answer still owed. sqlx tests a connection
//! it gets back with a round trip ("ping") before pooling it again, with no time limit: on a
//! silent network that ping would hold the connection and its pool slot until the kernel gives
//! up (and sqlx does not always recover a connection whose statement was dropped mid-way: the
//! ping then never returns). So an abandonment is remembered, and for [`SUSPECT_FOR`] after it
//! the pool's `after_release` hook ([`Deadline::release_check`]) pings each released
//! connection within the limit first and closes one that does not answer. Healthy operation
//! costs an atomic load per release, no round trip
//! (`docs/decisions/2026-11-29-no-ping-per-statement.md`).
//!
//! The limit tells an outage from load by whether the database answers anyone: a call still
//! waiting at the limit while other calls of this pool completed during its wait (the pool is
//! busy, the database is answering) waits on, for up to [`LOAD_PATIENCE`] limits in all; a call
//! during whose wait nothing completed is given up at the limit. Without this, a busy pool at
//! concurrency 32 answered some token requests 503 (a benchmark of the SSO flow on PostgreSQL
//! saw 64 such errors in 6 s).
//!
//! SQLite has no deadline: its connections are handles in this process, and a writer waiting for
//! the lock (`busy_timeout`) is load, not an outage.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, RuntimeErr, Statement, TransactionTrait,
};

/// How long after an abandoned call released connections are pinged within the limit. The
/// abandoned call's own connection is released at once (sqlx spawns its return as the call is
/// dropped); the margin covers a busy scheduler.
const SUSPECT_FOR: Duration = Duration::from_secs(10);

/// How many limits in all a call may wait while other calls keep completing (load).
const LOAD_PATIENCE: u32 = 10;

/// The limit on each call, and when a call was last abandoned.
#[derive(Debug, Clone)]
pub(crate) struct Deadline {
    /// `None`: no limit (SQLite).
    limit: Option<Duration>,
    /// Milliseconds since `epoch` of the last abandonment, plus one; 0: none yet.
    abandoned: Arc<AtomicU64>,
    /// Milliseconds since `epoch` when a call last completed successfully.
    answered: Arc<AtomicU64>,
    epoch: Instant,
}

impl Deadline {
    pub(crate) fn new(limit: Option<Duration>) -> Self {
        Self {
            limit,
            abandoned: Arc::default(),
            answered: Arc::default(),
            epoch: Instant::now(),
        }
    }

    /// The same record of abandonments, with another limit.
    pub(crate) fn with_limit(&self, limit: Option<Duration>) -> Self {
        Self {
            limit,
            ..self.clone()
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a call was abandoned less than [`SUSPECT_FOR`] ago.
    pub(crate) fn suspect(&self) -> bool {
        match self.abandoned.load(Ordering::Acquire) {
            0 => false,
            at => self.now_ms().saturating_sub(at - 1) < SUSPECT_FOR.as_millis() as u64,
        }
    }

    /// Runs one database call within the limit. A call still running at the limit is dropped
    /// (sqlx then gives its connection back to the pool, through [`Deadline::release_check`])
    /// and fails as a connection error, which the store reports as
    /// [`StoreError::Unavailable`](super::StoreError::Unavailable).
    pub(crate) async fn run<T>(
        &self,
        call: impl Future<Output = Result<T, DbErr>>,
    ) -> Result<T, DbErr> {
        let Some(limit) = self.limit else {
            return call.await;
        };
        let mut call = std::pin::pin!(call);
        let started = self.now_ms();
        let mut waited = 0;
        loop {
            waited += 1;
            match tokio::time::timeout(limit, call.as_mut()).await {
                Ok(result) => {
                    if result.is_ok() {
                        self.answered.store(self.now_ms(), Ordering::Relaxed);
                    }
                    return result;
                }
                // The database answered other calls while this one waited: load, not an outage.
                Err(_)
                    if waited < LOAD_PATIENCE
                        && self.answered.load(Ordering::Relaxed) > started => {}
                Err(_) => break,
            }
        }
        // Noted before the call is dropped (at the end of this function), so the release of its
        // connection, which dropping it starts, sees it.
        self.abandoned
            .store(self.now_ms().saturating_add(1), Ordering::Release);
        Err(DbErr::Conn(RuntimeErr::Internal(format!(
            "the database did not answer within {} ms",
            limit.as_millis()
        ))))
    }

    /// For the pool's `after_release` hook: `Ok(true)` keeps the connection, `Ok(false)` closes
    /// it. Nothing to do unless a call was abandoned lately. Then the connection may still owe
    /// the abandoned statement's answer (its rows, or an error): pings, each within the limit,
    /// read past it, and a connection that answers is kept. One that does not is closed
    /// politely (`Terminate`): sqlx's hard close of a TLS connection waits for bytes that a live
    /// server never sends, and would hold the pool slot.
    pub(crate) async fn release_check<C: sea_orm::sqlx::Connection>(
        &self,
        conn: &mut C,
    ) -> Result<bool, sea_orm::sqlx::Error> {
        let Some(limit) = self.limit else {
            return Ok(true);
        };
        if !self.suspect() {
            return Ok(true);
        }
        for _ in 0..3 {
            match tokio::time::timeout(limit, conn.ping()).await {
                Ok(Ok(())) => return Ok(true),
                // The server answered, with the abandoned statement's error: read on.
                Ok(Err(sea_orm::sqlx::Error::Database(_))) => continue,
                _ => break,
            }
        }
        Ok(false)
    }
}

/// A connection or transaction whose every call runs under a [`Deadline`].
#[derive(Debug, Clone)]
pub(crate) struct Timed<C> {
    inner: C,
    deadline: Deadline,
}

/// The pool, as the store modules use it.
pub(crate) type Db = Timed<DatabaseConnection>;
/// A transaction on it.
pub(crate) type Tx = Timed<DatabaseTransaction>;

impl<C> Timed<C> {
    pub(crate) fn new(inner: C, deadline: Deadline) -> Self {
        Self { inner, deadline }
    }

    /// Whether a call on this pool went past its limit lately ([`Deadline::suspect`]).
    pub(crate) fn suspect(&self) -> bool {
        self.deadline.suspect()
    }

    /// What runs under the deadline (for calls that must not have it: migrations).
    pub(crate) fn untimed(&self) -> &C {
        &self.inner
    }
}

impl<C: Clone> Timed<C> {
    /// The same connection with another limit on its calls.
    pub(crate) fn with_limit(&self, limit: Option<Duration>) -> Self {
        Timed::new(self.inner.clone(), self.deadline.with_limit(limit))
    }
}

impl Db {
    /// `BEGIN`, within the deadline (it waits for a connection and for the server's answer).
    pub(crate) async fn begin(&self) -> Result<Tx, DbErr> {
        let tx = self.deadline.run(self.inner.begin()).await?;
        Ok(Timed::new(tx, self.deadline.clone()))
    }

    /// A trivial round trip, within the deadline.
    pub(crate) async fn ping(&self) -> Result<(), DbErr> {
        self.deadline.run(self.inner.ping()).await
    }
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<(), DbErr> {
        let Timed { inner, deadline } = self;
        deadline.run(inner.commit()).await
    }

    pub(crate) async fn rollback(self) -> Result<(), DbErr> {
        let Timed { inner, deadline } = self;
        deadline.run(inner.rollback()).await
    }
}

#[async_trait::async_trait]
impl<C: ConnectionTrait + Send + Sync> ConnectionTrait for Timed<C> {
    fn get_database_backend(&self) -> DbBackend {
        self.inner.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.deadline.run(self.inner.execute_raw(stmt)).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.deadline.run(self.inner.execute_unprepared(sql)).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.deadline.run(self.inner.query_one_raw(stmt)).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.deadline.run(self.inner.query_all_raw(stmt)).await
    }

    fn support_returning(&self) -> bool {
        self.inner.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.inner.is_mock_connection()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_call_past_the_limit_fails_as_a_connection_error_and_is_remembered() {
        let d = Deadline::new(Some(Duration::from_millis(20)));
        d.run(async { Ok(()) }).await.unwrap();
        assert!(!d.suspect());
        let slow = d
            .run(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            })
            .await;
        assert!(
            matches!(slow, Err(DbErr::Conn(RuntimeErr::Internal(_)))),
            "{slow:?}"
        );
        assert!(d.suspect());
        d.run(async { Ok(()) }).await.unwrap();
        assert!(d.suspect(), "for a while, whatever succeeds meanwhile");
    }

    #[tokio::test]
    async fn no_limit_waits_as_long_as_the_call_takes() {
        let d = Deadline::new(None);
        let r: Result<u8, DbErr> = d
            .run(async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                Ok(7)
            })
            .await;
        assert_eq!(r.unwrap(), 7);
    }
}

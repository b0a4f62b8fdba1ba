//! Persistence: the only module that imports `sea_orm`. One store file per aggregate; each
//! converts rows into domain types so that entities never leave this module.
//!
//! Every piece of state lives here (sessions, codes, tokens, keys, lockout counters), so any
//! number of instances can share one PostgreSQL database.

pub mod accounts;
pub mod clients;
mod deadline;
mod entities;
pub mod factors;
pub mod grants;
pub mod housekeeping;
pub mod jobs;
pub mod keys;
pub mod leases;
pub mod passkeys;
pub mod roles;
pub mod standing;
pub mod upstreams;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DbBackend, DbErr, RuntimeErr, Statement};

use crate::config::{Settings, redact_url};
use deadline::{Db, Deadline, Timed, Tx};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Conflict,
    /// The database cannot be reached or did not answer in time ([`is_unavailable`]): a
    /// request answers 503 with `Retry-After`, and the next one may succeed.
    #[error("the database is unavailable: {0}")]
    Unavailable(DbErr),
    #[error("database error: {0}")]
    Db(DbErr),
    #[error("stored data is malformed: {0}")]
    Corrupt(String),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        if is_unavailable(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Db(e)
        }
    }
}

impl StoreError {
    fn from_insert(e: DbErr) -> Self {
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("unique") || text.contains("duplicate key") {
            StoreError::Conflict
        } else {
            StoreError::from(e)
        }
    }

    /// Whether the database is unreachable or not answering (retry later), as opposed to a
    /// failure of this request itself.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Whether an error says the database cannot be used right now rather than that this
/// statement failed: no connection to be had (the pool's acquire timeout, a closed pool), a
/// connection that broke or did not answer in time ([`Deadline`]), or the server saying it
/// cannot serve (PostgreSQL: SQLSTATE class 08 connection exception, class 53 insufficient
/// resources, 57P01–57P03 shutting down or starting up, 57014 the `statement_timeout`, 25006 a
/// read-only server after a fail-over; SQLite: `SQLITE_IOERR`, `SQLITE_CANTOPEN`).
/// `SQLITE_BUSY`/`SQLITE_LOCKED` are not among them: a writer that waited out the busy timeout
/// met load, not an outage. <https://www.postgresql.org/docs/current/errcodes-appendix.html>,
/// <https://sqlite.org/rescode.html>
pub fn is_unavailable(e: &DbErr) -> bool {
    match e {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(s))
        | DbErr::Exec(RuntimeErr::SqlxError(s))
        | DbErr::Query(RuntimeErr::SqlxError(s)) => sqlx_unavailable(s),
        // A connection sea-orm found broken, or a call past the [`Deadline`].
        DbErr::Conn(_) => true,
        _ => false,
    }
}

fn sqlx_unavailable(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match e {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        Error::Database(d) => {
            if let Some(pg) = d.try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>() {
                let code = pg.code();
                code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(code, "57P01" | "57P02" | "57P03" | "57014" | "25006")
            } else if d
                .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                .is_some()
            {
                // Extended result codes: the primary code is the low byte.
                let primary = d
                    .code()
                    .and_then(|c| c.parse::<u32>().ok())
                    .map(|c| c & 0xff);
                matches!(primary, Some(10 | 14))
            } else {
                false
            }
        }
        _ => false,
    }
}

/// Why the database could not be opened; the URL in the message has its password hidden.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the database {url}: {reason}")]
pub struct ConnectError {
    pub url: String,
    pub reason: String,
}

/// Connection pool use at one moment, in plain numbers (for `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open now (idle or in use).
    pub open: u32,
    /// Open connections waiting in the pool.
    pub idle: u32,
    /// The most the pool will open (`database.max_connections`).
    pub max: u32,
}

impl PoolStats {
    /// Open connections lent out to a query or transaction.
    pub fn in_use(&self) -> u32 {
        self.open.saturating_sub(self.idle)
    }
}

/// A handle on the database, cheap to clone (a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    /// The pool; every call on it runs under the [`Deadline`] (PostgreSQL).
    db: Db,
    /// SQLite only: the in-process queue for its one write lock (see [`Store::write_gate`]).
    writes: Option<Arc<tokio::sync::Semaphore>>,
}

/// How many writes one process lets into SQLite at a time (see [`Store::write_gate`]).
const SQLITE_WRITERS: usize = 2;

/// Held while a write runs on SQLite; nothing on PostgreSQL.
pub(crate) type WriteGuard<'a> = Option<tokio::sync::SemaphorePermit<'a>>;

impl Store {
    /// Opens the configured database. SQLite: creates the parent directory, WAL journal,
    /// `synchronous=NORMAL`, foreign keys on, a busy timeout so writers queue instead of failing.
    /// PostgreSQL: waits up to `database.connect_timeout_secs` for the server to answer (it may
    /// be starting too), and each call on the store returned may take as long: it is for
    /// start-up and the command line. The server answers requests with
    /// [`Store::for_requests`].
    pub async fn connect(settings: &Settings) -> Result<Self, ConnectError> {
        let url = settings.database.url.expose().to_owned();
        let shown = redact_url(&url);
        if let Some(path) = settings.sqlite_path()
            && let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| ConnectError {
                url: shown.clone(),
                reason: format!("cannot create directory {}: {e}", dir.display()),
            })?;
        }
        let mut opts = ConnectOptions::new(url);
        let wait = Duration::from_secs(settings.database.connect_timeout_secs);
        let sqlite = settings.database.is_sqlite();
        // The limit a request's calls get; released connections are checked within it too.
        let requests = Deadline::new(request_limit(settings));
        // Calls wait for a connection (opening one included) as long as start-up would; on
        // PostgreSQL a request's [`Deadline`] cuts that short.
        opts.max_connections(settings.database.pool_size())
            .min_connections(1)
            .connect_timeout(wait)
            .acquire_timeout(wait)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
            });
        // sqlx pings a pooled connection on every checkout by default: one more round trip
        // per statement (on SQLite a hand-off to the connection's thread and back, on
        // PostgreSQL a network round trip). A SQLite connection is an in-process handle and
        // is never tested; a PostgreSQL connection only after it sat idle long enough for a
        // server restart, a proxy or a firewall to have dropped it.
        // docs/decisions/2026-11-29-no-ping-per-statement.md
        if sqlite {
            opts.test_before_acquire(false);
        } else {
            // The pool opens connections on demand; start-up waits for the first below.
            let hook = requests.clone();
            opts.connect_lazy(true)
                .test_before_acquire_if_idle_for(Duration::from_secs(30))
                .map_sqlx_postgres_pool_opts(move |pool| {
                    let hook = hook.clone();
                    pool.after_release(move |conn, _| {
                        let hook = hook.clone();
                        Box::pin(async move { hook.release_check(conn).await })
                    })
                });
        }
        let refused = |e: DbErr| ConnectError {
            url: shown.clone(),
            reason: crate::config::redact_in_text(&e.to_string()),
        };
        let patient = requests.with_limit((!sqlite).then_some(wait));
        let db = Timed::new(Database::connect(opts).await.map_err(refused)?, patient);
        if !sqlite {
            wait_for(&db, wait).await.map_err(refused)?;
        }
        // Reads and writes share one pool: a dedicated single SQLite writer connection was
        // measured and lowered refresh and code-flow throughput by a third (BENCHMARKS.md).
        let writes = sqlite.then(|| Arc::new(tokio::sync::Semaphore::new(SQLITE_WRITERS)));
        Ok(Self { db, writes })
    }

    /// Waits for this process's turn to write. SQLite lets one connection write at a time; a
    /// writer that finds the lock taken gets `SQLITE_BUSY`, and SQLite's busy handler puts the
    /// connection's thread to sleep with a back-off (1, 2, 5, 10 … 100 ms) even when the lock
    /// frees microseconds later. With 32 requests writing at once that was ~3 sleeps per refresh
    /// and a refresh p99 of 400–500 ms. Here at most [`SQLITE_WRITERS`] writes are in flight;
    /// the rest wait in a FIFO queue and start the moment a slot frees. One slot serialises the
    /// async hops around each statement too and cost throughput; two keep p99 low without that
    /// loss (measured, BENCHMARKS.md). The busy timeout still covers other processes (the CLI
    /// beside a running server). PostgreSQL locks rows, not the database: no queue. Take it in
    /// the method that runs the statements; a method holding it must not call another that
    /// takes it (a slot is not re-entrant).
    pub(crate) async fn write_gate(&self) -> WriteGuard<'_> {
        match &self.writes {
            Some(m) => m.acquire().await.ok(),
            None => None,
        }
    }

    /// The same pool, for the server's use cases: on PostgreSQL each call may take
    /// `database.statement_timeout_ms` at most, waiting for a connection included, and past it
    /// fails as [`StoreError::Unavailable`] (a request answered 503 instead of hanging while the
    /// database is unreachable). SQLite: as [`Store::connect`] (no limit).
    pub fn for_requests(&self, settings: &Settings) -> Store {
        Store {
            db: self.db.with_limit(request_limit(settings)),
            writes: self.writes.clone(),
        }
    }

    /// Whether a call lately went past its limit (the database may be unreachable): for work
    /// that a request may skip waiting for, such as a cache refresh.
    pub fn unavailable_lately(&self) -> bool {
        self.db.suspect()
    }

    /// Applies pending migrations; returns how many were applied. Migrations are not requests:
    /// they run without the [`Deadline`] (an index on a large table takes its time).
    pub async fn migrate(&self) -> Result<usize, DbErr> {
        use migration::MigratorTrait;
        let db = self.db.untimed();
        let pending = migration::Migrator::get_pending_migrations(db).await?.len();
        // A server starting on a current schema (every start but the first) stops here: `up`
        // would create the bookkeeping table if missing and list the pending ones again.
        if pending > 0 {
            migration::Migrator::up(db, None).await?;
        }
        Ok(pending)
    }

    /// Names of the applied migrations, oldest first.
    pub async fn applied_migrations(&self) -> Result<Vec<String>, DbErr> {
        use migration::MigratorTrait;
        Ok(
            migration::Migrator::get_applied_migrations(self.db.untimed())
                .await?
                .iter()
                .map(|m| m.name().to_owned())
                .collect(),
        )
    }

    /// A trivial round trip, for `/readyz` (within the [`Deadline`]).
    pub async fn ping(&self) -> Result<(), StoreError> {
        Ok(self.db.ping().await?)
    }

    pub fn backend(&self) -> &'static str {
        match self.db.get_database_backend() {
            DbBackend::Sqlite => "sqlite",
            DbBackend::Postgres => "postgres",
            _ => "other",
        }
    }

    /// How many pooled connections are open, idle and allowed. Reads counters the pool keeps;
    /// no query, no lock.
    pub fn pool_stats(&self) -> PoolStats {
        fn of<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> PoolStats {
            PoolStats {
                open: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            }
        }
        // The backend is checked first: the pool getters panic on the other backend.
        let db = self.db.untimed();
        match db.get_database_backend() {
            DbBackend::Sqlite => of(db.get_sqlite_connection_pool()),
            DbBackend::Postgres => of(db.get_postgres_connection_pool()),
            _ => PoolStats {
                open: 0,
                idle: 0,
                max: 0,
            },
        }
    }

    pub async fn close(self) -> Result<(), DbErr> {
        self.db.untimed().clone().close().await
    }

    pub(crate) fn conn(&self) -> &Db {
        &self.db
    }
}

/// The [`Deadline`] of a request's calls: `database.statement_timeout_ms` on PostgreSQL, none
/// on SQLite (a connection is an in-process handle; a writer waiting for the lock is load).
fn request_limit(settings: &Settings) -> Option<Duration> {
    (!settings.database.is_sqlite())
        .then(|| Duration::from_millis(settings.database.statement_timeout_ms))
}

/// Start-up: pings until the database answers, for up to `wait`. Only an unavailable database
/// is waited for; another error (a wrong password, no such database) returns at once.
async fn wait_for(db: &Db, wait: Duration) -> Result<(), DbErr> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        match db.ping().await {
            Ok(()) => return Ok(()),
            Err(e) if is_unavailable(&e) && tokio::time::Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One statement of a write transaction run by [`commit_steps`].
pub(super) struct Step {
    stmt: Statement,
    /// It has a `RETURNING` clause: its rows are collected, and on PostgreSQL their number is
    /// what it changed.
    returns_rows: bool,
    /// Runs only if the step before it changed exactly one row ([`Step::insert`]).
    guarded: bool,
}

impl Step {
    pub(super) fn run(stmt: Statement) -> Self {
        Step {
            stmt,
            returns_rows: false,
            guarded: false,
        }
    }

    pub(super) fn returning(stmt: Statement) -> Self {
        Step {
            returns_rows: true,
            ..Step::run(stmt)
        }
    }

    /// A step inserting `row`; with `guarded`, only if the step before it changed exactly one
    /// row. SQLite: the guard is in the SQL, `INSERT INTO <table> (<the row's set columns>)
    /// SELECT <their values> WHERE changes() = 1` (`changes()` counts the most recently
    /// completed INSERT, UPDATE or DELETE: <https://sqlite.org/lang_corefunc.html#changes>), so
    /// the batch needs no branch. Other backends: the plain insert, which [`commit_steps`]
    /// skips. With `returning`, the step gives that column of the row it wrote.
    pub(super) fn insert<A>(
        row: A,
        backend: DbBackend,
        guarded: bool,
        returning: Option<<A::Entity as sea_orm::EntityTrait>::Column>,
    ) -> Result<Self, DbErr>
    where
        A: sea_orm::ActiveModelTrait,
    {
        use sea_orm::sea_query::{Expr, Query};
        use sea_orm::{ActiveValue, EntityTrait, Iterable, QueryTrait};
        let mut insert = if guarded && backend == DbBackend::Sqlite {
            let mut columns = Vec::new();
            let mut values = Vec::new();
            for c in <A::Entity as EntityTrait>::Column::iter() {
                if let ActiveValue::Set(v) | ActiveValue::Unchanged(v) = row.get(c) {
                    columns.push(c);
                    values.push(Expr::val(v));
                }
            }
            let mut select = Query::select();
            select.exprs(values).and_where(Expr::cust("changes() = 1"));
            let mut insert = Query::insert();
            insert
                .into_table(A::Entity::default())
                .columns(columns)
                .select_from(select)
                .map_err(|e| DbErr::Custom(format!("insert from select: {e}")))?;
            insert
        } else {
            <A::Entity as EntityTrait>::insert(row).into_query()
        };
        if let Some(c) = returning {
            insert.returning_col(c);
        }
        Ok(Step {
            stmt: backend.build(&insert),
            returns_rows: returning.is_some(),
            guarded,
        })
    }
}

/// The statements of one write transaction, then the commit; returns the rows the `RETURNING`
/// steps gave. A guarded step that does not run writes nothing, and a step guarded on it does
/// not run either: the decisions a transaction used to make by rolling back are made step by
/// step, so the steps need no branch.
///
/// - SQLite: the steps, `COMMIT` and a new `BEGIN` go as one batch, one call to the
///   connection's thread (sqlx runs each SQLite connection's statements on a thread of its own,
///   and every hand-off to it and back waits for the scheduler). SQLite's write lock, taken by
///   the first write, is let go before the batch returns, so no hand-off happens while other
///   writers wait for it. The trailing `BEGIN` (deferred: it takes no lock) leaves the
///   transaction sqlx and sea-orm track open, and `tx.commit()` ends that empty one. The guards
///   are in the SQL ([`Step::insert`]). Decisions:
///   `docs/decisions/2026-11-29-sqlite-statement-batches.md`,
///   `docs/decisions/2026-11-29-sqlite-commit-in-batch.md`.
/// - Other backends: one statement after another; a guarded step is skipped here.
///
/// A statement that fails part-way leaves the transaction open, and it is rolled back.
async fn commit_steps(tx: Tx, steps: Vec<Step>) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    let run = async {
        if tx.get_database_backend() == DbBackend::Sqlite {
            let mut batch = joined(steps.into_iter().map(|s| s.stmt));
            batch.sql.push_str("COMMIT;\nBEGIN;\n");
            return tx.query_all_raw(batch).await;
        }
        let mut rows = Vec::new();
        let mut changed = 0;
        for step in steps {
            if step.guarded && changed != 1 {
                changed = 0;
                continue;
            }
            if step.returns_rows {
                let got = tx.query_all_raw(step.stmt).await?;
                changed = got.len() as u64;
                rows.extend(got);
            } else {
                changed = tx.execute_raw(step.stmt).await?.rows_affected();
            }
        }
        Ok(rows)
    };
    match run.await {
        Ok(rows) => {
            tx.commit().await?;
            Ok(rows)
        }
        Err(e) => {
            // Not left to the drop: the transaction may hold SQLite's write lock.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// SQLite statements as one: the texts one after another, the arguments in the same order
/// (sqlx binds each statement's parameters from where the previous one's ended).
fn joined(parts: impl IntoIterator<Item = Statement>) -> Statement {
    let mut sql = String::new();
    let mut values = Vec::new();
    for part in parts {
        sql.push_str(&part.sql);
        sql.push_str(";\n");
        values.extend(part.values.map(|v| v.0).unwrap_or_default());
    }
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(' ').filter(|x| !x.is_empty())
}

/// The scope set in a grant's or consent's text column. Castellan writes it from a
/// [`ScopeSet`](crate::domain::ScopeSet), so it parses; a value that does not (one written by
/// hand) reads as no scopes: a grant can lose scopes this way, never gain one.
fn stored_scope(raw: &str) -> crate::domain::ScopeSet {
    crate::domain::ScopeSet::parse(raw).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A store on a fresh SQLite file; the directory lives as long as the returned guard.
    async fn sqlite_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&Settings::for_test("http://127.0.0.1:1", &url))
            .await
            .unwrap();
        (dir, store)
    }

    fn sqlx_exec_err(e: sea_orm::sqlx::Error) -> DbErr {
        DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
    }

    #[test]
    fn no_connection_a_broken_one_or_a_deadline_is_unavailable_and_a_bad_statement_is_not() {
        use sea_orm::sqlx::Error;
        let io = || Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let unavailable = [
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout),
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::ConnectionClosed),
            DbErr::Conn(RuntimeErr::Internal("no answer within 500 ms".into())),
            DbErr::Conn(RuntimeErr::SqlxError(Arc::new(io()))),
            sqlx_exec_err(io()),
            DbErr::Query(RuntimeErr::SqlxError(Arc::new(Error::PoolTimedOut))),
        ];
        for e in unavailable {
            assert!(is_unavailable(&e), "{e:?}");
            assert!(StoreError::from(e).is_unavailable());
        }
        let not = [
            DbErr::Custom("x".into()),
            DbErr::RecordNotFound("x".into()),
            sqlx_exec_err(Error::RowNotFound),
            sqlx_exec_err(Error::ColumnNotFound("c".into())),
        ];
        for e in not {
            assert!(!is_unavailable(&e), "{e:?}");
            assert!(matches!(StoreError::from(e), StoreError::Db(_)));
        }
    }

    /// SQLite: a database that cannot be opened is unavailable (`SQLITE_CANTOPEN`); one whose
    /// write lock another connection holds is busy, which is load, not an outage.
    #[tokio::test]
    async fn sqlite_cannot_open_is_unavailable_and_busy_is_not() {
        use sea_orm::sqlx::sqlite::SqliteConnectOptions;
        use sea_orm::sqlx::{ConnectOptions as _, Executor};
        let dir = tempfile::tempdir().unwrap();
        let missing = SqliteConnectOptions::new().filename(dir.path().join("no/such/dir/t.db"));
        let e = missing.connect().await.unwrap_err();
        assert!(is_unavailable(&sqlx_exec_err(e)));

        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .busy_timeout(Duration::ZERO);
        let mut holder = opts.connect().await.unwrap();
        holder.execute("CREATE TABLE t (x INTEGER)").await.unwrap();
        holder.execute("BEGIN EXCLUSIVE").await.unwrap();
        let mut other = opts.connect().await.unwrap();
        let e = other.execute("INSERT INTO t VALUES (1)").await.unwrap_err();
        assert!(
            e.as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "5"),
            "SQLITE_BUSY: {e:?}"
        );
        assert!(!is_unavailable(&sqlx_exec_err(e)));
    }

    /// PostgreSQL (`TEST_DATABASE_URL`): a request's call still running at the limit fails as
    /// unavailable in about the limit; the connection of the statement it abandoned is checked
    /// when it comes back and kept when it answers; and no pool slot is lost (the pool closes,
    /// which waits for every connection to come back). The start-up store has no such limit.
    #[tokio::test]
    async fn a_call_waiting_past_the_limit_for_a_busy_pool_waits_on_while_the_database_answers() {
        use sea_orm::ConnectionTrait;
        let url = match std::env::var("TEST_DATABASE_URL") {
            Ok(u) if u.starts_with("postgres") => u,
            _ => {
                let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
                let reachable = std::net::TcpStream::connect(("127.0.0.1", 5432)).is_ok();
                assert!(!ci || reachable, "CI=true: this test needs PostgreSQL");
                return;
            }
        };
        let mut settings = Settings::for_test("http://127.0.0.1:1", &url);
        settings.database.statement_timeout_ms = 200;
        settings.database.max_connections = Some(1);
        let patient = Store::connect(&settings).await.unwrap();
        patient.ping().await.unwrap(); // the pool's one connection is open
        let store = patient.for_requests(&settings);
        // One connection, held by a transaction whose statements each answer within the limit.
        let tx = store.conn().begin().await.unwrap();
        let waiter = {
            let store = store.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let r = store.ping().await;
                (r, started.elapsed())
            })
        };
        for _ in 0..4 {
            tx.execute_unprepared("SELECT pg_sleep(0.1)").await.unwrap();
        }
        tx.commit().await.unwrap();
        let (r, waited) = waiter.await.unwrap();
        assert!(r.is_ok(), "a busy pool is load, not an outage: {r:?}");
        assert!(
            waited > Duration::from_millis(200),
            "the wait went past the limit ({waited:?}), so the test tried what it says"
        );
        store.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_postgresql_statement_past_the_limit_is_unavailable_and_the_pool_goes_on() {
        use sea_orm::ConnectionTrait;
        let url = match std::env::var("TEST_DATABASE_URL") {
            Ok(u) if u.starts_with("postgres") => u,
            _ => {
                // Under CI the PostgreSQL run has it; without a PostgreSQL to run it, fail.
                let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
                let reachable = std::net::TcpStream::connect(("127.0.0.1", 5432)).is_ok();
                assert!(!ci || reachable, "CI=true: this test needs PostgreSQL");
                return;
            }
        };
        let mut settings = Settings::for_test("http://127.0.0.1:1", &url);
        settings.database.statement_timeout_ms = 200;
        let patient = Store::connect(&settings).await.unwrap();
        patient
            .conn()
            .execute_unprepared("SELECT pg_sleep(0.3)")
            .await
            .unwrap();
        let store = patient.for_requests(&settings);
        for sleep in ["0.3", "5"] {
            let started = std::time::Instant::now();
            let e = store
                .conn()
                .execute_unprepared(&format!("SELECT pg_sleep({sleep})"))
                .await
                .unwrap_err();
            let took = started.elapsed();
            assert!(is_unavailable(&e), "{e:?}");
            assert!(took < Duration::from_millis(800), "{took:?}");
            // In a transaction too (dropped unfinished: sea-orm queues its rollback).
            let tx = store.conn().begin().await.unwrap();
            let e = tx
                .execute_unprepared("SELECT pg_sleep(0.3)")
                .await
                .unwrap_err();
            assert!(is_unavailable(&e), "{e:?}");
            drop(tx);
            for _ in 0..3 {
                store.ping().await.unwrap();
            }
        }
        tokio::time::timeout(Duration::from_secs(8), store.close())
            .await
            .expect("every connection came back to the pool")
            .unwrap();
    }

    /// `.cargo/config.toml` builds the bundled SQLite with `SQLITE_ENABLE_QPSG`; without it every
    /// `.one()` (a bound `LIMIT`) is re-prepared on each call and SQLite throughput halves.
    #[tokio::test]
    async fn the_bundled_sqlite_keeps_its_query_plans() {
        use sea_orm::{ConnectionTrait, Statement};
        let (_dir, store) = sqlite_store().await;
        let rows = store
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT compile_options FROM pragma_compile_options",
            ))
            .await
            .unwrap();
        let options: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String>("", "compile_options").unwrap())
            .collect();
        assert!(options.iter().any(|o| o == "ENABLE_QPSG"), "{options:?}");
    }

    #[tokio::test]
    async fn pool_stats_count_a_connection_held_by_a_transaction_as_in_use() {
        let (_dir, store) = sqlite_store().await;
        // sqlx hands a released connection back to the pool in a task of its own: wait for it.
        let mut before = store.pool_stats();
        for _ in 0..100 {
            if before.in_use() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            before = store.pool_stats();
        }
        assert_eq!((before.in_use(), before.max), (0, 5), "{before:?}");
        assert!(before.idle >= 1, "{before:?}");
        let txn = store.db.begin().await.unwrap();
        let during = store.pool_stats();
        assert_eq!(during.in_use(), 1, "{during:?}");
        assert_eq!(during.idle, during.open - 1, "{during:?}");
        txn.rollback().await.unwrap();
    }

    /// `commit_steps` on SQLite (one batch): every statement runs with its own arguments; a
    /// guarded insert is written only after a step that changed one row, and a step guarded on
    /// it only if it was; what the batch wrote is committed and seen by other connections; a
    /// batch that fails part-way is rolled back; and the connections stay usable for ordinary
    /// transactions afterwards (none is left inside one).
    #[tokio::test]
    async fn a_sqlite_batch_commits_itself_and_guarded_steps_follow_the_previous_change() {
        use sea_orm::ActiveValue::Set;
        use sea_orm::sea_query::Query;
        use sea_orm::{ColumnTrait, EntityTrait};

        use entities::revoked_token;
        let (_dir, store) = sqlite_store().await;
        store.migrate().await.unwrap();
        let b = DbBackend::Sqlite;
        let row = |id: &str| revoked_token::ActiveModel {
            id: Set(id.to_owned()),
            expires_at: Set(7),
        };
        let plain = |id: &str| Step::insert(row(id), b, false, None).unwrap();
        let guarded = |id: &str| Step::insert(row(id), b, true, None).unwrap();
        let no_change = || {
            Step::run(
                b.build(
                    Query::update()
                        .table(revoked_token::Entity)
                        .value(revoked_token::Column::ExpiresAt, 9)
                        .and_where(revoked_token::Column::Id.eq("nobody")),
                ),
            )
        };
        let ids = async || {
            let mut ids: Vec<String> = revoked_token::Entity::find()
                .all(&store.db)
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.id)
                .collect();
            ids.sort();
            ids
        };

        let cases = [
            (
                vec![plain("a"), guarded("b"), guarded("c")],
                vec!["a", "b", "c"],
                "each guard saw one change",
            ),
            (
                vec![no_change(), guarded("d"), guarded("e")],
                vec!["a", "b", "c"],
                "no change, nothing guarded written",
            ),
            (
                vec![no_change(), plain("g")],
                vec!["a", "b", "c", "g"],
                "an unguarded insert runs whatever came before",
            ),
        ];
        for (steps, want, why) in cases {
            let tx = store.db.begin().await.unwrap();
            commit_steps(tx, steps).await.unwrap();
            assert_eq!(ids().await, want, "{why}");
        }

        let tx = store.db.begin().await.unwrap();
        let failed = commit_steps(tx, vec![plain("f"), plain("a")]).await;
        assert!(failed.is_err(), "a duplicate id fails the batch");
        assert_eq!(
            ids().await,
            ["a", "b", "c", "g"],
            "the batch's first insert is undone"
        );

        // Every pooled connection still runs ordinary transactions that commit.
        for i in 0..10 {
            let tx = store.db.begin().await.unwrap();
            revoked_token::Entity::insert(row(&format!("z{i}")))
                .exec(&tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        assert_eq!(ids().await.len(), 14);
    }
}

//! Background jobs queued in the database (`jobs`), so that any instance may run them and a
//! restart loses none. A job is a kind and an opaque payload; `services::jobs` says what they
//! mean. A worker takes a job with one statement that leases it (`claimed_until`), so two
//! workers, on one instance or many, never run the same job at once; a job whose worker died
//! is taken again once its lease has run out.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::entities::job;
use super::{Store, StoreError};
use crate::domain::UnixTime;

/// A job taken by a worker.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    /// How many times it was taken, this time included.
    pub attempts: u32,
}

impl Store {
    /// Queues a job to run from `run_at` on.
    pub async fn enqueue_job(
        &self,
        kind: &str,
        payload: &str,
        run_at: UnixTime,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        job::ActiveModel {
            kind: Set(kind.to_owned()),
            payload: Set(payload.to_owned()),
            run_at: Set(run_at.secs()),
            attempts: Set(0),
            claimed_until: Set(None),
            created_at: Set(now.secs()),
            ..Default::default()
        }
        .insert(self.conn())
        .await?;
        Ok(())
    }

    /// Takes the oldest due job and leases it until `now + lease_secs`, in one statement:
    ///
    /// ```sql
    /// UPDATE jobs SET claimed_until = :until, attempts = attempts + 1
    /// WHERE id IN (SELECT id FROM jobs WHERE <due> ORDER BY id LIMIT 1) AND <due>
    /// RETURNING id, kind, payload, attempts
    /// ```
    /// where `<due>` is `run_at <= :now AND (claimed_until IS NULL OR claimed_until <= :now)`.
    /// The outer condition is checked again against the row as it is once its lock is held, so
    /// of two workers that picked the same job only one takes it (the other gets `None` and
    /// looks again). On PostgreSQL the inner select is `FOR UPDATE SKIP LOCKED`.
    pub async fn claim_job(
        &self,
        now: UnixTime,
        lease_secs: i64,
    ) -> Result<Option<JobRecord>, StoreError> {
        use sea_orm::ConnectionTrait;
        use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
        let due = || {
            Expr::col(job::Column::RunAt).lte(now.secs()).and(
                Expr::col(job::Column::ClaimedUntil)
                    .is_null()
                    .or(Expr::col(job::Column::ClaimedUntil).lte(now.secs())),
            )
        };
        let mut oldest = Query::select()
            .column(job::Column::Id)
            .from(job::Entity)
            .and_where(due())
            .order_by(job::Column::Id, Order::Asc)
            .limit(1)
            .to_owned();
        // PostgreSQL: a job another worker is taking right now is skipped, not waited for, so
        // workers on many instances take different jobs at once. (SQLite has one writer at a
        // time and no row locks: the outer condition alone decides.)
        if self.conn().get_database_backend() == sea_orm::DbBackend::Postgres {
            oldest.lock_with_behavior(
                sea_orm::sea_query::LockType::Update,
                sea_orm::sea_query::LockBehavior::SkipLocked,
            );
        }
        let stmt = Query::update()
            .table(job::Entity)
            .value(job::Column::ClaimedUntil, now.plus(lease_secs).secs())
            .value(
                job::Column::Attempts,
                Expr::col(job::Column::Attempts).add(1),
            )
            .and_where(Expr::col(job::Column::Id).in_subquery(oldest))
            .and_where(due())
            .returning(Query::returning().columns([
                job::Column::Id,
                job::Column::Kind,
                job::Column::Payload,
                job::Column::Attempts,
            ]))
            .to_owned();
        let _w = self.write_gate().await;
        let stmt = self.conn().get_database_backend().build(&stmt);
        let Some(row) = self.conn().query_one_raw(stmt).await? else {
            return Ok(None);
        };
        let attempts: i32 = row.try_get("", "attempts")?;
        Ok(Some(JobRecord {
            id: row.try_get("", "id")?,
            kind: row.try_get("", "kind")?,
            payload: row.try_get("", "payload")?,
            attempts: u32::try_from(attempts).unwrap_or(0),
        }))
    }

    /// Removes a job that is done (or given up).
    pub async fn finish_job(&self, id: i64) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        job::Entity::delete_by_id(id).exec(self.conn()).await?;
        Ok(())
    }

    /// Releases a job that failed, to run again from `run_at` on.
    pub async fn retry_job(&self, id: i64, run_at: UnixTime) -> Result<(), StoreError> {
        use sea_orm::sea_query::Expr;
        let _w = self.write_gate().await;
        job::Entity::update_many()
            .col_expr(job::Column::RunAt, Expr::value(run_at.secs()))
            .col_expr(job::Column::ClaimedUntil, Expr::value(Option::<i64>::None))
            .filter(job::Column::Id.eq(id))
            .exec(self.conn())
            .await?;
        Ok(())
    }
}

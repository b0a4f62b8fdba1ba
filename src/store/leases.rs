//! Leases: which instance runs a piece of background work until when. Background work that
//! must run once across instances (key rotation, housekeeping) takes its lease before each
//! pass; whoever holds an unexpired lease runs, the others skip. A lease is taken by one
//! conditional statement, so of instances racing for it exactly one wins; an instance that
//! dies loses its lease when it expires.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::entities::lease;
use super::{Store, StoreError};
use crate::domain::UnixTime;

impl Store {
    /// Takes (or renews) the lease `name` for `holder` until `until`; `true` when `holder`
    /// holds it now. Two statements, each deciding alone:
    ///
    /// ```sql
    /// UPDATE leases SET holder = :holder, expires_at = :until
    ///   WHERE name = :name AND (expires_at <= :now OR holder = :holder);
    /// -- no row changed: nobody has held it yet, or another holder has it
    /// INSERT INTO leases (name, holder, expires_at) VALUES (...) ON CONFLICT (name) DO NOTHING;
    /// ```
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let updated = lease::Entity::update_many()
            .col_expr(lease::Column::Holder, Expr::value(holder))
            .col_expr(lease::Column::ExpiresAt, Expr::value(until.secs()))
            .filter(lease::Column::Name.eq(name))
            .filter(
                Expr::col(lease::Column::ExpiresAt)
                    .lte(now.secs())
                    .or(Expr::col(lease::Column::Holder).eq(holder)),
            )
            .exec(self.conn())
            .await?;
        if updated.rows_affected == 1 {
            return Ok(true);
        }
        let inserted = lease::Entity::insert(lease::ActiveModel {
            name: Set(name.to_owned()),
            holder: Set(holder.to_owned()),
            expires_at: Set(until.secs()),
        })
        .on_conflict(
            OnConflict::column(lease::Column::Name)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(self.conn())
        .await?;
        Ok(inserted == 1)
    }

    /// Gives the lease back (at shutdown), so another instance may take it at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        lease::Entity::delete_many()
            .filter(lease::Column::Name.eq(name))
            .filter(lease::Column::Holder.eq(holder))
            .exec(self.conn())
            .await?;
        Ok(())
    }
}

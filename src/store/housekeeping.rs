//! Purging what has expired, in bounded batches: each statement deletes at most `batch` rows
//! chosen through an index on the expiry column, so no statement holds a long lock and no
//! request path ever scans a table.

use sea_orm::{ConnectionTrait, Statement, Value};

use super::{Store, StoreError};
use crate::domain::UnixTime;

/// (table, primary key, expiry column) of everything that expires.
const EXPIRING: &[(&str, &str, &str)] = &[
    ("authorization_codes", "code_hash", "expires_at"),
    ("redeemed_codes", "code_hash", "expires_at"),
    ("refresh_tokens", "token_hash", "expires_at"),
    ("revoked_tokens", "id", "expires_at"),
    ("sessions", "id_hash", "expires_at"),
    ("email_tokens", "token_hash", "expires_at"),
    ("pending_sign_ins", "id_hash", "expires_at"),
    ("webauthn_ceremonies", "id_hash", "expires_at"),
    ("upstream_flows", "id_hash", "expires_at"),
    ("upstream_link_requests", "id_hash", "expires_at"),
    ("audit_events", "id", "at"),
];

impl Store {
    /// Deletes up to `batch` rows of `table` whose expiry column is before `before`; returns
    /// how many were deleted.
    async fn purge_batch(
        &self,
        table: &str,
        pk: &str,
        column: &str,
        before: UnixTime,
        batch: u64,
    ) -> Result<u64, StoreError> {
        let _w = self.write_gate().await;
        let backend = self.conn().get_database_backend();
        let sql = match backend {
            sea_orm::DbBackend::Postgres => format!(
                "DELETE FROM {table} WHERE {pk} IN (SELECT {pk} FROM {table} WHERE {column} < $1 ORDER BY {column} LIMIT $2)"
            ),
            _ => format!(
                "DELETE FROM {table} WHERE {pk} IN (SELECT {pk} FROM {table} WHERE {column} < ? ORDER BY {column} LIMIT ?)"
            ),
        };
        let stmt = Statement::from_sql_and_values(
            backend,
            sql,
            [Value::from(before.secs()), Value::from(batch as i64)],
        );
        Ok(self.conn().execute_raw(stmt).await?.rows_affected())
    }

    /// One housekeeping pass: every expired row, and audit events older than
    /// `audit_before`, deleted `batch` rows at a time with a pause between batches.
    pub async fn purge_expired(
        &self,
        now: UnixTime,
        audit_before: UnixTime,
        batch: u64,
        pause: std::time::Duration,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        for (table, pk, column) in EXPIRING {
            let before = if *table == "audit_events" {
                audit_before
            } else {
                now
            };
            loop {
                let n = self.purge_batch(table, pk, column, before, batch).await?;
                total += n;
                if n < batch {
                    break;
                }
                tokio::time::sleep(pause).await;
            }
        }
        Ok(total)
    }
}

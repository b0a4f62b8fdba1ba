//! Signing keys: next (published, signs from `activate_at`), active (signs), retiring (still
//! published until every token it signed has expired), retired (kept for the record, no longer
//! published).
//!
//! `private_der` holds the PKCS#8 DER key, or that key sealed under the key-encryption key
//! (`crypto::seal`); this module stores bytes and does not tell them apart.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entities::signing_key;
use super::{Store, StoreError};
pub use crate::domain::KeyRecord;
use crate::domain::UnixTime;

pub const NEXT: &str = "next";
pub const ACTIVE: &str = "active";
pub const RETIRING: &str = "retiring";
pub const RETIRED: &str = "retired";

fn to_record(m: signing_key::Model) -> KeyRecord {
    KeyRecord {
        kid: m.kid,
        alg: m.alg,
        private_der: m.private_der,
        public_jwk: m.public_jwk,
        state: m.state,
        created_at: UnixTime::from_secs(m.created_at),
        updated_at: UnixTime::from_secs(m.updated_at),
        retire_at: m.retire_at.map(UnixTime::from_secs),
        activate_at: UnixTime::from_secs(m.activate_at.unwrap_or(m.created_at)),
    }
}

/// What a new key brings.
pub struct NewKey {
    pub kid: String,
    pub private_der: Vec<u8>,
    pub public_jwk: String,
}

fn new_row(
    key: NewKey,
    state: &str,
    activate_at: UnixTime,
    now: UnixTime,
) -> signing_key::ActiveModel {
    signing_key::ActiveModel {
        kid: Set(key.kid),
        alg: Set("RS256".into()),
        private_der: Set(key.private_der),
        public_jwk: Set(key.public_jwk),
        state: Set(state.into()),
        created_at: Set(now.secs()),
        updated_at: Set(now.secs()),
        retire_at: Set(None),
        activate_at: Set(Some(activate_at.secs())),
    }
}

impl Store {
    /// Every key, newest first.
    pub async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(signing_key::Entity::find()
            .order_by_desc(signing_key::Column::CreatedAt)
            .order_by_desc(signing_key::Column::Kid)
            .all(self.conn())
            .await?
            .into_iter()
            .map(to_record)
            .collect())
    }

    /// Next, active and retiring keys, newest first: what signs and what is published.
    pub async fn published_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(signing_key::Entity::find()
            .filter(signing_key::Column::State.is_in([NEXT, ACTIVE, RETIRING]))
            .order_by_desc(signing_key::Column::CreatedAt)
            .order_by_desc(signing_key::Column::Kid)
            .all(self.conn())
            .await?
            .into_iter()
            .map(to_record)
            .collect())
    }

    /// A short fingerprint of the published key set (kids, states, times), cheap to poll so that a
    /// running server notices a rotation made by the CLI or another instance.
    pub async fn keys_fingerprint(&self) -> Result<String, StoreError> {
        let rows: Vec<(String, String, i64)> = signing_key::Entity::find()
            .select_only()
            .column(signing_key::Column::Kid)
            .column(signing_key::Column::State)
            .column(signing_key::Column::UpdatedAt)
            .filter(signing_key::Column::State.is_in([NEXT, ACTIVE, RETIRING]))
            .order_by_asc(signing_key::Column::Kid)
            .into_tuple()
            .all(self.conn())
            .await?;
        Ok(rows
            .iter()
            .map(|(k, s, u)| format!("{k}:{s}:{u}"))
            .collect::<Vec<_>>()
            .join(","))
    }

    /// Stores a new key that signs from `activate_at`: `active` when that is now (the first
    /// key, which nobody can have cached yet), `next` when it is later.
    pub async fn insert_key(
        &self,
        key: NewKey,
        activate_at: UnixTime,
        now: UnixTime,
    ) -> Result<KeyRecord, StoreError> {
        let _w = self.write_gate().await;
        let m = new_row(
            key,
            if activate_at > now { NEXT } else { ACTIVE },
            activate_at,
            now,
        );
        Ok(to_record(
            m.insert(self.conn())
                .await
                .map_err(StoreError::from_insert)?,
        ))
    }

    /// Makes `key` the active key at once; the previously active (and next) keys become
    /// retiring until `retire_at`. For an emergency: a relying party that cached the JWK Set
    /// before may refuse the new key's tokens until it fetches the set again.
    pub async fn rotate_keys(
        &self,
        key: NewKey,
        now: UnixTime,
        retire_at: UnixTime,
    ) -> Result<KeyRecord, StoreError> {
        let _w = self.write_gate().await;
        let tx = self.conn().begin().await?;
        signing_key::Entity::update_many()
            .col_expr(
                signing_key::Column::State,
                sea_orm::sea_query::Expr::value(RETIRING),
            )
            .col_expr(
                signing_key::Column::RetireAt,
                sea_orm::sea_query::Expr::value(retire_at.secs()),
            )
            .col_expr(
                signing_key::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(now.secs()),
            )
            .filter(signing_key::Column::State.is_in([ACTIVE, NEXT]))
            .exec(&tx)
            .await?;
        let m = new_row(key, ACTIVE, now, now);
        let rec = to_record(m.insert(&tx).await.map_err(StoreError::from_insert)?);
        tx.commit().await?;
        Ok(rec)
    }

    /// Retiring keys whose tokens have all expired leave the JWK Set.
    pub async fn retire_expired_keys(&self, now: UnixTime) -> Result<u64, StoreError> {
        let _w = self.write_gate().await;
        let r = signing_key::Entity::update_many()
            .col_expr(
                signing_key::Column::State,
                sea_orm::sea_query::Expr::value(RETIRED),
            )
            .col_expr(
                signing_key::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(now.secs()),
            )
            .filter(signing_key::Column::State.eq(RETIRING))
            .filter(signing_key::Column::RetireAt.lte(now.secs()))
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected)
    }

    /// The key due to sign now takes over: of the next and active keys whose `activate_at` has
    /// come, the latest becomes (or stays) active, and the others become retiring until
    /// `retire_after` seconds after it took over. One transaction; returns the active kid.
    pub async fn promote_keys(
        &self,
        now: UnixTime,
        retire_after: i64,
    ) -> Result<Option<String>, StoreError> {
        use sea_orm::sea_query::Expr;
        let _w = self.write_gate().await;
        let tx = self.conn().begin().await?;
        let due: Vec<KeyRecord> = signing_key::Entity::find()
            .filter(signing_key::Column::State.is_in([NEXT, ACTIVE]))
            .all(&tx)
            .await?
            .into_iter()
            .map(to_record)
            .filter(|k| k.state == ACTIVE || k.activate_at <= now)
            .collect();
        let Some(signer) = due
            .iter()
            .max_by(|a, b| (a.activate_at, &a.kid).cmp(&(b.activate_at, &b.kid)))
            .cloned()
        else {
            tx.commit().await?;
            return Ok(None);
        };
        if signer.state != ACTIVE {
            signing_key::Entity::update_many()
                .col_expr(signing_key::Column::State, Expr::value(ACTIVE))
                .col_expr(signing_key::Column::UpdatedAt, Expr::value(now.secs()))
                .filter(signing_key::Column::Kid.eq(signer.kid.as_str()))
                .exec(&tx)
                .await?;
        }
        let superseded: Vec<String> = due
            .iter()
            .filter(|k| k.kid != signer.kid)
            .map(|k| k.kid.clone())
            .collect();
        if !superseded.is_empty() {
            signing_key::Entity::update_many()
                .col_expr(signing_key::Column::State, Expr::value(RETIRING))
                .col_expr(
                    signing_key::Column::RetireAt,
                    Expr::value(signer.activate_at.plus(retire_after).secs()),
                )
                .col_expr(signing_key::Column::UpdatedAt, Expr::value(now.secs()))
                .filter(signing_key::Column::Kid.is_in(superseded))
                .exec(&tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(signer.kid))
    }

    /// Replaces the stored private keys named (kid → new bytes) in one transaction: sealing
    /// plaintext keys, or moving them to another key-encryption key.
    pub async fn replace_private_keys(
        &self,
        keys: Vec<(String, Vec<u8>)>,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        use sea_orm::sea_query::Expr;
        let _w = self.write_gate().await;
        let tx = self.conn().begin().await?;
        for (kid, bytes) in keys {
            signing_key::Entity::update_many()
                .col_expr(signing_key::Column::PrivateDer, Expr::value(bytes))
                .col_expr(signing_key::Column::UpdatedAt, Expr::value(now.secs()))
                .filter(signing_key::Column::Kid.eq(kid))
                .exec(&tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

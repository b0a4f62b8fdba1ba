//! Signing keys: active (signs), retiring (still published until every token it signed has
//! expired), retired (kept for the record, no longer published).

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entities::signing_key;
use super::{Store, StoreError};
use crate::domain::UnixTime;

pub const ACTIVE: &str = "active";
pub const RETIRING: &str = "retiring";
pub const RETIRED: &str = "retired";

/// A stored signing key. `Debug` prints no key material.
#[derive(Clone)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: String,
    pub private_der: Vec<u8>,
    pub public_jwk: String,
    pub state: String,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub retire_at: Option<UnixTime>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRecord(kid={}, state={})", self.kid, self.state)
    }
}

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
    }
}

/// What a new key brings.
pub struct NewKey {
    pub kid: String,
    pub private_der: Vec<u8>,
    pub public_jwk: String,
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

    /// Active and retiring keys, newest first: what signs and what is published.
    pub async fn published_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(signing_key::Entity::find()
            .filter(signing_key::Column::State.is_in([ACTIVE, RETIRING]))
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
            .filter(signing_key::Column::State.is_in([ACTIVE, RETIRING]))
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

    pub async fn insert_active_key(
        &self,
        key: NewKey,
        now: UnixTime,
    ) -> Result<KeyRecord, StoreError> {
        let _w = self.write_gate().await;
        let m = signing_key::ActiveModel {
            kid: Set(key.kid),
            alg: Set("RS256".into()),
            private_der: Set(key.private_der),
            public_jwk: Set(key.public_jwk),
            state: Set(ACTIVE.into()),
            created_at: Set(now.secs()),
            updated_at: Set(now.secs()),
            retire_at: Set(None),
        };
        Ok(to_record(
            m.insert(self.conn())
                .await
                .map_err(StoreError::from_insert)?,
        ))
    }

    /// Makes `key` the active key; the previously active keys become retiring until `retire_at`.
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
            .filter(signing_key::Column::State.eq(ACTIVE))
            .exec(&tx)
            .await?;
        let m = signing_key::ActiveModel {
            kid: Set(key.kid),
            alg: Set("RS256".into()),
            private_der: Set(key.private_der),
            public_jwk: Set(key.public_jwk),
            state: Set(ACTIVE.into()),
            created_at: Set(now.secs()),
            updated_at: Set(now.secs()),
            retire_at: Set(None),
        };
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
}

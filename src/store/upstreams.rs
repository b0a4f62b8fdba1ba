//! Upstream identity providers as stored (`upstream_providers`). The client secret is stored
//! as the use case hands it over (sealed, or marked plain) and read back only by
//! [`Store::upstream_secret`].

use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, QueryOrder};

use super::entities::upstream_provider;
use super::{Store, StoreError};
use crate::domain::UnixTime;
use crate::domain::upstream::{Upstream, UpstreamKind, ValidUpstream};

/// The stored form of a secret that is sealed: this prefix, then base64.
pub const SEALED_PREFIX: &str = "sealed:";
/// The stored form of a secret kept as it is (no key-encryption key): this prefix, then it.
pub const PLAIN_PREFIX: &str = "plain:";

fn upstream(m: upstream_provider::Model) -> Result<Upstream, StoreError> {
    let kind = UpstreamKind::parse(&m.kind)
        .ok_or_else(|| StoreError::Corrupt(format!("upstream {} has kind {:?}", m.id, m.kind)))?;
    Ok(Upstream {
        secret_sealed: m.client_secret.starts_with(SEALED_PREFIX),
        id: m.id,
        kind,
        name: m.name,
        issuer: m.issuer,
        client_id: m.client_id,
        scope: m.scope,
        jit: m.jit,
        trust_email: m.trust_email,
        created_at: UnixTime::from_secs(m.created_at),
    })
}

impl Store {
    /// Stores a new provider; `stored_secret` is the secret's stored form. `Conflict` when the
    /// id is taken.
    pub async fn insert_upstream(
        &self,
        u: &ValidUpstream,
        stored_secret: String,
        now: UnixTime,
    ) -> Result<Upstream, StoreError> {
        let _w = self.write_gate().await;
        let m = upstream_provider::ActiveModel {
            id: Set(u.id.clone()),
            kind: Set(u.kind.as_str().to_owned()),
            name: Set(u.name.clone()),
            issuer: Set(u.issuer.clone()),
            client_id: Set(u.client_id.clone()),
            client_secret: Set(stored_secret),
            scope: Set(u.scope.clone()),
            jit: Set(u.jit),
            trust_email: Set(u.trust_email),
            created_at: Set(now.secs()),
            updated_at: Set(now.secs()),
        }
        .insert(self.conn())
        .await
        .map_err(StoreError::from_insert)?;
        upstream(m)
    }

    /// Every provider, by id.
    pub async fn upstreams(&self) -> Result<Vec<Upstream>, StoreError> {
        upstream_provider::Entity::find()
            .order_by_asc(upstream_provider::Column::Id)
            .all(self.conn())
            .await?
            .into_iter()
            .map(upstream)
            .collect()
    }

    pub async fn upstream(&self, id: &str) -> Result<Option<Upstream>, StoreError> {
        upstream_provider::Entity::find_by_id(id.to_owned())
            .one(self.conn())
            .await?
            .map(upstream)
            .transpose()
    }

    /// The stored form of a provider's client secret (for the sign-in to open).
    pub async fn upstream_secret(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(upstream_provider::Entity::find_by_id(id.to_owned())
            .one(self.conn())
            .await?
            .map(|m| m.client_secret))
    }

    /// Deletes a provider; `false` when there was none.
    pub async fn delete_upstream(&self, id: &str) -> Result<bool, StoreError> {
        let _w = self.write_gate().await;
        let r = upstream_provider::Entity::delete_by_id(id.to_owned())
            .exec(self.conn())
            .await?;
        Ok(r.rows_affected == 1)
    }
}

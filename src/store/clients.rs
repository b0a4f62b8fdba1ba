//! Registered clients.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, QueryOrder};

use super::entities::client;
use super::{Store, StoreError, split_list};
use crate::domain::{AuthMethod, Client, ClientId, GrantType, NewClient, RedirectUri, ScopeSet};

fn to_domain(m: client::Model) -> Result<Client, StoreError> {
    let uris = |s: &str| -> Result<Vec<RedirectUri>, StoreError> {
        let v: Vec<String> = serde_json::from_str(s)
            .map_err(|e| StoreError::Corrupt(format!("client {}: {e}", m.id)))?;
        Ok(v.into_iter().map(RedirectUri::from_stored).collect())
    };
    Ok(Client {
        redirect_uris: uris(&m.redirect_uris)?,
        post_logout_redirect_uris: uris(&m.post_logout_redirect_uris)?,
        grant_types: split_list(&m.grant_types)
            .filter_map(|g| GrantType::parse(g).ok())
            .collect(),
        scopes: ScopeSet::parse(&m.scopes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        auth_method: AuthMethod::parse(&m.auth_method)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        id: ClientId::from_stored(m.id),
        name: m.name,
        secret_hash: m.secret_hash,
        public: m.public,
        skip_consent: m.skip_consent,
        introspect_any: m.introspect_any,
        created_at: m.created_at,
    })
}

fn uris_json(v: &[RedirectUri]) -> String {
    serde_json::Value::Array(
        v.iter()
            .map(|u| serde_json::Value::String(u.as_str().to_owned()))
            .collect(),
    )
    .to_string()
}

impl Store {
    pub async fn create_client(&self, new: NewClient, now: i64) -> Result<Client, StoreError> {
        let model = client::ActiveModel {
            id: Set(new.id.as_str().to_owned()),
            secret_hash: Set(new.secret_hash),
            name: Set(new.name),
            redirect_uris: Set(uris_json(&new.redirect_uris)),
            post_logout_redirect_uris: Set(uris_json(&new.post_logout_redirect_uris)),
            grant_types: Set(new
                .grant_types
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(" ")),
            scopes: Set(new.scopes.to_string()),
            auth_method: Set(new.auth_method.as_str().to_owned()),
            public: Set(new.public),
            skip_consent: Set(new.skip_consent),
            introspect_any: Set(new.introspect_any),
            created_at: Set(now),
            updated_at: Set(now),
        };
        to_domain(
            model
                .insert(self.conn())
                .await
                .map_err(StoreError::from_insert)?,
        )
    }

    pub async fn client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        client::Entity::find_by_id(id.to_owned())
            .one(self.conn())
            .await?
            .map(to_domain)
            .transpose()
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        client::Entity::find()
            .order_by_asc(client::Column::CreatedAt)
            .order_by_asc(client::Column::Id)
            .all(self.conn())
            .await?
            .into_iter()
            .map(to_domain)
            .collect()
    }

    /// Deletes a client; its codes, refresh tokens and consents go with it.
    pub async fn delete_client(&self, id: &str) -> Result<(), StoreError> {
        let r = client::Entity::delete_by_id(id.to_owned())
            .exec(self.conn())
            .await?;
        if r.rows_affected == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    /// Replaces a client's metadata (not its id, secret or creation time).
    pub async fn update_client(&self, new: NewClient, now: i64) -> Result<Client, StoreError> {
        let m = client::Entity::find_by_id(new.id.as_str().to_owned())
            .one(self.conn())
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut am: client::ActiveModel = m.into();
        am.name = Set(new.name);
        am.redirect_uris = Set(uris_json(&new.redirect_uris));
        am.post_logout_redirect_uris = Set(uris_json(&new.post_logout_redirect_uris));
        am.grant_types = Set(new
            .grant_types
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .join(" "));
        am.scopes = Set(new.scopes.to_string());
        am.auth_method = Set(new.auth_method.as_str().to_owned());
        am.public = Set(new.public);
        am.skip_consent = Set(new.skip_consent);
        am.introspect_any = Set(new.introspect_any);
        am.updated_at = Set(now);
        to_domain(am.update(self.conn()).await?)
    }

    /// Replaces a confidential client's secret hash.
    pub async fn set_client_secret_hash(
        &self,
        id: &str,
        secret_hash: String,
        now: i64,
    ) -> Result<(), StoreError> {
        let m = client::Entity::find_by_id(id.to_owned())
            .one(self.conn())
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut am: client::ActiveModel = m.into();
        am.secret_hash = Set(Some(secret_hash));
        am.updated_at = Set(now);
        am.update(self.conn()).await?;
        Ok(())
    }
}

//! Registered clients.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::{Map, Value};

use super::entities::client;
use super::{Store, StoreError, split_list};
use crate::domain::{
    ApplicationType, AuthMethod, Client, ClientId, ClientInfo, GrantType, NewClient, RedirectUri,
    ScopeSet, UnixTime,
};

/// The `metadata` column: a JSON object of the informational fields that are set.
fn info_json(info: &ClientInfo) -> String {
    let mut obj = Map::new();
    for (key, value) in info.strings() {
        if let Some(v) = value {
            obj.insert(key.to_owned(), Value::String(v.to_owned()));
        }
    }
    if !info.contacts.is_empty() {
        obj.insert(
            "contacts".to_owned(),
            Value::Array(info.contacts.iter().cloned().map(Value::String).collect()),
        );
    }
    Value::Object(obj).to_string()
}

fn info_from_json(id: &str, raw: &str) -> Result<ClientInfo, StoreError> {
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| StoreError::Corrupt(format!("client {id} metadata: {e}")))?;
    let s = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(ClientInfo {
        client_uri: s("client_uri"),
        logo_uri: s("logo_uri"),
        policy_uri: s("policy_uri"),
        tos_uri: s("tos_uri"),
        contacts: v
            .get("contacts")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        software_id: s("software_id"),
        software_version: s("software_version"),
    })
}

fn to_domain(m: client::Model) -> Result<Client, StoreError> {
    let uris = |s: &str| -> Result<Vec<RedirectUri>, StoreError> {
        let v: Vec<String> = serde_json::from_str(s)
            .map_err(|e| StoreError::Corrupt(format!("client {}: {e}", m.id)))?;
        Ok(v.into_iter().map(RedirectUri::from_stored).collect())
    };
    Ok(Client {
        application_type: ApplicationType::parse(&m.application_type)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        info: info_from_json(&m.id, &m.metadata)?,
        dynamically_registered: m.registration_token_hash.is_some(),
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
        require_mfa: m.require_mfa,
        created_at: UnixTime::from_secs(m.created_at),
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

/// Every column a client's metadata sets (all but the id, the registration token and times).
fn metadata_columns(new: &NewClient) -> client::ActiveModel {
    client::ActiveModel {
        secret_hash: Set(new.secret_hash.clone()),
        name: Set(new.name.clone()),
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
        require_mfa: Set(new.require_mfa),
        application_type: Set(new.application_type.as_str().to_owned()),
        metadata: Set(info_json(&new.info)),
        ..Default::default()
    }
}

impl Store {
    pub async fn create_client(&self, new: NewClient, now: UnixTime) -> Result<Client, StoreError> {
        let _w = self.write_gate().await;
        let mut model = metadata_columns(&new);
        model.id = Set(new.id.as_str().to_owned());
        model.registration_token_hash = Set(new.registration_token_hash);
        model.created_at = Set(now.secs());
        model.updated_at = Set(now.secs());
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

    /// A client, and whether the access token `standing` describes has ended
    /// ([`super::standing::TokenStanding`]), in one query: introspection needs both, and each
    /// statement is a hand-off to a connection's thread (SQLite) or a round trip (PostgreSQL).
    /// `None` when there is no such client.
    pub async fn client_and_token_ended(
        &self,
        id: &str,
        standing: super::standing::TokenStanding<'_>,
    ) -> Result<Option<(Client, bool)>, StoreError> {
        let select = client::Entity::find_by_id(id.to_owned());
        match self.find_with_standing(select, standing).await? {
            Some((m, ended)) => Ok(Some((to_domain(m)?, ended))),
            None => Ok(None),
        }
    }

    /// The client whose registration access token (RFC 7592 §1.2) has this hash.
    pub async fn client_by_registration_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<Client>, StoreError> {
        client::Entity::find()
            .filter(client::Column::RegistrationTokenHash.eq(token_hash))
            .one(self.conn())
            .await?
            .map(to_domain)
            .transpose()
    }

    /// Replaces a client's metadata (RFC 7592 §2.2); its id, registration access token and
    /// creation time stay. `NotFound` when the client is gone.
    pub async fn update_client(&self, new: NewClient, now: UnixTime) -> Result<Client, StoreError> {
        let _w = self.write_gate().await;
        let mut model = metadata_columns(&new);
        model.id = sea_orm::ActiveValue::Unchanged(new.id.as_str().to_owned());
        model.updated_at = Set(now.secs());
        match model.update(self.conn()).await {
            Ok(m) => to_domain(m),
            Err(DbErr::RecordNotUpdated) => Err(StoreError::NotFound),
            Err(e) => Err(e.into()),
        }
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
        let _w = self.write_gate().await;
        let r = client::Entity::delete_by_id(id.to_owned())
            .exec(self.conn())
            .await?;
        if r.rows_affected == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    /// Replaces a confidential client's secret hash.
    pub async fn set_client_secret_hash(
        &self,
        id: &str,
        secret_hash: String,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let _w = self.write_gate().await;
        let m = client::Entity::find_by_id(id.to_owned())
            .one(self.conn())
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut am: client::ActiveModel = m.into();
        am.secret_hash = Set(Some(secret_hash));
        am.updated_at = Set(now.secs());
        am.update(self.conn()).await?;
        Ok(())
    }
}

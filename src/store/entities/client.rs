//! Row of `clients`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub secret_hash: Option<String>,
    pub name: String,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub grant_types: String,
    pub scopes: String,
    pub auth_method: String,
    pub public: bool,
    pub skip_consent: bool,
    pub introspect_any: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Hex SHA-256 of the registration access token (RFC 7592); null for CLI-made clients.
    pub registration_token_hash: Option<String>,
    /// `web` or `native` (OpenID Connect Dynamic Client Registration 1.0 §2).
    pub application_type: String,
    /// JSON object of informational metadata (RFC 7591 §2).
    pub metadata: String,
    /// Sign-ins to this client must reach `urn:castellan:acr:mfa`.
    pub require_mfa: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

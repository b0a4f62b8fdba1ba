//! Row of `sessions`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id_hash: String,
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub amr: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
    /// The authorization request's ticket this session's login was made for, until a code
    /// is issued for it (`oauth::authorize`).
    pub login_ticket: Option<String>,
    /// The upstream provider the session was signed in through (null: a local method).
    pub upstream: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

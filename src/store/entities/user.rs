//! Row of `users`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub email: String,
    pub email_lower: String,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub roles: String,
    pub disabled: bool,
    pub failed_logins: i32,
    pub failed_window_start: Option<i64>,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Access tokens issued before this time (Unix seconds) have ended.
    pub tokens_valid_after: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! `users.tokens_valid_after`: access tokens issued to the user before this time (Unix
//! seconds) have ended. Set when the user is signed out everywhere (password change or reset,
//! disabling, "sign out everywhere", an administrator ending the sessions), so that the
//! self-contained access tokens issued before stop working at introspection, userinfo and the
//! admin API, as the refresh tokens and sessions do.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("users")
                .add_column(big_integer_null("tokens_valid_after"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("users")
                .drop_column("tokens_valid_after")
                .to_owned(),
        )
        .await
    }
}

//! Upstream identity providers (issue 18, first slice): `upstream_providers`, one row per
//! provider people may sign in with (`oidc`, `github`, `google`), stored here so every instance
//! sees the same ones. `client_secret` is sealed under the key-encryption key when one is
//! configured (`sealed:` + base64), else kept as `plain:` + the secret.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("upstream_providers")
                .col(string("id").primary_key())
                .col(string("kind"))
                .col(string("name"))
                .col(string_null("issuer"))
                .col(string("client_id"))
                .col(text("client_secret"))
                .col(string("scope"))
                .col(boolean("jit").default(true))
                .col(boolean("trust_email").default(false))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("upstream_providers").to_owned())
            .await
    }
}

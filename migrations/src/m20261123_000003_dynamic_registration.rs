//! Dynamic client registration (RFC 7591, RFC 7592): what `clients` needs beyond the CLI's
//! columns.
//!
//! - `registration_token_hash`: hex SHA-256 of the client's registration access token (RFC 7592
//!   §1.2), null for clients an administrator created; unique, looked up by the configuration
//!   endpoint.
//! - `application_type`: `web` or `native` (OpenID Connect Dynamic Client Registration 1.0
//!   §2); every existing client is `web`.
//! - `metadata`: a JSON object of the informational metadata (RFC 7591 §2: `client_uri`,
//!   `logo_uri`, `contacts`, ...), `{}` when there is none.
//!
//! SQLite can add only one column per `ALTER TABLE`, so each column is its own statement.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("clients")
                .add_column(string_null("registration_token_hash"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("clients")
                .add_column(string("application_type").default("web"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("clients")
                .add_column(text("metadata").default("{}"))
                .to_owned(),
        )
        .await?;
        // Unique, and several NULLs are allowed on both SQLite and PostgreSQL.
        m.create_index(
            Index::create()
                .name("idx_clients_registration_token_hash")
                .table("clients")
                .col("registration_token_hash")
                .unique()
                .to_owned(),
        )
        .await
    }
}

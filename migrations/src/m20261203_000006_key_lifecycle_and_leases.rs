//! Issue 16 (many instances):
//!
//! - `signing_keys.activate_at`: when a key starts signing. A new key is published (state
//!   `next`) at least `keys.publish_ahead_secs` before it signs, so that relying parties'
//!   caches of the JWK Set hold it by then. NULL for the keys made before: they signed from
//!   `created_at`. The private key column may now hold a value sealed under the
//!   key-encryption key (`crypto::seal`) instead of the plain PKCS#8 DER.
//! - `leases`: which instance runs a piece of background work (key rotation, housekeeping)
//!   until when; taken by one conditional statement, so one instance runs each at a time.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("signing_keys")
                .add_column(big_integer_null("activate_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("leases")
                .col(string("name").primary_key())
                .col(string("holder"))
                .col(big_integer("expires_at"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("leases").to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table("signing_keys")
                .drop_column("activate_at")
                .to_owned(),
        )
        .await
    }
}

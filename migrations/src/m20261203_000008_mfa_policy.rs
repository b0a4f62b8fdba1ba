//! The second-factor policy (issue 17): `clients.require_mfa`, a client whose sign-ins must
//! reach `urn:castellan:acr:mfa` (`castellan client create --require-mfa`, the admin API and
//! pages). The roles that require a second factor are configuration (`mfa.required_for_roles`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("clients")
                .add_column(boolean("require_mfa").default(false))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("clients")
                .drop_column("require_mfa")
                .to_owned(),
        )
        .await
    }
}

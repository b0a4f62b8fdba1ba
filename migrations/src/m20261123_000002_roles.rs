//! Roles an administrator can assign: the built-in `admin` and `user`, plus custom ones.
//! Users keep their role names in `users.roles` (space-separated, read with the user on every
//! token); this table is the catalogue those names must come from.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("roles")
                .col(string("name").primary_key())
                .col(string("description").default(""))
                .col(boolean("builtin").default(false))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        let mut insert = Query::insert();
        insert
            .into_table("roles")
            .columns(["name", "description", "builtin", "created_at"]);
        for (name, description) in [
            (
                "admin",
                "Administers Castellan: users, clients, roles, keys, audit log",
            ),
            ("user", "Every account has it"),
        ] {
            insert
                .values([name.into(), description.into(), true.into(), 0i64.into()])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        m.exec_stmt(insert.to_owned()).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("roles").to_owned()).await
    }
}

//! Second factors (issue 17, first slice: TOTP and recovery codes):
//!
//! - `totp_factors`: one per user, the seed (sealed under the key-encryption key when one is
//!   configured), `confirmed_at` (NULL while enrolment waits for a first right code) and
//!   `last_step`, the newest RFC 6238 time step accepted: a code counts only for a greater step,
//!   taken in one conditional UPDATE, so a replay fails on every instance;
//! - `recovery_codes`: the SHA-256 of each single-use code, deleted when used;
//! - `pending_sign_ins`: a right password waiting for its second factor, for five minutes,
//!   looked up by the hash of the browser's cookie and deleted when it is used.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk(from_table: &'static str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from_table}_user_id"))
        .from(from_table, "user_id")
        .to("users", "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("totp_factors")
                .col(string("user_id").primary_key())
                .col(text("secret"))
                .col(big_integer_null("confirmed_at"))
                .col(big_integer("last_step").default(0))
                .col(big_integer("created_at"))
                .foreign_key(&mut fk("totp_factors"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("recovery_codes")
                .col(string("code_hash").primary_key())
                .col(string("user_id"))
                .col(big_integer("created_at"))
                .foreign_key(&mut fk("recovery_codes"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_recovery_codes_user_id")
                .table("recovery_codes")
                .col("user_id")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("pending_sign_ins")
                .col(string("id_hash").primary_key())
                .col(string("user_id"))
                .col(string_null("login_ticket"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                .foreign_key(&mut fk("pending_sign_ins"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_pending_sign_ins_expires_at")
                .table("pending_sign_ins")
                .col("expires_at")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["pending_sign_ins", "recovery_codes", "totp_factors"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}

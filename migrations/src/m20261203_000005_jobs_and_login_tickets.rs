//! Two additions from the security review (issue 14):
//!
//! - `jobs`: background work queued in the database, so that any instance may do it and a
//!   restart loses none of it. "Forgot password" and "send the link again" queue a job on the
//!   request path (the same statement for a known and an unknown address) and a worker looks the
//!   address up and mails. A job is taken by one worker at a time (`claimed_until`) and retried
//!   with a delay (`run_at`, `attempts`) when it fails.
//! - `sessions.login_ticket`: the ticket of the authorization request a login was made for. A
//!   request that demands a fresh login (`prompt=login`, `max_age`) carries a ticket through
//!   the login page; only a session created by that login holds it, so replaying the request
//!   with an older session asks for a login again.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("jobs")
                .col(big_pk_auto("id"))
                .col(string("kind"))
                .col(text("payload"))
                .col(big_integer("run_at"))
                .col(integer("attempts"))
                .col(big_integer_null("claimed_until"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_jobs_run_at")
                .table("jobs")
                .col("run_at")
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("sessions")
                .add_column(string_null("login_ticket"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("sessions")
                .drop_column("login_ticket")
                .to_owned(),
        )
        .await?;
        m.drop_table(Table::drop().table("jobs").to_owned()).await
    }
}

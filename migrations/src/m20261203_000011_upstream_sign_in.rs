//! Sign-in through upstream identity providers (issue 18):
//!
//! - `upstream_identities`: which account an upstream's subject signs in to. The key is the
//!   provider and the subject it asserts (`sub`, or GitHub's numeric user id): an email is never
//!   the key, because it can change hands at the provider. Gone with the account or the provider.
//! - `upstream_flows`: an authorization request sent to an upstream, between the redirect and
//!   its callback, for ten minutes. Looked up by the hash of `state` and taken by one DELETE, so
//!   a callback is answered once, by any instance; `binding_hash` ties it to the browser that
//!   began it (the hash of an HttpOnly cookie). Holds the PKCE verifier and the nonce.
//! - `upstream_link_requests`: an upstream identity whose email belongs to an existing account
//!   that may not be linked silently, waiting for the person to prove that account (password,
//!   then a second factor where enrolled). Found by the hash of a cookie; ten minutes.
//! - `sessions.upstream`: the provider a session was signed in through (null: a local method).
//! - `pending_sign_ins.upstream` (the first factor was this provider, not a password) and
//!   `pending_sign_ins.link` (an identity to link when the second step succeeds, as JSON).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("upstream_identities")
                .col(string("upstream_id"))
                .col(string("subject"))
                .col(string("user_id"))
                .col(string_null("email"))
                .col(big_integer("created_at"))
                .col(big_integer_null("last_used_at"))
                .primary_key(Index::create().col("upstream_id").col("subject"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_upstream_identities_user_id")
                        .from("upstream_identities", "user_id")
                        .to("users", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_upstream_identities_upstream_id")
                        .from("upstream_identities", "upstream_id")
                        .to("upstream_providers", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        // One identity per provider and account: linking a second account at the same
        // provider would make "which one signs in" ambiguous.
        m.create_index(
            Index::create()
                .name("idx_upstream_identities_user_upstream")
                .table("upstream_identities")
                .col("user_id")
                .col("upstream_id")
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("upstream_flows")
                .col(string("id_hash").primary_key())
                .col(string("upstream_id"))
                .col(string("binding_hash"))
                .col(string("nonce"))
                .col(string("pkce_verifier"))
                .col(string_null("link_user_id"))
                .col(text("return_to"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_upstream_flows_expires_at")
                .table("upstream_flows")
                .col("expires_at")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("upstream_link_requests")
                .col(string("id_hash").primary_key())
                .col(string("upstream_id"))
                .col(string("subject"))
                .col(string("user_id"))
                .col(string("email"))
                .col(text("return_to"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_upstream_link_requests_expires_at")
                .table("upstream_link_requests")
                .col("expires_at")
                .to_owned(),
        )
        .await?;
        // SQLite adds one column per ALTER TABLE.
        for (table, column) in [
            ("sessions", "upstream"),
            ("pending_sign_ins", "upstream"),
            ("pending_sign_ins", "link"),
        ] {
            m.alter_table(
                Table::alter()
                    .table(table)
                    .add_column(text_null(column))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            ("pending_sign_ins", "link"),
            ("pending_sign_ins", "upstream"),
            ("sessions", "upstream"),
        ] {
            m.alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        for t in [
            "upstream_link_requests",
            "upstream_flows",
            "upstream_identities",
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}

//! Passkeys (issue 17, WebAuthn):
//!
//! - `passkeys`: a user's registered WebAuthn credentials. `credential_id` (base64url) is unique
//!   across all users: one authenticator credential belongs to one account. `data` is the
//!   credential as `webauthn-rs` serialises it (public key, algorithm, flags); `sign_count` is
//!   the authenticator's signature counter, raised by one conditional UPDATE per sign-in (W3C
//!   WebAuthn Level 2 §7.2 step 21), so a cloned authenticator is noticed on every instance.
//! - `webauthn_ceremonies`: a registration or authentication ceremony between its options and
//!   the browser's answer, for five minutes. Looked up by the hash of the browser's ceremony
//!   cookie, bound to what started it (`binding`: the session, or the pending sign-in), and
//!   deleted when it is used, so any instance can finish a ceremony another began, once.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("passkeys")
                .col(string("id").primary_key())
                .col(string("user_id"))
                .col(string("credential_id"))
                .col(string("name"))
                .col(text("data"))
                .col(big_integer("sign_count").default(0))
                .col(big_integer("created_at"))
                .col(big_integer_null("last_used_at"))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_passkeys_user_id")
                        .from("passkeys", "user_id")
                        .to("users", "id")
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_passkeys_credential_id")
                .table("passkeys")
                .col("credential_id")
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_passkeys_user_id")
                .table("passkeys")
                .col("user_id")
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("webauthn_ceremonies")
                .col(string("id_hash").primary_key())
                .col(string("purpose"))
                .col(string_null("user_id"))
                .col(string_null("binding"))
                .col(text("state"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_webauthn_ceremonies_expires_at")
                .table("webauthn_ceremonies")
                .col("expires_at")
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in ["webauthn_ceremonies", "passkeys"] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}

//! The initial schema: users, clients, signing keys, grants, sessions, consents, email
//! tokens and audit events.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

fn fk(
    from_table: &'static str,
    from_col: &'static str,
    to_table: &'static str,
    to_col: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{from_table}_{from_col}"))
        .from(from_table, from_col)
        .to(to_table, to_col)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

async fn index(
    m: &SchemaManager<'_>,
    table: &'static str,
    cols: &[&'static str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut idx = Index::create();
    idx.name(format!("idx_{table}_{}", cols.join("_")))
        .table(table);
    for c in cols {
        idx.col(*c);
    }
    if unique {
        idx.unique();
    }
    m.create_index(idx.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("users")
                .col(string("id").primary_key())
                .col(string("email"))
                // Lower-cased email: uniqueness and lookups are case-insensitive on every backend.
                .col(string("email_lower"))
                .col(boolean("email_verified").default(false))
                .col(text_null("password_hash"))
                .col(string_null("name"))
                // Space-separated role names.
                .col(string("roles").default(""))
                .col(boolean("disabled").default(false))
                .col(integer("failed_logins").default(0))
                .col(big_integer_null("failed_window_start"))
                .col(big_integer_null("locked_until"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .to_owned(),
        )
        .await?;
        index(m, "users", &["email_lower"], true).await?;
        index(m, "users", &["created_at"], false).await?;

        m.create_table(
            Table::create()
                .table("clients")
                .col(string("id").primary_key())
                // Hex SHA-256 of the secret; null for public clients.
                .col(string_null("secret_hash"))
                .col(string("name"))
                // JSON arrays of strings, compared exactly.
                .col(text("redirect_uris"))
                .col(text("post_logout_redirect_uris"))
                // Space-separated lists.
                .col(string("grant_types"))
                .col(text("scopes"))
                .col(string("auth_method"))
                .col(boolean("public").default(false))
                .col(boolean("skip_consent").default(false))
                .col(boolean("introspect_any").default(false))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .to_owned(),
        )
        .await?;
        index(m, "clients", &["created_at"], false).await?;

        m.create_table(
            Table::create()
                .table("signing_keys")
                .col(string("kid").primary_key())
                .col(string("alg"))
                // PKCS#8 DER of the private key.
                .col(blob("private_der"))
                // The public JWK as served in the JWKS.
                .col(text("public_jwk"))
                // active | retiring | retired
                .col(string("state"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                // When a retiring key leaves the JWKS: every token it signed has expired.
                .col(big_integer_null("retire_at"))
                .to_owned(),
        )
        .await?;
        index(m, "signing_keys", &["state"], false).await?;

        m.create_table(
            Table::create()
                .table("sessions")
                .col(string("id_hash").primary_key())
                // Public, opaque session id for the `sid` claim and the account page.
                .col(string("sid"))
                .col(string("user_id"))
                .col(big_integer("auth_time"))
                .col(string("amr"))
                .col(string_null("ip"))
                .col(string_null("user_agent"))
                .col(big_integer("created_at"))
                .col(big_integer("last_seen"))
                .col(big_integer("expires_at"))
                .foreign_key(&mut fk("sessions", "user_id", "users", "id"))
                .to_owned(),
        )
        .await?;
        index(m, "sessions", &["sid"], true).await?;
        index(m, "sessions", &["user_id"], false).await?;
        index(m, "sessions", &["expires_at"], false).await?;

        m.create_table(
            Table::create()
                .table("authorization_codes")
                .col(string("code_hash").primary_key())
                .col(string("client_id"))
                .col(string("user_id"))
                .col(text("redirect_uri"))
                .col(text("scope"))
                .col(text_null("nonce"))
                .col(string_null("code_challenge"))
                .col(string_null("code_challenge_method"))
                .col(big_integer("auth_time"))
                .col(string("amr"))
                .col(string_null("sid"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                .foreign_key(&mut fk("authorization_codes", "client_id", "clients", "id"))
                .foreign_key(&mut fk("authorization_codes", "user_id", "users", "id"))
                .to_owned(),
        )
        .await?;
        index(m, "authorization_codes", &["expires_at"], false).await?;

        // Codes already redeemed: a second use revokes what the first one issued
        // (RFC 6749 §4.1.2). Kept until the code would have expired anyway.
        m.create_table(
            Table::create()
                .table("redeemed_codes")
                .col(string("code_hash").primary_key())
                .col(string("grant_id"))
                .col(big_integer("expires_at"))
                .to_owned(),
        )
        .await?;
        index(m, "redeemed_codes", &["expires_at"], false).await?;

        m.create_table(
            Table::create()
                .table("refresh_tokens")
                .col(string("token_hash").primary_key())
                // Every token descended from one authorization shares the family id.
                .col(string("family_id"))
                .col(string_null("parent_hash"))
                .col(string("client_id"))
                .col(string("user_id"))
                .col(text("scope"))
                .col(big_integer("auth_time"))
                .col(string("amr"))
                .col(string_null("sid"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                // Set when this token was exchanged for its successor.
                .col(big_integer_null("rotated_at"))
                .col(boolean("revoked").default(false))
                .foreign_key(&mut fk("refresh_tokens", "client_id", "clients", "id"))
                .foreign_key(&mut fk("refresh_tokens", "user_id", "users", "id"))
                .to_owned(),
        )
        .await?;
        index(m, "refresh_tokens", &["family_id"], false).await?;
        index(m, "refresh_tokens", &["user_id"], false).await?;
        index(m, "refresh_tokens", &["client_id"], false).await?;
        index(m, "refresh_tokens", &["expires_at"], false).await?;

        // Access tokens (JWTs) revoked before they expire; the `grant_id` revokes every access
        // token of one authorization (code reuse, refresh reuse).
        m.create_table(
            Table::create()
                .table("revoked_tokens")
                .col(string("id").primary_key())
                .col(big_integer("expires_at"))
                .to_owned(),
        )
        .await?;
        index(m, "revoked_tokens", &["expires_at"], false).await?;

        m.create_table(
            Table::create()
                .table("consents")
                .col(string("user_id"))
                .col(string("client_id"))
                .col(text("scopes"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .primary_key(Index::create().col("user_id").col("client_id"))
                .foreign_key(&mut fk("consents", "user_id", "users", "id"))
                .foreign_key(&mut fk("consents", "client_id", "clients", "id"))
                .to_owned(),
        )
        .await?;
        index(m, "consents", &["client_id"], false).await?;

        m.create_table(
            Table::create()
                .table("email_tokens")
                .col(string("token_hash").primary_key())
                .col(string("user_id"))
                // verify | reset
                .col(string("kind"))
                // The address being verified (an email change verifies the new one).
                .col(string("email"))
                .col(big_integer("created_at"))
                .col(big_integer("expires_at"))
                .foreign_key(&mut fk("email_tokens", "user_id", "users", "id"))
                .to_owned(),
        )
        .await?;
        index(m, "email_tokens", &["user_id"], false).await?;
        index(m, "email_tokens", &["expires_at"], false).await?;

        m.create_table(
            Table::create()
                .table("audit_events")
                .col(big_pk_auto("id"))
                .col(big_integer("at"))
                .col(string("kind"))
                .col(string_null("actor"))
                .col(string_null("user_id"))
                .col(string_null("client_id"))
                .col(string_null("ip"))
                .col(text("detail"))
                .to_owned(),
        )
        .await?;
        index(m, "audit_events", &["at"], false).await?;
        index(m, "audit_events", &["user_id", "at"], false).await?;
        index(m, "audit_events", &["client_id", "at"], false).await?;
        index(m, "audit_events", &["kind", "at"], false).await?;
        Ok(())
    }
}

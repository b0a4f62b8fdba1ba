//! Migrations apply on the test database (SQLite, or PostgreSQL with `TEST_DATABASE_URL`) and
//! are idempotent; every table is there.

use crate::harness::{json_out, spawn_app};

const TABLES: &[&str] = &[
    "users",
    "clients",
    "signing_keys",
    "sessions",
    "authorization_codes",
    "redeemed_codes",
    "refresh_tokens",
    "revoked_tokens",
    "consents",
    "email_tokens",
    "audit_events",
    "jobs",
    "leases",
    "totp_factors",
    "recovery_codes",
    "pending_sign_ins",
];

#[tokio::test]
async fn the_server_applies_every_migration_and_every_table_exists() {
    let app = spawn_app().await;
    let applied = app
        .store
        .applied_migrations()
        .await
        .expect("applied migrations");
    assert!(applied.iter().any(|m| m.contains("initial")), "{applied:?}");
    for table in TABLES {
        // Panics naming the table when it is missing.
        app.count(table).await;
    }
    let backend = app.store.backend();
    assert_eq!(
        backend,
        if app.db.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    );
}

#[tokio::test]
async fn migrate_is_idempotent_on_an_existing_database() {
    let app = spawn_app().await;
    let first = json_out(&app.castellan(&["migrate", "--json"]));
    let second = json_out(&app.castellan(&["migrate", "--json"]));
    assert_eq!(first, second);
    assert!(!first["applied"].as_array().expect("list").is_empty());
}

#[tokio::test]
async fn email_uniqueness_ignores_case() {
    let app = spawn_app().await;
    let a = app.castellan_stdin(
        &[
            "user",
            "create",
            "--email",
            "Ada@Example.com",
            "--password-stdin",
        ],
        "correct horse battery\n",
    );
    assert!(a.status.success());
    let b = app.castellan_stdin(
        &[
            "user",
            "create",
            "--email",
            "ada@example.COM",
            "--password-stdin",
        ],
        "correct horse battery\n",
    );
    assert!(
        !b.status.success(),
        "second user with the same email in another case was created"
    );
}

//! Castellan's database schema, as forward-only sea-orm migrations that run unchanged on
//! SQLite and PostgreSQL.
//!
//! Conventions (see `docs/decisions/2026-11-23-store-representation.md`):
//! - ids are text (UUIDs, client ids, kids); times are `BIGINT` Unix seconds;
//! - bearer secrets (codes, refresh tokens, session ids, email tokens) are stored only as the
//!   hex SHA-256 of the secret, as the primary key they are looked up by;
//! - every lookup path has an index.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_initial;
mod m20261123_000002_roles;
mod m20261123_000003_dynamic_registration;
mod m20261129_000004_tokens_valid_after;
mod m20261203_000005_jobs_and_login_tickets;
mod m20261203_000006_key_lifecycle_and_leases;
mod m20261203_000007_second_factors;
mod m20261203_000008_mfa_policy;
mod m20261203_000009_passkeys;
mod m20261203_000010_upstreams;
mod m20261203_000011_upstream_sign_in;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_initial::Migration),
            Box::new(m20261123_000002_roles::Migration),
            Box::new(m20261123_000003_dynamic_registration::Migration),
            Box::new(m20261129_000004_tokens_valid_after::Migration),
            Box::new(m20261203_000005_jobs_and_login_tickets::Migration),
            Box::new(m20261203_000006_key_lifecycle_and_leases::Migration),
            Box::new(m20261203_000007_second_factors::Migration),
            Box::new(m20261203_000008_mfa_policy::Migration),
            Box::new(m20261203_000009_passkeys::Migration),
            Box::new(m20261203_000010_upstreams::Migration),
            Box::new(m20261203_000011_upstream_sign_in::Migration),
        ]
    }
}

//! Bad configuration stops start-up with exit status 2 and one line naming the key, the value
//! and what is expected; an unreachable database fails cleanly. Runs the built binary.

use crate::harness::{castellan_with, stderr};

fn assert_config_error(env: &[(&str, &str)], args: &[&str], key: &str, value: &str) {
    let out = castellan_with("sqlite::memory:", args, None, env);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2, got {:?}: {err}",
        out.status
    );
    assert_eq!(err.trim().lines().count(), 1, "one line expected: {err}");
    assert!(err.contains(key), "message names the key {key}: {err}");
    assert!(
        err.contains(value),
        "message names the value {value}: {err}"
    );
    assert!(
        err.contains("expected"),
        "message says what is expected: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_issuer_with_a_query_is_refused_with_exit_status_2() {
    let bad = "https://id.example.com/?tenant=1";
    assert_config_error(
        &[("CASTELLAN_ISSUER", bad)],
        &["migrate"],
        "server.issuer",
        bad,
    );
}

#[test]
fn a_plain_http_issuer_on_a_public_host_is_refused() {
    let bad = "http://id.example.com";
    assert_config_error(
        &[("CASTELLAN_ISSUER", bad)],
        &["migrate"],
        "server.issuer",
        bad,
    );
}

#[test]
fn a_relative_issuer_is_refused() {
    assert_config_error(
        &[("CASTELLAN_ISSUER", "id.example.com")],
        &["serve"],
        "server.issuer",
        "id.example.com",
    );
}

#[test]
fn a_bad_listen_address_is_refused() {
    assert_config_error(
        &[("CASTELLAN_LISTEN", "localhost:http")],
        &["serve"],
        "server.listen",
        "localhost:http",
    );
}

#[test]
fn a_non_numeric_token_lifetime_from_the_environment_is_refused() {
    assert_config_error(
        &[("CASTELLAN_TOKENS__ACCESS_TTL_SECS", "soon")],
        &["migrate"],
        "tokens.access_ttl_secs",
        "soon",
    );
}

#[test]
fn an_out_of_range_value_is_refused() {
    assert_config_error(
        &[("CASTELLAN_TOKENS__CODE_TTL_SECS", "0")],
        &["migrate"],
        "tokens.code_ttl_secs",
        "0",
    );
}

#[test]
fn an_unknown_dynamic_registration_mode_is_refused() {
    assert_config_error(
        &[("CASTELLAN_DYNAMIC_REGISTRATION__MODE", "sometimes")],
        &["migrate"],
        "dynamic_registration.mode",
        "sometimes",
    );
}

#[test]
fn a_roles_claim_that_would_shadow_a_registered_claim_or_is_not_a_name_is_refused() {
    for bad in ["sub", "email", "", "my roles"] {
        assert_config_error(
            &[("CASTELLAN_OAUTH__ROLES_CLAIM", bad)],
            &["migrate"],
            "oauth.roles_claim",
            bad,
        );
    }
}

#[test]
fn an_unknown_key_in_the_config_file_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("castellan.toml");
    std::fs::write(&path, "[tokens]\naccess_ttl = 30\n").expect("write config");
    let out = castellan_with(
        "sqlite::memory:",
        &["--config", path.to_str().unwrap_or_default(), "migrate"],
        None,
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("access_ttl"), "names the unknown key: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_missing_config_file_is_refused() {
    let out = castellan_with(
        "sqlite::memory:",
        &["--config", "/nonexistent/castellan.toml", "migrate"],
        None,
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("/nonexistent/castellan.toml"));
}

#[test]
fn the_shipped_config_file_parses_and_equals_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/castellan.toml");
    let settings = castellan::Settings::load(Some(std::path::Path::new(path)), Vec::new())
        .expect("shipped config parses");
    let defaults = castellan::Settings::load(None, Vec::new()).expect("defaults are valid");
    assert_eq!(format!("{settings:?}"), format!("{defaults:?}"));
}

#[test]
fn an_unreachable_database_fails_cleanly_without_showing_its_password() {
    let out = castellan_with(
        "postgres://castellan:hunter2secret@127.0.0.1:1/castellan",
        &["migrate"],
        None,
        &[],
    );
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("cannot open the database"), "{err}");
    assert!(!err.contains("hunter2secret"), "the password leaked: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_listen_address_already_in_use_fails_cleanly() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
    let out = castellan_with(&db, &["serve"], None, &[("CASTELLAN_LISTEN", &addr)]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains(&addr), "names the address: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_syntax_error_in_the_config_file_does_not_print_a_password_from_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("castellan.toml");
    std::fs::write(
        &path,
        "[database]\nurl = \"postgres://bob:hunter2@db.example/castellan\" x\n",
    )
    .expect("write");
    let out = castellan_with(
        "sqlite::memory:",
        &["--config", path.to_str().unwrap_or_default(), "migrate"],
        None,
        &[],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("hunter2"), "the password leaked: {err}");
}

#[test]
fn a_zero_connect_timeout_is_refused() {
    assert_config_error(
        &[("CASTELLAN_DATABASE__CONNECT_TIMEOUT_SECS", "0")],
        &["migrate"],
        "database.connect_timeout_secs",
        "0",
    );
}

//! Every CLI command, run as the built binary against the test database.

use crate::harness::{TestDb, castellan_with, json_out, spawn_app, stderr, stdout};

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["client", "--help"],
        vec!["client", "create", "--help"],
        vec!["client", "list", "--help"],
        vec!["client", "show", "--help"],
        vec!["client", "delete", "--help"],
        vec!["user", "--help"],
        vec!["user", "create", "--help"],
        vec!["user", "list", "--help"],
        vec!["user", "set-role", "--help"],
        vec!["user", "disable", "--help"],
        vec!["user", "delete", "--help"],
        vec!["keys", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "rotate", "--help"],
        vec!["client", "rotate-secret", "--help"],
        vec!["user", "end-sessions", "--help"],
        vec!["role", "--help"],
        vec!["role", "create", "--help"],
        vec!["audit", "list", "--help"],
        vec!["client", "update", "--help"],
        vec!["user", "update", "--help"],
    ] {
        let out = castellan_with("sqlite::memory:", &args, None, &[]);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn an_unknown_subcommand_is_a_usage_error() {
    let out = castellan_with("sqlite::memory:", &["frobnicate"], None, &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn client_create_prints_an_id_and_a_secret_shown_once() {
    let app = spawn_app().await;
    let created = json_out(&app.castellan(&[
        "client",
        "create",
        "--name",
        "Web app",
        "--redirect-uri",
        "https://app.example.com/cb",
        "--redirect-uri",
        "http://127.0.0.1:9999/cb",
        "--post-logout-redirect-uri",
        "https://app.example.com/bye",
        "--json",
    ]));
    let id = created["client_id"].as_str().expect("client_id");
    let secret = created["client_secret"].as_str().expect("client_secret");
    assert!(secret.len() >= 43, "a 256-bit secret");
    assert_eq!(
        created["grant_types"],
        serde_json::json!(["authorization_code", "refresh_token"])
    );

    let shown = json_out(&app.castellan(&["client", "show", id, "--json"]));
    assert_eq!(shown["client_id"], id);
    assert_eq!(shown["name"], "Web app");
    assert!(
        shown.get("client_secret").is_none(),
        "the secret is shown only once"
    );
    assert!(!stdout(&app.castellan(&["client", "show", id])).contains(secret));

    // Only the SHA-256 hash is stored.
    assert_eq!(
        app.count(&format!("clients WHERE secret_hash = '{secret}'"))
            .await,
        0
    );
    let hashed = castellan::crypto::token::hash(secret);
    assert_eq!(
        app.count(&format!("clients WHERE secret_hash = '{hashed}'"))
            .await,
        1
    );

    let list = json_out(&app.castellan(&["client", "list", "--json"]));
    assert!(
        list.as_array()
            .expect("array")
            .iter()
            .any(|c| c["client_id"] == id)
    );
    let human = stdout(&app.castellan(&["client", "list"]));
    assert!(human.contains(id) && human.contains("Web app"));

    json_out(&app.castellan(&["client", "delete", id, "--json"]));
    let gone = app.castellan(&["client", "show", id]);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains(id), "{}", stderr(&gone));
}

#[tokio::test]
async fn a_public_client_has_no_secret_and_authenticates_with_none() {
    let app = spawn_app().await;
    let created = json_out(&app.castellan(&[
        "client",
        "create",
        "--name",
        "SPA",
        "--public",
        "--redirect-uri",
        "https://spa.example.com/cb",
        "--json",
    ]));
    assert!(created.get("client_secret").is_none_or(|s| s.is_null()));
    assert_eq!(created["token_endpoint_auth_method"], "none");
}

#[tokio::test]
async fn a_client_credentials_client_needs_no_redirect_uri() {
    let app = spawn_app().await;
    let created = json_out(&app.castellan(&[
        "client",
        "create",
        "--name",
        "Batch",
        "--grant-type",
        "client_credentials",
        "--scope",
        "reports",
        "--token-endpoint-auth-method",
        "client_secret_post",
        "--introspect-any",
        "--json",
    ]));
    assert_eq!(
        created["grant_types"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(created["introspect_any"], true);
}

#[tokio::test]
async fn bad_client_input_is_refused_with_one_clear_line() {
    let app = spawn_app().await;
    for args in [
        vec!["client", "create", "--name", "X"],
        vec![
            "client",
            "create",
            "--name",
            "X",
            "--redirect-uri",
            "not a url",
        ],
        vec![
            "client",
            "create",
            "--name",
            "X",
            "--redirect-uri",
            "https://a.example/cb#frag",
        ],
        vec![
            "client",
            "create",
            "--name",
            "X",
            "--redirect-uri",
            "https://a.example/cb",
            "--grant-type",
            "password",
        ],
        vec![
            "client",
            "create",
            "--name",
            "X",
            "--redirect-uri",
            "https://a.example/cb",
            "--public",
            "--grant-type",
            "client_credentials",
        ],
        vec![
            "client",
            "create",
            "--name",
            "X",
            "--redirect-uri",
            "https://a.example/cb",
            "--token-endpoint-auth-method",
            "private_key_jwt",
        ],
    ] {
        let out = app.castellan(&args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(
        json_out(&app.castellan(&["client", "list", "--json"])),
        serde_json::json!([])
    );
}

#[tokio::test]
async fn user_commands_create_list_set_roles_disable_and_delete() {
    let app = spawn_app().await;
    let created = json_out(&app.castellan_stdin(
        &[
            "user",
            "create",
            "--email",
            "ada@example.com",
            "--name",
            "Ada Lovelace",
            "--role",
            "admin",
            "--password-stdin",
            "--json",
        ],
        "correct horse battery staple\n",
    ));
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_eq!(
        created["email_verified"], true,
        "CLI users count as verified"
    );
    let roles = created["roles"].as_array().expect("roles");
    assert!(roles.contains(&"admin".into()) && roles.contains(&"user".into()));

    // The password is stored as an argon2id hash, never as typed.
    assert_eq!(
        app.count("users WHERE password_hash LIKE '$argon2id$%'")
            .await,
        1
    );

    let list = json_out(&app.castellan(&["user", "list", "--json"]));
    assert_eq!(list.as_array().expect("array").len(), 1);

    // A role must be in the catalogue before anyone can hold it.
    let unknown = app.castellan(&["user", "set-role", "ada@example.com", "auditor"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("\"auditor\" is not a role"),
        "{}",
        stderr(&unknown)
    );
    json_out(&app.castellan(&[
        "role",
        "create",
        "auditor",
        "--description",
        "Reads logs",
        "--json",
    ]));
    let updated = json_out(&app.castellan(&[
        "user",
        "set-role",
        "ada@example.com",
        "user",
        "auditor",
        "--json",
    ]));
    assert_eq!(updated["roles"], serde_json::json!(["auditor", "user"]));
    let held = app.castellan(&["role", "delete", "auditor"]);
    assert!(!held.status.success());
    assert!(stderr(&held).contains("hold"), "{}", stderr(&held));
    let builtin = app.castellan(&["role", "delete", "admin"]);
    assert_eq!(builtin.status.code(), Some(2));
    let roles = json_out(&app.castellan(&["role", "list", "--json"]));
    let names: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "auditor", "user"]);
    assert_eq!(
        app.count("audit_events WHERE kind = 'role_changed' AND actor = 'cli'")
            .await,
        1
    );

    let disabled = json_out(&app.castellan(&["user", "disable", &id, "--json"]));
    assert_eq!(disabled["disabled"], true);
    let enabled = json_out(&app.castellan(&["user", "disable", &id, "--enable", "--json"]));
    assert_eq!(enabled["disabled"], false);

    json_out(&app.castellan(&["user", "delete", "ada@example.com", "--json"]));
    assert_eq!(
        json_out(&app.castellan(&["user", "list", "--json"])),
        serde_json::json!([])
    );
    let missing = app.castellan(&["user", "delete", "ada@example.com"]);
    assert!(!missing.status.success());
}

#[tokio::test]
async fn user_create_drops_exactly_one_trailing_newline_from_stdin() {
    let app = spawn_app().await;
    json_out(&app.castellan_stdin(
        &[
            "user",
            "create",
            "--email",
            "bob@example.com",
            "--password-stdin",
            "--json",
        ],
        "trailing space \n",
    ));
    let email = castellan::domain::Email::parse("bob@example.com").expect("email");
    let creds = app
        .store
        .credentials_by_email(&email)
        .await
        .expect("query")
        .expect("user");
    let hasher = castellan::crypto::password::Hasher::new(1024, 1, 1).expect("hasher");
    let hash = creds.password_hash.as_deref().expect("hash");
    assert!(hasher.verify("trailing space ", hash));
    assert!(!hasher.verify("trailing space", hash));
}

/// The operator at the server is trusted with a password's content (a service or test
/// account), as `user create` always was; its length bounds still apply. The admin API, for
/// the same request, applies the whole policy.
#[tokio::test]
async fn the_command_line_sets_any_password_within_the_length_bounds() {
    let app = spawn_app().await;
    for (email, password) in [
        ("bench@example.com", "bench-password-123"),
        ("carol@example.com", "iloveyou"),
    ] {
        let out = app.castellan_stdin(
            &[
                "user",
                "create",
                "--email",
                email,
                "--password-stdin",
                "--json",
            ],
            password,
        );
        assert!(out.status.success(), "{email}: {}", stderr(&out));
    }
    let short = app.castellan_stdin(
        &[
            "user",
            "create",
            "--email",
            "dan@example.com",
            "--password-stdin",
        ],
        "short",
    );
    assert_eq!(short.status.code(), Some(2), "{}", stderr(&short));
    assert!(stderr(&short).contains("at least 8"), "{}", stderr(&short));
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test]
async fn bad_user_input_is_refused() {
    let app = spawn_app().await;
    for (args, stdin) in [
        (
            vec![
                "user",
                "create",
                "--email",
                "not-an-email",
                "--password-stdin",
            ],
            "long enough password",
        ),
        (
            vec![
                "user",
                "create",
                "--email",
                "a@example.com",
                "--password-stdin",
            ],
            "",
        ),
        (
            vec![
                "user",
                "create",
                "--email",
                "a@example.com",
                "--password",
                "x",
            ],
            "",
        ),
        (vec!["user", "set-role", "nobody@example.com", "user"], ""),
    ] {
        let out = app.castellan_stdin(&args, stdin);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(!stderr(&out).contains("panicked"));
    }
}

#[tokio::test]
async fn keys_rotate_publishes_a_new_key_ahead_and_rotate_now_makes_it_sign_at_once() {
    let app = spawn_app().await;
    let before = json_out(&app.castellan(&["keys", "list", "--json"]));
    assert_eq!(before.as_array().expect("array").len(), 1);
    let old_kid = before[0]["kid"].as_str().expect("kid").to_owned();
    assert_eq!(before[0]["state"], "active");
    assert_eq!(before[0]["alg"], "RS256");

    // A scheduled rotation: the new key is published now and signs an hour later
    // (keys.publish_ahead_secs); the old one keeps signing until then.
    let next = json_out(&app.castellan(&["keys", "rotate", "--json"]));
    assert_eq!(next["state"], "next");
    let ahead = next["activate_at"].as_i64().expect("activate_at")
        - next["created_at"].as_i64().expect("created_at");
    assert!(ahead >= 3600, "signs {ahead} s after it is published");
    let after = json_out(&app.castellan(&["keys", "list", "--json"]));
    let after = after.as_array().expect("array");
    assert_eq!(after.len(), 2);
    let old = after
        .iter()
        .find(|k| k["kid"] == old_kid.as_str())
        .expect("old key listed");
    assert_eq!(old["state"], "active");

    // An emergency rotation: the newest key signs at once, every other one retires.
    let now = json_out(&app.castellan(&["keys", "rotate", "--now", "--json"]));
    assert_eq!(now["state"], "active");
    let after = json_out(&app.castellan(&["keys", "list", "--json"]));
    for k in after.as_array().expect("array") {
        if k["kid"] == now["kid"] {
            continue;
        }
        assert_eq!(k["state"], "retiring", "{k}");
        assert!(k["retire_at"].as_i64().is_some());
    }
}

#[test]
fn migrate_on_a_fresh_sqlite_file_creates_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested/dir/castellan.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let out = castellan_with(&url, &["migrate"], None, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(path.exists());
}

#[tokio::test]
async fn every_cli_command_works_on_a_database_no_server_has_touched() {
    let db = TestDb::new().await;
    let out = castellan_with(db.url(), &["keys", "list", "--json"], None, &[]);
    assert_eq!(json_out(&out), serde_json::json!([]));
    let out = castellan_with(db.url(), &["keys", "rotate", "--json"], None, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn operators_rotate_a_secret_end_sessions_and_read_the_audit_log_from_the_cli() {
    use crate::harness::rp::{
        Auth, PASSWORD, confidential_rp, create_client, create_user, sign_in, token_request,
    };
    let app = spawn_app().await;
    let (id, secret) = create_client(
        &app,
        &["--grant-type", "client_credentials", "--scope", "api"],
    );
    let old = secret.expect("a secret");
    let rotated = json_out(&app.castellan(&["client", "rotate-secret", &id, "--json"]));
    let new = rotated["client_secret"]
        .as_str()
        .expect("a new secret")
        .to_owned();
    let cc = [("grant_type", "client_credentials")];
    token_request(&app, Auth::Basic(&id, &old), &cc)
        .await
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(
        token_request(&app, Auth::Basic(&id, &new), &cc)
            .await
            .status,
        200
    );

    let user = create_user(&app, "ada@example.com", PASSWORD);
    let rp = confidential_rp(&app, &[]).await;
    sign_in(
        &app,
        &rp,
        "ada@example.com",
        &["openid", "offline_access"],
        true,
    )
    .await;
    assert_eq!(
        app.count(&format!("sessions WHERE user_id = '{user}'"))
            .await,
        1
    );
    let ended = json_out(&app.castellan(&["user", "end-sessions", "ada@example.com", "--json"]));
    assert_eq!(ended["ended"], 1);
    assert_eq!(
        app.count(&format!("sessions WHERE user_id = '{user}'"))
            .await,
        0
    );
    assert_eq!(
        app.count(&format!(
            "refresh_tokens WHERE user_id = '{user}' AND revoked = false"
        ))
        .await,
        0
    );

    let events =
        json_out(&app.castellan(&["audit", "list", "--kind", "client_secret_rotated", "--json"]));
    let events = events.as_array().expect("an array");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["client_id"], id.as_str());
    assert_eq!(events[0]["actor"], "cli");
    let mine =
        json_out(&app.castellan(&["audit", "list", "--user", &user, "--limit", "2", "--json"]));
    assert_eq!(mine.as_array().expect("an array").len(), 2, "{mine}");
    assert_eq!(mine[0]["kind"], "sessions_ended", "newest first: {mine}");
    let text = app.castellan(&["audit", "list", "--kind", "sessions_ended"]);
    assert!(stdout(&text).contains("actor=cli"), "{}", stdout(&text));
    let bad = app.castellan(&["audit", "list", "--limit", "0"]);
    assert_eq!(bad.status.code(), Some(2));

    // Updating a client replaces its settings and keeps its id and secret.
    let updated = json_out(&app.castellan(&[
        "client",
        "update",
        &id,
        "--name",
        "Reports",
        "--grant-type",
        "client_credentials",
        "--scope",
        "api reports",
        "--json",
    ]));
    assert_eq!(updated["name"], "Reports");
    assert_eq!(updated["scope"], "api reports");
    let reports = [("grant_type", "client_credentials"), ("scope", "reports")];
    assert_eq!(
        token_request(&app, Auth::Basic(&id, &new), &reports)
            .await
            .status,
        200
    );
    let switch = app.castellan(&[
        "client",
        "update",
        &id,
        "--name",
        "X",
        "--public",
        "--redirect-uri",
        "https://x.example/cb",
    ]);
    assert_eq!(switch.status.code(), Some(2), "{}", stderr(&switch));

    // Updating a user's name and email.
    let u = json_out(&app.castellan(&[
        "user",
        "update",
        "ada@example.com",
        "--name",
        "Ada L.",
        "--email",
        "ada@lovelace.example",
        "--json",
    ]));
    assert_eq!(
        (u["name"].as_str(), u["email"].as_str()),
        (Some("Ada L."), Some("ada@lovelace.example"))
    );
    create_user(&app, "bob@example.com", PASSWORD);
    let taken = app.castellan(&[
        "user",
        "update",
        "bob@example.com",
        "--email",
        "ADA@lovelace.example",
    ]);
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        stderr(&taken).contains("another user"),
        "{}",
        stderr(&taken)
    );
    assert_eq!(
        app.count("audit_events WHERE kind = 'client_updated' AND actor = 'cli'")
            .await,
        1
    );
    assert_eq!(
        app.count("audit_events WHERE kind = 'email_changed' AND actor = 'cli'")
            .await,
        1
    );
}

//! Upstream identity providers, first slice (issue 18): `castellan upstream
//! create|list|show|delete` (CONTRACT.md), stored in the database, audited, the client secret
//! read from standard input, never printed, and sealed under the key-encryption key when one
//! is configured; every bad field named, with a non-zero exit.

use crate::harness::{castellan_with, json_out, spawn_app, stderr, stdout};

const SECRET: &str = "upstream-client-secret-4242";

fn kek() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([9u8; 32])
}

#[tokio::test]
async fn an_upstream_is_created_listed_shown_and_deleted_and_each_change_is_audited() {
    let app = spawn_app().await;
    let kek = kek();
    // The CLI names the redirect URI from its own configuration's issuer.
    let env = [
        ("CASTELLAN_KEY_ENCRYPTION_KEY", kek.as_str()),
        ("CASTELLAN_ISSUER", app.address.as_str()),
    ];
    let run = |args: &[&str], stdin: Option<&str>| castellan_with(app.db.url(), args, stdin, &env);

    let out = run(
        &[
            "upstream",
            "create",
            "--id",
            "corp",
            "--kind",
            "oidc",
            "--name",
            "Corp SSO",
            "--issuer",
            "https://sso.corp.example",
            "--client-id",
            "castellan",
            "--client-secret-stdin",
            "--trust-email",
            "--json",
        ],
        Some(&format!("{SECRET}\n")),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains(SECRET),
        "the secret is never printed"
    );
    let created = json_out(&out);
    assert_eq!(created["id"], "corp");
    assert_eq!(created["kind"], "oidc");
    assert_eq!(created["scope"], "openid email profile");
    assert_eq!(created["jit"], true);
    assert_eq!(created["trust_email"], true);
    assert_eq!(created["client_secret_encrypted"], true);
    assert_eq!(
        created["redirect_uri"],
        format!("{}/login/upstream/corp/callback", app.address)
    );
    // Stored sealed: the secret's text is not in the row.
    assert_eq!(
        app.count(&format!(
            "upstream_providers WHERE client_secret LIKE '%{SECRET}%'"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count("upstream_providers WHERE client_secret LIKE 'sealed:%'")
            .await,
        1
    );

    let out = run(
        &[
            "upstream",
            "create",
            "--id",
            "gh",
            "--kind",
            "github",
            "--name",
            "GitHub",
            "--client-id",
            "Iv1.abc",
            "--client-secret-stdin",
            "--no-jit",
            "--json",
        ],
        Some(SECRET),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let gh = json_out(&out);
    assert_eq!(gh["issuer"], serde_json::Value::Null);
    assert_eq!(gh["scope"], "read:user user:email");
    assert_eq!(gh["jit"], false);

    let list = json_out(&run(&["upstream", "list", "--json"], None));
    let ids: Vec<&str> = list
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert_eq!(ids, ["corp", "gh"]);
    let shown = json_out(&run(&["upstream", "show", "corp", "--json"], None));
    assert_eq!(shown, created);

    let out = run(&["upstream", "delete", "gh", "--json"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(app.count("upstream_providers").await, 1);
    let out = run(&["upstream", "show", "gh"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no upstream"), "{}", stderr(&out));

    assert_eq!(
        app.count("audit_events WHERE kind = 'upstream_created' AND actor = 'cli'")
            .await,
        2
    );
    assert_eq!(
        app.count("audit_events WHERE kind = 'upstream_deleted'")
            .await,
        1
    );
    assert_eq!(
        app.count(&format!("audit_events WHERE detail LIKE '%{SECRET}%'"))
            .await,
        0
    );
}

#[tokio::test]
async fn bad_upstream_settings_are_each_named_and_nothing_is_stored() {
    let app = spawn_app().await;
    let run = |args: &[&str], stdin: Option<&str>| castellan_with(app.db.url(), args, stdin, &[]);
    let create = |extra: &[&str]| {
        let mut args = vec![
            "upstream",
            "create",
            "--name",
            "X",
            "--client-id",
            "c",
            "--client-secret-stdin",
        ];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let cases: &[(&[&str], &str)] = &[
        (&["--id", "a", "--kind", "saml"], "--kind"),
        (&["--id", "a", "--kind", "oidc"], "--issuer: is required"),
        (
            &[
                "--id",
                "a",
                "--kind",
                "oidc",
                "--issuer",
                "http://sso.example",
            ],
            "--issuer: must be https",
        ),
        (
            &[
                "--id",
                "a",
                "--kind",
                "oidc",
                "--issuer",
                "https://sso.example/?tenant=1",
            ],
            "--issuer: must have no query",
        ),
        (
            &[
                "--id",
                "a",
                "--kind",
                "github",
                "--issuer",
                "https://github.com",
            ],
            "--issuer: does not apply",
        ),
        (&["--id", "Not/Ok", "--kind", "github"], "--id:"),
        (
            &["--id", "a", "--kind", "google", "--scope", "email"],
            "--scope: must include openid",
        ),
    ];
    for (extra, expected) in cases {
        let args = create(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args, Some(SECRET));
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{extra:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains(SECRET));
    }
    // No secret on stdin, and the flag left out.
    let args = create(&["--id", "a", "--kind", "github"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args, Some(""));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--client-secret-stdin"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &[
            "upstream",
            "create",
            "--id",
            "a",
            "--kind",
            "github",
            "--name",
            "X",
            "--client-id",
            "c",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(app.count("upstream_providers").await, 0);

    // A taken id.
    let ok = create(&["--id", "dup", "--kind", "google"]);
    let ok: Vec<&str> = ok.iter().map(String::as_str).collect();
    assert!(run(&ok, Some(SECRET)).status.success());
    let out = run(&ok, Some(SECRET));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("exists"), "{}", stderr(&out));
    assert_eq!(app.count("upstream_providers").await, 1);
}

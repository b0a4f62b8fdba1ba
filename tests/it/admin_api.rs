//! The admin REST API: who may call it (table-driven over every route), what each resource
//! does, RFC 9457 problems, the OpenAPI document, and the roles claim and `admin` scope rules.

use std::collections::BTreeSet;

use openidconnect::OAuth2TokenResponse;
use serde_json::{Value, json};

use crate::harness::jwt::claims;
use crate::harness::rp::{
    Auth, PASSWORD, REDIRECT_URI, Raw, Rp, create_client, create_user, sign_in, sign_in_as,
    token_request, userinfo_raw,
};
use crate::harness::smtp::SmtpSink;
use crate::harness::{TestApp, json_out, spawn_app, spawn_app_with};

fn with_mail(sink: &SmtpSink) -> impl FnOnce(&mut castellan::Settings) {
    let url = sink.url();
    move |s| s.mail.smtp_url = Some(castellan::config::Secret::new(url))
}

pub(crate) const API: &str = "/admin/api/v1";

pub(crate) async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Raw {
    let http = reqwest::Client::new();
    let url = app.url(path);
    let mut req = match method {
        "GET" => http.get(url),
        "POST" => http.post(url),
        "PUT" => http.put(url),
        "PATCH" => http.patch(url),
        "DELETE" => http.delete(url),
        other => panic!("method {other}"),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    Raw::from(req.send().await.expect("admin API request")).await
}

/// A client allowed `admin` and `roles`, for users signing in through the pages.
async fn admin_console(app: &TestApp) -> Rp {
    let (id, secret) = create_client(
        app,
        &[
            "--redirect-uri",
            REDIRECT_URI,
            "--scope",
            "openid email roles admin offline_access",
        ],
    );
    Rp::discover(app, &id, secret.as_deref(), REDIRECT_URI).await
}

fn set_roles(app: &TestApp, user: &str, roles: &[&str]) {
    let mut args = vec!["user", "set-role", user];
    args.extend_from_slice(roles);
    args.push("--json");
    json_out(&app.castellan(&args));
}

async fn client_token(app: &TestApp, scope: &str) -> String {
    let (id, secret) = create_client(
        app,
        &["--grant-type", "client_credentials", "--scope", scope],
    );
    let secret = secret.expect("a confidential client");
    let raw = token_request(
        app,
        Auth::Basic(&id, &secret),
        &[("grant_type", "client_credentials"), ("scope", scope)],
    )
    .await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    raw.json["access_token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

/// Tokens of every kind of caller.
pub(crate) struct Callers {
    pub admin: String,
    pub admin_id: String,
    pub user: String,
    pub user_id: String,
    pub automation: String,
    pub other_client: String,
}

pub(crate) async fn callers(app: &TestApp) -> Callers {
    let admin_id = create_user(app, "root@example.com", PASSWORD);
    set_roles(app, "root@example.com", &["admin"]);
    let user_id = create_user(app, "bob@example.com", PASSWORD);
    let rp = admin_console(app).await;
    let admin = sign_in(
        app,
        &rp,
        "root@example.com",
        &["openid", "admin", "roles"],
        true,
    )
    .await;
    let scope = admin.tokens.scopes().expect("the granted scope is named");
    assert!(scope.iter().any(|s| s.as_str() == "admin"), "{scope:?}");
    // Bob asks for `admin` too: he is not granted it.
    let user = sign_in_as(
        app,
        &rp,
        "bob@example.com",
        &["openid", "admin", "roles"],
        true,
    )
    .await;
    let scope: Vec<String> = user
        .tokens
        .scopes()
        .expect("a narrowed scope is named (RFC 6749 §5.1)")
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(!scope.contains(&"admin".to_owned()), "{scope:?}");
    Callers {
        admin: admin.access_token(),
        admin_id,
        user: user.access_token(),
        user_id,
        automation: client_token(app, "admin").await,
        other_client: client_token(app, "api").await,
    }
}

/// Every route of the API, with a request an administrator may make. `{user}`, `{client}`,
/// `{role}`, `{victim}` and `{upstream}` are filled in with objects made for the purpose.
const ROUTES: &[(&str, &str, u16)] = &[
    ("GET", "/users", 200),
    ("POST", "/users", 201),
    ("GET", "/users/{user}", 200),
    ("PATCH", "/users/{user}", 200),
    ("POST", "/users/{user}/password-reset", 202),
    ("POST", "/users/{user}/mfa-reset", 200),
    // On a fresh user: ending Bob's sessions would end his access token, used by later rows.
    ("DELETE", "/users/{victim}/sessions", 200),
    ("DELETE", "/users/{victim}", 204),
    ("GET", "/clients", 200),
    ("POST", "/clients", 201),
    ("GET", "/clients/{client}", 200),
    ("PUT", "/clients/{client}", 200),
    ("POST", "/clients/{client}/secret", 200),
    ("DELETE", "/clients/{client}", 204),
    ("GET", "/roles", 200),
    ("POST", "/roles", 201),
    ("DELETE", "/roles/{role}", 204),
    ("GET", "/keys", 200),
    ("POST", "/keys/rotate", 201),
    ("GET", "/audit", 200),
    ("GET", "/upstreams", 200),
    ("POST", "/upstreams", 201),
    ("GET", "/upstreams/{upstream}", 200),
    ("DELETE", "/upstreams/{upstream}", 204),
];

fn body_for(method: &str, route: &str, n: usize) -> Option<Value> {
    match (method, route) {
        ("POST", "/users") => Some(json!({"email": format!("new{n}@example.com"), "name": "New"})),
        ("PATCH", "/users/{user}") => Some(json!({"name": format!("Renamed {n}")})),
        ("POST", "/clients") | ("PUT", "/clients/{client}") => Some(json!({
            "name": format!("App {n}"),
            "redirect_uris": ["https://app.example/cb"],
        })),
        ("POST", "/roles") => {
            Some(json!({"name": format!("role-{n}"), "description": "made in a test"}))
        }
        ("POST", "/upstreams") => Some(json!({
            "id": format!("made-{n}"), "kind": "github", "name": "GitHub",
            "client_id": "Iv1.abc", "client_secret": "upstream-secret",
        })),
        _ => None,
    }
}

#[tokio::test]
async fn every_admin_route_refuses_anonymous_and_non_admin_callers_and_serves_admins() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(with_mail(&sink)).await;
    let c = callers(&app).await;
    let bad_token = format!("{}x", c.admin);
    for (i, (method, route, ok_status)) in ROUTES.iter().enumerate() {
        // Objects for this row, made fresh so destructive rows have something to destroy.
        let victim = create_user(&app, &format!("victim{i}@example.com"), PASSWORD);
        let (client, _) = create_client(&app, &["--redirect-uri", REDIRECT_URI]);
        let role = format!("temp-{i}");
        json_out(&app.castellan(&["role", "create", &role, "--json"]));
        let upstream = format!("up-{i}");
        if route.contains("{upstream}") {
            json_out(&app.castellan_stdin(
                &[
                    "upstream",
                    "create",
                    "--id",
                    &upstream,
                    "--kind",
                    "google",
                    "--name",
                    "Google",
                    "--client-id",
                    "castellan",
                    "--client-secret-stdin",
                    "--json",
                ],
                "upstream-secret\n",
            ));
        }
        let path = format!(
            "{API}{}",
            route
                .replace("{user}", &c.user_id)
                .replace("{victim}", &victim)
                .replace("{client}", &client)
                .replace("{role}", &role)
                .replace("{upstream}", &upstream)
        );
        let body = || body_for(method, route, i);

        let anonymous = call(&app, method, &path, None, body()).await;
        assert_eq!(
            anonymous.status, 401,
            "{method} {path} without a token: {}",
            anonymous.text
        );
        assert!(
            anonymous
                .header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer")),
            "{method} {path}: 401 carries a Bearer challenge"
        );
        assert_eq!(
            anonymous.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{method} {path}"
        );
        assert_eq!(anonymous.json["status"], 401);

        let forged = call(&app, method, &path, Some(&bad_token), body()).await;
        assert_eq!(forged.status, 401, "{method} {path} with a forged token");
        assert!(
            forged
                .header("www-authenticate")
                .is_some_and(|h| h.contains("invalid_token"))
        );

        for (who, token) in [
            ("a user without the admin role", &c.user),
            ("a client without the admin scope", &c.other_client),
        ] {
            let res = call(&app, method, &path, Some(token), body()).await;
            assert_eq!(res.status, 403, "{method} {path} as {who}: {}", res.text);
            assert!(
                res.header("www-authenticate")
                    .is_some_and(|h| h.contains("insufficient_scope"))
            );
        }

        // The admin user works through every row; automation (client credentials) too, on a
        // read-only or idempotent-enough subset checked below.
        let res = call(&app, method, &path, Some(&c.admin), body()).await;
        assert_eq!(
            res.status, *ok_status,
            "{method} {path} as the admin: {}",
            res.text
        );
    }
    for path in [
        "/users",
        "/clients",
        "/roles",
        "/keys",
        "/audit",
        "/upstreams",
    ] {
        let res = call(
            &app,
            "GET",
            &format!("{API}{path}"),
            Some(&c.automation),
            None,
        )
        .await;
        assert_eq!(
            res.status, 200,
            "GET {path} with a client-credentials admin token: {}",
            res.text
        );
    }
    // Each admin action is audited with its actor.
    let actor = format!("user:{}", c.admin_id);
    for kind in [
        "user_created",
        "user_deleted",
        "sessions_ended",
        "client_created",
        "client_updated",
        "client_secret_rotated",
        "client_deleted",
        "role_created",
        "role_deleted",
        "key_rotated",
        "password_reset_requested",
        "mfa_reset",
        "upstream_created",
        "upstream_deleted",
    ] {
        assert_eq!(
            app.count(&format!(
                "audit_events WHERE kind = '{kind}' AND actor = '{actor}'"
            ))
            .await,
            1,
            "one {kind} row by the admin"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_lists_exactly_the_routes() {
    let app = spawn_app().await;
    let res = app.get("/admin/api/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.expect("JSON");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            let path = path
                .strip_prefix(API)
                .unwrap_or_else(|| panic!("{path} is outside {API}"))
                .replace("{id}", "{x}")
                .replace("{name}", "{x}");
            documented.insert((method.to_uppercase(), path));
        }
    }
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, r, _)| {
            let r = ["{user}", "{victim}", "{client}", "{role}", "{upstream}"]
                .iter()
                .fold(r.to_string(), |acc, p| acc.replace(p, "{x}"));
            (m.to_string(), r)
        })
        .collect();
    assert_eq!(
        documented, routed,
        "the document and the route table differ"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn users_are_created_validated_updated_and_deleted_with_problem_details() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(with_mail(&sink)).await;
    let c = callers(&app).await;
    let t = Some(c.admin.as_str());

    let created = call(&app, "POST", &format!("{API}/users"), t, Some(json!({
        "email": "Carol@Example.com", "name": "Carol", "password": "a long enough passphrase 42", "roles": ["admin"]
    }))).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["roles"], json!(["admin", "user"]));
    assert_eq!(created.json["email_verified"], true);
    let id = created.json["id"].as_str().unwrap().to_owned();

    let dup = call(
        &app,
        "POST",
        &format!("{API}/users"),
        t,
        Some(json!({"email": "carol@example.com"})),
    )
    .await;
    assert_eq!(dup.status, 409, "{}", dup.text);

    let bad = call(
        &app,
        "POST",
        &format!("{API}/users"),
        t,
        Some(json!({
            "email": "not-an-email", "password": "short", "roles": ["ghost"]
        })),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(
        bad.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    let fields: BTreeSet<&str> = bad.json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from(["email", "password", "roles"]),
        "{}",
        bad.text
    );

    let unknown_field = call(
        &app,
        "POST",
        &format!("{API}/users"),
        t,
        Some(json!({"email": "x@example.com", "admin": true})),
    )
    .await;
    assert_eq!(
        unknown_field.status, 400,
        "unknown fields are refused: {}",
        unknown_field.text
    );
    let not_json = reqwest::Client::new()
        .post(app.url(&format!("{API}/users")))
        .bearer_auth(&c.admin)
        .body("email=x")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 415);
    let broken = reqwest::Client::new()
        .post(app.url(&format!("{API}/users")))
        .bearer_auth(&c.admin)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 400, "a truncated JSON body");
    assert_eq!(broken.headers()["content-type"], "application/problem+json");

    let search = call(
        &app,
        "GET",
        &format!("{API}/users?search=CAROL&limit=1"),
        t,
        None,
    )
    .await;
    assert_eq!(search.json["total"], 1, "{}", search.text);
    assert_eq!(search.json["items"][0]["id"], id.as_str());
    let bad_query = call(&app, "GET", &format!("{API}/users?offset=minus"), t, None).await;
    assert_eq!(bad_query.status, 400);
    assert_eq!(
        bad_query.header("content-type").as_deref(),
        Some("application/problem+json")
    );

    let patched = call(
        &app,
        "PATCH",
        &format!("{API}/users/{id}"),
        t,
        Some(json!({
            "name": "", "roles": [], "disabled": true
        })),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json["roles"], json!(["user"]));
    assert_eq!(patched.json["name"], Value::Null);
    assert_eq!(patched.json["disabled"], true);
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE kind = 'role_changed' AND user_id = '{id}'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE kind = 'user_disabled' AND user_id = '{id}'"
        ))
        .await,
        1
    );
    let taken = call(
        &app,
        "PATCH",
        &format!("{API}/users/{id}"),
        t,
        Some(json!({"email": "bob@example.com"})),
    )
    .await;
    assert_eq!(taken.status, 409, "{}", taken.text);

    // Ending Bob's sessions and deleting him.
    assert!(
        app.count(&format!("sessions WHERE user_id = '{}'", c.user_id))
            .await
            >= 1
    );
    let ended = call(
        &app,
        "DELETE",
        &format!("{API}/users/{}/sessions", c.user_id),
        t,
        None,
    )
    .await;
    assert_eq!(ended.status, 200);
    assert!(ended.json["ended"].as_u64().unwrap() >= 1);
    assert_eq!(
        app.count(&format!("sessions WHERE user_id = '{}'", c.user_id))
            .await,
        0
    );

    let gone = call(&app, "DELETE", &format!("{API}/users/{id}"), t, None).await;
    assert_eq!(gone.status, 204);
    let missing = call(&app, "GET", &format!("{API}/users/{id}"), t, None).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["status"], 404);
    assert_eq!(missing.json["type"], "about:blank");

    // A reset mail for Bob, on the admin's request.
    let reset = call(
        &app,
        "POST",
        &format!("{API}/users/{}/password-reset", c.user_id),
        t,
        None,
    )
    .await;
    assert_eq!(reset.status, 202);
    let mail = sink
        .wait_for("bob@example.com", std::time::Duration::from_secs(10))
        .await;
    assert!(
        mail.link().contains("/password/reset"),
        "{}",
        mail.text_body
    );
}

#[tokio::test]
async fn clients_get_a_secret_once_and_a_rotated_secret_replaces_the_old_one() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let t = Some(c.automation.as_str());
    let created = call(
        &app,
        "POST",
        &format!("{API}/clients"),
        t,
        Some(json!({
            "name": "Batch", "grant_types": ["client_credentials"], "scope": "reports"
        })),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["client_id"].as_str().unwrap().to_owned();
    let secret = created.json["client_secret"].as_str().unwrap().to_owned();
    let shown = call(&app, "GET", &format!("{API}/clients/{id}"), t, None).await;
    assert!(
        shown.json.get("client_secret").is_none(),
        "the secret is shown only once"
    );
    assert_eq!(
        app.count(&format!("audit_events WHERE kind = 'client_created' AND client_id = '{id}' AND actor LIKE 'client:%'")).await,
        1
    );

    let cc = [("grant_type", "client_credentials")];
    assert_eq!(
        token_request(&app, Auth::Basic(&id, &secret), &cc)
            .await
            .status,
        200
    );
    let rotated = call(&app, "POST", &format!("{API}/clients/{id}/secret"), t, None).await;
    assert_eq!(rotated.status, 200);
    let new_secret = rotated.json["client_secret"].as_str().unwrap().to_owned();
    token_request(&app, Auth::Basic(&id, &secret), &cc)
        .await
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(
        token_request(&app, Auth::Basic(&id, &new_secret), &cc)
            .await
            .status,
        200
    );

    let invalid = call(
        &app,
        "PUT",
        &format!("{API}/clients/{id}"),
        t,
        Some(json!({
            "name": "Batch", "public": true, "grant_types": ["client_credentials"]
        })),
    )
    .await;
    assert_eq!(invalid.status, 400, "{}", invalid.text);
    let updated = call(
        &app,
        "PUT",
        &format!("{API}/clients/{id}"),
        t,
        Some(json!({
            "name": "Nightly batch", "grant_types": ["client_credentials"], "scope": "reports audit"
        })),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json["scope"], "audit reports");

    assert_eq!(
        call(&app, "DELETE", &format!("{API}/clients/{id}"), t, None)
            .await
            .status,
        204
    );
    token_request(&app, Auth::Basic(&id, &new_secret), &cc)
        .await
        .assert_oauth_error(401, "invalid_client");
    assert_eq!(
        call(&app, "DELETE", &format!("{API}/clients/{id}"), t, None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn custom_roles_reach_the_tokens_and_a_held_or_built_in_role_cannot_be_deleted() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let t = Some(c.admin.as_str());
    let made = call(
        &app,
        "POST",
        &format!("{API}/roles"),
        t,
        Some(json!({"name": "auditor"})),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text);
    assert_eq!(
        call(
            &app,
            "POST",
            &format!("{API}/roles"),
            t,
            Some(json!({"name": "auditor"}))
        )
        .await
        .status,
        409
    );
    assert_eq!(
        call(
            &app,
            "POST",
            &format!("{API}/roles"),
            t,
            Some(json!({"name": "Bad Name"}))
        )
        .await
        .status,
        400
    );
    let give = call(
        &app,
        "PATCH",
        &format!("{API}/users/{}", c.user_id),
        t,
        Some(json!({"roles": ["auditor"]})),
    )
    .await;
    assert_eq!(give.status, 200, "{}", give.text);

    let held = call(&app, "DELETE", &format!("{API}/roles/auditor"), t, None).await;
    assert_eq!(held.status, 409, "{}", held.text);
    assert_eq!(
        call(&app, "DELETE", &format!("{API}/roles/admin"), t, None)
            .await
            .status,
        409
    );
    assert_eq!(
        call(&app, "DELETE", &format!("{API}/roles/nobody"), t, None)
            .await
            .status,
        404
    );

    // Bob's next token carries the new role, in the access token and the ID token.
    let rp = admin_console(&app).await;
    let bob = sign_in_as(&app, &rp, "bob@example.com", &["openid", "roles"], true).await;
    assert_eq!(
        claims(&bob.access_token())["roles"],
        json!(["auditor", "user"])
    );
    assert_eq!(claims(&bob.id_token())["roles"], json!(["auditor", "user"]));

    let take = call(
        &app,
        "PATCH",
        &format!("{API}/users/{}", c.user_id),
        t,
        Some(json!({"roles": []})),
    )
    .await;
    assert_eq!(take.status, 200);
    assert_eq!(
        call(&app, "DELETE", &format!("{API}/roles/auditor"), t, None)
            .await
            .status,
        204
    );
    let roles = call(&app, "GET", &format!("{API}/roles"), t, None).await;
    let names: Vec<&str> = roles
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "user"]);
}

/// The caller check and userinfo read the token's user and its revocation in one query
/// (`Store::token_user`): each way a user token stops counting is checked on both endpoints.
#[tokio::test]
async fn an_admin_token_stops_working_when_revoked_or_its_user_is_disabled_or_deleted() {
    let app = spawn_app().await;
    create_user(&app, "root@example.com", PASSWORD);
    set_roles(&app, "root@example.com", &["admin"]);
    let rp = admin_console(&app).await;
    let scopes = ["openid", "admin", "roles"];
    let first = sign_in(&app, &rp, "root@example.com", &scopes, true).await;
    let second = sign_in_as(&app, &rp, "root@example.com", &scopes, false).await;
    let (first, second) = (first.access_token(), second.access_token());
    let keys = format!("{API}/keys");
    let admin = async |token: &str| call(&app, "GET", &keys, Some(token), None).await;
    let invalid_token = |res: &Raw, why: &str| {
        assert_eq!(res.status, 401, "{why}: {}", res.text);
        let challenge = res.headers["www-authenticate"].to_str().unwrap_or_default();
        assert!(challenge.contains("invalid_token"), "{why}: {challenge}");
    };
    for t in [&first, &second] {
        assert_eq!(admin(t).await.status, 200);
        assert_eq!(userinfo_raw(&app, Some(t)).await.status, 200);
    }

    // RFC 7009: the first token alone is revoked.
    rp.revoke(&first, Some("access_token"))
        .await
        .expect("revoke");
    invalid_token(&admin(&first).await, "revoked, admin API");
    invalid_token(&userinfo_raw(&app, Some(&first)).await, "revoked, userinfo");
    assert_eq!(
        admin(&second).await.status,
        200,
        "the other token is untouched"
    );

    // RFC 6750 §3.1: the token of a disabled or deleted user has ended (`invalid_token`, 401),
    // not a valid token lacking a privilege (403).
    json_out(&app.castellan(&["user", "disable", "root@example.com", "--json"]));
    invalid_token(&admin(&second).await, "a disabled administrator");
    invalid_token(
        &userinfo_raw(&app, Some(&second)).await,
        "disabled, userinfo",
    );

    json_out(&app.castellan(&["user", "delete", "root@example.com", "--json"]));
    invalid_token(&admin(&second).await, "a deleted administrator");
    invalid_token(
        &userinfo_raw(&app, Some(&second)).await,
        "deleted, userinfo",
    );
}

#[tokio::test]
async fn losing_the_admin_role_takes_effect_at_once_and_on_the_next_refresh() {
    let app = spawn_app_with(|s| s.oauth.roles_claim = "https://example.com/roles".into()).await;
    create_user(&app, "root@example.com", PASSWORD);
    set_roles(&app, "root@example.com", &["admin"]);
    let rp = admin_console(&app).await;
    let signed = sign_in(
        &app,
        &rp,
        "root@example.com",
        &["openid", "admin", "roles", "offline_access"],
        true,
    )
    .await;
    let token = signed.access_token();
    assert_eq!(
        claims(&token)["https://example.com/roles"],
        json!(["admin", "user"])
    );
    assert!(
        claims(&token).get("roles").is_none(),
        "the configured claim name is used"
    );
    assert_eq!(
        call(&app, "GET", &format!("{API}/keys"), Some(&token), None)
            .await
            .status,
        200
    );

    set_roles(&app, "root@example.com", &["user"]);
    let res = call(&app, "GET", &format!("{API}/keys"), Some(&token), None).await;
    assert_eq!(res.status, 403, "the role is checked on every call");

    let refreshed = rp.refresh(&signed.refresh_token()).await.expect("refresh");
    let at = refreshed.access_token().secret().clone();
    let scope = claims(&at)["scope"].as_str().unwrap().to_owned();
    assert!(!scope.split(' ').any(|s| s == "admin"), "{scope}");
    assert_eq!(claims(&at)["https://example.com/roles"], json!(["user"]));
    assert_eq!(
        app.count("audit_events WHERE kind = 'token_refreshed'")
            .await,
        1
    );
    assert_eq!(
        app.count("audit_events WHERE kind = 'role_changed' AND actor = 'cli'")
            .await,
        2
    );
}

#[tokio::test]
async fn the_audit_log_is_queried_by_kind_user_and_time_and_paged_newest_first() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let t = Some(c.admin.as_str());
    for i in 0..3 {
        json_out(&app.castellan(&["role", "create", &format!("r{i}"), "--json"]));
    }
    let page1 = call(
        &app,
        "GET",
        &format!("{API}/audit?kind=role_created&limit=2"),
        t,
        None,
    )
    .await;
    assert_eq!(page1.status, 200, "{}", page1.text);
    let items = page1.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["detail"], "role=r2", "newest first");
    assert_eq!(items[0]["actor"], "cli");
    let before = page1.json["next_before"].as_i64().expect("a next page");
    let page2 = call(
        &app,
        "GET",
        &format!("{API}/audit?kind=role_created&limit=2&before={before}"),
        t,
        None,
    )
    .await;
    let items = page2.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["detail"], "role=r0");

    let by_user = call(
        &app,
        "GET",
        &format!("{API}/audit?user_id={}&kind=login_succeeded", c.user_id),
        t,
        None,
    )
    .await;
    assert_eq!(
        by_user.json["items"].as_array().unwrap().len(),
        1,
        "{}",
        by_user.text
    );
    let now = app.state.clock.now();
    let future = call(
        &app,
        "GET",
        &format!("{API}/audit?from={}", now + 10),
        t,
        None,
    )
    .await;
    assert_eq!(future.json["items"].as_array().unwrap().len(), 0);
    let backwards = call(
        &app,
        "GET",
        &format!("{API}/audit?from={now}&to={}", now - 1),
        t,
        None,
    )
    .await;
    assert_eq!(backwards.status, 400);
}

#[tokio::test]
async fn keys_are_listed_and_rotated_through_the_api() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let before = call(
        &app,
        "GET",
        &format!("{API}/keys"),
        Some(&c.automation),
        None,
    )
    .await;
    assert_eq!(before.json.as_array().unwrap().len(), 1);
    let rotated = call(
        &app,
        "POST",
        &format!("{API}/keys/rotate"),
        Some(&c.automation),
        None,
    )
    .await;
    assert_eq!(rotated.status, 201);
    let kid = rotated.json["kid"].as_str().unwrap();
    let after = call(
        &app,
        "GET",
        &format!("{API}/keys"),
        Some(&c.automation),
        None,
    )
    .await;
    let states: Vec<(&str, &str)> = after
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["kid"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states.len(), 2);
    // Published now, signing an hour later (keys.publish_ahead_secs); the old key signs until then.
    assert!(states.contains(&(kid, "next")), "{states:?}");
    assert!(
        states.iter().any(|(k, s)| *k != kid && *s == "active"),
        "{states:?}"
    );
    assert!(
        rotated.json["activate_at"].as_i64().unwrap()
            > rotated.json["created_at"].as_i64().unwrap()
    );
    assert_eq!(
        app.count("audit_events WHERE kind = 'key_rotated' AND actor LIKE 'client:%'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_scope_taken_from_a_client_is_gone_from_its_refresh_tokens_and_admin_tokens() {
    let app = spawn_app().await;
    create_user(&app, "root@example.com", PASSWORD);
    set_roles(&app, "root@example.com", &["admin"]);
    let rp = admin_console(&app).await;
    let signed = sign_in(
        &app,
        &rp,
        "root@example.com",
        &["openid", "admin", "roles", "offline_access"],
        true,
    )
    .await;
    let before = signed.access_token();
    assert_eq!(
        call(&app, "GET", &format!("{API}/keys"), Some(&before), None)
            .await
            .status,
        200
    );

    // The operator takes `admin` away from the console client.
    json_out(&app.castellan(&[
        "client",
        "update",
        &rp.client_id,
        "--name",
        "Test client",
        "--redirect-uri",
        REDIRECT_URI,
        "--scope",
        "openid email roles offline_access",
        "--json",
    ]));
    let res = call(&app, "GET", &format!("{API}/keys"), Some(&before), None).await;
    assert_eq!(
        res.status, 403,
        "a token from a client that may no longer hold admin: {}",
        res.text
    );

    let refreshed = rp.refresh(&signed.refresh_token()).await.expect("refresh");
    let after = refreshed.access_token().secret().clone();
    let scope = claims(&after)["scope"].as_str().unwrap().to_owned();
    assert!(
        !scope.split(' ').any(|s| s == "admin"),
        "the refreshed token lost admin: {scope}"
    );
    assert!(scope.split(' ').any(|s| s == "roles"), "{scope}");
    let res = call(&app, "GET", &format!("{API}/keys"), Some(&after), None).await;
    assert_eq!(res.status, 403, "{}", res.text);
}

#[tokio::test]
async fn an_administrator_cannot_lock_themselves_out_through_the_api() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let own = format!("{API}/users/{}", c.admin_id);
    for (method, body, why) in [
        ("PATCH", Some(json!({"disabled": true})), "disable"),
        ("PATCH", Some(json!({"roles": ["user"]})), "drop admin"),
        ("DELETE", None, "delete"),
    ] {
        let res = call(&app, method, &own, Some(&c.admin), body).await;
        assert_eq!(res.status, 409, "{why}: {}", res.text);
        assert_eq!(
            res.headers["content-type"].to_str().unwrap_or_default(),
            "application/problem+json",
            "{why}"
        );
        assert!(
            res.text.contains("another administrator"),
            "{why}: {}",
            res.text
        );
    }
    let me = call(&app, "GET", &own, Some(&c.admin), None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json["disabled"], false);
    assert!(
        me.json["roles"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("admin")))
    );
    // The same changes to another user go through; the command line is no user.
    let other = format!("{API}/users/{}", c.user_id);
    let res = call(
        &app,
        "PATCH",
        &other,
        Some(&c.admin),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text);
    json_out(&app.castellan(&["user", "disable", "root@example.com", "--json"]));
}

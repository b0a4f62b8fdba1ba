//! Upstream identity providers through the admin REST API (`/admin/api/v1/upstreams`) and the
//! admin page (`/admin/upstreams`), issue 18: each change lands in the database and the audit
//! log with the administrator as its actor, every bad field is named, and the client secret
//! goes in once and never comes out.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::admin_api::{API, call, callers};
use crate::admin_pages::{admin_app, audit_rows, element, get, page, see_other, submit};
use crate::harness::forms::Form;
use crate::harness::rp::Raw;
use crate::harness::{TestApp, spawn_app, spawn_app_with};

const SECRET: &str = "upstream-client-secret-4242";

fn kek() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([9u8; 32])
}

/// A valid body for `POST /upstreams`, changed by `edit`.
fn body(edit: impl FnOnce(&mut Value)) -> Value {
    let mut b = json!({
        "id": "corp",
        "kind": "oidc",
        "name": "Corp SSO",
        "issuer": "https://sso.corp.example",
        "client_id": "castellan",
        "client_secret": SECRET,
    });
    edit(&mut b);
    b
}

/// The answer never carries the secret, under any name.
fn assert_no_secret(res: &Raw, what: &str) {
    assert!(!res.text.contains(SECRET), "{what}: {}", res.text);
    assert!(
        !res.text.contains("client_secret\""),
        "{what}: {}",
        res.text
    );
}

fn problem_fields(res: &Raw) -> BTreeSet<String> {
    res.json["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Sealed (a key-encryption key is configured) and never in an audit row.
async fn no_secret_stored_in_the_clear_or_audited(app: &TestApp) {
    assert_eq!(
        app.count(&format!(
            "upstream_providers WHERE client_secret LIKE '%{SECRET}%'"
        ))
        .await,
        0,
        "the secret is stored sealed"
    );
    assert_eq!(
        app.count(&format!("audit_events WHERE detail LIKE '%{SECRET}%'"))
            .await,
        0
    );
}

#[tokio::test]
async fn upstreams_are_created_listed_shown_and_deleted_through_the_api_and_audited() {
    let kek = kek();
    let app = spawn_app_with(move |s| {
        s.keys.encryption_key = Some(castellan::config::Secret::new(kek));
    })
    .await;
    let c = callers(&app).await;
    let t = Some(c.admin.as_str());
    let url = format!("{API}/upstreams");

    let empty = call(&app, "GET", &url, t, None).await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(empty.json, json!([]));

    // jit left out: true; trust_email given.
    let created = call(
        &app,
        "POST",
        &url,
        t,
        Some(body(|b| b["trust_email"] = json!(true))),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_no_secret(&created, "the created upstream");
    assert_eq!(created.header("cache-control").as_deref(), Some("no-store"));
    let corp = &created.json;
    assert_eq!(corp["id"], "corp");
    assert_eq!(corp["kind"], "oidc");
    assert_eq!(corp["name"], "Corp SSO");
    assert_eq!(corp["issuer"], "https://sso.corp.example");
    assert_eq!(corp["client_id"], "castellan");
    assert_eq!(corp["scope"], "openid email profile");
    assert_eq!(corp["jit"], true, "jit defaults to true");
    assert_eq!(corp["trust_email"], true);
    assert_eq!(corp["secret_sealed"], true);
    assert!(corp["created_at"].as_i64().is_some_and(|t| t > 0), "{corp}");
    assert_eq!(
        corp["redirect_uri"],
        format!("{}/login/upstream/corp/callback", app.address)
    );
    let keys: BTreeSet<&str> = corp
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "id",
            "kind",
            "name",
            "issuer",
            "client_id",
            "scope",
            "jit",
            "trust_email",
            "secret_sealed",
            "created_at",
            "redirect_uri"
        ])
    );

    // GitHub: no issuer, its own scope, jit turned off; trust_email defaults to false.
    let gh = call(
        &app,
        "POST",
        &url,
        t,
        Some(json!({
            "id": "gh", "kind": "github", "name": "GitHub", "client_id": "Iv1.abc",
            "client_secret": SECRET, "jit": false,
        })),
    )
    .await;
    assert_eq!(gh.status, 201, "{}", gh.text);
    assert_no_secret(&gh, "the created GitHub upstream");
    assert_eq!(gh.json["issuer"], Value::Null);
    assert_eq!(gh.json["scope"], "read:user user:email");
    assert_eq!(gh.json["jit"], false);
    assert_eq!(gh.json["trust_email"], false);

    let list = call(&app, "GET", &url, t, None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_no_secret(&list, "the list");
    let ids: Vec<&str> = list
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["id"].as_str())
        .collect();
    assert_eq!(ids, ["corp", "gh"]);
    assert_eq!(list.json[0], created.json);
    // Automation (a client-credentials token with `admin`) reads them too.
    let listed = call(&app, "GET", &url, Some(&c.automation), None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);

    let shown = call(&app, "GET", &format!("{url}/corp"), t, None).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_no_secret(&shown, "one upstream");
    assert_eq!(shown.json, created.json);

    // The CLI sees what the API made (same redirect URI, from the same core function).
    let cli = crate::harness::castellan_with(
        app.db.url(),
        &["upstream", "show", "corp", "--json"],
        None,
        &[("CASTELLAN_ISSUER", app.address.as_str())],
    );
    assert!(cli.status.success(), "{}", crate::harness::stderr(&cli));
    let cli = crate::harness::json_out(&cli);
    assert_eq!(cli["redirect_uri"], corp["redirect_uri"]);

    let deleted = call(&app, "DELETE", &format!("{url}/gh"), t, None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(deleted.text.is_empty());
    let gone = call(&app, "GET", &format!("{url}/gh"), t, None).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    let again = call(&app, "DELETE", &format!("{url}/gh"), t, None).await;
    assert_eq!(again.status, 404, "{}", again.text);
    assert_eq!(app.count("upstream_providers").await, 1);

    let actor = format!("user:{}", c.admin_id);
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE kind = 'upstream_created' AND actor = '{actor}'"
        ))
        .await,
        2
    );
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE kind = 'upstream_deleted' AND actor = '{actor}' \
             AND detail = 'upstream=gh'"
        ))
        .await,
        1
    );
    no_secret_stored_in_the_clear_or_audited(&app).await;
}

#[tokio::test]
async fn bad_upstream_fields_are_each_named_a_taken_id_is_409_and_unknown_ids_404() {
    let app = spawn_app().await;
    let c = callers(&app).await;
    let t = Some(c.admin.as_str());
    let url = format!("{API}/upstreams");

    type Edit = fn(&mut Value);
    let cases: &[(&str, Edit, &[&str])] = &[
        ("a bad id", |b| b["id"] = json!("Not/Ok"), &["id"]),
        ("an unknown kind", |b| b["kind"] = json!("saml"), &["kind"]),
        ("a blank name", |b| b["name"] = json!(" "), &["name"]),
        (
            "no issuer for oidc",
            |b| {
                b.as_object_mut().unwrap().remove("issuer");
            },
            &["issuer"],
        ),
        (
            "a plain-http issuer",
            |b| b["issuer"] = json!("http://sso.example"),
            &["issuer"],
        ),
        (
            "an issuer with a query",
            |b| b["issuer"] = json!("https://sso.example/?tenant=1"),
            &["issuer"],
        ),
        (
            "an issuer for github",
            |b| b["kind"] = json!("github"),
            &["issuer"],
        ),
        (
            "a scope without openid",
            |b| b["scope"] = json!("email profile"),
            &["scope"],
        ),
        (
            "a blank client id",
            |b| b["client_id"] = json!(""),
            &["client_id"],
        ),
        (
            "an empty secret",
            |b| b["client_secret"] = json!(""),
            &["client_secret"],
        ),
        (
            "many at once",
            |b| {
                b["id"] = json!("-x-");
                b["name"] = json!("");
                b["client_id"] = json!("a\u{7}b");
                b["client_secret"] = json!("two\nlines");
            },
            &["id", "name", "client_id", "client_secret"],
        ),
    ];
    for (what, edit, fields) in cases {
        let res = call(&app, "POST", &url, t, Some(body(edit))).await;
        assert_eq!(res.status, 400, "{what}: {}", res.text);
        assert_eq!(
            res.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{what}"
        );
        let expected: BTreeSet<String> = fields.iter().map(|f| f.to_string()).collect();
        assert_eq!(problem_fields(&res), expected, "{what}: {}", res.text);
        assert!(!res.text.contains(SECRET), "{what}: {}", res.text);
    }

    // Bodies that do not parse: 400 too, and a secret of the wrong type is not quoted back.
    for (what, b) in [
        (
            "a numeric secret",
            body(|b| b["client_secret"] = json!(424242424242u64)),
        ),
        (
            "no secret",
            body(|b| {
                b.as_object_mut().unwrap().remove("client_secret");
            }),
        ),
        ("an unknown field", body(|b| b["secret"] = json!(SECRET))),
        ("a string for jit", body(|b| b["jit"] = json!("yes"))),
    ] {
        let res = call(&app, "POST", &url, t, Some(b)).await;
        assert_eq!(res.status, 400, "{what}: {}", res.text);
        assert!(!res.text.contains("424242424242"), "{what}: {}", res.text);
        assert!(!res.text.contains(SECRET), "{what}: {}", res.text);
    }
    assert_eq!(app.count("upstream_providers").await, 0);
    assert_eq!(
        app.count("audit_events WHERE kind = 'upstream_created'")
            .await,
        0
    );

    // A taken id.
    let first = call(&app, "POST", &url, t, Some(body(|_| {}))).await;
    assert_eq!(first.status, 201, "{}", first.text);
    // Sealed under the key-encryption key made beside a SQLite database; none on PostgreSQL
    // unless configured: the answer says which.
    let sealed = app
        .count("upstream_providers WHERE client_secret LIKE 'sealed:%'")
        .await;
    assert_eq!(first.json["secret_sealed"], sealed == 1, "{}", first.text);
    let dup = call(
        &app,
        "POST",
        &url,
        t,
        Some(body(|b| b["name"] = json!("Another"))),
    )
    .await;
    assert_eq!(dup.status, 409, "{}", dup.text);
    assert_eq!(
        dup.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert!(!dup.text.contains(SECRET), "{}", dup.text);
    assert_eq!(app.count("upstream_providers").await, 1);
    assert_eq!(
        app.count("audit_events WHERE kind = 'upstream_created'")
            .await,
        1
    );

    for method in ["GET", "DELETE"] {
        let res = call(&app, method, &format!("{url}/nosuch"), t, None).await;
        assert_eq!(res.status, 404, "{method}: {}", res.text);
        assert_eq!(res.json["status"], 404);
    }
    assert_eq!(
        app.count("audit_events WHERE kind = 'upstream_deleted'")
            .await,
        0
    );
}

#[tokio::test]
async fn the_upstream_api_refuses_callers_without_a_valid_token_and_never_documents_a_readable_secret()
 {
    let app = spawn_app().await;
    let url = format!("{API}/upstreams");
    let routes = [
        ("GET", url.clone(), None),
        ("POST", url.clone(), Some(body(|_| {}))),
        ("GET", format!("{url}/corp"), None),
        ("DELETE", format!("{url}/corp"), None),
    ];
    for (method, path, b) in &routes {
        let res = call(&app, method, path, None, b.clone()).await;
        assert_eq!(res.status, 401, "{method} {path}: {}", res.text);
        assert!(
            res.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer")),
            "{method} {path}"
        );
        assert_eq!(
            res.header("content-type").as_deref(),
            Some("application/problem+json")
        );
        let res = call(&app, method, path, Some("not-a-token"), b.clone()).await;
        assert_eq!(res.status, 401, "{method} {path} with a bad token");
    }
    assert_eq!(app.count("upstream_providers").await, 0);

    // The OpenAPI document describes the secret as write-only.
    let doc: Value = app
        .get("/admin/api/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let schema = &doc["components"]["schemas"];
    assert_eq!(
        schema["UpstreamIn"]["properties"]["client_secret"]["writeOnly"], true,
        "{}",
        schema["UpstreamIn"]
    );
    let out = schema["UpstreamOut"]["properties"]
        .as_object()
        .expect("the upstream schema");
    assert!(out.contains_key("redirect_uri") && !out.contains_key("client_secret"));
}

// --- the admin page ------------------------------------------------------------------------

const PAGE: &str = "/admin/upstreams";

#[tokio::test]
async fn an_admin_registers_lists_and_deletes_upstreams_on_the_admin_page() {
    let (app, admin_id) = admin_app().await;
    let body = page(&app, PAGE).await;
    assert!(body.contains("No upstream providers"), "{body}");
    assert!(
        body.contains("href=\"/admin/upstreams\" aria-current=\"page\""),
        "in the navigation: {body}"
    );
    // A new form: an OpenID provider, just-in-time accounts on, trusted email off.
    let form = Form::with_action(&body, PAGE);
    assert!(form.has("client_secret"));
    assert!(body.contains("id=\"jit\" name=\"jit\" type=\"checkbox\" value=\"yes\" checked"));
    assert!(
        body.contains("id=\"trust_email\" name=\"trust_email\" type=\"checkbox\" value=\"yes\">")
    );
    assert!(body.contains("name=\"client_secret\" type=\"password\""));

    let res = submit(
        &app,
        PAGE,
        PAGE,
        &[
            ("id", "corp"),
            ("kind", "oidc"),
            ("name", "Corp SSO"),
            ("issuer", "https://sso.corp.example"),
            ("client_id", "castellan"),
            ("client_secret", SECRET),
            ("scope", ""),
            ("jit", "yes"),
        ],
        None,
    )
    .await;
    assert_eq!(
        see_other(res).await,
        "/admin/upstreams?notice=upstream-created"
    );
    let res = submit(
        &app,
        PAGE,
        PAGE,
        &[
            ("id", "gh"),
            ("kind", "github"),
            ("name", "GitHub"),
            ("issuer", ""),
            ("client_id", "Iv1.abc"),
            ("client_secret", SECRET),
            ("trust_email", "yes"),
        ],
        None,
    )
    .await;
    assert_eq!(
        see_other(res).await,
        "/admin/upstreams?notice=upstream-created"
    );

    let listed = page(&app, "/admin/upstreams?notice=upstream-created").await;
    assert!(listed.contains("The upstream provider is registered"));
    assert!(
        listed.contains("Corp SSO") && listed.contains("GitHub"),
        "{listed}"
    );
    assert!(!listed.contains(SECRET), "the secret is never shown");
    for id in ["corp", "gh"] {
        assert_eq!(
            element(&listed, &format!("redirect-uri-{id}")),
            Some(format!("{}/login/upstream/{id}/callback", app.address)),
            "{listed}"
        );
    }
    // What the form said is what is stored: the unticked box is false, the empty fields
    // take the kind's defaults.
    assert_eq!(
        app.count(
            "upstream_providers WHERE id = 'corp' AND jit = true AND trust_email = false \
             AND scope = 'openid email profile' AND issuer = 'https://sso.corp.example'"
        )
        .await,
        1
    );
    assert_eq!(
        app.count(
            "upstream_providers WHERE id = 'gh' AND jit = false AND trust_email = true \
             AND issuer IS NULL"
        )
        .await,
        1
    );
    assert_eq!(audit_rows(&app, "upstream_created", &admin_id).await, 2);

    // Delete, through the confirmation page.
    let confirm = "/admin/upstreams/gh/delete";
    assert!(listed.contains(&format!("href=\"{confirm}\"")), "{listed}");
    let asked = page(&app, confirm).await;
    assert!(asked.contains("GitHub (gh)"), "{asked}");
    let res = submit(&app, confirm, confirm, &[], None).await;
    assert_eq!(
        see_other(res).await,
        "/admin/upstreams?notice=upstream-deleted"
    );
    assert_eq!(app.count("upstream_providers").await, 1);
    assert_eq!(app.count("upstream_providers WHERE id = 'corp'").await, 1);
    assert_eq!(audit_rows(&app, "upstream_deleted", &admin_id).await, 1);
    assert_eq!(get(&app, confirm).await.0, 404);
    let after = page(&app, PAGE).await;
    assert!(!after.contains("redirect-uri-gh"), "{after}");
    // The secret is never audited.
    assert_eq!(
        app.count(&format!("audit_events WHERE detail LIKE '%{SECRET}%'"))
            .await,
        0
    );
}

#[tokio::test]
async fn an_invalid_upstream_form_comes_back_with_messages_and_the_values_but_not_the_secret() {
    let (app, _) = admin_app().await;
    let res = submit(
        &app,
        PAGE,
        PAGE,
        &[
            ("id", "Bad Id"),
            ("kind", "github"),
            ("name", "<b>Corp</b>"),
            ("issuer", "https://github.example"),
            ("client_id", "castellan"),
            ("client_secret", SECRET),
            ("scope", "read:user"),
            ("trust_email", "yes"),
        ],
        None,
    )
    .await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    for field in ["id", "issuer"] {
        assert!(
            body.contains(&format!("id=\"{field}-error\"")),
            "no message for {field}:\n{body}"
        );
    }
    assert!(!body.contains("id=\"name-error\""), "{body}");
    assert!(!body.contains("<b>"), "user data is escaped:\n{body}");
    let kept = Form::with_action(&body, PAGE);
    let value = |name: &str| kept.input(name).map(|i| i.value.clone());
    assert_eq!(value("id").as_deref(), Some("Bad Id"));
    assert_eq!(value("name").as_deref(), Some("<b>Corp</b>"));
    assert_eq!(value("issuer").as_deref(), Some("https://github.example"));
    assert_eq!(value("client_id").as_deref(), Some("castellan"));
    assert_eq!(value("scope").as_deref(), Some("read:user"));
    assert_eq!(value("client_secret").as_deref(), Some(""), "typed again");
    assert!(
        body.contains("<option value=\"github\" selected>"),
        "{body}"
    );
    assert!(
        body.contains("id=\"jit\" name=\"jit\" type=\"checkbox\" value=\"yes\">"),
        "jit stays unticked: {body}"
    );
    assert!(body.contains(
        "id=\"trust_email\" name=\"trust_email\" type=\"checkbox\" value=\"yes\" checked"
    ));
    assert!(
        !body.contains(SECRET),
        "the secret is not rendered back:\n{body}"
    );
    assert_eq!(app.count("upstream_providers").await, 0);

    // A taken id: 409 with the message, the values kept, the secret not.
    let fields = [
        ("id", "corp"),
        ("kind", "google"),
        ("name", "Corp"),
        ("client_id", "castellan"),
        ("client_secret", SECRET),
        ("jit", "yes"),
    ];
    let res = submit(&app, PAGE, PAGE, &fields, None).await;
    see_other(res).await;
    let res = submit(&app, PAGE, PAGE, &fields, None).await;
    assert_eq!(res.status(), 409);
    let body = res.text().await.unwrap();
    assert!(body.contains("exists"), "{body}");
    assert!(body.contains("value=\"corp\""), "{body}");
    assert!(!body.contains(SECRET), "{body}");
    assert_eq!(app.count("upstream_providers").await, 1);

    // Unknown upstreams are 404 pages; a form without its CSRF field is refused.
    assert_eq!(get(&app, "/admin/upstreams/nosuch/delete").await.0, 404);
    let res = submit(
        &app,
        "/admin/upstreams/corp/delete",
        "/admin/upstreams/corp/delete",
        &[],
        None,
    )
    .await;
    see_other(res).await;
    let listed = page(&app, PAGE).await;
    let form = Form::with_action(&listed, PAGE);
    let res = form
        .send(
            &app.client,
            &app,
            &[
                ("id".into(), "nocsrf".into()),
                ("kind".into(), "google".into()),
                ("name".into(), "X".into()),
                ("client_id".into(), "c".into()),
                ("client_secret".into(), SECRET.into()),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(app.count("upstream_providers").await, 0);
}

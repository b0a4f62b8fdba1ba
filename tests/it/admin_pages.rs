//! The admin pages (`/admin`): who gets in, and what an administrator can do with the forms —
//! each change checked where it lands (the database, the token endpoint, the CLI).

use castellan::clock::Clock;
use castellan::domain::{AuditEntry, AuditKind};
use castellan::services::admin::{Caller, NewUserSpec};

use crate::harness::forms::{Form, location, query_param, unescape};
use crate::harness::rp::{Auth, PASSWORD, create_client, create_user, token_request};
use crate::harness::{TestApp, browser, json_out, spawn_app, stdout};

const ADMIN_EMAIL: &str = "root@example.com";

fn create_admin(app: &TestApp, email: &str) -> String {
    let out = json_out(&app.castellan_stdin(
        &[
            "user",
            "create",
            "--email",
            email,
            "--role",
            "admin",
            "--password-stdin",
            "--json",
        ],
        &format!("{PASSWORD}\n"),
    ));
    out["id"].as_str().expect("an id").to_owned()
}

fn encoded(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Signs in on `/login?return_to=...` with `client`; returns where the login sends the browser.
async fn login(app: &TestApp, client: &reqwest::Client, email: &str, return_to: &str) -> String {
    let url = app.url(&format!("/login?return_to={}", encoded(return_to)));
    let page = client.get(&url).send().await.unwrap().text().await.unwrap();
    let res = Form::with_action(&page, "/login")
        .on_page(&url)
        .submit_with(
            client,
            app,
            &[("email", email), ("password", PASSWORD)],
            None,
        )
        .await;
    assert_eq!(res.status(), 303, "login of {email} failed");
    location(&res)
}

/// A server with an administrator signed in with the app's browser; returns the admin's id.
pub(crate) async fn admin_app() -> (TestApp, String) {
    let app = spawn_app().await;
    let id = create_admin(&app, ADMIN_EMAIL);
    assert_eq!(
        login(&app, &app.client, ADMIN_EMAIL, "/admin").await,
        "/admin"
    );
    (app, id)
}

/// GET with the app's browser: status and body.
pub(crate) async fn get(app: &TestApp, path: &str) -> (u16, String) {
    let res = app.get(path).await;
    (res.status().as_u16(), res.text().await.unwrap())
}

/// GET that must be a 200 page.
pub(crate) async fn page(app: &TestApp, path: &str) -> String {
    let (status, body) = get(app, path).await;
    assert_eq!(status, 200, "GET {path}:\n{body}");
    body
}

/// Submits the form of `page_path` that posts to `action`, as the browser would.
pub(crate) async fn submit(
    app: &TestApp,
    page_path: &str,
    action: &str,
    fields: &[(&str, &str)],
    button: Option<(&str, &str)>,
) -> reqwest::Response {
    let body = page(app, page_path).await;
    Form::with_action(&body, action)
        .on_page(&app.url(page_path))
        .submit(app, fields, button)
        .await
}

pub(crate) async fn see_other(res: reqwest::Response) -> String {
    let status = res.status().as_u16();
    if status != 303 {
        panic!("expected 303, got {status}:\n{}", res.text().await.unwrap());
    }
    location(&res)
}

/// The text of the element with this id (`<code id="...">text</code>`), unescaped.
pub(crate) fn element(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    let end = html[start..].find('<')? + start;
    Some(unescape(&html[start..end]))
}

pub(crate) async fn audit_rows(app: &TestApp, kind: &str, actor: &str) -> i64 {
    app.count(&format!(
        "audit_events WHERE kind = '{kind}' AND actor = 'user:{actor}'"
    ))
    .await
}

#[tokio::test]
async fn anonymous_visitors_are_sent_to_login_and_back_to_the_admin_page_they_asked_for() {
    let app = spawn_app().await;
    create_admin(&app, ADMIN_EMAIL);
    let keys = app.count("signing_keys").await;

    for path in [
        "/admin",
        "/admin/users?q=ada",
        "/admin/keys",
        "/admin/audit",
        "/admin/upstreams",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 303, "{path}");
        let loc = location(&res);
        assert!(loc.starts_with("/login?"), "{path} → {loc}");
        assert_eq!(query_param(&loc, "return_to").as_deref(), Some(path));
    }
    let res = app
        .client
        .post(app.url("/admin/keys/rotate"))
        .form(&[("csrf_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with("/login?"));
    assert_eq!(app.count("signing_keys").await, keys);

    // The login page keeps the admin address and returns there.
    let back = login(&app, &app.client, ADMIN_EMAIL, "/admin/users?q=ada").await;
    assert_eq!(back, "/admin/users?q=ada");
    assert!(page(&app, &back).await.contains("Users"));
}

#[tokio::test]
async fn a_user_without_the_admin_role_gets_403_on_every_admin_page_and_form() {
    let app = spawn_app().await;
    let admin_id = create_admin(&app, ADMIN_EMAIL);
    create_user(&app, "ada@example.com", PASSWORD);
    let (client_id, _) = create_client(&app, &["--redirect-uri", "http://127.0.0.1:9/cb"]);
    login(&app, &app.client, "ada@example.com", "/").await;
    let (keys, roles) = (app.count("signing_keys").await, app.count("roles").await);

    for path in [
        "/admin".to_owned(),
        "/admin/users".to_owned(),
        format!("/admin/users/{admin_id}"),
        format!("/admin/users/{admin_id}/delete"),
        "/admin/clients".to_owned(),
        format!("/admin/clients/{client_id}"),
        format!("/admin/clients/{client_id}/delete"),
        "/admin/roles".to_owned(),
        "/admin/audit".to_owned(),
        "/admin/keys".to_owned(),
        "/admin/upstreams".to_owned(),
        "/admin/upstreams/nosuch/delete".to_owned(),
    ] {
        let (status, body) = get(&app, &path).await;
        assert_eq!(status, 403, "GET {path}");
        assert!(body.contains("Administrators only"), "{path}: {body}");
    }

    // A valid CSRF field does not help: the role is checked first.
    let home = page(&app, "/").await;
    let csrf = Form::with_input(&home, "csrf_token")
        .input("csrf_token")
        .unwrap()
        .value
        .clone();
    for (path, extra) in [
        ("/admin/keys/rotate".to_owned(), vec![]),
        ("/admin/roles".to_owned(), vec![("name", "ops")]),
        (
            format!("/admin/users/{admin_id}/roles"),
            vec![("roles", "user")],
        ),
        (
            format!("/admin/users/{admin_id}/status"),
            vec![("disabled", "true")],
        ),
        (format!("/admin/users/{admin_id}/delete"), vec![]),
        ("/admin/clients".to_owned(), vec![("name", "Evil")]),
        (format!("/admin/clients/{client_id}/secret"), vec![]),
        (format!("/admin/clients/{client_id}/delete"), vec![]),
        (
            "/admin/upstreams".to_owned(),
            vec![
                ("id", "evil"),
                ("kind", "google"),
                ("name", "Evil"),
                ("client_id", "c"),
                ("client_secret", "s"),
            ],
        ),
        ("/admin/upstreams/nosuch/delete".to_owned(), vec![]),
    ] {
        let mut form = vec![("csrf_token", csrf.as_str())];
        form.extend(extra);
        let res = app
            .client
            .post(app.url(&path))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "POST {path}");
    }
    assert_eq!(app.count("signing_keys").await, keys);
    assert_eq!(app.count("roles").await, roles);
    assert_eq!(app.count("clients").await, 1);
    assert_eq!(app.count("upstream_providers").await, 0);
    assert_eq!(
        app.count(&format!(
            "users WHERE id = '{admin_id}' AND disabled = false AND roles LIKE '%admin%'"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn an_admin_searches_users_and_pages_through_them() {
    let (app, _) = admin_app().await;
    let cli = app.state.core.admin.authorize(Caller::Cli).await.unwrap();
    for i in 0..55 {
        let spec = NewUserSpec {
            email: format!("user{i:02}@example.com"),
            ..Default::default()
        };
        app.state.core.admin.create_user(&cli, spec).await.unwrap();
    }
    create_user(&app, "carol@example.org", PASSWORD);

    let body = page(&app, "/admin").await;
    assert!(body.contains("href=\"/admin/users\""));

    let search = page(&app, "/admin/users").await;
    let res = Form::with_action(&search, "/admin/users")
        .submit(&app, &[("q", "CAROL@example")], None)
        .await;
    let found = res.text().await.unwrap();
    assert!(found.contains("carol@example.org"), "{found}");
    assert!(!found.contains("user01@example.com"));
    assert!(found.contains("1 user "));

    // 57 users (with the admin): 50 on the first page, 7 on the second.
    let first = page(&app, "/admin/users").await;
    assert!(first.contains("page 1 of 2"), "{first}");
    assert_eq!(first.matches("href=\"/admin/users/").count(), 50);
    let next = first
        .split("rel=\"next\"")
        .next()
        .and_then(|s| s.rsplit("href=\"").next())
        .map(|s| unescape(s.trim_end().trim_end_matches('"')))
        .unwrap();
    assert_eq!(next, "/admin/users?page=2");
    let second = page(&app, &next).await;
    assert_eq!(second.matches("href=\"/admin/users/").count(), 7);
    assert!(second.contains("rel=\"prev\""));
}

#[tokio::test]
async fn an_admin_changes_a_users_roles_and_they_are_stored_and_audited() {
    let (app, admin_id) = admin_app().await;
    let ada = create_user(&app, "ada@example.com", PASSWORD);
    let user_page = format!("/admin/users/{ada}");
    let roles_action = format!("/admin/users/{ada}/roles");
    let res = submit(
        &app,
        "/admin/roles",
        "/admin/roles",
        &[("name", "ops"), ("description", "On call")],
        None,
    )
    .await;
    assert_eq!(see_other(res).await, "/admin/roles?notice=role-created");

    let body = page(&app, &user_page).await;
    assert!(body.contains("value=\"ops\""), "the catalogue is offered");
    let res = submit(
        &app,
        &user_page,
        &roles_action,
        &[("roles", "ops"), ("roles", "admin")],
        None,
    )
    .await;
    assert_eq!(
        see_other(res).await,
        format!("{user_page}?notice=roles-saved")
    );
    assert_eq!(
        app.count(&format!(
            "users WHERE id = '{ada}' AND roles = 'admin ops user'"
        ))
        .await,
        1
    );
    assert_eq!(audit_rows(&app, "role_changed", &admin_id).await, 1);
    assert!(
        page(&app, &format!("{user_page}?notice=roles-saved"))
            .await
            .contains("The roles are saved.")
    );

    // An unknown role: the form again with the message next to it, nothing changed.
    let res = submit(
        &app,
        &user_page,
        &roles_action,
        &[("roles", "ops"), ("roles", "nosuch")],
        None,
    )
    .await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("id=\"roles-error\""), "{body}");
    assert!(body.contains("is not a role"), "{body}");
    assert!(
        body.contains("value=\"ops\" checked"),
        "the ticked boxes are kept"
    );
    assert!(!body.contains("value=\"admin\" checked"), "as submitted");
    assert_eq!(
        app.count(&format!(
            "users WHERE id = '{ada}' AND roles = 'admin ops user'"
        ))
        .await,
        1
    );

    // An administrator cannot lock themselves out.
    let own = format!("/admin/users/{admin_id}");
    let res = submit(
        &app,
        &own,
        &format!("{own}/roles"),
        &[("roles", "ops")],
        None,
    )
    .await;
    assert_eq!(res.status(), 409);
    let body = res.text().await.unwrap();
    assert!(body.contains("from yourself"), "{body}");
    assert!(
        body.contains("Save roles"),
        "the user page with the message"
    );
    assert_eq!(
        app.count(&format!(
            "users WHERE id = '{admin_id}' AND roles LIKE '%admin%'"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn disabling_a_user_ends_their_session_and_enabling_lets_them_back_in() {
    let (app, admin_id) = admin_app().await;
    let ada = create_user(&app, "ada@example.com", PASSWORD);
    let ada_browser = browser();
    login(&app, &ada_browser, "ada@example.com", "/account").await;
    let account = |c: &reqwest::Client| c.get(app.url("/account")).send();
    assert_eq!(account(&ada_browser).await.unwrap().status(), 200);

    let user_page = format!("/admin/users/{ada}");
    let status_action = format!("{user_page}/status");
    let res = submit(
        &app,
        &user_page,
        &status_action,
        &[],
        Some(("disabled", "true")),
    )
    .await;
    assert_eq!(see_other(res).await, format!("{user_page}?notice=disabled"));
    assert_eq!(
        app.count(&format!("users WHERE id = '{ada}' AND disabled = true"))
            .await,
        1
    );
    assert_eq!(
        app.count(&format!("sessions WHERE user_id = '{ada}'"))
            .await,
        0
    );
    assert_eq!(account(&ada_browser).await.unwrap().status(), 303);
    assert_eq!(audit_rows(&app, "user_disabled", &admin_id).await, 1);

    let res = submit(
        &app,
        &user_page,
        &status_action,
        &[],
        Some(("disabled", "false")),
    )
    .await;
    assert_eq!(see_other(res).await, format!("{user_page}?notice=enabled"));
    login(&app, &ada_browser, "ada@example.com", "/account").await;
    assert_eq!(account(&ada_browser).await.unwrap().status(), 200);

    // No button to disable oneself, and the server refuses it anyway.
    let own = format!("/admin/users/{admin_id}");
    assert!(!page(&app, &own).await.contains(&format!("{own}/status")));
    let csrf = Form::with_action(&page(&app, &own).await, &format!("{own}/roles"))
        .input("csrf_token")
        .unwrap()
        .value
        .clone();
    let res = app
        .client
        .post(app.url(&format!("{own}/status")))
        .form(&[("csrf_token", csrf.as_str()), ("disabled", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(
        app.count(&format!(
            "users WHERE id = '{admin_id}' AND disabled = false"
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn an_admin_ends_sessions_sends_a_reset_mail_and_deletes_a_user_after_confirming() {
    let (app, admin_id) = admin_app().await;
    let ada = create_user(&app, "ada@example.com", PASSWORD);
    let ada_browser = browser();
    login(&app, &ada_browser, "ada@example.com", "/account").await;
    let user_page = format!("/admin/users/{ada}");

    let res = submit(
        &app,
        &user_page,
        &format!("{user_page}/sessions/end"),
        &[],
        None,
    )
    .await;
    assert_eq!(
        see_other(res).await,
        format!("{user_page}?notice=sessions-ended")
    );
    assert_eq!(
        app.count(&format!("sessions WHERE user_id = '{ada}'"))
            .await,
        0
    );
    assert_eq!(audit_rows(&app, "sessions_ended", &admin_id).await, 1);

    let res = submit(
        &app,
        &user_page,
        &format!("{user_page}/password-reset"),
        &[],
        None,
    )
    .await;
    assert_eq!(
        see_other(res).await,
        format!("{user_page}?notice=reset-sent")
    );
    assert_eq!(
        app.count(&format!("email_tokens WHERE user_id = '{ada}'"))
            .await,
        1
    );
    assert_eq!(
        audit_rows(&app, "password_reset_requested", &admin_id).await,
        1
    );

    // Delete: a link to a confirmation page, whose form does it.
    let confirm_path = format!("{user_page}/delete");
    assert!(page(&app, &user_page).await.contains(&confirm_path));
    let confirm = page(&app, &confirm_path).await;
    assert!(confirm.contains("ada@example.com"));
    let res = submit(&app, &confirm_path, &confirm_path, &[], None).await;
    assert_eq!(see_other(res).await, "/admin/users?notice=user-deleted");
    assert_eq!(app.count(&format!("users WHERE id = '{ada}'")).await, 0);
    assert_eq!(audit_rows(&app, "user_deleted", &admin_id).await, 1);
    assert_eq!(get(&app, &user_page).await.0, 404);
}

/// Fills the client form of `page_path` (posting to `action`) and submits it.
async fn submit_client(
    app: &TestApp,
    page_path: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    submit(app, page_path, action, fields, None).await
}

async fn client_credentials(app: &TestApp, id: &str, secret: &str) -> u16 {
    token_request(
        app,
        Auth::Basic(id, secret),
        &[("grant_type", "client_credentials"), ("scope", "reports")],
    )
    .await
    .status
}

#[tokio::test]
async fn a_client_created_on_the_page_shows_its_secret_once_and_works_at_the_token_endpoint() {
    let (app, admin_id) = admin_app().await;
    let res = submit_client(
        &app,
        "/admin/clients",
        "/admin/clients",
        &[
            ("name", "Reports service"),
            ("grant_types", "client_credentials"),
            ("scope", "reports  audit"),
            ("introspect_any", "yes"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    assert!(res.headers().get("location").is_none());
    let body = res.text().await.unwrap();
    let id = element(&body, "client-id").expect("the client id is shown");
    let secret = element(&body, "client-secret").expect("the secret is shown");
    assert!(secret.starts_with("cas_cs_"), "{secret}");

    assert_eq!(client_credentials(&app, &id, &secret).await, 200);
    assert!(stdout(&app.castellan(&["client", "list"])).contains(&id));
    let shown = json_out(&app.castellan(&["client", "show", &id, "--json"]));
    assert_eq!(shown["introspect_any"], true, "{shown}");

    // Shown once: neither the list nor the client's page has it, nor the database or the log.
    for path in ["/admin/clients".to_owned(), format!("/admin/clients/{id}")] {
        let body = page(&app, &path).await;
        assert!(body.contains(&id));
        assert!(!body.contains(&secret), "{path} shows the secret");
    }
    assert_eq!(
        app.count(&format!(
            "clients WHERE secret_hash = '{secret}' OR name = '{secret}'"
        ))
        .await,
        0
    );
    assert_eq!(
        app.count(&format!("audit_events WHERE detail LIKE '%{secret}%'"))
            .await,
        0
    );
    assert_eq!(audit_rows(&app, "client_created", &admin_id).await, 1);

    // A public client has no secret to show.
    let res = submit_client(
        &app,
        "/admin/clients",
        "/admin/clients",
        &[
            ("name", "SPA"),
            (
                "redirect_uris",
                "https://spa.example/cb\r\n\r\nhttps://spa.example/cb2",
            ),
            ("public", "yes"),
        ],
    )
    .await;
    let body = res.text().await.unwrap();
    let spa = element(&body, "client-id").unwrap();
    assert_eq!(element(&body, "client-secret"), None);
    let shown = json_out(&app.castellan(&["client", "show", &spa, "--json"]));
    assert_eq!(
        shown["redirect_uris"],
        serde_json::json!(["https://spa.example/cb", "https://spa.example/cb2"]),
        "{shown}"
    );
}

#[tokio::test]
async fn an_invalid_client_form_comes_back_with_messages_next_to_the_fields_and_the_values_kept() {
    let (app, _) = admin_app().await;
    let res = submit_client(
        &app,
        "/admin/clients",
        "/admin/clients",
        &[
            ("name", " "),
            ("redirect_uris", "<b>not a uri</b>"),
            ("grant_types", "client_credentials"),
            ("public", "yes"),
            ("scope", "openid bad\\scope"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    for field in ["name", "redirect_uris", "grant_types", "scope"] {
        assert!(
            body.contains(&format!("id=\"{field}-error\"")),
            "no message for {field}:\n{body}"
        );
    }
    assert!(!body.contains("<b>"), "user data is escaped:\n{body}");
    let kept = body
        .split("</textarea>")
        .next()
        .and_then(|s| s.rsplit('>').next())
        .map(unescape);
    assert_eq!(
        kept.as_deref(),
        Some("<b>not a uri</b>"),
        "the value is kept"
    );
    assert!(body.contains("value=\"openid bad\\scope\""));
    assert!(body.contains("id=\"public\" name=\"public\" type=\"checkbox\" value=\"yes\" checked"));
    assert_eq!(app.count("clients").await, 0);
}

#[tokio::test]
async fn an_admin_edits_a_client_rotates_its_secret_and_deletes_it() {
    let (app, admin_id) = admin_app().await;
    let (id, old) = create_client(
        &app,
        &["--grant-type", "client_credentials", "--scope", "reports"],
    );
    let old = old.unwrap();
    let client_page = format!("/admin/clients/{id}");

    let body = page(&app, &client_page).await;
    assert!(body.contains("value=\"Test client\""), "prefilled: {body}");
    assert!(body.contains("value=\"client_credentials\" checked"));
    let res = submit_client(
        &app,
        &client_page,
        &client_page,
        &[
            ("name", "Renamed"),
            ("grant_types", "client_credentials"),
            ("scope", "reports"),
            ("skip_consent", "yes"),
        ],
    )
    .await;
    assert_eq!(
        see_other(res).await,
        format!("{client_page}?notice=client-saved")
    );
    let shown = json_out(&app.castellan(&["client", "show", &id, "--json"]));
    assert_eq!(shown["name"], "Renamed", "{shown}");
    assert_eq!(shown["skip_consent"], true, "{shown}");
    assert_eq!(audit_rows(&app, "client_updated", &admin_id).await, 1);

    // A refused edit keeps what was typed.
    let res = submit_client(
        &app,
        &client_page,
        &client_page,
        &[("name", "Typed"), ("grant_types", "password")],
    )
    .await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("value=\"Typed\""));
    assert!(body.contains("id=\"grant_types-error\""), "{body}");

    // Rotation: the new secret is shown once; the old one stops working.
    assert_eq!(client_credentials(&app, &id, &old).await, 200);
    let res = submit(
        &app,
        &client_page,
        &format!("{client_page}/secret"),
        &[],
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    let new = element(&res.text().await.unwrap(), "client-secret").unwrap();
    assert_ne!(new, old);
    assert_eq!(client_credentials(&app, &id, &old).await, 401);
    assert_eq!(client_credentials(&app, &id, &new).await, 200);
    assert_eq!(
        audit_rows(&app, "client_secret_rotated", &admin_id).await,
        1
    );

    let confirm = format!("{client_page}/delete");
    assert!(page(&app, &confirm).await.contains("Renamed"));
    let res = submit(&app, &confirm, &confirm, &[], None).await;
    assert_eq!(see_other(res).await, "/admin/clients?notice=client-deleted");
    assert_eq!(app.count("clients").await, 0);
    assert_eq!(client_credentials(&app, &id, &new).await, 401);
    assert_eq!(get(&app, &client_page).await.0, 404);
}

#[tokio::test]
async fn custom_roles_are_created_and_deleted_but_not_while_held_or_when_built_in() {
    let (app, admin_id) = admin_app().await;
    let ada = create_user(&app, "ada@example.com", PASSWORD);
    let res = submit(
        &app,
        "/admin/roles",
        "/admin/roles",
        &[("name", "ops"), ("description", "On call")],
        None,
    )
    .await;
    assert_eq!(see_other(res).await, "/admin/roles?notice=role-created");
    assert_eq!(app.count("roles WHERE name = 'ops'").await, 1);
    assert_eq!(audit_rows(&app, "role_created", &admin_id).await, 1);

    // Invalid and taken names: the form again, with the message and the value.
    let res = submit(
        &app,
        "/admin/roles",
        "/admin/roles",
        &[("name", "Ops Team")],
        None,
    )
    .await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("id=\"name-error\""), "{body}");
    assert!(body.contains("value=\"Ops Team\""));
    let res = submit(
        &app,
        "/admin/roles",
        "/admin/roles",
        &[("name", "ops")],
        None,
    )
    .await;
    assert_eq!(res.status(), 409);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("a role with this name exists")
    );

    // Held by a user: refused with the reason.
    let user_page = format!("/admin/users/{ada}");
    let res = submit(
        &app,
        &user_page,
        &format!("{user_page}/roles"),
        &[("roles", "ops")],
        None,
    )
    .await;
    see_other(res).await;
    let delete = "/admin/roles/ops/delete";
    let res = submit(&app, "/admin/roles", delete, &[], None).await;
    assert_eq!(res.status(), 409);
    let body = res.text().await.unwrap();
    assert!(body.contains("1 user(s) hold"), "{body}");
    assert!(
        body.contains("Create a role"),
        "the roles page with the message"
    );
    assert_eq!(app.count("roles WHERE name = 'ops'").await, 1);

    // Built-in roles have no delete button, and a forged request is refused.
    let roles_page = page(&app, "/admin/roles").await;
    assert!(!roles_page.contains("/admin/roles/admin/delete"));
    let csrf = Form::with_action(&roles_page, delete)
        .input("csrf_token")
        .unwrap()
        .value
        .clone();
    let res = app
        .client
        .post(app.url("/admin/roles/admin/delete"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("built in"));

    // Once nobody holds it, it goes.
    let res = submit(&app, &user_page, &format!("{user_page}/roles"), &[], None).await;
    see_other(res).await;
    let res = submit(&app, "/admin/roles", delete, &[], None).await;
    assert_eq!(see_other(res).await, "/admin/roles?notice=role-deleted");
    assert_eq!(app.count("roles WHERE name = 'ops'").await, 0);
    assert_eq!(audit_rows(&app, "role_deleted", &admin_id).await, 1);
    let res = app
        .client
        .post(app.url("/admin/roles/nosuch/delete"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn the_audit_log_lists_newest_first_with_filters_and_older_pages() {
    let (app, admin_id) = admin_app().await;
    let now = app.clock.time();
    for i in 0..60 {
        let entry = AuditEntry {
            user_id: Some(if i % 2 == 0 { "even" } else { "odd" }.into()),
            detail: format!("n={i:02}"),
            ..AuditEntry::new(AuditKind::ConsentRevoked)
        };
        app.store.audit(entry, now).await.unwrap();
    }
    // An admin action shows up with its actor.
    let res = submit(&app, "/admin/keys", "/admin/keys/rotate", &[], None).await;
    see_other(res).await;
    let all = page(&app, "/admin/audit").await;
    assert!(all.contains("key_rotated"));
    assert!(all.contains(&format!("user:{admin_id}")));

    let first = page(&app, "/admin/audit?kind=consent_revoked").await;
    let (n59, n10) = (first.find("n=59").unwrap(), first.find("n=10").unwrap());
    assert!(n59 < n10, "newest first");
    assert!(!first.contains("n=09"));
    let older = first
        .split("rel=\"next\"")
        .next()
        .and_then(|s| s.rsplit("href=\"").next())
        .map(|s| unescape(s.trim_end().trim_end_matches('"')))
        .unwrap();
    assert_eq!(
        query_param(&older, "kind").as_deref(),
        Some("consent_revoked")
    );
    assert!(query_param(&older, "before").is_some());
    let second = page(&app, &older).await;
    assert!(second.contains("n=09") && second.contains("n=00"));
    assert!(!second.contains("n=10"));
    assert!(!second.contains("rel=\"next\""), "no older page");
    assert!(second.contains("Newest events"));

    let odd = page(&app, "/admin/audit?kind=consent_revoked&user_id=odd").await;
    assert!(odd.contains("n=59") && !odd.contains("n=58"));

    let today = chrono::DateTime::from_timestamp(now.secs(), 0)
        .unwrap()
        .date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let day = page(
        &app,
        &format!("/admin/audit?kind=consent_revoked&from={today}&to={today}"),
    )
    .await;
    assert!(day.contains("n=59"));
    let none = page(
        &app,
        &format!("/admin/audit?kind=consent_revoked&from={tomorrow}"),
    )
    .await;
    assert!(!none.contains("n=59") && none.contains("No events."));

    let (status, body) = get(&app, "/admin/audit?from=31.12.2026").await;
    assert_eq!(status, 422);
    assert!(body.contains("id=\"from-error\""), "{body}");
    assert!(body.contains("value=\"31.12.2026\""));
    let (status, body) = get(&app, &format!("/admin/audit?from={tomorrow}&to={today}")).await;
    assert_eq!(status, 422);
    assert!(body.contains("must be before"), "{body}");
}

#[tokio::test]
async fn an_admin_rotates_the_signing_key() {
    let (app, admin_id) = admin_app().await;
    let before = app.count("signing_keys").await;
    let keys = page(&app, "/admin/keys").await;
    let res = Form::with_action(&keys, "/admin/keys/rotate")
        .submit(&app, &[], None)
        .await;
    assert_eq!(see_other(res).await, "/admin/keys?notice=key-rotated");
    assert_eq!(app.count("signing_keys").await, before + 1);
    assert_eq!(audit_rows(&app, "key_rotated", &admin_id).await, 1);
    let after = page(&app, "/admin/keys?notice=key-rotated").await;
    assert!(after.contains("A new signing key is published; it signs from the time shown."));
    assert!(
        after.contains("<td>next</td>"),
        "the new key is listed as next:\n{after}"
    );
}

#[tokio::test]
async fn admin_forms_without_the_right_csrf_field_are_refused() {
    let (app, _) = admin_app().await;
    let before = app.count("signing_keys").await;
    let keys = page(&app, "/admin/keys").await;
    let form = Form::with_action(&keys, "/admin/keys/rotate");
    let res = form.send(&app.client, &app, &[]).await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("This form has expired"));
    let forged = [(
        "csrf_token".to_owned(),
        "cas_cf_".to_owned() + &"x".repeat(40),
    )];
    let res = form.send(&app.client, &app, &forged).await;
    assert_eq!(res.status(), 403);
    let roles = page(&app, "/admin/roles").await;
    let res = Form::with_action(&roles, "/admin/roles")
        .send(&app.client, &app, &[("name".into(), "ops".into())])
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(app.count("signing_keys").await, before);
    assert_eq!(app.count("roles WHERE name = 'ops'").await, 0);
    // The same form with its field works.
    let res = form.submit(&app, &[], None).await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn unknown_users_and_clients_are_404_pages() {
    let (app, _) = admin_app().await;
    for path in [
        "/admin/users/nosuch",
        "/admin/users/nosuch/delete",
        "/admin/clients/nosuch",
        "/admin/clients/nosuch/delete",
    ] {
        let (status, body) = get(&app, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("Not found"), "{path}: {body}");
    }
}

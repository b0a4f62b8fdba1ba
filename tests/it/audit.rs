//! Security events leave audit rows (and structured log lines) as they happen.

use crate::harness::forms::Form;
use crate::harness::rp::{PASSWORD, confidential_rp, create_user, sign_in};
use crate::harness::spawn_app;

#[tokio::test]
async fn login_consent_logout_and_failed_logins_are_audited() {
    let app = spawn_app().await;
    let user_id = create_user(&app, "ada@example.com", PASSWORD);
    let rp = confidential_rp(&app, &[]).await;

    // A failed login first, on the login page.
    let page = app.get("/login").await.text().await.expect("login page");
    let form = Form::with_action(&page, "/login");
    let res = form
        .submit(
            &app,
            &[("email", "ada@example.com"), ("password", "wrong password")],
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE kind = 'login_failed' AND user_id = '{user_id}' AND detail = 'reason=wrong_password'"
        ))
        .await,
        1,
        "a failed login records its reason and the account"
    );
    let page = app.get("/login").await.text().await.expect("login page");
    let res = Form::with_action(&page, "/login")
        .submit(
            &app,
            &[
                ("email", "nobody@example.com"),
                ("password", "whatever it is"),
            ],
            None,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.count(
            "audit_events WHERE kind = 'login_failed' AND user_id IS NULL AND detail = 'reason=unknown_email'"
        )
        .await,
        1
    );

    let signed = sign_in(&app, &rp, "ada@example.com", &["openid", "email"], true).await;
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE kind = 'login_succeeded' AND user_id = '{user_id}'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE kind = 'consent_granted' AND user_id = '{user_id}'"
        ))
        .await,
        1
    );

    let logout = format!("/oauth2/logout?id_token_hint={}", signed.id_token());
    let res = app.get(&logout).await;
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE kind = 'logout' AND user_id = '{user_id}'"
        ))
        .await,
        1
    );

    // Never a secret in an audit row.
    assert_eq!(
        app.count("audit_events WHERE detail LIKE '%wrong password%' OR detail LIKE '%cas_%'")
            .await,
        0
    );
}

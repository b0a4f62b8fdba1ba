//! The mailer against a real SMTP listener: every kind of mail arrives with its subject, text and
//! HTML bodies and its link; the outbox survives a restart, sends each mail once with several
//! instances, and gives up (audited) on a mail that cannot be delivered; and `mail.smtp_url`
//! parsing, with credentials kept out of every message.

use std::time::{Duration, Instant};

use castellan::config::{MailSettings, Secret};
use castellan::mail::{Mail, Mailer, SmtpEndpoint, SmtpSecurity};

use crate::harness::smtp::SmtpSink;

const WAIT: Duration = Duration::from_secs(10);

fn settings(smtp_url: Option<String>) -> MailSettings {
    MailSettings {
        smtp_url: smtp_url.map(Secret::new),
        from: "Castellan <noreply@castellan.test>".into(),
    }
}

/// A port on which nothing listens (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A long link with a query, so that encoders must wrap it and HTML must escape it.
fn link(path: &str) -> String {
    format!(
        "http://127.0.0.1:8080{path}?token=ev_{}&next=%2Faccount",
        "Ab3_".repeat(16)
    )
}

#[tokio::test]
async fn every_kind_of_mail_is_delivered_over_smtp_with_text_html_and_link() {
    let sink = SmtpSink::start();
    let mailer = Mailer::new(&settings(Some(sink.url()))).expect("mailer");
    assert!(mailer.is_smtp());
    let cases = [
        (
            "verify@example.com",
            Mail::VerifyEmail {
                link: link("/email/verify"),
            },
            vec![link("/email/verify")],
            "24 hours",
        ),
        (
            "reset@example.com",
            Mail::PasswordReset {
                link: link("/password/reset"),
            },
            vec![link("/password/reset")],
            "1 hour",
        ),
        (
            "known@example.com",
            Mail::AlreadyRegistered {
                login_link: "http://127.0.0.1:8080/login".into(),
                reset_link: "http://127.0.0.1:8080/password/forgot".into(),
            },
            vec![
                "http://127.0.0.1:8080/login".to_owned(),
                "http://127.0.0.1:8080/password/forgot".to_owned(),
            ],
            "already exists",
        ),
        (
            "changed@example.com",
            Mail::PasswordChanged,
            vec![],
            "was just changed",
        ),
        (
            "new-address@example.com",
            Mail::EmailChangeVerify {
                link: link("/account/email/verify"),
            },
            vec![link("/account/email/verify")],
            "24 hours",
        ),
    ];
    for (to, mail, links, wording) in cases {
        let kind = mail.kind();
        let subject = mail.subject();
        mailer.send_now(to, mail).await.expect("delivered");
        let got = sink.wait_for(to, WAIT).await;
        assert_eq!(got.to, vec![to.to_owned()], "{kind}");
        assert_eq!(got.from, "noreply@castellan.test", "{kind}");
        assert!(
            got.header("from")
                .is_some_and(|f| f.contains("noreply@castellan.test")),
            "{kind}: {:?}",
            got.header("from")
        );
        assert!(got.header("message-id").is_some(), "{kind}");
        assert_eq!(got.subject, subject, "{kind}");
        assert!(got.subject.contains("Castellan"), "{kind}");
        assert!(got.text_body.contains("Castellan"), "{kind}");
        assert!(got.text_body.contains(wording), "{kind}: {}", got.text_body);
        assert!(got.html_body.contains("<html"), "{kind}: {}", got.html_body);
        assert!(got.html_body.contains(wording), "{kind}: {}", got.html_body);
        assert_eq!(got.links(), links, "{kind}: {}", got.text_body);
        if let Some(first) = links.first() {
            assert_eq!(&got.link(), first, "{kind}");
            // The same link in the HTML part, escaped for an attribute (askama writes `&#38;`).
            if first.contains('&') {
                assert!(
                    !got.html_body.contains(first.as_str()),
                    "{kind}: & not escaped"
                );
            }
            let unescaped = got.html_body.replace("&#38;", "&").replace("&amp;", "&");
            assert!(
                unescaped.contains(&format!("href=\"{first}\"")),
                "{kind}: {}",
                got.html_body
            );
        }
        assert_eq!(sink.count_to(to), 1, "{kind}");
    }
    assert_eq!(sink.count(), 5);
}

#[tokio::test]
async fn send_now_waits_for_the_server_and_each_mail_is_taken_once() {
    let sink = SmtpSink::start();
    let mailer = Mailer::new(&settings(Some(sink.url()))).expect("mailer");
    let to = "twice@example.com";
    for path in ["/one", "/two"] {
        mailer
            .send_now(to, Mail::PasswordReset { link: link(path) })
            .await
            .expect("delivered");
    }
    assert_eq!(sink.count_to(to), 2);
    assert_eq!(sink.wait_for(to, WAIT).await.link(), link("/one"));
    assert_eq!(sink.wait_for(to, WAIT).await.link(), link("/two"));
    assert_eq!(sink.count_to("someone-else@example.com"), 0);
}

#[tokio::test]
async fn a_delivery_error_names_the_server_but_not_the_password() {
    let port = closed_port();
    let url = format!("smtp+starttls://mailer:hunter2%21@127.0.0.1:{port}");
    let mailer = Mailer::new(&settings(Some(url))).expect("mailer");
    let e = mailer
        .send_now("nobody@example.com", Mail::PasswordChanged)
        .await
        .expect_err("nothing listens");
    let shown = format!("{e:#} {e:?}");
    assert!(shown.contains(&format!("127.0.0.1:{port}")), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!format!("{mailer:?}").contains("hunter2"));
}

#[tokio::test]
async fn without_smtp_mails_go_to_the_log_and_never_fail() {
    let mailer = Mailer::new(&settings(None)).expect("log-only mailer");
    assert!(!mailer.is_smtp());
    mailer
        .send_now(
            "dev@example.com",
            Mail::VerifyEmail {
                link: link("/email/verify"),
            },
        )
        .await
        .expect("logged");
    // A bad recipient is an error, not a panic.
    assert!(
        mailer
            .send_now("not an address", Mail::PasswordChanged)
            .await
            .is_err()
    );
}

#[test]
fn smtps_url_with_encoded_credentials_keeps_its_port_and_hides_the_password() {
    let e = SmtpEndpoint::parse("smtps://u:p%40ss@h:465").expect("parses");
    assert_eq!(e.security, SmtpSecurity::ImplicitTls);
    assert_eq!((e.host.as_str(), e.port), ("h", 465));
    let (user, password) = e.credentials.clone().expect("credentials");
    assert_eq!((user.as_str(), password.expose()), ("u", "p@ss"));

    let mailer = Mailer::new(&settings(Some("smtps://u:p%40ss@h:465".into()))).expect("mailer");
    let shown = format!("{mailer:?}");
    assert!(
        shown.contains("465") && shown.contains("ImplicitTls"),
        "{shown}"
    );
    assert!(
        !shown.contains("p@ss") && !shown.contains("p%40ss"),
        "{shown}"
    );
}

#[test]
fn starttls_url_defaults_to_the_submission_port() {
    let e = SmtpEndpoint::parse("smtp+starttls://user%2Bx:pw@mail.example.test").expect("parses");
    assert_eq!(e.security, SmtpSecurity::StartTls);
    assert_eq!(e.port, 587);
    assert_eq!(e.credentials.expect("credentials").0, "user+x");
    assert_eq!(
        SmtpEndpoint::parse("smtp://127.0.0.1")
            .expect("parses")
            .port,
        25
    );
    assert_eq!(
        SmtpEndpoint::parse("smtps://a:b@mail.example.test")
            .expect("parses")
            .port,
        465
    );
}

#[test]
fn a_bad_smtp_url_is_an_error_without_the_password() {
    for bad in [
        "ftp://user:hunter2@mail.example.test:21",
        "http://user:hunter2@mail.example.test",
        "smtp://user:hunter2@mail.example.test:25",
        "smtps://user:hunter2@mail.example.test/x",
        "smtps://user:hunter2@:465",
    ] {
        let e = Mailer::new(&settings(Some(bad.into()))).expect_err(bad);
        let shown = format!("{e:#} {e:?}");
        assert!(!shown.contains("hunter2"), "{bad}: {shown}");
        assert!(shown.contains("smtp"), "{bad}: {shown}");
    }
    let e = Mailer::new(&settings(Some("ftp://user:hunter2@h".into()))).expect_err("ftp");
    assert!(e.to_string().contains("scheme"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// The outbox: mails are jobs in the database.

use crate::harness::forms::Form;
use crate::harness::rp::{PASSWORD, browse, create_user, expect_page};
use crate::harness::{TestApp, spawn_app_beside, spawn_app_with};

/// Server settings: mail to `smtp_url`, the worker looking for due jobs every 50 ms.
fn outbox_settings(smtp_url: String) -> impl FnOnce(&mut castellan::Settings) {
    move |s: &mut castellan::Settings| {
        s.mail.smtp_url = Some(Secret::new(smtp_url));
        s.jobs.poll_interval_ms = 50;
    }
}

/// "Forgot password" for `email` on `app`'s page: queues a reset mail.
async fn forgot(app: &TestApp, email: &str) {
    let url = app.url("/password/forgot");
    let page = expect_page(browse(app, &url).await, "the forgot-password page").await;
    let form = Form::with_input(&page, "email").on_page(&url);
    let res = form.submit(app, &[("email", email)], None).await;
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "forgot password: {}",
        res.status()
    );
}

/// Waits until `sql_count` (a `FROM ...` clause) reaches `n`, for up to 15 s.
async fn wait_count(app: &TestApp, from: &str, n: i64) {
    let started = Instant::now();
    loop {
        let got = app.count(from).await;
        if got >= n {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{from}: {got}, waited for {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_mail_that_failed_before_a_restart_is_delivered_after_it() {
    let down = format!("smtp://127.0.0.1:{}", closed_port());
    let first = spawn_app_with(outbox_settings(down)).await;
    create_user(&first, "restart@example.com", PASSWORD);
    forgot(&first, "restart@example.com").await;
    // The first attempt failed: the mail waits in the outbox for its retry.
    wait_count(&first, "jobs WHERE kind = 'mail' AND attempts >= 1", 1).await;
    let sink = SmtpSink::start();
    let second = spawn_app_beside(&first, outbox_settings(sink.url())).await;
    drop(first); // the first instance stops serving; the mail is in the database
    second.clock.advance_secs(60); // past the retry delay
    let got = sink.wait_for("restart@example.com", WAIT).await;
    assert!(got.link().contains("/password/reset"), "{}", got.text_body);
    assert_eq!(second.count("jobs WHERE kind = 'mail'").await, 0);
    assert_eq!(sink.count_to("restart@example.com"), 1);
}

#[tokio::test]
async fn with_two_instances_each_mail_is_sent_once() {
    let sink = SmtpSink::start();
    let a = spawn_app_with(outbox_settings(sink.url())).await;
    let b = spawn_app_beside(&a, outbox_settings(sink.url())).await;
    let emails: Vec<String> = (0..8).map(|i| format!("once{i}@example.com")).collect();
    for e in &emails {
        create_user(&a, e, PASSWORD);
    }
    for (i, e) in emails.iter().enumerate() {
        forgot(if i % 2 == 0 { &a } else { &b }, e).await;
    }
    for e in &emails {
        sink.wait_for(e, WAIT).await;
    }
    // Both workers keep polling; nothing is sent twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for e in &emails {
        assert_eq!(sink.count_to(e), 1, "{e}");
    }
    assert_eq!(a.count("jobs").await, 0);
}

#[tokio::test]
async fn a_mail_that_cannot_be_delivered_is_given_up_on_audited_and_counted() {
    let down = format!("smtp://127.0.0.1:{}", closed_port());
    let app = spawn_app_with(outbox_settings(down)).await;
    create_user(&app, "never@example.com", PASSWORD);
    forgot(&app, "never@example.com").await;
    let started = Instant::now();
    while app.count("audit_events WHERE kind = 'mail_given_up'").await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the mail was not given up on"
        );
        app.clock.advance_secs(100); // past each retry delay
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.count("jobs WHERE kind = 'mail'").await, 0);
    let detail = app
        .count("audit_events WHERE kind = 'mail_given_up' AND detail LIKE '%never@example.com%'")
        .await;
    assert_eq!(detail, 1);
    let metrics = app.get("/metrics").await.text().await.unwrap_or_default();
    assert!(
        metrics.contains("castellan_mail_given_up_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn with_a_key_encryption_key_the_outbox_holds_no_link_in_clear() {
    use base64::Engine;
    let down = format!("smtp://127.0.0.1:{}", closed_port());
    let kek = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
    let set = outbox_settings(down);
    let app = spawn_app_with(move |s| {
        set(s);
        s.keys.encryption_key = Some(Secret::new(kek));
    })
    .await;
    create_user(&app, "sealed@example.com", PASSWORD);
    forgot(&app, "sealed@example.com").await;
    wait_count(&app, "jobs WHERE kind = 'mail'", 1).await;
    assert_eq!(
        app.count("jobs WHERE kind = 'mail' AND payload LIKE 'sealed:%'")
            .await,
        1
    );
    assert_eq!(
        app.count("jobs WHERE payload LIKE '%reset%' OR payload LIKE '%sealed@example.com%'")
            .await,
        0
    );
}

//! The mailer against a real SMTP listener: every kind of mail arrives with its subject, text and
//! HTML bodies and its link; a refusing server never blocks or fails the caller; and
//! `mail.smtp_url` parsing, with credentials kept out of every message.

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
        mailer.send(to, mail);
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
async fn a_refusing_smtp_server_neither_blocks_nor_fails_send() {
    let port = closed_port();
    let mailer = Mailer::new(&settings(Some(format!("smtp://127.0.0.1:{port}")))).expect("mailer");
    let started = Instant::now();
    for _ in 0..3 {
        mailer.send(
            "nobody@example.com",
            Mail::VerifyEmail {
                link: link("/email/verify"),
            },
        );
    }
    let took = started.elapsed();
    assert!(took < Duration::from_millis(250), "send took {took:?}");
    // The background retries run on; the test's runtime ends them.
    tokio::time::sleep(Duration::from_millis(50)).await;
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
    mailer.send("dev@example.com", Mail::PasswordChanged);
    mailer
        .send_now(
            "dev@example.com",
            Mail::VerifyEmail {
                link: link("/email/verify"),
            },
        )
        .await
        .expect("logged");
    // A bad recipient is logged and dropped, not a panic.
    mailer.send("not an address", Mail::PasswordChanged);
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

//! Outgoing email: the [`Mailer`] (SMTP over `lettre`, or a log-only stand-in when no SMTP
//! server is configured) and the [`Mail`]s Castellan sends, each rendered from a plain-text and
//! an HTML askama template under `templates/mail/` into one `multipart/alternative` message.
//!
//! `mail.smtp_url` (`CASTELLAN_SMTP_URL`, see `CONTRACT.md`) chooses the transport:
//!
//! | URL | transport | default port |
//! |---|---|---|
//! | `smtp://host:port` | plain SMTP, no TLS, no credentials (local sinks only) | 25 |
//! | `smtp+starttls://user:pass@host:port` | STARTTLS required (RFC 3207), then AUTH | 587 |
//! | `smtps://user:pass@host:port` | implicit TLS (RFC 8314 §3.3), then AUTH | 465 |
//! | unset | every mail is written to the log at `warn` — development only | |
//!
//! User and password are percent-decoded. Neither the password nor the URL is ever logged or
//! put in an error message.
//!
//! Sending never blocks or fails the caller: [`Mailer::send`] renders the mail and hands the
//! delivery to a background task that retries a bounded number of times and logs the outcome.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use url::{Host, Url};

use crate::config::{MailSettings, Secret};

/// Timeout of each SMTP command (lettre's default is a minute).
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// An email Castellan sends. Links are absolute URLs on the issuer's origin, built by the caller.
/// Stored in the outbox (`services::jobs`, sealed under the key-encryption key when one is
/// configured: the links are single-use secrets) as JSON tagged by its kind.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mail", rename_all = "snake_case")]
pub enum Mail {
    /// Confirms the address given at registration; the link is valid for 24 hours.
    VerifyEmail { link: String },
    /// A password-reset link, valid for 1 hour and usable once.
    PasswordReset { link: String },
    /// Sent instead of a verification mail when someone registers with a known address, so the
    /// registration page does not reveal which addresses have accounts.
    AlreadyRegistered {
        login_link: String,
        reset_link: String,
    },
    /// Tells the owner that the account's password was changed.
    PasswordChanged,
    /// Confirms a new address for an existing account; the link is valid for 24 hours.
    EmailChangeVerify { link: String },
    /// Tells the account's current address that a change to `new_email` was asked for (no
    /// link: nothing in it changes anything).
    EmailChangeRequested { new_email: String },
    /// Tells the account's former address that the change to `new_email` took effect.
    EmailChanged { new_email: String },
    /// Tells the owner that a recovery code was used to sign in, and how many are left.
    RecoveryCodeUsed { remaining: u64 },
    /// Tells the owner that an administrator removed the account's second factors.
    SecondFactorsReset,
}

impl fmt::Debug for Mail {
    /// The kind only: the links carry single-use secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mail::{}", self.kind())
    }
}

/// A mail rendered into its parts.
#[derive(Clone)]
pub struct RenderedMail {
    pub subject: &'static str,
    pub text: String,
    pub html: String,
}

impl fmt::Debug for RenderedMail {
    /// The subject only: the bodies carry single-use links.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedMail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Mail {
    /// A stable name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Mail::VerifyEmail { .. } => "verify_email",
            Mail::PasswordReset { .. } => "password_reset",
            Mail::AlreadyRegistered { .. } => "already_registered",
            Mail::PasswordChanged => "password_changed",
            Mail::EmailChangeVerify { .. } => "email_change_verify",
            Mail::EmailChangeRequested { .. } => "email_change_requested",
            Mail::EmailChanged { .. } => "email_changed",
            Mail::RecoveryCodeUsed { .. } => "recovery_code_used",
            Mail::SecondFactorsReset => "second_factors_reset",
        }
    }

    pub fn subject(&self) -> &'static str {
        match self {
            Mail::VerifyEmail { .. } => "Confirm your email address for Castellan",
            Mail::PasswordReset { .. } => "Reset your Castellan password",
            Mail::AlreadyRegistered { .. } => "You already have a Castellan account",
            Mail::PasswordChanged => "Your Castellan password was changed",
            Mail::EmailChangeVerify { .. } => "Confirm your new email address for Castellan",
            Mail::EmailChangeRequested { .. } => {
                "A change of your Castellan email address was requested"
            }
            Mail::EmailChanged { .. } => "Your Castellan email address was changed",
            Mail::RecoveryCodeUsed { .. } => "A recovery code was used to sign in to Castellan",
            Mail::SecondFactorsReset => "Two-step verification of your Castellan account was reset",
        }
    }

    /// Renders the plain-text and HTML bodies (askama; HTML-escaped in the HTML part).
    pub fn render(&self) -> anyhow::Result<RenderedMail> {
        let (text, html) = match self {
            Mail::VerifyEmail { link } => (
                VerifyEmailText { link }.render(),
                VerifyEmailHtml { link }.render(),
            ),
            Mail::PasswordReset { link } => (
                PasswordResetText { link }.render(),
                PasswordResetHtml { link }.render(),
            ),
            Mail::AlreadyRegistered {
                login_link,
                reset_link,
            } => (
                AlreadyRegisteredText {
                    login_link,
                    reset_link,
                }
                .render(),
                AlreadyRegisteredHtml {
                    login_link,
                    reset_link,
                }
                .render(),
            ),
            Mail::PasswordChanged => (PasswordChangedText.render(), PasswordChangedHtml.render()),
            Mail::EmailChangeVerify { link } => (
                EmailChangeVerifyText { link }.render(),
                EmailChangeVerifyHtml { link }.render(),
            ),
            Mail::EmailChangeRequested { new_email } => (
                EmailChangeRequestedText { new_email }.render(),
                EmailChangeRequestedHtml { new_email }.render(),
            ),
            Mail::EmailChanged { new_email } => (
                EmailChangedText { new_email }.render(),
                EmailChangedHtml { new_email }.render(),
            ),
            Mail::RecoveryCodeUsed { remaining } => (
                RecoveryCodeUsedText {
                    remaining: *remaining,
                }
                .render(),
                RecoveryCodeUsedHtml {
                    remaining: *remaining,
                }
                .render(),
            ),
            Mail::SecondFactorsReset => (
                SecondFactorsResetText.render(),
                SecondFactorsResetHtml.render(),
            ),
        };
        let kind = self.kind();
        Ok(RenderedMail {
            subject: self.subject(),
            text: text.with_context(|| format!("rendering the {kind} text body"))?,
            html: html.with_context(|| format!("rendering the {kind} HTML body"))?,
        })
    }
}

#[derive(Template)]
#[template(path = "mail/verify_email.txt")]
struct VerifyEmailText<'a> {
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/verify_email.html")]
struct VerifyEmailHtml<'a> {
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_reset.txt")]
struct PasswordResetText<'a> {
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_reset.html")]
struct PasswordResetHtml<'a> {
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/already_registered.txt")]
struct AlreadyRegisteredText<'a> {
    login_link: &'a str,
    reset_link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/already_registered.html")]
struct AlreadyRegisteredHtml<'a> {
    login_link: &'a str,
    reset_link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/recovery_code_used.txt")]
struct RecoveryCodeUsedText {
    remaining: u64,
}

#[derive(Template)]
#[template(path = "mail/recovery_code_used.html")]
struct RecoveryCodeUsedHtml {
    remaining: u64,
}

#[derive(Template)]
#[template(path = "mail/second_factors_reset.txt")]
struct SecondFactorsResetText;

#[derive(Template)]
#[template(path = "mail/second_factors_reset.html")]
struct SecondFactorsResetHtml;

#[derive(Template)]
#[template(path = "mail/password_changed.txt")]
struct PasswordChangedText;

#[derive(Template)]
#[template(path = "mail/password_changed.html")]
struct PasswordChangedHtml;

#[derive(Template)]
#[template(path = "mail/email_change_verify.txt")]
struct EmailChangeVerifyText<'a> {
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_change_verify.html")]
struct EmailChangeVerifyHtml<'a> {
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_change_requested.txt")]
struct EmailChangeRequestedText<'a> {
    new_email: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_change_requested.html")]
struct EmailChangeRequestedHtml<'a> {
    new_email: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_changed.txt")]
struct EmailChangedText<'a> {
    new_email: &'a str,
}

#[derive(Template)]
#[template(path = "mail/email_changed.html")]
struct EmailChangedHtml<'a> {
    new_email: &'a str,
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: no TLS at all — for local mail sinks only.
    Plain,
    /// `smtp+starttls://`: STARTTLS is required before anything else is sent.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    ImplicitTls,
}

/// A parsed `mail.smtp_url`.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpEndpoint {
    pub security: SmtpSecurity,
    pub host: String,
    pub port: u16,
    /// Percent-decoded user name and password.
    pub credentials: Option<(String, Secret)>,
}

impl fmt::Debug for SmtpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpEndpoint")
            .field("security", &self.security)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

const EXPECTED_URL: &str =
    "expected smtp://host:port, smtp+starttls://user:pass@host:port or smtps://user:pass@host:port";

impl SmtpEndpoint {
    /// Parses `mail.smtp_url`. Errors name what is wrong but never quote the URL, which may
    /// hold a password.
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let url = Url::parse(raw.trim())
            .map_err(|e| anyhow!("mail.smtp_url is not a valid URL ({e}): {EXPECTED_URL}"))?;
        let (security, default_port) = match url.scheme() {
            "smtp" => (SmtpSecurity::Plain, 25),
            "smtp+starttls" => (SmtpSecurity::StartTls, 587),
            "smtps" => (SmtpSecurity::ImplicitTls, 465),
            other => bail!("mail.smtp_url: unsupported scheme {other:?}: {EXPECTED_URL}"),
        };
        let host = match url.host() {
            Some(Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            _ => bail!("mail.smtp_url has no host: {EXPECTED_URL}"),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            bail!(
                "mail.smtp_url: a path, query or fragment is not supported (host {host}): {EXPECTED_URL}"
            );
        }
        let user = percent_decode(url.username()).context("mail.smtp_url: the user name")?;
        let password = percent_decode(url.password().unwrap_or_default())
            // The decoding error names no byte of the password.
            .map_err(|_| {
                anyhow!("mail.smtp_url: the password is not valid percent-encoded UTF-8")
            })?;
        let credentials = match (user.is_empty(), password.is_empty()) {
            (true, true) => None,
            (true, false) => bail!("mail.smtp_url has a password but no user name (host {host})"),
            (false, _) => Some((user, Secret::new(password))),
        };
        if security == SmtpSecurity::Plain && credentials.is_some() {
            bail!(
                "mail.smtp_url: smtp:// would send the credentials in clear text (host {host}); \
                 use smtp+starttls:// or smtps://"
            );
        }
        Ok(Self {
            security,
            host,
            port: url.port().unwrap_or(default_port),
            credentials,
        })
    }

    fn transport(&self) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port)
            .timeout(Some(SMTP_TIMEOUT));
        builder = match self.security {
            SmtpSecurity::Plain => builder.tls(Tls::None),
            SmtpSecurity::StartTls | SmtpSecurity::ImplicitTls => {
                let params = TlsParameters::new(self.host.clone())
                    .with_context(|| format!("preparing TLS for the SMTP server {}", self.host))?;
                builder.tls(match self.security {
                    SmtpSecurity::StartTls => Tls::Required(params),
                    _ => Tls::Wrapper(params),
                })
            }
        };
        if let Some((user, password)) = &self.credentials {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(builder.build())
    }
}

/// `%XX` decoding; `+` stays `+` (URL userinfo is not form-encoded).
fn percent_decode(s: &str) -> anyhow::Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| anyhow!("a bad percent-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| anyhow!("not UTF-8 once percent-decoded"))
}

/// Sends Castellan's mails. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    from: Mailbox,
    transport: Transport,
}

enum Transport {
    Smtp {
        endpoint: SmtpEndpoint,
        /// Boxed: the log-only variant needs none of its size.
        smtp: Box<AsyncSmtpTransport<Tokio1Executor>>,
    },
    /// No SMTP configured: mails are written to the log (development only).
    Log,
}

impl fmt::Debug for Mailer {
    /// Transport, host, port and sender; never the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mailer");
        d.field("from", &self.inner.from.to_string());
        match &self.inner.transport {
            Transport::Smtp { endpoint, .. } => d.field("smtp", endpoint),
            Transport::Log => d.field("smtp", &"unset: log only"),
        };
        d.finish()
    }
}

impl Mailer {
    /// Builds the mailer from `mail.smtp_url` and `mail.from`; unset `smtp_url` gives the
    /// log-only mailer. Connects to nothing yet.
    pub fn new(settings: &MailSettings) -> anyhow::Result<Mailer> {
        let from: Mailbox = settings.from.parse().map_err(|e| {
            anyhow!(
                "mail.from: {:?} is not a valid sender address ({e})",
                settings.from
            )
        })?;
        let transport = match &settings.smtp_url {
            Some(url) => {
                let endpoint = SmtpEndpoint::parse(url.expose())?;
                let smtp = Box::new(endpoint.transport()?);
                Transport::Smtp { endpoint, smtp }
            }
            // The server says so at start-up (`startup`); every mail it logs says so again.
            None => Transport::Log,
        };
        Ok(Mailer {
            inner: Arc::new(Inner { from, transport }),
        })
    }

    /// Whether mails really leave (an SMTP server is configured).
    pub fn is_smtp(&self) -> bool {
        matches!(self.inner.transport, Transport::Smtp { .. })
    }

    /// Renders and delivers once, waiting for the SMTP server's answer. Use cases do not call
    /// this: they put mails in the outbox (`services::jobs`), whose worker calls it and retries.
    pub async fn send_now(&self, to: &str, mail: Mail) -> anyhow::Result<()> {
        let (rendered, message) = self.prepare(to, &mail)?;
        match &self.inner.transport {
            Transport::Smtp { .. } => self.deliver_once(message).await,
            Transport::Log => {
                log_instead(to, mail.kind(), &rendered);
                Ok(())
            }
        }
    }

    async fn deliver_once(&self, message: Message) -> anyhow::Result<()> {
        let Transport::Smtp { endpoint, smtp } = &self.inner.transport else {
            return Ok(());
        };
        smtp.send(message)
            .await
            .map(drop)
            // lettre's errors name the server's reply or the I/O failure, never the credentials.
            .with_context(|| {
                format!(
                    "sending through the SMTP server {}:{}",
                    endpoint.host, endpoint.port
                )
            })
    }

    /// Renders the mail and builds the message (checking the recipient address).
    fn prepare(&self, to: &str, mail: &Mail) -> anyhow::Result<(RenderedMail, Message)> {
        let rendered = mail.render()?;
        let to: Mailbox = to
            .parse()
            .map_err(|e| anyhow!("{to:?} is not a valid recipient address ({e})"))?;
        let from = &self.inner.from;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(rendered.subject)
            // lettre without its `hostname` feature would say `@localhost`.
            .message_id(Some(format!(
                "<{}@{}>",
                uuid::Uuid::new_v4(),
                from.email.domain()
            )))
            .multipart(MultiPart::alternative_plain_html(
                rendered.text.clone(),
                rendered.html.clone(),
            ))
            .context("building the email message")?;
        Ok((rendered, message))
    }
}

/// The log-only mailer's delivery: recipient, subject and text body at `warn`.
fn log_instead(to: &str, kind: &'static str, rendered: &RenderedMail) {
    tracing::warn!(
        event = "mail_logged",
        kind,
        to,
        subject = rendered.subject,
        body = %rendered.text,
        "SMTP IS NOT CONFIGURED: this email was written to the log instead of being sent \
         (development only)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtps_url_decodes_credentials_and_keeps_the_port() {
        let e = SmtpEndpoint::parse("smtps://u:p%40ss@h:465").unwrap();
        assert_eq!(e.security, SmtpSecurity::ImplicitTls);
        assert_eq!((e.host.as_str(), e.port), ("h", 465));
        let (user, password) = e.credentials.clone().unwrap();
        assert_eq!((user.as_str(), password.expose()), ("u", "p@ss"));
        assert!(!format!("{e:?}").contains("p@ss"));
    }

    #[test]
    fn default_ports_follow_the_scheme() {
        let port = |u: &str| SmtpEndpoint::parse(u).unwrap().port;
        assert_eq!(port("smtp://localhost"), 25);
        assert_eq!(port("smtp+starttls://a%2Bb:c@mail.example.com"), 587);
        assert_eq!(port("smtps://a:b@mail.example.com"), 465);
        assert_eq!(port("smtp://127.0.0.1:2525"), 2525);
        let e = SmtpEndpoint::parse("smtp+starttls://a%2Bb:c+d@mail.example.com").unwrap();
        let (user, password) = e.credentials.unwrap();
        assert_eq!((user.as_str(), password.expose()), ("a+b", "c+d"));
        assert_eq!(SmtpEndpoint::parse("smtp://[::1]:25").unwrap().host, "::1");
    }

    #[test]
    fn bad_urls_are_refused_without_showing_the_password() {
        for bad in [
            "ftp://u:hunter2@h:21",
            "smtp://u:hunter2@h:25",
            "smtps://u:hunter2@h:465/path",
            "smtps://u:hunter2@h:465?tls=off",
            "smtps://:hunter2@h",
            "smtps://u:hunter2%ZZ@h",
            "smtps://u:hunter2@h:99999",
            "not a url hunter2",
        ] {
            let e = SmtpEndpoint::parse(bad).unwrap_err();
            let shown = format!("{e:#} {e:?}");
            assert!(!shown.contains("hunter2"), "{bad}: {shown}");
        }
    }

    #[test]
    fn every_mail_renders_with_its_link_and_escapes_html() {
        let link = "https://id.example.com/verify?token=a&b=<x>".to_owned();
        for mail in [
            Mail::VerifyEmail { link: link.clone() },
            Mail::PasswordReset { link: link.clone() },
            Mail::EmailChangeVerify { link: link.clone() },
            Mail::AlreadyRegistered {
                login_link: link.clone(),
                reset_link: link.clone(),
            },
        ] {
            let r = mail.render().unwrap();
            assert!(r.text.contains(&link), "{}", r.text);
            // askama writes `&#38;`, `&#60;`, `&#62;`.
            assert!(r.html.contains("token=a&#38;b=&#60;x&#62;"), "{}", r.html);
            assert!(
                !r.html.contains("<x>") && !r.html.contains("&b="),
                "{}",
                r.html
            );
            assert!(!format!("{mail:?}").contains("token"));
        }
        let r = Mail::PasswordChanged.render().unwrap();
        assert!(r.text.contains("Castellan"));
        let r = Mail::SecondFactorsReset.render().unwrap();
        assert!(r.text.contains("administrator") && r.html.contains("administrator"));
        assert_eq!(Mail::SecondFactorsReset.kind(), "second_factors_reset");
        for mail in [
            Mail::EmailChangeRequested {
                new_email: "new<b>@example.com".into(),
            },
            Mail::EmailChanged {
                new_email: "new<b>@example.com".into(),
            },
        ] {
            let r = mail.render().unwrap();
            assert!(r.text.contains("new<b>@example.com"), "{}", r.text);
            assert!(r.html.contains("new&#60;b&#62;@example.com"), "{}", r.html);
        }
    }
}

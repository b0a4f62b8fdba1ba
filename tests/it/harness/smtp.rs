//! A real SMTP listener for tests: [`SmtpSink::start`] binds `127.0.0.1:0` and speaks enough
//! SMTP (RFC 5321: greeting, EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT)
//! for lettre's client, keeping every message it receives. [`ReceivedMail`] holds a message
//! parsed by a small MIME reader (multipart/alternative; 7bit, quoted-printable and base64;
//! folded headers; RFC 2047 encoded-word subjects).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One message as the sink received it.
#[derive(Debug, Clone)]
struct Envelope {
    from: String,
    to: Vec<String>,
    raw: String,
    taken: bool,
}

#[derive(Default)]
struct Shared {
    messages: Mutex<Vec<Envelope>>,
    arrived: Notify,
}

/// A local SMTP server that keeps what it is sent. Stops accepting when dropped.
pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl SmtpSink {
    /// Binds `127.0.0.1:0` and serves in the background (call inside a tokio runtime).
    pub fn start() -> SmtpSink {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the SMTP sink");
        std_listener
            .set_nonblocking(true)
            .expect("non-blocking SMTP sink");
        let port = std_listener.local_addr().expect("sink address").port();
        let listener = TcpListener::from_std(std_listener).expect("tokio SMTP listener");
        let shared = Arc::new(Shared::default());
        let accept = tokio::spawn({
            let shared = shared.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve(stream, &shared).await {
                            eprintln!("smtp sink: connection ended with an error: {e}");
                        }
                    });
                }
            }
        });
        SmtpSink {
            port,
            shared,
            accept,
        }
    }

    /// `smtp://127.0.0.1:PORT`, for `mail.smtp_url`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The next message to `to` not yet taken by an earlier `wait_for`; panics after `timeout`.
    pub async fn wait_for(&self, to: &str, timeout: Duration) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before looking, so a message stored in between still wakes us.
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(envelope) = self.take(to) {
                return ReceivedMail::parse(envelope.from, envelope.to, envelope.raw);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let seen: Vec<String> = self
                    .shared
                    .messages
                    .lock()
                    .expect("sink lock")
                    .iter()
                    .map(|m| format!("{:?}{}", m.to, if m.taken { " (taken)" } else { "" }))
                    .collect();
                panic!(
                    "no email to {to} reached the SMTP sink within {timeout:?}; it received: {seen:?}"
                );
            }
        }
    }

    /// How many messages (taken or not) were sent to `to`.
    pub fn count_to(&self, to: &str) -> usize {
        self.shared
            .messages
            .lock()
            .expect("sink lock")
            .iter()
            .filter(|m| m.to.iter().any(|r| r.eq_ignore_ascii_case(to)))
            .count()
    }

    /// How many messages the sink received in all.
    pub fn count(&self) -> usize {
        self.shared.messages.lock().expect("sink lock").len()
    }

    fn take(&self, to: &str) -> Option<Envelope> {
        let mut messages = self.shared.messages.lock().expect("sink lock");
        let m = messages
            .iter_mut()
            .find(|m| !m.taken && m.to.iter().any(|r| r.eq_ignore_ascii_case(to)))?;
        m.taken = true;
        Some(m.clone())
    }
}

/// One SMTP session.
async fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write
        .write_all(b"220 castellan-test-sink ESMTP ready\r\n")
        .await?;
    let mut from = String::new();
    let mut to = Vec::new();
    loop {
        let Some(line) = read_line(&mut read).await? else {
            return Ok(());
        };
        let upper = line.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or_default();
        let reply: &[u8] = match verb {
            "EHLO" => b"250-castellan-test-sink greets you\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n",
            "HELO" => b"250 castellan-test-sink\r\n",
            "MAIL" if upper.starts_with("MAIL FROM:") => {
                from = angle_address(&line["MAIL FROM:".len()..]);
                to.clear();
                b"250 2.1.0 OK\r\n"
            }
            "RCPT" if upper.starts_with("RCPT TO:") => {
                to.push(angle_address(&line["RCPT TO:".len()..]));
                b"250 2.1.5 OK\r\n"
            }
            "DATA" if to.is_empty() => b"503 5.5.1 RCPT first\r\n",
            "DATA" => {
                write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let mut raw = String::new();
                loop {
                    let Some(line) = read_line(&mut read).await? else {
                        return Ok(());
                    };
                    if line == "." {
                        break;
                    }
                    // RFC 5321 §4.5.2: a leading dot was doubled by the client.
                    raw.push_str(line.strip_prefix('.').unwrap_or(&line));
                    raw.push_str("\r\n");
                }
                shared.messages.lock().expect("sink lock").push(Envelope {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    raw,
                    taken: false,
                });
                shared.arrived.notify_waiters();
                b"250 2.0.0 OK queued\r\n"
            }
            "RSET" => {
                from.clear();
                to.clear();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// One line without its line ending; `None` at end of stream.
async fn read_line(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    if read.read_until(b'\n', &mut buf).await? == 0 {
        return Ok(None);
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// `<a@b> SIZE=1` → `a@b`.
fn angle_address(rest: &str) -> String {
    let rest = rest.trim();
    match (rest.find('<'), rest.find('>')) {
        (Some(start), Some(end)) if start < end => rest[start + 1..end].to_owned(),
        _ => rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// A message the sink received, parsed.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// Envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// Envelope sender (`MAIL FROM`).
    pub from: String,
    /// The decoded `Subject` header.
    pub subject: String,
    /// The decoded `text/plain` part (empty if none).
    pub text_body: String,
    /// The decoded `text/html` part (empty if none).
    pub html_body: String,
    /// Unfolded top-level headers, names as sent.
    pub headers: Vec<(String, String)>,
    /// The message as received (after dot-unstuffing).
    pub raw: String,
}

impl ReceivedMail {
    fn parse(from: String, to: Vec<String>, raw: String) -> ReceivedMail {
        let entity = Entity::parse(&raw);
        let mut text_body = None;
        let mut html_body = None;
        entity.collect_bodies(&mut text_body, &mut html_body);
        ReceivedMail {
            to,
            from,
            subject: entity
                .header("subject")
                .map(decode_words)
                .unwrap_or_default(),
            text_body: text_body.unwrap_or_default(),
            html_body: html_body.unwrap_or_default(),
            headers: entity.headers,
            raw,
        }
    }

    /// A top-level header (case-insensitive name), unfolded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first `http://` or `https://` URL in the text body, up to whitespace.
    pub fn link(&self) -> String {
        self.links()
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no link in the email's text body:\n{}", self.text_body))
    }

    /// Every `http://` or `https://` URL in the text body, in order.
    pub fn links(&self) -> Vec<String> {
        let mut links = Vec::new();
        let mut rest = self.text_body.as_str();
        loop {
            let start = match (rest.find("http://"), rest.find("https://")) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => return links,
            };
            let tail = &rest[start..];
            let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
            links.push(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
}

/// A MIME entity: headers and a body (decoded leaf, or parts).
struct Entity {
    headers: Vec<(String, String)>,
    body: Body,
}

enum Body {
    Leaf { content_type: String, text: String },
    Multipart(Vec<Entity>),
}

impl Entity {
    fn parse(raw: &str) -> Entity {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = match raw.find("\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None if raw.starts_with('\n') => ("", &raw[1..]),
            None => (raw.as_str(), ""),
        };
        let headers = parse_headers(head);
        let find = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let content_type = find("content-type").unwrap_or_else(|| "text/plain".into());
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let body = if mime.starts_with("multipart/") {
            let boundary = param(&content_type, "boundary")
                .unwrap_or_else(|| panic!("multipart without a boundary: {content_type}"));
            Body::Multipart(
                split_parts(body, &boundary)
                    .iter()
                    .map(|p| Entity::parse(p))
                    .collect(),
            )
        } else {
            let encoding = find("content-transfer-encoding")
                .unwrap_or_else(|| "7bit".into())
                .trim()
                .to_ascii_lowercase();
            let bytes = match encoding.as_str() {
                "quoted-printable" => decode_quoted_printable(body),
                "base64" => base64::engine::general_purpose::STANDARD
                    .decode(body.split_whitespace().collect::<String>())
                    .unwrap_or_else(|e| panic!("bad base64 body ({e}): {body}")),
                _ => body.as_bytes().to_vec(),
            };
            Body::Leaf {
                content_type: mime,
                text: String::from_utf8_lossy(&bytes).replace("\r\n", "\n"),
            }
        };
        Entity { headers, body }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn collect_bodies(&self, text: &mut Option<String>, html: &mut Option<String>) {
        match &self.body {
            Body::Leaf {
                content_type,
                text: body,
            } => {
                let slot = match content_type.as_str() {
                    "text/plain" => text,
                    "text/html" => html,
                    _ => return,
                };
                slot.get_or_insert_with(|| body.clone());
            }
            Body::Multipart(parts) => {
                for part in parts {
                    part.collect_bodies(text, html);
                }
            }
        }
    }
}

/// Unfolds (RFC 5322 §2.2.3) and splits `Name: value` lines.
fn parse_headers(head: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    headers
}

/// A parameter of a structured header: `multipart/alternative; boundary="x"` → `x`.
fn param(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The parts between `--boundary` lines, up to `--boundary--`.
fn split_parts(body: &str, boundary: &str) -> Vec<String> {
    let open = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut parts = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in body.split('\n') {
        let trimmed = line.trim_end();
        if trimmed == close {
            break;
        }
        if trimmed == open {
            if let Some(lines) = current.take() {
                parts.push(lines.join("\n"));
            }
            current = Some(Vec::new());
        } else if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    if let Some(lines) = current {
        parts.push(lines.join("\n"));
    }
    parts
}

/// RFC 2045 §6.7: `=XX` escapes and soft line breaks (`=` at the end of a line).
fn decode_quoted_printable(body: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let lines: Vec<&str> = body.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end_matches([' ', '\t', '\r']);
        let (line, soft) = match line.strip_suffix('=') {
            Some(l) => (l, true),
            None => (line, false),
        };
        let bytes = line.as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            if bytes[j] == b'='
                && let Some(b) = bytes
                    .get(j + 1..j + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                j += 3;
                continue;
            }
            out.push(bytes[j]);
            j += 1;
        }
        if !soft && i + 1 < lines.len() {
            out.push(b'\n');
        }
    }
    out
}

/// RFC 2047 encoded words (`=?utf-8?B?...?=`, `=?utf-8?Q?...?=`), minimally; whitespace
/// between two encoded words is dropped.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        let Some(word) = decode_word(&rest[start..]) else {
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            last_was_word = false;
            continue;
        };
        if !(last_was_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        out.push_str(&word.0);
        rest = &rest[start + word.1..];
        last_was_word = true;
    }
    out.push_str(rest);
    out
}

/// Decodes one encoded word at the start of `s`: (text, length consumed).
fn decode_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let mut fields = inner.splitn(3, '?');
    let _charset = fields.next()?;
    let encoding = fields.next()?;
    let tail = fields.next()?;
    let end = tail.find("?=")?;
    let text = &tail[..end];
    let bytes = match encoding {
        "B" | "b" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?,
        "Q" | "q" => decode_quoted_printable(&text.replace('_', " ")),
        _ => return None,
    };
    let consumed = 2 + inner.len() - tail.len() + end + 2;
    Some((String::from_utf8_lossy(&bytes).into_owned(), consumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_mail_reads_folded_headers_encodings_and_parts() {
        let raw = "Subject: =?utf-8?b?SGVsbG8g?=\r\n =?utf-8?q?w=C3=B6rld?=\r\n\
                   Content-Type: multipart/alternative;\r\n boundary=\"XYZ\"\r\n\r\n\
                   --XYZ\r\nContent-Type: text/plain; charset=utf-8\r\n\
                   Content-Transfer-Encoding: quoted-printable\r\n\r\n\
                   Go to https://a.example/verify?t=3Dabc=\r\ndef now\r\n\
                   --XYZ\r\nContent-Type: text/html; charset=utf-8\r\n\
                   Content-Transfer-Encoding: base64\r\n\r\nPHA+aGk8L3A+\r\n--XYZ--\r\n";
        let m = ReceivedMail::parse("f@x".into(), vec!["t@x".into()], raw.into());
        assert_eq!(m.subject, "Hello wörld");
        assert!(
            m.text_body
                .contains("https://a.example/verify?t=abcdef now")
        );
        assert_eq!(m.link(), "https://a.example/verify?t=abcdef");
        assert_eq!(m.html_body, "<p>hi</p>");
    }
}

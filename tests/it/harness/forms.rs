//! A tiny HTML form reader for the hosted pages (no HTML crate): finds a `<form>`, reads its
//! `action`, `method`, `<input>`s and submit `<button>`s with entities unescaped, and submits it
//! the way a browser would (every hidden input, the typed fields, the clicked button).

use super::TestApp;

/// One `<input>` (or submit `<button>`) of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    pub value: String,
    /// The `type` attribute, lower-cased; `text` when absent (`submit` for a `<button>`).
    pub kind: String,
}

#[derive(Debug, Clone)]
pub struct Form {
    /// The `action` attribute as written (entities unescaped); empty when absent.
    pub action: String,
    /// The `method` attribute, lower-cased; `get` when absent.
    pub method: String,
    /// Every `<input>` with a `name`, in document order.
    pub inputs: Vec<Input>,
    /// Every submit control with a `name`: `<button>` (type submit or none) and
    /// `<input type="submit">`.
    pub buttons: Vec<Input>,
    /// The page the form was served on, used when `action` is empty.
    pub page_url: Option<String>,
}

impl Form {
    /// Every form of the page, in document order.
    pub fn all(html: &str) -> Vec<Form> {
        let html = strip_comments(html);
        let lower = html.to_ascii_lowercase();
        let mut forms = Vec::new();
        let mut pos = 0;
        while let Some(start) = find_tag(&lower, "form", pos) {
            let Some((attrs, open_end)) = tag_attrs(&html, start) else {
                break;
            };
            let close = lower[open_end..]
                .find("</form")
                .map(|i| open_end + i)
                .unwrap_or(html.len());
            let body = &html[open_end..close];
            let mut form = Form {
                action: attr(&attrs, "action").unwrap_or_default(),
                method: attr(&attrs, "method")
                    .map(|m| m.to_ascii_lowercase())
                    .unwrap_or_else(|| "get".into()),
                inputs: Vec::new(),
                buttons: Vec::new(),
                page_url: None,
            };
            read_controls(body, &mut form);
            forms.push(form);
            pos = close.max(open_end);
        }
        forms
    }

    /// The first form for which `predicate` holds.
    pub fn find(html: &str, predicate: impl Fn(&Form) -> bool) -> Option<Form> {
        Form::all(html).into_iter().find(|f| predicate(f))
    }

    /// The first form whose action's path is `path` (query ignored), or panics showing the page.
    pub fn with_action(html: &str, path: &str) -> Form {
        Form::find(html, |f| action_path(&f.action) == path)
            .unwrap_or_else(|| panic!("no form posting to {path} in the page:\n{html}"))
    }

    /// The first form with an input (or button) named `name`, or panics showing the page.
    pub fn with_input(html: &str, name: &str) -> Form {
        Form::find(html, |f| f.has(name))
            .unwrap_or_else(|| panic!("no form with an input named {name:?} in the page:\n{html}"))
    }

    /// Remembers the page the form came from (resolves an empty or relative `action`).
    pub fn on_page(mut self, page_url: &str) -> Form {
        self.page_url = Some(page_url.to_owned());
        self
    }

    pub fn has(&self, name: &str) -> bool {
        self.input(name).is_some() || self.buttons.iter().any(|b| b.name == name)
    }

    pub fn input(&self, name: &str) -> Option<&Input> {
        self.inputs.iter().find(|i| i.name == name)
    }

    pub fn has_button(&self, name: &str, value: &str) -> bool {
        self.buttons
            .iter()
            .any(|b| b.name == name && b.value == value)
    }

    /// Every `type="hidden"` input as (name, value).
    pub fn hidden_fields(&self) -> Vec<(String, String)> {
        self.inputs
            .iter()
            .filter(|i| i.kind == "hidden")
            .map(|i| (i.name.clone(), i.value.clone()))
            .collect()
    }

    /// Where the form submits to, as an absolute URL.
    pub fn target(&self, app: &TestApp) -> String {
        if self.action.is_empty() {
            return self.page_url.clone().unwrap_or_else(|| {
                panic!("form without action and without a known page: {self:?}")
            });
        }
        let base = self.page_url.clone().unwrap_or_else(|| app.url("/"));
        resolve_against(&base, &self.action)
    }

    /// The fields a browser sends: every hidden input (unless `fields` gives the same name),
    /// then `fields`, then the clicked button's name=value.
    pub fn body(
        &self,
        fields: &[(&str, &str)],
        button: Option<(&str, &str)>,
    ) -> Vec<(String, String)> {
        let mut body: Vec<(String, String)> = self
            .hidden_fields()
            .into_iter()
            .filter(|(n, _)| !fields.iter().any(|(f, _)| f == n))
            .collect();
        body.extend(
            fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        if let Some((n, v)) = button {
            assert!(
                self.has_button(n, v),
                "the form has no submit button {n}={v}: {:?}",
                self.buttons
            );
            body.push((n.to_owned(), v.to_owned()));
        }
        body
    }

    /// Submits with the app's browser client (cookies kept, redirects not followed).
    pub async fn submit(
        &self,
        app: &TestApp,
        fields: &[(&str, &str)],
        button: Option<(&str, &str)>,
    ) -> reqwest::Response {
        self.submit_with(&app.client, app, fields, button).await
    }

    /// Submits with the given client; `fields` replace hidden inputs of the same name.
    pub async fn submit_with(
        &self,
        client: &reqwest::Client,
        app: &TestApp,
        fields: &[(&str, &str)],
        button: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let body = self.body(fields, button);
        self.send(client, app, &body).await
    }

    /// Sends exactly `body` (no hidden fields added): for tests that drop or forge one.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        app: &TestApp,
        body: &[(String, String)],
    ) -> reqwest::Response {
        let target = self.target(app);
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(body.iter())
            .finish();
        let req = if self.method == "get" {
            let sep = if target.contains('?') { '&' } else { '?' };
            client.get(format!("{target}{sep}{encoded}"))
        } else {
            client
                .post(target)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encoded)
        };
        req.send().await.expect("submit the form")
    }
}

/// The `Location` header, resolved to an absolute URL if relative needs an app; this returns it
/// as sent. Panics when there is none.
pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location header (status {})", res.status()))
        .to_str()
        .expect("Location is ASCII")
        .to_owned()
}

/// The `Location` header resolved against the app's address.
pub fn location_abs(app: &TestApp, res: &reqwest::Response) -> String {
    resolve_against(&app.url("/"), &location(res))
}

/// One query parameter of a URL (absolute or relative), decoded. Panics when it is given twice.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let values = query_params(url, name);
    assert!(
        values.len() <= 1,
        "{name} appears {} times in {url}",
        values.len()
    );
    values.into_iter().next()
}

/// Every value of a query parameter.
pub fn query_params(url: &str, name: &str) -> Vec<String> {
    let parsed = url::Url::parse(url)
        .or_else(|_| url::Url::parse("http://relative.invalid/").and_then(|b| b.join(url)))
        .unwrap_or_else(|e| panic!("not a URL ({e}): {url}"));
    parsed
        .query_pairs()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// The path of a URL (absolute or relative).
pub fn path_of(url: &str) -> String {
    let parsed = url::Url::parse(url)
        .or_else(|_| url::Url::parse("http://relative.invalid/").and_then(|b| b.join(url)))
        .unwrap_or_else(|e| panic!("not a URL ({e}): {url}"));
    parsed.path().to_owned()
}

/// `reference` resolved against `base` (RFC 3986 §5).
pub fn resolve_against(base: &str, reference: &str) -> String {
    if reference.starts_with("http://") || reference.starts_with("https://") {
        return reference.to_owned();
    }
    url::Url::parse(base)
        .and_then(|b| b.join(reference))
        .map(String::from)
        .unwrap_or_else(|e| panic!("cannot resolve {reference} against {base}: {e}"))
}

fn action_path(action: &str) -> String {
    let no_query = action.split(['?', '#']).next().unwrap_or_default();
    if let Ok(u) = url::Url::parse(no_query) {
        u.path().to_owned()
    } else {
        no_query.to_owned()
    }
}

/// Unescapes HTML character references: the named ones templates emit and numeric ones.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ if entity.starts_with("#x") || entity.starts_with("#X") => {
                u32::from_str_radix(&entity[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn strip_comments(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        match rest[start + 4..].find("-->") {
            Some(end) => rest = &rest[start + 4 + end + 3..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Index of the next `<name` tag (followed by whitespace, `>` or `/`) at or after `from`.
fn find_tag(lower: &str, name: &str, from: usize) -> Option<usize> {
    let needle = format!("<{name}");
    let mut pos = from;
    while let Some(i) = lower[pos..].find(&needle) {
        let at = pos + i;
        let next = lower[at + needle.len()..].chars().next();
        if matches!(next, Some(c) if c.is_ascii_whitespace() || c == '>' || c == '/') {
            return Some(at);
        }
        pos = at + needle.len();
    }
    None
}

/// A tag's attributes: lower-cased names, unescaped values (`None` for a bare attribute).
type Attrs = Vec<(String, Option<String>)>;

/// Parses the attributes of the tag starting at `start` (`<name ...>`); returns them (names
/// lower-cased, values unescaped) and the index just past `>`.
fn tag_attrs(html: &str, start: usize) -> Option<(Attrs, usize)> {
    let bytes = html.as_bytes();
    let mut i = start + 1;
    while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' && bytes[i] != b'/'
    {
        i += 1;
    }
    let mut attrs = Vec::new();
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        if bytes[i] == b'>' {
            return Some((attrs, i + 1));
        }
        let name_start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
        {
            i += 1;
        }
        let name = html[name_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let value = if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let v_start = i + 1;
                let v_end = bytes[v_start..].iter().position(|&b| b == quote)? + v_start;
                i = v_end + 1;
                &html[v_start..v_end]
            } else {
                let v_start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                &html[v_start..i]
            };
            attrs.push((name, Some(unescape(value))));
        } else {
            attrs.push((name, None));
        }
    }
}

fn attr(attrs: &Attrs, name: &str) -> Option<String> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone().unwrap_or_default())
}

fn read_controls(body: &str, form: &mut Form) {
    let lower = body.to_ascii_lowercase();
    // <input ...>
    let mut pos = 0;
    while let Some(start) = find_tag(&lower, "input", pos) {
        let Some((attrs, end)) = tag_attrs(body, start) else {
            break;
        };
        pos = end;
        let Some(name) = attr(&attrs, "name") else {
            continue;
        };
        let kind = attr(&attrs, "type")
            .map(|t| t.to_ascii_lowercase())
            .unwrap_or_else(|| "text".into());
        let value = attr(&attrs, "value").unwrap_or_default();
        let input = Input { name, value, kind };
        if input.kind == "submit" {
            form.buttons.push(input);
        } else {
            form.inputs.push(input);
        }
    }
    // <button ...>label</button>
    let mut pos = 0;
    while let Some(start) = find_tag(&lower, "button", pos) {
        let Some((attrs, end)) = tag_attrs(body, start) else {
            break;
        };
        pos = end;
        let kind = attr(&attrs, "type")
            .map(|t| t.to_ascii_lowercase())
            .unwrap_or_else(|| "submit".into());
        if kind != "submit" {
            continue;
        }
        let Some(name) = attr(&attrs, "name") else {
            continue;
        };
        let value = attr(&attrs, "value").unwrap_or_default();
        form.buttons.push(Input { name, value, kind });
    }
}

#[test]
fn the_form_reader_reads_inputs_buttons_and_entities() {
    let html = r#"<!doctype html><html><body>
        <!-- <form action="/commented"></form> -->
        <form method="get" action="/search"><input name=q></form>
        <FORM Method="POST" action="/consent?x=1&amp;y=2">
          <input type="hidden" name="csrf_token" value="a&amp;b&lt;c&gt;d&quot;e&#39;f&#x27;g&#x2F;h&#47;">
          <input type='hidden' name='return_to' value='/oauth2/authorize?client_id=c&amp;scope=openid%20profile'/>
          <input name="email" type="email" value="">
          <input type="checkbox" name="remember" checked>
          <button type="submit" name="decision" value="allow">Allow</button>
          <button name="decision" value="deny" class="secondary">Deny</button>
          <button type="button" name="other" value="x">no</button>
          <input type="submit" name="go" value="Go">
        </FORM>
        </body></html>"#;
    let forms = Form::all(html);
    assert_eq!(forms.len(), 2);
    assert_eq!(forms[0].method, "get");
    let f = Form::with_action(html, "/consent");
    assert_eq!(f.action, "/consent?x=1&y=2");
    assert_eq!(f.method, "post");
    assert_eq!(
        f.hidden_fields(),
        vec![
            ("csrf_token".to_owned(), "a&b<c>d\"e'f'g/h/".to_owned()),
            (
                "return_to".to_owned(),
                "/oauth2/authorize?client_id=c&scope=openid%20profile".to_owned()
            ),
        ]
    );
    assert_eq!(f.input("email").map(|i| i.kind.as_str()), Some("email"));
    assert!(f.has_button("decision", "allow"));
    assert!(f.has_button("decision", "deny"));
    assert!(f.has_button("go", "Go"));
    assert!(!f.has("other"));
    let body = f.body(
        &[("email", "a@b.c"), ("csrf_token", "override")],
        Some(("decision", "deny")),
    );
    assert_eq!(body[0].0, "return_to");
    assert_eq!(
        body.last(),
        Some(&("decision".to_owned(), "deny".to_owned()))
    );
    assert!(body.contains(&("csrf_token".to_owned(), "override".to_owned())));
    assert!(Form::find(html, |f| f.action == "/commented").is_none());
    assert_eq!(
        query_param(
            "/login?return_to=%2Foauth2%2Fauthorize%3Fa%3Db&x=1",
            "return_to"
        )
        .as_deref(),
        Some("/oauth2/authorize?a=b")
    );
    assert_eq!(
        query_param("http://127.0.0.1:9/cb?code=abc", "code").as_deref(),
        Some("abc")
    );
    assert_eq!(path_of("/login?x=1"), "/login");
    assert_eq!(
        unescape("&amp;amp; &unknown; & &#128512;"),
        "&amp; &unknown; & \u{1F600}"
    );
}

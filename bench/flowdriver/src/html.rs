//! Just enough HTML to find the forms on a login or consent page: `<form>`, `<input>` and
//! `<button>` tags with their attributes (entity-decoded), skipping comments, `<script>` and
//! `<style>` bodies. Mirrors what `adapters.py` gets from Python's `html.parser`.

#[derive(Debug, Default)]
pub struct Form {
    pub action: String,
    pub method: String,
    /// `<input>` other than submit/image buttons.
    pub inputs: Vec<Vec<(String, String)>>,
    /// `<button type=submit>` and `<input type=submit|image>`.
    pub buttons: Vec<Vec<(String, String)>>,
}

pub fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub fn parse_forms(html: &str) -> Vec<Form> {
    let b = html.as_bytes();
    let mut forms: Vec<Form> = Vec::new();
    let mut in_form = false;
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        i += off;
        let rest = &html[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").map_or(rest.len(), |e| e + 3);
            continue;
        }
        let closing = rest.starts_with("</");
        let name_start = i + if closing { 2 } else { 1 };
        let mut j = name_start;
        while j < b.len() && b[j].is_ascii_alphanumeric() {
            j += 1;
        }
        let name = html[name_start..j].to_ascii_lowercase();
        if name.is_empty() {
            i += 1;
            continue;
        }
        let (attrs, end) = parse_attrs(html, j);
        i = end;
        if closing {
            if name == "form" {
                in_form = false;
            }
            continue;
        }
        match name.as_str() {
            "script" | "style" => {
                let close = format!("</{name}");
                let lower = html[i..].to_ascii_lowercase();
                i += lower.find(&close).unwrap_or(lower.len());
            }
            "form" => {
                forms.push(Form {
                    action: attr(&attrs, "action").unwrap_or("").to_owned(),
                    method: attr(&attrs, "method").unwrap_or("get").to_ascii_uppercase(),
                    ..Form::default()
                });
                in_form = true;
            }
            "input" if in_form => {
                let t = attr(&attrs, "type").unwrap_or("text").to_ascii_lowercase();
                if let Some(f) = forms.last_mut() {
                    if t == "submit" || t == "image" {
                        f.buttons.push(attrs);
                    } else {
                        f.inputs.push(attrs);
                    }
                }
            }
            "button" if in_form => {
                let t = attr(&attrs, "type")
                    .unwrap_or("submit")
                    .to_ascii_lowercase();
                if let (true, Some(f)) = (t == "submit", forms.last_mut()) {
                    f.buttons.push(attrs);
                }
            }
            _ => {}
        }
    }
    forms
}

/// Attributes from `pos` (just after the tag name) to the closing `>`; returns them and the
/// index after the `>`.
fn parse_attrs(html: &str, mut pos: usize) -> (Vec<(String, String)>, usize) {
    let b = html.as_bytes();
    let mut out = Vec::new();
    loop {
        while pos < b.len() && (b[pos].is_ascii_whitespace() || b[pos] == b'/') {
            pos += 1;
        }
        if pos >= b.len() {
            return (out, pos);
        }
        if b[pos] == b'>' {
            return (out, pos + 1);
        }
        let start = pos;
        while pos < b.len()
            && !b[pos].is_ascii_whitespace()
            && !matches!(b[pos], b'=' | b'>' | b'/')
        {
            pos += 1;
        }
        let name = html[start..pos].to_ascii_lowercase();
        while pos < b.len() && b[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let mut value = String::new();
        if pos < b.len() && b[pos] == b'=' {
            pos += 1;
            while pos < b.len() && b[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if pos < b.len() && (b[pos] == b'"' || b[pos] == b'\'') {
                let q = b[pos];
                let vstart = pos + 1;
                let vend = html[vstart..]
                    .bytes()
                    .position(|c| c == q)
                    .map_or(b.len(), |e| vstart + e);
                value = decode_entities(&html[vstart..vend]);
                pos = (vend + 1).min(b.len());
            } else {
                let vstart = pos;
                while pos < b.len() && !b[pos].is_ascii_whitespace() && b[pos] != b'>' {
                    pos += 1;
                }
                value = decode_entities(&html[vstart..pos]);
            }
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
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
        let ent = &rest[1..semi];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .or_else(|| ent.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_login_form_and_a_consent_button() {
        let html = r#"<!doctype html><style>a<b{}</style><!-- <form action="x"> -->
<form method="post" action="&#x2f;login?x=1&amp;y=2"><input type="hidden" name="csrf" value="a&quot;b">
<input name=email><input type="password" name="password"><button type="submit">Go</button></form>
<form method=post action='/consent'><button name="decision" value="allow">Allow</button>
<input type="submit" name="decision" value="deny"></form>"#;
        let forms = parse_forms(html);
        assert_eq!(forms.len(), 2);
        assert_eq!(forms[0].action, "/login?x=1&y=2");
        assert_eq!(forms[0].method, "POST");
        assert_eq!(forms[0].inputs.len(), 3);
        assert_eq!(attr(&forms[0].inputs[0], "value"), Some("a\"b"));
        assert_eq!(attr(&forms[0].inputs[1], "name"), Some("email"));
        assert_eq!(forms[1].buttons.len(), 2);
        assert_eq!(attr(&forms[1].buttons[1], "value"), Some("deny"));
    }
}

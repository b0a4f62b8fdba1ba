//! Hosted pages (askama): view structs and their GET/POST handlers.

pub mod account;
pub mod admin;
pub mod consent;
pub mod home;
pub mod login;
pub mod logout;
pub mod password;
pub mod register;

/// A `return_to` we accept: our authorization endpoint (the only place a login or consent
/// returns to), the account page or the admin pages — a local path, never another origin
/// (no open redirect).
pub fn safe_return_to(raw: Option<&str>) -> Option<String> {
    let r = raw?.trim();
    let ok = (r.starts_with("/oauth2/authorize?")
        || r == "/oauth2/authorize"
        || r == "/account"
        || r == "/"
        || is_admin_path(r))
        && !r.contains(['\\', '\r', '\n']);
    ok.then(|| r.to_owned())
}

/// `/admin`, `/admin/...` or `/admin?...` in visible ASCII (no spaces, controls or CR/LF), with
/// no `//` (a scheme-relative URL) and no `..` (a way out of `/admin`) anywhere.
fn is_admin_path(r: &str) -> bool {
    r.strip_prefix(crate::paths::ADMIN)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
        && r.bytes().all(|b| b.is_ascii_graphic())
        && !r.contains("//")
        && !r.contains("..")
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn return_to_accepts_our_own_pages() {
        for ok in [
            "/",
            "/account",
            "/oauth2/authorize",
            "/oauth2/authorize?client_id=a&scope=openid",
            "/admin",
            "/admin/users?q=ada%40example.com&page=2",
            "/admin?x=1",
            "/admin/users/0b6a3c1e-8d1f-4d0a-9a67-0e6b5c2a9f10",
        ] {
            assert_eq!(safe_return_to(Some(ok)).as_deref(), Some(ok), "{ok}");
        }
    }

    #[test]
    fn return_to_refuses_other_origins_and_odd_paths() {
        for bad in [
            "https://evil.example/admin",
            "//evil.example/admin",
            "/\\evil.example",
            "/admin//evil.example",
            "/admin/../account/x",
            "/administrator",
            "/adminx/users",
            "/admin\r\nSet-Cookie: x=1",
            "/admin/\\evil",
            "/admin users",
            "/accounts",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_return_to(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(safe_return_to(None), None);
    }
}

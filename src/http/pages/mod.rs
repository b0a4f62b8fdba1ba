//! Hosted pages (askama): view structs and their GET/POST handlers.

pub mod account;
pub mod admin;
pub mod consent;
pub mod home;
pub mod login;
pub mod logout;
pub mod mfa;
pub mod passkeys;
pub mod password;
pub mod register;
pub mod second_factor;
pub mod upstream;

/// A `return_to` we accept: our authorization endpoint (the only place a login or consent
/// returns to), the account page or the admin pages — a local path, never another origin
/// (no open redirect) — in visible ASCII only. Our own pages build every `return_to`
/// percent-encoded, so a control character, a space or a byte outside ASCII is someone
/// else's: refused, not trimmed or passed on (it cannot go into a `Location` header).
pub fn safe_return_to(raw: Option<&str>) -> Option<String> {
    let r = raw?;
    let ok = r.bytes().all(|b| b.is_ascii_graphic())
        && !r.contains('\\')
        && (r.starts_with("/oauth2/authorize?")
            || r == "/oauth2/authorize"
            || r == "/account"
            || r == "/"
            || is_admin_path(r));
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

    #[test]
    fn return_to_refuses_every_control_character_space_and_non_ascii_byte() {
        let bytes = (0u8..0x20).chain([b' ', 0x7f]);
        for b in bytes {
            let c = b as char;
            for bad in [
                format!("/oauth2/authorize?client_id=a{c}b"),
                format!("/account{c}"),
                format!("{c}/account"),
                format!("/admin/users?q={c}"),
                format!("/{c}"),
            ] {
                assert_eq!(safe_return_to(Some(&bad)), None, "{bad:?}");
            }
        }
        assert_eq!(safe_return_to(Some("/oauth2/authorize?x=jos\u{e9}")), None);
    }
}

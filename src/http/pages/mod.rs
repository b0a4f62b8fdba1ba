//! Hosted pages (askama): view structs and their GET/POST handlers.

pub mod account;
pub mod consent;
pub mod home;
pub mod login;
pub mod logout;
pub mod password;
pub mod register;

/// A `return_to` we accept: our authorization endpoint (the only place a login or consent
/// returns to) or the account pages — never another origin (no open redirect).
pub fn safe_return_to(raw: Option<&str>) -> Option<String> {
    let r = raw?.trim();
    let ok = (r.starts_with("/oauth2/authorize?")
        || r == "/oauth2/authorize"
        || r == "/account"
        || r == "/")
        && !r.contains(['\\', '\r', '\n']);
    ok.then(|| r.to_owned())
}

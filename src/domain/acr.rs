//! Authentication methods and levels: `amr` values (RFC 8176 §2) and the `acr` levels of
//! CONTRACT.md (`urn:castellan:acr:1fa` < `urn:castellan:acr:mfa`).
//!
//! A session stores its `amr`; its level follows from them ([`Acr::of`]), so the level a code,
//! a refresh token or an ID token carries is always the one of the methods they record.

/// RFC 8176 §2: password-based authentication.
pub const AMR_PWD: &str = "pwd";
/// RFC 8176 §2: a one-time password (TOTP, or a single-use recovery code).
pub const AMR_OTP: &str = "otp";
/// RFC 8176 §2: multiple-factor authentication (with the methods that make it up).
pub const AMR_MFA: &str = "mfa";

/// The methods of a sign-in with a password only.
pub fn password_only() -> Vec<String> {
    vec![AMR_PWD.to_owned()]
}

/// The methods of a sign-in with a password and a one-time code.
pub fn password_and_otp() -> Vec<String> {
    vec![AMR_PWD.to_owned(), AMR_OTP.to_owned(), AMR_MFA.to_owned()]
}

/// The level an authentication reached, lowest first (the order compares levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Acr {
    OneFactor,
    Mfa,
}

impl Acr {
    /// Every level that can be reached today (discovery's `acr_values_supported`).
    pub const REACHABLE: [Acr; 2] = [Acr::OneFactor, Acr::Mfa];

    pub fn as_str(self) -> &'static str {
        match self {
            Acr::OneFactor => "urn:castellan:acr:1fa",
            Acr::Mfa => "urn:castellan:acr:mfa",
        }
    }

    pub fn parse(value: &str) -> Option<Acr> {
        Acr::REACHABLE.into_iter().find(|a| a.as_str() == value)
    }

    /// The level of an authentication with these methods.
    pub fn of(amr: &[String]) -> Acr {
        if amr.iter().any(|m| m == AMR_MFA) {
            Acr::Mfa
        } else {
            Acr::OneFactor
        }
    }

    /// The minimum an authorization request's `acr_values` asks for (OpenID Connect Core 1.0
    /// §3.1.2.1, read as CONTRACT.md says: a minimum the session must reach). The values are
    /// the levels the client accepts, so the lowest listed one is enough; values we do not
    /// know are passed over, and a request naming none of ours asks for nothing.
    pub fn minimum_of(acr_values: &str) -> Option<Acr> {
        acr_values.split(' ').filter_map(Acr::parse).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_follows_from_the_methods() {
        assert_eq!(Acr::of(&password_only()), Acr::OneFactor);
        assert_eq!(Acr::of(&password_and_otp()), Acr::Mfa);
        assert_eq!(Acr::of(&[]), Acr::OneFactor);
    }

    #[test]
    fn acr_values_name_a_minimum() {
        assert_eq!(Acr::minimum_of("urn:castellan:acr:mfa"), Some(Acr::Mfa));
        assert_eq!(
            Acr::minimum_of("urn:castellan:acr:mfa urn:castellan:acr:1fa"),
            Some(Acr::OneFactor)
        );
        assert_eq!(Acr::minimum_of("phr urn:castellan:acr:mfa"), Some(Acr::Mfa));
        assert_eq!(Acr::minimum_of("something-else"), None);
        assert_eq!(Acr::minimum_of(""), None);
        assert!(Acr::OneFactor < Acr::Mfa);
    }
}

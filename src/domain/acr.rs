//! Authentication methods and levels: `amr` values (RFC 8176 §2) and the `acr` levels of
//! CONTRACT.md (`urn:castellan:acr:1fa` < `urn:castellan:acr:mfa` < `phr`).
//!
//! A session stores its `amr`; its level follows from them ([`Acr::of`]), so the level a code,
//! a refresh token or an ID token carries is always the one of the methods they record.

/// RFC 8176 §2: password-based authentication.
pub const AMR_PWD: &str = "pwd";
/// RFC 8176 §2: a one-time password (TOTP, or a single-use recovery code).
pub const AMR_OTP: &str = "otp";
/// RFC 8176 §2: multiple-factor authentication (with the methods that make it up).
pub const AMR_MFA: &str = "mfa";
/// RFC 8176 §2: proof of possession of a hardware-secured key (a device-bound passkey).
pub const AMR_HWK: &str = "hwk";
/// RFC 8176 §2: proof of possession of a software-secured key (a synced passkey: WebAuthn's
/// backup-eligible flag is set, so the private key can leave the device).
pub const AMR_SWK: &str = "swk";

/// Signed in at an upstream identity provider (issue 18). Not an RFC 8176 value: no registered
/// value says "another provider authenticated the user", and claiming `pwd` would assert a
/// password this server never saw (docs/decisions/2026-12-03-upstream-sign-in.md). The same
/// value Microsoft's identity platform uses for federated sign-ins.
pub const AMR_FED: &str = "fed";

/// The methods of a sign-in through an upstream provider alone.
pub fn upstream_only() -> Vec<String> {
    vec![AMR_FED.to_owned()]
}

/// The methods of a sign-in whose first factor was `first` (`pwd` or `fed`) and whose second
/// was `second` (`otp`, `hwk`, `swk`).
pub fn first_and_second(first: &str, second: &str) -> Vec<String> {
    vec![first.to_owned(), second.to_owned(), AMR_MFA.to_owned()]
}

/// The methods of a sign-in with a password only.
pub fn password_only() -> Vec<String> {
    vec![AMR_PWD.to_owned()]
}

/// The methods of a sign-in with a password and a one-time code.
pub fn password_and_otp() -> Vec<String> {
    vec![AMR_PWD.to_owned(), AMR_OTP.to_owned(), AMR_MFA.to_owned()]
}

/// The methods of a sign-in with a passkey alone (`method` is `hwk` or `swk`). Every passkey
/// ceremony requires user verification (a PIN or biometric on the device), so the key and
/// what unlocks it are two factors: `mfa`.
pub fn passkey_only(method: &str) -> Vec<String> {
    vec![method.to_owned(), AMR_MFA.to_owned()]
}

/// The methods of a sign-in with a password and a passkey as the second factor.
pub fn password_and_passkey(method: &str) -> Vec<String> {
    vec![AMR_PWD.to_owned(), method.to_owned(), AMR_MFA.to_owned()]
}

/// The level an authentication reached, lowest first (the order compares levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Acr {
    OneFactor,
    Mfa,
    /// Phishing-resistant (OpenID Enhanced Authentication Profile ACR Values 1.0, `phr`): a
    /// passkey with user verification, bound to our origin by the browser.
    Phr,
}

impl Acr {
    /// Every level there is (discovery's `acr_values_supported`).
    pub const REACHABLE: [Acr; 3] = [Acr::OneFactor, Acr::Mfa, Acr::Phr];

    pub fn as_str(self) -> &'static str {
        match self {
            Acr::OneFactor => "urn:castellan:acr:1fa",
            Acr::Mfa => "urn:castellan:acr:mfa",
            Acr::Phr => "phr",
        }
    }

    pub fn parse(value: &str) -> Option<Acr> {
        Acr::REACHABLE.into_iter().find(|a| a.as_str() == value)
    }

    /// The level of an authentication with these methods.
    pub fn of(amr: &[String]) -> Acr {
        if amr.iter().any(|m| m == AMR_HWK || m == AMR_SWK) {
            Acr::Phr
        } else if amr.iter().any(|m| m == AMR_MFA) {
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
        assert_eq!(Acr::of(&passkey_only(AMR_HWK)), Acr::Phr);
        assert_eq!(Acr::of(&password_and_passkey(AMR_SWK)), Acr::Phr);
        assert_eq!(Acr::of(&upstream_only()), Acr::OneFactor);
        assert_eq!(Acr::of(&first_and_second(AMR_FED, AMR_OTP)), Acr::Mfa);
        assert_eq!(Acr::of(&first_and_second(AMR_FED, AMR_HWK)), Acr::Phr);
    }

    #[test]
    fn acr_values_name_a_minimum() {
        assert_eq!(Acr::minimum_of("urn:castellan:acr:mfa"), Some(Acr::Mfa));
        assert_eq!(
            Acr::minimum_of("urn:castellan:acr:mfa urn:castellan:acr:1fa"),
            Some(Acr::OneFactor)
        );
        assert_eq!(Acr::minimum_of("phr urn:castellan:acr:mfa"), Some(Acr::Mfa));
        assert_eq!(Acr::minimum_of("phr"), Some(Acr::Phr));
        assert_eq!(Acr::minimum_of("phrh"), None);
        assert_eq!(Acr::minimum_of("something-else"), None);
        assert_eq!(Acr::minimum_of(""), None);
        assert!(Acr::OneFactor < Acr::Mfa && Acr::Mfa < Acr::Phr);
    }
}

//! Who must use a second factor: the users holding a role named in `mfa.required_for_roles`,
//! and anyone signing in to a client registered with `require_mfa` (CONTRACT.md, "policy").
//!
//! The policy only names a minimum level ([`Acr::Mfa`]); where it is enforced decides what a
//! session below it gets (the authorization endpoint: a step-up or enrolment, never a refusal;
//! the login page: enrolment after the password; the account page: the last factor stays).

use super::{Acr, User};

/// The second-factor policy, from `[mfa]` in the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MfaPolicy {
    required_for_roles: Vec<String>,
}

impl MfaPolicy {
    pub fn new(required_for_roles: Vec<String>) -> Self {
        Self { required_for_roles }
    }

    /// Whether the user's roles require a second factor.
    pub fn required_for(&self, user: &User) -> bool {
        self.required_for_roles.iter().any(|r| user.has_role(r))
    }

    /// The lowest level a sign-in of `user` to a client must reach under this policy: `Mfa`
    /// when the client requires it or the user's roles do, else nothing.
    pub fn minimum(&self, user: &User, client_requires_mfa: bool) -> Option<Acr> {
        (client_requires_mfa || self.required_for(user)).then_some(Acr::Mfa)
    }

    /// The level an authorization request must reach: the higher of what its `acr_values` ask
    /// for (a minimum, CONTRACT.md) and what the policy asks for.
    pub fn combine(requested: Option<Acr>, policy: Option<Acr>) -> Option<Acr> {
        requested.max(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{UnixTime, UserId};

    fn user(roles: &[&str]) -> User {
        User {
            id: UserId::from_stored("u".into()),
            email: "u@example.com".into(),
            email_verified: true,
            name: None,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            disabled: false,
            has_password: true,
            created_at: UnixTime::from_secs(0),
            updated_at: UnixTime::from_secs(0),
        }
    }

    #[test]
    fn a_role_in_the_list_or_the_client_requires_mfa() {
        let policy = MfaPolicy::new(vec!["admin".into(), "finance".into()]);
        let admin = user(&["user", "admin"]);
        let plain = user(&["user"]);
        assert!(policy.required_for(&admin));
        assert!(!policy.required_for(&plain));
        assert_eq!(policy.minimum(&admin, false), Some(Acr::Mfa));
        assert_eq!(policy.minimum(&plain, false), None);
        assert_eq!(policy.minimum(&plain, true), Some(Acr::Mfa));
        assert_eq!(MfaPolicy::default().minimum(&admin, false), None);
    }

    #[test]
    fn the_request_and_the_policy_combine_as_the_higher_level() {
        use Acr::{Mfa, OneFactor};
        assert_eq!(MfaPolicy::combine(None, None), None);
        assert_eq!(MfaPolicy::combine(Some(OneFactor), None), Some(OneFactor));
        assert_eq!(MfaPolicy::combine(Some(OneFactor), Some(Mfa)), Some(Mfa));
        assert_eq!(MfaPolicy::combine(None, Some(Mfa)), Some(Mfa));
        assert_eq!(MfaPolicy::combine(Some(Mfa), None), Some(Mfa));
    }
}

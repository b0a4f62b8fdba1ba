//! Users and their identifiers.

use std::fmt;

use super::{Invalid, UnixTime};

/// A user's stable, opaque identifier (a UUID); used as `sub`, never the email.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address as typed (trimmed), with its case-insensitive key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// A deliberately loose check (one `@`, something on both sides, no spaces or controls,
    /// at most 254 octets — RFC 5321 §4.5.3.1.3): the verification mail is the real test.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let s = raw.trim();
        let ok = s.len() <= 254
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && (domain.contains('.') || domain == "localhost")
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Invalid::new(
                "email",
                "enter an email address such as name@example.com",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The key that makes uniqueness and lookups case-insensitive.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
    pub fn local_part(&self) -> &str {
        self.0.split('@').next().unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A role name: `admin`, `user`, or one an administrator made; lower-case letters, digits, `-`, `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Role(String);

impl Role {
    pub const ADMIN: &'static str = "admin";
    pub const USER: &'static str = "user";

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let s = raw.trim();
        if !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(Invalid::new(
                "role",
                format!("{raw:?}: use lower-case letters, digits, `-` and `_`"),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An entry of the role catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    pub name: String,
    pub description: String,
    /// `admin` and `user`: cannot be deleted.
    pub builtin: bool,
    pub created_at: UnixTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub disabled: bool,
    /// Whether the account has a password (an administrator may create one without; the user
    /// then sets one through a reset link).
    pub has_password: bool,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl User {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// What it takes to create a user; the password is already hashed.
pub struct NewUser {
    pub email: Email,
    pub email_verified: bool,
    pub name: Option<String>,
    pub roles: Vec<Role>,
    pub password_hash: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Ann@Example.COM ").unwrap().key(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn roles() {
        assert!(Role::parse("admin").is_ok());
        assert!(Role::parse("Admin").is_err());
        assert!(Role::parse("a b").is_err());
    }
}

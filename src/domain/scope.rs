//! OAuth scope sets (RFC 6749 §3.3): space-delimited, case-sensitive tokens.

use std::collections::BTreeSet;
use std::fmt;

use super::Invalid;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// Parses a space-delimited scope string. RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let mut set = BTreeSet::new();
        for token in raw.split(' ').filter(|t| !t.is_empty()) {
            if !token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
            {
                return Err(Invalid::new(
                    "scope",
                    format!("{token:?} is not a valid scope token"),
                ));
            }
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The scopes of `self` that `allowed` also has.
    pub fn intersect(&self, allowed: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.intersection(&allowed.0).cloned().collect())
    }

    /// The set without `scope`.
    pub fn without(&self, scope: &str) -> ScopeSet {
        ScopeSet(self.0.iter().filter(|s| *s != scope).cloned().collect())
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.union(&other.0).cloned().collect())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_sorted() {
        let s = ScopeSet::parse("profile openid  email").unwrap();
        assert_eq!(s.to_string(), "email openid profile");
        assert!(ScopeSet::parse("open\"id").is_err());
        assert!(ScopeSet::parse("a\\b").is_err());
    }
}

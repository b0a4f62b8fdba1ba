//! OAuth scope sets (RFC 6749 §3.3): space-delimited, case-sensitive tokens.

use std::collections::BTreeSet;
use std::fmt;

use super::Invalid;

/// The longest `scope` a request may carry, in bytes. RFC 6749 §3.3 sets no bound; every scope
/// we know fits in a tenth of this, and the work a request causes stays bounded.
pub const MAX_REQUESTED_SCOPE_BYTES: usize = 2048;
/// The most space-separated tokens a requested `scope` may have (repeats counted).
pub const MAX_REQUESTED_SCOPE_TOKENS: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

impl ScopeSet {
    /// Parses the `scope` parameter of a request (RFC 6749 §3.3) with bounds: over
    /// [`MAX_REQUESTED_SCOPE_BYTES`] bytes or [`MAX_REQUESTED_SCOPE_TOKENS`] tokens it is
    /// refused before any token is kept. The OAuth layer answers `invalid_scope` ("invalid,
    /// unknown, or malformed", RFC 6749 §4.1.2.1 and §5.2).
    pub fn parse_requested(raw: &str) -> Result<Self, Invalid> {
        if raw.len() > MAX_REQUESTED_SCOPE_BYTES {
            return Err(Invalid::new(
                "scope",
                format!("the scope is longer than {MAX_REQUESTED_SCOPE_BYTES} bytes"),
            ));
        }
        if raw.split(' ').filter(|t| !t.is_empty()).count() > MAX_REQUESTED_SCOPE_TOKENS {
            return Err(Invalid::new(
                "scope",
                format!("the scope has more than {MAX_REQUESTED_SCOPE_TOKENS} tokens"),
            ));
        }
        Self::parse(raw)
    }

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

    #[test]
    fn a_requested_scope_is_bounded_in_bytes_and_tokens() {
        let tokens = |n: usize| {
            (0..n)
                .map(|i| format!("s{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(ScopeSet::parse_requested(&tokens(MAX_REQUESTED_SCOPE_TOKENS)).is_ok());
        let e = ScopeSet::parse_requested(&tokens(MAX_REQUESTED_SCOPE_TOKENS + 1)).unwrap_err();
        assert!(e.message.contains("more than 64 tokens"), "{e}");
        // Repeats count: the bound is on what the request carries.
        assert!(ScopeSet::parse_requested(&vec!["openid"; 65].join(" ")).is_err());
        // Runs of spaces are not tokens.
        let spaced = format!("openid{}email", " ".repeat(1000));
        assert_eq!(
            ScopeSet::parse_requested(&spaced).unwrap().to_string(),
            "email openid"
        );
        let long = "a".repeat(MAX_REQUESTED_SCOPE_BYTES);
        assert!(ScopeSet::parse_requested(&long).is_ok());
        let e = ScopeSet::parse_requested(&format!("{long}b")).unwrap_err();
        assert!(e.message.contains("longer than 2048 bytes"), "{e}");
        // A stored or registered scope is not a request: no bound there.
        assert!(ScopeSet::parse(&tokens(100)).is_ok());
    }
}

/// Property tests (proptest): any string is a bounded scope set of valid tokens or a refusal
/// naming the scope, never a panic.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn raw_scope() -> impl Strategy<Value = String> {
        prop_oneof![
            // Short strings of anything.
            ".{0,64}",
            // Many tokens, around the token bound.
            prop::collection::vec("[a-z:/._-]{1,12}", 0..80).prop_map(|t| t.join(" ")),
            // Long strings, around the byte bound.
            ("[a-z ]{0,8}", 2030usize..2070).prop_map(|(s, n)| format!("{s}{}", "x".repeat(n))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_requested_scope_is_valid_tokens_within_the_bounds_or_refused(raw in raw_scope()) {
            let tokens = raw.split(' ').filter(|t| !t.is_empty()).count();
            match ScopeSet::parse_requested(&raw) {
                Ok(set) => {
                    prop_assert!(raw.len() <= MAX_REQUESTED_SCOPE_BYTES);
                    prop_assert!(tokens <= MAX_REQUESTED_SCOPE_TOKENS);
                    prop_assert!(set.iter().count() <= tokens);
                    for t in set.iter() {
                        prop_assert!(raw.split(' ').any(|r| r == t));
                        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
                        prop_assert!(t.bytes().all(|b| b == 0x21
                            || (0x23..=0x5B).contains(&b)
                            || (0x5D..=0x7E).contains(&b)));
                    }
                    // What it prints parses back to the same set.
                    prop_assert_eq!(ScopeSet::parse_requested(&set.to_string()), Ok(set));
                }
                Err(e) => {
                    prop_assert_eq!(e.field, "scope");
                    prop_assert!(
                        raw.len() > MAX_REQUESTED_SCOPE_BYTES
                            || tokens > MAX_REQUESTED_SCOPE_TOKENS
                            || ScopeSet::parse(&raw).is_err()
                    );
                }
            }
        }
    }
}

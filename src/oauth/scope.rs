//! Scopes asked for against scopes allowed (RFC 6749 §3.3).

use super::OAuthError;
use crate::domain::ScopeSet;

/// The scope a request ends up with: what it asks for (`raw`), which must lie within
/// `allowed`, or all of `allowed` when it asks for nothing. RFC 6749 §6 (refresh: "MUST NOT
/// include any scope not originally granted") and §4.4.2 (client credentials) say the same.
/// `beyond` says what the request went past, for the `invalid_scope` description.
pub fn narrowed(
    raw: Option<&str>,
    allowed: &ScopeSet,
    beyond: &str,
) -> Result<ScopeSet, OAuthError> {
    let Some(raw) = raw else {
        return Ok(allowed.clone());
    };
    // RFC 6749 §3.3, §5.2: a malformed or oversized scope is `invalid_scope`.
    let asked = ScopeSet::parse_requested(raw).map_err(|e| OAuthError::InvalidScope(e.message))?;
    if !asked.is_subset(allowed) {
        return Err(OAuthError::InvalidScope(format!(
            "the requested scope exceeds {beyond}"
        )));
    }
    Ok(asked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_may_narrow_the_allowed_scope_never_widen_it() {
        let allowed = ScopeSet::parse("openid email profile").unwrap();
        assert_eq!(narrowed(None, &allowed, "x").unwrap(), allowed);
        assert_eq!(
            narrowed(Some("email"), &allowed, "x").unwrap().to_string(),
            "email"
        );
        assert!(matches!(
            narrowed(Some("email admin"), &allowed, "the grant"),
            Err(OAuthError::InvalidScope(m)) if m.contains("the grant")
        ));
        assert!(matches!(
            narrowed(Some("bad\"scope"), &allowed, "x"),
            Err(OAuthError::InvalidScope(_))
        ));
    }
}

/// Property tests (proptest): narrowing any requested scope gives a subset of what is allowed
/// or `invalid_scope`, nothing else.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn narrowing_any_scope_is_a_subset_or_invalid_scope(
            raw in prop::option::of(prop_oneof![
                ".{0,40}",
                prop::collection::vec(
                    prop::sample::select(vec!["openid", "email", "admin", "a\"b", ""]),
                    0..70,
                )
                .prop_map(|t| t.join(" ")),
            ]),
        ) {
            let allowed = ScopeSet::parse("openid email profile").expect("valid");
            match narrowed(raw.as_deref(), &allowed, "the grant") {
                Ok(s) => prop_assert!(s.is_subset(&allowed)),
                Err(OAuthError::InvalidScope(_)) => prop_assert!(raw.is_some()),
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }
    }
}

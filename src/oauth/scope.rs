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

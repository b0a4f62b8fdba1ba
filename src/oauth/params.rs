//! Request parameters as received (query string or form body), in order, with duplicates kept:
//! RFC 6749 §3.1 and §3.2 — "request and response parameters MUST NOT be included more than
//! once"; we detect repetition instead of silently taking the first or last value.
//!
//! A request carries at most [`MAX_PARAMS`] parameters: parsing stops at the first one over
//! the bound, so the work done for a flood of parameters is bounded too, and every check on
//! the parsed list is at most linear in it ([`Params::first_repeated`] is one pass with a set).

use std::collections::HashSet;

use super::OAuthError;

/// The most parameters one request may carry (query or form body). An OpenID Connect
/// authorization request uses about twenty; a page form fewer than ten.
pub const MAX_PARAMS: usize = 100;

/// More parameters than the bound allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request has more than {0} parameters")]
pub struct TooManyParams(pub usize);

impl From<TooManyParams> for OAuthError {
    fn from(e: TooManyParams) -> Self {
        OAuthError::InvalidRequest(e.to_string())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parses at most [`MAX_PARAMS`] parameters.
    pub fn parse(encoded: &str) -> Result<Self, TooManyParams> {
        Self::parse_at_most(encoded, MAX_PARAMS)
    }

    /// Parses at most `max` parameters; stops decoding at the first one over.
    pub fn parse_at_most(encoded: &str, max: usize) -> Result<Self, TooManyParams> {
        let mut pairs = Vec::new();
        for (k, v) in url::form_urlencoded::parse(encoded.as_bytes()) {
            if pairs.len() == max {
                return Err(TooManyParams(max));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self(pairs))
    }

    /// The first name that appears more than once, in one pass.
    pub fn first_repeated(&self) -> Option<&str> {
        let mut seen = HashSet::with_capacity(self.0.len());
        self.0
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| !seen.insert(*k))
    }

    /// The single value of `name`; an empty value counts as absent (RFC 6749 §3.1).
    /// A repeated parameter is `invalid_request`.
    pub fn one(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut found = None;
        for (k, v) in &self.0 {
            if k == name {
                if found.is_some() {
                    return Err(OAuthError::InvalidRequest(format!(
                        "parameter {name} is repeated"
                    )));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found.filter(|v| !v.is_empty()))
    }

    /// Like [`Params::one`] but required.
    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.one(name)?
            .ok_or_else(|| OAuthError::InvalidRequest(format!("parameter {name} is missing")))
    }

    pub fn is_repeated(&self, name: &str) -> bool {
        self.0.iter().filter(|(k, _)| k == name).count() > 1
    }

    /// Re-encodes the parameters, leaving out those for which `drop` says so.
    pub fn encode_without(&self, drop: impl Fn(&str, &str) -> bool) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            if !drop(k, v) {
                ser.append_pair(k, v);
            }
        }
        ser.finish()
    }

    /// Replaces (or removes, when `value` is `None`) every occurrence of `name`.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        self.0.retain(|(k, _)| k != name);
        if let Some(v) = value {
            self.0.push((name.to_owned(), v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_parameter_is_invalid_request() {
        let p = Params::parse("scope=openid&scope=email&state=x").unwrap();
        assert_eq!(p.one("state"), Ok(Some("x")));
        assert!(matches!(p.one("scope"), Err(OAuthError::InvalidRequest(_))));
    }

    #[test]
    fn an_empty_value_counts_as_absent() {
        let p = Params::parse("state=&nonce=n").unwrap();
        assert_eq!(p.one("state"), Ok(None));
        assert!(p.required("state").is_err());
        assert_eq!(p.required("nonce"), Ok("n"));
    }

    #[test]
    fn more_parameters_than_the_bound_are_refused_and_repeats_are_found_in_one_pass() {
        let at_bound = (0..MAX_PARAMS)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join("&");
        let p = Params::parse(&at_bound).unwrap();
        assert_eq!(p.0.len(), MAX_PARAMS);
        assert_eq!(p.first_repeated(), None);
        assert_eq!(
            Params::parse(&format!("{at_bound}&one=more")).unwrap_err(),
            TooManyParams(MAX_PARAMS)
        );
        // Empty pairs are not parameters.
        assert_eq!(Params::parse("&&a=1&&").unwrap().0.len(), 1);
        let p = Params::parse("a=1&b=2&c=3&b=4").unwrap();
        assert_eq!(p.first_repeated(), Some("b"));
    }
}

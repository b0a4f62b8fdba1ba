//! Request parameters as received (query string or form body), in order, with duplicates kept:
//! RFC 6749 §3.1 and §3.2 — "request and response parameters MUST NOT be included more than
//! once"; we detect repetition instead of silently taking the first or last value.

use super::OAuthError;

#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn parse(encoded: &str) -> Self {
        Self(
            url::form_urlencoded::parse(encoded.as_bytes())
                .into_owned()
                .collect(),
        )
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
        let p = Params::parse("scope=openid&scope=email&state=x");
        assert_eq!(p.one("state"), Ok(Some("x")));
        assert!(matches!(p.one("scope"), Err(OAuthError::InvalidRequest(_))));
    }

    #[test]
    fn an_empty_value_counts_as_absent() {
        let p = Params::parse("state=&nonce=n");
        assert_eq!(p.one("state"), Ok(None));
        assert!(p.required("state").is_err());
        assert_eq!(p.required("nonce"), Ok("n"));
    }
}

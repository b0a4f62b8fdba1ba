//! Request parameters as received (query string or form body), in order, with duplicates kept:
//! RFC 6749 §3.1 and §3.2 — "request and response parameters MUST NOT be included more than
//! once"; we detect repetition instead of silently taking the first or last value.
//!
//! A request carries at most [`MAX_PARAMS`] parameters: parsing stops at the first one over
//! the bound, so the work done for a flood of parameters is bounded too, and every check on
//! the parsed list is at most linear in it ([`Params::first_repeated`] is one pass with a set).
//!
//! Names and values are decoded as `application/x-www-form-urlencoded` (RFC 6749 Appendix B:
//! UTF-8, then percent-encoded). A name or value whose octets are not UTF-8 once decoded is
//! never turned into replacement characters: [`Params::parse`] refuses the request (a malformed
//! request is `invalid_request`, RFC 6749 §4.1.2.1 and §5.2), and
//! [`Params::parse_keeping_undecodable`] leaves the pair out and remembers it, for the
//! authorization endpoint, which must first find out whether it may redirect the error.

use std::borrow::Cow;
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

/// A parameter whose name or value is not UTF-8 once percent-decoded (RFC 6749 Appendix B).
/// `name` is the parameter's name when the name itself decoded (its value did not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUtf8 {
    pub name: Option<String>,
}

impl NotUtf8 {
    /// Whether this is the parameter `name` (a name that did not decode is none of ours: every
    /// parameter name we read is ASCII).
    pub fn is(&self, name: &str) -> bool {
        self.name.as_deref() == Some(name)
    }
}

impl std::fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The name is echoed only when it is a plain token: an error description carries no
        // characters outside RFC 6749 §4.1.2.1's set, and nothing that looks like markup.
        match self.name.as_deref() {
            Some(n)
                if !n.is_empty()
                    && n.len() <= 64
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                write!(f, "parameter {n} is not valid UTF-8")
            }
            Some(_) => f.write_str("a parameter value is not valid UTF-8"),
            None => f.write_str("a parameter name is not valid UTF-8"),
        }
    }
}

impl std::error::Error for NotUtf8 {}

impl From<NotUtf8> for OAuthError {
    fn from(e: NotUtf8) -> Self {
        OAuthError::InvalidRequest(e.to_string())
    }
}

/// Why a query or form body is not a set of parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error(transparent)]
    TooMany(#[from] TooManyParams),
    #[error(transparent)]
    NotUtf8(#[from] NotUtf8),
}

impl From<ParamsError> for OAuthError {
    fn from(e: ParamsError) -> Self {
        OAuthError::InvalidRequest(e.to_string())
    }
}

/// Decodes one `application/x-www-form-urlencoded` name or value: `+` is a space, `%XX` an
/// octet, and the octets must be UTF-8 (never replaced: a lossy decoding would let two
/// different inputs read as the same value).
pub fn decode_component(encoded: &[u8]) -> Result<String, std::string::FromUtf8Error> {
    let spaced: Cow<'_, [u8]> = if encoded.contains(&b'+') {
        Cow::Owned(
            encoded
                .iter()
                .map(|b| if *b == b'+' { b' ' } else { *b })
                .collect(),
        )
    } else {
        Cow::Borrowed(encoded)
    };
    let decoded: Cow<'_, [u8]> = percent_encoding::percent_decode(&spaced).into();
    String::from_utf8(decoded.into_owned())
}

#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    /// The pairs left out because they did not decode, in order (see the module comment).
    undecodable: Vec<NotUtf8>,
}

impl Params {
    /// Parses at most [`MAX_PARAMS`] parameters; every name and value must decode.
    pub fn parse(encoded: &str) -> Result<Self, ParamsError> {
        Self::parse_at_most(encoded.as_bytes(), MAX_PARAMS)
    }

    /// Parses at most `max` parameters; stops decoding at the first one over. Every name and
    /// value must decode to UTF-8.
    pub fn parse_at_most(encoded: &[u8], max: usize) -> Result<Self, ParamsError> {
        let params = Self::parse_keeping_undecodable(encoded, max)?;
        match params.undecodable.into_iter().next() {
            Some(bad) => Err(bad.into()),
            None => Ok(Self {
                pairs: params.pairs,
                undecodable: Vec::new(),
            }),
        }
    }

    /// Parses at most `max` parameters; a pair whose name or value does not decode is left out
    /// and remembered ([`Params::first_undecodable`]) instead of refusing the whole request.
    pub fn parse_keeping_undecodable(encoded: &[u8], max: usize) -> Result<Self, TooManyParams> {
        let mut params = Self::default();
        // The same split as `url::form_urlencoded::parse`: `&` between pairs (empty ones
        // skipped), the first `=` between name and value.
        for pair in encoded.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            if params.pairs.len() + params.undecodable.len() == max {
                return Err(TooManyParams(max));
            }
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            match (decode_component(name), decode_component(value)) {
                (Ok(k), Ok(v)) => params.pairs.push((k, v)),
                (Ok(k), Err(_)) => params.undecodable.push(NotUtf8 { name: Some(k) }),
                (Err(_), _) => params.undecodable.push(NotUtf8 { name: None }),
            }
        }
        Ok(params)
    }

    /// The parameters in order (those that decoded).
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The parameters in order (those that decoded), owned.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs
    }

    /// The first parameter that did not decode, if [`Params::parse_keeping_undecodable`] left
    /// one out.
    pub fn first_undecodable(&self) -> Option<&NotUtf8> {
        self.undecodable.first()
    }

    /// Whether one of the parameters that did not decode is named `name`.
    pub fn undecodable_named(&self, name: &str) -> bool {
        self.undecodable.iter().any(|u| u.is(name))
    }

    /// The first name that appears more than once, in one pass.
    pub fn first_repeated(&self) -> Option<&str> {
        let mut seen = HashSet::with_capacity(self.pairs.len());
        self.pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| !seen.insert(*k))
    }

    /// The single value of `name`; an empty value counts as absent (RFC 6749 §3.1).
    /// A repeated parameter is `invalid_request`.
    pub fn one(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut found = None;
        for (k, v) in &self.pairs {
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
        self.pairs.iter().filter(|(k, _)| k == name).count() > 1
    }

    /// Re-encodes the parameters, leaving out those for which `drop` says so.
    pub fn encode_without(&self, drop: impl Fn(&str, &str) -> bool) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            if !drop(k, v) {
                ser.append_pair(k, v);
            }
        }
        ser.finish()
    }

    /// Replaces (or removes, when `value` is `None`) every occurrence of `name`.
    pub fn set(&mut self, name: &str, value: Option<String>) {
        self.pairs.retain(|(k, _)| k != name);
        if let Some(v) = value {
            self.pairs.push((name.to_owned(), v));
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
        assert_eq!(p.pairs().len(), MAX_PARAMS);
        assert_eq!(p.first_repeated(), None);
        assert_eq!(
            Params::parse(&format!("{at_bound}&one=more")).unwrap_err(),
            ParamsError::TooMany(TooManyParams(MAX_PARAMS))
        );
        // Empty pairs are not parameters.
        assert_eq!(Params::parse("&&a=1&&").unwrap().pairs().len(), 1);
        let p = Params::parse("a=1&b=2&c=3&b=4").unwrap();
        assert_eq!(p.first_repeated(), Some("b"));
    }

    #[test]
    fn names_and_values_decode_like_a_form_and_must_be_utf8() {
        let p = Params::parse("a+b=c%20d&e=%C3%A9&f&=g").unwrap();
        let want: Vec<(String, String)> = [("a b", "c d"), ("e", "\u{e9}"), ("f", ""), ("", "g")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(p.pairs(), want.as_slice());
        // Never a replacement character: the request is refused, naming the parameter.
        let e = Params::parse("client_id=a&state=%FF").unwrap_err();
        assert_eq!(
            e,
            ParamsError::NotUtf8(NotUtf8 {
                name: Some("state".into())
            })
        );
        assert_eq!(e.to_string(), "parameter state is not valid UTF-8");
        assert_eq!(
            Params::parse("%C3=1").unwrap_err().to_string(),
            "a parameter name is not valid UTF-8"
        );
        // An overlong encoding and a lone surrogate are not UTF-8 either.
        assert!(Params::parse("a=%C0%AF").is_err());
        assert!(Params::parse("a=%ED%A0%80").is_err());
        // Raw octets in a body are held to the same rule.
        assert!(Params::parse_at_most(b"a=\xff", MAX_PARAMS).is_err());
        // A name that is not a plain token is not echoed.
        assert_eq!(
            Params::parse("%3Cb%3E=%FF").unwrap_err().to_string(),
            "a parameter value is not valid UTF-8"
        );
    }

    #[test]
    fn the_lenient_parse_keeps_what_decodes_and_remembers_the_rest() {
        let p = Params::parse_keeping_undecodable(b"client_id=a&state=%FF&%FE=x&b=2", 10).unwrap();
        assert_eq!(p.one("client_id"), Ok(Some("a")));
        assert_eq!(p.one("state"), Ok(None));
        assert_eq!(p.pairs().len(), 2);
        assert!(p.undecodable_named("state"));
        assert!(!p.undecodable_named("client_id"));
        assert_eq!(
            p.first_undecodable().map(ToString::to_string).as_deref(),
            Some("parameter state is not valid UTF-8")
        );
        // Pairs that do not decode still count towards the bound.
        assert_eq!(
            Params::parse_keeping_undecodable(b"a=%FF&b=%FF&c=1", 2).unwrap_err(),
            TooManyParams(2)
        );
    }
}

/// Property tests (proptest): arbitrary octets never panic the parser, which refuses only in its
/// own terms, and what a form encoder writes reads back unchanged.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Octets a query or body may hold, weighted towards the ones the parser treats specially.
    fn encoded() -> impl Strategy<Value = Vec<u8>> {
        let octet = prop_oneof![
            4 => prop::sample::select(b"&=+%abcXYZ019 ".to_vec()),
            1 => any::<u8>(),
        ];
        let escape = "%[0-9A-Fa-f]{2}".prop_map(String::into_bytes);
        prop::collection::vec(
            prop_oneof![3 => octet.prop_map(|b| vec![b]), 1 => escape],
            0..200,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_octets_parse_or_are_refused_in_the_parsers_terms(
            input in encoded(),
            max in 1usize..=MAX_PARAMS,
        ) {
            let strict = Params::parse_at_most(&input, max);
            let lenient = Params::parse_keeping_undecodable(&input, max);
            match (&strict, &lenient) {
                (Ok(s), Ok(l)) => {
                    prop_assert!(l.first_undecodable().is_none());
                    prop_assert_eq!(s.pairs(), l.pairs());
                    prop_assert!(s.pairs().len() <= max);
                    // What decodes strictly decodes as a lossy decoder would: nothing was lost.
                    let lossy: Vec<(String, String)> = url::form_urlencoded::parse(&input)
                        .into_owned()
                        .collect();
                    prop_assert_eq!(s.pairs(), lossy.as_slice());
                }
                (Err(ParamsError::NotUtf8(e)), Ok(l)) => {
                    prop_assert_eq!(l.first_undecodable(), Some(e));
                }
                (Err(ParamsError::TooMany(TooManyParams(n))), Err(TooManyParams(m))) => {
                    prop_assert_eq!((*n, *m), (max, max));
                }
                other => prop_assert!(false, "strict and lenient disagree: {other:?}"),
            }
            // Reading a parameter is a value, nothing, or invalid_request.
            if let Ok(p) = lenient {
                for name in ["client_id", "scope", "a", ""] {
                    match p.one(name) {
                        Ok(_) | Err(OAuthError::InvalidRequest(_)) => {}
                        Err(e) => prop_assert!(false, "unexpected {e:?}"),
                    }
                }
            }
        }

        #[test]
        fn what_a_form_encoder_writes_reads_back_unchanged(
            pairs in prop::collection::vec((".{0,12}", ".{0,24}"), 0..20),
        ) {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            let parsed = Params::parse(&encoded).expect("an encoder's output decodes");
            prop_assert_eq!(parsed.pairs(), pairs.as_slice());
            prop_assert_eq!(
                parsed.encode_without(|_, _| false),
                encoded
            );
        }
    }
}

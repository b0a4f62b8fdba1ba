//! Time-based one-time passwords (RFC 6238) over HMAC-SHA-1 (RFC 4226), the seed's base32 text
//! (RFC 4648 §6), the `otpauth://` URI of the Key Uri Format, and recovery codes.
//!
//! HMAC-SHA-1 comes from aws-lc-rs, the library that already signs our tokens. SHA-1's
//! collision weakness does not touch HMAC (RFC 6238 §5.1 and every authenticator app use it).

use aws_lc_rs::hmac;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// RFC 6238 §4.1: X, the time step, 30 seconds (the value authenticator apps assume).
pub const STEP_SECS: i64 = 30;
/// RFC 4226 §5.3: six digits (the Key Uri Format's default).
pub const DIGITS: u32 = 6;
/// RFC 4226 §4 R6: a seed of at least 128 bits; 160 bits is RFC 4226's recommendation (and
/// SHA-1's output length).
pub const SECRET_LEN: usize = 20;
/// RFC 6238 §5.2: how many steps before and after the current one a code is accepted for
/// (clock skew between the phone and the server).
pub const SKEW_STEPS: i64 = 1;
/// How many recovery codes a set has.
pub const RECOVERY_CODES: usize = 10;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A new random seed.
pub fn generate_secret() -> Vec<u8> {
    let mut s = vec![0u8; SECRET_LEN];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

/// RFC 4648 §6 base32, without padding (the Key Uri Format's `secret`).
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buf >> bits) & 31) as usize]));
        }
        buf &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buf << (5 - bits)) & 31) as usize]));
    }
    out
}

/// RFC 4648 §6 base32, case-insensitive, padding and spaces ignored; `None` for any other
/// character.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| *c != b'=' && *c != b' ') {
        let v = BASE32.iter().position(|x| *x == c.to_ascii_uppercase())?;
        buf = (buf << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
        buf &= (1 << bits) - 1;
    }
    Some(out)
}

/// RFC 6238 §4.2: the time step `T` of a Unix time (T0 = 0).
pub fn step_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// RFC 4226 §5.3 HOTP(K, C) with C = the time step: HMAC-SHA-1, dynamic truncation, modulo
/// 10^digits.
pub fn code_at(secret: &[u8], step: i64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    // §5.3: the offset is the low 4 bits of the last byte; 31 bits from there.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = (u32::from(mac[offset] & 0x7f) << 24)
        | (u32::from(mac[offset + 1]) << 16)
        | (u32::from(mac[offset + 2]) << 8)
        | u32::from(mac[offset + 3]);
    bin % 10u32.pow(digits)
}

/// The time step a submitted code belongs to, among the current step and [`SKEW_STEPS`] either
/// side (RFC 6238 §5.2); `None` when it matches none or is not six digits. The newest matching
/// step is returned, so that the replay guard (a step must exceed the last used one) keeps the
/// most codes out. Every candidate is computed and compared, whatever matches.
pub fn matching_step(secret: &[u8], submitted: &str, unix_secs: i64) -> Option<i64> {
    let submitted = submitted.trim();
    if submitted.len() != DIGITS as usize || !submitted.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_secs);
    let mut found = None;
    for step in (now - SKEW_STEPS)..=(now + SKEW_STEPS) {
        let expected = format!(
            "{:0width$}",
            code_at(secret, step, DIGITS),
            width = DIGITS as usize
        );
        if super::token::constant_time_eq(expected.as_bytes(), submitted.as_bytes()) {
            found = Some(step);
        }
    }
    found
}

/// The Key Uri Format's `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=ISSUER&…` (the label's
/// issuer prefix and the `issuer` parameter agree, as the format recommends).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    // RFC 3986 §2.3: all but the unreserved characters are percent-encoded.
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string();
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32_encode(secret),
        enc(issuer),
    )
}

/// A new set of recovery codes, as shown to the user: `xxxxx-xxxxx`, ten base32 characters,
/// 50 random bits each.
pub fn generate_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut b = [0u8; 7];
            rand::rngs::OsRng.fill_bytes(&mut b);
            let s = base32_encode(&b).to_ascii_lowercase();
            format!("{}-{}", &s[..5], &s[5..10])
        })
        .collect()
}

/// The stored form of a recovery code: SHA-256 of the code without case, spaces or dashes.
/// A fast hash suffices here, unlike for passwords: each code has 50 bits from a CSPRNG, so a
/// leaked hash cannot be reversed by guessing, and a guess at the sign-in form counts toward the
/// account's lockout. Anything else than a code's shape hashes to a value no code has.
pub fn recovery_code_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let digest = Sha256::new()
        .chain_update(b"castellan recovery code\0")
        .chain_update(normal.as_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, the SHA-1 rows: the seed is the ASCII "12345678901234567890";
    /// the table has 8 digits, six digits are their last six (modulo 10^6).
    #[test]
    fn rfc_6238_appendix_b_sha1_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(code_at(secret, step_of(time), 8), eight, "T={time}");
            assert_eq!(
                code_at(secret, step_of(time), 6),
                eight % 1_000_000,
                "T={time}"
            );
        }
    }

    #[test]
    fn a_code_matches_its_step_and_one_either_side_only() {
        let secret = b"12345678901234567890";
        let t = 1111111111;
        let code = format!("{:06}", code_at(secret, step_of(t), 6));
        assert_eq!(matching_step(secret, &code, t), Some(step_of(t)));
        assert_eq!(matching_step(secret, &code, t + 30), Some(step_of(t)));
        assert_eq!(matching_step(secret, &code, t - 30), Some(step_of(t)));
        assert_eq!(matching_step(secret, &code, t + 60), None);
        assert_eq!(matching_step(secret, &code, t - 60), None);
        assert_eq!(matching_step(secret, "12345", t), None);
        assert_eq!(matching_step(secret, "abcdef", t), None);
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        // RFC 4648 §10.
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_encode(b"f"), "MY");
        assert_eq!(
            base32_decode("MZXW6YTBOI======").as_deref(),
            Some(&b"foobar"[..])
        );
        let s = generate_secret();
        assert_eq!(base32_decode(&base32_encode(&s).to_lowercase()), Some(s));
        assert_eq!(base32_decode("M1"), None);
    }

    #[test]
    fn the_uri_follows_the_key_uri_format() {
        let uri = otpauth_uri("id.example.com", "ada@example.com", b"foobar");
        assert_eq!(
            uri,
            "otpauth://totp/id.example.com:ada%40example.com?secret=MZXW6YTBOI&issuer=id.example.com&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_hash_without_case_or_dashes() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), 10);
        let mut d = codes.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), 10);
        let c = &codes[0];
        assert_eq!(
            recovery_code_hash(c),
            recovery_code_hash(&c.to_uppercase().replace('-', " "))
        );
        assert_ne!(recovery_code_hash(c), recovery_code_hash(&codes[1]));
    }
}

//! Secrets at rest: AES-256-GCM under a key-encryption key (KEK), through aws-lc-rs (the
//! library that already signs our tokens).
//!
//! A sealed value is `MAGIC || kek_id (8) || nonce (12) || ciphertext || tag (16)`:
//! - `MAGIC` tells a sealed value from a plaintext one (a PKCS#8 DER key starts with `0x30`);
//! - `kek_id` names the KEK without revealing it (the first 8 bytes of a SHA-256 over a label
//!   and the key), so a wrong KEK is told apart from damaged data;
//! - the nonce is random (96 bits, NIST SP 800-38D §8.2.2): a KEK seals a few values (signing
//!   keys, TOTP seeds, upstream secrets), far below the 2^32 limit for random nonces;
//! - the additional authenticated data names what the value is (a signing key's kid, say), so
//!   a sealed value copied onto another row does not open.
//!
//! Where the KEK comes from (`CASTELLAN_KEY_ENCRYPTION_KEY`, `…_FILE`, or the file made beside a
//! SQLite database) is `startup`'s business; this module only seals and opens.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The first bytes of every sealed value (format version 1).
const MAGIC: &[u8; 5] = b"CSTL\x01";
const ID_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// The KEK's length: 256 bits.
pub const KEK_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the key-encryption key must be base64 of exactly 32 bytes")]
    BadKek,
    #[error("the value is not sealed")]
    NotSealed,
    #[error("the value is sealed under another key-encryption key ({0})")]
    OtherKek(String),
    #[error("the sealed value cannot be opened (damaged, or moved from elsewhere)")]
    Damaged,
    #[error("sealing failed")]
    Seal,
}

/// A key-encryption key. `Debug` prints its id only.
pub struct Kek {
    key: LessSafeKey,
    id: [u8; ID_LEN],
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kek({})", self.id_hex())
    }
}

impl Kek {
    /// A KEK from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Kek, SealError> {
        if bytes.len() != KEK_LEN {
            return Err(SealError::BadKek);
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::BadKek)?;
        let digest = Sha256::new()
            .chain_update(b"castellan key-encryption key id\0")
            .chain_update(bytes)
            .finalize();
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&digest[..ID_LEN]);
        Ok(Kek {
            key: LessSafeKey::new(key),
            id,
        })
    }

    /// A KEK from its base64 text (standard alphabet, padding optional, surrounding
    /// whitespace ignored: what a file or an environment variable holds).
    pub fn from_base64(text: &str) -> Result<Kek, SealError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| SealError::BadKek)?;
        Kek::from_bytes(&bytes)
    }

    /// A new random KEK and its base64 text.
    pub fn generate() -> Result<(Kek, String), SealError> {
        let mut bytes = [0u8; KEK_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SealError::Seal)?;
        Ok((Kek::from_bytes(&bytes)?, STANDARD.encode(bytes)))
    }

    /// The key's id in hex (safe to log).
    pub fn id_hex(&self) -> String {
        hex(&self.id)
    }

    /// Seals `plaintext`, bound to `aad` (what the value is).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Seal)?;
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| SealError::Seal)?;
        let mut out = Vec::with_capacity(MAGIC.len() + ID_LEN + NONCE_LEN + body.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a value sealed by [`Kek::seal`] with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let id = sealed_by(sealed).ok_or(SealError::NotSealed)?;
        if id != self.id {
            return Err(SealError::OtherKek(hex(&id)));
        }
        let rest = &sealed[MAGIC.len() + ID_LEN..];
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Damaged);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Damaged)?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .map_err(|_| SealError::Damaged)?;
        Ok(plain.to_vec())
    }

    /// Whether `sealed` was sealed under this key.
    pub fn sealed_this(&self, sealed: &[u8]) -> bool {
        sealed_by(sealed) == Some(self.id)
    }
}

/// Whether `value` is sealed (by any KEK).
pub fn is_sealed(value: &[u8]) -> bool {
    sealed_by(value).is_some()
}

/// The id of the KEK `value` was sealed under, when it is sealed.
fn sealed_by(value: &[u8]) -> Option<[u8; ID_LEN]> {
    let rest = value.strip_prefix(MAGIC.as_slice())?;
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(rest.get(..ID_LEN)?);
    Some(id)
}

/// The hex id of the KEK `value` was sealed under (for error messages).
pub fn sealed_by_hex(value: &[u8]) -> Option<String> {
    sealed_by(value).map(|id| hex(&id))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_with_its_key_and_its_label_only() {
        let (kek, text) = Kek::generate().unwrap();
        let again = Kek::from_base64(&format!("  {text}\n")).unwrap();
        assert_eq!(kek.id_hex(), again.id_hex());
        let sealed = kek.seal(b"private key", b"kid-1").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!is_sealed(b"\x30\x82private"));
        assert!(
            !sealed
                .windows(b"private key".len())
                .any(|w| w == b"private key")
        );
        assert_eq!(again.open(&sealed, b"kid-1").unwrap(), b"private key");
        assert_eq!(again.open(&sealed, b"kid-2"), Err(SealError::Damaged));
        let (other, _) = Kek::generate().unwrap();
        assert!(matches!(
            other.open(&sealed, b"kid-1"),
            Err(SealError::OtherKek(_))
        ));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(kek.open(&flipped, b"kid-1"), Err(SealError::Damaged));
        assert_eq!(kek.open(&sealed[..20], b"kid-1"), Err(SealError::Damaged));
        assert_eq!(kek.open(b"plain", b"kid-1"), Err(SealError::NotSealed));
        // Two seals of one value differ (random nonces).
        assert_ne!(kek.seal(b"x", b"a").unwrap(), kek.seal(b"x", b"a").unwrap());
    }

    #[test]
    fn only_32_byte_keys_are_accepted() {
        assert_eq!(Kek::from_base64("c2hvcnQ=").unwrap_err(), SealError::BadKek);
        assert_eq!(
            Kek::from_base64("not base64!").unwrap_err(),
            SealError::BadKek
        );
        assert!(Kek::from_bytes(&[7u8; 32]).is_ok());
        assert_eq!(
            format!("{:?}", Kek::from_bytes(&[7u8; 32]).unwrap()).len(),
            21
        );
    }
}

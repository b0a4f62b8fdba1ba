//! Password hashing with argon2id (RFC 9106; OWASP parameters by default).
//!
//! Hashing is slow by design: callers run it on the blocking pool, bounded (see
//! `services::passwords`). For an unknown user, callers verify against [`Hasher::dummy_hash`]
//! so that the time taken does not reveal whether an account exists.

use argon2::password_hash::{PasswordHash, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Reusable argon2 working memory (grown to the largest parameters seen, then kept).
#[derive(Default)]
pub struct Scratch(Vec<argon2::Block>);

impl Scratch {
    fn ensure(&mut self, blocks: usize) {
        if self.0.len() < blocks {
            self.0.resize(blocks, argon2::Block::default());
        }
    }
}

pub struct Hasher {
    params: Params,
    /// Computed on first use, so that start-up does not pay for an argon2 hash.
    dummy: std::sync::OnceLock<String>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Hasher(m={}, t={}, p={})",
            self.params.m_cost(),
            self.params.t_cost(),
            self.params.p_cost()
        )
    }
}

impl Hasher {
    /// Builds a hasher with the given argon2id parameters.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, PasswordError> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        Ok(Self {
            params,
            dummy: std::sync::OnceLock::new(),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string (`$argon2id$v=19$m=...`) with a fresh random salt, in a buffer of its own
    /// (for one-off hashes: the CLI, the dummy hash). Request paths use [`Hasher::hash_with`].
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        self.hash_with(password, &mut Scratch::default())
    }

    /// Verifies against a stored PHC string, with the parameters recorded in that string.
    /// A malformed stored hash verifies as false. See [`Hasher::verify_with`].
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        self.verify_with(password, phc, &mut Scratch::default())
    }

    /// Like [`Hasher::hash`], but computing in `scratch`, a buffer the caller keeps and reuses:
    /// no 19 MiB allocation per hash, so memory stays flat under a login storm.
    pub fn hash_with(
        &self,
        password: &str,
        scratch: &mut Scratch,
    ) -> Result<String, PasswordError> {
        use base64::Engine;
        let salt = SaltString::generate(&mut OsRng);
        let mut raw_salt = [0u8; 64];
        let salt_bytes = salt
            .decode_b64(&mut raw_salt)
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        let mut out = [0u8; 32];
        scratch.ensure(self.params.block_count());
        self.argon2()
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                &mut out,
                &mut scratch.0,
            )
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        let hash = base64::engine::general_purpose::STANDARD_NO_PAD.encode(out);
        Ok(format!(
            "$argon2id$v=19$m={},t={},p={}${}${hash}",
            self.params.m_cost(),
            self.params.t_cost(),
            self.params.p_cost(),
            salt.as_str()
        ))
    }

    /// Like [`Hasher::verify`], computing in `scratch` (see [`Hasher::hash_with`]). The stored
    /// string's own algorithm, version and parameters are used; the comparison is constant-time.
    pub fn verify_with(&self, password: &str, phc: &str, scratch: &mut Scratch) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let (Ok(alg), Ok(params)) = (
            Algorithm::try_from(parsed.algorithm),
            Params::try_from(&parsed),
        ) else {
            return false;
        };
        let version = parsed
            .version
            .and_then(|v| Version::try_from(v).ok())
            .unwrap_or(Version::V0x13);
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let mut raw_salt = [0u8; 64];
        let Ok(salt_bytes) = salt.decode_b64(&mut raw_salt) else {
            return false;
        };
        let expected = expected.as_bytes();
        let mut out = vec![0u8; expected.len()];
        scratch.ensure(params.block_count());
        if Argon2::new(alg, version, params)
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                &mut out,
                &mut scratch.0,
            )
            .is_err()
        {
            return false;
        }
        crate::crypto::token::constant_time_eq(&out, expected)
    }

    /// A hash of a random password with the current parameters, for unknown users.
    /// Computed once, on the first call (a blocking argon2 hash: call it off the async workers).
    pub fn dummy_hash(&self) -> &str {
        self.dummy.get_or_init(|| {
            // Hashing with valid parameters cannot fail; if it did, a PHC string that never
            // verifies still costs a parse, and the login stays refused.
            self.hash(&crate::crypto::token::random_id())
                .unwrap_or_else(|_| "$argon2id$v=19$m=19456,t=2,p=1$invalid".to_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_and_verifying_in_a_reused_buffer_agrees_with_the_allocating_path() {
        let h = Hasher::new(1024, 1, 1).unwrap();
        let mut scratch = Scratch::default();
        let phc = h.hash_with("correct horse", &mut scratch).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(
            h.verify("correct horse", &phc),
            "the standard verifier accepts our PHC string"
        );
        assert!(h.verify_with("correct horse", &phc, &mut scratch));
        assert!(!h.verify_with("correct horsE", &phc, &mut scratch));
        let other = h.hash("correct horse").unwrap();
        assert!(
            h.verify_with("correct horse", &other, &mut scratch),
            "and we accept the standard one"
        );
        // Stored with other parameters: verified with those.
        let strong = Hasher::new(2048, 2, 1).unwrap().hash("pw").unwrap();
        assert!(h.verify_with("pw", &strong, &mut scratch));
        assert!(!h.verify_with("pw", "not a phc string", &mut scratch));
    }

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let h = Hasher::new(1024, 1, 1).unwrap();
        let a = h.hash("correct horse").unwrap();
        let b = h.hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_ne!(a, b);
        assert!(h.verify("correct horse", &a));
        assert!(!h.verify("wrong horse", &a));
        assert!(!h.verify("correct horse", "not a hash"));
        assert!(!h.verify("anything", h.dummy_hash()));
    }
}

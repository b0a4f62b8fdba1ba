//! A signing key as the use cases see it (stored by `store::keys`): its state, its times, and
//! its private key (plain PKCS#8 DER, or sealed under the key-encryption key).

use crate::domain::UnixTime;

/// A stored signing key. `Debug` prints no key material.
#[derive(Clone)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: String,
    pub private_der: Vec<u8>,
    pub public_jwk: String,
    pub state: String,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub retire_at: Option<UnixTime>,
    /// When it starts (or started) signing.
    pub activate_at: UnixTime,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyRecord(kid={}, state={})", self.kid, self.state)
    }
}

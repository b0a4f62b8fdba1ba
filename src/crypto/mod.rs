//! Cryptography without I/O: password hashing, bearer-secret generation and hashing,
//! RSA signing keys, JWT signing and verification.

pub mod jwt;
pub mod keys;
pub mod password;
pub mod seal;
pub mod token;
pub mod totp;

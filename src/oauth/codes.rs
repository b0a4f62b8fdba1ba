//! Authorization codes (RFC 6749 §4.1.2): 256-bit random values with a recognisable prefix,
//! stored only as SHA-256 hashes, short-lived (`tokens.code_ttl_secs`), and redeemed at most
//! once: the redemption deletes the row and returns it in one statement, so two racing
//! requests cannot both win, and remembers which grant it started, so that a second use can
//! revoke what the first issued (§4.1.2: "SHOULD revoke … all tokens previously issued based
//! on that authorization code").

use crate::crypto::token;
use crate::domain::UnixTime;
use crate::store::grants::CodeRecord;
use crate::store::{Store, StoreError};

/// Prefix of authorization codes.
pub const CODE_PREFIX: &str = token::prefix::AUTHORIZATION_CODE;

/// Stores `record` under a fresh code; returns the code (shown once, in the redirect).
pub async fn issue(store: &Store, record: CodeRecord, now: UnixTime) -> Result<String, StoreError> {
    let code = token::generate(CODE_PREFIX);
    store.insert_code(token::hash(&code), record, now).await?;
    Ok(code)
}

/// Takes the code's record, once, recording that it started `grant_id` (remembered until
/// `until`); `None` when the code is unknown or was already taken.
pub async fn redeem(
    store: &Store,
    code: &str,
    grant_id: &str,
    until: UnixTime,
) -> Result<Option<CodeRecord>, StoreError> {
    store.take_code(&token::hash(code), grant_id, until).await
}

/// The grant a code already redeemed started, if it is still remembered.
pub async fn redeemed_grant(store: &Store, code: &str) -> Result<Option<String>, StoreError> {
    store.redeemed_code_grant(&token::hash(code)).await
}

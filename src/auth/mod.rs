//! Identity: who is calling, established from a verified JWT. Pure: the
//! clock and keys are passed in, so every check is tested natively.
//!
//! Tokens are HS256 (a shared secret) or RS256/ES256/EdDSA (an identity
//! provider's JWKS): `sub` is the user id, `name` the display name, `exp`
//! is required, `nbf`/`iat` are honoured, roles come from a configurable
//! claim. See `jwt.rs` for the order of checks.

pub mod config;
pub mod jwks;
pub mod jws;
pub mod jwt;
#[cfg(not(target_arch = "wasm32"))]
pub mod signer;
pub mod visitor;

use crate::error::AppError;
use serde::{Deserialize, Serialize};

pub use jwt::{mint_hs256, verify, Keys, Policy};

/// Who is calling, as established from a verified token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub user_id: String,
    pub name: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// When the token proving this identity stops being accepted (unix ms:
    /// `exp` plus the clock leeway). A socket opened with it is closed then
    /// (`token_expired`, close 4001).
    #[serde(default)]
    pub expires_at: u64,
}

impl Identity {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Why a token was refused. Each maps to a stable 401 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Malformed,
    /// `none`, an algorithm Confab does not accept, or one the key is not for.
    Algorithm,
    /// No configured or published key has the token's `kid`.
    UnknownKey,
    Signature,
    MissingExpiry,
    Expired,
    NotYetValid,
    IssuedInFuture,
    Issuer,
    Audience,
    MissingSubject,
    /// The identity provider's keys could not be fetched and no earlier
    /// copy exists.
    KeysUnavailable,
}

impl AuthError {
    pub fn code(self) -> &'static str {
        match self {
            AuthError::Missing => "token_missing",
            AuthError::Malformed => "token_malformed",
            AuthError::Algorithm => "token_algorithm",
            AuthError::UnknownKey => "token_unknown_key",
            AuthError::Signature => "token_signature",
            AuthError::MissingExpiry => "token_missing_exp",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::IssuedInFuture => "token_issued_in_future",
            AuthError::Issuer => "token_issuer",
            AuthError::Audience => "token_audience",
            AuthError::MissingSubject => "token_missing_sub",
            AuthError::KeysUnavailable => "token_keys_unavailable",
        }
    }
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        AppError::Unauthorized(e.code())
    }
}

/// Longest accepted `name` (`sub` follows `ids::is_valid_user_id`).
pub(crate) const MAX_NAME_CHARS: usize = 100;

/// A stable pseudonym for a user id, for logs: HMAC-SHA256 keyed with a
/// server secret, so ids cannot be recovered by hashing guesses.
pub fn user_hash(secret: &[u8], user_id: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(user_id.as_bytes());
    mac.finalize().into_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The token in an `Authorization: Bearer …` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Missing)?.trim();
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_hashes_are_stable_keyed_and_opaque() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let a = user_hash(secret, "alice");
        assert_eq!(a, user_hash(secret, "alice"));
        assert_eq!(a.len(), 16);
        assert_ne!(a, user_hash(secret, "bob"));
        assert_ne!(a, user_hash(b"another key", "alice"));
        assert!(!a.contains("alice"));
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(None), Err(AuthError::Missing));
        assert_eq!(bearer(Some("Basic abc")), Err(AuthError::Malformed));
        assert_eq!(bearer(Some("Bearer ")), Err(AuthError::Malformed));
        assert_eq!(bearer(Some("bearer abc.def")), Ok("abc.def"));
    }
}

//! Tokens this deployment signs for itself and alone verifies: attachment
//! upload and download URLs (`crate::attachment`) and visitors'
//! credentials (`crate::auth::visitor`). Pure.
//!
//! A token is its claims as base64url JSON and an HMAC-SHA256 tag over
//! `confab/<purpose>/<payload>`: a token made for one purpose is never
//! accepted for another, even under the same key. The tag is checked in
//! constant time before the claims are parsed.

use serde::{de::DeserializeOwned, Serialize};

/// What a signed token is for; part of its MAC.
pub trait Claims: Serialize + DeserializeOwned {
    /// `area/use`, e.g. `attachment/file`.
    const PURPOSE: &'static str;
    /// When it stops being accepted (unix ms).
    fn expires_at(&self) -> i64;
}

fn mac(secret: &[u8], purpose: &str, payload: &str) -> hmac::Hmac<sha2::Sha256> {
    use hmac::Mac;
    let mut m = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
        .expect("HMAC takes any key length");
    m.update(b"confab/");
    m.update(purpose.as_bytes());
    m.update(b"/");
    m.update(payload.as_bytes());
    m
}

/// The URL-safe token for `claims`.
pub fn sign<C: Claims>(secret: &[u8], claims: &C) -> String {
    use base64ct::{Base64UrlUnpadded as B64, Encoding};
    use hmac::Mac;
    let json = serde_json::to_vec(claims).expect("claims serialize");
    let payload = B64::encode_string(&json);
    let tag = mac(secret, C::PURPOSE, &payload).finalize().into_bytes();
    format!("{payload}.{}", B64::encode_string(&tag))
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token, or not signed by this deployment for this purpose.
    Invalid,
    Expired,
}

/// The claims of a token this deployment signed for `C`'s purpose, if it
/// has not expired at `now` (unix ms).
pub fn verify<C: Claims>(secret: &[u8], token: &str, now: i64) -> Result<C, TokenError> {
    use base64ct::{Base64UrlUnpadded as B64, Encoding};
    use hmac::Mac;
    let (payload, tag) = token.split_once('.').ok_or(TokenError::Invalid)?;
    let tag = B64::decode_vec(tag).map_err(|_| TokenError::Invalid)?;
    mac(secret, C::PURPOSE, payload)
        .verify_slice(&tag)
        .map_err(|_| TokenError::Invalid)?;
    let json = B64::decode_vec(payload).map_err(|_| TokenError::Invalid)?;
    let claims: C = serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)?;
    if claims.expires_at() <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

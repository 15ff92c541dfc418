//! Token verification. Pure: keys, policy and the clock are handed in.
//!
//! Order of checks, each failure a distinct 401 code:
//! 1. the token parses and names an algorithm Confab accepts;
//! 2. a key exists for it: the HMAC secret for HS256, otherwise a JWKS key
//!    with the token's `kid` (or, without `kid`, any key of that algorithm)
//!    whose pinned algorithm matches the header's;
//! 3. the signature verifies: HS256 here, the public-key algorithms through
//!    a `SignatureCheck` (WebCrypto in the worker, so no RSA or elliptic
//!    curve code is linked into it);
//! 4. claims: `exp` required, `nbf`/`iat` with leeway, `iss`/`aud` when
//!    configured, `sub` present.

use super::jwks::{Alg, Jwk};
use super::{AuthError, Identity, MAX_NAME_CHARS};
use crate::ids::is_valid_user_id;
use base64ct::{Base64UrlUnpadded, Encoding};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{Algorithm, AlgorithmExt, AlgorithmSignature, Claims, Header};
use jwt_compact::{TimeOptions, UntrustedToken};
use serde_json::{Map, Value};
use std::future::Future;

type Custom = Map<String, Value>;

/// What a valid token must also satisfy, from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_s: u64,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Where the roles are: a claim name (`roles`, or a namespaced URL as
    /// Auth0 uses), or a dotted path (`realm_access.roles`, Keycloak).
    pub roles_claim: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            leeway_s: 30,
            issuer: None,
            audience: None,
            roles_claim: "roles".into(),
        }
    }
}

/// The keys a token may be checked against.
#[derive(Clone, Copy, Default)]
pub struct Keys<'a> {
    pub hmac: Option<&'a [u8]>,
    pub jwks: &'a [&'a [Jwk]],
}

impl<'a> Keys<'a> {
    fn all(self) -> impl Iterator<Item = &'a Jwk> {
        self.jwks.iter().flat_map(|set| set.iter())
    }
}

/// Checks one public-key signature: `signature` over `message` with `key`,
/// by the algorithm the key is pinned to. False for a signature that does
/// not verify, is malformed, or a key the implementation refuses.
pub trait SignatureCheck {
    fn check(&self, key: &Jwk, message: &[u8], signature: &[u8]) -> impl Future<Output = bool>;
}

/// The token's header fields that select a key, read before any key is used.
pub fn header(token: &str) -> Result<(Alg, Option<String>), AuthError> {
    let untrusted = UntrustedToken::new(token).map_err(|_| AuthError::Malformed)?;
    key_selector(&untrusted)
}

fn key_selector(untrusted: &UntrustedToken<'_>) -> Result<(Alg, Option<String>), AuthError> {
    let alg = Alg::parse(untrusted.algorithm()).ok_or(AuthError::Algorithm)?;
    Ok((alg, untrusted.header().key_id.clone()))
}

/// Verifies `token` at `now_ms` (unix milliseconds). `UnknownKey` means no
/// key has the token's `kid`: the caller may refresh its JWKS and retry.
pub async fn verify(
    token: &str,
    keys: Keys<'_>,
    policy: &Policy,
    now_ms: i64,
    crypto: &impl SignatureCheck,
) -> Result<Identity, AuthError> {
    let untrusted = UntrustedToken::new(token).map_err(|_| AuthError::Malformed)?;
    let (alg, kid) = key_selector(&untrusted)?;
    // The signed part is everything before the last dot; the parser has
    // already checked there are three parts.
    let (message, _) = token.rsplit_once('.').ok_or(AuthError::Malformed)?;
    let signature = untrusted.signature_bytes();
    if alg == Alg::Hs256 {
        // A `kid` naming a published (public) key on an HS256 token is the
        // classic key-confusion attack: that key is public, not a secret.
        if kid
            .as_deref()
            .is_some_and(|k| keys.all().any(|j| j.kid.as_deref() == Some(k)))
        {
            return Err(AuthError::Algorithm);
        }
        let secret = keys.hmac.ok_or(AuthError::Algorithm)?;
        let signature = <Hs256 as Algorithm>::Signature::try_from_slice(signature)
            .map_err(|_| AuthError::Signature)?;
        if !Hs256.verify_signature(&signature, &Hs256Key::new(secret), message.as_bytes()) {
            return Err(AuthError::Signature);
        }
    } else {
        let mut verified = false;
        for jwk in usable_keys(keys, alg, kid.as_deref())? {
            if crypto.check(jwk, message.as_bytes(), signature).await {
                verified = true;
                break;
            }
        }
        if !verified {
            return Err(AuthError::Signature);
        }
    }
    claims(&payload(message)?, policy, now_ms)
}

/// The claims of a token whose signature verified: a JSON object. Read as
/// a plain map (not jwt-compact's `Claims`, whose flattened fields would
/// link serde's buffering deserializer into the worker for this alone).
fn payload(message: &str) -> Result<Custom, AuthError> {
    let (_, encoded) = message.split_once('.').ok_or(AuthError::Malformed)?;
    let json = Base64UrlUnpadded::decode_vec(encoded).map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)
}

/// A NumericDate claim (RFC 7519 2) in unix milliseconds: None when absent,
/// `Malformed` when it is not a number of seconds in range. Fractions of a
/// second are dropped, as jwt-compact did.
fn numeric_date(claims: &Custom, name: &str) -> Result<Option<i64>, AuthError> {
    let Some(v) = claims.get(name) else {
        return Ok(None);
    };
    let secs = v
        .as_i64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 1e15)
                .map(|f| f as i64)
        })
        .ok_or(AuthError::Malformed)?;
    secs.checked_mul(1000).map(Some).ok_or(AuthError::Malformed)
}

/// The keys a public-key token may be checked with: those with its `kid`
/// (or all, without one) that are pinned to its algorithm.
fn usable_keys<'k>(keys: Keys<'k>, alg: Alg, kid: Option<&str>) -> Result<Vec<&'k Jwk>, AuthError> {
    let candidates: Vec<&Jwk> = match kid {
        Some(k) => {
            let named: Vec<&Jwk> = keys.all().filter(|j| j.kid.as_deref() == Some(k)).collect();
            if named.is_empty() {
                return Err(AuthError::UnknownKey);
            }
            named
        }
        None => keys.all().collect(),
    };
    let usable: Vec<&Jwk> = candidates.into_iter().filter(|j| j.alg == alg).collect();
    if usable.is_empty() {
        return Err(if kid.is_some() || keys.all().next().is_some() {
            AuthError::Algorithm
        } else {
            AuthError::UnknownKey
        });
    }
    Ok(usable)
}

fn time_options(
    now_ms: i64,
    leeway_s: u64,
) -> TimeOptions<impl Fn() -> chrono::DateTime<chrono::Utc>> {
    let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    TimeOptions::new(chrono::Duration::seconds(leeway_s as i64), move || now)
}

fn claims(custom: &Custom, policy: &Policy, now_ms: i64) -> Result<Identity, AuthError> {
    let leeway_ms = policy.leeway_s as i64 * 1000;
    let expiration = numeric_date(custom, "exp")?.ok_or(AuthError::MissingExpiry)?;
    if now_ms > expiration.saturating_add(leeway_ms) {
        return Err(AuthError::Expired);
    }
    if let Some(not_before) = numeric_date(custom, "nbf")? {
        if now_ms < not_before.saturating_sub(leeway_ms) {
            return Err(AuthError::NotYetValid);
        }
    }
    if let Some(iat) = numeric_date(custom, "iat")? {
        if iat > now_ms.saturating_add(leeway_ms) {
            return Err(AuthError::IssuedInFuture);
        }
    }
    if let Some(iss) = &policy.issuer {
        if custom.get("iss").and_then(Value::as_str) != Some(iss.as_str()) {
            return Err(AuthError::Issuer);
        }
    }
    if let Some(aud) = &policy.audience {
        let ok = match custom.get("aud") {
            Some(Value::String(s)) => s == aud,
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(aud.as_str())),
            _ => false,
        };
        if !ok {
            return Err(AuthError::Audience);
        }
    }
    let sub = custom
        .get("sub")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| is_valid_user_id(s))
        .ok_or(AuthError::MissingSubject)?;
    let name = custom
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(sub);
    Ok(Identity {
        user_id: sub.to_string(),
        name: name.chars().take(MAX_NAME_CHARS).collect(),
        roles: roles(custom, &policy.roles_claim),
        // The moment this token stops being accepted (exp plus leeway), so
        // a socket it opened ends exactly when a new ticket would be refused.
        expires_at: (expiration.max(0) as u64).saturating_add(policy.leeway_s * 1000),
    })
}

/// Roles from the configured claim: a list of strings, or one string of
/// space-separated roles (as OAuth `scope` is written).
fn roles(custom: &Custom, claim: &str) -> Vec<String> {
    let value = custom.get(claim).or_else(|| {
        let mut parts = claim.split('.');
        let first = custom.get(parts.next()?)?;
        parts.try_fold(first, |v, p| v.get(p))
    });
    let roles: Vec<String> = match value {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    roles.into_iter().take(64).collect()
}

/// Signs an HS256 token for `identity` (development sign-in and tests),
/// valid for `ttl_s` seconds from `now_ms`.
pub fn mint_hs256(identity: &Identity, secret: &[u8], now_ms: i64, ttl_s: i64) -> String {
    let options = time_options(now_ms, 0);
    let mut custom = Custom::new();
    custom.insert("sub".into(), identity.user_id.clone().into());
    custom.insert("name".into(), identity.name.clone().into());
    if !identity.roles.is_empty() {
        custom.insert("roles".into(), identity.roles.clone().into());
    }
    let claims =
        Claims::new(custom).set_duration_and_issuance(&options, chrono::Duration::seconds(ttl_s));
    Hs256
        .token(&Header::empty(), &claims, &Hs256Key::new(secret))
        // Serializing our own claims into a token cannot fail.
        .expect("token serializes")
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;

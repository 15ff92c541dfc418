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
use super::jws::{sign_hs256, Compact};
use super::{AuthError, Identity, MAX_NAME_CHARS};
use crate::ids::is_valid_user_id;
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
    /// The key of Confab's own visitor tokens (`super::visitor`); None
    /// when visitors are off, and such a token is then `UnknownKey`.
    pub visitor: Option<&'a [u8]>,
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
    let token = Compact::parse(token)?;
    Ok((key_alg(&token)?, token.kid))
}

fn key_alg(token: &Compact<'_>) -> Result<Alg, AuthError> {
    Alg::parse(&token.alg).ok_or(AuthError::Algorithm)
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
    let token = Compact::parse(token)?;
    let alg = key_alg(&token)?;
    let kid = token.kid.as_deref();
    if kid == Some(super::visitor::KID) {
        // Confab's own tokens: never checked against the product's keys,
        // and never carrying a role (see `visitor::identity`).
        let key = keys.visitor.ok_or(AuthError::UnknownKey)?;
        if alg != Alg::Hs256 {
            return Err(AuthError::Algorithm);
        }
        if !token.hs256_verifies(key) {
            return Err(AuthError::Signature);
        }
        return super::visitor::identity(claims(
            &token.claims()?,
            &super::visitor::policy(policy),
            now_ms,
        )?);
    }
    if alg == Alg::Hs256 {
        // A `kid` naming a published (public) key on an HS256 token is the
        // classic key-confusion attack: that key is public, not a secret.
        if kid.is_some_and(|k| keys.all().any(|j| j.kid.as_deref() == Some(k))) {
            return Err(AuthError::Algorithm);
        }
        let secret = keys.hmac.ok_or(AuthError::Algorithm)?;
        if !token.hs256_verifies(secret) {
            return Err(AuthError::Signature);
        }
    } else {
        let mut verified = false;
        for jwk in usable_keys(keys, alg, kid)? {
            if crypto
                .check(jwk, token.signed.as_bytes(), &token.signature)
                .await
            {
                verified = true;
                break;
            }
        }
        if !verified {
            return Err(AuthError::Signature);
        }
    }
    claims(&token.claims()?, policy, now_ms)
}

/// A NumericDate claim (RFC 7519 2) in unix milliseconds: None when absent,
/// `Malformed` when it is not a number of seconds in range. Fractions of a
/// second are dropped.
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
    let now_s = now_ms.div_euclid(1000);
    let mut claims = Custom::new();
    claims.insert("sub".into(), identity.user_id.clone().into());
    claims.insert("name".into(), identity.name.clone().into());
    if !identity.roles.is_empty() {
        claims.insert("roles".into(), identity.roles.clone().into());
    }
    claims.insert("iat".into(), now_s.into());
    claims.insert("exp".into(), (now_s + ttl_s).into());
    sign_hs256(&claims, secret)
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;

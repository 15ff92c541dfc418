//! Identity configuration: where keys come from and what tokens must say.

use super::jwks::{parse_jwks, Jwk};
use super::jwt::Policy;
use crate::config::{ints, invalid, ConfigError, Int, Secret};

#[derive(Clone, PartialEq)]
pub struct JwtConfig {
    /// HMAC key for HS256 tokens; None when only JWKS keys are trusted.
    pub hs256_secret: Option<Secret>,
    /// Keys given inline (`JWT_JWKS`), parsed once.
    pub inline_keys: Vec<Jwk>,
    /// An identity provider's JWKS endpoint.
    pub jwks_url: Option<String>,
    /// How long a fetched JWKS is used before it is fetched again.
    pub jwks_cache_seconds: u64,
    /// Least time between two fetches forced by an unknown `kid`.
    pub jwks_refetch_min_seconds: u64,
    pub policy: Policy,
}

impl std::fmt::Debug for JwtConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("hs256_secret", &self.hs256_secret)
            .field("inline_keys", &self.inline_keys.len())
            .field("jwks_url", &self.jwks_url)
            .field("jwks_cache_seconds", &self.jwks_cache_seconds)
            .field("jwks_refetch_min_seconds", &self.jwks_refetch_min_seconds)
            .field("policy", &self.policy)
            .finish()
    }
}

pub mod defaults {
    pub const ROLES_CLAIM: &str = "roles";
    /// Used only when ENVIRONMENT=development and no key is configured, so
    /// `make dev` works out of the box. Production refuses to start without one.
    pub const DEV_SECRET: &str = "confab-development-only-secret-do-not-deploy";
    /// Shortest HS256 secret accepted (RFC 7518 asks for at least the hash size).
    pub const MIN_SECRET_BYTES: usize = 32;
}

/// Reads the `JWT_*` variables. `get` treats empty values as unset; `num`
/// reads a bounded integer with its default.
pub fn from_lookup(
    get: &impl Fn(&str) -> Option<String>,
    num: &dyn Fn(&Int) -> usize,
    development: bool,
) -> Result<JwtConfig, ConfigError> {
    let hs256_secret = match get("JWT_HS256_SECRET") {
        Some(s) if s.len() >= defaults::MIN_SECRET_BYTES => Some(Secret::new(s)),
        Some(_) => {
            return Err(invalid(
                "JWT_HS256_SECRET",
                format!("a secret of at least {} bytes", defaults::MIN_SECRET_BYTES),
            ))
        }
        None => None,
    };
    let inline_keys = match get("JWT_JWKS") {
        None => Vec::new(),
        Some(text) => {
            let keys = parse_jwks(&text).map_err(|e| {
                invalid(
                    "JWT_JWKS",
                    format!("a JWKS document `{{\"keys\":[...]}}` ({e})"),
                )
            })?;
            if keys.is_empty() {
                return Err(invalid(
                    "JWT_JWKS",
                    "at least one RS256, ES256 or EdDSA signing key",
                ));
            }
            keys
        }
    };
    let jwks_url = match get("JWT_JWKS_URL") {
        None => None,
        Some(u) if u.starts_with("https://") || (development && u.starts_with("http://")) => {
            Some(u)
        }
        Some(u) if u.starts_with("http://127.0.0.1") || u.starts_with("http://localhost") => {
            // Loopback only: what local runs and the tests' stand-in use.
            Some(u)
        }
        Some(_) => return Err(invalid("JWT_JWKS_URL", "an https:// URL")),
    };
    let hs256_secret = match hs256_secret {
        None if development && inline_keys.is_empty() && jwks_url.is_none() => {
            Some(Secret::new(defaults::DEV_SECRET.to_string()))
        }
        s => s,
    };
    if hs256_secret.is_none() && inline_keys.is_empty() && jwks_url.is_none() {
        return Err(invalid(
            "JWT_HS256_SECRET",
            "a secret, or JWT_JWKS / JWT_JWKS_URL (no token key is configured)",
        ));
    }
    let issuer = get("JWT_ISSUER");
    let audience = get("JWT_AUDIENCE");
    let roles_claim = get("JWT_ROLES_CLAIM").unwrap_or_else(|| defaults::ROLES_CLAIM.into());
    Ok(JwtConfig {
        hs256_secret,
        inline_keys,
        jwks_url,
        jwks_cache_seconds: num(&ints::JWT_JWKS_CACHE_SECONDS) as u64,
        jwks_refetch_min_seconds: num(&ints::JWT_JWKS_REFETCH_MIN_SECONDS) as u64,
        policy: Policy {
            leeway_s: num(&ints::JWT_LEEWAY_SECONDS) as u64,
            issuer,
            audience,
            roles_claim,
        },
    })
}

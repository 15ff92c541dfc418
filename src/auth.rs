//! Bearer-token identity. Pure: the clock is passed in, so every claim check
//! is tested natively.
//!
//! Tokens are HS256 JWTs: `sub` is the user id, `name` the display name,
//! `exp` is required, `nbf` is honoured, `roles` is an optional list.

use crate::error::AppError;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken};
use serde::{Deserialize, Serialize};

/// Who is calling, as established from a verified token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub user_id: String,
    pub name: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct CustomClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
}

/// Why a token was refused. Each maps to a stable 401 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    Missing,
    Malformed,
    Algorithm,
    Signature,
    MissingExpiry,
    Expired,
    NotYetValid,
    MissingSubject,
}

impl AuthError {
    pub fn code(self) -> &'static str {
        match self {
            AuthError::Missing => "token_missing",
            AuthError::Malformed => "token_malformed",
            AuthError::Algorithm => "token_algorithm",
            AuthError::Signature => "token_signature",
            AuthError::MissingExpiry => "token_missing_exp",
            AuthError::Expired => "token_expired",
            AuthError::NotYetValid => "token_not_yet_valid",
            AuthError::MissingSubject => "token_missing_sub",
        }
    }
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        AppError::Unauthorized(e.code())
    }
}

/// Longest accepted `sub` and `name`; longer ones are not ours.
const MAX_ID_CHARS: usize = 128;
const MAX_NAME_CHARS: usize = 100;

fn time_options(
    now_ms: i64,
    leeway_s: u64,
) -> TimeOptions<impl Fn() -> chrono::DateTime<chrono::Utc>> {
    let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    TimeOptions::new(chrono::Duration::seconds(leeway_s as i64), move || now)
}

/// Verifies an HS256 token at time `now_ms` (unix milliseconds).
pub fn verify_hs256(
    token: &str,
    secret: &[u8],
    now_ms: i64,
    leeway_s: u64,
) -> Result<Identity, AuthError> {
    let untrusted = UntrustedToken::new(token).map_err(|_| AuthError::Malformed)?;
    // Checked before any key is used: `none`, RS/ES and anything else never
    // reach the HMAC check, which defeats algorithm-confusion tricks.
    if untrusted.algorithm() != "HS256" {
        return Err(AuthError::Algorithm);
    }
    let key = Hs256Key::new(secret);
    let token = Hs256
        .validator::<CustomClaims>(&key)
        .validate(&untrusted)
        .map_err(|e| match e {
            jwt_compact::ValidationError::InvalidSignature => AuthError::Signature,
            _ => AuthError::Malformed,
        })?;
    let claims = token.claims();
    let options = time_options(now_ms, leeway_s);
    if claims.expiration.is_none() {
        return Err(AuthError::MissingExpiry);
    }
    claims
        .validate_expiration(&options)
        .map_err(|_| AuthError::Expired)?;
    if claims.not_before.is_some() {
        claims
            .validate_maturity(&options)
            .map_err(|_| AuthError::NotYetValid)?;
    }
    let sub = claims
        .custom
        .sub
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.chars().count() <= MAX_ID_CHARS)
        .ok_or(AuthError::MissingSubject)?;
    let name = claims
        .custom
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(sub);
    Ok(Identity {
        user_id: sub.to_string(),
        name: name.chars().take(MAX_NAME_CHARS).collect(),
        roles: claims.custom.roles.clone(),
    })
}

/// Signs an HS256 token for `identity`, valid for `ttl_s` seconds from `now_ms`.
pub fn mint_hs256(identity: &Identity, secret: &[u8], now_ms: i64, ttl_s: i64) -> String {
    let options = time_options(now_ms, 0);
    let claims = Claims::new(CustomClaims {
        sub: Some(identity.user_id.clone()),
        name: Some(identity.name.clone()),
        roles: identity.roles.clone(),
    })
    .set_duration_and_issuance(&options, chrono::Duration::seconds(ttl_s));
    Hs256
        .token(&Header::empty(), &claims, &Hs256Key::new(secret))
        // Serializing our own claims into a token cannot fail.
        .expect("token serializes")
}

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

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_800_000_000_000;

    fn alice() -> Identity {
        Identity {
            user_id: "alice".into(),
            name: "Alice".into(),
            roles: vec!["admin".into()],
        }
    }

    fn b64(s: &str) -> String {
        use base64ct::{Base64UrlUnpadded, Encoding};
        Base64UrlUnpadded::encode_string(s.as_bytes())
    }

    #[test]
    fn round_trip() {
        let t = mint_hs256(&alice(), SECRET, NOW, 60);
        assert_eq!(verify_hs256(&t, SECRET, NOW + 1000, 0), Ok(alice()));
    }

    #[test]
    fn expiry_and_leeway() {
        let t = mint_hs256(&alice(), SECRET, NOW, 60);
        assert_eq!(
            verify_hs256(&t, SECRET, NOW + 61_000, 0),
            Err(AuthError::Expired)
        );
        assert!(verify_hs256(&t, SECRET, NOW + 61_000, 30).is_ok());
    }

    #[test]
    fn wrong_key_and_tampering_are_rejected() {
        let t = mint_hs256(&alice(), SECRET, NOW, 60);
        assert_eq!(
            verify_hs256(&t, b"another-secret-another-secret-xx", NOW, 0),
            Err(AuthError::Signature)
        );
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[1] = b64(r#"{"sub":"mallory","exp":1900000000}"#);
        assert_eq!(
            verify_hs256(&parts.join("."), SECRET, NOW, 0),
            Err(AuthError::Signature)
        );
    }

    #[test]
    fn alg_none_is_rejected() {
        let t = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(r#"{"sub":"a","exp":1900000000}"#)
        );
        assert_eq!(verify_hs256(&t, SECRET, NOW, 0), Err(AuthError::Algorithm));
    }

    #[test]
    fn missing_claims() {
        let opts = time_options(NOW, 0);
        let no_exp = Hs256
            .token(
                &Header::empty(),
                &Claims::new(CustomClaims {
                    sub: Some("a".into()),
                    ..Default::default()
                }),
                &Hs256Key::new(SECRET),
            )
            .unwrap();
        assert_eq!(
            verify_hs256(&no_exp, SECRET, NOW, 0),
            Err(AuthError::MissingExpiry)
        );
        let no_sub = Hs256
            .token(
                &Header::empty(),
                &Claims::new(CustomClaims::default())
                    .set_duration(&opts, chrono::Duration::seconds(60)),
                &Hs256Key::new(SECRET),
            )
            .unwrap();
        assert_eq!(
            verify_hs256(&no_sub, SECRET, NOW, 0),
            Err(AuthError::MissingSubject)
        );
    }

    #[test]
    fn not_before_is_honoured() {
        let claims = Claims::new(CustomClaims {
            sub: Some("a".into()),
            ..Default::default()
        })
        .set_duration(&time_options(NOW, 0), chrono::Duration::seconds(600))
        .set_not_before(chrono::DateTime::from_timestamp_millis(NOW + 120_000).unwrap());
        let t = Hs256
            .token(&Header::empty(), &claims, &Hs256Key::new(SECRET))
            .unwrap();
        assert_eq!(
            verify_hs256(&t, SECRET, NOW, 30),
            Err(AuthError::NotYetValid)
        );
        assert!(verify_hs256(&t, SECRET, NOW + 121_000, 0).is_ok());
    }

    #[test]
    fn name_defaults_to_sub() {
        let claims = Claims::new(CustomClaims {
            sub: Some("bob".into()),
            ..Default::default()
        })
        .set_duration(&time_options(NOW, 0), chrono::Duration::seconds(60));
        let t = Hs256
            .token(&Header::empty(), &claims, &Hs256Key::new(SECRET))
            .unwrap();
        assert_eq!(verify_hs256(&t, SECRET, NOW, 0).unwrap().name, "bob");
    }

    #[test]
    fn user_hashes_are_stable_keyed_and_opaque() {
        let a = user_hash(SECRET, "alice");
        assert_eq!(a, user_hash(SECRET, "alice"));
        assert_eq!(a.len(), 16);
        assert_ne!(a, user_hash(SECRET, "bob"));
        assert_ne!(a, user_hash(b"another key", "alice"));
        assert!(!a.contains("alice"));
    }

    #[test]
    fn garbage_is_malformed() {
        assert_eq!(
            verify_hs256("not a token", SECRET, NOW, 0),
            Err(AuthError::Malformed)
        );
        assert_eq!(bearer(None), Err(AuthError::Missing));
        assert_eq!(bearer(Some("Basic abc")), Err(AuthError::Malformed));
        assert_eq!(bearer(Some("Bearer ")), Err(AuthError::Malformed));
        assert_eq!(bearer(Some("bearer abc.def")), Ok("abc.def"));
    }
}

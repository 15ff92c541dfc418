//! Visitors: people on a product's site who chat without an account of
//! the product's (the embeddable widget's anonymous users). Pure.
//!
//! With `ALLOW_VISITORS=on`, `POST /v1/visitors` makes one: a random user
//! id with the [`ID_PREFIX`], and a short-lived HS256 token for it signed
//! with a key of Confab's own ([`Visitors::key`]), whose header names
//! [`KID`]. Verification (`super::jwt::verify`) takes that `kid` to this
//! key alone, never to the product's secret or JWKS, checks the issuer
//! [`ISSUER`] and the prefix, and drops any role: a visitor token can
//! never make an admin, and no product token is checked with this key.
//!
//! The widget also keeps a *credential* ([`credential`]): proof, for
//! `VISITOR_REMEMBER_DAYS`, that it was given this visitor id. Redeemed at
//! the same route, it gives a fresh token for the same id, so a returning
//! visitor finds their conversation and a token that runs out is renewed
//! without asking anything again. It is a self-signed token of its own
//! purpose (`crate::signed`: the id and its end under the visitor key), so
//! it is stateless and cannot be withdrawn one by one; a ban by user id
//! (`crate::moderation`) stops the visitor instead.

use super::jws::sign_hs256_header;
use super::{AuthError, Identity, Policy};
use crate::config::Secret;
use serde_json::{Map, Value};

/// The `kid` of visitor tokens: it selects [`Visitors::key`].
pub const KID: &str = "confab-visitor";
/// The `iss` of visitor tokens.
pub const ISSUER: &str = "confab/visitor";
/// Every visitor's user id starts with this.
pub const ID_PREFIX: &str = "visitor-";
/// A visitor's name when they give none.
pub const DEFAULT_NAME: &str = "Visitor";
/// Longest name a visitor may give, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Random bytes in a visitor id (hex: 32 characters).
const ID_BYTES: usize = 16;

/// The visitor settings; present only with `ALLOW_VISITORS=on`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitors {
    /// Signs visitor tokens and credentials (`VISITOR_KEY`, else derived
    /// from the encryption keys).
    pub key: Secret,
    /// New visitors one client address may make per UTC day.
    pub per_ip_per_day: u32,
    /// How long one visitor token lasts.
    pub token_ttl_s: u32,
    /// How long a credential lets a visitor come back.
    pub remember_days: u32,
    /// Cloudflare Turnstile, when both its keys are set.
    pub turnstile: Option<Turnstile>,
}

/// Cloudflare Turnstile: the widget shows the challenge with the site key,
/// the server checks its answer with the secret at `verify_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turnstile {
    pub site_key: String,
    pub secret: Secret,
    /// siteverify: Cloudflare's, or a local stand-in in tests.
    pub verify_url: String,
}

/// Cloudflare's siteverify endpoint, the default of `TURNSTILE_VERIFY_URL`.
pub const TURNSTILE_VERIFY_URL: &str = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

impl Visitors {
    /// The settings from configuration: None unless `ALLOW_VISITORS=on`.
    /// `derived` is the key to use when `VISITOR_KEY` is unset. Every
    /// variable is checked whether visitors are on or not, so a bad value
    /// shows before they are switched on.
    pub fn from_lookup(
        get: &dyn Fn(&str) -> Option<String>,
        num: &dyn Fn(&crate::config::ints::Int) -> usize,
        derived: impl FnOnce() -> String,
    ) -> Result<Option<Visitors>, crate::config::ConfigError> {
        use crate::config::{ints, invalid};
        let on = match get("ALLOW_VISITORS").as_deref().unwrap_or("off") {
            "on" => true,
            "off" => false,
            _ => return Err(invalid("ALLOW_VISITORS", "one of: on, off")),
        };
        let key = match get("VISITOR_KEY") {
            Some(k) if k.len() < 32 => {
                return Err(invalid("VISITOR_KEY", "at least 32 bytes, or unset"))
            }
            Some(k) => Secret::new(k),
            None => Secret::new(derived()),
        };
        let verify_url = get("TURNSTILE_VERIFY_URL").unwrap_or_else(|| TURNSTILE_VERIFY_URL.into());
        if !(verify_url.starts_with("https://") || verify_url.starts_with("http://")) {
            return Err(invalid("TURNSTILE_VERIFY_URL", "an http(s) URL"));
        }
        let turnstile = match (get("TURNSTILE_SITE_KEY"), get("TURNSTILE_SECRET_KEY")) {
            (Some(site_key), Some(secret)) => Some(Turnstile {
                site_key,
                secret: Secret::new(secret),
                verify_url,
            }),
            (None, None) => None,
            (None, Some(_)) => {
                return Err(invalid(
                    "TURNSTILE_SITE_KEY",
                    "set with TURNSTILE_SECRET_KEY",
                ))
            }
            (Some(_), None) => {
                return Err(invalid(
                    "TURNSTILE_SECRET_KEY",
                    "set with TURNSTILE_SITE_KEY",
                ))
            }
        };
        let settings = Visitors {
            key,
            per_ip_per_day: num(&ints::VISITORS_PER_IP_PER_DAY) as u32,
            token_ttl_s: num(&ints::VISITOR_TOKEN_TTL_SECONDS) as u32,
            remember_days: num(&ints::VISITOR_REMEMBER_DAYS) as u32,
            turnstile,
        };
        Ok(on.then_some(settings))
    }
}

/// A new visitor id from `random_hex` (hex of [`ID_BYTES`] random bytes).
pub fn new_id(random_hex: impl FnOnce(usize) -> String) -> String {
    format!("{ID_PREFIX}{}", random_hex(ID_BYTES))
}

/// Whether `id` is one a visitor could have been given.
pub fn is_visitor_id(id: &str) -> bool {
    id.strip_prefix(ID_PREFIX)
        .is_some_and(|r| r.len() == ID_BYTES * 2 && r.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The name a visitor goes by: theirs trimmed, or [`DEFAULT_NAME`];
/// `Err` when it is longer than [`MAX_NAME_CHARS`] or has control
/// characters.
pub fn name(given: Option<&str>) -> Result<String, &'static str> {
    let n = given.map(str::trim).unwrap_or("");
    if n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control) {
        return Err("name must be at most 100 characters, without control characters");
    }
    Ok(if n.is_empty() { DEFAULT_NAME } else { n }.to_string())
}

/// A token for visitor `id`, valid for `ttl_s` from `now_ms`.
pub fn mint(key: &[u8], id: &str, name: &str, now_ms: i64, ttl_s: i64) -> String {
    let now_s = now_ms.div_euclid(1000);
    let mut claims = Map::new();
    claims.insert("iss".into(), ISSUER.into());
    claims.insert("sub".into(), id.into());
    claims.insert("name".into(), name.into());
    claims.insert("iat".into(), now_s.into());
    claims.insert("exp".into(), (now_s + ttl_s).into());
    let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{KID}"}}"#);
    sign_hs256_header(header.as_bytes(), &claims, key)
}

/// What a visitor token's claims must satisfy: the deployment's leeway,
/// Confab's issuer, no audience (the product's `JWT_AUDIENCE` is for the
/// product's tokens).
pub fn policy(deployment: &Policy) -> Policy {
    Policy {
        leeway_s: deployment.leeway_s,
        issuer: Some(ISSUER.into()),
        audience: None,
        roles_claim: "roles".into(),
    }
}

/// The identity a verified visitor token proves: its subject must be a
/// visitor id, and it has no roles whatever the claims say.
pub fn identity(mut who: Identity) -> Result<Identity, AuthError> {
    if !is_visitor_id(&who.user_id) {
        return Err(AuthError::MissingSubject);
    }
    who.roles.clear();
    Ok(who)
}

/// A credential's claims (`crate::signed`).
#[derive(serde::Serialize, serde::Deserialize)]
struct Credential {
    /// The visitor's id.
    v: String,
    /// When it ends (unix ms).
    exp: i64,
}

impl crate::signed::Claims for Credential {
    const PURPOSE: &'static str = "visitor/credential";
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

/// A credential for visitor `id`, good for `days` from `now_ms`, and the
/// moment it ends (unix ms).
pub fn credential(key: &[u8], id: &str, now_ms: i64, days: u32) -> (String, i64) {
    let exp = now_ms + days as i64 * 86_400_000;
    let claims = Credential {
        v: id.to_string(),
        exp,
    };
    (crate::signed::sign(key, &claims), exp)
}

/// The visitor id a credential proves at `now_ms`; None when it is
/// malformed, forged, made for another purpose or past its end.
pub fn redeem(key: &[u8], credential: &str, now_ms: i64) -> Option<String> {
    let claims: Credential = crate::signed::verify(key, credential, now_ms).ok()?;
    is_visitor_id(&claims.v).then_some(claims.v)
}

/// What siteverify answered: `{"success": bool, "error-codes": [...]}`.
/// True only for an explicit success.
pub fn turnstile_passed(body: &Value) -> bool {
    body.get("success").and_then(Value::as_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::{verify, Keys};
    use crate::auth::signer::NativeCheck;
    use base64ct::{Base64UrlUnpadded, Encoding};

    const KEY: &[u8] = b"visitor-key-0123456789abcdef0123";
    const PRODUCT: &[u8] = b"product-secret-0123456789abcdef0";
    const NOW: i64 = 1_800_000_000_000;
    const ID: &str = "visitor-00112233445566778899aabbccddeeff";

    fn check(token: &str, visitor: Option<&[u8]>) -> Result<Identity, AuthError> {
        let keys = Keys {
            hmac: Some(PRODUCT),
            jwks: &[],
            visitor,
        };
        futures::executor::block_on(verify(token, keys, &Policy::default(), NOW, &NativeCheck))
    }

    #[test]
    fn a_visitor_token_proves_its_visitor_and_nothing_more() {
        let t = mint(KEY, ID, "Vera", NOW, 3600);
        let who = check(&t, Some(KEY)).unwrap();
        assert_eq!((who.user_id.as_str(), who.name.as_str()), (ID, "Vera"));
        assert!(who.roles.is_empty());
        assert_eq!(who.expires_at, (NOW as u64 / 1000 + 3600 + 30) * 1000);
        // Visitors off: the key is unknown.
        assert_eq!(check(&t, None), Err(AuthError::UnknownKey));
        // Expired.
        let old = mint(KEY, ID, "Vera", NOW - 7_200_000, 3600);
        assert_eq!(check(&old, Some(KEY)), Err(AuthError::Expired));
    }

    #[test]
    fn the_visitor_kid_never_reaches_the_product_key_nor_the_reverse() {
        // Signed with the product's secret but naming the visitor kid.
        let forged = mint(PRODUCT, ID, "Vera", NOW, 3600);
        assert_eq!(check(&forged, Some(KEY)), Err(AuthError::Signature));
        // A visitor-key token without the kid goes to the product's secret.
        let mut claims = Map::new();
        claims.insert("sub".into(), ID.into());
        claims.insert("exp".into(), (NOW / 1000 + 60).into());
        let plain = crate::auth::jws::sign_hs256(&claims, KEY);
        assert_eq!(check(&plain, Some(KEY)), Err(AuthError::Signature));
    }

    #[test]
    fn claims_cannot_make_a_visitor_an_admin_or_someone_else() {
        let sign = |claims: Value| {
            let header = format!(r#"{{"alg":"HS256","kid":"{KID}"}}"#);
            sign_hs256_header(header.as_bytes(), claims.as_object().unwrap(), KEY)
        };
        let exp = NOW / 1000 + 60;
        let admin =
            sign(serde_json::json!({"iss": ISSUER, "sub": ID, "exp": exp, "roles": ["admin"]}));
        assert!(check(&admin, Some(KEY)).unwrap().roles.is_empty());
        let alice = sign(serde_json::json!({"iss": ISSUER, "sub": "alice", "exp": exp}));
        assert_eq!(check(&alice, Some(KEY)), Err(AuthError::MissingSubject));
        let other_issuer = sign(serde_json::json!({"iss": "x", "sub": ID, "exp": exp}));
        assert_eq!(check(&other_issuer, Some(KEY)), Err(AuthError::Issuer));
        // Only HS256 goes with the visitor kid.
        let rs = format!(
            "{}.{}.c2ln",
            Base64UrlUnpadded::encode_string(
                format!(r#"{{"alg":"RS256","kid":"{KID}"}}"#).as_bytes()
            ),
            Base64UrlUnpadded::encode_string(b"{}")
        );
        assert_eq!(check(&rs, Some(KEY)), Err(AuthError::Algorithm));
    }

    #[test]
    fn credentials_prove_their_id_until_they_end() {
        let (c, ends) = credential(KEY, ID, NOW, 30);
        assert_eq!(ends, NOW + 30 * 86_400_000);
        assert_eq!(redeem(KEY, &c, NOW).as_deref(), Some(ID));
        assert_eq!(redeem(KEY, &c, ends - 1).as_deref(), Some(ID));
        assert_eq!(redeem(KEY, &c, ends), None);
        assert_eq!(redeem(PRODUCT, &c, NOW), None);
        // Claims changed in any way: the tag no longer matches.
        let (payload, tag) = c.split_once('.').unwrap();
        let json = String::from_utf8(Base64UrlUnpadded::decode_vec(payload).unwrap()).unwrap();
        let forge = |json: String| {
            format!(
                "{}.{tag}",
                Base64UrlUnpadded::encode_string(json.as_bytes())
            )
        };
        let other = "visitor-ffffffffffffffffffffffffffffffff";
        for bad in [
            forge(json.replace(ID, other)),
            forge(json.replace(&ends.to_string(), &(ends + 86_400_000).to_string())),
            format!("{c}x"),
            "nonsense".into(),
            String::new(),
        ] {
            assert_eq!(redeem(KEY, &bad, NOW), None, "{bad}");
        }
        // A token this key signed for another purpose is no credential.
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Other {
            v: String,
            exp: i64,
        }
        impl crate::signed::Claims for Other {
            const PURPOSE: &'static str = "attachment/file";
            fn expires_at(&self) -> i64 {
                self.exp
            }
        }
        let elsewhere = crate::signed::sign(
            KEY,
            &Other {
                v: ID.into(),
                exp: ends,
            },
        );
        assert_eq!(redeem(KEY, &elsewhere, NOW), None);
        // A valid signature over an id that is not a visitor's proves nothing.
        let (alice, _) = credential(KEY, "alice", NOW, 1);
        assert_eq!(redeem(KEY, &alice, NOW), None);
    }

    #[test]
    fn ids_and_names() {
        let id = new_id(|n| "ab".repeat(n));
        assert!(is_visitor_id(&id), "{id}");
        assert!(!is_visitor_id("visitor-xyz"));
        assert!(!is_visitor_id("alice"));
        assert_eq!(name(None).unwrap(), DEFAULT_NAME);
        assert_eq!(name(Some("  ")).unwrap(), DEFAULT_NAME);
        assert_eq!(name(Some(" Vera ")).unwrap(), "Vera");
        assert!(name(Some(&"x".repeat(101))).is_err());
        assert!(name(Some("a\u{7}")).is_err());
    }

    #[test]
    fn only_an_explicit_success_passes_turnstile() {
        use serde_json::json;
        assert!(turnstile_passed(&json!({"success": true})));
        assert!(!turnstile_passed(
            &json!({"success": false, "error-codes": ["invalid-input-response"]})
        ));
        assert!(!turnstile_passed(&json!({"success": "true"})));
        assert!(!turnstile_passed(&json!({})));
    }
}

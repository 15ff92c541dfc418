//! The JWS compact serialization (RFC 7515 7.1) of a JWT: parsing, and
//! HS256 signing and checking. Pure.
//!
//! Written here rather than taken from jwt-compact so that the worker links
//! no date library and none of serde's buffering deserializers (jwt-compact
//! reads its header and claims through `#[serde(flatten)]`). jwt-compact
//! stays on the host: the tests sign their tokens with it, so what this
//! parser accepts is checked against another implementation.

use super::AuthError;
use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The JOSE header fields Confab reads; others are ignored.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// `cty`: only JSON claims are understood.
    #[serde(default)]
    cty: Option<String>,
}

/// A token split into its parts, nothing verified yet.
pub struct Compact<'a> {
    /// The header's `alg`, as written.
    pub alg: String,
    pub kid: Option<String>,
    /// What the signature covers: `header.payload`, as sent.
    pub signed: &'a str,
    /// The decoded payload (the claims, still as JSON text).
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

impl<'a> Compact<'a> {
    /// Splits and decodes `token`: exactly three base64url parts, a JSON
    /// header with a string `alg`, and a JSON content type. Anything else
    /// is `Malformed`.
    pub fn parse(token: &'a str) -> Result<Self, AuthError> {
        let mut parts = token.splitn(4, '.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed);
        };
        let decode =
            |part: &str| Base64UrlUnpadded::decode_vec(part).map_err(|_| AuthError::Malformed);
        let header: Header =
            serde_json::from_slice(&decode(h)?).map_err(|_| AuthError::Malformed)?;
        if header
            .cty
            .as_deref()
            .is_some_and(|c| !c.eq_ignore_ascii_case("json"))
        {
            return Err(AuthError::Malformed);
        }
        Ok(Compact {
            alg: header.alg,
            kid: header.kid,
            signed: &token[..h.len() + 1 + p.len()],
            payload: decode(p)?,
            signature: decode(s)?,
        })
    }

    /// The claims: a JSON object.
    pub fn claims(&self) -> Result<Map<String, Value>, AuthError> {
        serde_json::from_slice(&self.payload).map_err(|_| AuthError::Malformed)
    }

    /// Whether the signature is the HS256 MAC of the signed part under
    /// `secret` (compared in constant time).
    pub fn hs256_verifies(&self, secret: &[u8]) -> bool {
        let mut mac = hs256(secret);
        mac.update(self.signed.as_bytes());
        mac.verify_slice(&self.signature).is_ok()
    }
}

fn hs256(secret: &[u8]) -> Hmac<sha2::Sha256> {
    <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length")
}

/// An HS256 token with `claims` as its payload.
pub fn sign_hs256(claims: &Map<String, Value>, secret: &[u8]) -> String {
    sign_hs256_header(br#"{"alg":"HS256","typ":"JWT"}"#, claims, secret)
}

/// An HS256 token whose header is `header` (JSON naming HS256; a `kid`
/// selects a key of Confab's own, as visitor tokens' does).
pub fn sign_hs256_header(header: &[u8], claims: &Map<String, Value>, secret: &[u8]) -> String {
    let b64 = |b: &[u8]| Base64UrlUnpadded::encode_string(b);
    let header = b64(header);
    let payload = b64(Value::Object(claims.clone()).to_string().as_bytes());
    let signed = format!("{header}.{payload}");
    let mut mac = hs256(secret);
    mac.update(signed.as_bytes());
    format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        Base64UrlUnpadded::encode_string(s.as_bytes())
    }

    #[test]
    fn parses_the_three_parts() {
        let t = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#),
            b64(r#"{"sub":"a"}"#),
            b64("sig")
        );
        let c = Compact::parse(&t).unwrap();
        assert_eq!((c.alg.as_str(), c.kid.as_deref()), ("RS256", Some("k1")));
        assert_eq!(c.signed, &t[..t.rfind('.').unwrap()]);
        assert_eq!(c.signature, b"sig");
        assert_eq!(c.claims().unwrap()["sub"], "a");
    }

    #[test]
    fn refuses_what_is_not_a_compact_jws() {
        let h = b64(r#"{"alg":"HS256"}"#);
        let p = b64("{}");
        for bad in [
            String::new(),
            "a.b".into(),
            format!("{h}.{p}"),
            format!("{h}.{p}.c2ln.extra"),
            format!("{h}.{p}.not base64"),
            format!("{}.{p}.c2ln", b64(r#"{"kid":"no alg"}"#)),
            format!("{}.{p}.c2ln", b64(r#"{"alg":5}"#)),
            format!("{}.{p}.c2ln", b64(r#"{"alg":"HS256","alg":"none"}"#)),
            format!("{}.{p}.c2ln", b64(r#"{"alg":"HS256","cty":"cbor"}"#)),
            format!("{}.{p}.c2ln", b64("not json")),
        ] {
            assert_eq!(
                Compact::parse(&bad).err(),
                Some(AuthError::Malformed),
                "{bad}"
            );
        }
        let not_object = format!("{h}.{}.c2ln", b64("[1]"));
        assert_eq!(
            Compact::parse(&not_object).unwrap().claims().err(),
            Some(AuthError::Malformed)
        );
        let json_cty = format!("{}.{p}.c2ln", b64(r#"{"alg":"HS256","cty":"JSON"}"#));
        assert!(Compact::parse(&json_cty).is_ok());
    }

    #[test]
    fn hs256_round_trip_and_tampering() {
        let claims = json!({"sub": "alice", "exp": 2_000_000_000})
            .as_object()
            .cloned()
            .unwrap();
        let t = sign_hs256(&claims, b"secret");
        let c = Compact::parse(&t).unwrap();
        assert_eq!(c.alg, "HS256");
        assert!(c.hs256_verifies(b"secret"));
        assert!(!c.hs256_verifies(b"other"));
        assert_eq!(c.claims().unwrap(), claims);
        let mut forged = t.clone();
        forged.insert(t.find('.').unwrap() + 2, 'x');
        assert!(Compact::parse(&forged).map_or(true, |c| !c.hs256_verifies(b"secret")));
    }
}

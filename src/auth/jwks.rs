//! JSON Web Key Sets: the public keys identity providers publish. Pure.
//!
//! Each usable key is pinned to exactly one algorithm when it is parsed
//! (from its `alg`, else from its type and curve), so a token can only be
//! checked with the algorithm its key was made for: no HS/RS confusion,
//! no `none`, no RSA-PSS or P-384 keys pressed into other service.
//!
//! A key is kept as its public parameters, checked for shape here (RSA
//! modulus length, coordinate and key lengths). The signature itself is
//! checked by the runtime's WebCrypto (`identity.rs`), which also refuses
//! a P-256 point that is not on the curve when it imports the key.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::Deserialize;
use serde_json::{json, Value};

/// The signature algorithms Confab accepts, by their JOSE names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Hs256,
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    pub fn parse(name: &str) -> Option<Alg> {
        match name {
            "HS256" => Some(Alg::Hs256),
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            "EdDSA" => Some(Alg::EdDsa),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }
}

/// A public key's parameters, big-endian bytes as the JWK carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// A P-256 point.
    Ec {
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed {
        x: Vec<u8>,
    },
}

impl PublicKey {
    /// The key as a public JWK with nothing but its parameters: what
    /// WebCrypto's `importKey("jwk", ...)` takes.
    pub fn to_jwk(&self) -> Value {
        let b64 = |b: &[u8]| Base64UrlUnpadded::encode_string(b);
        match self {
            PublicKey::Rsa { n, e } => json!({"kty": "RSA", "n": b64(n), "e": b64(e)}),
            PublicKey::Ec { x, y } => {
                json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)})
            }
            PublicKey::Ed { x } => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(x)}),
        }
    }
}

/// One verification key and the single algorithm it may be used with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    pub alg: Alg,
    pub key: PublicKey,
}

/// Shortest RSA modulus accepted (NIST and RFC 7518 ask for 2048 bits).
const MIN_RSA_BITS: usize = 2048;
/// More keys than any provider publishes; bounds the work per token.
pub const MAX_KEYS: usize = 32;
/// Real exponents are 65537 (3 bytes); 8 bytes bounds odd ones.
const MAX_RSA_EXPONENT_BYTES: usize = 8;

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    kty: String,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

/// Parses a JWKS document (`{"keys": [...]}`). Keys Confab cannot use for
/// signature checks (encryption keys, other algorithms, short RSA moduli,
/// private-only or symmetric keys) are skipped, not fatal: providers mix
/// them in. Errors only when the document itself is not a JWKS.
pub fn parse_jwks(text: &str) -> Result<Vec<Jwk>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|_| "not JSON".to_string())?;
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no `keys` array")?;
    Ok(keys.iter().filter_map(parse_key).take(MAX_KEYS).collect())
}

fn parse_key(raw: &Value) -> Option<Jwk> {
    let meta: Meta = serde_json::from_value(raw.clone()).ok()?;
    if meta.use_.as_deref().is_some_and(|u| u != "sig") {
        return None;
    }
    let inferred = match (meta.kty.as_str(), meta.crv.as_deref()) {
        ("RSA", _) => Alg::Rs256,
        ("EC", Some("P-256")) => Alg::Es256,
        ("OKP", Some("Ed25519")) => Alg::EdDsa,
        _ => return None,
    };
    // A key that names an algorithm is used with that one only; it must be
    // the one its type supports here.
    if let Some(alg) = meta.alg.as_deref() {
        if Alg::parse(alg) != Some(inferred) {
            return None;
        }
    }
    let key = match inferred {
        Alg::Rs256 => {
            let n = strip_zeros(bytes(&meta.n)?);
            let e = strip_zeros(bytes(&meta.e)?);
            if n.len() * 8 < MIN_RSA_BITS || e.is_empty() || e.len() > MAX_RSA_EXPONENT_BYTES {
                return None;
            }
            PublicKey::Rsa { n, e }
        }
        Alg::Es256 => PublicKey::Ec {
            x: sized(bytes(&meta.x)?, 32)?,
            y: sized(bytes(&meta.y)?, 32)?,
        },
        Alg::EdDsa => PublicKey::Ed {
            x: sized(bytes(&meta.x)?, 32)?,
        },
        Alg::Hs256 => return None,
    };
    Some(Jwk {
        kid: meta.kid,
        alg: inferred,
        key,
    })
}

fn bytes(field: &Option<String>) -> Option<Vec<u8>> {
    Base64UrlUnpadded::decode_vec(field.as_deref()?).ok()
}

/// RFC 7518 asks for the unsigned big-endian form without leading zeros;
/// some providers pad anyway, so zeros are dropped before the length check.
fn strip_zeros(mut b: Vec<u8>) -> Vec<u8> {
    let zeros = b.iter().take_while(|x| **x == 0).count();
    b.drain(..zeros);
    b
}

/// Coordinates and Ed25519 keys have one exact length (RFC 7518 6.2.1.2,
/// RFC 8037 2).
fn sized(b: Vec<u8>, len: usize) -> Option<Vec<u8>> {
    (b.len() == len).then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::auth::signer::public_jwk as public;

    #[test]
    fn parses_each_key_type_and_pins_its_algorithm() {
        let doc = serde_json::json!({"keys": [
            public("rsa", "r1"), public("ec", "e1"), public("ed", "d1")
        ]});
        let keys = parse_jwks(&doc.to_string()).unwrap();
        let algs: Vec<_> = keys.iter().map(|k| (k.kid.as_deref(), k.alg)).collect();
        assert_eq!(
            algs,
            vec![
                (Some("r1"), Alg::Rs256),
                (Some("e1"), Alg::Es256),
                (Some("d1"), Alg::EdDsa)
            ]
        );
    }

    #[test]
    fn skips_keys_it_must_not_use() {
        let mut enc = public("rsa", "enc");
        enc["use"] = "enc".into();
        let mut ps = public("rsa", "ps");
        ps["alg"] = "PS256".into();
        let mut wrong = public("ec", "wrong");
        wrong["alg"] = "RS256".into();
        let oct = serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"});
        let mut short = public("rsa", "short");
        short["n"] = "AQAB".into();
        let doc = serde_json::json!({"keys": [enc, ps, wrong, oct, short, {"kty": "EC", "crv": "P-384", "x": "", "y": ""}, public("ed", "ok")]});
        let keys = parse_jwks(&doc.to_string()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("ok"));
    }

    #[test]
    fn key_parameters_must_have_their_exact_lengths() {
        let mut short_x = public("ec", "short-x");
        short_x["x"] = "AAAA".into();
        let mut long_ed = public("ed", "long-ed");
        long_ed["x"] = format!("{}AAAA", long_ed["x"].as_str().unwrap()).into();
        let mut no_e = public("rsa", "no-e");
        no_e.as_object_mut().unwrap().remove("e");
        // A modulus with a leading zero byte is still 2048 bits.
        let mut padded = public("rsa", "padded");
        let n = Base64UrlUnpadded::decode_vec(padded["n"].as_str().unwrap()).unwrap();
        padded["n"] = Base64UrlUnpadded::encode_string(&[&[0u8][..], &n].concat()).into();
        let doc = serde_json::json!({"keys": [short_x, long_ed, no_e, padded]});
        let keys = parse_jwks(&doc.to_string()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("padded"));
        assert_eq!(
            keys[0].key,
            PublicKey::Rsa {
                n,
                e: vec![1, 0, 1]
            }
        );
    }

    #[test]
    fn rejects_documents_that_are_not_key_sets() {
        assert!(parse_jwks("nope").is_err());
        assert!(parse_jwks("{}").is_err());
        assert_eq!(parse_jwks(r#"{"keys": []}"#).unwrap(), vec![]);
    }
}

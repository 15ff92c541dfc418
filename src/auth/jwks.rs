//! JSON Web Key Sets: the public keys identity providers publish. Pure.
//!
//! Each usable key is pinned to exactly one algorithm when it is parsed
//! (from its `alg`, else from its type and curve), so a token can only be
//! checked with the algorithm its key was made for: no HS/RS confusion,
//! no `none`, no RSA-PSS or P-384 keys pressed into other service.

use jwt_compact::alg::{Ed25519, Es256, RsaPublicKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::Algorithm;
use serde::Deserialize;
use serde_json::Value;

pub type EcKey = <Es256 as Algorithm>::VerifyingKey;
pub type EdKey = <Ed25519 as Algorithm>::VerifyingKey;

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

#[derive(Debug, Clone, PartialEq)]
pub enum PublicKey {
    Rsa(RsaPublicKey),
    Ec(EcKey),
    Ed(EdKey),
}

/// One verification key and the single algorithm it may be used with.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwk {
    pub kid: Option<String>,
    pub alg: Alg,
    pub key: PublicKey,
}

/// Shortest RSA modulus accepted (NIST and RFC 7518 ask for 2048 bits).
const MIN_RSA_BITS: usize = 2048;
/// More keys than any provider publishes; bounds the work per token.
pub const MAX_KEYS: usize = 32;

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
    let jwk: JsonWebKey<'_> = serde_json::from_value(raw.clone()).ok()?;
    let key = match inferred {
        Alg::Rs256 => {
            let k = RsaPublicKey::try_from(&jwk).ok()?;
            if rsa_bits(&jwk) < MIN_RSA_BITS {
                return None;
            }
            PublicKey::Rsa(k)
        }
        Alg::Es256 => PublicKey::Ec(EcKey::try_from(&jwk).ok()?),
        Alg::EdDsa => PublicKey::Ed(EdKey::try_from(&jwk).ok()?),
        Alg::Hs256 => return None,
    };
    Some(Jwk {
        kid: meta.kid,
        alg: inferred,
        key,
    })
}

fn rsa_bits(jwk: &JsonWebKey<'_>) -> usize {
    match jwk {
        JsonWebKey::Rsa { modulus, .. } => {
            let m = modulus.iter().skip_while(|b| **b == 0).count();
            m * 8
        }
        _ => 0,
    }
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
    fn rejects_documents_that_are_not_key_sets() {
        assert!(parse_jwks("nope").is_err());
        assert!(parse_jwks("{}").is_err());
        assert_eq!(parse_jwks(r#"{"keys": []}"#).unwrap(), vec![]);
    }
}

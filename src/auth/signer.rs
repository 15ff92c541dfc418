//! Token signing with the fixture keys in `tests/fixtures/jwt-keys.json`,
//! for the unit and e2e tests that play an identity provider. Host-only:
//! it is not part of the wasm build.

use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Rsa, RsaPrivateKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmExt, Claims, Header};
use serde_json::{Map, Value};

const FIXTURES: &str = include_str!("../../tests/fixtures/jwt-keys.json");

/// A fixture key pair: `rsa`, `rsa_other`, `ec` or `ed`.
pub fn private_jwk(name: &str) -> Value {
    let all: Value = serde_json::from_str(FIXTURES).expect("fixture JSON");
    all[name].clone()
}

/// The public half of a fixture key with `kid` set, as a JWKS entry.
pub fn public_jwk(name: &str, kid: &str) -> Value {
    let mut k = private_jwk(name);
    let obj = k.as_object_mut().expect("fixture key is an object");
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        obj.remove(private);
    }
    obj.insert("kid".into(), kid.into());
    k
}

/// Signs `claims` (a JSON object) with the named fixture key, or with an
/// HMAC secret when `key` is `hmac:<secret>`; `alg` picks the algorithm
/// (HS256, RS256, ES256, EdDSA) and `kid` goes in the header.
pub fn sign(key: &str, alg: &str, kid: Option<&str>, claims: Value) -> String {
    let custom: Map<String, Value> = claims.as_object().cloned().expect("claims object");
    let claims = Claims::new(custom);
    let mut header = Header::empty();
    if let Some(k) = kid {
        header = header.with_key_id(k);
    }
    if let Some(secret) = key.strip_prefix("hmac:") {
        assert_eq!(alg, "HS256");
        return Hs256
            .token(&header, &claims, &Hs256Key::new(secret.as_bytes()))
            .unwrap();
    }
    let jwk_value = private_jwk(key);
    let jwk: JsonWebKey<'_> = serde_json::from_value(jwk_value).expect("fixture JWK");
    match alg {
        "RS256" => {
            let k = RsaPrivateKey::try_from(&jwk).expect("RSA fixture");
            Rsa::rs256().token(&header, &claims, &k).unwrap()
        }
        "ES256" => {
            let k = <Es256 as Algorithm>::SigningKey::try_from(&jwk).expect("EC fixture");
            Es256.token(&header, &claims, &k).unwrap()
        }
        "EdDSA" => {
            let k = <Ed25519 as Algorithm>::SigningKey::try_from(&jwk).expect("Ed25519 fixture");
            Ed25519.token(&header, &claims, &k).unwrap()
        }
        other => panic!("no signer for {other}"),
    }
}

//! Token signing with the fixture keys in `tests/fixtures/jwt-keys.json`,
//! for the unit and e2e tests that play an identity provider, and the
//! native signature check the unit tests verify with. Host-only: the
//! worker checks signatures with WebCrypto and links none of this.

use super::jwks::{Alg, Jwk, PublicKey};
use super::jwt::SignatureCheck;
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Rsa, RsaPrivateKey, RsaPublicKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmExt, AlgorithmSignature, Claims, Header};
use serde_json::{Map, Value};
use std::borrow::Cow;

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

/// Signature checks with the RustCrypto implementations (through
/// jwt-compact), for native tests of `jwt::verify`. The worker's own
/// check is WebCrypto, which the e2e tests in `tests/identity.rs` drive.
pub struct NativeCheck;

impl SignatureCheck for NativeCheck {
    async fn check(&self, key: &Jwk, message: &[u8], signature: &[u8]) -> bool {
        let jwk = match &key.key {
            PublicKey::Rsa { n, e } => JsonWebKey::Rsa {
                modulus: Cow::Borrowed(n),
                public_exponent: Cow::Borrowed(e),
                private_parts: None,
            },
            PublicKey::Ec { x, y } => JsonWebKey::EllipticCurve {
                curve: "P-256".into(),
                x: Cow::Borrowed(x),
                y: Cow::Borrowed(y),
                secret: None,
            },
            PublicKey::Ed { x } => JsonWebKey::KeyPair {
                curve: "Ed25519".into(),
                x: Cow::Borrowed(x),
                secret: None,
            },
        };
        match key.alg {
            Alg::Rs256 => verify_with(
                &Rsa::rs256(),
                RsaPublicKey::try_from(&jwk).ok(),
                message,
                signature,
            ),
            Alg::Es256 => verify_with(
                &Es256,
                <Es256 as Algorithm>::VerifyingKey::try_from(&jwk).ok(),
                message,
                signature,
            ),
            Alg::EdDsa => verify_with(
                &Ed25519,
                <Ed25519 as Algorithm>::VerifyingKey::try_from(&jwk).ok(),
                message,
                signature,
            ),
            Alg::Hs256 => false,
        }
    }
}

fn verify_with<A: Algorithm>(
    alg: &A,
    key: Option<A::VerifyingKey>,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let (Some(key), Ok(sig)) = (key, A::Signature::try_from_slice(signature)) else {
        return false;
    };
    alg.verify_signature(&sig, &key, message)
}

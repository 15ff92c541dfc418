//! Every token the attack list names, minted here and refused; and the
//! valid ones of each algorithm, accepted.

use super::*;
use crate::auth::jwks::parse_jwks;
use crate::auth::signer::{public_jwk, sign, NativeCheck};
use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::json;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const NOW: i64 = 1_800_000_000_000;
const NOW_S: i64 = NOW / 1000;

fn jwks() -> Vec<Jwk> {
    let doc =
        json!({"keys": [public_jwk("rsa", "r1"), public_jwk("ec", "e1"), public_jwk("ed", "d1")]});
    parse_jwks(&doc.to_string()).unwrap()
}

fn check(token: &str) -> Result<Identity, AuthError> {
    check_with(token, &Policy::default())
}

fn check_with(token: &str, policy: &Policy) -> Result<Identity, AuthError> {
    let set = jwks();
    let sets: [&[Jwk]; 1] = [&set];
    let keys = Keys {
        hmac: Some(SECRET.as_bytes()),
        jwks: &sets,
        visitor: None,
    };
    futures::executor::block_on(verify(token, keys, policy, NOW, &NativeCheck))
}

fn claims() -> Value {
    json!({"sub": "alice", "name": "Alice", "exp": NOW_S + 600, "iat": NOW_S, "roles": ["admin"]})
}

fn b64(s: &str) -> String {
    Base64UrlUnpadded::encode_string(s.as_bytes())
}

fn alice() -> Identity {
    alice_until(NOW_S + 600)
}

/// Alice with a token whose `exp` is `exp_s`: accepted until the leeway
/// (30 s by default) has passed too.
fn alice_until(exp_s: i64) -> Identity {
    Identity {
        user_id: "alice".into(),
        name: "Alice".into(),
        roles: vec!["admin".into()],
        // Carried so sockets can end with the token.
        expires_at: (exp_s as u64 + 30) * 1000,
    }
}

#[test]
fn each_algorithm_verifies_with_its_key() {
    let hmac = format!("hmac:{SECRET}");
    assert_eq!(check(&sign(&hmac, "HS256", None, claims())), Ok(alice()));
    assert_eq!(
        check(&sign("rsa", "RS256", Some("r1"), claims())),
        Ok(alice())
    );
    assert_eq!(
        check(&sign("ec", "ES256", Some("e1"), claims())),
        Ok(alice())
    );
    assert_eq!(
        check(&sign("ed", "EdDSA", Some("d1"), claims())),
        Ok(alice())
    );
    // Without kid, any key of the token's algorithm may match.
    assert_eq!(check(&sign("ec", "ES256", None, claims())), Ok(alice()));
}

#[test]
fn mint_round_trip() {
    let t = mint_hs256(&alice(), SECRET.as_bytes(), NOW, 60);
    assert_eq!(check(&t), Ok(alice_until(NOW_S + 60)));
    // Another implementation (jwt-compact) accepts what Confab mints.
    use jwt_compact::{alg::Hs256, alg::Hs256Key, AlgorithmExt, UntrustedToken};
    let untrusted = UntrustedToken::new(&t).unwrap();
    let token = Hs256
        .validator::<Value>(&Hs256Key::new(SECRET.as_bytes()))
        .validate(&untrusted)
        .unwrap();
    let c = token.claims();
    assert_eq!(c.expiration.map(|e| e.timestamp()), Some(NOW_S + 60));
    assert_eq!(c.issued_at.map(|e| e.timestamp()), Some(NOW_S));
    assert_eq!(c.custom["sub"], "alice");
}

#[test]
fn alg_none_is_rejected() {
    let t = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&claims().to_string())
    );
    assert_eq!(check(&t), Err(AuthError::Algorithm));
    let t = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","kid":"r1"}"#),
        b64(&claims().to_string())
    );
    assert_eq!(check(&t), Err(AuthError::Algorithm));
}

#[test]
fn hs_rs_key_confusion_is_rejected() {
    // The attacker signs HS256 with the RSA public key as the HMAC secret.
    let public = public_jwk("rsa", "r1").to_string();
    let forged = sign(&format!("hmac:{public}"), "HS256", Some("r1"), claims());
    assert_eq!(check(&forged), Err(AuthError::Algorithm));
    let forged = sign(&format!("hmac:{public}"), "HS256", None, claims());
    assert_eq!(check(&forged), Err(AuthError::Signature));
}

#[test]
fn algorithm_not_allowed_for_the_key_is_rejected() {
    // An RS256 token naming the EC key, and an EdDSA one naming the RSA key.
    assert_eq!(
        check(&sign("rsa", "RS256", Some("e1"), claims())),
        Err(AuthError::Algorithm)
    );
    assert_eq!(
        check(&sign("ed", "EdDSA", Some("r1"), claims())),
        Err(AuthError::Algorithm)
    );
    // Algorithms Confab does not accept at all.
    for alg in ["HS384", "RS512", "PS256", "ES384"] {
        let t = format!(
            "{}.{}.c2ln",
            b64(&json!({"alg": alg}).to_string()),
            b64(&claims().to_string())
        );
        assert_eq!(check(&t), Err(AuthError::Algorithm), "{alg}");
    }
}

#[test]
fn wrong_key_is_rejected() {
    assert_eq!(
        check(&sign("rsa_other", "RS256", Some("r1"), claims())),
        Err(AuthError::Signature)
    );
    assert_eq!(
        check(&sign(
            "hmac:another-secret-another-secret-xx",
            "HS256",
            None,
            claims()
        )),
        Err(AuthError::Signature)
    );
}

#[test]
fn tampered_payload_or_header_is_rejected() {
    let t = sign("rsa", "RS256", Some("r1"), claims());
    let mut parts: Vec<String> = t.split('.').map(String::from).collect();
    let mut evil = claims();
    evil["sub"] = "mallory".into();
    parts[1] = b64(&evil.to_string());
    assert_eq!(check(&parts.join(".")), Err(AuthError::Signature));

    let mut parts: Vec<String> = t.split('.').map(String::from).collect();
    parts[0] = b64(r#"{"alg":"RS256","kid":"r1","typ":"JWT","x":1}"#);
    assert_eq!(check(&parts.join(".")), Err(AuthError::Signature));
}

#[test]
fn unknown_kid_is_reported_as_such() {
    assert_eq!(
        check(&sign("rsa", "RS256", Some("rotated"), claims())),
        Err(AuthError::UnknownKey)
    );
}

#[test]
fn expiry_with_leeway() {
    let mut c = claims();
    c["exp"] = (NOW_S - 10).into();
    let t = sign("ec", "ES256", Some("e1"), c.clone());
    assert_eq!(
        check(&t),
        Ok(alice_until(NOW_S - 10)),
        "within the default 30 s leeway"
    );
    let strict = Policy {
        leeway_s: 0,
        ..Policy::default()
    };
    assert_eq!(check_with(&t, &strict), Err(AuthError::Expired));
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        check(&sign("ec", "ES256", Some("e1"), c)),
        Err(AuthError::MissingExpiry)
    );
}

#[test]
fn not_yet_valid_and_future_iat_are_rejected() {
    let mut c = claims();
    c["nbf"] = (NOW_S + 120).into();
    assert_eq!(
        check(&sign("ed", "EdDSA", Some("d1"), c.clone())),
        Err(AuthError::NotYetValid)
    );
    c["nbf"] = (NOW_S + 20).into();
    assert!(check(&sign("ed", "EdDSA", Some("d1"), c)).is_ok());
    let mut c = claims();
    c["iat"] = (NOW_S + 3600).into();
    assert_eq!(
        check(&sign("ed", "EdDSA", Some("d1"), c)),
        Err(AuthError::IssuedInFuture)
    );
}

#[test]
fn issuer_and_audience_when_configured() {
    let policy = Policy {
        issuer: Some("https://idp.example".into()),
        audience: Some("confab".into()),
        ..Policy::default()
    };
    let mut c = claims();
    c["iss"] = "https://idp.example".into();
    c["aud"] = json!(["other", "confab"]);
    assert!(check_with(&sign("rsa", "RS256", Some("r1"), c.clone()), &policy).is_ok());
    let mut wrong = c.clone();
    wrong["iss"] = "https://evil.example".into();
    assert_eq!(
        check_with(&sign("rsa", "RS256", Some("r1"), wrong), &policy),
        Err(AuthError::Issuer)
    );
    let mut wrong = c.clone();
    wrong["aud"] = "other".into();
    assert_eq!(
        check_with(&sign("rsa", "RS256", Some("r1"), wrong), &policy),
        Err(AuthError::Audience)
    );
    let mut missing = c;
    missing.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        check_with(&sign("rsa", "RS256", Some("r1"), missing), &policy),
        Err(AuthError::Audience)
    );
}

#[test]
fn missing_sub_is_rejected() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("sub");
    assert_eq!(
        check(&sign("ec", "ES256", Some("e1"), c.clone())),
        Err(AuthError::MissingSubject)
    );
    c["sub"] = "  ".into();
    assert_eq!(
        check(&sign("ec", "ES256", Some("e1"), c)),
        Err(AuthError::MissingSubject)
    );
}

#[test]
fn roles_come_from_the_configured_claim() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("roles");
    c["https://confab.example/roles"] = json!(["agent"]);
    c["realm_access"] = json!({"roles": ["admin", "x"]});
    c["scope"] = "read admin".into();
    let t = sign("ed", "EdDSA", Some("d1"), c);
    let with = |claim: &str| {
        check_with(
            &t,
            &Policy {
                roles_claim: claim.into(),
                ..Policy::default()
            },
        )
        .unwrap()
        .roles
    };
    assert_eq!(with("https://confab.example/roles"), vec!["agent"]);
    assert_eq!(with("realm_access.roles"), vec!["admin", "x"]);
    assert_eq!(with("scope"), vec!["read", "admin"]);
    assert!(with("roles").is_empty());
}

#[test]
fn name_defaults_to_sub_and_garbage_is_malformed() {
    let mut c = claims();
    c.as_object_mut().unwrap().remove("name");
    assert_eq!(
        check(&sign("ec", "ES256", Some("e1"), c)).unwrap().name,
        "alice"
    );
    assert_eq!(check("not a token"), Err(AuthError::Malformed));
}

#[test]
fn without_an_hmac_secret_hs256_is_refused() {
    let set = jwks();
    let sets: [&[Jwk]; 1] = [&set];
    let keys = Keys {
        hmac: None,
        jwks: &sets,
        visitor: None,
    };
    let t = sign(&format!("hmac:{SECRET}"), "HS256", None, claims());
    assert_eq!(
        futures::executor::block_on(verify(&t, keys, &Policy::default(), NOW, &NativeCheck)),
        Err(AuthError::Algorithm)
    );
}

#[test]
fn numeric_dates_are_whole_or_fractional_seconds_and_nothing_else() {
    let hs = |c: Value| sign(&format!("hmac:{SECRET}"), "HS256", None, c);
    let mut c = claims();
    c["exp"] = json!(NOW_S as f64 + 600.5);
    assert_eq!(check(&hs(c.clone())).map(|i| i.user_id), Ok("alice".into()));
    for bad in [json!("1900000000"), json!(null), json!(1e300), json!([1])] {
        c["exp"] = bad.clone();
        assert_eq!(
            check(&hs(c.clone())),
            Err(AuthError::Malformed),
            "exp {bad}"
        );
    }
    let mut c = claims();
    c["nbf"] = json!("soon");
    assert_eq!(check(&hs(c)), Err(AuthError::Malformed));
    let mut c = claims();
    c["exp"] = json!(NOW_S - 1);
    let leeway = Policy {
        leeway_s: 2,
        ..Policy::default()
    };
    assert!(
        check_with(&hs(c.clone()), &leeway).is_ok(),
        "within the leeway"
    );
    c["exp"] = json!(NOW_S - 3);
    assert_eq!(check_with(&hs(c), &leeway), Err(AuthError::Expired));
}

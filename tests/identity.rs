//! Identity end to end: tokens of every accepted algorithm, the attack list
//! refused with its code, an identity provider's JWKS fetched, cached in KV,
//! refetched on rotation (rate-limited) and served from the last good copy,
//! and WebSocket tickets.

mod common;

use common::*;
use confab::auth::signer::{public_jwk, sign};
use serde_json::{json, Value};
use std::time::Duration;

fn now_s() -> i64 {
    now_ms() / 1000
}

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "name": "Idp User", "exp": now_s() + 600, "iat": now_s()})
}

fn b64(s: &str) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    Base64UrlUnpadded::encode_string(s.as_bytes())
}

async fn status_of(h: &Harness, token: &str) -> (u16, Value) {
    let res = http()
        .get(format!("{}/v1/sessions", h.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_algorithm_is_accepted_and_every_attack_refused() {
    let jwks =
        json!({"keys": [public_jwk("rsa", "r1"), public_jwk("ec", "e1"), public_jwk("ed", "d1")]});
    let h = Harness::start(Options {
        vars: vec![
            ("JWT_JWKS".into(), jwks.to_string()),
            ("JWT_ISSUER".into(), "https://idp.test".into()),
            ("JWT_AUDIENCE".into(), "confab".into()),
            ("JWT_LEEWAY_SECONDS".into(), "5".into()),
        ],
        ..Options::default()
    });
    let good = |extra: Value| {
        let mut c = claims("idp-user");
        c["iss"] = "https://idp.test".into();
        c["aud"] = json!(["confab"]);
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let hmac = format!("hmac:{TEST_SECRET}");
    let mut minted = Vec::new();
    for (key, alg, kid) in [
        (hmac.as_str(), "HS256", None),
        ("rsa", "RS256", Some("r1")),
        ("ec", "ES256", Some("e1")),
        ("ed", "EdDSA", Some("d1")),
    ] {
        let t = sign(key, alg, kid, good(json!({})));
        let (status, body) = status_of(&h, &t).await;
        assert_eq!(status, 200, "{alg} accepted: {body}");
        minted.push(t);
    }

    let rsa_public = public_jwk("rsa", "r1").to_string();
    let header_body =
        |header: Value, c: Value| format!("{}.{}", b64(&header.to_string()), b64(&c.to_string()));
    let valid = sign("rsa", "RS256", Some("r1"), good(json!({})));
    let parts: Vec<&str> = valid.split('.').collect();
    let mut evil = good(json!({}));
    evil["sub"] = "admin".into();
    let attacks: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            format!(
                "{}.",
                header_body(json!({"alg": "none", "typ": "JWT"}), good(json!({})))
            ),
            "token_algorithm",
        ),
        (
            "HS/RS confusion with kid",
            sign(
                &format!("hmac:{rsa_public}"),
                "HS256",
                Some("r1"),
                good(json!({})),
            ),
            "token_algorithm",
        ),
        (
            "HS/RS confusion without kid",
            sign(
                &format!("hmac:{rsa_public}"),
                "HS256",
                None,
                good(json!({})),
            ),
            "token_signature",
        ),
        (
            "wrong key",
            sign("rsa_other", "RS256", Some("r1"), good(json!({}))),
            "token_signature",
        ),
        (
            "tampered payload",
            format!("{}.{}.{}", parts[0], b64(&evil.to_string()), parts[2]),
            "token_signature",
        ),
        (
            "tampered header",
            format!(
                "{}.{}.{}",
                b64(r#"{"alg":"RS256","kid":"r1","jku":"https://evil"}"#),
                parts[1],
                parts[2]
            ),
            "token_signature",
        ),
        (
            "expired",
            sign(
                "ec",
                "ES256",
                Some("e1"),
                good(json!({"exp": now_s() - 60})),
            ),
            "token_expired",
        ),
        (
            "no exp",
            sign("ec", "ES256", Some("e1"), good(json!({"exp": null}))),
            "token_missing_exp",
        ),
        (
            "not yet valid",
            sign(
                "ec",
                "ES256",
                Some("e1"),
                good(json!({"nbf": now_s() + 300})),
            ),
            "token_not_yet_valid",
        ),
        (
            "issued in the future",
            sign(
                "ec",
                "ES256",
                Some("e1"),
                good(json!({"iat": now_s() + 300})),
            ),
            "token_issued_in_future",
        ),
        (
            "wrong iss",
            sign(
                "ed",
                "EdDSA",
                Some("d1"),
                good(json!({"iss": "https://evil.test"})),
            ),
            "token_issuer",
        ),
        (
            "wrong aud",
            sign(
                "ed",
                "EdDSA",
                Some("d1"),
                good(json!({"aud": "someone-else"})),
            ),
            "token_audience",
        ),
        (
            "missing sub",
            sign("ed", "EdDSA", Some("d1"), good(json!({"sub": null}))),
            "token_missing_sub",
        ),
        (
            "unknown kid",
            sign("rsa", "RS256", Some("r9"), good(json!({}))),
            "token_unknown_key",
        ),
        (
            "alg not allowed for the key",
            sign("rsa", "RS256", Some("e1"), good(json!({}))),
            "token_algorithm",
        ),
        (
            "unsupported alg",
            format!(
                "{}.c2ln",
                header_body(json!({"alg": "PS256", "kid": "r1"}), good(json!({})))
            ),
            "token_algorithm",
        ),
        ("garbage", "not-a-jwt".into(), "token_malformed"),
    ];
    for (name, token, code) in &attacks {
        let (status, body) = status_of(&h, token).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some(*code)),
            "{name}: {body}"
        );
        assert!(body["error"]["request_id"].is_string());
        minted.push(token.clone());
    }
    // Keys and tokens never reach the log.
    let log = h.stop_and_read_log();
    for t in &minted {
        let signature = t.rsplit('.').next().unwrap();
        assert!(
            signature.len() < 8 || !log.contains(signature),
            "a token signature is in the log"
        );
    }
    assert!(!log.contains(TEST_SECRET));
    assert!(log.contains("\"status\":401"), "failures are logged");
}

#[tokio::test]
async fn a_jwks_url_is_cached_refetched_on_rotation_and_survives_an_outage() {
    let persist = temp_dir("jwks");
    let llm_port = free_port();
    let opts = Options {
        persist: Some(persist),
        llm_port: Some(llm_port),
        vars: vec![
            ("JWT_JWKS_URL".into(), "{llm_url}/jwks.json".into()),
            ("JWT_JWKS_CACHE_SECONDS".into(), "2".into()),
            ("JWT_JWKS_REFETCH_MIN_SECONDS".into(), "1".into()),
        ],
        ..Options::default()
    };
    let h = Harness::start(opts.clone());
    h.set_jwks(json!({"keys": [public_jwk("rsa", "r1")]}), 200)
        .await;
    let r1 = sign("rsa", "RS256", Some("r1"), claims("jwks-user"));
    assert_eq!(status_of(&h, &r1).await.0, 200);
    assert_eq!(status_of(&h, &r1).await.0, 200);
    assert_eq!(
        h.jwks_hits().await,
        1,
        "the second request is served from cache"
    );

    // Rotation: a token with a new kid makes Confab fetch again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.set_jwks(
        json!({"keys": [public_jwk("rsa", "r1"), public_jwk("rsa_other", "r2")]}),
        200,
    )
    .await;
    let r2 = sign("rsa_other", "RS256", Some("r2"), claims("jwks-user"));
    // A traced request: the fetch it causes is a span of its trace.
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let res = http()
        .get(format!("{}/v1/sessions", h.url))
        .bearer_auth(&r2)
        .header("traceparent", format!("00-{trace}-b7ad6b7169203331-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(h.jwks_hits().await, 2);
    let fetched = h
        .jwks_traceparent()
        .await
        .expect("the fetch had a traceparent");
    let parts: Vec<&str> = fetched.split('-').collect();
    assert_eq!((parts.len(), parts[1]), (4, trace), "{fetched}");
    assert_ne!(parts[2], "b7ad6b7169203331", "a span of its own");

    // A flood of forged kids costs the provider at most one fetch a second.
    let start = std::time::Instant::now();
    for i in 0..20 {
        let forged = sign("rsa", "RS256", Some(&format!("forged-{i}")), claims("x"));
        let (status, body) = status_of(&h, &forged).await;
        assert_eq!(
            body["error"]["code"], "token_unknown_key",
            "{status} {body}"
        );
    }
    let allowed = 1 + start.elapsed().as_secs();
    let extra = h.jwks_hits().await - 2;
    assert!(
        extra <= allowed,
        "{extra} fetches for 20 forged kids in {:?}",
        start.elapsed()
    );

    // The provider goes down after the cached copy is stale: the last good
    // copy still verifies, and Confab did try to refresh it.
    h.set_jwks(json!({"keys": []}), 503).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let before = h.jwks_hits().await;
    assert_eq!(status_of(&h, &r1).await.0, 200);
    assert!(h.jwks_hits().await > before, "a refresh was attempted");
    drop(h);

    // After a restart (memory gone) with the provider still down, the copy
    // in KV serves.
    let h = Harness::start(Options {
        vars: vec![
            ("JWT_JWKS_URL".into(), "{llm_url}/jwks.json".into()),
            ("JWT_JWKS_CACHE_SECONDS".into(), "3600".into()),
        ],
        ..opts
    });
    h.set_jwks(json!({"keys": []}), 503).await;
    assert_eq!(status_of(&h, &r2).await.0, 200);
    assert_eq!(h.jwks_hits().await, 0, "served from KV without a fetch");
}

#[tokio::test]
async fn without_any_copy_an_outage_is_a_clear_401() {
    let h = Harness::start(Options {
        vars: vec![("JWT_JWKS_URL".into(), "{llm_url}/jwks.json".into())],
        ..Options::default()
    });
    h.set_jwks(json!({"keys": []}), 500).await;
    let t = sign("ec", "ES256", Some("e1"), claims("u"));
    let (status, body) = status_of(&h, &t).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_keys_unavailable"))
    );
    // HS256 still works without fetching anything.
    let (status, _) = status_of(&h, &token("u", "U")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn tickets_are_single_use_short_lived_and_bound_to_their_session() {
    // The longest lifetime, so no step of this sequence can run into it;
    // expiry has a runtime of its own below.
    let h = Harness::start(Options {
        vars: vec![("WS_TICKET_TTL_SECONDS".into(), "60".into())],
        ..Options::default()
    });
    let owner = User::new(&h, "t-owner");
    let s1 = owner.create_session("one").await;
    let s2 = owner.create_session("two").await;

    // Issued to a member: 201 with its lifetime; a stranger gets 404.
    let (status, body) = owner
        .call(
            reqwest::Method::POST,
            &format!("/v1/sessions/{s1}/tickets"),
            None,
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["expires_in"], 60);
    let stranger = User::new(&h, "t-stranger");
    let (status, _) = stranger
        .call(
            reqwest::Method::POST,
            &format!("/v1/sessions/{s1}/tickets"),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Used on another session: refused, and not spent.
    let t = owner.ticket(&s1).await;
    let (status, body) =
        refused_upgrade(&format!("{}ticket={t}", owner.plain_ws_url(&s2, None))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("ticket_invalid"))
    );
    let mut ws = connect(&format!("{}ticket={t}", owner.plain_ws_url(&s1, None))).await;
    let hello = recv(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["you"]["id"], owner.id.as_str(), "{hello}");

    // Replayed: refused. (KV deleted it on use, so the Worker no longer
    // finds it; the object's own guard is tested without that below.)
    let (status, body) =
        refused_upgrade(&format!("{}ticket={t}", owner.plain_ws_url(&s1, None))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("ticket_invalid")),
        "{body}"
    );

    // Raced: of five simultaneous upgrades with one ticket, exactly one wins.
    let t = owner.ticket(&s1).await;
    let url = format!("{}ticket={t}", owner.plain_ws_url(&s1, None));
    let attempts = (0..5).map(|_| {
        let url = url.clone();
        tokio::spawn(async move { tokio_tungstenite::connect_async(url).await.is_ok() })
    });
    let wins = futures::future::join_all(attempts)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(wins, 1, "a ticket opens exactly one socket");

    // Forged: refused.
    let (status, body) = refused_upgrade(&format!(
        "{}ticket={}",
        owner.plain_ws_url(&s1, None),
        "ab".repeat(24)
    ))
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("ticket_invalid"))
    );
}

#[tokio::test]
async fn an_expired_ticket_is_refused_with_its_own_code() {
    let h = Harness::start(Options {
        vars: vec![("WS_TICKET_TTL_SECONDS".into(), "1".into())],
        ..Options::default()
    });
    let owner = User::new(&h, "t-expiry");
    let s = owner.create_session("expiry").await;
    let t = owner.ticket(&s).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (status, body) =
        refused_upgrade(&format!("{}ticket={t}", owner.plain_ws_url(&s, None))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("ticket_expired"))
    );
}

#[tokio::test]
async fn the_session_object_refuses_a_replayed_ticket_even_when_kv_still_has_it() {
    // KV deletes do nothing here, as when an eventually consistent KV has not
    // caught up: the Worker still finds the used ticket, and only the session
    // object's record of spent tickets stands between it and a second socket.
    let h = Harness::start(Options {
        kv_no_delete: true,
        vars: vec![("WS_TICKET_TTL_SECONDS".into(), "60".into())],
        ..Options::default()
    });
    let owner = User::new(&h, "t-guard");
    let s = owner.create_session("guard").await;
    let t = owner.ticket(&s).await;
    let url = format!("{}ticket={t}", owner.plain_ws_url(&s, None));
    let mut ws = connect(&url).await;
    assert_eq!(recv(&mut ws).await["type"], "hello");
    let (status, body) = refused_upgrade(&url).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("ticket_used")),
        "{body}"
    );
}

/// The public-key checks run in the runtime's WebCrypto: a key WebCrypto
/// refuses to import (a P-256 point off the curve) verifies nothing, a
/// signature of the wrong length for its algorithm is refused rather than
/// failing the request, and a key imported once keeps verifying.
#[tokio::test]
async fn webcrypto_refuses_bad_keys_and_malformed_signatures() {
    let mut off_curve = public_jwk("ec", "off");
    let y = off_curve["y"].as_str().unwrap().to_string();
    // Another last coordinate character: (x, y') is not a point of P-256.
    let last = if y.ends_with('A') { "B" } else { "A" };
    off_curve["y"] = format!("{}{last}", &y[..y.len() - 1]).into();
    let jwks = json!({"keys": [public_jwk("rsa", "r1"), public_jwk("ec", "e1"), public_jwk("ed", "d1"), off_curve]});
    let h = Harness::start(Options {
        vars: vec![("JWT_JWKS".into(), jwks.to_string())],
        ..Options::default()
    });
    let (status, body) = status_of(&h, &sign("ec", "ES256", Some("off"), claims("p"))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_signature")),
        "a key off the curve: {body}"
    );
    for (key, alg, kid) in [
        ("rsa", "RS256", "r1"),
        ("ec", "ES256", "e1"),
        ("ed", "EdDSA", "d1"),
    ] {
        let good = sign(key, alg, Some(kid), claims("p"));
        for _ in 0..2 {
            let (status, body) = status_of(&h, &good).await;
            assert_eq!(status, 200, "{alg}, imported once and reused: {body}");
        }
        let (head, signature) = good.rsplit_once('.').unwrap();
        // Decoded and encoded again, so the token still parses: only the
        // signature's length is wrong.
        use base64ct::{Base64UrlUnpadded, Encoding};
        let bytes = Base64UrlUnpadded::decode_vec(signature).unwrap();
        let longer = [bytes.as_slice(), &[0, 0, 0]].concat();
        for bad in [&bytes[..bytes.len() / 2], &longer] {
            let bad = Base64UrlUnpadded::encode_string(bad);
            let (status, body) = status_of(&h, &format!("{head}.{bad}")).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (401, Some("token_signature")),
                "{alg} with a signature of the wrong length: {body}"
            );
        }
    }
}

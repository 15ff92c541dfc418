//! Visitors (`src/auth/visitor.rs`, `POST /v1/visitors`) against the real
//! worker: an identity for someone without an account, what it may and may
//! not do, coming back with the credential, the per-address daily cap, and
//! Turnstile checked through a local stand-in of its siteverify API.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn visitor(h: &Harness, body: Value) -> (u16, Value) {
    let res = http()
        .post(format!("{}/v1/visitors", h.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn as_user(h: &Harness, v: &Value) -> User {
    User {
        base: h.url.clone(),
        id: v["user_id"].as_str().unwrap().into(),
        name: v["name"].as_str().unwrap().into(),
        token: v["token"].as_str().unwrap().into(),
    }
}

#[tokio::test]
async fn visitors_are_refused_unless_the_deployment_allows_them() {
    let h = &Harness::with_vars(&[]);
    let (status, body) = visitor(h, json!({"name": "Vera"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (_, _, config) = get_json(&h.url, "/v1/client-config").await;
    assert_eq!(config["visitors"], false);
    assert_eq!(config["turnstile_site_key"], Value::Null);
}

#[tokio::test]
async fn a_visitor_chats_comes_back_as_themselves_and_is_never_more_than_a_visitor() {
    let h = Harness::with_vars(&[("ALLOW_VISITORS", "on"), ("VISITORS_PER_IP_PER_DAY", "3")]);
    let (_, _, config) = get_json(&h.url, "/v1/client-config").await;
    assert_eq!(config["visitors"], true);

    let (status, first) = visitor(&h, json!({"name": "  Vera  "})).await;
    assert_eq!(status, 201, "{first}");
    let id = first["user_id"].as_str().unwrap();
    assert!(id.starts_with("visitor-"), "{id}");
    assert_eq!(first["name"], "Vera");
    assert_eq!(first["expires_in"], 3600);
    let vera = as_user(&h, &first);

    // A visitor is a user like any other in their own conversation.
    let (status, created) = vera
        .call(
            Method::POST,
            "/v1/sessions",
            Some(
                json!({"title": "Help", "contact": {"name": "Vera", "email": "vera@example.com"}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let s = created["id"].as_str().unwrap().to_string();
    let (mut ws, _, _) = vera.join(&s, None).await;
    send_msg(&mut ws, "v-1", "where is my order?").await;

    // ...and nothing more: admin routes do not exist for them, and
    // another user's session is not theirs.
    let (status, _) = vera.call(Method::GET, "/v1/admin/sessions", None).await;
    assert_eq!(status, 404);
    let other = User::new(&h, "owner");
    let theirs = other.create_session("not yours").await;
    let (status, _) = vera
        .call(Method::GET, &format!("/v1/sessions/{theirs}"), None)
        .await;
    assert_eq!(status, 404);

    // Coming back with the credential: the same id, a fresh token, the
    // same conversation; no count against the cap.
    let credential = first["visitor"].as_str().unwrap();
    for _ in 0..3 {
        let (status, again) = visitor(&h, json!({"visitor": credential, "name": "Vera"})).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["user_id"], first["user_id"]);
        let back = as_user(&h, &again);
        assert_eq!(back.history_texts(&s).await, vec!["where is my order?"]);
    }
    let (status, list) = vera.call(Method::GET, "/v1/sessions", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["sessions"][0]["id"], s.as_str(), "{list}");

    // A credential changed in any way is refused (claims or tag; the unit
    // tests in src/auth/visitor.rs forge each claim).
    let flip = |c: char| if c == 'A' { 'B' } else { 'A' };
    let (payload, tag) = credential.split_once('.').unwrap();
    let mut p = payload.chars();
    let other_claims = format!("{}{}.{tag}", flip(p.next().unwrap()), p.as_str());
    let mut t: Vec<char> = tag.chars().collect();
    t[0] = flip(t[0]);
    let other_tag = format!("{payload}.{}", t.iter().collect::<String>());
    for bad in [
        other_claims.as_str(),
        other_tag.as_str(),
        "cv1.visitor-1.1.AAAA",
        "nonsense",
    ] {
        let (status, body) = visitor(&h, json!({"visitor": bad})).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("invalid_visitor")),
            "{bad}"
        );
    }
    // Bad names and bodies get a code.
    let (status, body) = visitor(&h, json!({"name": "x".repeat(101)})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_name"))
    );
    let (status, _) = visitor(&h, json!({"admin": true})).await;
    assert_eq!(status, 400);

    // The cap: three new visitors a day from one address, this one the first.
    for _ in 0..2 {
        assert_eq!(visitor(&h, json!({})).await.0, 201);
    }
    let res = http()
        .post(format!("{}/v1/visitors", h.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    let retry = retry_after(&res);
    assert!((1..=86_400).contains(&retry), "{retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "visitor_quota");
    // A returning visitor still comes back.
    assert_eq!(visitor(&h, json!({"visitor": credential})).await.0, 200);
}

#[tokio::test]
async fn turnstile_answers_are_checked_with_siteverify() {
    let h = Harness::with_vars(&[
        ("ALLOW_VISITORS", "on"),
        ("TURNSTILE_SITE_KEY", "standin-site-key"),
        ("TURNSTILE_SECRET_KEY", "standin-turnstile-secret"),
        ("TURNSTILE_VERIFY_URL", "{llm_url}/turnstile/v0/siteverify"),
    ]);
    let (_, _, config) = get_json(&h.url, "/v1/client-config").await;
    assert_eq!(config["turnstile_site_key"], "standin-site-key");

    let code = |b: &Value| b["error"]["code"].as_str().map(str::to_owned);
    let (status, body) = visitor(&h, json!({"name": "Bot"})).await;
    assert_eq!(
        (status, code(&body).as_deref()),
        (400, Some("turnstile_required"))
    );
    let (status, body) = visitor(&h, json!({"turnstile_token": "wrong"})).await;
    assert_eq!(
        (status, code(&body).as_deref()),
        (403, Some("turnstile_failed"))
    );
    let (status, body) = visitor(&h, json!({"turnstile_token": "unavailable"})).await;
    assert_eq!((status, code(&body).as_deref()), (503, Some("unavailable")));
    assert!(!body.to_string().contains("stand-in outage"), "{body}");
    // A siteverify that never answers is cut off after 5 s.
    let started = std::time::Instant::now();
    let (status, body) = visitor(&h, json!({"turnstile_token": "hang"})).await;
    assert_eq!((status, code(&body).as_deref()), (503, Some("unavailable")));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    let (status, ok) = visitor(&h, json!({"turnstile_token": "pass-1", "name": "Ann"})).await;
    assert_eq!(status, 201, "{ok}");
    // A returning visitor needs no new challenge.
    let (status, _) = visitor(&h, json!({"visitor": ok["visitor"]})).await;
    assert_eq!(status, 200);

    // What siteverify was asked: each answer once, with the client address.
    let seen: Vec<Value> = http()
        .get(format!("{}/_standin/turnstile", h.llm_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let answers: Vec<&str> = seen
        .iter()
        .map(|r| r["response"].as_str().unwrap())
        .collect();
    assert_eq!(answers, ["wrong", "unavailable", "hang", "pass-1"]);
    assert!(seen
        .iter()
        .all(|r| r["remoteip"].as_str().is_some_and(|ip| !ip.is_empty())));
}

#[tokio::test]
async fn the_products_backend_links_a_visitors_conversations_to_the_account_they_sign_in_to() {
    const SERVICE: &str = "svc-visitors-0123456789abcdef0123456789";
    let h = Harness::with_vars(&[("ALLOW_VISITORS", "on"), ("SERVICE_TOKEN", SERVICE)]);
    let (_, v) = visitor(&h, json!({"name": "Vera"})).await;
    let vera = as_user(&h, &v);
    let first = vera.create_session("first question").await;
    let (mut ws, _, _) = vera.join(&first, None).await;
    send_msg(&mut ws, "v-1", "asked before signing in").await;
    let second = vera.create_session("second question").await;
    let account = User::new(&h, "account");
    let (status, _) = account
        .call(Method::GET, &format!("/v1/sessions/{first}"), None)
        .await;
    assert_eq!(status, 404, "not the account's yet");

    let link = |visitor_id: String, body: Value, bearer: String| {
        let url = format!("{}/v1/service/visitors/{visitor_id}/link", h.url);
        async move {
            let res = http()
                .post(url)
                .bearer_auth(bearer)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let body = json!({"user_id": account.id});
    for _ in 0..2 {
        // Twice: the second changes nothing.
        let (status, linked) = link(vera.id.clone(), body.clone(), SERVICE.into()).await;
        assert_eq!(status, 200, "{linked}");
        let mut got: Vec<&str> = linked["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        got.sort();
        let mut want = vec![first.as_str(), second.as_str()];
        want.sort();
        assert_eq!(got, want);
    }
    // The account now reads and continues them; the visitor still has them.
    assert_eq!(
        account.history_texts(&first).await,
        vec!["asked before signing in"]
    );
    let (mut acct_ws, _, _) = account.join(&first, None).await;
    send_msg(&mut acct_ws, "a-1", "signed in now").await;
    assert_eq!(
        vera.history_texts(&first).await,
        vec!["asked before signing in", "signed in now"]
    );

    // Only the product's backend may link, and only a visitor to an account.
    let (status, _) = link(vera.id.clone(), body.clone(), account.token.clone()).await;
    assert_eq!(status, 404);
    let (status, b) = link("alice".into(), body.clone(), SERVICE.into()).await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (400, Some("invalid_visitor_id"))
    );
    let other = json!({"user_id": "visitor-ffffffffffffffffffffffffffffffff"});
    let (status, b) = link(vera.id.clone(), other, SERVICE.into()).await;
    assert_eq!(
        (status, b["error"]["code"].as_str()),
        (400, Some("invalid_user_id"))
    );
    // A visitor with no conversation links none.
    let (_, nobody) = visitor(&h, json!({})).await;
    let id = nobody["user_id"].as_str().unwrap().to_string();
    let (status, b) = link(id, body, SERVICE.into()).await;
    assert_eq!((status, b["sessions"].clone()), (200, json!([])));
}

//! The HTTP API against the real worker: identity, sessions, members,
//! history pagination, erasure, and bad input.

mod common;

use common::*;
use futures::SinkExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn dev_tokens_and_dev_sign_in_exist_only_in_development() {
    let prod = Harness::shared();
    let res = http()
        .post(format!("{}/v1/dev/token", prod.url))
        .json(&json!({"name": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );

    // The pages learn the same from /v1/client-config.
    let config = |h: &Harness| {
        let url = format!("{}/v1/client-config", h.url);
        async move {
            let res = http().get(url).send().await.unwrap();
            assert_eq!(res.status().as_u16(), 200);
            res.json::<Value>().await.unwrap()
        }
    };
    assert_eq!(
        config(prod).await,
        // (The shared runtime lets visitors in, for the route walk.)
        json!({"dev_sign_in": false, "assistant": false, "embed_origins": [],
               "visitors": true, "turnstile_site_key": null})
    );

    let dev = Harness::start(Options {
        vars: vec![("ENVIRONMENT".into(), "development".into())],
        ..Default::default()
    });
    assert_eq!(config(&dev).await["dev_sign_in"], true);
    let res = http()
        .post(format!("{}/v1/dev/token", dev.url))
        .json(&json!({"name": "Ann", "sub": "ann-1", "roles": ["admin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user_id"], "ann-1");
    let token = body["token"].as_str().unwrap();
    // The token works for the API and names its holder as owner.
    let res = http()
        .post(format!("{}/v1/sessions", dev.url))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(res.json::<Value>().await.unwrap()["owner_id"], "ann-1");

    let res = http()
        .post(format!("{}/v1/dev/token", dev.url))
        .json(&json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_name"
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401_with_a_stable_code() {
    let h = Harness::shared();
    let cases = [
        (None, "token_missing"),
        (Some("Basic abc".to_string()), "token_malformed"),
        (Some("Bearer not-a-jwt".to_string()), "token_malformed"),
        (
            Some(format!(
                "Bearer {}",
                confab::auth::mint_hs256(
                    &confab::auth::Identity {
                        user_id: "x".into(),
                        name: "X".into(),
                        roles: vec![],
                        expires_at: 0,
                    },
                    b"some-other-secret-some-other-secret",
                    now_ms(),
                    60
                )
            )),
            "token_signature",
        ),
        (
            Some(format!(
                "Bearer {}",
                confab::auth::mint_hs256(
                    &confab::auth::Identity {
                        user_id: "x".into(),
                        name: "X".into(),
                        roles: vec![],
                        expires_at: 0,
                    },
                    TEST_SECRET.as_bytes(),
                    now_ms() - 7_200_000,
                    60
                )
            )),
            "token_expired",
        ),
    ];
    for (auth, code) in cases {
        let mut r = http().get(format!("{}/v1/sessions", h.url));
        if let Some(a) = &auth {
            r = r.header("authorization", a);
        }
        let res = r.send().await.unwrap();
        assert_eq!(res.status().as_u16(), 401, "{auth:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{auth:?}");
        assert!(body["error"]["request_id"].is_string());
    }
}

#[tokio::test]
async fn create_and_read_a_session_with_a_contact_form() {
    let h = Harness::shared();
    let u = User::new(h, "creator");
    let (status, s) = u
        .call(
            Method::POST,
            "/v1/sessions",
            Some(json!({"title": "  Billing question ", "contact": {"name": "Ann Lee", "email": "ann@example.com"}})),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    assert_eq!(s["owner_id"], u.id.as_str());
    assert_eq!(s["title"], "Billing question");
    assert_eq!(
        s["contact"],
        json!({"name": "Ann Lee", "email": "ann@example.com"})
    );
    assert_eq!(
        (s["mode"].as_str(), s["status"].as_str()),
        (Some("assistant"), Some("open"))
    );
    assert_eq!(
        (s["last_seq"].as_u64(), s["message_count"].as_u64()),
        (Some(0), Some(0))
    );
    let id = s["id"].as_str().unwrap();

    let (mut ws, _, _) = u.join(id, None).await;
    send_msg(&mut ws, "c1", "first").await;
    send_msg(&mut ws, "c2", "second").await;
    let (status, got) = u
        .call(Method::GET, &format!("/v1/sessions/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (got["last_seq"].as_u64(), got["message_count"].as_u64()),
        (Some(2), Some(2))
    );
    assert!(got["updated_at"].as_i64() >= got["created_at"].as_i64());
}

#[tokio::test]
async fn bad_session_bodies_are_400_with_the_field_named() {
    let h = Harness::shared();
    let u = User::new(h, "bad");
    let cases = [
        (json!({"title": "x".repeat(201)}), "invalid_title"),
        (
            json!({"contact": {"name": "A", "email": "not-an-email"}}),
            "invalid_contact_email",
        ),
        (
            json!({"contact": {"name": " ", "email": "a@b.co"}}),
            "invalid_contact_name",
        ),
        // A name or an e-mail alone will do (the pre-chat form's fields are
        // the product's choice); neither, or a field of another name, will not.
        (json!({"contact": {}}), "invalid_contact_name"),
        (json!({"contact": {"phone": "123"}}), "invalid_json"),
        (json!({"titel": "typo"}), "invalid_json"),
        (json!("just a string"), "invalid_json"),
    ];
    for (body, code) in cases {
        let (status, res) = u
            .call(Method::POST, "/v1/sessions", Some(body.clone()))
            .await;
        assert_eq!(
            (status, res["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}"
        );
    }
    let res = u
        .req(Method::POST, "/v1/sessions")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let res = u
        .req(Method::POST, "/v1/sessions")
        .body(vec![b' '; 20_000])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "payload_too_large"
    );
}

#[tokio::test]
async fn strangers_get_404_members_get_access_and_only_owners_manage() {
    let h = Harness::shared();
    let owner = User::new(h, "own");
    let member = User::new(h, "mem");
    let stranger = User::new(h, "str");
    let s = owner.create_session("shared").await;
    let session = format!("/v1/sessions/{s}");
    let history = format!("/v1/sessions/{s}/messages");
    let members = format!("/v1/sessions/{s}/members");

    for path in [&session, &history] {
        assert_eq!(
            stranger.call(Method::GET, path, None).await.0,
            404,
            "{path}"
        );
        assert_eq!(member.call(Method::GET, path, None).await.0, 404, "{path}");
    }
    owner.add_member(&s, &member).await;
    for path in [&session, &history] {
        assert_eq!(member.call(Method::GET, path, None).await.0, 200, "{path}");
        assert_eq!(
            stranger.call(Method::GET, path, None).await.0,
            404,
            "{path}"
        );
    }
    // Members can chat but not manage or erase.
    let add = json!({"user_id": stranger.id});
    assert_eq!(
        member
            .call(Method::POST, &members, Some(add.clone()))
            .await
            .0,
        404
    );
    assert_eq!(member.call(Method::GET, &members, None).await.0, 404);
    assert_eq!(member.call(Method::DELETE, &session, None).await.0, 404);
    let (status, list) = owner.call(Method::GET, &members, None).await;
    assert_eq!((status, list["members"].clone()), (200, json!([member.id])));
    let (status, body) = owner
        // User ids are any identity provider's subjects, but never padded
        // or with control characters.
        .call(Method::POST, &members, Some(json!({"user_id": "bad\nid"})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_user_id"))
    );

    // The member's listing (D1's replicated copy) includes the shared session.
    h.replicated(&s).await;
    let (_, mine) = member.call(Method::GET, "/v1/sessions", None).await;
    assert!(mine["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == s.as_str()));

    let remove = format!("{members}/{}", member.id);
    assert_eq!(
        owner
            .req(Method::DELETE, &remove)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        204
    );
    assert_eq!(member.call(Method::GET, &session, None).await.0, 404);
    assert_eq!(owner.call(Method::DELETE, &remove, None).await.0, 404);
}

#[tokio::test]
async fn listing_pages_by_newest_activity_with_a_keyset_cursor() {
    let h = Harness::shared();
    let u = User::new(h, "lister");
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(u.create_session(&format!("s{i}")).await);
    }
    // Activity on the oldest moves it to the front.
    let (mut ws, _, _) = u.join(&ids[0], None).await;
    send_msg(&mut ws, "bump", "bump").await;
    // Listings read D1's replicated copy.
    h.replicated(&ids[0]).await;
    let mut want: Vec<String> = ids[1..].iter().rev().cloned().collect();
    want.insert(0, ids[0].clone());

    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/sessions?limit=3&cursor={c}"),
            None => "/v1/sessions?limit=3".to_string(),
        };
        let (status, page) = u.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        for s in page["sessions"].as_array().unwrap() {
            got.push((
                s["updated_at"].as_i64().unwrap(),
                s["id"].as_str().unwrap().to_string(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        got[0].1, ids[0],
        "the session with new activity comes first"
    );
    // The order the API defines across pages: (updated_at, id) descending.
    assert!(got.windows(2).all(|w| w[0] > w[1]), "{got:?}");
    let mut got_ids: Vec<String> = got.into_iter().map(|(_, id)| id).collect();
    got_ids.sort();
    want.sort();
    assert_eq!(got_ids, want, "every session exactly once");

    for (q, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("cursor=garbage", "invalid_cursor"),
    ] {
        let (status, body) = u
            .call(Method::GET, &format!("/v1/sessions?{q}"), None)
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{q}"
        );
    }
}

#[tokio::test]
async fn history_pages_cover_1000_messages_exactly_once_in_order() {
    let h = Harness::shared();
    let u = User::new(h, "historian");
    let s = u.create_session("long").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    const N: u64 = 1000;
    for i in 1..=N {
        ws.send(Message::text(
            json!({"type": "send", "client_id": format!("h{i}"), "text": format!("msg {i}")})
                .to_string(),
        ))
        .await
        .unwrap();
    }
    let mut acked = 0;
    while acked < N {
        recv_type(&mut ws, "ack").await;
        acked += 1;
    }
    send_json(
        &mut ws,
        json!({"type": "edit", "seq": 500, "text": "edited 500"}),
    )
    .await;
    recv_type(&mut ws, "edited").await;
    send_json(&mut ws, json!({"type": "delete", "seq": 250})).await;
    recv_type(&mut ws, "deleted").await;
    send_json(
        &mut ws,
        json!({"type": "react", "seq": 750, "emoji": "🎉", "action": "add"}),
    )
    .await;
    recv_type(&mut ws, "reaction").await;

    let mut seqs = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/v1/sessions/{s}/messages?limit=100&before={b}"),
            None => format!("/v1/sessions/{s}/messages?limit=100"),
        };
        let (status, page) = u.call(Method::GET, &path, None).await;
        assert_eq!(status, 200);
        assert_eq!(page["last_seq"], N);
        let msgs = page["messages"].as_array().unwrap();
        let page_seqs: Vec<u64> = msgs.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert!(
            page_seqs.windows(2).all(|w| w[0] + 1 == w[1]),
            "each page is oldest first"
        );
        for m in msgs {
            match m["seq"].as_u64().unwrap() {
                500 => assert_eq!(m["text"], "edited 500"),
                250 => assert_eq!(
                    (m["deleted"].as_bool(), m["text"].as_str()),
                    (Some(true), Some(""))
                ),
                750 => assert_eq!(m["reactions"], json!([{"emoji": "🎉", "users": [u.id]}])),
                n => assert_eq!(m["text"], format!("msg {n}")),
            }
        }
        let mut page_seqs = page_seqs;
        page_seqs.extend(seqs);
        seqs = page_seqs;
        match page["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    assert_eq!(seqs, (1..=N).collect::<Vec<_>>());

    for (q, code) in [("before=x", "invalid_seq"), ("limit=500", "invalid_limit")] {
        let (status, body) = u
            .call(Method::GET, &format!("/v1/sessions/{s}/messages?{q}"), None)
            .await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some(code)));
    }
}

#[tokio::test]
async fn the_owner_erases_a_session_and_its_live_sockets_close_with_4004() {
    let h = Harness::shared();
    let owner = User::new(h, "eraser");
    let member = User::new(h, "bystander");
    let s = owner.create_session("to erase").await;
    owner.add_member(&s, &member).await;
    let (mut a, _, _) = owner.join(&s, None).await;
    let (mut b, _, _) = member.join(&s, None).await;
    send_msg(&mut a, "x", "soon gone").await;

    let res = owner
        .req(Method::DELETE, &format!("/v1/sessions/{s}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert_eq!(close_code(&mut a).await, Some(4004));
    assert_eq!(close_code(&mut b).await, Some(4004));
    assert_eq!(
        owner
            .call(Method::GET, &format!("/v1/sessions/{s}"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        owner
            .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
            .await
            .0,
        404
    );
    let (_, mine) = owner.call(Method::GET, "/v1/sessions", None).await;
    assert!(mine["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["id"] != s.as_str()));
    assert_eq!(
        owner
            .call(Method::DELETE, &format!("/v1/sessions/{s}"), None)
            .await
            .0,
        404
    );
}

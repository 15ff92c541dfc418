//! Security hardening against the real worker: authorization for the whole
//! life of a socket, reserved server identities, budgets on every mutating
//! frame, bounds on seqs, methods, bodies, user ids and Host headers.

mod common;

use common::llm::runtime;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A user whose token lives `ttl_s` seconds.
fn user_with_ttl(h: &Harness, id: &str, ttl_s: i64) -> User {
    with_ttl(h, id, ttl_s, &[])
}

fn with_ttl(h: &Harness, id: &str, ttl_s: i64, roles: &[&str]) -> User {
    let who = confab::auth::Identity {
        user_id: id.into(),
        name: format!("{id} person"),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        expires_at: 0,
    };
    User {
        base: h.url.clone(),
        id: id.into(),
        name: who.name.clone(),
        token: confab::auth::mint_hs256(&who, TEST_SECRET.as_bytes(), now_ms(), ttl_s),
    }
}

/// Reads frames until the socket closes: the error codes seen and the close code.
async fn until_closed(ws: &mut Ws, secs: u64) -> (Vec<String>, Option<u16>) {
    let mut codes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        match next_frame(ws, secs).await {
            Some(tokio_tungstenite::tungstenite::Message::Text(t)) => {
                let f: Value = serde_json::from_str(&t).unwrap();
                if f["type"] == "error" {
                    codes.push(f["code"].as_str().unwrap_or_default().to_string());
                }
            }
            Some(tokio_tungstenite::tungstenite::Message::Close(cf)) => {
                return (codes, cf.map(|c| u16::from(c.code)));
            }
            Some(_) => {}
            None => break,
        }
    }
    (codes, None)
}

#[tokio::test]
async fn removing_a_member_closes_their_sockets_at_once() {
    let h = Harness::shared();
    let owner = User::new(h, "rv-owner");
    // An identity-provider subject: added and removed through the API,
    // percent-encoded in the path.
    let member = User {
        id: format!("auth0|{}", unique("rv")),
        ..User::new(h, "rv-member")
    };
    let member = User {
        token: token(&member.id, &member.name),
        ..member
    };
    let s = owner.create_session("revocation").await;
    owner.add_member(&s, &member).await;
    let (mut mine, _, _) = owner.join(&s, None).await;
    let (mut theirs, _, _) = member.join(&s, None).await;
    let (mut theirs2, _, _) = member.join(&s, None).await;
    recv_type(&mut mine, "presence").await;

    let path = format!("/v1/sessions/{s}/members/{}", member.id.replace('|', "%7C"));
    let (status, body) = owner.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 204, "{body}");
    for ws in [&mut theirs, &mut theirs2] {
        let (codes, code) = until_closed(ws, 5).await;
        assert_eq!(codes, vec!["access_revoked"]);
        assert_eq!(code, Some(4003));
    }
    // The owner's socket stays and keeps working; the member cannot come back.
    let ack = send_msg(&mut mine, "after-removal", "still here").await;
    assert_eq!(ack["duplicate"], false);
    let (status, body) = member
        .call(Method::POST, &format!("/v1/sessions/{s}/tickets"), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[tokio::test]
async fn a_socket_lives_no_longer_than_its_token() {
    // No clock leeway: a 3-second token ends its socket after 3 seconds.
    let h = Harness::start(Options {
        vars: vec![("JWT_LEEWAY_SECONDS".into(), "0".into())],
        ..Default::default()
    });
    let owner = User::new(&h, "exp-owner");
    let s = owner.create_session("expiry").await;
    let short = user_with_ttl(&h, &unique("exp-short"), 3);
    owner.add_member(&s, &short).await;
    let (mut long_lived, _, _) = owner.join(&s, None).await;

    // Both ways in: a ticket (the identity it stored carries the token's
    // expiry) and the Authorization header; and an agent's inbox socket,
    // which the desk object holds, not the session's.
    let (mut by_ticket, _, _) = short.join(&s, None).await;
    let mut by_header = connect(bearer_request(&short.plain_ws_url(&s, None), &short.token)).await;
    recv_type(&mut by_header, "synced").await;
    let agent = with_ttl(&h, &unique("exp-agent"), 3, &["admin"]);
    let mut inbox = connect_bearer(&h.ws_url("/v1/admin/inbox/ws"), &agent.token).await;
    assert_eq!(recv(&mut inbox).await["type"], "ready");
    let opened = Instant::now();
    for ws in [&mut by_ticket, &mut by_header, &mut inbox] {
        let (codes, code) = until_closed(ws, 10).await;
        assert_eq!(codes, vec!["token_expired"]);
        assert_eq!(code, Some(4001));
    }
    let lived = opened.elapsed();
    assert!(lived < Duration::from_secs(6), "closed after {lived:?}");
    // The long-lived socket is untouched.
    send_msg(&mut long_lived, "still-open", "fine").await;
}

#[tokio::test]
async fn server_identities_cannot_be_taken() {
    let h = runtime("reserved-1", &[]);
    // A token whose subject is the assistant's author id.
    let impostor = User {
        base: h.url.clone(),
        id: "assistant".into(),
        name: "Assistant".into(),
        token: token("assistant", "Assistant"),
    };
    let s = impostor.create_session("impostor").await;
    let (mut ws, _, _) = impostor.join(&s, None).await;
    send_msg(&mut ws, "q1", "hello").await;
    let reply = loop {
        let f = recv(&mut ws).await;
        if f["type"] == "message" && f["author"]["kind"] == "assistant" {
            break f;
        }
    };
    assert_eq!(reply["author"]["id"], "assistant");
    let seq = reply["seq"].as_u64().unwrap();

    // Its client id prefix is the server's.
    let turn_id = format!("turn:{}", reply["id"].as_str().unwrap());
    send_json(
        &mut ws,
        json!({"type": "send", "client_id": turn_id, "text": "mine now"}),
    )
    .await;
    let (err, _) = recv_type(&mut ws, "error").await;
    assert_eq!(err["code"], "invalid_client_id", "{err}");
    // Same id, different kind: not the author.
    send_json(
        &mut ws,
        json!({"type": "edit", "seq": seq, "text": "rewritten"}),
    )
    .await;
    let (err, _) = recv_type(&mut ws, "error").await;
    assert_eq!(err["code"], "forbidden", "{err}");
    send_json(&mut ws, json!({"type": "delete", "seq": seq})).await;
    let (err, _) = recv_type(&mut ws, "error").await;
    assert_eq!(err["code"], "forbidden", "{err}");
    // The impostor's own message is still theirs to edit, as kind `user`.
    send_json(
        &mut ws,
        json!({"type": "edit", "seq": 1, "text": "hello again"}),
    )
    .await;
    let (edited, _) = recv_type(&mut ws, "edited").await;
    assert_eq!(edited["seq"], 1);

    let (_, body) = impostor
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    let messages = body["messages"].as_array().unwrap();
    let assistant: Vec<&Value> = messages
        .iter()
        .filter(|m| m["author"]["kind"] == "assistant")
        .collect();
    assert_eq!(assistant.len(), 1);
    assert_eq!(
        assistant[0]["text"], reply["text"],
        "the reply is untouched"
    );
    assert_eq!(messages[0]["author"]["kind"], "user");
}

#[tokio::test]
async fn every_mutating_frame_draws_from_a_budget_and_reactions_and_edits_are_bounded() {
    let h = Harness::start(Options {
        vars: vec![
            ("RATE_ACTIONS_PER_MINUTE".into(), "6".into()),
            ("RATE_ACTIONS_BURST".into(), "12".into()),
            ("MAX_REACTIONS_PER_USER".into(), "3".into()),
            ("MAX_EDIT_HISTORY".into(), "2".into()),
        ],
        ..Default::default()
    });
    let u = User::new(&h, "budget");
    let s = u.create_session("budgets").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_msg(&mut ws, "b1", "version 0").await;

    // Five edits: each applied, the history keeps the newest two texts.
    for i in 1..=5 {
        send_json(
            &mut ws,
            json!({"type": "edit", "seq": 1, "text": format!("version {i}")}),
        )
        .await;
        let (e, _) = recv_type(&mut ws, "edited").await;
        assert_eq!(e["text"], format!("version {i}"));
    }
    h.replicated(&s).await;
    let rows = h
        .session_sql(
            &s,
            "SELECT count(*) AS n FROM message_edits WHERE session_id = ?1",
            json!([s]),
        )
        .await;
    assert_eq!(rows[0]["n"], 2, "edit history is bounded");

    // Three distinct reactions, then the fourth is refused.
    for e in ["a", "b", "c"] {
        send_json(
            &mut ws,
            json!({"type": "react", "seq": 1, "emoji": e, "action": "add"}),
        )
        .await;
        recv_type(&mut ws, "reaction").await;
    }
    send_json(
        &mut ws,
        json!({"type": "react", "seq": 1, "emoji": "d", "action": "add"}),
    )
    .await;
    let (err, _) = recv_type(&mut ws, "error").await;
    assert_eq!(err["code"], "too_many_reactions", "{err}");
    // That is 9 actions of the burst of 12; reads and deletes count too.
    for _ in 0..3 {
        send_json(&mut ws, json!({"type": "read", "seq": 1})).await;
    }
    send_json(&mut ws, json!({"type": "delete", "seq": 1})).await;
    let (err, _) = recv_type(&mut ws, "error").await;
    assert_eq!(err["code"], "rate_limited", "{err}");
    let wait = err["retry_after_ms"].as_u64().unwrap();
    assert!((1..=10_000).contains(&wait), "{err}");
    // Sends have their own budget (lifted in tests) and still work.
    send_msg(&mut ws, "b2", "still sending").await;
}

#[tokio::test]
async fn a_rate_limit_survives_a_restart_of_the_runtime() {
    let dir = temp_dir("buckets");
    let opts = Options {
        persist: Some(dir),
        vars: vec![
            ("RATE_MESSAGES_PER_MINUTE".into(), "1".into()),
            ("RATE_MESSAGES_BURST".into(), "3".into()),
        ],
        ..Default::default()
    };
    let first = Harness::start(opts.clone());
    let u = User::new(&first, "bucket");
    let s = u.create_session("buckets").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    exhaust_message_burst(&mut ws, "k", 3, "k3").await;
    drop(ws);
    assert_eq!(first.terminate(), Some(0));

    // Everything in memory is gone; the bucket in storage is not.
    let second = Harness::start(opts);
    let u = User {
        base: second.url.clone(),
        ..u
    };
    let (mut ws, _, _) = u.join(&s, None).await;
    send_json(
        &mut ws,
        json!({"type": "send", "client_id": "k4", "text": "fresh burst?"}),
    )
    .await;
    let (err, _) = recv_type(&mut ws, "error").await;
    assert_eq!(
        err["code"], "rate_limited",
        "no fresh burst after a restart: {err}"
    );
}

#[tokio::test]
async fn seqs_beyond_javascript_safe_integers_are_refused() {
    let h = Harness::shared();
    let u = User::new(h, "seq");
    let s = u.create_session("seqs").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_msg(&mut ws, "s1", "one").await;
    for big in ["9007199254740992", "18446744073709551615"] {
        for frame in [
            format!(r#"{{"type":"read","seq":{big}}}"#),
            format!(r#"{{"type":"delete","seq":{big}}}"#),
            format!(r#"{{"type":"send","client_id":"r","text":"x","reply_to":{big}}}"#),
        ] {
            send_text(&mut ws, &frame).await;
            let (err, _) = recv_type(&mut ws, "error").await;
            assert_eq!(err["code"], "invalid_seq", "{frame}: {err}");
        }
        let (status, body) = u
            .call(
                Method::GET,
                &format!("/v1/sessions/{s}/messages?before={big}"),
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_seq"))
        );
        let url = format!(
            "{}after={big}&ticket={}",
            u.plain_ws_url(&s, None),
            u.ticket(&s).await
        );
        let (status, body) = refused_upgrade(&url).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_seq"))
        );
    }
    // Nothing was stored from any of it: the read position is untouched
    // (in D1 too, once everything the session did has reached it).
    h.replicated(&s).await;
    let rows = h
        .session_sql(
            &s,
            "SELECT count(*) AS n FROM read_positions WHERE session_id = ?1",
            json!([s]),
        )
        .await;
    assert_eq!(rows[0]["n"], 0);
}

#[tokio::test]
async fn only_documented_methods_and_object_bodies_are_served() {
    let h = Harness::shared();
    let admin = User {
        token: token_with_roles("methods-admin", "Admin", &["admin"]),
        ..User::new(h, "methods-admin")
    };
    for m in [
        "PURGE", "PROPFIND", "MKCOL", "LOCK", "SEARCH", "PUT", "PATCH",
    ] {
        let method = Method::from_bytes(m.as_bytes()).unwrap();
        let (status, body) = admin.call(method, "/v1/admin/sessions", None).await;
        assert_eq!(status, 405, "{m}: {body}");
        assert_eq!(body["error"]["code"], "method_not_allowed", "{m}");
    }
    let u = User::new(h, "bodies");
    for bad in [
        json!(["a title", {"name": "Ann", "email": "ann@example.com"}]),
        json!({"contact": ["Ann", "ann@example.com"]}),
        json!("a title"),
        json!(42),
    ] {
        let (status, body) = u
            .call(Method::POST, "/v1/sessions", Some(bad.clone()))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_json")),
            "{bad}"
        );
    }
    let s = u.create_session("bodies").await;
    let (status, body) = u
        .call(
            Method::POST,
            &format!("/v1/sessions/{s}/members"),
            Some(json!(["x"])),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
}

#[tokio::test]
async fn the_own_origin_comes_from_configuration_not_the_host_header() {
    let h = Harness::start(Options {
        vars: vec![("ENVIRONMENT".into(), "development".into())],
        ..Default::default()
    });
    let port = h.url.rsplit(':').next().unwrap().to_string();
    let evil = format!("rebind.evil.example:{port}");
    let res = http()
        .post(format!("{}/v1/dev/token", h.url))
        .header("host", &evil)
        .header("origin", format!("http://{evil}"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 421);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "host_not_allowed");
    // The same request to the runtime's own address works.
    let res = http()
        .post(format!("{}/v1/dev/token", h.url))
        .header("origin", &h.url)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn any_identity_provider_subject_is_a_user_id_and_no_path_is_logged_raw() {
    let h = Harness::start(Options::default());
    let owner = User::new(&h, "idp-owner");
    let s = owner.create_session("subjects").await;
    let email = format!("ann.{}@example.com", unique("e"));
    for sub in [
        format!("google-oauth2|{}", unique("g")),
        email.clone(),
        "José 李".to_string(),
    ] {
        let who = User {
            base: h.url.clone(),
            id: sub.clone(),
            name: format!("{sub} (name)"),
            token: token(&sub, &format!("{sub} (name)")),
        };
        owner.add_member(&s, &who).await;
        // Names and ids beyond ASCII reach the session object intact.
        let (_, hello, _) = who.join(&s, None).await;
        assert_eq!(hello["you"]["id"], sub.as_str(), "{hello}");
        let encoded: String = url_encode(&sub);
        let (status, body) = owner
            .call(
                Method::DELETE,
                &format!("/v1/sessions/{s}/members/{encoded}"),
                None,
            )
            .await;
        assert_eq!(status, 204, "{sub}: {body}");
    }
    let (status, body) = owner
        .call(
            Method::POST,
            &format!("/v1/sessions/{s}/members"),
            Some(json!({"user_id": " padded"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_user_id"))
    );
    // A path nobody serves, holding an e-mail address: logged as its shape.
    let (status, _) = owner
        .call(
            Method::GET,
            &format!("/v1/sessions/{s}/members/{email}/extra"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let log = h.stop_and_read_log();
    assert!(!log.contains(&email), "the e-mail address reached the log");
    assert!(
        log.contains(r#""path":"/v1/sessions/*/members/*/*""#),
        "{log}"
    );
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn a_panic_costs_the_request_and_loses_no_acked_message() {
    let h = Harness::start(Options {
        vars: vec![("ENVIRONMENT".into(), "development".into())],
        ..Default::default()
    });
    let u = User::new(&h, "panic");
    let s = u.create_session("panics").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    for i in 0..5 {
        send_msg(&mut ws, &format!("p{i}"), &format!("before {i}")).await;
    }
    let fault = |body: Value| {
        let url = format!("{}/v1/dev/fault", h.url);
        async move {
            // Longer than the Worker's own wait for the object (10 s).
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap();
            match client.post(url).json(&body).send().await {
                Ok(res) => Some(res.status().as_u16()),
                Err(_) => None,
            }
        }
    };
    // A panic in the Worker: that request fails, the next one is served.
    assert_eq!(fault(json!({"in": "worker"})).await, Some(500));
    let (status, _, _) = get_json(&h.url, "/healthz").await;
    assert_eq!(status, 200);

    // A panic in the session object resets the wasm state of the isolate.
    // Locally the Worker shares that isolate, so the faulting request is
    // lost with it: it never succeeds (503 where the object runs apart).
    let outcome = fault(json!({"in": "session", "session": s})).await;
    assert!(
        matches!(outcome, None | Some(503)),
        "the faulting request must not succeed: {outcome:?}"
    );
    let (status, _, _) = get_json(&h.url, "/healthz").await;
    assert_eq!(status, 200);

    // The same session keeps serving: the open socket still sends, and a
    // new one replays every acked message, in order, once.
    let ack = send_msg(&mut ws, "p5", "after the panic").await;
    assert_eq!(ack["seq"], 6, "{ack}");
    let (mut again, _, replayed) = u.join(&s, Some(0)).await;
    let seqs: Vec<u64> = replayed
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=6).collect::<Vec<u64>>());
    let ack = send_msg(&mut again, "p6", "and again").await;
    assert_eq!(ack["seq"], 7, "{ack}");
    // Faults are development only.
    let prod = Harness::shared();
    let res = http()
        .post(format!("{}/v1/dev/fault", prod.url))
        .json(&json!({"in": "worker"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
}

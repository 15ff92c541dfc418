//! The session core over real WebSockets: every frame type, ordering,
//! durable acks, exactly-once sends, resume, fan-out, and bad input.

mod common;

use common::*;
use futures::SinkExt;
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn session_with_member() -> (User, User, String) {
    let h = Harness::shared();
    let owner = User::new(h, "owner");
    let member = User::new(h, "member");
    let s = owner.create_session("chat").await;
    owner.add_member(&s, &member).await;
    (owner, member, s)
}

#[tokio::test]
async fn hello_names_me_the_session_and_who_is_present() {
    let (owner, member, s) = session_with_member().await;
    let (_a, hello, replayed) = owner.join(&s, None).await;
    assert_eq!(hello["you"]["id"], owner.id.as_str());
    assert_eq!(hello["you"]["name"], owner.name.as_str());
    assert_eq!(hello["session"], s.as_str());
    assert_eq!(hello["last_seq"], 0);
    assert!(replayed.is_empty());
    let present = hello["present"].as_array().unwrap();
    assert_eq!(present.len(), 1);
    assert_eq!(present[0]["user"]["id"], owner.id.as_str());
    assert_eq!(present[0]["devices"], 1);

    let (_b, hello, _) = member.join(&s, None).await;
    let mut ids: Vec<&str> = hello["present"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user"]["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![owner.id.as_str(), member.id.as_str()];
    want.sort();
    assert_eq!(ids, want);
}

#[tokio::test]
async fn a_message_is_acked_and_reaches_every_device_of_every_participant() {
    let (owner, member, s) = session_with_member().await;
    let (mut a1, _, _) = owner.join(&s, None).await;
    let (mut a2, _, _) = owner.join(&s, None).await;
    let (mut b, _, _) = member.join(&s, None).await;

    send_json(
        &mut a1,
        json!({"type": "send", "client_id": "c-1", "text": "hello all"}),
    )
    .await;
    let (ack, before_ack) = recv_type(&mut a1, "ack").await;
    assert_eq!(ack["seq"], 1);
    assert_eq!(ack["duplicate"], false);
    assert!(
        before_ack.iter().all(|f| f["type"] != "message"),
        "ack comes first"
    );
    let (own, _) = recv_type(&mut a1, "message").await;
    for ws in [&mut a2, &mut b] {
        let (m, _) = recv_type(ws, "message").await;
        assert_eq!(m, own, "every socket gets the identical frame");
    }
    assert_eq!(own["seq"], 1);
    assert_eq!(own["id"], ack["id"]);
    assert_eq!(own["client_id"], "c-1");
    assert_eq!(own["text"], "hello all");
    assert_eq!(
        own["author"],
        json!({"id": owner.id, "name": owner.name, "kind": "user"})
    );
    assert!(own["created_at"].as_i64().unwrap() > 0);
    assert_eq!(own["reply_to"], Value::Null);

    // Durable before the ack: the history endpoint already has it.
    let (status, page) = member
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["messages"][0]["text"], "hello all");
}

#[tokio::test]
async fn concurrent_senders_get_strictly_increasing_seqs_seen_identically_by_all() {
    let (owner, member, s) = session_with_member().await;
    let (mut a, _, _) = owner.join(&s, None).await;
    let (mut b, _, _) = member.join(&s, None).await;
    let (mut watcher, _, _) = owner.join(&s, None).await;
    const N: usize = 30;
    // Fire everything without waiting, from two users, so batches interleave.
    for i in 0..N {
        send_json(
            &mut a,
            json!({"type": "send", "client_id": format!("a{i}"), "text": format!("a{i}")}),
        )
        .await;
        send_json(
            &mut b,
            json!({"type": "send", "client_id": format!("b{i}"), "text": format!("b{i}")}),
        )
        .await;
    }
    let mut seen = Vec::new();
    while seen.len() < 2 * N {
        let (m, _) = recv_type(&mut watcher, "message").await;
        seen.push((
            m["seq"].as_u64().unwrap(),
            m["text"].as_str().unwrap().to_string(),
        ));
    }
    let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        (1..=(2 * N) as u64).collect::<Vec<_>>(),
        "gap-free, in order"
    );
    // Each sender's own messages keep their send order.
    for p in ["a", "b"] {
        let mine: Vec<&String> = seen
            .iter()
            .map(|(_, t)| t)
            .filter(|t| t.starts_with(p))
            .collect();
        let want: Vec<String> = (0..N).map(|i| format!("{p}{i}")).collect();
        assert_eq!(mine, want.iter().collect::<Vec<_>>());
    }
    // The other receivers saw exactly the same sequence.
    for ws in [&mut a, &mut b] {
        let mut theirs = Vec::new();
        while theirs.len() < 2 * N {
            let (m, _) = recv_type(ws, "message").await;
            theirs.push((
                m["seq"].as_u64().unwrap(),
                m["text"].as_str().unwrap().to_string(),
            ));
        }
        assert_eq!(theirs, seen);
    }
}

#[tokio::test]
async fn resending_a_client_id_returns_the_original_ack_and_stores_nothing_new() {
    let (owner, member, s) = session_with_member().await;
    let (mut a, _, _) = owner.join(&s, None).await;
    let first = send_msg(&mut a, "retry-me", "once").await;
    assert_eq!(first["duplicate"], false);
    // A retry after reconnecting, even with different text.
    drop(a);
    let (mut a, _, _) = owner.join(&s, None).await;
    let (mut b, _, _) = member.join(&s, None).await;
    let again = send_msg(&mut a, "retry-me", "once (retry)").await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["seq"], first["seq"]);
    assert_eq!(again["id"], first["id"]);
    assert_no_frame_of(&mut b, "message", 500).await;
    // Another user may use the same client id: ids are per author.
    let other = send_msg(&mut b, "retry-me", "mine").await;
    assert_eq!(other["duplicate"], false);
    assert_eq!(other["seq"], 2);

    assert_eq!(owner.history_texts(&s).await, ["once", "mine"]);
}

#[tokio::test]
async fn resume_replays_everything_after_seq_in_order_before_live_traffic() {
    let (owner, member, s) = session_with_member().await;
    let (mut a, _, _) = owner.join(&s, None).await;
    // More than one replay page (100).
    for i in 1..=250 {
        send_json(
            &mut a,
            json!({"type": "send", "client_id": format!("m{i}"), "text": format!("m{i}")}),
        )
        .await;
    }
    for _ in 0..250 {
        recv_type(&mut a, "ack").await;
    }
    let (mut b, hello, replayed) = member.join(&s, Some(37)).await;
    assert_eq!(hello["last_seq"], 250);
    let seqs: Vec<u64> = replayed
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (38..=250).collect::<Vec<_>>());
    assert_eq!(replayed[0]["text"], "m38");
    // Live traffic follows, with nothing repeated.
    send_msg(&mut a, "live", "live one").await;
    let (m, skipped) = recv_type(&mut b, "message").await;
    assert!(skipped.iter().all(|f| f["type"] != "message"));
    assert_eq!(m["seq"], 251);
}

#[tokio::test]
async fn resume_while_others_are_sending_has_no_gaps_or_duplicates() {
    let (owner, member, s) = session_with_member().await;
    let (mut a, _, _) = owner.join(&s, None).await;
    for i in 0..120 {
        send_json(
            &mut a,
            json!({"type": "send", "client_id": format!("p{i}"), "text": "x"}),
        )
        .await;
    }
    // Connect mid-stream, then keep sending.
    let mut b = connect(&member.ws_url(&s, Some(0)).await).await;
    for i in 120..240 {
        send_json(
            &mut a,
            json!({"type": "send", "client_id": format!("p{i}"), "text": "x"}),
        )
        .await;
    }
    let mut seqs = Vec::new();
    let mut synced = false;
    while seqs.len() < 240 {
        let f = recv(&mut b).await;
        match f["type"].as_str().unwrap() {
            "message" => seqs.push(f["seq"].as_u64().unwrap()),
            "synced" => {
                assert!(!synced);
                synced = true;
                assert_eq!(f["last_seq"].as_u64().unwrap(), *seqs.last().unwrap_or(&0));
            }
            _ => {}
        }
    }
    assert!(synced);
    assert_eq!(seqs, (1..=240).collect::<Vec<_>>());
    assert_no_frame_of(&mut b, "message", 300).await;
}

#[tokio::test]
async fn edit_and_delete_are_author_only_and_reflected_everywhere() {
    let (owner, member, s) = session_with_member().await;
    let (mut a, _, _) = owner.join(&s, None).await;
    let (mut b, _, _) = member.join(&s, None).await;
    let seq = send_msg(&mut a, "e1", "typo").await["seq"]
        .as_u64()
        .unwrap();

    send_json(
        &mut b,
        json!({"type": "edit", "seq": seq, "text": "hijack"}),
    )
    .await;
    let (err, _) = recv_type(&mut b, "error").await;
    assert_eq!(err["code"], "forbidden");
    send_json(&mut b, json!({"type": "delete", "seq": seq})).await;
    let (err, _) = recv_type(&mut b, "error").await;
    assert_eq!(err["code"], "forbidden");

    send_json(&mut a, json!({"type": "edit", "seq": seq, "text": "fixed"})).await;
    for ws in [&mut a, &mut b] {
        let (e, _) = recv_type(ws, "edited").await;
        assert_eq!(e["seq"], seq);
        assert_eq!(e["text"], "fixed");
        assert!(e["edited_at"].as_i64().unwrap() > 0);
    }
    let (_, page) = owner
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(page["messages"][0]["text"], "fixed");
    assert!(page["messages"][0]["edited_at"].is_i64());

    send_json(&mut a, json!({"type": "delete", "seq": seq})).await;
    for ws in [&mut a, &mut b] {
        let (d, _) = recv_type(ws, "deleted").await;
        assert_eq!(d["seq"], seq);
    }
    let (_, page) = member
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    let m = &page["messages"][0];
    assert_eq!(m["deleted"], true);
    assert_eq!(m["text"], "");
    assert_eq!(m["seq"], seq, "the tombstone keeps its place");

    send_json(
        &mut a,
        json!({"type": "edit", "seq": seq, "text": "zombie"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut a, "error").await.0["code"],
        "message_deleted"
    );
    send_json(
        &mut a,
        json!({"type": "edit", "seq": 999, "text": "nothing"}),
    )
    .await;
    assert_eq!(recv_type(&mut a, "error").await.0["code"], "not_found");
}

#[tokio::test]
async fn reactions_are_broadcast_and_kept_in_history() {
    let (owner, member, s) = session_with_member().await;
    let (mut a, _, _) = owner.join(&s, None).await;
    let (mut b, _, _) = member.join(&s, None).await;
    let seq = send_msg(&mut a, "r1", "react to me").await["seq"]
        .as_u64()
        .unwrap();

    send_json(
        &mut b,
        json!({"type": "react", "seq": seq, "emoji": "👍", "action": "add"}),
    )
    .await;
    for ws in [&mut a, &mut b] {
        let (r, _) = recv_type(ws, "reaction").await;
        assert_eq!(r["seq"], seq);
        assert_eq!(r["emoji"], "👍");
        assert_eq!(r["action"], "add");
        assert_eq!(r["user"]["id"], member.id.as_str());
    }
    send_json(
        &mut a,
        json!({"type": "react", "seq": seq, "emoji": "👍", "action": "add"}),
    )
    .await;
    for ws in [&mut a, &mut b] {
        assert_eq!(
            recv_type(ws, "reaction").await.0["user"]["id"],
            owner.id.as_str()
        );
    }
    let (_, page) = owner
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    let mut users: Vec<String> = page["messages"][0]["reactions"][0]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .collect();
    users.sort();
    let mut want = vec![owner.id.clone(), member.id.clone()];
    want.sort();
    assert_eq!(users, want);

    send_json(
        &mut b,
        json!({"type": "react", "seq": seq, "emoji": "👍", "action": "remove"}),
    )
    .await;
    assert_eq!(recv_type(&mut a, "reaction").await.0["action"], "remove");
    let (_, page) = owner
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(
        page["messages"][0]["reactions"][0]["users"],
        json!([owner.id])
    );

    send_json(
        &mut b,
        json!({"type": "react", "seq": 777, "emoji": "👍", "action": "add"}),
    )
    .await;
    assert_eq!(recv_type(&mut b, "error").await.0["code"], "not_found");
}

#[tokio::test]
async fn typing_reaches_others_throttled_and_never_stored() {
    let (owner, member, s) = session_with_member().await;
    let (mut a1, _, _) = owner.join(&s, None).await;
    let (mut a2, _, _) = owner.join(&s, None).await;
    let (mut b, _, _) = member.join(&s, None).await;
    send_json(&mut a1, json!({"type": "typing"})).await;
    let (t, _) = recv_type(&mut b, "typing").await;
    assert_eq!(t["user"], json!({"id": owner.id, "name": owner.name}));
    // Within the throttle window (2 s default) a second one is not relayed.
    send_json(&mut a1, json!({"type": "typing"})).await;
    assert_no_frame_of(&mut b, "typing", 500).await;
    // The typist's own devices are not told.
    assert_no_frame_of(&mut a2, "typing", 100).await;
    let (_, page) = owner
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(page["messages"], json!([]));
}

#[tokio::test]
async fn read_positions_are_broadcast_persisted_and_only_move_forward() {
    let (owner, member, s) = session_with_member().await;
    let (mut a, _, _) = owner.join(&s, None).await;
    let (mut b, _, _) = member.join(&s, None).await;
    for i in 0..3 {
        send_msg(&mut a, &format!("rd{i}"), "x").await;
    }
    send_json(&mut b, json!({"type": "read", "seq": 2})).await;
    for ws in [&mut a, &mut b] {
        let (r, _) = recv_type(ws, "receipt").await;
        assert_eq!(r["user"]["id"], member.id.as_str());
        assert_eq!(r["seq"], 2);
    }
    // Backwards is ignored; past the end is clamped to the last message.
    send_json(&mut b, json!({"type": "read", "seq": 1})).await;
    assert_no_frame_of(&mut a, "receipt", 400).await;
    send_json(&mut b, json!({"type": "read", "seq": 99})).await;
    assert_eq!(recv_type(&mut a, "receipt").await.0["seq"], 3);

    let (_, hello, _) = owner.join(&s, None).await;
    assert_eq!(hello["reads"], json!([{"user_id": member.id, "seq": 3}]));
}

#[tokio::test]
async fn ping_gets_pong() {
    let (owner, _, s) = session_with_member().await;
    let (mut a, _, _) = owner.join(&s, None).await;
    // The exact frame is answered by the runtime's auto-response…
    a.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    assert_eq!(recv(&mut a).await, json!({"type": "pong"}));
    // …and any other spelling by the object.
    a.send(Message::text(r#"{ "type" : "ping" }"#))
        .await
        .unwrap();
    assert_eq!(recv(&mut a).await, json!({"type": "pong"}));
}

#[tokio::test]
async fn presence_announces_joins_and_leaves_with_device_counts() {
    let (owner, member, s) = session_with_member().await;
    let (mut a, _, _) = owner.join(&s, None).await;
    let (b1, _, _) = member.join(&s, None).await;
    let (p, _) = recv_type(&mut a, "presence").await;
    assert_eq!(p["status"], "joined");
    assert_eq!(p["user"]["id"], member.id.as_str());
    assert_eq!(p["devices"], 1);
    let (b2, _, _) = member.join(&s, None).await;
    assert_eq!(recv_type(&mut a, "presence").await.0["devices"], 2);
    drop(b2);
    let (p, _) = recv_type(&mut a, "presence").await;
    assert_eq!(
        (p["status"].as_str(), p["devices"].as_u64()),
        (Some("left"), Some(1))
    );
    drop(b1);
    let (p, _) = recv_type(&mut a, "presence").await;
    assert_eq!(
        (p["status"].as_str(), p["devices"].as_u64()),
        (Some("left"), Some(0))
    );
}

#[tokio::test]
async fn bad_frames_get_error_codes_and_the_socket_stays_usable() {
    let (owner, _, s) = session_with_member().await;
    let (mut a, _, _) = owner.join(&s, None).await;
    let long = "x".repeat(4001);
    let cases: Vec<(String, &str)> = vec![
        ("{nope".into(), "invalid_json"),
        (r#"{"type":"shout"}"#.into(), "unknown_type"),
        (r#"{"type":"send","text":"no id"}"#.into(), "invalid_frame"),
        (
            r#"{"type":"edit","seq":"one","text":"x"}"#.into(),
            "invalid_frame",
        ),
        (
            json!({"type": "send", "client_id": "big", "text": long}).to_string(),
            "text_too_long",
        ),
        (
            r#"{"type":"send","client_id":"e","text":"  "}"#.into(),
            "text_empty",
        ),
        (
            r#"{"type":"send","client_id":"has space","text":"x"}"#.into(),
            "invalid_client_id",
        ),
        (
            r#"{"type":"react","seq":1,"emoji":"","action":"add"}"#.into(),
            "invalid_emoji",
        ),
        (r#"{"type":"read","seq":0}"#.into(), "invalid_seq"),
    ];
    for (frame, code) in cases {
        a.send(Message::text(frame.clone())).await.unwrap();
        let e = recv(&mut a).await;
        assert_eq!(e["type"], "error", "{frame}");
        assert_eq!(e["code"], code, "{frame} -> {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // An error about a send names its client id, so the outbox can match it.
    a.send(Message::text(
        json!({"type": "send", "client_id": "big2", "text": "y".repeat(5000)}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(recv(&mut a).await["client_id"], "big2");
    a.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(recv(&mut a).await["code"], "binary_not_supported");
    // Still open and working.
    assert_eq!(send_msg(&mut a, "after-errors", "fine").await["seq"], 1);
}

#[tokio::test]
async fn a_frame_over_the_size_limit_closes_with_1009() {
    let h = Harness::start(Options {
        vars: vec![("MAX_FRAME_BYTES".into(), "1024".into())],
        ..Default::default()
    });
    let u = User::new(&h, "big");
    let s = u.create_session("big").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_json(
        &mut ws,
        json!({"type": "send", "client_id": "c", "text": "x".repeat(2000)}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, Some(1009));
}

#[tokio::test]
async fn sockets_over_the_session_limit_are_refused_with_session_full() {
    let h = Harness::start(Options {
        vars: vec![("MAX_SOCKETS_PER_SESSION".into(), "2".into())],
        ..Default::default()
    });
    let u = User::new(&h, "full");
    let s = u.create_session("full").await;
    let (_a, _, _) = u.join(&s, None).await;
    let (_b, _, _) = u.join(&s, None).await;
    let mut c = connect(&u.ws_url(&s, None).await).await;
    let e = recv(&mut c).await;
    assert_eq!(e["type"], "error");
    assert_eq!(e["code"], "session_full");
    assert_eq!(close_code(&mut c).await, Some(1013));
}

#[tokio::test]
async fn upgrades_without_valid_access_are_refused() {
    let h = Harness::shared();
    let owner = User::new(h, "o");
    let stranger = User::new(h, "stranger");
    let s = owner.create_session("private").await;
    let base = h.url.replacen("http", "ws", 1);
    let (status, body) = refused_upgrade(&format!("{base}/v1/sessions/{s}/ws")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_missing"))
    );
    // Tokens in URLs are not accepted (they leak into logs and histories).
    let (status, body) =
        refused_upgrade(&format!("{base}/v1/sessions/{s}/ws?token={}", owner.token)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_missing"))
    );
    let (status, body) =
        refused_upgrade_as(&stranger.plain_ws_url(&s, None), Some("abc.def.ghi")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_malformed"))
    );
    let (status, _) =
        refused_upgrade_as(&stranger.plain_ws_url(&s, None), Some(&stranger.token)).await;
    assert_eq!(status, 404, "a stranger cannot tell the session exists");
    let (status, body) =
        refused_upgrade(&format!("{}&after=x", owner.ws_url(&s, None).await)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_seq")),
        "{body}"
    );
}

#[tokio::test]
async fn acked_messages_survive_a_runtime_restart_and_clients_resume() {
    let dir = temp_dir("restart");
    let opts = Options {
        persist: Some(dir),
        ..Default::default()
    };
    let first = Harness::start(opts.clone());
    let u = User::new(&first, "durable");
    let s = u.create_session("durable").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    for i in 1..=20 {
        assert_eq!(
            send_msg(&mut ws, &format!("d{i}"), &format!("d{i}")).await["seq"],
            i
        );
    }
    drop(ws);
    assert_eq!(first.terminate(), Some(0));

    let second = Harness::start(opts);
    let u = User {
        base: second.url.clone(),
        ..u
    };
    let (mut ws, hello, replayed) = u.join(&s, Some(5)).await;
    assert_eq!(hello["last_seq"], 20);
    let texts: Vec<&str> = replayed
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, (6..=20).map(|i| format!("d{i}")).collect::<Vec<_>>());
    // A send that was not acked before the restart is retried and lands once.
    let ack = send_msg(&mut ws, "d20", "d20").await;
    assert_eq!(
        (ack["seq"].as_u64(), ack["duplicate"].as_bool()),
        (Some(20), Some(true))
    );
    assert_eq!(send_msg(&mut ws, "d21", "d21").await["seq"], 21);
}

#[tokio::test]
async fn non_browser_clients_authenticate_the_upgrade_with_a_bearer_header() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let (owner, _, s) = session_with_member().await;
    let url = format!(
        "{}/v1/sessions/{s}/ws",
        owner.base.replacen("http", "ws", 1)
    );
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", owner.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let hello = recv(&mut ws).await;
    assert_eq!(hello["you"]["id"], owner.id.as_str());
}

#[tokio::test]
async fn messages_past_the_per_user_rate_are_refused_and_the_socket_survives() {
    let h = Harness::start(Options {
        vars: vec![
            ("RATE_MESSAGES_PER_MINUTE".into(), "30".into()),
            ("RATE_MESSAGES_BURST".into(), "3".into()),
            ("METRICS_TOKEN".into(), "metrics-token-0123456789".into()),
        ],
        ..Default::default()
    });
    let u = User::new(&h, "chatty");
    let other = User::new(&h, "calm");
    let s = u.create_session("limits").await;
    u.add_member(&s, &other).await;
    let (mut a, _, _) = u.join(&s, None).await;
    let (mut b, _, _) = other.join(&s, None).await;
    let err = exhaust_message_burst(&mut a, "ok", 3, "too-many").await;
    assert_eq!(err["client_id"], "too-many");
    let wait = err["retry_after_ms"].as_u64().unwrap();
    assert!(
        wait > 0 && wait <= 2000,
        "at 30/min a token comes every 2 s: {wait}"
    );
    // Limits are per user: others are unaffected.
    assert_eq!(send_msg(&mut b, "b0", "fine").await["duplicate"], false);
    // After the wait the same client id goes through (it was never stored).
    tokio::time::sleep(std::time::Duration::from_millis(wait + 50)).await;
    let ack = send_msg(&mut a, "too-many", "x").await;
    assert_eq!(ack["duplicate"], false);

    let samples = h.metrics("metrics-token-0123456789").await;
    let limited: Vec<f64> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == "confab_rate_limited_total"
                && l.get("scope").map(String::as_str) == Some("messages")
        })
        .map(|(_, _, v)| *v)
        .collect();
    assert_eq!(limited, [1.0]);
}

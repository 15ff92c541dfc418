//! Behaviours the docs promise that no other test exercised: one assistant
//! turn at a time, provider timeouts, erasure down to the last row,
//! `persist_failed`, admin roles from configuration, the shipped rate-limit
//! defaults, and prompt assembly.

mod common;

use common::llm::*;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The user texts of a recorded OpenAI request, in order.
fn user_texts(request: &Value) -> Vec<String> {
    request["body"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn messages_sent_during_a_reply_get_exactly_one_follow_up_turn() {
    let model = unique("one-turn");
    let h = runtime(&model, &[]);
    // The first reply streams slowly (40 pieces, 30 ms apart).
    h.script(&model, json!([{"repeat": 40, "delay_ms": 30}]))
        .await;
    let u = User::new(&h, "one-turn");
    let s = u.create_session("turns").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_msg(&mut ws, "q1", "first question").await;
    recv_type(&mut ws, "delta").await;
    // Mid-reply: two more messages.
    send_msg(&mut ws, "q2", "second thought").await;
    send_msg(&mut ws, "q3", "third thought").await;
    let mut replies = 0;
    while replies < 2 {
        let f = recv(&mut ws).await;
        if f["type"] == "message" && f["author"]["kind"] == "assistant" {
            replies += 1;
        }
    }
    assert_no_frame_of(&mut ws, "turn", 1000).await;
    let requests = h.standin_requests(Some(&model)).await;
    assert_eq!(requests.len(), 2, "one turn, then one follow-up");
    let follow_up = user_texts(&requests[1]);
    let tail: Vec<&str> = follow_up
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(String::as_str)
        .collect();
    assert!(
        tail[0].ends_with("second thought") && tail[1].ends_with("third thought"),
        "the follow-up answers both: {follow_up:?}"
    );
}

#[tokio::test]
async fn a_provider_that_stalls_mid_stream_times_out_and_the_partial_reply_is_kept() {
    let model = unique("idle");
    let h = runtime(&model, &[("LLM_IDLE_TIMEOUT_MS", "400")]);
    h.script(&model, json!([{"stall_after": 2}])).await;
    let u = User::new(&h, "idle");
    let s = u.create_session("stall").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_msg(&mut ws, "q1", "hello").await;
    let (err, _) = recv_type(&mut ws, "error").await;
    assert_eq!(err["code"], "provider_timeout", "{err}");
    let reply = loop {
        let f = recv(&mut ws).await;
        if f["type"] == "message" && f["author"]["kind"] == "assistant" {
            break f;
        }
    };
    assert!(!reply["text"].as_str().unwrap().is_empty(), "{reply}");
    assert_eq!(reply["turn"]["incomplete"], true, "{reply}");
    let (_, page) = u
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(page["messages"][1]["turn"]["incomplete"], true, "{page}");
}

#[tokio::test]
async fn a_provider_that_never_answers_times_out_and_nothing_is_stored() {
    let model = unique("connect");
    let h = runtime(
        &model,
        &[("LLM_CONNECT_TIMEOUT_MS", "300"), ("LLM_MAX_RETRIES", "0")],
    );
    h.script(&model, json!([{"hang": true}])).await;
    let u = User::new(&h, "connect");
    let s = u.create_session("hang").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    let started = Instant::now();
    send_msg(&mut ws, "q1", "hello?").await;
    let (err, _) = recv_type(&mut ws, "error").await;
    assert_eq!(err["code"], "provider_timeout", "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let (_, page) = u
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1, "{page}");
}

#[tokio::test]
async fn erasure_removes_every_row_of_the_session() {
    let h = Harness::shared();
    let owner = User::new(h, "erase");
    let member = User::new(h, "erase-member");
    let s = owner.create_session("to erase").await;
    owner.add_member(&s, &member).await;
    let (mut ws, _, _) = owner.join(&s, None).await;
    send_msg(&mut ws, "e1", "one").await;
    send_msg(&mut ws, "e2", "two").await;
    send_json(
        &mut ws,
        json!({"type": "edit", "seq": 1, "text": "one, edited"}),
    )
    .await;
    recv_type(&mut ws, "edited").await;
    send_json(
        &mut ws,
        json!({"type": "react", "seq": 2, "emoji": "👍", "action": "add"}),
    )
    .await;
    recv_type(&mut ws, "reaction").await;
    send_json(&mut ws, json!({"type": "send", "client_id": "e3", "text": "poll?", "poll": {"options": ["a", "b"]}})).await;
    recv_type(&mut ws, "ack").await;
    send_json(&mut ws, json!({"type": "vote", "seq": 3, "choices": [1]})).await;
    recv_type(&mut ws, "poll").await;
    send_json(&mut ws, json!({"type": "read", "seq": 2})).await;
    recv_type(&mut ws, "receipt").await;
    let (mut member_ws, _, _) = member.join(&s, None).await;
    h.replicated(&s).await;
    let tables = [
        ("sessions", "id"),
        ("session_members", "session_id"),
        ("messages", "session_id"),
        ("message_edits", "session_id"),
        ("reactions", "session_id"),
        ("polls", "session_id"),
        ("poll_votes", "session_id"),
        ("read_positions", "session_id"),
        ("replication", "session_id"),
        ("session_metrics", "session_id"),
    ];
    let count = |table: &str, column: &str| {
        let sql = format!("SELECT count(*) AS n FROM {table} WHERE {column} = ?1");
        let s = s.clone();
        // Every shard: nothing of the session may be left anywhere.
        async move { h.sql_sum(&sql, json!([s])).await }
    };
    for (table, column) in tables {
        assert!(count(table, column).await > 0, "{table} had rows to erase");
    }
    let (status, _) = owner
        .call(Method::DELETE, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(status, 204);
    for (table, column) in tables {
        assert_eq!(count(table, column).await, 0, "{table} still has rows");
    }
    // The session log is gone too: open sockets were closed with 4004, and
    // nothing (not a member, not a reconnect, not history) finds it again.
    let closed = loop {
        match next_frame(&mut member_ws, 5).await {
            Some(Message::Close(c)) => break c.map(|c| u16::from(c.code)),
            Some(_) => continue,
            None => break None,
        }
    };
    assert_eq!(closed, Some(4004));
    for who in [&owner, &member] {
        let (status, _) = who
            .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
            .await;
        assert_eq!(status, 404);
        let (status, _) = who
            .call(Method::POST, &format!("/v1/sessions/{s}/tickets"), None)
            .await;
        assert_eq!(status, 404);
    }
}

#[tokio::test]
async fn a_failing_flush_keeps_chat_going_shows_the_lag_and_lands_once() {
    let h = Harness::start(Options {
        vars: vec![
            ("REPLICATION_LAG_READY_SECONDS".into(), "1".into()),
            ("METRICS_TOKEN".into(), "metrics-token-0123456789".into()),
        ],
        ..Default::default()
    });
    let u = User::new(&h, "persist");
    let s = u.create_session("persist").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_msg(&mut ws, "pf-0", "before").await;
    h.replicated(&s).await;
    // Break D1 for messages: every insert now fails inside D1 itself (the
    // session's shard), so every flush of this session fails.
    let shard = h.shard_of(&s).await;
    h.sql_on(
        &shard,
        "CREATE TRIGGER break_messages BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        json!([]),
    )
    .await;
    // Chat does not notice: sends are acked from the session log.
    for i in 1..=5 {
        let ack = send_msg(&mut ws, &format!("pf-{i}"), &format!("during {i}")).await;
        assert_eq!(ack["seq"], i + 1, "{ack}");
    }
    assert_eq!(
        send_msg(&mut ws, "pf-3", "during 3").await["duplicate"],
        true
    );
    // The backlog shows: in the object, in /metrics and in /readyz.
    let ops = User {
        token: token_with_roles("ops-flush", "Ops", &["admin"]),
        ..u.clone()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let state = loop {
        let (_, r) = ops
            .call(
                Method::GET,
                &format!("/v1/admin/sessions/{s}/replication"),
                None,
            )
            .await;
        if r["state"] == "backing_off" && r["failures"].as_u64() >= Some(2) {
            break r;
        }
        assert!(Instant::now() < deadline, "no failing flush: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(state["pending"].as_u64() >= Some(5), "{state}");
    let samples = h.metrics("metrics-token-0123456789").await;
    let depth = samples
        .iter()
        .find(|(name, _, _)| name == "confab_replication_outbox_depth")
        .map(|(_, _, v)| *v);
    assert!(depth >= Some(5.0), "{depth:?}");
    let (status, _, ready) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 200, "chat still works: {ready}");
    assert_eq!(
        (ready["status"].as_str(), ready["degraded"].clone()),
        (Some("degraded"), json!(["replication"]))
    );
    assert!(
        ready["checks"]["replication"]["lag_seconds"].as_f64() >= Some(1.0),
        "{ready}"
    );

    // D1 takes writes again: the backlog drains by itself, once.
    h.sql_on(&shard, "DROP TRIGGER break_messages", json!([]))
        .await;
    h.replicated(&s).await;
    let rows = h
        .sql_on(
            &shard,
            "SELECT seq, client_id FROM messages WHERE session_id = ?1 ORDER BY seq",
            json!([s]),
        )
        .await;
    let got: Vec<(u64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["client_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(u64, String)> = (0..=5).map(|i| (i + 1, format!("pf-{i}"))).collect();
    assert_eq!(got, want, "every message once, in order");
    let (_, _, ready) = get_json(&h.url, "/readyz").await;
    assert_eq!(ready["status"], "ready", "{ready}");
}

#[tokio::test]
async fn the_configured_admin_role_and_roles_claim_grant_admin() {
    let h = Harness::start(Options {
        vars: vec![
            ("ADMIN_ROLE".into(), "desk-lead".into()),
            ("JWT_ROLES_CLAIM".into(), "realm_access.roles".into()),
        ],
        ..Default::default()
    });
    let exp = now_ms() / 1000 + 600;
    let signed = |claims: Value| {
        confab::auth::signer::sign(&format!("hmac:{TEST_SECRET}"), "HS256", None, claims)
    };
    let lead = User {
        token: signed(json!({"sub": "lead-1", "name": "Lee", "exp": exp,
            "realm_access": {"roles": ["desk-lead"]}})),
        ..User::new(&h, "lead")
    };
    // The default role name, in the default claim, means nothing here.
    let pretender = User {
        token: signed(json!({"sub": "pre-1", "name": "Pat", "exp": exp, "roles": ["admin"]})),
        ..User::new(&h, "pretender")
    };
    let (status, _) = lead.call(Method::GET, "/v1/admin/sessions", None).await;
    assert_eq!(status, 200);
    let (status, _) = pretender
        .call(Method::GET, "/v1/admin/sessions", None)
        .await;
    assert_eq!(status, 404);
    // The lead joins someone else's session as an agent.
    let owner = User::new(&h, "lead-owner");
    let s = owner.create_session("help").await;
    let (mut ws, _, _) = User {
        id: "lead-1".into(),
        ..lead.clone()
    }
    .join(&s, None)
    .await;
    send_msg(&mut ws, "a1", "agent here").await;
    let (msg, _) = recv_type(&mut ws, "message").await;
    assert_eq!(msg["author"]["kind"], "agent", "{msg}");
    let (status, _) = pretender
        .call(Method::POST, &format!("/v1/sessions/{s}/tickets"), None)
        .await;
    assert_eq!(status, 404);
}

/// Frames until an `error`, which is returned with the other errors seen.
async fn until_error(ws: &mut Ws) -> Value {
    loop {
        let f = recv(ws).await;
        if f["type"] == "error" {
            return f;
        }
    }
}

#[tokio::test]
async fn the_shipped_rate_limits_hold_and_probes_are_exempt() {
    let h = Harness::start(Options {
        shipped_limits: true,
        ..Default::default()
    });
    let u = User::new(&h, "shipped");
    // Per IP: the shipped binding allows 600 requests per 60-second window,
    // counted in windows aligned to the minute. Start well inside one.
    let into_minute = (now_ms() / 1000) % 60;
    if into_minute > 40 {
        tokio::time::sleep(Duration::from_secs(61 - into_minute as u64)).await;
    }
    let mut ok = 0;
    let refused = loop {
        let res = u.req(Method::GET, "/v1/sessions").send().await.unwrap();
        if res.status().as_u16() == 429 {
            break res;
        }
        assert_eq!(res.status().as_u16(), 200);
        ok += 1;
        assert!(ok <= 600, "more than 600 requests in one window");
    };
    assert_eq!(ok, 600);
    assert_eq!(refused.headers()["retry-after"], "60");
    // Probes, the scrape and preflights are not counted against it.
    let (status, _, _) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 200);
    let (status, _, _) = get_json(&h.url, "/healthz").await;
    assert_eq!(status, 200);
    let scrape = http()
        .get(format!("{}/metrics", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        scrape.status().as_u16(),
        401,
        "refused for its token, not its rate"
    );
    let preflight = http()
        .request(Method::OPTIONS, format!("{}/v1/sessions", h.url))
        .header("origin", &h.url)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
}

#[tokio::test]
async fn the_shipped_per_user_budgets_hold() {
    let h = Harness::start(Options {
        shipped_limits: true,
        ..Default::default()
    });
    let u = User::new(&h, "budgets");
    let s = u.create_session("budgets").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    // Sends: a burst of 20 (RATE_MESSAGES_BURST), then refused.
    let err = exhaust_message_burst(&mut ws, "b", 20, "b20").await;
    assert_eq!(err["client_id"], "b20");
    // Other writes: a burst of 30 (RATE_ACTIONS_BURST), then refused.
    for _ in 0..30 {
        send_json(&mut ws, json!({"type": "read", "seq": 1})).await;
    }
    send_json(&mut ws, json!({"type": "read", "seq": 1})).await;
    let err = until_error(&mut ws).await;
    assert_eq!(err["code"], "rate_limited", "the 31st, not earlier: {err}");
    assert!(err.get("client_id").is_none_or(Value::is_null), "{err}");
}

#[tokio::test]
async fn the_prompt_is_assembled_from_configuration() {
    let model = unique("prompt");
    let h = runtime(
        &model,
        &[
            (
                "ASSISTANT_SYSTEM_PROMPT",
                "You are Ada, the billing helper.",
            ),
            ("ASSISTANT_NAME", "Ada"),
            ("LLM_MAX_OUTPUT_TOKENS", "77"),
            // The smallest budget: room for the system prompt and the two
            // newest exchanges, not for the long first one.
            ("PROMPT_TOKEN_BUDGET", "100"),
        ],
    );
    let u = User::new(&h, "prompt");
    let s = u.create_session("prompt").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    let oldest = format!("oldest message that will not fit {}", "x".repeat(300));
    let texts = [oldest.as_str(), "middle one", "newest question"];
    for (i, t) in texts.iter().enumerate() {
        send_msg(&mut ws, &format!("p{i}"), t).await;
        let reply = until_reply(&mut ws).await;
        assert_eq!(reply.last().unwrap()["author"]["name"], "Ada");
    }
    let requests = h.standin_requests(Some(&model)).await;
    let last = &requests.last().unwrap()["body"];
    assert_eq!(last["max_tokens"], 77, "{last}");
    let messages = last["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages[0]["content"], "You are Ada, the billing helper.");
    let users = user_texts(&requests.last().unwrap().clone());
    assert!(
        users.last().unwrap().ends_with("newest question"),
        "{users:?}"
    );
    assert!(users.iter().any(|t| t.ends_with("middle one")), "{users:?}");
    assert!(
        !users.iter().any(|t| t.contains("oldest message")),
        "the budget left the oldest turn out: {users:?}"
    );
}

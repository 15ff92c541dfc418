//! The AI assistant end to end: the worker calls the stand-in LLM over real
//! HTTP, streams the reply to every socket, and records it.

mod common;

use common::llm::*;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

fn deltas(frames: &[Value]) -> Vec<(u64, String)> {
    frames
        .iter()
        .filter(|f| f["type"] == "delta")
        .map(|f| {
            (
                f["index"].as_u64().unwrap(),
                f["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_turn_streams_identically_to_three_sockets_and_is_recorded_with_usage() {
    let model = unique("m");
    let h = runtime(&model, &[]);
    let owner = User::new(&h, "asker");
    let member = User::new(&h, "watcher");
    let s = owner.create_session("help").await;
    owner.add_member(&s, &member).await;
    let (mut a1, _, _) = owner.join(&s, None).await;
    let (mut a2, _, _) = owner.join(&s, None).await;
    let (mut b, _, _) = member.join(&s, None).await;
    send_msg(&mut a1, "q1", "where is my order?").await;

    let mut all = Vec::new();
    for ws in [&mut a1, &mut a2, &mut b] {
        all.push(until_reply(ws).await);
    }
    let want = format!(
        "Stand-in assistant here. You said: {}: where is my order?",
        owner.name
    );
    let first = deltas(&all[0]);
    assert!(first.len() > 3, "streamed in pieces");
    assert_eq!(
        first.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (0..first.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(
        first.iter().map(|(_, t)| t.as_str()).collect::<String>(),
        want
    );
    for frames in &all {
        assert_eq!(deltas(frames), first, "every socket got the same deltas");
        let start = frames
            .iter()
            .find(|f| f["type"] == "turn")
            .expect("a turn frame first");
        assert_eq!(start["text"], "");
        let reply = frames.last().unwrap();
        assert_eq!(reply["text"], want.as_str());
        assert_eq!(reply["id"], start["message_id"]);
        assert_eq!(reply["author"]["name"], "Assistant");
    }
    let reply = all[0].last().unwrap();
    let t = &reply["turn"];
    assert_eq!(
        (t["provider"].as_str(), t["model"].as_str()),
        (Some("openai"), Some(model.as_str()))
    );
    assert!(
        t["tokens_in"].as_u64().unwrap() > 0 && t["tokens_out"].as_u64().unwrap() > 0,
        "{t}"
    );
    assert_eq!(
        (t["finish_reason"].as_str(), t["incomplete"].as_bool()),
        (Some("stop"), Some(false))
    );
    let (latency, ttft) = (t["latency_ms"].as_u64(), t["ttft_ms"].as_u64());
    assert!(
        matches!((latency, ttft), (Some(l), Some(f)) if l >= f),
        "both timings recorded, the whole reply no faster than its first token: {t}"
    );

    // The provider got the system prompt and the conversation.
    let sent = &h.standin_requests(Some(&model)).await[0]["body"];
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["stream"], true);
    // Recorded: in history, and in the session's and the user's totals.
    let (_, page) = owner
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(page["messages"][1]["turn"], *t);
    // The totals are D1's replicated copy.
    h.replicated(&s).await;
    let totals = &h
        .session_sql(
            &s,
            "SELECT tokens_in, tokens_out, turns FROM sessions WHERE id = ?1",
            json!([s]),
        )
        .await[0];
    assert_eq!(totals["turns"], 1);
    assert_eq!(totals["tokens_out"], t["tokens_out"]);
    let daily = h
        .sql(
            "SELECT tokens_in, tokens_out, turns FROM usage_daily WHERE user_id = ?1",
            json!([owner.id]),
        )
        .await;
    assert_eq!(daily[0]["tokens_in"], t["tokens_in"]);
}

#[tokio::test]
async fn a_socket_that_reconnects_mid_turn_gets_the_text_so_far_then_the_rest() {
    let model = unique("m");
    let h = runtime(&model, &[]);
    h.script(&model, json!([{"repeat": 120, "delay_ms": 40}]))
        .await;
    let u = User::new(&h, "flaky");
    let s = u.create_session("resume").await;
    let (mut a, _, _) = u.join(&s, None).await;
    let (mut b, _, _) = u.join(&s, None).await;
    let seq = send_msg(&mut a, "q", "talk a lot").await["seq"]
        .as_u64()
        .unwrap();
    // b sees a few deltas, then drops.
    let mut got = 0;
    while got < 5 {
        if recv(&mut b).await["type"] == "delta" {
            got += 1;
        }
    }
    drop(b);
    let (mut b, _, replayed) = u.join(&s, Some(seq - 1)).await;
    assert_eq!(replayed.len(), 1, "the question is replayed");
    let snapshot = recv(&mut b).await;
    assert_eq!(snapshot["type"], "turn", "{snapshot}");
    assert!(snapshot["index"].as_u64().unwrap() >= 5);
    let rest = until_reply(&mut b).await;
    let later = deltas(&rest);
    let from = snapshot["index"].as_u64().unwrap();
    assert_eq!(
        later.first().map(|d| d.0),
        Some(from),
        "no gap after the snapshot"
    );
    assert_eq!(
        later.iter().map(|d| d.0).collect::<Vec<_>>(),
        (from..from + later.len() as u64).collect::<Vec<_>>()
    );
    let rebuilt = format!(
        "{}{}",
        snapshot["text"].as_str().unwrap(),
        later.iter().map(|d| d.1.as_str()).collect::<String>()
    );
    assert_eq!(rebuilt, rest.last().unwrap()["text"].as_str().unwrap());
    assert_eq!(rebuilt, "lorem ipsum ".repeat(120));
    // The socket that stayed saw the same reply.
    assert_eq!(
        until_reply(&mut a).await.last().unwrap()["text"],
        rebuilt.as_str()
    );
}

#[tokio::test]
async fn stop_aborts_the_reply_and_keeps_the_partial_text_marked_stopped() {
    let model = unique("m");
    let h = runtime(&model, &[]);
    h.script(&model, json!([{"repeat": 200, "delay_ms": 30}]))
        .await;
    let u = User::new(&h, "impatient");
    let s = u.create_session("stop").await;
    let (mut a, _, _) = u.join(&s, None).await;
    send_msg(&mut a, "q", "go on").await;
    let mut got = 0;
    while got < 3 {
        if recv(&mut a).await["type"] == "delta" {
            got += 1;
        }
    }
    send_json(&mut a, json!({"type": "stop"})).await;
    let reply = until_reply(&mut a).await.pop().unwrap();
    let text = reply["text"].as_str().unwrap();
    assert!(
        !text.is_empty() && text.len() < "lorem ipsum ".len() * 200,
        "{text}"
    );
    assert!("lorem ipsum ".repeat(200).starts_with(text));
    assert_eq!(
        (
            reply["turn"]["finish_reason"].as_str(),
            reply["turn"]["incomplete"].as_bool()
        ),
        (Some("stopped"), Some(true))
    );
}

#[tokio::test]
async fn rate_limits_before_the_first_token_are_retried() {
    let model = unique("m");
    let h = runtime(&model, &[]);
    h.script(
        &model,
        json!([{"status": 429, "retry_after": "0"}, {"status": 503}]),
    )
    .await;
    let u = User::new(&h, "patient");
    let s = u.create_session("retry").await;
    let (mut a, _, _) = u.join(&s, None).await;
    send_msg(&mut a, "q", "hello").await;
    let frames = until_reply(&mut a).await;
    assert!(
        frames.iter().all(|f| f["type"] != "error"),
        "retries are silent: {frames:?}"
    );
    assert_eq!(frames.last().unwrap()["turn"]["incomplete"], false);
    assert_eq!(h.standin_requests(Some(&model)).await.len(), 3);
}

#[tokio::test]
async fn a_failing_provider_falls_back_to_the_next_in_the_chain() {
    let model = unique("m");
    let h = runtime(
        &model,
        &[
            ("LLM_PROVIDERS", "openai,anthropic,gemini"),
            ("LLM_MAX_RETRIES", "1"),
        ],
    );
    h.script(&model, json!([{"status": 500}, {"status": 500}]))
        .await;
    h.script(&format!("{model}-a"), json!([{"status": 401}]))
        .await;
    let u = User::new(&h, "unlucky");
    let s = u.create_session("fallback").await;
    let (mut a, _, _) = u.join(&s, None).await;
    send_msg(&mut a, "q", "anyone there?").await;
    let reply = until_reply(&mut a).await.pop().unwrap();
    assert_eq!(reply["turn"]["provider"], "gemini");
    assert!(reply["text"].as_str().unwrap().ends_with("anyone there?"));
    assert_eq!(
        h.standin_requests(Some(&model)).await.len(),
        2,
        "openai: 1 + 1 retry"
    );
    assert_eq!(
        h.standin_requests(Some(&format!("{model}-a"))).await.len(),
        1,
        "auth errors are not retried"
    );
}

#[tokio::test]
async fn failures_after_tokens_are_reported_and_the_partial_reply_kept() {
    let model = unique("m");
    let h = runtime(&model, &[]);
    h.script(&model, json!([{"cut_after": 3}, {"malformed_after": 2}]))
        .await;
    let u = User::new(&h, "cut");
    let s = u.create_session("cut").await;
    let (mut a, _, _) = u.join(&s, None).await;
    for (cid, code, pieces) in [
        ("q1", "provider_stream_broken", 3),
        ("q2", "provider_malformed", 2),
    ] {
        send_msg(&mut a, cid, "hello").await;
        let frames = until_reply(&mut a).await;
        let err = frames
            .iter()
            .find(|f| f["type"] == "error")
            .expect("an error frame");
        assert_eq!(err["code"], code);
        assert!(
            !err.to_string().contains("not json"),
            "no provider text leaks: {err}"
        );
        let reply = frames.last().unwrap();
        assert_eq!(deltas(&frames).len(), pieces);
        assert_eq!(
            (
                reply["turn"]["finish_reason"].as_str(),
                reply["turn"]["incomplete"].as_bool()
            ),
            (Some("error"), Some(true))
        );
        assert_eq!(
            h.standin_requests(Some(&model)).await.len(),
            if cid == "q1" { 1 } else { 2 },
            "never retried after tokens"
        );
    }
}

#[tokio::test]
async fn when_every_provider_fails_clients_get_an_error_and_nothing_is_stored() {
    let model = unique("m");
    let h = runtime(
        &model,
        &[
            ("LLM_MAX_RETRIES", "0"),
            ("LLM_FIRST_TOKEN_TIMEOUT_MS", "300"),
        ],
    );
    h.script(
        &model,
        json!([{"status": 429, "retry_after": "0"}, {"first_token_delay_ms": 3000}]),
    )
    .await;
    let u = User::new(&h, "alone");
    let s = u.create_session("down").await;
    let (mut a, _, _) = u.join(&s, None).await;
    for (cid, code) in [("q1", "provider_rate_limited"), ("q2", "provider_timeout")] {
        send_msg(&mut a, cid, "hello?").await;
        let (err, _) = recv_type(&mut a, "error").await;
        assert_eq!(err["code"], code);
    }
    assert_no_frame_of(&mut a, "message", 500).await;
    let (_, page) = u
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert!(page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["author"]["kind"] == "user"));
}

#[tokio::test]
async fn the_daily_token_budget_is_enforced() {
    let model = unique("m");
    let h = runtime(&model, &[("DAILY_TOKEN_BUDGET", "1")]);
    let u = User::new(&h, "thrifty");
    let s = u.create_session("budget").await;
    let (mut a, _, _) = u.join(&s, None).await;
    send_msg(&mut a, "q1", "first").await;
    until_reply(&mut a).await;
    send_msg(&mut a, "q2", "second").await;
    let (err, skipped) = recv_type(&mut a, "error").await;
    assert_eq!(err["code"], "quota_exceeded");
    assert!(skipped.iter().all(|f| f["type"] != "delta"));
    assert_eq!(h.standin_requests(Some(&model)).await.len(), 1);
}

#[tokio::test]
async fn no_turn_runs_in_human_mode() {
    let model = unique("m");
    let h = runtime(&model, &[]);
    let u = User::new(&h, "human");
    let s = u.create_session("human").await;
    let mut agent = User::new(&h, "human-agent");
    agent.token = token_with_roles(&agent.id, "Agent", &["admin"]);
    let (status, _) = agent
        .call(
            Method::POST,
            &format!("/v1/admin/sessions/{s}/takeover"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (mut a, _, _) = u.join(&s, None).await;
    send_msg(&mut a, "q", "is a person there?").await;
    assert_no_frame_of(&mut a, "turn", 1000).await;
    assert!(h.standin_requests(Some(&model)).await.is_empty());
}

#[tokio::test]
async fn workers_ai_answers_through_the_ai_binding() {
    let model = unique("m");
    let ai_model = format!("@cf/standin/{model}");
    let h = runtime(
        &model,
        &[
            ("LLM_PROVIDERS", "workers_ai,openai"),
            ("WORKERS_AI_MODEL", &ai_model),
            ("LLM_MAX_RETRIES", "0"),
        ],
    );
    let u = User::new(&h, "edge");
    let s = u.create_session("ai").await;
    let (mut a, _, _) = u.join(&s, None).await;
    send_msg(&mut a, "q1", "hello binding").await;
    let frames = until_reply(&mut a).await;
    let reply = frames.last().unwrap();
    assert!(deltas(&frames).len() > 3, "streamed through the binding");
    assert!(reply["text"].as_str().unwrap().ends_with("hello binding"));
    assert_eq!(reply["turn"]["provider"], "workers_ai");
    assert_eq!(reply["turn"]["model"], ai_model.as_str());
    assert!(reply["turn"]["tokens_out"].as_u64().unwrap() > 0);
    let sent = &h.standin_requests(Some(&ai_model)).await[0]["body"];
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["messages"][0]["role"], "system");

    // A failing binding (it rejects) hands over to the next provider.
    h.script(&ai_model, json!([{"status": 500}])).await;
    send_msg(&mut a, "q2", "again").await;
    let reply = until_reply(&mut a).await.pop().unwrap();
    assert_eq!(reply["turn"]["provider"], "openai");
}

#[tokio::test]
async fn a_takeover_during_a_turn_stops_it_and_no_turn_runs_until_release() {
    let model = unique("m");
    let h = runtime(&model, &[]);
    h.script(&model, json!([{"repeat": 200, "delay_ms": 30}]))
        .await;
    let u = User::new(&h, "customer");
    let admin = User {
        token: token_with_roles("agent-7", "Dana (support)", &["admin"]),
        id: "agent-7".into(),
        name: "Dana (support)".into(),
        ..u.clone()
    };
    let s = u.create_session("takeover").await;
    let (mut a, _, _) = u.join(&s, None).await;
    send_msg(&mut a, "q1", "I need a human").await;
    let mut got = 0;
    while got < 3 {
        if recv(&mut a).await["type"] == "delta" {
            got += 1;
        }
    }
    let path = format!("/v1/admin/sessions/{s}/takeover");
    assert_eq!(
        u.call(Method::POST, &path, None).await.0,
        404,
        "admins only"
    );
    let (status, body) = admin.call(Method::POST, &path, None).await;
    assert_eq!(status, 200, "{body}");
    let frames = until_reply(&mut a).await;
    let mode = frames
        .iter()
        .find(|f| f["type"] == "mode")
        .expect("a mode frame");
    assert_eq!(mode["mode"], "human");
    assert_eq!(mode["by"]["name"], "Dana (support)");
    let reply = frames.last().unwrap();
    assert_eq!(
        (
            reply["turn"]["finish_reason"].as_str(),
            reply["turn"]["incomplete"].as_bool()
        ),
        (Some("stopped"), Some(true))
    );
    let (_, got) = u
        .call(Method::GET, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(got["mode"], "human");

    // In human mode nothing is generated.
    send_msg(&mut a, "q2", "hello?").await;
    assert_no_frame_of(&mut a, "turn", 1000).await;
    assert_eq!(h.standin_requests(Some(&model)).await.len(), 1);

    // Released: the assistant answers again.
    let (status, _) = admin
        .call(
            Method::POST,
            &format!("/v1/admin/sessions/{s}/release"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(recv_type(&mut a, "mode").await.0["mode"], "assistant");
    send_msg(&mut a, "q3", "back to you, bot").await;
    let reply = until_reply(&mut a).await.pop().unwrap();
    assert!(reply["text"]
        .as_str()
        .unwrap()
        .ends_with("back to you, bot"));
}

#[tokio::test]
async fn very_long_replies_stream_whole_and_admins_see_the_usage() {
    let model = unique("m");
    let h = runtime(&model, &[]);
    h.script(&model, json!([{"repeat": 3000, "delay_ms": 0}]))
        .await;
    let u = User::new(&h, "reader");
    let s = u.create_session("long").await;
    let (mut a, _, _) = u.join(&s, None).await;
    send_msg(&mut a, "q", "tell me everything").await;
    let frames = until_reply(&mut a).await;
    let reply = frames.last().unwrap();
    let want = "lorem ipsum ".repeat(3000);
    assert_eq!(reply["text"].as_str().unwrap().len(), want.len());
    assert_eq!(
        deltas(&frames)
            .iter()
            .map(|d| d.1.as_str())
            .collect::<String>(),
        want
    );
    let (_, page) = u
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(
        page["messages"][1]["text"].as_str().unwrap().len(),
        want.len()
    );

    let path = format!("/v1/admin/sessions/{s}");
    assert_eq!(u.call(Method::GET, &path, None).await.0, 404, "admins only");
    let admin = User {
        token: token_with_roles("ops", "Ops", &["admin"]),
        ..u.clone()
    };
    // The usage figures are D1's, which has them once the turn is
    // replicated (docs/api.md); without waiting, this read raced the
    // object's flush and passed only when the machine was slow enough.
    h.replicated(&s).await;
    let (status, view) = admin.call(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["session"]["id"], s.as_str());
    let usage = &view["usage"];
    assert_eq!(usage["turns"], 1);
    assert_eq!(usage["tokens_out"], reply["turn"]["tokens_out"]);
    assert_eq!(usage["tokens_in"], reply["turn"]["tokens_in"]);
    assert_eq!(usage["latency_ms"]["max"], reply["turn"]["latency_ms"]);
    assert_eq!(usage["ttft_ms"]["max"], reply["turn"]["ttft_ms"]);
    assert_eq!(usage["incomplete_turns"], 0);
}

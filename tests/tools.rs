//! The assistant's function calls end to end, through the stand-in LLM in
//! each vendor's wire format (Workers AI through the `AI` binding's
//! stand-in) and a stand-in product backend that checks
//! every call's signature with the `standardwebhooks` package: parallel
//! calls, a failing function, one that does not answer in time, calls
//! approved, rejected and left to time out by agents, the built-in
//! `escalate_to_human`, and what users and agents are shown of it all.

mod common;

use common::hooks::{received, set_mode, RECEIVER};
use common::llm::*;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const SECRET: &str = "whsec_Y29uZmFiLXRvb2wtc2lnbmluZy1rZXktMzJieXRlcyE=";
const APPROVAL_MS: &str = "1500";

/// The next `message` frame of kind `kind` (`tool_call`, `tool_result`).
async fn recv_kind(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let (f, _) = recv_type(ws, "message").await;
        if f["kind"] == kind {
            return f;
        }
    }
}

/// `(seq, kind)` of each message of `page` (a history reply or replayed
/// frames), `kind` "message" for people's and the assistant's words.
fn kinds(page: &[Value]) -> Vec<(u64, String)> {
    page.iter()
        .map(|m| {
            let kind = m["kind"].as_str().unwrap_or("message").to_string();
            (m["seq"].as_u64().unwrap(), kind)
        })
        .collect()
}

async fn history(who: &User, s: &str) -> Vec<Value> {
    let path = format!("/v1/sessions/{s}/messages");
    let (status, page) = who.call(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{page}");
    page["messages"].as_array().unwrap().clone()
}

fn http_tool(name: &str, endpoint: &str, extra: Value) -> Value {
    let mut t = json!({
        "name": name, "description": format!("{name} for the user"),
        "parameters": {"type": "object", "properties": {"order": {"type": "string"}}},
        "url": format!("{}/tool/{endpoint}", RECEIVER.url()),
    });
    t.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    t
}

/// A runtime whose profile `shop` offers `tools` through `provider`, with
/// the stand-in product backend's endpoints named after `tag`.
async fn shop(model: &str, provider: &str, tag: &str) -> (Harness, User, User, String) {
    let h = runtime(
        model,
        &[
            ("TOOL_SIGNING_SECRET", SECRET),
            ("TOOL_APPROVAL_TIMEOUT_MS", APPROVAL_MS),
            // The stand-in backend is plain http on loopback.
            ("WEBHOOK_ALLOW_HTTP", "on"),
        ],
    );
    for (name, mode) in [
        ("lookup", "ok"),
        ("broken", "fail"),
        ("slow", "hold"),
        ("refund", "ok"),
    ] {
        set_mode(&format!("{tag}-{name}"), SECRET, mode).await;
    }
    let tools = json!([
        http_tool("lookup_order", &format!("{tag}-lookup"), json!({})),
        http_tool("broken", &format!("{tag}-broken"), json!({})),
        http_tool("slow", &format!("{tag}-slow"), json!({"timeout_ms": 400})),
        http_tool("refund", &format!("{tag}-refund"), json!({"needs_approval": true})),
        {"builtin": "escalate_to_human"},
    ]);
    let admin = User::admin(&h, "ops");
    let profile = json!({"chain": [{"provider": provider}], "tools": tools, "temperature": 0.25});
    let (status, body) = admin
        .call(Method::PUT, "/v1/admin/profiles/shop", Some(profile))
        .await;
    assert_eq!(status, 201, "{body}");
    let user = User::new(&h, "buyer");
    let (status, body) = user
        .call(
            Method::POST,
            "/v1/sessions",
            Some(json!({"profile": "shop"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let s = body["id"].as_str().unwrap().to_string();
    (h, user, admin, s)
}

/// The model the stand-in answers as for `provider` (see `runtime_vars`).
fn model_of(model: &str, provider: &str) -> String {
    match provider {
        "anthropic" => format!("{model}-a"),
        "gemini" => format!("{model}-g"),
        "workers_ai" => format!("{model}-w"),
        _ => model.to_string(),
    }
}

/// The calls' results the model was sent in its second request, by call,
/// read in the vendor's own format.
fn results_in(provider: &str, body: &Value) -> Vec<Value> {
    match provider {
        "openai" | "workers_ai" => body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| m["content"].clone())
            .collect(),
        "anthropic" => body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
            .filter(|b| b["type"] == "tool_result")
            .map(|b| b["content"].clone())
            .collect(),
        _ => body["contents"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["parts"].as_array().cloned().unwrap_or_default())
            .filter(|p| p.get("functionResponse").is_some())
            .map(|p| p["functionResponse"]["response"].clone())
            .collect(),
    }
}

/// Text of a result as any vendor carries it (a string, or an object).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn parallel_calls_round_trip(provider: &str) {
    let model = unique("tl");
    let tag = unique("t");
    let (h, user, admin, s) = shop(&model, provider, &tag).await;
    let m = model_of(&model, provider);
    h.script(
        &m,
        json!([{"tool_calls": [
            {"name": "lookup_order", "arguments": {"order": "A-1"}},
            {"name": "broken", "arguments": {}},
            {"name": "slow", "arguments": {}},
        ], "usage": {"input": 900, "output": 40}}, {"usage": {"input": 1200, "output": 60}}]),
    )
    .await;
    let (mut ws, _, _) = user.join(&s, None).await;
    let (mut agent, _, _) = admin.join(&s, None).await;
    send_msg(&mut ws, "q1", "where is my order?").await;
    let (asked, _) = recv_type(&mut agent, "message").await;
    let q = asked["seq"].as_u64().unwrap();
    // Each call is a message of its own kind, the assistant's, with the
    // next seqs after the question.
    let mut calls = Vec::new();
    for _ in 0..3 {
        calls.push(recv_kind(&mut agent, "tool_call").await);
    }
    let names: Vec<&str> = calls
        .iter()
        .map(|c| c["call"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lookup_order", "broken", "slow"], "{calls:?}");
    assert_eq!(
        kinds(&calls),
        [
            (q + 1, "tool_call".into()),
            (q + 2, "tool_call".into()),
            (q + 3, "tool_call".into())
        ]
    );
    assert_eq!(calls[0]["call"]["arguments"], json!({"order": "A-1"}));
    assert_eq!(calls[0]["author"]["kind"], "assistant");
    let mut results = Vec::new();
    for _ in 0..3 {
        let r = recv_kind(&mut agent, "tool_result").await;
        assert!((q + 4..=q + 6).contains(&r["seq"].as_u64().unwrap()), "{r}");
        results.push(r["result"].clone());
    }
    results.sort_by_key(|r| r["name"].as_str().unwrap().to_string());
    let by = |n: &str| results.iter().find(|r| r["name"] == n).unwrap().clone();
    assert_eq!(by("lookup_order")["is_error"], false);
    let answer: Value =
        serde_json::from_str(by("lookup_order")["content"].as_str().unwrap()).unwrap();
    assert_eq!(
        answer,
        json!({"tool": format!("{tag}-lookup"), "arguments": {"order": "A-1"}})
    );
    assert_eq!(by("broken")["is_error"], true);
    assert!(by("broken")["content"]
        .as_str()
        .unwrap()
        .starts_with("The function failed (HTTP 500)"));
    assert_eq!(
        by("slow")["content"],
        "The function did not answer within 400 ms."
    );
    // The user sees the answer and nothing of the calls.
    let frames = until_reply(&mut ws).await;
    // The answer's record counts both rounds: the one that only asked for
    // calls stored no message of its own.
    let turn = &frames.last().unwrap()["turn"];
    assert_eq!(
        (turn["tokens_in"].as_u64(), turn["tokens_out"].as_u64()),
        (Some(2100), Some(100)),
        "{turn}"
    );
    assert!(frames.iter().all(|f| f["kind"].is_null()), "{frames:?}");
    let answer = frames.last().unwrap()["seq"].as_u64().unwrap();
    assert_eq!(answer, q + 7, "the calls and results took the seqs between");
    // History and resume carry them to agents, in seq order among the
    // rest, and not to the user (whose seqs skip them).
    let expect = |tools: bool| {
        let mut e = vec![(q, "message".to_string())];
        if tools {
            e.extend((1..=3).map(|i| (q + i, "tool_call".to_string())));
            e.extend((4..=6).map(|i| (q + i, "tool_result".to_string())));
        }
        e.push((answer, "message".into()));
        e
    };
    assert_eq!(kinds(&history(&admin, &s).await), expect(true));
    assert_eq!(kinds(&history(&user, &s).await), expect(false));
    let (_, _, replayed) = admin.join(&s, Some(q - 1)).await;
    assert_eq!(kinds(&replayed), expect(true));
    let (_, _, replayed) = user.join(&s, Some(q - 1)).await;
    assert_eq!(kinds(&replayed), expect(false));
    // A seq the user cannot see is no message of theirs to react to.
    send_json(
        &mut ws,
        json!({"type": "react", "seq": q + 1, "emoji": "👍", "action": "add"}),
    )
    .await;
    assert_eq!(recv_type(&mut ws, "error").await.0["code"], "not_found");
    // The backend got a call it could verify, saying who and where.
    let got = received(&format!("{tag}-lookup")).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["verified"], true, "{got:?}");
    assert_eq!(got[0]["body"]["session_id"], s.as_str());
    assert_eq!(got[0]["body"]["user_id"], user.id.as_str());
    assert_eq!(got[0]["body"]["arguments"], json!({"order": "A-1"}));
    // The model was asked again with every result, in its own format.
    let reqs = h.standin_requests(Some(&m)).await;
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    // Every vendor got the profile's functions and temperature (Workers
    // AI's inputs once dropped every field but the messages).
    let first = &reqs[0]["body"];
    let (offered, temperature) = match provider {
        "gemini" => (
            &first["tools"][0]["functionDeclarations"],
            &first["generationConfig"]["temperature"],
        ),
        _ => (&first["tools"], &first["temperature"]),
    };
    assert_eq!(offered.as_array().map(Vec::len), Some(5), "{first}");
    assert_eq!(temperature.as_f64(), Some(0.25), "{first}");
    let sent = results_in(provider, &reqs[1]["body"]);
    assert_eq!(sent.len(), 3, "{}", reqs[1]["body"]);
    assert!(
        text(&sent[0]).contains("A-1") && text(&sent[1]).contains("HTTP 500"),
        "{sent:?}"
    );
    // The next turn's prompt still has them, where they happened: after
    // the question, before the answer they led to.
    send_msg(&mut ws, "q2", "thanks, and?").await;
    until_reply(&mut ws).await;
    let reqs = h.standin_requests(Some(&m)).await;
    assert_eq!(reqs.len(), 3);
    let again = results_in(provider, &reqs[2]["body"]);
    assert_eq!(again.len(), 3, "{}", reqs[2]["body"]);
    assert!(text(&again[0]).contains("A-1"), "{again:?}");
    set_mode(&format!("{tag}-slow"), SECRET, "ok").await;
}

#[tokio::test]
async fn openai_parallel_calls_failing_and_slow_functions() {
    parallel_calls_round_trip("openai").await;
}

#[tokio::test]
async fn anthropic_parallel_calls_failing_and_slow_functions() {
    parallel_calls_round_trip("anthropic").await;
}

#[tokio::test]
async fn gemini_parallel_calls_failing_and_slow_functions() {
    parallel_calls_round_trip("gemini").await;
}

#[tokio::test]
async fn workers_ai_parallel_calls_failing_and_slow_functions() {
    parallel_calls_round_trip("workers_ai").await;
}

#[tokio::test]
async fn calls_needing_approval_are_approved_rejected_or_time_out() {
    let model = unique("ta");
    let tag = unique("a");
    let (h, user, admin, s) = shop(&model, "openai", &tag).await;
    let (mut ws, _, _) = user.join(&s, None).await;
    let (mut agent, _, _) = admin.join(&s, None).await;
    let refund_name = format!("{tag}-refund");
    let refunds = || received(&refund_name);

    // Approved by an agent: made, and the model told what it came to.
    h.script(
        &model,
        json!([{"tool_calls": [{"name": "refund", "arguments": {"order": "A-1"}, "id": "r1"}]}]),
    )
    .await;
    send_msg(&mut ws, "q1", "refund me").await;
    let (asked, _) = recv_type(&mut agent, "approval_request").await;
    assert_eq!(
        (asked["call"]["id"].as_str(), asked["call"]["name"].as_str()),
        (Some("r1"), Some("refund"))
    );
    assert_eq!(asked["call"]["arguments"], json!({"order": "A-1"}));
    let (waiting, _) = recv_type(&mut ws, "awaiting_approval").await;
    assert_eq!(waiting["call_id"], "r1");
    assert!(
        waiting.get("call").is_none(),
        "users are not shown the call: {waiting}"
    );
    // Users may not decide; an unknown call is refused.
    send_json(&mut ws, json!({"type": "approve", "call_id": "r1"})).await;
    assert_eq!(recv_type(&mut ws, "error").await.0["code"], "forbidden");
    send_json(&mut agent, json!({"type": "approve", "call_id": "nope"})).await;
    assert_eq!(
        recv_type(&mut agent, "error").await.0["code"],
        "unknown_call"
    );
    send_json(&mut agent, json!({"type": "approve", "call_id": "r1"})).await;
    let (decided, _) = recv_type(&mut ws, "approval").await;
    assert_eq!(
        (decided["decision"].as_str(), decided["by"]["id"].as_str()),
        (Some("approved"), Some(admin.id.as_str()))
    );
    until_reply(&mut ws).await;
    assert_eq!(refunds().await.len(), 1);

    // Rejected: not made, and the model is told so.
    h.script(
        &model,
        json!([{"tool_calls": [{"name": "refund", "arguments": {"order": "B-2"}, "id": "r2"}]}]),
    )
    .await;
    send_msg(&mut ws, "q2", "refund again").await;
    recv_type(&mut agent, "approval_request").await;
    send_json(&mut agent, json!({"type": "reject", "call_id": "r2"})).await;
    let (decided, _) = recv_type(&mut ws, "approval").await;
    assert_eq!(decided["decision"], "rejected");
    until_reply(&mut ws).await;
    assert_eq!(refunds().await.len(), 1, "a rejected call is not made");
    let reqs = h.standin_requests(Some(&model)).await;
    let told = results_in("openai", &reqs.last().unwrap()["body"]);
    assert_eq!(
        text(told.last().unwrap()),
        "A person declined this call; it was not made."
    );

    // Nobody decides: timed out after TOOL_APPROVAL_TIMEOUT_MS.
    h.script(
        &model,
        json!([{"tool_calls": [{"name": "refund", "arguments": {}, "id": "r3"}]}]),
    )
    .await;
    let asked_at = now_ms();
    send_msg(&mut ws, "q3", "and again").await;
    let (asked, _) = recv_type(&mut agent, "approval_request").await;
    assert!(asked["expires_at"].as_i64().unwrap() >= asked_at + 1500);
    let (decided, _) = recv_type(&mut ws, "approval").await;
    assert_eq!(
        (decided["decision"].as_str(), decided["by"].is_null()),
        (Some("timed_out"), true)
    );
    assert!(now_ms() - asked_at >= 1500);
    until_reply(&mut ws).await;
    assert_eq!(refunds().await.len(), 1);
    let reqs = h.standin_requests(Some(&model)).await;
    let told = results_in("openai", &reqs.last().unwrap()["body"]);
    assert_eq!(
        text(told.last().unwrap()),
        "No one approved this call in time; it was not made."
    );

    // Their messages say what became of them, in the agent's history.
    let decided: Vec<(String, String)> = history(&admin, &s)
        .await
        .iter()
        .filter(|m| m["kind"] == "tool_call")
        .map(|m| {
            let c = &m["call"];
            (text(&c["id"]), text(&c["decision"]))
        })
        .collect();
    let want = [("r1", "approved"), ("r2", "rejected"), ("r3", "timed_out")];
    assert_eq!(decided, want.map(|(a, b)| (a.to_string(), b.to_string())));

    // The admin session view lists the calls and what became of them.
    let (status, view) = admin
        .call(Method::GET, &format!("/v1/admin/sessions/{s}"), None)
        .await;
    assert_eq!(status, 200, "{view}");
    let tools = view["tools"].as_array().unwrap();
    let decisions: Vec<(&str, &str)> = tools
        .iter()
        .map(|t| {
            (
                t["call_id"].as_str().unwrap(),
                t["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [("r1", "approved"), ("r2", "rejected"), ("r3", "timed_out")]
    );
    assert_eq!(tools[0]["arguments"], json!({"order": "A-1"}));
    assert_eq!(tools[0]["is_error"], false);
    assert!(tools[0]["result"].as_str().unwrap().contains("A-1"));

    // D1 holds them too, as they stand, arguments and results sealed.
    h.replicated(&s).await;
    let rows = h
        .session_sql(
            &s,
            "SELECT call_id, name, arguments, result, is_error, decision, decided_by, done_at,
                    seq, result_seq, shown
               FROM tool_calls WHERE session_id = ?1 ORDER BY at",
            json!([s]),
        )
        .await;
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["call_id"].as_str().unwrap(),
                r["name"].as_str().unwrap(),
                r["decision"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("r1", "refund", "approved"),
            ("r2", "refund", "rejected"),
            ("r3", "refund", "timed_out")
        ]
    );
    assert_eq!(rows[0]["decided_by"], admin.id.as_str());
    assert_eq!(rows[0]["is_error"], 0);
    assert!(rows.iter().all(|r| r["done_at"].is_i64()), "{rows:?}");
    // With their messages' seqs, and not shown to users (this profile).
    for r in &rows {
        let (call, result) = (
            r["seq"].as_u64().unwrap(),
            r["result_seq"].as_u64().unwrap(),
        );
        assert!(call < result && r["shown"] == 0, "{r}");
    }
    let (args, result) = (
        rows[0]["arguments"].as_str().unwrap(),
        rows[0]["result"].as_str().unwrap(),
    );
    assert!(!args.contains("A-1") && !result.contains("A-1"), "{rows:?}");
    // Erasing the session erases them in D1.
    let count = "SELECT count(*) AS n FROM tool_calls WHERE session_id = ?1";
    assert_eq!(h.sql_sum(count, json!([s])).await, 3);
    let (status, _) = user
        .call(Method::DELETE, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(h.sql_sum(count, json!([s])).await, 0);
}

#[tokio::test]
async fn the_assistant_hands_the_conversation_to_a_person() {
    let model = unique("te");
    let tag = unique("e");
    let (h, user, admin, s) = shop(&model, "openai", &tag).await;
    // This profile shows users its calls too.
    let open = json!({"chain": [{"provider": "openai"}], "show_tools": true,
        "tools": [{"builtin": "escalate_to_human"}]});
    let (status, body) = admin
        .call(Method::PUT, "/v1/admin/profiles/shop", Some(open))
        .await;
    assert_eq!(
        (status, body["show_tools"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let (mut ws, _, _) = user.join(&s, None).await;
    h.script(
        &model,
        json!([{"tool_calls": [{"name": "escalate_to_human", "arguments": {}}]}]),
    )
    .await;
    send_msg(&mut ws, "q1", "I want a person").await;
    // The user is shown the call, as a message of its own kind.
    let call = recv_kind(&mut ws, "tool_call").await;
    assert_eq!(call["call"]["name"], "escalate_to_human");
    // The call escalates (the desk changes), then its result is told.
    let (desk, _) = recv_type(&mut ws, "desk").await;
    assert_eq!(
        (desk["status"].as_str(), desk["by"]["id"].as_str()),
        (Some("waiting"), Some("assistant")),
        "{desk}"
    );
    let result = recv_kind(&mut ws, "tool_result").await;
    assert_eq!(result["result"]["is_error"], false, "{result}");
    assert_eq!(result["seq"], call["seq"].as_u64().unwrap() + 1);
    until_reply(&mut ws).await;
    // And has them in history, where they happened.
    let seen: Vec<String> = kinds(&history(&user, &s).await)
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    assert_eq!(seen, ["message", "tool_call", "tool_result", "message"]);
    let (_, view) = user
        .call(Method::GET, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(view["status"], "waiting");
}

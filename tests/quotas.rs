//! Per-user quotas against the real worker: the daily assistant budget is
//! reserved before a turn (so concurrent turns cannot overshoot it), and
//! sessions per day and unspent tickets are capped.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn concurrent_turns_cannot_overshoot_the_daily_budget() {
    // A budget smaller than one reply's estimate (prompt + 512 output
    // tokens): the first turn is granted, every concurrent one refused.
    let h = Harness::start(Options {
        vars: vec![
            ("LLM_PROVIDERS".into(), "openai".into()),
            ("OPENAI_BASE_URL".into(), "{llm_url}/v1".into()),
            ("OPENAI_MODEL".into(), "quota-1".into()),
            ("DAILY_TOKEN_BUDGET".into(), "100".into()),
        ],
        ..Default::default()
    });
    // Slow replies, so all six turns are in flight together.
    h.script("quota-1", json!(vec![json!({"delay_ms": 150}); 6]))
        .await;
    let u = User::new(&h, "quota");
    let mut sockets = Vec::new();
    let mut sessions = Vec::new();
    for i in 0..6 {
        let s = u.create_session(&format!("budget {i}")).await;
        let (ws, _, _) = u.join(&s, None).await;
        sockets.push(ws);
        sessions.push(s);
    }
    for (i, ws) in sockets.iter_mut().enumerate() {
        send_json(
            ws,
            json!({"type": "send", "client_id": format!("q{i}"), "text": "hello"}),
        )
        .await;
    }
    let (mut replies, mut refused) = (0, 0);
    for ws in sockets.iter_mut() {
        loop {
            let f: Value = recv(ws).await;
            if f["type"] == "message" && f["author"]["kind"] == "assistant" {
                replies += 1;
                break;
            }
            if f["type"] == "error" {
                assert_eq!(f["code"], "quota_exceeded", "{f}");
                refused += 1;
                break;
            }
        }
    }
    assert_eq!(
        (replies, refused),
        (1, 5),
        "exactly one turn fits the budget"
    );
    // The granted turn's estimate was swapped for what it really spent
    // (when its reply reached D1).
    for s in &sessions {
        h.replicated(s).await;
    }
    let rows = h
        .sql(
            "SELECT tokens_in + tokens_out AS spent, reserved, turns FROM usage_daily WHERE user_id = ?1",
            json!([u.id]),
        )
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["reserved"], 0, "{rows:?}");
    assert_eq!(rows[0]["turns"], 1, "{rows:?}");
    assert!(rows[0]["spent"].as_i64().unwrap() > 0, "{rows:?}");
    // Settled: only what was really spent counts now (well under the
    // budget), so a later turn is granted and settles in its turn.
    let s = u.create_session("after").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_msg(&mut ws, "q-after", "again").await;
    let reply = loop {
        let f = recv(&mut ws).await;
        assert_ne!(f["type"], "error", "{f}");
        if f["type"] == "message" && f["author"]["kind"] == "assistant" {
            break f;
        }
    };
    assert!(!reply["text"].as_str().unwrap().is_empty());
    h.replicated(&s).await;
    let rows = h
        .sql(
            "SELECT reserved, turns FROM usage_daily WHERE user_id = ?1",
            json!([u.id]),
        )
        .await;
    assert_eq!(
        (&rows[0]["reserved"], &rows[0]["turns"]),
        (&json!(0), &json!(2)),
        "{rows:?}"
    );
}

#[tokio::test]
async fn sessions_per_day_and_unspent_tickets_are_capped() {
    let h = Harness::start(Options {
        vars: vec![
            ("MAX_SESSIONS_PER_USER_PER_DAY".into(), "3".into()),
            ("MAX_TICKETS_PER_USER".into(), "3".into()),
        ],
        ..Default::default()
    });
    let u = User::new(&h, "caps");
    for i in 0..3 {
        u.create_session(&format!("s{i}")).await;
    }
    let res = u
        .req(Method::POST, "/v1/sessions")
        .json(&json!({"title": "one too many"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 429);
    let retry = retry_after(&res);
    assert!(
        (1..=86_400).contains(&retry),
        "until the next UTC day: {retry}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "session_quota_exceeded");
    // Another user is not affected.
    User::new(&h, "caps-other").create_session("fine").await;

    let (_, body) = u.call(Method::GET, "/v1/sessions", None).await;
    let s = body["sessions"][0]["id"].as_str().unwrap().to_string();
    let mut tickets = Vec::new();
    for _ in 0..3 {
        tickets.push(u.ticket(&s).await);
    }
    let path = format!("/v1/sessions/{s}/tickets");
    let (status, body) = u.call(Method::POST, &path, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("ticket_quota_exceeded"))
    );
    // Spending one frees its place.
    let url = format!("{}ticket={}", u.plain_ws_url(&s, None), tickets[0]);
    let mut ws = connect(&url).await;
    recv_type(&mut ws, "synced").await;
    let (status, body) = u.call(Method::POST, &path, None).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_session_has_a_bounded_member_list() {
    let h = Harness::start(Options {
        vars: vec![("MAX_MEMBERS_PER_SESSION".into(), "2".into())],
        ..Default::default()
    });
    let owner = User::new(&h, "members-cap");
    let s = owner.create_session("members").await;
    let path = format!("/v1/sessions/{s}/members");
    for m in ["m1", "m2", "m2"] {
        let (status, body) = owner
            .call(Method::POST, &path, Some(json!({"user_id": m})))
            .await;
        assert_eq!(status, 201, "{m} (re-adding is idempotent): {body}");
    }
    let (status, body) = owner
        .call(Method::POST, &path, Some(json!({"user_id": "m3"})))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("too_many_members"))
    );
    let (_, list) = owner.call(Method::GET, &path, None).await;
    assert_eq!(list["members"], json!(["m1", "m2"]));
}

//! The support desk against the real worker: the session lifecycle
//! (open, waiting, assigned, resolved, closed), escalation from a user's
//! socket and the admin API, atomic claims, transfer, resolve and reopen,
//! release, the escalation timeout with its system notice, and the idle
//! close. One runtime for the binary, with the assistant on the stand-in
//! LLM and short timers (the idle close is a minute, its smallest unit).

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;

fn runtime() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        llm::runtime(
            &unique("desk"),
            &[
                ("ESCALATION_TIMEOUT_SECONDS", "2"),
                ("ASSISTANT_WHILE_WAITING", "off"),
                ("SESSION_IDLE_CLOSE_MINUTES", "1"),
            ],
        )
    })
}

fn agent(h: &Harness, prefix: &str) -> User {
    let u = User::new(h, prefix);
    User {
        token: token_with_roles(&u.id, &u.name, &["admin"]),
        ..u
    }
}

/// An agent's socket: with the admin role, the socket joins as an agent.
async fn agent_join(a: &User, session: &str) -> (Ws, Value) {
    let mut ws = connect_bearer(&a.plain_ws_url(session, None), &a.token).await;
    let hello = recv(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    recv_type(&mut ws, "synced").await;
    (ws, hello)
}

async fn desk(ws: &mut Ws) -> Value {
    recv_type(ws, "desk").await.0
}

async fn admin_desk(a: &User, s: &str, verb: &str, body: Option<Value>) -> (u16, Value) {
    a.call(
        Method::POST,
        &format!("/v1/admin/sessions/{s}/{verb}"),
        body,
    )
    .await
}

#[tokio::test]
async fn a_user_escalates_an_agent_claims_resolves_and_the_users_message_reopens() {
    let h = runtime();
    let u = User::new(h, "customer");
    let dana = agent(h, "dana");
    let s = u.create_session("refund").await;
    let (mut ws, hello, _) = u.join(&s, None).await;
    assert_eq!(
        (hello["status"].as_str(), &hello["assignee"]),
        (Some("open"), &Value::Null)
    );

    send_json(&mut ws, json!({"type": "escalate"})).await;
    let f = desk(&mut ws).await;
    assert_eq!(f["status"], "waiting", "{f}");
    assert_eq!(f["by"]["id"], u.id.as_str());
    let since = f["waiting_since"].as_i64().expect("waiting_since");

    // An agent joining sees the wait in the greeting, and claims it.
    let (mut aws, hello) = agent_join(&dana, &s).await;
    assert_eq!(hello["status"], "waiting");
    send_json(&mut aws, json!({"type": "claim"})).await;
    for sock in [&mut ws, &mut aws] {
        let (f, skipped) = recv_type(sock, "desk").await;
        assert_eq!(f["status"], "assigned", "{f}");
        assert_eq!(f["assignee"], json!({"id": dana.id, "name": dana.name}));
        assert_eq!(f["waiting_since"].as_i64(), Some(since));
        // Who answers changed too, in the frame before.
        assert!(
            skipped
                .iter()
                .any(|m| m["type"] == "mode" && m["mode"] == "human"),
            "{skipped:?}"
        );
    }
    // The session view has it at once, from the object.
    let (_, view) = u
        .call(Method::GET, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(
        (view["status"].as_str(), view["mode"].as_str()),
        (Some("assigned"), Some("human"))
    );
    assert_eq!(view["assignee"]["id"], dana.id.as_str());

    // The agent's first message is timed; the user's gets no assistant turn.
    send_msg(&mut aws, "a1", "Hi, I am Dana. Let me look.").await;
    let f = desk(&mut ws).await;
    assert!(f["first_agent_reply_at"].as_i64().unwrap() >= since, "{f}");
    send_msg(&mut ws, "u1", "thanks").await;
    assert_no_frame_of(&mut ws, "turn", 700).await;

    // Resolved; then the user's next message reopens it and the
    // assistant answers again.
    send_json(&mut aws, json!({"type": "resolve"})).await;
    let f = desk(&mut ws).await;
    assert_eq!(f["status"], "resolved");
    assert!(f["resolved_at"].as_i64().is_some());
    send_msg(&mut ws, "u2", "one more thing").await;
    let (f, skipped) = recv_type(&mut ws, "desk").await;
    assert_eq!(
        (f["status"].as_str(), &f["resolved_at"]),
        (Some("open"), &Value::Null)
    );
    assert!(
        skipped
            .iter()
            .any(|m| m["type"] == "message" && m["text"] == "one more thing"),
        "the reopening message comes first: {skipped:?}"
    );
    let reply = llm::until_reply(&mut ws).await;
    assert_eq!(reply.last().unwrap()["author"]["kind"], "assistant");

    // D1 (the listing, /metrics) gets all of it with the next flush.
    h.replicated(&s).await;
    let row = &h
        .sql_on(&h.shard_of(&s).await, "SELECT status, assignee_id, waiting_since, first_agent_reply_at FROM sessions WHERE id = ?1", json!([s]))
        .await[0];
    assert_eq!(row["status"], "open");
    assert_eq!(row["assignee_id"], Value::Null);
    assert_eq!(row["waiting_since"].as_i64(), Some(since));
    assert!(row["first_agent_reply_at"].as_i64().is_some());
}

#[tokio::test]
async fn of_twenty_agents_claiming_at_once_exactly_one_wins() {
    let h = runtime();
    let u = User::new(h, "queued");
    let s = u.create_session("race").await;
    let agents: Vec<User> = (0..20).map(|i| agent(h, &format!("racer{i}"))).collect();
    let (st, body) = admin_desk(&agents[0], &s, "escalate", None).await;
    assert_eq!(
        (st, body["status"].as_str()),
        (200, Some("waiting")),
        "{body}"
    );
    let results =
        futures::future::join_all(agents.iter().map(|a| admin_desk(a, &s, "claim", None))).await;
    let winners: Vec<usize> = (0..20).filter(|&i| results[i].0 == 200).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let w = winners[0];
    assert_eq!(results[w].1["assignee"]["id"], agents[w].id.as_str());
    for (i, (status, body)) in results.iter().enumerate() {
        if i != w {
            assert_eq!(
                (*status, body["error"]["code"].as_str()),
                (409, Some("already_assigned")),
                "{body}"
            );
        }
    }
    // The winner claiming again is no change; a transfer moves it, a
    // release hands it back to the assistant.
    assert_eq!(admin_desk(&agents[w], &s, "claim", None).await.0, 200);
    let other = &agents[(w + 1) % 20];
    let (st, body) = admin_desk(&agents[w], &s, "transfer", Some(json!({"to": other.id}))).await;
    assert_eq!(
        (st, body["assignee"]["id"].as_str()),
        (200, Some(other.id.as_str())),
        "{body}"
    );
    let (st, body) = admin_desk(other, &s, "release", None).await;
    assert_eq!(
        (st, body["status"].as_str(), body["mode"].as_str()),
        (200, Some("open"), Some("assistant"))
    );
    // A transfer needs a valid user id.
    let (st, body) = admin_desk(other, &s, "transfer", Some(json!({"to": " "}))).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (400, Some("invalid_user_id"))
    );
}

#[tokio::test]
async fn users_may_only_escalate() {
    let h = runtime();
    let u = User::new(h, "plain");
    let s = u.create_session("no powers").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    for frame in [
        json!({"type": "claim"}),
        json!({"type": "resolve"}),
        json!({"type": "release"}),
        json!({"type": "transfer", "to": u.id}),
    ] {
        send_json(&mut ws, frame.clone()).await;
        let (e, _) = recv_type(&mut ws, "error").await;
        assert_eq!(e["code"], "forbidden", "{frame}");
    }
    send_json(&mut ws, json!({"type": "transfer", "to": ""})).await;
    assert_eq!(
        recv_type(&mut ws, "error").await.0["code"],
        "invalid_user_id"
    );
    // And the admin routes are not there for them.
    let (st, _) = admin_desk(&u, &s, "claim", None).await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn an_unclaimed_wait_tells_the_user_and_the_assistant_comes_back() {
    let h = runtime();
    let u = User::new(h, "waiter");
    let s = u.create_session("nobody home").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_json(&mut ws, json!({"type": "escalate"})).await;
    assert_eq!(desk(&mut ws).await["status"], "waiting");
    // ASSISTANT_WHILE_WAITING=off: the assistant is quiet meanwhile.
    send_msg(&mut ws, "w1", "hello?").await;
    assert_no_frame_of(&mut ws, "turn", 500).await;
    // After ESCALATION_TIMEOUT_SECONDS a system message says so; the
    // session stays in the queue.
    let mut notice = None;
    for _ in 0..3 {
        let (m, _) = recv_type(&mut ws, "message").await;
        if m["author"]["kind"] == "system" {
            notice = Some(m);
            break;
        }
    }
    let notice = notice.expect("a system notice");
    assert!(notice["text"]
        .as_str()
        .unwrap()
        .contains("Nobody from the team is free"));
    let (_, view) = u
        .call(Method::GET, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(view["status"], "waiting");
    // Now the assistant answers.
    send_msg(&mut ws, "w2", "ok, can you help?").await;
    let reply = llm::until_reply(&mut ws).await;
    assert_eq!(reply.last().unwrap()["author"]["kind"], "assistant");
    // The notice is in the transcript for good.
    let texts = u.history_texts(&s).await;
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Nobody from the team is free")),
        "{texts:?}"
    );
}

#[tokio::test]
async fn an_idle_session_closes_and_takes_no_more_writes() {
    let h = runtime();
    let u = User::new(h, "idler");
    let dana = agent(h, "closer");
    let s = u.create_session("idle").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    let sent = send_msg(&mut ws, "i1", "bye for now").await;
    let seq = sent["seq"].as_u64().unwrap();
    // SESSION_IDLE_CLOSE_MINUTES=1: the alarm closes it a minute after
    // the last activity.
    let started = std::time::Instant::now();
    let f = loop {
        match next_text(&mut ws, 90).await {
            Some(t) => {
                let f: Value = serde_json::from_str(&t).unwrap();
                if f["type"] == "desk" {
                    break f;
                }
            }
            None => panic!("no desk frame within 90 s"),
        }
    };
    assert!(
        started.elapsed() > Duration::from_secs(50),
        "closed too early"
    );
    assert_eq!(
        (f["status"].as_str(), &f["by"]),
        (Some("closed"), &Value::Null),
        "{f}"
    );
    // Sends, edits and desk actions are refused; the transcript stays.
    send_json(
        &mut ws,
        json!({"type": "send", "client_id": "i2", "text": "hello again"}),
    )
    .await;
    let e = recv_type(&mut ws, "error").await.0;
    assert_eq!(
        (e["code"].as_str(), e["client_id"].as_str()),
        (Some("session_closed"), Some("i2"))
    );
    send_json(
        &mut ws,
        json!({"type": "edit", "seq": seq, "text": "changed"}),
    )
    .await;
    assert_eq!(
        recv_type(&mut ws, "error").await.0["code"],
        "session_closed"
    );
    let (st, body) = admin_desk(&dana, &s, "claim", None).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (409, Some("session_closed"))
    );
    // The transcript is as it was (the message, the assistant's reply).
    let texts = u.history_texts(&s).await;
    assert_eq!(texts[0], "bye for now", "{texts:?}");
    assert!(
        !texts.iter().any(|t| t == "hello again" || t == "changed"),
        "{texts:?}"
    );
    h.replicated(&s).await;
    let (_, list) = dana
        .call(
            Method::GET,
            &format!("/v1/admin/sessions?status=closed&owner={}", u.id),
            None,
        )
        .await;
    assert_eq!(list["sessions"][0]["id"], s.as_str(), "{list}");
}

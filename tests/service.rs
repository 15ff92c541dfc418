//! The server-side API for the product's backend (`/v1/service/*`) against
//! the real worker: the static credential and the service role, posting as
//! the system, a bot or an agent (idempotent by `client_id`), setting the
//! status, and the transcript as JSON and as text.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::OnceLock;

const SERVICE_TOKEN: &str = "svc-0123456789abcdef0123456789abcdef";

fn runtime() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        Harness::start(Options {
            vars: vec![("SERVICE_TOKEN".into(), SERVICE_TOKEN.into())],
            ..Default::default()
        })
    })
}

/// A call with `bearer` (None: no Authorization header).
async fn call(
    h: &Harness,
    bearer: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    let mut r = reqwest::Client::new().request(method, format!("{}{path}", h.url));
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    let json = if ctype.starts_with("application/json") {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    } else {
        Value::String(text)
    };
    (status, json, ctype)
}

async fn post(h: &Harness, s: &str, body: Value) -> (u16, Value) {
    let (status, v, _) = call(
        h,
        Some(SERVICE_TOKEN),
        Method::POST,
        &format!("/v1/service/sessions/{s}/messages"),
        Some(body),
    )
    .await;
    (status, v)
}

#[tokio::test]
async fn the_backend_posts_as_system_bot_and_agent_once_per_client_id() {
    let h = runtime();
    let u = User::new(h, "shopper");
    let s = u.create_session("order help").await;
    let (mut ws, _, _) = u.join(&s, None).await;

    let (status, first) = post(
        h,
        &s,
        json!({"client_id": "sys-1", "text": "Your order shipped.", "as": "system"}),
    )
    .await;
    assert_eq!(status, 201, "{first}");
    let (f, _) = recv_type(&mut ws, "message").await;
    assert_eq!(
        (f["seq"].clone(), f["text"].clone()),
        (first["seq"].clone(), json!("Your order shipped."))
    );
    assert_eq!(
        f["author"],
        json!({"id": "system", "name": "system", "kind": "system"})
    );
    assert_eq!(f["id"], first["id"]);

    // The same client id again: the original, not a second message.
    let (status, again) = post(
        h,
        &s,
        json!({"client_id": "sys-1", "text": "Your order shipped.", "as": "system"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            again["seq"].clone(),
            again["id"].clone(),
            again["duplicate"].clone()
        ),
        (first["seq"].clone(), first["id"].clone(), json!(true))
    );
    assert_no_frame_of(&mut ws, "message", 500).await;

    let (status, bot) = post(h, &s, json!({"client_id": "b1", "text": "Tracking: 1Z999", "as": "bot", "id": "tracker", "name": "Tracking bot"})).await;
    assert_eq!(status, 201, "{bot}");
    let (f, _) = recv_type(&mut ws, "message").await;
    assert_eq!(
        f["author"],
        json!({"id": "bot:tracker", "name": "Tracking bot", "kind": "system"})
    );
    let (status, agent) = post(h, &s, json!({"client_id": "a1", "text": "Hi, Dana here.", "as": "agent", "id": "dana", "name": "Dana"})).await;
    assert_eq!(status, 201, "{agent}");
    let (f, _) = recv_type(&mut ws, "message").await;
    assert_eq!(
        f["author"],
        json!({"id": "dana", "name": "Dana", "kind": "agent"})
    );
    assert_eq!(
        agent["seq"].as_u64(),
        Some(first["seq"].as_u64().unwrap() + 2)
    );

    // Bad bodies: a stable code, nothing stored.
    for (body, code) in [
        (
            json!({"client_id": "x1", "text": "", "as": "system"}),
            "invalid_text",
        ),
        (
            json!({"client_id": "turn:x", "text": "t", "as": "system"}),
            "invalid_client_id",
        ),
        (
            json!({"client_id": "x2", "text": "t", "as": "agent"}),
            "invalid_user_id",
        ),
        (
            json!({"client_id": "x3", "text": "t", "as": "user", "id": "u"}),
            "invalid_json",
        ),
        (
            json!({"client_id": "x4", "text": "t", "as": "system", "seq": 1}),
            "invalid_json",
        ),
    ] {
        let (status, err) = post(h, &s, body.clone()).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}: {err}"
        );
    }
    assert_no_frame_of(&mut ws, "message", 300).await;
}

#[tokio::test]
async fn the_backend_sets_the_status_and_a_closed_session_takes_no_posts() {
    let h = runtime();
    let u = User::new(h, "waiter");
    let s = u.create_session("status").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    let path = format!("/v1/service/sessions/{s}/status");
    let set = |body: Value| call(h, Some(SERVICE_TOKEN), Method::POST, &path, Some(body));

    let (status, v, _) = set(json!({"status": "waiting"})).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (200, Some("waiting")),
        "{v}"
    );
    let (f, _) = recv_type(&mut ws, "desk").await;
    assert_eq!(
        (f["status"].as_str(), f["by"]["id"].as_str()),
        (Some("waiting"), Some("service"))
    );
    let (status, v, _) = set(json!({"status": "assigned", "assignee": "agent-7"})).await;
    assert_eq!(
        (status, v["assignee"]["id"].as_str()),
        (200, Some("agent-7")),
        "{v}"
    );
    for (body, code) in [
        (json!({"status": "assigned"}), "invalid_assignee"),
        (
            json!({"status": "open", "assignee": "agent-7"}),
            "invalid_assignee",
        ),
        (json!({"status": "idle"}), "invalid_json"),
    ] {
        let (status, err, _) = set(body.clone()).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}"
        );
    }
    let (status, v, _) = set(json!({"status": "closed"})).await;
    assert_eq!((status, v["status"].as_str()), (200, Some("closed")));
    let (status, err) = post(
        h,
        &s,
        json!({"client_id": "late", "text": "hello?", "as": "system"}),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("session_closed")),
        "{err}"
    );
    let (status, err, _) = set(json!({"status": "open"})).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("session_closed"))
    );
}

#[tokio::test]
async fn the_transcript_is_whole_and_in_order_as_json_and_text() {
    let h = runtime();
    let u = User::new(h, "talker");
    let s = u.create_session("long").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_msg(&mut ws, "u0", "line one\nline two").await;
    // More than one history page (100).
    for i in 0..120 {
        let (status, _) = post(
            h,
            &s,
            json!({"client_id": format!("n{i}"), "text": format!("note {i}"), "as": "system"}),
        )
        .await;
        assert_eq!(status, 201);
    }
    let (status, t, _) = call(
        h,
        Some(SERVICE_TOKEN),
        Method::GET,
        &format!("/v1/service/sessions/{s}/transcript"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{t}");
    let messages = t["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 121);
    let seqs: Vec<u64> = messages
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=121).collect::<Vec<_>>());
    assert_eq!(messages[0]["text"], "line one\nline two");
    assert_eq!(messages[120]["text"], "note 119");
    assert_eq!(
        (t["last_seq"].as_u64(), t["truncated"].as_bool()),
        (Some(121), Some(false))
    );

    let (status, text, ctype) = call(
        h,
        Some(SERVICE_TOKEN),
        Method::GET,
        &format!("/v1/service/sessions/{s}/transcript?format=text"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(ctype, "text/plain; charset=utf-8");
    let text = text.as_str().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        122,
        "a line per message, one more for the two-line text"
    );
    assert!(
        lines[0].ends_with(&format!("] {} (user): line one", u.name)),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1], "    line two");
    assert!(
        lines[121].ends_with("] system (system): note 119"),
        "{}",
        lines[121]
    );

    let (status, err, _) = call(
        h,
        Some(SERVICE_TOKEN),
        Method::GET,
        &format!("/v1/service/sessions/{s}/transcript?format=xml"),
        None,
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_format"))
    );
}

#[tokio::test]
async fn only_the_service_credential_or_role_passes() {
    let h = runtime();
    let u = User::new(h, "owner");
    let s = u.create_session("guarded").await;
    let path = format!("/v1/service/sessions/{s}/transcript");
    let admin = token_with_roles("an-admin", "Admin", &["admin"]);
    let service_jwt = token_with_roles("backend-1", "Backend", &["service"]);
    let (status, _, _) = call(h, None, Method::GET, &path, None).await;
    assert_eq!(status, 401);
    // A wrong static token is no token at all.
    let (status, err, _) = call(
        h,
        Some("svc-0123456789abcdef0123456789abcdeX"),
        Method::GET,
        &path,
        None,
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (401, Some("token_malformed"))
    );
    // The session's owner and an admin: the routes do not reveal themselves.
    for t in [u.token.as_str(), admin.as_str()] {
        let (status, err, _) = call(h, Some(t), Method::GET, &path, None).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (404, Some("not_found"))
        );
    }
    // A token with the service role passes, and acts as its own name.
    let (status, _, _) = call(h, Some(&service_jwt), Method::GET, &path, None).await;
    assert_eq!(status, 200);
    let (status, v, _) = call(
        h,
        Some(&service_jwt),
        Method::POST,
        &format!("/v1/service/sessions/{s}/status"),
        Some(json!({"status": "waiting"})),
    )
    .await;
    assert_eq!(
        (status, v["by"]["id"].as_str()),
        (200, Some("backend-1")),
        "{v}"
    );
    // An unknown session: 404, as anywhere.
    let (status, _, _) = call(
        h,
        Some(SERVICE_TOKEN),
        Method::GET,
        "/v1/service/sessions/nope-nope/transcript",
        None,
    )
    .await;
    assert_eq!(status, 404);
}

//! The agents' live inbox against the real worker: the desk object's
//! socket (`GET /v1/admin/inbox/ws`) gets one `inbox` frame per session
//! event (erasure included), live, on every agent's socket; only admins open it, a ticket
//! opens it once and only it. (That an inbox socket ends when its token
//! does is in hardening.rs, beside the session sockets' same rule.)

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

fn agent(h: &Harness, prefix: &str) -> User {
    let u = User::new(h, prefix);
    User {
        token: token_with_roles(&u.id, &u.name, &["admin"]),
        ..u
    }
}

fn inbox_url(h: &Harness) -> String {
    h.ws_url("/v1/admin/inbox/ws")
}

async fn inbox_ticket(a: &User) -> (u16, Value) {
    a.call(Method::POST, "/v1/admin/inbox/tickets", None).await
}

/// An agent's inbox socket.
struct Console {
    ws: Ws,
}

/// Opens an inbox socket and reads its `ready`.
async fn open_inbox(ws: Ws) -> Console {
    let mut ws = ws;
    let ready = recv(&mut ws).await;
    assert_eq!(ready, json!({"type": "ready"}));
    Console { ws }
}

impl Console {
    async fn next(&mut self) -> Value {
        recv(&mut self.ws).await
    }

    /// The next item about `session` (items about other sessions, from
    /// tests running alongside, are skipped).
    async fn item(&mut self, session: &str) -> Value {
        loop {
            let f = self.next().await;
            if f["type"] == "inbox" && f["session"] == session {
                return f;
            }
        }
    }
}

#[tokio::test]
async fn every_agent_sees_each_sessions_events_live() {
    let h = Harness::shared();
    let (dana, eli) = (agent(h, "dana"), agent(h, "eli"));
    // One console by bearer token, one the browser's way, by ticket.
    let mut by_token = open_inbox(connect_bearer(&inbox_url(h), &dana.token).await).await;
    let (status, t) = inbox_ticket(&eli).await;
    assert_eq!(status, 201, "{t}");
    let url = format!("{}?ticket={}", inbox_url(h), t["ticket"].as_str().unwrap());
    let mut by_ticket = open_inbox(connect(&url).await).await;

    let u = User::new(h, "customer");
    let s = u.create_session("a refund").await;
    for ws in [&mut by_token, &mut by_ticket] {
        let f = ws.item(&s).await;
        assert_eq!(
            (f["event"].as_str(), f["status"].as_str()),
            (Some("created"), Some("open")),
            "{f}"
        );
        assert_eq!(f["owner_id"], u.id.as_str());
        assert!(f["at"].as_i64().unwrap() > 0);
    }

    // A message: its preview, cut to 140 characters.
    let (mut uws, _, _) = u.join(&s, None).await;
    let long = format!("My card was charged twice. {}", "x".repeat(200));
    send_msg(&mut uws, "m1", &long).await;
    let f = loop {
        // The assistant's reply is a message too; this is the user's.
        let f = by_ticket.item(&s).await;
        if f["event"] == "message" && f["preview"]["author"]["kind"] == "user" {
            break f;
        }
    };
    let text = f["preview"]["text"].as_str().unwrap();
    assert!(text.starts_with("My card was charged twice."), "{f}");
    assert_eq!(text.chars().count(), 141, "140 characters and an ellipsis");
    assert_eq!(f["preview"]["author"]["id"], u.id.as_str());

    // Escalate, claim, resolve: each a line with its status and times.
    send_json(&mut uws, json!({"type": "escalate"})).await;
    let waiting = loop {
        let f = by_token.item(&s).await;
        if f["event"] == "waiting" {
            break f;
        }
    };
    assert_eq!(waiting["status"], "waiting");
    let since = waiting["waiting_since"].as_i64().expect("waiting_since");
    let (status, body) = eli
        .call(Method::POST, &format!("/v1/admin/sessions/{s}/claim"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    for ws in [&mut by_token, &mut by_ticket] {
        let f = loop {
            let f = ws.item(&s).await;
            if f["event"] == "assigned" {
                break f;
            }
        };
        assert_eq!(f["assignee"], json!({"id": eli.id, "name": eli.name}));
        assert_eq!(f["waiting_since"].as_i64(), Some(since));
    }
    let (status, _) = eli
        .call(
            Method::POST,
            &format!("/v1/admin/sessions/{s}/resolve"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let f = loop {
        let f = by_token.item(&s).await;
        if f["event"] == "resolved" {
            break f;
        }
    };
    assert_eq!(f["status"], "resolved");
    assert!(f["resolved_at"].as_i64().unwrap() >= since);

    // A console only listens: a frame gets an error, the socket stays.
    send_json(&mut by_token.ws, json!({"type": "claim"})).await;
    let e = loop {
        let f = by_token.next().await;
        if f["type"] == "error" {
            break f;
        }
    };
    assert_eq!(e["code"], "unknown_type", "{e}");
    send_msg(&mut uws, "m2", "still there?").await;
    assert_eq!(by_token.item(&s).await["event"], "open");

    // Erased: consoles are told, so they drop its line.
    let (status, _) = u
        .call(Method::DELETE, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(status, 204);
    for ws in [&mut by_token, &mut by_ticket] {
        let f = loop {
            let f = ws.item(&s).await;
            if f["event"] == "deleted" {
                break f;
            }
        };
        assert_eq!(f["status"], "open", "{f}");
    }
}

#[tokio::test]
async fn only_admins_open_the_inbox_and_a_ticket_opens_it_once() {
    let h = Harness::shared();
    let url = inbox_url(h);
    let user = User::new(h, "plain");
    // Not signed in: 401; signed in without the role: 404, like every
    // admin route; a user cannot get an inbox ticket either.
    assert_eq!(refused_upgrade(&url).await.0, 401);
    assert_eq!(refused_upgrade_as(&url, Some(&user.token)).await.0, 404);
    assert_eq!(inbox_ticket(&user).await.0, 404);

    // A ticket works once.
    let dana = agent(h, "dana");
    let (_, t) = inbox_ticket(&dana).await;
    let with = format!("{url}?ticket={}", t["ticket"].as_str().unwrap());
    let ws = open_inbox(connect(&with).await).await;
    let (status, body) = refused_upgrade(&with).await;
    // Gone from KV (`ticket_invalid`), or still there and refused by the
    // desk, which keeps the ids it admitted (`ticket_used`).
    let code = body["error"]["code"].as_str().unwrap_or_default();
    assert!(
        status == 401 && ["ticket_invalid", "ticket_used"].contains(&code),
        "{body}"
    );
    drop(ws);

    // A session's ticket does not open the inbox, nor an inbox ticket a
    // session, and neither is spent by trying.
    let s = dana.create_session("mine").await;
    let session_ticket = dana.ticket(&s).await;
    let (status, body) = refused_upgrade(&format!("{url}?ticket={session_ticket}")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("ticket_invalid"))
    );
    let (_, t) = inbox_ticket(&dana).await;
    let inbox_ticket = t["ticket"].as_str().unwrap();
    let session_url = format!("{}ticket={inbox_ticket}", dana.plain_ws_url(&s, None));
    let (status, body) = refused_upgrade(&session_url).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("ticket_invalid"))
    );
    open_inbox(connect(&format!("{url}?ticket={inbox_ticket}")).await).await;
    let mut ws = connect(&format!(
        "{}ticket={session_ticket}",
        dana.plain_ws_url(&s, None)
    ))
    .await;
    assert_eq!(recv(&mut ws).await["type"], "hello");
}

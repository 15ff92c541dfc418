//! Webhooks against the real worker, its real Queues (Miniflare's) and a
//! local receiver (`tests/support/webhook_receiver.py`) that checks every
//! request with the `standardwebhooks` package from PyPI, an outside
//! implementation of the signature scheme.
//!
//! One runtime for the binary, with the assistant on the stand-in LLM and
//! short retry waits. Every endpoint takes every event of every test, so
//! each test looks only at its own receiver name and its own sessions.

mod common;

use common::hooks::{events, received, set_mode, RECEIVER};
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn runtime() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        llm::runtime(
            &unique("hooks"),
            &[
                ("WEBHOOK_ALLOW_HTTP", "on"),
                ("WEBHOOK_RETRY_BASE_SECONDS", "1"),
                ("WEBHOOK_RETRY_MAX_SECONDS", "2"),
                ("WEBHOOK_MAX_ATTEMPTS", "30"),
                ("WEBHOOK_TIMEOUT_MS", "3000"),
            ],
        )
    })
}

/// Polls `f` until it says yes, for at most `secs`.
async fn until<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Registers an endpoint for receiver `name`; gives its id and secret.
async fn endpoint(a: &User, name: &str, events: Value) -> (String, String) {
    let url = format!("{}/hook/{name}", RECEIVER.url());
    let (status, e) = a
        .call(
            Method::POST,
            "/v1/admin/webhooks",
            Some(json!({"url": url, "events": events, "description": name})),
        )
        .await;
    assert_eq!(status, 201, "{e}");
    let secret = e["secret"].as_str().expect("the secret, once").to_string();
    set_mode(name, &secret, "ok").await;
    (e["id"].as_str().unwrap().to_string(), secret)
}

async fn deliveries(a: &User, id: &str) -> Vec<Value> {
    let (status, body) = a
        .call(
            Method::GET,
            &format!("/v1/admin/webhooks/{id}/deliveries?limit=200"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["deliveries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_event_reaches_the_receiver_signed_with_its_data() {
    let h = runtime();
    let ops = User::admin(h, "ops");
    let name = unique("all");
    let (_, _) = endpoint(&ops, &name, json!(["*"])).await;
    let closed_only = unique("closed");
    endpoint(&ops, &closed_only, json!(["session.closed"])).await;

    let u = User::new(h, "buyer");
    let s = u.create_session("order 7").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_msg(&mut ws, "c1", "where is my order?").await;
    let reply = llm::until_reply(&mut ws).await.pop().unwrap();
    for verb in ["escalate", "claim", "resolve", "close"] {
        let (status, body) = ops
            .call(
                Method::POST,
                &format!("/v1/admin/sessions/{s}/{verb}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{verb}: {body}");
    }
    let want = [
        "session.created",
        "message.created",
        "message.created",
        "turn.completed",
        "session.waiting",
        "session.assigned",
        "session.resolved",
        "session.closed",
    ];
    until(30, "every event", || async {
        events(&name, &s).await.len() >= want.len()
    })
    .await;
    // Deliveries are not ordered (README, "Webhooks"): receivers order by
    // `timestamp`, which follows the order things happened in. A message
    // and the reply's turn event may share a millisecond.
    let mut got = events(&name, &s).await;
    got.sort_by_key(|e| e["body"]["timestamp"].as_str().unwrap().to_string());
    let mut types: Vec<&str> = got.iter().map(|e| e["type"].as_str().unwrap()).collect();
    types[1..4].sort();
    let mut expect = want.to_vec();
    expect[1..4].sort();
    assert_eq!(types, expect, "{got:#?}");
    let ids: std::collections::HashSet<&str> =
        got.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), got.len(), "one webhook-id per event");

    fn of<'a>(got: &'a [Value], t: &'a str) -> impl Iterator<Item = &'a Value> {
        got.iter()
            .filter(move |e| e["type"] == t)
            .map(|e| &e["body"])
    }
    let created = of(&got, "session.created").next().unwrap();
    assert_eq!(created["data"]["owner_id"], u.id.as_str());
    assert_eq!(created["data"]["status"], "open");
    let mine = of(&got, "message.created")
        .find(|b| b["data"]["message"]["author"]["kind"] == "user")
        .unwrap();
    assert_eq!(mine["data"]["message"]["text"], "where is my order?");
    assert_eq!(mine["data"]["message"]["client_id"], "c1");
    assert_eq!(mine["data"]["message"]["seq"], 1);
    let turn = of(&got, "turn.completed").next().unwrap();
    assert_eq!(turn["data"]["message_id"], reply["id"]);
    assert_eq!(turn["data"]["turn"]["provider"], "openai");
    let assigned = of(&got, "session.assigned").next().unwrap();
    assert_eq!(assigned["data"]["assignee"]["id"], ops.id.as_str());
    assert_eq!(assigned["data"]["by"]["id"], ops.id.as_str());
    let ts = created["timestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");

    // The filtered endpoint got the one event it asked for.
    until(10, "the filtered endpoint", || async {
        !events(&closed_only, &s).await.is_empty()
    })
    .await;
    let only: Vec<Value> = events(&closed_only, &s).await;
    assert_eq!(only.len(), 1, "{only:?}");
    assert_eq!(only[0]["type"], "session.closed");
    assert_eq!(
        only[0]["id"],
        got.last().unwrap()["id"],
        "the same webhook-id everywhere"
    );
    // Nothing failed verification anywhere.
    for n in [&name, &closed_only] {
        let bad: Vec<Value> = received(n)
            .await
            .into_iter()
            .filter(|r| r["verified"] == false)
            .collect();
        assert!(bad.is_empty(), "{bad:?}");
    }
}

#[tokio::test]
async fn a_receiver_down_for_a_while_misses_nothing() {
    let h = runtime();
    let ops = User::admin(h, "ops");
    let name = unique("down");
    let (id, secret) = endpoint(&ops, &name, json!(["message.created"])).await;
    set_mode(&name, &secret, "down").await;

    let u = User::new(h, "patient");
    let s = u.create_session("outage").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    for i in 0..5 {
        send_msg(&mut ws, &format!("m{i}"), &format!("message {i}")).await;
    }
    // Every message was refused at least twice while the receiver was down.
    until(30, "failed attempts", || async {
        let down = received(&name)
            .await
            .into_iter()
            .filter(|r| r["down"] == true)
            .count();
        down >= 10
    })
    .await;
    let log = deliveries(&ops, &id).await;
    let failed: Vec<&Value> = log
        .iter()
        .filter(|d| d["session_id"] == s.as_str())
        .collect();
    assert!(!failed.is_empty());
    for d in &failed {
        assert_eq!(d["outcome"], "failed", "{d}");
        assert_eq!(d["http_status"], 503, "{d}");
        assert!(
            d["next_retry_at"].as_i64().unwrap() > d["at"].as_i64().unwrap(),
            "{d}"
        );
        assert!(d["latency_ms"].is_u64(), "{d}");
    }
    set_mode(&name, &secret, "ok").await;
    let users = |all: Vec<Value>| {
        all.into_iter()
            .filter(|e| e["body"]["data"]["message"]["author"]["kind"] == "user")
            .count()
    };
    until(30, "the backlog", || async {
        users(events(&name, &s).await) >= 5
    })
    .await;
    let mut texts: Vec<String> = events(&name, &s)
        .await
        .iter()
        .filter(|e| e["body"]["data"]["message"]["author"]["kind"] == "user")
        .map(|e| {
            e["body"]["data"]["message"]["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(
        texts,
        (0..5).map(|i| format!("message {i}")).collect::<Vec<_>>()
    );
    // The log shows each user message delivered on a retry (an assistant
    // reply may be created after the receiver came back).
    let mine: Vec<String> = events(&name, &s)
        .await
        .iter()
        .filter(|e| e["body"]["data"]["message"]["author"]["kind"] == "user")
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let delivered = || async {
        deliveries(&ops, &id)
            .await
            .into_iter()
            .filter(|d| {
                d["outcome"] == "delivered" && mine.iter().any(|m| d["event_id"] == m.as_str())
            })
            .collect::<Vec<Value>>()
    };
    until(10, "the log", || async { delivered().await.len() >= 5 }).await;
    for d in delivered().await {
        assert!(d["attempt"].as_u64().unwrap() >= 2, "{d}");
        assert_eq!(d["http_status"], 204);
    }
}

#[tokio::test]
async fn a_slow_receiver_never_holds_up_chat_and_times_out() {
    let h = runtime();
    let ops = User::admin(h, "ops");
    let name = unique("slow");
    let (id, secret) = endpoint(&ops, &name, json!(["message.created"])).await;
    set_mode(&name, &secret, "hold").await;
    let u = User::new(h, "quick");
    let s = u.create_session("slow receiver").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_msg(&mut ws, "q1", "first").await;
    // The receiver has the first event's request open and is not answering.
    until(15, "a held request", || async {
        received(&name).await.iter().any(|r| r["held"] == true)
    })
    .await;
    // Meanwhile chat goes on: the next messages are acked and broadcast.
    for i in 2..5 {
        send_msg(&mut ws, &format!("q{i}"), "more").await;
    }
    assert!(
        !received(&name).await.iter().any(|r| r["held"] == false),
        "nothing was answered yet"
    );
    // The attempt gives up after WEBHOOK_TIMEOUT_MS and is logged so.
    until(15, "a timeout in the log", || async {
        deliveries(&ops, &id)
            .await
            .iter()
            .any(|d| d["error"] == "timeout")
    })
    .await;
    set_mode(&name, &secret, "ok").await;
    until(30, "every message", || async {
        events(&name, &s).await.len() >= 4
    })
    .await;
}

#[tokio::test]
async fn a_delivery_that_never_succeeds_goes_dead_after_the_last_attempt() {
    // A runtime of its own: three attempts at most.
    let h = llm::runtime(
        &unique("dead"),
        &[
            ("WEBHOOK_ALLOW_HTTP", "on"),
            ("WEBHOOK_RETRY_BASE_SECONDS", "1"),
            ("WEBHOOK_RETRY_MAX_SECONDS", "1"),
            ("WEBHOOK_MAX_ATTEMPTS", "3"),
        ],
    );
    let ops = User::admin(&h, "ops");
    let name = unique("never");
    let (id, secret) = endpoint(&ops, &name, json!(["session.created"])).await;
    set_mode(&name, &secret, "down").await;
    let s = User::new(&h, "x").create_session("doomed").await;
    until(30, "the dead letter", || async {
        deliveries(&ops, &id)
            .await
            .iter()
            .any(|d| d["outcome"] == "dead")
    })
    .await;
    let mut log: Vec<Value> = deliveries(&ops, &id).await;
    log.retain(|d| d["session_id"] == s.as_str());
    log.reverse();
    let seen: Vec<(u64, &str)> = log
        .iter()
        .map(|d| {
            (
                d["attempt"].as_u64().unwrap(),
                d["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [(1, "failed"), (2, "failed"), (3, "dead")],
        "{log:#?}"
    );
    assert_eq!(log[2]["next_retry_at"], Value::Null);
    // And no fourth attempt follows.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let attempts = received(&name)
        .await
        .iter()
        .filter(|r| r["down"] == true)
        .count();
    assert_eq!(attempts, 3);
}

#[tokio::test]
async fn endpoints_are_managed_by_admins_only_and_checked() {
    let h = runtime();
    let ops = User::admin(h, "ops");
    let name = unique("crud");
    let (id, first_secret) =
        endpoint(&ops, &name, json!(["session.created", "message.created"])).await;
    let path = format!("/v1/admin/webhooks/{id}");

    // Shown without its secret, anywhere after creation.
    let (status, e) = ops.call(Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(e["events"], json!(["session.created", "message.created"]));
    assert_eq!(e["enabled"], true);
    assert!(e.get("secret").is_none(), "{e}");
    let (_, list) = ops.call(Method::GET, "/v1/admin/webhooks", None).await;
    let listed = list["webhooks"].as_array().unwrap();
    assert!(listed.iter().any(|w| w["id"] == id.as_str()));
    assert!(listed.iter().all(|w| w.get("secret").is_none()));

    // Bad settings are refused with a code, and change nothing.
    for (body, code) in [
        (json!({"url": "ftp://example.com/"}), "invalid_webhook"),
        (
            json!({"url": "https://user:pw@example.com/"}),
            "invalid_webhook",
        ),
        (json!({"events": ["message.sent"]}), "invalid_webhook"),
        (json!({"events": []}), "invalid_webhook"),
        (json!({"description": "x".repeat(201)}), "invalid_webhook"),
        (json!({"enabled": "yes"}), "invalid_json"),
        (json!({"secret": "whsec_mine"}), "invalid_json"),
    ] {
        let (status, err) = ops.call(Method::PATCH, &path, Some(body.clone())).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (400, Some(code)),
            "{body}: {err}"
        );
    }
    let (status, err) = ops
        .call(
            Method::POST,
            "/v1/admin/webhooks",
            Some(json!({"events": ["*"]})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_webhook"))
    );
    let (_, same) = ops.call(Method::GET, &path, None).await;
    assert_eq!(same, e);

    // A new secret is shown once; deliveries are signed with it.
    let (status, rotated) = ops
        .call(
            Method::PATCH,
            &path,
            Some(json!({"rotate_secret": true, "events": ["*"]})),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let secret = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(secret, first_secret);
    assert_eq!(rotated["events"], json!(["*"]));
    set_mode(&name, &secret, "ok").await;
    let s = User::new(h, "y").create_session("after rotation").await;
    until(20, "a delivery signed with the new secret", || async {
        !events(&name, &s).await.is_empty()
    })
    .await;

    // Disabled: no more deliveries.
    let (status, off) = ops
        .call(Method::PATCH, &path, Some(json!({"enabled": false})))
        .await;
    assert_eq!((status, &off["enabled"]), (200, &json!(false)));
    let quiet = User::new(h, "z").create_session("while disabled").await;

    // Others see nothing of it: admin routes do not reveal themselves.
    let nobody = User::new(h, "nosy");
    for (m, p) in [
        (Method::GET, "/v1/admin/webhooks".to_string()),
        (Method::GET, path.clone()),
        (Method::DELETE, path.clone()),
        (Method::GET, format!("{path}/deliveries")),
    ] {
        let (status, _) = nobody.call(m, &p, None).await;
        assert_eq!(status, 404, "{p}");
    }
    let (status, err) = ops
        .call(Method::GET, &format!("{path}/deliveries?limit=0"), None)
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("invalid_limit"))
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        events(&name, &quiet).await.is_empty(),
        "a disabled endpoint got an event"
    );

    let (status, _) = ops.call(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    for m in [Method::GET, Method::DELETE] {
        let (status, err) = ops.call(m, &path, None).await;
        assert_eq!(
            (status, err["error"]["code"].as_str()),
            (404, Some("not_found"))
        );
    }
    let (status, _) = ops
        .call(Method::GET, "/v1/admin/webhooks/wh_nothex", None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_d1_outage_holds_deliveries_back_and_never_chat() {
    // A runtime of its own: every D1 query fails for a while.
    let h = llm::runtime(
        &unique("d1-down"),
        &[
            ("WEBHOOK_ALLOW_HTTP", "on"),
            ("WEBHOOK_RETRY_BASE_SECONDS", "1"),
        ],
    );
    let ops = User::admin(&h, "ops");
    let name = unique("patient");
    endpoint(&ops, &name, json!(["message.created"])).await;
    let u = User::new(&h, "chatty");
    let s = u.create_session("during an outage").await;
    let (mut ws, _, _) = u.join(&s, None).await;

    h.d1_outage(true).await;
    // The consumer cannot read the endpoints; chat goes on meanwhile, and
    // the same socket keeps working (a failing batch must not take the
    // isolate, and its sessions, down with it).
    for i in 0..3 {
        let ack = send_msg(&mut ws, &format!("d{i}"), &format!("during {i}")).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ack = send_msg(&mut ws, "d3", "during 3").await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert!(
        events(&name, &s).await.is_empty(),
        "nothing can be delivered without D1"
    );
    h.d1_outage(false).await;

    let users = |all: Vec<Value>| {
        let mut t: Vec<String> = all
            .iter()
            .filter(|e| e["body"]["data"]["message"]["author"]["kind"] == "user")
            .map(|e| {
                e["body"]["data"]["message"]["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        t.sort();
        t.dedup();
        t
    };
    until(40, "the held-back events", || async {
        users(events(&name, &s).await).len() >= 4
    })
    .await;
    assert_eq!(
        users(events(&name, &s).await),
        ["during 0", "during 1", "during 2", "during 3"]
    );
    // The consumer met the outage, and said so without panicking (a panic
    // aborts the isolate's wasm state and loses whatever was in flight).
    let log = h.stop_and_read_log();
    assert!(
        log.contains("webhook_batch_failed"),
        "the outage never reached the consumer"
    );
    assert!(
        !log.contains("panicked"),
        "the runtime logged a panic:\n{log}"
    );
}

/// A delivery is a span of what made its event: a `send` frame's
/// `traceparent` reaches the receiver with the user's message and with the
/// assistant's reply (whose turn joined that trace); an untraced message's
/// delivery starts a trace of its own.
#[tokio::test]
async fn deliveries_join_the_trace_of_the_message_that_made_them() {
    let h = runtime();
    let ops = User::admin(h, "ops");
    let name = unique("traced");
    endpoint(&ops, &name, json!(["message.created"])).await;
    let u = User::new(h, "tracer");
    let s = u.create_session("traced").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    send_json(
        &mut ws,
        json!({"type": "send", "client_id": "tr1", "text": "traced",
               "traceparent": format!("00-{trace}-00f067aa0ba902b7-01")}),
    )
    .await;
    llm::until_reply(&mut ws).await;
    send_msg(&mut ws, "tr2", "untraced").await;
    llm::until_reply(&mut ws).await;
    let of_session = || async {
        received(&name)
            .await
            .into_iter()
            .filter(|r| r["verified"] == true && r["body"]["data"]["session_id"] == s.as_str())
            .collect::<Vec<Value>>()
    };
    until(30, "four message events", || async {
        of_session().await.len() >= 4
    })
    .await;
    let got = of_session().await;
    let parent = |r: &Value| -> Vec<String> {
        let p = r["traceparent"].as_str().expect("a traceparent header");
        let parts: Vec<String> = p.split('-').map(str::to_owned).collect();
        assert_eq!(parts.len(), 4, "{p}");
        assert_eq!(parts[0], "00");
        assert!(
            parts[2].len() == 16 && parts[2] != "00f067aa0ba902b7",
            "{p}"
        );
        parts
    };
    let by_client = |id: &str| {
        got.iter()
            .find(|r| r["body"]["data"]["message"]["client_id"] == id)
            .unwrap_or_else(|| panic!("no event for {id}: {got:?}"))
    };
    assert_eq!(parent(by_client("tr1"))[1], trace);
    assert_ne!(parent(by_client("tr2"))[1], trace);
    // The replies: the first joined the traced turn, the second did not.
    let replies: Vec<Vec<String>> = got
        .iter()
        .filter(|r| r["body"]["data"]["message"]["author"]["kind"] == "assistant")
        .map(parent)
        .collect();
    assert_eq!(replies.len(), 2, "{got:?}");
    assert_eq!(
        replies.iter().filter(|p| p[1] == trace).count(),
        1,
        "{replies:?}"
    );
}

/// With no endpoint that takes them, a session produces no events at all
/// (each isolate's reading of the endpoints holds them back before they
/// are sealed and stored: `webhooks::gate`), and an endpoint created later
/// gets what happens next. Its own runtime, where no other test's endpoint
/// is enabled; what was produced is read from the object's storage, whose
/// `hooks` table counts every row it was ever given.
#[tokio::test]
async fn no_event_is_produced_while_no_endpoint_takes_it() {
    let dir = temp_dir("hooks-gate");
    let h = Harness::start(Options {
        persist: Some(dir.clone()),
        vars: llm::runtime_vars(&unique("gate"), &[("WEBHOOK_ALLOW_HTTP", "on")]),
        ..Default::default()
    });
    let u = User::new(&h, "quiet");
    let s = u.create_session("nobody listens").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    // Four messages and four replies: eight `message.created` and four
    // `turn.completed` events, had they been produced.
    for i in 1..=4 {
        send_msg(&mut ws, &format!("q{i}"), "hello?").await;
        llm::until_reply(&mut ws).await;
    }
    let ops = User::admin(&h, "ops");
    let name = unique("late");
    endpoint(&ops, &name, json!(["message.created"])).await;
    send_msg(&mut ws, "q5", "anyone there now?").await;
    llm::until_reply(&mut ws).await;
    until(30, "the reply after the endpoint was made", || async {
        let got = events(&name, &s).await;
        got.iter()
            .any(|e| e["body"]["data"]["message"]["author"]["kind"] == "assistant")
    })
    .await;
    drop(ws);
    assert_eq!(h.terminate(), Some(0));
    let produced = object_sql(
        &dir,
        &s,
        "SELECT seq FROM sqlite_sequence WHERE name = 'hooks'",
        json!([]),
    )
    .first()
    .and_then(|r| r["seq"].as_i64())
    .unwrap_or(0);
    // After the endpoint: q5 and its reply (the turn's event is of a kind
    // it does not take). Before it: the creation's event, made while this
    // isolate had no reading yet and then dropped, and at most one more per
    // reading gone stale (every 10 s) on a slow machine; never the twelve.
    assert!(
        (2..=5).contains(&produced),
        "{produced} events stored by the session"
    );
}

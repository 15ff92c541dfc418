//! The support desk under load (issue 16's figures):
//!
//! - **Claim race.** `runs` times: a session is escalated, then `racers`
//!   agents claim it at once over HTTP. Exactly one must get 200 and every
//!   other `409 already_assigned`; anything else is counted and reported.
//! - **Inbox fan-out.** `agents` inbox sockets (the desk object's) watch
//!   while `sessions` sessions, each with its own socket, send `messages`
//!   each at `rate` messages a second in all. Every message's `inbox` item
//!   must reach every agent; latency runs from when the send was due to
//!   the item's arrival, so it includes the session's commit and its call
//!   to the desk.

use crate::common::*;
use crate::{greeted, pct};
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Both desk phases, as `args` ask.
pub async fn run(h: &Harness, a: &crate::Args, report: &mut Value) {
    if a.claim_race.0 > 0 && a.claim_race.1 > 1 {
        report["claim_race"] = claim_race(h, a.claim_race.0, a.claim_race.1).await;
    }
    if a.desk.0 > 0 && a.desk.1 > 0 {
        report["inbox"] = inbox_fanout(h, a.desk.0, a.desk.1, a.desk_messages, a.desk_rate).await;
    }
}

fn agent(h: &Harness, n: usize) -> User {
    let u = User::new(h, &format!("agent{n}"));
    User {
        token: token_with_roles(&u.id, &u.name, &["admin"]),
        ..u
    }
}

pub async fn claim_race(h: &Harness, runs: usize, racers: usize) -> Value {
    println!("\nclaim race: {racers} agents claim one waiting session at once, {runs} runs");
    let customer = User::new(h, "race-customer");
    let agents: Vec<User> = (0..racers).map(|n| agent(h, n)).collect();
    let (mut clean_runs, mut other) = (0, 0);
    let mut latencies_us = Vec::new();
    for run in 0..runs {
        let s = customer.create_session(&format!("race-{run}")).await;
        let (status, body) = agents[0]
            .call(
                Method::POST,
                &format!("/v1/admin/sessions/{s}/escalate"),
                None,
            )
            .await;
        assert_eq!(status, 200, "escalate: {body}");
        let claims = agents.iter().map(|a| {
            let path = format!("/v1/admin/sessions/{s}/claim");
            async move {
                let t = Instant::now();
                let (status, body) = a.call(Method::POST, &path, None).await;
                (status, body, t.elapsed().as_micros() as u64)
            }
        });
        let answers = futures::future::join_all(claims).await;
        let won = answers.iter().filter(|(s, _, _)| *s == 200).count();
        let lost = answers
            .iter()
            .filter(|(s, b, _)| *s == 409 && b["error"]["code"] == "already_assigned")
            .count();
        other += racers - won - lost;
        if won == 1 && lost == racers - 1 {
            clean_runs += 1;
        }
        latencies_us.extend(answers.iter().map(|(_, _, us)| *us));
    }
    latencies_us.sort_unstable();
    let (p50, p99) = (pct(&latencies_us, 0.5), pct(&latencies_us, 0.99));
    println!(
        "  {clean_runs} of {runs} runs had exactly one winner; {other} other answers; claim p50 {p50:.1} ms, p99 {p99:.1} ms"
    );
    json!({"runs": runs, "racers": racers, "exactly_one_winner": clean_runs,
           "other_answers": other, "claim_p50_ms": p50, "claim_p99_ms": p99})
}

/// Reads one agent's inbox until it has `expected` message items or
/// nothing came for `QUIET`; gives each one's latency (µs) and how many
/// repeated. It starts before the sessions are made, so their `created`
/// items never pile up unread.
async fn watch(mut ws: Ws, expected: usize, epoch: Instant) -> (Vec<u64>, usize) {
    const QUIET: Duration = Duration::from_secs(30);
    let mut seen = std::collections::HashSet::new();
    let (mut latencies, mut repeats) = (Vec::with_capacity(expected), 0);
    while seen.len() < expected {
        let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(QUIET, ws.next()).await else {
            break;
        };
        let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
        // A build that groups items into `batch` frames is measured too.
        let items = match v["type"].as_str() {
            Some("batch") => v["frames"].as_array().cloned().unwrap_or_default(),
            _ => vec![v],
        };
        let now = epoch.elapsed().as_micros() as u64;
        for v in items {
            if v["type"] != "inbox" || v["event"] != "message" {
                continue;
            }
            // The preview is "desk:<n>-<i>:<due µs>".
            let text = v["preview"]["text"].as_str().unwrap_or_default();
            let mut parts = text
                .strip_prefix("desk:")
                .unwrap_or_default()
                .rsplitn(2, ':');
            let (Some(due), Some(key)) = (parts.next(), parts.next()) else {
                continue;
            };
            if !seen.insert(key.to_string()) {
                repeats += 1;
                continue;
            }
            latencies.push(now.saturating_sub(due.parse().unwrap_or(now)));
        }
    }
    (latencies, repeats)
}

pub async fn inbox_fanout(
    h: &Harness,
    agents: usize,
    sessions: usize,
    messages: usize,
    rate: u32,
) -> Value {
    println!("\ninbox: {agents} agent sockets × {sessions} sessions, {messages} messages each at {rate}/s in all");
    let url = h.ws_url("/v1/admin/inbox/ws");
    let mut inboxes = Vec::new();
    for n in 0..agents {
        let mut ws = connect_bearer(&url, &agent(h, n).token).await;
        assert_eq!(recv(&mut ws).await["type"], "ready");
        inboxes.push(ws);
    }
    let total = sessions * messages;
    let epoch = Instant::now();
    let watchers: Vec<_> = inboxes
        .into_iter()
        .map(|ws| tokio::spawn(watch(ws, total, epoch)))
        .collect();
    // Sessions and their sockets, 16 at a time.
    let owner = User::new(h, "desk-customer");
    let made = futures::stream::iter((0..sessions).map(|i| {
        let owner = &owner;
        async move {
            let s = owner.create_session(&format!("desk-{i}")).await;
            let ws = connect_bearer(&owner.plain_ws_url(&s, None), &owner.token).await;
            greeted(ws, 30).await
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    let mut senders: Vec<Ws> = made.into_iter().flatten().collect();
    let open = senders.len();
    if open < sessions {
        println!("  only {open} of {sessions} sessions opened");
    }

    let start = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    for k in 0..open * messages {
        let (n, i) = (k % open, k / open);
        let due = start + gap * k as u32;
        tokio::time::sleep_until(due.into()).await;
        let text = format!("desk:{n}-{i}:{}", due.duration_since(epoch).as_micros());
        let f = json!({"type": "send", "client_id": format!("d{n}-{i}"), "text": text});
        let _ = senders[n].send(Message::text(f.to_string())).await;
    }
    let mut all = Vec::new();
    let (mut received, mut repeats) = (0, 0);
    for w in watchers {
        let (l, r) = w.await.unwrap_or_default();
        received += l.len();
        repeats += r;
        all.extend(l);
    }
    all.sort_unstable();
    let expected = total * agents;
    let (p50, p99, max) = (pct(&all, 0.5), pct(&all, 0.99), pct(&all, 1.0));
    println!(
        "  {open} sessions open; {received} of {expected} items delivered, {repeats} repeated; p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
    );
    json!({"agents": agents, "sessions": open, "messages": total, "rate": rate,
           "expected": expected, "delivered": received, "repeated": repeats,
           "p50_ms": p50, "p99_ms": p99, "max_ms": max})
}

//! Webhooks under load (issue 16's figures), against the local receiver
//! (`tests/common/hooks.rs`), which verifies every signature:
//!
//! - **Latency.** `sessions` sessions, each with a socket, send `messages`
//!   each at `rate` messages a second in all. Latency runs from a message's
//!   ack at the client to its `message.created` reaching the receiver (one
//!   clock: both are on this machine), so it holds the session's hand-off
//!   to the queue, the queue's batching (`max_batch_timeout`, 1 s), the
//!   consumer and the signed POST.
//! - **Backlog after an outage.** The receiver answers 503 for
//!   `outage_secs` while one session sends a message a second; then it
//!   comes back, and the time until the last of them arrives is the
//!   backlog's drain time, under the shipped retry waits.

use crate::common::hooks::{received, set_mode, RECEIVER};
use crate::common::*;
use crate::pct;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// Both phases, as `args` ask.
pub async fn run(h: &Harness, a: &crate::Args, report: &mut Value) {
    let ops = User::new(h, "hooks-ops");
    let ops = User {
        token: token_with_roles(&ops.id, &ops.name, &["admin"]),
        ..ops
    };
    if a.hooks.0 > 0 && a.hooks.1 > 0 {
        report["webhooks"] = latency(h, &ops, a.hooks.0, a.hooks.1, a.hooks_rate).await;
    }
    if a.hooks_outage_secs > 0 {
        report["webhook_outage"] = outage(h, &ops, a.hooks_outage_secs).await;
    }
}

/// A fresh endpoint for receiver `name`, taking user messages only.
async fn endpoint(ops: &User, name: &str) -> String {
    let url = format!("{}/hook/{name}", RECEIVER.url());
    let (status, e) = ops
        .call(
            Method::POST,
            "/v1/admin/webhooks",
            Some(json!({"url": url, "events": ["message.created"]})),
        )
        .await;
    assert_eq!(status, 201, "{e}");
    let secret = e["secret"].as_str().unwrap().to_string();
    set_mode(name, &secret, "ok").await;
    secret
}

/// Arrival time (unix ms) of each verified message by client id.
async fn arrivals(name: &str) -> (HashMap<String, f64>, usize) {
    let all = received(name).await;
    let bad = all.iter().filter(|r| r["verified"] == false).count();
    let mut first = HashMap::new();
    for r in all.iter().filter(|r| r["verified"] == true) {
        let m = &r["body"]["data"]["message"];
        if m["author"]["kind"] != "user" {
            continue;
        }
        let id = m["client_id"].as_str().unwrap_or_default().to_string();
        first
            .entry(id)
            .or_insert(r["at_ms"].as_f64().unwrap_or(f64::NAN));
    }
    (first, bad)
}

async fn latency(h: &Harness, ops: &User, sessions: usize, messages: usize, rate: u32) -> Value {
    println!(
        "\nwebhooks: {sessions} sessions x {messages} messages at {rate} msg/s, ack -> receiver"
    );
    let name = unique("bench-hooks");
    endpoint(ops, &name).await;
    let owner = User::new(h, "hooks-owner");
    let every = Duration::from_secs_f64(sessions as f64 / rate as f64);
    let start = Instant::now() + Duration::from_millis(500);
    let senders = (0..sessions).map(|n| {
        let owner = &owner;
        async move {
            let s = owner.create_session(&format!("hooks-{n}")).await;
            let (mut ws, _, _) = owner.join(&s, None).await;
            let offset = every.mul_f64(n as f64 / sessions as f64);
            let mut acked = Vec::with_capacity(messages);
            for i in 0..messages {
                tokio::time::sleep_until((start + offset + every * i as u32).into()).await;
                let id = format!("h{n}-{i}");
                send_json(
                    &mut ws,
                    json!({"type": "send", "client_id": id, "text": "webhook bench"}),
                )
                .await;
                loop {
                    let f = recv(&mut ws).await;
                    if f["type"] == "ack" && f["client_id"] == id.as_str() {
                        acked.push((id, unix_ms()));
                        break;
                    }
                }
            }
            acked
        }
    });
    let acked: Vec<(String, f64)> = futures::future::join_all(senders).await.concat();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (got, bad) = loop {
        let (got, bad) = arrivals(&name).await;
        if got.len() >= acked.len() || Instant::now() > deadline {
            break (got, bad);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut us: Vec<u64> = acked
        .iter()
        .filter_map(|(id, at)| got.get(id).map(|g| ((g - at).max(0.0) * 1000.0) as u64))
        .collect();
    us.sort_unstable();
    let (p50, p99, max) = (pct(&us, 0.5), pct(&us, 0.99), pct(&us, 1.0));
    println!(
        "  {} of {} delivered, {bad} failed verification; p50 {p50:.0} ms, p99 {p99:.0} ms, max {max:.0} ms",
        us.len(),
        acked.len()
    );
    json!({"sessions": sessions, "messages": acked.len(), "delivered": us.len(),
           "unverified": bad, "p50_ms": p50, "p99_ms": p99, "max_ms": max})
}

async fn outage(h: &Harness, ops: &User, secs: u64) -> Value {
    println!(
        "\nwebhook outage: the receiver answers 503 for {secs} s while a session sends 1 msg/s"
    );
    let name = unique("bench-outage");
    let secret = endpoint(ops, &name).await;
    set_mode(&name, &secret, "down").await;
    let owner = User::new(h, "outage-owner");
    let s = owner.create_session("outage").await;
    let (mut ws, _, _) = owner.join(&s, None).await;
    let began = Instant::now();
    let mut sent = 0;
    while began.elapsed() < Duration::from_secs(secs) {
        send_msg(&mut ws, &format!("o{sent}"), "sent during the outage").await;
        sent += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let refused = received(&name)
        .await
        .iter()
        .filter(|r| r["down"] == true)
        .count();
    set_mode(&name, &secret, "ok").await;
    let back = unix_ms();
    let deadline = Instant::now() + Duration::from_secs(600);
    let (got, bad) = loop {
        let (got, bad) = arrivals(&name).await;
        if got.len() >= sent || Instant::now() > deadline {
            break (got, bad);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let last = got.values().cloned().fold(back, f64::max);
    let drain_s = (last - back) / 1000.0;
    println!(
        "  {sent} sent, {refused} attempts refused during the outage; {} of {sent} delivered {drain_s:.1} s after the receiver returned ({bad} failed verification)",
        got.len()
    );
    json!({"outage_s": secs, "sent": sent, "refused_attempts": refused,
           "delivered": got.len(), "drain_s": drain_s, "unverified": bad})
}

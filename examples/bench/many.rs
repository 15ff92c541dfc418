//! Many sessions × many sockets: opens `sessions × per_session` sockets,
//! lets every session object go idle long enough to hibernate, measures
//! workerd's memory, then fans messages out across all of them at once.
//!
//! Sockets connect with `Authorization: Bearer` (the non-browser path), so
//! the figure is the socket's cost, not ticket issuance.

use crate::common::*;
use crate::{greeted, pct, receive, workerd_rss_kib};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

async fn open(url: String, token: String) -> Option<Ws> {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async(bearer_request(&url, &token)),
    )
    .await
    .ok()?
    .ok()?;
    greeted(ws, 30).await
}

pub async fn run(
    h: &Harness,
    owner: &User,
    sessions: usize,
    per_session: usize,
    messages: usize,
    idle_secs: u64,
) -> Value {
    println!("\nmany: {sessions} sessions × {per_session} sockets");
    let mut ids = Vec::new();
    for i in 0..sessions {
        ids.push(owner.create_session(&format!("many-{i}")).await);
    }
    let rss_before = workerd_rss_kib(h);
    let start = Instant::now();
    let targets: Vec<(usize, String)> = ids
        .iter()
        .enumerate()
        .flat_map(|(n, s)| (0..per_session).map(move |_| (n, s.clone())))
        .collect();
    let mut opened: Vec<Vec<Ws>> = (0..sessions).map(|_| Vec::new()).collect();
    let mut failed = 0;
    let mut pending = futures::stream::iter(targets.into_iter().map(|(n, s)| {
        let url = owner.plain_ws_url(&s, None);
        let token = owner.token.clone();
        async move { (n, open(url, token).await) }
    }))
    .buffer_unordered(64);
    while let Some((n, ws)) = pending.next().await {
        match ws {
            Some(ws) => opened[n].push(ws),
            None => failed += 1,
        }
    }
    drop(pending);
    let connect_secs = start.elapsed().as_secs_f64();
    let total: usize = opened.iter().map(Vec::len).sum();
    println!(
        "  {total} opened, {failed} failed in {connect_secs:.1} s ({:.0}/s)",
        total as f64 / connect_secs
    );
    let rss_open = workerd_rss_kib(h);
    // Idle: nothing happens, so the runtime may hibernate every object.
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let rss_idle = workerd_rss_kib(h);
    let per_socket = |after: Option<u64>| match (rss_before, after) {
        (Some(b), Some(a)) if total > 0 => Some(a.saturating_sub(b) as f64 / total as f64),
        _ => None,
    };
    println!(
        "  workerd RSS: {} KiB before, {} KiB open, {} KiB after {idle_secs} s idle → {} KiB per socket",
        rss_before.map_or("?".into(), |v| v.to_string()),
        rss_open.map_or("?".into(), |v| v.to_string()),
        rss_idle.map_or("?".into(), |v| v.to_string()),
        per_socket(rss_idle).map_or("?".into(), |v| format!("{v:.1}")),
    );

    // Fan-out across all of them: in every session the first socket sends
    // `messages`, every other socket of that session receives them.
    let epoch = Instant::now();
    let deadline = epoch + Duration::from_secs(60 + messages as u64);
    let run = "many".to_string();
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for (n, mut socks) in opened.into_iter().enumerate() {
        if socks.is_empty() {
            continue;
        }
        senders.push((n, socks.remove(0)));
        for ws in socks {
            receivers.push(tokio::spawn(receive(
                ws,
                format!("{run}{n}"),
                messages,
                epoch,
                deadline,
            )));
        }
    }
    let send_tasks: Vec<_> = senders
        .into_iter()
        .map(|(n, mut ws)| {
            tokio::spawn(async move {
                // One message every 100 ms, stamped with when it was due
                // (so a sender that falls behind shows up as latency).
                for i in 0..messages {
                    let due = epoch + Duration::from_millis(100 * i as u64);
                    tokio::time::sleep_until(due.into()).await;
                    let due_us = due.duration_since(epoch).as_micros();
                    let text = format!("{run}{n}:{i}:{due_us}", run = "many");
                    let f = json!({"type": "send", "client_id": format!("m{n}-{i}"), "text": text});
                    if ws.send(Message::text(f.to_string())).await.is_err() {
                        break;
                    }
                }
                ws
            })
        })
        .collect();
    let mut all = Vec::new();
    let (mut dups, mut order, mut lost, mut strays) = (0, 0, 0, 0);
    let mut last_us = 0;
    let expected = receivers.len() * messages;
    // Sockets stay open until every receiver is done: closing one would
    // send presence frames to the rest mid-measurement.
    let mut keep = Vec::new();
    for r in receivers {
        let (ws, seen) = r.await.unwrap();
        keep.push(ws);
        lost += messages - seen.received;
        dups += seen.duplicates;
        order += seen.order_violations;
        strays += seen.strays;
        last_us = last_us.max(seen.last_us);
        all.extend(seen.latencies_us);
    }
    for s in send_tasks {
        let _ = s.await;
    }
    // From the first send to the last delivery (the receivers' grace
    // period after it is not part of the rate).
    let elapsed = (last_us.max(1)) as f64 / 1e6;
    all.sort_unstable();
    println!(
        "  fan-out: {} deliveries of {expected}, lost {lost}, duplicated {dups}, out of order {order}, stray {strays}; p50 {:.1} ms, p95 {:.1}, p99 {:.1}, max {:.1}; {:.0} deliveries/s",
        all.len(),
        pct(&all, 0.5),
        pct(&all, 0.95),
        pct(&all, 0.99),
        all.last().map_or(f64::NAN, |m| *m as f64 / 1000.0),
        all.len() as f64 / elapsed
    );
    json!({
        "sessions": sessions, "sockets_per_session": per_session,
        "opened": total, "failed": failed, "connect_per_second": total as f64 / connect_secs,
        "workerd_rss_kib": {"before": rss_before, "open": rss_open, "idle": rss_idle},
        "rss_kib_per_socket_after_idle": per_socket(rss_idle),
        "rss_kib_per_socket_open": per_socket(rss_open),
        "idle_secs": idle_secs,
        "fanout": {
            "messages_per_session": messages, "expected": expected, "delivered": all.len(),
            "lost": lost, "duplicates": dups, "order_violations": order, "strays": strays,
            "p50_ms": pct(&all, 0.5), "p95_ms": pct(&all, 0.95), "p99_ms": pct(&all, 0.99),
            "max_ms": all.last().map(|m| *m as f64 / 1000.0),
            "deliveries_per_s": all.len() as f64 / elapsed,
        }
    })
}

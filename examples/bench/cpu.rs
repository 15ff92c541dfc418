//! Workerd CPU per message and per receiver, replication lag under load,
//! and the time to drain a D1 outage.
//!
//! CPU is read from `/proc/<workerd>/stat` (user + system time) around a
//! step, so it is everything workerd did for that traffic: the Worker, the
//! session object, its storage, the local D1 and the flushes that
//! replicate to it. One sender and one receiver give the cost per message;
//! the same rate to 50 receivers gives, by difference, the cost per extra
//! receiver.

use super::{fanout_step, open_sockets};
use crate::common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ).
const TICKS_PER_S: f64 = 100.0;

/// User + system CPU time of workerd so far, in ms.
fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at ")".
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 1000.0 / TICKS_PER_S)
}

/// CPU (µs of workerd) per message for `receivers` sockets at `rate`.
async fn step(h: &Harness, owner: &User, receivers: usize, rate: u32, secs: u64) -> Value {
    let pid = h.workerd_pid().expect("workerd runs under the harness");
    let s = owner.create_session(&format!("cpu-{receivers}")).await;
    let (mut sender, _, _) = owner.join(&s, None).await;
    let (socks, _, _) = open_sockets(owner, &s, receivers).await;
    // Settle: connects and their flush are not part of the step.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = cpu_ms(pid).unwrap_or(f64::NAN);
    let (_socks, st) = fanout_step(&mut sender, socks, rate, secs, 900 + receivers).await;
    // The flush of the step's last second belongs to it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = cpu_ms(pid).unwrap_or(f64::NAN);
    let per_message_us = (after - before) * 1000.0 / st.sent as f64;
    json!({
        "receivers": receivers,
        "rate": rate,
        "sent": st.sent,
        "lost": st.lost,
        "p50_ms": st.p50_ms,
        "p99_ms": st.p99_ms,
        "cpu_ms": after - before,
        "cpu_us_per_message": per_message_us,
    })
}

pub async fn run(h: &Harness, owner: &User, rate: u32, secs: u64) -> Value {
    println!("\nworkerd CPU: {rate} msg/s for {secs} s");
    let one = step(h, owner, 1, rate, secs).await;
    let fifty = step(h, owner, 50, rate, secs).await;
    let per_receiver = (fifty["cpu_us_per_message"].as_f64().unwrap_or(f64::NAN)
        - one["cpu_us_per_message"].as_f64().unwrap_or(f64::NAN))
        / 49.0;
    for s in [&one, &fifty] {
        println!(
            "  {:>2} receiver(s): {:.0} µs CPU per message ({:.0} ms for {} messages, lost {}), p50 {:.1} ms, p99 {:.1} ms",
            s["receivers"], s["cpu_us_per_message"].as_f64().unwrap_or(f64::NAN), s["cpu_ms"].as_f64().unwrap_or(f64::NAN),
            s["sent"], s["lost"], s["p50_ms"].as_f64().unwrap_or(f64::NAN), s["p99_ms"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!("  per extra receiver: {per_receiver:.1} µs");
    json!({"one_receiver": one, "fifty_receivers": fifty, "cpu_us_per_receiver": per_receiver})
}

/// The admin view of a session's outbox; None on a worker without it.
async fn replication(base: &str, ops: &str, s: &str) -> Option<Value> {
    let res = http()
        .get(format!("{base}/v1/admin/sessions/{s}/replication"))
        .bearer_auth(ops)
        .send()
        .await
        .ok()?;
    if res.status().as_u16() != 200 {
        return None;
    }
    res.json().await.ok()
}

/// Replication lag (age of the oldest unflushed change) sampled every
/// 100 ms while `rate` msg/s go to 50 receivers.
pub async fn lag(h: &Harness, owner: &User, rate: u32, secs: u64) -> Value {
    let s = owner.create_session("lag").await;
    let (mut sender, _, _) = owner.join(&s, None).await;
    let (socks, _, _) = open_sockets(owner, &s, 50).await;
    let ops = token_with_roles("bench-ops", "Ops", &["admin"]);
    if replication(&h.url, &ops, &s).await.is_none() {
        println!("\nreplication lag: not available on this worker");
        return Value::Null;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (url, s, ops, stop) = (h.url.clone(), s.clone(), ops.clone(), stop.clone());
        tokio::spawn(async move {
            let mut lags = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(r) = replication(&url, &ops, &s).await {
                    let age = r["oldest_at"].as_i64().map_or(0, |o| (now_ms() - o).max(0));
                    lags.push(age as u64);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            lags
        })
    };
    let (_socks, st) = fanout_step(&mut sender, socks, rate, secs, 990).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut lags = sampler.await.unwrap();
    lags.sort_unstable();
    let at = |p: f64| {
        lags.get(((lags.len() as f64 * p) as usize).min(lags.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "\nreplication lag at {rate} msg/s × 50 receivers ({} samples, delivery p99 {:.1} ms): p50 {} ms, p99 {} ms, max {} ms",
        lags.len(), st.p99_ms, at(0.5), at(0.99), lags.last().copied().unwrap_or(0)
    );
    json!({"rate": rate, "samples": lags.len(), "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": lags.last(), "delivery_p99_ms": st.p99_ms})
}

/// A D1 outage of `secs` with `rate` msg/s going on: whether every send is
/// acked meanwhile, and how long the backlog takes to drain afterwards.
pub async fn outage(h: &Harness, owner: &User, rate: u32, secs: u64) -> Value {
    let s = owner.create_session("outage").await;
    let (mut sender, _, _) = owner.join(&s, None).await;
    let (socks, _, _) = open_sockets(owner, &s, 1).await;
    let ops = token_with_roles("bench-ops", "Ops", &["admin"]);
    if replication(&h.url, &ops, &s).await.is_none() {
        println!("\nD1 outage: not available on this worker");
        return Value::Null;
    }
    h.d1_outage(true).await;
    let (_socks, st) = fanout_step(&mut sender, socks, rate, secs, 995).await;
    let backlog = replication(&h.url, &ops, &s).await.unwrap_or_default();
    h.d1_outage(false).await;
    let recovered = Instant::now();
    let deadline = recovered + Duration::from_secs(600);
    loop {
        let r = replication(&h.url, &ops, &s).await.unwrap_or_default();
        if r["pending"] == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain_ms = recovered.elapsed().as_millis() as u64;
    let rows = h
        .session_sql(
            &s,
            "SELECT count(*) AS n, count(DISTINCT seq) AS d FROM messages WHERE session_id = ?1",
            json!([s]),
        )
        .await;
    println!(
        "\nD1 outage of {secs} s at {rate} msg/s: {} sent, {} lost, p99 {:.1} ms; backlog {} changes, drained in {drain_ms} ms; D1 rows {} ({} distinct seqs)",
        st.sent, st.lost, st.p99_ms, backlog["pending"], rows[0]["n"], rows[0]["d"]
    );
    json!({"secs": secs, "rate": rate, "sent": st.sent, "lost": st.lost, "p99_ms": st.p99_ms,
           "backlog": backlog["pending"], "drain_ms": drain_ms, "d1_rows": rows[0]["n"], "d1_distinct_seqs": rows[0]["d"]})
}

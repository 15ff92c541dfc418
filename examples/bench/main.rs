//! Confab's benchmark: drives a Confab runtime with real WebSocket clients
//! over loopback and prints figures as a table and as JSON.
//!
//! It starts its own runtime (the release wasm build in workerd, via the
//! same harness as the e2e tests), so every run measures the same thing.
//! Every loop is bounded in count and time; the run stops by itself.
//!
//! ```text
//! cargo run --release --example bench -- [--sockets 50] [--rates 100,200,400,800,1600]
//!     [--step-secs 3] [--idle-sockets 1000] [--history-rows 100000]
//!     [--ttft-turns 30] [--many 100x100] [--many-messages 10] [--idle-secs 20]
//!     [--soak-minutes 0] [--soak-rate 50] [--d1-latency-ms 0] [--cold-starts 5]
//!     [--cpu-secs 10] [--cpu-rate 200] [--lag-secs 5] [--outage-secs 0] [--var K=V]
//!     [--http-requests 8000] [--claim-race 50x20] [--desk 100x1000]
//!     [--desk-messages 2] [--desk-rate 100] [--hooks 20x25] [--hooks-rate 50]
//!     [--hooks-outage-secs 0] [--resume 1000x500] [--search 100000x100]
//!     [--uploads 40x1048576]
//!     [--json target/bench.json]
//! cargo run --release --example bench -- --only-soak --soak-minutes 30
//! cargo run --release --example bench -- --only-desk   # claim race, agents' inbox
//! cargo run --release --example bench -- --only-webhooks --hooks-outage-secs 60
//! cargo run --example bench -- --smoke      # tiny zero-loss check, run by `make test`
//! ```
//!
//! Figures are noisy (2 cores shared by client and server); compare them
//! within one run, not across machines.

mod cold;
#[path = "../../tests/common/mod.rs"]
mod common;
mod cpu;
mod desk;
mod files;
mod history;
mod hooks;
mod http;
mod many;
mod resume;
mod search;
mod ttft;

use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

struct Args {
    sockets: usize,
    rates: Vec<u32>,
    step_secs: u64,
    idle_sockets: usize,
    json: Option<String>,
    smoke: bool,
    history_rows: u64,
    /// Search (`search.rs`): messages x sessions (a zero skips it).
    search: (usize, usize),
    /// Uploads (`files.rs`): files x bytes each (a zero skips it).
    uploads: (usize, usize),
    /// Messages x edits for the resume run (a zero skips it).
    resume: (usize, usize),
    ttft_turns: usize,
    many: (usize, usize),
    many_messages: usize,
    idle_secs: u64,
    soak_minutes: u64,
    soak_rate: u32,
    only_soak: bool,
    /// The support desk (`desk.rs`): claim race runs × racing agents,
    /// inbox agents × sessions, messages per session and their rate in
    /// all; `--only-desk` runs just these.
    claim_race: (usize, usize),
    desk: (usize, usize),
    desk_messages: usize,
    desk_rate: u32,
    only_desk: bool,
    /// Webhooks (`hooks.rs`), with `--only-webhooks` only: sessions ×
    /// messages and their rate in all, then an outage of the receiver
    /// (0 skips it).
    hooks: (usize, usize),
    hooks_rate: u32,
    hooks_outage_secs: u64,
    only_webhooks: bool,
    /// Every D1 call waits this long (the harness's `--d1-latency-ms`).
    d1_latency_ms: Option<u64>,
    /// Fresh runtimes started to time cold start (0 skips it).
    cold_starts: usize,
    /// Seconds of the CPU-per-message steps (0 skips them), and their rate.
    cpu_secs: u64,
    cpu_rate: u32,
    /// Seconds of the replication-lag step (0 skips it).
    lag_secs: u64,
    /// Seconds of a D1 outage under traffic, then the drain (0 skips it).
    outage_secs: u64,
    /// Requests of the HTTP-load memory step (0 skips it).
    http_requests: usize,
    /// Extra runtime variables (`--var K=V`, repeatable), e.g. to take
    /// replication off the measured path with a long interval.
    vars: Vec<(String, String)>,
}

fn args() -> Args {
    let mut a = Args {
        sockets: 50,
        rates: vec![100, 200, 400, 800, 1600],
        step_secs: 3,
        idle_sockets: 1000,
        json: None,
        smoke: false,
        history_rows: 100_000,
        search: (100_000, 100),
        uploads: (40, 1 << 20),
        resume: (1000, 500),
        ttft_turns: 30,
        many: (100, 100),
        many_messages: 10,
        idle_secs: 20,
        soak_minutes: 0,
        soak_rate: 50,
        only_soak: false,
        claim_race: (50, 20),
        desk: (100, 1000),
        desk_messages: 2,
        desk_rate: 100,
        only_desk: false,
        hooks: (20, 25),
        hooks_rate: 50,
        hooks_outage_secs: 0,
        only_webhooks: false,
        d1_latency_ms: None,
        cold_starts: 5,
        cpu_secs: 10,
        cpu_rate: 200,
        lag_secs: 5,
        outage_secs: 0,
        http_requests: 8000,
        vars: Vec::new(),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = || argv.get(i + 1).cloned().unwrap_or_else(|| usage(&argv[i]));
        match argv[i].as_str() {
            "--sockets" => a.sockets = value().parse().unwrap_or_else(|_| usage("--sockets")),
            "--rates" => {
                a.rates = value()
                    .split(',')
                    .map(|r| r.parse().unwrap_or_else(|_| usage("--rates")))
                    .collect()
            }
            "--step-secs" => a.step_secs = value().parse().unwrap_or_else(|_| usage("--step-secs")),
            "--idle-sockets" => {
                a.idle_sockets = value().parse().unwrap_or_else(|_| usage("--idle-sockets"))
            }
            "--json" => a.json = Some(value()),
            "--history-rows" => {
                a.history_rows = value().parse().unwrap_or_else(|_| usage("--history-rows"))
            }
            "--ttft-turns" => {
                a.ttft_turns = value().parse().unwrap_or_else(|_| usage("--ttft-turns"))
            }
            "--many" => a.many = pair(&value(), "--many"),
            "--search" => a.search = pair(&value(), "--search"),
            "--uploads" => a.uploads = pair(&value(), "--uploads"),
            "--resume" => a.resume = pair(&value(), "--resume"),
            "--claim-race" => a.claim_race = pair(&value(), "--claim-race"),
            "--desk" => a.desk = pair(&value(), "--desk"),
            "--desk-messages" => {
                a.desk_messages = value().parse().unwrap_or_else(|_| usage("--desk-messages"))
            }
            "--desk-rate" => a.desk_rate = value().parse().unwrap_or_else(|_| usage("--desk-rate")),
            "--only-desk" => {
                a.only_desk = true;
                i += 1;
                continue;
            }
            "--hooks" => a.hooks = pair(&value(), "--hooks"),
            "--hooks-rate" => {
                a.hooks_rate = value().parse().unwrap_or_else(|_| usage("--hooks-rate"))
            }
            "--hooks-outage-secs" => {
                a.hooks_outage_secs = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--hooks-outage-secs"))
            }
            "--only-webhooks" => {
                a.only_webhooks = true;
                i += 1;
                continue;
            }
            "--many-messages" => {
                a.many_messages = value().parse().unwrap_or_else(|_| usage("--many-messages"))
            }
            "--idle-secs" => a.idle_secs = value().parse().unwrap_or_else(|_| usage("--idle-secs")),
            "--soak-minutes" => {
                a.soak_minutes = value().parse().unwrap_or_else(|_| usage("--soak-minutes"))
            }
            "--soak-rate" => a.soak_rate = value().parse().unwrap_or_else(|_| usage("--soak-rate")),
            "--cold-starts" => {
                a.cold_starts = value().parse().unwrap_or_else(|_| usage("--cold-starts"))
            }
            "--var" => {
                let v = value();
                let (k, val) = v.split_once('=').unwrap_or_else(|| usage("--var"));
                a.vars.push((k.to_string(), val.to_string()));
            }
            "--http-requests" => {
                a.http_requests = value().parse().unwrap_or_else(|_| usage("--http-requests"))
            }
            "--cpu-secs" => a.cpu_secs = value().parse().unwrap_or_else(|_| usage("--cpu-secs")),
            "--cpu-rate" => a.cpu_rate = value().parse().unwrap_or_else(|_| usage("--cpu-rate")),
            "--lag-secs" => a.lag_secs = value().parse().unwrap_or_else(|_| usage("--lag-secs")),
            "--outage-secs" => {
                a.outage_secs = value().parse().unwrap_or_else(|_| usage("--outage-secs"))
            }
            "--d1-latency-ms" => {
                a.d1_latency_ms = Some(value().parse().unwrap_or_else(|_| usage("--d1-latency-ms")))
            }
            "--only-soak" => {
                a.only_soak = true;
                i += 1;
                continue;
            }
            "--smoke" => {
                a.smoke = true;
                i += 1;
                continue;
            }
            other => usage(other),
        }
        i += 2;
    }
    a
}

/// `AxB` as two counts; `0` for none.
fn pair(v: &str, flag: &str) -> (usize, usize) {
    match v.split_once('x') {
        Some((l, r)) => (
            l.parse().unwrap_or_else(|_| usage(flag)),
            r.parse().unwrap_or_else(|_| usage(flag)),
        ),
        None if v == "0" => (0, 0),
        None => usage(flag),
    }
}

fn usage(bad: &str) -> ! {
    eprintln!("bench: bad argument {bad}; see the doc comment of examples/bench.rs");
    std::process::exit(2)
}

/// What one receiver saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u64>,
    received: usize,
    duplicates: usize,
    order_violations: usize,
    /// Frames that should not be there: `message`s of another run, `error`
    /// frames, anything not JSON.
    strays: usize,
    /// When the last new message arrived (µs since the epoch).
    last_us: u64,
}

/// After a receiver has every message it expects, it keeps reading this
/// long, so late duplicates and stray frames are seen and counted.
const GRACE: Duration = Duration::from_millis(500);

/// Reads `message` frames until `expected` distinct ones of this run have
/// arrived (then for `GRACE` more) or `deadline` passes. The text carries
/// `run:index:due_us`: when the schedule said to send it, so latency
/// includes any delay the sender itself fell behind by (no coordinated
/// omission).
async fn receive(
    mut ws: Ws,
    run: String,
    expected: usize,
    epoch: Instant,
    deadline: Instant,
) -> (Ws, Seen) {
    let mut seen = Seen::default();
    let mut ids = HashSet::new();
    let mut last_seq = 0u64;
    let mut until = deadline;
    loop {
        if ids.len() >= expected && until == deadline {
            until = (Instant::now() + GRACE).min(deadline);
        }
        let left = until.saturating_duration_since(Instant::now());
        let frame = match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => t,
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => break,
            Ok(Some(Ok(_))) => continue,
        };
        let Ok(v) = serde_json::from_str::<Value>(&frame) else {
            seen.strays += 1;
            continue;
        };
        let messages = match v["type"].as_str() {
            Some("message") => vec![v],
            // Messages committed together (sockets that asked, `batch=1`).
            Some("batch") => v["frames"].as_array().cloned().unwrap_or_default(),
            Some("error") => {
                seen.strays += 1;
                continue;
            }
            // Presence, receipts, typing: not about this run.
            _ => continue,
        };
        for v in messages {
            seen.take(&v, &run, &mut ids, &mut last_seq, epoch);
        }
    }
    (ws, seen)
}

impl Seen {
    /// Counts one `message` frame of a run.
    fn take(
        &mut self,
        v: &Value,
        run: &str,
        ids: &mut HashSet<String>,
        last_seq: &mut u64,
        epoch: Instant,
    ) {
        let seen = self;
        let text = v["text"].as_str().unwrap_or("");
        let mut parts = text.split(':');
        if parts.next() != Some(run) {
            seen.strays += 1;
            return;
        }
        let (Some(idx), Some(due)) = (parts.next(), parts.next()) else {
            seen.strays += 1;
            return;
        };
        let seq = v["seq"].as_u64().unwrap_or(0);
        if seq <= *last_seq {
            seen.order_violations += 1;
        }
        *last_seq = seq;
        if !ids.insert(idx.to_string()) {
            seen.duplicates += 1;
            return;
        }
        seen.received += 1;
        let now_us = epoch.elapsed().as_micros() as u64;
        seen.last_us = now_us;
        seen.latencies_us
            .push(now_us.saturating_sub(due.parse().unwrap_or(now_us)));
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

struct Step {
    rate: u32,
    /// Sends per second actually achieved by the sender.
    sent_per_s: f64,
    sent: usize,
    delivered: usize,
    expected: usize,
    lost: usize,
    duplicates: usize,
    order_violations: usize,
    strays: usize,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    delivered_per_s: f64,
}

impl Step {
    /// Nothing lost, repeated, reordered or out of place.
    fn clean(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.order_violations == 0 && self.strays == 0
    }
}

/// One fan-out step: `rate` messages/s for `secs` from one sender to
/// `receivers` sockets of one session.
async fn fanout_step(
    sender: &mut Ws,
    receivers: Vec<Ws>,
    rate: u32,
    secs: u64,
    step_no: usize,
) -> (Vec<Ws>, Step) {
    let count = (rate as u64 * secs) as usize;
    let run = format!("r{step_no}");
    let epoch = Instant::now();
    let deadline = epoch + Duration::from_secs(secs + 15);
    let tasks: Vec<_> = receivers
        .into_iter()
        .map(|ws| tokio::spawn(receive(ws, run.clone(), count, epoch, deadline)))
        .collect();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    for i in 0..count {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        // Stamped with when it was due, not when it went out.
        let due_us = due.duration_since(epoch).as_micros();
        let frame = json!({"type": "send", "client_id": format!("{run}-{i}"), "text": format!("{run}:{i}:{due_us}")});
        sender.send(Message::text(frame.to_string())).await.unwrap();
    }
    let sent_per_s = count as f64 / start.elapsed().as_secs_f64().max(1e-9);
    // The sender's own acks and echoes are drained so its buffer never fills.
    let drain_deadline = Instant::now() + Duration::from_secs(15);
    let mut acks = 0;
    while acks < count && Instant::now() < drain_deadline {
        match tokio::time::timeout(Duration::from_secs(15), sender.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("\"type\":\"ack\"") => acks += 1,
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    let mut sockets = Vec::new();
    let mut all: Vec<u64> = Vec::new();
    let (mut lost, mut dups, mut order, mut strays) = (0, 0, 0, 0);
    let mut delivered = 0;
    let mut last_us = 0;
    for t in tasks {
        let (ws, seen) = t.await.unwrap();
        sockets.push(ws);
        lost += count - seen.received;
        dups += seen.duplicates;
        order += seen.order_violations;
        strays += seen.strays;
        delivered += seen.received;
        last_us = last_us.max(seen.last_us);
        all.extend(&seen.latencies_us);
    }
    // From the first send to the last delivery.
    let elapsed = Duration::from_micros(last_us.max(1));
    all.sort_unstable();
    let step = Step {
        rate,
        sent_per_s,
        sent: count,
        delivered,
        expected: count * sockets.len(),
        lost,
        duplicates: dups,
        order_violations: order,
        strays,
        p50_ms: pct(&all, 0.50),
        p95_ms: pct(&all, 0.95),
        p99_ms: pct(&all, 0.99),
        max_ms: all.last().map(|m| *m as f64 / 1000.0).unwrap_or(f64::NAN),
        delivered_per_s: delivered as f64 / elapsed.as_secs_f64(),
    };
    (sockets, step)
}

/// Resident memory of the workerd process under the harness, in KiB.
fn workerd_rss_kib(h: &Harness) -> Option<u64> {
    let pid = h.workerd_pid()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The socket once it has been greeted (`hello`) and synced (`synced`), or
/// None if the server refused it after the upgrade (an `error` frame such
/// as `session_full`, or a close) or either frame takes over `secs`.
async fn greeted(mut ws: Ws, secs: u64) -> Option<Ws> {
    for want in ["hello", "synced"] {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(secs), ws.next())
                .await
                .ok()??
                .ok()?;
            let Message::Text(t) = frame else {
                return None; // a close (or anything not JSON text)
            };
            let v: Value = serde_json::from_str(&t).ok()?;
            match v["type"].as_str() {
                Some(t) if t == want => break,
                // Others joining meanwhile announce themselves.
                Some("presence") => continue,
                _ => return None,
            }
        }
    }
    Some(ws)
}

async fn open_sockets(user: &User, session: &str, n: usize) -> (Vec<Ws>, f64, usize) {
    let start = Instant::now();
    let mut sockets = Vec::with_capacity(n);
    let mut failed = 0;
    // Bounded concurrency: 50 handshakes in flight.
    let mut pending = futures::stream::iter((0..n).map(|_| {
        async move {
            // A ticket per socket, as browsers connect, and batch frames,
            // as the JS client asks (a build before them ignores it)
            // unless CONFAB_BENCH_BATCH=0.
            let batch = std::env::var("CONFAB_BENCH_BATCH").map_or(true, |v| v != "0");
            let url = format!("{}&batch={}", user.ws_url(session, None).await, batch as u8);
            let (ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
            greeted(ws, 20).await
        }
    }))
    .buffer_unordered(50);
    while let Some(r) = pending.next().await {
        match r {
            Some(ws) => sockets.push(ws),
            None => failed += 1,
        }
    }
    let rate = sockets.len() as f64 / start.elapsed().as_secs_f64();
    (sockets, rate, failed)
}

#[tokio::main]
async fn main() {
    let a = args();
    // The limits the run needs, set here rather than assumed (BENCHMARKS.md,
    // "Limits the benchmark lifts"): one user holds every socket and sends
    // every message, and the idle run puts all its sockets in one session.
    let h = Harness::start(Options {
        vars: vec![
            ("MAX_SOCKETS_PER_USER".into(), "32768".into()),
            ("MAX_SOCKETS_PER_SESSION".into(), "32768".into()),
            // 50 ticketed connects are in flight at once.
            ("MAX_TICKETS_PER_USER".into(), "1000".into()),
            // One sender at up to 1,600 msg/s.
            ("RATE_MESSAGES_PER_MINUTE".into(), "0".into()),
            // The resume run's one user edits 500 messages at once.
            ("RATE_ACTIONS_PER_MINUTE".into(), "0".into()),
            // The many-sessions run creates 100+ sessions as one user.
            ("MAX_SESSIONS_PER_USER_PER_DAY".into(), "1000000".into()),
            // The webhook phases' receiver is on loopback, over http.
            ("WEBHOOK_ALLOW_HTTP".into(), "on".into()),
        ]
        .into_iter()
        .chain(a.vars.iter().cloned())
        .collect(),
        d1_latency_ms: a.d1_latency_ms,
        ..Options::default()
    });
    let owner = User::new(&h, "bench");
    let mut report = json!({
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "d1_latency_ms": a.d1_latency_ms.unwrap_or(0),
        "build": if cfg!(debug_assertions) { "client: debug" } else { "client: release" },
    });

    if a.smoke {
        let s = owner.create_session("smoke").await;
        let (mut sender, _, _) = owner.join(&s, None).await;
        let (receivers, _, failed) = open_sockets(&owner, &s, 5).await;
        let (_, step) = fanout_step(&mut sender, receivers, 100, 1, 0).await;
        println!(
            "smoke: {} sent, {} of {} delivered, lost {}, duplicated {}, out of order {}, stray {}, p99 {:.1} ms",
            step.sent, step.delivered, step.expected, step.lost, step.duplicates, step.order_violations, step.strays, step.p99_ms
        );
        let ok = failed == 0 && step.clean();
        println!("{} passed, {} failed", ok as u8, !ok as u8);
        std::process::exit(if ok { 0 } else { 1 });
    }

    if a.only_webhooks {
        hooks::run(&h, &a, &mut report).await;
        write_report(&a, &report);
        return;
    }

    if a.only_desk {
        desk::run(&h, &a, &mut report).await;
        write_report(&a, &report);
        return;
    }

    if a.soak_minutes > 0 {
        let clean = soak(&owner, a.soak_minutes, a.soak_rate, &mut report).await;
        if a.only_soak {
            write_report(&a, &report);
            std::process::exit(if clean { 0 } else { 1 });
        }
    }

    // CPU per message first, on a quiet runtime.
    if a.cpu_secs > 0 {
        report["cpu"] = cpu::run(&h, &owner, a.cpu_rate, a.cpu_secs).await;
    }

    // Fan-out, on a quiet runtime: 1 session × N sockets, stepping the
    // send rate up.
    let s = owner.create_session("fanout").await;
    let (mut sender, _, _) = owner.join(&s, None).await;
    let (mut receivers, _, _) = open_sockets(&owner, &s, a.sockets).await;
    println!(
        "\nfan-out: 1 session × {} sockets, {} s per step\n{:>6} {:>7} {:>7} {:>10} {:>6} {:>5} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>12}",
        receivers.len(),
        a.step_secs,
        "rate",
        "sent/s",
        "sent",
        "delivered",
        "lost",
        "dup",
        "order",
        "stray",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "deliv/s"
    );
    let mut steps = Vec::new();
    let mut best: Option<u32> = None;
    for (i, rate) in a.rates.iter().enumerate() {
        let (back, st) = fanout_step(&mut sender, receivers, *rate, a.step_secs, i + 1).await;
        receivers = back;
        println!(
            "{:>6} {:>7.0} {:>7} {:>10} {:>6} {:>5} {:>6} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>12.0}",
            st.rate,
            st.sent_per_s,
            st.sent,
            st.delivered,
            st.lost,
            st.duplicates,
            st.order_violations,
            st.strays,
            st.p50_ms,
            st.p95_ms,
            st.p99_ms,
            st.max_ms,
            st.delivered_per_s
        );
        let clean = st.clean();
        steps.push(json!({
            "rate": st.rate, "sent_per_s": st.sent_per_s, "sent": st.sent, "delivered": st.delivered, "expected": st.expected,
            "lost": st.lost, "duplicates": st.duplicates, "order_violations": st.order_violations, "strays": st.strays,
            "p50_ms": st.p50_ms, "p95_ms": st.p95_ms, "p99_ms": st.p99_ms, "max_ms": st.max_ms,
            "delivered_per_s": st.delivered_per_s,
        }));
        if clean && st.p99_ms <= 50.0 {
            best = Some(*rate);
        } else {
            break;
        }
    }
    println!(
        "highest send rate with p99 ≤ 50 ms and no loss: {}",
        best.map_or("none of the rates tried".into(), |r| format!(
            "{r} msg/s ({} deliveries/s)",
            r as usize * receivers.len()
        ))
    );
    report["fanout"] =
        json!({"sockets": receivers.len(), "steps": steps, "best_rate_p99_le_50ms": best});
    drop(receivers);
    if a.lag_secs > 0 {
        let rate = best.unwrap_or(a.rates[0]);
        report["replication_lag"] = cpu::lag(&h, &owner, rate, a.lag_secs).await;
    }
    if a.outage_secs > 0 {
        report["d1_outage"] = cpu::outage(&h, &owner, 50, a.outage_secs).await;
    }

    if a.http_requests > 0 {
        report["http_memory"] = http::run(&h, &owner, a.http_requests, 10).await;
    }

    // Connect rate and memory per idle socket.
    let idle_session = owner.create_session("idle").await;
    let rss_before = workerd_rss_kib(&h);
    let (idle, connect_rate, connect_failed) =
        open_sockets(&owner, &idle_session, a.idle_sockets).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = workerd_rss_kib(&h);
    let per_socket = match (rss_before, rss_after) {
        (Some(b), Some(a2)) if !idle.is_empty() => {
            Some((a2.saturating_sub(b)) as f64 / idle.len() as f64)
        }
        _ => None,
    };
    println!(
        "\nconnections: {} opened, {connect_failed} failed, {connect_rate:.0}/s",
        idle.len()
    );
    println!(
        "workerd RSS: {} KiB before, {} KiB after → {} KiB per idle socket",
        rss_before.map_or("?".into(), |v| v.to_string()),
        rss_after.map_or("?".into(), |v| v.to_string()),
        per_socket.map_or("?".into(), |v| format!("{v:.1}"))
    );
    report["connections"] = json!({
        "opened": idle.len(), "failed": connect_failed, "per_second": connect_rate,
        "workerd_rss_kib_before": rss_before, "workerd_rss_kib_after": rss_after,
        "rss_kib_per_idle_socket": per_socket,
    });
    drop(idle);
    // Let the 1,000 closes (each announced to the others) drain before the
    // next phase measures anything on the same runtime.
    tokio::time::sleep(Duration::from_secs(10)).await;

    if a.history_rows > 50 {
        report["history"] = history::run(&h, &owner, a.history_rows, 200).await;
    }
    if a.search.0 > 0 && a.search.1 > 0 {
        let (rows, sessions) = (a.search.0 as u64, a.search.1 as u64);
        report["search"] = search::run(&h, &owner, rows, sessions, 50).await;
    }
    if a.uploads.0 > 0 && a.uploads.1 > 0 {
        report["uploads"] = files::run(&h, &owner, a.uploads, 4).await;
    }
    if a.resume.0 > 0 && a.resume.1 > 0 {
        let (messages, changes) = (a.resume.0 as u64, a.resume.1.min(a.resume.0) as u64);
        report["resume"] = resume::run(&owner, messages, changes, 20).await;
    }
    if a.ttft_turns > 0 {
        report["ttft"] = ttft::run(a.ttft_turns).await;
    }

    if a.cold_starts > 0 {
        report["cold_start"] = cold::run(a.cold_starts).await;
    }
    if a.many.0 > 0 && a.many.1 > 1 {
        report["many"] =
            many::run(&h, &owner, a.many.0, a.many.1, a.many_messages, a.idle_secs).await;
    }
    // Last: it leaves a thousand sessions behind.
    desk::run(&h, &a, &mut report).await;
    write_report(&a, &report);
}

fn write_report(a: &Args, report: &Value) {
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(report).unwrap()).unwrap();
        println!("\nJSON written to {path}");
    } else {
        println!("\n{}", serde_json::to_string(report).unwrap());
    }
}

/// Soak: one session × 20 sockets at a steady rate for `minutes`, one
/// 60-second step at a time; every step must lose, repeat and reorder
/// nothing. Returns whether every step was clean.
async fn soak(owner: &User, minutes: u64, rate: u32, report: &mut Value) -> bool {
    let s = owner.create_session("soak").await;
    let (mut sender, _, _) = owner.join(&s, None).await;
    let (mut receivers, _, _) = open_sockets(owner, &s, 20).await;
    println!(
        "\nsoak: {minutes} min at {rate} msg/s to {} sockets",
        receivers.len()
    );
    let mut minutes_out = Vec::new();
    let mut clean = true;
    for m in 0..minutes {
        let (back, st) = fanout_step(&mut sender, receivers, rate, 60, 1000 + m as usize).await;
        receivers = back;
        let ok = st.clean();
        clean &= ok;
        println!(
            "  minute {:>3}: {} sent, {} delivered, lost {}, dup {}, order {}, p99 {:.1} ms {}",
            m + 1,
            st.sent,
            st.delivered,
            st.lost,
            st.duplicates,
            st.order_violations,
            st.p99_ms,
            if ok { "ok" } else { "FAILED" }
        );
        minutes_out.push(json!({"minute": m + 1, "sent": st.sent, "delivered": st.delivered, "lost": st.lost,
            "duplicates": st.duplicates, "order_violations": st.order_violations, "p99_ms": st.p99_ms}));
    }
    report["soak"] = json!({"minutes": minutes, "rate": rate, "sockets": receivers.len(), "clean": clean, "per_minute": minutes_out});
    clean
}

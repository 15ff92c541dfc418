//! Memory under HTTP load: workerd's RSS before and after many small
//! requests (`/healthz`, which touches no dependency, and a session read,
//! which reaches a session object and D1), and again after idling, to see
//! whether the isolate's growth is given back.

use super::workerd_rss_kib;
use crate::common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// `requests` requests, 16 in flight, half `/healthz` and half
/// `GET /v1/sessions/{id}`; then `idle_secs` of quiet.
pub async fn run(h: &Harness, owner: &User, requests: usize, idle_secs: u64) -> Value {
    let s = owner.create_session("http").await;
    let before = workerd_rss_kib(h);
    let start = Instant::now();
    let failed = futures::stream::iter(0..requests)
        .map(|i| {
            let (owner, s) = (owner.clone(), s.clone());
            async move {
                let status = if i % 2 == 0 {
                    get_json(&owner.base, "/healthz").await.0
                } else {
                    owner
                        .call(reqwest::Method::GET, &format!("/v1/sessions/{s}"), None)
                        .await
                        .0
                };
                (status != 200) as usize
            }
        })
        .buffer_unordered(16)
        .fold(0, |n, f| async move { n + f })
        .await;
    let secs = start.elapsed().as_secs_f64();
    let after = workerd_rss_kib(h);
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let idle = workerd_rss_kib(h);
    let fmt = |v: Option<u64>| v.map_or("?".into(), |v| format!("{:.0}", v as f64 / 1024.0));
    println!(
        "\nHTTP load: {requests} requests ({failed} failed) at {:.0}/s; workerd RSS {} → {} MB, {} MB after {idle_secs} s idle",
        requests as f64 / secs,
        fmt(before),
        fmt(after),
        fmt(idle)
    );
    json!({"requests": requests, "failed": failed, "per_second": requests as f64 / secs,
           "workerd_rss_kib_before": before, "workerd_rss_kib_after": after,
           "workerd_rss_kib_after_idle": idle, "idle_secs": idle_secs})
}

//! Cold start: from spawning a runtime to its first `/healthz` answer, and
//! to a first WebSocket `synced`, median of `runs` fresh runtimes; then,
//! on one running runtime, the first `/healthz` after workerd restarts
//! with the same configuration (as on a deploy), median of `runs`.
//!
//! The first two include the harness's own start (Node, Miniflare,
//! workerd, migrations on a fresh database) as well as compiling and
//! instantiating the wasm; the third leaves Node and Miniflare out and is
//! the nearest to Cloudflare's cold start (workerd's start plus the
//! isolate's). Compare runs of this tool, not these figures with
//! Cloudflare's.

use crate::common::*;
use serde_json::{json, Value};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub async fn run(runs: usize) -> Value {
    let (mut healthz, mut synced) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t0 = Instant::now();
        let h = Harness::start(Options::default());
        let (status, _, _) = get_json(&h.url, "/healthz").await;
        assert_eq!(status, 200);
        healthz.push(t0.elapsed().as_secs_f64() * 1000.0);
        let u = User::new(&h, "cold");
        let s = u.create_session("cold").await;
        u.join(&s, None).await;
        synced.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let h = Harness::start(Options::default());
    let mut reloaded = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        h.reload().await;
        let (status, _, _) = get_json(&h.url, "/healthz").await;
        assert_eq!(status, 200);
        reloaded.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    let (hz, sy, re) = (
        median(healthz.clone()),
        median(synced.clone()),
        median(reloaded.clone()),
    );
    println!(
        "\ncold start over {runs} fresh runtimes (medians): first /healthz {hz:.0} ms, first synced {sy:.0} ms; \
         first /healthz after a workerd restart {re:.0} ms"
    );
    json!({"runs": runs, "healthz_ms": healthz, "synced_ms": synced, "reload_healthz_ms": reloaded,
           "healthz_median_ms": hz, "synced_median_ms": sy, "reload_healthz_median_ms": re})
}

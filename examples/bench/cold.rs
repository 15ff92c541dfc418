//! Cold start: from spawning a runtime to its first `/healthz` answer, and
//! to a first WebSocket `synced`, median of `runs` fresh runtimes.
//!
//! Locally this includes the harness's own start (Node, Miniflare, workerd,
//! migrations on a fresh database) as well as compiling and instantiating
//! the wasm; Cloudflare's cold start is only the latter. Compare runs of
//! this tool, not these figures with Cloudflare's.

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
    let (hz, sy) = (median(healthz.clone()), median(synced.clone()));
    println!(
        "\ncold start over {runs} fresh runtimes (medians): first /healthz {hz:.0} ms, first synced {sy:.0} ms"
    );
    json!({"runs": runs, "healthz_ms": healthz, "synced_ms": synced,
           "healthz_median_ms": hz, "synced_median_ms": sy})
}

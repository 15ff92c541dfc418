//! Time to first token that Confab adds: the stand-in LLM called directly,
//! against a user's message to the first `delta` on their socket (which
//! includes storing the message, reading history and calling the provider).

use crate::common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub async fn run(turns: usize) -> Value {
    let model = "bench-ttft";
    let h = Harness::start(Options {
        vars: vec![
            ("LLM_PROVIDERS".into(), "openai".into()),
            ("OPENAI_BASE_URL".into(), "{llm_url}/v1".into()),
            ("OPENAI_MODEL".into(), model.into()),
            ("DAILY_TOKEN_BUDGET".into(), "0".into()),
        ],
        ..Default::default()
    });

    // Directly: request to the first content chunk, on one client (its
    // connection pool kept warm, as the Worker's fetch is).
    let client = http();
    let mut direct = Vec::new();
    for _ in 0..turns {
        let t = Instant::now();
        let mut res = client
            .post(format!("{}/v1/chat/completions", h.llm_url))
            .json(&json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        let mut buf = String::new();
        while let Some(chunk) = res.chunk().await.unwrap() {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            if buf.contains("\"content\":\"Stand") {
                break;
            }
        }
        direct.push(t.elapsed().as_secs_f64() * 1000.0);
    }

    // Through Confab.
    let u = User::new(&h, "ttft");
    let s = u.create_session("ttft").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    let mut via = Vec::new();
    for i in 0..turns {
        let t = Instant::now();
        send_json(
            &mut ws,
            json!({"type": "send", "client_id": format!("t{i}"), "text": "hi"}),
        )
        .await;
        let mut first = None;
        // Bounded: a reply that never ends fails the run instead of hanging it.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(Some(Ok(m))) = tokio::time::timeout(left, ws.next()).await else {
                panic!("turn {i}: no assistant reply within 30 s");
            };
            let Ok(v) = serde_json::from_str::<Value>(m.to_text().unwrap_or("")) else {
                continue;
            };
            if v["type"] == "delta" && first.is_none() {
                first = Some(t.elapsed().as_secs_f64() * 1000.0);
            }
            if v["type"] == "message" && v["author"]["kind"] == "assistant" {
                break;
            }
        }
        via.push(first.expect("a delta arrived"));
    }
    let (d, v) = (median(direct), median(via));
    println!(
        "\ntime to first token over {turns} turns (medians): stand-in directly {d:.1} ms, through Confab {v:.1} ms → Confab adds {:.1} ms",
        v - d
    );
    json!({"turns": turns, "direct_median_ms": d, "confab_median_ms": v, "added_ms": v - d})
}

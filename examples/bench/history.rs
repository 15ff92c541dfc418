//! History page latency on a long session: rows are written straight into
//! D1 (through the harness control endpoint) as real sealed envelopes, so
//! the worker reads, decrypts and pages them exactly as in production.

use crate::common::*;
use confab::crypto::{aad, Field, Keyring};
use serde_json::{json, Value};
use std::time::Instant;

/// Rows per INSERT statement (D1 limits statement size).
const CHUNK: u64 = 200;

pub async fn run(h: &Harness, owner: &User, rows: u64, requests: usize) -> Value {
    let s = owner.create_session("long history").await;
    let (kid_keys, active) = (KEY_K1, "k1");
    let keys = Keyring::parse(kid_keys, active).unwrap();
    let start = Instant::now();
    let mut seq = 1;
    while seq <= rows {
        let end = (seq + CHUNK - 1).min(rows);
        let values: Vec<String> = (seq..=end)
            .map(|n| {
                let id = format!("h{n:012}");
                let body = keys.seal(
                    &aad(Field::MessageBody, &s, Some(&id)),
                    &format!("message number {n}"),
                );
                format!(
                    "('{s}', {n}, '{id}', 'c{n}', '{}', 'Bench', 'user', '{body}', {n})",
                    owner.id
                )
            })
            .collect();
        h.session_sql(
            &s,
            &format!(
                "INSERT INTO messages (session_id, seq, id, client_id, author_id, author_name, author_kind, body, created_at) VALUES {}",
                values.join(",")
            ),
            json!([]),
        )
        .await;
        seq = end + 1;
    }
    let fill_s = start.elapsed().as_secs_f64();

    // Pages of 50 at pseudo-random depths, plus the newest page.
    let mut lat = Vec::with_capacity(requests);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for i in 0..requests {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let path = if i % 10 == 0 {
            format!("/v1/sessions/{s}/messages?limit=50")
        } else {
            format!(
                "/v1/sessions/{s}/messages?limit=50&before={}",
                51 + x % (rows - 50)
            )
        };
        let t = Instant::now();
        let (status, page) = owner.call(reqwest::Method::GET, &path, None).await;
        lat.push(t.elapsed().as_micros() as u64);
        assert_eq!(status, 200);
        assert_eq!(page["messages"].as_array().unwrap().len(), 50);
        assert!(page["messages"][0].get("unreadable").is_none());
    }
    lat.sort_unstable();
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    println!(
        "\nhistory: {rows} messages written in {fill_s:.1} s; {requests} pages of 50: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p(0.5),
        p(0.95),
        p(0.99),
        p(1.0)
    );
    json!({"messages": rows, "requests": requests, "page_size": 50,
           "p50_ms": p(0.5), "p95_ms": p(0.95), "p99_ms": p(0.99), "max_ms": p(1.0)})
}

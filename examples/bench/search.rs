//! Search at scale (`GET /v1/search`): `rows` messages spread over
//! `sessions` sessions of one owner are written straight into D1 with
//! their index rows, as the replication flush writes them (real sealed
//! bodies, terms under the runtime's own index key). Then each kind of
//! query is timed through the worker, as the owner (their sessions) and as
//! an admin (every session): a rare word, a common one, two words.

use crate::common::*;
use confab::crypto::{aad, Field, Keyring};
use confab::search::{IndexKey, KEY_LABEL};
use serde_json::{json, Value};
use std::time::Instant;

/// Messages per INSERT statement (D1 limits statement size).
const CHUNK: u64 = 200;
/// Distinct words; word k is used about as often as 1/(k+1)^(2/3).
const VOCABULARY: f64 = 5000.0;

pub async fn run(h: &Harness, owner: &User, rows: u64, sessions: u64, requests: usize) -> Value {
    let keys = Keyring::parse(KEY_K1, "k1").unwrap();
    let index = IndexKey(keys.derive_key("k1", KEY_LABEL).unwrap());
    let mut ids = Vec::new();
    for i in 0..sessions {
        let s = owner.create_session(&format!("search {i}")).await;
        h.replicated(&s).await;
        ids.push((s.clone(), h.shard_of(&s).await));
    }
    let start = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut word = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = (x % 1_000_000) as f64 / 1_000_000.0;
        format!("w{}", (VOCABULARY * u * u * u) as u64)
    };
    let per_session = rows / sessions;
    for (i, (s, shard)) in ids.iter().enumerate() {
        let mut seq = 1;
        while seq <= per_session {
            let end = (seq + CHUNK - 1).min(per_session);
            let (mut messages, mut terms) = (Vec::new(), Vec::new());
            for n in seq..=end {
                // Message ids are unique across sessions.
                let id = format!("q{i:04}{n:010}");
                // One message in 10,000 has the rare word.
                let rare = if n % 10_000 == 7 { " needle" } else { "" };
                let text = format!("message {n} about {} {} {}{rare}", word(), word(), word());
                let body = keys.seal(&aad(Field::MessageBody, s, Some(&id)), &text);
                messages.push(format!(
                    "('{s}', {n}, '{id}', 'c{n}', '{}', 'Bench', 'user', '{body}', {n})",
                    owner.id
                ));
                terms.extend(
                    index
                        .terms(&text)
                        .into_iter()
                        .map(|t| format!("('{t}', '{s}', {n})")),
                );
            }
            h.sql_on(shard, &format!(
                "INSERT INTO messages (session_id, seq, id, client_id, author_id, author_name, author_kind, body, created_at) VALUES {}",
                messages.join(",")
            ), json!([])).await;
            h.sql_on(
                shard,
                &format!(
                    "INSERT INTO search_terms (term, session_id, seq) VALUES {}",
                    terms.join(",")
                ),
                json!([]),
            )
            .await;
            seq = end + 1;
        }
    }
    let fill_s = start.elapsed().as_secs_f64();
    println!(
        "\nsearch: {rows} messages in {sessions} sessions, with their terms, written in {fill_s:.1} s"
    );

    let admin = User::admin(h, "search-admin");
    let mut report = json!({"messages": rows, "sessions": sessions, "requests": requests});
    for (who, user) in [("owner", owner), ("admin", &admin)] {
        for (kind, q) in [("rare", "needle"), ("common", "w0"), ("two_words", "w1 w2")] {
            let mut lat = Vec::with_capacity(requests);
            let mut found = 0;
            for _ in 0..requests {
                let t = Instant::now();
                let path = format!("/v1/search?q={}&limit=20", q.replace(' ', "+"));
                let (status, body) = user.call(reqwest::Method::GET, &path, None).await;
                lat.push(t.elapsed().as_micros() as u64);
                assert_eq!(status, 200, "{body}");
                found = body["results"].as_array().unwrap().len();
            }
            lat.sort_unstable();
            let p = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
            println!(
                "search as {who}, {kind} ({q:?}, {found} on the first page): p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
                p(0.5),
                p(0.95),
                p(0.99)
            );
            report[format!("{who}_{kind}")] = json!({"q": q, "first_page": found, "p50_ms": p(0.5), "p95_ms": p(0.95), "p99_ms": p(0.99)});
        }
    }
    report
}

//! Resume after changes: a device that was away while `changes` messages
//! of a `messages`-long session were edited comes back. Timed two ways,
//! each `rounds` times on the same session:
//! - with the change stream: `after=SEQ&changes=N`, connect to `synced`,
//!   every missed edit arriving on the socket;
//! - as clients had to before it: `after=SEQ`, then every history page
//!   read again (pages of 100) to find the edits.

use crate::common::*;
use serde_json::{json, Value};
use std::time::Instant;

pub async fn run(owner: &User, messages: u64, changes: u64, rounds: usize) -> Value {
    let s = owner.create_session("resume").await;
    let (mut ws, _, _) = owner.join(&s, None).await;
    for i in 1..=messages {
        let frame =
            json!({"type": "send", "client_id": format!("r{i}"), "text": format!("message {i}")});
        send_json(&mut ws, frame).await;
    }
    for _ in 0..messages {
        recv_type(&mut ws, "ack").await;
    }
    // Where the device left off.
    let (_, hello, _) = owner.join(&s, Some(messages)).await;
    let since = hello["last_change"].as_u64().unwrap_or(0);
    for seq in 1..=changes {
        let frame = json!({"type": "edit", "seq": seq, "text": format!("message {seq}, edited")});
        send_json(&mut ws, frame).await;
    }
    for _ in 0..changes {
        recv_type(&mut ws, "edited").await;
    }

    let (mut stream, mut reread) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let url = format!("{}&changes={since}", owner.ws_url(&s, Some(messages)).await);
        let t = Instant::now();
        let mut back = connect(&url).await;
        let (_, replayed) = recv_type(&mut back, "synced").await;
        stream.push(t.elapsed().as_secs_f64() * 1000.0);
        let edited = replayed.iter().filter(|f| f["type"] == "edited").count();
        assert_eq!(edited as u64, changes, "every missed edit, once");

        let url = owner.ws_url(&s, Some(messages)).await;
        let t = Instant::now();
        let mut back = connect(&url).await;
        recv_type(&mut back, "synced").await;
        let mut before = String::new();
        loop {
            let path = format!("/v1/sessions/{s}/messages?limit=100{before}");
            let (status, page) = owner.call(reqwest::Method::GET, &path, None).await;
            assert_eq!(status, 200);
            match page["next_before"].as_u64() {
                Some(b) => before = format!("&before={b}"),
                None => break,
            }
        }
        reread.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let p50 = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (stream_ms, reread_ms) = (p50(&mut stream), p50(&mut reread));
    println!(
        "\nresume after {changes} edits in a {messages}-message session ({rounds} rounds, p50): \
         change stream {stream_ms:.1} ms; resume + history re-read {reread_ms:.1} ms"
    );
    json!({"messages": messages, "changes": changes, "rounds": rounds,
           "change_stream_p50_ms": stream_ms, "history_reread_p50_ms": reread_ms})
}

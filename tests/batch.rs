//! `batch` frames (docs/protocol.md, Connecting): sends that arrive close
//! together are committed as one group, and a socket that asked with
//! `?batch=1` gets the group in one frame, while every other socket gets
//! the same messages one frame each. Both see every message once, in order.

mod common;

use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Reads frames until `n` messages arrived; returns their seqs and how
/// many frames carried them (and the largest batch seen).
async fn read_messages(ws: &mut Ws, n: usize) -> (Vec<u64>, usize, usize) {
    let (mut seqs, mut frames, mut largest) = (Vec::new(), 0, 0);
    while seqs.len() < n {
        let f = recv(ws).await;
        let inner: Vec<Value> = match f["type"].as_str() {
            Some("batch") => f["frames"].as_array().unwrap().clone(),
            Some("message") => vec![f.clone()],
            _ => continue,
        };
        frames += 1;
        largest = largest.max(inner.len());
        for m in inner {
            assert_eq!(m["type"], "message", "{f}");
            seqs.push(m["seq"].as_u64().unwrap());
        }
    }
    (seqs, frames, largest)
}

#[tokio::test]
async fn a_burst_reaches_batch_sockets_in_fewer_frames_and_everyone_in_order() {
    let h = Harness::start(Options {
        vars: vec![("RATE_MESSAGES_PER_MINUTE".into(), "0".into())],
        ..Default::default()
    });
    let u = User::new(&h, "burst");
    let s = u.create_session("burst").await;
    let (mut sender, _, _) = u.join(&s, None).await;
    let url = format!("{}&batch=1", u.ws_url(&s, None).await);
    let mut batched = connect(&url).await;
    assert_eq!(recv(&mut batched).await["type"], "hello");
    assert_eq!(recv(&mut batched).await["type"], "synced");
    let (mut single, _, _) = u.join(&s, None).await;

    // 200 sends written at once: they reach the object back to back.
    const N: usize = 200;
    for i in 0..N {
        let f = json!({"type": "send", "client_id": format!("b{i}"), "text": format!("m{i}")});
        sender.feed(Message::text(f.to_string())).await.unwrap();
    }
    sender.flush().await.unwrap();

    let want: Vec<u64> = (1..=N as u64).collect();
    let (seqs, frames, largest) = read_messages(&mut batched, N).await;
    assert_eq!(seqs, want, "every message once, in order, in batches");
    assert!(largest >= 2, "no group formed under a burst");
    assert!(frames < N, "{frames} frames for {N} messages");
    let (seqs, frames, largest) = read_messages(&mut single, N).await;
    assert_eq!(seqs, want);
    assert_eq!(
        (frames, largest),
        (N, 1),
        "one frame per message without batch=1"
    );
    // The sender got an ack for each, once.
    let mut acks = 0;
    while acks < N {
        let f = tokio::time::timeout(Duration::from_secs(10), sender.next())
            .await
            .expect("acks arrive")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = f {
            if t.contains("\"type\":\"ack\"") {
                acks += 1;
            }
        }
    }
}

#[tokio::test]
async fn a_batch_parameter_other_than_0_or_1_is_refused() {
    let h = Harness::shared();
    let u = User::new(h, "badbatch");
    let s = u.create_session("bad").await;
    // Read through the shared helper: tungstenite keeps a refused
    // upgrade's body only when it arrived with the headers, which made
    // this test depend on how the runtime flushed the response.
    let url = u.ws_url(&s, None).await;
    let (status, body) = refused_upgrade(&format!("{url}&batch=yes")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_batch");
    // The refused upgrade did not spend the ticket: the object spends it
    // when it accepts a socket, and only then.
    let mut ws = connect(&url).await;
    assert_eq!(recv(&mut ws).await["type"], "hello");
    let (status, body) = refused_upgrade(&url).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        ["ticket_used", "ticket_invalid"].contains(&body["error"]["code"].as_str().unwrap()),
        "{body}"
    );
}

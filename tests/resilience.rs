//! Resilience: a runtime killed mid-conversation, clients that keep
//! dropping, and a barrage of bad input. Acknowledged means durable.

mod common;

use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Every message of a session via a full replay, as (seq, client_id, text).
async fn replay_all(u: &User, s: &str) -> Vec<(u64, String, String)> {
    let (_ws, _, replayed) = u.join(s, Some(0)).await;
    replayed
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["client_id"].as_str().unwrap().to_string(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn sigkill_mid_conversation_loses_no_acked_message() {
    let dir = temp_dir("sigkill");
    let opts = Options {
        persist: Some(dir),
        ..Default::default()
    };
    let first = Harness::start(opts.clone());
    let owner = User::new(&first, "k-owner");
    let s = owner.create_session("crash").await;
    let mut senders = vec![owner.clone()];
    for i in 0..2 {
        let u = User::new(&first, &format!("k-sender{i}"));
        owner.add_member(&s, &u).await;
        senders.push(u);
    }

    // Three senders fire messages without waiting; each records its acks as
    // they arrive, and all of them count acks in `acks_seen`.
    const PER_SENDER: usize = 200;
    let acks_seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    // Every sender is connected before any sends: acks come fast, and the
    // kill must find all three mid-stream.
    let mut sockets = Vec::new();
    for u in &senders {
        sockets.push(connect(&u.ws_url(&s, None).await).await.split());
    }
    for (n, (mut tx, mut rx)) in sockets.into_iter().enumerate() {
        let acks_seen = acks_seen.clone();
        tasks.push(tokio::spawn(async move {
            let reader = tokio::spawn(async move {
                let mut acked: BTreeMap<String, u64> = BTreeMap::new();
                // Until the connection dies (or every send is acked).
                while acked.len() < PER_SENDER {
                    match tokio::time::timeout(Duration::from_secs(5), rx.next()).await {
                        Ok(Some(Ok(Message::Text(t)))) => {
                            let v: Value = serde_json::from_str(&t).unwrap();
                            if v["type"] == "ack" {
                                acked.insert(
                                    v["client_id"].as_str().unwrap().into(),
                                    v["seq"].as_u64().unwrap(),
                                );
                                acks_seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                        }
                        Ok(Some(Ok(_))) => {}
                        _ => break,
                    }
                }
                acked
            });
            let mut sent = Vec::new();
            for i in 0..PER_SENDER {
                let cid = format!("s{n}-{i}");
                let frame = json!({"type": "send", "client_id": cid, "text": cid});
                if tx.send(Message::text(frame.to_string())).await.is_err() {
                    break;
                }
                sent.push(cid);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (sent, reader.await.unwrap())
        }));
    }
    // Kill workerd outright once some sends are acked, while the rest are
    // still in flight: after an observed count, not after a guessed delay.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while acks_seen.load(std::sync::atomic::Ordering::SeqCst) < 60 {
        assert!(std::time::Instant::now() < deadline, "no acks within 30 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    first.kill_9();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let acked_total: usize = results.iter().map(|(_, a)| a.len()).sum();
    let sent_total: usize = results.iter().map(|(sent, _)| sent.len()).sum();
    assert!(acked_total > 0, "some messages were acked before the kill");
    assert!(
        acked_total < sent_total,
        "the kill interrupted the traffic ({acked_total} of {sent_total} acked)"
    );
    drop(first);

    let second = Harness::start(opts);
    let fresh = |u: &User| User {
        base: second.url.clone(),
        ..u.clone()
    };
    // Every acked message is there, exactly once, with the seq it was acked with.
    let stored = replay_all(&fresh(&owner), &s).await;
    let seqs: Vec<u64> = stored.iter().map(|m| m.0).collect();
    assert_eq!(
        seqs,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "gap-free and in order"
    );
    let by_cid: BTreeMap<&str, u64> = stored.iter().map(|m| (m.1.as_str(), m.0)).collect();
    assert_eq!(by_cid.len(), stored.len(), "no client id stored twice");
    for (_, acked) in &results {
        for (cid, seq) in acked {
            assert_eq!(by_cid.get(cid.as_str()), Some(seq), "acked {cid} at {seq}");
        }
    }

    // Senders retry everything not acked; each lands exactly once.
    for (u, (sent, acked)) in senders.iter().zip(&results) {
        let (mut ws, _, _) = fresh(u).join(&s, None).await;
        for cid in sent.iter().filter(|c| !acked.contains_key(*c)) {
            let ack = send_msg(&mut ws, cid, cid).await;
            let already = by_cid.contains_key(cid.as_str());
            assert_eq!(ack["duplicate"].as_bool(), Some(already), "{cid}");
        }
    }
    let stored = replay_all(&fresh(&owner), &s).await;
    let cids: HashSet<&str> = stored.iter().map(|m| m.1.as_str()).collect();
    assert_eq!(cids.len(), stored.len(), "still no duplicates");
    let all_sent: usize = results.iter().map(|(sent, _)| sent.len()).sum();
    assert_eq!(stored.len(), all_sent, "every message sent is stored once");
    let seqs: Vec<u64> = stored.iter().map(|m| m.0).collect();
    assert_eq!(seqs, (1..=stored.len() as u64).collect::<Vec<_>>());
}

#[tokio::test]
async fn receivers_that_keep_dropping_end_with_the_full_sequence() {
    let h = Harness::start(Options::default());
    let owner = User::new(&h, "d-owner");
    let s = owner.create_session("drops").await;
    const TOTAL: u64 = 600;
    const RECEIVERS: usize = 5;
    const DROPS_EACH: usize = 20; // 100 reconnects in all

    let sender_url = owner.ws_url(&s, None).await;
    let sender = tokio::spawn(async move {
        let mut ws = connect(&sender_url).await;
        for i in 1..=TOTAL {
            let frame =
                json!({"type": "send", "client_id": format!("m{i}"), "text": format!("m{i}")});
            ws.send(Message::text(frame.to_string())).await.unwrap();
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
        let mut acks = 0;
        while acks < TOTAL {
            let (f, _) = recv_type(&mut ws, "ack").await;
            assert_eq!(f["duplicate"], false);
            acks += 1;
        }
    });

    let mut receivers = Vec::new();
    for r in 0..RECEIVERS {
        let u = owner.clone();
        let s = s.clone();
        receivers.push(tokio::spawn(async move {
            let mut seen: Vec<u64> = Vec::new();
            let mut drops = 0;
            // Deterministic but uneven drop points per receiver.
            let mut next_drop = 7 + r * 5;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while (seen.len() as u64) < TOTAL {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "receiver {r} stalled at {}",
                    seen.len()
                );
                let after = seen.last().copied().unwrap_or(0);
                let mut ws = connect(&u.ws_url(&s, Some(after)).await).await;
                loop {
                    let f = match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                        Ok(Some(Ok(Message::Text(t)))) => {
                            serde_json::from_str::<Value>(&t).unwrap()
                        }
                        Ok(Some(Ok(_))) => continue,
                        _ => break,
                    };
                    if f["type"] == "message" {
                        seen.push(f["seq"].as_u64().unwrap());
                        if drops < DROPS_EACH && seen.len() >= next_drop {
                            drops += 1;
                            next_drop += 11 + (r * 7 + drops * 3) % 23;
                            break; // drop the socket and reconnect
                        }
                        if seen.len() as u64 == TOTAL {
                            break;
                        }
                    }
                }
            }
            (seen, drops)
        }));
    }
    sender.await.unwrap();
    let mut total_drops = 0;
    for r in receivers {
        let (seen, drops) = r.await.unwrap();
        total_drops += drops;
        assert_eq!(
            seen,
            (1..=TOTAL).collect::<Vec<_>>(),
            "gap-free, duplicate-free, in order"
        );
    }
    assert_eq!(
        total_drops,
        RECEIVERS * DROPS_EACH,
        "100 disconnects and reconnects"
    );
}

#[tokio::test]
async fn a_barrage_of_bad_input_leaves_other_sessions_serving_and_nothing_panics() {
    let h = Harness::start(Options {
        vars: vec![("MAX_FRAME_BYTES".into(), "4096".into())],
        ..Default::default()
    });
    let attacker = User::new(&h, "attacker");
    let victim = User::new(&h, "bystander");
    let bad_session = attacker.create_session("barrage").await;
    let good_session = victim.create_session("calm").await;
    let (mut good, _, _) = victim.join(&good_session, None).await;

    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let templates = [
        r#"{"type":"send"}"#,
        r#"{"type":"send","client_id":"","text":""}"#,
        r#"{"type":"edit","seq":18446744073709551615,"text":"x"}"#,
        r#"{"type":"react","seq":1,"emoji":"👍👍👍👍👍👍👍👍👍👍👍👍👍👍👍👍👍","action":"add"}"#,
        r#"{"type":"read","seq":-5}"#,
        r#"{"type":["send"]}"#,
        r#"[{"type":"ping"}]"#,
        r#"{"type":"send","client_id":"x","text":"\ud800"}"#,
        "null",
        "{\"type\":\"send\",\"client_id\":\"c\",\"text\":\"a\"",
    ];
    let mut ws = connect(&attacker.ws_url(&bad_session, None).await).await;
    for i in 0..400u32 {
        let r = next();
        let msg = match r % 5 {
            0 => Message::text(templates[(r / 5) as usize % templates.len()]),
            1 => Message::binary(
                (0..(r % 64))
                    .map(|j| (next() >> j) as u8)
                    .collect::<Vec<u8>>(),
            ),
            2 => Message::text(
                (0..(r % 200))
                    .map(|_| char::from_u32((next() % 0x2FFF) as u32).unwrap_or('?'))
                    .collect::<String>(),
            ),
            3 => Message::text(
                json!({"type": "send", "client_id": format!("f{i}"), "text": "flood"}).to_string(),
            ),
            _ => Message::text(format!("{{\"type\":\"typing\",\"junk\":{}}}", r)),
        };
        // Bad input gets error frames, never a closed socket: every send of
        // the barrage must go through.
        if let Err(e) = ws.send(msg).await {
            panic!("the barrage's socket failed at frame {i}: {e}");
        }
    }
    // Still open and answering after all of it.
    send_json(
        &mut ws,
        json!({"type": "send", "client_id": "end", "text": "end"}),
    )
    .await;
    loop {
        let (ack, _) = recv_type(&mut ws, "ack").await;
        if ack["client_id"] == "end" {
            break;
        }
    }
    // An oversized frame closes that socket with 1009 …
    let mut big = connect(&attacker.ws_url(&bad_session, None).await).await;
    big.send(Message::text("x".repeat(10_000))).await.unwrap();
    assert_eq!(close_code(&mut big).await, Some(1009));
    // … while the other session serves as if nothing happened.
    for i in 0..5 {
        assert_eq!(
            send_msg(&mut good, &format!("g{i}"), "still fine").await["seq"],
            i + 1
        );
    }
    let (status, _, _) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 200);
    // The attacked session still works for its owner, too.
    let (mut again, _, _) = attacker.join(&bad_session, None).await;
    send_msg(&mut again, "after-barrage", "ok").await;
    let log = h.stop_and_read_log();
    assert!(
        !log.contains("panicked"),
        "the runtime logged a panic:\n{log}"
    );
    assert!(!log.contains("RuntimeError"), "{log}");
}

/// A deploy restarts the runtime with the same configuration (the harness
/// restarts workerd, `Harness::reload`): acked messages are all there and
/// the next send continues the sequence. The benchmark times this restart
/// as its warm-runtime cold start.
#[tokio::test]
async fn a_redeploy_keeps_every_acked_message_and_the_sequence_continues() {
    let h = Harness::start(Options::default());
    let u = User::new(&h, "redeploy");
    let s = u.create_session("redeploy").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    for i in 1..=5 {
        assert_eq!(
            send_msg(&mut ws, &format!("r{i}"), &format!("r{i}")).await["seq"],
            i
        );
    }
    h.reload().await;
    // The restart was real: the socket opened before it is gone.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "a socket outlived the restart");
    let replayed = replay_all(&u, &s).await;
    let seqs: Vec<u64> = replayed.iter().map(|m| m.0).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5], "{replayed:?}");
    let (mut ws, _, _) = u.join(&s, None).await;
    assert_eq!(send_msg(&mut ws, "r6", "r6").await["seq"], 6);
}

//! Threads: `GET /v1/sessions/{id}/messages?thread=SEQ` gives a message and
//! the replies to it (`reply_to`), paged like history.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

fn seqs(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_thread_is_its_message_and_the_replies_to_it_paged_like_history() {
    let h = Harness::shared();
    let owner = User::new(h, "owner");
    let s = owner.create_session("threads").await;
    let (mut ws, _, _) = owner.join(&s, None).await;
    // 1 and 2 are roots; 3 and 5 answer 1, 4 answers 2.
    for (i, reply_to) in [None, None, Some(1), Some(2), Some(1)]
        .into_iter()
        .enumerate()
    {
        let frame = json!({"type": "send", "client_id": format!("t{i}"), "text": format!("m{}", i + 1), "reply_to": reply_to});
        send_json(&mut ws, frame).await;
        recv_type(&mut ws, "ack").await;
    }
    let get = |q: String| {
        let owner = &owner;
        let s = s.clone();
        async move {
            owner
                .call(Method::GET, &format!("/v1/sessions/{s}/messages?{q}"), None)
                .await
        }
    };
    // A reply to a message that does not exist is refused, with its key.
    let orphan = json!({"type": "send", "client_id": "orphan", "text": "?", "reply_to": 99});
    send_json(&mut ws, orphan).await;
    let (e, _) = recv_type(&mut ws, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["client_id"].as_str()),
        (Some("not_found"), Some("orphan"))
    );

    let (status, page) = get("thread=1".into()).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(seqs(&page), [1, 3, 5]);
    assert_eq!(page["messages"][1]["reply_to"], 1);
    assert_eq!(seqs(&get("thread=2".into()).await.1), [2, 4]);
    // Paged: the newest first, then `next_before` walks back.
    let (_, newest) = get("thread=1&limit=2".into()).await;
    assert_eq!(seqs(&newest), [3, 5]);
    assert_eq!(newest["next_before"], 3);
    assert_eq!(seqs(&get("thread=1&limit=2&before=3".into()).await.1), [1]);
    // A message nobody answered is a thread of one; the refused reply
    // stored nothing.
    assert_eq!(seqs(&get("thread=5".into()).await.1), [5]);
    assert_eq!(get("".into()).await.1["last_seq"], 5);

    for (q, status, code) in [
        ("thread=0", 400, "invalid_seq"),
        ("thread=x", 400, "invalid_seq"),
        ("thread=99", 404, "not_found"),
    ] {
        let (got, body) = get(q.into()).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{q}: {body}"
        );
    }
}

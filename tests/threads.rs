//! Paging history. Threads: `GET /v1/sessions/{id}/messages?thread=SEQ`
//! gives a message and the replies to it (`reply_to`), paged like history.
//! Pages that leave out the messages of people the reader blocks still
//! lead on, in history and in a socket's replay.

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

/// Texts of every page of `user`'s history of `s`, walked back by
/// `next_before` from the newest `limit`, oldest first.
async fn walk(user: &User, s: &str, limit: u32) -> (Vec<String>, usize) {
    let (mut texts, mut pages, mut before) = (Vec::new(), 0, String::new());
    loop {
        let path = format!("/v1/sessions/{s}/messages?limit={limit}{before}");
        let (status, page) = user.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let mut these: Vec<String> = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_string())
            .collect();
        these.append(&mut texts);
        texts = these;
        match page["next_before"].as_u64() {
            Some(b) if pages < 20 => before = format!("&before={b}"),
            Some(_) => panic!("history of {s} never ends"),
            None => return (texts, pages),
        }
    }
}

#[tokio::test]
async fn pages_of_only_blocked_peoples_messages_lead_on_in_history_and_in_replay() {
    let h = Harness::shared();
    let ann = User::new(h, "pages-ann");
    let bo = User::new(h, "pages-bo");
    let s = ann.create_session("blocked pages").await;
    ann.add_member(&s, &bo).await;
    let (mut ann_ws, _, _) = ann.join(&s, None).await;
    let first = send_msg(&mut ann_ws, "a0", "ann first").await["seq"]
        .as_u64()
        .unwrap();
    let path = format!("/v1/me/blocks/{}", bo.id);
    assert_eq!(ann.call(Method::PUT, &path, None).await.0, 201);
    // More of Bo's messages than a replay page (100) holds, then Ann's.
    let (mut bo_ws, _, _) = bo.join(&s, None).await;
    for i in 0..101 {
        send_msg(&mut bo_ws, &format!("b{i}"), &format!("bo {i}")).await;
    }
    let last = send_msg(&mut ann_ws, "a1", "ann last").await["seq"]
        .as_u64()
        .unwrap();
    ann.until_history_shows(&s, "bo 100", false).await;

    // Replay from Ann's first message: the first page read holds only
    // Bo's messages, and her last still arrives before `synced`.
    let (_, hello, replayed) = ann.join(&s, Some(first)).await;
    let texts: Vec<&str> = replayed
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["ann last"], "replayed after {first}");
    assert_eq!(hello["last_seq"], last);

    // History: the newest page shows only Ann's last message, the next
    // two none, and next_before still leads back to her first.
    let (texts, pages) = walk(&ann, &s, 50).await;
    assert_eq!(texts, ["ann first", "ann last"]);
    assert_eq!(pages, (last as usize).div_ceil(50), "{texts:?}");
    // Bo, who blocks nobody, sees it all, in as many pages.
    let (texts, bo_pages) = walk(&bo, &s, 50).await;
    assert_eq!((texts.len(), bo_pages), (last as usize, pages));
}

//! The change stream: edits, deletions and reactions made while a device
//! was away reach it on resume (`?after=SEQ&changes=N`), exactly once and
//! after the messages, so a client that applies what its socket says ends
//! with the same transcript as history, without reading history again;
//! and a change's idempotency key (`client_id`) makes a resend change
//! nothing.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A transcript as a client builds it from frames.
#[derive(Debug, Default, PartialEq, Eq)]
struct Transcript(BTreeMap<u64, Shown>);

#[derive(Debug, Default, PartialEq, Eq, Clone)]
struct Shown {
    text: String,
    deleted: bool,
    reactions: BTreeSet<(String, String)>,
}

impl Transcript {
    /// Applies one frame; gives its change number if it is a change.
    fn apply(&mut self, f: &Value) -> Option<u64> {
        let seq = f["seq"].as_u64().unwrap_or(0);
        match f["type"].as_str()? {
            "message" => {
                let mut shown = Shown {
                    text: f["text"].as_str().unwrap().into(),
                    deleted: f["deleted"] == true,
                    reactions: BTreeSet::new(),
                };
                for r in f["reactions"].as_array().into_iter().flatten() {
                    for u in r["users"].as_array().unwrap() {
                        let emoji = r["emoji"].as_str().unwrap().to_string();
                        shown.reactions.insert((emoji, u.as_str().unwrap().into()));
                    }
                }
                self.0.insert(seq, shown);
                return None;
            }
            "edited" => self.at(seq).text = f["text"].as_str().unwrap().into(),
            "deleted" => {
                let m = self.at(seq);
                (m.deleted, m.text) = (true, String::new());
                m.reactions.clear();
            }
            "reaction" => {
                let key = (
                    f["emoji"].as_str().unwrap().to_string(),
                    f["user"]["id"].as_str().unwrap().to_string(),
                );
                let set = &mut self.at(seq).reactions;
                match f["action"].as_str().unwrap() {
                    "add" => set.insert(key),
                    _ => set.remove(&key),
                };
            }
            _ => return None,
        }
        Some(
            f["change"]
                .as_u64()
                .expect("a change frame carries its number"),
        )
    }

    fn at(&mut self, seq: u64) -> &mut Shown {
        self.0
            .get_mut(&seq)
            .unwrap_or_else(|| panic!("a change to message {seq}, which the client does not have"))
    }
}

/// The session's whole history, as the HTTP API gives it (pages of 100).
async fn history(user: &User, s: &str) -> Transcript {
    let mut t = Transcript::default();
    let mut before = String::new();
    loop {
        let path = format!("/v1/sessions/{s}/messages?limit=100{before}");
        let (status, page) = user.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        let messages = page["messages"].as_array().unwrap();
        for m in messages {
            let mut frame = m.clone();
            frame["type"] = json!("message");
            t.apply(&frame);
        }
        match messages.first() {
            Some(m) if messages.len() == 100 => before = format!("&before={}", m["seq"]),
            _ => return t,
        }
    }
}

/// Connects with `after` and `changes`; gives the socket, hello and every
/// frame up to and including `synced`.
async fn resume(user: &User, s: &str, after: u64, changes: u64) -> (Ws, Value, Vec<Value>) {
    let url = format!("{}&changes={changes}", user.ws_url(s, Some(after)).await);
    let mut ws = connect(&url).await;
    let hello = recv(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    let mut frames = Vec::new();
    loop {
        let f = recv(&mut ws).await;
        let done = f["type"] == "synced";
        if f["type"] != "presence" {
            frames.push(f);
        }
        if done {
            return (ws, hello, frames);
        }
    }
}

/// Makes a change with a fresh idempotency key; gives its `applied` frame
/// (which only the sender gets, so other users' changes cannot be taken
/// for it).
async fn change(ws: &mut Ws, mut frame: Value) -> Value {
    let key = unique("chg");
    frame["client_id"] = json!(key);
    send_json(ws, frame).await;
    let (applied, _) = recv_type(ws, "applied").await;
    assert_eq!(applied["client_id"], key.as_str());
    applied
}

#[tokio::test]
async fn a_resuming_device_gets_each_missed_change_once_after_the_messages() {
    let h = Harness::shared();
    let owner = User::new(h, "owner");
    let s = owner.create_session("changes").await;
    // Authors enough for more than one replay page of changes (100) within
    // the per-user action budget (a burst of 30).
    let authors: Vec<User> = (0..5)
        .map(|i| User::new(h, &format!("author{i}")))
        .collect();
    for a in &authors {
        owner.add_member(&s, a).await;
    }
    let mut sockets = Vec::new();
    for (i, a) in authors.iter().enumerate() {
        let (mut ws, _, _) = a.join(&s, None).await;
        for j in 0..25 {
            send_msg(&mut ws, &format!("a{i}-{j}"), &format!("{i}/{j}")).await;
        }
        sockets.push(ws);
    }
    let (mut own, _, _) = owner.join(&s, None).await;
    let first = send_msg(&mut own, "o1", "react here").await["seq"]
        .as_u64()
        .unwrap();

    // The device that goes away: it has everything so far, and one change
    // it saw live.
    let (mut away, hello, seen) = owner.join(&s, Some(0)).await;
    assert_eq!(hello["last_change"], 0);
    let mut mine = Transcript::default();
    seen.iter().for_each(|f| {
        mine.apply(f);
    });
    let edited = change(
        &mut own,
        json!({"type": "edit", "seq": first, "text": "seen live"}),
    )
    .await;
    let (live, _) = recv_type(&mut away, "edited").await;
    assert_eq!(live["change"], edited["change"]);
    let since = mine.apply(&live).unwrap();
    assert_eq!(since, 1);
    let after = hello["last_seq"].as_u64().unwrap();
    drop(away);

    // While it is away: the authors edit their messages (author 0 only 20
    // of them, to keep within the action budget for what follows; one
    // twice), reactions come and go, one message is deleted, and a new
    // message arrives and is edited.
    for (i, ws) in sockets.iter_mut().enumerate() {
        for j in 0..if i == 0 { 20 } else { 25u64 } {
            let seq = i as u64 * 25 + j + 1;
            let text = format!("{i}/{j} edited");
            change(ws, json!({"type": "edit", "seq": seq, "text": text})).await;
        }
    }
    let ws = &mut sockets[0];
    change(
        ws,
        json!({"type": "edit", "seq": 2, "text": "edited twice"}),
    )
    .await;
    let thumbs = json!({"type": "react", "seq": first, "emoji": "👍", "action": "add"});
    change(ws, thumbs.clone()).await;
    let mut gone = thumbs.clone();
    gone["action"] = json!("remove");
    change(ws, gone).await;
    change(
        ws,
        json!({"type": "react", "seq": first, "emoji": "🎉", "action": "add"}),
    )
    .await;
    change(
        ws,
        json!({"type": "react", "seq": 3, "emoji": "👀", "action": "add"}),
    )
    .await;
    change(ws, json!({"type": "delete", "seq": 3})).await;
    let new = send_msg(ws, "late", "late").await["seq"].as_u64().unwrap();
    let late = change(
        ws,
        json!({"type": "edit", "seq": new, "text": "late, edited"}),
    )
    .await;
    let last_change = late["change"].as_u64().unwrap();
    assert!(last_change > 127, "{late}");

    let (mut back, hello, frames) = resume(&owner, &s, after, since).await;
    assert_eq!(hello["last_change"], last_change);
    let synced = frames.last().unwrap();
    assert_eq!(synced["last_change"], last_change);
    assert_eq!(synced["last_seq"], new);
    // The new message first, whole and in its current state; then the
    // changes, in order, each number once, none the device had already seen.
    assert_eq!(frames[0]["type"], "message");
    assert_eq!(frames[0]["seq"], new);
    assert_eq!(frames[0]["text"], "late, edited");
    let mut numbers = Vec::new();
    for f in &frames[1..frames.len() - 1] {
        let n = mine.apply(f).unwrap_or_else(|| panic!("not a change: {f}"));
        assert!(f["seq"].as_u64().unwrap() <= after, "{f}");
        numbers.push(n);
    }
    mine.apply(&frames[0]);
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    assert!(numbers[0] > since);
    // Folded: 120 messages edited (message 2 twice: one frame; message 3
    // then deleted, which took its reaction with it: one frame) and the two
    // reactions still in the air.
    assert_eq!(numbers.len(), 120 + 2, "{frames:?}");
    assert_eq!(mine, history(&owner, &s).await);

    // Live again: the next change arrives once, with the next number.
    let next = change(
        &mut own,
        json!({"type": "edit", "seq": first, "text": "again"}),
    )
    .await;
    assert_eq!(next["change"], last_change + 1);
    let (got, skipped) = recv_type(&mut back, "edited").await;
    assert!(
        skipped.iter().all(|f| f.get("change").is_none()),
        "{skipped:?}"
    );
    assert_eq!(
        (got["change"].as_u64(), got["text"].as_str()),
        (Some(last_change + 1), Some("again"))
    );
    assert_no_frame_of(&mut back, "edited", 300).await;

    // A resume that names no change number gets the messages only; one
    // past the last change gets no change at all.
    let (_, _, frames) = owner.join(&s, Some(after)).await;
    assert!(frames.iter().all(|f| f["type"] == "message"));
    let (_, _, frames) = resume(&owner, &s, new, last_change + 1).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
}

#[tokio::test]
async fn a_changes_idempotency_key_makes_a_resend_change_nothing() {
    let h = Harness::shared();
    let owner = User::new(h, "owner");
    let member = User::new(h, "member");
    let s = owner.create_session("keys").await;
    owner.add_member(&s, &member).await;
    let (mut a, _, _) = owner.join(&s, None).await;
    let (mut b, _, _) = member.join(&s, None).await;
    let seq = send_msg(&mut a, "k1", "typo").await["seq"]
        .as_u64()
        .unwrap();

    let edit = json!({"type": "edit", "seq": seq, "text": "fixed", "client_id": "e-1"});
    send_json(&mut a, edit.clone()).await;
    let (edited, _) = recv_type(&mut a, "edited").await;
    let (applied, _) = recv_type(&mut a, "applied").await;
    let n = edited["change"].as_u64().unwrap();
    assert_eq!(
        applied,
        json!({"type": "applied", "client_id": "e-1", "change": n, "duplicate": false})
    );
    assert_eq!(recv_type(&mut b, "edited").await.0, edited);
    // The resend (say, from an outbox after a reconnect) changes nothing.
    send_json(&mut a, edit).await;
    let (again, skipped) = recv_type(&mut a, "applied").await;
    assert_eq!(
        again,
        json!({"type": "applied", "client_id": "e-1", "change": n, "duplicate": true})
    );
    assert!(skipped.iter().all(|f| f["type"] != "edited"));
    assert_no_frame_of(&mut b, "edited", 300).await;
    let (_, page) = owner
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(page["messages"][0]["text"], "fixed");

    // A reaction already there changes nothing, and says so.
    let react =
        json!({"type": "react", "seq": seq, "emoji": "👍", "action": "add", "client_id": "r-1"});
    send_json(&mut b, react).await;
    let (r, _) = recv_type(&mut b, "applied").await;
    assert_eq!(r["duplicate"], false);
    let react =
        json!({"type": "react", "seq": seq, "emoji": "👍", "action": "add", "client_id": "r-2"});
    send_json(&mut b, react).await;
    let (r, _) = recv_type(&mut b, "applied").await;
    assert_eq!(
        (r["change"].clone(), r["duplicate"].clone()),
        (Value::Null, json!(false))
    );

    // A refusal carries the key, so an outbox can let the change go.
    let hijack = json!({"type": "delete", "seq": seq, "client_id": "d-b"});
    send_json(&mut b, hijack).await;
    let (e, _) = recv_type(&mut b, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["client_id"].as_str()),
        (Some("forbidden"), Some("d-b"))
    );
    let bad = json!({"type": "edit", "seq": seq, "text": "  ", "client_id": "e-2"});
    send_json(&mut a, bad).await;
    let (e, _) = recv_type(&mut a, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["client_id"].as_str()),
        (Some("text_empty"), Some("e-2"))
    );

    // A deletion resent is a duplicate, not `message_deleted`.
    let delete = json!({"type": "delete", "seq": seq, "client_id": "d-1"});
    send_json(&mut a, delete.clone()).await;
    assert_eq!(recv_type(&mut a, "applied").await.0["duplicate"], false);
    send_json(&mut a, delete).await;
    assert_eq!(recv_type(&mut a, "applied").await.0["duplicate"], true);

    // A malformed change number is refused before the upgrade.
    let url = format!("{}&changes=x", owner.ws_url(&s, Some(0)).await);
    let (status, body) = refused_upgrade(&url).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_seq"))
    );
}

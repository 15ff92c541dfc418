//! The pre-send filter (`src/moderation/filter.rs`) against the real
//! worker: a word list that blocks (nothing stored, the sender told), a
//! moderation model through the `AI` binding that flags (stored, then
//! reported to the queue), and every decision kept for admins in the home
//! shard. The model is the harness's stand-in binding, scripted with
//! Llama Guard's answers.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// The filter's decisions about `session`, once there are `n` (the flush
/// writes them to the home shard shortly after they are made).
async fn decisions(admin: &User, session: &str, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let (status, page) = admin.call(Method::GET, "/v1/admin/filter", None).await;
        assert_eq!(status, 200, "{page}");
        let mine: Vec<Value> = page["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["session_id"] == session)
            .cloned()
            .collect();
        if mine.len() >= n {
            return mine;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} filter decisions for {session}");
}

#[tokio::test]
async fn a_word_list_blocks_before_anything_is_stored_and_admins_see_the_decision() {
    let h = Harness::with_vars(&[
        ("MODERATION_FILTER", "words"),
        ("MODERATION_WORDS", "cheap pills, scam"),
        ("MODERATION_ACTION", "block"),
    ]);
    let u = User::new(&h, "filtered");
    let admin = User::admin(&h, "filter-admin");
    let s = u.create_session("filter").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_json(
        &mut ws,
        json!({"type": "send", "client_id": "bad-1", "text": "Buy CHEAP pills now"}),
    )
    .await;
    let (e, _) = recv_type(&mut ws, "error").await;
    assert_eq!(
        (e["code"].as_str(), e["client_id"].as_str()),
        (Some("message_blocked"), Some("bad-1"))
    );
    // Whole words only: "scampi" is fine.
    send_msg(&mut ws, "ok-1", "scampi for dinner").await;
    assert_eq!(u.history_texts(&s).await, vec!["scampi for dinner"]);
    let d = decisions(&admin, &s, 1).await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(
        (
            d[0]["action"].as_str(),
            d[0]["source"].as_str(),
            d[0]["detail"].as_str()
        ),
        (Some("blocked"), Some("words"), Some("cheap pills"))
    );
    assert_eq!(
        (d[0]["user_id"].as_str(), &d[0]["seq"]),
        (Some(u.id.as_str()), &Value::Null)
    );
    // Agents are the moderators: the filter is for users.
    let (mut agent, _, _) = admin.join(&s, None).await;
    send_msg(&mut agent, "agent-1", "please do not post scam links").await;
    let (status, _) = u.call(Method::GET, "/v1/admin/filter", None).await;
    assert_eq!(status, 404, "admins only");
    let (status, e) = admin
        .call(Method::GET, "/v1/admin/filter?cursor=nope", None)
        .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
}

#[tokio::test]
async fn a_moderation_model_flags_after_the_ack_into_the_queue() {
    let model = format!("@cf/standin/{}", unique("guard"));
    let h = Harness::with_vars(&[("MODERATION_FILTER", "ai"), ("MODERATION_AI_MODEL", &model)]);
    h.script(&model, json!([{"text": "unsafe\nS10"}, {"text": "safe"}]))
        .await;
    let u = User::new(&h, "judged");
    let admin = User::admin(&h, "guard-admin");
    let s = u.create_session("guard").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    let seq = send_msg(&mut ws, "m1", "you people are the worst").await["seq"]
        .as_u64()
        .unwrap();
    send_msg(&mut ws, "m2", "have a nice day").await;
    // Both stored: flagging never holds a message back.
    assert_eq!(u.history_texts(&s).await.len(), 2);
    let d = decisions(&admin, &s, 1).await;
    assert_eq!(
        (
            d[0]["action"].as_str(),
            d[0]["source"].as_str(),
            d[0]["detail"].as_str(),
            d[0]["seq"].as_u64()
        ),
        (Some("flagged"), Some("ai"), Some("S10"), Some(seq))
    );
    // The model read the message as the one turn of a conversation.
    let asked = h.standin_requests(Some(&model)).await;
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(
        asked[0]["body"]["messages"][0]["content"],
        "you people are the worst"
    );
    // The flagged message waits in the moderation queue, reported by the filter.
    let (status, q) = admin.call(Method::GET, "/v1/admin/reports", None).await;
    assert_eq!(status, 200);
    let item = q["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["session_id"] == s.as_str())
        .cloned()
        .expect("queued");
    assert_eq!(
        (item["seq"].as_u64(), item["by_filter"].as_bool()),
        (Some(seq), Some(true)),
        "{item}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        decisions(&admin, &s, 1).await.len(),
        1,
        "the safe message made no decision"
    );
}

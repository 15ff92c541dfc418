//! Feedback and regenerate end to end: users rate the assistant's replies
//! (privately: their own sockets hear of it, admins see it), ratings reach
//! D1 and `/metrics`; `regenerate` keeps the old reply, marks it
//! superseded for everyone, and answers again without it in the prompt.

mod common;

use common::llm::*;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn reply(ws: &mut Ws) -> Value {
    until_reply(ws).await.last().unwrap().clone()
}

#[tokio::test]
async fn users_rate_replies_privately_and_admins_and_metrics_see_it() {
    let model = unique("m");
    let metrics_token = "feedback-metrics-token";
    let h = runtime(&model, &[("METRICS_TOKEN", metrics_token)]);
    let ann = User::new(&h, "rater");
    let bo = User::new(&h, "member");
    let s = ann.create_session("ratings").await;
    ann.add_member(&s, &bo).await;
    let (mut a1, _, _) = ann.join(&s, None).await;
    let (mut a2, _, _) = ann.join(&s, None).await;
    let (mut b, _, _) = bo.join(&s, None).await;
    send_msg(&mut a1, "q1", "rate me").await;
    let r = reply(&mut a1).await;
    reply(&mut a2).await;
    reply(&mut b).await;
    let seq = r["seq"].as_u64().unwrap();

    send_json(
        &mut a1,
        json!({"type": "rate", "seq": seq, "rating": "down",
        "reason": "It did not answer my question", "client_id": "r1"}),
    )
    .await;
    let (applied, _) = recv_type(&mut a1, "applied").await;
    assert_eq!(
        (applied["client_id"].as_str(), &applied["change"]),
        (Some("r1"), &Value::Null)
    );
    // The rater's other device hears of it; another member does not.
    let (rated, _) = recv_type(&mut a2, "rated").await;
    assert_eq!(
        rated,
        json!({"type": "rated", "seq": seq, "rating": "down",
        "reason": "It did not answer my question"})
    );
    assert_no_frame_of(&mut b, "rated", 300).await;

    // Not a reply of the assistant's, or not a user's rating: refused.
    send_json(
        &mut a1,
        json!({"type": "rate", "seq": seq - 1, "rating": "up"}),
    )
    .await;
    let (err, _) = recv_type(&mut a1, "error").await;
    assert_eq!(err["code"], "not_rateable");
    send_json(
        &mut a1,
        json!({"type": "rate", "seq": seq + 5, "rating": "up"}),
    )
    .await;
    assert_eq!(recv_type(&mut a1, "error").await.0["code"], "not_found");
    let agent = User::admin(&h, "agent");
    let (mut g, _, _) = agent.join(&s, None).await;
    send_json(&mut g, json!({"type": "rate", "seq": seq, "rating": "up"})).await;
    assert_eq!(recv_type(&mut g, "error").await.0["code"], "not_rateable");

    // Bo rates it up; then the ratings as they stand reach D1.
    send_json(&mut b, json!({"type": "rate", "seq": seq, "rating": "up"})).await;
    recv_type(&mut b, "rated").await;
    h.replicated(&s).await;
    let (status, view) = agent
        .call(Method::GET, &format!("/v1/admin/sessions/{s}"), None)
        .await;
    assert_eq!(status, 200, "{view}");
    let mut feedback: Vec<(String, String, Value)> = view["feedback"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["seq"], seq);
            (
                f["user_id"].as_str().unwrap().to_string(),
                f["rating"].as_str().unwrap().to_string(),
                f["reason"].clone(),
            )
        })
        .collect();
    feedback.sort_by(|x, y| x.0.cmp(&y.0));
    let mut want = vec![
        (
            ann.id.clone(),
            "down".to_string(),
            json!("It did not answer my question"),
        ),
        (bo.id.clone(), "up".to_string(), Value::Null),
    ];
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(feedback, want);
    // The reason is sealed at rest in D1.
    let stored = h
        .session_sql(
            &s,
            "SELECT reason FROM message_ratings WHERE session_id = ?1 AND user_id = ?2",
            json!([s, ann.id]),
        )
        .await;
    let sealed = stored[0]["reason"].as_str().unwrap();
    assert!(!sealed.contains("did not answer"), "{sealed}");

    let feedback_gauge =
        |samples: &[(String, std::collections::BTreeMap<String, String>, f64)], rating: &str| {
            samples
                .iter()
                .filter(|(n, l, _)| {
                    n == "confab_llm_feedback"
                        && l.get("model").map(String::as_str) == Some(model.as_str())
                        && l.get("rating").map(String::as_str) == Some(rating)
                })
                .map(|s| s.2)
                .sum::<f64>()
        };
    let samples = h.metrics(metrics_token).await;
    assert_eq!(
        (
            feedback_gauge(&samples, "up"),
            feedback_gauge(&samples, "down")
        ),
        (1.0, 1.0)
    );

    // Ann changes her mind, then takes it back: the gauge follows.
    send_json(&mut a1, json!({"type": "rate", "seq": seq, "rating": "up"})).await;
    assert_eq!(recv_type(&mut a1, "rated").await.0["rating"], "up");
    h.replicated(&s).await;
    let samples = h.metrics(metrics_token).await;
    assert_eq!(
        (
            feedback_gauge(&samples, "up"),
            feedback_gauge(&samples, "down")
        ),
        (2.0, 0.0)
    );
    send_json(
        &mut a1,
        json!({"type": "rate", "seq": seq, "rating": "none"}),
    )
    .await;
    assert_eq!(recv_type(&mut a1, "rated").await.0["rating"], "none");
    h.replicated(&s).await;
    let samples = h.metrics(metrics_token).await;
    assert_eq!(feedback_gauge(&samples, "up"), 1.0);

    // Erasing the session erases its ratings in D1 too.
    let ratings = "SELECT count(*) AS n FROM message_ratings WHERE session_id = ?1";
    assert_eq!(h.sql_sum(ratings, json!([s])).await, 1);
    let (status, _) = ann
        .call(Method::DELETE, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(h.sql_sum(ratings, json!([s])).await, 0);
}

#[tokio::test]
async fn regenerate_keeps_the_old_reply_superseded_and_answers_again_without_it() {
    let model = unique("m");
    let h = runtime(&model, &[]);
    let ann = User::new(&h, "asker");
    let bo = User::new(&h, "watcher");
    let s = ann.create_session("regenerate").await;
    ann.add_member(&s, &bo).await;
    let (mut a, _, _) = ann.join(&s, None).await;
    let (mut b, _, _) = bo.join(&s, None).await;

    // Nothing to answer again before the assistant has said anything.
    send_json(&mut a, json!({"type": "regenerate"})).await;
    assert_eq!(
        recv_type(&mut a, "error").await.0["code"],
        "nothing_to_regenerate"
    );

    h.script(&model, json!([{"text": "First answer, not good."}, {"text": "Second answer.", "delay_ms": 30}, {"text": "Third answer."}])).await;
    send_msg(&mut a, "q1", "what is the refund policy?").await;
    let first = reply(&mut a).await;
    reply(&mut b).await;
    let first_seq = first["seq"].as_u64().unwrap();
    assert_eq!(first["text"], "First answer, not good.");

    send_json(&mut a, json!({"type": "regenerate"})).await;
    for ws in [&mut a, &mut b] {
        let (sup, _) = recv_type(ws, "superseded").await;
        assert_eq!(sup["seq"], first_seq);
        assert!(sup["change"].as_u64().unwrap() >= 1);
    }
    // While the new reply streams, another regenerate is refused.
    recv_type(&mut a, "turn").await;
    send_json(&mut a, json!({"type": "regenerate"})).await;
    assert_eq!(recv_type(&mut a, "error").await.0["code"], "assistant_busy");
    let second = reply(&mut a).await;
    assert_eq!(second["text"], "Second answer.");
    assert_eq!(second["seq"], first_seq + 1);

    // The new turn's prompt has the question, not the superseded reply.
    let requests = h.standin_requests(Some(&model)).await;
    assert_eq!(requests.len(), 2);
    let prompt = requests[1]["body"]["messages"].to_string();
    assert!(prompt.contains("refund policy"), "{prompt}");
    assert!(!prompt.contains("First answer"), "{prompt}");

    // Again: the second is superseded too; history keeps all three.
    send_json(&mut a, json!({"type": "regenerate"})).await;
    assert_eq!(
        recv_type(&mut a, "superseded").await.0["seq"],
        first_seq + 1
    );
    let third = reply(&mut a).await;
    assert_eq!(third["text"], "Third answer.");
    let (_, page) = ann
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    let replies: Vec<(String, bool)> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"]["kind"] == "assistant")
        .map(|m| {
            (
                m["text"].as_str().unwrap().to_string(),
                m["superseded"] == true,
            )
        })
        .collect();
    assert_eq!(
        replies,
        [
            ("First answer, not good.".to_string(), true),
            ("Second answer.".to_string(), true),
            ("Third answer.".to_string(), false)
        ]
    );

    // A socket that has every message but no change replays both marks.
    let url = format!(
        "{}&changes=0",
        ann.ws_url(&s, Some(third["seq"].as_u64().unwrap())).await
    );
    let mut late = connect(url).await;
    let (_, before) = recv_type(&mut late, "synced").await;
    let marked: Vec<u64> = before
        .iter()
        .filter(|f| f["type"] == "superseded")
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(marked, [first_seq, first_seq + 1]);
    h.replicated(&s).await;
    // D1 holds the superseded marks too.
    let rows = h
        .session_sql(&s, "SELECT seq FROM messages WHERE session_id = ?1 AND superseded_at IS NOT NULL ORDER BY seq", json!([s]))
        .await;
    assert_eq!(
        rows,
        vec![json!({"seq": first_seq}), json!({"seq": first_seq + 1})]
    );
}

//! The local runtime's simulation of D1 far away and of D1 going down
//! (`--d1-latency-ms`, the control endpoint's `/d1/fail` and
//! `/d1/recover`), and what chat does meanwhile today: acks wait for D1,
//! and while D1 is down nothing is acked and nothing is lost.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn every_d1_call_waits_the_configured_latency() {
    let h = Harness::start(Options {
        d1_latency_ms: Some(150),
        ..Default::default()
    });
    let (status, _, ready) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 200, "{ready}");
    let d1_ms = ready["checks"]["d1"]["latency_ms"].as_u64().unwrap();
    assert!(d1_ms >= 150, "readyz's D1 query took {d1_ms} ms");
    // An ack waits for the D1 commit, so for at least one round trip.
    let u = User::new(&h, "far");
    let s = u.create_session("far away").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    let started = Instant::now();
    send_msg(&mut ws, "f1", "hello from afar").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    // The data is the same database as without the wrapper.
    let rows = h
        .sql(
            "SELECT count(*) AS n FROM messages WHERE session_id = ?1",
            json!([s]),
        )
        .await;
    assert_eq!(rows[0]["n"], 1);
}

#[tokio::test]
async fn a_d1_outage_acks_nothing_loses_nothing_and_recovers() {
    let h = Harness::start(Options::default());
    let u = User::new(&h, "outage");
    let s = u.create_session("outage").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_msg(&mut ws, "o1", "before").await;

    h.d1_outage(true).await;
    let (status, _, ready) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(ready["failing"], json!(["d1"]));
    send_json(
        &mut ws,
        json!({"type": "send", "client_id": "o2", "text": "during"}),
    )
    .await;
    let (err, skipped) = recv_type(&mut ws, "error").await;
    assert_eq!(
        (err["code"].as_str(), err["client_id"].as_str()),
        (Some("persist_failed"), Some("o2"))
    );
    assert!(skipped.iter().all(|f| f["type"] != "ack"), "{skipped:?}");

    h.d1_outage(false).await;
    let (status, _, _) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 200);
    // The retry lands once, after what was acked before the outage.
    let ack = send_msg(&mut ws, "o2", "during").await;
    assert_eq!(
        (ack["seq"].as_u64(), ack["duplicate"].as_bool()),
        (Some(2), Some(false))
    );
    assert_eq!(u.history_texts(&s).await, ["before", "during"]);
}

//! Foundation: the real wasm worker in workerd answers health and readiness
//! and refuses bad upgrades; the harness persists state, shuts down cleanly
//! and serves a stand-in LLM in OpenAI's format.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn healthz_is_live_json_with_security_headers() {
    let h = Harness::shared();
    let (status, headers, body) = get_json(&h.url, "/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["service"], "confab");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(!headers["x-request-id"].is_empty());
}

#[tokio::test]
async fn unknown_route_is_404_and_wrong_method_is_405_as_json() {
    let h = Harness::shared();
    let (status, headers, body) = get_json(&h.url, "/no/such/route").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(
        body["error"]["request_id"].as_str().unwrap(),
        headers["x-request-id"].to_str().unwrap()
    );

    let res = http()
        .post(format!("{}/healthz", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(res.headers()["allow"], "GET, HEAD, OPTIONS");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");

    let res = http()
        .put(format!("{}/v1/sessions", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(res.headers()["allow"], "GET, HEAD, POST, OPTIONS");
}

#[tokio::test]
async fn readyz_queries_d1_and_kv() {
    let h = Harness::shared();
    let (status, _, body) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    for check in ["config", "d1", "kv", "rate_limiter", "replication"] {
        assert_eq!(body["checks"][check]["ok"], true, "{check}: {body}");
        assert!(body["checks"][check]["latency_ms"].is_u64());
    }
    assert_eq!(body["failing"], serde_json::json!([]));
}

#[tokio::test]
async fn readyz_is_503_naming_d1_when_the_schema_is_missing() {
    let h = Harness::start(Options {
        no_migrations: true,
        ..Default::default()
    });
    let (status, _, body) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unready");
    assert_eq!(body["failing"], serde_json::json!(["d1"]));
    assert_eq!(body["checks"]["d1"]["ok"], false);
    assert_eq!(body["checks"]["kv"]["ok"], true);
    // The D1 error text is for the log, not the client.
    assert!(!body.to_string().contains("no such table"), "{body}");
    assert!(
        h.stop_and_read_log().contains("no such table"),
        "the reason is logged"
    );
}

/// A dependency that hangs is named as a `timeout` within
/// `READYZ_TIMEOUT_MS`, not waited for: D1 here answers after 3 s.
#[tokio::test]
async fn readyz_reports_a_hanging_dependency_as_a_timeout() {
    let h = Harness::start(Options {
        d1_latency_ms: Some(3000),
        vars: vec![("READYZ_TIMEOUT_MS".into(), "300".into())],
        ..Default::default()
    });
    let (status, _, body) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["d1"]));
    let d1 = &body["checks"]["d1"];
    assert_eq!(
        (d1["ok"].as_bool(), d1["error"].as_str()),
        (Some(false), Some("timeout")),
        "{body}"
    );
    let waited = d1["latency_ms"].as_u64().unwrap();
    assert!((300..3000).contains(&waited), "d1 check took {waited} ms");
    assert_eq!(body["checks"]["kv"]["ok"], true, "{body}");
    // The replication figures come from D1 too: degraded, and named.
    assert_eq!(
        body["degraded"],
        serde_json::json!(["replication"]),
        "{body}"
    );
    assert_eq!(body["checks"]["replication"]["error"], "timeout");
}

/// Without the per-IP limiter the API runs unlimited: still ready, but
/// `degraded` names it.
#[tokio::test]
async fn readyz_names_a_missing_rate_limiter() {
    let h = Harness::start(Options {
        omit_bindings: vec!["HTTP_RATE_LIMITER".into()],
        ..Default::default()
    });
    let (status, _, body) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["degraded"], serde_json::json!(["rate_limiter"]));
    assert_eq!(body["checks"]["rate_limiter"]["error"], "missing");
}

#[tokio::test]
async fn readyz_is_503_naming_kv_when_kv_is_unavailable() {
    let h = Harness::start(Options {
        omit_bindings: vec!["KV".into()],
        ..Default::default()
    });
    let (status, _, body) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["kv"]));
    assert_eq!(body["checks"]["d1"]["ok"], true);
}

#[tokio::test]
async fn invalid_configuration_is_named_by_readyz_and_refuses_sockets() {
    let h = Harness::start(Options {
        vars: vec![("MAX_FRAME_BYTES".into(), "lots".into())],
        ..Default::default()
    });
    let (status, _, body) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failing"], serde_json::json!(["config"]));
    assert_eq!(body["checks"]["config"]["variable"], "MAX_FRAME_BYTES");

    let (status, body) =
        refused_upgrade(&format!("{}/v1/sessions/{}/ws", h.url, unique("s"))).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "unavailable");
}

#[tokio::test]
async fn socket_route_without_upgrade_is_426() {
    let h = Harness::shared();
    let (status, _, body) = get_json(&h.url, &format!("/v1/sessions/{}/ws", unique("s"))).await;
    assert_eq!(status, 426);
    assert_eq!(body["error"]["code"], "upgrade_required");
}

#[tokio::test]
async fn persisted_state_survives_a_restart_and_sigterm_exits_cleanly() {
    let dir = temp_dir("persist");
    let opts = Options {
        persist: Some(dir.clone()),
        ..Default::default()
    };
    let first = Harness::start(opts.clone());
    let (status, _, _) = get_json(&first.url, "/readyz").await;
    assert_eq!(status, 200);
    // Something in every store: a session and a message (D1) and a ticket
    // (KV).
    let u = User::new(&first, "persist");
    let s = u.create_session("kept").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    send_msg(&mut ws, "p1", "still here after a restart").await;
    drop(ws);
    let ticket = u.ticket(&s).await;
    let url = first.url.clone();
    assert_eq!(first.terminate(), Some(0), "SIGTERM is a clean exit");
    assert!(
        http().get(format!("{url}/healthz")).send().await.is_err(),
        "the port is closed after shutdown"
    );

    // Same state directory: migrations are recorded, not re-applied (a second
    // CREATE TABLE would fail the start), and the schema is there.
    let second = Harness::start(opts);
    let (status, _, body) = get_json(&second.url, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(dir.join("d1").exists());
    // Read back through the restarted runtime: the session, its message, and
    // a socket that replays it.
    let u = User {
        base: second.url.clone(),
        ..u
    };
    let (status, session) = u
        .call(reqwest::Method::GET, &format!("/v1/sessions/{s}"), None)
        .await;
    assert_eq!((status, session["title"].as_str()), (200, Some("kept")));
    let (_, history) = u
        .call(
            reqwest::Method::GET,
            &format!("/v1/sessions/{s}/messages"),
            None,
        )
        .await;
    assert_eq!(history["messages"][0]["text"], "still here after a restart");
    // The ticket issued before the restart is still in KV.
    let mut ws = connect(&format!("{}ticket={ticket}", u.plain_ws_url(&s, Some(0)))).await;
    let (_, replayed) = recv_type(&mut ws, "synced").await;
    let texts: Vec<&str> = replayed
        .iter()
        .filter(|f| f["type"] == "message")
        .filter_map(|f| f["text"].as_str())
        .collect();
    assert_eq!(texts, vec!["still here after a restart"]);
}

#[tokio::test]
async fn stand_in_llm_streams_openai_chat_completion_chunks() {
    let h = Harness::shared();
    let res = http()
        .post(format!("{}/v1/chat/completions", h.llm_url))
        .json(&serde_json::json!({
            "model": "standin-1",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hello there"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let body = res.text().await.unwrap();
    let events: Vec<&str> = body
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .expect("every event is a data line")
        })
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let mut text = String::new();
    let mut finish = None;
    let mut usage = None;
    for e in &events[..events.len() - 1] {
        let v: Value = serde_json::from_str(e).unwrap();
        assert_eq!(v["object"], "chat.completion.chunk");
        if let Some(choice) = v["choices"].get(0) {
            text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            if !choice["finish_reason"].is_null() {
                finish = Some(choice["finish_reason"].clone());
            }
        }
        if !v["usage"].is_null() {
            usage = Some(v["usage"].clone());
        }
    }
    assert_eq!(text, "Stand-in assistant here. You said: hello there");
    assert_eq!(finish, Some(Value::from("stop")));
    assert!(usage.unwrap()["completion_tokens"].as_u64().unwrap() > 0);

    let requests = h.standin_requests(None).await;
    assert!(requests
        .iter()
        .any(|r| r["vendor"] == "openai" && r["body"]["messages"][0]["content"] == "hello there"));
}

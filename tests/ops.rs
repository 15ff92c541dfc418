//! Operations: structured logs that say what operators need and nothing
//! they must not hold.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn logs_are_json_lines_with_the_fields_operators_need_and_no_secrets() {
    let h = Harness::start(Options {
        vars: vec![
            ("LLM_PROVIDERS".into(), "openai".into()),
            ("OPENAI_BASE_URL".into(), "{llm_url}/v1".into()),
            (
                "OPENAI_API_KEY".into(),
                "sk-very-secret-provider-key".into(),
            ),
        ],
        ..Default::default()
    });
    let u = User::new(&h, "logged");
    let (status, s) = u
        .call(
            Method::POST,
            "/v1/sessions",
            Some(json!({"title": "TITLE-SECRET-1", "contact": {"name": "CONTACT-NAME-2", "email": "contact-3@example.com"}})),
        )
        .await;
    assert_eq!(status, 201);
    let id = s["id"].as_str().unwrap();
    let ticket = u.ticket(id).await;
    let mut ws = connect(&format!("{}ticket={ticket}", u.plain_ws_url(id, None))).await;
    recv_type(&mut ws, "synced").await;
    send_msg(&mut ws, "c1", "MESSAGE-TEXT-4").await;
    let (reply, _) = loop {
        let (m, skipped) = recv_type(&mut ws, "message").await;
        if m["author"]["kind"] == "assistant" {
            break (m, skipped);
        }
    };
    send_json(
        &mut ws,
        json!({"type": "edit", "seq": 1, "text": "EDITED-TEXT-5"}),
    )
    .await;
    recv_type(&mut ws, "edited").await;
    drop(ws);
    u.call(Method::GET, &format!("/v1/sessions/{id}/messages"), None)
        .await;
    u.call(Method::GET, "/v1/nothing/here", None).await;
    let log = h.stop_and_read_log();
    let forbidden = [
        "TITLE-SECRET-1",
        "CONTACT-NAME-2",
        "contact-3@example.com",
        "MESSAGE-TEXT-4",
        "EDITED-TEXT-5",
        reply["text"].as_str().unwrap(),
        u.token.as_str(),
        ticket.as_str(),
        TEST_SECRET,
        KEY_K1.split_once(':').unwrap().1,
        "sk-very-secret-provider-key",
        u.id.as_str(),
    ];
    for f in forbidden {
        assert!(!log.contains(f), "the log holds {f:?}");
    }

    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let hash = confab::auth::user_hash(TEST_SECRET.as_bytes(), &u.id);
    let http: Vec<&Value> = lines.iter().filter(|l| l["event"] == "http").collect();
    // One line per request: create, ticket, upgrade, history, and the 404.
    let routes: Vec<&Value> = http.iter().map(|l| &l["route"]).collect();
    assert_eq!(
        routes,
        [
            &json!("sessions.create"),
            &json!("tickets.create"),
            &json!("sessions.ws"),
            &json!("messages.history"),
            &Value::Null
        ],
        "{log}"
    );
    for l in &http {
        for field in [
            "ts",
            "level",
            "request_id",
            "status",
            "duration_ms",
            "method",
        ] {
            assert!(!l[field].is_null(), "{field} missing in {l}");
        }
    }
    let history = http
        .iter()
        .find(|l| l["route"] == "messages.history")
        .expect("a history line");
    assert_eq!(history["session"], id);
    assert_eq!(history["user"], hash.as_str());
    assert_eq!(history["status"], 200);
    assert!(
        history["path"].is_null(),
        "known routes are named, not pathed"
    );
    let unknown = http
        .iter()
        .find(|l| l["status"] == 404)
        .expect("a 404 line");
    // Only the shape: segments that are not route words may be user data.
    assert_eq!(unknown["path"], "/v1/*/*");
    assert!(unknown["route"].is_null());

    for event in ["ws_open", "ws_close"] {
        let l = lines
            .iter()
            .find(|l| l["event"] == event)
            .unwrap_or_else(|| panic!("no {event} line in {log}"));
        assert_eq!(l["session"], id, "{l}");
        assert_eq!(l["user"], hash.as_str(), "{l}");
    }
}

#[tokio::test]
async fn the_log_level_is_configurable() {
    // A provider with no key makes /readyz fail a check: a warn line.
    let h = Harness::start(Options {
        vars: vec![
            ("LOG_LEVEL".into(), "warn".into()),
            ("LLM_PROVIDERS".into(), "anthropic".into()),
        ],
        ..Default::default()
    });
    let (status, _, _) = get_json(&h.url, "/healthz").await;
    assert_eq!(status, 200);
    get_json(&h.url, "/nope").await;
    let u = User::new(&h, "quiet");
    u.call(Method::POST, "/v1/sessions", Some(json!({"title": "x"})))
        .await;
    let (status, _, _) = get_json(&h.url, "/readyz").await;
    assert_eq!(status, 503);
    let log = h.stop_and_read_log();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    // The info lines (the 200s, the 404, the 201) are off …
    for l in &lines {
        assert!(
            l["level"] == "warn" || l["level"] == "error",
            "only warn and error at warn: {l}"
        );
    }
    // … and logging itself still works: the warn line is there, and the
    // 503 is logged as an error.
    let warn = lines
        .iter()
        .find(|l| l["event"] == "readyz_check_failed")
        .unwrap_or_else(|| panic!("no warn line at warn level: {log}"));
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "http" && l["status"] == 503 && l["level"] == "error"),
        "{log}"
    );
    assert_eq!(warn["level"], "warn", "{warn}");
    assert_eq!(warn["check"], "providers", "{warn}");
}

#[tokio::test]
async fn readyz_checks_provider_configuration_without_calling_out() {
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, Value);
    let cases: [Case; 4] = [
        (&[], 200, json!("disabled")),
        (&[("LLM_PROVIDERS", "anthropic")], 503, json!(["anthropic"])),
        (
            &[
                ("LLM_PROVIDERS", "anthropic,openai"),
                ("ANTHROPIC_API_KEY", "k"),
                ("OPENAI_BASE_URL", "{llm_url}/v1"),
            ],
            200,
            json!(["anthropic", "openai"]),
        ),
        (
            &[("LLM_PROVIDERS", "workers_ai")],
            200,
            json!(["workers_ai"]),
        ),
    ];
    for (vars, status, chain) in cases {
        let h = Harness::start(Options {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        });
        let (got, _, body) = get_json(&h.url, "/readyz").await;
        assert_eq!(got, status, "{vars:?}: {body}");
        assert_eq!(body["checks"]["providers"]["chain"], chain, "{vars:?}");
        assert_eq!(body["checks"]["providers"]["ok"], status == 200);
        // No provider was called.
        let seen = h.standin_requests(None).await;
        assert!(seen.is_empty());
    }
}

/// The value of the series `name` whose labels include all of `want`.
fn value(
    samples: &[(String, std::collections::BTreeMap<String, String>, f64)],
    name: &str,
    want: &[(&str, &str)],
) -> f64 {
    let found: Vec<f64> = samples
        .iter()
        .filter(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
        .collect();
    assert_eq!(found.len(), 1, "{name} {want:?}: {found:?}");
    found[0]
}

#[tokio::test]
async fn metrics_are_right_after_a_scripted_conversation() {
    let model = unique("metrics");
    let metrics_token = "metrics-token-0123456789";
    let h = Harness::start(Options {
        vars: vec![
            ("LLM_PROVIDERS".into(), "openai".into()),
            ("OPENAI_BASE_URL".into(), "{llm_url}/v1".into()),
            ("OPENAI_MODEL".into(), model.clone()),
            ("LLM_MAX_RETRIES".into(), "0".into()),
            ("METRICS_TOKEN".into(), metrics_token.into()),
        ],
        ..Default::default()
    });
    let u = User::new(&h, "talker");
    let admin = User {
        token: token_with_roles("ops", "Ops", &["admin"]),
        ..u.clone()
    };
    let s = u.create_session("chat").await;
    let quiet = u.create_session("human").await;
    admin
        .call(
            Method::POST,
            &format!("/v1/admin/sessions/{quiet}/takeover"),
            None,
        )
        .await;

    let (mut a, _, _) = u.join(&s, None).await;
    let (b, _, _) = u.join(&s, None).await;
    let mut replies = Vec::new();
    for i in 0..2 {
        send_msg(&mut a, &format!("q{i}"), "hello").await;
        loop {
            let (m, _) = recv_type(&mut a, "message").await;
            if m["author"]["kind"] == "assistant" {
                replies.push(m);
                break;
            }
        }
    }
    // A third turn fails at the provider.
    h.script(&model, json!([{"status": 500}])).await;
    send_msg(&mut a, "q2", "hello?").await;
    recv_type(&mut a, "error").await;
    // Frames the decoder refuses and frames that store nothing count too.
    send_text(&mut a, "not json").await;
    recv_type(&mut a, "error").await;
    send_json(&mut a, json!({"type": "typing"})).await;
    drop(b);
    recv_type(&mut a, "presence").await;

    // Who may scrape.
    let res = http()
        .get(format!("{}/metrics", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let res = http()
        .get(format!("{}/metrics", h.url))
        .bearer_auth("wrong-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(
        u.req(Method::GET, "/metrics")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404,
        "users are not admins"
    );
    assert_eq!(
        admin
            .req(Method::GET, "/metrics")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    // Every counter of the conversation is in D1 once its session's
    // outbox is flushed.
    h.replicated(&s).await;
    let samples = h.metrics(metrics_token).await;

    let m = model.as_str();
    assert_eq!(
        value(
            &samples,
            "confab_sessions",
            &[("mode", "assistant"), ("status", "open")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "confab_sessions",
            &[("mode", "human"), ("status", "assigned")]
        ),
        1.0
    );
    assert_eq!(
        value(&samples, "confab_messages_total", &[("kind", "user")]),
        3.0
    );
    assert_eq!(
        value(&samples, "confab_messages_total", &[("kind", "assistant")]),
        2.0
    );
    let turns = |outcome| {
        value(
            &samples,
            "confab_llm_turns_total",
            &[("provider", "openai"), ("model", m), ("outcome", outcome)],
        )
    };
    assert_eq!((turns("ok"), turns("failed")), (2.0, 1.0));
    let sum = |f: &str| {
        replies
            .iter()
            .map(|r| r["turn"][f].as_u64().unwrap() as f64)
            .sum::<f64>()
    };
    let tokens = |d| {
        value(
            &samples,
            "confab_llm_tokens_total",
            &[("model", m), ("direction", d)],
        )
    };
    assert_eq!(
        (tokens("in"), tokens("out")),
        (sum("tokens_in"), sum("tokens_out"))
    );
    for (family, field) in [
        ("confab_llm_ttft_seconds", "ttft_ms"),
        ("confab_llm_turn_duration_seconds", "latency_ms"),
    ] {
        assert_eq!(
            value(&samples, &format!("{family}_count"), &[("model", m)]),
            2.0
        );
        let got = value(&samples, &format!("{family}_sum"), &[("model", m)]);
        assert!((got - sum(field) / 1000.0).abs() < 1e-9, "{family}: {got}");
        assert_eq!(
            value(
                &samples,
                &format!("{family}_bucket"),
                &[("model", m), ("le", "+Inf")]
            ),
            2.0
        );
        // Cumulative: every bucket holds the turns at or under its bound.
        for le in confab::metrics::BUCKETS.iter().filter(|b| **b != "+Inf") {
            let bound: f64 = le.parse().unwrap();
            let under = replies
                .iter()
                .filter(|r| r["turn"][field].as_u64().unwrap() as f64 <= bound * 1000.0)
                .count();
            assert_eq!(
                value(
                    &samples,
                    &format!("{family}_bucket"),
                    &[("model", m), ("le", le)]
                ),
                under as f64,
                "{family} le={le}"
            );
        }
    }
    assert_eq!(
        value(
            &samples,
            "confab_ws_connections_total",
            &[("event", "opened")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &samples,
            "confab_ws_connections_total",
            &[("event", "closed")]
        ),
        1.0
    );
    let frames = |t: &str| value(&samples, "confab_ws_frames_total", &[("type", t)]);
    assert_eq!(
        (frames("send"), frames("invalid"), frames("typing")),
        (3.0, 1.0, 1.0)
    );
    // `b` went away without a closing handshake: 1006, as the runtime
    // reports an abnormal closure.
    assert_eq!(
        value(&samples, "confab_ws_closes_total", &[("code", "1006")]),
        1.0
    );
}

/// The Worker's own series after a scripted set of requests, on a runtime
/// of their own: requests by route and status class, the latency
/// histogram, auth failures by code and per-IP refusals. Each isolate sums
/// in memory and writes to D1 (`src/tally.rs`); a scrape writes its own
/// isolate's figures first, so what it shows includes every request before
/// it, and the scrape itself shows in the next one.
#[tokio::test]
async fn http_series_count_every_request_by_route_class_and_code() {
    let metrics_token = "metrics-token-0123456789";
    let h = Harness::start(Options {
        vars: vec![("METRICS_TOKEN".into(), metrics_token.into())],
        ratelimits: vec![("HTTP_RATE_LIMITER".into(), 3)],
        ..Default::default()
    });
    let get = |path: &str| http().get(format!("{}{path}", h.url));
    for _ in 0..3 {
        assert_eq!(get("/healthz").send().await.unwrap().status(), 200);
    }
    let res = get("/healthz")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Five unauthenticated list calls from one address: three reach the
    // token check (401), the limit refuses the last two (429).
    let mut codes = Vec::new();
    for _ in 0..5 {
        let res = get("/v1/sessions")
            .header("cf-connecting-ip", "192.0.2.7")
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        let code = body["error"]["code"].as_str();
        codes.push((status, code.unwrap_or_else(|| panic!("{body}")).to_string()));
    }
    let statuses: Vec<u16> = codes.iter().map(|c| c.0).collect();
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    let unauthorized = codes[0].1.clone();
    assert_eq!(get("/no/such/route").send().await.unwrap().status(), 404);

    let samples = h.metrics(metrics_token).await;
    let req = "confab_http_requests_total";
    let n = |route: &str, class: &str| value(&samples, req, &[("route", route), ("class", class)]);
    assert_eq!(n("healthz", "2xx"), 3.0);
    assert_eq!(n("healthz", "4xx"), 1.0);
    assert_eq!(n("sessions.list", "4xx"), 5.0);
    assert_eq!(n("unmatched", "4xx"), 1.0);
    let failures = "confab_auth_failures_total";
    assert_eq!(value(&samples, failures, &[("code", &unauthorized)]), 3.0);
    assert_eq!(
        value(&samples, failures, &[("code", "origin_not_allowed")]),
        1.0
    );
    assert_eq!(
        value(&samples, "confab_rate_limited_total", &[("scope", "http")]),
        2.0
    );
    // The histogram: every healthz request under +Inf, buckets cumulative.
    let hist = "confab_http_request_duration_seconds";
    let route = [("route", "healthz")];
    assert_eq!(value(&samples, &format!("{hist}_count"), &route), 4.0);
    let buckets: Vec<f64> = ["0.005", "0.05", "0.5", "5", "+Inf"]
        .iter()
        .map(|le| {
            value(
                &samples,
                &format!("{hist}_bucket"),
                &[("route", "healthz"), ("le", le)],
            )
        })
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(buckets[4], 4.0);
    assert!(value(&samples, &format!("{hist}_sum"), &route) >= 0.0);

    // The first scrape shows in the second.
    let samples = h.metrics(metrics_token).await;
    let n = |route: &str, class: &str| value(&samples, req, &[("route", route), ("class", class)]);
    assert_eq!(n("metrics", "2xx"), 1.0);
    assert_eq!(n("healthz", "2xx"), 3.0);
}

/// W3C Trace Context: a caller's `traceparent` is continued by the Worker
/// (its log line carries the trace id), and a `send` frame's is joined by
/// the assistant's turn: the provider gets a child span of it, and the
/// turn's log lines carry its trace id. Without one, a turn starts a trace
/// of its own.
#[tokio::test]
async fn a_trace_follows_a_message_to_the_provider_and_into_the_logs() {
    let model = unique("traced");
    let h = llm::runtime(&model, &[]);
    let http_trace = "0af7651916cd43dd8448eb211c80319c";
    let res = http()
        .get(format!("{}/healthz", h.url))
        .header(
            "traceparent",
            format!("00-{http_trace}-b7ad6b7169203331-01"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let u = User::new(&h, "tracer");
    let s = u.create_session("traced").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    let turn_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    send_json(
        &mut ws,
        json!({"type": "send", "client_id": "t1", "text": "hello",
               "traceparent": format!("00-{turn_trace}-{client_span}-01")}),
    )
    .await;
    llm::until_reply(&mut ws).await;
    send_json(
        &mut ws,
        json!({"type": "send", "client_id": "t2", "text": "again"}),
    )
    .await;
    llm::until_reply(&mut ws).await;

    let seen = h.standin_requests(Some(&model)).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    let parent = |r: &Value| r["headers"]["traceparent"].as_str().unwrap().to_string();
    let (first, second) = (parent(&seen[0]), parent(&seen[1]));
    let parts: Vec<&str> = first.split('-').collect();
    assert_eq!(parts.len(), 4, "{first}");
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", turn_trace, "01"),
        "{first}"
    );
    assert_ne!(parts[2], client_span, "the attempt is a span of its own");
    assert!(parts[2].len() == 16 && parts[2] != "0000000000000000");
    let other: Vec<&str> = second.split('-').collect();
    assert_eq!(other.len(), 4, "{second}");
    assert_ne!(other[1], turn_trace, "a message without one starts a trace");
    assert!(other[1].len() == 32 && other[1].bytes().all(|b| b.is_ascii_hexdigit()));

    drop(ws);
    let log = h.stop_and_read_log();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let with = |event: &str, trace: &str| {
        lines
            .iter()
            .any(|l| l["event"] == event && l["trace_id"] == trace)
    };
    assert!(
        with("http", http_trace),
        "the Worker's line of the traced request"
    );
    assert!(with("turn_finished", turn_trace), "the turn's line");
    assert!(
        with("turn_finished", other[1]),
        "the untraced message's turn"
    );
    // Every request line has one.
    assert!(lines
        .iter()
        .filter(|l| l["event"] == "http")
        .all(|l| l["trace_id"].as_str().is_some_and(|t| t.len() == 32)));
}

//! The cost ledger end to end: replies through three wire formats (the
//! stand-in reporting cached prompt tokens in each vendor's own fields)
//! record their cost at `LLM_PRICES`, and the session view, the usage
//! report, `/metrics` and the budget in money all agree with the table.

mod common;

use common::llm::*;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

/// Prices in µ$ per million tokens (input, cached input, output), as the
/// table below states them in dollars.
const OPENAI: (u64, u64, u64) = (150_000, 75_000, 600_000);
const ANTHROPIC: (u64, u64, u64) = (3_000_000, 3_000_000, 15_000_000);

fn prices(model: &str) -> String {
    json!([
        {"provider": "openai", "model": model, "input": 0.15, "output": 0.6, "cached_input": 0.075},
        // Every Anthropic model; no cached price: cached input costs as input.
        {"provider": "anthropic", "model": "*", "input": 3, "output": 15},
    ])
    .to_string()
}

/// What the table says a reply with this usage costs, in nano-dollars.
fn expected_nanos(turn: &Value, (input, cached_input, output): (u64, u64, u64)) -> u64 {
    let n = |k: &str| turn[k].as_u64().unwrap_or(0);
    let cached = n("tokens_cached");
    let micro_per_m =
        (n("tokens_in") - cached) * input + cached * cached_input + n("tokens_out") * output;
    (micro_per_m + 500) / 1_000
}

fn nanos(dollars: &Value) -> u64 {
    (dollars.as_f64().expect("an amount") * 1e9).round() as u64
}

async fn ask(ws: &mut Ws, id: &str) -> Value {
    send_msg(ws, id, "how much is this?").await;
    let frames = until_reply(ws).await;
    frames.last().unwrap().clone()
}

#[tokio::test]
async fn replies_cost_what_the_price_table_says_everywhere_it_is_reported() {
    let model = unique("m");
    let metrics_token = "costs-metrics-token";
    let h = runtime(
        &model,
        &[
            ("LLM_PROVIDERS", "openai,anthropic,gemini"),
            ("LLM_PRICES", &prices(&model)),
            ("METRICS_TOKEN", metrics_token),
        ],
    );
    let u = User::new(&h, "payer");
    let s = u.create_session("costs").await;
    let (mut ws, _, _) = u.join(&s, None).await;

    // 1: OpenAI answers, 5 prompt tokens from its cache.
    h.script(&model, json!([{"cached_tokens": 5}])).await;
    let first = ask(&mut ws, "q1").await;
    // 2: OpenAI refuses (401 is not retried): Anthropic answers.
    h.script(&model, json!([{"status": 401}])).await;
    h.script(&format!("{model}-a"), json!([{"cached_tokens": 5}]))
        .await;
    let second = ask(&mut ws, "q2").await;
    // 3: both refuse: Gemini answers, and the table has no price for it.
    h.script(&model, json!([{"status": 401}])).await;
    h.script(&format!("{model}-a"), json!([{"status": 401}]))
        .await;
    h.script(&format!("{model}-g"), json!([{"cached_tokens": 5}]))
        .await;
    let third = ask(&mut ws, "q3").await;

    let (t1, t2, t3) = (&first["turn"], &second["turn"], &third["turn"]);
    assert_eq!(
        [&t1["provider"], &t2["provider"], &t3["provider"]],
        ["openai", "anthropic", "gemini"]
    );
    for t in [t1, t2, t3] {
        assert_eq!(
            t["tokens_cached"], 5,
            "cached tokens as each vendor reports them: {t}"
        );
        assert!(t["tokens_in"].as_u64().unwrap() > 5);
    }
    let c1 = expected_nanos(t1, OPENAI);
    let c2 = expected_nanos(t2, ANTHROPIC);
    assert!(c1 > 0 && c2 > c1, "{c1} {c2}");
    assert_eq!(nanos(&t1["cost_usd"]), c1, "{t1}");
    assert_eq!(nanos(&t2["cost_usd"]), c2, "{t2}");
    assert!(
        t3.get("cost_usd").is_none(),
        "no price: no cost, not 0: {t3}"
    );
    // History says the same as the live frames.
    let (status, page) = u
        .call(Method::GET, &format!("/v1/sessions/{s}/messages"), None)
        .await;
    assert_eq!(status, 200);
    let stored: Vec<&Value> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"]["kind"] == "assistant")
        .collect();
    assert_eq!(stored.len(), 3);
    assert_eq!(nanos(&stored[0]["turn"]["cost_usd"]), c1);
    assert_eq!(nanos(&stored[1]["turn"]["cost_usd"]), c2);

    h.replicated(&s).await;
    let admin = User::admin(&h, "finance");
    let (status, view) = admin
        .call(Method::GET, &format!("/v1/admin/sessions/{s}"), None)
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(nanos(&view["usage"]["cost_usd"]), c1 + c2, "{view}");
    assert_eq!(view["usage"]["unpriced_turns"], 1);

    // The report, by model: one row each, the unpriced one counted apart.
    let report = |q: String| {
        let admin = &admin;
        async move {
            let (status, body) = admin
                .call(Method::GET, &format!("/v1/admin/usage?{q}"), None)
                .await;
            assert_eq!(status, 200, "{q}: {body}");
            body
        }
    };
    let by_model = report(format!("by=model&user={}", u.id)).await;
    assert_eq!(by_model["currency"], "USD");
    let items = by_model["items"].as_array().unwrap();
    let row = |provider: &str| {
        items
            .iter()
            .find(|i| i["provider"] == provider)
            .unwrap_or_else(|| panic!("{provider} in {by_model}"))
    };
    assert_eq!(row("openai")["model"], model.as_str());
    assert_eq!(nanos(&row("openai")["cost_usd"]), c1);
    assert_eq!(row("openai")["tokens_in"], t1["tokens_in"]);
    assert_eq!(row("openai")["tokens_cached"], 5);
    assert_eq!(nanos(&row("anthropic")["cost_usd"]), c2);
    assert_eq!(row("gemini")["unpriced_turns"], 1);
    assert_eq!(nanos(&row("gemini")["cost_usd"]), 0);

    // By user, by day (today, UTC) and by profile: one row, the sum.
    let today = {
        let days = now_ms().div_euclid(86_400_000);
        let v = h
            .sql("SELECT date(?1 * 86400, 'unixepoch') AS d", json!([days]))
            .await;
        v[0]["d"].as_str().unwrap().to_string()
    };
    for (q, key, want) in [
        (format!("by=user&user={}", u.id), "user_id", u.id.clone()),
        (
            format!("by=day&from={today}&to={today}&user={}", u.id),
            "day",
            today.clone(),
        ),
        (
            format!("by=profile&user={}", u.id),
            "profile",
            "default".to_string(),
        ),
    ] {
        let body = report(q.clone()).await;
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{q}: {body}");
        assert_eq!(items[0][key], want.as_str(), "{q}");
        assert_eq!(items[0]["turns"], 3, "{q}");
        assert_eq!(nanos(&items[0]["cost_usd"]), c1 + c2, "{q}");
        assert_eq!(body["next_cursor"], Value::Null);
    }

    // Pages: one model at a time, in key order, each once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            None => format!("by=model&user={}&limit=1", u.id),
            Some(c) => format!("by=model&user={}&limit=1&cursor={c}", u.id),
        };
        let body = report(q).await;
        for i in body["items"].as_array().unwrap() {
            seen.push(i["provider"].as_str().unwrap().to_string());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["anthropic", "gemini", "openai"]);

    // Bad queries get their codes.
    for (q, code) in [
        ("by=week", "invalid_filter"),
        ("from=2026-02-30", "invalid_filter"),
        ("cursor=xyz", "invalid_cursor"),
    ] {
        let (status, body) = admin
            .call(Method::GET, &format!("/v1/admin/usage?{q}"), None)
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{q}"
        );
    }
    let (status, _) = u.call(Method::GET, "/v1/admin/usage", None).await;
    assert_eq!(status, 404, "admins only: others are told nothing is there");

    // /metrics, read with the Prometheus parser: the priced replies' cost.
    let samples = h.metrics(metrics_token).await;
    let cost = |provider: &str, m: &str| {
        samples
            .iter()
            .filter(|(n, l, _)| {
                n == "confab_llm_cost_total"
                    && l.get("provider").map(String::as_str) == Some(provider)
                    && l.get("model").map(String::as_str) == Some(m)
            })
            .map(|s| s.2)
            .collect::<Vec<_>>()
    };
    let openai = cost("openai", &model);
    assert_eq!(openai.len(), 1, "{samples:?}");
    assert!(
        (openai[0] - c1 as f64 / 1e9).abs() < 1e-12,
        "{openai:?} vs {c1}"
    );
    let anthropic = cost("anthropic", &format!("{model}-a"));
    assert!((anthropic[0] - c2 as f64 / 1e9).abs() < 1e-12);
    assert!(
        cost("gemini", &format!("{model}-g")).is_empty(),
        "no price, no series"
    );
}

#[tokio::test]
async fn a_daily_budget_in_money_refuses_the_turn_after_it_is_spent() {
    let model = unique("m");
    let h = runtime(
        &model,
        &[
            ("LLM_PRICES", &prices(&model)),
            // Less than any reply costs: the first turn of the day is
            // granted (nothing spent yet), the next one is not.
            ("DAILY_COST_BUDGET_USD", "0.000001"),
        ],
    );
    let u = User::new(&h, "thrifty");
    let s = u.create_session("budget").await;
    let (mut ws, _, _) = u.join(&s, None).await;
    let reply = ask(&mut ws, "q1").await;
    let spent = expected_nanos(&reply["turn"], OPENAI);
    assert!(spent > 1_000, "{reply}");
    h.replicated(&s).await;
    // Settled: the reservation is given back and the cost kept, in nano-dollars.
    let day = h
        .sql(
            "SELECT cost_nanos, reserved_nanos, reserved FROM usage_daily WHERE user_id = ?1",
            json!([u.id]),
        )
        .await;
    assert_eq!(day[0]["cost_nanos"], spent, "{day:?}");
    assert_eq!(day[0]["reserved_nanos"], 0);
    assert_eq!(day[0]["reserved"], 0);

    send_msg(&mut ws, "q2", "and this?").await;
    let (err, skipped) = recv_type(&mut ws, "error").await;
    assert_eq!(err["code"], "quota_exceeded");
    assert!(skipped.iter().all(|f| f["type"] != "delta"));
    assert_eq!(h.standin_requests(Some(&model)).await.len(), 1);
}

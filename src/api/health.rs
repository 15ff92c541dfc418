//! Liveness and readiness.

use crate::config::LogLevel;
use crate::http::{json, Ctx, HandlerResult};
use crate::llm::config::defaults;
use crate::llm::Kind;
use crate::runtime::log;
use serde_json::{json, Map, Value};

/// GET /healthz
///
/// Liveness: the isolate runs and can answer. Touches no dependency, so a
/// D1 or KV outage never gets a healthy worker restarted.
pub async fn healthz(_ctx: &Ctx) -> HandlerResult {
    json(
        200,
        &json!({ "status": "ok", "service": "confab", "version": env!("CARGO_PKG_VERSION") }),
    )
}

/// GET /readyz
///
/// Readiness: configuration is valid, D1 answers a real query against the
/// schema, and KV answers a read. 503 names each failing check; the reason
/// stays in the log. Replication lag past `REPLICATION_LAG_READY_SECONDS`
/// is reported as `degraded` (status 200: chat still works, D1's copy is
/// behind).
pub async fn readyz(ctx: &Ctx) -> HandlerResult {
    let mut checks = Map::new();
    let mut failing = Vec::new();

    let config = match ctx.config() {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{e}")),
    };
    record(&mut checks, &mut failing, "config", 0, config.clone());
    // A config failure is operator-facing and names only the variable, so it
    // is safe to show; dependency errors are not.
    if let Err(e) = &config {
        checks["config"]["code"] = Value::from("config_invalid");
        checks["config"]["variable"] = Value::from(e.split(':').next().unwrap_or(""));
    }

    let started = now();
    let d1 = check_d1(ctx).await;
    record(&mut checks, &mut failing, "d1", now() - started, d1);

    let started = now();
    let kv = check_kv(ctx).await;
    record(&mut checks, &mut failing, "kv", now() - started, kv);

    // Configuration only: readiness never calls a provider.
    let (chain, providers) = check_providers(ctx);
    record(&mut checks, &mut failing, "providers", 0, providers);
    checks["providers"]["chain"] = chain;

    let mut degraded: Vec<&str> = Vec::new();
    let shards = ctx.config().ok().and_then(|c| {
        let dbs = crate::store::all(&ctx.env, &c.shards).ok()?;
        Some((c, dbs))
    });
    if let Some((config, dbs)) = shards {
        let started = now();
        let lag = crate::store::metrics::replication(&dbs, crate::store::now_ms()).await;
        if let Ok(r) = lag {
            let ok = r.lag_ms <= config.replication_lag_ready_s as i64 * 1000;
            if !ok {
                degraded.push("replication");
            }
            checks.insert(
                "replication".into(),
                json!({
                    "ok": ok,
                    "latency_ms": now() - started,
                    "lag_seconds": r.lag_ms.max(0) as f64 / 1000.0,
                    "outbox_depth": r.depth,
                }),
            );
        }
    }

    let ready = failing.is_empty();
    let status = match (ready, degraded.is_empty()) {
        (false, _) => "unready",
        (true, false) => "degraded",
        (true, true) => "ready",
    };
    let body = json!({
        "status": status,
        "checks": checks,
        "failing": failing,
        "degraded": degraded,
        "request_id": ctx.request_id,
    });
    json(if ready { 200 } else { 503 }, &body)
}

fn now() -> u64 {
    worker::Date::now().as_millis()
}

fn record(
    checks: &mut Map<String, Value>,
    failing: &mut Vec<&'static str>,
    name: &'static str,
    latency_ms: u64,
    outcome: Result<(), String>,
) {
    let ok = outcome.is_ok();
    if let Err(detail) = outcome {
        failing.push(name);
        log(
            LogLevel::Warn,
            "readyz_check_failed",
            [
                ("check", Value::from(name)),
                ("detail", Value::from(detail)),
            ],
        );
    }
    checks.insert(name.into(), json!({ "ok": ok, "latency_ms": latency_ms }));
}

/// The assistant's chain, and whether each provider can be called: a
/// vendor's public endpoint needs its key, Workers AI needs its binding.
fn check_providers(ctx: &Ctx) -> (Value, Result<(), String>) {
    // An invalid configuration is the config check's failure, not this one's.
    let Ok(config) = ctx.config() else {
        return (Value::Null, Ok(()));
    };
    let Some(a) = config.assistant.as_ref() else {
        return (Value::from("disabled"), Ok(()));
    };
    let chain: Vec<Value> = a
        .chain
        .iter()
        .map(|p| Value::from(p.endpoint.kind.as_str()))
        .collect();
    for p in &a.chain {
        let e = &p.endpoint;
        let public = [
            defaults::OPENAI_BASE_URL,
            defaults::ANTHROPIC_BASE_URL,
            defaults::GEMINI_BASE_URL,
        ]
        .contains(&e.base_url.as_str());
        if e.kind == Kind::WorkersAi {
            if ctx.env.ai(crate::bindings::AI).is_err() {
                return (Value::from(chain), Err("workers_ai: no AI binding".into()));
            }
        } else if public && p.api_key.is_none() {
            return (
                Value::from(chain),
                Err(format!("{}: api key unset", e.kind.as_str())),
            );
        }
    }
    (Value::from(chain), Ok(()))
}

/// Every shard, at once; a failure names its binding.
async fn check_d1(ctx: &Ctx) -> Result<(), String> {
    let shards = match ctx.config() {
        Ok(c) => c.shards.clone(),
        // The config check reports why; the default shard is still checked.
        Err(_) => crate::shards::Shards::parse(None).expect("the default parses"),
    };
    let checks = shards.all().iter().map(|shard| async move {
        let db = ctx
            .env
            .d1(shard.as_str())
            .map_err(|e| format!("{}: {e}", shard.as_str()))?;
        crate::store::schema_ready(&db)
            .await
            .map_err(|e| format!("{}: {e}", shard.as_str()))
    });
    crate::join::try_join_all(checks).await.map(|_| ())
}

async fn check_kv(ctx: &Ctx) -> Result<(), String> {
    let kv = ctx.env.kv(crate::bindings::KV).map_err(|e| e.to_string())?;
    kv.get("confab:readyz")
        .text()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

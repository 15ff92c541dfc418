//! Liveness and readiness.

use crate::config::ints;
use crate::config::LogLevel;
use crate::http::{json, Ctx, HandlerResult};
use crate::llm::config::defaults;
use crate::llm::Kind;
use crate::runtime::{log, timeout};
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
/// stays in the log. Replication lag past `REPLICATION_LAG_READY_SECONDS`,
/// or a rate limiter that is missing or failing, is reported as `degraded`
/// (status 200: chat still works). Each dependency check has
/// `READYZ_TIMEOUT_MS`, and one that takes longer says `"error": "timeout"`,
/// so a hanging dependency gives a prompt answer that names it.
pub async fn readyz(ctx: &Ctx) -> HandlerResult {
    let mut checks = Map::new();
    let mut failing = Vec::new();
    let limit = ctx
        .config()
        .map(|c| c.readyz_timeout_ms as u64)
        .unwrap_or(ints::READYZ_TIMEOUT_MS.default as u64);

    let config = match ctx.config() {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{e}")),
    };
    record(
        &mut checks,
        &mut failing,
        "config",
        0,
        outcome(config.clone()),
    );
    // A config failure is operator-facing and names only the variable, so it
    // is safe to show; dependency errors are not.
    if let Err(e) = &config {
        checks["config"]["code"] = Value::from("config_invalid");
        checks["config"]["variable"] = Value::from(e.split(':').next().unwrap_or(""));
    }

    // D1 and KV at once: the answer takes the slower one's time.
    let ((d1, d1_ms), (kv, kv_ms)) = futures::join!(
        bounded(limit, Box::pin(check_d1(ctx)), Outcome::TimedOut),
        bounded(limit, Box::pin(check_kv(ctx)), Outcome::TimedOut)
    );
    record(&mut checks, &mut failing, "d1", d1_ms, d1);
    record(&mut checks, &mut failing, "kv", kv_ms, kv);

    // Configuration only: readiness never calls a provider.
    let (chain, providers) = check_providers(ctx);
    record(
        &mut checks,
        &mut failing,
        "providers",
        0,
        outcome(providers),
    );
    checks["providers"]["chain"] = chain;

    // Degraded, not failing: chat works without either.
    let mut degraded: Vec<&'static str> = Vec::new();
    let (limiter, ms) = bounded(limit, Box::pin(check_rate_limiter(ctx)), Outcome::TimedOut).await;
    record(&mut checks, &mut degraded, "rate_limiter", ms, limiter);
    if let Ok(config) = ctx.config() {
        let late = (Outcome::TimedOut, None);
        let ((lag, figures), ms) =
            bounded(limit, Box::pin(replication_lag(ctx, config)), late).await;
        record(&mut checks, &mut degraded, "replication", ms, lag);
        if let Some((lag_ms, depth)) = figures {
            checks["replication"]["lag_seconds"] = json!(lag_ms.max(0) as f64 / 1000.0);
            checks["replication"]["outbox_depth"] = json!(depth);
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

/// How one check ended.
enum Outcome {
    Ok,
    /// The reason, for the log only.
    Failed(String),
    /// Its binding is not there (named, never skipped).
    Missing,
    /// It took longer than `READYZ_TIMEOUT_MS`.
    TimedOut,
}

/// Runs a check within `ms` (`late` stands for its result if not);
/// gives the result and how long it took.
/// (Boxed: one copy of the timer's state machine per result type, not per
/// check; the bundle has a budget.)
async fn bounded<O>(
    ms: u64,
    check: std::pin::Pin<Box<dyn std::future::Future<Output = O> + '_>>,
    late: O,
) -> (O, u64) {
    let started = now();
    let outcome = timeout(ms, check).await.unwrap_or(late);
    (outcome, now() - started)
}

/// Writes a check's entry; one that did not pass is added to `bad` (the
/// failing or the degraded list) and logged with its reason.
fn record(
    checks: &mut Map<String, Value>,
    bad: &mut Vec<&'static str>,
    name: &'static str,
    latency_ms: u64,
    outcome: Outcome,
) {
    let mut entry = json!({ "ok": matches!(outcome, Outcome::Ok), "latency_ms": latency_ms });
    let (error, detail) = match outcome {
        Outcome::Ok => {
            checks.insert(name.into(), entry);
            return;
        }
        Outcome::Failed(detail) => ("failed", detail),
        Outcome::Missing => ("missing", "no binding".to_string()),
        Outcome::TimedOut => ("timeout", format!("no answer within {latency_ms} ms")),
    };
    entry["error"] = Value::from(error);
    checks.insert(name.into(), entry);
    bad.push(name);
    log(
        LogLevel::Warn,
        "readyz_check_failed",
        [
            ("check", Value::from(name)),
            ("error", Value::from(error)),
            ("detail", Value::from(detail)),
        ],
    );
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

fn outcome(r: Result<(), String>) -> Outcome {
    r.map_or_else(Outcome::Failed, |()| Outcome::Ok)
}

/// Every shard, at once; a failure names its binding.
async fn check_d1(ctx: &Ctx) -> Outcome {
    outcome(d1_ready(ctx).await)
}

async fn d1_ready(ctx: &Ctx) -> Result<(), String> {
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

async fn check_kv(ctx: &Ctx) -> Outcome {
    let Ok(kv) = ctx.env.kv(crate::bindings::KV) else {
        return Outcome::Missing;
    };
    outcome(
        kv.get("confab:readyz")
            .text()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    )
}

/// The per-IP limiter answers (under a key of its own, so no caller's
/// budget is spent). Without it the API runs unlimited: named here, since
/// requests themselves go on.
async fn check_rate_limiter(ctx: &Ctx) -> Outcome {
    let Ok(limiter) = ctx.env.rate_limiter(crate::bindings::HTTP_RATE_LIMITER) else {
        return Outcome::Missing;
    };
    outcome(
        limiter
            .limit("confab:readyz".into())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
    )
}

/// The replication lag against `REPLICATION_LAG_READY_SECONDS`, and the
/// lag (ms) and outbox depth when D1 gave them.
async fn replication_lag(
    ctx: &Ctx,
    config: &crate::config::Config,
) -> (Outcome, Option<(i64, i64)>) {
    let dbs = match crate::store::all(&ctx.env, &config.shards) {
        Ok(dbs) => dbs,
        Err(e) => return (Outcome::Failed(e.to_string()), None),
    };
    match crate::store::metrics::replication(&dbs, crate::store::now_ms()).await {
        Ok(r) if r.lag_ms <= config.replication_lag_ready_s as i64 * 1000 => {
            (Outcome::Ok, Some((r.lag_ms, r.depth)))
        }
        Ok(r) => (
            Outcome::Failed(format!("lag {} ms", r.lag_ms)),
            Some((r.lag_ms, r.depth)),
        ),
        Err(e) => (Outcome::Failed(e.to_string()), None),
    }
}

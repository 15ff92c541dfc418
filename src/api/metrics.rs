//! Prometheus metrics.

use crate::error::AppError;
use crate::http::{Ctx, HandlerResult};
use crate::runtime::log;
use crate::store;
use crate::tally::{Tally, UNMATCHED};
use serde_json::Value;
use std::cell::RefCell;
use worker::{Env, Response};

thread_local! {
    /// What this isolate served since its last write (`crate::tally`).
    static TALLY: RefCell<Tally> = RefCell::new(Tally::default());
}

/// Counts one answered request; gives whether this isolate's figures are
/// due to be written (`flush`, through `wait_until`).
pub fn record(
    route: Option<&'static str>,
    status: u16,
    code: Option<&'static str>,
    ms: u64,
) -> bool {
    let now = store::now_ms() as u64;
    TALLY.with(|t| {
        let mut t = t.borrow_mut();
        t.request(route.unwrap_or(UNMATCHED), status, ms, now);
        match (status, code) {
            (401 | 403, Some(code)) => t.auth_failure(code, now),
            (429, Some("rate_limited")) => t.rate_limited(now),
            _ => {}
        }
        t.due(now)
    })
}

/// Writes this isolate's figures to the home shard; on failure they go
/// back into the tally for the next write.
pub async fn flush(env: &Env) {
    let taken = TALLY.with(|t| t.borrow_mut().take());
    if taken.is_empty() {
        return;
    }
    let samples = taken.samples();
    let written = match store::home(env) {
        Ok(db) => store::metrics::add(&db, &samples).await,
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        log(
            crate::config::LogLevel::Error,
            "metrics_write_failed",
            [("detail", Value::from(e.to_string()))],
        );
        let now = store::now_ms() as u64;
        TALLY.with(|t| t.borrow_mut().restore(taken, now));
    }
}

/// GET /metrics
///
/// Prometheus text exposition, for a bearer holding `METRICS_TOKEN` or an
/// admin token (the route's level, `Access::Metrics`). The figures come
/// from D1, so every isolate answers alike.
pub async fn metrics(ctx: &Ctx) -> HandlerResult {
    let config = ctx.require_config()?;
    let dbs = store::all(&ctx.env, &config.shards)?;
    // This isolate's own figures first, so a scrape sees what it served.
    flush(&ctx.env).await;
    let samples = store::metrics::scrape(&dbs, store::now_ms()).await?;
    let mut res = Response::ok(crate::metrics::render(&samples)).map_err(AppError::internal)?;
    res.headers_mut()
        .set("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .map_err(AppError::internal)?;
    Ok(res)
}

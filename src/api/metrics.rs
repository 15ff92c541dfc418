//! Prometheus metrics.

use crate::error::AppError;
use crate::http::{Ctx, HandlerResult};
use crate::store;
use worker::Response;

/// GET /metrics
///
/// Prometheus text exposition, for a bearer holding `METRICS_TOKEN` or an
/// admin token (the route's level, `Access::Metrics`). The figures come
/// from D1, so every isolate answers alike.
pub async fn metrics(ctx: &Ctx) -> HandlerResult {
    let config = ctx.require_config()?;
    let dbs = store::all(&ctx.env, &config.shards)?;
    let samples = store::metrics::scrape(&dbs, store::now_ms()).await?;
    let mut res = Response::ok(crate::metrics::render(&samples)).map_err(AppError::internal)?;
    res.headers_mut()
        .set("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .map_err(AppError::internal)?;
    Ok(res)
}

//! Prometheus metrics.

use crate::auth::bearer;
use crate::error::AppError;
use crate::http::{Ctx, HandlerResult};
use crate::store;
use worker::{Request, Response};

/// GET /metrics
///
/// Prometheus text exposition, for a bearer holding `METRICS_TOKEN` or an
/// admin token. The figures come from D1, so every isolate answers alike.
pub async fn metrics(req: Request, ctx: &Ctx) -> HandlerResult {
    let config = ctx.require_config()?;
    let header = req.headers().get("authorization").ok().flatten();
    let by_token = match (&config.metrics_token, bearer(header.as_deref())) {
        (Some(t), Ok(given)) => constant_time_eq(t.expose().as_bytes(), given.as_bytes()),
        _ => false,
    };
    if !by_token {
        ctx.require_admin(&req).await?;
    }
    let dbs = store::all(&ctx.env, &config.shards)?;
    let samples = store::metrics::scrape(&dbs, store::now_ms()).await?;
    let mut res = Response::ok(crate::metrics::render(&samples)).map_err(AppError::internal)?;
    res.headers_mut()
        .set("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .map_err(AppError::internal)?;
    Ok(res)
}

/// Compares secrets without leaking where they differ through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

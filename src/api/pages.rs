//! The bundled pages' HTML (`/`, `/admin` and the widget's `/widget`), read from Static Assets and
//! served with headers that depend on configuration.
//!
//! Only these paths run the Worker first (`run_worker_first` in
//! wrangler.toml); every other file in `public/` is served by Static
//! Assets alone. The policy (`csp.rs`) names who may frame each page, from
//! configuration, and applies locally and deployed alike.

use crate::error::AppError;
use crate::http::{Ctx, HandlerResult};
use crate::router::Page;
use worker::{Request, Response};

/// GET / and GET /admin
pub async fn serve(req: Request, ctx: &Ctx, page: Page) -> HandlerResult {
    let config = ctx.require_config()?;
    let assets = ctx
        .env
        .assets(crate::bindings::ASSETS)
        .map_err(|_| AppError::Unavailable { check: "assets" })?;
    let mut asset = assets
        .fetch_request(req)
        .await
        .map_err(AppError::internal)?;
    if asset.status_code() != 200 {
        // Redirects and conditional answers pass as they are.
        return Ok(asset);
    }
    let html = asset.text().await.map_err(AppError::internal)?;
    let mut response = Response::from_html(html).map_err(AppError::internal)?;
    let h = response.headers_mut();
    let turnstile = config
        .visitors
        .as_ref()
        .is_some_and(|v| v.turnstile.is_some());
    let policy = crate::csp::page_policy(page, &config.origins.csp_sources(), turnstile);
    let _ = h.set("content-security-policy", &policy);
    Ok(response)
}

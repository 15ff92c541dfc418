//! Session endpoints.

use crate::error::AppError;
use crate::http::{is_websocket_upgrade, Ctx, HandlerResult};
use crate::session::internal;
use worker::Request;

/// GET /v1/sessions/:id/ws
///
/// Upgrades to a WebSocket held by the session's Durable Object
/// (`idFromName(session id)`). The Worker forwards only what it has checked;
/// the object trusts nothing else (see `session` module docs).
pub async fn connect(req: Request, ctx: &Ctx, session_id: &str) -> HandlerResult {
    ctx.require_config()?;
    if !is_websocket_upgrade(req.headers()) {
        return Err(AppError::UpgradeRequired);
    }
    let namespace = ctx
        .env
        .durable_object(internal::BINDING)
        .map_err(AppError::internal)?;
    let stub = namespace
        .id_from_name(session_id)
        .and_then(|id| id.get_stub())
        .map_err(AppError::internal)?;
    let forwarded = internal::connect_request(session_id, &ctx.request_id)?;
    stub.fetch_with_request(forwarded)
        .await
        .map_err(AppError::internal)
}

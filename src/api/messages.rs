//! Message history.

use super::authorize;
use crate::http::{json, query_param, Ctx, HandlerResult};
use crate::model::{page_limit, seq_param};
use crate::store::{self, messages::Page};
use serde_json::json;
use worker::Request;

/// GET /v1/sessions/:id/messages
///
/// A page of history, oldest first: the `limit` (1-100, default 50) messages
/// below `before` (default: the newest). Edits, tombstones and reactions are
/// reflected. `next_before` is the `before` of the next older page, or null.
pub async fn history(req: Request, ctx: &Ctx, session_id: &str) -> HandlerResult {
    let limit = page_limit(query_param(&req, "limit").as_deref())?;
    let before = seq_param("before", query_param(&req, "before").as_deref())?;
    let access = authorize(ctx, &req, session_id, false).await?;
    let db = access.db;
    let (messages, last_seq) = store::messages::page(
        &db,
        &ctx.require_config()?.keyring,
        session_id,
        Page::Before { before, limit },
    )
    .await?;
    let next_before = messages.first().map(|m| m.seq).filter(|&s| s > 1);
    json(
        200,
        &json!({ "messages": messages, "next_before": next_before, "last_seq": last_seq }),
    )
}

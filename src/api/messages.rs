//! Message history, served by the session object from its own log.

use super::access::Grant;
use crate::contract::{Call, HistoryReply};
use crate::error::AppError;
use crate::http::{json, query_param, Ctx, HandlerResult};
use crate::ids::SessionId;
use crate::model::{page_limit, seq_param};
use crate::session::internal;
use serde_json::json;
use worker::Request;

/// GET /v1/sessions/:id/messages
///
/// A page of history, oldest first: the `limit` (1-100, default 50) messages
/// below `before` (default: the newest). Edits, tombstones and reactions are
/// reflected. `next_before` is the `before` of the next older page, or null.
/// `?thread=SEQ`: only message SEQ and the replies to it (404 if SEQ is
/// past the last message).
pub async fn history(
    req: Request,
    ctx: &Ctx,
    session: SessionId<'_>,
    grant: Grant,
) -> HandlerResult {
    let session_id = session.as_str();
    let limit = page_limit(query_param(&req, "limit").as_deref())?;
    let before = seq_param("before", query_param(&req, "before").as_deref())?;
    let thread = seq_param("thread", query_param(&req, "thread").as_deref())?;
    if thread == Some(0) {
        return Err(AppError::bad_request("invalid_seq", "thread starts at 1"));
    }
    let call = Call::History {
        session: session_id.to_string(),
        caller: grant.caller(ctx),
        before,
        limit,
        thread,
    };
    let page: HistoryReply = internal::call_json(ctx, &call).await?;
    json(
        200,
        &json!({
            "messages": page.messages,
            "next_before": page.next_before,
            "last_seq": page.last_seq,
            "last_change": page.last_change,
        }),
    )
}

//! WebSocket tickets: how browsers open a socket without putting a token
//! in a URL.
//!
//! A ticket is 192 random bits, stored in KV with the caller's identity and
//! the session it is for. It lives `WS_TICKET_TTL_SECONDS` (≤ 60 s) and
//! works once: the session object records each ticket it admits in its own
//! (strongly consistent) storage and refuses a second use even if KV, which
//! is eventually consistent, still returns it. The Worker also deletes it
//! from KV on use.

use super::authorize;
use crate::auth::Identity;
use crate::error::AppError;
use crate::http::{json, Ctx, HandlerResult};
use crate::ids::random_hex;
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{kv::KvStore, Request};

/// KV's shortest expiry; a ticket's own `expires_at` is checked on use.
const KV_MIN_TTL_S: u64 = 60;

/// What KV holds for a ticket.
#[derive(Serialize, Deserialize)]
pub struct Ticket {
    pub session: String,
    pub who: Identity,
    pub expires_at: u64,
}

fn kv(ctx: &Ctx) -> Result<KvStore, AppError> {
    ctx.env
        .kv(crate::runtime::KV_BINDING)
        .map_err(|_| AppError::Unavailable { check: "kv" })
}

fn kv_key(id: &str) -> String {
    format!("ticket:{id}")
}

/// POST /v1/sessions/:id/tickets
///
/// Issues a single-use ticket for opening this session's socket:
/// `{"ticket", "expires_in"}`. Connect with `GET /v1/sessions/:id/ws?ticket=`.
pub async fn create(req: Request, ctx: &Ctx, session_id: &str) -> HandlerResult {
    let ttl = ctx.require_config()?.ticket_ttl_seconds;
    let access = authorize(ctx, &req, session_id, false).await?;
    let id = random_hex(24);
    let ticket = Ticket {
        session: session_id.to_string(),
        who: access.who,
        expires_at: worker::Date::now().as_millis() + ttl * 1000,
    };
    let kv = kv(ctx)?;
    kv.put(
        &kv_key(&id),
        serde_json::to_string(&ticket).map_err(AppError::internal)?,
    )
    .map_err(AppError::internal)?
    .expiration_ttl(ttl.max(KV_MIN_TTL_S))
    .execute()
    .await
    .map_err(|_| AppError::Unavailable { check: "kv" })?;
    json(201, &json!({ "ticket": id, "expires_in": ttl }))
}

/// Looks a ticket up for `session_id` and removes it from KV. Returns the
/// identity and the ticket's expiry; the session object makes it single-use.
pub async fn redeem(ctx: &Ctx, id: &str, session_id: &str) -> Result<(Identity, u64), AppError> {
    let invalid = AppError::Unauthorized("ticket_invalid");
    if id.len() != 48 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid);
    }
    let kv = kv(ctx)?;
    let text = kv
        .get(&kv_key(id))
        .text()
        .await
        .map_err(|_| AppError::Unavailable { check: "kv" })?
        .ok_or(invalid.clone())?;
    let ticket: Ticket = serde_json::from_str(&text).map_err(|_| invalid.clone())?;
    // Bound to its session: presenting it elsewhere neither works nor
    // spends it.
    if ticket.session != session_id {
        return Err(invalid);
    }
    if ticket.expires_at <= worker::Date::now().as_millis() {
        return Err(AppError::Unauthorized("ticket_expired"));
    }
    let _ = kv.delete(&kv_key(id)).await;
    ctx.identified(&ticket.who);
    Ok((ticket.who, ticket.expires_at))
}

//! WebSocket tickets: how browsers open a socket without putting a token
//! in a URL.
//!
//! A ticket is 192 random bits, stored in KV with the caller's identity and
//! the session it is for. It lives `WS_TICKET_TTL_SECONDS` (≤ 60 s) and
//! works once: the session object records each ticket it admits in its own
//! (strongly consistent) storage and refuses a second use even if KV, which
//! is eventually consistent, still returns it. The Worker deletes it from
//! KV once the object has accepted the socket, so an upgrade refused
//! before that (a malformed `after`, say) does not spend it.
//!
//! A user holds at most `MAX_TICKETS_PER_USER` unspent tickets: each ticket
//! also leaves a marker under a per-user prefix (the user's pseudonym, so
//! no raw id is a key), counted before a new one is issued. Markers live
//! KV's shortest expiry (60 s) and go when the ticket is used, so the cap
//! counts the unspent tickets of the last minute. KV lists are eventually
//! consistent across locations: the cap is exact in one location and
//! approximate across several.

use super::access::Grant;
use crate::auth::Identity;
use crate::error::AppError;
use crate::http::{json, Ctx, HandlerResult};
use crate::ids::random_hex;
use crate::ids::SessionId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::kv::KvStore;

/// KV's shortest expiry; a ticket's own `expires_at` is checked on use.
const KV_MIN_TTL_S: u64 = 60;

/// The scope of tickets for the agents' inbox socket, where a session
/// ticket names its session. No session id can be it (`~` is outside
/// their alphabet).
pub const INBOX_SCOPE: &str = "~inbox";

/// What KV holds for a ticket.
#[derive(Serialize, Deserialize)]
pub struct Ticket {
    /// The session id the ticket opens a socket of, or [`INBOX_SCOPE`].
    pub session: String,
    pub who: Identity,
    pub expires_at: u64,
}

fn kv(ctx: &Ctx) -> Result<KvStore, AppError> {
    ctx.env
        .kv(crate::bindings::KV)
        .map_err(|_| AppError::Unavailable { check: "kv" })
}

fn kv_key(id: &str) -> String {
    format!("ticket:{id}")
}

/// The prefix of `user_id`'s unspent-ticket markers.
fn owner_prefix(ctx: &Ctx, user_id: &str) -> Result<String, AppError> {
    let key = ctx.require_config()?.pseudonym_key.expose().as_bytes();
    Ok(format!(
        "tickets-of:{}:",
        crate::auth::user_hash(key, user_id)
    ))
}

/// POST /v1/sessions/:id/tickets
///
/// Issues a single-use ticket for opening this session's socket:
/// `{"ticket", "expires_in"}`. Connect with `GET /v1/sessions/:id/ws?ticket=`.
pub async fn create(ctx: &Ctx, session: SessionId<'_>, grant: Grant) -> HandlerResult {
    let session_id = session.as_str();
    // The object decides access from its own log: no D1 read on the way
    // to a socket.
    let call = crate::contract::Call::Access {
        session: session_id.to_string(),
        caller: grant.caller(ctx),
    };
    let _: crate::contract::AccessReply = crate::session::internal::call_json(ctx, &call).await?;
    issue(ctx, session_id, grant.who).await
}

/// POST /v1/admin/inbox/tickets
///
/// The same for the agents' inbox socket (`GET /v1/admin/inbox/ws`);
/// the route admits admins only.
pub async fn create_for_inbox(ctx: &Ctx, grant: Grant) -> HandlerResult {
    issue(ctx, INBOX_SCOPE, grant.who).await
}

/// Stores a ticket for `scope`, within the caller's cap of unspent ones.
async fn issue(ctx: &Ctx, scope: &str, who: Identity) -> HandlerResult {
    let config = ctx.require_config()?;
    let ttl = config.ticket_ttl_seconds;
    let kv = kv(ctx)?;
    let owner = owner_prefix(ctx, &who.user_id)?;
    let cap = config.max_tickets_per_user as u64;
    let outstanding = kv
        .list()
        .prefix(owner.clone())
        .limit(cap)
        .execute()
        .await
        .map_err(|_| AppError::Unavailable { check: "kv" })?
        .keys
        .len() as u64;
    if outstanding >= cap {
        return Err(AppError::Quota {
            code: "ticket_quota_exceeded",
            retry_after_s: KV_MIN_TTL_S,
        });
    }
    let id = random_hex(24);
    let ticket = Ticket {
        session: scope.to_string(),
        who,
        expires_at: worker::Date::now().as_millis() + ttl * 1000,
    };
    for (key, value) in [
        (
            kv_key(&id),
            serde_json::to_string(&ticket).map_err(AppError::internal)?,
        ),
        (format!("{owner}{id}"), String::new()),
    ] {
        kv.put_bytes(&key, value.as_bytes())
            .map_err(AppError::internal)?
            .expiration_ttl(ttl.max(KV_MIN_TTL_S))
            .execute()
            .await
            .map_err(|_| AppError::Unavailable { check: "kv" })?;
    }
    json(201, &json!({ "ticket": id, "expires_in": ttl }))
}

/// Looks a ticket up for `session_id` (or [`INBOX_SCOPE`]): the identity
/// it was issued to and its expiry. It stays in KV: the session object makes it single-use when
/// it accepts the socket, and [`discard`] then removes it, so a refused
/// upgrade does not spend it.
pub async fn verify(ctx: &Ctx, id: &str, session_id: &str) -> Result<(Identity, u64), AppError> {
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
    ctx.identified(&ticket.who);
    Ok((ticket.who, ticket.expires_at))
}

/// Removes a spent ticket from KV (best effort: the session object has
/// already recorded it as spent, and KV expires it anyway).
pub async fn discard(ctx: &Ctx, id: &str, who: &Identity) {
    let Ok(kv) = kv(ctx) else { return };
    let _ = kv.delete(&kv_key(id)).await;
    if let Ok(owner) = owner_prefix(ctx, &who.user_id) {
        let _ = kv.delete(&format!("{owner}{id}")).await;
    }
}

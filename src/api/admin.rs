//! Admin-only operations. Callers need the configured admin role (the
//! routes' level, `Access::Admin`, checked before these handlers run).

use super::access::Grant;
use crate::contract::Call;
use crate::desk::{Action, View};
use crate::error::AppError;
use crate::http::read_json;
use crate::http::{json, query_param, Ctx, HandlerResult};
use crate::ids::SessionId;
use crate::listing::ListQuery;
use crate::protocol::UserRef;
use crate::router::DeskVerb;
use crate::session::internal;
use crate::store::{
    self,
    maintenance::{At, Cursor},
};
use serde_json::json;
use worker::Request;

/// Rows per maintenance call unless `batch` says otherwise; bounded so one
/// call stays well inside a request's CPU and D1 limits.
const DEFAULT_BATCH: u32 = 200;
const MAX_BATCH: u32 = 1000;

/// POST /v1/admin/maintenance/reencrypt
///
/// Re-encrypts up to `batch` stored values (titles, contact fields, message
/// texts, edit history) to the active key. Query: `cursor` (from the previous
/// call's `next_cursor`), `batch` (1-1000). Call until `done`; safe to stop
/// and restart at any point.
pub async fn reencrypt(req: Request, ctx: &Ctx) -> HandlerResult {
    let keys = &ctx.require_config()?.keyring;
    let cursor = match query_param(&req, "cursor") {
        None => None,
        Some(c) => Some(At::decode(&c).ok_or_else(|| {
            AppError::bad_request("invalid_cursor", "cursor is not one this API issued")
        })?),
    };
    let batch = match query_param(&req, "batch") {
        None => DEFAULT_BATCH,
        Some(b) => b
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_BATCH).contains(n))
            .ok_or_else(|| {
                AppError::bad_request("invalid_batch", format!("batch must be 1-{MAX_BATCH}"))
            })?,
    };
    let dbs = store::all(&ctx.env, &ctx.require_config()?.shards)?;
    // First every session object's own log, then D1's rows (some of which
    // replication has already replaced with the objects' re-sealed copies),
    // one shard after another.
    let at = cursor.unwrap_or(At {
        shard: 0,
        cursor: Cursor::Objects(String::new()),
    });
    if let Cursor::Objects(after) = at.cursor {
        return json(200, &rotate_objects(ctx, &dbs, keys, after, batch).await?);
    }
    let db = dbs.get(at.shard).ok_or_else(|| {
        AppError::bad_request(
            "invalid_cursor",
            "cursor names a shard that is not configured",
        )
    })?;
    let mut report =
        store::maintenance::reencrypt(db, at.shard, keys, Some(at.cursor), batch).await?;
    // Webhook secrets live in the home shard only: after its rows.
    if report.done && at.shard == 0 {
        let (n, unreadable) = store::webhooks::reseal(db, keys).await?;
        report.rotated += n;
        report.unreadable.extend(unreadable);
        // So do assistant profiles' API keys.
        let (n, unreadable) = store::profiles::reseal(db, keys).await?;
        report.rotated += n;
        report.unreadable.extend(unreadable);
    }
    if report.done && at.shard + 1 < dbs.len() {
        report.done = false;
        report.next_cursor = Some(
            At {
                shard: at.shard + 1,
                cursor: Cursor::Sessions(String::new()),
            }
            .encode(),
        );
    }
    json(200, &report)
}

/// The objects phase: asks each session's object, in id order, to re-seal
/// up to the rest of the batch. A session not finished in this call is
/// visited again by the next one.
async fn rotate_objects(
    ctx: &Ctx,
    dbs: &[worker::D1Database],
    keys: &crate::crypto::Keyring,
    mut after: String,
    batch: u32,
) -> Result<store::maintenance::Report, AppError> {
    let mut report = store::maintenance::Report {
        active_key: keys.active_id().to_string(),
        ..Default::default()
    };
    let mut budget = batch;
    let ids = store::maintenance::session_ids(dbs, &after, batch).await?;
    let listed_all = ids.len() < batch as usize;
    for id in ids {
        let call = Call::Rotate {
            session: id.clone(),
            limit: budget,
        };
        let r: crate::contract::RotateReply = match internal::call_json(ctx, &call).await {
            Ok(r) => r,
            // Erased since it was listed (or never had a log to rotate).
            Err(AppError::NotFound) => crate::contract::RotateReply {
                done: true,
                ..Default::default()
            },
            Err(e) => return Err(e),
        };
        budget = budget.saturating_sub(r.rotated as u32);
        report.rotated += r.rotated;
        for _ in 0..r.unreadable {
            report.unreadable.push(store::maintenance::UnreadableRow {
                table: "session_log",
                key: id.clone(),
                code: "ciphertext_unreadable",
            });
        }
        if !r.done || budget == 0 {
            // Come back to this session (or the next) in the next call.
            let next = if r.done { id } else { after };
            report.next_cursor = Some(Cursor::Objects(next).encode());
            return Ok(report);
        }
        after = id;
    }
    report.next_cursor = Some(
        if listed_all {
            Cursor::Sessions(String::new())
        } else {
            Cursor::Objects(after)
        }
        .encode(),
    );
    Ok(report)
}

/// POST /v1/admin/sessions/:id/{escalate,claim,takeover,transfer,resolve,release}
///
/// A support desk action by the calling agent (`crate::desk`). The object
/// stores the new state in its log (D1 gets it with the next flush) and
/// announces it to every socket; the answer is the state after it. A
/// claim on a session another agent has is `409 already_assigned`; any
/// action on a closed session is `409 session_closed`.
pub async fn desk(
    mut req: Request,
    ctx: &Ctx,
    session: SessionId<'_>,
    verb: DeskVerb,
    grant: Grant,
) -> HandlerResult {
    let admin = grant.who;
    let by = UserRef {
        id: admin.user_id,
        name: admin.name,
    };
    let action = match verb {
        DeskVerb::Escalate => Action::Escalate,
        DeskVerb::Claim | DeskVerb::Takeover => Action::Claim,
        DeskVerb::Resolve => Action::Resolve,
        DeskVerb::Release => Action::Release,
        DeskVerb::Close => Action::Close,
        DeskVerb::Transfer => {
            let body = read_json::<Transfer>(&mut req).await?;
            if !crate::ids::is_valid_user_id(&body.to) {
                return Err(crate::ids::UserId::refused());
            }
            Action::transfer_to(body.to)
        }
    };
    let call = Call::Desk {
        session: session.as_str().to_string(),
        action,
        by: by.clone(),
    };
    let view: View = internal::call_json(ctx, &call).await?;
    desk_reply(session.as_str(), &view, &by)
}

/// The answer to a desk action: the session's state after it, and who
/// acted (shared with the service API's status route).
pub fn desk_reply(session: &str, view: &View, by: &UserRef) -> HandlerResult {
    json(
        200,
        &json!({
            "id": session,
            "mode": view.mode(),
            "status": view.status,
            "assignee": view.assignee,
            "waiting_since": view.waiting_since,
            "first_agent_reply_at": view.first_agent_reply_at,
            "resolved_at": view.resolved_at,
            "by": by,
        }),
    )
}

/// `POST …/transfer` body.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Transfer {
    to: String,
}

/// GET /v1/admin/sessions
///
/// Every session, across users. Filters: `status`, `mode`, `owner`,
/// `human_assisted`, `created_from`/`created_to`, `updated_from`/`updated_to`
/// (unix ms, `from` inclusive, `to` exclusive). Sort: `sort` (updated,
/// created, messages, tokens) and `order` (asc, desc). Pages: `limit`
/// (1-200) and `cursor` (the previous page's `next_cursor`).
pub async fn sessions(req: Request, ctx: &Ctx) -> HandlerResult {
    let pairs = crate::uri::query_pairs(&req.inner().url());
    let query = ListQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let config = ctx.require_config()?;
    let dbs = store::all(&ctx.env, &config.shards)?;
    let mut rows = store::sessions::list_all(&dbs, &config.keyring, &query).await?;
    let more = rows.len() > query.limit as usize;
    rows.truncate(query.limit as usize);
    let next_cursor = more.then(|| {
        let last = rows.last().expect("a full page has a last row");
        query.encode_cursor(last.sort_value, &last.session.id)
    });
    json(
        200,
        &json!({ "sessions": rows, "next_cursor": next_cursor }),
    )
}

/// GET /v1/admin/sessions/:id
///
/// Any session, with its assistant token usage and response times.
pub async fn session(ctx: &Ctx, session: SessionId<'_>, grant: Grant) -> HandlerResult {
    let session_id = session.as_str();
    // Admins see every session: the object's view over the row in the
    // session's own shard.
    let access = super::authorize(ctx, &grant, session_id).await?;
    let usage = store::sessions::usage(&access.db, session_id).await?;
    let keys = &ctx.require_config()?.keyring;
    let feedback = store::sessions::feedback(&access.db, keys, session_id).await?;
    // The assistant's function calls stay in the session's own log.
    let call = Call::Tools {
        session: session_id.to_string(),
    };
    let tools: serde_json::Value = internal::call_json(ctx, &call).await?;
    json(
        200,
        &json!({ "session": access.session, "usage": usage, "feedback": feedback, "tools": tools }),
    )
}

/// GET /v1/admin/sessions/:id/replication
///
/// What the session's object has not yet replicated to D1: `pending`
/// changes, `oldest_at` (unix ms), `state` (`idle`, `scheduled`,
/// `backing_off`), `failures` in a row, and the log's `last_seq`. For
/// operators checking that D1's copy of a session has caught up.
pub async fn replication(ctx: &Ctx, session: SessionId<'_>) -> HandlerResult {
    let session_id = session.as_str();
    let call = Call::Replication {
        session: session_id.to_string(),
    };
    let r: crate::contract::ReplicationReply = internal::call_json(ctx, &call).await?;
    json(200, &r)
}

/// GET /v1/admin/inbox/ws
///
/// Upgrades to the agents' live inbox, a socket on the desk object
/// (`crate::inbox`): one `inbox` frame per session event. Auth as for a
/// session socket (`?ticket=` from `POST /v1/admin/inbox/tickets`, or a
/// bearer token), admins only; it ends when the token does (4001).
pub async fn inbox(ctx: &Ctx, grant: Grant) -> HandlerResult {
    let call = crate::desk::feed::Connect {
        expires_at: grant.who.expires_at,
        ticket: grant.ticket.clone(),
    };
    let upgraded = crate::inbox::connect(&ctx.env, &call).await?;
    if let Some(t) = &grant.ticket {
        super::tickets::discard(ctx, &t.id, &grant.who).await;
    }
    Ok(upgraded)
}

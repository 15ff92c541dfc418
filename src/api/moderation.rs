//! Reports, the moderation queue, removals and sanctions
//! (`crate::moderation`). Reports are filed by members; everything else is
//! an admin route, so the audit trail records each call.

use super::access::Grant;
use crate::contract::{Call, RemoveReply};
use crate::error::AppError;
use crate::http::{json, query_param, read_json, Ctx, HandlerResult};
use crate::ids::SessionId;
use crate::moderation::{
    Cursor, DismissRequest, Record, RemoveRequest, ReportRequest, SanctionRequest, Status, Target,
    Verb, DEFAULT_PAGE, MAX_PAGE,
};
use crate::protocol::UserRef;
use crate::session::internal;
use crate::store::{self, now_ms};
use serde_json::json;
use worker::{Request, Response};

/// One handler per verb; `on` is the path's session and user, where the
/// route has them.
pub async fn serve(
    mut req: Request,
    ctx: &Ctx,
    (session, user): (Option<SessionId<'_>>, &str),
    verb: Verb,
    grant: Grant,
) -> HandlerResult {
    match verb {
        Verb::Queue => return queue(&req, ctx).await,
        Verb::FilterLog => return filter_log(&req, ctx).await,
        Verb::Ban => {
            let body = read_json::<SanctionRequest>(&mut req).await?;
            return super::blocks::ban(ctx, &grant, body).await;
        }
        Verb::Bans => {
            let all = store::sanctions::all(&store::home(&ctx.env)?, now_ms(), 500).await?;
            return json(200, &json!({ "sanctions": all }));
        }
        Verb::Unban => return super::blocks::unban(ctx, user).await,
        Verb::Blocks => {
            let blocked = store::blocks::list(&store::home(&ctx.env)?, &grant.who.user_id).await?;
            return json(200, &json!({ "blocked": blocked }));
        }
        Verb::Block | Verb::Unblock => {
            let here = query_param(&req, "session");
            let on = verb == Verb::Block;
            return super::blocks::change(ctx, &grant, (user, on), here).await;
        }
        _ => {}
    }
    let session = session
        .ok_or_else(|| AppError::internal("no session in the path"))?
        .as_str()
        .to_string();
    match verb {
        Verb::Report => report(req, ctx, session, grant).await,
        Verb::Remove => remove(req, ctx, session, grant).await,
        Verb::Dismiss => dismiss(req, ctx, session, grant).await,
        Verb::Record => {
            let record: Record = internal::call_json(ctx, &Call::Moderation { session }).await?;
            json(200, &record)
        }
        Verb::Sanction => {
            let body = read_json::<SanctionRequest>(&mut req).await?;
            let sanction = body.into_sanction(moderator(&grant), now_ms())?;
            let call = Call::Sanction {
                session,
                sanction: sanction.clone(),
            };
            internal::call(ctx, &call).await?;
            json(201, &sanction)
        }
        Verb::Lift => {
            let call = Call::Lift {
                session,
                user_id: user.to_string(),
            };
            internal::call(ctx, &call).await?;
            Ok(Response::empty()
                .map_err(AppError::internal)?
                .with_status(204))
        }
        Verb::Queue
        | Verb::FilterLog
        | Verb::Ban
        | Verb::Bans
        | Verb::Unban
        | Verb::Blocks
        | Verb::Block
        | Verb::Unblock => {
            unreachable!("served above")
        }
    }
}

fn moderator(grant: &Grant) -> UserRef {
    UserRef {
        id: grant.who.user_id.clone(),
        name: grant.who.name.clone(),
    }
}

/// POST /v1/sessions/:id/reports, body `{"seq", "reason"}`: 201 with the
/// new report, or 200 with the one this member already filed.
async fn report(mut req: Request, ctx: &Ctx, session: String, grant: Grant) -> HandlerResult {
    let body = read_json::<ReportRequest>(&mut req).await?;
    let call = Call::Report {
        session: session.clone(),
        caller: grant.caller(ctx),
        seq: body.seq,
    };
    let target: Target = internal::call_json(ctx, &call).await?;
    let db = store::home(&ctx.env)?;
    let reporter = (grant.who.user_id.as_str(), body.reason);
    let at = (session.as_str(), body.seq);
    let (id, status, created) =
        store::moderation::file(&db, at, &target, reporter, now_ms()).await?;
    json(
        if created { 201 } else { 200 },
        &json!({ "id": id, "session_id": session, "seq": body.seq, "status": status }),
    )
}

/// `limit`: 1-200, 50 when absent.
fn page_limit(req: &Request) -> Result<u32, AppError> {
    match query_param(req, "limit") {
        None => Ok(DEFAULT_PAGE),
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                AppError::bad_request("invalid_limit", format!("limit must be 1-{MAX_PAGE}"))
            }),
    }
}

/// GET /v1/admin/filter: the pre-send filter's decisions, newest first.
/// Query: `limit` (1-200), `cursor` (the previous page's `next_cursor`).
async fn filter_log(req: &Request, ctx: &Ctx) -> HandlerResult {
    let limit = page_limit(req)?;
    let cursor = query_param(req, "cursor");
    let before = match cursor.as_deref() {
        None => None,
        Some(c) => Some(
            c.split_once('.')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id)))
                .filter(|(_, id)| id.len() <= 64)
                .ok_or_else(|| {
                    AppError::bad_request("invalid_cursor", "cursor is not one this API issued")
                })?,
        ),
    };
    let db = store::home(&ctx.env)?;
    let mut found = store::moderation::decisions(&db, before, limit + 1).await?;
    let more = found.len() > limit as usize;
    found.truncate(limit as usize);
    let next_cursor = more
        .then(|| found.last())
        .flatten()
        .map(|d| format!("{}.{}", d.at, d.id));
    json(
        200,
        &json!({ "decisions": found, "next_cursor": next_cursor }),
    )
}

/// GET /v1/admin/reports: messages with open reports, oldest first.
/// Query: `limit` (1-200), `cursor` (the previous page's `next_cursor`).
async fn queue(req: &Request, ctx: &Ctx) -> HandlerResult {
    let limit = page_limit(req)?;
    let cursor = match query_param(req, "cursor") {
        None => None,
        Some(c) => Some(Cursor::parse(&c).ok_or_else(|| {
            AppError::bad_request("invalid_cursor", "cursor is not one this API issued")
        })?),
    };
    let db = store::home(&ctx.env)?;
    let mut items = store::moderation::queue(&db, cursor.as_ref(), limit + 1).await?;
    let more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = more.then(|| items.last()).flatten().map(|last| {
        Cursor {
            at: last.first_reported_at,
            session: last.session_id.clone(),
            seq: last.seq,
        }
        .encode()
    });
    json(200, &json!({ "items": items, "next_cursor": next_cursor }))
}

/// POST /v1/admin/sessions/:id/remove, body `{"seq", "reason"}`: removes
/// the message for everyone and closes its open reports as `removed`.
async fn remove(mut req: Request, ctx: &Ctx, session: String, grant: Grant) -> HandlerResult {
    let body = read_json::<RemoveRequest>(&mut req).await?;
    let by = moderator(&grant);
    let call = Call::Remove {
        session: session.clone(),
        seq: body.seq,
        by: by.clone(),
        reason: body.reason,
    };
    let removed: RemoveReply = internal::call_json(ctx, &call).await?;
    let db = store::home(&ctx.env)?;
    let at = (session.as_str(), body.seq);
    let closed = store::moderation::resolve(&db, at, Status::Removed, &by.id, now_ms()).await?;
    json(
        200,
        &json!({
            "seq": removed.seq,
            "change": removed.change,
            "removed": removed.removed,
            "reports_closed": closed,
        }),
    )
}

/// POST /v1/admin/sessions/:id/dismiss, body `{"seq"}`: closes the open
/// reports on a message, which stays; 404 when it has none.
async fn dismiss(mut req: Request, ctx: &Ctx, session: String, grant: Grant) -> HandlerResult {
    let body = read_json::<DismissRequest>(&mut req).await?;
    let db = store::home(&ctx.env)?;
    let at = (session.as_str(), body.seq);
    let by = grant.who.user_id.as_str();
    let closed = store::moderation::resolve(&db, at, Status::Dismissed, by, now_ms()).await?;
    if closed == 0 {
        return Err(AppError::NotFound);
    }
    json(200, &json!({ "seq": body.seq, "reports_closed": closed }))
}

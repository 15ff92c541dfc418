//! Sessions: create, list, read, erase, and the WebSocket upgrade.

use super::{access::Grant, authorize, tickets};
use crate::contract::Call;
use crate::error::AppError;
use crate::http::{json, query_param, read_json, Ctx, HandlerResult};
use crate::ids::random_hex;
use crate::ids::SessionId;
use crate::llm::profile::{is_name, stored_name};
use crate::model::{page_limit, seq_param, NewSession, SessionCursor};
use crate::session::internal;
use crate::store::{self, now_ms};
use serde_json::json;
use worker::{Request, Response};

/// POST /v1/sessions
///
/// Creates a session owned by the caller. Body (all optional):
/// `{"title": "...", "contact": {"name": "...", "email": "..."},
/// "profile": "..."}`; a profile the caller may not choose is refused as
/// an unknown one (`unknown_profile`), so its existence is not revealed.
pub async fn create(mut req: Request, ctx: &Ctx, grant: Grant) -> HandlerResult {
    let admin = ctx.is_admin(&grant.who);
    let who = grant.who;
    let mut input = read_json::<NewSession>(&mut req).await?.validate()?;
    let config = ctx.require_config()?;
    let keys = &config.keyring;
    let id = random_hex(16);
    let now = now_ms();
    // The session's shard, for good: the object is told it with `init`.
    let shard = config.shards.pick(&id).clone();
    let db = store::db(&ctx.env, &shard)?;
    let home = store::db(&ctx.env, config.shards.home())?;
    // A user banned from the deployment starts nothing; a muted one may,
    // and is muted there too.
    let owner_sanctions = store::sanctions::of(&home, &who.user_id, now).await?;
    if let Some(ban) = owner_sanctions
        .iter()
        .find(|x| x.kind == crate::moderation::Kind::Ban)
    {
        return Err(ban.refusal(now));
    }
    input.profile = chosen(&home, input.profile.as_deref(), &who, admin).await?;
    let cap = config.max_sessions_per_user_per_day;
    store::quota::take(&home, store::quota::Daily::Sessions, &who.user_id, now, cap).await?;
    store::sessions::create(&db, keys, &id, &who.user_id, &input, now).await?;
    // The object starts the session's log now, near its creator. Should
    // this call fail, the object loads the session from D1 on first use.
    let init = Call::Init {
        session: id.clone(),
        owner_id: who.user_id.clone(),
        created_at: now,
        shard,
        owner_blocks: store::blocks::list(&home, &who.user_id).await?,
        owner_sanctions,
        profile: input.profile,
    };
    if let Err(e) = internal::call(ctx, &init).await {
        crate::runtime::log(
            crate::config::LogLevel::Warn,
            "session_init_failed",
            [
                (
                    "request_id",
                    serde_json::Value::from(ctx.request_id.as_str()),
                ),
                ("detail", serde_json::Value::from(e.to_string())),
            ],
        );
    }
    let session = store::sessions::get_any(&db, keys, &id)
        .await?
        .ok_or_else(|| AppError::internal("session vanished after insert"))?;
    json(201, &session)
}

/// The profile a new session stores (None: the default): one that exists
/// and that the caller may choose.
async fn chosen(
    home: &worker::D1Database,
    asked: Option<&str>,
    who: &crate::auth::Identity,
    admin: bool,
) -> Result<Option<String>, AppError> {
    let Some(name) = asked.and_then(stored_name) else {
        return Ok(None);
    };
    let row = match is_name(&name) {
        true => store::profiles::get(home, &name).await?,
        false => None,
    };
    let allowed =
        (row.map(|r| r.profile()).transpose()?).is_some_and(|p| p.admits(&who.roles, admin));
    if !allowed {
        return Err(AppError::bad_request(
            "unknown_profile",
            "no assistant profile of that name that you may choose",
        ));
    }
    Ok(Some(name))
}

/// GET /v1/sessions
///
/// The caller's sessions (owned or member of), newest activity first.
/// Query: `cursor` (from the previous page's `next_cursor`), `limit` (1-100).
pub async fn list(req: Request, ctx: &Ctx, grant: Grant) -> HandlerResult {
    let who = grant.who;
    let limit = page_limit(query_param(&req, "limit").as_deref())?;
    let cursor = query_param(&req, "cursor")
        .map(|c| SessionCursor::decode(&c))
        .transpose()?;
    let config = ctx.require_config()?;
    let dbs = store::all(&ctx.env, &config.shards)?;
    // One extra row tells whether another page exists.
    let mut sessions = store::sessions::list_for_user(
        &dbs,
        &config.keyring,
        &who.user_id,
        cursor.as_ref(),
        limit + 1,
    )
    .await?;
    let more = sessions.len() > limit as usize;
    sessions.truncate(limit as usize);
    let next_cursor = more.then(|| {
        let last = sessions.last().expect("a full page has a last row");
        SessionCursor {
            updated_at: last.updated_at,
            id: last.id.clone(),
        }
        .encode()
    });
    json(
        200,
        &json!({ "sessions": sessions, "next_cursor": next_cursor }),
    )
}

/// GET /v1/sessions/:id
pub async fn get(ctx: &Ctx, session: SessionId<'_>, grant: Grant) -> HandlerResult {
    let session_id = session.as_str();
    let access = authorize(ctx, &grant, session_id).await?;
    json(200, &access.session)
}

/// DELETE /v1/sessions/:id
///
/// The owner erases the session and all its messages; its live sockets are
/// closed with 4004. The object's log goes first (it leaves a tombstone, so
/// nothing can load the session again), then D1's copy, in chunks.
pub async fn delete(ctx: &Ctx, session: SessionId<'_>, grant: Grant) -> HandlerResult {
    let session_id = session.as_str();
    // Owners only (the route's level): to members it behaves as if it
    // were not theirs.
    let access = authorize(ctx, &grant, session_id).await?;
    let erase = Call::Erase {
        session: session_id.to_string(),
    };
    internal::call(ctx, &erase).await?;
    let home = store::db(&ctx.env, ctx.require_config()?.shards.home())?;
    store::sessions::delete(&access.db, &home, session_id).await?;
    Ok(Response::empty()
        .map_err(AppError::internal)?
        .with_status(204))
}

/// GET /v1/sessions/:id/ws
///
/// Upgrades to a WebSocket held by the session's Durable Object. Auth:
/// `?ticket=` (from `POST /v1/sessions/:id/tickets`; what browsers use) or
/// `Authorization: Bearer` (other clients). `?after=SEQ` replays every later
/// message before live traffic, and `&changes=N` the changes after change
/// `N` to the messages up to `SEQ`. Admins connect as agents (author kind
/// `agent`) and may take over.
pub async fn connect(
    req: Request,
    ctx: &Ctx,
    session: SessionId<'_>,
    grant: Grant,
) -> HandlerResult {
    let session_id = session.as_str();
    let after = seq_param("after", query_param(&req, "after").as_deref())?;
    let changes = query_param(&req, crate::protocol::CHANGES_PARAM);
    let changes = seq_param(crate::protocol::CHANGES_PARAM, changes.as_deref())?;
    let batch = match query_param(&req, crate::protocol::BATCH_PARAM).as_deref() {
        None | Some("0") => false,
        Some("1") => true,
        Some(_) => {
            return Err(AppError::bad_request(
                "invalid_batch",
                "batch must be 0 or 1",
            ))
        }
    };
    // Whether the caller may see the session is the object's call, from
    // its own log (no D1 read on the way to a socket).
    let call = Call::Connect {
        session: session_id.to_string(),
        request_id: ctx.request_id.clone(),
        caller: grant.caller(ctx),
        after,
        changes,
        ticket: grant.ticket.clone(),
        // The socket ends when the token behind it does (a ticket carries
        // its token's expiry in the identity it stored).
        expires_at: grant.who.expires_at,
        batch,
    };
    let upgraded = internal::call(ctx, &call).await?;
    if let Some(t) = &grant.ticket {
        tickets::discard(ctx, &t.id, &grant.who).await;
    }
    Ok(upgraded)
}

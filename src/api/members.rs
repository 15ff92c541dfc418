//! Session membership. Only the owner manages members; members may read and
//! chat, not erase or manage.

use super::authorize;
use crate::error::AppError;
use crate::http::{json, read_json, Ctx, HandlerResult};
use crate::ids::is_valid_user_id;
use crate::model::NewMember;
use crate::session::internal;
use crate::store::{self, now_ms};
use serde_json::json;
use worker::{D1Database, Request, Response};

async fn require_owner(ctx: &Ctx, req: &Request, session_id: &str) -> Result<D1Database, AppError> {
    Ok(authorize(ctx, req, session_id, true).await?.db)
}

/// GET /v1/sessions/:id/members
pub async fn list(req: Request, ctx: &Ctx, session_id: &str) -> HandlerResult {
    let db = require_owner(ctx, &req, session_id).await?;
    let members = store::sessions::members(&db, session_id).await?;
    json(200, &json!({ "members": members }))
}

/// POST /v1/sessions/:id/members
///
/// Body `{"user_id": "..."}`. Idempotent.
pub async fn add(mut req: Request, ctx: &Ctx, session_id: &str) -> HandlerResult {
    let db = require_owner(ctx, &req, session_id).await?;
    let input = read_json::<NewMember>(&mut req).await?;
    // The same rule as a token's `sub`: anyone who can sign in can be added.
    if !is_valid_user_id(&input.user_id) {
        return Err(AppError::bad_request(
            "invalid_user_id",
            "user_id must be 1-128 characters without control characters or surrounding spaces",
        ));
    }
    let cap = ctx.require_config()?.max_members_per_session;
    if !store::sessions::add_member(&db, session_id, &input.user_id, now_ms(), cap).await? {
        return Err(AppError::bad_request(
            "too_many_members",
            format!("a session has at most {cap} members"),
        ));
    }
    json(201, &json!({ "user_id": input.user_id }))
}

/// DELETE /v1/sessions/:id/members/:user_id
///
/// `user_id` is percent-encoded in the path (`auth0%7C123`). The removed
/// member's open sockets in the session are closed at once with 4003.
pub async fn remove(req: Request, ctx: &Ctx, session_id: &str, user_id: &str) -> HandlerResult {
    let access = authorize(ctx, &req, session_id, true).await?;
    if !store::sessions::remove_member(&access.db, session_id, user_id).await? {
        return Err(AppError::NotFound);
    }
    // The owner keeps access whatever the member list says.
    if user_id == access.session.owner_id {
        return Ok(Response::empty()
            .map_err(AppError::internal)?
            .with_status(204));
    }
    let revoke = internal::revoke_request(session_id, &ctx.request_id, user_id)?;
    internal::call(&ctx.env, session_id, revoke).await?;
    Ok(Response::empty()
        .map_err(AppError::internal)?
        .with_status(204))
}

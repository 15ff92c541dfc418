//! Session membership. Only the owner (or an admin) manages members;
//! members may read and chat, not erase or manage. The member list lives
//! in the session object's log, which decides who may connect; D1 gets a
//! replicated copy for "sessions I belong to".

use super::access::Grant;
use crate::contract::{Call, MembersReply};
use crate::error::AppError;
use crate::http::{json, read_json, Ctx, HandlerResult};
use crate::ids::is_valid_user_id;
use crate::model::NewMember;
use crate::session::internal;
use serde_json::json;
use worker::{Request, Response};

/// GET /v1/sessions/:id/members
pub async fn list(ctx: &Ctx, session_id: &str, grant: Grant) -> HandlerResult {
    let call = Call::Members {
        session: session_id.to_string(),
        caller: grant.caller(ctx),
    };
    let reply: MembersReply = internal::call_json(&ctx.env, &call).await?;
    json(200, &json!({ "members": reply.members }))
}

/// POST /v1/sessions/:id/members
///
/// Body `{"user_id": "..."}`. Idempotent.
pub async fn add(mut req: Request, ctx: &Ctx, session_id: &str, grant: Grant) -> HandlerResult {
    let input = read_json::<NewMember>(&mut req).await?;
    // The same rule as a token's `sub`: anyone who can sign in can be added.
    if !is_valid_user_id(&input.user_id) {
        return Err(AppError::bad_request(
            "invalid_user_id",
            "user_id must be 1-128 characters without control characters or surrounding spaces",
        ));
    }
    let call = Call::AddMember {
        session: session_id.to_string(),
        caller: grant.caller(ctx),
        user_id: input.user_id.clone(),
    };
    internal::call(&ctx.env, &call).await?;
    json(201, &json!({ "user_id": input.user_id }))
}

/// DELETE /v1/sessions/:id/members/:user_id
///
/// `user_id` is percent-encoded in the path (`auth0%7C123`). The removed
/// member's open sockets in the session are closed at once with 4003.
pub async fn remove(ctx: &Ctx, session_id: &str, user_id: &str, grant: Grant) -> HandlerResult {
    let call = Call::RemoveMember {
        session: session_id.to_string(),
        caller: grant.caller(ctx),
        user_id: user_id.to_string(),
    };
    internal::call(&ctx.env, &call).await?;
    Ok(Response::empty()
        .map_err(AppError::internal)?
        .with_status(204))
}

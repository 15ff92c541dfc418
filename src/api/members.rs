//! Session membership. Only the owner (or an admin) manages members;
//! members may read and chat, not erase or manage. The member list lives
//! in the session object's log, which decides who may connect; D1 gets a
//! replicated copy for "sessions I belong to".

use super::access::Grant;
use crate::contract::{Call, MembersReply};
use crate::error::AppError;
use crate::http::{json, read_json, Ctx, HandlerResult};
use crate::ids::SessionId;
use crate::ids::UserId;
use crate::model::NewMember;
use crate::session::internal;
use serde_json::json;
use worker::{Request, Response};

/// GET /v1/sessions/:id/members
pub async fn list(ctx: &Ctx, session: SessionId<'_>, grant: Grant) -> HandlerResult {
    let session_id = session.as_str();
    let call = Call::Members {
        session: session_id.to_string(),
        caller: grant.caller(ctx),
    };
    let reply: MembersReply = internal::call_json(ctx, &call).await?;
    json(200, &json!({ "members": reply.members }))
}

/// POST /v1/sessions/:id/members
///
/// Body `{"user_id": "..."}`. Idempotent.
pub async fn add(
    mut req: Request,
    ctx: &Ctx,
    session: SessionId<'_>,
    grant: Grant,
) -> HandlerResult {
    let session_id = session.as_str();
    let input = read_json::<NewMember>(&mut req).await?;
    // The same rule as a token's `sub`: anyone who can sign in can be added.
    let user = UserId::parse(input.user_id).ok_or_else(UserId::refused)?;
    add_to(ctx, session_id, grant.caller(ctx), &user).await?;
    json(201, &json!({ "user_id": user.as_str() }))
}

/// Makes `user` a member of `session_id` as `caller` (idempotent): the
/// object gets the user's blocks and deployment sanctions with them.
pub async fn add_to(
    ctx: &Ctx,
    session_id: &str,
    caller: crate::contract::Caller,
    user: &UserId,
) -> Result<(), AppError> {
    let home = crate::store::home(&ctx.env)?;
    let call = Call::AddMember {
        session: session_id.to_string(),
        caller,
        user_id: user.as_str().to_string(),
        blocks: crate::store::blocks::list(&home, user.as_str()).await?,
        sanctions: crate::store::sanctions::of(&home, user.as_str(), crate::store::now_ms())
            .await?,
    };
    internal::call(ctx, &call).await?;
    Ok(())
}

/// DELETE /v1/sessions/:id/members/:user_id
///
/// `user_id` is percent-encoded in the path (`auth0%7C123`). The removed
/// member's open sockets in the session are closed at once with 4003.
pub async fn remove(ctx: &Ctx, session: SessionId<'_>, user: &str, grant: Grant) -> HandlerResult {
    let session_id = session.as_str();
    let call = Call::RemoveMember {
        session: session_id.to_string(),
        caller: grant.caller(ctx),
        user_id: user.to_string(),
    };
    internal::call(ctx, &call).await?;
    Ok(Response::empty()
        .map_err(AppError::internal)?
        .with_status(204))
}

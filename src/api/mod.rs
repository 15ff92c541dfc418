//! HTTP handlers, one file per resource. Each starts with a `/// METHOD /path`
//! doc line; the URLs themselves live only in `router.rs`.

pub mod admin;
pub mod dev;
pub mod health;
pub mod members;
pub mod messages;
pub mod metrics;
pub mod pages;
pub mod sessions;
pub mod tickets;

use crate::auth::Identity;
use crate::contract::{AccessReply, Call};
use crate::error::AppError;
use crate::http::Ctx;
use crate::model::SessionView;
use crate::session::internal;
use crate::store;
use worker::{D1Database, Request};

/// The caller as the session object's contract names them.
pub fn caller(ctx: &Ctx, who: &Identity) -> crate::contract::Caller {
    crate::contract::Caller {
        user: crate::protocol::UserRef {
            id: who.user_id.clone(),
            name: who.name.clone(),
        },
        admin: ctx.is_admin(who),
    }
}

/// The session's shard, and the session as the caller may see it.
pub struct Access {
    pub db: D1Database,
    pub session: SessionView,
}

/// Authenticates the caller and loads the session they may see: owners,
/// members and admins. Anyone else gets 404 (as does a member when
/// `need_owner` is set), so a session's existence is never revealed.
///
/// The session object decides the role from its log (members are
/// authoritative there) and gives the live mode and counters; the rest of
/// the view (title, contact, status) comes from D1's row.
pub async fn authorize(
    ctx: &Ctx,
    req: &Request,
    session_id: &str,
    need_owner: bool,
) -> Result<Access, AppError> {
    let who = ctx.authenticate(req).await?;
    authorize_as(ctx, &who, session_id, need_owner).await
}

/// [`authorize`] for a caller already authenticated.
pub async fn authorize_as(
    ctx: &Ctx,
    who: &Identity,
    session_id: &str,
    need_owner: bool,
) -> Result<Access, AppError> {
    let keys = &ctx.require_config()?.keyring;
    let call = Call::Access {
        session: session_id.to_string(),
        caller: caller(ctx, who),
    };
    let AccessReply { role, live, shard } = internal::call_json(&ctx.env, &call).await?;
    if need_owner && !role.may_manage() {
        return Err(AppError::NotFound);
    }
    // The rest of the view is in the session's own shard.
    let db = store::db(&ctx.env, &shard)?;
    let mut session = store::sessions::get_any(&db, keys, session_id)
        .await?
        .ok_or(AppError::NotFound)?;
    // Read-your-writes for what the log owns.
    session.mode = live.mode.as_str().to_string();
    session.last_seq = live.last_seq;
    session.message_count = live.message_count;
    session.updated_at = session.updated_at.max(live.updated_at);
    Ok(Access { db, session })
}

//! HTTP handlers, one file per resource. Each starts with a `/// METHOD /path`
//! doc line; the URLs themselves live only in `router.rs`.

pub mod access;
pub mod admin;
pub mod attachments;
pub mod audit;
pub mod blocks;
pub mod dev;
pub mod health;
pub mod members;
pub mod messages;
pub mod metrics;
pub mod moderation;
pub mod pages;
pub mod previews;
pub mod profiles;
pub mod search;
pub mod service;
pub mod sessions;
pub mod tickets;
pub mod usage;
pub mod visitors;
pub mod webhooks;

use crate::contract::{AccessReply, Call};
use crate::error::AppError;
use crate::http::Ctx;
use crate::model::SessionView;
use crate::session::internal;
use crate::store;
use access::Grant;
use worker::D1Database;

/// The session's shard, and the session as the caller may see it.
pub struct Access {
    pub db: D1Database,
    pub session: SessionView,
}

/// Loads the session as the granted caller may see it. The session object
/// decides whether their role passes the route's level (owner, member,
/// admin) from its log, where members are authoritative; anyone else gets
/// 404, so a session's existence is never revealed. It also gives the live
/// mode, desk state and counters; the rest of the view (title, contact)
/// comes from D1's row.
pub async fn authorize(ctx: &Ctx, grant: &Grant, session_id: &str) -> Result<Access, AppError> {
    let keys = &ctx.require_config()?.keyring;
    let call = Call::Access {
        session: session_id.to_string(),
        caller: grant.caller(ctx),
    };
    let AccessReply { live, shard, .. } = internal::call_json(ctx, &call).await?;
    // The rest of the view is in the session's own shard.
    let db = store::db(&ctx.env, &shard)?;
    let mut session = store::sessions::get_any(&db, keys, session_id)
        .await?
        .ok_or(AppError::NotFound)?;
    // Read-your-writes for what the log owns.
    session.mode = live.mode;
    session.profile = live
        .profile
        .unwrap_or_else(|| crate::llm::DEFAULT_PROFILE.into());
    session.set_desk(live.desk);
    session.last_seq = live.last_seq;
    session.message_count = live.message_count;
    session.updated_at = session.updated_at.max(live.updated_at);
    Ok(Access { db, session })
}

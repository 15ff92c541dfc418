//! HTTP handlers, one file per resource. Each starts with a `/// METHOD /path`
//! doc line; the URLs themselves live only in `router.rs`.

pub mod admin;
pub mod dev;
pub mod health;
pub mod members;
pub mod messages;
pub mod metrics;
pub mod sessions;

use crate::auth::Identity;
use crate::error::AppError;
use crate::http::Ctx;
use crate::model::SessionView;
use crate::store::{self, sessions::Role};
use worker::{D1Database, Request};

/// The caller, the database, and the session they may see.
pub struct Access {
    pub who: Identity,
    pub db: D1Database,
    pub session: SessionView,
}

/// Authenticates the caller and loads the session they may see. Anyone who
/// is neither owner nor member gets 404 (as does anyone short of
/// `need_owner` when it is set), so a session's existence is never revealed.
pub async fn authorize(
    ctx: &Ctx,
    req: &Request,
    session_id: &str,
    allow_query_token: bool,
    need_owner: bool,
) -> Result<Access, AppError> {
    let who = ctx.authenticate(req, allow_query_token)?;
    let keys = &ctx.require_config()?.keyring;
    let db = store::db(&ctx.env)?;
    let (session, role) = store::sessions::access(&db, keys, session_id, &who.user_id)
        .await?
        .ok_or(AppError::NotFound)?;
    if need_owner && role != Role::Owner {
        return Err(AppError::NotFound);
    }
    Ok(Access { who, db, session })
}

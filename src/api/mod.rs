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

/// Authenticates the caller and loads the session they may see: owners,
/// members and admins. Anyone else gets 404 (as does a member when
/// `need_owner` is set), so a session's existence is never revealed.
pub async fn authorize(
    ctx: &Ctx,
    req: &Request,
    session_id: &str,
    need_owner: bool,
) -> Result<Access, AppError> {
    let who = ctx.authenticate(req).await?;
    authorize_identity(ctx, who, session_id, need_owner).await
}

/// `authorize` for an identity established another way (a ticket).
pub async fn authorize_identity(
    ctx: &Ctx,
    who: Identity,
    session_id: &str,
    need_owner: bool,
) -> Result<Access, AppError> {
    let keys = &ctx.require_config()?.keyring;
    let db = store::db(&ctx.env)?;
    let admin = ctx.is_admin(&who);
    let (session, role) = store::sessions::access(&db, keys, session_id, &who.user_id, admin)
        .await?
        .ok_or(AppError::NotFound)?;
    if need_owner && role == Role::Member {
        return Err(AppError::NotFound);
    }
    Ok(Access { who, db, session })
}

//! Users' blocks in the home shard (`crate::moderation`,
//! `migrations/0014_blocks.sql`), and the sessions they apply in.

use super::{changes, num, rows, stmt, text};
use crate::error::AppError;
use serde::Deserialize;
use worker::D1Database;

/// The users `blocker` blocked, oldest block first.
pub async fn list(db: &D1Database, blocker: &str) -> Result<Vec<String>, AppError> {
    #[derive(Deserialize)]
    struct Row {
        blocked_id: String,
    }
    let sql = "SELECT blocked_id FROM blocks WHERE blocker_id = ?1 ORDER BY created_at, blocked_id";
    let found: Vec<Row> = rows(stmt(db, sql, &[text(blocker)])?).await?;
    Ok(found.into_iter().map(|r| r.blocked_id).collect())
}

/// What adding a block came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    New,
    /// It was there already.
    Already,
    /// The blocker holds `cap` blocks already.
    Full,
}

/// Adds a block unless the blocker already holds `cap` (checked in the
/// same statement, so two racing adds cannot pass it together).
pub async fn add(
    db: &D1Database,
    (blocker, blocked): (&str, &str),
    now: i64,
    cap: u32,
) -> Result<Added, AppError> {
    let sql = "INSERT INTO blocks (blocker_id, blocked_id, created_at) \
               SELECT ?1, ?2, ?3 WHERE (SELECT count(*) FROM blocks WHERE blocker_id = ?1) < ?4 \
               ON CONFLICT (blocker_id, blocked_id) DO NOTHING";
    let args = [text(blocker), text(blocked), num(now), num(cap)];
    let r = stmt(db, sql, &args)?
        .run()
        .await
        .map_err(AppError::internal)?;
    if changes(&r) > 0 {
        return Ok(Added::New);
    }
    let there = "SELECT 1 AS n FROM blocks WHERE blocker_id = ?1 AND blocked_id = ?2";
    let found: Vec<serde_json::Value> =
        rows(stmt(db, there, &[text(blocker), text(blocked)])?).await?;
    Ok(if found.is_empty() {
        Added::Full
    } else {
        Added::Already
    })
}

/// Removes a block; true when there was one.
pub async fn remove(db: &D1Database, (blocker, blocked): (&str, &str)) -> Result<bool, AppError> {
    let sql = "DELETE FROM blocks WHERE blocker_id = ?1 AND blocked_id = ?2";
    let r = stmt(db, sql, &[text(blocker), text(blocked)])?
        .run()
        .await
        .map_err(AppError::internal)?;
    Ok(changes(&r) > 0)
}

/// The ids of the sessions `user` owns or belongs to, most recently
/// active first, at most `cap`, from every shard.
pub async fn sessions_of(
    dbs: &[D1Database],
    user: &str,
    cap: u32,
) -> Result<Vec<String>, AppError> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        updated_at: i64,
    }
    let sql = "SELECT id, updated_at FROM sessions \
               WHERE owner_id = ?1 OR id IN (SELECT session_id FROM session_members WHERE user_id = ?1) \
               ORDER BY updated_at DESC LIMIT ?2";
    let pages = super::each(dbs, |db| async move {
        rows::<Row>(stmt(db, sql, &[text(user), num(cap)])?).await
    })
    .await?;
    let merged = crate::shards::merge(pages, cap as usize, |a, b| b.updated_at.cmp(&a.updated_at));
    Ok(merged.into_iter().map(|r| r.id).collect())
}

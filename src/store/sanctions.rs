//! Deployment-wide mutes and bans in the home shard (`crate::moderation`,
//! `migrations/0016_sanctions.sql`).

use super::{changes, num, rows, stmt, text};
use crate::error::AppError;
use crate::moderation::{Sanction, SanctionRow as Row, SANCTION_COLUMNS as COLUMNS};
use worker::D1Database;

/// Puts a sanction in force, replacing the user's earlier one of its kind.
pub async fn put(db: &D1Database, x: &Sanction) -> Result<(), AppError> {
    let sql =
        format!("INSERT OR REPLACE INTO sanctions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    let args = [
        text(&x.user_id),
        text(x.kind.as_str()),
        x.until.map_or(wasm_bindgen::JsValue::NULL, num),
        text(x.reason.as_str()),
        text(&x.by.id),
        text(&x.by.name),
        num(x.at),
    ];
    stmt(db, &sql, &args)?
        .run()
        .await
        .map_err(AppError::internal)?;
    Ok(())
}

/// Lifts the user's sanctions; true when one was in force at `now`.
pub async fn lift(db: &D1Database, user: &str, now: i64) -> Result<bool, AppError> {
    let active = !of(db, user, now).await?.is_empty();
    let r = stmt(
        db,
        "DELETE FROM sanctions WHERE user_id = ?1",
        &[text(user)],
    )?
    .run()
    .await
    .map_err(AppError::internal)?;
    Ok(active && changes(&r) > 0)
}

/// The user's sanctions in force at `now`.
pub async fn of(db: &D1Database, user: &str, now: i64) -> Result<Vec<Sanction>, AppError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sanctions WHERE user_id = ?1 AND (until IS NULL OR until > ?2)"
    );
    let found: Vec<Row> = rows(stmt(db, &sql, &[text(user), num(now)])?).await?;
    Ok(found.into_iter().filter_map(Row::sanction).collect())
}

/// Every sanction in force at `now`, newest first, at most `limit`.
pub async fn all(db: &D1Database, now: i64, limit: u32) -> Result<Vec<Sanction>, AppError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sanctions WHERE until IS NULL OR until > ?1 ORDER BY at DESC LIMIT ?2"
    );
    let found: Vec<Row> = rows(stmt(db, &sql, &[num(now), num(limit)])?).await?;
    Ok(found.into_iter().filter_map(Row::sanction).collect())
}
